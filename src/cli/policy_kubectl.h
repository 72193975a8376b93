/*
 * policy_kubectl.h - `byline policy check -- kubectl ...`: the HTTP
 * requests a kubectl command line would send, so the real request parser
 * and the policy can judge them without a cluster.
 *
 * Supported (docs/POLICY.md): get, describe, delete NAME, create TYPE NAME,
 * scale, exec, attach, logs, port-forward, edit, patch, label, annotate and
 * rollout restart, with -n/--namespace, -A, -l, -w, -c and TYPE/NAME or
 * TYPE NAME... forms, for the built-in resource types kubectl users name
 * most (pods, deployments, configmaps, ...; singular, plural, short name or
 * plural.group). Anything else (apply -f, delete --all, unknown types) is
 * refused with a reason that suggests --request.
 */
#ifndef BL_CLI_POLICY_KUBECTL_H
#define BL_CLI_POLICY_KUBECTL_H

#include "core/buf.h"

#define BL_KCMD_MAX_REQS   16
#define BL_KCMD_TARGET_MAX 8192
#define BL_KCMD_BODY_MAX   1024

/* One request kubectl would send. */
typedef struct {
    char method[8];
    char target[BL_KCMD_TARGET_MAX];  /* origin-form, percent-encoded */
    char body[BL_KCMD_BODY_MAX];      /* JSON for a create (names the object), or "" */
} bl_kcmd_req_t;

/*
 * Turns `argv` (argv[0] is "kubectl") into the requests kubectl sends, in
 * order (e.g. kubectl exec GETs the pod, then POSTs the exec). Returns the
 * count (1..max), or BL_ERROR with a one-line reason appended to `err`.
 * Writes only out[0..count).
 */
int bl_kcmd_parse(int argc, char **argv, bl_kcmd_req_t *out, size_t max, bl_buf_t *err);

#endif
