/*
 * test_render.c - requests rendered as kubectl commands and as JSON members
 * (src/kube/render.c, names.c).
 *
 * Each row of the table is a request on the wire (method, target, body,
 * Kubectl-Command header) and the one line byline must write for it; rows
 * run as separate cmocka tests. The rest checks that hostile values are
 * quoted so the line reads as exactly the words the request carried, that
 * the JSON members parse, and that the documented output bounds hold for
 * the worst request a bl_kreq_t can describe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "kube/reqinfo.h"

static bl_str_t S(const char *s)
{
    return (bl_str_t){ s, s ? strlen(s) : 0 };
}

typedef struct {
    const char *name;
    const char *method, *target;
    const char *ctype, *body, *kcmd;
    const char *line;
} render_case_t;

#define MERGE "application/merge-patch+json"
#define SMP "application/strategic-merge-patch+json"
#define JSONP "application/json-patch+json"
#define SSA "application/apply-patch+yaml"
#define JSON "application/json"
#define NS "/api/v1/namespaces/web"
#define APPS "/apis/apps/v1/namespaces/web"
#define CM_BODY "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}"
#define RESTART "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":" \
                "{\"kubectl.kubernetes.io/restartedAt\":\"2026-11-28T06:14:51Z\"}}}}}"

static const render_case_t cases[] = {
    /* reads */
    { "get_pods", "GET", NS "/pods", NULL, NULL, NULL, "kubectl get pods -n web" },
    { "get_pods_watch", "GET", NS "/pods?watch=true", NULL, NULL, NULL, "kubectl get pods -n web --watch" },
    { "get_pods_legacy_watch", "GET", "/api/v1/watch/namespaces/web/pods", NULL, NULL, NULL,
      "kubectl get pods -n web --watch" },
    { "get_deployment", "GET", APPS "/deployments/api", NULL, NULL, NULL, "kubectl get deployment/api -n web" },
    { "get_pods_all_namespaces", "GET", "/api/v1/pods", NULL, NULL, NULL, "kubectl get pods -A" },
    { "get_deployments_all_namespaces", "GET", "/apis/apps/v1/deployments", NULL, NULL, NULL,
      "kubectl get deployments -A" },
    { "get_namespaces", "GET", "/api/v1/namespaces", NULL, NULL, NULL, "kubectl get namespaces" },
    { "get_namespace", "GET", "/api/v1/namespaces/web", NULL, NULL, NULL, "kubectl get namespace/web" },
    { "get_nodes", "GET", "/api/v1/nodes", NULL, NULL, NULL, "kubectl get nodes" },
    { "get_node", "GET", "/api/v1/nodes/n1", NULL, NULL, NULL, "kubectl get node/n1" },
    { "get_clusterroles", "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", NULL, NULL, NULL,
      "kubectl get clusterroles" },
    { "get_networkpolicy", "GET", "/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/x", NULL, NULL,
      NULL, "kubectl get networkpolicy/x -n web" },
    { "get_ingress", "GET", "/apis/networking.k8s.io/v1/namespaces/web/ingresses/x", NULL, NULL, NULL,
      "kubectl get ingress/x -n web" },
    { "get_endpoints", "GET", NS "/endpoints/x", NULL, NULL, NULL, "kubectl get endpoints/x -n web" },
    { "get_hpa_v2", "GET", "/apis/autoscaling/v2/namespaces/web/horizontalpodautoscalers/api", NULL, NULL,
      NULL, "kubectl get horizontalpodautoscaler/api -n web" },
    { "get_events_k8s_io", "GET", "/apis/events.k8s.io/v1/namespaces/web/events/e1", NULL, NULL, NULL,
      "kubectl get event.events.k8s.io/e1 -n web" },
    { "get_crd_named", "GET", "/apis/example.com/v1/namespaces/web/widgets/x", NULL, NULL, NULL,
      "kubectl get widgets.example.com/x -n web" },
    { "get_crd_list", "GET", "/apis/example.com/v1/widgets", NULL, NULL, NULL,
      "kubectl get widgets.example.com -A" },
    { "get_crd_shadowing_builtin", "GET", "/apis/example.com/v1/namespaces/web/deployments/api", NULL, NULL,
      NULL, "kubectl get deployments.example.com/api -n web" },
    { "get_unknown_core", "GET", NS "/gizmos/g", NULL, NULL, NULL, "kubectl get gizmos/g -n web" },
    { "get_selectors", "GET", NS "/pods?labelSelector=app%3Dapi,tier+in+(a,b)&fieldSelector=status.phase%3DRunning",
      NULL, NULL, NULL, "kubectl get pods -n web -l 'app=api,tier in (a,b)' --field-selector=status.phase=Running" },
    { "get_watch_by_field_name", "GET", NS "/pods?fieldSelector=metadata.name%3Dapi-0&watch=1", NULL, NULL,
      NULL, "kubectl get pod/api-0 -n web --watch" },
    { "get_list_by_field_name_and_more", "GET",
      NS "/pods?fieldSelector=metadata.name%3Dapi-0,status.phase%3DRunning", NULL, NULL, NULL,
      "kubectl get pod/api-0 -n web --field-selector=metadata.name=api-0,status.phase=Running" },
    { "get_scale", "GET", APPS "/deployments/api/scale", NULL, NULL, NULL,
      "kubectl get deployment/api -n web --subresource=scale" },
    { "head", "HEAD", NS "/pods/x", NULL, NULL, NULL, "kubectl get pod/x -n web" },
    { "top_pods", "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/web/pods", NULL, NULL, NULL,
      "kubectl top pod -n web" },
    { "top_pod", "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/web/pods/api-0", NULL, NULL, NULL,
      "kubectl top pod api-0 -n web" },
    { "top_pods_all", "GET", "/apis/metrics.k8s.io/v1beta1/pods", NULL, NULL, NULL, "kubectl top pod -A" },
    { "top_nodes", "GET", "/apis/metrics.k8s.io/v1beta1/nodes", NULL, NULL, NULL, "kubectl top node" },
    /* discovery and other non-resource paths */
    { "raw_version", "GET", "/version?timeout=5s", NULL, NULL, NULL, "kubectl get --raw /version" },
    { "raw_group_version", "GET", "/apis/apps/v1", NULL, NULL, NULL, "kubectl get --raw /apis/apps/v1" },
    { "raw_openapi", "GET", "/openapi/v3/apis/apps/v1?hash=1", NULL, NULL, NULL,
      "kubectl get --raw /openapi/v3/apis/apps/v1" },
    { "raw_post", "POST", "/version", NULL, NULL, NULL, "kubectl create --raw /version" },
    { "raw_odd_method", "OPTIONS", NS "/pods", NULL, NULL, NULL,
      "kubectl options --raw /api/v1/namespaces/web/pods" },
    { "raw_service_proxy", "GET", NS "/services/http:web:80/proxy/healthz?x=1", NULL, NULL, NULL,
      "kubectl get --raw /api/v1/namespaces/web/services/http:web:80/proxy/healthz" },
    { "raw_node_proxy_post", "POST", "/api/v1/nodes/n1/proxy/run/web/api-0/app", NULL, NULL, NULL,
      "kubectl create --raw /api/v1/nodes/n1/proxy/run/web/api-0/app" },
    { "raw_legacy_proxy", "GET", "/api/v1/proxy/namespaces/web/pods/api-0", NULL, NULL, NULL,
      "kubectl get --raw /api/v1/proxy/namespaces/web/pods/api-0" },
    /* scale */
    { "scale_patch", "PATCH", APPS "/deployments/api/scale", MERGE, "{\"spec\":{\"replicas\":5}}", NULL,
      "kubectl scale deployment/api --replicas=5 -n web" },
    { "scale_put", "PUT", APPS "/statefulsets/db/scale", JSON, "{\"kind\":\"Scale\",\"spec\":{\"replicas\":0}}",
      NULL, "kubectl scale statefulset/db --replicas=0 -n web" },
    { "scale_body_unseen", "PUT", APPS "/deployments/api/scale", NULL, NULL, NULL,
      "kubectl scale deployment/api -n web" },
    { "scale_by_main_patch", "PATCH", APPS "/deployments/api", MERGE, "{\"spec\":{\"replicas\":3}}", NULL,
      "kubectl scale deployment/api --replicas=3 -n web" },
    { "scale_crd", "PATCH", "/apis/example.com/v1/namespaces/web/widgets/w/scale", MERGE,
      "{\"spec\":{\"replicas\":2}}", NULL, "kubectl scale widgets.example.com/w --replicas=2 -n web" },
    /* exec, attach, logs, port-forward, debug */
    { "exec", "GET", NS "/pods/api-0/exec?command=ls&command=-la&command=%2Ftmp&container=app&stdout=true",
      NULL, NULL, NULL, "kubectl exec api-0 -n web -c app -- ls -la /tmp" },
    { "exec_it", "POST", NS "/pods/api-0/exec?command=sh&container=app&stdin=true&tty=true", NULL, NULL, NULL,
      "kubectl exec api-0 -n web -c app -i -t -- sh" },
    { "exec_quoted", "GET", NS "/pods/api-0/exec?command=sh&command=-c&command=echo%20hi", NULL, NULL, NULL,
      "kubectl exec api-0 -n web -- sh -c 'echo hi'" },
    { "exec_no_command", "GET", NS "/pods/api-0/exec?container=app", NULL, NULL, NULL,
      "kubectl exec api-0 -n web -c app" },
    { "exec_name_like_flag", "GET", NS "/pods/-x/exec?command=id", NULL, NULL, NULL,
      "kubectl exec pod/-x -n web -- id" },
    { "attach", "GET", NS "/pods/api-0/attach?container=app&stdout=true", NULL, NULL, NULL,
      "kubectl attach api-0 -n web -c app" },
    { "attach_it", "POST", NS "/pods/api-0/attach?container=app&stdin=1&tty=1", NULL, NULL, NULL,
      "kubectl attach api-0 -n web -c app -i -t" },
    { "logs", "GET", NS "/pods/api-0/log?container=app", NULL, NULL, NULL, "kubectl logs api-0 -n web -c app" },
    { "logs_all_flags", "GET", NS "/pods/api-0/log?container=app&follow=true&tailLines=10&previous=true", NULL,
      NULL, NULL, "kubectl logs api-0 -n web -c app -f --tail=10 -p" },
    { "port_forward", "POST", NS "/pods/api-0/portforward", NULL, NULL, NULL,
      "kubectl port-forward pod/api-0 -n web" },
    { "port_forward_ports", "GET", NS "/pods/api-0/portforward?ports=8080&ports=9090", NULL, NULL, NULL,
      "kubectl port-forward pod/api-0 -n web 8080 9090" },
    { "debug", "PATCH", NS "/pods/api-0/ephemeralcontainers", SMP, "{}", NULL, "kubectl debug api-0 -n web" },
    /* create */
    { "create_json", "POST", NS "/configmaps", JSON, CM_BODY, "kubectl create configmap", "kubectl create configmap/x -n web" },
    { "create_unnamed", "POST", NS "/configmaps", JSON, "{\"metadata\":{\"generateName\":\"x-\"}}", NULL,
      "kubectl create configmap -n web" },
    { "create_namespace", "POST", "/api/v1/namespaces", JSON, "{\"metadata\":{\"name\":\"team\"}}", NULL,
      "kubectl create namespace/team" },
    { "create_dry_run", "POST", NS "/configmaps?dryRun=All", JSON, CM_BODY, NULL,
      "kubectl create configmap/x -n web --dry-run=server" },
    { "create_by_client_apply", "POST", NS "/configmaps", JSON, CM_BODY, "kubectl apply",
      "kubectl apply configmap/x -n web" },
    { "create_eviction", "POST", NS "/pods/api-0/eviction", JSON, "{\"metadata\":{\"name\":\"api-0\"}}", NULL,
      "kubectl create pod/api-0 -n web --subresource=eviction" },
    { "create_token", "POST", NS "/serviceaccounts/deployer/token", JSON, "{}", NULL,
      "kubectl create token deployer -n web" },
    { "create_crd_object", "POST", "/apis/example.com/v1/namespaces/web/widgets", JSON,
      "{\"metadata\":{\"name\":\"w\"}}", NULL, "kubectl create widgets.example.com/w -n web" },
    /* update, patch, apply */
    { "replace", "PUT", APPS "/deployments/api", JSON, "{}", NULL, "kubectl replace deployment/api -n web" },
    { "replace_status", "PUT", APPS "/deployments/api/status", JSON, "{}", NULL,
      "kubectl replace deployment/api -n web --subresource=status" },
    { "replace_finalize", "PUT", "/api/v1/namespaces/web/finalize", JSON, "{}", NULL,
      "kubectl replace namespace/web --subresource=finalize" },
    { "patch_merge", "PATCH", APPS "/deployments/api", MERGE, "{\"spec\":{\"paused\":true}}", NULL,
      "kubectl patch deployment/api -n web --type=merge" },
    { "patch_json", "PATCH", APPS "/deployments/api", JSONP, "[]", NULL,
      "kubectl patch deployment/api -n web --type=json" },
    { "patch_strategic", "PATCH", APPS "/deployments/api", SMP, "{}", NULL, "kubectl patch deployment/api -n web" },
    { "patch_status", "PATCH", APPS "/deployments/api/status", MERGE, "{}", NULL,
      "kubectl patch deployment/api -n web --subresource=status --type=merge" },
    { "patch_dry_run", "PATCH", APPS "/deployments/api?dryRun=All", MERGE, "{}", NULL,
      "kubectl patch deployment/api -n web --type=merge --dry-run=server" },
    { "apply_server_side", "PATCH", NS "/configmaps/x?fieldManager=kubectl&force=false", SSA, CM_BODY,
      "kubectl apply", "kubectl apply --server-side configmap/x -n web" },
    { "apply_server_side_force", "PATCH", NS "/configmaps/x?fieldManager=kubectl&force=true", SSA, CM_BODY,
      NULL, "kubectl apply --server-side configmap/x -n web --force-conflicts" },
    { "apply_client_side", "PATCH", APPS "/deployments/api", SMP, "{}", "kubectl apply",
      "kubectl apply deployment/api -n web" },
    { "rollout_restart", "PATCH", APPS "/deployments/api", SMP, RESTART, "kubectl rollout restart",
      "kubectl rollout restart deployment/api -n web" },
    { "rollout_restart_daemonset", "PATCH", APPS "/daemonsets/agent", SMP, RESTART, "kubectl rollout restart",
      "kubectl rollout restart daemonset/agent -n web" },
    { "rollout_restart_claim_but_other_patch", "PATCH", APPS "/deployments/api", SMP,
      "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"evil\"}]}}}}",
      "kubectl rollout restart", "kubectl patch deployment/api -n web" },
    { "rollout_restart_claim_body_unseen", "PATCH", APPS "/deployments/api", SMP, NULL,
      "kubectl rollout restart", "kubectl patch deployment/api -n web" },
    { "restart_body_without_claim", "PATCH", APPS "/deployments/api", SMP, RESTART, NULL,
      "kubectl patch deployment/api -n web" },
    { "kubectl_command_not_exact", "PATCH", APPS "/deployments/api", SMP, "{}", "kubectl applyx",
      "kubectl patch deployment/api -n web" },
    /* delete */
    { "delete_pod", "DELETE", NS "/pods/api-0", JSON, "{\"propagationPolicy\":\"Background\"}", NULL,
      "kubectl delete pod/api-0 -n web" },
    { "delete_namespace", "DELETE", "/api/v1/namespaces/web", NULL, NULL, NULL,
      "kubectl delete namespace/web" },
    { "delete_dry_run_body", "DELETE", NS "/pods/api-0", JSON, "{\"dryRun\":[\"All\"]}", NULL,
      "kubectl delete pod/api-0 -n web --dry-run=server" },
    { "deletecollection_all", "DELETE", NS "/pods", NULL, NULL, NULL, "kubectl delete pods -n web --all" },
    { "deletecollection_label", "DELETE", NS "/pods?labelSelector=app%3Dapi", NULL, NULL, NULL,
      "kubectl delete pods -n web -l app=api" },
    { "deletecollection_field", "DELETE", NS "/pods?fieldSelector=status.phase%3DFailed", NULL, NULL, NULL,
      "kubectl delete pods -n web --field-selector=status.phase=Failed" },
    { "deletecollection_all_namespaces", "DELETE", "/api/v1/pods", NULL, NULL, NULL,
      "kubectl delete pods -A --all" },
    { "deletecollection_cluster_scoped", "DELETE", "/api/v1/nodes", NULL, NULL, NULL,
      "kubectl delete nodes --all" },
    /* untrusted values, quoted */
    { "quote_space_in_name", "GET", NS "/pods/a%20b", NULL, NULL, NULL, "kubectl get 'pod/a b' -n web" },
    { "quote_subst_in_namespace", "GET", "/api/v1/namespaces/%24(id)/pods", NULL, NULL, NULL,
      "kubectl get pods -n '$(id)'" },
    { "quote_semicolon_arg", "GET", NS "/pods/p/exec?command=a%3Brm%20-rf%20%2F", NULL, NULL, NULL,
      "kubectl exec p -n web -- 'a;rm -rf /'" },
    { "quote_single_quote", "GET", NS "/pods/p/exec?command=it%27s", NULL, NULL, NULL,
      "kubectl exec p -n web -- 'it'\\''s'" },
    { "quote_empty_arg", "GET", NS "/pods/p/exec?command=echo&command=", NULL, NULL, NULL,
      "kubectl exec p -n web -- echo ''" },
    { "quote_newline", "GET", NS "/pods/p/exec?command=a%0Ab", NULL, NULL, NULL,
      "kubectl exec p -n web -- $'a\\nb'" },
    { "quote_escape_sequence", "GET", NS "/pods/p/exec?command=%1B%5B2J%09%5C%27", NULL, NULL, NULL,
      "kubectl exec p -n web -- $'\\x1b[2J\\t\\\\\\''" },
    { "quote_unicode", "GET", NS "/pods/p/exec?command=caf%C3%A9", NULL, NULL, NULL,
      "kubectl exec p -n web -- $'caf\\xc3\\xa9'" },
    { "quote_bidi_override", "GET", NS "/pods/p%E2%80%AEx", NULL, NULL, NULL,
      "kubectl get $'pod/p\\xe2\\x80\\xaex' -n web" },
    { "quote_invalid_utf8", "GET", NS "/pods/p/exec?command=%FF", NULL, NULL, NULL,
      "kubectl exec p -n web -- $'\\xff'" },
    { "quote_glob_and_tilde", "GET", NS "/pods/p/exec?command=ls&command=*&command=~root", NULL, NULL, NULL,
      "kubectl exec p -n web -- ls '*' '~root'" },
    { "quote_raw_path", "GET", "/foo/%22x%22/$(id)", NULL, NULL, NULL, "kubectl get --raw '/foo/%22x%22/$(id)'" },
    { "quote_subresource", "GET", NS "/pods/p/a%20b", NULL, NULL, NULL,
      "kubectl get pod/p -n web --subresource='a b'" },
    { "quote_container", "GET", NS "/pods/p/log?container=a%60b%60", NULL, NULL, NULL,
      "kubectl logs p -n web -c 'a`b`'" },
};

static char *render_line(const bl_kreq_t *r, const char *kcmd)
{
    static char line[BL_KREQ_RENDER_MAX + 1];
    bl_buf_t b;
    bl_buf_init(&b, BL_KREQ_RENDER_MAX);
    assert_int_equal(bl_kreq_render(r, S(kcmd), &b), BL_OK);
    memcpy(line, bl_buf_data(&b), bl_buf_size(&b));
    line[bl_buf_size(&b)] = '\0';
    bl_buf_free(&b);
    return line;
}

static void prepare(bl_kreq_t *r, const render_case_t *c)
{
    const char *err;
    if (bl_kreq_parse(r, S(c->method), S(c->target), &err) != BL_OK)
        fail_msg("refused %s %s: %s", c->method, c->target, err);
    size_t len = c->body ? strlen(c->body) : 0;
    assert_int_equal(bl_kreq_body_total(r, S(c->ctype), c->body, len, len), BL_OK);
}

/* Only printable ASCII, so nothing can break or disguise the audit line. */
static void assert_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            fail_msg("byte 0x%02x at %zu in rendered output", (unsigned char)s[i], i);
}

static void test_render_case(void **state)
{
    const render_case_t *c = *state;
    bl_kreq_t r;
    prepare(&r, c);
    char *line = render_line(&r, c->kcmd);
    assert_string_equal(line, c->line);
    assert_printable(line, strlen(line));
}

/* ---- JSON ---- */

/* Parses the members as an object; the caller decrefs. */
static json_t *json_of(const bl_kreq_t *r)
{
    bl_buf_t b;
    json_error_t e;
    bl_buf_init(&b, BL_KREQ_JSON_MAX + 2);
    assert_int_equal(bl_buf_append(&b, "{", 1), BL_OK);
    assert_int_equal(bl_kreq_json(r, &b), BL_OK);
    assert_int_equal(bl_buf_append(&b, "}", 1), BL_OK);
    json_t *o = json_loadb(bl_buf_data(&b), bl_buf_size(&b), 0, &e);
    if (o == NULL)
        fail_msg("invalid JSON (%s): %.*s", e.text, (int)bl_buf_size(&b), bl_buf_data(&b));
    bl_buf_free(&b);
    return o;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "(absent)";
}

static void test_json_exec(void **state)
{
    (void)state;
    bl_kreq_t r;
    render_case_t c = { "x", "POST", NS "/pods/api-0/exec?command=ls&command=-la&container=app&stdin=1&tty=1",
                        NULL, NULL, NULL, NULL };
    prepare(&r, &c);
    json_t *o = json_of(&r);
    assert_string_equal(jstr(o, "verb"), "create");
    assert_string_equal(jstr(o, "apiVersion"), "v1");
    assert_string_equal(jstr(o, "namespace"), "web");
    assert_string_equal(jstr(o, "resource"), "pods");
    assert_string_equal(jstr(o, "subresource"), "exec");
    assert_string_equal(jstr(o, "name"), "api-0");
    assert_string_equal(jstr(o, "container"), "app");
    assert_null(json_object_get(o, "apiGroup"));   /* empty members are omitted */
    json_t *cmd = json_object_get(o, "command");
    assert_int_equal(json_array_size(cmd), 2);
    assert_string_equal(json_string_value(json_array_get(cmd, 1)), "-la");
    assert_true(json_is_true(json_object_get(o, "stdin")));
    assert_true(json_is_true(json_object_get(o, "tty")));
    assert_null(json_object_get(o, "stdout"));
    assert_null(json_object_get(o, "discovery"));
    assert_null(json_object_get(o, "replicas"));
    json_decref(o);
}

static void test_json_members(void **state)
{
    (void)state;
    bl_kreq_t r;
    render_case_t scale = { "x", "PATCH", APPS "/deployments/api/scale?dryRun=All&fieldManager=m", MERGE,
                            "{\"spec\":{\"replicas\":5}}", NULL, NULL };
    prepare(&r, &scale);
    json_t *o = json_of(&r);
    assert_string_equal(jstr(o, "apiGroup"), "apps");
    assert_int_equal(json_integer_value(json_object_get(o, "replicas")), 5);
    assert_string_equal(jstr(o, "patchType"), "merge");
    assert_string_equal(jstr(o, "dryRun"), "All");
    assert_string_equal(jstr(o, "fieldManager"), "m");
    json_decref(o);

    render_case_t disc = { "x", "GET", "/apis/apps/v1?timeout=32s", NULL, NULL, NULL, NULL };
    prepare(&r, &disc);
    o = json_of(&r);
    assert_true(json_is_true(json_object_get(o, "discovery")));
    assert_string_equal(jstr(o, "path"), "/apis/apps/v1");
    assert_string_equal(jstr(o, "verb"), "get");
    json_decref(o);

    render_case_t pf = { "x", "GET", NS "/pods/p/portforward?ports=80&ports=443", NULL, NULL, NULL, NULL };
    prepare(&r, &pf);
    o = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(o, "ports")), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(o, "ports"), 1)), 443);
    json_decref(o);

    render_case_t logs = { "x", "GET", NS "/pods/p/log?tailLines=0&follow=1", NULL, NULL, NULL, NULL };
    prepare(&r, &logs);
    o = json_of(&r);
    assert_int_equal(json_integer_value(json_object_get(o, "tailLines")), 0);
    assert_true(json_is_true(json_object_get(o, "follow")));
    json_decref(o);

    render_case_t cm = { "x", "POST", NS "/configmaps", JSON, CM_BODY, NULL, NULL };
    prepare(&r, &cm);
    o = json_of(&r);
    assert_string_equal(jstr(o, "kind"), "ConfigMap");
    assert_string_equal(jstr(o, "name"), "x");
    json_decref(o);

    /* hostile bytes survive as escaped JSON, not raw */
    render_case_t evil = { "x", "GET", NS "/pods/a%22b%0Ac%FF/exec?command=%5C%01", NULL, NULL, NULL, NULL };
    prepare(&r, &evil);
    o = json_of(&r);
    assert_string_equal(jstr(o, "name"), "a\"b\nc\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "command"), 0)), "\\\x01");
    json_decref(o);
}

static void test_json_empty(void **state)
{
    (void)state;
    bl_kreq_t r;
    bl_buf_t b;
    memset(&r, 0, sizeof(r));
    r.tail_lines = r.replicas = -1;
    bl_buf_init(&b, 64);
    assert_int_equal(bl_kreq_json(&r, &b), BL_OK);
    assert_int_equal(bl_buf_size(&b), 0);
    bl_buf_free(&b);
}

/* ---- bounds ---- */

/* The largest, most hostile request a bl_kreq_t can hold: every string full
 * of bytes that need the longest escapes, every list at its limit. */
static void worst_case(bl_kreq_t *r, unsigned char fill)
{
    memset(r, 0, sizeof(*r));
#define FILL(f) memset(r->f, fill, sizeof(r->f) - 1)
    FILL(verb); FILL(api_group); FILL(api_version); FILL(namespace_); FILL(resource);
    FILL(subresource); FILL(name); FILL(path); FILL(method); FILL(container);
    FILL(label_selector); FILL(field_selector); FILL(dry_run); FILL(field_manager);
    FILL(body_kind); FILL(patch_type);
#undef FILL
    r->is_resource = r->is_discovery = r->truncated = r->argv_truncated = 1;
    r->stdin_ = r->stdout_ = r->stderr_ = r->tty = r->follow = r->previous = r->force = 1;
    r->tail_lines = r->replicas = 0x7fffffffffffffffL;
    r->nports = BL_KREQ_MAX_PORTS;
    for (size_t i = 0; i < BL_KREQ_MAX_PORTS; i++)
        r->ports[i] = 65535;
    /* 64 words sharing the 4096 bytes, each NUL-terminated */
    size_t per = BL_KREQ_ARGV_BYTES / BL_KREQ_MAX_ARGV;
    r->argc = BL_KREQ_MAX_ARGV;
    for (size_t i = 0; i < BL_KREQ_MAX_ARGV; i++) {
        r->argv_off[i] = i * per;
        memset(r->argv_buf + i * per, fill, per - 1);
        r->argv_buf[i * per + per - 1] = '\0';
    }
}

static void test_bounds(void **state)
{
    (void)state;
    static bl_kreq_t r;
    static const unsigned char fills[] = { 0x01, 0xff, '\'', '"', '\\', 'a', '\n' };
    static const char *const verbs[] = { "get", "list", "watch", "create", "update", "patch",
                                         "delete", "deletecollection", "proxy", "" };
    static const char *const subs[] = { "exec", "attach", "log", "portforward", "scale", "proxy",
                                        "ephemeralcontainers", "token", "" };
    for (size_t f = 0; f < sizeof(fills); f++)
        for (size_t v = 0; v < BL_ARRAY_LEN(verbs); v++)
            for (size_t s = 0; s < BL_ARRAY_LEN(subs); s++)
                for (int res = 0; res < 2; res++) {
                    bl_buf_t b;
                    worst_case(&r, fills[f]);
                    snprintf(r.verb, sizeof(r.verb), "%s", verbs[v]);
                    if (subs[s][0] != '\0')
                        snprintf(r.subresource, sizeof(r.subresource), "%s", subs[s]);
                    if (res)   /* the special forms want pods in the core group */
                        snprintf(r.resource, sizeof(r.resource), "pods"), r.api_group[0] = '\0';
                    r.is_resource = (v != BL_ARRAY_LEN(verbs) - 1) || res;
                    bl_buf_init(&b, BL_KREQ_RENDER_MAX);
                    assert_int_equal(bl_kreq_render(&r, S("kubectl apply"), &b), BL_OK);
                    assert_printable(bl_buf_data(&b), bl_buf_size(&b));
                    bl_buf_free(&b);
                    bl_buf_init(&b, BL_KREQ_JSON_MAX);
                    assert_int_equal(bl_kreq_json(&r, &b), BL_OK);
                    bl_buf_free(&b);
                }
}

static void test_full_buffer(void **state)
{
    (void)state;
    bl_kreq_t r;
    render_case_t c = { "x", "GET", NS "/pods/api-0/exec?command=ls&container=app", NULL, NULL, NULL, NULL };
    prepare(&r, &c);
    for (size_t max = 0; max < 60; max++) {
        bl_buf_t b;
        bl_buf_init(&b, max);
        if (max > 0)
            assert_int_equal(bl_buf_append(&b, "#", 1), BL_OK);
        int rc = bl_kreq_render(&r, S(""), &b);
        /* either the whole line fits, or nothing was added */
        if (rc == BL_OK)
            assert_int_equal(bl_buf_size(&b), 1 + strlen("kubectl exec api-0 -n web -c app -- ls"));
        else
            assert_int_equal(bl_buf_size(&b), max > 0 ? 1 : 0);
        bl_buf_reset(&b);
        if (max > 0)
            assert_int_equal(bl_buf_append(&b, "{", 1), BL_OK);
        rc = bl_kreq_json(&r, &b);
        if (rc != BL_OK)
            assert_int_equal(bl_buf_size(&b), max > 0 ? 1 : 0);
        bl_buf_free(&b);
    }
}

static void test_truncated_marker(void **state)
{
    (void)state;
    bl_kreq_t r;
    char target[600];
    char name[301];
    memset(name, 'n', 300);
    name[300] = '\0';
    snprintf(target, sizeof(target), NS "/pods/%s", name);
    render_case_t c = { "x", "DELETE", target, NULL, NULL, NULL, NULL };
    prepare(&r, &c);
    char *line = render_line(&r, "");
    assert_non_null(strstr(line, " # truncated"));
    assert_int_equal(strncmp(line, "kubectl delete pod/nnn", 22), 0);
    json_t *o = json_of(&r);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_json_exec),
        cmocka_unit_test(test_json_members),
        cmocka_unit_test(test_json_empty),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_full_buffer),
        cmocka_unit_test(test_truncated_marker),
    };
    size_t n = BL_ARRAY_LEN(fixed) + BL_ARRAY_LEN(cases);
    struct CMUnitTest *t = calloc(n, sizeof(*t));
    size_t k = 0;
    if (t == NULL)
        return 1;
    for (size_t i = 0; i < BL_ARRAY_LEN(fixed); i++)
        t[k++] = fixed[i];
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++)
        t[k++] = (struct CMUnitTest){ .name = cases[i].name, .test_func = test_render_case,
                                      .initial_state = (void *)&cases[i] };
    int failed = _cmocka_run_group_tests("render", t, n, NULL, NULL);
    free(t);
    return failed;
}
