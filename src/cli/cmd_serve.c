/* cmd_serve.c - `byline serve --dir DIR`: run the gateway in the foreground. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli/cmd.h"
#include "config/config.h"
#include "core/log.h"
#include "proxy/proxy.h"

static void bl_serve_usage(FILE *f)
{
    fprintf(f, "usage: byline serve --dir DIR [--log-level debug|info|warn|error]\n\n"
               "Runs the gateway in the foreground, logging to stderr. Every request is\n"
               "authenticated, audited to the configured audit directory before it is\n"
               "forwarded, and sent upstream with the connection's credential.\n\n"
               "  --dir DIR        configuration directory (from `byline init`)\n"
               "  --log-level L    diagnostics on stderr (default info)\n\n"
               "SIGTERM or SIGINT drains: no new connections, in-flight requests finish\n"
               "(up to limits.drain_timeout); a second signal stops at once.\n");
}

static int bl_serve_level(const char *s)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

int bl_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'l':
            if (bl_serve_level(optarg) < 0) {
                fprintf(stderr, "byline serve: unknown log level '%s'\n", optarg);
                return 2;
            }
            bl_log_set_level(bl_serve_level(optarg));
            break;
        case 'h':
            bl_serve_usage(stdout);
            return 0;
        default:
            bl_serve_usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr, "byline serve: %s\n", dir ? "unexpected argument" : "--dir is required");
        bl_serve_usage(stderr);
        return 2;
    }
    bl_buf_t errors;
    bl_buf_init(&errors, 1024 * 1024);
    bl_config_t *cfg = NULL;
    if (bl_config_load(dir, &cfg, &errors) != BL_OK) {
        fprintf(stderr, "byline serve: invalid configuration:\n%s", bl_buf_cstr(&errors));
        bl_buf_free(&errors);
        return 1;
    }
    bl_buf_free(&errors);
    int rc = bl_server_run(cfg);
    bl_config_free(cfg);
    return rc == BL_OK ? 0 : 1;
}
