/*
 * test_guard.c - the guardrails for agents (docs/POLICY.md): token bucket
 * (GCRA) arithmetic on an injected clock, the choice of limit per class,
 * the bounded bucket table, the `limits`, `builtin` and `dry_run_only`
 * config with its file:line:col errors, the built-in blast-radius rule
 * (on by default, off by config, deny still wins), and the dry-run-only
 * checks. No real time is involved anywhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/config.h"
#include "config/schema.h"
#include "config/yaml.h"
#include "kube/reqinfo.h"
#include "policy/limit.h"
#include "policy/policy.h"

#define SEC 1000000000ull
#define T0 (1000 * SEC) /* an arbitrary monotonic start */

/* ---- helpers ---- */

static bl_rate_t rate(const char *s)
{
    bl_rate_t r;
    const char *why;
    assert_int_equal(bl_rate_parse(s, strlen(s), &r, &why), BL_OK);
    return r;
}

/* A set with one entry named `name` for identity `id` (NULL: everyone). */
static bl_limit_t *add(bl_limits_t *L, const char *name, const char *id, const char *group)
{
    bl_limit_t *e = bl_limits_add(L);
    assert_non_null(e);
    e->name = strdup(name);
    if (id) {
        e->identities = calloc(1, sizeof(char *));
        e->identities[e->nidentities++] = strdup(id);
    }
    if (group) {
        e->groups = calloc(1, sizeof(char *));
        e->groups[e->ngroups++] = strdup(group);
    }
    return e;
}

static int check(bl_limits_t *L, const char *actor, bl_class_t c, uint64_t now, bl_limit_verdict_t *v)
{
    return bl_limits_check(L, actor, NULL, 0, c, now, v);
}

static bl_kreq_t *kreq(const char *method, const char *target)
{
    static bl_kreq_t k;
    const char *err = NULL;
    assert_int_equal(bl_kreq_parse(&k, (bl_str_t){ method, strlen(method) },
                                   (bl_str_t){ target, strlen(target) }, &err), BL_OK);
    return &k;
}

/* Reads `text` (a whole byline.yaml holding only `policy:`) into cfg. */
static int load(bl_config_t *cfg, const char *text, bl_buf_t *errs)
{
    static bl_connection_t conn = { .name = "prod" };
    static char dir[] = "/tmp";
    bl_yaml_t y = { .file = "byline.yaml", .dir = dir, .errors = errs };
    memset(cfg, 0, sizeof(*cfg));
    cfg->conns = &conn;
    cfg->nconns = 1;
    cfg->dir = dir;
    bl_buf_init(errs, 1 << 16);
    int rc = bl_yaml_load_mem(&y, text, strlen(text));
    if (rc == BL_OK) {
        yaml_node_t *top = bl_yaml_root(&y);
        rc = bl_cfg_policy(&y, bl_yaml_node(&y, top->data.mapping.pairs.start->value), cfg);
    }
    bl_yaml_free(&y);
    return rc;
}

static void unload(bl_config_t *cfg, bl_buf_t *errs)
{
    bl_policy_free(cfg->policy);
    free(cfg->reviewer_group);
    bl_buf_free(errs);
}

static void assert_has(bl_buf_t *b, const char *needle)
{
    const char *s = bl_buf_cstr(b);
    if (s == NULL || strstr(s, needle) == NULL) {
        fprintf(stderr, "want \"%s\" in:\n%s\n", needle, s ? s : "(null)");
        fail();
    }
}

/* ---- rates ---- */

static void test_rate_parse(void **state)
{
    (void)state;
    bl_rate_t r = rate("50/s burst 100");
    assert_int_equal(r.count, 50);
    assert_int_equal(r.burst, 100);
    assert_int_equal(r.period_ms, 1000);
    r = rate("5/m");
    assert_int_equal(r.burst, 5);
    assert_int_equal(r.period_ms, 60000);
    assert_int_equal(rate("1/h").period_ms, 3600000);
    static const char *const bad[] = { "", "5", "0/s", "5/d", "5/s burst", "5/s burst 0", "5/s  burst 2",
                                       "-1/s", "1000001/s", "5/s burst 2x", "5/sec", "/s", "5/s burst 1000001" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bl_rate_t x;
        const char *why = NULL;
        if (bl_rate_parse(bad[i], strlen(bad[i]), &x, &why) != BL_ERROR || why == NULL) {
            fprintf(stderr, "accepted \"%s\"\n", bad[i]);
            fail();
        }
    }
    char out[48];
    r = rate("50/s burst 100");
    bl_rate_format(&r, out, sizeof(out));
    assert_string_equal(out, "50/s burst 100");
    r = rate("10/m");
    bl_rate_format(&r, out, sizeof(out));
    assert_string_equal(out, "10/m");
}

/* ---- bucket math ---- */

/* 1/m: the first is admitted, the second at once waits 60 s; 59.5 s
 * later the wait rounds up to 1 s; at 60 s one more is admitted. */
static void test_bucket_one_per_minute(void **state)
{
    (void)state;
    bl_limits_t *L = bl_limits_new();
    add(L, "w", "agent-a", NULL)->rate[BL_CLASS_WRITES] = rate("1/m");
    assert_int_equal(bl_limits_compile(L), BL_OK);
    bl_limit_verdict_t v;
    assert_int_equal(check(L, "agent-a", BL_CLASS_WRITES, T0, &v), BL_OK);
    assert_string_equal(v.limit->name, "w");
    assert_int_equal(check(L, "agent-a", BL_CLASS_WRITES, T0, &v), BL_DECLINED);
    assert_int_equal(v.retry_after_s, 60);
    assert_int_equal(check(L, "agent-a", BL_CLASS_WRITES, T0 + 59 * SEC + SEC / 2, &v), BL_DECLINED);
    assert_int_equal(v.retry_after_s, 1);
    assert_int_equal(check(L, "agent-a", BL_CLASS_WRITES, T0 + 60 * SEC, &v), BL_OK);
    assert_int_equal(check(L, "agent-a", BL_CLASS_WRITES, T0 + 60 * SEC, &v), BL_DECLINED);
    /* reads and exec are unlimited for agent-a; other identities too */
    assert_int_equal(check(L, "agent-a", BL_CLASS_READS, T0, &v), BL_OK);
    assert_null(v.limit);
    assert_int_equal(check(L, "agent-b", BL_CLASS_WRITES, T0, &v), BL_OK);
    assert_null(v.limit);
    bl_limits_free(L);
}

/* 50/s burst 100: 100 at once, then one per 20 ms; a long idle refills
 * only up to the burst. */
static void test_bucket_burst(void **state)
{
    (void)state;
    bl_limits_t *L = bl_limits_new();
    add(L, "r", NULL, NULL)->rate[BL_CLASS_READS] = rate("50/s burst 100");
    assert_int_equal(bl_limits_compile(L), BL_OK);
    bl_limit_verdict_t v;
    for (int i = 0; i < 100; i++)
        assert_int_equal(check(L, "x", BL_CLASS_READS, T0, &v), BL_OK);
    assert_int_equal(check(L, "x", BL_CLASS_READS, T0, &v), BL_DECLINED);
    assert_int_equal(v.retry_after_s, 1); /* 20 ms, rounded up */
    assert_int_equal(check(L, "x", BL_CLASS_READS, T0 + 19 * SEC / 1000, &v), BL_DECLINED);
    assert_int_equal(check(L, "x", BL_CLASS_READS, T0 + 20 * SEC / 1000, &v), BL_OK);
    uint64_t later = T0 + 3600 * SEC;
    int n = 0;
    while (check(L, "x", BL_CLASS_READS, later, &v) == BL_OK && n < 1000)
        n++;
    assert_int_equal(n, 100);
    bl_limits_free(L);
}

/* A clock that goes backwards (another worker read it a moment earlier)
 * never admits more than the burst. */
static void test_bucket_clock_behind(void **state)
{
    (void)state;
    bl_limits_t *L = bl_limits_new();
    add(L, "e", NULL, NULL)->rate[BL_CLASS_EXEC] = rate("10/m burst 2");
    assert_int_equal(bl_limits_compile(L), BL_OK);
    bl_limit_verdict_t v;
    assert_int_equal(check(L, "x", BL_CLASS_EXEC, T0 + SEC, &v), BL_OK);
    assert_int_equal(check(L, "x", BL_CLASS_EXEC, T0, &v), BL_DECLINED); /* 6 s per token: seen from T0, */
    assert_int_equal(v.retry_after_s, 1);                                 /* the burst is 1 s away */
    assert_int_equal(check(L, "x", BL_CLASS_EXEC, T0 + SEC, &v), BL_OK);
    assert_int_equal(check(L, "x", BL_CLASS_EXEC, T0 + SEC, &v), BL_DECLINED);
    assert_int_equal(v.retry_after_s, 6);
    bl_limits_free(L);
}

/* Identity entries beat group entries beat defaults, per class; among
 * groups, the earliest entry. */
static void test_limit_precedence(void **state)
{
    (void)state;
    bl_limits_t *L = bl_limits_new();
    add(L, "everyone", NULL, NULL)->rate[BL_CLASS_WRITES] = rate("100/m");
    add(L, "team-b", NULL, "team-b")->rate[BL_CLASS_WRITES] = rate("20/m");
    bl_limit_t *ta = add(L, "team-a", NULL, "team-a");
    ta->rate[BL_CLASS_WRITES] = rate("10/m");
    ta->rate[BL_CLASS_EXEC] = rate("1/m");
    add(L, "bot", "agent-bot", NULL)->rate[BL_CLASS_READS] = rate("5/s");
    assert_int_equal(bl_limits_compile(L), BL_OK);
    char *ab[] = { "team-a", "team-b" }, *ba[] = { "team-b", "team-a" };
    assert_string_equal(bl_limits_find(L, "agent-bot", ab, 2, BL_CLASS_READS)->name, "bot");
    assert_string_equal(bl_limits_find(L, "agent-bot", ab, 2, BL_CLASS_WRITES)->name, "team-b");
    assert_string_equal(bl_limits_find(L, "agent-bot", ba, 2, BL_CLASS_WRITES)->name, "team-b");
    assert_string_equal(bl_limits_find(L, "agent-bot", ab, 2, BL_CLASS_EXEC)->name, "team-a");
    assert_string_equal(bl_limits_find(L, "agent-bot", NULL, 0, BL_CLASS_WRITES)->name, "everyone");
    assert_null(bl_limits_find(L, "agent-bot", NULL, 0, BL_CLASS_EXEC));
    assert_null(bl_limits_find(L, "other", NULL, 0, BL_CLASS_READS));
    assert_null(bl_limits_find(L, NULL, NULL, 0, BL_CLASS_WRITES));
    bl_limits_free(L);
}

/* Memory is bounded: past the table's capacity the identities seen
 * least recently are forgotten, and their buckets start full again. */
static void test_limit_bounded(void **state)
{
    (void)state;
    bl_limits_t *L = bl_limits_new();
    add(L, "all", NULL, NULL)->rate[BL_CLASS_WRITES] = rate("1/h");
    assert_int_equal(bl_limits_compile(L), BL_OK);
    bl_limit_verdict_t v;
    char name[32];
    assert_int_equal(check(L, "agent-0", BL_CLASS_WRITES, T0, &v), BL_OK);
    for (int i = 1; i <= 40000; i++) {
        snprintf(name, sizeof(name), "agent-%d", i);
        assert_int_equal(check(L, name, BL_CLASS_WRITES, T0 + (uint64_t)i, &v), BL_OK);
        if (i == 1) /* still remembered: empty */
            assert_int_equal(check(L, "agent-0", BL_CLASS_WRITES, T0 + 1, &v), BL_DECLINED);
    }
    size_t n = bl_limits_tracked(L);
    assert_true(n <= BL_LIMIT_STRIPES * BL_LIMIT_STRIPE_SLOTS * 3 / 4);
    assert_true(n > BL_LIMIT_STRIPES * BL_LIMIT_STRIPE_SLOTS / 2);
    /* the most recent are remembered (still limited); agent-0 was forgotten */
    assert_int_equal(check(L, "agent-40000", BL_CLASS_WRITES, T0 + 50000, &v), BL_DECLINED);
    assert_int_equal(check(L, "agent-0", BL_CLASS_WRITES, T0 + 50000, &v), BL_OK);
    bl_limits_free(L);
}

static void test_limit_class(void **state)
{
    (void)state;
    assert_int_equal(bl_limit_class(kreq("GET", "/api/v1/namespaces/web/pods?watch=true")), BL_CLASS_READS);
    assert_int_equal(bl_limit_class(kreq("GET", "/apis/apps/v1")), BL_CLASS_READS);
    assert_int_equal(bl_limit_class(kreq("GET", "/version")), BL_CLASS_READS);
    assert_int_equal(bl_limit_class(kreq("PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale")),
                     BL_CLASS_WRITES);
    assert_int_equal(bl_limit_class(kreq("DELETE", "/api/v1/namespaces/web/pods")), BL_CLASS_WRITES);
    assert_int_equal(bl_limit_class(kreq("GET", "/api/v1/namespaces/web/pods/a/exec?command=ls")), BL_CLASS_EXEC);
    assert_int_equal(bl_limit_class(kreq("POST", "/api/v1/namespaces/web/pods/a/attach")), BL_CLASS_EXEC);
    assert_int_equal(bl_limit_class(kreq("POST", "/api/v1/namespaces/web/pods/a/portforward")), BL_CLASS_EXEC);
    assert_int_equal(bl_limit_class(kreq("GET", "/api/v1/namespaces/web/pods/a/log")), BL_CLASS_READS);
}

/* ---- config ---- */

static const char good[] =
    "policy:\n"
    "  limits:\n"
    "    - name: agents\n"
    "      groups: [agents]\n"
    "      reads: 50/s burst 100\n"
    "      writes: 5/s\n"
    "      exec: 10/m\n"
    "    - name: deploybot-writes\n"
    "      identities: [agent-deploybot]\n"
    "      writes: 1/m\n"
    "  dry_run_only:\n"
    "    identities: [agent-new]\n"
    "    groups: [probation]\n"
    "  rules:\n"
    "    - name: all\n"
    "      effect: allow\n";

static void test_config_limits(void **state)
{
    (void)state;
    bl_config_t cfg;
    bl_buf_t errs;
    assert_int_equal(load(&cfg, good, &errs), BL_OK);
    bl_guard_t *g = bl_policy_guard(cfg.policy);
    assert_int_equal(bl_limits_count(g->limits), 2);
    const bl_limit_t *e = bl_limits_entry(g->limits, 1);
    assert_string_equal(e->name, "deploybot-writes");
    assert_int_equal(e->line, 8);
    assert_int_equal(e->col, 7);
    char *groups[] = { "agents" };
    assert_string_equal(bl_limits_find(g->limits, "agent-deploybot", groups, 1, BL_CLASS_WRITES)->name,
                        "deploybot-writes");
    assert_string_equal(bl_limits_find(g->limits, "agent-deploybot", groups, 1, BL_CLASS_READS)->name, "agents");
    assert_int_equal(bl_limits_find(g->limits, "x", groups, 1, BL_CLASS_READS)->rate[BL_CLASS_READS].burst, 100);
    assert_int_equal(g->builtins & BL_BUILTIN_BLAST_RADIUS, BL_BUILTIN_BLAST_RADIUS);
    unload(&cfg, &errs);
}

static void test_config_errors(void **state)
{
    (void)state;
    bl_config_t cfg;
    bl_buf_t errs;
    assert_int_equal(load(&cfg,
                          "policy:\n"
                          "  limits:\n"
                          "    - name: a\n"
                          "      writes: 5/d\n"
                          "    - name: b\n"
                          "      identities: [agent-*]\n"
                          "      reads: 1/s\n"
                          "    - name: c\n"
                          "    - name: a\n"
                          "      exec: 1/s\n"
                          "      exec2: 1/s\n"
                          "    - name: builtin-x\n"
                          "      reads: 1/s\n"
                          "  builtin: {blast_radius: maybe}\n"
                          "  dry_run_only: {people: [x]}\n",
                          &errs), BL_ERROR);
    assert_has(&errs, "byline.yaml:4:15: writes: \"5/d\" is not a rate: write N/s, N/m or N/h");
    assert_has(&errs, "byline.yaml:6:19: identities: \"agent-*\": limits name identities and groups exactly");
    assert_has(&errs, "byline.yaml:8:7: limit \"c\" sets no rate");
    assert_has(&errs, "byline.yaml:11:7: unknown key \"exec2\"");
    assert_has(&errs, "byline.yaml:12:13: name: \"builtin-x\": names starting with builtin- are byline's own");
    assert_has(&errs, "byline.yaml:14:27:");
    assert_has(&errs, "byline.yaml:15:18: unknown key \"people\"");
    unload(&cfg, &errs);
    assert_int_equal(load(&cfg, "policy:\n  limits:\n    - name: a\n      reads: 1/s\n    - name: a\n"
                                "      reads: 2/s\n", &errs), BL_ERROR);
    assert_has(&errs, "byline.yaml:5:7: limit name \"a\" is already used at line 3");
    unload(&cfg, &errs);
    assert_int_equal(load(&cfg, "policy:\n  rules:\n    - name: builtin-blast-radius\n      effect: allow\n",
                          &errs), BL_ERROR);
    assert_has(&errs, "byline.yaml:3:13: name: \"builtin-blast-radius\"");
    unload(&cfg, &errs);
}

/* ---- blast radius ---- */

static bl_decision_t decide(const bl_policy_t *p, const char *method, const char *target, const char *kcmd)
{
    bl_policy_req_t q = { "agent-a", NULL, 0, 0, kreq(method, target) };
    return bl_policy_decide(p, &q, kcmd);
}

static const char allow_all[] = "policy:\n  rules:\n    - name: ops\n      effect: allow\n      verbs: ['*']\n"
                                "      resources: ['*']\n";

static void test_blast_default(void **state)
{
    (void)state;
    bl_config_t cfg;
    bl_buf_t errs;
    assert_int_equal(load(&cfg, allow_all, &errs), BL_OK);
    static const struct { const char *m, *t, *kcmd; } held[] = {
        { "DELETE", "/api/v1/namespaces/web/pods", NULL },                       /* deletecollection */
        { "DELETE", "/apis/apps/v1/deployments", NULL },                         /* in all namespaces */
        { "PATCH", "/api/v1/namespaces/web/pods", NULL },                        /* a patch with no name */
        { "GET", "/api/v1/namespaces/web/pods", "kubectl delete" },              /* kubectl delete --all */
        { "GET", "/api/v1/namespaces/web/pods?labelSelector=app%3Dapi", "kubectl delete" },
    };
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
        bl_decision_t d = decide(cfg.policy, held[i].m, held[i].t, held[i].kcmd);
        if (d.effect != BL_EFFECT_REVIEW || strcmp(d.name, BL_POLICY_BLAST_RULE)) {
            fprintf(stderr, "%s %s: %s by %s\n", held[i].m, held[i].t, bl_effect_word(d.effect), d.name);
            fail();
        }
    }
    static const struct { const char *m, *t, *kcmd; } passed[] = {
        { "DELETE", "/api/v1/namespaces/web/pods/api-0", NULL },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale", NULL },
        { "GET", "/api/v1/namespaces/web/pods", "kubectl get" },
        { "GET", "/api/v1/namespaces/web/pods/api-0", "kubectl delete" },       /* kubectl delete pod x */
        { "GET", "/api/v1/namespaces/web/pods", NULL },
    };
    for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++) {
        bl_decision_t d = decide(cfg.policy, passed[i].m, passed[i].t, passed[i].kcmd);
        if (d.effect != BL_EFFECT_ALLOW) {
            fprintf(stderr, "%s %s: %s by %s\n", passed[i].m, passed[i].t, bl_effect_word(d.effect), d.name);
            fail();
        }
    }
    /* the message says what is held */
    char mb[512];
    bl_buf_t m = { .base = mb, .cap = sizeof(mb), .max = sizeof(mb) };
    bl_policy_req_t q = { "agent-a", NULL, 0, 0, kreq("GET", "/api/v1/namespaces/web/pods") };
    bl_decision_t d = bl_policy_decide(cfg.policy, &q, "kubectl delete");
    assert_int_equal(bl_policy_message(&d, &q, &m), BL_OK);
    assert_int_equal(bl_buf_append(&m, "", 1), BL_OK);
    assert_string_equal(mb, "byline: agent-a needs human review to delete pods in bulk in namespace web "
                            "(rule builtin-blast-radius)");
    /* bl_policy_eval (no Kubectl-Command) still holds a deletecollection */
    bl_policy_req_t q2 = { "agent-a", NULL, 0, 0, kreq("DELETE", "/api/v1/namespaces/web/pods") };
    assert_int_equal(bl_policy_eval(cfg.policy, &q2).effect, BL_EFFECT_REVIEW);
    unload(&cfg, &errs);
}

/* Deny still wins; nothing no rule allows becomes reviewable; off by config. */
static void test_blast_deny_and_off(void **state)
{
    (void)state;
    bl_config_t cfg;
    bl_buf_t errs;
    assert_int_equal(load(&cfg, "policy:\n  rules:\n    - name: ops\n      effect: allow\n      verbs: ['*']\n"
                                "      resources: ['*']\n    - name: no-secrets\n      effect: deny\n"
                                "      resources: [secrets]\n", &errs), BL_OK);
    bl_decision_t d = decide(cfg.policy, "DELETE", "/api/v1/namespaces/web/secrets", NULL);
    assert_int_equal(d.effect, BL_EFFECT_DENY);
    assert_string_equal(d.name, "no-secrets");
    unload(&cfg, &errs);

    assert_int_equal(load(&cfg, "policy:\n  rules:\n    - name: reads\n      effect: allow\n      verbs: [get]\n",
                          &errs), BL_OK);
    d = decide(cfg.policy, "DELETE", "/api/v1/namespaces/web/pods", NULL);
    assert_int_equal(d.effect, BL_EFFECT_DENY);
    assert_null(d.rule);
    unload(&cfg, &errs);

    char text[512];
    snprintf(text, sizeof(text), "%s  builtin:\n    blast_radius: false\n", allow_all);
    assert_int_equal(load(&cfg, text, &errs), BL_OK);
    d = decide(cfg.policy, "DELETE", "/api/v1/namespaces/web/pods", NULL);
    assert_int_equal(d.effect, BL_EFFECT_ALLOW);
    assert_string_equal(d.name, "ops");
    d = decide(cfg.policy, "GET", "/api/v1/namespaces/web/pods", "kubectl delete");
    assert_int_equal(d.effect, BL_EFFECT_ALLOW);
    unload(&cfg, &errs);
}

/* ---- dry-run-only ---- */

static void test_dry_run_only(void **state)
{
    (void)state;
    bl_config_t cfg;
    bl_buf_t errs;
    assert_int_equal(load(&cfg, good, &errs), BL_OK);
    char *prob[] = { "probation" };
    bl_policy_req_t q = { "agent-new", NULL, 0, 0, NULL };
    assert_int_equal(bl_policy_dry_run_only(cfg.policy, &q), 1);
    q.actor = "agent-x";
    assert_int_equal(bl_policy_dry_run_only(cfg.policy, &q), 0);
    q.groups = prob;
    q.ngroups = 1;
    assert_int_equal(bl_policy_dry_run_only(cfg.policy, &q), 1);
    q.actor = NULL;
    assert_int_equal(bl_policy_dry_run_only(cfg.policy, &q), 0);
    assert_int_equal(bl_policy_dry_run_only(NULL, &q), 0);

    const char *scale = "/apis/apps/v1/namespaces/web/deployments/api/scale";
    assert_int_equal(bl_policy_is_real_write(kreq("PATCH", scale)), 1);
    char t[256];
    snprintf(t, sizeof(t), "%s?dryRun=All&fieldManager=kubectl-scale", scale);
    assert_int_equal(bl_policy_is_real_write(kreq("PATCH", t)), 0);
    snprintf(t, sizeof(t), "%s?dryRun=Nope", scale);
    assert_int_equal(bl_policy_is_real_write(kreq("PATCH", t)), 1);
    assert_int_equal(bl_policy_is_real_write(kreq("GET", scale)), 0);
    assert_int_equal(bl_policy_is_real_write(kreq("POST", "/api/v1/namespaces/web/pods/a/exec")), 0);
    /* a delete's dryRun can come in its DeleteOptions body */
    bl_kreq_t *k = kreq("DELETE", "/api/v1/namespaces/web/pods/a");
    static const char opts[] = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"dryRun\":[\"All\"]}";
    bl_kreq_body(k, BL_STR("application/json"), opts, sizeof(opts) - 1);
    assert_int_equal(bl_policy_is_real_write(k), 0);
    unload(&cfg, &errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_parse),
        cmocka_unit_test(test_bucket_one_per_minute),
        cmocka_unit_test(test_bucket_burst),
        cmocka_unit_test(test_bucket_clock_behind),
        cmocka_unit_test(test_limit_precedence),
        cmocka_unit_test(test_limit_bounded),
        cmocka_unit_test(test_limit_class),
        cmocka_unit_test(test_config_limits),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_blast_default),
        cmocka_unit_test(test_blast_deny_and_off),
        cmocka_unit_test(test_dry_run_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
