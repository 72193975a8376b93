/* ocsf.c - request records as OCSF API Activity events (ocsf.h). */
#include <stdio.h>
#include "audit/jcs.h"
#include "audit/ocsf.h"
#include "audit/when.h"

int bl_ocsf_activity(const char *verb)
{
    static const struct {
        const char *verb;
        int id;
    } map[] = {
        { "create", BL_OCSF_CREATE }, { "get", BL_OCSF_READ },      { "list", BL_OCSF_READ },
        { "watch", BL_OCSF_READ },    { "update", BL_OCSF_UPDATE }, { "patch", BL_OCSF_UPDATE },
        { "delete", BL_OCSF_DELETE }, { "deletecollection", BL_OCSF_DELETE },
    };
    if (verb == NULL || *verb == '\0')
        return BL_OCSF_UNKNOWN;
    for (size_t i = 0; i < BL_ARRAY_LEN(map); i++)
        if (!strcmp(verb, map[i].verb))
            return map[i].id;
    return BL_OCSF_OTHER;
}

const char *bl_ocsf_activity_name(int activity_id)
{
    switch (activity_id) {
    case BL_OCSF_CREATE: return "Create";
    case BL_OCSF_READ: return "Read";
    case BL_OCSF_UPDATE: return "Update";
    case BL_OCSF_DELETE: return "Delete";
    case BL_OCSF_OTHER: return "Other";
    default: return "Unknown";
    }
}

static const char *bl_ocsf_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : NULL;
}

/* Sets o[key] to a copy of string s when s is set. */
static void bl_ocsf_set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

/* Sets o[key] to `v` (stolen) unless it is an empty object. */
static void bl_ocsf_set_obj(json_t *o, const char *key, json_t *v)
{
    if (json_object_size(v) > 0)
        json_object_set_new(o, key, v);
    else
        json_decref(v);
}

/* Copies rec[key] into o[key] when it is there. */
static void bl_ocsf_copy(json_t *o, const char *key, const json_t *rec, const char *from)
{
    json_t *v = json_object_get(rec, from);
    if (v)
        json_object_set(o, key, v);
}

/* Outcome: status_id 1 Success (forwarded, status below 400), 2 Failure
 * (refused, failed, aborted, or the cluster said 4xx/5xx), 0 Unknown (no
 * result yet). */
static int bl_ocsf_status_id(const json_t *rec)
{
    const char *result = bl_ocsf_str(rec, "result");
    json_int_t status = json_integer_value(json_object_get(rec, "status"));
    if (result == NULL)
        return 0;
    return !strcmp(result, "allowed") && status < 400 ? 1 : 2;
}

/* Severity: 3 Medium when byline itself refused the request (denied,
 * unauthenticated), 2 Low for other failures, else 1 Informational. */
static int bl_ocsf_severity_id(const json_t *rec, int status_id)
{
    const char *result = bl_ocsf_str(rec, "result");
    if (result && (!strcmp(result, "denied") || !strcmp(result, "unauthenticated")))
        return 3;
    return status_id == 2 ? 2 : 1;
}

static const char *bl_ocsf_severity_name(int id)
{
    return id == 3 ? "Medium" : id == 2 ? "Low" : "Informational";
}

/* actor.user: name (and uid) of the identity, its groups; actor.session. */
static json_t *bl_ocsf_actor(const json_t *rec)
{
    json_t *actor = json_object(), *user = json_object(), *groups = json_array(), *session = json_object();
    const char *name = bl_ocsf_str(rec, "actor");
    size_t i;
    json_t *g;
    json_object_set_new(user, "name", json_string(name ? name : "unauthenticated"));
    bl_ocsf_set_str(user, "uid", name);
    json_array_foreach(json_object_get(rec, "groups"), i, g) {
        if (json_is_string(g))
            json_array_append_new(groups, json_pack("{s:O}", "name", g));
    }
    if (json_array_size(groups))
        json_object_set(user, "groups", groups);
    json_decref(groups);
    json_object_set_new(actor, "user", user);
    bl_ocsf_set_str(session, "uid", bl_ocsf_str(rec, "kubectl_session"));
    bl_ocsf_set_obj(actor, "session", session);
    return actor;
}

/* api: operation (the verb), request.uid (the id), response.code, the
 * API group and version, and the connection as the service. */
static json_t *bl_ocsf_api(const json_t *rec, int status_id)
{
    const json_t *req = json_object_get(rec, "request");
    json_t *api = json_object(), *request = json_object(), *response = json_object(), *group = json_object();
    json_t *service = json_object();
    const char *verb = bl_ocsf_str(req, "verb"), *method = bl_ocsf_str(rec, "method");
    json_object_set_new(api, "operation", json_string(verb ? verb : method ? method : "unknown"));
    bl_ocsf_set_str(request, "uid", bl_ocsf_str(rec, "id"));
    json_object_set_new(api, "request", request);
    bl_ocsf_copy(response, "code", rec, "status");
    if (status_id == 2) {
        bl_ocsf_set_str(response, "error", bl_ocsf_str(rec, "result"));
        bl_ocsf_set_str(response, "error_message", bl_ocsf_str(rec, "reason"));
    }
    bl_ocsf_set_obj(api, "response", response);
    bl_ocsf_set_str(group, "name", bl_ocsf_str(req, "apiGroup"));
    bl_ocsf_set_obj(api, "group", group);
    bl_ocsf_set_str(api, "version", bl_ocsf_str(req, "apiVersion"));
    bl_ocsf_set_str(service, "name", bl_ocsf_str(rec, "connection"));
    bl_ocsf_set_obj(api, "service", service);
    return api;
}

/* resources[0]: the Kubernetes object or collection the request is about.
 * type is the resource (with "/subresource"); uid is its path below the
 * API version, which names it uniquely in its group: "namespaces/web/
 * deployments/api/scale". NULL for a request about no resource. */
static json_t *bl_ocsf_resources(const json_t *rec)
{
    const json_t *req = json_object_get(rec, "request");
    const char *res = bl_ocsf_str(req, "resource"), *sub = bl_ocsf_str(req, "subresource");
    const char *ns = bl_ocsf_str(req, "namespace"), *name = bl_ocsf_str(req, "name");
    bl_buf_t type, uid;
    if (res == NULL)
        return NULL;
    bl_buf_init(&type, 512);
    bl_buf_init(&uid, 1024);
    bl_buf_printf(&type, "%s%s%s", res, sub ? "/" : "", sub ? sub : "");
    if (ns)
        bl_buf_printf(&uid, "namespaces/%s/", ns);
    bl_buf_printf(&uid, "%s%s%s%s%s", res, name ? "/" : "", name ? name : "", sub ? "/" : "", sub ? sub : "");
    json_t *r = json_object();
    json_object_set_new(r, "type", json_string(bl_buf_cstr(&type)));
    json_object_set_new(r, "uid", json_string(bl_buf_cstr(&uid)));
    bl_buf_free(&type);
    bl_buf_free(&uid);
    bl_ocsf_set_str(r, "name", name);
    bl_ocsf_set_str(r, "namespace", ns);
    json_t *arr = json_array();
    json_array_append_new(arr, r);
    return arr;
}

/* unmapped: what OCSF has no attribute for, under byline's own names. */
static json_t *bl_ocsf_unmapped(const json_t *rec)
{
    static const char *const keys[] = { "action", "bytes_in", "bytes_out", "connection", "credential",
                                        "duration_us", "kubectl_command", "result", "upgraded", "uri" };
    json_t *u = json_object();
    for (size_t i = 0; i < BL_ARRAY_LEN(keys); i++)
        bl_ocsf_copy(u, keys[i], rec, keys[i]);
    json_t *exit_code = json_object_get(json_object_get(rec, "exec"), "exit_code");
    if (json_is_integer(exit_code))
        json_object_set(u, "exec_exit_code", exit_code);
    return u;
}

/* The classification and outcome members. */
static void bl_ocsf_classify(json_t *ev, const json_t *rec, int *status_id)
{
    const char *verb = bl_ocsf_str(json_object_get(rec, "request"), "verb");
    int act = bl_ocsf_activity(verb), sev;
    char type_name[64];
    json_object_set_new(ev, "activity_id", json_integer(act));
    json_object_set_new(ev, "activity_name", json_string(act == BL_OCSF_OTHER ? verb : bl_ocsf_activity_name(act)));
    json_object_set_new(ev, "category_uid", json_integer(BL_OCSF_CATEGORY_UID));
    json_object_set_new(ev, "category_name", json_string("Application Activity"));
    json_object_set_new(ev, "class_uid", json_integer(BL_OCSF_CLASS_UID));
    json_object_set_new(ev, "class_name", json_string("API Activity"));
    json_object_set_new(ev, "type_uid", json_integer(BL_OCSF_CLASS_UID * 100 + act));
    snprintf(type_name, sizeof(type_name), "API Activity: %s", bl_ocsf_activity_name(act));
    json_object_set_new(ev, "type_name", json_string(type_name));
    *status_id = bl_ocsf_status_id(rec);
    json_object_set_new(ev, "status_id", json_integer(*status_id));
    static const char *const status[] = { "Unknown", "Success", "Failure" };
    json_object_set_new(ev, "status", json_string(status[*status_id]));
    bl_ocsf_set_str(ev, "status_code", bl_ocsf_str(rec, "result"));
    bl_ocsf_set_str(ev, "status_detail", bl_ocsf_str(rec, "reason"));
    sev = bl_ocsf_severity_id(rec, *status_id);
    json_object_set_new(ev, "severity_id", json_integer(sev));
    json_object_set_new(ev, "severity", json_string(bl_ocsf_severity_name(sev)));
}

/* metadata: the OCSF version, byline as the product, the id as uid. */
static json_t *bl_ocsf_metadata(const json_t *rec)
{
    json_t *m = json_pack("{s:s, s:{s:s, s:s, s:s}}", "version", BL_OCSF_VERSION, "product", "name", "byline",
                          "vendor_name", "byline", "version", BL_VERSION);
    if (m == NULL)
        return NULL;
    bl_ocsf_set_str(m, "uid", bl_ocsf_str(rec, "id"));
    bl_ocsf_set_str(m, "original_time", bl_ocsf_str(rec, "ts"));
    bl_ocsf_set_str(m, "log_name", "byline audit ledger");
    return m;
}

json_t *bl_ocsf_event(const json_t *rec)
{
    const char *kind = bl_ocsf_str(rec, "kind"), *ts = bl_ocsf_str(rec, "ts");
    int64_t us = 0;
    int status_id;
    if (kind == NULL || strcmp(kind, "request"))
        return NULL;
    json_t *ev = json_object();
    if (ev == NULL)
        return NULL;
    bl_ocsf_classify(ev, rec, &status_id);
    if (ts)
        bl_when_rfc3339(ts, &us);
    json_object_set_new(ev, "time", json_integer(us / 1000));
    json_object_set_new(ev, "timezone_offset", json_integer(0));
    bl_ocsf_set_str(ev, "message", bl_ocsf_str(rec, "action"));
    bl_ocsf_set_obj(ev, "metadata", bl_ocsf_metadata(rec));
    json_object_set_new(ev, "actor", bl_ocsf_actor(rec));
    json_object_set_new(ev, "api", bl_ocsf_api(rec, status_id));
    json_t *src = json_object(), *http = json_object(), *res = bl_ocsf_resources(rec);
    bl_ocsf_set_str(src, "ip", bl_ocsf_str(rec, "source_ip"));
    json_object_set_new(ev, "src_endpoint", src);
    bl_ocsf_set_str(http, "http_method", bl_ocsf_str(rec, "method"));
    bl_ocsf_set_str(http, "user_agent", bl_ocsf_str(rec, "user_agent"));
    bl_ocsf_set_obj(ev, "http_request", http);
    if (res)
        json_object_set_new(ev, "resources", res);
    json_object_set_new(ev, "unmapped", bl_ocsf_unmapped(rec));
    return ev;
}

int bl_ocsf_render(const json_t *rec, bl_buf_t *out)
{
    json_t *ev = bl_ocsf_event(rec);
    if (ev == NULL)
        return BL_DECLINED;
    int rc = bl_jcs_dump(ev, out);
    json_decref(ev);
    return rc;
}
