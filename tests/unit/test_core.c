/* test_core.c - bounded buffers, JSON escaping, the timer heap, UUIDv7. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <time.h>
#include "core/buf.h"
#include "core/loop.h"
#include "core/uuid.h"

static void buf_respects_its_bound(void **state)
{
    (void)state;
    bl_buf_t b;
    bl_buf_init(&b, 10);
    assert_int_equal(bl_buf_append(&b, "0123456789", 10), BL_OK);
    assert_int_equal(bl_buf_append(&b, "x", 1), BL_ERROR);
    assert_int_equal(bl_buf_printf(&b, "%d", 1), BL_ERROR);
    assert_int_equal(bl_buf_size(&b), 10);
    bl_buf_consume(&b, 4);
    /* consumed space is reclaimed, never exceeding the bound */
    assert_int_equal(bl_buf_append(&b, "abcd", 4), BL_OK);
    assert_int_equal(bl_buf_size(&b), 10);
    assert_memory_equal(bl_buf_data(&b), "456789abcd", 10);
    assert_true(b.cap <= 10);
    size_t room;
    assert_null(bl_buf_tail(&b, 1, &room));
    assert_int_equal(room, 0);
    bl_buf_free(&b);
}

static void buf_tail_and_commit(void **state)
{
    (void)state;
    bl_buf_t b;
    bl_buf_init(&b, 1 << 20);
    size_t room;
    char *p = bl_buf_tail(&b, 100, &room);
    assert_non_null(p);
    assert_true(room >= 100);
    memcpy(p, "hello", 5);
    bl_buf_commit(&b, 5);
    assert_string_equal(bl_buf_cstr(&b), "hello");
    bl_buf_free(&b);
}

/* Every escaped string must parse back (jansson) to the same bytes, or
 * for invalid UTF-8 to U+FFFD replacements; nothing raw below 0x20 or 0x7f. */
static void json_escaping_round_trips(void **state)
{
    (void)state;
    static const struct { const char *in; size_t len; const char *want; } cases[] = {
        { "plain", 5, "plain" },
        { "q\"b\\s", 5, "q\"b\\s" },
        { "nl\ncr\rtab\t", 10, "nl\ncr\rtab\t" },
        { "\x01\x1f\x7f\x08\x0c", 5, "\x01\x1f\x7f\x08\x0c" },
        { "caf\xc3\xa9", 5, "caf\xc3\xa9" },
        { "bad\xff", 4, "bad\xef\xbf\xbd" },
        { "trunc\xe2\x82", 7, "trunc\xef\xbf\xbd\xef\xbf\xbd" },
        { "surrogate\xed\xa0\x80", 12, "surrogate\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++) {
        bl_buf_t b;
        bl_buf_init(&b, 4096);
        assert_int_equal(bl_buf_json_str(&b, cases[i].in, cases[i].len), BL_OK);
        for (size_t k = 0; k < bl_buf_size(&b); k++)
            assert_true((unsigned char)bl_buf_data(&b)[k] >= 0x20);
        json_error_t e;
        json_t *j = json_loadb(bl_buf_data(&b), bl_buf_size(&b), JSON_DECODE_ANY, &e);
        assert_non_null(j);
        assert_string_equal(json_string_value(j), cases[i].want);
        json_decref(j);
        bl_buf_free(&b);
    }
}

/* RFC 8785's exact escapes: the five short forms, \u00xx in lower case,
 * nothing else (not DEL, not non-ASCII). */
static void json_escaping_is_canonical(void **state)
{
    (void)state;
    bl_buf_t b;
    bl_buf_init(&b, 4096);
    assert_int_equal(bl_buf_json_str(&b, "\b\t\n\f\r\x01\x1f\x7f\"\\/\xc3\xa9\xff", 14), BL_OK);
    assert_string_equal(bl_buf_cstr(&b), "\"\\b\\t\\n\\f\\r\\u0001\\u001f\x7f\\\"\\\\/\xc3\xa9\xef\xbf\xbd\"");
    bl_buf_free(&b);
}

static int fired[64];
static int nfired;

static void timer_cb(bl_timer_t *t)
{
    fired[nfired++] = (int)(intptr_t)t->data;
}

/* The heap fires timers in due order, whatever order they were armed in,
 * and a cancelled timer never fires. Nothing here measures time: the test
 * only waits until every timer is due, then checks the order. */
static void timers_fire_in_order(void **state)
{
    (void)state;
    bl_loop_t *loop = bl_loop_new();
    assert_non_null(loop);
    bl_timer_t t[20];
    memset(t, 0, sizeof(t));
    nfired = 0;
    for (int i = 0; i < 20; i++) {
        int due = (i * 7) % 20; /* a permutation of 0..19 */
        t[i].cb = timer_cb;
        t[i].data = (void *)(intptr_t)due;
        bl_timer_set(loop, &t[i], (uint64_t)due);
    }
    bl_timer_set(loop, &t[3], 100000); /* re-armed far away: must not fire */
    bl_timer_cancel(loop, &t[5]);
    bl_timer_cancel(loop, &t[5]); /* harmless twice */
    assert_false(bl_timer_armed(&t[5]));
    struct timespec ts = { 0, 30 * 1000000 };
    nanosleep(&ts, NULL);
    bl_loop_run_once(loop);
    assert_int_equal(nfired, 18);
    for (int i = 1; i < nfired; i++)
        assert_true(fired[i - 1] < fired[i]);
    for (int i = 0; i < nfired; i++)
        assert_true(fired[i] != (3 * 7) % 20 && fired[i] != (5 * 7) % 20);
    assert_true(bl_timer_armed(&t[3]));
    bl_timer_cancel(loop, &t[3]);
    bl_loop_free(loop);
}

static int deferred;
static void defer_cb(bl_defer_t *d)
{
    deferred++;
    (void)d;
}

static void defer_runs_once_and_can_be_withdrawn(void **state)
{
    (void)state;
    bl_loop_t *loop = bl_loop_new();
    bl_defer_t a = { .cb = defer_cb }, b = { .cb = defer_cb };
    deferred = 0;
    bl_loop_defer(loop, &a);
    bl_loop_defer(loop, &a); /* no-op: already queued */
    bl_loop_defer(loop, &b);
    bl_loop_undefer(loop, &b);
    bl_loop_run_once(loop);
    assert_int_equal(deferred, 1);
    bl_loop_run_once(loop);
    assert_int_equal(deferred, 1);
    bl_loop_free(loop);
}

static void uuid7_is_time_ordered_and_well_formed(void **state)
{
    (void)state;
    struct timespec a = { .tv_sec = 1780000000, .tv_nsec = 0 }, b = { .tv_sec = 1780000000, .tv_nsec = 2000000 };
    char x[BL_UUID_LEN + 1], y[BL_UUID_LEN + 1];
    assert_int_equal(bl_uuid7(x, &a), BL_OK);
    assert_int_equal(bl_uuid7(y, &b), BL_OK);
    assert_int_equal(strlen(x), 36);
    assert_true(x[8] == '-' && x[13] == '-' && x[18] == '-' && x[23] == '-');
    assert_int_equal(x[14], '7');                       /* version 7 */
    assert_non_null(strchr("89ab", x[19]));             /* RFC 9562 variant */
    assert_true(strcmp(x, y) < 0);                      /* later time sorts later */
    assert_memory_equal(x, "019e7044-8800", 13);        /* 1780000000000 ms = 0x19e70448800 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_respects_its_bound),
        cmocka_unit_test(buf_tail_and_commit),
        cmocka_unit_test(json_escaping_round_trips),
        cmocka_unit_test(json_escaping_is_canonical),
        cmocka_unit_test(timers_fire_in_order),
        cmocka_unit_test(defer_runs_once_and_can_be_withdrawn),
        cmocka_unit_test(uuid7_is_time_ordered_and_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
