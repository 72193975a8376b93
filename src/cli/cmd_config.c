/*
 * cmd_config.c - `byline config check`: loads the whole configuration
 * (byline.yaml, the identities file, the policy and the files it
 * includes, the TLS and signing key files) as `byline serve` would, and
 * reports every problem with its file:line:col, not only the first.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/cmd.h"
#include "policy/policy.h"

static const char bl_config_help[] =
    "usage: byline config check --dir DIR\n"
    "\n"
    "Loads DIR/byline.yaml and everything it names (identities file, policy rules\n"
    "and included rule files, TLS and audit key files) and prints every error and\n"
    "warning as file:line:col: message. On success it prints a summary.\n"
    "\n"
    "Exit status: 0 valid, 1 errors found, 2 usage.\n";

static int bl_config_check(int argc, char **argv)
{
    enum { O_DIR = 256 };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "dir", required_argument, NULL, O_DIR },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    bl_config_t *cfg = NULL;
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("config check", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_config_help, stdout);
            return BL_EXIT_OK;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        dir = optarg;
    }
    if (optind < argc)
        return bl_cli_usage("config check", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return bl_cli_usage("config check", "--dir DIR is required");
    int rc = bl_cli_load("config check", dir, &cfg);
    if (rc != BL_EXIT_OK)
        return rc;
    printf("%s: ok: %zu connection(s), %zu identities, %zu policy rule(s)%s\n", cfg->path, cfg->nconns,
           cfg->nids, bl_policy_count(cfg->policy),
           bl_policy_count(cfg->policy) ? "" : " (every request will be denied: add rules under policy:)");
    bl_config_free(cfg);
    return BL_EXIT_OK;
}

int bl_cmd_config(int argc, char **argv)
{
    if (argc < 2)
        return bl_cli_usage("config", "expected check");
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        fputs(bl_config_help, stdout);
        return BL_EXIT_OK;
    }
    if (!strcmp(verb, "check"))
        return bl_config_check(argc - 1, argv + 1);
    return bl_cli_usage("config", "unknown subcommand '%s' (check)", verb);
}
