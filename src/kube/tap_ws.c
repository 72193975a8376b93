/*
 * tap_ws.c - WebSocket framing (RFC 6455 section 5) for the tap, and the
 * channel.k8s.io subprotocols on top (k8s.io/apimachinery wsstream).
 *
 * Client frames are masked, server frames are not; the tap honours each
 * frame's mask bit and checks nothing else about who masks. Control
 * frames (close, ping, pong) may come between the fragments of a message.
 * A data message's first payload byte names its channel (binary), or is
 * the channel as an ASCII digit followed by base64 (text: the
 * base64.channel.k8s.io variants). Payload of a channel nobody needs is
 * skipped without being unmasked or read.
 *
 * For BL_TAP_WS_SPDY the binary messages' payloads, concatenated, are the
 * direction's SPDY byte stream; masked bytes are unmasked only where the
 * SPDY parser reads them (headers, header blocks, error data), not where
 * it skips a DATA frame.
 */
#include "kube/tap_int.h"

enum { BL_WS_CONT = 0, BL_WS_TEXT = 1, BL_WS_BINARY = 2, BL_WS_CLOSE = 8, BL_WS_PONG = 10 };

#define BL_WS_CHUNK 512 /* bytes unmasked / decoded per step, on the stack */

/* Unmasks src[0..n) into dst; the key index of src[0] is `kpos`. */
static void bl_ws_unmask(unsigned char *dst, const unsigned char *src, size_t n,
                         const unsigned char key[4], unsigned kpos)
{
    unsigned char k8[8];
    for (unsigned i = 0; i < 8; i++)
        k8[i] = key[(kpos + i) & 3];
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ k8[i & 7];
}

static int bl_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 in[0..n) into out (room for n * 3 / 4 + 3),
 * carrying a partial quantum across calls. Returns the bytes written. */
static size_t bl_ws_b64(bl_tap_ws_t *w, const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n && !w->b64bad; i++) {
        int v = bl_b64_val(in[i]);
        if (v < 0) {
            if (in[i] == '=')
                w->b64pad = 1;
            else if (in[i] != '\r' && in[i] != '\n') /* Go's decoder skips these */
                w->b64bad = 1;
            continue;
        }
        if (w->b64pad) {
            w->b64bad = 1; /* data after the padding */
            break;
        }
        w->b64acc = (w->b64acc << 6) | (uint32_t)v;
        if (++w->b64n == 4) {
            out[o++] = (unsigned char)(w->b64acc >> 16);
            out[o++] = (unsigned char)(w->b64acc >> 8);
            out[o++] = (unsigned char)w->b64acc;
            w->b64n = 0;
            w->b64acc = 0;
        }
    }
    return o;
}

/* The sink of a message on channel `ch` sent in direction `dir`. */
static int bl_ws_sink(const bl_tap_t *t, int dir, unsigned ch)
{
    if (t->portforward) /* kubelet's ?ports= layout: odd channels carry errors */
        return (ch & 1) && dir == BL_TAP_DOWN ? BL_TAP_SINK_ERROR : BL_TAP_SINK_NONE;
    if (ch == 3)
        return dir == BL_TAP_DOWN ? BL_TAP_SINK_ERROR : BL_TAP_SINK_NONE;
    if (ch > 2 || !t->capture_max) /* resize (4), v5 close signal (255), unknown */
        return BL_TAP_SINK_NONE;
    if ((ch == 0) != (dir == BL_TAP_UP))
        return BL_TAP_SINK_NONE;
    return BL_TAP_SINK_STDIN + (int)ch;
}

/* Decoded bytes of the current message: the port prefix of a port-forward
 * channel is dropped, the rest goes to the sink. */
static void bl_ws_deliver(bl_tap_t *t, bl_tap_ws_t *w, const unsigned char *p, size_t n)
{
    if (t->pf_prefix) {
        unsigned char *seen = &t->pf_prefix[w->ch];
        size_t k = BL_MIN(n, (size_t)(2 - *seen));
        *seen = (unsigned char)(*seen + k);
        p += k;
        n -= k;
    }
    if (n)
        bl_tap_sink(t, w->sink, w->ch, p, n);
}

/* Masked or base64 bytes of a message going to a sink: unmask / decode
 * them a chunk at a time. */
static void bl_ws_decode(bl_tap_t *t, bl_tap_ws_t *w, const unsigned char *p, size_t n)
{
    unsigned char plain[BL_WS_CHUNK], out[BL_WS_CHUNK];
    while (n > 0 && !t->lost) {
        size_t k = BL_MIN(n, sizeof(plain));
        const unsigned char *q = p;
        if (w->masked) {
            bl_ws_unmask(plain, p, k, w->key, w->kpos);
            w->kpos = (uint8_t)((w->kpos + k) & 3);
            q = plain;
        }
        if (w->b64) {
            size_t m = bl_ws_b64(w, q, k, out);
            if (m)
                bl_ws_deliver(t, w, out, m);
        } else {
            bl_ws_deliver(t, w, q, k);
        }
        p += k;
        n -= k;
    }
}

/* WS_SPDY: payload bytes of a binary message are SPDY bytes. */
static void bl_ws_spdy(bl_tap_t *t, int dir, bl_tap_ws_t *w, const unsigned char *p, size_t n)
{
    unsigned char plain[BL_WS_CHUNK];
    if (!w->masked) {
        bl_tap_spdy_feed(t, dir, p, n);
        return;
    }
    while (n > 0 && !t->lost) {
        size_t k = bl_tap_spdy_skippable(t, dir);
        if (k) { /* a DATA frame nobody reads: do not unmask it either */
            k = BL_MIN(k, n);
            bl_tap_spdy_skip(t, dir, k);
        } else {
            k = BL_MIN(BL_MIN(n, sizeof(plain)), bl_tap_spdy_want(t, dir));
            bl_ws_unmask(plain, p, k, w->key, w->kpos);
            bl_tap_spdy_feed(t, dir, plain, k);
        }
        w->kpos = (uint8_t)((w->kpos + k) & 3);
        p += k;
        n -= k;
    }
}

static void bl_ws_payload(bl_tap_t *t, int dir, bl_tap_ws_t *w, const unsigned char *p, size_t n)
{
    if (w->op < BL_WS_CLOSE && !w->started) { /* the message's channel byte */
        unsigned char c = w->masked ? p[0] ^ w->key[w->kpos] : p[0];
        w->kpos = (uint8_t)((w->kpos + 1) & 3);
        w->started = 1;
        w->ch = w->b64 ? (uint8_t)(c - '0') : c;
        w->sink = (uint8_t)(w->b64 && (c < '0' || c > '9') ? BL_TAP_SINK_NONE :
                            bl_ws_sink(t, dir, w->ch));
        p++;
        n--;
    }
    if (n == 0)
        return;
    /* Base64 text may end in bytes that decode to nothing (padding, line
     * breaks): only decoding tells whether a full capture lost anything. */
    if (w->op >= BL_WS_CLOSE || w->sink == BL_TAP_SINK_NONE || (!w->b64 && bl_tap_sink_full(t, w->sink))) {
        w->kpos = (uint8_t)((w->kpos + n) & 3);
        return;
    }
    if (w->sink == BL_TAP_SINK_SPDY)
        bl_ws_spdy(t, dir, w, p, n);
    else if (w->masked || w->b64)
        bl_ws_decode(t, w, p, n);
    else
        bl_ws_deliver(t, w, p, n);
}

/* A close frame: from the server before the client's, it ends the error
 * channel cleanly (v1..v3 send nothing there on success). */
static void bl_ws_close(bl_tap_t *t, int dir)
{
    if (dir == BL_TAP_UP)
        t->client_closed = 1;
    else if (!t->client_closed && t->proto == BL_TAP_WEBSOCKET)
        bl_tap_err_end(t, t->err_owner, BL_TAP_ERR_EOS);
}

/* A data message ended. */
static void bl_ws_message_end(bl_tap_t *t, bl_tap_ws_t *w)
{
    if (w->b64 && w->sink != BL_TAP_SINK_NONE && !w->b64bad && w->b64n >= 2) {
        unsigned char out[2];
        size_t m = w->b64n == 2 ? 1 : 2;
        uint32_t v = w->b64acc << (6 * (4 - w->b64n));
        out[0] = (unsigned char)(v >> 16);
        out[1] = (unsigned char)(v >> 8);
        bl_ws_deliver(t, w, out, m);
    }
    if (w->sink == BL_TAP_SINK_ERROR && !t->lost)
        bl_tap_err_end(t, w->ch, t->portforward ? BL_TAP_ERR_EOS : BL_TAP_ERR_MORE);
    w->msg = 0;
}

static void bl_ws_frame_end(bl_tap_t *t, bl_tap_ws_t *w)
{
    if (w->op < BL_WS_CLOSE && w->fin)
        bl_ws_message_end(t, w);
    w->hlen = w->hneed = 0;
}

/* The frame header is in w->hdr. Returns BL_OK, or BL_ERROR if the stream
 * is not one the tap can follow. */
static int bl_ws_frame(bl_tap_t *t, int dir, bl_tap_ws_t *w)
{
    unsigned char b0 = w->hdr[0], b1 = w->hdr[1];
    uint64_t len = b1 & 0x7f;
    size_t i = 2;
    if (len == 126) {
        len = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
        i = 4;
    } else if (len == 127) {
        len = 0;
        for (i = 2; i < 10; i++)
            len = len << 8 | w->hdr[i];
        if (len >> 63)
            return BL_ERROR;
    }
    w->fin = b0 >> 7;
    w->op = b0 & 0x0f;
    w->masked = b1 >> 7;
    if (w->masked)
        memcpy(w->key, w->hdr + i, 4);
    w->kpos = 0;
    w->left = len;
    if (b0 & 0x70) /* RSV bits: an extension (compression) nobody negotiated */
        return BL_ERROR;
    if (w->op >= BL_WS_CLOSE) {
        if (w->op > BL_WS_PONG || !w->fin || len > 125)
            return BL_ERROR;
        if (w->op == BL_WS_CLOSE)
            bl_ws_close(t, dir);
        return BL_OK;
    }
    if (w->op == BL_WS_CONT)
        return w->msg ? BL_OK : BL_ERROR;
    if (w->op > BL_WS_BINARY || w->msg)
        return BL_ERROR; /* a reserved opcode, or a new message inside one */
    w->msg = w->op;
    w->b64 = w->op == BL_WS_TEXT && t->proto == BL_TAP_WEBSOCKET;
    w->b64bad = w->b64n = w->b64pad = 0;
    w->b64acc = 0;
    w->started = t->proto == BL_TAP_WS_SPDY; /* no channel byte in the tunnel */
    w->sink = t->proto == BL_TAP_WS_SPDY && w->op == BL_WS_BINARY ? BL_TAP_SINK_SPDY
                                                                  : BL_TAP_SINK_NONE;
    return BL_OK;
}

void bl_tap_ws_feed(bl_tap_t *t, int dir, const unsigned char *p, size_t n)
{
    bl_tap_ws_t *w = &t->ws[dir];
    while (n > 0 && !t->lost) {
        if (w->hneed == 0 || w->hlen < w->hneed) { /* frame header, byte by byte */
            w->hdr[w->hlen++] = *p++;
            n--;
            if (w->hlen == 1) {
                w->hneed = 2;
                continue;
            }
            if (w->hlen == 2) {
                unsigned l7 = w->hdr[1] & 0x7f;
                w->hneed = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + (w->hdr[1] >> 7) * 4);
            }
            if (w->hlen < w->hneed)
                continue;
            if (bl_ws_frame(t, dir, w) != BL_OK) {
                bl_tap_lose(t);
                return;
            }
            if (w->left == 0)
                bl_ws_frame_end(t, w);
            continue;
        }
        size_t k = w->left < n ? (size_t)w->left : n;
        bl_ws_payload(t, dir, w, p, k);
        p += k;
        n -= k;
        w->left -= k;
        if (w->left == 0 && !t->lost)
            bl_ws_frame_end(t, w);
    }
}
