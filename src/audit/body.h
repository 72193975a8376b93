/*
 * body.h - request and response bodies in audit entries, at the
 * Request/RequestResponse levels (audit.level, as in the Kubernetes audit
 * policy). Secret and ConfigMap bodies are never kept; Secret data found
 * anywhere else (a List, a raw path) has its values redacted.
 */
#ifndef BL_AUDIT_BODY_H
#define BL_AUDIT_BODY_H

#include "core/buf.h"

/*
 * Appends the audit form of a body to `out` as one canonical JSON value:
 * the body itself when it is a complete JSON object or array (Secret
 * `data`/`stringData` values replaced by "REDACTED"), or a small object
 * saying why not: {"omitted":"secret"}, {"omitted":"not JSON","bytes":N},
 * {"omitted":"truncated","bytes":N}. `resource` is the request's resource
 * ("secrets" and "configmaps" are never kept). Returns BL_OK or BL_ERROR.
 */
int bl_body_json(bl_buf_t *out, const char *p, size_t n, int complete, uint64_t total, const char *resource);

#endif
