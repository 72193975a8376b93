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
