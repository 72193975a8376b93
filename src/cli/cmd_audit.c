/* cmd_audit.c - `byline audit tail`: read the audit records back. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit/tail.h"
#include "cli/audit.h"
#include "cli/cmd.h"
#include "config/config.h"

static void bl_audit_usage(FILE *f)
{
    fprintf(f, "usage: byline audit tail --dir DIR [-n N] [--json] [-f]\n\n"
               "Prints the newest audit records, oldest first, one request per line:\n"
               "  ts=... actor=... action=\"kubectl ...\" connection=... result=... status=... id=...\n"
               "The id is the Audit-ID the cluster's own audit log carries as auditID.\n\n"
               "  --dir DIR     configuration directory (its audit.dir is read)\n"
               "  -n N          how many requests (default 10)\n"
               "  --json        one merged JSON object per request instead\n"
               "  -f, --follow  keep printing requests as they complete\n");
}

int bl_audit_dir_of(const char *dir, char *out, size_t cap)
{
    bl_buf_t errors, warnings;
    bl_buf_init(&errors, 64 * 1024);
    bl_buf_init(&warnings, 64 * 1024);
    bl_config_t *cfg = NULL;
    int n;
    if (bl_config_load_ex(dir, &cfg, &errors, &warnings) == BL_OK) {
        n = snprintf(out, cap, "%s", cfg->audit_dir);
    } else {
        fprintf(stderr, "byline audit: configuration in %s does not load; reading %s/audit\n", dir, dir);
        n = snprintf(out, cap, "%s/audit", dir);
    }
    bl_config_free(cfg);
    bl_buf_free(&errors);
    bl_buf_free(&warnings);
    return n > 0 && (size_t)n < cap ? BL_OK : BL_ERROR;
}

int bl_audit_tail_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' }, { "json", no_argument, NULL, 'j' },
        { "follow", no_argument, NULL, 'f' },    { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    long n = 10;
    int style = BL_TAIL_TEXT, follow = 0, c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:n:jfh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'j': style = BL_TAIL_JSON; break;
        case 'f': follow = 1; break;
        case 'h': bl_audit_usage(stdout); return 0;
        case 'n':
            n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n < 0 || n > 1000000) {
                fprintf(stderr, "byline audit tail: -n wants a number from 0 to 1000000, not '%s'\n", optarg);
                return 2;
            }
            break;
        default: bl_audit_usage(stderr); return 2;
        }
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr, "byline audit tail: %s\n", dir ? "unexpected argument" : "--dir is required");
        return 2;
    }
    char path[4096];
    if (bl_audit_dir_of(dir, path, sizeof(path)) != BL_OK) {
        fprintf(stderr, "byline audit tail: audit directory path too long\n");
        return 1;
    }
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    size_t skipped = 0;
    int rc = bl_audit_tail(path, (size_t)n, style, stdout, &skipped, &err);
    if (rc == BL_DECLINED && !follow) {
        fprintf(stderr, "byline audit: no records yet (no ledger in %s)\n", path);
        rc = BL_OK;
    }
    if (rc == BL_OK && skipped)
        fprintf(stderr, "byline audit: %zu line(s) were not audit records and were skipped\n", skipped);
    if (rc == BL_OK && follow)
        rc = bl_audit_follow(path, style, stdout, &err);
    if (rc != BL_OK)
        fprintf(stderr, "byline audit: %s\n", bl_buf_cstr(&err));
    bl_buf_free(&err);
    return rc == BL_OK ? 0 : 1;
}

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} bl_audit_cmds[] = {
    { "tail", bl_audit_tail_cmd, "print the newest records, one line per request" },
    { "query", bl_audit_query_cmd, "filter records by actor, verb, namespace, result, time (indexed)" },
    { "status", bl_audit_status_cmd, "is the ledger healthy? (space, failures, last checkpoint)" },
    { "checkpoint", bl_audit_checkpoint_cmd, "print the latest signed checkpoint, for publishing" },
    { "verify", bl_audit_verify_cmd, "check the whole ledger: tree, signatures, sequence, closure" },
    { "prove", bl_audit_prove_cmd, "print an inclusion proof for one entry" },
    { "replay", bl_audit_replay_cmd, "play back a captured exec session, or export it as asciicast v2" },
    { "join", bl_audit_join_cmd, "line records up with the cluster's audit log: lost, bypass, mismatch" },
};

static void bl_audit_cmds_usage(FILE *f)
{
    fprintf(f, "usage: byline audit <subcommand> --dir DIR [options]\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof(bl_audit_cmds) / sizeof(bl_audit_cmds[0]); i++)
        fprintf(f, "  %-11s %s\n", bl_audit_cmds[i].name, bl_audit_cmds[i].summary);
    fprintf(f, "\nRun `byline audit <subcommand> --help` for its options.\n");
}

int bl_cmd_audit(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        bl_audit_cmds_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(bl_audit_cmds) / sizeof(bl_audit_cmds[0]); i++)
        if (!strcmp(argv[1], bl_audit_cmds[i].name))
            return bl_audit_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "byline audit: unknown subcommand '%s'\n", argv[1]);
    bl_audit_cmds_usage(stderr);
    return 2;
}
