/* uuid.h - time-ordered identifiers (RFC 9562 UUIDv7) for audit records. */
#ifndef BL_CORE_UUID_H
#define BL_CORE_UUID_H

#include <time.h>

#define BL_UUID_LEN 36

/* Writes a UUIDv7 for time `now` into out (36 chars + NUL). Returns BL_OK,
 * or BL_ERROR if the random generator failed (out is then unusable). */
int bl_uuid7(char out[BL_UUID_LEN + 1], const struct timespec *now);

#endif
