/* lifetime.c - credential expiry and revocation, and RFC 3339 times. */
#include <stdio.h>
#include <time.h>
#include "auth/lifetime.h"

#define BL_EXPIRES_MAX_S (10LL * 366 * 86400) /* a duration longer than this is a typo */

int bl_time_parse(const char *s, int64_t *out)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (strlen(s) != BL_TIME_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z')
        return BL_ERROR;
    int y = bl_str_digits(s, 4), mo = bl_str_digits(s + 5, 2), d = bl_str_digits(s + 8, 2);
    int h = bl_str_digits(s + 11, 2), mi = bl_str_digits(s + 14, 2), sec = bl_str_digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || sec < 0 || sec > 59)
        return BL_ERROR;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return BL_ERROR;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = sec };
    *out = (int64_t)timegm(&tm);
    return BL_OK;
}

char *bl_time_format(int64_t t, char out[BL_TIME_LEN + 1])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year < 70 ||
        strftime(out, BL_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != BL_TIME_LEN)
        snprintf(out, BL_TIME_LEN + 1, "%s", "1970-01-01T00:00:00Z");
    return out;
}

int bl_expires_parse(const char *s, int64_t now, int64_t *out, const char **why)
{
    size_t n = strlen(s);
    *why = "expected a duration like 90d, 12h or 30m, or a UTC time like 2027-01-01T00:00:00Z";
    if (n == BL_TIME_LEN) {
        if (bl_time_parse(s, out) != BL_OK)
            return BL_ERROR;
    } else {
        int64_t v = 0, unit;
        if (n < 2 || n > 8)
            return BL_ERROR;
        for (size_t i = 0; i + 1 < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return BL_ERROR;
            v = v * 10 + (s[i] - '0');
        }
        unit = s[n - 1] == 'd' ? 86400 : s[n - 1] == 'h' ? 3600 : s[n - 1] == 'm' ? 60 : 0;
        if (unit == 0 || v == 0)
            return BL_ERROR;
        if (v > BL_EXPIRES_MAX_S / unit) {
            *why = "a duration of at most 10 years";
            return BL_ERROR;
        }
        *out = now + v * unit;
    }
    if (*out <= now) {
        *why = "the expiry must be in the future";
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_lifetime_check(const bl_identity_t *id, const char *kind, int64_t now, char *why, size_t cap)
{
    char ts[BL_TIME_LEN + 1];
    const char *what = !strcmp(kind, "cert") ? "client certificate" : kind;
    if (id->revoked > 0) {
        snprintf(why, cap, "the %s of %s was revoked at %s%s%.80s%s; ask an operator for a new "
                 "identity", what, id->name, bl_time_format(id->revoked, ts),
                 id->revoked_reason ? " (" : "", id->revoked_reason ? id->revoked_reason : "",
                 id->revoked_reason ? ")" : "");
        return BL_DECLINED;
    }
    if (id->expires > 0 && now >= id->expires) {
        snprintf(why, cap, "the %s of %s expired at %s; ask an operator for a new one", what,
                 id->name, bl_time_format(id->expires, ts));
        return BL_DECLINED;
    }
    return BL_OK;
}
