/*
 * join_int.h - what join.c (pairing, the ledger side, output) and
 * join_input.c (the cluster log's shapes) share. Not a public interface.
 */
#ifndef BL_AUDIT_JOIN_INT_H
#define BL_AUDIT_JOIN_INT_H

#include "audit/idmap.h"
#include "audit/join.h"

struct bl_join_s {
    bl_join_opts_t o;
    bl_join_event_t *ev;
    size_t nev, evcap;
    bl_join_rec_t *rec;
    size_t nrec, reccap;
    bl_idmap_t evmap, recmap;          /* auditID / request id -> index (idmap.h) */
    bl_join_row_t *rows;
    size_t nrows;
    bl_join_summary_t sum;
    const char *shared[BL_JOIN_MAX_SHARED]; /* borrowed: given names, or event user strings */
    size_t nshared;
    int64_t ev_min, ev_max;                 /* over the events held; BL_JOIN_NO_TIME if none */
    size_t bad_items;                       /* unusable objects on the current line */
    char bad_why[160];                      /* why the last one was unusable */
};

/* Returns a copy of s[0..n) cut at BL_JOIN_MAX_STR bytes (owned by the
 * caller), NULL for s NULL, or NULL on OOM (then *oom is set). */
char *bl_join_strdup(const char *s, size_t n, int *oom);

/* Returns a copy of the JSON string `v` (see bl_join_strdup), NULL if it is
 * not a string. */
char *bl_join_jstr(json_t *v, int *oom);

/* Records a bad line: counts it and keeps the first reason. */
void bl_join_bad(bl_join_t *j, size_t lineno, const char *name, const char *why);

#endif
