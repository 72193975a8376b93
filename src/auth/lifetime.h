/*
 * lifetime.h - when an identity's credentials stop working: expiry
 * (`byline identity add --expires`), revocation (`byline identity revoke`),
 * and the times the registry and the last-used state file write.
 *
 * Times are whole seconds since the epoch (int64_t), written as RFC 3339
 * UTC without fractions: "2027-01-01T00:00:00Z". No allocation; thread-safe.
 */
#ifndef BL_AUTH_LIFETIME_H
#define BL_AUTH_LIFETIME_H

#include <stdint.h>
#include "config/config.h"

#define BL_TIME_LEN 20 /* strlen("2027-01-01T00:00:00Z") */

/* Parses exactly "YYYY-MM-DDTHH:MM:SSZ" (a real calendar time, year
 * 1970..9999) into *out. Returns BL_OK or BL_ERROR. */
int bl_time_parse(const char *s, int64_t *out);

/* Writes t as "YYYY-MM-DDTHH:MM:SSZ" into out (BL_TIME_LEN + 1 bytes).
 * Returns out. */
char *bl_time_format(int64_t t, char out[BL_TIME_LEN + 1]);

/*
 * Parses an --expires value: a duration from `now` ("90d", "12h", "30m";
 * a positive whole number of at most 10 years and a unit d, h or m) or an
 * absolute RFC 3339 UTC time as for bl_time_parse(). Sets *out to the
 * expiry. Returns BL_OK; BL_ERROR with *why (static) when malformed or
 * not after `now`.
 */
int bl_expires_parse(const char *s, int64_t now, int64_t *out, const char **why);

/*
 * Decides whether identity `id` may authenticate at `now` with the
 * credential `kind` ("token", "cert"). Returns BL_OK, or BL_DECLINED
 * with a message for the 401 Status and the audit reason in why[0..cap)
 * naming the identity and saying what to do; it never quotes the
 * credential. Revocation wins over expiry.
 */
int bl_lifetime_check(const bl_identity_t *id, const char *kind, int64_t now, char *why, size_t cap);

#endif
