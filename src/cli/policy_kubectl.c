/*
 * policy_kubectl.c - kubectl command lines as the requests kubectl sends
 * (policy_kubectl.h). This is a model of kubectl for `byline policy
 * check`, not a reimplementation: it knows the common verbs and built-in
 * types, follows kubectl's request sequence for them (the GET many
 * commands do first included), and refuses the rest clearly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/policy_kubectl.h"

/* A resource type as kubectl users name it. */
typedef struct {
    const char *words;     /* comma-separated: singular, plural, short names */
    const char *group, *version, *plural, *kind;
    int namespaced;
} bl_ktype_t;

static const bl_ktype_t bl_ktypes[] = {
    { "pod,pods,po", "", "v1", "pods", "Pod", 1 },
    { "service,services,svc", "", "v1", "services", "Service", 1 },
    { "configmap,configmaps,cm", "", "v1", "configmaps", "ConfigMap", 1 },
    { "secret,secrets", "", "v1", "secrets", "Secret", 1 },
    { "serviceaccount,serviceaccounts,sa", "", "v1", "serviceaccounts", "ServiceAccount", 1 },
    { "persistentvolumeclaim,persistentvolumeclaims,pvc", "", "v1", "persistentvolumeclaims",
      "PersistentVolumeClaim", 1 },
    { "event,events,ev", "", "v1", "events", "Event", 1 },
    { "endpoints,ep", "", "v1", "endpoints", "Endpoints", 1 },
    { "namespace,namespaces,ns", "", "v1", "namespaces", "Namespace", 0 },
    { "node,nodes,no", "", "v1", "nodes", "Node", 0 },
    { "persistentvolume,persistentvolumes,pv", "", "v1", "persistentvolumes", "PersistentVolume", 0 },
    { "deployment,deployments,deploy", "apps", "v1", "deployments", "Deployment", 1 },
    { "statefulset,statefulsets,sts", "apps", "v1", "statefulsets", "StatefulSet", 1 },
    { "daemonset,daemonsets,ds", "apps", "v1", "daemonsets", "DaemonSet", 1 },
    { "replicaset,replicasets,rs", "apps", "v1", "replicasets", "ReplicaSet", 1 },
    { "job,jobs", "batch", "v1", "jobs", "Job", 1 },
    { "cronjob,cronjobs,cj", "batch", "v1", "cronjobs", "CronJob", 1 },
    { "ingress,ingresses,ing", "networking.k8s.io", "v1", "ingresses", "Ingress", 1 },
    { "networkpolicy,networkpolicies,netpol", "networking.k8s.io", "v1", "networkpolicies",
      "NetworkPolicy", 1 },
    { "horizontalpodautoscaler,horizontalpodautoscalers,hpa", "autoscaling", "v2",
      "horizontalpodautoscalers", "HorizontalPodAutoscaler", 1 },
    { "role,roles", "rbac.authorization.k8s.io", "v1", "roles", "Role", 1 },
    { "rolebinding,rolebindings", "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", 1 },
    { "clusterrole,clusterroles", "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", 0 },
    { "clusterrolebinding,clusterrolebindings", "rbac.authorization.k8s.io", "v1",
      "clusterrolebindings", "ClusterRoleBinding", 0 },
};

/* The parsed command line. */
typedef struct {
    const char *verb, *ns, *selector, *container, *replicas;
    int all_ns, watch, in, tty, follow, all, file;
    const char *pos[64];
    size_t npos;
    char **cmd;               /* after "--" */
    size_t ncmd;
} bl_kargs_t;

/* Long flags that take a value (as --flag VALUE or --flag=VALUE). */
static const char *const bl_kvalue_flags[] = {
    "namespace", "selector", "container", "output", "patch", "type", "field-selector", "tail",
    "since", "since-time", "image", "replicas", "from-literal", "from-file", "filename", "context",
    "cluster", "user", "kubeconfig", "field-manager", "request-timeout", "server", "token", "as",
    "as-group", "template", "sort-by", "label-columns", "chunk-size", "grace-period", "cascade",
    "current-replicas", "resource-version", "timeout", "subresource", "limit-bytes", "address",
    "pod-running-timeout", "max-log-requests", "from-env-file", "port", "schedule", "restart",
};

static int bl_kerr(bl_buf_t *err, const char *msg, const char *arg)
{
    bl_buf_printf(err, "%s%s%.200s%s\n", msg, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return BL_ERROR;
}

static int bl_kvalue_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(bl_kvalue_flags); i++)
        if (strlen(bl_kvalue_flags[i]) == n && !memcmp(bl_kvalue_flags[i], name, n))
            return 1;
    return 0;
}

/* Stores what a long flag means to the model. */
static void bl_klong(bl_kargs_t *a, const char *name, size_t n, const char *val)
{
#define IS(s) (n == sizeof(s) - 1 && !memcmp(name, s, n))
    if (IS("namespace"))
        a->ns = val;
    else if (IS("selector"))
        a->selector = val;
    else if (IS("container"))
        a->container = val;
    else if (IS("replicas"))
        a->replicas = val;
    else if (IS("filename"))
        a->file = 1;
    else if (IS("all-namespaces"))
        a->all_ns = 1;
    else if (IS("watch"))
        a->watch = 1;
    else if (IS("stdin"))
        a->in = 1;
    else if (IS("tty"))
        a->tty = 1;
    else if (IS("follow"))
        a->follow = 1;
    else if (IS("all"))
        a->all = 1;
#undef IS
}

/* Short flags: -n -l -c -o -p take a value (-nweb or -n web); the rest
 * (-A -w -i -t -f, combinable as -it) are booleans, except -f outside
 * `logs`, which is --filename. Returns the argv entries used, or 0. */
static int bl_kshort(bl_kargs_t *a, char *arg, char *next)
{
    for (size_t i = 1; arg[i]; i++) {
        char c = arg[i];
        if (strchr("nlcop", c)) {
            const char *v = arg[i + 1] ? arg + i + 1 + (arg[i + 1] == '=') : next;
            if (v == NULL)
                return 0;
            if (c == 'n')
                a->ns = v;
            else if (c == 'l')
                a->selector = v;
            else if (c == 'c')
                a->container = v;
            return arg[i + 1] ? 1 : 2;
        }
        if (c == 'A')
            a->all_ns = 1;
        else if (c == 'w')
            a->watch = 1;
        else if (c == 'i')
            a->in = 1;
        else if (c == 't')
            a->tty = 1;
        else if (c == 'f')
            *(a->verb && !strcmp(a->verb, "logs") ? &a->follow : &a->file) = 1;
    }
    return 1;
}

/* Splits argv into the verb, flags, positional words and the command
 * after "--". Returns BL_OK or BL_ERROR. */
static int bl_kargs(int argc, char **argv, bl_kargs_t *a, bl_buf_t *err)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        char *s = argv[i];
        if (!strcmp(s, "--")) {
            a->cmd = argv + i + 1;
            a->ncmd = (size_t)(argc - i - 1);
            break;
        }
        if (s[0] == '-' && s[1] == '-') {
            const char *eq = strchr(s + 2, '=');
            size_t n = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            const char *val = eq ? eq + 1 : NULL;
            if (!eq && bl_kvalue_flag(s + 2, n)) {
                if (i + 1 >= argc)
                    return bl_kerr(err, "kubectl flag needs a value:", s);
                val = argv[++i];
            }
            bl_klong(a, s + 2, n, val);
        } else if (s[0] == '-' && s[1]) {
            int used = bl_kshort(a, s, i + 1 < argc ? argv[i + 1] : NULL);
            if (used == 0)
                return bl_kerr(err, "kubectl flag needs a value:", s);
            i += used - 1;
        } else if (a->verb == NULL) {
            a->verb = s;
        } else if (a->npos < BL_ARRAY_LEN(a->pos)) {
            a->pos[a->npos++] = s;
        } else {
            return bl_kerr(err, "too many arguments", NULL);
        }
    }
    if (a->verb == NULL)
        return bl_kerr(err, "no kubectl command after --", NULL);
    return BL_OK;
}

/* Finds a type by word: singular, plural, short name, or plural.group. */
static const bl_ktype_t *bl_ktype(const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i < BL_ARRAY_LEN(bl_ktypes); i++) {
        const bl_ktype_t *t = &bl_ktypes[i];
        size_t pl = strlen(t->plural);
        if (t->group[0] && wl > pl && !memcmp(w, t->plural, pl) && w[pl] == '.' && !strcmp(w + pl + 1, t->group))
            return t;
        for (const char *p = t->words; *p;) {
            size_t n = strcspn(p, ",");
            if (n == wl && !memcmp(p, w, n))
                return t;
            p += n + (p[n] == ',');
        }
    }
    return NULL;
}

/* Appends s percent-encoded (everything but unreserved characters). */
static int bl_kenc(bl_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = BL_OK;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            rc |= bl_buf_append(b, s, 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            rc |= bl_buf_append(b, e, 3);
        }
    }
    return rc;
}

/* The request list being built. */
typedef struct {
    bl_kcmd_req_t *out;
    size_t n, max;
    bl_buf_t *err;
    const bl_kargs_t *a;
} bl_kreqs_t;

/* Starts a request: method and the path of type t (name and subresource
 * optional). Returns the target buffer, or NULL when there is no room. */
static bl_kcmd_req_t *bl_kreq(bl_kreqs_t *R, bl_buf_t *b, const char *method, const bl_ktype_t *t,
                              const char *name, const char *sub)
{
    if (R->n >= R->max)
        return NULL;
    bl_kcmd_req_t *q = &R->out[R->n++];
    snprintf(q->method, sizeof(q->method), "%s", method);
    q->body[0] = '\0';
    *b = (bl_buf_t){ .base = q->target, .cap = sizeof(q->target) - 1, .max = sizeof(q->target) - 1 };
    int rc = t->group[0] ? bl_buf_printf(b, "/apis/%s/%s", t->group, t->version) : bl_buf_puts(b, "/api/v1");
    if (t->namespaced && !R->a->all_ns) {
        rc |= bl_buf_puts(b, "/namespaces/");
        rc |= bl_kenc(b, R->a->ns ? R->a->ns : "default");
    }
    rc |= bl_buf_puts(b, "/");
    rc |= bl_buf_puts(b, t->plural);
    if (name) {
        rc |= bl_buf_puts(b, "/");
        rc |= bl_kenc(b, name);
    }
    if (sub) {
        rc |= bl_buf_puts(b, "/");
        rc |= bl_buf_puts(b, sub);
    }
    return rc ? NULL : q;
}

/* Closes a request's target. Returns BL_OK or BL_ERROR (too long). */
static int bl_kdone(bl_kreqs_t *R, bl_buf_t *b, bl_kcmd_req_t *q)
{
    if (q == NULL || b->len >= sizeof(q->target))
        return bl_kerr(R->err, "the request would be too long", NULL);
    q->target[b->len] = '\0';
    return BL_OK;
}

/* One simple request: METHOD on type t (and name, subresource). */
static int bl_kone(bl_kreqs_t *R, const char *method, const bl_ktype_t *t, const char *name, const char *sub)
{
    bl_buf_t b;
    bl_kcmd_req_t *q = bl_kreq(R, &b, method, t, name, sub);
    return bl_kdone(R, &b, q);
}

/* The object words: TYPE NAME..., TYPE/NAME..., or TYPE alone. Sets *t and
 * the names (pointers into argv; at most 32). Returns the name count or
 * BL_ERROR. */
static int bl_kobjects(bl_kreqs_t *R, const bl_ktype_t **t, const char **names, char bufs[][256])
{
    const bl_kargs_t *a = R->a;
    int n = 0;
    *t = NULL;
    for (size_t i = 0; i < a->npos && n < 32; i++) {
        const char *w = a->pos[i], *slash = strchr(w, '/');
        if (slash || i == 0) {
            size_t tl = slash ? (size_t)(slash - w) : strlen(w);
            if (tl >= 256)
                return bl_kerr(R->err, "resource type too long", NULL);
            memcpy(bufs[n], w, tl);
            bufs[n][tl] = '\0';
            const bl_ktype_t *tt = bl_ktype(bufs[n]);
            if (tt == NULL)
                return bl_kerr(R->err, "unknown resource type (give the request with --request):", bufs[n]);
            if (*t && tt != *t)
                return bl_kerr(R->err, "one resource type per command:", w);
            *t = tt;
            if (slash)
                names[n++] = slash + 1;
        } else {
            names[n++] = w;
        }
    }
    if (*t == NULL)
        return bl_kerr(R->err, "expected a resource type, e.g. pods or deployment/api", NULL);
    return n;
}

/* get / describe: each name, or the list (with -l, -w). */
static int bl_kget(bl_kreqs_t *R)
{
    const bl_ktype_t *t;
    const char *names[32];
    char bufs[32][256];
    int n = bl_kobjects(R, &t, names, bufs);
    if (n < 0)
        return BL_ERROR;
    for (int i = 0; i < n; i++)
        if (bl_kone(R, "GET", t, names[i], NULL) != BL_OK)
            return BL_ERROR;
    if (n > 0)
        return BL_OK;
    bl_buf_t b;
    bl_kcmd_req_t *q = bl_kreq(R, &b, "GET", t, NULL, NULL);
    const char *sep = "?";
    if (q && R->a->selector) {
        bl_buf_puts(&b, "?labelSelector=");
        bl_kenc(&b, R->a->selector);
        sep = "&";
    }
    if (q && R->a->watch && !strcmp(R->a->verb, "get"))
        bl_buf_printf(&b, "%swatch=true", sep);
    return bl_kdone(R, &b, q);
}

/* delete NAME...: kubectl deletes each object by name. */
static int bl_kdelete(bl_kreqs_t *R)
{
    const bl_ktype_t *t;
    const char *names[32];
    char bufs[32][256];
    if (R->a->all || R->a->selector)
        return bl_kerr(R->err, "delete --all / -l: kubectl lists and then deletes each object; name them "
                               "(policy check evaluates named objects)", NULL);
    int n = bl_kobjects(R, &t, names, bufs);
    if (n < 0)
        return BL_ERROR;
    if (n == 0)
        return bl_kerr(R->err, "delete needs object names", NULL);
    for (int i = 0; i < n; i++)
        if (bl_kone(R, "DELETE", t, names[i], NULL) != BL_OK)
            return BL_ERROR;
    return BL_OK;
}

/* create TYPE NAME: a POST whose body names the object. */
static int bl_kcreate(bl_kreqs_t *R)
{
    const bl_ktype_t *t;
    const char *names[32];
    char bufs[32][256];
    int n = bl_kobjects(R, &t, names, bufs);
    if (n < 0)
        return BL_ERROR;
    if (n != 1)
        return bl_kerr(R->err, "create needs TYPE NAME (create -f reads manifests, which policy check does "
                               "not: use --request)", NULL);
    bl_buf_t b;
    bl_kcmd_req_t *q = bl_kreq(R, &b, "POST", t, NULL, NULL);
    if (bl_kdone(R, &b, q) != BL_OK)
        return BL_ERROR;
    for (const char *p = names[0]; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return bl_kerr(R->err, "object name with quotes or control characters:", names[0]);
    int w = snprintf(q->body, sizeof(q->body), "{\"apiVersion\":\"%s%s%s\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%.256s\"}}",
                     t->group, t->group[0] ? "/" : "", t->version, t->kind, names[0]);
    return w > 0 && (size_t)w < sizeof(q->body) ? BL_OK : bl_kerr(R->err, "object name too long", NULL);
}

/* Commands that GET one object and then PATCH it or its subresource
 * (scale, edit, label, annotate, rollout restart), or only PATCH (patch). */
static int bl_kpatch(bl_kreqs_t *R, int get_first, const char *sub)
{
    const bl_ktype_t *t;
    const char *names[32];
    char bufs[32][256];
    int n = bl_kobjects(R, &t, names, bufs);
    if (n < 0)
        return BL_ERROR;
    if (n == 0)
        return bl_kerr(R->err, "name the object, e.g. deployment/api", NULL);
    for (int i = 0; i < n; i++)
        if ((get_first && bl_kone(R, "GET", t, names[i], NULL) != BL_OK) ||
            bl_kone(R, "PATCH", t, names[i], sub) != BL_OK)
            return BL_ERROR;
    return BL_OK;
}

/* The pod of exec, attach, logs and port-forward: POD or pod/POD. */
static const char *bl_kpod(bl_kreqs_t *R)
{
    const char *w = R->a->npos ? R->a->pos[0] : NULL;
    if (w == NULL) {
        bl_kerr(R->err, "expected a pod name", NULL);
        return NULL;
    }
    const char *slash = strchr(w, '/');
    if (slash == NULL)
        return w;
    if ((slash - w == 3 && !memcmp(w, "pod", 3)) || (slash - w == 4 && !memcmp(w, "pods", 4)) ||
        (slash - w == 2 && !memcmp(w, "po", 2)))
        return slash + 1;
    bl_kerr(R->err, "only pods are supported here (kubectl resolves other types to a pod first):", w);
    return NULL;
}

/* exec and attach: kubectl GETs the pod, then opens the stream (POST for
 * SPDY; a WebSocket GET is judged the same). */
static int bl_kstream(bl_kreqs_t *R, const char *sub)
{
    const bl_kargs_t *a = R->a;
    const char *pod = bl_kpod(R);
    if (pod == NULL || bl_kone(R, "GET", &bl_ktypes[0], pod, NULL) != BL_OK)
        return BL_ERROR;
    if (!strcmp(sub, "exec") && a->ncmd == 0)
        return bl_kerr(R->err, "exec needs a command after --, e.g. -- cat /var/log/app.log", NULL);
    bl_buf_t b;
    bl_kcmd_req_t *q = bl_kreq(R, &b, "POST", &bl_ktypes[0], pod, sub);
    const char *sep = "?";
    for (size_t i = 0; q && i < a->ncmd; i++, sep = "&") {
        bl_buf_printf(&b, "%scommand=", sep);
        bl_kenc(&b, a->cmd[i]);
    }
    if (q && a->container) {
        bl_buf_printf(&b, "%scontainer=", sep);
        bl_kenc(&b, a->container);
        sep = "&";
    }
    if (q) /* kubectl sends stderr only without a TTY (the TTY merges it into stdout) */
        bl_buf_printf(&b, "%s%sstdout=true&%s", sep, a->in ? "stdin=true&" : "", a->tty ? "tty=true" : "stderr=true");
    return bl_kdone(R, &b, q);
}

/* logs: GET the pod, then its log. */
static int bl_klogs(bl_kreqs_t *R)
{
    const char *pod = bl_kpod(R);
    if (pod == NULL || bl_kone(R, "GET", &bl_ktypes[0], pod, NULL) != BL_OK)
        return BL_ERROR;
    bl_buf_t b;
    bl_kcmd_req_t *q = bl_kreq(R, &b, "GET", &bl_ktypes[0], pod, "log");
    const char *sep = "?";
    if (q && R->a->container) {
        bl_buf_puts(&b, "?container=");
        bl_kenc(&b, R->a->container);
        sep = "&";
    }
    if (q && R->a->follow)
        bl_buf_printf(&b, "%sfollow=true", sep);
    return bl_kdone(R, &b, q);
}

/* port-forward: GET the pod, then POST portforward with the ports. */
static int bl_kportforward(bl_kreqs_t *R)
{
    const char *pod = bl_kpod(R);
    if (pod == NULL || bl_kone(R, "GET", &bl_ktypes[0], pod, NULL) != BL_OK)
        return BL_ERROR;
    bl_buf_t b;
    bl_kcmd_req_t *q = bl_kreq(R, &b, "POST", &bl_ktypes[0], pod, "portforward");
    for (size_t i = 1; q && i < R->a->npos; i++) {
        const char *port = strrchr(R->a->pos[i], ':');
        bl_buf_printf(&b, "%sports=", i == 1 ? "?" : "&");
        bl_kenc(&b, port ? port + 1 : R->a->pos[i]);
    }
    return bl_kdone(R, &b, q);
}

int bl_kcmd_parse(int argc, char **argv, bl_kcmd_req_t *out, size_t max, bl_buf_t *err)
{
    bl_kargs_t a;
    bl_kreqs_t R = { out, 0, max, err, &a };
    if (argc < 1 || strcmp(argv[0], "kubectl"))
        return bl_kerr(err, "expected a kubectl command line after --, e.g. -- kubectl get pods -n web", NULL);
    if (bl_kargs(argc, argv, &a, err) != BL_OK)
        return BL_ERROR;
    const char *v = a.verb;
    int rc;
    if (a.file && strcmp(v, "logs"))
        return bl_kerr(err, "-f/--filename reads manifests, which policy check does not: give each request "
                            "with --request 'METHOD /path'", NULL);
    if (!strcmp(v, "get") || !strcmp(v, "describe"))
        rc = bl_kget(&R);
    else if (!strcmp(v, "delete"))
        rc = bl_kdelete(&R);
    else if (!strcmp(v, "create"))
        rc = bl_kcreate(&R);
    else if (!strcmp(v, "scale"))
        rc = bl_kpatch(&R, 1, "scale");
    else if (!strcmp(v, "edit") || !strcmp(v, "label") || !strcmp(v, "annotate"))
        rc = bl_kpatch(&R, 1, NULL);
    else if (!strcmp(v, "patch"))
        rc = bl_kpatch(&R, 0, NULL);
    else if (!strcmp(v, "rollout") && a.npos > 0 && !strcmp(a.pos[0], "restart")) {
        memmove(a.pos, a.pos + 1, (a.npos - 1) * sizeof(a.pos[0]));
        a.npos--;
        rc = bl_kpatch(&R, 1, NULL);
    } else if (!strcmp(v, "exec") || !strcmp(v, "attach"))
        rc = bl_kstream(&R, v);
    else if (!strcmp(v, "logs"))
        rc = bl_klogs(&R);
    else if (!strcmp(v, "port-forward"))
        rc = bl_kportforward(&R);
    else
        return bl_kerr(err, "kubectl command not supported by policy check (supported: get, describe, delete, "
                            "create, scale, exec, attach, logs, port-forward, edit, patch, label, annotate, "
                            "rollout restart); give the request with --request:", v);
    return rc == BL_OK ? (int)R.n : BL_ERROR;
}
