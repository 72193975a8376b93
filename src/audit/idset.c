/* idset.c - open-addressing set of 36-byte request ids. */
#include <stdlib.h>
#include "audit/idset.h"

#define BL_IDSET_TOMB '\x01'

static uint64_t bl_idset_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: ids are random already */
    for (size_t i = 0; i < BL_IDSET_ID; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ull;
    }
    return h;
}

void bl_idset_init(bl_idset_t *s)
{
    s->slot = NULL;
    s->cap = s->used = s->count = 0;
}

void bl_idset_free(bl_idset_t *s)
{
    free(s->slot);
    bl_idset_init(s);
}

/* Returns the slot holding `id`, or NULL. */
static char *bl_idset_find(const bl_idset_t *s, const char *id)
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = bl_idset_hash(id) & (s->cap - 1), n = 0; n < s->cap; i = (i + 1) & (s->cap - 1), n++) {
        char *slot = s->slot[i];
        if (slot[0] == '\0')
            return NULL;
        if (memcmp(slot, id, BL_IDSET_ID) == 0)
            return slot;
    }
    return NULL;
}

static void bl_idset_put(bl_idset_t *s, const char *id)
{
    size_t i = bl_idset_hash(id) & (s->cap - 1);
    while (s->slot[i][0] != '\0' && s->slot[i][0] != BL_IDSET_TOMB)
        i = (i + 1) & (s->cap - 1);
    if (s->slot[i][0] == '\0')
        s->used++;
    memcpy(s->slot[i], id, BL_IDSET_ID);
    s->count++;
}

/* Rebuilds with room for twice the ids, dropping tombstones. */
static int bl_idset_grow(bl_idset_t *s)
{
    size_t cap = s->cap ? s->cap : 64;
    while (cap < 4 * (s->count + 1))
        cap *= 2;
    char (*old)[BL_IDSET_ID] = s->slot;
    size_t oldcap = s->cap;
    s->slot = calloc(cap, BL_IDSET_ID);
    if (s->slot == NULL) {
        s->slot = old;
        return BL_ERROR;
    }
    s->cap = cap;
    s->used = s->count = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i][0] != '\0' && old[i][0] != BL_IDSET_TOMB)
            bl_idset_put(s, old[i]);
    free(old);
    return BL_OK;
}

int bl_idset_add(bl_idset_t *s, const char *id)
{
    if (bl_idset_find(s, id))
        return BL_OK;
    if ((s->used + 1) * 2 > s->cap && bl_idset_grow(s) != BL_OK)
        return BL_ERROR;
    bl_idset_put(s, id);
    return BL_OK;
}

int bl_idset_del(bl_idset_t *s, const char *id)
{
    char *slot = bl_idset_find(s, id);
    if (slot == NULL)
        return BL_DECLINED;
    slot[0] = BL_IDSET_TOMB;
    s->count--;
    return BL_OK;
}

void bl_idset_each(const bl_idset_t *s, void (*fn)(const char *id, void *arg), void *arg)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i][0] != '\0' && s->slot[i][0] != BL_IDSET_TOMB)
            fn(s->slot[i], arg);
}
