/*
 * fuzz_tap.c - libFuzzer target for the exec tap (src/kube/tap*.c).
 *
 * Input: 1 control byte, then records.
 *   ctl  bits 0-1: protocol (0, 1: WebSocket, 2: SPDY, 3: SPDY in WebSocket);
 *        bit 2: capture (64 bytes in all); bit 3: port-forward
 *   record: h = 1 byte: bit 0 direction (0 client->server, 1 back),
 *        bits 1-7 length; 127 means 127 + 16 * the next byte. Then the bytes
 *        (fewer if the input ends).
 * The records are fed in order to one tap, and again one byte per call to
 * another, the clock set to the record's number (bl_tap_clock) before each
 * record, and set back every third record (which must be ignored); besides crashes and sanitizer reports the target aborts when:
 *   - the two taps disagree (decoding must not depend on how the relay
 *     happened to chunk the stream);
 *   - the outcome breaks its contract: reason and message NUL-terminated,
 *     valid UTF-8 without NUL; exit_code -1 unless known, 0..255 or -1;
 *     the capture within its bound: payload plus 13 bytes per event, events
 *     non-empty, of a known channel, in non-decreasing time, and its totals
 *     (bl_tap_capture_info) the sum of its events; never truncated when not
 *     capturing;
 *   - bl_tap_json's output is not canonical JSON (RFC 8785) with an integer
 *     exit_code, or appears although nothing is known.
 * Seeds in fuzz/corpus/tap are the real sessions of tests/unit/data/tap.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit/jcs.h"
#include "kube/tap.h"

#define CAPTURE 64

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "fuzz_tap: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* Feeds one piece from an exact-size heap copy, so that a read past it is
 * an ASan report. */
static void feed(bl_tap_t *t, int dir, const uint8_t *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    memcpy(b, p, n);
    bl_tap_feed(t, dir, b, n);
    free(b);
}

static void run(bl_tap_t *t, const uint8_t *d, size_t n, int bytewise)
{
    size_t i = 0;
    uint64_t rec = 0;
    while (i < n) {
        rec++;
        bl_tap_clock(t, rec % 3 == 0 ? rec / 2 : rec);
        int dir = d[i] & 1;
        size_t len = d[i] >> 1;
        i++;
        if (len == 127 && i < n)
            len += (size_t)d[i++] * 16;
        if (len > n - i)
            len = n - i;
        if (bytewise) {
            for (size_t k = 0; k < len; k++)
                feed(t, dir, d + i + k, 1);
        } else {
            feed(t, dir, d + i, len);
        }
        i += len;
    }
}

static int valid_utf8(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        size_t len = *u < 0x80 ? 1 : (*u & 0xe0) == 0xc0 ? 2 : (*u & 0xf0) == 0xe0 ? 3 :
                     (*u & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0)
            return 0;
        uint32_t cp = len == 1 ? *u : *u & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((u[k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (u[k] & 0x3f);
        }
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        u += len;
    }
    return 1;
}

static void check_outcome(const bl_tap_outcome_t *o)
{
    CHECK(memchr(o->reason, 0, sizeof(o->reason)) != NULL);
    CHECK(memchr(o->message, 0, sizeof(o->message)) != NULL);
    CHECK(valid_utf8(o->reason) && valid_utf8(o->message));
    CHECK(o->known == 0 || o->known == 1);
    CHECK(o->lost == 0 || o->lost == 1);
    CHECK(o->exit_code >= -1 && o->exit_code <= 255);
    if (!o->known)
        CHECK(o->exit_code == -1 && o->reason[0] == 0 && o->message[0] == 0);
}

static void check_json(const bl_tap_t *t, const bl_tap_outcome_t *o, bl_buf_t *b)
{
    int rc = bl_tap_json(t, b);
    if (!o->known && !o->lost) {
        CHECK(rc == BL_DECLINED && bl_buf_size(b) == 0);
        return;
    }
    CHECK(rc == BL_OK);
    CHECK(bl_jcs_is_canonical(bl_buf_data(b), bl_buf_size(b)));
    json_error_t e;
    json_t *j = json_loadb(bl_buf_data(b), bl_buf_size(b), JSON_REJECT_DUPLICATES, &e);
    CHECK(json_is_object(j));
    CHECK(json_integer_value(json_object_get(j, "exit_code")) == o->exit_code);
    CHECK(json_object_size(j) <= 4);
    CHECK((json_object_get(j, "lost") != NULL) == o->lost);
    json_decref(j);
}

/* The capture's own contract (see the header comment). */
static void check_capture(const bl_tap_t *t, size_t cap)
{
    size_t pos = 0, events = 0, used = 0;
    uint64_t bytes = 0, last = 0;
    bl_tap_event_t ev;
    while (bl_tap_event(t, &pos, &ev) == BL_OK) {
        CHECK(ev.n > 0 && ev.ch >= 0 && ev.ch < BL_TAP_NCHAN && ev.t_us >= last);
        last = ev.t_us;
        events++;
        bytes += ev.n;
        used += ev.n + BL_TAP_EVENT_OVERHEAD;
    }
    CHECK(used <= cap);
    size_t ie;
    uint64_t ib;
    int trunc;
    bl_tap_capture_info(t, &ie, &ib, &trunc);
    CHECK(ie == events && ib == bytes);
    CHECK(cap > 0 || (events == 0 && !trunc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int proto = data[0] & 3 ? data[0] & 3 : BL_TAP_WEBSOCKET;
    size_t cap = data[0] & 4 ? CAPTURE : 0;
    bl_tap_t *a = bl_tap_new(proto, cap), *b = bl_tap_new(proto, cap);
    CHECK(a != NULL && b != NULL);
    if (data[0] & 8)
        CHECK(bl_tap_portforward(a) == BL_OK && bl_tap_portforward(b) == BL_OK);
    run(a, data + 1, size - 1, 0);
    run(b, data + 1, size - 1, 1);

    bl_tap_outcome_t oa, ob;
    bl_tap_outcome(a, &oa);
    bl_tap_outcome(b, &ob);
    check_outcome(&oa);
    CHECK(memcmp(&oa, &ob, sizeof(oa)) == 0);
    check_capture(a, cap);
    size_t pa = 0, pb = 0;
    bl_tap_event_t ea, eb;
    int ra, rb;
    while ((ra = bl_tap_event(a, &pa, &ea)) == BL_OK) {
        rb = bl_tap_event(b, &pb, &eb);
        CHECK(rb == BL_OK && ea.t_us == eb.t_us && ea.ch == eb.ch && ea.n == eb.n);
        CHECK(memcmp(ea.p, eb.p, ea.n) == 0);
    }
    CHECK(bl_tap_event(b, &pb, &eb) == BL_DECLINED);
    int ta, tb;
    bl_tap_capture_info(a, NULL, NULL, &ta);
    bl_tap_capture_info(b, NULL, NULL, &tb);
    CHECK(ta == tb);
    bl_buf_t ja, jb;
    bl_buf_init(&ja, 4096);
    bl_buf_init(&jb, 4096);
    check_json(a, &oa, &ja);
    check_json(b, &ob, &jb);
    CHECK(bl_buf_size(&ja) == bl_buf_size(&jb));
    CHECK(bl_buf_size(&ja) == 0 || memcmp(bl_buf_data(&ja), bl_buf_data(&jb), bl_buf_size(&ja)) == 0);
    bl_buf_free(&ja);
    bl_buf_free(&jb);
    bl_tap_free(a);
    bl_tap_free(b);
    return 0;
}
