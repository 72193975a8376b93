/*
 * audit.h - the `byline audit` subcommands, one file each
 * (src/cli/audit_<name>.c). Each takes argv after "audit" (argv[0] is the
 * subcommand) and returns the exit status: 0 ok, 1 failure (or, for
 * verify and join, something was found), 2 bad usage.
 */
#ifndef BL_CLI_AUDIT_H
#define BL_CLI_AUDIT_H

int bl_audit_tail_cmd(int argc, char **argv);
int bl_audit_query_cmd(int argc, char **argv);
int bl_audit_status_cmd(int argc, char **argv);
int bl_audit_checkpoint_cmd(int argc, char **argv);
int bl_audit_verify_cmd(int argc, char **argv);
int bl_audit_prove_cmd(int argc, char **argv);
int bl_audit_replay_cmd(int argc, char **argv);
int bl_audit_join_cmd(int argc, char **argv);

/* Resolves DIR's audit directory into out (cap bytes): audit.dir from
 * DIR/byline.yaml, or DIR/audit when the configuration does not load (the
 * log stays readable in an incident). Returns BL_OK or BL_ERROR. */
int bl_audit_dir_of(const char *dir, char *out, size_t cap);

#endif
