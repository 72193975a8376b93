/* when.c - RFC 3339 times and relative durations, in microseconds. */
#include <time.h>
#include "audit/when.h"

/* Reads exactly n digits at *p. Returns BL_OK and advances, or BL_ERROR. */
static int bl_when_digits(const char **p, int n, int *out)
{
    int v = bl_str_digits(*p, n);
    if (v < 0)
        return BL_ERROR;
    *p += n;
    *out = v;
    return BL_OK;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil; no time zone, no libc state). */
static int64_t bl_when_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int bl_when_mdays(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : days[m - 1];
}

/* Parses YYYY-MM-DD at *p into days since the epoch. BL_OK or BL_ERROR. */
static int bl_when_date(const char **p, int64_t *days)
{
    int y, mo, d;
    if (bl_when_digits(p, 4, &y) || *(*p)++ != '-' || bl_when_digits(p, 2, &mo) || *(*p)++ != '-' ||
        bl_when_digits(p, 2, &d))
        return BL_ERROR;
    if (mo < 1 || mo > 12 || d < 1 || d > bl_when_mdays(y, mo))
        return BL_ERROR;
    *days = bl_when_days(y, mo, d);
    return BL_OK;
}

/* Parses ".fraction" (1..9 digits) at *p, if there, into microseconds. */
static int bl_when_frac(const char **p, int64_t *us)
{
    *us = 0;
    if (**p != '.')
        return BL_OK;
    (*p)++;
    int n = 0;
    int64_t scale = 100000;
    for (; (unsigned)((unsigned char)**p - '0') <= 9; (*p)++, n++) {
        if (n >= 9)
            return BL_ERROR;
        *us += ((unsigned char)**p - '0') * scale;
        scale /= 10;
    }
    return n > 0 ? BL_OK : BL_ERROR;
}

/* Parses Z or +hh:mm / -hh:mm at *p into seconds east of UTC. */
static int bl_when_zone(const char **p, int64_t *off)
{
    int h, m;
    char c = **p;
    *off = 0;
    if (c == 'Z' || c == 'z') {
        (*p)++;
        return BL_OK;
    }
    if (c != '+' && c != '-')
        return BL_ERROR;
    (*p)++;
    if (bl_when_digits(p, 2, &h) || *(*p)++ != ':' || bl_when_digits(p, 2, &m) || h > 23 || m > 59)
        return BL_ERROR;
    *off = (c == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return BL_OK;
}

int bl_when_rfc3339(const char *s, int64_t *us)
{
    const char *p = s;
    int64_t days, frac, off;
    int h, mi, sec;
    if (bl_when_date(&p, &days) != BL_OK || (*p != 'T' && *p != 't' && *p != ' '))
        return BL_ERROR;
    p++;
    if (bl_when_digits(&p, 2, &h) || *p++ != ':' || bl_when_digits(&p, 2, &mi) || *p++ != ':' ||
        bl_when_digits(&p, 2, &sec) || h > 23 || mi > 59 || sec > 60) /* 60: a leap second */
        return BL_ERROR;
    if (bl_when_frac(&p, &frac) != BL_OK || bl_when_zone(&p, &off) != BL_OK || *p != '\0')
        return BL_ERROR;
    *us = ((days * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000000 + frac;
    return BL_OK;
}

/* Parses <digits><unit>... into *us (0 allowed). BL_OK or BL_ERROR. */
static int bl_when_span(const char *s, int64_t *us)
{
    int64_t total = 0;
    const char *p = s;
    if (*p == '\0')
        return BL_ERROR;
    while (*p) {
        int64_t n = 0;
        int digits = 0;
        for (; (unsigned)((unsigned char)*p - '0') <= 9; p++, digits++) {
            if (digits >= 12)
                return BL_ERROR;
            n = n * 10 + (*p - '0');
        }
        int64_t unit;
        switch (*p++) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return BL_ERROR;
        }
        if (digits == 0 || n > BL_WHEN_MAX_SPAN_US / 1000000 / unit)
            return BL_ERROR;
        total += n * unit * 1000000;
        if (total > BL_WHEN_MAX_SPAN_US)
            return BL_ERROR;
    }
    *us = total;
    return BL_OK;
}

int bl_when_duration(const char *s, int64_t *us)
{
    int64_t d;
    if (bl_when_span(s, &d) != BL_OK || d == 0)
        return BL_ERROR;
    *us = d;
    return BL_OK;
}

int bl_when_margin(const char *s, int64_t *us)
{
    if (!strcmp(s, "0")) {
        *us = 0;
        return BL_OK;
    }
    return bl_when_span(s, us);
}

int bl_when_parse(const char *s, int64_t now_us, int64_t *us)
{
    int64_t d;
    const char *p = s;
    if (!strcmp(s, "now")) {
        *us = now_us;
        return BL_OK;
    }
    if (bl_when_span(s, &d) == BL_OK) { /* "0s" ago is now */
        *us = now_us - d;
        return BL_OK;
    }
    if (strlen(s) == 10 && bl_when_date(&p, &d) == BL_OK) {
        *us = d * 86400 * 1000000;
        return BL_OK;
    }
    return bl_when_rfc3339(s, us);
}

int64_t bl_when_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
