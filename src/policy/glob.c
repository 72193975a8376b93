/*
 * glob.c - wildcard matching for policy rules (glob.h). fnmatch(3) would
 * do the syntax, but it backtracks recursively: a pattern with many stars
 * against a long, client-chosen string can take exponential time. This
 * matcher keeps a single backtrack point (the last star), which is enough
 * because a later star can absorb anything an earlier one could.
 */
#include <stdint.h>
#include "policy/glob.h"

/* Returns 1 if s[i] may be matched by a wildcard under `flags`. */
static int bl_glob_wild_ok(const char *s, size_t i, unsigned flags)
{
    if (!(flags & BL_GLOB_PATH))
        return 1;
    if (s[i] == '/')
        return 0;
    return !(s[i] == '.' && (i == 0 || s[i - 1] == '/'));
}

/* Matches byte c against the set at pat[*pi] ('['). Returns 1 or 0 and
 * moves *pi past the closing ']', or returns -1 for an unterminated set. */
static int bl_glob_set(const char *pat, size_t plen, size_t *pi, unsigned char c)
{
    size_t i = *pi + 1;
    int neg = 0, hit = 0;
    if (i < plen && (pat[i] == '!' || pat[i] == '^')) {
        neg = 1;
        i++;
    }
    size_t first = i;
    while (i < plen && (pat[i] != ']' || i == first)) {
        if (pat[i] == '\\' && i + 1 < plen)
            i++;
        unsigned char lo = (unsigned char)pat[i++], hi = lo;
        if (i + 1 < plen && pat[i] == '-' && pat[i + 1] != ']') {
            i++;
            if (pat[i] == '\\' && i + 1 < plen)
                i++;
            hi = (unsigned char)pat[i++];
        }
        if (c >= lo && c <= hi)
            hit = 1;
    }
    if (i >= plen)
        return -1;
    *pi = i + 1;
    return hit != neg;
}

/* Tries to match one pattern element at pat[*p] against s[i]. Returns 1
 * and advances *p if it matches, 0 if not, -1 for a malformed pattern. */
static int bl_glob_one(const char *pat, size_t plen, size_t *p, const char *s, size_t i,
                       unsigned flags)
{
    char pc = pat[*p];
    if (pc == '?') {
        if (!bl_glob_wild_ok(s, i, flags))
            return 0;
        (*p)++;
        return 1;
    }
    if (pc == '[') {
        size_t q = *p;
        int m = bl_glob_set(pat, plen, &q, (unsigned char)s[i]);
        if (m == 1 && bl_glob_wild_ok(s, i, flags)) {
            *p = q;
            return 1;
        }
        return m < 0 ? -1 : 0;
    }
    size_t adv = 1;
    if (pc == '\\' && *p + 1 < plen) {
        pc = pat[*p + 1];
        adv = 2;
    }
    if (pc != s[i])
        return 0;
    *p += adv;
    return 1;
}

int bl_glob_match(const char *pat, size_t plen, const char *s, size_t slen, unsigned flags)
{
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < slen) {
        if (p < plen && pat[p] == '*') {
            star_p = ++p;
            star_i = i;
            continue;
        }
        int m = p < plen ? bl_glob_one(pat, plen, &p, s, i, flags) : 0;
        if (m < 0)
            return 0;
        if (m == 1) {
            i++;
            continue;
        }
        /* Let the last star take one more byte, if it may. With
         * BL_GLOB_PATH every '/' is matched by a literal '/', so earlier
         * stars (in earlier components) cannot help either. */
        if (star_p == SIZE_MAX || !bl_glob_wild_ok(s, star_i, flags))
            return 0;
        i = ++star_i;
        p = star_p;
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

int bl_glob_is_glob(const char *pat, size_t plen)
{
    for (size_t i = 0; i < plen; i++)
        if (pat[i] == '*' || pat[i] == '?' || pat[i] == '[' || pat[i] == '\\')
            return 1;
    return 0;
}

const char *bl_glob_check(const char *pat, size_t plen)
{
    for (size_t i = 0; i < plen; i++) {
        if (pat[i] == '\\') {
            if (++i == plen)
                return "ends in a lone backslash";
        } else if (pat[i] == '[') {
            size_t q = i;
            if (bl_glob_set(pat, plen, &q, 0) < 0)
                return "has a [ without its ]";
            i = q - 1;
        }
    }
    return NULL;
}
