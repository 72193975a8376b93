/*
 * reqinfo.h - what a Kubernetes API request means, derived the way
 * kube-apiserver's RequestInfoResolver does (k8s.io/apiserver
 * pkg/endpoints/request/requestinfo.go), plus the details byline needs to
 * render it as the kubectl command a person would have typed.
 *
 * A bl_kreq_t is a plain value with bounded inline storage: no heap, no
 * pointers into the caller's buffers, so it can outlive the request bytes.
 */
#ifndef BL_KUBE_REQINFO_H
#define BL_KUBE_REQINFO_H

#include "core/buf.h"
#include "core/common.h"

#define BL_KREQ_MAX_ARGV    64    /* exec/attach command words kept */
#define BL_KREQ_ARGV_BYTES  4096  /* total bytes for those words */
#define BL_KREQ_MAX_PORTS   16    /* port-forward ports kept */

typedef struct {
    int is_resource;          /* 1 for /api/... and /apis/<g>/<v>/... resource paths */
    int is_discovery;         /* 1 for /version, /api, /apis, /openapi/..., group/version discovery */
    char verb[20];            /* get list watch create update patch delete deletecollection,
                                 or for non-resource paths the lower-cased HTTP method */
    char api_group[64];       /* "" for the core group */
    char api_version[32];
    char namespace_[64];
    char resource[64];        /* plural, e.g. "deployments" */
    char subresource[32];     /* e.g. "scale", "exec", "log", "portforward" */
    char name[254];
    char path[512];           /* the path without the query, as sent (still
                                 percent-encoded), truncated if longer */
    char method[16];          /* the HTTP method as sent, truncated if longer */
    int truncated;            /* 1 if anything above did not fit */

    /* details from the query string */
    char container[64];
    int stdin_, stdout_, stderr_, tty;   /* exec/attach flags */
    size_t argc;                         /* exec command words */
    char argv_buf[BL_KREQ_ARGV_BYTES];   /* words, NUL-separated */
    size_t argv_off[BL_KREQ_MAX_ARGV];   /* offsets into argv_buf */
    int argv_truncated;
    size_t nports;
    int ports[BL_KREQ_MAX_PORTS];        /* port-forward ports */
    int follow, previous;                /* logs */
    long tail_lines;                     /* logs; -1 if absent */
    char label_selector[256];
    char field_selector[256];
    char dry_run[8];                     /* "All" or "" */
    char field_manager[64];
    int force;                           /* force=true (server-side apply --force-conflicts) */

    /* details from the body, when bl_kreq_body() found them */
    long replicas;                       /* scale; -1 if unknown */
    char body_kind[64];                  /* e.g. "ConfigMap" */
    char patch_type[16];                 /* "merge", "strategic", "json", "apply" */
    int body_restart;                    /* the patch only sets the pod template's
                                            kubectl.kubernetes.io/restartedAt annotation */
} bl_kreq_t;

/* Upper bounds on what bl_kreq_render() and bl_kreq_json() append for any
 * bl_kreq_t, however hostile its contents: an output buffer with this much
 * room never makes them fail. */
#define BL_KREQ_RENDER_MAX  32768
#define BL_KREQ_JSON_MAX    65536

/*
 * Parses an HTTP method and origin-form target ("/path?query") into *r,
 * percent-decoding path segments and query values. Never fails on odd but
 * well-formed paths (they become non-resource requests). Returns BL_OK, or
 * BL_ERROR with *err (static string) on invalid percent-encoding or a path
 * segment of "." / ".." (which kube-apiserver would clean and byline must
 * not let hide the real object).
 */
int bl_kreq_parse(bl_kreq_t *r, bl_str_t method, bl_str_t target, const char **err);

/*
 * Refines *r from the start of the request body (JSON, or the Kubernetes
 * protobuf envelope "k8s\0" + runtime.Unknown): the object name and kind for
 * create, `spec.replicas` for scale; for PATCH, the patch type from
 * `content_type` (call it even when there is no body). `body` may be a
 * prefix of the whole body; nothing is found in a truncated document.
 * Because protobuf has no end marker (a prefix that stops between fields
 * looks whole, and a later field may override an earlier one), this
 * function reads no protobuf body: use bl_kreq_body_total() for that.
 * Always returns BL_OK.
 */
int bl_kreq_body(bl_kreq_t *r, bl_str_t content_type, const char *body, size_t len);

/*
 * bl_kreq_body() for a caller that knows the body's full length `total`
 * (Content-Length; UINT64_MAX when unknown, e.g. chunked and unfinished).
 * JSON is read as above; a protobuf body is read only when len == total,
 * i.e. the caller holds all of it. Always returns BL_OK.
 */
int bl_kreq_body_total(bl_kreq_t *r, bl_str_t content_type, const char *body, size_t len,
                       uint64_t total);

/*
 * Appends the kubectl command a person would have typed for this request,
 * e.g. "kubectl scale deployment/api --replicas=5 -n web". `kubectl_command`
 * is the client's Kubectl-Command header (may be empty), used to tell an
 * apply from a plain patch. Values that need it are shell-quoted. Returns
 * BL_OK or BL_ERROR if `out` is full.
 */
int bl_kreq_render(const bl_kreq_t *r, bl_str_t kubectl_command, bl_buf_t *out);

/*
 * Appends the structured fields as JSON object members, without braces,
 * e.g. "\"verb\":\"patch\",\"resource\":\"deployments\",...". Empty fields
 * are omitted. Returns BL_OK or BL_ERROR if `out` is full.
 */
int bl_kreq_json(const bl_kreq_t *r, bl_buf_t *out);

/* Returns the i-th exec argument as a C string (i < r->argc). */
static inline const char *bl_kreq_arg(const bl_kreq_t *r, size_t i)
{
    return r->argv_buf + r->argv_off[i];
}

#endif
