/* str.c - helpers over borrowed byte views (bl_str_t). */
#include "core/common.h"

static inline unsigned char bl_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int bl_str_prefix_nocase(bl_str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s.len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (bl_lower((unsigned char)s.p[i]) != bl_lower((unsigned char)prefix[i]))
            return 0;
    return 1;
}

int bl_str_eq_nocase(bl_str_t s, const char *c)
{
    return s.len == strlen(c) && bl_str_prefix_nocase(s, c);
}

bl_str_t bl_str_trim(bl_str_t s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Returns the length of the valid UTF-8 sequence at u[0..n) (no overlong
 * forms, surrogates or code points past U+10FFFF), or 0. */
size_t bl_utf8_len(const unsigned char *u, size_t n)
{
    size_t len;
    uint32_t cp, min;
    if (u[0] < 0x80)
        return 1;
    if ((u[0] & 0xe0) == 0xc0) { len = 2; cp = u[0] & 0x1fu; min = 0x80; }
    else if ((u[0] & 0xf0) == 0xe0) { len = 3; cp = u[0] & 0x0fu; min = 0x800; }
    else if ((u[0] & 0xf8) == 0xf0) { len = 4; cp = u[0] & 0x07u; min = 0x10000; }
    else return 0;
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((u[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int bl_str_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + (int)d;
    }
    return v;
}
