/* test_ledger.c - the ledger writer: chain, tree, checkpoints, segments,
 * crash recovery, refusal to build on an altered ledger, the failure latch;
 * the capture syncer that queues a result entry once its capture is durable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
#include "audit/capsync.h"
#include "audit/ledger.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/reader.h"

typedef struct {
    char dir[64], key[128], pub[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/byline-ledger-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof(f->key), "%s/key.pem", f->dir);
    snprintf(f->pub, sizeof(f->pub), "%s/key.pub", f->dir);
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    assert_int_equal(bl_note_keygen(f->key, f->pub, &err), BL_OK);
    bl_buf_free(&err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static bl_ledger_t *open_ledger(fixture_t *f, uint64_t segment_bytes, bl_buf_t *err)
{
    char adir[128];
    snprintf(adir, sizeof(adir), "%s/audit", f->dir);
    bl_ledger_cfg_t c = { .dir = adir, .signing_key = f->key, .origin = "test.example/byline", .sync = 1,
                          .segment_bytes = segment_bytes, .version = "test" };
    return bl_ledger_open(&c, err);
}

static int done_count;
static void on_done(bl_ledger_batch_t *b)
{
    (void)b;
    __atomic_add_fetch(&done_count, 1, __ATOMIC_RELEASE);
}

/* Submits one batch and waits for the writer to report it. Returns ok. */
static int commit(bl_ledger_t *l, int kind, const char *id, const char *json)
{
    bl_ledger_batch_t b;
    memset(&b, 0, sizeof(b));
    bl_buf_init(&b.entries, 1 << 20);
    b.done = on_done;
    assert_int_equal(bl_ledger_batch_add(&b, kind, id, json, strlen(json)), BL_OK);
    int before = __atomic_load_n(&done_count, __ATOMIC_ACQUIRE);
    bl_ledger_submit(l, &b);
    const struct timespec tick = { 0, 1000000 };
    while (__atomic_load_n(&done_count, __ATOMIC_ACQUIRE) == before)
        nanosleep(&tick, NULL);
    int ok = b.ok;
    bl_buf_free(&b.entries);
    return ok;
}

#define ID1 "01a22170-4258-7170-94f5-6484a90d7001"
#define ID2 "01a22170-4258-7170-94f5-6484a90d7002"

/* Reads the whole ledger and checks it the way AUDIT-FORMAT.md says:
 * contiguous seq, each prev the previous leaf's hash, each checkpoint
 * signed and covering exactly the leaves before it. Returns the number of
 * leaves; kinds[] gets each leaf's kind letter. */
static uint64_t check_ledger(fixture_t *f, char *kinds, size_t cap)
{
    char adir[128];
    snprintf(adir, sizeof(adir), "%s/audit", f->dir);
    bl_buf_t err, origin;
    bl_buf_init(&err, 1024);
    bl_buf_init(&origin, 256);
    bl_reader_t *r = bl_reader_open(adir, &err);
    bl_verifier_t *v = bl_verifier_load(f->pub, "test.example/byline", &err);
    assert_non_null(r);
    assert_non_null(v);
    bl_merkle_range_t tree;
    bl_merkle_init(&tree);
    bl_hash_t prev;
    memset(&prev, 0, sizeof(prev));
    uint64_t seq = 0, checkpoints = 0;
    bl_line_t ln;
    while (bl_reader_next(r, &ln, &err) == BL_OK) {
        assert_false(ln.torn);
        json_error_t je;
        json_t *j = json_loadb(ln.p, ln.len, 0, &je);
        assert_non_null(j);
        const char *note = json_string_value(json_object_get(j, "checkpoint"));
        if (note) {
            uint64_t size;
            bl_hash_t root, ours;
            const char *why;
            assert_int_equal(bl_note_verify(v, note, strlen(note), &size, &root, &origin, &why), BL_OK);
            bl_merkle_root(&tree, &ours);
            assert_int_equal(size, seq);
            assert_memory_equal(root.h, ours.h, 32);
            checkpoints++;
        } else {
            char want[45];
            EVP_EncodeBlock((unsigned char *)want, prev.h, 32);
            assert_int_equal(json_integer_value(json_object_get(j, "seq")), seq);
            assert_string_equal(json_string_value(json_object_get(j, "prev")), want);
            const char *kind = json_string_value(json_object_get(json_object_get(j, "entry"), "kind"));
            if (seq < cap)
                kinds[seq] = kind[0];
            bl_merkle_leaf(ln.p, ln.len, &prev);
            bl_merkle_append(&tree, &prev);
            seq++;
        }
        json_decref(j);
    }
    if (seq < cap)
        kinds[seq] = '\0';
    assert_true(checkpoints >= 1);
    bl_reader_close(r);
    bl_verifier_free(v);
    bl_buf_free(&err);
    bl_buf_free(&origin);
    return seq;
}

static void writes_a_chained_signed_ledger(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    assert_non_null(l);
    assert_true(commit(l, BL_ENT_INTENT, ID1, "{\"id\":\"" ID1 "\",\"kind\":\"intent\"}"));
    assert_true(commit(l, BL_ENT_RESULT, ID1, "{\"id\":\"" ID1 "\",\"kind\":\"result\"}"));
    assert_null(bl_ledger_failed(l));
    bl_ledger_close(l);
    char kinds[16];
    /* start notice, intent, result, stop notice */
    assert_int_equal(check_ledger(f, kinds, sizeof(kinds)), 4);
    assert_string_equal(kinds, "nirn");
    bl_buf_free(&err);
}

static void a_restart_aborts_what_was_open(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    assert_true(commit(l, BL_ENT_INTENT, ID1, "{\"id\":\"" ID1 "\",\"kind\":\"intent\"}"));
    assert_true(commit(l, BL_ENT_INTENT, ID2, "{\"id\":\"" ID2 "\",\"kind\":\"intent\"}"));
    assert_true(commit(l, BL_ENT_RESULT, ID2, "{\"id\":\"" ID2 "\",\"kind\":\"result\"}"));
    bl_ledger_close(l);
    l = open_ledger(f, 0, &err);
    assert_non_null(l);
    bl_ledger_close(l);
    char kinds[16];
    /* n i i r n | a(ID1) n(start) n(stop) */
    assert_int_equal(check_ledger(f, kinds, sizeof(kinds)), 8);
    assert_string_equal(kinds, "niirnann");
    bl_buf_free(&err);
}

static void a_torn_last_line_is_cut(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    bl_ledger_close(l);
    char path[160];
    snprintf(path, sizeof(path), "%s/audit/ledger-000001.jsonl", f->dir);
    FILE *fp = fopen(path, "a");
    fputs("{\"entry\":{\"kind\":\"intent\",\"id\":\"half-writ", fp);
    fclose(fp);
    l = open_ledger(f, 0, &err);
    assert_non_null(l);
    bl_ledger_close(l);
    char kinds[16];
    assert_int_equal(check_ledger(f, kinds, sizeof(kinds)), 4);
    bl_buf_free(&err);
}

static void an_altered_ledger_stops_the_start(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    assert_true(commit(l, BL_ENT_INTENT, ID1, "{\"id\":\"" ID1 "\",\"kind\":\"intent\"}"));
    bl_ledger_close(l);
    char path[160];
    snprintf(path, sizeof(path), "%s/audit/ledger-000001.jsonl", f->dir);
    FILE *fp = fopen(path, "r+");
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), fp);
    char *at = strstr(buf, "\"kind\":\"intent\"");
    assert_non_null(at);
    at[9] = 'I'; /* intent -> Intent: the next line's prev no longer matches */
    fseek(fp, 0, SEEK_SET);
    fwrite(buf, 1, n, fp);
    fclose(fp);
    bl_buf_reset(&err);
    assert_null(open_ledger(f, 0, &err));
    assert_non_null(strstr(bl_buf_cstr(&err), "inconsistent"));
    bl_buf_free(&err);
}

static void segments_rotate_and_the_chain_goes_on(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    /* Tiny segments and entries of half a segment: a rotation after
     * almost every commit, whether or not it signed a checkpoint. */
    bl_ledger_t *l = open_ledger(f, 600, &err);
    char entry[512], pad[301];
    memset(pad, 'x', 300);
    pad[300] = '\0';
    snprintf(entry, sizeof(entry), "{\"detail\":\"%s\",\"event\":\"test\",\"kind\":\"notice\"}", pad);
    for (int i = 0; i < 6; i++)
        assert_true(commit(l, BL_ENT_OTHER, NULL, entry));
    bl_ledger_close(l);
    l = open_ledger(f, 600, &err);
    assert_non_null(l);
    bl_ledger_close(l);
    char adir[128], kinds[32];
    snprintf(adir, sizeof(adir), "%s/audit", f->dir);
    bl_reader_t *r = bl_reader_open(adir, &err);
    assert_true(bl_reader_segments(r) >= 3);
    bl_reader_close(r);
    assert_int_equal(check_ledger(f, kinds, sizeof(kinds)), 10);
    bl_buf_free(&err);
}

/* A write that fails latches the ledger: that batch and every later one
 * come back not committed, and the reason is kept. */
static void a_failed_write_latches(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    small = old;
    small.rlim_cur = 1; /* the segment is larger already: every write fails (EFBIG) */
    setrlimit(RLIMIT_FSIZE, &small);
    assert_false(commit(l, BL_ENT_INTENT, ID1, "{\"id\":\"" ID1 "\",\"kind\":\"intent\"}"));
    setrlimit(RLIMIT_FSIZE, &old);
    assert_non_null(bl_ledger_failed(l));
    assert_non_null(strstr(bl_ledger_failed(l), "segment"));
    assert_false(commit(l, BL_ENT_INTENT, ID2, "{\"id\":\"" ID2 "\",\"kind\":\"intent\"}")); /* latched */
    bl_ledger_close(l);
    signal(SIGXFSZ, SIG_DFL);
    bl_buf_free(&err);
}

/* Closes this process's descriptor for `path` (a fault for fsync to meet). */
static void close_fd_of(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    char link[512], target[512];
    int found = -1;
    while ((e = readdir(d)) != NULL) {
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, path) == 0)
                found = atoi(e->d_name);
        }
    }
    closedir(d);
    assert_true(found >= 0);
    close(found);
}

/* A sealed capture through the syncer: the ok rendering once the file is
 * durable; with `break_fsync`, the failed rendering and no file left. */
static void capture_through_syncer(fixture_t *f, int break_fsync)
{
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    assert_non_null(l);
    bl_capsync_t *cs = bl_capsync_start(l, BL_CAPSYNC_MAX);
    assert_non_null(cs);
    char adir[128], cap[256];
    snprintf(adir, sizeof(adir), "%s/audit", f->dir);
    snprintf(cap, sizeof(cap), "%s/sessions/" ID1 ".cap", adir);
    bl_capture_meta_t m = { .id = ID1, .actor = "agent-x", .connection = "c", .action = "kubectl exec p -- id" };
    bl_capture_writer_t *w = bl_capture_create(adir, &m, 3, 0, &err);
    assert_non_null(w);
    assert_int_equal(bl_capture_write(w, 0, 1, "hi\n", 3), BL_OK);
    unsigned char sha[32];
    uint64_t size = 0;
    assert_int_equal(bl_capture_seal(w, sha, &size, &err), BL_OK);
    assert_true(size > 3);
    if (break_fsync)
        close_fd_of(cap);
    static const char ok[] = "{\"capture\":{\"file\":\"sessions/" ID1 ".cap\"},\"id\":\"" ID1 "\",\"kind\":\"result\"}";
    static const char failed[] = "{\"capture\":{\"error\":\"x\"},\"id\":\"" ID1 "\",\"kind\":\"result\"}";
    assert_int_equal(bl_capsync_push(cs, w, ID1, ok, strlen(ok), failed, strlen(failed)), BL_OK);
    bl_capsync_stop(cs); /* drains: the entry is handed to the ledger */
    bl_ledger_close(l);  /* commits it */
    char kinds[16];
    assert_int_equal(check_ledger(f, kinds, sizeof(kinds)), 3);
    assert_string_equal(kinds, "nrn");
    /* the entry is the rendering that fits what happened to the file */
    char seg[160];
    snprintf(seg, sizeof(seg), "%s/ledger-000001.jsonl", adir);
    FILE *fp = fopen(seg, "r");
    assert_non_null(fp);
    char line[4096];
    int seen = 0;
    while (fgets(line, sizeof(line), fp))
        seen |= strstr(line, break_fsync ? failed : ok) != NULL;
    fclose(fp);
    assert_true(seen);
    assert_int_equal(access(cap, F_OK) == 0, !break_fsync);
    bl_buf_free(&err);
}

/* A full queue takes nothing: the caller keeps the capture and syncs it itself. */
static void a_full_syncer_gives_the_capture_back(void **state)
{
    fixture_t *f = *state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_ledger_t *l = open_ledger(f, 0, &err);
    assert_non_null(l);
    bl_capsync_t *cs = bl_capsync_start(l, 0);
    assert_non_null(cs);
    char adir[128];
    snprintf(adir, sizeof(adir), "%s/audit", f->dir);
    bl_capture_meta_t m = { .id = ID2, .actor = "agent-x" };
    bl_capture_writer_t *w = bl_capture_create(adir, &m, 0, 0, &err);
    assert_non_null(w);
    unsigned char sha[32];
    uint64_t size = 0;
    assert_int_equal(bl_capture_seal(w, sha, &size, &err), BL_OK);
    assert_int_equal(bl_capsync_push(cs, w, ID2, "{}", 2, "{}", 2), BL_ERROR);
    assert_int_equal(bl_capture_sync(w, &err), BL_OK); /* still ours, still open */
    bl_capsync_stop(cs);
    bl_ledger_close(l);
    char kinds[16];
    assert_int_equal(check_ledger(f, kinds, sizeof(kinds)), 2); /* nothing was queued */
    assert_string_equal(kinds, "nn");
    bl_buf_free(&err);
}

static void a_capture_is_named_once_it_is_durable(void **state)
{
    capture_through_syncer(*state, 0);
}

static void a_capture_that_cannot_be_synced_is_not_named(void **state)
{
    capture_through_syncer(*state, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_a_chained_signed_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(a_restart_aborts_what_was_open, setup, teardown),
        cmocka_unit_test_setup_teardown(a_torn_last_line_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(an_altered_ledger_stops_the_start, setup, teardown),
        cmocka_unit_test_setup_teardown(segments_rotate_and_the_chain_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_write_latches, setup, teardown),
        cmocka_unit_test_setup_teardown(a_capture_is_named_once_it_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(a_capture_that_cannot_be_synced_is_not_named, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_syncer_gives_the_capture_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
