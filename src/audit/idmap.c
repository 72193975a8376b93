/* idmap.c - string -> index map, open addressing with linear probing. */
#include <stdlib.h>
#include "audit/idmap.h"

static uint64_t bl_idmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void bl_idmap_init(bl_idmap_t *m)
{
    m->slot = NULL;
    m->cap = m->n = 0;
}

void bl_idmap_free(bl_idmap_t *m)
{
    free(m->slot);
    bl_idmap_init(m);
}

uint32_t bl_idmap_get(const bl_idmap_t *m, const char *key)
{
    if (m->cap == 0)
        return BL_IDMAP_NONE;
    for (size_t i = bl_idmap_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->slot[i].key == NULL)
            return BL_IDMAP_NONE;
        if (!strcmp(m->slot[i].key, key))
            return m->slot[i].idx;
    }
}

static void bl_idmap_place(bl_idmap_t *m, const char *key, uint32_t idx)
{
    size_t i = bl_idmap_hash(key) & (m->cap - 1);
    while (m->slot[i].key != NULL)
        i = (i + 1) & (m->cap - 1);
    m->slot[i].key = key;
    m->slot[i].idx = idx;
    m->n++;
}

int bl_idmap_put(bl_idmap_t *m, const char *key, uint32_t idx)
{
    if ((m->n + 1) * 2 > m->cap) { /* at most half full: probes stay short */
        size_t cap = m->cap ? m->cap * 2 : 1024, old = m->cap;
        bl_idmap_slot_t *prev = m->slot;
        if ((m->slot = calloc(cap, sizeof(*m->slot))) == NULL) {
            m->slot = prev;
            return BL_ERROR;
        }
        m->cap = cap;
        m->n = 0;
        for (size_t i = 0; i < old; i++)
            if (prev[i].key)
                bl_idmap_place(m, prev[i].key, prev[i].idx);
        free(prev);
    }
    bl_idmap_place(m, key, idx);
    return BL_OK;
}
