/*
 * chunked.c - incremental decoder for the chunked transfer coding
 * (RFC 9112 section 7.1), strict enough that byline and the peer it
 * forwards to cannot disagree about where a body ends.
 *
 * The decoder is a byte-at-a-time state machine for the framing bytes
 * (size lines, CRLFs, trailers), which are few, and hands chunk data back
 * as spans of the caller's buffer, which is where the bytes are. A state
 * only advances when its byte is accepted, so a call that stops at a bad
 * byte leaves the decoder where the next call will refuse that same byte.
 */
#include <limits.h>
#include "http/http1.h"

enum {
    CH_SIZE = 0,      /* chunk-size hex digits (line_len counts them) */
    CH_EXT_WS,        /* BWS that must be followed by ';' */
    CH_EXT_NAME0,     /* after ';': BWS, then the first byte of a name */
    CH_EXT_NAME,      /* in chunk-ext-name */
    CH_EXT_NAME_WS,   /* BWS after a name: '=' or ';' next */
    CH_EXT_VAL0,      /* after '=': BWS, then a token or '"' */
    CH_EXT_VAL,       /* in a token value */
    CH_EXT_QUOTED,    /* in a quoted-string value */
    CH_EXT_QPAIR,     /* after '\' in a quoted-string */
    CH_EXT_QEND,      /* after the closing '"' */
    CH_SIZE_LF,       /* CR seen at the end of the size line */
    CH_DATA,          /* `remaining` bytes of chunk data */
    CH_DATA_CR,       /* CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER0,      /* start of a trailer line, or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,        /* LF of the final empty line */
    CH_DONE
};

#define CH_MAX_SIZE (UINT64_C(1) << 62)

void bl_chunked_init(bl_chunked_t *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

static int ch_fail(bl_http_err_t *err, int status, const char *reason)
{
    err->status = status;
    err->reason = reason;
    return BL_ERROR;
}

static inline int is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* qdtext / quoted-pair payload (RFC 9110 section 5.6.4), minus '"' and '\'. */
static inline int qd_byte(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f && ch != '"' && ch != '\\');
}

/* A hex digit of the chunk size: at most 16 digits, value at most 2^62. */
static int size_digit(bl_chunked_t *c, int d, bl_http_err_t *err)
{
    if (c->line_len >= 16 || c->remaining > (CH_MAX_SIZE >> 4))
        return ch_fail(err, 400, "chunk size too large");
    uint64_t v = (c->remaining << 4) | (uint64_t)d;
    if (v > CH_MAX_SIZE)
        return ch_fail(err, 400, "chunk size too large");
    c->remaining = v;
    return BL_OK;
}

/* One byte of the chunk-size line, after the digits. Returns the next
 * state, or BL_ERROR. */
static int ext_byte(int state, unsigned char ch, bl_http_err_t *err)
{
    int tok = bl_http_tchar[ch];
    switch (state) {
    case CH_EXT_WS:
        if (is_ws(ch)) return state;
        if (ch == ';') return CH_EXT_NAME0;
        break;
    case CH_EXT_NAME0:
        if (is_ws(ch)) return state;
        if (tok) return CH_EXT_NAME;
        break;
    case CH_EXT_NAME:
        if (tok) return state;
        if (ch == '=') return CH_EXT_VAL0;
        if (ch == ';') return CH_EXT_NAME0;
        if (ch == '\r') return CH_SIZE_LF;
        if (is_ws(ch)) return CH_EXT_NAME_WS;
        break;
    case CH_EXT_NAME_WS:
        if (is_ws(ch)) return state;
        if (ch == '=') return CH_EXT_VAL0;
        if (ch == ';') return CH_EXT_NAME0;
        break;
    case CH_EXT_VAL0:
        if (is_ws(ch)) return state;
        if (tok) return CH_EXT_VAL;
        if (ch == '"') return CH_EXT_QUOTED;
        break;
    case CH_EXT_VAL:
        if (tok) return state;
        if (ch == ';') return CH_EXT_NAME0;
        if (ch == '\r') return CH_SIZE_LF;
        if (is_ws(ch)) return CH_EXT_WS;
        break;
    case CH_EXT_QUOTED:
        if (ch == '"') return CH_EXT_QEND;
        if (ch == '\\') return CH_EXT_QPAIR;
        if (qd_byte(ch)) return state;
        break;
    case CH_EXT_QPAIR:
        if (ch == '\t' || (ch >= 0x20 && ch != 0x7f)) return CH_EXT_QUOTED;
        break;
    case CH_EXT_QEND:
        if (ch == ';') return CH_EXT_NAME0;
        if (ch == '\r') return CH_SIZE_LF;
        if (is_ws(ch)) return CH_EXT_WS;
        break;
    }
    return ch_fail(err, 400, ch == '\n' ? "bare LF in chunk-size line" : "malformed chunk extension");
}

/* The chunk-size line: digits, extensions, CRLF. */
static int size_line_byte(bl_chunked_t *c, unsigned char ch, bl_http_err_t *err)
{
    if (c->state == CH_SIZE_LF) {
        if (ch != '\n')
            return ch_fail(err, 400, "bare CR in chunk-size line");
        c->line_len = 0;
        c->trailers = 0;
        c->state = c->remaining == 0 ? CH_TRAILER0 : CH_DATA;
        return BL_OK;
    }
    if (c->line_len >= BL_CHUNKED_MAX_LINE && ch != '\r')
        return ch_fail(err, 400, "chunk-size line too long");
    if (c->state == CH_SIZE) {
        int d = bl_hexval(ch);
        if (d >= 0) {
            if (size_digit(c, d, err) != BL_OK)
                return BL_ERROR;
            c->line_len++;
            return BL_OK;
        }
        if (c->line_len == 0)
            return ch_fail(err, 400, ch == '\n' ? "bare LF in chunk-size line" : "invalid chunk size");
        if (ch == '\r' || ch == ';' || is_ws(ch)) {
            c->state = ch == '\r' ? CH_SIZE_LF : ch == ';' ? CH_EXT_NAME0 : CH_EXT_WS;
            c->line_len += ch != '\r';
            return BL_OK;
        }
        return ch_fail(err, 400, ch == '\n' ? "bare LF in chunk-size line" : "invalid chunk size");
    }
    int next = ext_byte(c->state, ch, err);
    if (next < 0)
        return BL_ERROR;
    c->state = next;
    c->line_len += ch != '\r';
    return BL_OK;
}

/* The trailer section: field lines, then CRLF. */
static int trailer_byte(bl_chunked_t *c, unsigned char ch, bl_http_err_t *err)
{
    switch (c->state) {
    case CH_TRAILER0:
        if (ch == '\r') {
            c->state = CH_END_LF;
            return BL_OK;
        }
        if (!bl_http_tchar[ch])
            return ch_fail(err, 400, ch == '\n' ? "bare LF in trailer section" : is_ws(ch) ? "obs-fold in trailer section" : "invalid byte in trailer field name");
        if (c->trailers >= BL_CHUNKED_MAX_TRAILERS)
            return ch_fail(err, 431, "too many trailer fields");
        c->trailers++;
        c->state = CH_TRAILER_NAME;
        break;
    case CH_TRAILER_NAME:
        if (ch == ':')
            c->state = CH_TRAILER_VALUE;
        else if (!bl_http_tchar[ch])
            return ch_fail(err, 400, is_ws(ch) ? "whitespace between trailer name and colon" : "invalid byte in trailer field name");
        break;
    case CH_TRAILER_VALUE:
        if (ch == '\r') {
            c->state = CH_TRAILER_LF;
            return BL_OK;
        }
        if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
            return ch_fail(err, 400, ch == '\n' ? "bare LF in trailer section" : "invalid byte in trailer field value");
        break;
    case CH_TRAILER_LF:
        if (ch != '\n')
            return ch_fail(err, 400, "bare CR in trailer section");
        c->line_len = 0;
        c->state = CH_TRAILER0;
        return BL_OK;
    default: /* CH_END_LF */
        if (ch != '\n')
            return ch_fail(err, 400, "bare CR after the trailer section");
        c->state = CH_DONE;
        c->done = 1;
        return BL_OK;
    }
    if (c->line_len >= BL_CHUNKED_MAX_LINE)
        return ch_fail(err, 431, "trailer line too long");
    c->line_len++;
    return BL_OK;
}

/* Any framing byte. Returns BL_OK (state advanced) or BL_ERROR (unchanged). */
static int step(bl_chunked_t *c, unsigned char ch, bl_http_err_t *err)
{
    switch (c->state) {
    case CH_DATA_CR:
        if (ch != '\r')
            return ch_fail(err, 400, "chunk data not followed by CRLF");
        c->state = CH_DATA_LF;
        return BL_OK;
    case CH_DATA_LF:
        if (ch != '\n')
            return ch_fail(err, 400, "chunk data not followed by CRLF");
        c->state = CH_SIZE;
        c->line_len = 0;
        c->remaining = 0;
        return BL_OK;
    case CH_TRAILER0:
    case CH_TRAILER_NAME:
    case CH_TRAILER_VALUE:
    case CH_TRAILER_LF:
    case CH_END_LF:
        return trailer_byte(c, ch, err);
    default:
        return size_line_byte(c, ch, err);
    }
}

long bl_chunked_decode(bl_chunked_t *c, const char *in, size_t len, bl_str_t *data,
                       bl_http_err_t *err)
{
    size_t i = 0;
    int have_data = 0;
    *data = (bl_str_t){ in, 0 };
    if (len > LONG_MAX)
        len = LONG_MAX;
    while (i < len && !c->done) {
        if (c->state == CH_DATA) {
            if (have_data)
                break;
            size_t n = (size_t)BL_MIN(c->remaining, (uint64_t)(len - i));
            *data = (bl_str_t){ in + i, n };
            have_data = 1;
            i += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        if (step(c, (unsigned char)in[i], err) != BL_OK)
            return have_data ? (long)i : BL_ERROR;
        i++;
    }
    return (long)i;
}
