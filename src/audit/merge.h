/*
 * merge.h - one request as people read it: the ledger's entries for one id
 * (intent, then result or aborted; docs/AUDIT-FORMAT.md section 4) folded
 * into one JSON object with "kind":"request". Used by `audit tail` and by
 * the query index, so both show the same record.
 *
 * The merged record keeps the intent's ts (when the request came), takes
 * every field of the result over the intent's (result, status, duration,
 * exec...), and has "result":"aborted" for an aborted request. A request
 * without its result yet has no "result" member (shown as pending).
 * Notices stay as they are ("kind":"notice").
 */
#ifndef BL_AUDIT_MERGE_H
#define BL_AUDIT_MERGE_H

#include <jansson.h>
#include "core/common.h"

/* Returns a new record (owned by the caller) started from ledger entry `e`
 * (borrowed, not changed), or NULL when `e` has no string "kind" or memory
 * runs out. */
json_t *bl_merge_start(const json_t *e);

/* Folds the later entry `e` (borrowed) of the same id into `rec`.
 * Returns BL_OK, or BL_DECLINED when `e` has no string "kind". */
int bl_merge_add(json_t *rec, json_t *e);

#endif
