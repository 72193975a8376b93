/* ini.c - the AWS shared files' INI dialect. See ini.h. */
#include "aws/ini.h"

/* Returns s without leading SP/HTAB and trailing SP/HTAB/CR. */
static bl_str_t ini_trim(bl_str_t s)
{
    s = bl_str_trim(s);
    while (s.len > 0 && (s.p[s.len - 1] == '\r' || s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Returns 1 if the "[...]" line `l` names `section`, 0 if it names another,
 * -1 if it is not a section header. */
static int ini_section(bl_str_t l, const char *section)
{
    if (l.len < 2 || l.p[0] != '[')
        return -1;
    const char *rb = memchr(l.p, ']', l.len);
    if (!rb)
        return -1;
    bl_str_t name = ini_trim((bl_str_t){ l.p + 1, (size_t)(rb - l.p - 1) });
    return bl_str_eq(name, section) ? 1 : 0;
}

int bl_aws_ini_get(const char *text, size_t len, const char *section, const char *key,
                   bl_str_t *value)
{
    int in = 0, seen = 0, found = 0;
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        i = 3;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        bl_str_t raw = { text + i, e - i };
        i = e + 1;
        if (raw.len > 0 && (raw.p[0] == ' ' || raw.p[0] == '\t'))
            continue;   /* continuation of a nested value */
        bl_str_t l = ini_trim(raw);
        if (l.len == 0 || l.p[0] == '#' || l.p[0] == ';')
            continue;
        int s = ini_section(l, section);
        if (s >= 0) {
            in = s;
            seen |= s;
            continue;
        }
        const char *eq = memchr(l.p, '=', l.len);
        if (!in || !eq)
            continue;
        bl_str_t k = ini_trim((bl_str_t){ l.p, (size_t)(eq - l.p) });
        if (bl_str_eq(k, key)) {
            *value = ini_trim((bl_str_t){ eq + 1, l.len - (size_t)(eq - l.p) - 1 });
            found = 1;
        }
    }
    return found ? 1 : (seen ? 0 : BL_DECLINED);
}
