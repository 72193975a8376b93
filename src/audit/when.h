/*
 * when.h - points in time for reading the audit log back: the ledger's
 * RFC 3339 timestamps, and what a person types after --since / --until
 * (an RFC 3339 time, a date, or a duration before now such as 15m, 2h, 7d).
 * All times are microseconds since the Unix epoch, UTC.
 */
#ifndef BL_AUDIT_WHEN_H
#define BL_AUDIT_WHEN_H

#include <stdint.h>
#include "core/common.h"

#define BL_WHEN_MAX_SPAN_US (100LL * 366 * 86400 * 1000000) /* longest duration accepted: ~100 years */

/*
 * Parses an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS, an optional fraction
 * (up to 9 digits; kept to the microsecond), then Z or +hh:mm / -hh:mm
 * ('t', 'z' and a space for 'T' are accepted, as RFC 3339 allows).
 * The whole string must match. Returns BL_OK with *us set, or BL_ERROR.
 */
int bl_when_rfc3339(const char *s, int64_t *us);

/*
 * Parses a duration: one or more <digits><unit> with unit s, m, h, d or w
 * ("90s", "15m", "1h30m", "7d"), at most BL_WHEN_MAX_SPAN_US in all.
 * Returns BL_OK with *us set (> 0), or BL_ERROR.
 */
int bl_when_duration(const char *s, int64_t *us);

/*
 * Parses a margin such as `audit join --grace`: a duration as above, or
 * none at all ("0", "0s"). Returns BL_OK with *us set (>= 0), or BL_ERROR.
 */
int bl_when_margin(const char *s, int64_t *us);

/*
 * Parses what --since/--until take (audit query and audit join), relative
 * to `now_us`: "now", a duration (that long before now; "0s" is now), an
 * RFC 3339 date-time, or a date YYYY-MM-DD (its midnight UTC). Returns
 * BL_OK with *us set, or BL_ERROR.
 */
int bl_when_parse(const char *s, int64_t now_us, int64_t *us);

/* Returns the current time (CLOCK_REALTIME) in microseconds. */
int64_t bl_when_now(void);

#endif
