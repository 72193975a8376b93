/* test_ocsf.c - request records as OCSF 1.3.0 API Activity events:
 * the verb -> activity_id map, the attributes the class requires, the
 * outcome and severity, canonical JSON that jansson parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/jcs.h"
#include "audit/ocsf.h"
#include "core/common.h"

/* A merged record as audit tail --json / query --format json print it. */
static const char *const EXEC_REC =
    "{\"action\":\"kubectl exec api-0 -n web -c app -- ls /\",\"actor\":\"agent-deploybot\",\"bytes_in\":0,"
    "\"bytes_out\":120,\"connection\":\"prod-eks\",\"credential\":\"token\",\"duration_us\":81234,"
    "\"exec\":{\"exit_code\":3},\"groups\":[\"deployers\",\"oncall\"],\"id\":\"019a2b3c-4d5e-7f00-8000-0000000000aa\","
    "\"kind\":\"request\",\"kubectl_session\":\"5f2c\",\"method\":\"POST\",\"request\":{\"apiVersion\":\"v1\","
    "\"command\":[\"ls\",\"/\"],\"container\":\"app\",\"name\":\"api-0\",\"namespace\":\"web\",\"resource\":\"pods\","
    "\"subresource\":\"exec\",\"verb\":\"create\"},\"result\":\"allowed\",\"source_ip\":\"10.1.2.3\",\"status\":101,"
    "\"ts\":\"2026-06-15T12:04:01.123456Z\",\"upgraded\":true,"
    "\"uri\":\"/api/v1/namespaces/web/pods/api-0/exec?command=ls&command=%2F\",\"user_agent\":\"kubectl/v1.33.0\"}";

static json_t *load(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

/* Renders `rec`, checks the bytes are canonical JSON that jansson parses,
 * and returns the parsed event (owned by the caller). */
static json_t *render(const json_t *rec)
{
    bl_buf_t b;
    bl_buf_init(&b, 1 << 20);
    assert_int_equal(bl_ocsf_render(rec, &b), BL_OK);
    assert_true(bl_jcs_is_canonical(bl_buf_data(&b), bl_buf_size(&b)));
    json_error_t e;
    json_t *ev = json_loadb(bl_buf_data(&b), bl_buf_size(&b), JSON_REJECT_DUPLICATES, &e);
    bl_buf_free(&b);
    assert_non_null(ev);
    return ev;
}

/* json_pointer-ish lookup: "api.request.uid", "resources.0.type". */
static json_t *at(json_t *v, const char *path)
{
    char key[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(key)) : json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

static void want_str(json_t *ev, const char *path, const char *want)
{
    const char *got = json_string_value(at(ev, path));
    if (got == NULL || strcmp(got, want))
        fail_msg("%s: got %s, want %s", path, got ? got : "(absent)", want);
}

static void want_int(json_t *ev, const char *path, long long want)
{
    json_t *v = at(ev, path);
    if (!json_is_integer(v) || json_integer_value(v) != want)
        fail_msg("%s: got %lld, want %lld", path, json_is_integer(v) ? (long long)json_integer_value(v) : -1LL, want);
}

static void verbs_map_to_activities(void **state)
{
    (void)state;
    static const struct {
        const char *verb;
        int id;
        const char *name;
    } cases[] = {
        { "create", 1, "Create" },  { "get", 2, "Read" },      { "list", 2, "Read" },
        { "watch", 2, "Read" },     { "update", 3, "Update" }, { "patch", 3, "Update" },
        { "delete", 4, "Delete" },  { "deletecollection", 4, "Delete" },
        { "proxy", 99, "Other" },   { "post", 99, "Other" },   { "GET", 99, "Other" },
        { "", 0, "Unknown" },       { NULL, 0, "Unknown" },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++) {
        assert_int_equal(bl_ocsf_activity(cases[i].verb), cases[i].id);
        assert_string_equal(bl_ocsf_activity_name(cases[i].id), cases[i].name);
    }
}

/* Every attribute OCSF 1.3.0 requires of API Activity (base event:
 * activity_id, category_uid, class_uid, type_uid, time, severity_id,
 * metadata.product.vendor_name, metadata.version; class: actor, api with
 * api.operation, src_endpoint) and the recommended ones byline fills. */
static void exec_record_has_the_required_attributes(void **state)
{
    (void)state;
    json_t *rec = load(EXEC_REC);
    json_t *ev = render(rec);
    want_int(ev, "class_uid", 6003);
    want_str(ev, "class_name", "API Activity");
    want_int(ev, "category_uid", 6);
    want_str(ev, "category_name", "Application Activity");
    want_int(ev, "activity_id", 1); /* exec is create on pods/exec */
    want_str(ev, "activity_name", "Create");
    want_int(ev, "type_uid", 600301);
    want_str(ev, "type_name", "API Activity: Create");
    want_int(ev, "time", 1781525041123LL); /* epoch milliseconds */
    want_int(ev, "severity_id", 1);
    want_str(ev, "severity", "Informational");
    want_int(ev, "status_id", 1);
    want_str(ev, "status", "Success");
    want_str(ev, "metadata.version", "1.3.0");
    want_str(ev, "metadata.product.name", "byline");
    want_str(ev, "metadata.product.vendor_name", "byline");
    want_str(ev, "metadata.product.version", BL_VERSION);
    want_str(ev, "metadata.uid", "019a2b3c-4d5e-7f00-8000-0000000000aa");
    want_str(ev, "actor.user.name", "agent-deploybot");
    want_str(ev, "actor.user.groups.0.name", "deployers");
    want_str(ev, "actor.user.groups.1.name", "oncall");
    want_str(ev, "actor.session.uid", "5f2c");
    want_str(ev, "api.operation", "create");
    want_str(ev, "api.request.uid", "019a2b3c-4d5e-7f00-8000-0000000000aa");
    want_int(ev, "api.response.code", 101);
    want_str(ev, "api.version", "v1");
    want_str(ev, "api.service.name", "prod-eks");
    assert_null(at(ev, "api.group")); /* the core group has no name */
    want_str(ev, "src_endpoint.ip", "10.1.2.3");
    want_str(ev, "http_request.http_method", "POST");
    want_str(ev, "http_request.user_agent", "kubectl/v1.33.0");
    want_str(ev, "resources.0.type", "pods/exec");
    want_str(ev, "resources.0.name", "api-0");
    want_str(ev, "resources.0.namespace", "web");
    want_str(ev, "resources.0.uid", "namespaces/web/pods/api-0/exec");
    want_str(ev, "message", "kubectl exec api-0 -n web -c app -- ls /");
    want_str(ev, "unmapped.action", "kubectl exec api-0 -n web -c app -- ls /");
    want_int(ev, "unmapped.exec_exit_code", 3);
    want_int(ev, "unmapped.duration_us", 81234);
    assert_true(json_is_true(at(ev, "unmapped.upgraded")));
    json_decref(ev);
    json_decref(rec);
}

static void outcomes_and_severity(void **state)
{
    (void)state;
    static const struct {
        const char *rec;
        int status_id, severity_id;
        const char *error;
    } cases[] = {
        { "{\"kind\":\"request\",\"actor\":\"a\",\"result\":\"denied\",\"status\":403,\"reason\":\"no\","
          "\"request\":{\"verb\":\"delete\",\"resource\":\"namespaces\",\"name\":\"web\"}}", 2, 3, "denied" },
        { "{\"kind\":\"request\",\"actor\":null,\"result\":\"unauthenticated\",\"status\":401}", 2, 3,
          "unauthenticated" },
        { "{\"kind\":\"request\",\"actor\":\"a\",\"result\":\"aborted\",\"reason\":\"restart\"}", 2, 2, "aborted" },
        { "{\"kind\":\"request\",\"actor\":\"a\",\"result\":\"allowed\",\"status\":404}", 2, 2, "allowed" },
        { "{\"kind\":\"request\",\"actor\":\"a\",\"result\":\"error\",\"status\":502}", 2, 2, "error" },
        { "{\"kind\":\"request\",\"actor\":\"a\",\"request\":{\"verb\":\"watch\"}}", 0, 1, NULL },
        { "{\"kind\":\"request\",\"actor\":\"a\",\"result\":\"allowed\",\"status\":201}", 1, 1, NULL },
    };
    static const char *const status[] = { "Unknown", "Success", "Failure" };
    for (size_t i = 0; i < BL_ARRAY_LEN(cases); i++) {
        json_t *rec = load(cases[i].rec), *ev = render(rec);
        want_int(ev, "status_id", cases[i].status_id);
        want_str(ev, "status", status[cases[i].status_id]);
        want_int(ev, "severity_id", cases[i].severity_id);
        if (cases[i].error && cases[i].status_id == 2)
            want_str(ev, "api.response.error", cases[i].error);
        else
            assert_null(at(ev, "api.response.error"));
        /* always there, whatever the record lacks */
        assert_non_null(at(ev, "actor.user.name"));
        assert_non_null(at(ev, "api.operation"));
        assert_non_null(at(ev, "metadata.product.vendor_name"));
        assert_non_null(at(ev, "src_endpoint"));
        json_decref(ev);
        json_decref(rec);
    }
    json_t *rec = load(cases[0].rec), *ev = render(rec);
    want_int(ev, "activity_id", 4);
    want_int(ev, "type_uid", 600304);
    want_str(ev, "status_detail", "no");
    want_str(ev, "api.response.error_message", "no");
    want_str(ev, "resources.0.uid", "namespaces/web"); /* cluster-scoped: no namespace */
    assert_null(at(ev, "resources.0.namespace"));
    json_decref(ev);
    json_decref(rec);
    rec = load(cases[1].rec); /* nobody authenticated */
    ev = render(rec);
    want_str(ev, "actor.user.name", "unauthenticated");
    assert_null(at(ev, "actor.user.uid"));
    assert_null(at(ev, "resources"));
    json_decref(ev);
    json_decref(rec);
}

static void other_verbs_and_groups(void **state)
{
    (void)state;
    json_t *rec = load("{\"kind\":\"request\",\"actor\":\"a\",\"result\":\"allowed\",\"status\":200,"
                       "\"request\":{\"verb\":\"proxy\",\"apiGroup\":\"apps\",\"apiVersion\":\"v1\","
                       "\"resource\":\"deployments\",\"namespace\":\"web\"},\"ts\":\"2026-06-15T12:00:00Z\"}");
    json_t *ev = render(rec);
    want_int(ev, "activity_id", 99);
    want_str(ev, "activity_name", "proxy"); /* Other: the source's own word */
    want_int(ev, "type_uid", 600399);
    want_str(ev, "api.group.name", "apps");
    want_str(ev, "resources.0.uid", "namespaces/web/deployments");
    assert_null(at(ev, "resources.0.name"));
    want_int(ev, "time", 1781524800000LL);
    json_decref(ev);
    json_decref(rec);
}

static void notices_have_no_ocsf_form(void **state)
{
    (void)state;
    json_t *rec = load("{\"kind\":\"notice\",\"event\":\"start\",\"ts\":\"2026-06-15T12:00:00Z\"}");
    bl_buf_t b;
    bl_buf_init(&b, 4096);
    assert_int_equal(bl_ocsf_render(rec, &b), BL_DECLINED);
    assert_int_equal(bl_buf_size(&b), 0);
    assert_null(bl_ocsf_event(rec));
    assert_int_equal(bl_ocsf_render(NULL, &b), BL_DECLINED);
    json_decref(rec);
    /* a full buffer is an error, with nothing half-written */
    rec = load(EXEC_REC);
    bl_buf_t small;
    bl_buf_init(&small, 64);
    assert_int_equal(bl_ocsf_render(rec, &small), BL_ERROR);
    assert_int_equal(bl_buf_size(&small), 0);
    bl_buf_free(&small);
    bl_buf_free(&b);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verbs_map_to_activities),
        cmocka_unit_test(exec_record_has_the_required_attributes),
        cmocka_unit_test(outcomes_and_severity),
        cmocka_unit_test(other_verbs_and_groups),
        cmocka_unit_test(notices_have_no_ocsf_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
