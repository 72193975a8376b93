/*
 * tap.c - the exec tap's public face: protocol choice, feeding, what the
 * error channel said (metav1.Status or plain text), bounded captures and
 * the outcome's canonical JSON. Framing lives in tap_ws.c and tap_spdy.c.
 *
 * The error channel is read the way client-go reads it (remotecommand's
 * errorDecoderV4 and the v1 decoder): an empty channel closed cleanly is
 * success; a JSON Status says Success, NonZeroExitCode with an ExitCode
 * cause, or another failure; anything else is a plain-text error message
 * (protocols v1..v3 send only text, and only on failure).
 */
#include <jansson.h>
#include <stdlib.h>
#include "kube/tap_int.h"

static const char *const bl_tap_ws_protocols[] = {
    "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
    "channel.k8s.io", "v4.base64.channel.k8s.io", "base64.channel.k8s.io",
    "portforward.k8s.io", "v4.portforward.k8s.io",
};

int bl_tap_proto(bl_str_t upgrade, bl_str_t ws_protocol)
{
    upgrade = bl_str_trim(upgrade);
    ws_protocol = bl_str_trim(ws_protocol);
    if (bl_str_eq_nocase(upgrade, "SPDY/3.1"))
        return BL_TAP_SPDY;
    if (!bl_str_eq_nocase(upgrade, "websocket"))
        return 0;
    if (bl_str_eq(ws_protocol, "SPDY/3.1+portforward.k8s.io"))
        return BL_TAP_WS_SPDY;
    /* No subprotocol: wsstream serves "" as the binary channel protocol. */
    if (ws_protocol.len == 0)
        return BL_TAP_WEBSOCKET;
    for (size_t i = 0; i < BL_ARRAY_LEN(bl_tap_ws_protocols); i++)
        if (bl_str_eq(ws_protocol, bl_tap_ws_protocols[i]))
            return BL_TAP_WEBSOCKET;
    return 0;
}

bl_tap_t *bl_tap_new(int proto, size_t capture_max)
{
    if (proto != BL_TAP_WEBSOCKET && proto != BL_TAP_SPDY && proto != BL_TAP_WS_SPDY)
        return NULL;
    bl_tap_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->proto = proto;
    t->capture_max = capture_max;
    t->exit_code = -1;
    t->err_owner = -1;
    bl_buf_init(&t->cap, capture_max);
    t->cap_last = SIZE_MAX;
    bl_buf_init(&t->err, BL_TAP_STATUS_MAX);
    if (proto != BL_TAP_WEBSOCKET && bl_tap_spdy_init(t) != BL_OK) {
        bl_tap_free(t);
        return NULL;
    }
    return t;
}

int bl_tap_portforward(bl_tap_t *t)
{
    if (t->proto == BL_TAP_WEBSOCKET && t->pf_prefix == NULL) {
        t->pf_prefix = calloc(256, 1);
        if (t->pf_prefix == NULL)
            return BL_ERROR;
    }
    t->portforward = 1;
    return BL_OK;
}

/* Frees what only decoding needs (zlib, streams, the error bytes). */
static void bl_tap_release(bl_tap_t *t)
{
    bl_tap_spdy_free(t);
    bl_buf_free(&t->err);
    free(t->pf_prefix);
    t->pf_prefix = NULL;
}

void bl_tap_feed(bl_tap_t *t, int dir, const char *p, size_t n)
{
    if (t->lost || n == 0 || (dir != BL_TAP_UP && dir != BL_TAP_DOWN))
        return;
    if (t->proto == BL_TAP_SPDY)
        bl_tap_spdy_feed(t, dir, (const unsigned char *)p, n);
    else
        bl_tap_ws_feed(t, dir, (const unsigned char *)p, n);
    if (t->lost)
        bl_tap_release(t); /* only here: the decoders' state is not in use now */
}

void bl_tap_lose(bl_tap_t *t)
{
    t->lost = 1;
}

void bl_tap_free(bl_tap_t *t)
{
    if (t == NULL)
        return;
    bl_tap_release(t);
    bl_buf_free(&t->cap);
    free(t);
}

/* ---- captures and the error channel ------------------------------------ */

void bl_tap_clock(bl_tap_t *t, uint64_t us)
{
    if (us > t->now_us)
        t->now_us = us;
}

int bl_tap_capturing(const bl_tap_t *t)
{
    return t->capture_max > 0;
}

static void bl_tap_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t bl_tap_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Returns the last event's header if bytes of channel `ch` fed now extend
 * it, else NULL. */
static unsigned char *bl_tap_cap_tail(bl_tap_t *t, int ch)
{
    if (t->cap_last == SIZE_MAX)
        return NULL;
    unsigned char *h = (unsigned char *)bl_buf_data(&t->cap) + t->cap_last;
    return h[8] == ch && bl_tap_get(h, 8) == t->now_us ? h : NULL;
}

/* Bytes of channel `ch` the capture can take now (0: none). */
static size_t bl_tap_cap_room(bl_tap_t *t, int ch)
{
    size_t room = t->capture_max - bl_buf_size(&t->cap);
    if (t->cap_trunc)
        return 0;
    if (bl_tap_cap_tail(t, ch))
        return room;
    return room > BL_TAP_EVENT_OVERHEAD ? room - BL_TAP_EVENT_OVERHEAD : 0;
}

/* Appends p[0..n) to the capture: to the last event when it is the same
 * channel at the same time, else as a new event. What does not fit is
 * dropped and ends the capture (truncated). */
static void bl_tap_capture_add(bl_tap_t *t, int ch, const unsigned char *p, size_t n)
{
    size_t room = bl_tap_cap_room(t, ch);
    if (n > room) {
        t->cap_trunc = 1;
        n = room;
    }
    if (n == 0)
        return;
    size_t mark = bl_buf_size(&t->cap);
    unsigned char *h = bl_tap_cap_tail(t, ch);
    if (bl_buf_reserve(&t->cap, n + (h ? 0 : BL_TAP_EVENT_OVERHEAD)) != BL_OK) {
        t->cap_trunc = 1; /* out of memory: keep relaying without it */
        return;
    }
    if (h == NULL) {
        unsigned char hdr[BL_TAP_EVENT_OVERHEAD];
        for (int i = 0; i < 8; i++)
            hdr[i] = (unsigned char)(t->now_us >> (8 * i));
        hdr[8] = (unsigned char)ch;
        bl_tap_put32(hdr + 9, 0);
        bl_buf_append(&t->cap, hdr, sizeof(hdr)); /* reserved above */
        t->cap_last = mark;
        t->cap_events++;
    }
    bl_buf_append(&t->cap, p, n);
    h = (unsigned char *)bl_buf_data(&t->cap) + t->cap_last; /* appending may move the buffer */
    bl_tap_put32(h + 9, (uint32_t)(bl_tap_get(h + 9, 4) + n));
    t->cap_bytes += n;
}

int bl_tap_sink_full(bl_tap_t *t, int sink)
{
    if (sink < BL_TAP_SINK_STDIN || sink > BL_TAP_SINK_STDERR)
        return 0;
    if (bl_tap_cap_room(t, sink - BL_TAP_SINK_STDIN) > 0)
        return 0;
    t->cap_trunc = 1;
    return 1;
}

void bl_tap_sink(bl_tap_t *t, int sink, int64_t owner, const unsigned char *p, size_t n)
{
    if (sink >= BL_TAP_SINK_STDIN && sink <= BL_TAP_SINK_STDERR) {
        if (t->capture_max)
            bl_tap_capture_add(t, sink - BL_TAP_SINK_STDIN, p, n);
        return;
    }
    if (sink != BL_TAP_SINK_ERROR || t->err_done || n == 0)
        return;
    if (t->err_owner == -1)
        t->err_owner = owner;
    if (t->err_owner != owner)
        return; /* port-forward: another connection's error; the first one counts */
    if (bl_buf_append(&t->err, p, n) != BL_OK)
        bl_tap_lose(t); /* a Status is never this big: not a stream we understand */
}

/* Copies s[0..n) into dst[0..cap) as valid UTF-8 without NUL (an invalid
 * byte or a NUL becomes U+FFFD), cut on a character boundary. */
static void bl_tap_copy_text(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t len = u[0] ? bl_utf8_len(u, n - i) : 0;
        const char *out = len ? (const char *)u : "\xef\xbf\xbd";
        size_t outlen = len ? len : 3;
        if (o + outlen >= cap)
            break;
        memcpy(dst + o, out, outlen);
        o += outlen;
        i += len ? len : 1;
    }
    dst[o] = '\0';
}

static void bl_tap_set(bl_tap_t *t, int code, const char *reason, size_t rlen, const char *msg,
                       size_t mlen)
{
    t->known = 1;
    t->exit_code = code;
    bl_tap_copy_text(t->reason, sizeof(t->reason), reason, rlen);
    bl_tap_copy_text(t->message, sizeof(t->message), msg, mlen);
}

static bl_str_t bl_tap_jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return BL_STR_NULL;
    return (bl_str_t){ json_string_value(v), json_string_length(v) };
}

/* Returns the exit code of a NonZeroExitCode Status (its ExitCode cause,
 * 0..255 in decimal as client-go's ParseUint(s, 10, 8)), or -1. */
static int bl_tap_exit_cause(const json_t *st)
{
    const json_t *causes = json_object_get(json_object_get(st, "details"), "causes");
    size_t i;
    const json_t *c;
    json_array_foreach(causes, i, c) {
        if (!bl_str_eq(bl_tap_jstr(c, "reason"), "ExitCode"))
            continue;
        bl_str_t m = bl_tap_jstr(c, "message");
        int v = 0;
        if (m.len == 0)
            return -1;
        for (size_t k = 0; k < m.len; k++) {
            if (m.p[k] < '0' || m.p[k] > '9')
                return -1;
            v = v * 10 + (m.p[k] - '0');
            if (v > 255)
                return -1;
        }
        return v;
    }
    return -1;
}

/* Decodes a metav1.Status. Returns BL_OK, or BL_DECLINED if p[0..n) is not
 * a JSON object (yet: it may be cut short). */
static int bl_tap_status(bl_tap_t *t, const char *p, size_t n)
{
    json_error_t e;
    json_t *st = json_loadb(p, n, 0, &e);
    if (!json_is_object(st)) {
        json_decref(st);
        return BL_DECLINED;
    }
    bl_str_t status = bl_tap_jstr(st, "status");
    bl_str_t reason = bl_tap_jstr(st, "reason");
    bl_str_t msg = bl_tap_jstr(st, "message");
    int code = -1;
    if (bl_str_eq(status, "Success"))
        code = 0;
    else if (bl_str_eq(status, "Failure") && bl_str_eq(reason, "NonZeroExitCode"))
        code = bl_tap_exit_cause(st);
    bl_tap_set(t, code, reason.p, reason.len, msg.p, msg.len);
    json_decref(st);
    return BL_OK;
}

static int bl_tap_looks_json(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return p[i] == '{';
    }
    return 0;
}

void bl_tap_err_end(bl_tap_t *t, int64_t owner, int how)
{
    if (t->err_done || (t->err_owner != -1 && t->err_owner != owner))
        return;
    const char *p = bl_buf_data(&t->err);
    size_t n = bl_buf_size(&t->err);
    if (n == 0) {
        if (how == BL_TAP_ERR_MORE)
            return;
        t->err_owner = -1;
        if (how == BL_TAP_ERR_EOS && !t->portforward) {
            bl_tap_set(t, 0, "", 0, "", 0); /* client-go: an empty error stream is success */
            t->err_done = 1;
        }
        return;
    }
    if (!t->portforward && bl_tap_looks_json(p, n)) {
        if (bl_tap_status(t, p, n) == BL_OK) {
            t->err_done = 1;
            return;
        }
        if (how == BL_TAP_ERR_MORE)
            return; /* the rest of the JSON may follow */
    }
    bl_tap_set(t, -1, "", 0, p, n);
    if (how != BL_TAP_ERR_MORE)
        t->err_done = 1;
}

/* ---- results ----------------------------------------------------------- */

void bl_tap_outcome(const bl_tap_t *t, bl_tap_outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    o->known = t->known;
    o->exit_code = t->known ? t->exit_code : -1;
    o->lost = t->lost;
    memcpy(o->reason, t->reason, sizeof(o->reason));
    memcpy(o->message, t->message, sizeof(o->message));
}

int bl_tap_event(const bl_tap_t *t, size_t *pos, bl_tap_event_t *ev)
{
    size_t size = bl_buf_size(&t->cap);
    if (*pos + BL_TAP_EVENT_OVERHEAD > size)
        return BL_DECLINED;
    const unsigned char *h = (const unsigned char *)bl_buf_data(&t->cap) + *pos;
    ev->t_us = bl_tap_get(h, 8);
    ev->ch = h[8];
    ev->n = (size_t)bl_tap_get(h + 9, 4);
    ev->p = (const char *)h + BL_TAP_EVENT_OVERHEAD;
    *pos += BL_TAP_EVENT_OVERHEAD + ev->n;
    return BL_OK;
}

void bl_tap_capture_info(const bl_tap_t *t, size_t *events, uint64_t *bytes, int *truncated)
{
    if (events)
        *events = t->cap_events;
    if (bytes)
        *bytes = t->cap_bytes;
    if (truncated)
        *truncated = t->capture_max > 0 && (t->cap_trunc || t->lost);
}

int bl_tap_json(const bl_tap_t *t, bl_buf_t *out)
{
    if (!t->known && !t->lost)
        return BL_DECLINED;
    int code = t->known ? t->exit_code : -1;
    size_t mark = bl_buf_size(out); /* appending may compact: remember the size */
    int rc = bl_buf_puts(out, "{\"exit_code\":");
    if (rc == BL_OK && code < 0)
        rc = bl_buf_puts(out, "-1");
    else if (rc == BL_OK)
        rc = bl_buf_putu64(out, (uint64_t)code);
    if (rc == BL_OK && t->lost)
        rc = bl_buf_puts(out, ",\"lost\":true");
    /* A known exit code says it all; the message only repeats it. */
    if (rc == BL_OK && code < 0 && t->message[0]) {
        rc = bl_buf_puts(out, ",\"message\":");
        if (rc == BL_OK)
            rc = bl_buf_json_str(out, t->message, strlen(t->message));
    }
    if (rc == BL_OK && t->reason[0]) {
        rc = bl_buf_puts(out, ",\"reason\":");
        if (rc == BL_OK)
            rc = bl_buf_json_str(out, t->reason, strlen(t->reason));
    }
    if (rc == BL_OK)
        rc = bl_buf_puts(out, "}");
    if (rc != BL_OK) {
        out->len = out->off + mark; /* nothing half-written */
        return BL_ERROR;
    }
    return BL_OK;
}
