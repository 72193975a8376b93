/*
 * tap_spdy.c - SPDY/3.1 framing for the tap (draft-mbelshe-httpbis-spdy,
 * SPDY/3 section 2.2; what moby/spdystream speaks for kubectl and kubelet).
 *
 * Control frames: 8-byte header (1, version 3, type, flags, 24-bit length).
 * SYN_STREAM carries stream id, associated id, priority and slot (10 bytes)
 * before its header block; SYN_REPLY and HEADERS a stream id (4 bytes).
 * Header blocks are one zlib stream per direction for the connection's
 * lifetime, primed with the SPDY/3 dictionary, so every block is inflated
 * in order even when only SYN_STREAM's `streamtype` matters. DATA frames
 * (0, stream id, flags, length) are skipped unread unless they belong to
 * the error stream or a captured stream.
 */
#include <stdlib.h>
#include "kube/tap_int.h"

enum {
    BL_SPDY_SYN_STREAM = 1,
    BL_SPDY_SYN_REPLY = 2,
    BL_SPDY_RST_STREAM = 3,
    BL_SPDY_HEADERS = 8,
};
#define BL_SPDY_FLAG_FIN 0x01

/* The SPDY/3 header compression dictionary (SPDY/3 section 2.6.10.1):
 * length-prefixed common header names and values, then common value
 * fragments. 1423 bytes. */
static const char bl_spdy_dict[] =
    "\000\000\000\007options" "\000\000\000\004head" "\000\000\000\004post" "\000\000\000\003put"
    "\000\000\000\006delete" "\000\000\000\005trace" "\000\000\000\006accept"
    "\000\000\000\016accept-charset" "\000\000\000\017accept-encoding"
    "\000\000\000\017accept-language" "\000\000\000\015accept-ranges" "\000\000\000\003age"
    "\000\000\000\005allow" "\000\000\000\015authorization" "\000\000\000\015cache-control"
    "\000\000\000\012connection" "\000\000\000\014content-base" "\000\000\000\020content-encoding"
    "\000\000\000\020content-language" "\000\000\000\016content-length"
    "\000\000\000\020content-location" "\000\000\000\013content-md5" "\000\000\000\015content-range"
    "\000\000\000\014content-type" "\000\000\000\004date" "\000\000\000\004etag"
    "\000\000\000\006expect" "\000\000\000\007expires" "\000\000\000\004from" "\000\000\000\004host"
    "\000\000\000\010if-match" "\000\000\000\021if-modified-since" "\000\000\000\015if-none-match"
    "\000\000\000\010if-range" "\000\000\000\023if-unmodified-since" "\000\000\000\015last-modified"
    "\000\000\000\010location" "\000\000\000\014max-forwards" "\000\000\000\006pragma"
    "\000\000\000\022proxy-authenticate" "\000\000\000\023proxy-authorization"
    "\000\000\000\005range" "\000\000\000\007referer" "\000\000\000\013retry-after"
    "\000\000\000\006server" "\000\000\000\002te" "\000\000\000\007trailer"
    "\000\000\000\021transfer-encoding" "\000\000\000\007upgrade" "\000\000\000\012user-agent"
    "\000\000\000\004vary" "\000\000\000\003via" "\000\000\000\007warning"
    "\000\000\000\020www-authenticate" "\000\000\000\006method" "\000\000\000\003get"
    "\000\000\000\006status" "\000\000\000\006200 OK" "\000\000\000\007version"
    "\000\000\000\010HTTP/1.1" "\000\000\000\003url" "\000\000\000\006public"
    "\000\000\000\012set-cookie" "\000\000\000\012keep-alive" "\000\000\000\006origin"
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
    "504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Re"
    "quest401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Impl"
    "emented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00"
    ":00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,imag"
    "e/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivate"
    "max-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

static uint32_t bl_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int bl_tap_spdy_init(bl_tap_t *t)
{
    t->spdy = calloc(2, sizeof(*t->spdy));
    t->streams = calloc(BL_TAP_STREAMS_MAX, sizeof(*t->streams));
    if (t->spdy == NULL || t->streams == NULL)
        return BL_ERROR;
    for (int d = 0; d < 2; d++) {
        bl_buf_init(&t->spdy[d].block, BL_TAP_HBLOCK_MAX);
        t->spdy[d].hneed = 8;
    }
    return BL_OK;
}

void bl_tap_spdy_free(bl_tap_t *t)
{
    if (t->spdy) {
        for (int d = 0; d < 2; d++) {
            if (t->spdy[d].zinit)
                inflateEnd(&t->spdy[d].z);
            bl_buf_free(&t->spdy[d].block);
        }
    }
    free(t->spdy);
    free(t->streams);
    t->spdy = NULL;
    t->streams = NULL;
    t->nstreams = 0;
}

/* ---- streams ------------------------------------------------------------ */

static bl_tap_stream_t *bl_spdy_stream(bl_tap_t *t, uint32_t id)
{
    for (size_t i = 0; i < t->nstreams; i++)
        if (t->streams[i].id == id)
            return &t->streams[i];
    return NULL;
}

static void bl_spdy_forget(bl_tap_t *t, bl_tap_stream_t *st)
{
    *st = t->streams[--t->nstreams];
}

/* The sender in direction `dir` half-closed stream `id`. */
static void bl_spdy_fin(bl_tap_t *t, int dir, uint32_t id)
{
    bl_tap_stream_t *st = bl_spdy_stream(t, id);
    if (st == NULL)
        return;
    if (st->sink == BL_TAP_SINK_ERROR && dir == BL_TAP_DOWN)
        bl_tap_err_end(t, id, BL_TAP_ERR_EOS);
    st->fin |= (uint8_t)(1u << dir);
    if (st->fin == 3)
        bl_spdy_forget(t, st);
}

static void bl_spdy_reset(bl_tap_t *t, uint32_t id)
{
    bl_tap_stream_t *st = bl_spdy_stream(t, id);
    if (st == NULL)
        return;
    if (st->sink == BL_TAP_SINK_ERROR)
        bl_tap_err_end(t, id, BL_TAP_ERR_RESET);
    bl_spdy_forget(t, st);
}

/* Where DATA of stream `id` sent in direction `dir` goes. */
static int bl_spdy_data_sink(const bl_tap_t *t, int dir, uint32_t id)
{
    const bl_tap_stream_t *st = bl_spdy_stream((bl_tap_t *)t, id);
    if (st == NULL)
        return BL_TAP_SINK_NONE;
    switch (st->sink) {
    case BL_TAP_SINK_ERROR:
        return dir == BL_TAP_DOWN ? BL_TAP_SINK_ERROR : BL_TAP_SINK_NONE;
    case BL_TAP_SINK_STDIN:
        return dir == BL_TAP_UP && t->capture_max ? BL_TAP_SINK_STDIN : BL_TAP_SINK_NONE;
    default:
        return dir == BL_TAP_DOWN && t->capture_max ? st->sink : BL_TAP_SINK_NONE;
    }
}

/* Finds `streamtype` and whether `port` is present in an inflated header
 * block (count, then length-prefixed names and values, 32-bit big-endian).
 * Returns BL_OK, or BL_ERROR if the block is malformed. */
static int bl_spdy_headers(const unsigned char *p, size_t n, bl_str_t *type, int *port)
{
    if (n < 4)
        return BL_ERROR;
    uint32_t count = bl_be32(p);
    size_t i = 4;
    if (count > (n - 4) / 8)
        return BL_ERROR;
    for (uint32_t c = 0; c < count; c++) {
        bl_str_t kv[2];
        for (int k = 0; k < 2; k++) {
            if (n - i < 4)
                return BL_ERROR;
            uint32_t len = bl_be32(p + i);
            i += 4;
            if (len > n - i)
                return BL_ERROR;
            kv[k] = (bl_str_t){ (const char *)p + i, len };
            i += len;
        }
        if (bl_str_eq(kv[0], "streamtype"))
            *type = kv[1];
        else if (bl_str_eq(kv[0], "port"))
            *port = 1;
    }
    return i == n ? BL_OK : BL_ERROR;
}

/* A SYN_STREAM's header block is complete: learn the stream's type. */
static void bl_spdy_syn_stream(bl_tap_t *t, int dir, bl_tap_spdy_t *s)
{
    static const char *const types[] = { "stdin", "stdout", "stderr", "error" };
    static const uint8_t sinks[] = { BL_TAP_SINK_STDIN, BL_TAP_SINK_STDOUT, BL_TAP_SINK_STDERR,
                                     BL_TAP_SINK_ERROR };
    bl_str_t type = BL_STR_NULL;
    int port = 0;
    if (bl_spdy_headers((const unsigned char *)bl_buf_data(&s->block), bl_buf_size(&s->block),
                        &type, &port) != BL_OK) {
        bl_tap_lose(t);
        return;
    }
    if (port || bl_str_eq(type, "data"))
        t->portforward = 1;
    uint8_t sink = BL_TAP_SINK_NONE;
    for (size_t i = 0; i < BL_ARRAY_LEN(types); i++)
        if (bl_str_eq(type, types[i]))
            sink = sinks[i];
    if (sink == BL_TAP_SINK_NONE)
        return;
    bl_tap_stream_t *st = bl_spdy_stream(t, s->sid);
    if (st == NULL) {
        if (t->nstreams == BL_TAP_STREAMS_MAX) {
            bl_tap_lose(t);
            return;
        }
        st = &t->streams[t->nstreams++];
    }
    *st = (bl_tap_stream_t){ .id = s->sid, .sink = sink, .fin = 0 };
    if (s->flags & BL_SPDY_FLAG_FIN)
        bl_spdy_fin(t, dir, s->sid);
}

/* ---- frames ------------------------------------------------------------- */

static void bl_spdy_next(bl_tap_spdy_t *s)
{
    s->phase = BL_SPDY_HEAD;
    s->hlen = 0;
    s->hneed = 8;
}

/* The current frame's payload is all in. */
static void bl_spdy_frame_end(bl_tap_t *t, int dir, bl_tap_spdy_t *s)
{
    if (s->phase == BL_SPDY_DATA) {
        if (s->sink == BL_TAP_SINK_ERROR)
            bl_tap_err_end(t, s->sid, BL_TAP_ERR_MORE);
        if (s->flags & BL_SPDY_FLAG_FIN)
            bl_spdy_fin(t, dir, s->sid);
    } else if (s->phase == BL_SPDY_BLOCK) {
        if (s->type == BL_SPDY_SYN_STREAM)
            bl_spdy_syn_stream(t, dir, s);
        else if (s->flags & BL_SPDY_FLAG_FIN)
            bl_spdy_fin(t, dir, s->sid);
    }
    bl_spdy_next(s);
}

/* Enters the payload phase `phase`; ends the frame at once if nothing is left. */
static void bl_spdy_payload(bl_tap_t *t, int dir, bl_tap_spdy_t *s, int phase)
{
    s->phase = (uint8_t)phase;
    if (s->left == 0)
        bl_spdy_frame_end(t, dir, s);
}

/* The 8-byte frame header is in s->hdr. */
static void bl_spdy_head(bl_tap_t *t, int dir, bl_tap_spdy_t *s)
{
    uint32_t w1 = bl_be32(s->hdr), w2 = bl_be32(s->hdr + 4);
    s->flags = (uint8_t)(w2 >> 24);
    s->left = w2 & 0xffffff;
    if (!(w1 & 0x80000000u)) {
        s->sid = w1 & 0x7fffffff;
        s->sink = (uint8_t)bl_spdy_data_sink(t, dir, s->sid);
        bl_spdy_payload(t, dir, s, BL_SPDY_DATA);
        return;
    }
    if (((w1 >> 16) & 0x7fff) != 3) {
        bl_tap_lose(t); /* another version: another dictionary, another layout */
        return;
    }
    unsigned type = w1 & 0xffff;
    uint8_t fixed = type == BL_SPDY_SYN_STREAM ? 10 :
                    type == BL_SPDY_SYN_REPLY || type == BL_SPDY_HEADERS ? 4 :
                    type == BL_SPDY_RST_STREAM ? 8 : 0;
    if (fixed == 0) { /* SETTINGS, PING, GOAWAY, WINDOW_UPDATE, unknown: nothing to learn */
        bl_spdy_payload(t, dir, s, BL_SPDY_SKIP);
        return;
    }
    if (s->left < fixed) {
        bl_tap_lose(t);
        return;
    }
    s->type = (uint8_t)type;
    s->phase = BL_SPDY_FIXED;
    s->hlen = 0;
    s->hneed = fixed;
}

/* A control frame's fixed part is in s->hdr. */
static void bl_spdy_fixed(bl_tap_t *t, int dir, bl_tap_spdy_t *s)
{
    s->sid = bl_be32(s->hdr) & 0x7fffffff;
    s->left -= s->hneed;
    if (s->type == BL_SPDY_RST_STREAM) {
        bl_spdy_reset(t, s->sid);
        bl_spdy_payload(t, dir, s, BL_SPDY_SKIP);
        return;
    }
    s->inflated = 0;
    bl_buf_reset(&s->block);
    bl_spdy_payload(t, dir, s, BL_SPDY_BLOCK);
}

/* Inflates p[0..n) of a header block: SYN_STREAM's into s->block, the
 * others' into scratch, to keep the direction's zlib stream in step. */
static void bl_spdy_inflate(bl_tap_t *t, bl_tap_spdy_t *s, const unsigned char *p, size_t n)
{
    unsigned char scratch[1024];
    if (!s->zinit) {
        if (inflateInit(&s->z) != Z_OK) {
            bl_tap_lose(t);
            return;
        }
        s->zinit = 1;
    }
    s->z.next_in = (Bytef *)(uintptr_t)p; /* zlib reads, never writes, next_in */
    s->z.avail_in = (uInt)n;
    for (;;) {
        unsigned char *out = scratch;
        size_t room = sizeof(scratch);
        if (s->type == BL_SPDY_SYN_STREAM &&
            (out = (unsigned char *)bl_buf_tail(&s->block, 256, &room)) == NULL) {
            bl_tap_lose(t); /* an inflated block past BL_TAP_HBLOCK_MAX */
            return;
        }
        room = BL_MIN(room, (size_t)UINT32_MAX);
        s->z.next_out = out;
        s->z.avail_out = (uInt)room;
        int rc = inflate(&s->z, Z_SYNC_FLUSH);
        if (rc == Z_NEED_DICT)
            rc = inflateSetDictionary(&s->z, (const Bytef *)bl_spdy_dict, sizeof(bl_spdy_dict) - 1);
        size_t made = room - s->z.avail_out;
        if (s->type == BL_SPDY_SYN_STREAM)
            bl_buf_commit(&s->block, made);
        s->inflated += made;
        if (rc == Z_BUF_ERROR && s->z.avail_in == 0)
            return; /* all input used, all output out */
        if (rc != Z_OK || s->inflated > BL_TAP_HBLOCK_MAX) {
            bl_tap_lose(t); /* corrupt, a finished zlib stream, or too big */
            return;
        }
        if (s->z.avail_in == 0 && s->z.avail_out != 0)
            return;
    }
}

void bl_tap_spdy_feed(bl_tap_t *t, int dir, const unsigned char *p, size_t n)
{
    bl_tap_spdy_t *s = &t->spdy[dir];
    while (n > 0 && !t->lost) {
        if (s->phase == BL_SPDY_HEAD || s->phase == BL_SPDY_FIXED) {
            size_t k = BL_MIN(n, (size_t)(s->hneed - s->hlen));
            memcpy(s->hdr + s->hlen, p, k);
            s->hlen = (uint8_t)(s->hlen + k);
            p += k;
            n -= k;
            if (s->hlen == s->hneed) {
                if (s->phase == BL_SPDY_HEAD)
                    bl_spdy_head(t, dir, s);
                else
                    bl_spdy_fixed(t, dir, s);
            }
            continue;
        }
        size_t k = BL_MIN(n, (size_t)s->left);
        if (s->phase == BL_SPDY_BLOCK)
            bl_spdy_inflate(t, s, p, k);
        else if (s->phase == BL_SPDY_DATA && s->sink != BL_TAP_SINK_NONE &&
                 !bl_tap_sink_full(t, s->sink))
            bl_tap_sink(t, s->sink, s->sid, p, k);
        p += k;
        n -= k;
        s->left -= (uint32_t)k;
        if (s->left == 0 && !t->lost)
            bl_spdy_frame_end(t, dir, s);
    }
}

size_t bl_tap_spdy_skippable(const bl_tap_t *t, int dir)
{
    const bl_tap_spdy_t *s = &t->spdy[dir];
    if (s->phase == BL_SPDY_SKIP || (s->phase == BL_SPDY_DATA && s->sink == BL_TAP_SINK_NONE))
        return s->left;
    return 0;
}

void bl_tap_spdy_skip(bl_tap_t *t, int dir, size_t n)
{
    bl_tap_spdy_t *s = &t->spdy[dir];
    s->left -= (uint32_t)n;
    if (s->left == 0)
        bl_spdy_frame_end(t, dir, s);
}

size_t bl_tap_spdy_want(const bl_tap_t *t, int dir)
{
    const bl_tap_spdy_t *s = &t->spdy[dir];
    if (s->phase == BL_SPDY_HEAD || s->phase == BL_SPDY_FIXED)
        return (size_t)(s->hneed - s->hlen);
    return s->left;
}
