/*
 * test_reload.c - src/proxy/reload.c's judgement of a reloaded config
 * against the one the gateway started with: what applies at once (rules,
 * identities), what is reported as needing a restart (each restart-only
 * setting by name), and what refuses the reload (connections added,
 * removed, renamed, reordered or moved to an agent). Configs are built in
 * memory; the snapshot swap itself is tested in test_identity_lifecycle.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include "proxy/reload.h"

static bl_connection_t conns_a[2] = {
    { .name = "prod", .url = "https://prod:443", .token_file = "/t/prod" },
    { .name = "stage", .url = "https://stage:443", .token_file = "/t/stage" },
};
static bl_connection_t conns_b[2];
static bl_issuer_t iss_a[1] = { { .issuer = "https://issuer", .audience = "byline" } };
static bl_issuer_t iss_b[1];
static bl_identity_t ids_b[1] = { { .name = "agent-new" } };

/* A started config `a` and a copy `b` to edit (same connections, issuers). */
static void pair(bl_config_t *a, bl_config_t *b)
{
    memset(a, 0, sizeof(*a));
    a->dir = "/etc/byline";
    a->listen_host = "127.0.0.1";
    a->listen_port = 8443;
    a->tls_cert = "/etc/byline/tls/server.crt";
    a->tls_key = "/etc/byline/tls/server.key";
    a->audit_dir = "/var/lib/byline/audit";
    a->workers = 2;
    a->drain_timeout_ms = 30000;
    a->reviewer_group = "reviewers";
    a->conns = conns_a;
    a->nconns = 2;
    a->issuers = iss_a;
    a->nissuers = 1;
    memcpy(conns_b, conns_a, sizeof(conns_a));
    memcpy(iss_b, iss_a, sizeof(iss_a));
    *b = *a;
    b->conns = conns_b;
    b->issuers = iss_b;
}

/* Runs the judgement; returns its code with the list in out (a C string). */
static int judge(const bl_config_t *a, const bl_config_t *b, char *out, size_t cap)
{
    bl_buf_t buf;
    bl_buf_init(&buf, 4096);
    int rc = bl_reload_restart_needs(a, b, &buf);
    snprintf(out, cap, "%.*s", (int)bl_buf_size(&buf), bl_buf_size(&buf) ? bl_buf_data(&buf) : "");
    bl_buf_free(&buf);
    return rc;
}

static void test_identities_apply_at_once(void **state)
{
    bl_config_t a, b;
    char out[512];
    (void)state;
    pair(&a, &b);
    b.ids = ids_b; /* identities (and rules) are the snapshot's: nothing to restart */
    b.nids = 1;
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_OK);
    assert_string_equal(out, "");
}

static void test_restart_only_settings_are_named(void **state)
{
    bl_config_t a, b;
    char out[512];
    (void)state;
    pair(&a, &b);
    b.listen_port = 9443;
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_OK);
    assert_string_equal(out, "listen");
    pair(&a, &b);
    b.tls_key = "/elsewhere/server.key";
    b.audit_dir = "/elsewhere/audit";
    b.drain_timeout_ms = 5000;
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_OK);
    assert_string_equal(out, "tls, audit, workers, limits or timeouts");
    pair(&a, &b);
    conns_b[1].url = "https://stage-2:443";
    iss_b[0].audience = "other";
    b.reviewer_group = "*";
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_OK);
    assert_string_equal(out, "connection stage, issuers, review settings (or the first review rule)");
    pair(&a, &b);
    b.nissuers = 0;
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_OK);
    assert_string_equal(out, "issuers");
}

static void test_moved_connections_refuse(void **state)
{
    bl_config_t a, b;
    char out[512];
    (void)state;
    pair(&a, &b);
    b.nconns = 1; /* removed */
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_DECLINED);
    assert_non_null(strstr(out, "needs a restart"));
    pair(&a, &b);
    conns_b[0] = conns_a[1]; /* reordered: rules refer to positions */
    conns_b[1] = conns_a[0];
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_DECLINED);
    pair(&a, &b);
    conns_b[1].name = "staging"; /* renamed */
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_DECLINED);
    pair(&a, &b);
    conns_b[0].via_agent = 1;
    assert_int_equal(judge(&a, &b, out, sizeof(out)), BL_DECLINED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identities_apply_at_once),
        cmocka_unit_test(test_restart_only_settings_are_named),
        cmocka_unit_test(test_moved_connections_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
