/*
 * test_identity_lifecycle.c - credential expiry and revocation
 * (src/auth/lifetime.c), the shared-credential heuristic (src/auth/shared.c)
 * and the live identity table (src/auth/idtable.c): swapping tables under
 * readers, reloading from files (a broken file keeps the old table), and
 * the last-used state file.
 *
 * Clocks are passed in, never read: no test depends on timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth/identity.h"
#include "auth/idtable.h"
#include "auth/lifetime.h"
#include "auth/pki.h"
#include "auth/shared.h"
#include "auth/token.h"
#include "config/file.h"
#include "core/metrics.h"

#define T2027 1798761600 /* 2027-01-01T00:00:00Z */

/* ---- times ---- */

static void test_time_parse(void **state)
{
    int64_t t = 0;
    char buf[BL_TIME_LEN + 1];
    (void)state;
    assert_int_equal(bl_time_parse("2027-01-01T00:00:00Z", &t), BL_OK);
    assert_int_equal(t, T2027);
    assert_string_equal(bl_time_format(t, buf), "2027-01-01T00:00:00Z");
    assert_int_equal(bl_time_parse("2028-02-29T23:59:59Z", &t), BL_OK); /* leap year */
    assert_string_equal(bl_time_format(t, buf), "2028-02-29T23:59:59Z");
    static const char *const bad[] = {
        "2027-02-29T00:00:00Z", "2027-13-01T00:00:00Z", "2027-04-31T00:00:00Z",
        "2027-01-01T24:00:00Z", "2027-01-01T00:60:00Z", "2027-01-01T00:00:00z",
        "2027-01-01 00:00:00Z", "2027-01-01T00:00:00", "2027-01-01T00:00:00+00:00",
        "1969-12-31T23:59:59Z", "2027-1-01T00:00:00Z ", "", "+027-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = -1;
        assert_int_equal(bl_time_parse(bad[i], &t), BL_ERROR);
        assert_int_equal(t, -1); /* untouched */
    }
}

static void test_expires_parse(void **state)
{
    const int64_t now = T2027;
    int64_t t;
    const char *why;
    (void)state;
    assert_int_equal(bl_expires_parse("90d", now, &t, &why), BL_OK);
    assert_int_equal(t, now + 90 * 86400);
    assert_int_equal(bl_expires_parse("12h", now, &t, &why), BL_OK);
    assert_int_equal(t, now + 12 * 3600);
    assert_int_equal(bl_expires_parse("30m", now, &t, &why), BL_OK);
    assert_int_equal(t, now + 30 * 60);
    assert_int_equal(bl_expires_parse("2027-06-01T12:00:00Z", now, &t, &why), BL_OK);
    assert_int_equal(t, now + (31 + 28 + 31 + 30 + 31) * 86400 + 12 * 3600);
    assert_int_equal(bl_expires_parse("2026-12-31T23:59:59Z", now, &t, &why), BL_ERROR);
    assert_string_equal(why, "the expiry must be in the future");
    assert_int_equal(bl_expires_parse("2027-01-01T00:00:00Z", now, &t, &why), BL_ERROR);
    assert_int_equal(bl_expires_parse("3660d", now, &t, &why), BL_OK); /* 10 years */
    assert_int_equal(bl_expires_parse("3661d", now, &t, &why), BL_ERROR);
    assert_string_equal(why, "a duration of at most 10 years");
    static const char *const bad[] = { "0d", "90", "d", "-1d", "1w", "1.5d", "90D", "", "1 d",
                                       "999999999d", "2027-01-01" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bl_expires_parse(bad[i], now, &t, &why), BL_ERROR);
}

/* ---- expired and revoked identities ---- */

static void test_lifetime_check(void **state)
{
    bl_identity_t id = { .name = "agent-x" };
    char why[256] = "";
    (void)state;
    assert_int_equal(bl_lifetime_check(&id, "token", T2027, why, sizeof(why)), BL_OK);
    id.expires = T2027 + 1;
    assert_int_equal(bl_lifetime_check(&id, "token", T2027, why, sizeof(why)), BL_OK);
    id.expires = T2027;
    assert_int_equal(bl_lifetime_check(&id, "token", T2027, why, sizeof(why)), BL_DECLINED);
    assert_string_equal(why, "the token of agent-x expired at 2027-01-01T00:00:00Z; ask an "
                             "operator for a new one");
    assert_int_equal(bl_lifetime_check(&id, "cert", T2027 + 5, why, sizeof(why)), BL_DECLINED);
    assert_string_equal(why, "the client certificate of agent-x expired at 2027-01-01T00:00:00Z; "
                             "ask an operator for a new one");
    /* Revocation wins over expiry, and says so with the reason. */
    id.revoked = T2027 - 3600;
    id.revoked_reason = "left the team";
    assert_int_equal(bl_lifetime_check(&id, "token", T2027, why, sizeof(why)), BL_DECLINED);
    assert_string_equal(why, "the token of agent-x was revoked at 2026-12-31T23:00:00Z (left the "
                             "team); ask an operator for a new identity");
    id.expires = 0;
    id.revoked_reason = NULL;
    assert_int_equal(bl_lifetime_check(&id, "token", 0, why, sizeof(why)), BL_DECLINED);
    assert_string_equal(why, "the token of agent-x was revoked at 2026-12-31T23:00:00Z; ask an "
                             "operator for a new identity");
}

/* ---- the shared-credential heuristic ---- */

#define MIN (60 * 1000)
#define W BL_SHARE_WINDOW_MS

static void test_shared_one_address(void **state)
{
    bl_share_t s = { 0 };
    (void)state;
    /* One agent, many kubectl runs in sequence and in parallel, one address. */
    for (int i = 0; i < 100; i++) {
        char sid[40];
        snprintf(sid, sizeof(sid), "session-%d", i / 3);
        assert_int_equal(bl_share_note(&s, "10.0.0.1", sid, 1000 + i * 1000, W), 0);
    }
}

static void test_shared_moved_agent(void **state)
{
    bl_share_t s = { 0 };
    (void)state;
    /* A pod restarts with a new address: A ... A, then B ... B. */
    assert_int_equal(bl_share_note(&s, "10.0.0.1", "s1", 1000, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.1", "s1", 2000, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "s2", 3000, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "s3", 4000, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "", 5000, W), 0);
}

static void test_shared_interleaved(void **state)
{
    bl_share_t s = { 0 };
    bl_buf_t a, b;
    (void)state;
    assert_int_equal(bl_share_note(&s, "10.0.0.1", "s1", 1000, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "s2", 2000, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.1", "s1", 3000, W), 1); /* A, B, A */
    bl_buf_init(&a, 4096);
    bl_buf_init(&b, 4096);
    assert_int_equal(bl_share_evidence(&s, &a, &b), BL_OK);
    assert_string_equal(bl_buf_cstr(&a), "[\"10.0.0.1\",\"10.0.0.2\"]");
    assert_string_equal(bl_buf_cstr(&b), "[\"s1\",\"s2\"]");
    /* Once per window, however long the interleaving goes on. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(bl_share_note(&s, i % 2 ? "10.0.0.1" : "10.0.0.2", "", 4000 + i * MIN / 10, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "s9", 3000 + W, W), 1);
    bl_buf_free(&a);
    bl_buf_free(&b);
}

static void test_shared_window(void **state)
{
    bl_share_t s = { 0 };
    (void)state;
    /* B comes after A has been quiet for longer than the window: A is
     * forgotten, so A coming back is a fresh start, not an interleaving. */
    assert_int_equal(bl_share_note(&s, "10.0.0.1", "", 0, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "", 11 * MIN, W), 0);
    assert_int_equal(bl_share_note(&s, "10.0.0.1", "", 12 * MIN, W), 0);
    /* ...but B again now interleaves with A's new span. */
    assert_int_equal(bl_share_note(&s, "10.0.0.2", "", 13 * MIN, W), 1);
}

static void test_shared_bounded(void **state)
{
    bl_share_t s = { 0 };
    bl_buf_t a, b;
    char ip[32], sid[200];
    (void)state;
    /* Many addresses and long, hostile session ids: the table keeps the
     * most recent BL_SHARE_ADDRS, sessions truncated and printable. */
    memset(sid, 'x', sizeof(sid) - 1);
    sid[sizeof(sid) - 1] = '\0';
    sid[3] = '"';
    sid[4] = '\n';
    for (int i = 0; i < 20; i++) {
        snprintf(ip, sizeof(ip), "10.0.1.%d", i);
        bl_share_note(&s, ip, sid, 1000 + i, W);
    }
    bl_buf_init(&a, 4096);
    bl_buf_init(&b, 4096);
    assert_int_equal(bl_share_evidence(&s, &a, &b), BL_OK);
    assert_non_null(strstr(bl_buf_cstr(&a), "10.0.1.19"));
    assert_null(strstr(bl_buf_cstr(&a), "10.0.1.15\""));
    assert_non_null(strstr(bl_buf_cstr(&b), "\"xxx\\\"?xxx"));
    assert_true(strlen(bl_buf_cstr(&b)) < BL_SHARE_ADDRS * (BL_SHARE_SID_MAX + 8) + 2);
    bl_buf_free(&a);
    bl_buf_free(&b);
}

/* ---- the live table ---- */

static char root[64];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

/* An in-memory config with identities named in `names` (token "t-NAME"). */
static bl_config_t *mem_cfg(const char *const *names, size_t n)
{
    char path[256];
    bl_config_t *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    cfg->dir = strdup(root);
    snprintf(path, sizeof(path), "%s/byline.yaml", root);
    cfg->path = strdup(path);
    snprintf(path, sizeof(path), "%s/identities.yaml", root);
    cfg->identities_file = strdup(path);
    cfg->ids = calloc(n + 1, sizeof(*cfg->ids));
    cfg->nids = n;
    for (size_t i = 0; i < n; i++) {
        char tok[64];
        snprintf(tok, sizeof(tok), "t-%s", names[i]);
        cfg->ids[i].name = strdup(names[i]);
        assert_int_equal(bl_token_hash(tok, strlen(tok), cfg->ids[i].token_sha256), BL_OK);
        cfg->ids[i].has_token = 1;
    }
    assert_int_equal(bl_identity_index_build(cfg, NULL, NULL), BL_OK);
    return cfg;
}

static const bl_identity_t *by_token(bl_idtable_t *t, const char *tok)
{
    return bl_identity_by_token(bl_idtable_cfg(t), tok, strlen(tok));
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/byline-test-idlife-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_table_swap(void **state)
{
    static const char *const one[] = { "agent-a", "agent-b" }, *const two[] = { "agent-b", "agent-c" };
    bl_idcache_t w1 = { 0 }, w2 = { 0 };
    (void)state;
    bl_config_t *first = mem_cfg(one, 2);
    bl_idreg_t *reg = bl_idreg_new(first);
    assert_non_null(reg);
    bl_idtable_t *t1 = bl_idcache_get(reg, &w1);
    assert_ptr_equal(bl_idcache_get(reg, &w2), t1);
    /* A request holds the old table across the swap... */
    bl_idtable_t *held = bl_idtable_ref(t1);
    const bl_identity_t *a = by_token(held, "t-agent-a");
    assert_non_null(a);
    assert_int_equal(bl_idreg_install(reg, mem_cfg(two, 2)), BL_OK);
    /* ...a worker's cache moves to the new table at its next look... */
    bl_idtable_t *t2 = bl_idcache_get(reg, &w1);
    assert_ptr_not_equal(t2, t1);
    assert_null(by_token(t2, "t-agent-a"));
    assert_non_null(by_token(t2, "t-agent-c"));
    assert_string_equal(by_token(t2, "t-agent-b")->name, "agent-b");
    /* ...while what the request points at stays valid (ASan would say). */
    assert_string_equal(a->name, "agent-a");
    assert_ptr_equal(by_token(held, "t-agent-a"), a);
    bl_idtable_unref(held);
    assert_ptr_equal(bl_idcache_get(reg, &w2), t2); /* the last reference to t1 goes here */
    bl_idcache_release(&w1);
    bl_idcache_release(&w2);
    bl_idreg_free(reg);
    bl_config_free(first);
}

static void test_last_used_flush(void **state)
{
    static const char *const names[] = { "agent-b", "agent-a", "agent-idle" };
    char path[256];
    bl_idcache_t w = { 0 };
    bl_buf_t notice, err, text;
    struct stat st;
    (void)state;
    snprintf(path, sizeof(path), "%s/" BL_LASTUSED_FILE, root);
    unlink(path);
    bl_config_t *cfg = mem_cfg(names, 3);
    bl_idreg_t *reg = bl_idreg_new(cfg);
    bl_idtable_t *t = bl_idcache_get(reg, &w);
    bl_buf_init(&notice, 8192);
    assert_int_equal(bl_idreg_flush(reg), BL_OK); /* nothing used: nothing written */
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(bl_idtable_used(t, by_token(t, "t-agent-a"), "10.0.0.1", "", T2027 * 1000LL, &notice), 0);
    assert_int_equal(bl_idtable_used(t, by_token(t, "t-agent-b"), "10.0.0.1", "", T2027 * 1000LL + 5500, &notice), 0);
    assert_int_equal(bl_idtable_used(t, by_token(t, "t-agent-a"), "10.0.0.1", "", T2027 * 1000LL + 61000, &notice), 0);
    assert_int_equal(bl_buf_size(&notice), 0);
    assert_int_equal(bl_idreg_flush(reg), BL_OK);
    bl_buf_init(&text, 1 << 20);
    bl_buf_init(&err, 4096);
    assert_int_equal(bl_file_read(path, 1 << 20, &text, &err), BL_OK);
    assert_string_equal(bl_buf_cstr(&text), "{\"last_used\":{\n"
                                            "\"agent-a\":\"2027-01-01T00:01:01Z\",\n"
                                            "\"agent-b\":\"2027-01-01T00:00:05Z\"\n"
                                            "},\"version\":1}\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_t *m = bl_lastused_read(path, &err);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "agent-a")), "2027-01-01T00:01:01Z");
    assert_null(json_object_get(m, "agent-idle"));
    json_decref(m);
    bl_idcache_release(&w);
    bl_idreg_free(reg);
    bl_config_free(cfg);
    /* A new registry (a restart) starts from the file and keeps it. */
    cfg = mem_cfg(names, 3);
    reg = bl_idreg_new(cfg);
    t = bl_idcache_get(reg, &w);
    assert_int_equal(bl_idtable_used(t, by_token(t, "t-agent-idle"), "10.0.0.1", "", T2027 * 1000LL + 120000, &notice), 0);
    bl_idcache_release(&w);
    bl_idreg_free(reg); /* flushes */
    bl_config_free(cfg);
    bl_buf_reset(&text);
    assert_int_equal(bl_file_read(path, 1 << 20, &text, &err), BL_OK);
    assert_non_null(strstr(bl_buf_cstr(&text), "\"agent-a\":\"2027-01-01T00:01:01Z\""));
    assert_non_null(strstr(bl_buf_cstr(&text), "\"agent-idle\":\"2027-01-01T00:02:00Z\""));
    /* A damaged file is an error for readers. */
    put(path, "{\"last_used\": [1]}");
    bl_buf_reset(&err);
    assert_null(bl_lastused_read(path, &err));
    assert_non_null(strstr(bl_buf_cstr(&err), "not a byline last-used state file"));
    bl_buf_free(&notice);
    bl_buf_free(&text);
    bl_buf_free(&err);
}

static void test_shared_notice(void **state)
{
    static const char *const names[] = { "agent-x" };
    bl_idcache_t w = { 0 };
    bl_buf_t notice;
    (void)state;
    bl_config_t *cfg = mem_cfg(names, 1);
    bl_idreg_t *reg = bl_idreg_new(cfg);
    bl_idtable_t *t = bl_idcache_get(reg, &w);
    const bl_identity_t *x = by_token(t, "t-agent-x");
    int64_t before = bl_metric_get(BL_M_SHARED_CREDENTIAL_WARNINGS);
    bl_buf_init(&notice, 8192);
    assert_int_equal(bl_idtable_used(t, x, "127.0.0.1", "s-1", T2027 * 1000LL, &notice), 0);
    assert_int_equal(bl_idtable_used(t, x, "127.0.0.2", "s-2", T2027 * 1000LL + 10, &notice), 0);
    assert_int_equal(bl_idtable_used(t, x, "127.0.0.1", "s-1", T2027 * 1000LL + 20, &notice), 1);
    assert_string_equal(bl_buf_cstr(&notice),
        "{\"addresses\":[\"127.0.0.1\",\"127.0.0.2\"],\"detail\":\"identity agent-x appears to be "
        "shared: requests from different source addresses (127.0.0.1, 127.0.0.2) "
        "interleaved within 10 minutes\",\"event\":\"shared-credential\",\"identity\":\"agent-x\","
        "\"kind\":\"notice\",\"sessions\":[\"s-1\",\"s-2\"],\"ts\":\"2027-01-01T00:00:00.020000Z\","
        "\"version\":\"" BL_VERSION "\"}");
    assert_int_equal(bl_metric_get(BL_M_SHARED_CREDENTIAL_WARNINGS), before + 1);
    bl_buf_free(&notice);
    bl_idcache_release(&w);
    bl_idreg_free(reg);
    bl_config_free(cfg);
}

/* Writes a loadable byline.yaml (with fresh TLS material) under root. */
static void write_config(void)
{
    char path[256];
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    bl_pki_req_t req = { .kind = BL_PKI_CA, .cn = "test CA", .days = 2 };
    EVP_PKEY *key = bl_pki_key_new(&err);
    X509 *crt = bl_pki_issue(&req, key, NULL, NULL, &err);
    assert_non_null(crt);
    snprintf(path, sizeof(path), "%s/ca.crt", root);
    assert_int_equal(bl_pki_write_cert(path, crt, &err), BL_OK);
    snprintf(path, sizeof(path), "%s/ca.key", root);
    assert_int_equal(bl_pki_write_key(path, key, &err), BL_OK);
    snprintf(path, sizeof(path), "%s/up.token", root);
    put(path, "upstream-token\n");
    snprintf(path, sizeof(path), "%s/byline.yaml", root);
    put(path, "tls:\n  cert: ca.crt\n  key: ca.key\n  ca: ca.crt\n"
              "connections:\n  - name: default\n    server: https://10.0.0.1:6443\n"
              "    token_file: up.token\n");
    X509_free(crt);
    EVP_PKEY_free(key);
    bl_buf_free(&err);
}

static void test_reload_from_files(void **state)
{
    char ids[256], hex[65];
    unsigned char h[32];
    bl_config_t *cfg = NULL;
    bl_buf_t errs;
    bl_idcache_t w = { 0 };
    (void)state;
    write_config();
    snprintf(ids, sizeof(ids), "%s/identities.yaml", root);
    bl_token_hash("t-one", 5, h);
    bl_token_hash_hex(h, hex);
    char text[1024];
    snprintf(text, sizeof(text), "identities:\n  - name: agent-one\n    token_sha256: %s\n", hex);
    put(ids, text);
    bl_buf_init(&errs, 65536);
    assert_int_equal(bl_config_load(root, &cfg, &errs), BL_OK);
    bl_idreg_t *reg = bl_idreg_new(cfg);
    bl_idtable_t *t = bl_idcache_get(reg, &w);
    assert_int_equal(bl_idreg_tick(reg, 5000, 0), 0); /* nothing changed */
    /* Revoked by hand (the file is rewritten: a new inode). */
    snprintf(text, sizeof(text), "identities:\n  - name: agent-one\n    token_sha256: %s\n"
             "    revoked: \"2027-01-01T00:00:00Z\"\n    revoked_reason: gone\n", hex);
    unlink(ids);
    put(ids, text);
    assert_int_equal(bl_idreg_tick(reg, 5500, 0), 0); /* within the second: not looked at */
    assert_int_equal(bl_idreg_tick(reg, 6000, 0), 1);
    bl_idtable_t *t2 = bl_idcache_get(reg, &w);
    assert_ptr_not_equal(t2, t);
    const bl_identity_t *one = by_token(t2, "t-one");
    assert_non_null(one);
    assert_int_equal(one->revoked, T2027);
    assert_string_equal(one->revoked_reason, "gone");
    /* A broken file is refused and the table in force stays. */
    unlink(ids);
    put(ids, "identities:\n  - name: agent-one\n    revoked: yesterday\n");
    assert_int_equal(bl_idreg_tick(reg, 7000, 0), BL_ERROR);
    assert_ptr_equal(bl_idcache_get(reg, &w), t2);
    assert_int_equal(bl_idreg_tick(reg, 8000, 0), 0); /* not retried until it changes */
    bl_idcache_release(&w);
    bl_idreg_free(reg);
    bl_config_free(cfg);
    bl_buf_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_expires_parse),
        cmocka_unit_test(test_lifetime_check),
        cmocka_unit_test(test_shared_one_address),
        cmocka_unit_test(test_shared_moved_agent),
        cmocka_unit_test(test_shared_interleaved),
        cmocka_unit_test(test_shared_window),
        cmocka_unit_test(test_shared_bounded),
        cmocka_unit_test(test_table_swap),
        cmocka_unit_test(test_last_used_flush),
        cmocka_unit_test(test_shared_notice),
        cmocka_unit_test(test_reload_from_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
