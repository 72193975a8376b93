/* test_reader.c - the ledger's segments read back as one stream of lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/reader.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/byline-test-reader-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *text, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void put_seg(unsigned n, const char *text)
{
    char name[64];
    snprintf(name, sizeof(name), "ledger-%06u.jsonl", n);
    put(name, text, strlen(text));
}

static void clear(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*", dir);
    assert_int_equal(system(cmd), 0);
}

/* Reads the next line and checks it. */
static void want(bl_reader_t *r, const char *text, unsigned seg, uint64_t off, uint64_t lineno, int torn)
{
    bl_line_t l;
    bl_buf_t err;
    bl_buf_init(&err, 512);
    int rc = bl_reader_next(r, &l, &err);
    if (rc != BL_OK)
        fail_msg("expected '%s', got %d: %s", text, rc, bl_buf_cstr(&err));
    assert_int_equal(l.len, strlen(text));
    assert_memory_equal(l.p, text, l.len);
    assert_int_equal(l.segment, seg);
    assert_int_equal(l.offset, off);
    assert_int_equal(l.lineno, lineno);
    assert_int_equal(l.torn, torn);
    bl_buf_free(&err);
}

static void want_rc(bl_reader_t *r, int rc, const char *in_err)
{
    bl_line_t l;
    bl_buf_t err;
    bl_buf_init(&err, 512);
    assert_int_equal(bl_reader_next(r, &l, &err), rc);
    if (in_err && strstr(bl_buf_cstr(&err), in_err) == NULL)
        fail_msg("error '%s' lacks '%s'", bl_buf_cstr(&err), in_err);
    bl_buf_free(&err);
}

static bl_reader_t *open_ok(void)
{
    bl_buf_t err;
    bl_buf_init(&err, 512);
    bl_reader_t *r = bl_reader_open(dir, &err);
    if (r == NULL)
        fail_msg("open: %s", bl_buf_cstr(&err));
    bl_buf_free(&err);
    return r;
}

static void segments_in_numeric_order(void **state)
{
    (void)state;
    clear();
    for (unsigned i = 12; i >= 1; i--) {
        char t[32];
        snprintf(t, sizeof(t), "s%u\n", i);
        put_seg(i, t);
    }
    put("checkpoint", "x", 1);
    put("state.json", "{}", 2);
    put("ledger-000001.jsonl.tmp", "junk\n", 5);
    bl_reader_t *r = open_ok();
    assert_int_equal(bl_reader_segments(r), 12);
    for (unsigned i = 1; i <= 12; i++) {
        char t[32];
        snprintf(t, sizeof(t), "s%u", i);
        want(r, t, i, 0, 1, 0);
    }
    want_rc(r, BL_DECLINED, NULL);
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
}

static void lines_offsets_torn_tail(void **state)
{
    (void)state;
    clear();
    put_seg(1, "a\n\nccc\n");
    put_seg(2, "dd\n");
    put_seg(3, "e\n{\"torn");
    bl_reader_t *r = open_ok();
    want(r, "a", 1, 0, 1, 0);
    want(r, "", 1, 2, 2, 0);
    want(r, "ccc", 1, 3, 3, 0);
    want(r, "dd", 2, 0, 1, 0);
    want(r, "e", 3, 0, 1, 0);
    want(r, "{\"torn", 3, 2, 2, 1);
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
    /* an earlier segment without its final newline: flagged too, for the caller to judge */
    clear();
    put_seg(1, "a\nb");
    put_seg(2, "c\n");
    r = open_ok();
    want(r, "a", 1, 0, 1, 0);
    want(r, "b", 1, 2, 2, 1);
    want(r, "c", 2, 0, 1, 0);
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
}

static void gaps_are_errors_then_reading_goes_on(void **state)
{
    (void)state;
    clear();
    put_seg(1, "one\n");
    put_seg(2, "two\n");
    put_seg(5, "five\n");
    bl_reader_t *r = open_ok();
    want(r, "one", 1, 0, 1, 0);
    want(r, "two", 2, 0, 1, 0);
    want_rc(r, BL_ERROR, "ledger-000003.jsonl is missing");
    want(r, "five", 5, 0, 1, 0);
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
    clear();
    put_seg(2, "two\n");
    r = open_ok();
    want_rc(r, BL_ERROR, "ledger-000001.jsonl is missing");
    want(r, "two", 2, 0, 1, 0);
    bl_reader_close(r);
    /* nothing at all: the end at once */
    clear();
    r = open_ok();
    assert_int_equal(bl_reader_segments(r), 0);
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
}

static void bad_names_and_directories(void **state)
{
    (void)state;
    bl_buf_t err;
    bl_buf_init(&err, 512);
    static const char *bad[] = { "ledger-0000001.jsonl", "ledger-1.jsonl", "ledger-000000.jsonl",
                                 "ledger-99999999999999999999.jsonl" };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        clear();
        put(bad[i], "x\n", 2);
        bl_buf_reset(&err);
        assert_null(bl_reader_open(dir, &err));
        assert_non_null(strstr(bl_buf_cstr(&err), "not a segment name"));
    }
    clear();
    put("ledger-1000000.jsonl", "x\n", 2); /* seven digits is canonical past 999999 */
    bl_reader_t *r = open_ok();
    assert_int_equal(bl_reader_segments(r), 1);
    bl_reader_close(r);
    clear();
    bl_buf_reset(&err);
    assert_null(bl_reader_open("/nonexistent/byline", &err));
    assert_true(bl_buf_size(&err) > 0);
    /* a directory where a segment should be: an error, not a hang or a crash */
    char path[128];
    snprintf(path, sizeof(path), "%s/ledger-000001.jsonl", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    r = open_ok();
    want_rc(r, BL_ERROR, "not a regular file");
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
    rmdir(path);
    char out[8];
    bl_segment_path("/a/very/long/dir", 1, out, sizeof(out)); /* cut: empty, not a wrong path */
    assert_string_equal(out, "");
    bl_buf_free(&err);
}

static void over_long_line_is_skipped(void **state)
{
    (void)state;
    clear();
    size_t n = BL_READER_MAX_LINE + 100;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "ok\n", 3);
    memset(big + 3, 'x', n);
    memcpy(big + 3 + n, "\nafter\n", 7);
    put("ledger-000001.jsonl", big, n + 10);
    free(big);
    bl_reader_t *r = open_ok();
    want(r, "ok", 1, 0, 1, 0);
    want_rc(r, BL_ERROR, "line 2");
    want(r, "after", 1, 3 + n + 1, 3, 0);
    want_rc(r, BL_DECLINED, NULL);
    bl_reader_close(r);
}

/* Segments 1..3 of lines a b | cc ddd eeee | f, open. */
static bl_reader_t *three_segments(void)
{
    clear();
    put_seg(1, "a\nb\n");
    put_seg(2, "cc\nddd\neeee\n");
    put_seg(3, "f\n");
    return open_ok();
}

static void seek_for_restart(void **state)
{
    (void)state;
    bl_reader_t *r = three_segments();
    bl_buf_t err;
    bl_buf_init(&err, 512);
    assert_int_equal(bl_reader_seek(r, 2, 7, 0, &err), BL_OK);
    want(r, "eeee", 2, 7, 3, 0);
    want(r, "f", 3, 0, 1, 0);
    want_rc(r, BL_DECLINED, NULL);
    assert_int_equal(bl_reader_seek(r, 2, 12, 0, &err), BL_OK); /* the end of the segment */
    want(r, "f", 3, 0, 1, 0);
    assert_int_equal(bl_reader_seek(r, 1, 0, 0, &err), BL_OK);
    want(r, "a", 1, 0, 1, 0);
    bl_buf_reset(&err);
    assert_int_equal(bl_reader_seek(r, 2, 5, 0, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "not at the start of a line"));
    bl_buf_reset(&err);
    assert_int_equal(bl_reader_seek(r, 2, 13, 0, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "shorter"));
    bl_buf_reset(&err);
    assert_int_equal(bl_reader_seek(r, 4, 0, 0, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "does not exist"));
    bl_buf_free(&err);
    bl_reader_close(r);
}

/* A caller that knows the line number (the index) jumps without counting:
 * the numbers it gives are the ones returned, and the offset is still
 * checked to be a line start. */
static void seek_with_known_line_number(void **state)
{
    (void)state;
    bl_reader_t *r = three_segments();
    bl_buf_t err;
    bl_buf_init(&err, 512);
    assert_int_equal(bl_reader_seek(r, 2, 7, 3, &err), BL_OK);
    want(r, "eeee", 2, 7, 3, 0);
    want(r, "f", 3, 0, 1, 0);
    want_rc(r, BL_DECLINED, NULL);
    assert_int_equal(bl_reader_seek(r, 2, 3, 2, &err), BL_OK);
    want(r, "ddd", 2, 3, 2, 0);
    want(r, "eeee", 2, 7, 3, 0);
    assert_int_equal(bl_reader_seek(r, 2, 7, 41, &err), BL_OK); /* trusted, not recounted */
    want(r, "eeee", 2, 7, 41, 0);
    assert_int_equal(bl_reader_seek(r, 2, 12, 4, &err), BL_OK); /* the end of the segment */
    want(r, "f", 3, 0, 1, 0);
    assert_int_equal(bl_reader_seek(r, 1, 0, 1, &err), BL_OK);
    want(r, "a", 1, 0, 1, 0);
    const uint64_t bad[] = { 1, 5, 6, 11 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bl_buf_reset(&err);
        assert_int_equal(bl_reader_seek(r, 2, bad[i], 2, &err), BL_ERROR);
        assert_non_null(strstr(bl_buf_cstr(&err), "not at the start of a line"));
    }
    bl_buf_reset(&err);
    assert_int_equal(bl_reader_seek(r, 2, 13, 5, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "shorter"));
    bl_buf_reset(&err);
    assert_int_equal(bl_reader_seek(r, 4, 0, 1, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "does not exist"));
    bl_buf_free(&err);
    bl_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(segments_in_numeric_order),
        cmocka_unit_test(lines_offsets_torn_tail),
        cmocka_unit_test(gaps_are_errors_then_reading_goes_on),
        cmocka_unit_test(bad_names_and_directories),
        cmocka_unit_test(over_long_line_is_skipped),
        cmocka_unit_test(seek_for_restart),
        cmocka_unit_test(seek_with_known_line_number),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
