/*
 * idset.h - a set of request ids (36-byte UUID strings): the intents that
 * have no result yet. Open addressing with linear probing and tombstones;
 * it grows as needed, since every request in flight is in it.
 */
#ifndef BL_AUDIT_IDSET_H
#define BL_AUDIT_IDSET_H

#include "core/common.h"

#define BL_IDSET_ID 36

typedef struct {
    char (*slot)[BL_IDSET_ID];  /* "" empty, "\x01" tombstone, else an id */
    size_t cap;                 /* power of two, or 0 */
    size_t used;                /* ids + tombstones */
    size_t count;               /* ids */
} bl_idset_t;

void bl_idset_init(bl_idset_t *s);
void bl_idset_free(bl_idset_t *s);

/* Adds `id` (36 bytes). Returns BL_OK (also if present) or BL_ERROR (OOM). */
int bl_idset_add(bl_idset_t *s, const char *id);

/* Removes `id`. Returns BL_OK if it was there, BL_DECLINED if not. */
int bl_idset_del(bl_idset_t *s, const char *id);

/* Calls fn(id, arg) for every id, in no particular order. */
void bl_idset_each(const bl_idset_t *s, void (*fn)(const char *id, void *arg), void *arg);

#endif
