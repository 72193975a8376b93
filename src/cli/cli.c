/* cli.c - shared helpers of the byline subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include "cli/cli.h"

static void bl_cli_vsay(const char *cmd, const char *fmt, va_list ap) BL_PRINTF(2, 0);

static void bl_cli_vsay(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "byline %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int bl_cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bl_cli_vsay(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Run 'byline %s --help' for usage.\n", cmd);
    return BL_EXIT_USAGE;
}

int bl_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bl_cli_vsay(cmd, fmt, ap);
    va_end(ap);
    return BL_EXIT_FAIL;
}

void bl_cli_print(const bl_buf_t *b)
{
    if (bl_buf_size(b) > 0)
        fwrite(bl_buf_data(b), 1, bl_buf_size(b), stderr);
}

void bl_cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 also resets its internal state */
}

int bl_cli_getopt(const char *cmd, int argc, char **argv, const struct option *longopts)
{
    opterr = 0;
    int c = getopt_long(argc, argv, ":h", longopts, NULL);
    if (c == '?') {
        if (optopt != 0)
            bl_cli_usage(cmd, "unknown option '-%c'", optopt);
        else
            bl_cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
    } else if (c == ':') {
        bl_cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
        c = '?';
    }
    return c;
}

int bl_cli_load(const char *cmd, const char *dir, bl_config_t **cfg)
{
    bl_buf_t errs, warns;
    bl_buf_init(&errs, 1 << 20);
    bl_buf_init(&warns, 1 << 20);
    int rc = bl_config_load_ex(dir, cfg, &errs, &warns);
    bl_cli_print(&warns);
    bl_cli_print(&errs);
    bl_buf_free(&errs);
    bl_buf_free(&warns);
    if (rc != BL_OK)
        return bl_cli_fail(cmd, "the configuration in %s has errors (see above)", dir);
    return BL_EXIT_OK;
}
