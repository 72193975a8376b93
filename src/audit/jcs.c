/*
 * jcs.c - RFC 8785 JSON Canonicalization Scheme over jansson values, for
 * the integer-only JSON byline's ledger holds (docs/AUDIT-FORMAT.md
 * section 2).
 *
 * Strings are handled by length throughout (jansson keeps U+0000 inside a
 * string when parsed with JSON_ALLOW_NUL). Integers are limited to what an
 * IEEE double holds exactly (|v| <= 2^53): RFC 8785 numbers are doubles, so
 * a larger integer has no canonical form of its own digits.
 */
#include <stdint.h>
#include <stdlib.h>
#include "audit/jcs.h"

#define BL_JCS_INT_MAX 9007199254740992LL /* 2^53 */

/* Appends s[0..n) as a JSON string with RFC 8785's minimal escapes. */
static int bl_jcs_string(bl_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (bl_buf_append(out, "\"", 1) != BL_OK)
        return BL_ERROR;
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 2;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
        } else if (c < 0x20) {
            esc[0] = '\\';
            switch (c) {
            case '\b': esc[1] = 'b'; break;
            case '\t': esc[1] = 't'; break;
            case '\n': esc[1] = 'n'; break;
            case '\f': esc[1] = 'f'; break;
            case '\r': esc[1] = 'r'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        } else {
            continue;
        }
        if (bl_buf_append(out, s + run, i - run) != BL_OK || bl_buf_append(out, esc, elen) != BL_OK)
            return BL_ERROR;
        run = i + 1;
    }
    if (bl_buf_append(out, s + run, n - run) != BL_OK)
        return BL_ERROR;
    return bl_buf_append(out, "\"", 1);
}

/* One member, with its key as a sequence of UTF-16 code units for sorting. */
typedef struct {
    const char *key;
    size_t klen;
    json_t *value;
} bl_jcs_member_t;

/* Decodes the code point at s[*i] (valid UTF-8, as jansson guarantees; a
 * stray byte counts as itself) and advances *i. */
static uint32_t bl_jcs_next_cp(const char *s, size_t n, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (*i + len > n)
        len = 1;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; k++)
        cp = cp << 6 | ((unsigned char)s[*i + k] & 0x3f);
    *i += len;
    return cp;
}

/* The first (second = 0) or second UTF-16 code unit of code point cp. */
static uint32_t bl_jcs_unit(uint32_t cp, int second)
{
    if (cp < 0x10000)
        return cp;
    cp -= 0x10000;
    return second ? 0xdc00 + (cp & 0x3ff) : 0xd800 + (cp >> 10);
}

/* Compares two keys by UTF-16 code units, as RFC 8785 section 3.2.3 sorts. */
static int bl_jcs_cmp(const void *pa, const void *pb)
{
    const bl_jcs_member_t *a = pa, *b = pb;
    size_t i = 0, j = 0;
    while (i < a->klen && j < b->klen) {
        uint32_t ca = bl_jcs_next_cp(a->key, a->klen, &i);
        uint32_t cb = bl_jcs_next_cp(b->key, b->klen, &j);
        for (int k = 0; k < 2; k++) {
            uint32_t ua = bl_jcs_unit(ca, k), ub = bl_jcs_unit(cb, k);
            if (ua != ub)
                return ua < ub ? -1 : 1;
            if (ca < 0x10000 || cb < 0x10000)
                break; /* equal first units: both BMP, so equal code points */
        }
    }
    return (i < a->klen) - (j < b->klen);
}

static int bl_jcs_value(const json_t *v, bl_buf_t *out);

static int bl_jcs_object(const json_t *v, bl_buf_t *out)
{
    size_t n = json_object_size(v), i = 0;
    bl_jcs_member_t *m = n ? calloc(n, sizeof(*m)) : NULL;
    int rc = BL_ERROR;
    if (n && m == NULL)
        return BL_ERROR;
    for (void *it = json_object_iter((json_t *)v); it && i < n; it = json_object_iter_next((json_t *)v, it), i++) {
        m[i].key = json_object_iter_key(it);
        m[i].klen = json_object_iter_key_len(it);
        m[i].value = json_object_iter_value(it);
    }
    if (i != n)
        goto end;
    if (n > 1)
        qsort(m, n, sizeof(*m), bl_jcs_cmp);
    if (bl_buf_append(out, "{", 1) != BL_OK)
        goto end;
    for (i = 0; i < n; i++) {
        if ((i && bl_buf_append(out, ",", 1) != BL_OK) || bl_jcs_string(out, m[i].key, m[i].klen) != BL_OK ||
            bl_buf_append(out, ":", 1) != BL_OK || bl_jcs_value(m[i].value, out) != BL_OK)
            goto end;
    }
    rc = bl_buf_append(out, "}", 1);
end:
    free(m);
    return rc;
}

static int bl_jcs_value(const json_t *v, bl_buf_t *out)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return bl_jcs_object(v, out);
    case JSON_ARRAY:
        if (bl_buf_append(out, "[", 1) != BL_OK)
            return BL_ERROR;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && bl_buf_append(out, ",", 1) != BL_OK) || bl_jcs_value(json_array_get(v, i), out) != BL_OK)
                return BL_ERROR;
        return bl_buf_append(out, "]", 1);
    case JSON_STRING:
        return bl_jcs_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        if (x > BL_JCS_INT_MAX || x < -BL_JCS_INT_MAX)
            return BL_ERROR;
        if (x < 0 && bl_buf_append(out, "-", 1) != BL_OK)
            return BL_ERROR;
        return bl_buf_putu64(out, x < 0 ? (uint64_t)(-x) : (uint64_t)x);
    }
    case JSON_TRUE:
        return bl_buf_append(out, "true", 4);
    case JSON_FALSE:
        return bl_buf_append(out, "false", 5);
    case JSON_NULL:
        return bl_buf_append(out, "null", 4);
    case JSON_REAL:
    default:
        return BL_ERROR; /* byline writes integers only */
    }
}

int bl_jcs_dump(const json_t *v, bl_buf_t *out)
{
    size_t mark = out->len;
    if (v == NULL || bl_jcs_value(v, out) != BL_OK) {
        out->len = BL_MAX(mark, out->off); /* nothing half-written stays behind */
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_jcs_is_canonical(const char *line, size_t n)
{
    json_error_t e;
    json_t *v = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (v == NULL)
        return 0;
    bl_buf_t b;
    bl_buf_init(&b, n); /* the canonical form is exactly n bytes or the line is not canonical */
    int ok = bl_jcs_dump(v, &b) == BL_OK && bl_buf_size(&b) == n && (n == 0 || memcmp(bl_buf_data(&b), line, n) == 0);
    bl_buf_free(&b);
    json_decref(v);
    return ok;
}
