/* test_review.c - the review store (review/store.h): the command key,
 * review ids, opening and reusing pending reviews, approvals that match
 * exactly one identity and command for their window, self-approval,
 * expiry, the pending bound, the outcomes the ledger claims once, and the
 * notice entry. Times are given explicitly: no clock is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/jcs.h"
#include "review/store.h"

#define T0 1780000000000LL /* epoch ms */
#define MIN (60LL * 1000)

static char dir[64];
static bl_review_store_t *st;
static const bl_review_limits_t lim = { 3600u * 1000u, 1000 };

static int setup(void **state)
{
    (void)state;
    bl_buf_t err;
    snprintf(dir, sizeof(dir), "/tmp/test_review.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    bl_buf_init(&err, 1024);
    st = bl_review_open(dir, &err);
    bl_buf_free(&err);
    return st ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char p[128];
    bl_review_close(st);
    st = NULL;
    snprintf(p, sizeof(p), "%s/state/reviews.db", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/state", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}

/* Parses method + target into k (an exec's argv comes from the query). */
static void kreq(bl_kreq_t *k, const char *method, const char *target)
{
    const char *why = NULL;
    assert_int_equal(bl_kreq_parse(k, (bl_str_t){ method, strlen(method) }, (bl_str_t){ target, strlen(target) }, &why),
                     BL_OK);
}

/* The command key of (method, target, connection) as a new string. */
static char *key_of(const char *method, const char *target, const char *conn)
{
    bl_kreq_t *k = calloc(1, sizeof(*k));
    bl_buf_t b;
    bl_buf_init(&b, BL_REVIEW_KEY_MAX);
    kreq(k, method, target);
    assert_int_equal(bl_review_key(k, conn, &b), BL_OK);
    char *s = strndup(bl_buf_data(&b), bl_buf_size(&b));
    bl_buf_free(&b);
    free(k);
    return s;
}

static void command_key_is_exact(void **state)
{
    (void)state;
    const char *ex = "/api/v1/namespaces/web/pods/api-0/exec?command=cat&command=%2Fetc%2Fhosts&stdout=true";
    char *a = key_of("DELETE", "/api/v1/namespaces/web/pods/x", "prod");
    char *same = key_of("DELETE", "/api/v1/namespaces/web/pods/x", "prod");
    char *other_name = key_of("DELETE", "/api/v1/namespaces/web/pods/y", "prod");
    char *other_ns = key_of("DELETE", "/api/v1/namespaces/api/pods/x", "prod");
    char *other_conn = key_of("DELETE", "/api/v1/namespaces/web/pods/x", "staging");
    char *other_verb = key_of("GET", "/api/v1/namespaces/web/pods/x", "prod");
    char *e1 = key_of("POST", ex, "prod");
    char *e2 = key_of("POST", "/api/v1/namespaces/web/pods/api-0/exec?command=cat%20%2Fetc%2Fhosts&stdout=true", "prod");
    char *ws = key_of("GET", ex, "prod"); /* the same exec over a WebSocket */
    char *e3 = key_of("POST", "/api/v1/namespaces/web/pods/api-0/exec?command=cat&command=%2Fetc%2Fshadow&stdout=true",
                      "prod");
    assert_string_equal(a, same);
    assert_true(strncmp(a, "byline-review-v1\n", 17) == 0);
    assert_non_null(strstr(a, "\nname=1:x"));
    const char *differ[] = { other_name, other_ns, other_conn, other_verb, e1 };
    for (size_t i = 0; i < 5; i++)
        assert_string_not_equal(a, differ[i]);
    assert_string_not_equal(e1, e2); /* two words are not one word with a space */
    assert_string_not_equal(e1, e3);
    assert_string_equal(e1, ws);
    free(ws);
    char h1[65], h2[65];
    bl_review_key_hash(a, strlen(a), h1);
    bl_review_key_hash(same, strlen(same), h2);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    bl_review_key_hash(other_name, strlen(other_name), h2);
    assert_string_not_equal(h1, h2);
    free(a), free(same), free(other_name), free(other_ns), free(other_conn), free(other_verb);
    free(e1), free(e2), free(e3);
}

static void command_key_refuses_a_truncated_request(void **state)
{
    (void)state;
    bl_kreq_t *k = calloc(1, sizeof(*k));
    bl_buf_t b;
    bl_buf_init(&b, BL_REVIEW_KEY_MAX);
    kreq(k, "DELETE", "/api/v1/namespaces/web/pods/x");
    k->truncated = 1;
    assert_int_equal(bl_review_key(k, "prod", &b), BL_ERROR);
    assert_int_equal(bl_buf_size(&b), 0);
    bl_buf_free(&b);
    bl_buf_init(&b, 20); /* too small: refused, nothing appended */
    k->truncated = 0;
    assert_int_equal(bl_review_key(k, "prod", &b), BL_ERROR);
    assert_int_equal(bl_buf_size(&b), 0);
    bl_buf_free(&b);
    free(k);
}

static void review_ids(void **state)
{
    (void)state;
    char a[BL_REVIEW_ID_LEN + 1], b[BL_REVIEW_ID_LEN + 1];
    assert_int_equal(bl_review_new_id(a), BL_OK);
    assert_int_equal(bl_review_new_id(b), BL_OK);
    assert_true(bl_review_id_ok(a));
    assert_true(bl_review_id_ok(b));
    assert_string_not_equal(a, b);
    assert_true(bl_review_id_ok("r-7k2m9x4q1z"));
    const char *bad[] = { "", "r-", "r-7k2m9x4q1", "r-7k2m9x4q1zz", "x-7k2m9x4q1z", "r-7K2M9X4Q1Z", "r-7k2m9x4q1i",
                          "r-7k2m9x4q1/" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(bl_review_id_ok(bad[i]));
    assert_false(bl_review_id_ok(NULL));
}

/* A want for identity `who` and a key made from `name`. */
static bl_review_t want(const char *who, const char *name)
{
    bl_review_t w = { .state = BL_REVIEW_PENDING };
    snprintf(w.identity, sizeof(w.identity), "%s", who);
    snprintf(w.connection, sizeof(w.connection), "prod");
    snprintf(w.rule, sizeof(w.rule), "prod-deletes");
    snprintf(w.action, sizeof(w.action), "kubectl delete pod/%s -n web", name);
    snprintf(w.record, sizeof(w.record), "01900000-0000-7000-8000-000000000001");
    bl_review_key_hash(name, strlen(name), w.key_sha256);
    return w;
}

static int ask(const char *who, const char *name, int64_t now, bl_review_t *out)
{
    bl_review_t w = want(who, name);
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    int rc = bl_review_request(st, &w, name, now, &lim, out, &err);
    bl_buf_free(&err);
    return rc;
}

/* Decides; returns the rc and copies the error text into why (if any). */
static int decide(const char *id, const char *who, int approve, int64_t now, char *why, size_t cap)
{
    bl_review_t out;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    int rc = bl_review_decide(st, id, who, approve, 15 * MIN, approve ? NULL : "no", now, lim.expire_ms, &out, &err);
    snprintf(why, cap, "%s", bl_buf_size(&err) ? bl_buf_cstr(&err) : "");
    bl_buf_free(&err);
    return rc;
}

static void pending_is_opened_once_and_approval_is_exact(void **state)
{
    (void)state;
    bl_review_t r1, r2, r3;
    char why[512];
    assert_int_equal(ask("agent-deploybot", "x", T0, &r1), BL_DECLINED);
    assert_true(bl_review_id_ok(r1.id));
    assert_int_equal(r1.state, BL_REVIEW_PENDING);
    assert_int_equal(ask("agent-deploybot", "x", T0 + 1000, &r2), BL_DECLINED);
    assert_string_equal(r1.id, r2.id); /* reused */
    assert_int_equal(ask("agent-other", "x", T0, &r3), BL_DECLINED);
    assert_string_not_equal(r1.id, r3.id); /* another identity, another review */

    assert_int_equal(decide(r1.id, "agent-deploybot", 1, T0 + 2000, why, sizeof(why)), BL_DECLINED);
    assert_non_null(strstr(why, "own request"));
    assert_int_equal(decide("r-0000000000", "alice", 1, T0 + 2000, why, sizeof(why)), BL_DECLINED);
    assert_non_null(strstr(why, "no review r-0000000000"));
    assert_int_equal(decide(r1.id, "alice", 1, T0 + 2000, why, sizeof(why)), BL_OK);
    assert_int_equal(decide(r1.id, "bob", 0, T0 + 3000, why, sizeof(why)), BL_DECLINED);
    assert_non_null(strstr(why, "approved already by alice"));

    assert_int_equal(ask("agent-deploybot", "x", T0 + 3000, &r2), BL_OK);
    assert_string_equal(r2.id, r1.id);
    assert_string_equal(r2.reviewer, "alice");
    assert_true(r2.until_ms == T0 + 2000 + 15 * MIN);
    assert_int_equal(ask("agent-deploybot", "y", T0 + 3000, &r3), BL_DECLINED);     /* another command */
    assert_int_equal(ask("agent-other", "x", T0 + 3000, &r3), BL_DECLINED);         /* another identity */
    assert_int_equal(ask("agent-deploybot", "x", T0 + 2000 + 15 * MIN - 1, &r3), BL_OK); /* last ms of the window */
    assert_int_equal(ask("agent-deploybot", "x", T0 + 2000 + 15 * MIN, &r3), BL_DECLINED); /* over */
    assert_string_not_equal(r3.id, r1.id);
    assert_int_equal(r3.state, BL_REVIEW_PENDING);
}

static void deny_and_expiry(void **state)
{
    (void)state;
    bl_review_t r1, r2, got;
    char why[512];
    bl_buf_t err;
    assert_int_equal(ask("agent-a", "x", T0, &r1), BL_DECLINED);
    assert_int_equal(decide(r1.id, "alice", 0, T0 + 10, why, sizeof(why)), BL_OK);
    bl_buf_init(&err, 512);
    assert_int_equal(bl_review_get(st, r1.id, &got, &err), BL_OK);
    assert_int_equal(got.state, BL_REVIEW_DENIED);
    assert_string_equal(got.reason, "no");
    assert_int_equal(bl_review_get(st, "r-0000000000", &got, &err), BL_DECLINED);
    bl_buf_free(&err);
    assert_int_equal(ask("agent-a", "x", T0 + 20, &r2), BL_DECLINED); /* denied: asked again, a new review */
    assert_string_not_equal(r2.id, r1.id);
    /* A pending review is over after policy.review_expire: not decidable, and replaced. */
    assert_int_equal(decide(r2.id, "alice", 1, T0 + 20 + 3600 * 1000, why, sizeof(why)), BL_DECLINED);
    assert_non_null(strstr(why, "expired"));
    assert_int_equal(ask("agent-a", "x", T0 + 20 + 3600 * 1000, &r1), BL_DECLINED);
    assert_string_not_equal(r1.id, r2.id);
    assert_int_equal(bl_review_get(st, r2.id, &got, NULL), BL_OK);
    assert_int_equal(got.state, BL_REVIEW_EXPIRED);
}

static void pending_reviews_are_bounded(void **state)
{
    (void)state;
    bl_review_limits_t two = { 3600u * 1000u, 2 };
    bl_review_t w, out;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    const char *names[] = { "a", "b", "c" };
    int rcs[3];
    for (int i = 0; i < 3; i++) {
        w = want("agent-a", names[i]);
        rcs[i] = bl_review_request(st, &w, names[i], T0, &two, &out, &err);
    }
    assert_int_equal(rcs[0], BL_DECLINED);
    assert_int_equal(rcs[1], BL_DECLINED);
    assert_int_equal(rcs[2], BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "review_max_pending"));
    w = want("agent-a", "a"); /* an existing pending review is still reused */
    assert_int_equal(bl_review_request(st, &w, "a", T0, &two, &out, &err), BL_DECLINED);
    bl_buf_free(&err);
}

static int count_one(const bl_review_t *rv, void *arg)
{
    (void)rv;
    ++*(int *)arg;
    return BL_OK;
}

static void outcomes_are_claimed_once_and_listed(void **state)
{
    (void)state;
    bl_review_t r1, r2, r3, got[8];
    char why[512];
    bl_buf_t err;
    int n = 0;
    bl_buf_init(&err, 1024);
    assert_int_equal(ask("agent-a", "x", T0, &r1), BL_DECLINED);
    assert_int_equal(ask("agent-a", "y", T0, &r2), BL_DECLINED);
    assert_int_equal(ask("agent-a", "z", T0 + 30 * MIN, &r3), BL_DECLINED);
    assert_int_equal(bl_review_take_outcomes(st, T0 + 1, lim.expire_ms, got, 8, &err), 0); /* nothing decided */
    assert_int_equal(decide(r1.id, "alice", 1, T0 + 10, why, sizeof(why)), BL_OK);
    assert_int_equal(decide(r2.id, "alice", 0, T0 + 20, why, sizeof(why)), BL_OK);
    assert_int_equal(bl_review_list(st, 0, T0 + 30, lim.expire_ms, count_one, &n, &err), 2); /* the approval and z */
    assert_int_equal(n, 2);
    /* decided outcomes, oldest decision first, `cap` at a time */
    assert_int_equal(bl_review_take_outcomes(st, T0 + 30, lim.expire_ms, got, 1, &err), 1);
    assert_string_equal(got[0].id, r1.id);
    assert_int_equal(got[0].state, BL_REVIEW_APPROVED);
    assert_int_equal(bl_review_take_outcomes(st, T0 + 30, lim.expire_ms, got, 8, &err), 1);
    assert_string_equal(got[0].id, r2.id);
    assert_int_equal(bl_review_take_outcomes(st, T0 + 40, lim.expire_ms, got, 8, &err), 0); /* claimed once */
    /* z expires 1 h after it was asked: its outcome is claimed too */
    assert_int_equal(bl_review_take_outcomes(st, T0 + 90 * MIN, lim.expire_ms, got, 8, &err), 1);
    assert_string_equal(got[0].id, r3.id);
    assert_int_equal(got[0].state, BL_REVIEW_EXPIRED);
    n = 0;
    assert_int_equal(bl_review_list(st, 1, T0 + 90 * MIN, lim.expire_ms, count_one, &n, &err), 3);
    n = 0;
    assert_int_equal(bl_review_list(st, 0, T0 + 90 * MIN, lim.expire_ms, count_one, &n, &err), 0);
    bl_buf_free(&err);
}

static void list_shows_a_stale_pending_review_as_expired(void **state)
{
    (void)state;
    bl_review_t r1, got;
    int n = 0;
    assert_int_equal(ask("agent-a", "x", T0, &r1), BL_DECLINED);
    assert_int_equal(bl_review_list(st, 0, T0 + 3600 * 1000, lim.expire_ms, count_one, &n, NULL), 0);
    assert_int_equal(bl_review_list(st, 1, T0 + 3600 * 1000, lim.expire_ms, count_one, &n, NULL), 1);
    assert_int_equal(bl_review_get(st, r1.id, &got, NULL), BL_OK);
    assert_int_equal(got.state, BL_REVIEW_PENDING); /* listing does not write */
}

static void notice_entry_is_canonical(void **state)
{
    (void)state;
    bl_review_t rv = want("agent-deploybot", "x");
    bl_buf_t out;
    snprintf(rv.id, sizeof(rv.id), "r-7k2m9x4q1z");
    rv.state = BL_REVIEW_APPROVED;
    snprintf(rv.reviewer, sizeof(rv.reviewer), "alice");
    rv.requested_ms = T0;
    rv.decided_ms = T0 + 1500;
    rv.until_ms = T0 + 1500 + 15 * MIN;
    bl_buf_init(&out, 16384);
    assert_int_equal(bl_review_notice_json(&rv, T0 + 2000, &out), BL_OK);
    const char *s = bl_buf_cstr(&out);
    assert_true(bl_jcs_is_canonical(s, strlen(s)));
    assert_non_null(strstr(s, "\"event\":\"review-approved\""));
    assert_non_null(strstr(s, "\"kind\":\"notice\""));
    assert_non_null(strstr(s, "\"review\":\"r-7k2m9x4q1z\""));
    assert_non_null(strstr(s, "\"reviewer\":\"alice\""));
    assert_non_null(strstr(s, "\"until\":\"2026-05-28T20:41:41.500000Z\""));
    assert_non_null(strstr(s, "\"ts\":\"2026-05-28T20:26:42.000000Z\""));
    assert_non_null(strstr(s, "\"version\":\"" BL_VERSION "\""));
    assert_null(strstr(s, "\"reason\""));
    assert_null(strstr(s, "\"id\""));
    bl_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(command_key_is_exact),
        cmocka_unit_test(command_key_refuses_a_truncated_request),
        cmocka_unit_test(review_ids),
        cmocka_unit_test_setup_teardown(pending_is_opened_once_and_approval_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(deny_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_reviews_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(outcomes_are_claimed_once_and_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(list_shows_a_stale_pending_review_as_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(notice_entry_is_canonical, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
