/*
 * jcs.h - RFC 8785 JSON Canonicalization Scheme for parsed values: what a
 * ledger line's bytes must equal (docs/AUDIT-FORMAT.md section 2).
 */
#ifndef BL_AUDIT_JCS_H
#define BL_AUDIT_JCS_H

#include <jansson.h>
#include "core/buf.h"

/* Appends the canonical serialisation of `v` to `out`: members sorted by
 * key (byte order equals UTF-16 order for the ASCII keys byline writes,
 * and the function sorts by UTF-16 code units in general), minimal string
 * escapes, integers only. Returns BL_OK, or BL_ERROR for a real number or
 * when `out` is full. */
int bl_jcs_dump(const json_t *v, bl_buf_t *out);

/* Returns 1 if line[0..n) parses (strictly: no duplicate keys) and is
 * byte-for-byte its own canonical form, else 0. */
int bl_jcs_is_canonical(const char *line, size_t n);

#endif
