/*
 * init_policy.h - the starter policy `byline init` writes to
 * DIR/policy.yaml (kept when it exists): least privilege, commented.
 */
#ifndef BL_CLI_INIT_POLICY_H
#define BL_CLI_INIT_POLICY_H

/* The file's text (a NUL-terminated YAML document). */
extern const char bl_init_policy_yaml[];

/* The `policy:` section byline.yaml gets, with its comment. */
extern const char bl_init_policy_section[];

#endif
