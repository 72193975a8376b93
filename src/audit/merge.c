/* merge.c - an intent and its result (or aborted entry) as one record. */
#include "audit/merge.h"

/* Marks what kind of record `rec` is, given the kind of its latest entry. */
static void bl_merge_mark(json_t *rec, const char *kind)
{
    if (!strcmp(kind, "aborted"))
        json_object_set_new(rec, "result", json_string("aborted"));
    if (strcmp(kind, "notice"))
        json_object_set_new(rec, "kind", json_string("request"));
}

json_t *bl_merge_start(const json_t *e)
{
    const char *kind = json_string_value(json_object_get(e, "kind"));
    json_t *rec = kind ? json_deep_copy(e) : NULL;
    if (rec)
        bl_merge_mark(rec, kind);
    return rec;
}

int bl_merge_add(json_t *rec, json_t *e)
{
    const char *kind = json_string_value(json_object_get(e, "kind"));
    if (kind == NULL)
        return BL_DECLINED;
    json_t *ts = json_incref(json_object_get(rec, "ts")); /* when the request came */
    json_object_update_missing(rec, e);
    if (strcmp(kind, "intent"))
        json_object_update(rec, e); /* the outcome wins over what the intent said */
    if (ts)
        json_object_set(rec, "ts", ts);
    json_decref(ts);
    bl_merge_mark(rec, kind);
    return BL_OK;
}
