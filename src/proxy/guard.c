/*
 * guard.c - dry-run-only mode and rate limits for an allowed request
 * (guard.h). Neither ever writes to disk: the buckets are in memory
 * (policy/limit.h), and a refusal is one result record like any other.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/metrics.h"
#include "policy/limit.h"
#include "proxy/guard.h"

/* Refuses a write an identity in dry-run-only mode did not mark
 * dryRun=All. Returns BL_OK (not in the mode, or a rehearsal or a read)
 * or BL_DECLINED after the 403. */
static int bl_guard_dry_run(bl_req_t *r, const bl_policy_req_t *q, const bl_policy_t *p)
{
    char what[160];
    bl_buf_t w = { .base = what, .cap = sizeof(what) - 1, .max = sizeof(what) - 1 };
    bl_class_t c = bl_limit_class(q->kreq);
    if (q->kreq == NULL || !bl_policy_dry_run_only(p, q) ||
        (c == BL_CLASS_WRITES ? !bl_policy_is_real_write(q->kreq) : c != BL_CLASS_EXEC))
        return BL_OK;
    if (bl_policy_describe(q->kreq, &w) != BL_OK)
        w.len = (size_t)snprintf(what, sizeof(what), "make this request");
    what[BL_MIN(w.len, sizeof(what) - 1)] = '\0';
    r->rec.decision = bl_effect_word(BL_EFFECT_DENY);
    snprintf(r->rec.rule, sizeof(r->rec.rule), "%s", BL_POLICY_DRY_RUN_RULE);
    r->rec.result = BL_RESULT_DENIED;
    r->conn->close_after = r->conn->close_after || r->qbody.kind == BL_BODY_CHUNKED ||
                           (r->qbody.kind == BL_BODY_LENGTH && r->qbody.length > 0);
    if (c == BL_CLASS_EXEC)
        bl_reply_status(r, 403, "Forbidden", "byline: %.64s is in dry-run-only mode and may not %s: "
                        "it cannot be rehearsed (rule %s)", q->actor, what, BL_POLICY_DRY_RUN_RULE);
    else
        bl_reply_status(r, 403, "Forbidden", "byline: %.64s is in dry-run-only mode: it may only rehearse "
                        "writes; run it again with --dry-run=server to rehearse: %s (rule %s)", q->actor,
                        what, BL_POLICY_DRY_RUN_RULE);
    return BL_DECLINED;
}

/* Returns CLOCK_MONOTONIC in nanoseconds: the buckets' clock. */
static uint64_t bl_guard_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Takes a token; an empty bucket gets the 429. BL_OK or BL_DECLINED. */
static int bl_guard_limit(bl_req_t *r, const bl_policy_req_t *q, bl_policy_t *p)
{
    static const bl_metric_t by_class[] = { BL_M_LIMITED_READS, BL_M_LIMITED_WRITES, BL_M_LIMITED_EXEC };
    bl_limits_t *L = bl_policy_guard(p)->limits;
    bl_class_t c = bl_limit_class(q->kreq);
    bl_limit_verdict_t v;
    char rate[48];
    if (L == NULL || bl_limits_check(L, q->actor, q->groups, q->ngroups, c, bl_guard_now_ns(), &v) == BL_OK)
        return BL_OK;
    bl_rate_format(&v.limit->rate[c], rate, sizeof(rate));
    snprintf(r->rec.rule, sizeof(r->rec.rule), "%s", v.limit->name);
    r->rec.result = BL_RESULT_LIMITED;
    r->retry_after = v.retry_after_s;
    r->conn->close_after = r->conn->close_after || r->qbody.kind == BL_BODY_CHUNKED ||
                           (r->qbody.kind == BL_BODY_LENGTH && r->qbody.length > 0);
    bl_metric_add(by_class[c], 1);
    bl_reply_status(r, 429, "TooManyRequests", "byline: %.64s is over its %s limit of %s (limit %s); "
                    "retry after %llus", q->actor, bl_class_name(c), rate, v.limit->name,
                    (unsigned long long)v.retry_after_s);
    return BL_DECLINED;
}

int bl_req_guard(bl_req_t *r, const bl_policy_req_t *q)
{
    /* The policy of the config snapshot the request authenticated in, as
     * the decision used (proxy/reload.h): its buckets belong to it. */
    const bl_config_t *cfg = r->ids ? bl_idtable_cfg(r->ids) : r->conn->w->srv->cfg;
    bl_policy_t *p = cfg->policy;
    if (p == NULL)
        return BL_OK;
    if (bl_guard_dry_run(r, q, p) != BL_OK)
        return BL_DECLINED;
    return bl_guard_limit(r, q, p);
}
