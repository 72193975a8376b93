/*
 * common.h - the few definitions every byline file shares.
 *
 * Return codes: every function that can fail returns one of these (or a
 * non-negative count where documented). Callers test `< 0` for "not done".
 */
#ifndef BL_CORE_COMMON_H
#define BL_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BL_VERSION "0.2.0"

#define BL_OK        0   /* done */
#define BL_ERROR    -1   /* failed; the caller cleans up */
#define BL_AGAIN    -2   /* would block or needs more input; re-arm and retry */
#define BL_DECLINED -3   /* not applicable / not found; not an error */

#define BL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BL_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define bl_likely(x)   __builtin_expect(!!(x), 1)
#define bl_unlikely(x) __builtin_expect(!!(x), 0)
#define BL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define bl_likely(x)   (x)
#define bl_unlikely(x) (x)
#define BL_PRINTF(f, a)
#endif

/* A borrowed view of bytes; never owns memory, never NUL-terminated. */
typedef struct {
    const char *p;
    size_t len;
} bl_str_t;

#define BL_STR(lit) ((bl_str_t){ (lit), sizeof(lit) - 1 })
#define BL_STR_NULL ((bl_str_t){ NULL, 0 })

/* Returns 1 if `s` equals the literal-or-C-string `c` exactly, else 0. */
static inline int bl_str_eq(bl_str_t s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* Returns the value of hex digit `c` (0..15), or -1 if it is not one. */
static inline int bl_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns 1 if `s` equals `c` ignoring ASCII case, else 0. */
int bl_str_eq_nocase(bl_str_t s, const char *c);
/* Returns the length of the valid UTF-8 sequence at u[0..n) (n > 0; no
 * overlong forms, surrogates or code points past U+10FFFF), or 0. */
size_t bl_utf8_len(const unsigned char *u, size_t n);

/* Returns 1 if `s` starts with `prefix` ignoring ASCII case, else 0. */
int bl_str_prefix_nocase(bl_str_t s, const char *prefix);

/* Returns the value of the n (< 10) decimal digits at s, or -1 if one of
 * them is not a digit. */
int bl_str_digits(const char *s, int n);

/* Returns a view of `s` without leading/trailing SP and HTAB. */
bl_str_t bl_str_trim(bl_str_t s);

#endif
