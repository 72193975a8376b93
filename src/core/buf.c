/* buf.c - bounded growable byte buffer. */
#include <stdio.h>
#include <stdlib.h>
#include "core/buf.h"

#define BL_BUF_MIN_ALLOC 256

void bl_buf_init(bl_buf_t *b, size_t max)
{
    b->base = NULL;
    b->off = b->len = b->cap = 0;
    b->max = max;
}

void bl_buf_free(bl_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->off = b->len = b->cap = 0;
}

/* Moves unread data to the front so the consumed prefix can be reused. */
static void bl_buf_compact(bl_buf_t *b)
{
    if (b->off == 0)
        return;
    if (b->len > b->off)
        memmove(b->base, b->base + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

int bl_buf_reserve(bl_buf_t *b, size_t n)
{
    if (b->cap - b->len >= n)
        return BL_OK;
    bl_buf_compact(b);
    if (b->cap - b->len >= n)
        return BL_OK;
    if (n > b->max - b->len)
        return BL_ERROR;
    size_t want = b->len + n;
    size_t cap = b->cap ? b->cap : BL_BUF_MIN_ALLOC;
    while (cap < want)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->base, cap);
    if (p == NULL)
        return BL_ERROR;
    b->base = p;
    b->cap = cap;
    return BL_OK;
}

char *bl_buf_tail(bl_buf_t *b, size_t min, size_t *room)
{
    size_t avail = b->max - bl_buf_size(b);
    if (min > avail)
        min = avail;
    if (min == 0 || bl_buf_reserve(b, min) != BL_OK) {
        *room = 0;
        return NULL;
    }
    *room = b->cap - b->len;
    return b->base + b->len;
}

void bl_buf_consume(bl_buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

int bl_buf_append(bl_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return BL_OK;
    if (bl_buf_reserve(b, n) != BL_OK)
        return BL_ERROR;
    memcpy(b->base + b->len, p, n);
    b->len += n;
    return BL_OK;
}

/* Writes v in `base` (10 or 16) right-aligned into tmp; returns its start. */
static char *bl_buf_digits(char tmp[24], uint64_t v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char *p = tmp + 24;
    do {
        *--p = digits[v % base];
        v /= base;
    } while (v);
    return p;
}

int bl_buf_putu64(bl_buf_t *b, uint64_t v)
{
    char tmp[24], *p = bl_buf_digits(tmp, v, 10);
    return bl_buf_append(b, p, (size_t)(tmp + 24 - p));
}

int bl_buf_puthex(bl_buf_t *b, uint64_t v)
{
    char tmp[24], *p = bl_buf_digits(tmp, v, 16);
    return bl_buf_append(b, p, (size_t)(tmp + 24 - p));
}

int bl_buf_field(bl_buf_t *b, bl_str_t name, bl_str_t value)
{
    size_t n = name.len + value.len + 4;
    if (bl_buf_reserve(b, n) != BL_OK)
        return BL_ERROR;
    char *p = b->base + b->len;
    memcpy(p, name.p, name.len);
    p += name.len;
    *p++ = ':';
    *p++ = ' ';
    if (value.len)
        memcpy(p, value.p, value.len);
    p += value.len;
    *p++ = '\r';
    *p++ = '\n';
    b->len += n;
    return BL_OK;
}

int bl_buf_vprintf(bl_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0 || bl_buf_reserve(b, (size_t)n + 1) != BL_OK)
        return BL_ERROR;
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return BL_OK;
}

int bl_buf_printf(bl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int bl_buf_json_str(bl_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (bl_buf_append(b, "\"", 1) != BL_OK)
        return BL_ERROR;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i && bl_buf_append(b, p + i, run - i) != BL_OK)
            return BL_ERROR;
        i = run;
        if (i >= n)
            break;
        unsigned char c = p[i];
        char esc[6] = { '\\', 0, 0, 0, 0, 0 };
        const char *out = esc;
        size_t outlen = 2, step = 1;
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
        } else if (c < 0x20) {
            static const char shortform[] = "\b\t\n\f\r"; /* RFC 8785: these five, else \u00xx */
            static const unsigned char codes[] = { 0x08, 0x09, 0x0a, 0x0c, 0x0d };
            const void *k = memchr(codes, c, sizeof(codes));
            if (k) {
                esc[1] = "btnfr"[(const unsigned char *)k - codes];
            } else {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                outlen = 6;
            }
            (void)shortform;
        } else {
            /* Valid UTF-8 goes out as it is; an invalid byte becomes
             * U+FFFD, written raw (JSON and RFC 8785 escape nothing else). */
            step = bl_utf8_len(p + i, n - i);
            out = step ? (const char *)(p + i) : "\xef\xbf\xbd";
            outlen = step ? step : 3;
            step = step ? step : 1;
        }
        if (bl_buf_append(b, out, outlen) != BL_OK)
            return BL_ERROR;
        i += step;
    }
    return bl_buf_append(b, "\"", 1);
}

const char *bl_buf_cstr(bl_buf_t *b)
{
    if (bl_buf_reserve(b, 1) != BL_OK)
        return NULL;
    b->base[b->len] = '\0';
    return b->base + b->off;
}
