/*
 * policy.c - the `policy:` section of byline.yaml and the rule files it
 * includes (docs/POLICY.md), read into a compiled bl_policy_t.
 *
 *   policy:
 *     include: [policy.yaml, "policy.d/[*].yaml"]   # relative to DIR
 *     rules:
 *       - name: reporting-read-only
 *         effect: allow
 *         identities: [agent-reporting]
 *         verbs: [get, list, watch]
 *         resources: ["*"]
 *
 * An included file holds `rules:` only. Every problem is reported with its
 * file:line:col and the walk goes on, so one run shows every mistake. The
 * section is read after the rest of byline.yaml: `connections` must be
 * known to resolve rule connection names to bits.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/file.h"
#include "config/schema.h"
#include "config/values.h"
#include "policy/glob.h"
#include "policy/limit.h"
#include "policy/policy.h"

#define BL_POLICY_FILE_MAX     (8 * 1024 * 1024)
#define BL_POLICY_MAX_INCLUDES 256
#define RULE(f) offsetof(bl_rule_t, f)

/* A policy being read: the config (for connections) and the policy. */
typedef struct {
    bl_config_t *cfg;
    bl_policy_t *p;
    yaml_node_t *rules, *include;
    yaml_node_t *limits, *builtin, *dry_run; /* guardrails (byline.yaml only) */
    unsigned nfiles;
    unsigned review_expire_ms, review_window_ms, review_max_pending, review_hold_ms;
    char *reviewer_group;
} bl_pload_t;

/* What a match field's values must look like. */
typedef enum { BL_PV_NAME, BL_PV_ANY, BL_PV_RESOURCE, BL_PV_PATH, BL_PV_VERB, BL_PV_CONN } bl_pv_t;

/* Returns the index of the connection named s, or -1. Connections with
 * errors (no name) may be in the array while the config is being read. */
static long bl_pv_conn_index(const bl_config_t *cfg, const char *s, size_t len)
{
    for (size_t i = 0; i < cfg->nconns; i++)
        if (cfg->conns[i].name && strlen(cfg->conns[i].name) == len && !memcmp(cfg->conns[i].name, s, len))
            return (long)i;
    return -1;
}

/* Checks one value. Returns NULL or a reason. */
static const char *bl_pv_check(bl_yaml_t *y, bl_pv_t kind, const char *s, size_t len, int glob)
{
    const bl_config_t *cfg = ((bl_pload_t *)y->ctx)->cfg;
    const char *why = bl_glob_check(s, len);
    if (why)
        return why;
    if (len > BL_POLICY_PATTERN_MAX)
        return "is too long";
    switch (kind) {
    case BL_PV_NAME:
        if (!glob && bl_identity_name_check(s, len, &why) != BL_OK)
            return "can never match: identity and group names are 1..64 bytes of [a-z0-9._@:-], "
                   "lower case, not starting with system:";
        return NULL;
    case BL_PV_RESOURCE: {
        const char *slash = memchr(s, '/', len);
        if (len == 0 || s[0] == '/' || (slash && (slash == s + len - 1 || memchr(slash + 1, '/', (size_t)(s + len - slash - 1)))))
            return "is not a resource: write pods, pods/exec, deployments/scale, */scale or *";
        return NULL;
    }
    case BL_PV_PATH:
        if (!(len == 1 && s[0] == '*') && (len == 0 || s[0] != '/'))
            return "is not a path: non-resource paths start with / (e.g. /version, /apis/*)";
        return NULL;
    case BL_PV_VERB:
        if (strcmp(s, "*") && bl_policy_verb_bit(s) == 0)
            return "is not a verb: use get, list, watch, create, update, patch, delete, deletecollection, "
                   "proxy (or post, put, head, options for non-resource paths), or *; exec, attach and "
                   "port-forward are create";
        return NULL;
    case BL_PV_CONN: {
        long c = bl_pv_conn_index(cfg, s, len);
        if (c < 0)
            return "is not a connection in byline.yaml";
        return c > 63 ? "is past the 64th connection, which rules cannot name" : NULL;
    }
    default:
        return NULL;
    }
}

/* Reads a list of strings (a single string counts as one) into *l. */
static int bl_pv_list(bl_yaml_t *y, yaml_node_t *v, bl_patlist_t *l, const char *what, bl_pv_t kind,
                      int empty_ok)
{
    yaml_node_item_t *items = NULL;
    size_t n = 1;
    if (v->type == YAML_SEQUENCE_NODE) {
        items = v->data.sequence.items.start;
        n = (size_t)(v->data.sequence.items.top - items);
    } else if (v->type != YAML_SCALAR_NODE || bl_yaml_is_null(v)) {
        bl_yaml_error(y, v, "%s: expected a list of strings; leave the key out to match any", what);
        return BL_ERROR;
    }
    if ((n == 0 && !empty_ok) || n > BL_POLICY_MAX_PATTERNS) {
        bl_yaml_error(y, v, n ? "%s: more than %d values" : "%s: an empty list matches nothing; "
                      "leave the key out to match any", what, BL_POLICY_MAX_PATTERNS);
        return BL_ERROR;
    }
    l->v = calloc(n ? n : 1, sizeof(*l->v));
    if (l->v == NULL)
        return BL_ERROR;
    int rc = BL_OK;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = items ? bl_yaml_node(y, items[i]) : v;
        char *s = bl_yaml_strdup(y, e, what, 0);
        const char *why;
        if (s == NULL) {
            rc = BL_ERROR;
            continue;
        }
        size_t len = strlen(s);
        int glob = bl_glob_is_glob(s, len);
        if ((why = bl_pv_check(y, kind, s, len, glob)) != NULL) {
            bl_yaml_error(y, e, "%s: \"%.100s\" %s", what, s, why);
            free(s);
            rc = BL_ERROR;
            continue;
        }
        l->v[l->n++] = (bl_pat_t){ s, (uint32_t)len, (uint8_t)glob };
    }
    return rc;
}

static int bl_pv_names(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    return bl_pv_list(y, v, dst, k->name, BL_PV_NAME, 0);
}

static int bl_pv_any(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    return bl_pv_list(y, v, dst, k->name, BL_PV_ANY, 0);
}

static int bl_pv_resources(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    return bl_pv_list(y, v, dst, k->name, BL_PV_RESOURCE, 0);
}

static int bl_pv_paths(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    return bl_pv_list(y, v, dst, k->name, BL_PV_PATH, 0);
}

/* verbs: known words (or "*") into a bit mask. */
static int bl_pv_verbs(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_patlist_t l = { 0 };
    uint32_t mask = 0;
    int rc = bl_pv_list(y, v, &l, k->name, BL_PV_VERB, 0);
    for (uint32_t i = 0; i < l.n; i++) {
        mask |= !strcmp(l.v[i].s, "*") ? UINT32_MAX : bl_policy_verb_bit(l.v[i].s);
        free(l.v[i].s);
    }
    free(l.v);
    if (rc == BL_OK)
        *(uint32_t *)dst = mask;
    return rc;
}

/* connections: names of configured connections into a bit mask. */
static int bl_pv_conns(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    const bl_config_t *cfg = ((bl_pload_t *)y->ctx)->cfg;
    bl_patlist_t l = { 0 };
    uint64_t mask = 0;
    int rc = bl_pv_list(y, v, &l, k->name, BL_PV_CONN, 0);
    for (uint32_t i = 0; i < l.n; i++) {
        mask |= (uint64_t)1 << bl_pv_conn_index(cfg, l.v[i].s, l.v[i].len);
        free(l.v[i].s);
    }
    free(l.v);
    if (rc == BL_OK)
        *(uint64_t *)dst = mask;
    return rc;
}

static int bl_pv_argv(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_rule_t *r = dst;
    if (r->cmd != BL_CMD_ANY) {
        bl_yaml_error(y, v, "command: give one of argv, argvPrefix and argvGlob");
        return BL_ERROR;
    }
    r->cmd = (int)k->min;
    return bl_pv_list(y, v, &r->argv, k->name, BL_PV_ANY, r->cmd == BL_CMD_ARGV);
}

static const bl_yaml_key_t bl_cmd_keys[] = {
    { "argv", bl_pv_argv, 0, BL_CMD_ARGV, 0, NULL, 0 },
    { "argvPrefix", bl_pv_argv, 0, BL_CMD_PREFIX, 0, NULL, 0 },
    { "argvGlob", bl_pv_argv, 0, BL_CMD_GLOB, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int bl_pv_command(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_rule_t *r = dst;
    int rc = bl_yaml_map(y, v, bl_cmd_keys, r, NULL);
    if (rc == BL_OK && r->cmd == BL_CMD_ANY) {
        bl_yaml_error(y, v, "%s: give one of argv, argvPrefix and argvGlob", k->name);
        return BL_ERROR;
    }
    return rc;
}

static int bl_pv_effect(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    static const char *const words[] = { "allow", "review", "deny" };
    if (v->type == YAML_SCALAR_NODE)
        for (int i = 0; i < 3; i++)
            if (bl_str_eq((bl_str_t){ (const char *)v->data.scalar.value, v->data.scalar.length }, words[i])) {
                *(bl_effect_t *)dst = (bl_effect_t)i;
                return BL_OK;
            }
    bl_yaml_error(y, v, "%s: expected allow, deny or review", k->name);
    return BL_ERROR;
}

/* Rule names appear in messages and audit records: keep them plain. */
static int bl_pv_rule_name(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    char **out = dst;
    if (bl_yaml_str(y, v, dst, k) != BL_OK || *out == NULL)
        return BL_ERROR;
    size_t n = strlen(*out), i = 0;
    while (i < n && ((*out)[i] == '-' || (*out)[i] == '.' || (*out)[i] == '_' ||
                     ((*out)[i] >= '0' && (*out)[i] <= '9') || (((*out)[i] | 32) >= 'a' && ((*out)[i] | 32) <= 'z')))
        i++;
    if (n == 0 || n > BL_POLICY_NAME_MAX || i < n)
        bl_yaml_error(y, v, "name: \"%.80s\" is not a rule name: 1..%d bytes of letters, digits, '.', '_' "
                            "and '-'", *out, BL_POLICY_NAME_MAX);
    else if (!strcmp(*out, BL_POLICY_DEFAULT_RULE))
        bl_yaml_error(y, v, "name: \"%s\" is the implicit rule's name", *out);
    else if (!strncmp(*out, "builtin-", 8))
        bl_yaml_error(y, v, "name: \"%s\": names starting with builtin- are byline's own rules", *out);
    else
        return BL_OK;
    free(*out);
    *out = NULL;
    return BL_ERROR;
}

static const bl_yaml_key_t bl_rule_keys[] = {
    { "name", bl_pv_rule_name, RULE(name), 0, 0, NULL, BL_YAML_REQUIRED },
    { "effect", bl_pv_effect, RULE(effect), 0, 0, NULL, BL_YAML_REQUIRED },
    { "identities", bl_pv_names, RULE(identities), 0, 0, NULL, 0 },
    { "groups", bl_pv_names, RULE(groups), 0, 0, NULL, 0 },
    { "connections", bl_pv_conns, RULE(conns), 0, 0, NULL, 0 },
    { "verbs", bl_pv_verbs, RULE(verbs), 0, 0, NULL, 0 },
    { "apiGroups", bl_pv_any, RULE(api_groups), 0, 0, NULL, 0 },
    { "resources", bl_pv_resources, RULE(resources), 0, 0, NULL, 0 },
    { "namespaces", bl_pv_any, RULE(namespaces), 0, 0, NULL, 0 },
    { "names", bl_pv_any, RULE(names), 0, 0, NULL, 0 },
    { "nonResourcePaths", bl_pv_paths, RULE(paths), 0, 0, NULL, 0 },
    { "command", bl_pv_command, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Which requests the rule's fields allow it to match; a rule cannot be
 * about both resource and non-resource requests. */
static void bl_rule_kinds(bl_yaml_t *y, yaml_node_t **found, bl_rule_t *r)
{
    static const char *const res_keys[] = { "apiGroups", "resources", "namespaces", "names", "command" };
    yaml_node_t *paths = bl_yaml_found(bl_rule_keys, found, "nonResourcePaths");
    int res = 0;
    for (size_t i = 0; i < BL_ARRAY_LEN(res_keys); i++)
        if (bl_yaml_found(bl_rule_keys, found, res_keys[i]))
            res = 1;
    if (paths && res)
        bl_yaml_error(y, paths, "nonResourcePaths: a rule is about non-resource paths or about "
                                "resources, not both: split it in two");
    if (paths)
        r->kinds = BL_RULE_NONRESOURCE;
    else if (res)
        r->kinds = BL_RULE_RESOURCE;
}

/* Reads one rule (a mapping) into a new rule of the policy. */
static void bl_cfg_rule(bl_yaml_t *y, bl_pload_t *P, yaml_node_t *item)
{
    yaml_node_t *found[BL_YAML_MAX_KEYS] = { 0 };
    bl_rule_t *r = bl_policy_rule_add(P->p);
    if (r == NULL) {
        bl_yaml_error(y, item, "more than %d rules (or out of memory)", BL_POLICY_MAX_RULES);
        return;
    }
    r->file = strdup(y->file);
    r->line = (unsigned)item->start_mark.line + 1;
    r->col = (unsigned)item->start_mark.column + 1;
    if (bl_yaml_map(y, item, bl_rule_keys, r, found) != BL_OK && item->type != YAML_MAPPING_NODE)
        return;
    bl_rule_kinds(y, found, r);
}

static void bl_cfg_rules(bl_yaml_t *y, bl_pload_t *P, yaml_node_t *list)
{
    if (list == NULL || bl_yaml_is_null(list) || !bl_yaml_expect_seq(y, list, "rules"))
        return;
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++)
        bl_cfg_rule(y, P, bl_yaml_node(y, *it));
}

/* Value parser that only remembers the node (dst: yaml_node_t **). */
static int bl_cfg_node(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    (void)y;
    (void)k;
    *(yaml_node_t **)dst = v;
    return BL_OK;
}

static const bl_yaml_key_t bl_policy_keys[] = {
    { "include", bl_cfg_node, offsetof(bl_pload_t, include), 0, 0, NULL, 0 },
    { "rules", bl_cfg_node, offsetof(bl_pload_t, rules), 0, 0, NULL, 0 },
    { "limits", bl_cfg_node, offsetof(bl_pload_t, limits), 0, 0, NULL, 0 },
    { "builtin", bl_cfg_node, offsetof(bl_pload_t, builtin), 0, 0, NULL, 0 },
    { "dry_run_only", bl_cfg_node, offsetof(bl_pload_t, dry_run), 0, 0, NULL, 0 },
    /* the review flow (docs/POLICY.md "Review") */
    { "review_expire", bl_yaml_duration, offsetof(bl_pload_t, review_expire_ms), 10000, 7u * 86400000u, NULL, 0 },
    { "review_window", bl_yaml_duration, offsetof(bl_pload_t, review_window_ms), 1000, 86400000u, NULL, 0 },
    { "review_max_pending", bl_yaml_uint, offsetof(bl_pload_t, review_max_pending), 1, 100000, NULL, 0 },
    { "reviewer_group", bl_yaml_str, offsetof(bl_pload_t, reviewer_group), 0, 0, NULL, 0 },
    { "review_hold", bl_yaml_duration, offsetof(bl_pload_t, review_hold_ms), 0, 300000, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const bl_yaml_key_t bl_include_file_keys[] = {
    { "rules", bl_cfg_node, offsetof(bl_pload_t, rules), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Reads the rules of one included file. Errors count against `y`. */
static void bl_cfg_include_file(bl_yaml_t *y, bl_pload_t *P, yaml_node_t *at, const char *path)
{
    bl_yaml_t yi = { .file = path, .dir = y->dir, .errors = y->errors, .warnings = y->warnings, .ctx = P };
    unsigned r = bl_file_check(path, 0);
    if (++P->nfiles > BL_POLICY_MAX_INCLUDES) {
        bl_yaml_error(y, at, "include: more than %d files", BL_POLICY_MAX_INCLUDES);
        return;
    }
    if (r & BL_FILE_MISSING) {
        bl_yaml_error(y, at, "include: %s does not exist", path);
        return;
    }
    if (r & BL_FILE_OTHER_WRITABLE)
        bl_yaml_error(y, at, "include: %s is writable by other users, who could grant themselves "
                             "access; run chmod go-w %s", path, path);
    int rc = bl_yaml_load(&yi, BL_POLICY_FILE_MAX);
    if (rc == BL_OK) {
        yaml_node_t *saved = P->rules;
        P->rules = NULL;
        bl_yaml_map(&yi, bl_yaml_root(&yi), bl_include_file_keys, P, NULL);
        bl_cfg_rules(&yi, P, P->rules);
        P->rules = saved;
    }
    y->nerrors += yi.nerrors;
    bl_yaml_free(&yi);
}

/* glob(3) error callback: a directory that does not exist holds no
 * files; any other unreadable directory stops the glob (a rule file
 * silently skipped could be a deny rule lost). */
static int bl_glob_err(const char *path, int err)
{
    (void)path;
    return err != ENOENT && err != ENOTDIR;
}

/* One `include` entry: a file, or a glob of files read in sorted order
 * (matching none is fine: a policy.d directory may be empty). */
static void bl_cfg_include_one(bl_yaml_t *y, bl_pload_t *P, yaml_node_t *e)
{
    char *s = bl_yaml_strdup(y, e, "include", 0);
    char *path = s ? bl_file_abspath(P->cfg->dir, s) : NULL;
    if (path == NULL || strlen(path) >= BL_PATH_MAX) {
        if (s)
            bl_yaml_error(y, e, "include: \"%.100s\": path too long (or out of memory)", s);
    } else if (!bl_glob_is_glob(s, strlen(s))) {
        bl_cfg_include_file(y, P, e, path);
    } else {
        glob_t g;
        int grc = glob(path, 0, bl_glob_err, &g);
        if (grc == 0)
            for (size_t i = 0; i < g.gl_pathc; i++)
                bl_cfg_include_file(y, P, e, g.gl_pathv[i]);
        else if (grc != GLOB_NOMATCH)
            bl_yaml_error(y, e, "include: cannot read the files matching %s", path);
        if (grc == 0 || grc == GLOB_NOMATCH)
            globfree(&g);
    }
    free(path);
    free(s);
}

static void bl_cfg_includes(bl_yaml_t *y, bl_pload_t *P, yaml_node_t *list)
{
    if (list == NULL)
        return;
    if (bl_yaml_is_null(list) || !bl_yaml_expect_seq(y, list, "include"))
        return;
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++)
        bl_cfg_include_one(y, P, bl_yaml_node(y, *it));
}

static int bl_name_cmp(const void *a, const void *b)
{
    const bl_rule_t *x = *(const bl_rule_t *const *)a, *z = *(const bl_rule_t *const *)b;
    int c = strcmp(x->name, z->name);
    return c ? c : (x < z ? -1 : x > z);
}

/* Reports every rule whose name an earlier rule already has. */
static void bl_cfg_rule_dups(bl_yaml_t *y, bl_policy_t *p)
{
    size_t n = 0, total = bl_policy_count(p);
    const bl_rule_t **v = calloc(total + 1, sizeof(*v));
    if (v == NULL) {
        bl_yaml_error(y, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < total; i++)
        if (bl_policy_rule(p, i)->name)
            v[n++] = bl_policy_rule(p, i);
    qsort(v, n, sizeof(*v), bl_name_cmp);
    const bl_rule_t *first = n ? v[0] : NULL; /* the earliest rule of a run of one name */
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i]->name, v[i - 1]->name)) {
            first = v[i];
            continue;
        }
        bl_yaml_t at = { .file = v[i]->file ? v[i]->file : y->file, .errors = y->errors };
        yaml_mark_t m = { 0, v[i]->line - 1, v[i]->col - 1 };
        bl_yaml_error_at(&at, &m, "rule name \"%s\" is already used at %s:%u:%u", v[i]->name,
                         first->file ? first->file : "?", first->line, first->col);
        y->nerrors += at.nerrors;
    }
    free(v);
}

/* ---- guardrails: limits, builtin, dry_run_only ---- */

/* A rate value ("5/m", "50/s burst 100") into a bl_rate_t. */
static int bl_pv_rate(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    const char *why = "is not a rate";
    if (v->type == YAML_SCALAR_NODE &&
        bl_rate_parse((const char *)v->data.scalar.value, v->data.scalar.length, dst, &why) == BL_OK)
        return BL_OK;
    bl_yaml_error(y, v, "%s: \"%.40s\" %s", k->name,
                  v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : "(not a string)", why);
    return BL_ERROR;
}

/* Exact identity or group names into an owned char * array (*out, *n). */
static int bl_pv_limit_names(bl_yaml_t *y, yaml_node_t *v, char ***out, uint32_t *n, const char *what)
{
    bl_patlist_t l = { 0 };
    int rc = bl_pv_list(y, v, &l, what, BL_PV_NAME, 0);
    *out = calloc(l.n + 1, sizeof(char *));
    for (uint32_t i = 0; i < l.n; i++) {
        if (l.v[i].glob) {
            bl_yaml_error(y, v, "%s: \"%.80s\": limits name identities and groups exactly (no globs)", what,
                          l.v[i].s);
            rc = BL_ERROR;
        }
        if (*out && !l.v[i].glob)
            (*out)[(*n)++] = l.v[i].s;
        else
            free(l.v[i].s);
    }
    free(l.v);
    return *out ? rc : BL_ERROR;
}

static int bl_pv_limit_ids(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_limit_t *e = dst;
    return bl_pv_limit_names(y, v, &e->identities, &e->nidentities, k->name);
}

static int bl_pv_limit_groups(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_limit_t *e = dst;
    return bl_pv_limit_names(y, v, &e->groups, &e->ngroups, k->name);
}

#define LIMIT(f) offsetof(bl_limit_t, f)
static const bl_yaml_key_t bl_limit_keys[] = {
    { "name", bl_pv_rule_name, LIMIT(name), 0, 0, NULL, BL_YAML_REQUIRED },
    { "identities", bl_pv_limit_ids, 0, 0, 0, NULL, 0 },
    { "groups", bl_pv_limit_groups, 0, 0, 0, NULL, 0 },
    { "reads", bl_pv_rate, LIMIT(rate[BL_CLASS_READS]), 0, 0, NULL, 0 },
    { "writes", bl_pv_rate, LIMIT(rate[BL_CLASS_WRITES]), 0, 0, NULL, 0 },
    { "exec", bl_pv_rate, LIMIT(rate[BL_CLASS_EXEC]), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Reports a limit whose name an earlier limit has. Quadratic, but only
 * while loading, over at most BL_LIMIT_MAX_ENTRIES entries. */
static void bl_cfg_limit_dup(bl_yaml_t *y, const bl_limits_t *L, const bl_limit_t *e, yaml_node_t *at)
{
    for (size_t i = 0; e->name && i + 1 < bl_limits_count(L); i++) {
        const bl_limit_t *o = bl_limits_entry(L, i);
        if (o->name && !strcmp(o->name, e->name)) {
            bl_yaml_error(y, at, "limit name \"%s\" is already used at line %u", e->name, o->line);
            return;
        }
    }
}

/* Reads one entry of `limits` into a new entry of L. */
static void bl_cfg_limit(bl_yaml_t *y, bl_limits_t *L, yaml_node_t *item)
{
    bl_limit_t *e = bl_limits_add(L);
    if (e == NULL) {
        bl_yaml_error(y, item, "limits: more than %d entries (or out of memory)", BL_LIMIT_MAX_ENTRIES);
        return;
    }
    e->file = strdup(y->file);
    e->line = (unsigned)item->start_mark.line + 1;
    e->col = (unsigned)item->start_mark.column + 1;
    if (bl_yaml_map(y, item, bl_limit_keys, e, NULL) != BL_OK)
        return;
    if (!e->rate[BL_CLASS_READS].count && !e->rate[BL_CLASS_WRITES].count && !e->rate[BL_CLASS_EXEC].count)
        bl_yaml_error(y, item, "limit \"%s\" sets no rate: give reads, writes or exec (e.g. writes: 5/m)",
                      e->name);
    bl_cfg_limit_dup(y, L, e, item);
}

static void bl_cfg_limits(bl_yaml_t *y, bl_pload_t *P)
{
    bl_guard_t *g = bl_policy_guard(P->p);
    yaml_node_t *l = P->limits;
    if (l == NULL || bl_yaml_is_null(l) || !bl_yaml_expect_seq(y, l, "limits"))
        return;
    if ((g->limits = bl_limits_new()) == NULL) {
        bl_yaml_error(y, l, "limits: out of memory");
        return;
    }
    for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++)
        bl_cfg_limit(y, g->limits, bl_yaml_node(y, *it));
    if (bl_limits_compile(g->limits) != BL_OK)
        bl_yaml_error(y, l, "limits: out of memory");
}

typedef struct {
    int blast_radius;
} bl_builtin_t;

static const bl_yaml_key_t bl_builtin_keys[] = {
    { "blast_radius", bl_yaml_bool, offsetof(bl_builtin_t, blast_radius), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const bl_yaml_key_t bl_dry_run_keys[] = {
    { "identities", bl_pv_names, offsetof(bl_guard_t, dry_run_identities), 0, 0, NULL, 0 },
    { "groups", bl_pv_names, offsetof(bl_guard_t, dry_run_groups), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* The guardrails of the policy section (docs/POLICY.md): built-in rules,
 * the dry-run-only mode and rate limits, into the policy's guard. */
static void bl_cfg_guard(bl_yaml_t *y, bl_pload_t *P)
{
    bl_guard_t *g = bl_policy_guard(P->p);
    bl_builtin_t b = { 1 };
    if (P->builtin && !bl_yaml_is_null(P->builtin) &&
        bl_yaml_map(y, P->builtin, bl_builtin_keys, &b, NULL) == BL_OK && !b.blast_radius)
        g->builtins &= ~(unsigned)BL_BUILTIN_BLAST_RADIUS;
    if (P->dry_run && !bl_yaml_is_null(P->dry_run))
        bl_yaml_map(y, P->dry_run, bl_dry_run_keys, g, NULL);
    bl_cfg_limits(y, P);
}

int bl_cfg_policy(bl_yaml_t *y, yaml_node_t *v, bl_config_t *cfg)
{
    bl_pload_t P = { .cfg = cfg, .review_expire_ms = 3600u * 1000u, .review_window_ms = 15u * 60u * 1000u,
                     .review_max_pending = 1000 };
    void *saved_ctx = y->ctx;
    unsigned before = y->nerrors;
    cfg->policy = P.p = bl_policy_new();
    if (P.p == NULL) {
        bl_yaml_error(y, v, "out of memory");
        return BL_ERROR;
    }
    y->ctx = &P;
    if (v != NULL && !bl_yaml_is_null(v) && bl_yaml_map(y, v, bl_policy_keys, &P, NULL) == BL_OK) {
        bl_cfg_rules(y, &P, P.rules);
        bl_cfg_includes(y, &P, P.include);
        bl_cfg_guard(y, &P);
    } else if (v != NULL && !bl_yaml_is_null(v) && v->type != YAML_MAPPING_NODE) {
        y->ctx = saved_ctx;
        return BL_ERROR;
    }
    y->ctx = saved_ctx;
    cfg->review_expire_ms = P.review_expire_ms;
    cfg->review_window_ms = P.review_window_ms;
    cfg->review_max_pending = P.review_max_pending;
    cfg->review_hold_ms = P.review_hold_ms;
    free(cfg->reviewer_group);
    cfg->reviewer_group = P.reviewer_group ? P.reviewer_group : strdup("reviewers");
    bl_cfg_rule_dups(y, P.p);
    if (bl_policy_compile(P.p) != BL_OK)
        bl_yaml_error(y, v, "policy: out of memory");
    return y->nerrors == before ? BL_OK : BL_ERROR;
}
