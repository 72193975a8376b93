/*
 * test_tap.c - the exec tap (src/kube/tap*.c): how a kubectl exec, attach
 * or port-forward ended, learnt from the relayed bytes after the 101.
 *
 * Sessions are built by hand as a list of (direction, bytes) events:
 * WebSocket frames (client frames masked, server frames not; fragmented;
 * 7-, 16- and 64-bit lengths; control frames between fragments), SPDY/3.1
 * frames whose header blocks are compressed here with zlib and the SPDY/3
 * dictionary (built independently of the tap's copy), one deflate stream
 * per direction as spdystream does, and SPDY carried in WebSocket
 * messages. Every session is replayed whole, byte by byte and split at
 * every offset; all replays must agree. Then real sessions: kubectl 1.27
 * (SPDY) and 1.33 (WebSocket) against the stand-in, recorded after the 101
 * by a TLS relay (tests/unit/data/tap/README.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "http/http1.h"
#include "kube/tap.h"

/* ---- sessions: events in relay order ------------------------------------ */

#define MAX_EV 8192

typedef struct {
    unsigned char *data;
    size_t len, cap;
    struct { int dir; size_t off, len; } ev[MAX_EV];
    size_t nev;
} sess_t;

static sess_t *sess_new(void)
{
    sess_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    return s;
}

static void sess_free(sess_t *s)
{
    free(s->data);
    free(s);
}

static void sess_add(sess_t *s, int dir, const void *p, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 1024;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }
    assert_true(s->nev < MAX_EV);
    memcpy(s->data + s->len, p, n);
    s->ev[s->nev].dir = dir;
    s->ev[s->nev].off = s->len;
    s->ev[s->nev].len = n;
    s->nev++;
    s->len += n;
}

/* Feeds event bytes [a, b) of event i as one call (copied to an exact-size
 * heap buffer so that a read past the end is an ASan report). */
static void feed_piece(bl_tap_t *t, const sess_t *s, size_t i, size_t a, size_t b)
{
    if (b <= a)
        return;
    char *p = malloc(b - a);
    assert_non_null(p);
    memcpy(p, s->data + s->ev[i].off + a, b - a);
    bl_tap_feed(t, s->ev[i].dir, p, b - a);
    free(p);
}

/* Replays `s`: step 0 feeds each event whole; step k feeds k bytes per
 * call; `cut` (if < s->len) splits the event holding that offset there. */
static bl_tap_t *replay(const sess_t *s, int proto, size_t capture, int pf, size_t step, size_t cut)
{
    bl_tap_t *t = bl_tap_new(proto, capture);
    assert_non_null(t);
    if (pf)
        assert_int_equal(bl_tap_portforward(t), BL_OK);
    for (size_t i = 0; i < s->nev; i++) {
        size_t n = s->ev[i].len, off = s->ev[i].off;
        if (step == 0) {
            if (cut > off && cut < off + n) {
                feed_piece(t, s, i, 0, cut - off);
                feed_piece(t, s, i, cut - off, n);
            } else {
                feed_piece(t, s, i, 0, n);
            }
            continue;
        }
        for (size_t a = 0; a < n; a += step)
            feed_piece(t, s, i, a, a + step < n ? a + step : n);
    }
    return t;
}

typedef struct {
    bl_tap_outcome_t o;
    char json[1024];
    int json_rc;
    char cap[BL_TAP_NCHAN][256];  /* each channel's captured bytes, concatenated */
    size_t caplen[BL_TAP_NCHAN];
    int trunc;
    size_t events;
    char evsig[512];              /* the event list as "ch:len:t_us;" (no bytes) */
} result_t;

static void take(bl_tap_t *t, result_t *r)
{
    memset(r, 0, sizeof(*r));
    bl_tap_outcome(t, &r->o);
    bl_buf_t b;
    bl_buf_init(&b, sizeof(r->json) - 1);
    r->json_rc = bl_tap_json(t, &b);
    if (bl_buf_size(&b))
        memcpy(r->json, bl_buf_data(&b), bl_buf_size(&b));
    bl_buf_free(&b);
    size_t pos = 0, events = 0, sig = 0;
    uint64_t bytes = 0, last_t = 0;
    bl_tap_event_t ev;
    while (bl_tap_event(t, &pos, &ev) == BL_OK) {
        assert_true(ev.ch >= 0 && ev.ch < BL_TAP_NCHAN);
        assert_true(ev.n > 0);
        assert_true(ev.t_us >= last_t);
        last_t = ev.t_us;
        size_t room = sizeof(r->cap[ev.ch]) - r->caplen[ev.ch];
        memcpy(r->cap[ev.ch] + r->caplen[ev.ch], ev.p, ev.n < room ? ev.n : room);
        r->caplen[ev.ch] += ev.n;
        if (sig < sizeof(r->evsig) - 64)
            sig += (size_t)snprintf(r->evsig + sig, sizeof(r->evsig) - sig, "%d:%zu:%llu;", ev.ch, ev.n,
                                    (unsigned long long)ev.t_us);
        events++;
        bytes += ev.n;
    }
    size_t ie;
    uint64_t ib;
    bl_tap_capture_info(t, &ie, &ib, &r->trunc);
    assert_int_equal(ie, events);
    assert_int_equal(ib, bytes);
    r->events = events;
    bl_tap_free(t);
}

static void same_result(const result_t *a, const result_t *b)
{
    assert_int_equal(a->o.known, b->o.known);
    assert_int_equal(a->o.exit_code, b->o.exit_code);
    assert_int_equal(a->o.lost, b->o.lost);
    assert_string_equal(a->o.reason, b->o.reason);
    assert_string_equal(a->o.message, b->o.message);
    assert_int_equal(a->json_rc, b->json_rc);
    assert_string_equal(a->json, b->json);
    for (int c = 0; c < BL_TAP_NCHAN; c++) {
        assert_int_equal(a->caplen[c], b->caplen[c]);
        assert_memory_equal(a->cap[c], b->cap[c], sizeof(a->cap[c]));
    }
    assert_int_equal(a->trunc, b->trunc);
    assert_int_equal(a->events, b->events);
    assert_string_equal(a->evsig, b->evsig);
}

/* Runs `s` whole, byte by byte, in 7-byte steps and split at every offset;
 * all must agree. Returns the whole run's result in *r. */
static void run(const sess_t *s, int proto, size_t capture, int pf, result_t *r)
{
    result_t x;
    take(replay(s, proto, capture, pf, 0, SIZE_MAX), r);
    take(replay(s, proto, capture, pf, 1, SIZE_MAX), &x);
    same_result(r, &x);
    take(replay(s, proto, capture, pf, 7, SIZE_MAX), &x);
    same_result(r, &x);
    for (size_t cut = 1; cut < s->len; cut++) {
        take(replay(s, proto, capture, pf, 0, cut), &x);
        same_result(r, &x);
    }
}

/* ---- WebSocket frames --------------------------------------------------- */

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };
enum { LEN_MIN = 0, LEN_16, LEN_64 };

/* Appends one frame; `mask` -1 masks client frames only (as the RFC says). */
static void ws_frame(sess_t *s, int dir, int fin, int op, int mask, int lenform, const void *p,
                     size_t n)
{
    static unsigned counter;
    unsigned char h[14], *buf = malloc(n + 14);
    assert_non_null(buf);
    size_t hl = 2;
    int m = mask < 0 ? dir == BL_TAP_UP : mask;
    h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (lenform == LEN_MIN && n < 126) {
        h[1] = (unsigned char)n;
    } else if (lenform != LEN_64 && n < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    unsigned char key[4] = { 0x37, (unsigned char)(0xfa + counter), 0x21, (unsigned char)(counter * 7) };
    counter++;
    if (m) {
        h[1] |= 0x80;
        memcpy(h + hl, key, 4);
        hl += 4;
    }
    memcpy(buf, h, hl);
    for (size_t i = 0; i < n; i++)
        buf[hl + i] = ((const unsigned char *)p)[i] ^ (m ? key[i & 3] : 0);
    sess_add(s, dir, buf, hl + n);
    free(buf);
}

/* One binary message: channel byte + payload. */
static void ws_msg(sess_t *s, int dir, int ch, const void *p, size_t n)
{
    unsigned char *b = malloc(n + 1);
    assert_non_null(b);
    b[0] = (unsigned char)ch;
    memcpy(b + 1, p, n);
    ws_frame(s, dir, 1, OP_BIN, -1, LEN_MIN, b, n + 1);
    free(b);
}

static void ws_str(sess_t *s, int dir, int ch, const char *text)
{
    ws_msg(s, dir, ch, text, strlen(text));
}

static void ws_close(sess_t *s, int dir)
{
    ws_frame(s, dir, 1, OP_CLOSE, -1, LEN_MIN, "\x03\xe8", 2);
}

#define ST_SUCCESS "{\"metadata\":{},\"status\":\"Success\"}"
#define ST_EXIT(n)                                                                              \
    "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero "  \
    "exit code: command '[sh -c exit " #n "]' exited with " #n ": \",\"reason\":\"NonZeroExitCode\"," \
    "\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"" #n "\"}]}}"
#define ST_INTERNAL                                                                             \
    "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: exec: "     \
    "\\\"foo\\\": executable file not found in $PATH\",\"reason\":\"InternalError\","           \
    "\"details\":{\"causes\":[{\"message\":\"exec: \\\"foo\\\": executable file not found\"}]},\"code\":500}"

/* ---- bl_tap_proto ------------------------------------------------------- */

static int proto_of(const char *up, const char *ws)
{
    bl_str_t u = { up, strlen(up) }, w = { ws, strlen(ws) };
    return bl_tap_proto(u, w);
}

static void proto_from_the_101(void **state)
{
    (void)state;
    static const char *const ws[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                                      "v2.channel.k8s.io", "channel.k8s.io", "v4.base64.channel.k8s.io",
                                      "base64.channel.k8s.io", "" };
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        assert_int_equal(proto_of("websocket", ws[i]), BL_TAP_WEBSOCKET);
        assert_int_equal(proto_of("WebSocket", ws[i]), BL_TAP_WEBSOCKET);
    }
    assert_int_equal(proto_of(" websocket ", " v5.channel.k8s.io "), BL_TAP_WEBSOCKET);
    assert_int_equal(proto_of("SPDY/3.1", ""), BL_TAP_SPDY);
    assert_int_equal(proto_of("spdy/3.1", "ignored"), BL_TAP_SPDY);
    assert_int_equal(proto_of("websocket", "SPDY/3.1+portforward.k8s.io"), BL_TAP_WS_SPDY);
    assert_int_equal(proto_of("websocket", "v6.channel.k8s.io"), 0);
    assert_int_equal(proto_of("websocket", "V5.CHANNEL.K8S.IO"), 0); /* subprotocols match exactly */
    assert_int_equal(proto_of("websocket", "v5.channel.k8s.io, v4.channel.k8s.io"), 0);
    assert_int_equal(proto_of("h2c", "v5.channel.k8s.io"), 0);
    assert_int_equal(proto_of("SPDY/3", ""), 0);
    assert_int_equal(proto_of("", ""), 0);
    assert_null(bl_tap_new(0, 0));
    assert_null(bl_tap_new(4, 0));
}

/* ---- WebSocket exec ----------------------------------------------------- */

static void ws_v5_exit0(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_str(s, BL_TAP_UP, 0, "ls\n");
    ws_msg(s, BL_TAP_UP, 255, "\x00", 1); /* v5: stdin closed */
    ws_str(s, BL_TAP_DOWN, 1, "hello\n");
    ws_str(s, BL_TAP_DOWN, 2, "warn\n");
    ws_str(s, BL_TAP_DOWN, 1, ""); /* nothing more sent on stdout */
    ws_str(s, BL_TAP_DOWN, 3, ST_SUCCESS);
    ws_close(s, BL_TAP_DOWN);
    ws_close(s, BL_TAP_UP);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 0);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.json_rc, BL_OK);
    assert_string_equal(r.json, "{\"exit_code\":0}");
    assert_int_equal(r.caplen[0] + r.caplen[1] + r.caplen[2], 0); /* not capturing */
    run(s, BL_TAP_WEBSOCKET, 100, 0, &r);
    assert_int_equal(r.caplen[BL_TAP_STDIN], 3);
    assert_memory_equal(r.cap[BL_TAP_STDIN], "ls\n", 3);
    assert_int_equal(r.caplen[BL_TAP_STDOUT], 6);
    assert_memory_equal(r.cap[BL_TAP_STDOUT], "hello\n", 6);
    assert_int_equal(r.caplen[BL_TAP_STDERR], 5);
    assert_memory_equal(r.cap[BL_TAP_STDERR], "warn\n", 5);
    assert_int_equal(r.trunc, 0);
    assert_int_equal(r.events, 3);
    assert_string_equal(r.evsig, "0:3:0;1:6:0;2:5:0;");
    /* The bound is the whole capture, 13 bytes per event besides the bytes:
     * 16 + 19 + 18 = 53 holds everything. */
    run(s, BL_TAP_WEBSOCKET, 53, 0, &r);
    assert_int_equal(r.caplen[BL_TAP_STDERR], 5);
    assert_int_equal(r.trunc, 0);
    run(s, BL_TAP_WEBSOCKET, 52, 0, &r);
    assert_int_equal(r.caplen[BL_TAP_STDERR], 4);
    assert_memory_equal(r.cap[BL_TAP_STDERR], "warn", 4);
    assert_int_equal(r.trunc, 1);
    run(s, BL_TAP_WEBSOCKET, 34, 0, &r); /* a prefix in time: stderr, later, gets nothing */
    assert_int_equal(r.caplen[BL_TAP_STDIN], 3);
    assert_int_equal(r.caplen[BL_TAP_STDOUT], 5);
    assert_memory_equal(r.cap[BL_TAP_STDOUT], "hello", 5);
    assert_int_equal(r.caplen[BL_TAP_STDERR], 0);
    assert_int_equal(r.trunc, 1);
    run(s, BL_TAP_WEBSOCKET, 13, 0, &r); /* no room for a single byte */
    assert_int_equal(r.events, 0);
    assert_int_equal(r.trunc, 1);
    sess_free(s);
}

/* Events keep the order and time of the bytes: bytes of one channel fed
 * at one time are one event; time never goes backwards. */
static void capture_events_keep_order_and_time(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_str(s, BL_TAP_DOWN, 1, "a");
    ws_str(s, BL_TAP_DOWN, 2, "b");
    ws_str(s, BL_TAP_DOWN, 1, "cd");
    ws_str(s, BL_TAP_DOWN, 1, "e");
    ws_str(s, BL_TAP_UP, 0, "in");
    ws_str(s, BL_TAP_DOWN, 1, "f");
    static const uint64_t at[] = { 0, 5, 5, 3, 9, 9 }; /* the 3 is ignored: still 5 */
    bl_tap_t *t = bl_tap_new(BL_TAP_WEBSOCKET, 1000);
    assert_non_null(t);
    assert_int_equal(bl_tap_capturing(t), 1);
    for (size_t i = 0; i < s->nev; i++) {
        bl_tap_clock(t, at[i]);
        feed_piece(t, s, i, 0, 1); /* split: the pieces still make one event */
        feed_piece(t, s, i, 1, s->ev[i].len);
    }
    result_t r;
    take(t, &r);
    assert_string_equal(r.evsig, "1:1:0;2:1:5;1:3:5;0:2:9;1:1:9;");
    assert_memory_equal(r.cap[BL_TAP_STDOUT], "acdef", 5);
    assert_int_equal(r.trunc, 0);
    t = bl_tap_new(BL_TAP_WEBSOCKET, 0); /* not capturing: nothing, and never "truncated" */
    assert_int_equal(bl_tap_capturing(t), 0);
    for (size_t i = 0; i < s->nev; i++)
        feed_piece(t, s, i, 0, s->ev[i].len);
    size_t pos = 0;
    bl_tap_event_t ev;
    assert_int_equal(bl_tap_event(t, &pos, &ev), BL_DECLINED);
    take(t, &r);
    assert_int_equal(r.events, 0);
    assert_int_equal(r.trunc, 0);
    sess_free(s);
}

/* v4 exit 3: every message fragmented, pings and pongs between fragments,
 * a 16-bit and a 64-bit length, a frame with an empty payload. */
static void ws_v4_exit3_fragmented(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    const char *st = "\x03" ST_EXIT(3);
    size_t n = strlen(st);
    static char big[70000];
    memset(big, 'x', sizeof(big));
    big[0] = 1; /* channel: stdout */
    ws_frame(s, BL_TAP_DOWN, 0, OP_BIN, 0, LEN_MIN, big, 300);
    ws_frame(s, BL_TAP_DOWN, 0, OP_CONT, 0, LEN_16, big + 300, 1000);
    ws_frame(s, BL_TAP_UP, 1, OP_PING, 1, LEN_MIN, "ping", 4);
    ws_frame(s, BL_TAP_DOWN, 1, OP_PONG, 0, LEN_MIN, "ping", 4);
    ws_frame(s, BL_TAP_DOWN, 1, OP_CONT, 0, LEN_64, big + 1300, sizeof(big) - 1300);
    ws_frame(s, BL_TAP_DOWN, 0, OP_BIN, 0, LEN_MIN, "", 0); /* the channel byte comes later */
    ws_frame(s, BL_TAP_DOWN, 0, OP_CONT, 0, LEN_MIN, st, 1);
    ws_frame(s, BL_TAP_DOWN, 0, OP_CONT, 0, LEN_MIN, st + 1, 10);
    ws_frame(s, BL_TAP_DOWN, 1, OP_PING, 0, LEN_MIN, "", 0);
    ws_frame(s, BL_TAP_DOWN, 0, OP_CONT, 0, LEN_64, st + 11, 40);
    ws_frame(s, BL_TAP_DOWN, 1, OP_CONT, 0, LEN_16, st + 51, n - 51);
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    take(replay(s, BL_TAP_WEBSOCKET, 64, 0, 0, SIZE_MAX), &r); /* 70 KB: no every-offset run */
    result_t x;
    take(replay(s, BL_TAP_WEBSOCKET, 64, 0, 1, SIZE_MAX), &x);
    same_result(&r, &x);
    take(replay(s, BL_TAP_WEBSOCKET, 64, 0, 4093, SIZE_MAX), &x);
    same_result(&r, &x);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 3);
    assert_string_equal(r.o.reason, "NonZeroExitCode");
    assert_non_null(strstr(r.o.message, "exited with 3"));
    assert_string_equal(r.json, "{\"exit_code\":3,\"reason\":\"NonZeroExitCode\"}");
    assert_int_equal(r.caplen[BL_TAP_STDOUT], 64 - BL_TAP_EVENT_OVERHEAD);
    assert_int_equal(r.events, 1);
    assert_int_equal(r.trunc, 1);
    sess_free(s);
}

static void ws_internal_error(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_str(s, BL_TAP_DOWN, 3, ST_INTERNAL);
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, -1);
    assert_string_equal(r.o.reason, "InternalError");
    assert_string_equal(r.o.message, "Internal error occurred: exec: \"foo\": executable file not found in $PATH");
    assert_string_equal(r.json, "{\"exit_code\":-1,\"message\":\"Internal error occurred: exec: \\\"foo\\\": "
                                "executable file not found in $PATH\",\"reason\":\"InternalError\"}");
    sess_free(s);
}

/* The Status split over two messages (each a Write on the error stream). */
static void ws_status_over_two_messages(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    const char *st = ST_EXIT(42);
    char a[32];
    memcpy(a, st, 20);
    a[20] = 0;
    ws_str(s, BL_TAP_DOWN, 3, a);
    ws_str(s, BL_TAP_DOWN, 1, "between\n");
    ws_str(s, BL_TAP_DOWN, 3, st + 20);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 42);
    sess_free(s);
}

/* v1..v3: the error channel carries text, and nothing on success. */
static void ws_v1_plain_text_and_silence(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_str(s, BL_TAP_DOWN, 3, "command terminated with non-zero exit code: error executing in container: 1");
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, -1);
    assert_string_equal(r.o.reason, "");
    assert_string_equal(r.json, "{\"exit_code\":-1,\"message\":\"command terminated with non-zero exit code: "
                                "error executing in container: 1\"}");
    sess_free(s);

    s = sess_new(); /* success: the server closes, the error channel said nothing */
    ws_str(s, BL_TAP_DOWN, 1, "ok\n");
    ws_close(s, BL_TAP_DOWN);
    ws_close(s, BL_TAP_UP);
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 0);
    assert_string_equal(r.json, "{\"exit_code\":0}");
    sess_free(s);

    s = sess_new(); /* the client closed first: the server's close only answers it */
    ws_str(s, BL_TAP_DOWN, 1, "ok\n");
    ws_close(s, BL_TAP_UP);
    ws_close(s, BL_TAP_DOWN);
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.known, 0);
    assert_int_equal(r.o.exit_code, -1);
    assert_int_equal(r.json_rc, BL_DECLINED);
    assert_string_equal(r.json, "");
    sess_free(s);
}

static void b64(const char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = 0;
}

/* base64.channel.k8s.io: text messages, channel as a digit; fragments cut
 * the base64 text inside its quanta. */
static void ws_base64_variant(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    char text[1024];
    text[0] = '1';
    b64("hello\n", 6, text + 1);
    ws_frame(s, BL_TAP_DOWN, 1, OP_TEXT, 0, LEN_MIN, text, strlen(text));
    text[0] = '0';
    b64("in", 2, text + 1);
    ws_frame(s, BL_TAP_UP, 1, OP_TEXT, 1, LEN_MIN, text, strlen(text));
    text[0] = '3';
    b64(ST_EXIT(2), strlen(ST_EXIT(2)), text + 1);
    size_t n = strlen(text);
    ws_frame(s, BL_TAP_DOWN, 0, OP_TEXT, 0, LEN_MIN, text, 3);
    ws_frame(s, BL_TAP_DOWN, 0, OP_CONT, 0, LEN_MIN, text + 3, 5);
    ws_frame(s, BL_TAP_DOWN, 1, OP_CONT, 0, LEN_16, text + 8, n - 8);
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 100, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 2);
    assert_int_equal(r.caplen[BL_TAP_STDOUT], 6);
    assert_memory_equal(r.cap[BL_TAP_STDOUT], "hello\n", 6);
    assert_int_equal(r.caplen[BL_TAP_STDIN], 2);
    assert_memory_equal(r.cap[BL_TAP_STDIN], "in", 2);
    sess_free(s);

    s = sess_new(); /* not base64 at all: that message is ignored, as wsstream drops it */
    ws_frame(s, BL_TAP_DOWN, 1, OP_TEXT, 0, LEN_MIN, "1!!!!", 5);
    ws_frame(s, BL_TAP_DOWN, 1, OP_TEXT, 0, LEN_MIN, "x", 1);
    run(s, BL_TAP_WEBSOCKET, 100, 0, &r);
    assert_int_equal(r.o.known, 0);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.caplen[BL_TAP_STDOUT], 0);
    sess_free(s);
}

/* Masks as a server and not as a client: the tap follows each frame's bit. */
static void ws_mask_bit_is_honoured(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_frame(s, BL_TAP_UP, 1, OP_BIN, 0, LEN_MIN, "\x00" "abc", 4);
    const char *st = "\x03" ST_EXIT(7);
    ws_frame(s, BL_TAP_DOWN, 1, OP_BIN, 1, LEN_MIN, st, strlen(st));
    result_t r;
    run(s, BL_TAP_WEBSOCKET, BL_TAP_EVENT_OVERHEAD + 3, 0, &r);
    assert_int_equal(r.o.exit_code, 7);
    assert_int_equal(r.caplen[BL_TAP_STDIN], 3);
    assert_memory_equal(r.cap[BL_TAP_STDIN], "abc", 3);
    sess_free(s);
}

/* Frames the tap cannot follow: it stops and says so, whatever comes next. */
static void ws_malformed_is_lost(void **state)
{
    (void)state;
    static const unsigned char bad[][10] = {
        { 0xc2, 0x01, 0x01 },             /* RSV1: a compressed frame nobody negotiated */
        { 0x83, 0x01, 0x01 },             /* reserved data opcode */
        { 0x8b, 0x00 },                   /* reserved control opcode */
        { 0x09, 0x00 },                   /* fragmented ping */
        { 0x88, 0x7e, 0x00, 0x7e },       /* control frame longer than 125 */
        { 0x80, 0x01, 0x01 },             /* continuation with no message */
        { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1 }, /* 64-bit length with the top bit set */
    };
    static const size_t len[] = { 3, 3, 2, 2, 4, 3, 10 };
    for (size_t i = 0; i < sizeof(len) / sizeof(len[0]); i++) {
        sess_t *s = sess_new();
        ws_str(s, BL_TAP_DOWN, 1, "out");
        sess_add(s, BL_TAP_DOWN, bad[i], len[i]);
        ws_str(s, BL_TAP_DOWN, 3, ST_SUCCESS);
        result_t r;
        run(s, BL_TAP_WEBSOCKET, 100, 0, &r);
        assert_int_equal(r.o.lost, 1);
        assert_int_equal(r.o.known, 0);
        assert_string_equal(r.json, "{\"exit_code\":-1,\"lost\":true}");
        assert_int_equal(r.caplen[BL_TAP_STDOUT], 3);
        assert_int_equal(r.trunc, 1); /* what came after is unknown */
        sess_free(s);
    }
    sess_t *s = sess_new(); /* a new message inside a fragmented one */
    ws_frame(s, BL_TAP_DOWN, 0, OP_BIN, 0, LEN_MIN, "\x01" "a", 2);
    ws_frame(s, BL_TAP_DOWN, 1, OP_BIN, 0, LEN_MIN, "\x01" "b", 2);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_int_equal(r.o.lost, 1);
    sess_free(s);
}

/* The error channel is bounded: 64 KiB of it is not a Status. */
static void ws_status_bound(void **state)
{
    (void)state;
    size_t n = 64 * 1024 + 2;
    char *big = malloc(n);
    assert_non_null(big);
    big[0] = 3;
    big[1] = '{';
    memset(big + 2, ' ', n - 2);
    sess_t *s = sess_new();
    ws_frame(s, BL_TAP_DOWN, 1, OP_BIN, 0, LEN_MIN, big, n);
    result_t r;
    take(replay(s, BL_TAP_WEBSOCKET, 0, 0, 0, SIZE_MAX), &r);
    assert_int_equal(r.o.lost, 1);
    sess_free(s);
    /* exactly 64 KiB fits, and the Status it ends with is read */
    s = sess_new();
    ws_frame(s, BL_TAP_DOWN, 0, OP_BIN, 0, LEN_MIN, big, 1 + 64 * 1024 - 19);
    ws_frame(s, BL_TAP_DOWN, 1, OP_CONT, 0, LEN_MIN, "\"status\":\"Success\"}", 19);
    take(replay(s, BL_TAP_WEBSOCKET, 0, 0, 0, SIZE_MAX), &r);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.o.exit_code, 0);
    sess_free(s);
    free(big);
}

/* kubelet's WebSocket port-forward (?ports=): channel 2i data, 2i+1 errors,
 * each channel opening with its port (little-endian). */
static void ws_portforward_channels(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_msg(s, BL_TAP_DOWN, 0, "\x90\x1f", 2);
    ws_msg(s, BL_TAP_DOWN, 1, "\x90\x1f", 2);
    ws_msg(s, BL_TAP_DOWN, 2, "\x91\x1f", 2);
    ws_msg(s, BL_TAP_DOWN, 3, "\x91\x1f", 2);
    ws_str(s, BL_TAP_UP, 0, "GET / HTTP/1.1\r\n\r\n");
    ws_str(s, BL_TAP_DOWN, 0, "HTTP/1.1 200 OK\r\n\r\n");
    ws_str(s, BL_TAP_DOWN, 3, "error forwarding port 8081 to pod x: connection refused");
    ws_str(s, BL_TAP_DOWN, 1, "a later error");
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 100, 1, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, -1);
    assert_string_equal(r.o.message, "error forwarding port 8081 to pod x: connection refused");
    assert_int_equal(r.caplen[0] + r.caplen[1] + r.caplen[2], 0);
    sess_free(s);

    s = sess_new(); /* no error: nothing to say, even after a clean close */
    ws_msg(s, BL_TAP_DOWN, 1, "\x90\x1f", 2);
    ws_str(s, BL_TAP_DOWN, 0, "data");
    ws_close(s, BL_TAP_DOWN);
    run(s, BL_TAP_WEBSOCKET, 0, 1, &r);
    assert_int_equal(r.o.known, 0);
    assert_int_equal(r.json_rc, BL_DECLINED);
    sess_free(s);
}

/* ---- Status decoding edge cases ----------------------------------------- */

static void status_case(const char *status, int known, int code, const char *reason, const char *json)
{
    sess_t *s = sess_new();
    ws_str(s, BL_TAP_DOWN, 3, status);
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    take(replay(s, BL_TAP_WEBSOCKET, 0, 0, 0, SIZE_MAX), &r);
    assert_int_equal(r.o.known, known);
    assert_int_equal(r.o.exit_code, code);
    assert_string_equal(r.o.reason, reason);
    assert_string_equal(r.json, json);
    sess_free(s);
}

static void status_edge_cases(void **state)
{
    (void)state;
    /* exit codes as client-go's ParseUint(s, 10, 8) reads them */
    status_case("{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":"
                "[{\"reason\":\"Other\",\"message\":\"9\"},{\"reason\":\"ExitCode\",\"message\":\"007\"}]}}",
                1, 7, "NonZeroExitCode", "{\"exit_code\":7,\"reason\":\"NonZeroExitCode\"}");
    status_case("{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"message\":\"m\",\"details\":"
                "{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"256\"}]}}",
                1, -1, "NonZeroExitCode", "{\"exit_code\":-1,\"message\":\"m\",\"reason\":\"NonZeroExitCode\"}");
    status_case("{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":"
                "[{\"reason\":\"ExitCode\",\"message\":\"-1\"}]}}",
                1, -1, "NonZeroExitCode", "{\"exit_code\":-1,\"reason\":\"NonZeroExitCode\"}");
    status_case("{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\"}", 1, -1, "NonZeroExitCode",
                "{\"exit_code\":-1,\"reason\":\"NonZeroExitCode\"}");
    status_case("{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":"
                "[{\"reason\":\"ExitCode\",\"message\":\"255\"}]}}",
                1, 255, "NonZeroExitCode", "{\"exit_code\":255,\"reason\":\"NonZeroExitCode\"}");
    /* neither Success nor Failure: client-go's "unknown error" */
    status_case("{\"status\":\"Weird\",\"message\":\"hm\"}", 1, -1, "", "{\"exit_code\":-1,\"message\":\"hm\"}");
    /* a Success says nothing more, whatever message it carries */
    status_case("{\"status\":\"Success\",\"message\":\"fine\"}", 1, 0, "", "{\"exit_code\":0}");
    /* JSON that is not a Status object, and broken JSON: the text is the message */
    status_case("[1,2]", 1, -1, "", "{\"exit_code\":-1,\"message\":\"[1,2]\"}");
    status_case("{\"status\":", 1, -1, "", "{\"exit_code\":-1,\"message\":\"{\\\"status\\\":\"}");
    /* what JSON cannot hold raw is escaped as RFC 8785 wants; bad UTF-8 and NUL become U+FFFD */
    status_case("{\"status\":\"Failure\",\"reason\":\"R\\\"q\",\"message\":\"a\\u0001\\b\\f\\n\\u007f\\\\\"}",
                1, -1, "R\"q", "{\"exit_code\":-1,\"message\":\"a\\u0001\\b\\f\\n\x7f\\\\\",\"reason\":\"R\\\"q\"}");
    status_case("bad \xff\xfe text", 1, -1, "", "{\"exit_code\":-1,\"message\":\"bad \xef\xbf\xbd\xef\xbf\xbd text\"}");
}

static void text_case_nul(void **state)
{
    (void)state;
    sess_t *s = sess_new();
    ws_msg(s, BL_TAP_DOWN, 3, "a\0b", 3);
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    assert_string_equal(r.o.message, "a\xef\xbf\xbd" "b");
    sess_free(s);
}

/* The message is cut to the struct on a character boundary. */
static void long_message_is_cut_on_a_character(void **state)
{
    (void)state;
    char msg[1200];
    size_t n = 0;
    msg[n++] = 'x';
    while (n + 2 < sizeof(msg) - 1) {
        msg[n++] = (char)0xc3; /* é */
        msg[n++] = (char)0xa9;
    }
    msg[n] = 0;
    sess_t *s = sess_new();
    ws_msg(s, BL_TAP_DOWN, 3, msg, n);
    ws_close(s, BL_TAP_DOWN);
    result_t r;
    run(s, BL_TAP_WEBSOCKET, 0, 0, &r);
    size_t len = strlen(r.o.message);
    assert_int_equal(len, 255); /* 'x' + 127 two-byte characters */
    assert_memory_equal(r.o.message, msg, len);
    json_error_t e;
    json_t *j = json_loads(r.json, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "message")), r.o.message);
    json_decref(j);
    sess_free(s);
}

static void json_bounds(void **state)
{
    (void)state;
    { /* the largest outcome: every byte escaped to six, and lost after it */
        char st[4096];
        size_t n = (size_t)snprintf(st, sizeof(st), "%s", "{\"status\":\"Failure\",\"reason\":\"");
        for (int i = 0; i < 80; i++)
            n += (size_t)snprintf(st + n, sizeof(st) - n, "\\u0001");
        n += (size_t)snprintf(st + n, sizeof(st) - n, "\",\"message\":\"");
        for (int i = 0; i < 300; i++)
            n += (size_t)snprintf(st + n, sizeof(st) - n, "\\u001f");
        snprintf(st + n, sizeof(st) - n, "\"}");
        sess_t *s = sess_new();
        ws_str(s, BL_TAP_DOWN, 3, st);
        sess_add(s, BL_TAP_DOWN, "\x83\x00", 2); /* then something the tap cannot follow */
        bl_tap_t *t = replay(s, BL_TAP_WEBSOCKET, 0, 0, 0, SIZE_MAX);
        bl_tap_outcome_t o;
        bl_tap_outcome(t, &o);
        assert_int_equal(o.known, 1);
        assert_int_equal(o.lost, 1);
        assert_int_equal(strlen(o.reason), 63);
        assert_int_equal(strlen(o.message), 255);
        bl_buf_t b;
        bl_buf_init(&b, BL_TAP_JSON_MAX);
        assert_int_equal(bl_tap_json(t, &b), BL_OK);
        assert_int_equal(bl_buf_size(&b), 15 + 12 + 11 + 2 + 255 * 6 + 10 + 2 + 63 * 6 + 1);
        assert_memory_equal(bl_buf_data(&b), "{\"exit_code\":-1,\"lost\":true,\"message\":\"\\u001f", 44);
        bl_buf_free(&b);
        bl_tap_free(t);
        sess_free(s);
    }
    sess_t *s = sess_new();
    ws_str(s, BL_TAP_DOWN, 3, ST_INTERNAL);
    bl_tap_t *t = replay(s, BL_TAP_WEBSOCKET, 0, 0, 0, SIZE_MAX);
    bl_buf_t b;
    bl_buf_init(&b, 64);
    char a[60];
    memset(a, 'a', sizeof(a));
    assert_int_equal(bl_buf_append(&b, a, sizeof(a)), BL_OK);
    bl_buf_consume(&b, 58); /* the first append compacts the buffer */
    assert_int_equal(bl_tap_json(t, &b), BL_ERROR);
    assert_int_equal(bl_buf_size(&b), 2); /* nothing half-written */
    assert_memory_equal(bl_buf_data(&b), "aa", 2);
    bl_buf_free(&b);
    bl_buf_init(&b, 4096);
    assert_int_equal(bl_buf_append(&b, "{\"exec\":", 8), BL_OK);
    assert_int_equal(bl_tap_json(t, &b), BL_OK);
    const char *want = "{\"exec\":{\"exit_code\":-1,\"message\":\"Internal error occurred: exec: ";
    assert_memory_equal(bl_buf_data(&b), want, strlen(want));
    bl_buf_free(&b);
    bl_tap_free(t);
    sess_free(s);
    bl_tap_free(NULL);
}

/* ---- SPDY/3.1 ------------------------------------------------------------ */

/* The SPDY/3 dictionary, built here from the draft's word list rather than
 * copied from the tap, so that a typo in either shows. */
static size_t spdy_dict(unsigned char *out)
{
    static const char *const words[] = {
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
        "cache-control", "connection", "content-base", "content-encoding", "content-language",
        "content-length", "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
        "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
        "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
        "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
    };
    static const char tail[] =
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
        "504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad "
        "Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not "
        "Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec "
        "00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,"
        "image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
        "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    size_t n = 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t l = strlen(words[i]);
        out[n++] = 0;
        out[n++] = 0;
        out[n++] = 0;
        out[n++] = (unsigned char)l;
        memcpy(out + n, words[i], l);
        n += l;
    }
    memcpy(out + n, tail, sizeof(tail) - 1);
    return n + sizeof(tail) - 1;
}

typedef struct {
    z_stream z[2]; /* one header compressor per direction, for the connection */
} spdy_enc_t;

enum { DICT_NONE, DICT_SPDY, DICT_WRONG };

static void spdy_enc_init(spdy_enc_t *e, int dict)
{
    unsigned char d[1500];
    size_t n = spdy_dict(d);
    assert_int_equal(n, 1423);
    if (dict == DICT_WRONG)
        d[100] ^= 1;
    for (int i = 0; i < 2; i++) {
        memset(&e->z[i], 0, sizeof(e->z[i]));
        assert_int_equal(deflateInit(&e->z[i], Z_DEFAULT_COMPRESSION), Z_OK);
        if (dict != DICT_NONE)
            assert_int_equal(deflateSetDictionary(&e->z[i], d, (uInt)n), Z_OK);
    }
}

static void spdy_enc_free(spdy_enc_t *e)
{
    deflateEnd(&e->z[0]);
    deflateEnd(&e->z[1]);
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Compresses a header block of NULL-terminated name/value pairs as
 * spdystream does (write, then a sync flush). Returns its length. */
static size_t spdy_block(z_stream *z, const char *const *kv, unsigned char *out, size_t cap)
{
    static unsigned char raw[200000];
    size_t n = 4, count = 0;
    for (; kv[2 * count]; count++) {
        for (int k = 0; k < 2; k++) {
            size_t l = strlen(kv[2 * count + k]);
            put32(raw + n, (uint32_t)l);
            memcpy(raw + n + 4, kv[2 * count + k], l);
            n += 4 + l;
        }
    }
    put32(raw, (uint32_t)count);
    z->next_in = raw;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    assert_int_equal(deflate(z, Z_SYNC_FLUSH), Z_OK);
    assert_int_equal(z->avail_in, 0);
    assert_true(z->avail_out > 0);
    return cap - z->avail_out;
}

static void spdy_ctrl(sess_t *s, int dir, int type, int flags, const void *payload, size_t n)
{
    unsigned char *f = malloc(n + 8);
    assert_non_null(f);
    put32(f, 0x80030000u | (uint32_t)type);
    put32(f + 4, (uint32_t)flags << 24 | (uint32_t)n);
    memcpy(f + 8, payload, n);
    sess_add(s, dir, f, n + 8);
    free(f);
}

static void spdy_data(sess_t *s, int dir, uint32_t sid, int flags, const void *p, size_t n)
{
    unsigned char *f = malloc(n + 8);
    assert_non_null(f);
    put32(f, sid);
    put32(f + 4, (uint32_t)flags << 24 | (uint32_t)n);
    memcpy(f + 8, p, n);
    sess_add(s, dir, f, n + 8);
    free(f);
}

enum { SYN_STREAM = 1, SYN_REPLY = 2, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, HEADERS = 8,
       WINDOW_UPDATE = 9 };

static void spdy_headers_frame(sess_t *s, spdy_enc_t *e, int dir, int type, uint32_t sid, int flags,
                               const char *const *kv)
{
    static unsigned char p[300000];
    size_t fixed = type == SYN_STREAM ? 10 : 4;
    memset(p, 0, fixed);
    put32(p, sid);
    size_t n = spdy_block(&e->z[dir], kv, p + fixed, sizeof(p) - fixed);
    spdy_ctrl(s, dir, type, flags, p, fixed + n);
}

static void spdy_syn(sess_t *s, spdy_enc_t *e, uint32_t sid, const char *type)
{
    const char *kv[] = { "streamtype", type, NULL };
    spdy_headers_frame(s, e, BL_TAP_UP, SYN_STREAM, sid, 0, kv);
    spdy_headers_frame(s, e, BL_TAP_DOWN, SYN_REPLY, sid, 0, (const char *const[]){ NULL });
}

static void spdy_str(sess_t *s, int dir, uint32_t sid, const char *text)
{
    spdy_data(s, dir, sid, 0, text, strlen(text));
}

/* What kubectl 1.27 and kubelet exchange for `kubectl exec -i pod -- sh`
 * with the given Status (or plain text) on the error stream. */
static void spdy_exec(sess_t *s, spdy_enc_t *e, const char *error_text, int empty_fin)
{
    unsigned char settings[12] = { 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 100 };
    spdy_ctrl(s, BL_TAP_UP, SETTINGS, 0, settings, sizeof(settings));
    spdy_syn(s, e, 1, "error");
    const char *more[] = { "x-extra", "value", NULL }; /* keeps the zlib context honest */
    spdy_headers_frame(s, e, BL_TAP_UP, HEADERS, 1, 0, more);
    spdy_syn(s, e, 3, "stdin");
    spdy_syn(s, e, 5, "stdout");
    spdy_syn(s, e, 7, "stderr");
    spdy_ctrl(s, BL_TAP_UP, PING, 0, "\0\0\0\1", 4);
    spdy_ctrl(s, BL_TAP_DOWN, PING, 0, "\0\0\0\1", 4);
    spdy_str(s, BL_TAP_UP, 3, "echo hi\n");
    spdy_data(s, BL_TAP_UP, 3, 1, "", 0);
    spdy_ctrl(s, BL_TAP_DOWN, WINDOW_UPDATE, 0, "\0\0\0\3\0\0\1\0", 8);
    spdy_str(s, BL_TAP_DOWN, 5, "hi\n");
    spdy_str(s, BL_TAP_DOWN, 7, "oops\n");
    spdy_data(s, BL_TAP_DOWN, 5, 1, "", 0);
    spdy_data(s, BL_TAP_DOWN, 7, 1, "", 0);
    if (error_text && *error_text) {
        size_t n = strlen(error_text), h = n / 2;
        spdy_data(s, BL_TAP_DOWN, 1, 0, error_text, h);
        spdy_data(s, BL_TAP_DOWN, 1, empty_fin ? 0 : 1, error_text + h, n - h);
    }
    if (empty_fin)
        spdy_data(s, BL_TAP_DOWN, 1, 1, "", 0);
    spdy_data(s, BL_TAP_UP, 1, 1, "", 0);
    spdy_ctrl(s, BL_TAP_DOWN, GOAWAY, 0, "\0\0\0\7\0\0\0\0", 8);
}

static void spdy_exec_exit3(void **state)
{
    (void)state;
    spdy_enc_t e;
    spdy_enc_init(&e, DICT_SPDY);
    sess_t *s = sess_new();
    spdy_exec(s, &e, ST_EXIT(3), 0);
    result_t r;
    run(s, BL_TAP_SPDY, 100, 0, &r);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 3);
    assert_string_equal(r.json, "{\"exit_code\":3,\"reason\":\"NonZeroExitCode\"}");
    assert_int_equal(r.caplen[BL_TAP_STDIN], 8);
    assert_memory_equal(r.cap[BL_TAP_STDIN], "echo hi\n", 8);
    assert_int_equal(r.caplen[BL_TAP_STDOUT], 3);
    assert_memory_equal(r.cap[BL_TAP_STDOUT], "hi\n", 3);
    assert_int_equal(r.caplen[BL_TAP_STDERR], 5);
    assert_memory_equal(r.cap[BL_TAP_STDERR], "oops\n", 5);
    assert_int_equal(r.trunc, 0);
    assert_string_equal(r.evsig, "0:8:0;1:3:0;2:5:0;");
    run(s, BL_TAP_SPDY, BL_TAP_EVENT_OVERHEAD + 3, 0, &r);
    assert_memory_equal(r.cap[BL_TAP_STDIN], "ech", 3);
    assert_int_equal(r.caplen[BL_TAP_STDOUT] + r.caplen[BL_TAP_STDERR], 0);
    assert_int_equal(r.trunc, 1);
    assert_int_equal(r.o.exit_code, 3);
    sess_free(s);
    spdy_enc_free(&e);
}

static void spdy_exec_success_and_text(void **state)
{
    (void)state;
    static const struct {
        const char *error;
        int empty_fin, known, code;
        const char *json;
    } cases[] = {
        { ST_SUCCESS, 1, 1, 0, "{\"exit_code\":0}" },                   /* v4+, FIN apart */
        { "", 1, 1, 0, "{\"exit_code\":0}" },                           /* v1..v3 success */
        { "exit status 1", 0, 1, -1, "{\"exit_code\":-1,\"message\":\"exit status 1\"}" },
        { ST_INTERNAL, 0, 1, -1, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        spdy_enc_t e;
        spdy_enc_init(&e, DICT_SPDY);
        sess_t *s = sess_new();
        spdy_exec(s, &e, cases[i].error, cases[i].empty_fin);
        result_t r;
        run(s, BL_TAP_SPDY, 0, 0, &r);
        assert_int_equal(r.o.known, cases[i].known);
        assert_int_equal(r.o.exit_code, cases[i].code);
        if (cases[i].json)
            assert_string_equal(r.json, cases[i].json);
        else
            assert_string_equal(r.o.reason, "InternalError");
        sess_free(s);
        spdy_enc_free(&e);
    }
}

/* A reset error stream, or a connection that just stops: nothing is known. */
static void spdy_reset_says_nothing(void **state)
{
    (void)state;
    spdy_enc_t e;
    spdy_enc_init(&e, DICT_SPDY);
    sess_t *s = sess_new();
    spdy_syn(s, &e, 1, "error");
    spdy_syn(s, &e, 3, "stdout");
    spdy_str(s, BL_TAP_DOWN, 3, "partial");
    spdy_ctrl(s, BL_TAP_DOWN, RST_STREAM, 0, "\0\0\0\1\0\0\0\5", 8);
    spdy_data(s, BL_TAP_DOWN, 1, 1, "", 0); /* after the reset: not the error stream any more */
    result_t r;
    run(s, BL_TAP_SPDY, 0, 0, &r);
    assert_int_equal(r.o.known, 0);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.json_rc, BL_DECLINED);
    sess_free(s);
    spdy_enc_free(&e);

    spdy_enc_init(&e, DICT_SPDY); /* reset after text: the text stands */
    s = sess_new();
    spdy_syn(s, &e, 1, "error");
    spdy_str(s, BL_TAP_DOWN, 1, "broken pipe");
    spdy_ctrl(s, BL_TAP_UP, RST_STREAM, 0, "\0\0\0\1\0\0\0\5", 8);
    run(s, BL_TAP_SPDY, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_string_equal(r.o.message, "broken pipe");
    sess_free(s);
    spdy_enc_free(&e);
}

/* SYN_STREAM with FIN from the server on the error stream (no data). */
static void spdy_fin_on_headers(void **state)
{
    (void)state;
    spdy_enc_t e;
    spdy_enc_init(&e, DICT_SPDY);
    sess_t *s = sess_new();
    const char *kv[] = { "streamtype", "error", NULL };
    spdy_headers_frame(s, &e, BL_TAP_UP, SYN_STREAM, 1, 1, kv);
    spdy_headers_frame(s, &e, BL_TAP_DOWN, SYN_REPLY, 1, 1, (const char *const[]){ NULL });
    result_t r;
    run(s, BL_TAP_SPDY, 0, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, 0);
    sess_free(s);
    spdy_enc_free(&e);
}

static void spdy_portforward(void **state)
{
    (void)state;
    spdy_enc_t e;
    spdy_enc_init(&e, DICT_SPDY);
    sess_t *s = sess_new();
    for (uint32_t i = 0; i < 3; i++) {
        char rid[8], port[8];
        snprintf(rid, sizeof(rid), "%u", i);
        snprintf(port, sizeof(port), "%u", 8080 + i);
        const char *err[] = { "streamtype", "error", "port", port, "requestid", rid, NULL };
        const char *data[] = { "streamtype", "data", "port", port, "requestid", rid, NULL };
        spdy_headers_frame(s, &e, BL_TAP_UP, SYN_STREAM, 1 + 4 * i, 0, err);
        spdy_headers_frame(s, &e, BL_TAP_DOWN, SYN_REPLY, 1 + 4 * i, 0, (const char *const[]){ NULL });
        spdy_data(s, BL_TAP_UP, 1 + 4 * i, 1, "", 0);
        spdy_headers_frame(s, &e, BL_TAP_UP, SYN_STREAM, 3 + 4 * i, 0, data);
        spdy_headers_frame(s, &e, BL_TAP_DOWN, SYN_REPLY, 3 + 4 * i, 0, (const char *const[]){ NULL });
        spdy_str(s, BL_TAP_UP, 3 + 4 * i, "GET / HTTP/1.1\r\n\r\n");
    }
    spdy_data(s, BL_TAP_DOWN, 1, 1, "", 0); /* first connection fine */
    spdy_str(s, BL_TAP_DOWN, 3, "HTTP/1.1 200 OK\r\n\r\n");
    spdy_str(s, BL_TAP_DOWN, 5, "error forwarding port 8081: ");
    spdy_str(s, BL_TAP_DOWN, 9, "error forwarding port 8082");
    spdy_str(s, BL_TAP_DOWN, 5, "connection refused");
    spdy_data(s, BL_TAP_DOWN, 9, 1, "", 0);
    spdy_data(s, BL_TAP_DOWN, 5, 1, "", 0);
    result_t r;
    run(s, BL_TAP_SPDY, 100, 0, &r);
    assert_int_equal(r.o.known, 1);
    assert_int_equal(r.o.exit_code, -1);
    assert_string_equal(r.o.message, "error forwarding port 8081: connection refused");
    assert_int_equal(r.caplen[0] + r.caplen[1] + r.caplen[2], 0);
    sess_free(s);
    spdy_enc_free(&e);
}

static void spdy_lost_case(sess_t *s)
{
    result_t r;
    take(replay(s, BL_TAP_SPDY, 0, 0, 0, SIZE_MAX), &r);
    assert_int_equal(r.o.lost, 1);
    assert_int_equal(r.o.known, 0);
    take(replay(s, BL_TAP_SPDY, 0, 0, 1, SIZE_MAX), &r);
    assert_int_equal(r.o.lost, 1);
    sess_free(s);
}

static void spdy_malformed_is_lost(void **state)
{
    (void)state;
    spdy_enc_t e;
    sess_t *s;

    s = sess_new(); /* header blocks compressed with another dictionary */
    spdy_enc_init(&e, DICT_WRONG);
    spdy_syn(s, &e, 1, "error");
    spdy_str(s, BL_TAP_DOWN, 1, ST_SUCCESS);
    spdy_enc_free(&e);
    spdy_lost_case(s);

    s = sess_new(); /* without one: zlib does not ask for it, nor does Go's reader */
    spdy_enc_init(&e, DICT_NONE);
    spdy_syn(s, &e, 1, "error");
    spdy_str(s, BL_TAP_DOWN, 1, ST_SUCCESS);
    spdy_enc_free(&e);
    result_t r;
    run(s, BL_TAP_SPDY, 0, 0, &r);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.o.exit_code, 0);
    sess_free(s);

    s = sess_new(); /* a block that is not zlib */
    spdy_ctrl(s, BL_TAP_UP, SYN_STREAM, 0, "\0\0\0\1\0\0\0\0\0\0garbage", 17);
    spdy_lost_case(s);

    s = sess_new(); /* SPDY/2 */
    sess_add(s, BL_TAP_UP, "\x80\x02\x00\x04\x00\x00\x00\x04\x00\x00\x00\x00", 12);
    spdy_lost_case(s);

    s = sess_new(); /* SYN_STREAM shorter than its fixed fields */
    spdy_ctrl(s, BL_TAP_UP, SYN_STREAM, 0, "\0\0\0\1\0\0", 6);
    spdy_lost_case(s);

    s = sess_new(); /* header count larger than the block */
    spdy_enc_init(&e, DICT_SPDY);
    {
        unsigned char p[64], raw[8] = { 0, 0, 0, 9, 0, 0, 0, 0 };
        memset(p, 0, 10);
        put32(p, 1);
        e.z[0].next_in = raw;
        e.z[0].avail_in = sizeof(raw);
        e.z[0].next_out = p + 10;
        e.z[0].avail_out = sizeof(p) - 10;
        assert_int_equal(deflate(&e.z[0], Z_SYNC_FLUSH), Z_OK);
        spdy_ctrl(s, BL_TAP_UP, SYN_STREAM, 0, p, sizeof(p) - e.z[0].avail_out);
    }
    spdy_enc_free(&e);
    spdy_lost_case(s);

    s = sess_new(); /* a header block inflating past 64 KiB */
    spdy_enc_init(&e, DICT_SPDY);
    {
        static char big[70000];
        memset(big, 'a', sizeof(big) - 1);
        const char *kv[] = { "streamtype", "error", "x-big", big, NULL };
        spdy_headers_frame(s, &e, BL_TAP_UP, SYN_STREAM, 1, 0, kv);
    }
    spdy_enc_free(&e);
    spdy_lost_case(s);

    s = sess_new(); /* the same past 64 KiB in a SYN_REPLY, which is only kept in step */
    spdy_enc_init(&e, DICT_SPDY);
    {
        static char big[70000];
        memset(big, 'b', sizeof(big) - 1);
        const char *kv[] = { "x-big", big, NULL };
        spdy_headers_frame(s, &e, BL_TAP_DOWN, SYN_REPLY, 1, 0, kv);
    }
    spdy_enc_free(&e);
    spdy_lost_case(s);

    s = sess_new(); /* more streams of interest open at once than the tap tracks */
    spdy_enc_init(&e, DICT_SPDY);
    for (uint32_t i = 0; i < 257; i++) {
        const char *kv[] = { "streamtype", "error", NULL };
        spdy_headers_frame(s, &e, BL_TAP_UP, SYN_STREAM, 1 + 2 * i, 0, kv);
    }
    spdy_enc_free(&e);
    spdy_lost_case(s);
}

/* Streams that close both ways are forgotten: a long port-forward with many
 * connections never fills the table. */
static void spdy_closed_streams_are_forgotten(void **state)
{
    (void)state;
    spdy_enc_t e;
    spdy_enc_init(&e, DICT_SPDY);
    sess_t *s = sess_new();
    for (uint32_t i = 0; i < 600; i++) {
        const char *kv[] = { "streamtype", "error", "port", "80", NULL };
        spdy_headers_frame(s, &e, BL_TAP_UP, SYN_STREAM, 1 + 2 * i, 1, kv);
        spdy_data(s, BL_TAP_DOWN, 1 + 2 * i, 1, "", 0);
    }
    spdy_str(s, BL_TAP_DOWN, 1, "late data on a closed stream");
    result_t r;
    take(replay(s, BL_TAP_SPDY, 0, 0, 0, SIZE_MAX), &r);
    assert_int_equal(r.o.lost, 0);
    assert_int_equal(r.o.known, 0);
    sess_free(s);
    spdy_enc_free(&e);
}

/* ---- SPDY inside WebSocket (kubectl 1.31+ port-forward) ----------------- */

/* Carries the SPDY bytes of `spdy` in WebSocket binary messages: each run
 * of same-direction events is one byte stream cut into messages of `chunk`
 * bytes regardless of SPDY frame boundaries, each message in two
 * fragments with a ping between. */
static void ws_wrap(const sess_t *spdy, sess_t *out, size_t chunk)
{
    for (size_t i = 0; i < spdy->nev;) {
        int dir = spdy->ev[i].dir;
        const unsigned char *p = spdy->data + spdy->ev[i].off;
        size_t n = 0;
        while (i < spdy->nev && spdy->ev[i].dir == dir)
            n += spdy->ev[i++].len; /* events are contiguous in spdy->data */
        for (size_t a = 0; a < n; a += chunk) {
            size_t k = a + chunk < n ? chunk : n - a, h = k / 3;
            ws_frame(out, dir, 0, OP_BIN, -1, LEN_MIN, p + a, h);
            ws_frame(out, dir, 1, OP_PING, -1, LEN_MIN, "", 0);
            ws_frame(out, dir, 1, OP_CONT, -1, LEN_MIN, p + a + h, k - h);
        }
    }
}

static void ws_spdy_tunnel(void **state)
{
    (void)state;
    spdy_enc_t e;
    spdy_enc_init(&e, DICT_SPDY);
    sess_t *sp = sess_new();
    const char *err[] = { "streamtype", "error", "port", "8081", "requestid", "0", NULL };
    const char *data[] = { "streamtype", "data", "port", "8081", "requestid", "0", NULL };
    spdy_headers_frame(sp, &e, BL_TAP_UP, SYN_STREAM, 1, 0, err);
    spdy_headers_frame(sp, &e, BL_TAP_UP, SYN_STREAM, 3, 0, data);
    spdy_headers_frame(sp, &e, BL_TAP_DOWN, SYN_REPLY, 1, 0, (const char *const[]){ NULL });
    spdy_headers_frame(sp, &e, BL_TAP_DOWN, SYN_REPLY, 3, 0, (const char *const[]){ NULL });
    static char upload[3000];
    memset(upload, 'u', sizeof(upload));
    spdy_data(sp, BL_TAP_UP, 3, 0, upload, sizeof(upload)); /* skipped, not unmasked */
    /* the next connection's streams follow the skipped bytes in the same messages */
    const char *err2[] = { "streamtype", "error", "port", "8081", "requestid", "1", NULL };
    const char *data2[] = { "streamtype", "data", "port", "8081", "requestid", "1", NULL };
    spdy_headers_frame(sp, &e, BL_TAP_UP, SYN_STREAM, 5, 0, err2);
    spdy_headers_frame(sp, &e, BL_TAP_UP, SYN_STREAM, 7, 0, data2);
    spdy_data(sp, BL_TAP_UP, 7, 0, upload, 100);
    spdy_data(sp, BL_TAP_DOWN, 1, 1, "", 0); /* the first connection went well */
    spdy_str(sp, BL_TAP_DOWN, 5, "error forwarding port 8081 to pod x, uid : connection refused");
    spdy_data(sp, BL_TAP_DOWN, 5, 1, "", 0);
    for (size_t chunk = 5; chunk <= 4000; chunk = chunk * 3 + 1) {
        sess_t *s = sess_new();
        ws_wrap(sp, s, chunk);
        ws_close(s, BL_TAP_DOWN);
        result_t r, x;
        take(replay(s, BL_TAP_WS_SPDY, 100, 0, 0, SIZE_MAX), &r);
        take(replay(s, BL_TAP_WS_SPDY, 100, 0, 1, SIZE_MAX), &x);
        same_result(&r, &x);
        assert_int_equal(r.o.lost, 0);
        assert_int_equal(r.o.known, 1);
        assert_string_equal(r.o.message, "error forwarding port 8081 to pod x, uid : connection refused");
        assert_string_equal(r.json, "{\"exit_code\":-1,\"message\":\"error forwarding port 8081 to pod x, "
                                    "uid : connection refused\"}");
        if (chunk > 100)
            run(s, BL_TAP_WS_SPDY, 100, 0, &x);
        sess_free(s);
    }
    sess_free(sp);
    spdy_enc_free(&e);
}

/* ---- garbage ------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Random bytes, and real sessions with random bytes flipped: never a crash,
 * always a well-formed outcome and JSON. */
static void garbage_never_crashes(void **state)
{
    (void)state;
    static unsigned char buf[4096];
    for (int round = 0; round < 600; round++) {
        int proto = 1 + round % 3;
        bl_tap_t *t = bl_tap_new(proto, round & 8 ? 64 : 0);
        assert_non_null(t);
        if (round % 5 == 0)
            bl_tap_portforward(t);
        for (int k = 0; k < 8; k++) {
            size_t n = next_rand() % sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char)next_rand();
            bl_tap_feed(t, next_rand() & 1, (const char *)buf, n);
        }
        bl_tap_outcome_t o;
        bl_tap_outcome(t, &o);
        assert_true(memchr(o.reason, 0, sizeof(o.reason)) != NULL);
        assert_true(memchr(o.message, 0, sizeof(o.message)) != NULL);
        bl_buf_t b;
        bl_buf_init(&b, 2048);
        int rc = bl_tap_json(t, &b);
        if (rc == BL_OK) {
            json_error_t e;
            json_t *j = json_loadb(bl_buf_data(&b), bl_buf_size(&b), JSON_REJECT_DUPLICATES, &e);
            assert_non_null(j);
            assert_true(json_is_integer(json_object_get(j, "exit_code")));
            json_decref(j);
        } else {
            assert_int_equal(rc, BL_DECLINED);
        }
        bl_buf_free(&b);
        bl_tap_free(t);
    }
}

/* ---- real sessions: kubectl against the stand-in, recorded after the 101 -- */

typedef struct {
    const char *file;
    int known, exit_code, lost;
    const char *reason;   /* NULL: empty */
    const char *message;  /* a substring of the message, or NULL: empty */
    const char *stdout_starts;
    size_t stdin_len, stdout_len, stderr_len;
} fixture_t;

static const fixture_t fixtures[] = {
    /* kubectl 1.33: WebSocket v5 exec, WebSocket-tunnelled port-forward */
    { "ws-exec-ok.bin", 1, 0, 0, NULL, NULL, "hello\n", 0, 6, 0 },
    { "ws-exec-exit3.bin", 1, 3, 0, "NonZeroExitCode", "exited with 3", "out\n", 0, 4, 4 },
    { "ws-exec-notfound.bin", 1, -1, 0, "InternalError", "OCI runtime exec failed", "", 0, 0, 0 },
    { "ws-exec-stdin.bin", 1, 0, 0, NULL, NULL, "line one\nline two\n", 18, 18, 0 },
    { "ws-cp-from.bin", 1, 0, 0, NULL, NULL, "etc/hosts", 0, 10240, 44 },
    { "ws-portforward.bin", 1, -1, 0, NULL, "error forwarding port 8081", "", 0, 0, 0 },
    /* kubectl 1.27: SPDY/3.1 exec, cp and port-forward */
    { "spdy-exec-ok.bin", 1, 0, 0, NULL, NULL, "hello\n", 0, 6, 0 },
    { "spdy-exec-exit3.bin", 1, 3, 0, "NonZeroExitCode", "exited with 3", "out\n", 0, 4, 4 },
    { "spdy-exec-notfound.bin", 1, -1, 0, "InternalError", "OCI runtime exec failed", "", 0, 0, 0 },
    { "spdy-exec-stdin.bin", 1, 0, 0, NULL, NULL, "line one\nline two\n", 18, 18, 0 },
    { "spdy-cp-to.bin", 1, 0, 0, NULL, NULL, "", 2048, 0, 0 },
    { "spdy-portforward.bin", 1, -1, 0, NULL, "error forwarding port 8081", "", 0, 0, 0 },
    /* a raw client: v4, v5 with close signal, base64, channel.k8s.io (v1) */
    { "ws-v4-exit3.bin", 1, 3, 0, "NonZeroExitCode", "exited with 3", "hi\n", 3, 3, 0 },
    { "ws-v5-stdin.bin", 1, 0, 0, NULL, NULL, "hello stdin", 11, 11, 0 },
    { "ws-b64-v4-exit2.bin", 1, 2, 0, "NonZeroExitCode", "exited with 2", "out\n", 8, 4, 5 },
    { "ws-v1-exit1.bin", 1, -1, 0, NULL, "exited with 1", "", 1, 0, 0 },
    { "ws-v1-ok.bin", 1, 0, 0, NULL, NULL, "", 1, 0, 0 },
};

static char *data_path(const char *file, char *out, size_t cap)
{
    static const char *const dirs[] = { "tests/unit/data/tap", "../tests/unit/data/tap",
                                        "../../tests/unit/data/tap", "../../../tests/unit/data/tap" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(out, cap, "%s/%s", dirs[i], file);
        if (access(out, R_OK) == 0)
            return out;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        snprintf(out, cap, "%s/../../../tests/unit/data/tap/%s", exe, file); /* build/asan/tests */
        if (access(out, R_OK) == 0)
            return out;
    }
    return NULL;
}

/* Loads a recording: records of kind (Q request line, H the 101 head,
 * U client->server, D server->client), 4-byte big-endian length, bytes. */
static sess_t *load_fixture(const char *file, int *proto)
{
    char path[PATH_MAX + 64];
    assert_non_null(data_path(file, path, sizeof(path)));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char d[1 << 20];
    size_t n = fread(d, 1, sizeof(d), f);
    fclose(f);
    sess_t *s = sess_new();
    *proto = -1;
    for (size_t i = 0; i + 5 <= n;) {
        char kind = (char)d[i];
        size_t len = (size_t)d[i + 1] << 24 | (size_t)d[i + 2] << 16 | (size_t)d[i + 3] << 8 | d[i + 4];
        assert_true(len <= n - i - 5);
        const char *p = (const char *)d + i + 5;
        i += 5 + len;
        if (kind == 'H') {
            bl_http_header_t h[32];
            bl_http_response_t r = { .headers = h, .num_headers = 32 };
            bl_http_err_t err;
            assert_int_equal(bl_http1_parse_response(p, len, &r, &err), (int)len);
            assert_int_equal(r.status, 101);
            const bl_http_header_t *u = bl_http_find(h, r.num_headers, "Upgrade", NULL);
            const bl_http_header_t *w = bl_http_find(h, r.num_headers, "Sec-WebSocket-Protocol", NULL);
            *proto = bl_tap_proto(u ? u->value : BL_STR_NULL, w ? w->value : BL_STR_NULL);
        } else if (kind == 'U' || kind == 'D') {
            sess_add(s, kind == 'U' ? BL_TAP_UP : BL_TAP_DOWN, p, len);
        }
    }
    assert_true(*proto > 0);
    return s;
}

static void check_fixture(const fixture_t *fx, const result_t *r)
{
    assert_int_equal(r->o.known, fx->known);
    assert_int_equal(r->o.exit_code, fx->exit_code);
    assert_int_equal(r->o.lost, fx->lost);
    assert_string_equal(r->o.reason, fx->reason ? fx->reason : "");
    if (fx->message)
        assert_non_null(strstr(r->o.message, fx->message));
    else
        assert_string_equal(r->o.message, "");
    assert_int_equal(r->caplen[BL_TAP_STDIN], fx->stdin_len);
    assert_int_equal(r->caplen[BL_TAP_STDOUT], fx->stdout_len);
    assert_int_equal(r->caplen[BL_TAP_STDERR], fx->stderr_len);
    assert_memory_equal(r->cap[BL_TAP_STDOUT], fx->stdout_starts, strlen(fx->stdout_starts));
    json_error_t e;
    json_t *j = json_loads(r->json, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), fx->exit_code);
    json_decref(j);
}

static void real_sessions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        int proto;
        sess_t *s = load_fixture(fixtures[i].file, &proto);
        int want = fixtures[i].file[0] == 's' ? BL_TAP_SPDY :
                   strstr(fixtures[i].file, "portforward") ? BL_TAP_WS_SPDY : BL_TAP_WEBSOCKET;
        assert_int_equal(proto, want);
        result_t r, x;
        take(replay(s, proto, 1 << 16, 0, 0, SIZE_MAX), &r);
        check_fixture(&fixtures[i], &r);
        take(replay(s, proto, 1 << 16, 0, 1, SIZE_MAX), &x); /* byte by byte */
        same_result(&r, &x);
        take(replay(s, proto, 1 << 16, 0, 1000, SIZE_MAX), &x);
        same_result(&r, &x);
        if (s->len <= 4096) /* and split at every offset */
            run(s, proto, 1 << 16, 0, &x);
        sess_free(s);
    }
}

/* The recordings with a byte flipped anywhere: whatever the tap makes of
 * it, no crash and no sanitizer report. */
static void real_sessions_corrupted(void **state)
{
    (void)state;
    static const char *const files[] = { "spdy-exec-exit3.bin", "ws-portforward.bin", "ws-exec-exit3.bin" };
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        int proto;
        sess_t *s = load_fixture(files[f], &proto);
        for (size_t i = 0; i < s->len; i++) {
            s->data[i] ^= 0x5a;
            result_t r;
            take(replay(s, proto, 64, 0, 0, SIZE_MAX), &r);
            s->data[i] ^= 0x5a;
        }
        sess_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proto_from_the_101),
        cmocka_unit_test(ws_v5_exit0),
        cmocka_unit_test(capture_events_keep_order_and_time),
        cmocka_unit_test(ws_v4_exit3_fragmented),
        cmocka_unit_test(ws_internal_error),
        cmocka_unit_test(ws_status_over_two_messages),
        cmocka_unit_test(ws_v1_plain_text_and_silence),
        cmocka_unit_test(ws_base64_variant),
        cmocka_unit_test(ws_mask_bit_is_honoured),
        cmocka_unit_test(ws_malformed_is_lost),
        cmocka_unit_test(ws_status_bound),
        cmocka_unit_test(ws_portforward_channels),
        cmocka_unit_test(status_edge_cases),
        cmocka_unit_test(text_case_nul),
        cmocka_unit_test(long_message_is_cut_on_a_character),
        cmocka_unit_test(json_bounds),
        cmocka_unit_test(spdy_exec_exit3),
        cmocka_unit_test(spdy_exec_success_and_text),
        cmocka_unit_test(spdy_reset_says_nothing),
        cmocka_unit_test(spdy_fin_on_headers),
        cmocka_unit_test(spdy_portforward),
        cmocka_unit_test(spdy_malformed_is_lost),
        cmocka_unit_test(spdy_closed_streams_are_forgotten),
        cmocka_unit_test(ws_spdy_tunnel),
        cmocka_unit_test(garbage_never_crashes),
        cmocka_unit_test(real_sessions),
        cmocka_unit_test(real_sessions_corrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
