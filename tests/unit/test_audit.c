/* test_audit.c - audit entries (canonical JSON) and reading them back (tail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/body.h"
#include "audit/jcs.h"
#include "audit/record.h"
#include "audit/reader.h"
#include "audit/tail.h"

#define BL_TAIL_TEST_LONG (BL_READER_MAX_LINE + 100) /* a line the readers do not take */

static json_t *parse_entry(bl_buf_t *b)
{
    assert_true(bl_buf_size(b) > 0);
    assert_null(memchr(bl_buf_data(b), '\n', bl_buf_size(b))); /* one object, no newline */
    /* byte for byte its own RFC 8785 form: what the ledger hashes */
    assert_true(bl_jcs_is_canonical(bl_buf_data(b), bl_buf_size(b)));
    json_error_t e;
    json_t *j = json_loadb(bl_buf_data(b), bl_buf_size(b), 0, &e);
    assert_non_null(j);
    return j;
}

static void intent_and_result_entries(void **state)
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
    bl_rec_copy(r.user_agent, sizeof(r.user_agent), BL_STR("kubectl/v1.33.0\n(injected)\x7f"));
    bl_buf_t b;
    bl_buf_init(&b, 64 * 1024);
    assert_int_equal(bl_rec_intent_json(&r, &b), BL_OK);
    json_t *j = parse_entry(&b);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "intent");
    assert_string_equal(json_string_value(json_object_get(j, "id")), r.id);
    assert_string_equal(json_string_value(json_object_get(j, "actor")), "agent-deploybot");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "groups"), 1)), "we\"ird");
    assert_string_equal(json_string_value(json_object_get(j, "user_agent")), "kubectl/v1.33.0\n(injected)\x7f");
    json_t *req = json_object_get(j, "request");
    assert_string_equal(json_string_value(json_object_get(req, "subresource")), "scale");
    assert_null(json_object_get(j, "result")); /* the outcome is not known yet */
    json_decref(j);

    bl_buf_reset(&b);
    r.result = BL_RESULT_ALLOWED;
    r.status = 101;
    r.upgraded = 1;
    r.bytes_in = 23;
    r.exec = BL_STR("{\"exit_code\":3,\"reason\":\"NonZeroExitCode\"}");
    assert_int_equal(bl_rec_result_json(&r, 0, &b), BL_OK);
    j = parse_entry(&b);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "result");
    assert_string_equal(json_string_value(json_object_get(j, "result")), "allowed");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 101);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 23);
    assert_true(json_is_integer(json_object_get(j, "duration_us")));
    assert_true(json_is_true(json_object_get(j, "upgraded")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "exec"), "exit_code")), 3);
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
    json_t *j = parse_entry(&b);
    assert_true(json_is_null(json_object_get(j, "actor")));
    assert_string_equal(json_string_value(json_object_get(j, "credential")), "none");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "unknown bearer token");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    json_decref(j);
    bl_buf_free(&b);
}

/* Writes `lines` as segment 1 of a fresh audit directory and returns what
 * `audit tail` prints. The tail does not check the chain: verify does. */
static char *tail_of(const char *lines, size_t n, int style)
{
    char dir[] = "/tmp/byline-tail-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ledger-000001.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(lines, f);
    fclose(f);
    char *out = NULL;
    size_t outlen = 0;
    FILE *o = open_memstream(&out, &outlen);
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    size_t skipped = 0;
    assert_int_equal(bl_audit_tail(dir, n, style, o, &skipped, &err), BL_OK);
    fclose(o);
    bl_buf_free(&err);
    unlink(path);
    rmdir(dir);
    return out;
}

#define P ",\"prev\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"seq\":0}\n"
static const char *LOG =
    "{\"entry\":{\"action\":\"kubectl scale deployment/api --replicas=5 -n web\",\"actor\":\"agent-deploybot\",\"connection\":\"prod-eks\",\"id\":\"a\",\"kind\":\"intent\",\"ts\":\"2026-06-15T12:04:01.123456Z\"}" P
    "{\"entry\":{\"action\":\"kubectl exec api-0 -n web -- sh -c 'echo \\\"hi\\\"'\",\"actor\":\"agent-reporting\",\"connection\":\"prod-eks\",\"id\":\"b\",\"kind\":\"intent\",\"ts\":\"2026-06-15T12:04:02.000000Z\"}" P
    "{\"entry\":{\"action\":\"kubectl scale deployment/api --replicas=5 -n web\",\"actor\":\"agent-deploybot\",\"connection\":\"prod-eks\",\"id\":\"a\",\"kind\":\"result\",\"result\":\"allowed\",\"status\":200,\"ts\":\"2026-06-15T12:04:01.123456Z\"}" P
    "{\"checkpoint\":\"byline/test\\n3\\nAAAA\\n\\n\\u2014 byline/test AAAA\\n\"}\n"
    "not json at all\n"
    "{\"entry\":{\"actor\":null,\"connection\":\"prod-eks\",\"id\":\"c\",\"kind\":\"result\",\"method\":\"GET\",\"reason\":\"unknown bearer token\",\"result\":\"unauthenticated\",\"status\":401,\"ts\":\"2026-06-15T12:04:03.000000Z\",\"uri\":\"/api\"}" P
    "{\"entry\":{\"action\":\"kubectl get pods -n web\",\"actor\":\"agent-x\",\"connection\":\"prod-eks\",\"id\":\"d\",\"kind\":\"intent\",\"ts\":\"2026-06-15T12:04:04.000000Z\"}" P
    "{\"entry\":{\"id\":\"b\",\"kind\":\"aborted\",\"reason\":\"byline stopped\",\"ts\":\"2026-06-15T12:04:04.500000Z\"}" P
    "{\"entry\":{\"detail\":\"byline started\",\"event\":\"start\",\"kind\":\"notice\",\"ts\":\"2026-06-15T12:04:05.000000Z\",\"version\":\"0.2.0\"}" P
    "{\"entry\":{\"action\":\"kubectl get pods -n web\",\"actor\":\"agent-x\",\"connection\":\"prod-eks\",\"id\":\"d\",\"kind\":\"result\",\"result\":\"allowed\",\"status\":200,\"ts\":\"2026-06-15T12:04:04.000000Z\"}" P
    "{\"entry\":{\"action\":\"kubectl get pods\",\"actor\":\"agent-x\",\"connec";

static void tail_joins_and_renders_the_seed_format(void **state)
{
    (void)state;
    char *out = tail_of(LOG, 10, BL_TAIL_TEXT);
    const char *want =
        "ts=2026-06-15T12:04:01Z actor=agent-deploybot action=\"kubectl scale deployment/api --replicas=5 -n web\" connection=prod-eks result=allowed status=200 id=a\n"
        "ts=2026-06-15T12:04:02Z actor=agent-reporting action=\"kubectl exec api-0 -n web -- sh -c 'echo \\\"hi\\\"'\" connection=prod-eks result=aborted reason=\"byline stopped\" id=b\n"
        "ts=2026-06-15T12:04:03Z actor=unauthenticated action=\"GET /api\" connection=prod-eks result=unauthenticated status=401 reason=\"unknown bearer token\" id=c\n"
        "ts=2026-06-15T12:04:04Z actor=agent-x action=\"kubectl get pods -n web\" connection=prod-eks result=allowed status=200 id=d\n"
        "ts=2026-06-15T12:04:05Z notice=start detail=\"byline started\"\n";
    assert_string_equal(out, want);
    free(out);
    out = tail_of(LOG, 1, BL_TAIL_TEXT);
    assert_string_equal(out, "ts=2026-06-15T12:04:05Z notice=start detail=\"byline started\"\n");
    free(out);
}

static void tail_json_merges_intent_and_result(void **state)
{
    (void)state;
    char *out = tail_of(LOG, 5, BL_TAIL_JSON);
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

/* ---- tail over several segments, read from the newest backwards ---- */

/* Appends one ledger line holding an entry of `kind` for request `id` (a
 * refused result when kind is "refused"; the action padded to `pad` bytes). */
static void put_line(bl_buf_t *b, const char *kind, const char *id, size_t pad)
{
    if (!strcmp(kind, "notice")) {
        bl_buf_printf(b, "{\"entry\":{\"event\":\"%s\",\"kind\":\"notice\",\"ts\":\"2026-06-15T12:00:00.000000Z\"}" P,
                      id);
        return;
    }
    if (!strcmp(kind, "intent")) {
        bl_buf_puts(b, "{\"entry\":{\"action\":\"kubectl get pods");
        for (size_t i = 0; i < pad; i++)
            bl_buf_puts(b, "x");
        bl_buf_printf(b, "\",\"actor\":\"agent-x\",\"id\":\"%s\",\"kind\":\"intent\",\"ts\":\"2026-06-15T12:00:00.000000Z\"}" P,
                      id);
    } else if (!strcmp(kind, "refused")) {
        bl_buf_printf(b, "{\"entry\":{\"actor\":null,\"credential\":\"none\",\"id\":\"%s\",\"kind\":\"result\",\"method\":"
                         "\"GET\",\"result\":\"unauthenticated\",\"status\":401,\"ts\":\"2026-06-15T12:00:00.000000Z\","
                         "\"uri\":\"/api\"}" P, id);
    } else {
        bl_buf_printf(b, "{\"entry\":{\"id\":\"%s\",\"kind\":\"%s\",\"result\":\"allowed\",\"status\":200,\"ts\":\""
                         "2026-06-15T12:00:01.000000Z\"}" P, id, kind);
    }
}

/* Writes segment `seg` of `dir`: `spec` is "kind:id kind:id ..." (kinds
 * I intent, R result, F refused, A aborted, N notice; X a line that is not
 * JSON; L a line longer than the reader takes; W an intent with a 300 kB
 * action; T torn bytes at the end). */
static void put_seg(const char *dir, unsigned seg, const char *spec)
{
    char path[256], k, id[32];
    bl_buf_t b;
    bl_buf_init(&b, 16u << 20);
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, " ");
        assert_true(n >= 3 && n - 2 < sizeof(id) && p[1] == ':');
        k = p[0];
        memcpy(id, p + 2, n - 2);
        id[n - 2] = '\0';
        p += n + (p[n] == ' ');
        switch (k) {
        case 'I': put_line(&b, "intent", id, 0); break;
        case 'W': put_line(&b, "intent", id, 300000); break;
        case 'R': put_line(&b, "result", id, 0); break;
        case 'A': put_line(&b, "aborted", id, 0); break;
        case 'F': put_line(&b, "refused", id, 0); break;
        case 'N': put_line(&b, "notice", id, 0); break;
        case 'X': bl_buf_puts(&b, "not json at all\n"); break;
        case 'L':
            for (size_t i = 0; i < BL_TAIL_TEST_LONG; i++)
                bl_buf_puts(&b, "y");
            bl_buf_puts(&b, "\n");
            break;
        case 'T': bl_buf_puts(&b, "{\"entry\":{\"kind\":\"int"); break;
        default: fail_msg("bad spec %c", k);
        }
    }
    snprintf(path, sizeof(path), "%s/ledger-%06u.jsonl", dir, seg);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(bl_buf_data(&b), 1, bl_buf_size(&b), f), bl_buf_size(&b));
    fclose(f);
    bl_buf_free(&b);
}

/* Runs the tail of `dir` for n; returns "id/result ..." (a notice as its
 * event; an action's length when it is not the usual one), owned by the
 * caller. Sets *rc, *skipped and the error text in err. */
static char *tail_rows(const char *dir, size_t n, int *rc, size_t *skipped, bl_buf_t *err)
{
    char *out = NULL, *save = NULL;
    size_t outlen = 0;
    FILE *o = open_memstream(&out, &outlen);
    *skipped = 0;
    bl_buf_reset(err);
    *rc = bl_audit_tail(dir, n, BL_TAIL_JSON, o, skipped, err);
    fclose(o);
    bl_buf_t rows;
    bl_buf_init(&rows, 1 << 20);
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *j = json_loads(l, 0, &e);
        assert_non_null(j);
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *res = json_string_value(json_object_get(j, "result"));
        const char *action = json_string_value(json_object_get(j, "action"));
        bl_buf_printf(&rows, "%s%s", bl_buf_size(&rows) ? " " : "",
                      id ? id : json_string_value(json_object_get(j, "event")));
        if (id)
            bl_buf_printf(&rows, "/%s", res ? res : "pending");
        if (action && strlen(action) != strlen("kubectl get pods"))
            bl_buf_printf(&rows, "(%zu)", strlen(action));
        json_decref(j);
    }
    free(out);
    char *r = strdup(bl_buf_cstr(&rows));
    bl_buf_free(&rows);
    return r;
}

static void want_rows(const char *dir, size_t n, const char *want, size_t want_skipped)
{
    int rc;
    size_t skipped;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    char *got = tail_rows(dir, n, &rc, &skipped, &err);
    if (rc != BL_OK)
        fail_msg("tail -n %zu: %d %s", n, rc, bl_buf_cstr(&err));
    if (strcmp(got, want) || skipped != want_skipped)
        fail_msg("tail -n %zu: got '%s' (%zu skipped), want '%s' (%zu skipped)", n, got, skipped, want,
                 want_skipped);
    free(got);
    bl_buf_free(&err);
}

static void clear_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Requests are ordered by where they started (intent, refused result,
 * notice) and shown whole: a result read before its intent waits for it,
 * across segments; the reading stops once n requests are whole. */
static void tail_reads_back_across_segments(void **state)
{
    (void)state;
    char dir[] = "/tmp/byline-tail-XXXXXX";
    assert_non_null(mkdtemp(dir));
    put_seg(dir, 1, "I:a I:w R:a I:b");
    put_seg(dir, 2, "R:b F:c I:d N:start R:w I:e");
    want_rows(dir, 0, "", 0);
    want_rows(dir, 1, "e/pending", 0);
    want_rows(dir, 3, "d/pending start e/pending", 0);
    want_rows(dir, 4, "c/unauthenticated d/pending start e/pending", 0);
    want_rows(dir, 5, "b/allowed c/unauthenticated d/pending start e/pending", 0);
    want_rows(dir, 6, "w/allowed b/allowed c/unauthenticated d/pending start e/pending", 0);
    want_rows(dir, 10, "a/allowed w/allowed b/allowed c/unauthenticated d/pending start e/pending", 0);
    clear_dir(dir);
}

/* Bad lines are skipped and counted (only those read); a line longer than
 * a read chunk comes back whole; one longer than the reader takes is
 * skipped; a result whose intent is nowhere is a request where it stands. */
static void tail_skips_damage_and_keeps_orphans(void **state)
{
    (void)state;
    char dir[] = "/tmp/byline-tail-XXXXXX";
    assert_non_null(mkdtemp(dir));
    put_seg(dir, 1, "X:- R:x W:y");
    put_seg(dir, 2, "A:y L:- I:z T:-");
    want_rows(dir, 1, "z/pending", 1);
    want_rows(dir, 2, "y/aborted(300016) z/pending", 2);
    want_rows(dir, 10, "x/allowed y/aborted(300016) z/pending", 3);
    clear_dir(dir);
}

/* A missing segment is an error only when the rows asked for lie beyond it. */
static void tail_stops_at_a_missing_segment(void **state)
{
    (void)state;
    char dir[] = "/tmp/byline-tail-XXXXXX";
    assert_non_null(mkdtemp(dir));
    put_seg(dir, 2, "I:a R:a");
    put_seg(dir, 4, "I:b R:b");
    want_rows(dir, 1, "b/allowed", 0);
    int rc;
    size_t skipped;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    char *got = tail_rows(dir, 2, &rc, &skipped, &err);
    assert_int_equal(rc, BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "ledger-000003.jsonl is missing"));
    free(got);
    char path[128];
    snprintf(path, sizeof(path), "%s/ledger-000004.jsonl", dir);
    assert_int_equal(unlink(path), 0);
    got = tail_rows(dir, 2, &rc, &skipped, &err);
    assert_int_equal(rc, BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "ledger-000001.jsonl is missing"));
    free(got);
    bl_buf_free(&err);
    clear_dir(dir);
    /* and no ledger at all is not an error: BL_DECLINED */
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
    assert_non_null(mkdtemp(dir));
    got = tail_rows(dir, 2, &rc, &skipped, &err);
    assert_int_equal(rc, BL_DECLINED);
    free(got);
    clear_dir(dir);
}

/* Bodies: Secret data redacted wherever it appears; markers otherwise. */
static void bodies_are_redacted_and_bounded(void **state)
{
    (void)state;
    static const struct { const char *body; int complete; const char *resource; const char *want; } cases[] = {
        { "{\"kind\":\"List\",\"items\":[{\"kind\":\"Secret\",\"data\":{\"a\":\"czE=\"},\"stringData\":{\"b\":\"x\"}},"
          "{\"kind\":\"Pod\",\"data\":{\"a\":\"keep\"}}]}",
          1, "pods",
          "{\"items\":[{\"data\":{\"a\":\"REDACTED\"},\"kind\":\"Secret\",\"stringData\":{\"b\":\"REDACTED\"}},"
          "{\"data\":{\"a\":\"keep\"},\"kind\":\"Pod\"}],\"kind\":\"List\"}" },
        { "{\"kind\":\"Secret\",\"data\":{\"a\":\"x\"}}", 1, "secrets", "{\"bytes\":34,\"omitted\":\"secret\"}" },
        { "{\"kind\":\"ConfigMap\"}", 1, "configmaps", "{\"bytes\":20,\"omitted\":\"configmap\"}" },
        { "{\"kind\":\"Pod\"", 0, "pods", "{\"bytes\":13,\"omitted\":\"truncated\"}" },
        { "k8s\x00protobuf", 1, "pods", "{\"bytes\":12,\"omitted\":\"not JSON\"}" },
        { "{\"cpu\":0.5}", 1, "pods", "{\"bytes\":11,\"omitted\":\"not representable\"}" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bl_buf_t b;
        bl_buf_init(&b, 4096);
        size_t n = i == 4 ? 12 : strlen(cases[i].body);
        assert_int_equal(bl_body_json(&b, cases[i].body, n, cases[i].complete, n, cases[i].resource), BL_OK);
        assert_string_equal(bl_buf_cstr(&b), cases[i].want);
        bl_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(intent_and_result_entries),
        cmocka_unit_test(unauthenticated_result_is_complete_alone),
        cmocka_unit_test(tail_joins_and_renders_the_seed_format),
        cmocka_unit_test(tail_json_merges_intent_and_result),
        cmocka_unit_test(tail_reads_back_across_segments),
        cmocka_unit_test(tail_skips_damage_and_keeps_orphans),
        cmocka_unit_test(tail_stops_at_a_missing_segment),
        cmocka_unit_test(bodies_are_redacted_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
