/*
 * issuers.c - the `issuers:` section of byline.yaml: trusted JWT issuers
 * for workload identity, where their keys are, and how their claims map
 * to an identity (docs/IDENTITY.md, docs/CONFIG.md).
 *
 * Checked here so a mistake is a file:line:col error at load, not a 401
 * later: an issuer has one key source (jwks_file, jwks_url, or an https
 * issuer URL for OIDC discovery), an audience, and names and prefixes
 * that cannot produce a Kubernetes-reserved "system:" user or group.
 */
#include <stddef.h>
#include <stdlib.h>
#include "config/schema.h"
#include "config/values.h"

#define ISS(f) offsetof(bl_issuer_t, f)
#define BL_ISSUER_STR_MAX 1024   /* issuer and audience */
#define BL_CLAIM_NAME_MAX 128
#define BL_PREFIX_MAX     64

static int bl_cfg_claims(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k);

static const bl_yaml_key_t bl_issuer_keys[] = {
    { "issuer", bl_yaml_str, ISS(issuer), 0, 0, NULL, BL_YAML_REQUIRED },
    { "audience", bl_yaml_str, ISS(audience), 0, 0, NULL, BL_YAML_REQUIRED },
    { "jwks_file", bl_yaml_path, ISS(jwks_file), 0, 0, NULL, BL_YAML_FILE },
    { "jwks_url", bl_yaml_str, ISS(jwks_url), 0, 0, NULL, 0 },
    { "ca", bl_yaml_path, ISS(ca_file), 0, 0, NULL, BL_YAML_FILE },
    { "clock_skew", bl_yaml_duration, ISS(clock_skew_ms), 0, 10 * 60 * 1000, NULL, 0 },
    { "jwks_refresh", bl_yaml_duration, ISS(refresh_ms), 60 * 1000, 24 * 3600 * 1000, NULL, 0 },
    { "username_claim", bl_yaml_str, ISS(username_claim), 0, 0, NULL, 0 },
    { "username_prefix", bl_yaml_str, ISS(username_prefix), 0, 0, NULL, 0 },
    { "groups_claim", bl_yaml_str, ISS(groups_claim), 0, 0, NULL, 0 },
    { "groups_prefix", bl_yaml_str, ISS(groups_prefix), 0, 0, NULL, 0 },
    { "claims", bl_cfg_claims, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Returns 1 if s is 1..max bytes of printable ASCII without spaces. */
static int bl_cfg_word(const char *s, size_t max)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return n > 0 && n <= max;
}

/* `claims: {name: value, ...}`: required string claims. */
static int bl_cfg_claims(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_issuer_t *is = dst;
    if (bl_yaml_is_null(v))
        return BL_OK;
    if (v->type != YAML_MAPPING_NODE) {
        bl_yaml_error(y, v, "%s: expected a mapping of claim names to values", k->name);
        return BL_ERROR;
    }
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n > BL_CONFIG_MAX_CLAIMS) {
        bl_yaml_error(y, v, "%s: more than %d required claims", k->name, BL_CONFIG_MAX_CLAIMS);
        return BL_ERROR;
    }
    if ((is->claims = calloc(n ? n : 1, sizeof(*is->claims))) == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
        yaml_node_t *kn = bl_yaml_node(y, p->key), *vn = bl_yaml_node(y, p->value);
        char *name = bl_yaml_strdup(y, kn, "claim name", 0);
        char *val = name ? bl_yaml_strdup(y, vn, name, 0) : NULL;
        int bad = name == NULL || val == NULL;
        if (!bad && !bl_cfg_word(name, BL_CLAIM_NAME_MAX)) {
            bl_yaml_error(y, kn, "claim name \"%.64s\": 1 to %d printable characters, no spaces",
                          name, BL_CLAIM_NAME_MAX);
            bad = 1;
        }
        for (size_t j = 0; !bad && j < is->nclaims; j++) {
            if (!strcmp(is->claims[j].name, name)) {
                bl_yaml_error(y, kn, "claim \"%.64s\" is listed twice", name);
                bad = 1;
            }
        }
        if (bad) {
            free(name);
            free(val);
            continue;
        }
        is->claims[is->nclaims++] = (bl_claim_want_t){ name, val };
    }
    return BL_OK;
}

/* Checks the key source: one of jwks_file, jwks_url, or discovery. */
static void bl_cfg_issuer_keys(bl_yaml_t *y, yaml_node_t *item, yaml_node_t **found,
                               bl_issuer_t *is)
{
    bl_url_t u;
    const char *why;
    yaml_node_t *url = bl_yaml_found(bl_issuer_keys, found, "jwks_url");
    if (is->jwks_file != NULL && is->jwks_url != NULL)
        bl_yaml_error(y, url, "jwks_file and jwks_url are mutually exclusive: an issuer has "
                              "one key source");
    else if (is->jwks_url != NULL && bl_url_parse(is->jwks_url, strlen(is->jwks_url), &u, &why) != BL_OK)
        bl_yaml_error(y, url, "jwks_url: \"%.200s\" %s", is->jwks_url, why);
    else if (is->jwks_file == NULL && is->jwks_url == NULL && is->issuer != NULL &&
             bl_url_parse(is->issuer, strlen(is->issuer), &u, &why) != BL_OK)
        bl_yaml_error(y, item, "issuer \"%.200s\" needs jwks_file or jwks_url: it is not an "
                               "https URL, so OIDC discovery cannot find its keys", is->issuer);
    if (is->jwks_file != NULL && is->ca_file != NULL)
        bl_yaml_error(y, bl_yaml_found(bl_issuer_keys, found, "ca"),
                      "ca is for jwks_url and OIDC discovery, not jwks_file");
}

/* Checks the claim mapping of one issuer. */
static void bl_cfg_issuer_map(bl_yaml_t *y, yaml_node_t **found, bl_issuer_t *is)
{
    static const char *const names[] = { "username_claim", "groups_claim" };
    static const char *const prefixes[] = { "username_prefix", "groups_prefix" };
    char *nv[] = { is->username_claim, is->groups_claim };
    char *pv[] = { is->username_prefix, is->groups_prefix };
    for (int i = 0; i < 2; i++) {
        if (nv[i] != NULL && !bl_cfg_word(nv[i], BL_CLAIM_NAME_MAX))
            bl_yaml_error(y, bl_yaml_found(bl_issuer_keys, found, names[i]),
                          "%s: 1 to %d printable characters, no spaces", names[i], BL_CLAIM_NAME_MAX);
        if (pv[i] != NULL && !bl_cfg_word(pv[i], BL_PREFIX_MAX))
            bl_yaml_error(y, bl_yaml_found(bl_issuer_keys, found, prefixes[i]),
                          "%s: 1 to %d printable characters, no spaces", prefixes[i], BL_PREFIX_MAX);
        else if (pv[i] != NULL && !strncmp(pv[i], "system:", 7))
            bl_yaml_error(y, bl_yaml_found(bl_issuer_keys, found, prefixes[i]),
                          "%s: \"system:\" is reserved by Kubernetes for its own users and groups",
                          prefixes[i]);
    }
    if (is->groups_prefix != NULL && is->groups_claim == NULL)
        bl_yaml_error(y, bl_yaml_found(bl_issuer_keys, found, "groups_prefix"),
                      "groups_prefix needs groups_claim");
    if (is->username_claim == NULL && (is->username_claim = strdup("sub")) == NULL)
        bl_yaml_error(y, NULL, "out of memory");
}

static void bl_cfg_issuer(bl_yaml_t *y, yaml_node_t *item, bl_config_t *cfg, bl_issuer_t *is)
{
    yaml_node_t *found[BL_YAML_MAX_KEYS];
    yaml_node_t *at;
    is->clock_skew_ms = 60 * 1000;
    is->refresh_ms = 3600 * 1000;
    if (bl_yaml_map(y, item, bl_issuer_keys, is, found) != BL_OK && item->type != YAML_MAPPING_NODE)
        return;
    at = bl_yaml_found(bl_issuer_keys, found, "issuer");
    if (is->issuer != NULL && !bl_cfg_word(is->issuer, BL_ISSUER_STR_MAX))
        bl_yaml_error(y, at, "issuer: 1 to %d printable characters, no spaces", BL_ISSUER_STR_MAX);
    for (bl_issuer_t *o = cfg->issuers; is->issuer != NULL && o < is; o++)
        if (o->issuer != NULL && !strcmp(o->issuer, is->issuer))
            bl_yaml_error(y, at, "issuer \"%.200s\" is listed twice", is->issuer);
    if (is->audience != NULL && !bl_cfg_word(is->audience, BL_ISSUER_STR_MAX))
        bl_yaml_error(y, bl_yaml_found(bl_issuer_keys, found, "audience"),
                      "audience: 1 to %d printable characters, no spaces", BL_ISSUER_STR_MAX);
    bl_cfg_issuer_keys(y, item, found, is);
    bl_cfg_issuer_map(y, found, is);
    if (is->issuer != NULL && is->username_prefix == NULL)
        bl_yaml_warn(y, item, "issuer \"%.200s\" has no username_prefix: a token's %s could "
                              "name the same actor as a registered identity (e.g. set "
                              "username_prefix: \"jwt:\")", is->issuer,
                     is->username_claim ? is->username_claim : "sub");
}

int bl_cfg_issuers(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_config_t *cfg = dst;
    if (bl_yaml_is_null(v))
        return BL_OK;
    if (!bl_yaml_expect_seq(y, v, k->name))
        return BL_ERROR;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > BL_CONFIG_MAX_ISSUERS) {
        bl_yaml_error(y, v, "issuers: more than %d issuers", BL_CONFIG_MAX_ISSUERS);
        return BL_ERROR;
    }
    if ((cfg->issuers = calloc(n ? n : 1, sizeof(*cfg->issuers))) == NULL) {
        bl_yaml_error(y, v, "out of memory");
        return BL_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        cfg->nissuers++; /* counted first, so bl_config_free() sees a half-parsed one */
        bl_cfg_issuer(y, bl_yaml_node(y, v->data.sequence.items.start[i]), cfg, &cfg->issuers[i]);
    }
    return BL_OK;
}

void bl_cfg_issuers_free(bl_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nissuers; i++) {
        bl_issuer_t *is = &cfg->issuers[i];
        free(is->issuer);
        free(is->audience);
        free(is->jwks_file);
        free(is->jwks_url);
        free(is->ca_file);
        free(is->username_claim);
        free(is->username_prefix);
        free(is->groups_claim);
        free(is->groups_prefix);
        for (size_t j = 0; j < is->nclaims; j++) {
            free(is->claims[j].name);
            free(is->claims[j].value);
        }
        free(is->claims);
    }
    free(cfg->issuers);
    cfg->issuers = NULL;
    cfg->nissuers = 0;
}
