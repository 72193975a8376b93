/*
 * policy_eval.c - what one policy decision costs: 1,000 rules and 1,000
 * identities, read by the real loader (src/config/policy.c) and judged
 * against requests read by the real parser, as `byline serve` does per
 * request. Prints nanoseconds per evaluation for a typical mix and for the
 * worst case byline's index allows (every rule applies to the requester),
 * and the whole decision a request pays for: the evaluation plus the
 * guardrails (dry-run-only check and the rate-limit bucket, 1,000 limits
 * naming one identity each plus a group default), single-threaded and with
 * BL_THREADS threads sharing the buckets.
 *
 *   make B=build bench-policy   (or build/bench/policy_eval [ROUNDS [0|1]]: one case)
 *
 * Timing lives here, never in the unit tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "config/config.h"
#include "config/schema.h"
#include "config/yaml.h"
#include "kube/reqinfo.h"
#include "policy/limit.h"
#include "policy/policy.h"
#include <pthread.h>

#define NIDS   1000
#define NRULES 1000
#define NREQS  64

static char *conn_names[] = { "prod", "staging" };

/* 1,000 rules: one per identity (exact names, resources, namespaces with a
 * glob, an exec argv glob every tenth), plus group rules and a few rules
 * that name no identity (discovery, a deny on kube-system). */
static void policy_yaml(bl_buf_t *b, int worst)
{
    bl_buf_puts(b, "policy:\n  rules:\n"
                   "    - {name: discovery, effect: allow, verbs: [get], nonResourcePaths: [/api, /api/*, /apis, /apis/*, /version]}\n"
                   "    - {name: no-kube-system, effect: deny, namespaces: [kube-system], verbs: [create, update, patch, delete]}\n");
    for (int i = 0; i < NRULES - 2; i++) {
        const char *subject = worst ? "groups: [everyone]" : NULL;
        char who[64];
        if (!worst && i % 5 == 4)
            snprintf(who, sizeof(who), "groups: [team-%d]", i % 50);
        else if (!worst)
            snprintf(who, sizeof(who), "identities: [agent-%d]", i);
        bl_buf_printf(b, "    - name: r%d\n      effect: %s\n      %s\n", i, i % 17 == 0 ? "deny" : "allow",
                      subject ? subject : who);
        if (i % 10 == 3)
            bl_buf_printf(b, "      verbs: [create]\n      resources: [pods/exec]\n      namespaces: [\"ns-%d-*\"]\n"
                             "      command: {argvGlob: [cat, \"/var/log/*\"]}\n", i % 40);
        else
            bl_buf_printf(b, "      verbs: [get, list, watch%s]\n      apiGroups: [\"\", apps]\n"
                             "      resources: [pods, deployments, \"deployments/scale\", configmaps]\n"
                             "      namespaces: [\"ns-%d\", \"ns-%d-*\"]\n", i % 3 ? "" : ", patch", i % 40, i % 40);
    }
    /* limits high enough never to refuse: the cost measured is the lookup
     * and the bucket update every admitted request pays */
    bl_buf_puts(b, "  dry_run_only: {groups: [probation]}\n  limits:\n"
                   "    - {name: teams, groups: [everyone], reads: 1000000/s burst 1000000, writes: 1000000/s burst 1000000}\n");
    for (int i = 0; i < NIDS; i++)
        bl_buf_printf(b, "    - {name: l%d, identities: [agent-%d], writes: 1000000/s burst 1000000, "
                         "exec: 1000000/s burst 1000000}\n", i, i);
}

/* Loads the generated policy with the real loader. */
static bl_policy_t *load(int worst, bl_connection_t *conns)
{
    bl_config_t cfg = { 0 };
    bl_buf_t text, errs;
    bl_buf_init(&text, 8 << 20);
    bl_buf_init(&errs, 1 << 20);
    policy_yaml(&text, worst);
    for (int i = 0; i < 2; i++)
        conns[i].name = conn_names[i];
    cfg.conns = conns;
    cfg.nconns = 2;
    cfg.dir = "/nonexistent";
    bl_yaml_t y = { .file = "bench.yaml", .dir = cfg.dir, .errors = &errs };
    int rc = bl_yaml_load_mem(&y, bl_buf_data(&text), bl_buf_size(&text));
    yaml_node_t *top = rc == BL_OK ? bl_yaml_root(&y) : NULL;
    if (top == NULL || bl_cfg_policy(&y, bl_yaml_node(&y, top->data.mapping.pairs.start[0].value), &cfg) != BL_OK) {
        fprintf(stderr, "policy_eval: the generated policy does not load:\n%s\n", bl_buf_cstr(&errs));
        exit(1);
    }
    bl_yaml_free(&y);
    free(cfg.reviewer_group);
    bl_buf_free(&text);
    bl_buf_free(&errs);
    return cfg.policy;
}

/* A mix of reads, scales, execs and discovery across namespaces. */
static void requests(bl_kreq_t *k)
{
    char target[256];
    const char *why;
    for (int i = 0; i < NREQS; i++) {
        const char *m = "GET";
        switch (i % 4) {
        case 0: snprintf(target, sizeof(target), "/api/v1/namespaces/ns-%d/pods", i % 40); break;
        case 1: m = "PATCH";
                snprintf(target, sizeof(target), "/apis/apps/v1/namespaces/ns-%d/deployments/api/scale", i % 40); break;
        case 2: m = "POST";
                snprintf(target, sizeof(target), "/api/v1/namespaces/ns-%d-x/pods/p/exec?command=cat&command=/var/log/a.log",
                         i % 40); break;
        default: snprintf(target, sizeof(target), "%s", i % 8 == 3 ? "/apis/apps/v1" : "/api/v1/namespaces/kube-system/pods/p"); break;
        }
        if (bl_kreq_parse(&k[i], (bl_str_t){ m, strlen(m) }, (bl_str_t){ target, strlen(target) }, &why) != BL_OK) {
            fprintf(stderr, "policy_eval: %s: %s\n", target, why);
            exit(1);
        }
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The requesters: identity i, in group team-(i % 50), and everyone. */
static char names[NIDS][16], teams[NIDS][16];
static char *groupv[NIDS][2];

static void requesters(void)
{
    for (int i = 0; i < NIDS; i++) {
        snprintf(names[i], sizeof(names[i]), "agent-%d", i);
        snprintf(teams[i], sizeof(teams[i]), "team-%d", i % 50);
        groupv[i][0] = teams[i];
        groupv[i][1] = "everyone";
    }
}

/* The whole decision of one request as request.c makes it: the policy
 * (with the built-in rule), then the guardrails. Returns 1 if admitted. */
static int decide(bl_policy_t *p, const bl_policy_req_t *q, uint64_t now)
{
    bl_limit_verdict_t v;
    if (bl_policy_decide(p, q, "kubectl get").effect != BL_EFFECT_ALLOW)
        return 0;
    if (bl_policy_dry_run_only(p, q) && bl_policy_is_real_write(q->kreq))
        return 0;
    return bl_limits_check(bl_policy_guard(p)->limits, q->actor, q->groups, q->ngroups,
                           bl_limit_class(q->kreq), now, &v) == BL_OK;
}

/* Runs `rounds` whole decisions from `first` on; returns ns per request. */
static double run_guarded(bl_policy_t *p, const bl_kreq_t *k, long first, long rounds, long *allowed)
{
    double t0 = now_ns();
    *allowed = 0;
    for (long i = first; i < first + rounds; i++) {
        long id = (i * 7919) % NIDS;
        bl_policy_req_t q = { names[id], groupv[id], 2, (int)(i & 1), &k[i % NREQS] };
        *allowed += decide(p, &q, (uint64_t)t0 + (uint64_t)i * 100);
    }
    return (now_ns() - t0) / (double)rounds;
}

typedef struct {
    bl_policy_t *p;
    const bl_kreq_t *k;
    long first, rounds, allowed;
    double ns;
} bl_job_t;

static void *job(void *arg)
{
    bl_job_t *j = arg;
    j->ns = run_guarded(j->p, j->k, j->first, j->rounds, &j->allowed);
    return NULL;
}

/* The guarded decision, alone and from `threads` threads at once (they
 * share the buckets' striped locks, as byline's workers do). */
static void guarded(const bl_kreq_t *k, long rounds, int threads, bl_connection_t *conns)
{
    bl_policy_t *p = load(0, conns);
    long allowed;
    run_guarded(p, k, 0, rounds / 10, &allowed);
    double ns = run_guarded(p, k, rounds, rounds, &allowed);
    printf("policy_eval: %d rules, %d identities, %d limits, one identity's rules, evaluation + dry-run check "
           "+ rate-limit bucket: %.0f ns per request (%.1f%% admitted)\n", NRULES, NIDS, NIDS + 1, ns,
           100.0 * (double)allowed / (double)rounds);
    bl_limits_t *L = bl_policy_guard(p)->limits;
    bl_limit_verdict_t v;
    double t0 = now_ns();
    for (long i = 0; i < rounds; i++) {
        long id = (i * 7919) % NIDS;
        allowed += bl_limits_check(L, names[id], groupv[id], 2, (bl_class_t)(i % 3), (uint64_t)t0 + (uint64_t)i * 100, &v);
    }
    printf("policy_eval: the rate-limit check alone (find the limit, take a token): %.0f ns per request\n",
           (now_ns() - t0) / (double)rounds);
    bl_job_t jobs[16];
    pthread_t tid[16];
    threads = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (bl_job_t){ p, k, 2 * rounds + t * rounds, rounds, 0, 0 };
        pthread_create(&tid[t], NULL, job, &jobs[t]);
    }
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += jobs[t].ns;
    }
    printf("policy_eval: the same from %d threads at once (shared buckets): %.0f ns per request per thread\n",
           threads, sum / threads);
    bl_policy_free(p);
}

/* Runs `rounds` evaluations; returns ns per evaluation. */
static double run(const bl_policy_t *p, const bl_kreq_t *k, long rounds, int worst, long *allowed)
{
    double t0 = now_ns();
    *allowed = 0;
    for (long i = 0; i < rounds; i++) {
        long id = (i * 7919) % NIDS;
        bl_policy_req_t q = { names[id], groupv[id], worst ? 2 : 1, (int)(i & 1), &k[i % NREQS] };
        *allowed += bl_policy_eval(p, &q).effect == BL_EFFECT_ALLOW;
    }
    return (now_ns() - t0) / (double)rounds;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 2000000, allowed;
    bl_connection_t conns[2] = { { 0 } };
    bl_kreq_t *k = calloc(NREQS, sizeof(*k));
    if (k == NULL || rounds <= 0)
        return 2;
    requests(k);
    requesters();
    int only = argc > 2 ? atoi(argv[2]) : -1; /* 0: typical only, 1: worst case only */
    for (int worst = 0; worst < 2; worst++) {
        if (only >= 0 && worst != only)
            continue;
        bl_policy_t *p = load(worst, conns);
        run(p, k, rounds / 10, worst, &allowed); /* warm the caches */
        double ns = run(p, k, rounds, worst, &allowed);
        printf("policy_eval: %d rules, %d identities, %s: %.0f ns per evaluation (%ld evaluations, %.1f%% allowed)\n",
               NRULES, NIDS, worst ? "worst case: every rule applies to the requester" : "one identity's rules",
               ns, rounds, 100.0 * (double)allowed / (double)rounds);
        bl_policy_free(p);
    }
    if (only < 0) {
        const char *t = getenv("BL_THREADS");
        guarded(k, rounds, t ? atoi(t) : 4, conns);
    }
    free(k);
    return 0;
}
