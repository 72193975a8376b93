/*
 * schema.h - parts of byline.yaml's schema kept outside config.c, private
 * to src/config: the `audit:` section (audit.c) and `issuers:` (issuers.c).
 */
#ifndef BL_CONFIG_SCHEMA_H
#define BL_CONFIG_SCHEMA_H

#include "config/config.h"
#include "config/yaml.h"

/*
 * Reads the `policy:` value `v` (NULL when byline.yaml has none) and the
 * files it includes into a new compiled policy in cfg->policy (set even
 * on errors, so that bl_config_free() releases it). Needs cfg->conns.
 * Errors in included files name those files. Returns BL_OK or BL_ERROR.
 */
int bl_cfg_policy(bl_yaml_t *y, yaml_node_t *v, bl_config_t *cfg);

/* Sets the audit defaults that do not depend on DIR (sync on, 64 MiB
 * segments, warn at 10% and refuse at 2% free, Metadata, 16 KiB bodies). */
void bl_cfg_audit_init(bl_config_t *cfg);

/*
 * The value parser of the top-level `audit` key (dst: the bl_config_t):
 * walks the mapping, fills what it left out (dir, signing_key, signing_pub,
 * origin) and checks the values together: the signing key files, and that
 * space_refuse is not above space_warn. Returns BL_OK or BL_ERROR (reported).
 */
int bl_cfg_audit(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);

/* Does bl_cfg_audit()'s filling and checking when byline.yaml has no
 * `audit:` key (cfg->audit_origin still NULL). Returns BL_OK or BL_ERROR. */
int bl_cfg_audit_defaults(bl_yaml_t *y, bl_config_t *cfg);

/*
 * The value parser of the top-level `issuers` key (dst: the bl_config_t):
 * the trusted JWT issuers, each checked (key source, names, prefixes).
 * Returns BL_OK or BL_ERROR (reported).
 */
int bl_cfg_issuers(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);

/* Frees cfg->issuers and everything they own. */
void bl_cfg_issuers_free(bl_config_t *cfg);

#endif
