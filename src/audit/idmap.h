/*
 * idmap.h - a string -> index map with open addressing: request ids (or
 * auditIDs) to the rows that hold them, for the ledger's readers (audit
 * join, audit tail). Keys are borrowed: each must stay put, unchanged, for
 * as long as the map holds it (a separate allocation per item, not a
 * member of an array that grows).
 */
#ifndef BL_AUDIT_IDMAP_H
#define BL_AUDIT_IDMAP_H

#include <stdint.h>
#include "core/common.h"

#define BL_IDMAP_NONE UINT32_MAX /* "no such key" */

typedef struct {
    const char *key;
    uint32_t idx;
} bl_idmap_slot_t;

typedef struct {
    bl_idmap_slot_t *slot; /* key NULL: empty */
    size_t cap, n;         /* cap is a power of two, or 0 */
} bl_idmap_t;

/* An empty map needs no allocation: bl_idmap_t m = { 0 } works too. */
void bl_idmap_init(bl_idmap_t *m);

/* Frees the slots (not the keys, which are borrowed). */
void bl_idmap_free(bl_idmap_t *m);

/* Returns the index stored for key (the first stored, if it was stored
 * more than once), or BL_IDMAP_NONE. */
uint32_t bl_idmap_get(const bl_idmap_t *m, const char *key);

/* Stores key -> idx (key borrowed) without looking for an earlier one.
 * Returns BL_OK or BL_ERROR (out of memory; the map is unchanged). */
int bl_idmap_put(bl_idmap_t *m, const char *key, uint32_t idx);

#endif
