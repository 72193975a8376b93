/* test_index.c - the query index: built from a ledger of canonical lines
 * written here (chained as docs/AUDIT-FORMAT.md says), updated
 * incrementally, rebuilt when the ledger no longer matches it, filtered;
 * and the --since/--until time syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/index.h"
#include "audit/jcs.h"
#include "audit/merkle.h"
#include "audit/when.h"

/* ---- a ledger written by hand ---- */

typedef struct {
    char dir[64];
    unsigned seg;        /* the segment lines go to */
    uint64_t seq;
    bl_hash_t prev;
} ledger_t;

static ledger_t L;

static int setup(void **state)
{
    (void)state;
    memset(&L, 0, sizeof(L));
    snprintf(L.dir, sizeof(L.dir), "/tmp/byline-test-index-XXXXXX");
    L.seg = 1;
    return mkdtemp(L.dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", L.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void seg_path(unsigned n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/ledger-%06u.jsonl", L.dir, n);
}

static void append_raw(const char *bytes, size_t n)
{
    char path[128];
    seg_path(L.seg, path, sizeof(path));
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* Appends a leaf line holding `entry` (stolen), chained to the last one. */
static void leaf(json_t *entry)
{
    char prev[48];
    EVP_EncodeBlock((unsigned char *)prev, L.prev.h, 32);
    json_t *line = json_pack("{s:o, s:s, s:I}", "entry", entry, "prev", prev, "seq", (json_int_t)L.seq);
    bl_buf_t b;
    bl_buf_init(&b, 1 << 20);
    assert_int_equal(bl_jcs_dump(line, &b), BL_OK);
    bl_merkle_leaf(bl_buf_data(&b), bl_buf_size(&b), &L.prev);
    bl_buf_puts(&b, "\n");
    append_raw(bl_buf_data(&b), bl_buf_size(&b));
    bl_buf_free(&b);
    json_decref(line);
    L.seq++;
}

static void checkpoint_line(void)
{
    const char *t = "{\"checkpoint\":\"stand-in note\"}\n";
    append_raw(t, strlen(t));
}

static const char *rid(int i)
{
    static char ids[64][40];
    snprintf(ids[i], sizeof(ids[i]), "0190a5b2-0000-7000-8000-%012d", i);
    return ids[i];
}

/* 2026-06-15T12:00:00Z plus `min` minutes. */
static const char *ts(int min)
{
    static char buf[64][40];
    static int k;
    char *t = buf[k++ % 64];
    snprintf(t, 40, "2026-06-15T%02d:%02d:00.000123Z", 12 + min / 60, min % 60);
    return t;
}

static void intent(int i, const char *actor, const char *verb, const char *res, const char *ns, int min)
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "verb", verb, "resource", res, "apiVersion", "v1");
    if (ns)
        json_object_set_new(req, "namespace", json_string(ns));
    char action[128];
    snprintf(action, sizeof(action), "kubectl %s %s%s%s", verb, res, ns ? " -n " : "", ns ? ns : "");
    leaf(json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s, s:o, s:s, s:s, s:s}", "kind", "intent", "id", rid(i),
                   "actor", actor, "groups", "deployers", "connection", i % 2 ? "prod" : "staging", "action",
                   action, "request", req, "ts", ts(min), "source_ip", "10.0.0.9", "method", "GET"));
}

static void result(int i, const char *res, int status, int min)
{
    leaf(json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "kind", "result", "id", rid(i), "result", res, "status",
                   status, "duration_us", 1500, "ts", ts(min)));
}

static void notice(const char *event, int min)
{
    leaf(json_pack("{s:s, s:s, s:s, s:s}", "kind", "notice", "event", event, "detail", "test", "ts", ts(min)));
}

/*
 * The standard ledger: 8 requests and 2 notices in 2 segments.
 *   0 alice get pods web          allowed 200   min 0
 *   1 bob   list deployments web  allowed 200   min 5
 *   2 alice delete pods kube-system denied 403  min 10
 *   3 carol patch deployments web  allowed 200  min 20   (segment 2 from here)
 *   4 -     (refused, no intent)   unauthenticated 401 min 30
 *   5 bob   create pods/exec web   aborted       min 40
 *   6 alice get nodes (cluster)    allowed 200   min 50
 *   7 alice watch pods web         pending (no result) min 60
 */
static void standard_ledger(void)
{
    notice("start", 0);
    intent(0, "alice", "get", "pods", "web", 0);
    result(0, "allowed", 200, 0);
    intent(1, "bob", "list", "deployments", "web", 5);
    intent(2, "alice", "delete", "pods", "kube-system", 10);
    result(1, "allowed", 200, 5);
    result(2, "denied", 403, 10);
    checkpoint_line();
    L.seg = 2;
    intent(3, "carol", "patch", "deployments", "web", 20);
    result(3, "allowed", 200, 20);
    leaf(json_pack("{s:s, s:s, s:n, s:s, s:i, s:s, s:s}", "kind", "result", "id", rid(4), "actor", "result",
                   "unauthenticated", "status", 401, "ts", ts(30), "action", "kubectl get secrets -n web"));
    intent(5, "bob", "create", "pods", "web", 40);
    leaf(json_pack("{s:s, s:s, s:s, s:s}", "kind", "aborted", "id", rid(5), "reason", "restart", "ts", ts(41)));
    intent(6, "alice", "get", "nodes", NULL, 50);
    result(6, "allowed", 200, 50);
    notice("stop", 55);
    intent(7, "alice", "watch", "pods", "web", 60);
    checkpoint_line();
}

/* ---- querying ---- */

typedef struct {
    char ids[64][40];
    json_t *recs[64];
    int n;
} rows_t;

static int collect(void *arg, const char *json, size_t len)
{
    rows_t *r = arg;
    json_error_t e;
    json_t *rec = json_loadb(json, len, 0, &e);
    assert_non_null(rec);
    assert_true(bl_jcs_is_canonical(json, len));
    const char *id = json_string_value(json_object_get(rec, "id"));
    assert_true(r->n < 64);
    snprintf(r->ids[r->n], 40, "%s", id ? id : "notice");
    r->recs[r->n++] = rec;
    return BL_OK;
}

static void rows_free(rows_t *r)
{
    for (int i = 0; i < r->n; i++)
        json_decref(r->recs[i]);
    r->n = 0;
}

static bl_index_t *open_index(void)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    bl_index_t *ix = bl_index_open(L.dir, NULL, &err);
    if (ix == NULL)
        fail_msg("open: %s", bl_buf_cstr(&err));
    bl_buf_free(&err);
    return ix;
}

static void update(bl_index_t *ix, bl_index_stats_t *st)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    if (bl_index_update(ix, st, &err) != BL_OK)
        fail_msg("update: %s", bl_buf_cstr(&err));
    bl_buf_free(&err);
}

/* Runs `f` and returns how many rows came back; their ids in out. */
static int query(bl_index_t *ix, const bl_index_filter_t *f, rows_t *out, uint64_t *matched)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    rows_free(out);
    long long n = bl_index_query(ix, f, collect, out, matched, &err);
    if (n < 0)
        fail_msg("query: %s", bl_buf_cstr(&err));
    bl_buf_free(&err);
    assert_int_equal(n, out->n);
    return (int)n;
}

/* Returns the requests `f` selects as "0,2,6" (the number in their id), "notice" for notices. */
static const char *pick(bl_index_t *ix, bl_index_filter_t *f)
{
    static char s[256];
    rows_t r = { .n = 0 };
    query(ix, f, &r, NULL);
    s[0] = '\0';
    for (int i = 0; i < r.n; i++) {
        size_t n = strlen(r.ids[i]);
        if (strcmp(r.ids[i], "notice"))
            snprintf(s + strlen(s), sizeof(s) - strlen(s), "%s%d", i ? "," : "", atoi(r.ids[i] + n - 2));
        else
            snprintf(s + strlen(s), sizeof(s) - strlen(s), "%snotice", i ? "," : "");
    }
    rows_free(&r);
    return s;
}

static void builds_from_scratch_with_merged_rows(void **state)
{
    (void)state;
    standard_ledger();
    bl_index_t *ix = open_index();
    bl_index_stats_t st;
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    assert_int_equal(st.entries, 16);
    assert_int_equal(st.lines, 18); /* and two checkpoints */
    assert_int_equal(st.skipped, 0);
    bl_index_filter_t f;
    bl_index_filter_init(&f);
    rows_t r = { .n = 0 };
    assert_int_equal(query(ix, &f, &r, NULL), 8);
    /* merged: the intent's ts and fields, the result's outcome */
    assert_string_equal(json_string_value(json_object_get(r.recs[2], "result")), "denied");
    assert_int_equal(json_integer_value(json_object_get(r.recs[2], "status")), 403);
    assert_string_equal(json_string_value(json_object_get(r.recs[2], "actor")), "alice");
    assert_string_equal(json_string_value(json_object_get(r.recs[2], "kind")), "request");
    assert_string_equal(json_string_value(json_object_get(r.recs[5], "result")), "aborted");
    assert_string_equal(json_string_value(json_object_get(r.recs[5], "ts")), ts(40));
    assert_null(json_object_get(r.recs[7], "result")); /* still pending */
    rows_free(&r);
    f.notices = 1;
    assert_string_equal(pick(ix, &f), "notice,0,1,2,3,4,5,6,notice,7");
    bl_index_close(ix);
    /* created 0600 like the rest of the audit directory */
    char path[128];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/index.sqlite", L.dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void each_filter(void **state)
{
    (void)state;
    standard_ledger();
    bl_index_t *ix = open_index();
    update(ix, NULL);
    bl_index_filter_t f;
#define ONLY(field, value, want)                                                                                       \
    do {                                                                                                               \
        bl_index_filter_init(&f);                                                                                      \
        f.field = value;                                                                                               \
        assert_string_equal(pick(ix, &f), want);                                                                       \
    } while (0)
    ONLY(actor, "alice", "0,2,6,7");
    ONLY(actor, "al*", "0,2,6,7");
    ONLY(actor, "nobody", "");
    ONLY(connection, "prod", "1,3,5,7");
    ONLY(verb, "get", "0,6");
    ONLY(verb, "[gw]*", "0,6,7");
    ONLY(namespace_, "web", "0,1,3,5,7");
    ONLY(namespace_, "kube-*", "2");
    ONLY(resource, "deployments", "1,3");
    ONLY(resource, "pods", "0,2,5,7");
    ONLY(result, "allowed", "0,1,3,6");
    ONLY(result, "denied", "2");
    ONLY(result, "unauthenticated", "4");
    ONLY(result, "aborted", "5");
    ONLY(result, "pending", "7");
    ONLY(id, rid(3), "3");
    ONLY(id, "0190a5b2-*-000000000005", "5");
    /* time: [since, until) */
    bl_index_filter_init(&f);
    assert_int_equal(bl_when_rfc3339("2026-06-15T12:10:00Z", &f.since_us), BL_OK);
    assert_int_equal(bl_when_rfc3339("2026-06-15T12:40:00.000123Z", &f.until_us), BL_OK);
    assert_string_equal(pick(ix, &f), "2,3,4");
    f.notices = 1;
    f.since_us = INT64_MIN;
    assert_string_equal(pick(ix, &f), "notice,0,1,2,3,4");
    /* filters combine */
    bl_index_filter_init(&f);
    f.actor = "alice";
    f.verb = "get";
    f.namespace_ = "web";
    assert_string_equal(pick(ix, &f), "0");
    f.notices = 1; /* notices have no actor */
    assert_string_equal(pick(ix, &f), "0");
    bl_index_close(ix);
}

static void subresources_and_limit(void **state)
{
    (void)state;
    standard_ledger();
    /* one more: exec into a pod */
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "verb", "create", "resource", "pods", "subresource", "exec",
                            "namespace", "web", "name", "api-0");
    leaf(json_pack("{s:s, s:s, s:s, s:o, s:s}", "kind", "intent", "id", rid(8), "actor", "dave", "request", req, "ts",
                   ts(70)));
    result(8, "allowed", 101, 71);
    bl_index_t *ix = open_index();
    update(ix, NULL);
    bl_index_filter_t f;
    ONLY(resource, "pods/exec", "8");
    ONLY(resource, "pods/*", "8");
    ONLY(resource, "pods", "0,2,5,7,8");
    /* -n: the newest N, still oldest first; matched says how many in all */
    bl_index_filter_init(&f);
    f.limit = 3;
    rows_t r = { .n = 0 };
    uint64_t matched = 0;
    assert_int_equal(query(ix, &f, &r, &matched), 3);
    assert_int_equal(matched, 9);
    assert_string_equal(r.ids[0], rid(6));
    assert_string_equal(r.ids[2], rid(8));
    f.limit = 100;
    assert_int_equal(query(ix, &f, &r, &matched), 9);
    assert_int_equal(matched, 9);
    f.actor = "alice";
    f.limit = 1;
    assert_int_equal(query(ix, &f, &r, &matched), 1);
    assert_int_equal(matched, 4);
    assert_string_equal(r.ids[0], rid(7));
    rows_free(&r);
    bl_index_close(ix);
#undef ONLY
}

/* Returns the stored position's segment * 1000000 + line number (the index's
 * own table: what the next update resumes from). */
static long long stored_line(void)
{
    char path[128];
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    snprintf(path, sizeof(path), "%s/index.sqlite", L.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT seg, lineno FROM pos", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0) * 1000000 + sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Returns the number of lines in segment n. */
static long long seg_lines(unsigned n)
{
    char path[128];
    long long c = 0;
    int ch;
    seg_path(n, path, sizeof(path));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while ((ch = fgetc(f)) != EOF)
        c += ch == '\n';
    fclose(f);
    return c;
}

static void incremental_update_reads_only_new_lines(void **state)
{
    (void)state;
    standard_ledger();
    bl_index_t *ix = open_index();
    bl_index_stats_t st;
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    assert_true(stored_line() == 2000000 + seg_lines(2)); /* the last line: resumed there without counting */
    update(ix, &st); /* nothing new */
    assert_int_equal(st.rebuilt, 0);
    assert_int_equal(st.lines, 0);
    assert_int_equal(st.entries, 0);
    /* the pending watch ends, a new request arrives; a torn tail is not a line yet */
    result(7, "allowed", 200, 61);
    intent(9, "erin", "get", "configmaps", "web", 62);
    append_raw("{\"entry\":{\"kind\":\"res", 21);
    update(ix, &st);
    assert_int_equal(st.rebuilt, 0);
    assert_int_equal(st.lines, 2);
    assert_int_equal(st.entries, 2);
    bl_index_filter_t f;
    bl_index_filter_init(&f);
    f.result = "pending";
    assert_string_equal(pick(ix, &f), "9");
    f.result = "allowed";
    f.actor = "alice";
    assert_string_equal(pick(ix, &f), "0,6,7");
    assert_true(stored_line() == 2000000 + seg_lines(2));
    bl_index_close(ix);
    /* the torn tail is cut off (as the writer does after a crash), the
     * ledger goes on in a new segment; a new handle resumes where it was */
    char path[128];
    seg_path(2, path, sizeof(path));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 21), 0);
    L.seg = 3;
    result(9, "allowed", 200, 63);
    ix = open_index();
    update(ix, &st);
    assert_int_equal(st.rebuilt, 0);
    assert_int_equal(st.lines, 1);
    bl_index_filter_init(&f);
    f.actor = "erin";
    f.result = "allowed";
    assert_string_equal(pick(ix, &f), "9");
    assert_true(stored_line() == 3000001);
    bl_index_close(ix);
    /* the stored line number is what the reader goes on from: it jumps to
     * the offset and trusts it, instead of reading the segment to count */
    sqlite3 *db;
    snprintf(path, sizeof(path), "%s/index.sqlite", L.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE pos SET lineno = 500", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    notice("stop", 64);
    ix = open_index();
    update(ix, &st);
    assert_int_equal(st.rebuilt, 0);
    assert_int_equal(st.lines, 1);
    assert_true(stored_line() == 3000501);
    bl_index_close(ix);
}

/* Indexes the standard ledger, applies `change`, and checks the next
 * update rebuilds and then sees the ledger as it is. */
static void rebuilt_after(void (*change)(void), const char *why_has, const char *actors_want)
{
    standard_ledger();
    bl_index_t *ix = open_index();
    bl_index_stats_t st;
    update(ix, &st);
    change();
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    if (strstr(st.why, why_has) == NULL)
        fail_msg("why '%s' lacks '%s'", st.why, why_has);
    bl_index_filter_t f;
    bl_index_filter_init(&f);
    f.actor = "zed";
    assert_string_equal(pick(ix, &f), actors_want);
    update(ix, &st); /* and then it is incremental again */
    assert_int_equal(st.rebuilt, 0);
    bl_index_close(ix);
}

static void remove_segments(void)
{
    char path[128];
    for (unsigned i = 1; i <= 3; i++) {
        seg_path(i, path, sizeof(path));
        unlink(path);
    }
    memset(&L.prev, 0, sizeof(L.prev));
    L.seq = 0;
    L.seg = 1;
}

/* A shorter ledger in its place: the recorded offset is past its end. */
static void replace_shorter(void)
{
    remove_segments();
    intent(0, "zed", "get", "pods", "web", 0);
    result(0, "allowed", 200, 0);
}

/* The same ledger again, but other bytes (as many) at the recorded line. */
static void replace_same_shape(void)
{
    remove_segments();
    standard_ledger();
    char path[128], buf[16384];
    seg_path(2, path, sizeof(path));
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf), f);
    assert_true(n > 40 && n < sizeof(buf));
    char *at = buf + n - 1 - strlen("stand-in note\"}");
    assert_memory_equal(at, "stand-in note", 13);
    memcpy(at, "STAND-IN NOTE", 13);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* The last segment removed (rotated away or restored from an old backup). */
static void drop_last_segment(void)
{
    char path[128];
    seg_path(2, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    L.seg = 1;
    intent(10, "zed", "get", "pods", "web", 0); /* off the chain: a rebuild does not judge that */
}

/* A line appended that does not continue the chain the index saw. */
static void break_chain(void)
{
    L.seq += 5;
    intent(20, "zed", "get", "pods", "web", 90);
}

static void rebuild_when_ledger_replaced(void **state)
{
    (void)state;
    rebuilt_after(replace_shorter, "the ledger changed", "0");
}

static void rebuild_when_line_differs(void **state)
{
    (void)state;
    rebuilt_after(replace_same_shape, "is not the line indexed", "");
}

static void rebuild_when_segment_gone(void **state)
{
    (void)state;
    rebuilt_after(drop_last_segment, "does not exist", "10");
}

static void rebuild_when_chain_breaks(void **state)
{
    (void)state;
    rebuilt_after(break_chain, "does not follow", "20");
}

/* A rebuild takes the ledger as it is, over many batches: damage in the
 * chain (entries missing) is for `audit verify`, not a reason to stop. */
static void rebuild_over_many_batches_ignores_the_chain(void **state)
{
    (void)state;
    notice("start", 0);
    for (int i = 0; i < BL_INDEX_BATCH + 500; i++)
        notice("space", 1);
    L.seq += 3; /* three entries missing */
    intent(1, "zed", "get", "pods", "web", 2);
    result(1, "allowed", 200, 2);
    bl_index_t *ix = open_index();
    bl_index_stats_t st;
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    assert_int_equal(st.entries, BL_INDEX_BATCH + 503);
    assert_int_equal(st.batches, 2);
    bl_index_filter_t f;
    bl_index_filter_init(&f);
    f.actor = "zed";
    assert_string_equal(pick(ix, &f), "1");
    result(1, "allowed", 200, 3); /* after it, the chain is judged again: this one continues it */
    update(ix, &st);
    assert_int_equal(st.rebuilt, 0);
    bl_index_close(ix);
}

static void damaged_index_file_is_replaced(void **state)
{
    (void)state;
    standard_ledger();
    char path[128];
    snprintf(path, sizeof(path), "%s/index.sqlite", L.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 512; i++)
        fputs("this is not an SQLite database ", f);
    fclose(f);
    bl_index_t *ix = open_index();
    bl_index_stats_t st;
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    assert_non_null(strstr(st.why, "damaged or of another version"));
    bl_index_filter_t f2;
    bl_index_filter_init(&f2);
    assert_string_equal(pick(ix, &f2), "0,1,2,3,4,5,6,7");
    bl_index_close(ix);
    /* a reset (--rebuild) empties it; the next update fills it again */
    ix = open_index();
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    assert_int_equal(bl_index_reset(ix, &err), BL_OK);
    assert_string_equal(pick(ix, &f2), "");
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    assert_string_equal(pick(ix, &f2), "0,1,2,3,4,5,6,7");
    bl_buf_free(&err);
    bl_index_close(ix);
    /* an index of another layout version is rebuilt, not misread */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ix = open_index();
    update(ix, &st);
    assert_int_equal(st.rebuilt, 1);
    assert_non_null(strstr(st.why, "another version"));
    assert_string_equal(pick(ix, &f2), "0,1,2,3,4,5,6,7");
    bl_index_close(ix);
}

static void no_ledger_is_an_empty_index(void **state)
{
    (void)state;
    bl_index_t *ix = open_index();
    bl_index_stats_t st;
    update(ix, &st);
    assert_int_equal(st.lines, 0);
    bl_index_filter_t f;
    bl_index_filter_init(&f);
    assert_string_equal(pick(ix, &f), "");
    bl_index_close(ix);
    /* and an in-memory index works the same */
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    standard_ledger();
    ix = bl_index_open(L.dir, ":memory:", &err);
    assert_non_null(ix);
    update(ix, &st);
    f.result = "denied";
    assert_string_equal(pick(ix, &f), "2");
    bl_index_close(ix);
    bl_buf_free(&err);
}

/* ---- time ---- */

static void rfc3339_times(void **state)
{
    (void)state;
    int64_t us;
    assert_int_equal(bl_when_rfc3339("1970-01-01T00:00:00Z", &us), BL_OK);
    assert_int_equal(us, 0);
    assert_int_equal(bl_when_rfc3339("2026-06-15T12:04:01.123456Z", &us), BL_OK);
    assert_int_equal(us, 1781525041123456LL);
    assert_int_equal(bl_when_rfc3339("2026-06-15T14:04:01.123456789+02:00", &us), BL_OK);
    assert_int_equal(us, 1781525041123456LL);
    assert_int_equal(bl_when_rfc3339("2026-06-15t07:34:01.1-04:30", &us), BL_OK);
    assert_int_equal(us, 1781525041100000LL);
    assert_int_equal(bl_when_rfc3339("2024-02-29T00:00:00z", &us), BL_OK);
    static const char *const bad[] = {
        "", "2026-06-15", "2026-06-15T12:04:01", "2026-06-15T12:04:01.Z", "2026-06-15T24:00:00Z",
        "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-06-15T12:04:01.1234567890Z", "2026-06-15T12:04:01Zx",
        "2026-06-15T12:04:01+2:00", "26-06-15T12:04:01Z", "2026-06-15T12:60:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (bl_when_rfc3339(bad[i], &us) != BL_ERROR)
            fail_msg("'%s' was accepted", bad[i]);
}

static void relative_times(void **state)
{
    (void)state;
    int64_t us, now = 1781525041000000LL;
    const int64_t S = 1000000;
    assert_int_equal(bl_when_duration("90s", &us), BL_OK);
    assert_int_equal(us, 90 * S);
    assert_int_equal(bl_when_duration("15m", &us), BL_OK);
    assert_int_equal(us, 900 * S);
    assert_int_equal(bl_when_duration("1h30m", &us), BL_OK);
    assert_int_equal(us, 5400 * S);
    assert_int_equal(bl_when_duration("7d", &us), BL_OK);
    assert_int_equal(us, 7 * 86400 * S);
    assert_int_equal(bl_when_duration("2w", &us), BL_OK);
    assert_int_equal(us, 14 * 86400 * S);
    static const char *const bad[] = { "", "15", "m", "0s", "15x", "-5m", "1.5h", "99999999999999d", "36600000d" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (bl_when_duration(bad[i], &us) != BL_ERROR)
            fail_msg("'%s' was accepted", bad[i]);
    assert_int_equal(bl_when_parse("2h", now, &us), BL_OK);
    assert_int_equal(us, now - 7200 * S);
    assert_int_equal(bl_when_parse("now", now, &us), BL_OK);
    assert_int_equal(us, now);
    assert_int_equal(bl_when_parse("2026-06-15", now, &us), BL_OK);
    assert_int_equal(us, 1781481600LL * S);
    assert_int_equal(bl_when_parse("2026-06-15T12:04:01Z", now, &us), BL_OK);
    assert_int_equal(us, now);
    assert_int_equal(bl_when_parse("yesterday", now, &us), BL_ERROR);
    assert_int_equal(bl_when_parse("2026-06-31", now, &us), BL_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(builds_from_scratch_with_merged_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(each_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(subresources_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(incremental_update_reads_only_new_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(rebuild_when_ledger_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(rebuild_when_line_differs, setup, teardown),
        cmocka_unit_test_setup_teardown(rebuild_when_segment_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(rebuild_when_chain_breaks, setup, teardown),
        cmocka_unit_test_setup_teardown(rebuild_over_many_batches_ignores_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_index_file_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(no_ledger_is_an_empty_index, setup, teardown),
        cmocka_unit_test(rfc3339_times),
        cmocka_unit_test(relative_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
