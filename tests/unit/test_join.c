/* test_join.c - `byline audit join`: every shape of the cluster's audit log,
 * stage folding, each kind of row, the window, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "audit/join.h"
#include "audit/when.h"

#define SHARED "system:serviceaccount:byline:gateway"
#define ID1 "01a22193-d8d4-7c43-afcf-49fc05a6a4a6"
#define ID2 "01a22193-d8df-7953-95b9-b66d843b87b6"
#define ID3 "01a22193-d8eb-7156-aba9-8650fa3432b1"
#define ID4 "01a22193-d9a5-7f28-81e4-298a37ba738b"
#define ID5 "01a22193-da29-764a-ac41-f53835ad71bd"
#define V4ID "650ba88a-ebc1-4dfc-96fc-6bb499f5d1e2"
#define T0 "2026-11-28T09:54:27"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/byline-test-join-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- building inputs --- */

static char *cat(char *acc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *cat(char *acc, const char *fmt, ...)
{
    va_list ap;
    size_t n = acc ? strlen(acc) : 0;
    va_start(ap, fmt);
    int add = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    acc = realloc(acc, n + (size_t)add + 1);
    assert_non_null(acc);
    va_start(ap, fmt);
    vsnprintf(acc + n, (size_t)add + 1, fmt, ap);
    va_end(ap);
    return acc;
}

/* One audit.k8s.io/v1 Event (no newline). `ref` is an objectRef's members or NULL. */
static char *event(const char *id, const char *stage, const char *user, const char *verb, const char *uri,
                   const char *ref, int code, const char *ts)
{
    char *e = cat(NULL, "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
                  "\"auditID\":\"%s\",\"stage\":\"%s\",\"requestURI\":\"%s\",\"verb\":\"%s\","
                  "\"user\":{\"username\":\"%s\",\"groups\":[\"system:authenticated\"]},"
                  "\"sourceIPs\":[\"127.0.0.1\"]", id, stage, uri, verb, user);
    if (ref)
        e = cat(e, ",\"objectRef\":{%s}", ref);
    if (code)
        e = cat(e, ",\"responseStatus\":{\"metadata\":{},\"code\":%d}", code);
    return cat(e, ",\"requestReceivedTimestamp\":\"%s\",\"stageTimestamp\":\"%s\"}", ts, ts);
}

/* A pods list in web, as the stand-in logs it. */
static char *pods(const char *id, const char *stage, const char *user, int code, const char *ts)
{
    return event(id, stage, user, "list", "/api/v1/namespaces/web/pods?limit=500",
                 "\"resource\":\"pods\",\"namespace\":\"web\",\"apiVersion\":\"v1\"", code, ts);
}

static char *line(char *acc, char *ev)
{
    acc = cat(acc, "%s\n", ev);
    free(ev);
    return acc;
}

static void put_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

/* Ledger entries, wrapped as leaves. */
static char *leaf(char *acc, const char *entry)
{
    static int seq;
    return cat(acc, "{\"entry\":%s,\"prev\":\"x\",\"seq\":%d}\n", entry, seq++);
}

static char *intent(char *acc, const char *id, const char *ts, const char *request)
{
    char e[2048];
    snprintf(e, sizeof(e), "{\"action\":\"kubectl get pods -n web\",\"actor\":\"agent-a\",\"connection\":\"prod\","
             "\"credential\":\"token\",\"groups\":[\"g\"],\"id\":\"%s\",\"kind\":\"intent\",\"method\":\"GET\","
             "\"request\":{%s},\"ts\":\"%s\",\"uri\":\"/api/v1/namespaces/web/pods\"}", id, request, ts);
    return leaf(acc, e);
}

#define PODS_REQ "\"apiVersion\":\"v1\",\"namespace\":\"web\",\"resource\":\"pods\",\"verb\":\"list\""

static char *result(char *acc, const char *id, const char *ts, const char *res, int status)
{
    char e[1024];
    snprintf(e, sizeof(e), "{\"actor\":\"agent-a\",\"id\":\"%s\",\"kind\":\"result\",\"result\":\"%s\","
             "\"status\":%d,\"ts\":\"%s\"}", id, res, status, ts);
    return leaf(acc, e);
}

static void put_ledger(char *text)
{
    put_file("ledger-000001.jsonl", text);
    free(text);
}

/* --- running a join --- */

static bl_join_opts_t opts(void)
{
    bl_join_opts_t o = { BL_JOIN_NO_TIME, BL_JOIN_NO_TIME, 120 * 1000000ll, NULL, 0, 0 };
    return o;
}

/* Reads `text` as a cluster log. Returns the rc; err is left in errbuf. */
static int feed(bl_join_t *j, const char *text, char *errbuf, size_t cap)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fflush(f);
    rewind(f);
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    int rc = bl_join_read_cluster(j, fileno(f), "test.log", &err);
    if (errbuf)
        snprintf(errbuf, cap, "%s", bl_buf_size(&err) ? bl_buf_cstr(&err) : "");
    bl_buf_free(&err);
    fclose(f);
    return rc;
}

/* Joins `cluster` with the ledger in dir. Returns the join (caller frees). */
static bl_join_t *join(bl_join_opts_t o, const char *cluster)
{
    bl_join_t *j = bl_join_new(&o);
    assert_non_null(j);
    assert_int_equal(feed(j, cluster, NULL, 0), BL_OK);
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    if (bl_join_read_ledger(j, dir, &err) != BL_OK)
        fail_msg("ledger: %s", bl_buf_cstr(&err));
    bl_buf_free(&err);
    assert_int_equal(bl_join_run(j), BL_OK);
    return j;
}

/* Returns the row for byline id or auditID `id` (the n-th such), or fails. */
static const bl_join_row_t *row(const bl_join_t *j, const char *id, int nth)
{
    const bl_join_row_t *rows;
    size_t n = bl_join_rows(j, &rows);
    for (size_t i = 0; i < n; i++) {
        const char *rid = rows[i].rec ? rows[i].rec->id : rows[i].ev->audit_id;
        if (!strcmp(rid, id) && nth-- == 0)
            return &rows[i];
    }
    fail_msg("no row for %s", id);
    return NULL;
}

static void want_kind(const bl_join_t *j, const char *id, bl_join_kind_t k)
{
    const bl_join_row_t *r = row(j, id, 0);
    if (r->kind != k)
        fail_msg("%s: want %s, got %s (%s)", id, bl_join_kind_name(k), bl_join_kind_name(r->kind), r->detail);
}

/* The ledger most tests use: ID1 and ID2 forwarded (list pods in web). */
static void two_forwarded(void)
{
    char *l = intent(NULL, ID1, T0 ".100000Z", PODS_REQ);
    l = result(l, ID1, T0 ".100000Z", "allowed", 200);
    l = intent(l, ID2, T0 ".200000Z", PODS_REQ);
    l = result(l, ID2, T0 ".200000Z", "allowed", 200);
    put_ledger(l);
}

/* --- time --- */

/* join takes --since/--until/--grace through when.c, the parser audit
 * query uses: the forms AUDIT-JOIN.md documents (the same as
 * AUDIT-QUERY.md's) are accepted, and --grace may be 0. */
static void times_and_durations(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(bl_when_parse("2026-06-15T12:04:01Z", 0, &t), BL_OK);
    assert_true(t == 1781525041ll * 1000000);
    assert_int_equal(bl_when_parse("2026-06-15T12:04:01.5Z", 0, &t), BL_OK);
    assert_true(t == 1781525041ll * 1000000 + 500000);
    assert_int_equal(bl_when_parse("2026-06-15T14:04:01.123456789+02:00", 0, &t), BL_OK);
    assert_true(t == 1781525041ll * 1000000 + 123456);
    assert_int_equal(bl_when_parse("2026-06-15 11:04:01-01:00", 0, &t), BL_OK);
    assert_true(t == 1781525041ll * 1000000);
    assert_int_equal(bl_when_parse("2026-06-15", 0, &t), BL_OK);
    assert_true(t == 1781481600ll * 1000000);
    assert_int_equal(bl_when_parse("2h", 10000000000ll, &t), BL_OK);
    assert_true(t == 10000000000ll - 7200ll * 1000000);
    assert_int_equal(bl_when_parse("1h30m", 10000000000ll, &t), BL_OK);
    assert_true(t == 10000000000ll - 5400ll * 1000000);
    assert_int_equal(bl_when_parse("now", 10000000000ll, &t), BL_OK);
    assert_true(t == 10000000000ll);
    assert_int_equal(bl_when_parse("0s", 10000000000ll, &t), BL_OK); /* join_test's --until 0s */
    assert_true(t == 10000000000ll);
    assert_int_equal(bl_when_margin("7d", &t), BL_OK);
    assert_true(t == 7 * 86400ll * 1000000);
    assert_int_equal(bl_when_margin("0", &t), BL_OK);
    assert_true(t == 0);
    assert_int_equal(bl_when_margin("0s", &t), BL_OK);
    assert_true(t == 0);
    assert_int_equal(bl_when_margin("", &t), BL_ERROR);
    assert_int_equal(bl_when_margin("-1m", &t), BL_ERROR);
    const char *bad[] = { "", "2h5", "h", "2026-13-01", "2026-06-15T25:00:00Z", "2026-06-15T12:04:01",
                          "2026-06-15T12:04:01.Z", "2026-06-15T12:04:01+2:00", "yesterday", "-5m",
                          "99999999999999d", "2026-06-15T12:04:01Zjunk", "0", "2026-02-30" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (bl_when_parse(bad[i], 0, &t) == BL_OK)
            fail_msg("'%s' parsed", bad[i]);
}

/* --- the cluster log's shapes --- */

/* Each shape holds the same two requests (ID1, ID2), both matched. */
static void check_two_matched(const char *cluster, size_t lines)
{
    two_forwarded();
    bl_join_t *j = join(opts(), cluster);
    const bl_join_summary_t *s = bl_join_summary(j);
    assert_int_equal(s->bad_lines, 0);
    assert_int_equal(s->lines, lines);
    assert_int_equal(s->records, 2);
    assert_int_equal(s->events, 2);
    assert_int_equal(s->kinds[BL_JOIN_MATCHED], 2);
    assert_int_equal(bl_join_nflagged(j), 0);
    want_kind(j, ID1, BL_JOIN_MATCHED);
    assert_string_equal(row(j, ID2, 0)->ev->stage, "ResponseComplete");
    assert_int_equal(row(j, ID2, 0)->ev->code, 200);
    bl_join_free(j);
}

static void json_lines_fold_stages(void **state)
{
    (void)state;
    char *c = line(NULL, pods(ID1, "RequestReceived", SHARED, 0, T0 ".101000Z"));
    c = line(c, pods(ID2, "RequestReceived", SHARED, 0, T0 ".201000Z"));
    c = cat(c, "\n   \n"); /* blank lines are nothing */
    c = line(c, pods(ID2, "ResponseComplete", SHARED, 200, T0 ".201000Z"));
    c = line(c, pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z"));
    c = line(c, pods(ID1, "RequestReceived", SHARED, 0, T0 ".101000Z")); /* a later lower stage changes nothing */
    check_two_matched(c, 5);
    free(c);
}

static void eventlist_per_line_and_as_document(void **state)
{
    (void)state;
    char *a = pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z");
    char *b = pods(ID2, "ResponseComplete", SHARED, 200, T0 ".201000Z");
    char *c = cat(NULL, "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[%s]}\n"
                  "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[%s]}\n", a, b);
    check_two_matched(c, 2);
    free(c);
    /* one pretty-printed document, as a webhook body saved to a file */
    c = cat(NULL, "{\n  \"kind\": \"EventList\",\n  \"apiVersion\": \"audit.k8s.io/v1\",\n  \"items\": [\n    %s,\n"
            "    %s\n  ]\n}\n", a, b);
    check_two_matched(c, 1);
    free(c);
    free(a);
    free(b);
}

/* Escapes s as a JSON string's contents. */
static char *jquote(const char *s)
{
    char *o = cat(NULL, "%s", "");
    for (; *s; s++)
        o = *s == '"' || *s == '\\' ? cat(o, "\\%c", *s) : cat(o, "%c", *s);
    return o;
}

static void cloudwatch_exports(void **state)
{
    (void)state;
    char *a = pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z");
    char *b = pods(ID2, "ResponseComplete", SHARED, 200, T0 ".201000Z");
    /* export to S3: a timestamp, then the message; `aws logs tail`: a stream name too */
    char *c = cat(NULL, "2026-11-28T09:54:27.101Z %s\n2026-11-28T09:54:27.201000+00:00 kube-apiserver-audit-0f3c %s\n",
                  a, b);
    check_two_matched(c, 2);
    free(c);
    /* filter-log-events events, one JSON object per line (jq -c '.events[]') */
    char *qa = jquote(a), *qb = jquote(b);
    c = cat(NULL, "{\"logStreamName\":\"kube-apiserver-audit-0f3c\",\"timestamp\":1795859667101,\"message\":\"%s\","
            "\"ingestionTime\":1795859668000,\"eventId\":\"1\"}\n{\"timestamp\":1795859667201,\"message\":\"%s\"}\n",
            qa, qb);
    check_two_matched(c, 2);
    free(c);
    /* the whole filter-log-events output, pretty-printed */
    c = cat(NULL, "{\n    \"events\": [\n        {\"timestamp\": 1795859667101, \"message\": \"%s\"},\n"
            "        {\"timestamp\": 1795859667201, \"message\": \"%s\"}\n    ],\n"
            "    \"searchedLogStreams\": []\n}\n", qa, qb);
    check_two_matched(c, 1);
    free(c);
    free(qa);
    free(qb);
    free(a);
    free(b);
}

static void gzip_input(void **state)
{
    (void)state;
    char *c = line(NULL, pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z"));
    c = line(c, pods(ID2, "ResponseComplete", SHARED, 200, T0 ".201000Z"));
    char path[256];
    snprintf(path, sizeof(path), "%s/cluster.jsonl.gz", dir);
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, c, (unsigned)strlen(c)), (int)strlen(c));
    gzclose(gz);
    free(c);
    two_forwarded();
    bl_join_opts_t o = opts();
    bl_join_t *j = bl_join_new(&o);
    FILE *f = fopen(path, "rb");
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    assert_int_equal(bl_join_read_cluster(j, fileno(f), path, &err), BL_OK);
    fclose(f);
    assert_int_equal(bl_join_read_ledger(j, dir, &err), BL_OK);
    assert_int_equal(bl_join_run(j), BL_OK);
    assert_int_equal(bl_join_summary(j)->kinds[BL_JOIN_MATCHED], 2);
    bl_buf_free(&err);
    bl_join_free(j);
}

static void malformed_lines_are_counted(void **state)
{
    (void)state;
    char *c = line(NULL, pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z"));
    c = cat(c, "this is not json\n{\"kind\":\"Event\",\"auditID\":\n[1,2]\n{\"kind\":\"Pod\"}\n");
    c = cat(c, "{\"kind\":\"Event\",\"auditID\":\"x\",\"stage\":\"Nope\",\"requestReceivedTimestamp\":\"" T0 "Z\"}\n");
    c = cat(c, "{\"kind\":\"Event\",\"auditID\":\"y\",\"stage\":\"ResponseComplete\",\"requestReceivedTimestamp\":\"soon\"}\n");
    c = cat(c, "2026-11-28T09:54:27Z no json here\n\"a string\"\n{\"message\":\"{not json\"}\n");
    c = cat(c, "{\"kind\":\"EventList\",\"items\":[%s, 7]}\n", "{}");
    c = line(c, pods(ID2, "ResponseComplete", SHARED, 200, T0 ".201000Z"));
    two_forwarded();
    bl_join_t *j = join(opts(), c);
    const bl_join_summary_t *s = bl_join_summary(j);
    assert_int_equal(s->bad_lines, 10);
    assert_int_equal(s->lines, 12);
    assert_non_null(strstr(s->first_bad, "test.log line 2: not JSON"));
    assert_int_equal(s->kinds[BL_JOIN_MATCHED], 2);
    bl_join_free(j);
    free(c);
}

static void over_long_line_is_skipped(void **state)
{
    (void)state;
    size_t big = BL_JOIN_MAX_LINE + 10;
    char *c = malloc(big + 1);
    assert_non_null(c);
    memset(c, 'x', big);
    c[0] = '{';
    c[big] = '\0';
    char *a = pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z");
    char *b = pods(ID2, "ResponseComplete", SHARED, 200, T0 ".201000Z");
    char *all = cat(NULL, "%s\n%s\n%s\n", a, c, b);
    two_forwarded();
    bl_join_t *j = join(opts(), all);
    assert_int_equal(bl_join_summary(j)->bad_lines, 1);
    assert_non_null(strstr(bl_join_summary(j)->first_bad, "line 2: line longer than"));
    assert_int_equal(bl_join_summary(j)->kinds[BL_JOIN_MATCHED], 2);
    bl_join_free(j);
    free(all);
    free(a);
    free(b);
    free(c);
}

static void the_bound_on_events(void **state)
{
    (void)state;
    char *c = NULL, err[512];
    for (int i = 0; i < 5; i++) {
        char id[40];
        snprintf(id, sizeof(id), "id-%d", i);
        c = line(c, pods(id, "ResponseComplete", "someone", 200, T0 ".101000Z"));
    }
    bl_join_opts_t o = opts();
    o.max_items = 4;
    bl_join_t *j = bl_join_new(&o);
    assert_int_equal(feed(j, c, err, sizeof(err)), BL_ERROR);
    assert_non_null(strstr(err, "more than 4 cluster requests"));
    bl_join_free(j);
    free(c);
}

/* --- kinds --- */

static void every_kind(void **state)
{
    (void)state;
    const char *ts = T0 ".100000Z";
    char *l = intent(NULL, ID1, ts, PODS_REQ);           /* matched */
    l = result(l, ID1, ts, "allowed", 200);
    l = intent(l, ID2, T0 ".200000Z", PODS_REQ);         /* lost */
    l = result(l, ID2, T0 ".200000Z", "allowed", 200);
    l = intent(l, ID3, T0 ".300000Z", PODS_REQ);         /* aborted, never reached */
    l = leaf(l, "{\"id\":\"" ID3 "\",\"kind\":\"aborted\",\"reason\":\"restart\",\"ts\":\"" T0 ".900000Z\"}");
    l = leaf(l, "{\"action\":\"kubectl get pods -n web\",\"actor\":null,\"credential\":\"none\",\"id\":\"" ID4 "\","
                "\"kind\":\"result\",\"method\":\"GET\",\"reason\":\"no credentials presented\",\"result\":"
                "\"unauthenticated\",\"status\":401,\"ts\":\"" T0 ".400000Z\"}"); /* refused */
    l = intent(l, ID5, T0 ".500000Z", PODS_REQ);         /* pending */
    l = leaf(l, "{\"detail\":\"x\",\"event\":\"start\",\"kind\":\"notice\",\"ts\":\"" T0 ".000000Z\"}");
    put_ledger(l);
    char *c = line(NULL, pods(ID1, "ResponseComplete", SHARED, 200, T0 ".101000Z"));
    c = line(c, pods(V4ID, "ResponseComplete", SHARED, 200, T0 ".600000Z"));           /* bypass */
    c = line(c, pods("01a22193-ffff-7fff-8fff-ffffffffffff", "ResponseComplete", SHARED, 200,
                     T0 ".700000Z"));                                                 /* forged: not in the ledger */
    c = line(c, pods(ID1, "ResponseComplete", "mallory", 200, T0 ".800000Z"));         /* forged: reuses ID1 */
    c = line(c, pods("5b4d7a9e-1111-4222-8333-444455556666", "ResponseComplete", "admin", 200,
                     T0 ".850000Z"));                                                 /* another user's */
    bl_join_t *j = join(opts(), c);
    want_kind(j, ID1, BL_JOIN_MATCHED);
    want_kind(j, ID2, BL_JOIN_LOST);
    assert_non_null(strstr(row(j, ID2, 0)->detail, "no event with auditID " ID2));
    want_kind(j, ID3, BL_JOIN_ABORTED);
    want_kind(j, ID4, BL_JOIN_REFUSED);
    want_kind(j, ID5, BL_JOIN_PENDING);
    want_kind(j, V4ID, BL_JOIN_BYPASS);
    want_kind(j, "01a22193-ffff-7fff-8fff-ffffffffffff", BL_JOIN_FORGED);
    const bl_join_row_t *reuse = row(j, ID1, 1);
    assert_int_equal(reuse->kind, BL_JOIN_FORGED);
    assert_null(reuse->rec);
    assert_string_equal(reuse->ev->user, "mallory");
    const bl_join_summary_t *s = bl_join_summary(j);
    assert_int_equal(s->records, 5);
    assert_int_equal(s->events, 5);
    assert_int_equal(s->other_users, 1);
    assert_int_equal(s->kinds[BL_JOIN_FORGED], 2);
    assert_int_equal(bl_join_nflagged(j), 4);
    const char *const *names;
    assert_int_equal(bl_join_shared(j, &names), 1); /* learned from ID1's event, not mallory's */
    assert_string_equal(names[0], SHARED);
    /* rows come oldest first */
    const bl_join_row_t *rows;
    size_t n = bl_join_rows(j, &rows);
    for (size_t i = 1; i < n; i++)
        assert_true(rows[i - 1].t_us <= rows[i].t_us);
    json_t *js = bl_join_summary_json(j);
    assert_int_equal(json_integer_value(json_object_get(js, "lost")), 1);
    assert_int_equal(json_integer_value(json_object_get(js, "flagged")), 4);
    json_decref(js);
    json_t *jr = bl_join_row_json(row(j, ID2, 0));
    assert_string_equal(json_string_value(json_object_get(jr, "kind")), "lost");
    assert_true(json_is_true(json_object_get(jr, "flagged")));
    assert_null(json_object_get(jr, "cluster"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(jr, "byline"), "actor")), "agent-a");
    json_decref(jr);
    bl_join_free(j);
    free(c);
}

static void bypass_needs_the_shared_user(void **state)
{
    (void)state;
    /* nothing matched: who byline is upstream is unknown until --shared-user says */
    put_ledger(intent(NULL, ID1, T0 ".100000Z", PODS_REQ));
    char *c = line(NULL, pods(V4ID, "ResponseComplete", SHARED, 200, T0 ".600000Z"));
    bl_join_t *j = join(opts(), c);
    assert_int_equal(bl_join_summary(j)->other_users, 1);
    assert_int_equal(bl_join_nflagged(j), 0);
    bl_join_free(j);
    const char *users[] = { SHARED };
    bl_join_opts_t o = opts();
    o.shared_users = users;
    o.nshared = 1;
    j = join(o, c);
    want_kind(j, V4ID, BL_JOIN_BYPASS);
    bl_join_free(j);
    free(c);
}

static void refused_id_seen_upstream_is_forged(void **state)
{
    (void)state;
    char *l = leaf(NULL, "{\"action\":\"kubectl delete namespace web\",\"actor\":\"agent-a\",\"credential\":\"token\","
                         "\"id\":\"" ID1 "\",\"kind\":\"result\",\"method\":\"DELETE\",\"reason\":\"policy\","
                         "\"result\":\"denied\",\"status\":403,\"ts\":\"" T0 ".100000Z\"}");
    put_ledger(l);
    char *c = line(NULL, event(ID1, "ResponseComplete", SHARED, "delete", "/api/v1/namespaces/web",
                               "\"resource\":\"namespaces\",\"namespace\":\"web\",\"name\":\"web\"", 200, T0 ".150000Z"));
    bl_join_t *j = join(opts(), c);
    want_kind(j, ID1, BL_JOIN_FORGED);
    assert_non_null(strstr(row(j, ID1, 0)->detail, "byline refused this request"));
    bl_join_free(j);
    free(c);
}

static void mismatches(void **state)
{
    (void)state;
    char *l = NULL;
    const char *ids[] = { ID1, ID2, ID3, ID4, ID5 };
    for (int i = 0; i < 5; i++) {
        char ts[40];
        snprintf(ts, sizeof(ts), T0 ".%d00000Z", i + 1);
        l = intent(l, ids[i], ts, i == 4 ? "\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"namespace\":\"web\","
                                           "\"resource\":\"configmaps\",\"verb\":\"create\""
                                         : "\"apiVersion\":\"v1\",\"name\":\"api-0\",\"namespace\":\"web\","
                                           "\"resource\":\"pods\",\"verb\":\"get\"");
        l = result(l, ids[i], ts, "allowed", i == 2 ? 200 : i == 4 ? 201 : 200);
    }
    put_ledger(l);
#define POD_REF(ns, name) "\"resource\":\"pods\",\"namespace\":\"" ns "\",\"name\":\"" name "\",\"apiVersion\":\"v1\""
    char *c = line(NULL, event(ID1, "ResponseComplete", SHARED, "delete", "/api/v1/namespaces/web/pods/api-0",
                               POD_REF("web", "api-0"), 200, T0 ".101000Z"));
    c = line(c, event(ID2, "ResponseComplete", SHARED, "get", "/api/v1/namespaces/kube-system/pods/api-0",
                      POD_REF("kube-system", "api-0"), 200, T0 ".201000Z"));
    c = line(c, event(ID3, "ResponseComplete", SHARED, "get", "/api/v1/namespaces/web/pods/api-0",
                      POD_REF("web", "api-0"), 500, T0 ".301000Z"));
    c = line(c, event(ID4, "ResponseComplete", SHARED, "get", "/api/v1/namespaces/web/pods",
                      "\"resource\":\"pods\",\"namespace\":\"web\"", 200, T0 ".401000Z"));
    /* a create whose name only the cluster knows (from the body) is no mismatch */
    c = line(c, event(ID5, "ResponseComplete", SHARED, "create", "/api/v1/namespaces/web/configmaps",
                      "\"resource\":\"configmaps\",\"namespace\":\"web\",\"name\":\"settings\"", 201, T0 ".501000Z"));
    bl_join_t *j = join(opts(), c);
    want_kind(j, ID1, BL_JOIN_MISMATCH);
    assert_string_equal(row(j, ID1, 0)->detail, "verb: byline get, cluster delete");
    want_kind(j, ID2, BL_JOIN_MISMATCH);
    assert_string_equal(row(j, ID2, 0)->detail, "object: byline pods/api-0 -n web, cluster pods/api-0 -n kube-system");
    want_kind(j, ID3, BL_JOIN_MISMATCH);
    assert_string_equal(row(j, ID3, 0)->detail, "code: byline 200, cluster 500");
    want_kind(j, ID4, BL_JOIN_MISMATCH); /* the cluster acted on the whole collection */
    want_kind(j, ID5, BL_JOIN_MATCHED);
    assert_int_equal(bl_join_summary(j)->kinds[BL_JOIN_MISMATCH], 4);
    bl_join_free(j);
    free(c);
}

static void stage_fallbacks(void **state)
{
    (void)state;
    two_forwarded();
    /* a watch cut off: ResponseStarted only; a request logged only as received */
    char *c = line(NULL, pods(ID1, "RequestReceived", SHARED, 0, T0 ".101000Z"));
    c = line(c, pods(ID1, "ResponseStarted", SHARED, 200, T0 ".101000Z"));
    c = line(c, pods(ID2, "RequestReceived", SHARED, 0, T0 ".201000Z"));
    bl_join_t *j = join(opts(), c);
    want_kind(j, ID1, BL_JOIN_MATCHED);
    assert_string_equal(row(j, ID1, 0)->ev->stage, "ResponseStarted");
    want_kind(j, ID2, BL_JOIN_MATCHED);
    assert_non_null(strstr(row(j, ID2, 0)->detail, "only RequestReceived"));
    assert_int_equal(bl_join_summary(j)->received_only, 1);
    bl_join_free(j);
    free(c);
}

/* --- the window --- */

static void since_until_and_grace(void **state)
{
    (void)state;
    /* ID1 at :10, ID2 at :20, ID3 at :30 (lost), ID4 at :40 (lost); events for ID1, ID2 */
    char *l = NULL;
    const char *ids[] = { ID1, ID2, ID3, ID4 };
    for (int i = 0; i < 4; i++) {
        char ts[40];
        snprintf(ts, sizeof(ts), "2026-11-28T10:00:%d0.000000Z", i + 1);
        l = intent(l, ids[i], ts, PODS_REQ);
        l = result(l, ids[i], ts, "allowed", 200);
    }
    put_ledger(l);
    char *c = line(NULL, pods(ID1, "ResponseComplete", SHARED, 200, "2026-11-28T10:00:10.002000Z"));
    /* the cluster's clock is behind: ID2's event is before --since, inside the grace */
    c = line(c, pods(ID2, "ResponseComplete", SHARED, 200, "2026-11-28T10:00:14.000000Z"));
    c = line(c, pods(V4ID, "ResponseComplete", SHARED, 200, "2026-11-28T10:00:05.000000Z"));
    bl_join_opts_t o = opts();
    o.grace_us = 10 * 1000000ll;
    assert_int_equal(bl_when_rfc3339("2026-11-28T10:00:15Z", &o.since_us), BL_OK);
    assert_int_equal(bl_when_rfc3339("2026-11-28T10:00:35Z", &o.until_us), BL_OK);
    bl_join_t *j = join(o, c);
    const bl_join_summary_t *s = bl_join_summary(j);
    want_kind(j, ID2, BL_JOIN_MATCHED);
    want_kind(j, ID3, BL_JOIN_LOST);
    assert_int_equal(s->records, 2);          /* ID2, ID3 */
    assert_int_equal(s->kinds[BL_JOIN_LOST], 1);
    assert_int_equal(s->kinds[BL_JOIN_BYPASS], 0); /* V4ID is before the window */
    assert_int_equal(s->records_outside, 2);  /* ID1 and ID4 */
    bl_join_free(j);
    /* no window given: the cluster log's first and last event; ID3 and ID4 are after it */
    j = join(opts(), c);
    s = bl_join_summary(j);
    assert_int_equal(s->kinds[BL_JOIN_LOST], 0);
    assert_int_equal(s->kinds[BL_JOIN_MATCHED], 2);
    assert_int_equal(s->kinds[BL_JOIN_BYPASS], 1);
    assert_int_equal(s->records_outside, 2);
    bl_join_free(j);
    free(c);
    /* no events and no window: nothing can be judged */
    bl_join_opts_t e = opts();
    bl_join_t *k = bl_join_new(&e);
    assert_int_equal(feed(k, "", NULL, 0), BL_OK);
    assert_int_equal(bl_join_run(k), BL_DECLINED);
    bl_join_free(k);
}

static void the_real_sample(void **state)
{
    (void)state;
    const char *path = "/work/shared/captures/kube-apiserver-1.26-audit-sample.jsonl";
    FILE *f = fopen(path, "r");
    if (f == NULL)
        skip();
    /* byline's record for the sample's one UUIDv7 request (impersonated, scale) */
    put_ledger(result(intent(NULL, "0192f3a4-7b1c-7d2e-8f00-123456789abc", "2026-11-28T06:22:33.850000Z",
                             "\"apiGroup\":\"apps\",\"apiVersion\":\"v1\",\"name\":\"api\",\"namespace\":\"web\","
                             "\"replicas\":5,\"resource\":\"deployments\",\"subresource\":\"scale\",\"verb\":\"patch\""),
                      "0192f3a4-7b1c-7d2e-8f00-123456789abc", "2026-11-28T06:22:33.850000Z", "allowed", 200));
    bl_join_opts_t o = opts();
    bl_join_t *j = bl_join_new(&o);
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    assert_int_equal(bl_join_read_cluster(j, fileno(f), path, &err), BL_OK);
    fclose(f);
    assert_int_equal(bl_join_read_ledger(j, dir, &err), BL_OK);
    assert_int_equal(bl_join_run(j), BL_OK);
    const bl_join_summary_t *s = bl_join_summary(j);
    assert_int_equal(s->bad_lines, 0);
    assert_int_equal(s->events, 7);
    assert_int_equal(s->kinds[BL_JOIN_MATCHED], 1);
    const bl_join_row_t *r = row(j, "0192f3a4-7b1c-7d2e-8f00-123456789abc", 0);
    assert_string_equal(r->ev->imp_user, "byline:agent-deploybot");
    assert_string_equal(r->ev->user, "admin");
    /* admin is byline's upstream user here, so admin's other six requests bypassed byline */
    assert_int_equal(s->kinds[BL_JOIN_BYPASS], 6);
    bl_buf_free(&err);
    bl_join_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(times_and_durations),
        cmocka_unit_test_setup_teardown(json_lines_fold_stages, setup, teardown),
        cmocka_unit_test_setup_teardown(eventlist_per_line_and_as_document, setup, teardown),
        cmocka_unit_test_setup_teardown(cloudwatch_exports, setup, teardown),
        cmocka_unit_test_setup_teardown(gzip_input, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_lines_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(over_long_line_is_skipped, setup, teardown),
        cmocka_unit_test(the_bound_on_events),
        cmocka_unit_test_setup_teardown(every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(bypass_needs_the_shared_user, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_id_seen_upstream_is_forged, setup, teardown),
        cmocka_unit_test_setup_teardown(mismatches, setup, teardown),
        cmocka_unit_test_setup_teardown(stage_fallbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(since_until_and_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(the_real_sample, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
