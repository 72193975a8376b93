/* body.c - bodies for audit entries: bounded, redacted, canonical. */
#include <jansson.h>
#include "audit/body.h"
#include "audit/jcs.h"

#define BL_BODY_MAX_DEPTH 64

/* Replaces the values of Secret data in `v`, wherever Secrets appear. */
static void bl_body_redact(json_t *v, int depth)
{
    if (depth > BL_BODY_MAX_DEPTH)
        return;
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            bl_body_redact(x, depth + 1);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *kind = json_string_value(json_object_get(v, "kind"));
    if (kind && !strcmp(kind, "Secret")) {
        static const char *const fields[] = { "data", "stringData" };
        for (size_t f = 0; f < 2; f++) {
            json_t *d = json_object_get(v, fields[f]);
            const char *k;
            json_t *x;
            if (json_is_object(d))
                json_object_foreach(d, k, x)
                    json_object_set_new(d, k, json_string("REDACTED"));
        }
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
        bl_body_redact(x, depth + 1);
}

static int bl_body_marker(bl_buf_t *out, const char *why, uint64_t bytes)
{
    int rc = bl_buf_puts(out, "{\"bytes\":");
    rc |= bl_buf_putu64(out, bytes);
    rc |= bl_buf_puts(out, ",\"omitted\":");
    rc |= bl_buf_json_str(out, why, strlen(why));
    rc |= bl_buf_puts(out, "}");
    return rc ? BL_ERROR : BL_OK;
}

int bl_body_json(bl_buf_t *out, const char *p, size_t n, int complete, uint64_t total, const char *resource)
{
    if (resource && (!strcmp(resource, "secrets") || !strcmp(resource, "configmaps")))
        return bl_body_marker(out, !strcmp(resource, "secrets") ? "secret" : "configmap", total);
    if (!complete)
        return bl_body_marker(out, "truncated", total);
    json_error_t e;
    json_t *v = n ? json_loadb(p, n, JSON_REJECT_DUPLICATES, &e) : NULL;
    if (!json_is_object(v) && !json_is_array(v)) {
        json_decref(v);
        return bl_body_marker(out, "not JSON", total);
    }
    bl_body_redact(v, 0);
    size_t mark = out->len;
    int rc = bl_jcs_dump(v, out);
    json_decref(v);
    if (rc != BL_OK) { /* reals or too large: say so rather than drop the entry */
        out->len = mark;
        return bl_body_marker(out, "not representable", total);
    }
    return BL_OK;
}
