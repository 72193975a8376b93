/*
 * ocsf.h - a byline request record (merge.h) as an OCSF event for SIEMs:
 * class API Activity (class_uid 6003, category Application Activity 6) of
 * OCSF schema BL_OCSF_VERSION. docs/AUDIT-QUERY.md lists every attribute
 * and where it comes from.
 */
#ifndef BL_AUDIT_OCSF_H
#define BL_AUDIT_OCSF_H

#include <jansson.h>
#include "core/buf.h"

#define BL_OCSF_VERSION      "1.3.0"
#define BL_OCSF_CATEGORY_UID 6        /* Application Activity */
#define BL_OCSF_CLASS_UID    6003     /* API Activity */

/* API Activity activity_id values. */
enum {
    BL_OCSF_UNKNOWN = 0,
    BL_OCSF_CREATE = 1,
    BL_OCSF_READ = 2,
    BL_OCSF_UPDATE = 3,
    BL_OCSF_DELETE = 4,
    BL_OCSF_OTHER = 99,
};

/* Returns the activity_id of a Kubernetes verb: create 1; get, list,
 * watch 2; update, patch 3; delete, deletecollection 4; any other verb
 * (a non-resource request's method, proxy...) 99; NULL or "" 0. */
int bl_ocsf_activity(const char *verb);

/* Returns the activity's caption ("Create", ..., "Other", "Unknown"). */
const char *bl_ocsf_activity_name(int activity_id);

/* Returns a new OCSF API Activity event (owned by the caller) for the
 * merged request record `rec` (borrowed), or NULL when `rec` is not a
 * request (a gateway notice) or memory runs out. */
json_t *bl_ocsf_event(const json_t *rec);

/* Appends the OCSF event of `rec` to `out` as canonical JSON (RFC 8785,
 * no newline). Returns BL_OK, BL_DECLINED when `rec` is not a request,
 * BL_ERROR when `out` is full. */
int bl_ocsf_render(const json_t *rec, bl_buf_t *out);

#endif
