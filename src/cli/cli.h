/*
 * cli.h - what the byline subcommands share: consistent messages and exit
 * codes, option parsing errors, and loading the configuration with every
 * problem printed.
 *
 * Exit codes: 0 success, 1 failure, 2 bad usage (as in cmd.h).
 */
#ifndef BL_CLI_CLI_H
#define BL_CLI_CLI_H

#include <getopt.h>
#include "config/config.h"
#include "core/buf.h"

#define BL_EXIT_OK    0
#define BL_EXIT_FAIL  1
#define BL_EXIT_USAGE 2

/* Prints "byline CMD: message" and a pointer to --help on stderr.
 * Returns BL_EXIT_USAGE. */
int bl_cli_usage(const char *cmd, const char *fmt, ...) BL_PRINTF(2, 3);

/* Prints "byline CMD: message" on stderr. Returns BL_EXIT_FAIL. */
int bl_cli_fail(const char *cmd, const char *fmt, ...) BL_PRINTF(2, 3);

/* Prints the lines in `b` (e.g. collected errors) on stderr, as they are. */
void bl_cli_print(const bl_buf_t *b);

/*
 * getopt_long() with byline's messages: returns the next option, -1 at the
 * end, or '?' after printing what was wrong (unknown option, missing
 * argument). Reset with bl_cli_getopt_reset() before a new argv.
 */
int bl_cli_getopt(const char *cmd, int argc, char **argv, const struct option *longopts);
void bl_cli_getopt_reset(void);

/*
 * Loads the configuration in `dir`, printing warnings and (on failure)
 * every error on stderr. Returns BL_EXIT_OK with *cfg set, or
 * BL_EXIT_FAIL.
 */
int bl_cli_load(const char *cmd, const char *dir, bl_config_t **cfg);

#endif
