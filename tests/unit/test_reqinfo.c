/*
 * test_reqinfo.c - what byline understands of a Kubernetes API request
 * (src/kube/reqinfo.c, body.c, protobuf.c).
 *
 * Every request real kubectl 1.32 sent in /work/shared/captures (skipped if
 * absent) is parsed with its body and checked against a table of expected
 * RequestInfo fields and the rendered command; each row is its own cmocka
 * test. The edge cases follow kube-apiserver's RequestInfoFactory and the Go
 * URL/selector semantics it builds on, plus the cases byline refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kube/reqinfo.h"

#define CAPTURE "/work/shared/captures/kubectl-1.32-requests.log"

/* ---- helpers ---- */

static bl_str_t S(const char *s)
{
    return (bl_str_t){ s, s ? strlen(s) : 0 };
}

static int parse(bl_kreq_t *r, const char *method, const char *target)
{
    const char *err = "unset";
    int rc = bl_kreq_parse(r, S(method), S(target), &err);
    if (rc == BL_OK)
        assert_null(err);
    else
        assert_non_null(err);
    return rc;
}

static void parse_ok(bl_kreq_t *r, const char *method, const char *target)
{
    if (parse(r, method, target) != BL_OK)
        fail_msg("refused: %s %s", method, target);
}

static char *render(const bl_kreq_t *r, const char *kcmd)
{
    static char line[BL_KREQ_RENDER_MAX + 1];
    bl_buf_t b;
    bl_buf_init(&b, BL_KREQ_RENDER_MAX);
    assert_int_equal(bl_kreq_render(r, S(kcmd ? kcmd : ""), &b), BL_OK);
    memcpy(line, bl_buf_data(&b), bl_buf_size(&b));
    line[bl_buf_size(&b)] = '\0';
    bl_buf_free(&b);
    return line;
}

/* Expected RequestInfo: NULL strings mean "" */
typedef struct {
    const char *name;
    const char *method, *target;
    int rc;
    const char *verb, *group, *version, *ns, *resource, *sub, *obj;
    int is_resource, discovery;
} parse_case_t;

static void check_fields(const bl_kreq_t *r, const parse_case_t *c)
{
#define EQ(field, want) assert_string_equal(r->field, (want) ? (want) : "")
    EQ(verb, c->verb);
    EQ(api_group, c->group);
    EQ(api_version, c->version);
    EQ(namespace_, c->ns);
    EQ(resource, c->resource);
    EQ(subresource, c->sub);
    EQ(name, c->obj);
#undef EQ
    assert_int_equal(r->is_resource, c->is_resource);
    assert_int_equal(r->is_discovery, c->discovery);
}

/* ---- the kubectl 1.32 capture ---- */

typedef struct {
    char method[16];
    char target[512];
    char ctype[128];
    char kcmd[128];
    long clen;
    char *body;
    size_t body_len;
} cap_entry_t;

#define CAP_MAX 64
static cap_entry_t cap_entries[CAP_MAX];
static size_t cap_n;
static int cap_loaded;   /* 0 not tried, 1 loaded, -1 missing */

/* Copies the value of "Name: value" at line into dst if the name matches. */
static void cap_header(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
    size_t n = strlen(name);
    if (len > n + 2 && strncasecmp(line, name, n) == 0 && line[n] == ':' && line[n + 1] == ' ') {
        size_t v = BL_MIN(len - n - 2, cap - 1);
        memcpy(dst, line + n + 2, v);
        dst[v] = '\0';
    }
}

/* Decodes a body printed with "\0" escapes: Content-Length bytes from p.
 * Returns the number of log bytes consumed. */
static size_t cap_body(cap_entry_t *e, const char *p, const char *end)
{
    const char *start = p;
    e->body = malloc((size_t)e->clen + 1);
    assert_non_null(e->body);
    e->body_len = 0;
    while (e->body_len < (size_t)e->clen && p < end) {
        if (p[0] == '\\' && p + 1 < end && p[1] == '0') {
            e->body[e->body_len++] = '\0';
            p += 2;
        } else {
            e->body[e->body_len++] = *p++;
        }
    }
    assert_int_equal(e->body_len, (size_t)e->clen);
    return (size_t)(p - start);
}

static void cap_load(void)
{
    if (cap_loaded)
        return;
    FILE *f = fopen(CAPTURE, "rb");
    if (f == NULL) {
        cap_loaded = -1;
        return;
    }
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    cap_entry_t *e = NULL;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll > 5 && memcmp(p, "==== ", 5) == 0) {
            assert_true(cap_n < CAP_MAX);
            e = &cap_entries[cap_n++];
            memset(e, 0, sizeof(*e));
            e->clen = -1;
            char line[700];
            memcpy(line, p, BL_MIN(ll, sizeof(line) - 1));
            line[BL_MIN(ll, sizeof(line) - 1)] = '\0';
            char *sp1 = strchr(line + 5, ' ');
            char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
            assert_non_null(sp2);
            *sp1 = *sp2 = '\0';
            snprintf(e->method, sizeof(e->method), "%.15s", line + 5);
            snprintf(e->target, sizeof(e->target), "%.511s", sp1 + 1);
        } else if (e != NULL && ll > 6 && memcmp(p, "BODY: ", 6) == 0 && e->clen > 0) {
            p += 6 + cap_body(e, p + 6, end);
            continue;
        } else if (e != NULL && p[0] != '#' && ll > 0) {
            char cl[24] = "";
            cap_header(p, ll, "Content-Type", e->ctype, sizeof(e->ctype));
            cap_header(p, ll, "Kubectl-Command", e->kcmd, sizeof(e->kcmd));
            cap_header(p, ll, "Content-Length", cl, sizeof(cl));
            if (cl[0])
                e->clen = strtol(cl, NULL, 10);
        } else if (p[0] == '#') {
            e = NULL;
        }
        p = nl ? nl + 1 : end;
    }
    cap_loaded = 1;
}

typedef struct {
    const char *name;
    const char *method, *target;
    const char *verb, *group, *ns, *resource, *sub, *obj;
    int discovery;
    const char *line;   /* the rendered command */
} cap_case_t;

#define DISC(n, t, path) { n, "GET", t, "get", NULL, NULL, NULL, NULL, NULL, 1, "kubectl get --raw " path }
#define POD_GET(n) { n, "GET", "/api/v1/namespaces/web/pods/api-0", "get", NULL, "web", "pods", NULL, \
                     "api-0", 0, "kubectl get pod/api-0 -n web" }
#define DEPLOY_GET(n) { n, "GET", "/apis/apps/v1/namespaces/web/deployments/api", "get", "apps", "web", \
                        "deployments", NULL, "api", 0, "kubectl get deployment/api -n web" }
#define EXEC_Q "?command=ls&command=-la&command=%2Ftmp&container=app&stderr=true&stdout=true"
#define ID_Q "?command=id&container=app&stderr=true&stdout=true"
#define TAR_Q "?command=tar&command=cf&command=-&command=%2Fetc%2Fhosts&container=app&stderr=true&stdout=true"
#define ATT_Q "?container=app&stderr=true&stdout=true"
#define PODS "/api/v1/namespaces/web/pods"

/* In the order kubectl sent them. */
static const cap_case_t cap_cases[] = {
    /* kubectl get pods -n web */
    DISC("cap01_version", "/version?timeout=5s", "/version"),
    DISC("cap02_api", "/api?timeout=32s", "/api"),
    DISC("cap03_apis", "/apis?timeout=32s", "/apis"),
    DISC("cap04_apps_v1", "/apis/apps/v1?timeout=32s", "/apis/apps/v1"),
    DISC("cap05_api_v1", "/api/v1?timeout=32s", "/api/v1"),
    { "cap06_list_pods", "GET", PODS "?limit=500", "list", NULL, "web", "pods", NULL, NULL, 0,
      "kubectl get pods -n web" },
    /* kubectl scale deployment/api --replicas=5 -n web */
    DEPLOY_GET("cap07_get_deploy"),
    { "cap08_scale_patch", "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale", "patch",
      "apps", "web", "deployments", "scale", "api", 0,
      "kubectl scale deployment/api --replicas=5 -n web" },
    /* kubectl scale --replicas=7 --current-replicas=5 */
    DEPLOY_GET("cap09_get_deploy"),
    { "cap10_get_scale", "GET", "/apis/apps/v1/namespaces/web/deployments/api/scale", "get", "apps",
      "web", "deployments", "scale", "api", 0,
      "kubectl get deployment/api -n web --subresource=scale" },
    { "cap11_scale_put", "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "update", "apps",
      "web", "deployments", "scale", "api", 0, "kubectl scale deployment/api --replicas=7 -n web" },
    /* kubectl logs api-0 -n web -c app --tail=10 */
    POD_GET("cap12_get_pod"),
    { "cap13_logs", "GET", PODS "/api-0/log?container=app&tailLines=10", "get", NULL, "web", "pods",
      "log", "api-0", 0, "kubectl logs api-0 -n web -c app --tail=10" },
    /* kubectl exec -n web api-0 -c app -- ls -la /tmp */
    POD_GET("cap14_get_pod"),
    { "cap15_exec_ls", "GET", PODS "/api-0/exec" EXEC_Q, "get", NULL, "web", "pods", "exec", "api-0", 0,
      "kubectl exec api-0 -n web -c app -- ls -la /tmp" },
    /* kubectl delete pod api-0 -n web --wait=false */
    { "cap16_delete_pod", "DELETE", PODS "/api-0", "delete", NULL, "web", "pods", NULL, "api-0", 0,
      "kubectl delete pod/api-0 -n web" },
    /* kubectl create configmap x --from-literal=a=b -n web (protobuf body) */
    { "cap17_create_cm_protobuf", "POST",
      "/api/v1/namespaces/web/configmaps?fieldManager=kubectl-create&fieldValidation=Strict", "create",
      NULL, "web", "configmaps", NULL, "x", 0, "kubectl create configmap/x -n web" },
    /* kubectl apply --server-side -f cm.yaml */
    { "cap18_apply_server_side", "PATCH",
      "/api/v1/namespaces/web/configmaps/x?fieldManager=kubectl&fieldValidation=Ignore&force=false",
      "patch", NULL, "web", "configmaps", NULL, "x", 0,
      "kubectl apply --server-side configmap/x -n web" },
    /* kubectl rollout restart deployment/api -n web */
    DEPLOY_GET("cap19_get_deploy"),
    { "cap20_rollout_restart", "PATCH",
      "/apis/apps/v1/namespaces/web/deployments/api?fieldManager=kubectl-rollout", "patch", "apps",
      "web", "deployments", NULL, "api", 0, "kubectl rollout restart deployment/api -n web" },
    /* kubectl --as=alice@example.com ... get pods -n web */
    { "cap21_list_pods_impersonated", "GET", PODS "?limit=500", "list", NULL, "web", "pods", NULL, NULL,
      0, "kubectl get pods -n web" },
    /* kubectl exec -n web api-0 -- id */
    DISC("cap22_version", "/version?timeout=5s", "/version"),
    DISC("cap23_api", "/api?timeout=32s", "/api"),
    DISC("cap24_apis", "/apis?timeout=32s", "/apis"),
    DISC("cap25_apps_v1", "/apis/apps/v1?timeout=32s", "/apis/apps/v1"),
    DISC("cap26_api_v1", "/api/v1?timeout=32s", "/api/v1"),
    POD_GET("cap27_get_pod"),
    { "cap28_exec_id_ws", "GET", PODS "/api-0/exec" ID_Q, "get", NULL, "web", "pods", "exec", "api-0", 0,
      "kubectl exec api-0 -n web -c app -- id" },
    { "cap29_exec_id_spdy", "POST", PODS "/api-0/exec" ID_Q, "create", NULL, "web", "pods", "exec",
      "api-0", 0, "kubectl exec api-0 -n web -c app -- id" },
    /* kubectl port-forward -n web pod/api-0 18559:8080 */
    POD_GET("cap30_get_pod"),
    POD_GET("cap31_get_pod"),
    { "cap32_portforward_ws", "GET", PODS "/api-0/portforward", "get", NULL, "web", "pods",
      "portforward", "api-0", 0, "kubectl port-forward pod/api-0 -n web" },
    { "cap33_portforward_spdy", "POST", PODS "/api-0/portforward", "create", NULL, "web", "pods",
      "portforward", "api-0", 0, "kubectl port-forward pod/api-0 -n web" },
    /* kubectl attach -n web api-0 -c app */
    POD_GET("cap34_get_pod"),
    { "cap35_attach_ws", "GET", PODS "/api-0/attach" ATT_Q, "get", NULL, "web", "pods", "attach",
      "api-0", 0, "kubectl attach api-0 -n web -c app" },
    { "cap36_attach_spdy", "POST", PODS "/api-0/attach" ATT_Q, "create", NULL, "web", "pods", "attach",
      "api-0", 0, "kubectl attach api-0 -n web -c app" },
    /* kubectl cp -n web api-0:/etc/hosts ./hosts.copy */
    POD_GET("cap37_get_pod"),
    { "cap38_cp_exec_ws", "GET", PODS "/api-0/exec" TAR_Q, "get", NULL, "web", "pods", "exec", "api-0",
      0, "kubectl exec api-0 -n web -c app -- tar cf - /etc/hosts" },
    { "cap39_cp_exec_spdy", "POST", PODS "/api-0/exec" TAR_Q, "create", NULL, "web", "pods", "exec",
      "api-0", 0, "kubectl exec api-0 -n web -c app -- tar cf - /etc/hosts" },
};

/* The configmap kubectl create sent, built by hand from the protobuf schema:
 * "k8s\0", Unknown{1: TypeMeta{1 "v1", 2 "ConfigMap"}, 2: ConfigMap{1:
 * ObjectMeta{1 "x", 2 "", 3 "web", 4 "", 5 "", 6 "", 7 0, 8 {}}, 2: data
 * entry {"a": "b"}}, 3: "", 4: ""}. */
static const char cm_protobuf[] =
    "k8s\0"
    "\x0a\x0f" "\x0a\x02v1" "\x12\x09" "ConfigMap"
    "\x12\x1e"
        "\x0a\x14" "\x0a\x01x" "\x12\x00" "\x1a\x03web" "\x22\x00" "\x2a\x00" "\x32\x00"
                   "\x38\x00" "\x42\x00"
        "\x12\x06" "\x0a\x01" "a" "\x12\x01" "b"
    "\x1a\x00" "\x22\x00";

static void test_capture_entries(void **state)
{
    (void)state;
    cap_load();
    if (cap_loaded < 0) {
        print_message("capture %s missing: skipped\n", CAPTURE);
        skip();
    }
    assert_int_equal(cap_n, BL_ARRAY_LEN(cap_cases));
    for (size_t i = 0; i < cap_n; i++) {
        assert_string_equal(cap_entries[i].method, cap_cases[i].method);
        assert_string_equal(cap_entries[i].target, cap_cases[i].target);
    }
}

static void test_capture_protobuf_body(void **state)
{
    (void)state;
    cap_load();
    if (cap_loaded < 0)
        skip();
    /* the capture's escaped body, decoded, is byte for byte the hand-built one */
    const cap_entry_t *e = &cap_entries[16];
    assert_string_equal(e->ctype, "application/vnd.kubernetes.protobuf");
    assert_int_equal(e->body_len, sizeof(cm_protobuf) - 1);
    assert_memory_equal(e->body, cm_protobuf, sizeof(cm_protobuf) - 1);
}

static void test_capture_case(void **state)
{
    const cap_case_t *c = *state;
    size_t i = (size_t)(c - cap_cases);
    bl_kreq_t r;
    cap_load();
    if (cap_loaded < 0) {
        print_message("capture %s missing: skipped\n", CAPTURE);
        skip();
    }
    assert_true(i < cap_n);
    const cap_entry_t *e = &cap_entries[i];
    assert_string_equal(e->method, c->method);
    assert_string_equal(e->target, c->target);
    parse_ok(&r, e->method, e->target);
    assert_int_equal(bl_kreq_body_total(&r, S(e->ctype), e->body, e->body_len, (uint64_t)e->clen),
                     BL_OK);
    parse_case_t pc = { c->name, c->method, c->target, BL_OK, c->verb, c->group,
                        c->discovery ? NULL : "v1", c->ns, c->resource, c->sub, c->obj,
                        !c->discovery, c->discovery };
    check_fields(&r, &pc);
    assert_int_equal(r.truncated, 0);
    assert_string_equal(render(&r, e->kcmd), c->line);
}

/* Details of particular captured requests beyond the table. */
static void test_capture_details(void **state)
{
    (void)state;
    cap_load();
    if (cap_loaded < 0)
        skip();
    bl_kreq_t r;
    const cap_entry_t *e = &cap_entries[14];   /* exec ls -la /tmp */
    parse_ok(&r, e->method, e->target);
    assert_int_equal(r.argc, 3);
    assert_string_equal(bl_kreq_arg(&r, 2), "/tmp");
    assert_string_equal(r.container, "app");
    assert_true(r.stdout_ && r.stderr_ && !r.stdin_ && !r.tty);
    e = &cap_entries[10];                      /* PUT scale with a full Scale */
    parse_ok(&r, e->method, e->target);
    bl_kreq_body(&r, S(e->ctype), e->body, e->body_len);
    assert_int_equal(r.replicas, 7);
    assert_string_equal(r.body_kind, "Scale");
    e = &cap_entries[17];                      /* server-side apply */
    parse_ok(&r, e->method, e->target);
    bl_kreq_body(&r, S(e->ctype), e->body, e->body_len);
    assert_string_equal(r.patch_type, "apply");
    assert_string_equal(r.field_manager, "kubectl");
    assert_int_equal(r.force, 0);
    e = &cap_entries[19];                      /* rollout restart */
    parse_ok(&r, e->method, e->target);
    bl_kreq_body(&r, S(e->ctype), e->body, e->body_len);
    assert_string_equal(r.patch_type, "strategic");
    assert_int_equal(r.body_restart, 1);
    /* the same request without the header renders as the patch it is */
    assert_string_equal(render(&r, ""), "kubectl patch deployment/api -n web");
    e = &cap_entries[16];                      /* create configmap: kind from the envelope */
    parse_ok(&r, e->method, e->target);
    bl_kreq_body_total(&r, S(e->ctype), e->body, e->body_len, e->body_len);
    assert_string_equal(r.body_kind, "ConfigMap");
    assert_string_equal(r.field_manager, "kubectl-create");
}

/* ---- path resolution ---- */

#define R(n, m, t, verb, g, ns, res, sub, obj) { n, m, t, BL_OK, verb, g, "v1", ns, res, sub, obj, 1, 0 }
#define NR(n, m, t, verb, disc) { n, m, t, BL_OK, verb, NULL, NULL, NULL, NULL, NULL, NULL, 0, disc }
#define BAD(n, m, t) { n, m, t, BL_ERROR, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0 }

static const parse_case_t parse_cases[] = {
    /* watch and proxy as path prefixes (the legacy special verbs) */
    R("watch_prefix_ns", "GET", "/api/v1/watch/namespaces/web/pods", "watch", NULL, "web", "pods", NULL, NULL),
    R("watch_prefix_named", "GET", "/api/v1/watch/namespaces/web/pods/api-0", "watch", NULL, "web", "pods",
      NULL, "api-0"),
    R("watch_prefix_cluster", "GET", "/api/v1/watch/pods", "watch", NULL, NULL, "pods", NULL, NULL),
    R("watch_prefix_group", "GET", "/apis/apps/v1/watch/namespaces/web/deployments", "watch", "apps", "web",
      "deployments", NULL, NULL),
    R("watch_prefix_ignores_fieldselector", "GET",
      "/api/v1/watch/namespaces/web/pods?fieldSelector=metadata.name%3Dx", "watch", NULL, "web", "pods",
      NULL, NULL),
    BAD("watch_prefix_alone", "GET", "/api/v1/watch"),
    BAD("proxy_prefix_alone", "GET", "/apis/apps/v1/proxy"),
    R("proxy_prefix_no_subresource", "GET", "/api/v1/proxy/namespaces/web/pods/api-0/metrics/x", "proxy",
      NULL, "web", "pods", NULL, "api-0"),
    R("service_proxy", "GET", "/api/v1/namespaces/web/services/http:web:80/proxy/healthz", "get", NULL,
      "web", "services", "proxy", "http:web:80"),
    /* verbs from methods */
    R("get_named", "GET", "/apis/apps/v1/namespaces/web/deployments/api", "get", "apps", "web",
      "deployments", NULL, "api"),
    R("head_is_get", "HEAD", "/api/v1/namespaces/web/pods/x", "get", NULL, "web", "pods", NULL, "x"),
    R("head_list", "HEAD", "/api/v1/namespaces/web/pods", "list", NULL, "web", "pods", NULL, NULL),
    R("post_create", "POST", "/api/v1/namespaces/web/configmaps", "create", NULL, "web", "configmaps",
      NULL, NULL),
    R("put_update", "PUT", "/api/v1/namespaces/web/configmaps/x", "update", NULL, "web", "configmaps",
      NULL, "x"),
    R("patch", "PATCH", "/api/v1/namespaces/web/configmaps/x", "patch", NULL, "web", "configmaps", NULL,
      "x"),
    R("delete_named", "DELETE", "/api/v1/namespaces/web/pods/api-0", "delete", NULL, "web", "pods", NULL,
      "api-0"),
    R("deletecollection", "DELETE", "/api/v1/namespaces/web/pods", "deletecollection", NULL, "web", "pods",
      NULL, NULL),
    R("deletecollection_cluster", "DELETE", "/api/v1/nodes", "deletecollection", NULL, NULL, "nodes", NULL,
      NULL),
    R("unknown_method_no_verb", "OPTIONS", "/api/v1/namespaces/web/pods", NULL, NULL, "web", "pods", NULL,
      NULL),
    R("lowercase_method_no_verb", "get", "/api/v1/namespaces/web/pods", NULL, NULL, "web", "pods", NULL,
      NULL),
    /* cluster scope and the namespace object itself */
    R("nodes_list", "GET", "/api/v1/nodes", "list", NULL, NULL, "nodes", NULL, NULL),
    R("node_get", "GET", "/api/v1/nodes/n1", "get", NULL, NULL, "nodes", NULL, "n1"),
    R("node_proxy", "GET", "/api/v1/nodes/n1/proxy/logs/", "get", NULL, NULL, "nodes", "proxy", "n1"),
    R("pods_all_namespaces", "GET", "/api/v1/pods", "list", NULL, NULL, "pods", NULL, NULL),
    R("clusterrole", "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", "get",
      "rbac.authorization.k8s.io", NULL, "clusterroles", NULL, "admin"),
    R("namespaces_list", "GET", "/api/v1/namespaces", "list", NULL, NULL, "namespaces", NULL, NULL),
    R("namespace_get", "GET", "/api/v1/namespaces/web", "get", NULL, "web", "namespaces", NULL, "web"),
    R("namespace_delete", "DELETE", "/api/v1/namespaces/web", "delete", NULL, "web", "namespaces", NULL,
      "web"),
    R("namespace_create", "POST", "/api/v1/namespaces", "create", NULL, NULL, "namespaces", NULL, NULL),
    R("namespace_status", "PATCH", "/api/v1/namespaces/web/status", "patch", NULL, "web", "namespaces",
      "status", "web"),
    R("namespace_finalize", "PUT", "/api/v1/namespaces/web/finalize", "update", NULL, "web", "namespaces",
      "finalize", "web"),
    R("resource_named_status", "GET", "/api/v1/namespaces/web/status/x", "get", NULL, "web", "namespaces",
      "status", "web"),
    /* custom resources */
    R("crd_named", "GET", "/apis/example.com/v1/namespaces/web/widgets/x", "get", "example.com", "web",
      "widgets", NULL, "x"),
    R("crd_cluster_list", "GET", "/apis/example.com/v1/widgets", "list", "example.com", NULL, "widgets",
      NULL, NULL),
    R("crd_status", "PUT", "/apis/example.com/v1/namespaces/web/widgets/x/status", "update",
      "example.com", "web", "widgets", "status", "x"),
    /* subresources */
    R("eviction", "POST", "/api/v1/namespaces/web/pods/api-0/eviction", "create", NULL, "web", "pods",
      "eviction", "api-0"),
    R("ephemeralcontainers", "PATCH", "/api/v1/namespaces/web/pods/api-0/ephemeralcontainers", "patch",
      NULL, "web", "pods", "ephemeralcontainers", "api-0"),
    R("status", "PUT", "/apis/apps/v1/namespaces/web/deployments/api/status", "update", "apps", "web",
      "deployments", "status", "api"),
    R("token", "POST", "/api/v1/namespaces/web/serviceaccounts/sa/token", "create", NULL, "web",
      "serviceaccounts", "token", "sa"),
    R("extra_parts_ignored", "GET", "/api/v1/namespaces/web/pods/api-0/log/extra/parts", "get", NULL, "web",
      "pods", "log", "api-0"),
    /* list vs watch, as Go converts the first watch= value */
    R("watch_true", "GET", "/api/v1/namespaces/web/pods?watch=true", "watch", NULL, "web", "pods", NULL, NULL),
    R("watch_1", "GET", "/api/v1/namespaces/web/pods?watch=1", "watch", NULL, "web", "pods", NULL, NULL),
    R("watch_empty_is_true", "GET", "/api/v1/namespaces/web/pods?watch=", "watch", NULL, "web", "pods",
      NULL, NULL),
    R("watch_bare_key", "GET", "/api/v1/namespaces/web/pods?watch", "watch", NULL, "web", "pods", NULL, NULL),
    R("watch_false", "GET", "/api/v1/namespaces/web/pods?watch=false", "list", NULL, "web", "pods", NULL,
      NULL),
    R("watch_FALSE", "GET", "/api/v1/namespaces/web/pods?watch=FALSE", "list", NULL, "web", "pods", NULL,
      NULL),
    R("watch_0", "GET", "/api/v1/namespaces/web/pods?watch=0", "list", NULL, "web", "pods", NULL, NULL),
    R("watch_first_value_wins", "GET", "/api/v1/namespaces/web/pods?watch=0&watch=1", "list", NULL, "web",
      "pods", NULL, NULL),
    R("watch_semicolon_pair_dropped", "GET", "/api/v1/namespaces/web/pods?watch=true;x=1", "list", NULL,
      "web", "pods", NULL, NULL),
    R("watch_on_named_get_ignored", "GET", "/api/v1/namespaces/web/pods/x?watch=true", "get", NULL, "web",
      "pods", NULL, "x"),
    /* the name a fieldSelector pins on list/watch */
    R("fsel_name", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Dapi-0&watch=true",
      "watch", NULL, "web", "pods", NULL, "api-0"),
    R("fsel_name_double_eq", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3D%3Dapi-0",
      "list", NULL, "web", "pods", NULL, "api-0"),
    R("fsel_name_not_eq", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name!%3Dapi-0", "list",
      NULL, "web", "pods", NULL, NULL),
    R("fsel_name_and_more", "GET",
      "/api/v1/namespaces/web/pods?fieldSelector=status.phase%3DRunning,metadata.name%3Da", "list", NULL,
      "web", "pods", NULL, "a"),
    R("fsel_two_names_sorted", "GET",
      "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Db,metadata.name%3Da", "list", NULL, "web",
      "pods", NULL, "a"),
    R("fsel_bad_term_no_name", "GET",
      "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da,garbage", "list", NULL, "web", "pods",
      NULL, NULL),
    R("fsel_unescaped_eq_no_name", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da%3Db",
      "list", NULL, "web", "pods", NULL, NULL),
    R("fsel_escaped_comma", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da%5C,b",
      "list", NULL, "web", "pods", NULL, "a,b"),
    R("fsel_bad_escape_no_name", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da%5Cx",
      "list", NULL, "web", "pods", NULL, NULL),
    R("fsel_slash_not_a_name", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da%2Fb",
      "list", NULL, "web", "pods", NULL, NULL),
    R("fsel_dotdot_not_a_name", "GET", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3D..",
      "list", NULL, "web", "pods", NULL, NULL),
    R("fsel_other_field", "GET", "/api/v1/namespaces/web/pods?fieldSelector=spec.nodeName%3Dn1", "list",
      NULL, "web", "pods", NULL, NULL),
    R("fsel_first_value_wins", "GET",
      "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da&fieldSelector=metadata.name%3Db",
      "list", NULL, "web", "pods", NULL, "a"),
    R("fsel_not_on_deletecollection", "DELETE", "/api/v1/namespaces/web/pods?fieldSelector=metadata.name%3Da",
      "deletecollection", NULL, "web", "pods", NULL, NULL),
    /* non-resource paths, discovery */
    NR("root", "GET", "/", "get", 1),
    NR("version", "GET", "/version", "get", 1),
    NR("api", "GET", "/api", "get", 1),
    NR("apis", "GET", "/apis", "get", 1),
    NR("api_v1", "GET", "/api/v1", "get", 1),
    NR("api_v1_slash", "GET", "/api/v1/", "get", 1),
    NR("apis_group", "GET", "/apis/apps", "get", 1),
    NR("apis_group_version", "GET", "/apis/apps/v1", "get", 1),
    NR("openapi_v2", "GET", "/openapi/v2", "get", 1),
    NR("openapi_v3_gv", "GET", "/openapi/v3/apis/apps/v1?hash=abc", "get", 1),
    NR("healthz", "GET", "/healthz", "get", 1),
    NR("healthz_etcd", "GET", "/healthz/etcd", "get", 1),
    NR("livez", "GET", "/livez", "get", 1),
    NR("readyz", "HEAD", "/readyz?verbose", "head", 1),
    NR("metrics", "GET", "/metrics", "get", 1),
    NR("oidc_discovery", "GET", "/.well-known/openid-configuration", "get", 1),
    NR("post_version_not_discovery", "POST", "/version", "post", 0),
    NR("unknown_path", "GET", "/foo/bar/baz", "get", 0),
    NR("uppercase_prefix", "GET", "/API/v1/pods", "get", 0),
    NR("asterisk", "OPTIONS", "*", "options", 0),
    NR("empty_segment_nonresource_ok", "GET", "/foo//bar", "get", 0),
    /* slashes as Go trims them */
    R("trailing_slash", "GET", "/api/v1/namespaces/web/pods/", "list", NULL, "web", "pods", NULL, NULL),
    R("leading_double_slash", "GET", "//api/v1/pods", "list", NULL, NULL, "pods", NULL, NULL),
    /* percent-decoding */
    R("pct_name", "GET", "/api/v1/namespaces/web/pods/api%2D0", "get", NULL, "web", "pods", NULL, "api-0"),
    R("pct_prefix", "GET", "/%61pi/v1/pods", "list", NULL, NULL, "pods", NULL, NULL),
    R("plus_is_plus_in_path", "GET", "/api/v1/namespaces/web/pods/a+b", "get", NULL, "web", "pods", NULL,
      "a+b"),
    R("slash_in_proxy_tail_ok", "GET", "/api/v1/namespaces/web/services/s/proxy/a%2Fb", "get", NULL, "web",
      "services", "proxy", "s"),
    R("pct_unused_key_ok", "GET", "/api/v1/pods?x=%41", "list", NULL, NULL, "pods",
      NULL, NULL),
    BAD("slash_in_name", "GET", "/api/v1/namespaces/web/pods/a%2Fb"),
    BAD("slash_in_name_lower", "GET", "/api/v1/namespaces/web/pods/api-0%2fexec"),
    BAD("slash_in_prefix", "GET", "/api%2Fv1/pods"),
    BAD("slash_in_nonresource", "GET", "/apis%2Fapps"),
    BAD("slash_leading", "GET", "/%2Fapi/v1/pods"),
    BAD("empty_namespace", "GET", "/api/v1/namespaces//pods"),
    BAD("empty_version", "GET", "/api//pods/x"),
    BAD("dotdot", "GET", "/api/v1/namespaces/web/pods/.."),
    BAD("dot", "GET", "/api/v1/./pods"),
    BAD("dotdot_encoded", "GET", "/api/v1/namespaces/web/pods/%2e%2E"),
    BAD("dot_encoded_nonresource", "GET", "/version/%2e"),
    BAD("dotdot_in_proxy_tail", "GET", "/api/v1/namespaces/web/services/s/proxy/../x"),
    BAD("bad_escape_hex", "GET", "/api/v1/namespaces/web/pods/a%zz"),
    BAD("bad_escape_short", "GET", "/api/v1/namespaces/web/pods/a%2"),
    BAD("bad_escape_end", "GET", "/api/v1/namespaces/web/pods/a%"),
    BAD("bad_escape_query_value", "GET", "/api/v1/pods?labelSelector=%G1"),
    BAD("bad_escape_query_key", "GET", "/api/v1/pods?%=1"),
    BAD("nul_in_path", "GET", "/api/v1/namespaces/web/pods/a%00b"),
    BAD("nul_in_query", "GET", "/api/v1/namespaces/web/pods/a/exec?command=a%00b"),
    BAD("space_in_target", "GET", "/api/v1/pods/a b"),
    BAD("control_in_target", "GET", "/api/v1/pods/a\tb"),
    BAD("del_in_target", "GET", "/api/v1/pods/a\x7f"),
    BAD("not_origin_form", "GET", "api/v1/pods"),
    BAD("absolute_form", "GET", "http://x/api/v1/pods"),
    BAD("empty_target", "GET", ""),
    BAD("query_only", "GET", "?watch=1"),
};

static void test_parse_case(void **state)
{
    const parse_case_t *c = *state;
    bl_kreq_t r;
    int rc = parse(&r, c->method, c->target);
    assert_int_equal(rc, c->rc);
    if (rc == BL_OK) {
        check_fields(&r, c);
        assert_int_equal(r.truncated, 0);
        assert_string_equal(r.method, c->method);
    }
}

/* ---- query details ---- */

static void test_query_exec(void **state)
{
    (void)state;
    bl_kreq_t r;
    parse_ok(&r, "POST", PODS "/api-0/exec?command=sh&command=-c&command=echo+hi%20there&command="
                         "&container=app&stdin=true&stdout=false&stderr=0&tty=1&container=other");
    assert_int_equal(r.argc, 4);
    assert_string_equal(bl_kreq_arg(&r, 0), "sh");
    assert_string_equal(bl_kreq_arg(&r, 1), "-c");
    assert_string_equal(bl_kreq_arg(&r, 2), "echo hi there");
    assert_string_equal(bl_kreq_arg(&r, 3), "");
    assert_string_equal(r.container, "app");   /* the first value, as Go takes it */
    assert_int_equal(r.stdin_, 1);
    assert_int_equal(r.stdout_, 0);
    assert_int_equal(r.stderr_, 0);
    assert_int_equal(r.tty, 1);
    assert_int_equal(r.argv_truncated, 0);
}

static void test_query_attach_and_unrelated(void **state)
{
    (void)state;
    bl_kreq_t r;
    parse_ok(&r, "GET", PODS "/api-0/attach?command=ls&container=app&stdin=1&tty=true");
    assert_int_equal(r.argc, 0);                /* attach has no command */
    assert_string_equal(r.container, "app");
    assert_true(r.stdin_ && r.tty);
    parse_ok(&r, "GET", PODS "/api-0?container=app&command=ls&stdin=true&follow=true&ports=80");
    assert_string_equal(r.container, "");       /* exec options only on exec/attach */
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.stdin_, 0);
    assert_int_equal(r.follow, 0);
    assert_int_equal(r.nports, 0);
}

static void test_query_log(void **state)
{
    (void)state;
    bl_kreq_t r;
    parse_ok(&r, "GET", PODS "/api-0/log?container=app&follow=true&previous=1&tailLines=10");
    assert_string_equal(r.container, "app");
    assert_true(r.follow && r.previous);
    assert_int_equal(r.tail_lines, 10);
    parse_ok(&r, "GET", PODS "/api-0/log");
    assert_int_equal(r.tail_lines, -1);
    assert_int_equal(r.follow, 0);
    parse_ok(&r, "GET", PODS "/api-0/log?tailLines=-5");
    assert_int_equal(r.tail_lines, -1);
    parse_ok(&r, "GET", PODS "/api-0/log?tailLines=12abc");
    assert_int_equal(r.tail_lines, -1);
    parse_ok(&r, "GET", PODS "/api-0/log?tailLines=99999999999999999999");
    assert_int_equal(r.tail_lines, -1);
    parse_ok(&r, "GET", PODS "/api-0/log?tailLines=%2B7&follow=false");
    assert_int_equal(r.tail_lines, 7);
    assert_int_equal(r.follow, 0);
}

static void test_query_ports(void **state)
{
    (void)state;
    bl_kreq_t r;
    parse_ok(&r, "POST", PODS "/api-0/portforward?ports=8080&ports=0&ports=70000&ports=x&ports=9090");
    assert_int_equal(r.nports, 2);
    assert_int_equal(r.ports[0], 8080);
    assert_int_equal(r.ports[1], 9090);
    assert_int_equal(r.truncated, 0);
}

static void test_query_common(void **state)
{
    (void)state;
    bl_kreq_t r;
    parse_ok(&r, "GET", PODS "?labelSelector=app+in+(a,b)&labelSelector=x&fieldSelector=status.phase%3DRunning");
    assert_string_equal(r.label_selector, "app in (a,b)");
    assert_string_equal(r.field_selector, "status.phase=Running");
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps?dryRun=All&fieldManager=me");
    assert_string_equal(r.dry_run, "All");
    assert_string_equal(r.field_manager, "me");
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps?dryRun=Nope");
    assert_string_equal(r.dry_run, "");
    parse_ok(&r, "PATCH", "/api/v1/namespaces/web/configmaps/x?force=true");
    assert_int_equal(r.force, 1);
    parse_ok(&r, "GET", "/api/v1/pods?&&x&=y&watch=1");   /* odd pairs are skipped */
    assert_string_equal(r.verb, "watch");
}

/* ---- bounds ---- */

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_truncation_fields(void **state)
{
    (void)state;
    bl_kreq_t r;
    char target[2048];
    char *longname = repeat('n', 300);
    snprintf(target, sizeof(target), "/api/v1/namespaces/web/pods/%s", longname);
    parse_ok(&r, "GET", target);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(strlen(r.name), sizeof(r.name) - 1);
    assert_memory_equal(r.name, longname, sizeof(r.name) - 1);
    snprintf(target, sizeof(target), "/api/v1/namespaces/%.100s/pods", longname);
    parse_ok(&r, "GET", target);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(strlen(r.namespace_), sizeof(r.namespace_) - 1);
    snprintf(target, sizeof(target), "/api/v1/namespaces/web/pods?labelSelector=%s", longname);
    parse_ok(&r, "GET", target);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(strlen(r.label_selector), sizeof(r.label_selector) - 1);
    free(longname);
    /* the path itself */
    char *longpath = repeat('p', 1000);
    longpath[0] = '/';
    parse_ok(&r, "GET", longpath);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(strlen(r.path), sizeof(r.path) - 1);
    free(longpath);
    parse_ok(&r, "VERYLONGMETHODNAMEHERE", "/api/v1/pods");
    assert_int_equal(r.truncated, 1);
    assert_int_equal(strlen(r.method), sizeof(r.method) - 1);
    parse_ok(&r, "GET", "/api/v1/pods");
    assert_int_equal(r.truncated, 0);
}

static void test_truncation_argv(void **state)
{
    (void)state;
    bl_kreq_t r;
    static char target[16384];
    size_t off = (size_t)snprintf(target, sizeof(target), "%s", PODS "/api-0/exec?container=c");
    for (int i = 0; i < BL_KREQ_MAX_ARGV + 5; i++)
        off += (size_t)snprintf(target + off, sizeof(target) - off, "&command=w%d", i);
    parse_ok(&r, "GET", target);
    assert_int_equal(r.argc, BL_KREQ_MAX_ARGV);
    assert_int_equal(r.argv_truncated, 1);
    assert_string_equal(bl_kreq_arg(&r, BL_KREQ_MAX_ARGV - 1), "w63");
    /* one word longer than the whole argv store */
    char *big = repeat('a', BL_KREQ_ARGV_BYTES + 10);
    snprintf(target, sizeof(target), PODS "/api-0/exec?command=ls&command=%s&command=z", big);
    parse_ok(&r, "GET", target);
    assert_int_equal(r.argc, 1);
    assert_int_equal(r.argv_truncated, 1);
    /* words that together overflow the store: later ones are dropped, never cut */
    big[1500] = '\0';
    snprintf(target, sizeof(target), PODS "/api-0/exec?command=%s&command=%s&command=%s", big, big, big);
    parse_ok(&r, "GET", target);
    assert_int_equal(r.argc, 2);
    assert_int_equal(strlen(bl_kreq_arg(&r, 1)), 1500);
    assert_int_equal(r.argv_truncated, 1);
    free(big);
}

static void test_truncation_ports(void **state)
{
    (void)state;
    bl_kreq_t r;
    char target[1024];
    size_t off = (size_t)snprintf(target, sizeof(target), "%s", PODS "/api-0/portforward?x=1");
    for (int i = 0; i < 20; i++)
        off += (size_t)snprintf(target + off, sizeof(target) - off, "&ports=%d", 1000 + i);
    parse_ok(&r, "POST", target);
    assert_int_equal(r.nports, BL_KREQ_MAX_PORTS);
    assert_int_equal(r.ports[15], 1015);
    assert_int_equal(r.truncated, 1);
}

/* ---- bodies ---- */

static void body(bl_kreq_t *r, const char *ct, const char *b, size_t len)
{
    assert_int_equal(bl_kreq_body(r, S(ct), b, len), BL_OK);
}

static void test_body_json_create(void **state)
{
    (void)state;
    bl_kreq_t r;
    const char *b = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\","
                    "\"namespace\":\"other\"},\"data\":{\"a\":\"b\"}}\n";
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.name, "x");
    assert_string_equal(r.namespace_, "web");   /* the path wins */
    assert_string_equal(r.body_kind, "ConfigMap");
    /* a prefix never parses, so it never names anything */
    for (size_t n = 0; n < strlen(b) - 1; n++) {
        parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
        body(&r, "application/json", b, n);
        assert_string_equal(r.name, "");
        assert_string_equal(r.body_kind, "");
    }
    /* the namespace comes from the body only if the path had none */
    parse_ok(&r, "POST", "/api/v1/configmaps");
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.namespace_, "other");
    /* a namespace object is not "in" a namespace */
    parse_ok(&r, "POST", "/api/v1/namespaces");
    const char *ns = "{\"metadata\":{\"name\":\"team\",\"namespace\":\"x\"}}";
    body(&r, "application/json; charset=utf-8", ns, strlen(ns));
    assert_string_equal(r.name, "team");
    assert_string_equal(r.namespace_, "");
}

static void test_body_never_overrides(void **state)
{
    (void)state;
    bl_kreq_t r;
    const char *b = "{\"metadata\":{\"name\":\"other\",\"namespace\":\"elsewhere\"}}";
    parse_ok(&r, "PUT", "/api/v1/namespaces/web/configmaps/x");
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.name, "x");
    assert_string_equal(r.namespace_, "web");
    parse_ok(&r, "POST", PODS "/api-0/eviction");
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.name, "api-0");
    parse_ok(&r, "GET", "/version");
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.name, "");
}

static void test_body_json_rejects(void **state)
{
    (void)state;
    bl_kreq_t r;
    static const char *const bad[] = {
        "{\"metadata\":{\"name\":\"a\\u0000b\"}}",   /* NUL would cut the name */
        "{\"metadata\":{\"name\":\"x\"}} {}",        /* trailing data */
        "[{\"metadata\":{\"name\":\"x\"}}]",
        "\"x\"",
        "{\"metadata\":{\"name\":\"x\"}",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
        body(&r, "application/json", bad[i], strlen(bad[i]));
        assert_string_equal(r.name, "");
    }
    /* duplicates: the last one wins, as in Go */
    const char *dup = "{\"metadata\":{\"name\":\"a\"},\"metadata\":{\"name\":\"b\"}}";
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    body(&r, "application/json", dup, strlen(dup));
    assert_string_equal(r.name, "b");
    /* a very long name is kept truncated, and says so */
    char *big = repeat('n', 400);
    char doc[600];
    snprintf(doc, sizeof(doc), "{\"metadata\":{\"name\":\"%s\"}}", big);
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    body(&r, "application/json", doc, strlen(doc));
    assert_int_equal(strlen(r.name), sizeof(r.name) - 1);
    assert_int_equal(r.truncated, 1);
    free(big);
}

static void test_body_replicas(void **state)
{
    (void)state;
    bl_kreq_t r;
    static const struct {
        const char *method, *target, *ct, *body;
        long replicas;
    } cases[] = {
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/merge-patch+json",
          "{\"spec\":{\"replicas\":5}}", 5 },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale",
          "application/strategic-merge-patch+json", "{\"spec\":{\"replicas\":0}}", 0 },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json-patch+json",
          "[{\"op\":\"test\",\"path\":\"/spec/replicas\",\"value\":1},"
          "{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":4}]", 4 },
        { "PUT", "/apis/apps/v1/namespaces/web/statefulsets/db/scale", "application/json",
          "{\"kind\":\"Scale\",\"spec\":{\"replicas\":3},\"status\":{\"replicas\":1}}", 3 },
        /* the main resource: only a patch that sets nothing else is a scale */
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api", "application/merge-patch+json",
          "{\"spec\":{\"replicas\":3}}", 3 },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api", "application/merge-patch+json",
          "{\"spec\":{\"replicas\":3,\"paused\":true}}", -1 },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api", "application/merge-patch+json",
          "{\"spec\":{\"replicas\":3},\"metadata\":{}}", -1 },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api", "application/json-patch+json",
          "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2}]", 2 },
        { "PATCH", "/apis/apps/v1/namespaces/web/deployments/api", "application/json-patch+json",
          "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2},"
          "{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"evil\"}]", -1 },
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api", "application/json",
          "{\"spec\":{\"replicas\":3}}", -1 },
        /* not an int32 >= 0 */
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json",
          "{\"spec\":{\"replicas\":5.0}}", -1 },
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json",
          "{\"spec\":{\"replicas\":\"5\"}}", -1 },
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json",
          "{\"spec\":{\"replicas\":-1}}", -1 },
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json",
          "{\"spec\":{\"replicas\":2147483648}}", -1 },
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json",
          "{\"spec\":{\"replicas\":2147483647}}", 2147483647 },
        { "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale", "application/json",
          "{\"spec\":{\"replicas\":5}", -1 },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++) {
        parse_ok(&r, cases[i].method, cases[i].target);
        body(&r, cases[i].ct, cases[i].body, strlen(cases[i].body));
        if (r.replicas != cases[i].replicas)
            fail_msg("case %zu: replicas %ld, want %ld", i, r.replicas, cases[i].replicas);
    }
}

static void test_body_patch_types(void **state)
{
    (void)state;
    bl_kreq_t r;
    static const char *const map[][2] = {
        { "application/json-patch+json", "json" },
        { "application/merge-patch+json", "merge" },
        { "Application/Merge-Patch+JSON ; charset=utf-8", "merge" },
        { "application/strategic-merge-patch+json", "strategic" },
        { "application/apply-patch+yaml", "apply" },
        { "application/apply-patch+cbor", "apply" },
        { "application/json", "" },
        { "", "" },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(map); i++) {
        parse_ok(&r, "PATCH", "/api/v1/namespaces/web/configmaps/x");
        body(&r, map[i][0], NULL, 0);   /* typed by the header even without a body */
        assert_string_equal(r.patch_type, map[i][1]);
    }
    parse_ok(&r, "PUT", "/api/v1/namespaces/web/configmaps/x");
    body(&r, "application/merge-patch+json", "{}", 2);
    assert_string_equal(r.patch_type, "");      /* only PATCH has a patch type */
}

static void test_body_restart(void **state)
{
    (void)state;
    bl_kreq_t r;
    const char *ok = "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
                     "{\"kubectl.kubernetes.io/restartedAt\":\"2026-11-28T06:14:51Z\"}}}}}";
    const char *more = "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
                       "{\"kubectl.kubernetes.io/restartedAt\":\"x\"}},\"spec\":{}}}}";
    const char *more2 = "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
                        "{\"kubectl.kubernetes.io/restartedAt\":\"x\",\"a\":\"b\"}}}}}";
    parse_ok(&r, "PATCH", "/apis/apps/v1/namespaces/web/deployments/api");
    body(&r, "application/strategic-merge-patch+json", ok, strlen(ok));
    assert_int_equal(r.body_restart, 1);
    parse_ok(&r, "PATCH", "/apis/apps/v1/namespaces/web/deployments/api");
    body(&r, "application/strategic-merge-patch+json", more, strlen(more));
    assert_int_equal(r.body_restart, 0);
    parse_ok(&r, "PATCH", "/apis/apps/v1/namespaces/web/deployments/api");
    body(&r, "application/strategic-merge-patch+json", more2, strlen(more2));
    assert_int_equal(r.body_restart, 0);
    parse_ok(&r, "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/status");
    body(&r, "application/strategic-merge-patch+json", ok, strlen(ok));
    assert_int_equal(r.body_restart, 0);
}

static void test_body_delete_dry_run(void **state)
{
    (void)state;
    bl_kreq_t r;
    const char *b = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":"
                    "\"Background\",\"dryRun\":[\"All\"]}";
    parse_ok(&r, "DELETE", PODS "/api-0");
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.dry_run, "All");
    parse_ok(&r, "DELETE", PODS);
    body(&r, "application/json", b, strlen(b));
    assert_string_equal(r.dry_run, "All");
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    body(&r, "application/json", b, strlen(b));   /* not DeleteOptions there */
    assert_string_equal(r.dry_run, "");
}

#define PB_CT "application/vnd.kubernetes.protobuf"

/* A whole protobuf body. */
static void pb(bl_kreq_t *r, const char *b, size_t len)
{
    assert_int_equal(bl_kreq_body_total(r, S(PB_CT), b, len, len), BL_OK);
}

static void test_body_protobuf(void **state)
{
    (void)state;
    bl_kreq_t r;
    size_t len = sizeof(cm_protobuf) - 1;
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    pb(&r, cm_protobuf, len);
    assert_string_equal(r.name, "x");
    assert_string_equal(r.body_kind, "ConfigMap");
    assert_string_equal(render(&r, ""), "kubectl create configmap/x -n web");
    /* the namespace from the envelope when the path has none */
    parse_ok(&r, "POST", "/api/v1/configmaps");
    pb(&r, cm_protobuf, len);
    assert_string_equal(r.namespace_, "web");
    /* a prefix yields nothing at all, even one that ends between fields */
    for (size_t n = 0; n < len; n++) {
        parse_ok(&r, "POST", "/api/v1/configmaps");
        bl_kreq_body_total(&r, S(PB_CT), cm_protobuf, n, len);
        assert_string_equal(r.name, "");
        assert_string_equal(r.namespace_, "");
        assert_string_equal(r.body_kind, "");
    }
    /* nor does a body whose length the caller does not know */
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    body(&r, PB_CT, cm_protobuf, len);
    assert_string_equal(r.name, "");
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    bl_kreq_body_total(&r, S(PB_CT), cm_protobuf, len, UINT64_MAX);
    assert_string_equal(r.name, "");
    /* protobuf bytes under a JSON content type are not read as protobuf */
    parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
    bl_kreq_body_total(&r, S("application/json"), cm_protobuf, len, len);
    assert_string_equal(r.name, "");
}

static void test_body_protobuf_shapes(void **state)
{
    (void)state;
    bl_kreq_t r;
    static const struct {
        const char *bytes;
        size_t len;
        const char *name, *kind;
    } cases[] = {
#define PB(s, name, kind) { s, sizeof(s) - 1, name, kind }
        /* two ObjectMeta occurrences merge: the later name wins */
        PB("k8s\0\x12\x0a" "\x0a\x03\x0a\x01" "a" "\x0a\x03\x0a\x01" "b", "b", ""),
        /* two raw fields: bytes, so only the last counts */
        PB("k8s\0\x12\x05\x0a\x03\x0a\x01" "a" "\x12\x05\x0a\x03\x0a\x01" "c", "c", ""),
        /* compressed raw (contentEncoding set): only the kind is known */
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x12\x05\x0a\x03\x0a\x01" "a" "\x1a\x04gzip", "", "Kind"),
        /* unknown fields of every wire type are skipped */
        PB("k8s\0\x28\x96\x01" "\x31" "12345678" "\x3d" "1234" "\x12\x05\x0a\x03\x0a\x01" "d", "d", ""),
        /* malformed: nothing at all */
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x08\x01", "", ""),               /* TypeMeta as varint */
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x12\x02\x08\x01", "", ""),       /* metadata as varint */
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x00\x01", "", ""),               /* field 0 */
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x2b", "", ""),                   /* group start */
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "", ""),
        PB("k8s\0\x0a\x06\x12\x04" "Kind" "\x12\x7f\x0a", "", ""),           /* raw overruns */
        PB("k8s\0\x0a\x06\x12\x04" "K\0nd", "", ""),                         /* NUL in a string */
        PB("k8s\0\x12\x07\x0a\x05\x0a\x03" "a\0b", "", ""),
        PB("k8x\0\x12\x05\x0a\x03\x0a\x01" "a", "", ""),                     /* wrong magic */
        PB("k8s", "", ""),
#undef PB
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++) {
        parse_ok(&r, "POST", "/api/v1/namespaces/web/configmaps");
        pb(&r, cases[i].bytes, cases[i].len);
        if (strcmp(r.name, cases[i].name) != 0 || strcmp(r.body_kind, cases[i].kind) != 0)
            fail_msg("case %zu: name '%s' kind '%s'", i, r.name, r.body_kind);
    }
}

static void test_body_protobuf_scale(void **state)
{
    (void)state;
    bl_kreq_t r;
    /* autoscaling/v1 Scale{1 metadata{1 "api"}, 2 spec{1 replicas: 9}} */
    static const char scale[] = "k8s\0\x0a\x17\x0a\x0e" "autoscaling/v1" "\x12\x05Scale"
                                "\x12\x0b" "\x0a\x05\x0a\x03" "api" "\x12\x02\x08\x09";
    static const char neg[] = "k8s\0\x12\x0d\x12\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
    parse_ok(&r, "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale");
    pb(&r, scale, sizeof(scale) - 1);
    assert_int_equal(r.replicas, 9);
    assert_string_equal(r.body_kind, "Scale");
    parse_ok(&r, "PUT", "/apis/apps/v1/namespaces/web/deployments/api/scale");
    pb(&r, neg, sizeof(neg) - 1);
    assert_int_equal(r.replicas, -1);
    /* field 2 of anything but a Scale is not a replica count */
    parse_ok(&r, "PUT", "/apis/apps/v1/namespaces/web/deployments/api");
    pb(&r, scale, sizeof(scale) - 1);
    assert_int_equal(r.replicas, -1);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_capture_entries),
        cmocka_unit_test(test_capture_protobuf_body),
        cmocka_unit_test(test_capture_details),
        cmocka_unit_test(test_query_exec),
        cmocka_unit_test(test_query_attach_and_unrelated),
        cmocka_unit_test(test_query_log),
        cmocka_unit_test(test_query_ports),
        cmocka_unit_test(test_query_common),
        cmocka_unit_test(test_truncation_fields),
        cmocka_unit_test(test_truncation_argv),
        cmocka_unit_test(test_truncation_ports),
        cmocka_unit_test(test_body_json_create),
        cmocka_unit_test(test_body_never_overrides),
        cmocka_unit_test(test_body_json_rejects),
        cmocka_unit_test(test_body_replicas),
        cmocka_unit_test(test_body_patch_types),
        cmocka_unit_test(test_body_restart),
        cmocka_unit_test(test_body_delete_dry_run),
        cmocka_unit_test(test_body_protobuf),
        cmocka_unit_test(test_body_protobuf_shapes),
        cmocka_unit_test(test_body_protobuf_scale),
    };
    size_t n = BL_ARRAY_LEN(fixed) + BL_ARRAY_LEN(cap_cases) + BL_ARRAY_LEN(parse_cases);
    struct CMUnitTest *t = calloc(n, sizeof(*t));
    size_t k = 0;
    if (t == NULL)
        return 1;
    for (size_t i = 0; i < BL_ARRAY_LEN(fixed); i++)
        t[k++] = fixed[i];
    for (size_t i = 0; i < BL_ARRAY_LEN(cap_cases); i++)
        t[k++] = (struct CMUnitTest){ .name = cap_cases[i].name, .test_func = test_capture_case,
                                      .initial_state = (void *)&cap_cases[i] };
    for (size_t i = 0; i < BL_ARRAY_LEN(parse_cases); i++)
        t[k++] = (struct CMUnitTest){ .name = parse_cases[i].name, .test_func = test_parse_case,
                                      .initial_state = (void *)&parse_cases[i] };
    int failed = _cmocka_run_group_tests("reqinfo", t, n, NULL, NULL);
    for (size_t i = 0; i < cap_n; i++)
        free(cap_entries[i].body);
    free(t);
    return failed;
}
