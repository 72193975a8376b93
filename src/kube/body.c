/*
 * body.c - what the start of a request body adds to a bl_kreq_t: the name
 * and kind of an object being created, the replica count of a scale, the
 * patch type, and whether a patch is nothing but `kubectl rollout restart`.
 *
 * Bodies come from the client and may be cut short (the proxy peeks at a
 * prefix). A JSON prefix never parses; protobuf has no end marker, so it is
 * read only when the caller says it holds the whole body (a crafted body
 * could otherwise repeat a field after the peek and override the name byline
 * saw). Nothing is taken from a document that does not parse completely,
 * and findings are collected aside and copied into the request only once
 * the whole document has been read, so a half-read body never leaves half a
 * conclusion behind.
 */
#include <jansson.h>
#include "kube/protobuf.h"
#include "kube/reqinfo.h"

/* What a body said, before it is trusted into the request. */
typedef struct {
    char name[254];
    char namespace_[64];
    char kind[64];
    long replicas;       /* -1 if not found */
    int restart;         /* the rollout-restart patch and nothing else */
    int dry_run_all;     /* DeleteOptions.dryRun holds "All" */
    int truncated;       /* a string above did not fit */
} bl_kbody_t;

/* Copies n bytes into dst[cap] with a NUL; notes truncation. Returns
 * BL_ERROR if the bytes hold a NUL (no Kubernetes name or kind does). */
static int bl_body_put(bl_kbody_t *b, char *dst, size_t cap, const char *src, size_t n)
{
    if (memchr(src, '\0', n) != NULL)
        return BL_ERROR;
    if (n > cap - 1) {
        n = cap - 1;
        b->truncated = 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return BL_OK;
}

static int bl_streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Returns a replica count from a JSON value, or -1 if it is not an int32 >= 0
 * (the server would refuse anything else). */
static long bl_json_replicas(const json_t *v)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t n = json_integer_value(v);
    return n >= 0 && n <= INT32_MAX ? (long)n : -1;
}

/* Returns o[key] if o is an object holding exactly that one member, else NULL. */
static json_t *bl_json_only(json_t *o, const char *key)
{
    if (!json_is_object(o) || json_object_size(o) != 1)
        return NULL;
    return json_object_get(o, key);
}

/* {"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"..."}}}}}
 * and nothing more: only then is "rollout restart" an honest description. */
static int bl_json_is_restart(json_t *root)
{
    json_t *v = bl_json_only(root, "spec");
    v = bl_json_only(v, "template");
    v = bl_json_only(v, "metadata");
    v = bl_json_only(v, "annotations");
    return json_is_string(bl_json_only(v, "kubectl.kubernetes.io/restartedAt"));
}

/* A JSON patch (RFC 6902) that sets /spec/replicas: the last such op wins. On
 * the main resource, only a patch made of that single op counts as a scale. */
static long bl_json_patch_replicas(const bl_kreq_t *r, json_t *ops)
{
    long replicas = -1;
    size_t i;
    json_t *op;
    if (r->subresource[0] == '\0' && json_array_size(ops) != 1)
        return -1;
    json_array_foreach(ops, i, op) {
        const char *verb = json_string_value(json_object_get(op, "op"));
        const char *path = json_string_value(json_object_get(op, "path"));
        if (verb && path && (bl_streq(verb, "replace") || bl_streq(verb, "add")) &&
            bl_streq(path, "/spec/replicas"))
            replicas = bl_json_replicas(json_object_get(op, "value"));
    }
    return replicas;
}

/* The members of a JSON object body byline cares about. */
static int bl_body_json_object(const bl_kreq_t *r, json_t *root, bl_kbody_t *b)
{
    json_t *meta = json_object_get(root, "metadata");
    const char *s;
    if ((s = json_string_value(json_object_get(root, "kind"))) != NULL &&
        bl_body_put(b, b->kind, sizeof(b->kind), s, strlen(s)) != BL_OK)
        return BL_ERROR;
    if ((s = json_string_value(json_object_get(meta, "name"))) != NULL &&
        bl_body_put(b, b->name, sizeof(b->name), s, strlen(s)) != BL_OK)
        return BL_ERROR;
    if ((s = json_string_value(json_object_get(meta, "namespace"))) != NULL &&
        bl_body_put(b, b->namespace_, sizeof(b->namespace_), s, strlen(s)) != BL_OK)
        return BL_ERROR;
    if (bl_streq(r->subresource, "scale"))
        b->replicas = bl_json_replicas(json_object_get(json_object_get(root, "spec"), "replicas"));
    else if (r->subresource[0] == '\0' && bl_streq(r->verb, "patch") &&
             (bl_streq(r->patch_type, "merge") || bl_streq(r->patch_type, "strategic")))
        b->replicas = bl_json_replicas(bl_json_only(bl_json_only(root, "spec"), "replicas"));
    if (r->subresource[0] == '\0' && bl_streq(r->verb, "patch"))
        b->restart = bl_json_is_restart(root);
    if (bl_streq(r->verb, "delete") || bl_streq(r->verb, "deletecollection")) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(root, "dryRun"), i, v)
            if (json_is_string(v) && bl_streq(json_string_value(v), "All"))
                b->dry_run_all = 1;
    }
    return BL_OK;
}

/* Parses a complete JSON document. Returns BL_OK, or BL_ERROR if it does not
 * parse (a prefix of a longer body never does). */
static int bl_body_json(const bl_kreq_t *r, const char *body, size_t len, bl_kbody_t *b)
{
    json_error_t e;
    /* No JSON_ALLOW_NUL: a "\u0000" would cut a name short, so refuse it. */
    json_t *root = json_loadb(body, len, 0, &e);
    int rc = BL_ERROR;
    if (root == NULL)
        return BL_ERROR;
    if (json_is_object(root))
        rc = bl_body_json_object(r, root, b);
    else if (json_is_array(root) && bl_streq(r->patch_type, "json") &&
             (bl_streq(r->subresource, "scale") || r->subresource[0] == '\0')) {
        b->replicas = bl_json_patch_replicas(r, root);
        rc = BL_OK;
    }
    json_decref(root);
    return rc;
}

/* Protobuf ---------------------------------------------------------------- */

/* Copies a LEN field's payload; refuses any other wire type. */
static int bl_pb_str(bl_kbody_t *b, const bl_pb_field_t *f, char *dst, size_t cap)
{
    if (f->wire != BL_PB_LEN)
        return BL_ERROR;
    return bl_body_put(b, dst, cap, f->bytes.p, f->bytes.len);
}

/* Walks a message, calling fn for every field. Returns BL_OK or BL_ERROR. */
static int bl_pb_walk(bl_str_t msg, int (*fn)(const bl_pb_field_t *, void *), void *arg)
{
    bl_pb_t pb;
    bl_pb_field_t f;
    int rc;
    bl_pb_init(&pb, msg.p, msg.len);
    while ((rc = bl_pb_next(&pb, &f)) == BL_OK)
        if (fn(&f, arg) != BL_OK)
            return BL_ERROR;
    return rc == BL_DECLINED ? BL_OK : BL_ERROR;
}

/* ObjectMeta: 1 name, 3 namespace. */
static int bl_pb_objectmeta(const bl_pb_field_t *f, void *arg)
{
    bl_kbody_t *b = arg;
    if (f->field == 1)
        return bl_pb_str(b, f, b->name, sizeof(b->name));
    if (f->field == 3)
        return bl_pb_str(b, f, b->namespace_, sizeof(b->namespace_));
    return BL_OK;
}

/* autoscaling/v1 ScaleSpec: 1 replicas (int32). */
static int bl_pb_scalespec(const bl_pb_field_t *f, void *arg)
{
    bl_kbody_t *b = arg;
    if (f->field != 1)
        return BL_OK;
    if (f->wire != BL_PB_VARINT)
        return BL_ERROR;
    int32_t n = (int32_t)(uint32_t)f->num;   /* int32 travels sign-extended */
    b->replicas = n >= 0 ? (long)n : -1;
    return BL_OK;
}

typedef struct {
    bl_kbody_t *b;
    int scale;   /* the object is a Scale: field 2 is its ScaleSpec */
} bl_pb_obj_t;

/* Any object: 1 metadata (ObjectMeta); for Scale, 2 spec. Repeated message
 * fields merge in protobuf, so every occurrence is read in order. */
static int bl_pb_object(const bl_pb_field_t *f, void *arg)
{
    bl_pb_obj_t *o = arg;
    if (f->field == 1 || (f->field == 2 && o->scale)) {
        if (f->wire != BL_PB_LEN)
            return BL_ERROR;
        return bl_pb_walk(f->bytes, f->field == 1 ? bl_pb_objectmeta : bl_pb_scalespec, o->b);
    }
    return BL_OK;
}

/* TypeMeta: 1 apiVersion, 2 kind. */
static int bl_pb_typemeta(const bl_pb_field_t *f, void *arg)
{
    bl_kbody_t *b = arg;
    if (f->field == 2)
        return bl_pb_str(b, f, b->kind, sizeof(b->kind));
    return BL_OK;
}

typedef struct {
    bl_kbody_t *b;
    bl_str_t raw;        /* 2: the encoded object (bytes: last one wins) */
    size_t encoding;     /* 3: length of contentEncoding; the raw is plain only if 0 */
} bl_pb_unknown_t;

/* runtime.Unknown: 1 TypeMeta, 2 raw, 3 contentEncoding, 4 contentType. */
static int bl_pb_unknown(const bl_pb_field_t *f, void *arg)
{
    bl_pb_unknown_t *u = arg;
    if (f->field < 1 || f->field > 4)
        return BL_OK;
    if (f->wire != BL_PB_LEN)
        return BL_ERROR;
    if (f->field == 1)
        return bl_pb_walk(f->bytes, bl_pb_typemeta, u->b);
    if (f->field == 2)
        u->raw = f->bytes;
    else if (f->field == 3)
        u->encoding = f->bytes.len;
    return BL_OK;
}

/* Parses "k8s\0" + runtime.Unknown. Returns BL_OK or BL_ERROR. */
static int bl_body_protobuf(const bl_kreq_t *r, const char *body, size_t len, bl_kbody_t *b)
{
    bl_pb_unknown_t u = { b, BL_STR_NULL, 0 };
    if (len < 4 || memcmp(body, "k8s\0", 4) != 0)
        return BL_ERROR;
    if (bl_pb_walk((bl_str_t){ body + 4, len - 4 }, bl_pb_unknown, &u) != BL_OK)
        return BL_ERROR;
    if (u.encoding > 0 || u.raw.p == NULL)
        return BL_OK;   /* compressed or absent: only the kind is known */
    bl_pb_obj_t o = { b, bl_streq(r->subresource, "scale") };
    return bl_pb_walk(u.raw, bl_pb_object, &o);
}

/* Copying what was found --------------------------------------------------- */

/* The media type of a Content-Type value, without parameters or blanks. */
static bl_str_t bl_media_type(bl_str_t ct)
{
    const char *semi = ct.p ? memchr(ct.p, ';', ct.len) : NULL;
    if (semi != NULL)
        ct.len = (size_t)(semi - ct.p);
    return bl_str_trim(ct);
}

/* PATCH bodies are typed by Content-Type alone. */
static void bl_body_patch_type(bl_kreq_t *r, bl_str_t media)
{
    static const char *const map[][2] = {
        { "application/json-patch+json", "json" },
        { "application/merge-patch+json", "merge" },
        { "application/strategic-merge-patch+json", "strategic" },
        { "application/apply-patch+yaml", "apply" },
        { "application/apply-patch+cbor", "apply" },
    };
    r->patch_type[0] = '\0';
    if (!bl_streq(r->verb, "patch"))
        return;
    for (size_t i = 0; i < BL_ARRAY_LEN(map); i++)
        if (bl_str_eq_nocase(media, map[i][0])) {
            memcpy(r->patch_type, map[i][1], strlen(map[i][1]) + 1);
            return;
        }
}

/* Moves trusted findings into the request. The body may only fill in a name
 * or namespace the path did not give (creates), never override one. */
static void bl_body_commit(bl_kreq_t *r, const bl_kbody_t *b)
{
    int create = bl_streq(r->verb, "create") && r->subresource[0] == '\0';
    if (b->kind[0] != '\0')
        memcpy(r->body_kind, b->kind, sizeof(r->body_kind));
    if (create && r->name[0] == '\0' && b->name[0] != '\0')
        memcpy(r->name, b->name, sizeof(r->name));
    if (create && r->namespace_[0] == '\0' && b->namespace_[0] != '\0' &&
        !bl_streq(r->resource, "namespaces"))
        memcpy(r->namespace_, b->namespace_, sizeof(r->namespace_));
    if (b->replicas >= 0)
        r->replicas = b->replicas;
    if (b->restart)
        r->body_restart = 1;
    if (b->dry_run_all)
        memcpy(r->dry_run, "All", 4);
    if (b->truncated)
        r->truncated = 1;
}

int bl_kreq_body_total(bl_kreq_t *r, bl_str_t content_type, const char *body, size_t len,
                       uint64_t total)
{
    bl_kbody_t b;
    bl_str_t media = bl_media_type(content_type);
    int rc;
    bl_body_patch_type(r, media);
    if (!r->is_resource || body == NULL || len == 0)
        return BL_OK;
    memset(&b, 0, sizeof(b));
    b.replicas = -1;
    if (bl_str_eq_nocase(media, "application/vnd.kubernetes.protobuf"))
        rc = (uint64_t)len == total ? bl_body_protobuf(r, body, len, &b) : BL_ERROR;
    else
        rc = bl_body_json(r, body, len, &b);
    if (rc == BL_OK)
        bl_body_commit(r, &b);
    return BL_OK;
}

int bl_kreq_body(bl_kreq_t *r, bl_str_t content_type, const char *body, size_t len)
{
    return bl_kreq_body_total(r, content_type, body, len, UINT64_MAX);
}
