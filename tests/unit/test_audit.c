/* test_audit.c - audit record lines and reading them back (tail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "audit/batch.h"
#include "audit/record.h"
#include "audit/tail.h"

static json_t *parse_line(bl_buf_t *b)
{
    assert_true(bl_buf_size(b) > 0);
    assert_int_equal(bl_buf_data(b)[bl_buf_size(b) - 1], '\n');
    assert_null(memchr(bl_buf_data(b), '\n', bl_buf_size(b) - 1)); /* exactly one line */
    json_error_t e;
    json_t *j = json_loadb(bl_buf_data(b), bl_buf_size(b) - 1, 0, &e);
    assert_non_null(j);
    return j;
}

static void intent_and_result_lines(void **state)
{
    (void)state;
    bl_audit_rec_t r;
    bl_kreq_t k;
    const char *err = NULL;
    char *groups[] = { "deployers", "we\"ird" };
    assert_int_equal(bl_rec_begin(&r), BL_OK);
    assert_int_equal(bl_kreq_parse(&k, BL_STR("PATCH"), BL_STR("/apis/apps/v1/namespaces/web/deployments/api/scale"), &err), BL_OK);
    r.actor = "agent-deploybot";
    r.groups = groups;
    r.ngroups = 2;
    r.credential = "token";
    r.connection = "prod-eks";
    r.kreq = &k;
    r.action = "kubectl scale deployment/api --replicas=5 -n web";
    bl_rec_copy(r.user_agent, sizeof(r.user_agent), BL_STR("kubectl/v1.33.0\n(injected)"));
    bl_buf_t b;
    bl_buf_init(&b, 64 * 1024);
    assert_int_equal(bl_rec_intent_json(&r, &b), BL_OK);
    json_t *j = parse_line(&b);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "intent");
    assert_string_equal(json_string_value(json_object_get(j, "id")), r.id);
    assert_string_equal(json_string_value(json_object_get(j, "actor")), "agent-deploybot");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "groups"), 1)), "we\"ird");
    assert_string_equal(json_string_value(json_object_get(j, "user_agent")), "kubectl/v1.33.0\n(injected)");
    json_t *req = json_object_get(j, "request");
    assert_string_equal(json_string_value(json_object_get(req, "subresource")), "scale");
    assert_null(json_object_get(j, "result")); /* the outcome is not known yet */
    json_decref(j);

    bl_buf_reset(&b);
    r.result = BL_RESULT_ALLOWED;
    r.status = 200;
    r.bytes_in = 23;
    assert_int_equal(bl_rec_result_json(&r, 0, &b), BL_OK);
    j = parse_line(&b);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "result");
    assert_string_equal(json_string_value(json_object_get(j, "result")), "allowed");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 23);
    assert_null(json_object_get(j, "request")); /* only a full result repeats the request */
    json_decref(j);
    bl_buf_free(&b);
}

static void unauthenticated_result_is_complete_alone(void **state)
{
    (void)state;
    bl_audit_rec_t r;
    assert_int_equal(bl_rec_begin(&r), BL_OK);
    r.result = BL_RESULT_UNAUTHENTICATED;
    r.status = 401;
    bl_rec_reason(&r, "unknown bearer token");
    bl_rec_copy(r.method, sizeof(r.method), BL_STR("GET"));
    bl_buf_t b;
    bl_buf_init(&b, 64 * 1024);
    assert_int_equal(bl_rec_result_json(&r, 1, &b), BL_OK);
    json_t *j = parse_line(&b);
    assert_true(json_is_null(json_object_get(j, "actor")));
    assert_string_equal(json_string_value(json_object_get(j, "credential")), "none");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "unknown bearer token");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    json_decref(j);
    bl_buf_free(&b);
}

/* Writes lines to a temp file and returns what `audit tail` prints. */
static char *tail_of(const char *lines, size_t n, int style)
{
    char path[] = "/tmp/byline-tail-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
    close(fd);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    size_t skipped = 0;
    assert_int_equal(bl_audit_tail(path, n, style, f, &skipped, &err), BL_OK);
    fclose(f);
    bl_buf_free(&err);
    unlink(path);
    return out;
}

static const char *LOG =
    "{\"kind\":\"intent\",\"id\":\"a\",\"ts\":\"2026-06-15T12:04:01.123456Z\",\"actor\":\"agent-deploybot\",\"connection\":\"prod-eks\",\"action\":\"kubectl scale deployment/api --replicas=5 -n web\"}\n"
    "{\"kind\":\"intent\",\"id\":\"b\",\"ts\":\"2026-06-15T12:04:02.000000Z\",\"actor\":\"agent-reporting\",\"connection\":\"prod-eks\",\"action\":\"kubectl exec api-0 -n web -- sh -c 'echo \\\"hi\\\"'\"}\n"
    "{\"kind\":\"result\",\"id\":\"a\",\"ts\":\"2026-06-15T12:04:01.123456Z\",\"actor\":\"agent-deploybot\",\"connection\":\"prod-eks\",\"action\":\"kubectl scale deployment/api --replicas=5 -n web\",\"result\":\"allowed\",\"status\":200}\n"
    "not json at all\n"
    "{\"kind\":\"result\",\"id\":\"c\",\"ts\":\"2026-06-15T12:04:03.000000Z\",\"actor\":null,\"connection\":\"prod-eks\",\"result\":\"unauthenticated\",\"reason\":\"unknown bearer token\",\"status\":401,\"method\":\"GET\",\"uri\":\"/api\"}\n"
    "{\"kind\":\"intent\",\"id\":\"d\",\"ts\":\"2026-06-15T12:04:04.0Z\",\"actor\":\"agent-x\",\"connection\":\"prod-eks\",\"action\":\"kubectl get pods -n web\"}\n"
    "{\"kind\":\"result\",\"id\":\"d\",\"ts\":\"2026-06-15T12:04:04.0Z\",\"actor\":\"agent-x\",\"connection\":\"prod-eks\",\"action\":\"kubectl get pods -n web\",\"result\":\"allowed\",\"status\":200}\n"
    "{\"kind\":\"intent\",\"id\":\"e\",\"ts\":\"2026-06-15T12:04:05.0Z\",\"actor\":\"agent-x\",\"connec";

static void tail_joins_and_renders_the_seed_format(void **state)
{
    (void)state;
    char *out = tail_of(LOG, 10, BL_TAIL_TEXT);
    const char *want =
        "ts=2026-06-15T12:04:01Z actor=agent-deploybot action=\"kubectl scale deployment/api --replicas=5 -n web\" connection=prod-eks result=allowed status=200 id=a\n"
        "ts=2026-06-15T12:04:02Z actor=agent-reporting action=\"kubectl exec api-0 -n web -- sh -c 'echo \\\"hi\\\"'\" connection=prod-eks result=pending id=b\n"
        "ts=2026-06-15T12:04:03Z actor=unauthenticated action=\"GET /api\" connection=prod-eks result=unauthenticated status=401 reason=\"unknown bearer token\" id=c\n"
        "ts=2026-06-15T12:04:04Z actor=agent-x action=\"kubectl get pods -n web\" connection=prod-eks result=allowed status=200 id=d\n";
    assert_string_equal(out, want);
    free(out);
    out = tail_of(LOG, 1, BL_TAIL_TEXT);
    assert_string_equal(out, "ts=2026-06-15T12:04:04Z actor=agent-x action=\"kubectl get pods -n web\" connection=prod-eks result=allowed status=200 id=d\n");
    free(out);
}

static void tail_json_merges_intent_and_result(void **state)
{
    (void)state;
    char *out = tail_of(LOG, 4, BL_TAIL_JSON);
    char *line = strtok(out, "\n");
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "request");
    assert_string_equal(json_string_value(json_object_get(j, "result")), "allowed");
    assert_string_equal(json_string_value(json_object_get(j, "action")), "kubectl scale deployment/api --replicas=5 -n web");
    json_decref(j);
    free(out);
}

/* --- the per-worker batch --- */

typedef struct {
    bl_audit_waiter_t w;
    int called, ok;
    bl_audit_batch_t *batch;
    bl_audit_waiter_t *forget; /* forgets this other waiter from its callback */
    const char *add;           /* adds this line from its callback */
    bl_audit_waiter_t *add_waiter;
} waiter_t;

static void waiter_done(bl_audit_waiter_t *w, int ok)
{
    waiter_t *x = (waiter_t *)w;
    x->called++;
    x->ok = ok;
    if (x->forget)
        bl_audit_batch_forget(x->batch, x->forget);
    if (x->add)
        bl_audit_batch_add(x->batch, x->add, strlen(x->add), x->add_waiter);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    /* only the first bytes matter to the callers */
    static char buf[64];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* One write per loop turn; waiters hear of it only after their line is
 * written; a waiter forgotten from a callback is not called; a line added
 * from a callback waits for the next write. */
static void batch_writes_then_tells_waiters(void **state)
{
    (void)state;
    char dir[] = "/tmp/byline-batch-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_auditlog_t *log = bl_auditlog_open(dir, &err);
    assert_non_null(log);
    bl_loop_t *loop = bl_loop_new();
    bl_audit_batch_t b;
    bl_audit_batch_init(&b, log, loop);
    waiter_t a = { .w.done = waiter_done, .batch = &b }, c = { .w.done = waiter_done, .batch = &b },
             d = { .w.done = waiter_done, .batch = &b }, late = { .w.done = waiter_done, .batch = &b };
    a.forget = &c.w;            /* a's callback forgets c */
    a.add = "late\n";
    a.add_waiter = &late.w;     /* ...and adds a line with its own waiter */
    assert_int_equal(bl_audit_batch_add(&b, "one\n", 4, &a.w), BL_OK);
    assert_int_equal(bl_audit_batch_add(&b, "two\n", 4, &c.w), BL_OK);
    assert_int_equal(bl_audit_batch_add(&b, "three\n", 6, NULL), BL_OK);
    assert_int_equal(bl_audit_batch_add(&b, "four\n", 5, &d.w), BL_OK);
    snprintf(path, sizeof(path), "%s/%s", dir, BL_AUDIT_FILE);
    assert_string_equal(slurp(path), ""); /* nothing written before the loop turns */
    assert_int_equal(a.called, 0);
    bl_loop_run_once(loop);
    assert_string_equal(slurp(path), "one\ntwo\nthree\nfour\n");
    assert_true(a.called == 1 && a.ok == 1);
    assert_int_equal(c.called, 0);  /* forgotten by a: its line is written, it is not called */
    assert_true(d.called == 1 && d.ok == 1);
    assert_int_equal(late.called, 0); /* added during the flush: next write */
    bl_loop_run_once(loop);
    assert_string_equal(slurp(path), "one\ntwo\nthree\nfour\nlate\n");
    assert_int_equal(late.called, 1);
    /* A batch that fills is written early, in order, but nobody is told
     * until the loop turns: adding never re-enters a caller. */
    waiter_t e = { .w.done = waiter_done, .batch = &b };
    static char big[BL_AUDIT_BATCH_MAX - 16];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\n';
    assert_int_equal(bl_audit_batch_add(&b, "five\n", 5, &e.w), BL_OK);
    assert_int_equal(bl_audit_batch_add(&b, big, sizeof(big), NULL), BL_OK);
    assert_int_equal(bl_audit_batch_add(&b, big, sizeof(big), NULL), BL_OK); /* forces a write */
    assert_int_equal(e.called, 0);
    bl_loop_run_once(loop);
    assert_true(e.called == 1 && e.ok == 1);
    bl_audit_batch_fini(&b);
    bl_loop_free(loop);
    bl_auditlog_close(log);
    bl_buf_free(&err);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(intent_and_result_lines),
        cmocka_unit_test(unauthenticated_result_is_complete_alone),
        cmocka_unit_test(tail_joins_and_renders_the_seed_format),
        cmocka_unit_test(tail_json_merges_intent_and_result),
        cmocka_unit_test(batch_writes_then_tells_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
