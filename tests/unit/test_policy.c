/*
 * test_policy.c - the access policy (src/policy, src/config/policy.c): a
 * rule table read by the real loader and judged against requests read by
 * the real request parser, covering every match field, globs, exec argv
 * (exact, prefix, glob), precedence (deny > review > allow), the default
 * deny, included files, the messages, and configuration errors with their
 * file:line:col.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config/config.h"
#include "config/schema.h"
#include "config/yaml.h"
#include "kube/reqinfo.h"
#include "policy/glob.h"
#include "policy/policy.h"

static char root[] = "/tmp/byline-test-policy-XXXXXX";
static char *conn_names[] = { "prod", "staging", "dev" };

/* ---- helpers ---- */

static void put(const char *name, const char *text, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* A config with three connections and DIR = root, as the loader sees it. */
static void fake_config(bl_config_t *cfg, bl_connection_t *conns)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < 3; i++) {
        memset(&conns[i], 0, sizeof(conns[i]));
        conns[i].name = conn_names[i];
    }
    cfg->conns = conns;
    cfg->nconns = 3;
    cfg->dir = root;
}

/* Reads `text` as byline.yaml's `policy:` value. Returns BL_OK/BL_ERROR;
 * the policy is in cfg->policy, the errors in `errs`. */
static int load_policy(bl_config_t *cfg, bl_connection_t *conns, const char *text, bl_buf_t *errs)
{
    bl_yaml_t y = { .file = "byline.yaml", .dir = root, .errors = errs };
    fake_config(cfg, conns);
    bl_buf_init(errs, 1 << 20);
    int rc = bl_yaml_load_mem(&y, text, strlen(text));
    if (rc == BL_OK) {
        yaml_node_t *v = NULL;
        yaml_node_t *top = bl_yaml_root(&y);
        for (yaml_node_pair_t *p = top->data.mapping.pairs.start; p < top->data.mapping.pairs.top; p++)
            if (!strcmp((char *)bl_yaml_node(&y, p->key)->data.scalar.value, "policy"))
                v = bl_yaml_node(&y, p->value);
        rc = bl_cfg_policy(&y, v, cfg);
    }
    bl_yaml_free(&y);
    return rc;
}

/* Frees what bl_cfg_policy() put in the fake config. */
static void unload(bl_config_t *cfg)
{
    bl_policy_free(cfg->policy);
    cfg->policy = NULL;
    free(cfg->reviewer_group);
    cfg->reviewer_group = NULL;
}

static void assert_has(bl_buf_t *b, const char *needle)
{
    const char *s = bl_buf_cstr(b);
    if (s == NULL || strstr(s, needle) == NULL) {
        fprintf(stderr, "want \"%s\" in:\n%s\n", needle, s ? s : "(null)");
        fail();
    }
}

static int count_lines(bl_buf_t *b)
{
    int n = 0;
    for (size_t i = 0; i < bl_buf_size(b); i++)
        n += bl_buf_data(b)[i] == '\n';
    return n;
}

/* Decides METHOD TARGET (optional JSON body) for actor/groups/connection. */
static bl_decision_t decide(const bl_policy_t *p, const char *actor, const char *groups, int conn,
                            const char *method, const char *target, const char *body, bl_kreq_t *k)
{
    static char gbuf[256];
    static char *gv[8];
    size_t ng = 0;
    const char *why;
    snprintf(gbuf, sizeof(gbuf), "%s", groups ? groups : "");
    for (char *s = strtok(gbuf, ","); s && ng < 8; s = strtok(NULL, ","))
        gv[ng++] = s;
    assert_int_equal(bl_kreq_parse(k, (bl_str_t){ method, strlen(method) },
                                   (bl_str_t){ target, strlen(target) }, &why), BL_OK);
    bl_kreq_body(k, body ? BL_STR("application/json") : BL_STR_NULL, body, body ? strlen(body) : 0);
    bl_policy_req_t q = { actor, gv, ng, conn, k };
    return bl_policy_eval(p, &q);
}

/* ---- the rule table ---- */

static const char TABLE[] =
    "policy:\n"
    "  include: [inc/*.yaml]\n"
    "  rules:\n"
    "    - name: discovery\n"
    "      effect: allow\n"
    "      verbs: [get]\n"
    "      nonResourcePaths: [/api, /api/*, /apis, /apis/*, /version]\n"
    "    - name: ops-health\n"
    "      effect: allow\n"
    "      groups: [ops]\n"
    "      nonResourcePaths: [\"/healthz*\"]\n"
    "    - name: reader-get\n"
    "      effect: allow\n"
    "      identities: [reader]\n"
    "      verbs: [get, list, watch]\n"
    "      resources: [\"*\"]\n"
    "    - name: reader-no-secrets\n"
    "      effect: deny\n"
    "      identities: [reader]\n"
    "      resources: [secrets]\n"
    "    - name: reader-cat-logs\n"
    "      effect: allow\n"
    "      identities: [reader]\n"
    "      verbs: [create]\n"
    "      resources: [pods/exec]\n"
    "      command:\n"
    "        argvGlob: [cat, /var/log/*]\n"
    "    - name: reader-exact\n"
    "      effect: allow\n"
    "      identities: reader\n"
    "      command: { argv: [uptime] }\n"
    "    - name: reader-prefix\n"
    "      effect: allow\n"
    "      identities: [reader]\n"
    "      command: { argvPrefix: [ls, -la] }\n"
    "    - name: deployers-scale\n"
    "      effect: allow\n"
    "      groups: [deployers]\n"
    "      verbs: [get, patch, update]\n"
    "      apiGroups: [apps]\n"
    "      resources: [deployments, deployments/scale, \"*/status\"]\n"
    "      namespaces: [web, \"team-*\", kube-system]\n"
    "    - name: deployers-names\n"
    "      effect: allow\n"
    "      groups: [deployers]\n"
    "      verbs: [delete]\n"
    "      apiGroups: [\"\"]\n"
    "      resources: [configmaps]\n"
    "      namespaces: [web]\n"
    "      names: [\"tmp-*\", exact-one]\n"
    "    - name: prod-kube-system\n"
    "      effect: deny\n"
    "      connections: [prod]\n"
    "      groups: [deployers]\n"
    "      namespaces: [kube-system]\n"
    "    - name: review-deletes\n"
    "      effect: review\n"
    "      identities: [\"agent-*\"]\n"
    "      verbs: [delete]\n"
    "    - name: agents-all\n"
    "      effect: allow\n"
    "      identities: [\"agent-*\"]\n"
    "    - name: locked-1\n"
    "      effect: deny\n"
    "      identities: [\"agent-*\"]\n"
    "      namespaces: [locked]\n"
    "    - name: locked-2\n"
    "      effect: deny\n"
    "      identities: [agent-x]\n"
    "      namespaces: [locked]\n"
    "    - name: no-prod-names\n"
    "      effect: deny\n"
    "      identities: [\"agent-*\"]\n"
    "      verbs: [create]\n"
    "      names: [\"prod-*\"]\n"
    "    - name: teams-configmaps\n"
    "      effect: allow\n"
    "      groups: [\"team-*\"]\n"
    "      verbs: [list]\n"
    "      resources: [configmaps]\n";

static const char INCLUDED[] =
    "# an included file holds rules only\n"
    "rules:\n"
    "  - name: included-allow\n"
    "    effect: allow\n"
    "    identities: [inc-user]\n"
    "    verbs: [list]\n"
    "    resources: [pods]\n";

typedef struct {
    const char *actor, *groups;
    int conn;
    const char *method, *target, *body;
    bl_effect_t effect;
    const char *rule;
} row_t;

#define A BL_EFFECT_ALLOW
#define D BL_EFFECT_DENY
#define R BL_EFFECT_REVIEW
#define EXEC "/api/v1/namespaces/web/pods/p/exec?"
#define DEF BL_POLICY_DEFAULT_RULE

static const row_t ROWS[] = {
    /* non-resource paths, discovery included */
    { "reader", "", 0, "GET", "/version", NULL, A, "discovery" },
    { "reader", "", 0, "GET", "/apis/apps/v1", NULL, A, "discovery" },
    { "reader", "", 0, "POST", "/version", NULL, D, DEF },
    { "reader", "", 0, "GET", "/healthz", NULL, D, DEF },
    { "someone", "ops", 0, "GET", "/healthz/etcd", NULL, A, "ops-health" },
    { "someone", "ops", 0, "GET", "/healt%68z", NULL, A, "ops-health" },
    /* verbs, resources, identities; deny wins */
    { "reader", "", 0, "GET", "/api/v1/namespaces/web/pods", NULL, A, "reader-get" },
    { "reader", "", 0, "GET", "/api/v1/watch/namespaces/web/pods", NULL, A, "reader-get" },
    { "reader", "", 0, "GET", "/api/v1/namespaces/web/pods/p/log", NULL, A, "reader-get" },
    { "reader", "", 0, "GET", "/api/v1/namespaces/web/secrets/s", NULL, D, "reader-no-secrets" },
    { "reader", "", 0, "DELETE", "/api/v1/namespaces/web/pods/x", NULL, D, DEF },
    /* exec: argvGlob, argv, argvPrefix; SPDY POST and WebSocket GET alike */
    { "reader", "", 0, "POST", EXEC "command=cat&command=/var/log/app.log", NULL, A, "reader-cat-logs" },
    { "reader", "", 0, "GET", EXEC "command=cat&command=/var/log/app.log", NULL, A, "reader-cat-logs" },
    { "reader", "", 0, "POST", EXEC "command=cat&command=/var/log/../../etc/shadow", NULL, D, DEF },
    { "reader", "", 0, "GET", EXEC "command=cat&command=/var/log/../../etc/shadow", NULL, D, DEF },
    { "reader", "", 0, "POST", EXEC "command=cat&command=/var/log/.hidden", NULL, D, DEF },
    { "reader", "", 0, "POST", EXEC "command=cat&command=/var/log/a/b", NULL, D, DEF },
    { "reader", "", 0, "POST", EXEC "command=cat&command=/var/log/a&command=/etc/passwd", NULL, D, DEF },
    { "reader", "", 0, "POST", EXEC "command=sh&command=-c&command=cat+/var/log/a", NULL, D, DEF },
    { "reader", "", 0, "POST", EXEC "command=uptime", NULL, A, "reader-exact" },
    { "reader", "", 0, "POST", EXEC "command=uptime&command=-p", NULL, D, DEF },
    { "reader", "", 0, "POST", EXEC "command=ls&command=-la&command=/tmp", NULL, A, "reader-prefix" },
    { "reader", "", 0, "GET", EXEC "command=ls&command=-la", NULL, A, "reader-prefix" },
    { "reader", "", 0, "POST", EXEC "command=ls", NULL, D, DEF },
    { "reader", "", 0, "POST", "/api/v1/namespaces/web/pods/p/attach?stdin=true", NULL, D, DEF },
    { "reader", "", 0, "GET", "/api/v1/namespaces/web/pods/p/portforward?ports=80", NULL, D, DEF },
    /* groups, apiGroups, resources with subresources, namespaces, names */
    { "d1", "deployers", 1, "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale", NULL, A, "deployers-scale" },
    { "d1", "x,deployers", 1, "GET", "/apis/apps/v1/namespaces/team-a/deployments/api", NULL, A, "deployers-scale" },
    { "d1", "deployers", 1, "PATCH", "/apis/apps/v1/namespaces/other/deployments/api", NULL, D, DEF },
    { "d1", "deployers", 1, "PATCH", "/apis/extensions/v1beta1/namespaces/web/deployments/api", NULL, D, DEF },
    { "d1", "deployers", 1, "PUT", "/apis/apps/v1/namespaces/web/statefulsets/s/status", NULL, A, "deployers-scale" },
    { "d1", "deployers", 1, "DELETE", "/apis/apps/v1/namespaces/web/deployments/api", NULL, D, DEF },
    { "d1", "deployers", 1, "DELETE", "/api/v1/namespaces/web/configmaps/tmp-1", NULL, A, "deployers-names" },
    { "d1", "deployers", 1, "DELETE", "/api/v1/namespaces/web/configmaps/exact-one", NULL, A, "deployers-names" },
    { "d1", "deployers", 1, "DELETE", "/api/v1/namespaces/web/configmaps/other", NULL, D, DEF },
    { "d1", "deployers", 1, "DELETE", "/api/v1/namespaces/web/configmaps", NULL, D, DEF },
    /* connections */
    { "d1", "deployers", 1, "GET", "/apis/apps/v1/namespaces/kube-system/deployments/x", NULL, A, "deployers-scale" },
    { "d1", "deployers", 0, "GET", "/apis/apps/v1/namespaces/kube-system/deployments/x", NULL, D, "prod-kube-system" },
    { "d1", "deployers", -1, "GET", "/apis/apps/v1/namespaces/kube-system/deployments/x", NULL, A, "deployers-scale" },
    /* review beats allow; deny beats review; the first rule of the winning effect names it */
    { "agent-x", "", 0, "DELETE", "/api/v1/namespaces/web/pods/p", NULL, R, "review-deletes" },
    { "agent-x", "", 0, "GET", "/api/v1/namespaces/web/pods/p", NULL, A, "agents-all" },
    { "agent-x", "", 0, "DELETE", "/api/v1/namespaces/locked/pods/p", NULL, D, "locked-1" },
    { "agent-x", "", 0, "GET", "/api/v1/namespaces/locked/pods", NULL, D, "locked-1" },
    /* a create's name comes from its body; unknown, it matches deny rules only */
    { "agent-x", "", 0, "POST", "/api/v1/namespaces/web/configmaps", "{\"metadata\":{\"name\":\"prod-db\"}}", D, "no-prod-names" },
    { "agent-x", "", 0, "POST", "/api/v1/namespaces/web/configmaps", "{\"metadata\":{\"name\":\"dev-db\"}}", A, "agents-all" },
    { "agent-x", "", 0, "POST", "/api/v1/namespaces/web/configmaps", NULL, D, "no-prod-names" },
    /* glob groups, included files, nobody */
    { "u", "team-red", 0, "GET", "/api/v1/namespaces/web/configmaps", NULL, A, "teams-configmaps" },
    { "u", "red-team", 0, "GET", "/api/v1/namespaces/web/configmaps", NULL, D, DEF },
    { "inc-user", "", 0, "GET", "/api/v1/namespaces/web/pods", NULL, A, "included-allow" },
    { "inc-user", "", 0, "GET", "/api/v1/namespaces/web/pods/p", NULL, D, DEF },
    { "nobody", "", 0, "GET", "/api/v1/pods", NULL, D, DEF },
    { NULL, "", 0, "GET", "/api/v1/pods", NULL, D, DEF },
};

static void test_rule_table(void **state)
{
    bl_config_t cfg;
    bl_connection_t conns[3];
    bl_buf_t errs;
    bl_kreq_t *k = malloc(sizeof(*k));
    (void)state;
    char inc[600];
    snprintf(inc, sizeof(inc), "%s/inc", root);
    assert_int_equal(mkdir(inc, 0700), 0);
    put("inc/10-extra.yaml", INCLUDED, 0600);
    int rc = load_policy(&cfg, conns, TABLE, &errs);
    if (rc != BL_OK)
        print_error("%s\n", bl_buf_cstr(&errs));
    assert_int_equal(rc, BL_OK);
    assert_int_equal(bl_policy_count(cfg.policy), 17);
    for (size_t i = 0; i < BL_ARRAY_LEN(ROWS); i++) {
        const row_t *r = &ROWS[i];
        bl_decision_t d = decide(cfg.policy, r->actor, r->groups, r->conn, r->method, r->target, r->body, k);
        if (d.effect != r->effect || strcmp(d.name, r->rule)) {
            print_error("row %zu: %s %s %s: got %s (%s), want %s (%s)\n", i, r->actor ? r->actor : "-",
                        r->method, r->target, bl_effect_word(d.effect), d.name, bl_effect_word(r->effect), r->rule);
            fail();
        }
        assert_true(d.rule == NULL ? !strcmp(d.name, DEF) : d.rule == bl_policy_find(cfg.policy, d.name));
    }
    free(k);
    unload(&cfg);
    bl_buf_free(&errs);
}

/* No rules, or no policy at all: everything is denied. */
static void test_default_deny(void **state)
{
    bl_config_t cfg;
    bl_connection_t conns[3];
    bl_buf_t errs;
    bl_kreq_t *k = malloc(sizeof(*k));
    (void)state;
    assert_int_equal(load_policy(&cfg, conns, "listen: x\n", &errs), BL_OK);
    assert_int_equal(bl_policy_count(cfg.policy), 0);
    bl_decision_t d = decide(cfg.policy, "a", "", 0, "GET", "/version", NULL, k);
    assert_int_equal(d.effect, BL_EFFECT_DENY);
    assert_null(d.rule);
    assert_string_equal(d.name, "default-deny");
    d = decide(NULL, "a", "", 0, "GET", "/api", NULL, k);
    assert_int_equal(d.effect, BL_EFFECT_DENY);
    bl_policy_req_t q = { "a", NULL, 0, 0, NULL }; /* a target byline did not understand */
    unload(&cfg);
    assert_int_equal(load_policy(&cfg, conns, "policy:\n  rules:\n    - {name: all, effect: allow}\n", &errs), BL_OK);
    assert_int_equal(bl_policy_eval(cfg.policy, &q).effect, BL_EFFECT_DENY);
    assert_int_equal(decide(cfg.policy, "a", "", 0, "DELETE", "/api/v1/nodes/n", NULL, k).effect, BL_EFFECT_ALLOW);
    unload(&cfg);
    bl_buf_free(&errs);
    free(k);
}

/* ---- globs ---- */

static void test_glob(void **state)
{
    static const struct { const char *pat, *s; unsigned flags; int want; } cases[] = {
        { "*", "", 0, 1 }, { "*", "abc", 0, 1 }, { "a*c", "abbbc", 0, 1 }, { "a*c", "abbb", 0, 0 },
        { "a?c", "abc", 0, 1 }, { "a?c", "ac", 0, 0 }, { "[a-c]x", "bx", 0, 1 }, { "[!a-c]x", "bx", 0, 0 },
        { "[^a-c]x", "dx", 0, 1 }, { "[]]", "]", 0, 1 }, { "\\*", "*", 0, 1 }, { "\\*", "a", 0, 0 },
        { "/apis/*", "/apis/apps/v1", 0, 1 }, { "/healthz*", "/healthz/etcd", 0, 1 },
        { "*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0 },
        { "tmp-*", "tmp-", 0, 1 }, { "tmp-*", "tmp", 0, 0 },
        /* paths: no '/' and no leading '.' of a component for wildcards */
        { "/var/log/*", "/var/log/app.log", BL_GLOB_PATH, 1 },
        { "/var/log/*", "/var/log/a/b", BL_GLOB_PATH, 0 },
        { "/var/log/*", "/var/log/../../etc/shadow", BL_GLOB_PATH, 0 },
        { "/var/log/*", "/var/log/..", BL_GLOB_PATH, 0 },
        { "/var/log/*", "/var/log/.hidden", BL_GLOB_PATH, 0 },
        { "/var/log/?hidden", "/var/log/.hidden", BL_GLOB_PATH, 0 },
        { "/var/log/[.]hidden", "/var/log/.hidden", BL_GLOB_PATH, 0 },
        { "/var/log/.*", "/var/log/.hidden", BL_GLOB_PATH, 1 },
        { "/var/log/*/*.log", "/var/log/../x.log", BL_GLOB_PATH, 0 },
        { "/var/log/*/*.log", "/var/log/nginx/x.log", BL_GLOB_PATH, 1 },
        { "*/scale", "deployments/scale", BL_GLOB_PATH, 1 },
        { "pods*", "pods/exec", BL_GLOB_PATH, 0 },
        { "a*b*c", "a/b/c", BL_GLOB_PATH, 0 }, { "a*", "a.b", BL_GLOB_PATH, 1 },
    };
    (void)state;
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++) {
        int got = bl_glob_match(cases[i].pat, strlen(cases[i].pat), cases[i].s, strlen(cases[i].s), cases[i].flags);
        if (got != cases[i].want) {
            print_error("glob %zu: \"%s\" vs \"%s\": got %d\n", i, cases[i].pat, cases[i].s, got);
            fail();
        }
    }
    assert_null(bl_glob_check("a[b]c", 5));
    assert_non_null(bl_glob_check("a[bc", 4));
    assert_non_null(bl_glob_check("ab\\", 3));
    assert_true(bl_glob_is_glob("a*", 2));
    assert_false(bl_glob_is_glob("pods/exec", 9));
}

/* ---- messages ---- */

static void message(const bl_policy_t *p, const char *actor, const char *method, const char *target,
                    const char *want)
{
    bl_kreq_t *k = malloc(sizeof(*k));
    char buf[512];
    bl_buf_t b = { .base = buf, .cap = sizeof(buf) - 1, .max = sizeof(buf) - 1 };
    bl_decision_t d = decide(p, actor, "", 0, method, target, NULL, k);
    bl_policy_req_t q = { actor, NULL, 0, 0, k };
    assert_int_equal(bl_policy_message(&d, &q, &b), BL_OK);
    buf[b.len] = '\0';
    assert_string_equal(buf, want);
    assert_true(b.len <= 255);
    free(k);
}

static void test_messages(void **state)
{
    bl_config_t cfg;
    bl_connection_t conns[3];
    bl_buf_t errs;
    char longname[300], target[400];
    (void)state;
    assert_int_equal(load_policy(&cfg, conns,
                                 "policy:\n  rules:\n"
                                 "    - {name: reporting-read-only, effect: deny, identities: [agent-reporting], verbs: [delete]}\n"
                                 "    - {name: secret-rule-of-another, effect: deny, identities: [someone-else]}\n"
                                 "    - {name: ns-review, effect: review, resources: [namespaces], verbs: [delete]}\n",
                                 &errs), BL_OK);
    message(cfg.policy, "agent-reporting", "DELETE", "/api/v1/namespaces/web/pods/x",
            "byline: agent-reporting may not delete pods in namespace web (rule reporting-read-only)");
    message(cfg.policy, "agent-reporting", "GET", "/api/v1/namespaces/web/pods/x",
            "byline: agent-reporting may not get pods in namespace web: no rule allows it (default deny)");
    message(cfg.policy, "agent-reporting", "PATCH", "/apis/apps/v1/namespaces/kube-system/deployments/d/scale",
            "byline: agent-reporting may not patch deployments.apps/scale in namespace kube-system: no rule "
            "allows it (default deny)");
    message(cfg.policy, "agent-reporting", "GET", "/api/v1/namespaces/web/pods/api-0/exec?command=sh&command=-c&command=rm+-rf+/",
            "byline: agent-reporting may not exec sh -c 'rm -rf /' in pod api-0 in namespace web: no rule allows "
            "it (default deny)");
    message(cfg.policy, "a", "POST", "/api/v1/namespaces/web/pods/api-0/portforward?ports=80",
            "byline: a may not port-forward pod api-0 in namespace web: no rule allows it (default deny)");
    message(cfg.policy, "a", "GET", "/api/v1/pods", "byline: a may not list pods in all namespaces: no rule allows "
                                                    "it (default deny)");
    message(cfg.policy, "a", "GET", "/api/v1/nodes", "byline: a may not list nodes: no rule allows it (default deny)");
    message(cfg.policy, "a", "GET", "/version", "byline: a may not get /version: no rule allows it (default deny)");
    message(cfg.policy, "a", "DELETE", "/api/v1/namespaces/web",
            "byline: a needs human review to delete namespace web (rule ns-review)");
    /* a hostile name is cut, never the rule; quotes and controls become '?' */
    memset(longname, 'n', 253);
    longname[253] = '\0';
    snprintf(target, sizeof(target), "/api/v1/namespaces/%.60s/pods/%s", longname, longname);
    bl_kreq_t *k = malloc(sizeof(*k));
    char buf[512];
    bl_buf_t b = { .base = buf, .cap = sizeof(buf) - 1, .max = sizeof(buf) - 1 };
    bl_decision_t d = decide(cfg.policy, "agent-reporting", "", 0, "DELETE", target, NULL, k);
    bl_policy_req_t q = { "agent-reporting", NULL, 0, 0, k };
    assert_int_equal(bl_policy_message(&d, &q, &b), BL_OK);
    buf[b.len] = '\0';
    assert_true(b.len <= 255);
    assert_non_null(strstr(buf, "(rule reporting-read-only)"));
    b.len = 0;
    d = decide(cfg.policy, "x", "", 0, "POST", "/api/v1/namespaces/web/pods/p/exec?command=%22%0A%1b", NULL, k);
    assert_int_equal(bl_policy_message(&d, &q, &b), BL_OK);
    buf[b.len] = '\0';
    for (size_t i = 0; i < b.len; i++)
        assert_true(buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '"');
    assert_null(strstr(buf, "secret-rule-of-another"));
    free(k);
    unload(&cfg);
    bl_buf_free(&errs);
}

/* ---- configuration errors, each with its file:line:col ---- */

static void expect_errors(const char *text, int nerr, const char *const *want)
{
    bl_config_t cfg;
    bl_connection_t conns[3];
    bl_buf_t errs;
    assert_int_equal(load_policy(&cfg, conns, text, &errs), BL_ERROR);
    for (; *want; want++)
        assert_has(&errs, *want);
    if (count_lines(&errs) != nerr) {
        print_error("want %d errors, got:\n%s\n", nerr, bl_buf_cstr(&errs));
        fail();
    }
    unload(&cfg);
    bl_buf_free(&errs);
}

static void test_errors(void **state)
{
    (void)state;
    /* every mistake in one run, each where it is */
    expect_errors("policy:\n"
                  "  rules:\n"
                  "    - name: a\n"
                  "      effect: permit\n"
                  "      verbs: [get, exec]\n"
                  "      connections: [nowhere]\n"
                  "    - effect: allow\n"
                  "      identities: [Agent-X]\n"
                  "      resources: [pods/exec/x]\n"
                  "    - name: b c\n"
                  "      effect: allow\n"
                  "      nonResourcePaths: [healthz]\n"
                  "      namespaces: [web]\n"
                  "    - name: a\n"
                  "      effect: deny\n"
                  "      names: []\n"
                  "      groupz: [x]\n"
                  "      command: {argv: [ls], argvGlob: [ls]}\n"
                  "    - name: d\n"
                  "      effect: allow\n"
                  "      identities:\n"
                  "      namespaces: [\"a[b\"]\n",
                  15,
                  (const char *const[]){
                      "byline.yaml:4:15: effect: expected allow, deny or review",
                      "byline.yaml:5:20: verbs: \"exec\" is not a verb",
                      "byline.yaml:6:21: connections: \"nowhere\" is not a connection in byline.yaml",
                      "byline.yaml:7:7: missing required key \"name\"",
                      "byline.yaml:8:20: identities: \"Agent-X\" can never match",
                      "byline.yaml:9:19: resources: \"pods/exec/x\" is not a resource",
                      "byline.yaml:10:13: name: \"b c\" is not a rule name",
                      "byline.yaml:12:26: nonResourcePaths: \"healthz\" is not a path",
                      "byline.yaml:12:25: nonResourcePaths: a rule is about non-resource paths or about resources",
                      "byline.yaml:16:14: names: an empty list matches nothing",
                      "byline.yaml:17:7: unknown key \"groupz\"",
                      "byline.yaml:18:39: command: give one of argv, argvPrefix and argvGlob",
                      "byline.yaml:14:7: rule name \"a\" is already used at byline.yaml:3:7",
                      "byline.yaml:21:18: identities: expected a list of strings",
                      "byline.yaml:22:20: namespaces: \"a[b\" has a [ without its ]",
                      NULL });
    expect_errors("policy: [x]\n", 1, (const char *const[]){ "byline.yaml:1:9:", NULL });
    expect_errors("policy:\n  rules: {a: b}\n", 1, (const char *const[]){ "byline.yaml:2:10: rules:", NULL });
    expect_errors("policy:\n  rules:\n    - name: default-deny\n      effect: allow\n", 1,
                  (const char *const[]){ "byline.yaml:3:13: name: \"default-deny\" is the implicit rule", NULL });
    expect_errors("policy:\n  rules:\n    - name: x\n      effect: allow\n      command: {argvPrefix: []}\n", 1,
                  (const char *const[]){ "byline.yaml:5:29: argvPrefix: an empty list matches nothing", NULL });
    expect_errors("policy:\n  rules:\n    - name: x\n      effect: allow\n      command: {}\n", 1,
                  (const char *const[]){ "byline.yaml:5:16: command: give one of", NULL });
}

/* While byline.yaml is read, a connection whose name was missing (an
 * error already reported) is in the array without a name. */
static void test_unnamed_connection(void **state)
{
    bl_config_t cfg;
    bl_connection_t conns[3];
    bl_buf_t errs;
    bl_yaml_t y = { .file = "byline.yaml", .dir = root, .errors = &errs };
    static const char text[] = "policy:\n  rules:\n    - {name: a, effect: allow, connections: [dev, staging]}\n";
    (void)state;
    fake_config(&cfg, conns);
    conns[1].name = NULL;
    bl_buf_init(&errs, 4096);
    assert_int_equal(bl_yaml_load_mem(&y, text, strlen(text)), BL_OK);
    yaml_node_t *top = bl_yaml_root(&y);
    assert_int_equal(bl_cfg_policy(&y, bl_yaml_node(&y, top->data.mapping.pairs.start[0].value), &cfg), BL_ERROR);
    assert_has(&errs, "byline.yaml:3:51: connections: \"staging\" is not a connection in byline.yaml");
    assert_int_equal(count_lines(&errs), 1);
    bl_yaml_free(&y);
    unload(&cfg);
    bl_buf_free(&errs);
}

/* Included files: their own errors name them; a missing one, one others
 * may write, and a duplicate name across files are errors. */
static void test_include_errors(void **state)
{
    char dir[600];
    (void)state;
    snprintf(dir, sizeof(dir), "%s/more", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    put("more/a.yaml", "rules:\n  - name: dup\n    effect: allow\n", 0600);
    put("more/b.yaml", "rules:\n  - name: dup\n    effect: allow\n  - name: z\n    effect: nope\n", 0600);
    put("more/c.yaml", "include: [x]\nrules: []\n", 0600);
    put("more/open.yaml", "rules: []\n", 0666);
    char errs_want[4][700];
    snprintf(errs_want[0], sizeof(errs_want[0]), "%s/more/b.yaml:5:13: effect: expected allow, deny or review", root);
    snprintf(errs_want[1], sizeof(errs_want[1]), "%s/more/b.yaml:2:5: rule name \"dup\" is already used at %s/more/a.yaml:2:5",
             root, root);
    snprintf(errs_want[2], sizeof(errs_want[2]), "%s/more/c.yaml:1:1: unknown key \"include\"", root);
    snprintf(errs_want[3], sizeof(errs_want[3]), "byline.yaml:4:7: include: %s/missing.yaml does not exist", root);
    expect_errors("policy:\n  include:\n    - \"more/[abc].yaml\"\n    - missing.yaml\n", 4,
                  (const char *const[]){ errs_want[0], errs_want[1], errs_want[2], errs_want[3], NULL });
    expect_errors("policy:\n  include: [more/open.yaml]\n", 1,
                  (const char *const[]){ "is writable by other users, who could grant themselves access", NULL });
    /* a glob that matches nothing is fine (an empty policy.d) */
    bl_config_t cfg;
    bl_connection_t conns[3];
    bl_buf_t errs;
    assert_int_equal(load_policy(&cfg, conns, "policy:\n  include: [\"none.d/*.yaml\"]\n", &errs), BL_OK);
    unload(&cfg);
    bl_buf_free(&errs);
}

/* Many identities and rules: each request sees only its own buckets, and
 * the answer is the same as a linear scan would give. */
static void test_many(void **state)
{
    bl_policy_t *p = bl_policy_new();
    bl_kreq_t *k = malloc(sizeof(*k));
    char name[64];
    const char *why;
    (void)state;
    for (int i = 0; i < 2000; i++) {
        bl_rule_t *r = bl_policy_rule_add(p);
        assert_non_null(r);
        snprintf(name, sizeof(name), "r%d", i);
        r->name = strdup(name);
        r->effect = i % 7 == 0 ? BL_EFFECT_DENY : BL_EFFECT_ALLOW;
        r->identities.v = calloc(1, sizeof(bl_pat_t));
        snprintf(name, sizeof(name), "agent-%d", i % 1000);
        r->identities.v[0] = (bl_pat_t){ strdup(name), (uint32_t)strlen(name), 0 };
        r->identities.n = 1;
        r->namespaces.v = calloc(1, sizeof(bl_pat_t));
        snprintf(name, sizeof(name), "ns-%d", i / 1000);
        r->namespaces.v[0] = (bl_pat_t){ strdup(name), (uint32_t)strlen(name), 0 };
        r->namespaces.n = 1;
    }
    assert_int_equal(bl_policy_compile(p), BL_OK);
    assert_null(bl_policy_rule_add(p)); /* compiled: closed */
    assert_int_equal(bl_kreq_parse(k, BL_STR("GET"), BL_STR("/api/v1/namespaces/ns-1/pods"), &why), BL_OK);
    for (int a = 0; a < 1000; a += 37) {
        snprintf(name, sizeof(name), "agent-%d", a);
        bl_policy_req_t q = { name, NULL, 0, 0, k };
        bl_decision_t d = bl_policy_eval(p, &q);
        int ri = 1000 + a; /* the only rule for this agent in ns-1 */
        assert_int_equal(d.effect, ri % 7 == 0 ? BL_EFFECT_DENY : BL_EFFECT_ALLOW);
        assert_ptr_equal(d.rule, bl_policy_rule(p, (size_t)ri));
    }
    bl_policy_req_t q = { "agent-1000", NULL, 0, 0, k };
    assert_null(bl_policy_eval(p, &q).rule);
    free(k);
    bl_policy_free(p);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[600];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_default_deny),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_unnamed_connection),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
