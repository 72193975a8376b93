/*
 * test_config.c - DIR/byline.yaml and the identity registry (src/config):
 * valid files and their defaults, every validation error with its
 * file:line:col, duplicate credentials across both files, file permission
 * rules, the identities writer round trip, and the value syntaxes
 * (durations, sizes, URLs, listen addresses, names, origins, templates);
 * the audit section with its signing key files, metrics and impersonation.
 *
 * Each test writes its files into a fresh directory under a temporary
 * root; the TLS material they reference is generated once with pki.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>
#include "auth/identity.h"
#include "auth/pki.h"
#include "auth/token.h"
#include "config/config.h"
#include "config/file.h"
#include "config/values.h"
#include "config/yaml.h"

static char root[256];
static int ndirs;

/* ---- helpers ---- */

static void put(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* A fresh 0700 directory for one test; returns a static path. */
static const char *newdir(void)
{
    static char dir[300];
    snprintf(dir, sizeof(dir), "%s/t%d", root, ++ndirs);
    assert_int_equal(mkdir(dir, 0700), 0);
    return dir;
}

typedef struct {
    bl_config_t *cfg;
    bl_buf_t errs, warns;
    int rc;
} load_t;

static void load(load_t *l, const char *dir)
{
    bl_buf_init(&l->errs, 1 << 20);
    bl_buf_init(&l->warns, 1 << 20);
    l->cfg = NULL;
    l->rc = bl_config_load_ex(dir, &l->cfg, &l->errs, &l->warns);
    if (l->rc == BL_OK)
        assert_non_null(l->cfg);
    else
        assert_null(l->cfg);
}

static void unload(load_t *l)
{
    bl_config_free(l->cfg);
    bl_buf_free(&l->errs);
    bl_buf_free(&l->warns);
}

static int count_lines(bl_buf_t *b)
{
    int n = 0;
    for (size_t i = 0; i < bl_buf_size(b); i++)
        n += bl_buf_data(b)[i] == '\n';
    return n;
}

static void assert_has(bl_buf_t *b, const char *needle)
{
    const char *s = bl_buf_cstr(b);
    if (s == NULL || strstr(s, needle) == NULL) {
        print_error("want \"%s\" in:\n%s\n", needle, s ? s : "(null)");
        fail();
    }
}

/* Loads byline.yaml `text` from a new directory and expects failure with
 * exactly `nerr` error lines, each in `want` (NULL-terminated). */
static void expect_errors(const char *text, int nerr, const char *const *want)
{
    load_t l;
    const char *dir = newdir();
    put(dir, "byline.yaml", text, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    for (; *want; want++)
        assert_has(&l.errs, *want);
    if (count_lines(&l.errs) != nerr) {
        print_error("want %d errors, got:\n%s\n", nerr, bl_buf_cstr(&l.errs));
        fail();
    }
    unload(&l);
}

#define TLS  "tls:\n  cert: ../mat/server.crt\n  key: ../mat/server.key\n  ca: ../mat/ca.crt\n"
#define CONN "connections:\n  - name: default\n    server: https://10.0.0.1:6443\n" \
             "    token_file: ../mat/up.token\n"
#define HASH_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HASH_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

/* ---- the TLS material every config points at ---- */

static void write_pair(const char *dir, const char *name, int kind, X509 *ca, EVP_PKEY *cakey)
{
    char path[512];
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    const char *dns[] = { "localhost" };
    bl_pki_req_t req = { .kind = kind, .cn = name, .dns = dns, .ndns = 1, .days = 30 };
    EVP_PKEY *key = bl_pki_key_new(&err);
    assert_non_null(key);
    X509 *crt = bl_pki_issue(&req, key, ca, cakey, &err);
    assert_non_null(crt);
    snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
    assert_int_equal(bl_pki_write_cert(path, crt, &err), BL_OK);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    assert_int_equal(bl_pki_write_key(path, key, &err), BL_OK);
    X509_free(crt);
    EVP_PKEY_free(key);
    bl_buf_free(&err);
}

/* Writes a new Ed25519 key pair as dir/name.key (PKCS#8, 0600) and
 * dir/name.pub (SubjectPublicKeyInfo, 0644), as `byline init` does. */
static void write_ed25519(const char *dir, const char *name)
{
    char path[512];
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(key);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/%s.pub", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, key), 1);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    EVP_PKEY_free(key);
}

static int setup(void **state)
{
    char mat[300];
    (void)state;
    snprintf(root, sizeof(root), "/tmp/byline-test-config-XXXXXX");
    if (mkdtemp(root) == NULL)
        return -1;
    snprintf(mat, sizeof(mat), "%s/mat", root);
    mkdir(mat, 0700);
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    bl_pki_req_t careq = { .kind = BL_PKI_CA, .cn = "test CA", .days = 30 };
    EVP_PKEY *cakey = bl_pki_key_new(&err);
    X509 *ca = bl_pki_issue(&careq, cakey, NULL, NULL, &err);
    if (ca == NULL)
        return -1;
    char path[512];
    snprintf(path, sizeof(path), "%s/ca.crt", mat);
    bl_pki_write_cert(path, ca, &err);
    write_pair(mat, "server", BL_PKI_SERVER, ca, cakey);
    write_pair(mat, "other", BL_PKI_SERVER, ca, cakey);
    write_pair(mat, "up", BL_PKI_CLIENT, ca, cakey);
    put(mat, "up.token", "upstream-secret-token\n", 0600);
    put(mat, "empty.token", "\n", 0600);
    put(mat, "open.token", "upstream-secret-token\n", 0644);
    put(mat, "notpem.crt", "hello\n", 0644);
    write_ed25519(mat, "sign");
    write_ed25519(mat, "sign2");
    X509_free(ca);
    EVP_PKEY_free(cakey);
    bl_buf_free(&err);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- valid files ---- */

static void test_minimal_defaults(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_int_equal(bl_buf_size(&l.warns), 0);
    bl_config_t *c = l.cfg;
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8443);
    assert_string_equal(c->public_url, "https://127.0.0.1:8443");
    assert_int_equal(c->workers, 1);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->max_header_bytes, 32768);
    assert_int_equal(c->max_headers, 100);
    assert_int_equal(c->header_timeout_ms, 10000);
    assert_int_equal(c->idle_timeout_ms, 120000);
    assert_int_equal(c->connect_timeout_ms, 5000);
    assert_int_equal(c->drain_timeout_ms, 30000);
    char want[400], host[256] = "";
    snprintf(want, sizeof(want), "%s/audit-signing.key", dir);
    assert_string_equal(c->audit_signing_key, want);
    snprintf(want, sizeof(want), "%s/audit-signing.pub", dir);
    assert_string_equal(c->audit_signing_pub, want);
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    snprintf(want, sizeof(want), "byline/%s", host);
    assert_string_equal(c->audit_origin, want);
    assert_int_equal(c->audit_sync, 1);
    assert_int_equal(c->audit_commit_delay_ms, 0);
    assert_int_equal(c->audit_segment_bytes, 64 << 20);
    assert_int_equal(c->audit_space_warn, 0);
    assert_int_equal(c->audit_space_warn_pct, 10);
    assert_int_equal(c->audit_space_refuse, 0);
    assert_int_equal(c->audit_space_refuse_pct, 2);
    assert_int_equal(c->audit_level, BL_LEVEL_METADATA);
    assert_int_equal(c->audit_body_max, 16384);
    assert_int_equal(c->audit_capture_max, 0);
    assert_null(c->metrics_listen);
    assert_int_equal(c->conns[0].impersonate, 0);
    assert_null(c->conns[0].impersonate_user);
    snprintf(want, sizeof(want), "%s/audit", dir);
    assert_string_equal(c->audit_dir, want);
    snprintf(want, sizeof(want), "%s/identities.yaml", dir);
    assert_string_equal(c->identities_file, want);
    snprintf(want, sizeof(want), "%s/../mat/server.key", dir);
    assert_string_equal(c->tls_key, want);
    assert_null(c->client_ca);
    assert_int_equal(c->nconns, 1);
    const bl_connection_t *k = &c->conns[0];
    assert_string_equal(k->name, "default");
    assert_string_equal(k->host, "10.0.0.1");
    assert_int_equal(k->port, 6443);
    assert_string_equal(k->path_prefix, "");
    assert_string_equal(k->server_name, "10.0.0.1");
    assert_null(k->ca_file);
    assert_null(k->cert_file);
    assert_int_equal(c->nids, 0);
    assert_ptr_equal(bl_config_connection(c, "default", 7), k);
    assert_null(bl_config_connection(c, "defaul", 6));
    unload(&l);
}

static void test_full(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml",
        "# every key\n"
        "listen: \"[::1]:9443\"\n"
        "public_url: https://gw.example.org/byline/\n"
        "workers: 4\n"
        TLS
        "  client_ca: ../mat/ca.crt\n"
        "audit:\n  dir: /var/tmp\n"
        "limits:\n  max_connections: 500\n  max_header_bytes: 65536\n  max_headers: 50\n"
        "  header_timeout: 500ms\n  idle_timeout: 2m\n  connect_timeout: 1m30s\n"
        "  drain_timeout: 1h\n"
        "connections:\n"
        "  - name: prod-eks\n    server: https://[fd00::1]/prefix/\n    ca: ../mat/ca.crt\n"
        "    tls_server_name: kubernetes\n    token_file: ../mat/up.token\n"
        "  - name: staging\n    server: https://api.staging:443\n"
        "    client_cert: ../mat/up.crt\n    client_key: ../mat/up.key\n"
        "identities_file: reg.yaml\n"
        "identities:\n"
        "  - name: agent-ci\n    groups: [ci, \"team:sre\"]\n    cert_cn: agent-ci\n"
        "    cert_uri: spiffe://example.org/ci\n",
        0600);
    put(dir, "reg.yaml",
        "identities:\n  - name: agent-deploybot\n    groups: [deployers]\n"
        "    token_sha256: " HASH_A "\n    created: 2026-11-28T06:00:00Z\n",
        0600);
    load(&l, dir);
    if (l.rc != BL_OK)
        print_error("%s\n", bl_buf_cstr(&l.errs));
    assert_int_equal(l.rc, BL_OK);
    bl_config_t *c = l.cfg;
    assert_string_equal(c->listen_host, "::1");
    assert_int_equal(c->listen_port, 9443);
    assert_string_equal(c->public_url, "https://gw.example.org/byline");
    assert_int_equal(c->workers, 4);
    assert_non_null(c->client_ca);
    assert_string_equal(c->audit_dir, "/var/tmp");
    assert_int_equal(c->max_connections, 500);
    assert_int_equal(c->max_header_bytes, 65536);
    assert_int_equal(c->max_headers, 50);
    assert_int_equal(c->header_timeout_ms, 500);
    assert_int_equal(c->idle_timeout_ms, 120000);
    assert_int_equal(c->connect_timeout_ms, 90000);
    assert_int_equal(c->drain_timeout_ms, 3600000);
    assert_int_equal(c->nconns, 2);
    assert_string_equal(c->conns[0].host, "fd00::1");
    assert_int_equal(c->conns[0].port, 443);
    assert_string_equal(c->conns[0].path_prefix, "/prefix");
    assert_string_equal(c->conns[0].server_name, "kubernetes");
    assert_non_null(c->conns[0].ca_file);
    assert_string_equal(c->conns[1].host, "api.staging");
    assert_non_null(c->conns[1].cert_file);
    assert_non_null(c->conns[1].key_file);
    assert_null(c->conns[1].token_file);
    assert_int_equal(c->nids, 2);
    assert_int_equal(c->nids_inline, 1);
    const bl_identity_t *ci = bl_identity_by_name(c, "agent-ci", 8);
    assert_non_null(ci);
    assert_int_equal(ci->ngroups, 2);
    assert_string_equal(ci->groups[1], "team:sre");
    assert_string_equal(ci->cert_uri, "spiffe://example.org/ci");
    assert_false(ci->has_token);
    const bl_identity_t *db = bl_identity_by_name(c, "agent-deploybot", 15);
    assert_non_null(db);
    assert_true(db->has_token);
    assert_string_equal(db->created, "2026-11-28T06:00:00Z");
    /* SHA-256("test") is HASH_A */
    assert_ptr_equal(bl_identity_by_token(c, "test", 4), db);
    unload(&l);
}

/* ---- errors, each with its position ---- */

static void test_unknown_key_suggests(void **state)
{
    (void)state;
    const char *want[] = { "byline.yaml:1:1: unknown key \"listn\" (did you mean \"listen\"?)",
                           "byline.yaml:7:3: unknown key \"max_header\" (did you mean "
                           "\"max_headers\"?)",
                           "byline.yaml:8:3: unknown key \"totally_new\"\n",
                           /* past 32 bytes every distance is "far": no suggestion */
                           "byline.yaml:13:1: unknown key \"a_key_longer_than_thirty_two_bytes\"\n",
                           NULL };
    expect_errors("listn: 127.0.0.1:1\n" TLS "limits:\n  max_header: 5\n  totally_new: 1\n" CONN
                  "a_key_longer_than_thirty_two_bytes: 1\n",
                  4, want);
}

static void test_every_error_reported(void **state)
{
    (void)state;
    const char *want[] = {
        "byline.yaml:1:10: workers: 0 is out of range (1..64)",
        "byline.yaml:2:9: listen: \"localhost\" needs a port",
        "byline.yaml:3:13: public_url: \"http://x\" must start with https://",
        "byline.yaml:9:21: max_header_bytes: expected a whole number",
        "byline.yaml:10:19: header_timeout: invalid duration \"10\": needs a unit",
        "byline.yaml:11:17: idle_timeout: must be between 1s and 24h",
        "byline.yaml:13:11: connection name \"Prod_EKS\" must be lower-case",
        "byline.yaml:14:13: server: \"http://10.0.0.1\" must start with https://",
        NULL };
    expect_errors("workers: 0\n"
                  "listen: localhost\n"
                  "public_url: http://x\n"
                  TLS
                  "limits:\n"
                  "  max_header_bytes: lots\n"
                  "  header_timeout: 10\n"
                  "  idle_timeout: 48h\n"
                  "connections:\n"
                  "  - name: Prod_EKS\n"
                  "    server: http://10.0.0.1\n",
                  8, want);
}

static void test_bad_duration_unit(void **state)
{
    (void)state;
    const char *want[] = { "byline.yaml:7:17: idle_timeout: invalid duration \"2d\": has an "
                           "unknown unit", NULL };
    expect_errors(TLS "limits:\n  drain_timeout: 0s\n  idle_timeout: 2d\n" CONN, 1, want);
}

static void test_missing_required(void **state)
{
    (void)state;
    const char *want1[] = { "byline.yaml:1:1: missing required key \"tls\"",
                            "byline.yaml:1:1: missing required key \"connections\"", NULL };
    expect_errors("workers: 2\n", 2, want1);
    const char *want2[] = { "byline.yaml:5:14: connections: at least one connection", NULL };
    expect_errors(TLS "connections: []\n", 1, want2);
    const char *want3[] = { "byline.yaml:5:5: missing required key \"server\"",
                            "byline.yaml:2:3: missing required key \"key\"", NULL };
    expect_errors("tls:\n  cert: ../mat/server.crt\n  ca: ../mat/ca.crt\n"
                  "connections:\n  - name: a\n    token_file: ../mat/up.token\n",
                  2, want3);
}

static void test_wrong_types(void **state)
{
    (void)state;
    const char *want[] = { "byline.yaml:1:6: expected a mapping (key: value lines), found a scalar",
                           "byline.yaml:2:14: connections: expected a list, found a mapping",
                           "byline.yaml:3:9: listen: expected a string, found a list",
                           "byline.yaml:4:9: workers: expected a whole number, found nothing",
                           NULL };
    expect_errors("tls: yes\nconnections: {a: b}\nlisten: [a]\nworkers:\n", 4, want);
}

static void test_duplicate_keys_and_connections(void **state)
{
    (void)state;
    const char *want[] = { "byline.yaml:2:1: duplicate key \"workers\" (first at line 1)",
                           "byline.yaml:11:11: duplicate connection name \"default\"", NULL };
    expect_errors("workers: 1\nworkers: 2\n" TLS CONN
                  "  - name: default\n    server: https://10.0.0.2\n"
                  "    token_file: ../mat/up.token\n",
                  2, want);
}

static void test_connection_credentials(void **state)
{
    (void)state;
    const char *want[] = {
        "byline.yaml:8:17: token_file and client_cert/client_key are mutually exclusive",
        "byline.yaml:13:18: client_cert and client_key go together",
        "byline.yaml:16:17: token_file: cannot read",
        "empty.token is empty",
        "byline.yaml:19:17: token_file: ",
        "byline.yaml:23:17: ", "other.key is not the private key of",
        "byline.yaml:26:9: ", "notpem.crt: no PEM certificate in it",
        NULL };
    expect_errors(TLS "connections:\n"
                  "  - name: both\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    client_cert: ../mat/up.crt\n    client_key: ../mat/up.key\n"
                  "  - name: half\n    server: https://a\n    client_cert: ../mat/up.crt\n"
                  "  - name: missing\n    server: https://a\n    token_file: nope.token\n"
                  "  - name: empty\n    server: https://a\n    token_file: ../mat/empty.token\n"
                  "  - name: mismatch\n    server: https://a\n    client_cert: ../mat/up.crt\n"
                  "    client_key: ../mat/other.key\n"
                  "  - name: notpem\n    server: https://a\n    ca: ../mat/notpem.crt\n"
                  "    token_file: ../mat/up.token\n",
                  6, want);
    load_t l;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN "  - name: b\n    server: https://a\n", 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_has(&l.warns, "byline.yaml:9:5: warning: connection \"b\" has no token_file or "
                         "client_cert");
    unload(&l);
}

static void test_tls_errors(void **state)
{
    (void)state;
    const char *want[] = { "byline.yaml:3:8: ", "is not the private key of", NULL };
    expect_errors("tls:\n  cert: ../mat/server.crt\n  key: ../mat/other.key\n" CONN, 1, want);
    const char *want2[] = { "byline.yaml:5:14: ", "no PEM certificate in it", NULL };
    expect_errors(TLS "  client_ca: ../mat/notpem.crt\n" CONN, 1, want2);
}

static void test_yaml_syntax(void **state)
{
    (void)state;
    const char *want[] = { "byline.yaml:2:", "YAML syntax error", NULL };
    expect_errors("workers: 1\n  bad: [\n", 1, want);
    const char *want2[] = { "byline.yaml:2:10: aliases (*name) are not supported", NULL };
    expect_errors("listen: &a 127.0.0.1:1\nworkers: *a\n", 1, want2);
    const char *want3[] = { "byline.yaml:2:1: only one YAML document is allowed", NULL };
    expect_errors("workers: 1\n---\nworkers: 2\n", 1, want3);
    const char *want4[] = { "byline.yaml: is empty", NULL };
    expect_errors("# nothing\n", 1, want4);
    const char *want5[] = { "byline.yaml:1:1: expected a mapping", NULL };
    expect_errors("- a\n- b\n", 1, want5);
}

/* Found by fuzz_config: every problem is one whole line. A value with a
 * line break in it split its report in two, and a report longer than 1 KiB
 * (a long path quoted in it) lost its message. */
static void test_report_lines(void **state)
{
    (void)state;
    const char *want1[] = { "byline.yaml:1:9: listen: \"a?b:1\" has an invalid host", NULL };
    expect_errors("listen: \"a\\nb:1\"\n" TLS CONN, 1, want1);
    const char *want2[] = { "byline.yaml:6:11: identity name \"x?y\" must be lower-case",
                            "byline.yaml:8:11: identity name \"x?y\" is already used at ",
                            "byline.yaml:6:11\n", NULL };
    expect_errors(TLS "identities:\n  - name: \"x\\ny\"\n    cert_cn: a\n"
                  "  - name: \"x\\ny\"\n    cert_cn: b\n" CONN, 3, want2);
    char text[8192], path[5000];
    memset(path, 'x', 3000);
    path[3000] = '\0';
    snprintf(text, sizeof(text), TLS "connections:\n  - name: a\n    server: https://a\n"
             "    token_file: nope/%s\n", path);
    const char *want3[] = { "byline.yaml:8:17: token_file: cannot read ",
                            "xxx: No such file or directory\n", NULL };
    expect_errors(text, 1, want3);
    memset(path, 'x', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    snprintf(text, sizeof(text), TLS "identities_file: %s\n" CONN, path);
    const char *want4[] = { "byline.yaml:5:18: identities_file: a path of at most 4095 bytes",
                            NULL };
    expect_errors(text, 1, want4);
}

static void test_missing_dir(void **state)
{
    load_t l;
    (void)state;
    load(&l, "/nonexistent/byline-test");
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "/nonexistent/byline-test/byline.yaml: No such file or directory");
    unload(&l);
}

static void test_permissions(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0666);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "byline.yaml is writable by other users");
    unload(&l);

    dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0644);
    put(dir, "identities.yaml", "identities: []\n", 0620);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "identities.yaml is writable by other users");
    assert_int_equal(count_lines(&l.errs), 1);
    unload(&l);

    /* a token others can read still loads, with a warning */
    dir = newdir();
    put(dir, "byline.yaml",
        TLS "connections:\n  - name: a\n    server: https://a\n    token_file: ../mat/open.token\n",
        0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_has(&l.warns, "byline.yaml:8:17: warning: token_file: ");
    assert_has(&l.warns, "is readable by other users");
    unload(&l);
}

static void test_wildcard_listen(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml", "listen: 0.0.0.0:443\n" TLS CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_string_equal(l.cfg->public_url, "https://127.0.0.1:443");
    assert_has(&l.warns, "warning: listen is a wildcard address");
    unload(&l);
}

/* ---- identities ---- */

static void test_identity_errors(void **state)
{
    (void)state;
    const char *want[] = {
        "byline.yaml:6:11: identity name \"Agent\" must be lower-case",
        "byline.yaml:8:11: identity name \"system:kube\" must not begin with \"system:\"",
        "byline.yaml:10:5: identity \"nocred\" has no credential",
        "byline.yaml:12:19: token_sha256 holds a token, not its hash",
        "byline.yaml:14:19: token_sha256: expected 64 hex digits",
        "byline.yaml:15:18: group \"UPPER\" must be lower-case",
        "byline.yaml:15:25: group \"ok\" is listed twice",
        "byline.yaml:16:14: created: expected a UTC time",
        "byline.yaml:17:15: cert_uri: expected a URI with a scheme",
        "byline.yaml:18:5: unknown key \"token\" (did you mean \"token_sha256\"?)",
        NULL };
    expect_errors(TLS "identities:\n"
                  "  - name: Agent\n    cert_cn: a\n"
                  "  - name: system:kube\n    cert_cn: b\n"
                  "  - name: nocred\n"
                  "  - name: leaked\n    token_sha256: byl_abc\n"
                  "  - name: badhex\n    token_sha256: xyz\n"
                  "    groups: [ok, UPPER, ok]\n"
                  "    created: yesterday\n"
                  "    cert_uri: not a uri\n"
                  "    token: x\n" CONN,
                  10, want);
}

static void test_duplicate_credentials(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml",
        TLS CONN "identities:\n"
        "  - name: agent-a\n    token_sha256: " HASH_A "\n    cert_cn: shared-cn\n"
        "  - name: agent-b\n    cert_uri: spiffe://x/b\n",
        0600);
    put(dir, "identities.yaml",
        "identities:\n"
        "  - name: agent-c\n    token_sha256: " HASH_A "\n"            /* same token as a */
        "  - name: agent-d\n    cert_cn: shared-cn\n"                  /* same CN as a */
        "  - name: agent-b\n    token_sha256: " HASH_B "\n"           /* same name as b */
        "  - name: agent-e\n    cert_uri: spiffe://x/b\n",            /* same URI as b */
        0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "identities.yaml:3:19: token_sha256 of identity \"agent-c\" already maps "
                        "to identity \"agent-a\" (");
    assert_has(&l.errs, "byline.yaml:11:19): one credential must name one identity");
    assert_has(&l.errs, "identities.yaml:5:14: cert_cn of identity \"agent-d\" already maps to "
                        "identity \"agent-a\"");
    assert_has(&l.errs, "identities.yaml:6:11: identity name \"agent-b\" is already used at ");
    assert_has(&l.errs, "identities.yaml:9:15: cert_uri of identity \"agent-e\" already maps to "
                        "identity \"agent-b\"");
    assert_int_equal(count_lines(&l.errs), 4);
    unload(&l);
}

static void test_identities_file_shapes(void **state)
{
    load_t l;
    (void)state;
    /* empty file: no identities, no complaint */
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    put(dir, "identities.yaml", "", 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_int_equal(l.cfg->nids, 0);
    unload(&l);
    /* an explicitly named file that is missing: a warning */
    dir = newdir();
    put(dir, "byline.yaml", TLS CONN "identities_file: gone.yaml\n", 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_has(&l.warns, "gone.yaml: warning: does not exist");
    unload(&l);
    /* wrong shapes */
    dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    put(dir, "identities.yaml", "identity:\n  - name: a\n", 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "identities.yaml:1:1: unknown key \"identity\" (did you mean "
                        "\"identities\"?)");
    unload(&l);
    dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    put(dir, "identities.yaml", "identities:\n  name: a\n", 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "identities.yaml:2:3: identities: expected a list, found a mapping");
    unload(&l);
}

static void test_identities_round_trip(void **state)
{
    load_t l, l2;
    bl_buf_t err;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    put(dir, "identities.yaml",
        "identities:\n"
        "  - name: agent-deploybot\n    groups: [deployers, \"team:sre\", yes]\n"
        "    token_sha256: " HASH_A "\n    created: 2026-11-28T06:00:00Z\n"
        "  - name: agent-ci\n    cert_cn: \"CI agent: #1\"\n"
        "    cert_uri: spiffe://example.org/ci\n",
        0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    bl_buf_init(&err, 4096);
    char path[400];
    snprintf(path, sizeof(path), "%s/identities.yaml", dir);
    assert_int_equal(bl_identities_write(path, l.cfg->ids, l.cfg->nids, &err), BL_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    load(&l2, dir);
    assert_int_equal(l2.rc, BL_OK);
    assert_int_equal(l2.cfg->nids, 2);
    for (size_t i = 0; i < 2; i++) {
        const bl_identity_t *a = &l.cfg->ids[i], *b = &l2.cfg->ids[i];
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->ngroups, b->ngroups);
        for (size_t g = 0; g < a->ngroups; g++)
            assert_string_equal(a->groups[g], b->groups[g]);
        assert_int_equal(a->has_token, b->has_token);
        assert_memory_equal(a->token_sha256, b->token_sha256, 32);
        assert_true((a->cert_cn == NULL) == (b->cert_cn == NULL));
        if (a->cert_cn)
            assert_string_equal(a->cert_cn, b->cert_cn);
        assert_true((a->created == NULL) == (b->created == NULL));
    }
    assert_string_equal(l2.cfg->ids[0].groups[2], "yes");
    assert_string_equal(l2.cfg->ids[1].cert_cn, "CI agent: #1");
    /* an empty registry is written as an empty list and reads back */
    assert_int_equal(bl_identities_write(path, NULL, 0, &err), BL_OK);
    unload(&l2);
    load(&l2, dir);
    assert_int_equal(l2.rc, BL_OK);
    assert_int_equal(l2.cfg->nids, 0);
    unload(&l2);
    unload(&l);
    bl_buf_free(&err);
}

/* Found by fuzz_config: bl_yaml_put_scalar wrote C1 controls, NEL, U+2028,
 * U+2029 and U+FFFE/FFFF raw, so a registry rewritten by `byline identity
 * add` either did not load ("control characters are not allowed") or
 * changed a cert_cn (a line break folded, the space after it dropped). */
static void test_put_scalar_round_trip(void **state)
{
    static const char *const ok[] = {
        "a\xe2\x80\xa8 b", "a\xe2\x80\xa9 b", "\xc2\x85x", "\xc2\x80", "\xc2\x9f\xc2\xa0",
        "\xef\xbb\xbfx", "\xef\xbf\xbe\xef\xbf\xbf", "caf\xc3\xa9", "\xf0\x9f\x98\x80",
        "tab\there\n", "q\"b\\", "yes", "null", "", "- x", "\x7f",
    };
    static const char *const bad[] = { "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                       "\xf4\x90\x80\x80" };
    (void)state;
    for (size_t i = 0; i < BL_ARRAY_LEN(ok); i++) {
        bl_buf_t b, errs;
        bl_yaml_t y = { .file = "t", .errors = &errs };
        bl_buf_init(&b, 4096);
        bl_buf_init(&errs, 4096);
        assert_int_equal(bl_buf_puts(&b, "v: "), BL_OK);
        assert_int_equal(bl_yaml_put_scalar(&b, ok[i]), BL_OK);
        if (bl_yaml_load_mem(&y, bl_buf_data(&b), bl_buf_size(&b)) != BL_OK) {
            print_error("#%zu: %s\n", i, bl_buf_cstr(&errs));
            fail();
        }
        yaml_node_t *top = bl_yaml_root(&y);
        yaml_node_t *v = bl_yaml_node(&y, top->data.mapping.pairs.start[0].value);
        assert_int_equal(v->data.scalar.length, strlen(ok[i]));
        assert_memory_equal(v->data.scalar.value, ok[i], strlen(ok[i]));
        bl_yaml_free(&y);
        bl_buf_free(&b);
        bl_buf_free(&errs);
    }
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        bl_buf_t b;
        bl_buf_init(&b, 4096);
        assert_int_equal(bl_yaml_put_scalar(&b, bad[i]), BL_ERROR);
        assert_int_equal(bl_buf_size(&b), 0);
        bl_buf_free(&b);
    }
    /* end to end: load, rewrite, load again */
    load_t l, l2;
    bl_buf_t err;
    char path[400];
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    put(dir, "identities.yaml",
        "identities:\n  - name: a\n    cert_cn: \"a\\u2028 b\"\n"
        "  - name: b\n    cert_cn: \"\\x80\\N\"\n", 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    bl_buf_init(&err, 4096);
    snprintf(path, sizeof(path), "%s/identities.yaml", dir);
    assert_int_equal(bl_identities_write(path, l.cfg->ids, l.cfg->nids, &err), BL_OK);
    load(&l2, dir);
    assert_int_equal(l2.rc, BL_OK);
    assert_string_equal(l2.cfg->ids[0].cert_cn, "a\xe2\x80\xa8 b");
    assert_string_equal(l2.cfg->ids[1].cert_cn, "\xc2\x80\xc2\x85");
    unload(&l2);
    unload(&l);
    bl_buf_free(&err);
}

/* ---- audit, metrics, impersonation ---- */

#define SIGN "  signing_key: ../mat/sign.key\n  signing_pub: ../mat/sign.pub\n"

static void test_audit_full(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml",
        TLS
        "audit:\n"
        "  dir: ledger\n"
        SIGN
        "  origin: audit.example.org/byline:gw-1\n"
        "  sync: false\n"
        "  commit_delay: 5ms\n"
        "  segment_size: 128MiB\n"
        "  space_warn: 20GiB\n"
        "  space_refuse: 1GiB\n"
        "  level: RequestResponse\n"
        "  body_max: 64KiB\n"
        "  capture_max: 1MiB\n"
        "metrics:\n  listen: \"[::1]:9402\"\n"
        CONN
        "    impersonate: true\n"
        "  - name: mapped\n    server: https://a\n    token_file: ../mat/up.token\n"
        "    impersonate: {user: \"agent:{name}\"}\n"
        "  - name: empty-map\n    server: https://a\n    token_file: ../mat/up.token\n"
        "    impersonate: {}\n"
        "  - name: off\n    server: https://a\n    token_file: ../mat/up.token\n"
        "    impersonate: False\n",
        0600);
    load(&l, dir);
    if (l.rc != BL_OK)
        print_error("%s\n", bl_buf_cstr(&l.errs));
    assert_int_equal(l.rc, BL_OK);
    assert_int_equal(bl_buf_size(&l.warns), 0);
    bl_config_t *c = l.cfg;
    char want[400];
    snprintf(want, sizeof(want), "%s/ledger", dir);
    assert_string_equal(c->audit_dir, want);
    snprintf(want, sizeof(want), "%s/../mat/sign.key", dir);
    assert_string_equal(c->audit_signing_key, want);
    snprintf(want, sizeof(want), "%s/../mat/sign.pub", dir);
    assert_string_equal(c->audit_signing_pub, want);
    assert_string_equal(c->audit_origin, "audit.example.org/byline:gw-1");
    assert_int_equal(c->audit_sync, 0);
    assert_int_equal(c->audit_commit_delay_ms, 5);
    assert_int_equal(c->audit_segment_bytes, 128 << 20);
    assert_true(c->audit_space_warn == (uint64_t)20 << 30);
    assert_int_equal(c->audit_space_warn_pct, 0);
    assert_int_equal(c->audit_space_refuse, 1 << 30);
    assert_int_equal(c->audit_space_refuse_pct, 0);
    assert_int_equal(c->audit_level, BL_LEVEL_REQUEST_RESPONSE);
    assert_int_equal(c->audit_body_max, 65536);
    assert_int_equal(c->audit_capture_max, 1 << 20);
    assert_string_equal(c->metrics_listen, "[::1]:9402");
    assert_int_equal(c->nconns, 4);
    assert_int_equal(c->conns[0].impersonate, 1);
    assert_string_equal(c->conns[0].impersonate_user, "byline:{name}");
    assert_int_equal(c->conns[1].impersonate, 1);
    assert_string_equal(c->conns[1].impersonate_user, "agent:{name}");
    assert_int_equal(c->conns[2].impersonate, 1);
    assert_string_equal(c->conns[2].impersonate_user, "byline:{name}");
    assert_int_equal(c->conns[3].impersonate, 0);
    assert_null(c->conns[3].impersonate_user);
    unload(&l);
}

/* The other accepted spellings: percentages, 0 for "never", bounds. */
static void test_audit_values(void **state)
{
    static const struct {
        const char *yaml;
        uint64_t warn, refuse;
        unsigned warn_pct, refuse_pct;
        int level;
    } rows[] = {
        { "  space_warn: 50%\n  space_refuse: 50%\n  level: Request\n", 0, 0, 50, 50, 1 },
        { "  space_warn: 0\n  space_refuse: 0%\n", 0, 0, 0, 0, 0 },
        { "  space_warn: 0%\n  space_refuse: 2%\n", 0, 0, 0, 2, 0 },   /* no warning at all */
        { "  space_warn: 100%\n  space_refuse: 4096B\n", 0, 4096, 100, 0, 0 }, /* mixed kinds */
        { "  space_warn: 1TiB\n  space_refuse: 0B\n", (uint64_t)1 << 40, 0, 0, 0, 0 },
        { "  space_refuse: 10%\n  level: \"Metadata\"\n", 0, 0, 10, 10, 0 },
    };
    (void)state;
    for (size_t i = 0; i < BL_ARRAY_LEN(rows); i++) {
        char text[1024];
        load_t l;
        const char *dir = newdir();
        snprintf(text, sizeof(text), TLS "audit:\n%s" CONN, rows[i].yaml);
        put(dir, "byline.yaml", text, 0600);
        load(&l, dir);
        if (l.rc != BL_OK) {
            print_error("row %zu: %s\n", i, bl_buf_cstr(&l.errs));
            fail();
        }
        assert_true(l.cfg->audit_space_warn == rows[i].warn);
        assert_true(l.cfg->audit_space_refuse == rows[i].refuse);
        assert_int_equal(l.cfg->audit_space_warn_pct, rows[i].warn_pct);
        assert_int_equal(l.cfg->audit_space_refuse_pct, rows[i].refuse_pct);
        assert_int_equal(l.cfg->audit_level, rows[i].level);
        unload(&l);
    }
    /* the bounds themselves are in range */
    load_t l;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS "audit:\n  commit_delay: 100ms\n  segment_size: 1GiB\n"
        "  body_max: 1MiB\n  capture_max: 64MiB\n  sync: TRUE\n" CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_int_equal(l.cfg->audit_commit_delay_ms, 100);
    assert_int_equal(l.cfg->audit_segment_bytes, 1 << 30);
    assert_int_equal(l.cfg->audit_body_max, 1 << 20);
    assert_int_equal(l.cfg->audit_capture_max, 64 << 20);
    assert_int_equal(l.cfg->audit_sync, 1);
    unload(&l);
    dir = newdir();
    put(dir, "byline.yaml", TLS "audit:\n  segment_size: 1MiB\n  body_max: 0\n"
        "  commit_delay: 0s\n" CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_int_equal(l.cfg->audit_segment_bytes, 1 << 20);
    assert_int_equal(l.cfg->audit_body_max, 0);
    unload(&l);
    /* "audit:" with nothing under it: every default */
    dir = newdir();
    put(dir, "byline.yaml", TLS "audit:\n" CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_non_null(l.cfg->audit_origin);
    assert_int_equal(l.cfg->audit_space_warn_pct, 10);
    unload(&l);
}

static void test_audit_errors(void **state)
{
    (void)state;
    const char *want[] = {
        "byline.yaml:6:11: origin: \"my log\" must be letters, digits and . _ / : -",
        "byline.yaml:7:9: sync: write true or false (\"yes\" means a boolean",
        "byline.yaml:8:17: commit_delay: must be between 0ms and 100ms",
        "byline.yaml:9:17: segment_size: must be between 1MiB and 1GiB",
        "byline.yaml:10:15: space_warn: \"101%\" is not a percentage from 0% to 100%",
        "byline.yaml:11:17: space_refuse: \"2\" needs % or a unit: a percentage of the file "
        "system such as 2%, or a size such as 2GiB",
        "byline.yaml:12:10: level: unknown level \"metadata\" (did you mean \"Metadata\"?)",
        "byline.yaml:13:13: body_max: must be between 0 and 1MiB",
        "byline.yaml:14:16: capture_max: invalid size \"64MB\": is ambiguous (1000 or 1024?)",
        "byline.yaml:15:3: unknown key \"signing_keys\" (did you mean \"signing_key\"?)",
        NULL };
    expect_errors(TLS "audit:\n"
                  "  origin: my log\n"
                  "  sync: yes\n"
                  "  commit_delay: 1s\n"
                  "  segment_size: 512KiB\n"
                  "  space_warn: 101%\n"
                  "  space_refuse: 2\n"
                  "  level: metadata\n"
                  "  body_max: 2MiB\n"
                  "  capture_max: 64MB\n"
                  "  signing_keys: x\n" CONN,
                  10, want);
    const char *want2[] = {
        "byline.yaml:6:9: sync: expected true or false, found text",
        "byline.yaml:7:10: level: None is not a level byline has",
        "byline.yaml:8:16: capture_max: must be between 0 and 64MiB",
        "byline.yaml:9:17: segment_size: expected a size such as 64MiB, found a list",
        "byline.yaml:10:11: origin: \"+x\" must be letters",
        "byline.yaml:11:8: dir: expected a string, found a mapping",
        "byline.yaml:13:11: listen: \"localhost\" needs a port",
        NULL };
    expect_errors(TLS "audit:\n"
                  "  sync: \"true\"\n"
                  "  level: None\n"
                  "  capture_max: 65MiB\n"
                  "  segment_size: [1]\n"
                  "  origin: \"+x\"\n"
                  "  dir: {a: b}\n"
                  "metrics:\n  listen: localhost\n" CONN,
                  7, want2);
    /* checks across keys run once each key is right */
    const char *want3[] = { "byline.yaml:7:17: space_refuse: 5% is above space_warn 2%: the "
                            "gateway would refuse requests before warning", NULL };
    expect_errors(TLS "audit:\n  space_warn: 2%\n  space_refuse: 5%\n" CONN, 1, want3);
    const char *want4[] = { "byline.yaml:7:17: space_refuse: 2GiB is above space_warn 1GiB", NULL };
    expect_errors(TLS "audit:\n  space_warn: 1GiB\n  space_refuse: 2GiB\n" CONN, 1, want4);
    const char *want5[] = { "byline.yaml:5:8: expected a mapping (key: value lines), found a "
                            "scalar", NULL };
    expect_errors(TLS "audit: on\n" CONN, 1, want5);
}

static void test_signing_key_files(void **state)
{
    (void)state;
    /* both missing: byline init or the first serve creates them */
    load_t l;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS "audit:\n  signing_key: keys/k\n  signing_pub: keys/k.pub\n"
        CONN, 0600);
    char sub[400];
    snprintf(sub, sizeof(sub), "%s/keys", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    unload(&l);

    const char *want1[] = { "byline.yaml:6:16: signing_key: cannot create ", "/nodir/k: ",
                            "/nodir does not exist", NULL };
    expect_errors(TLS "audit:\n  signing_key: nodir/k\n" CONN, 1, want1);
    const char *want1b[] = { "byline.yaml:6:16: signing_key: cannot read ",
                             "/mat/ca.crt/k: Not a directory", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat/ca.crt/k\n" CONN, 1, want1b);
    const char *want2[] = { "byline.yaml:7:16: signing_key: ", "/ledger/k is inside audit.dir ",
                            "whoever can read the ledger can forge its checkpoints", NULL };
    expect_errors(TLS "audit:\n  dir: ledger\n  signing_key: ledger/k\n" CONN, 1, want2);
    const char *want3[] = { "byline.yaml:7:16: signing_pub: the same file as signing_key", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat/sign.key\n  signing_pub: ../mat/sign.key\n"
                  CONN, 1, want3);
    const char *want4[] = { "byline.yaml:6:16: signing_key: ", "/mat/server.key is not an "
                            "Ed25519 key", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat/server.key\n  signing_pub: ../mat/sign.pub\n"
                  CONN, 1, want4);
    const char *want5[] = { "byline.yaml:7:16: signing_pub: ", "/mat/sign2.pub is not the public "
                            "key of ", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat/sign.key\n  signing_pub: ../mat/sign2.pub\n"
                  CONN, 1, want5);
    const char *want6[] = { "byline.yaml:7:16: signing_pub: ", "/mat/notpem.crt: no PEM public "
                            "key in it", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat/sign.key\n  signing_pub: ../mat/notpem.crt\n"
                  CONN, 1, want6);
    const char *want7[] = { "byline.yaml:7:16: signing_pub: ", "/gone.pub is missing, so auditors "
                            "cannot verify checkpoints; recreate it with: openssl pkey -in ", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat/sign.key\n  signing_pub: gone.pub\n" CONN,
                  1, want7);
    const char *want8[] = { "byline.yaml:6:16: signing_key: ", "/gone.key is missing but its "
                            "public key ", NULL };
    expect_errors(TLS "audit:\n  signing_key: gone.key\n  signing_pub: ../mat/sign.pub\n" CONN,
                  1, want8);
    const char *want9[] = { "byline.yaml:6:16: signing_key: ", "/mat is not a regular file", NULL };
    expect_errors(TLS "audit:\n  signing_key: ../mat\n" CONN, 1, want9);
}

/* The default key files (no audit section) get the same checks. */
static void test_signing_key_perms(void **state)
{
    load_t l;
    (void)state;
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS CONN, 0600);
    write_ed25519(dir, "audit-signing");
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    unload(&l);
    char path[400];
    snprintf(path, sizeof(path), "%s/audit-signing.key", dir);
    static const mode_t bad[] = { 0640, 0604, 0620, 0660 };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        load(&l, dir);
        assert_int_equal(l.rc, BL_ERROR);
        assert_has(&l.errs, "byline.yaml: signing_key: ");
        assert_has(&l.errs, "/audit-signing.key is open to other users, who could sign "
                            "checkpoints as this gateway; run chmod 600 ");
        assert_int_equal(count_lines(&l.errs), 1);
        unload(&l);
    }
    assert_int_equal(chmod(path, 0400), 0); /* read-only for its owner is fine */
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    unload(&l);
    snprintf(path, sizeof(path), "%s/audit-signing.pub", dir);
    assert_int_equal(chmod(path, 0666), 0);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "/audit-signing.pub is writable by other users, who could swap the key "
                        "auditors verify with");
    unload(&l);
    /* with an audit section, the report points at it */
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(path, sizeof(path), "%s/audit-signing.key", dir);
    assert_int_equal(chmod(path, 0644), 0);
    put(dir, "byline.yaml", TLS "audit:\n  sync: true\n" CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_ERROR);
    assert_has(&l.errs, "byline.yaml:6:3: signing_key: ");
    unload(&l);
}

static void test_metrics_listen(void **state)
{
    load_t l;
    (void)state;
    static const char *const quiet[] = { "127.0.0.1:9402", "localhost:9402", "\"[::1]:1\"",
                                         "127.0.0.2:8443" };
    for (size_t i = 0; i < BL_ARRAY_LEN(quiet); i++) {
        char text[512];
        const char *dir = newdir();
        snprintf(text, sizeof(text), TLS "metrics:\n  listen: %s\n" CONN, quiet[i]);
        put(dir, "byline.yaml", text, 0600);
        load(&l, dir);
        assert_int_equal(l.rc, BL_OK);
        assert_non_null(l.cfg->metrics_listen);
        assert_int_equal(bl_buf_size(&l.warns), 0);
        unload(&l);
    }
    const char *dir = newdir();
    put(dir, "byline.yaml", TLS "metrics:\n  listen: 0.0.0.0:9402\n" CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_string_equal(l.cfg->metrics_listen, "0.0.0.0:9402");
    assert_has(&l.warns, "byline.yaml:6:11: warning: metrics.listen: 0.0.0.0:9402 is reachable "
                         "from other hosts and /metrics has no TLS or authentication");
    unload(&l);
    dir = newdir();
    put(dir, "byline.yaml", TLS "metrics:\n  listen: ~\n" CONN, 0600);
    load(&l, dir);
    assert_int_equal(l.rc, BL_OK);
    assert_null(l.cfg->metrics_listen);
    unload(&l);
    const char *want[] = { "byline.yaml:6:11: listen: 127.0.0.1:8443 is the gateway's own "
                           "address (listen: 127.0.0.1:8443); give metrics another port", NULL };
    expect_errors(TLS "metrics:\n  listen: 127.0.0.1:8443\n" CONN, 1, want);
    const char *want2[] = { "byline.yaml:2:11: listen: [::]:9000 is the gateway's own address",
                            NULL };
    expect_errors("metrics:\n  listen: \"[::]:9000\"\nlisten: 10.0.0.1:9000\n" TLS CONN, 1,
                  want2);
    const char *want3[] = { "byline.yaml:6:3: unknown key \"port\"", NULL };
    expect_errors(TLS "metrics:\n  port: 9402\n" CONN, 1, want3);
}

static void test_impersonate_errors(void **state)
{
    (void)state;
    const char *want[] = {
        "byline.yaml:9:18: impersonate: write true or false (\"on\" means",
        "byline.yaml:13:18: impersonate: expected true, false or a mapping (user: ...), found a "
        "list",
        "byline.yaml:17:25: user: \"byline\" must contain {name}",
        "byline.yaml:21:25: user: \"system:{name}\" could make a user name beginning with "
        "\"system:\"",
        "byline.yaml:25:25: user: \"sys{name}\" could make",
        "byline.yaml:29:25: user: \"{nam}\" has a '{' or '}' that is not part of {name}",
        "byline.yaml:33:19: unknown key \"users\" (did you mean \"user\"?)",
        "byline.yaml:37:17: impersonate: expected true or false, found nothing",
        NULL };
    expect_errors(TLS "connections:\n"
                  "  - name: a\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: on\n"
                  "  - name: b\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: [user]\n"
                  "  - name: c\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: {user: byline}\n"
                  "  - name: d\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: {user: \"system:{name}\"}\n"
                  "  - name: e\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: {user: \"sys{name}\"}\n"
                  "  - name: f\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: {user: \"{nam}\"}\n"
                  "  - name: g\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate: {users: x}\n"
                  "  - name: h\n    server: https://a\n    token_file: ../mat/up.token\n"
                  "    impersonate:\n",
                  8, want);
}

static void test_sizes(void **state)
{
    static const struct { const char *s; int ok; uint64_t n; } rows[] = {
        { "0", 1, 0 }, { "0B", 1, 0 }, { "00", 1, 0 }, { "4096B", 1, 4096 },
        { "16KiB", 1, 16384 }, { "64MiB", 1, 64 << 20 }, { "1GiB", 1, 1 << 30 },
        { "2TiB", 1, (uint64_t)2 << 40 }, { "1048576KiB", 1, (uint64_t)1 << 30 },
        { "", 0, 0 }, { "1", 0, 0 }, { "16384", 0, 0 }, { "KiB", 0, 0 }, { "-1KiB", 0, 0 },
        { "1.5MiB", 0, 0 }, { "1 MiB", 0, 0 }, { "64MB", 0, 0 }, { "64kB", 0, 0 },
        { "1GB", 0, 0 }, { "1Mi", 0, 0 }, { "1mib", 0, 0 }, { "1M", 0, 0 }, { "1KiBB", 0, 0 },
        { "99999999999999999999B", 0, 0 }, { "8388608TiB", 0, 0 }, { "1MiB\0", 0, 0 },
    };
    (void)state;
    for (size_t i = 0; i < BL_ARRAY_LEN(rows); i++) {
        uint64_t n = 0;
        const char *why = NULL;
        size_t len = strlen(rows[i].s) + (i == BL_ARRAY_LEN(rows) - 1); /* the last has a NUL */
        int rc = bl_size_parse(rows[i].s, len, &n, &why);
        if ((rc == BL_OK) != rows[i].ok || (rc == BL_OK && n != rows[i].n)) {
            print_error("\"%s\": rc %d n %llu\n", rows[i].s, rc, (unsigned long long)n);
            fail();
        }
        if (!rows[i].ok)
            assert_non_null(why);
    }
    const char *why;
    uint64_t n;
    assert_int_equal(bl_size_parse("64MB", 4, &n, &why), BL_ERROR);
    assert_non_null(strstr(why, "ambiguous"));
    assert_int_equal(bl_size_parse("64", 2, &n, &why), BL_ERROR);
    assert_non_null(strstr(why, "needs a unit"));
    char buf[32];
    assert_string_equal(bl_size_format(0, buf, sizeof(buf)), "0");
    assert_string_equal(bl_size_format(1500, buf, sizeof(buf)), "1500B");
    assert_string_equal(bl_size_format(16384, buf, sizeof(buf)), "16KiB");
    assert_string_equal(bl_size_format(3 << 20, buf, sizeof(buf)), "3MiB");
    assert_string_equal(bl_size_format((uint64_t)1 << 50, buf, sizeof(buf)), "1024TiB");
}

static void test_origins_and_templates(void **state)
{
    static const char *const origin_ok[] = { "byline", "byline/gw-1", "example.com/log",
        "a:b/c_d.e-f", "A9", ("0123456789012345678901234567890123456789012345678901234567890123"
                              "0123456789012345678901234567890123456789012345678901234567890123") };
    static const char *const origin_bad[] = { "", "/x", "-x", ".x", "a b", "a+b", "a\tb",
        "caf\xc3\xa9", "https://x?y", ("012345678901234567890123456789012345678901234567890123456"
                                         "7890123012345678901234567890123456789012345678901234567"
                                         "890123456789012345") };
    static const char *const tpl_ok[] = { "{name}", "byline:{name}", "agent {name}",
        "{name}@agents.example.org", "a{name}b{name}", "systemd:{name}", "x-system:{name}" };
    static const char *const tpl_bad[] = { "", "byline", "{name", "{Name}", "{}{name}",
        "{name}}", " {name}", "{name} ", "a\tb{name}", "system:{name}", "system:x:{name}",
        "s{name}", "system{name}", "caf\xc3\xa9{name}" };
    const char *why;
    (void)state;
    for (size_t i = 0; i < BL_ARRAY_LEN(origin_ok); i++)
        assert_int_equal(bl_origin_check(origin_ok[i], strlen(origin_ok[i]), &why), BL_OK);
    for (size_t i = 0; i < BL_ARRAY_LEN(origin_bad); i++) {
        if (bl_origin_check(origin_bad[i], strlen(origin_bad[i]), &why) != BL_ERROR) {
            print_error("accepted origin \"%s\"\n", origin_bad[i]);
            fail();
        }
    }
    assert_int_equal(bl_origin_check("a\0b", 3, &why), BL_ERROR);
    for (size_t i = 0; i < BL_ARRAY_LEN(tpl_ok); i++) {
        if (bl_impersonate_template_check(tpl_ok[i], strlen(tpl_ok[i]), &why) != BL_OK) {
            print_error("refused template \"%s\": %s\n", tpl_ok[i], why);
            fail();
        }
    }
    for (size_t i = 0; i < BL_ARRAY_LEN(tpl_bad); i++) {
        if (bl_impersonate_template_check(tpl_bad[i], strlen(tpl_bad[i]), &why) != BL_ERROR) {
            print_error("accepted template \"%s\"\n", tpl_bad[i]);
            fail();
        }
    }
}

/* ---- value syntaxes ---- */

static void test_durations(void **state)
{
    static const struct { const char *s; int ok; uint64_t ms; } rows[] = {
        { "500ms", 1, 500 }, { "10s", 1, 10000 }, { "2m", 1, 120000 }, { "1h", 1, 3600000 },
        { "1m30s", 1, 90000 }, { "0s", 1, 0 }, { "1h1m1s1ms", 1, 3661001 },
        { "", 0, 0 }, { "10", 0, 0 }, { "s", 0, 0 }, { "-1s", 0, 0 }, { "1.5s", 0, 0 },
        { "10 s", 0, 0 }, { "1d", 0, 0 }, { "10S", 0, 0 }, { "99999999999h", 0, 0 },
        { "1194h", 0, 0 }, /* > 2^32 ms */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t ms = 0;
        const char *why = NULL;
        int rc = bl_duration_parse(rows[i].s, strlen(rows[i].s), &ms, &why);
        if ((rc == BL_OK) != rows[i].ok) {
            print_error("\"%s\": rc %d\n", rows[i].s, rc);
            fail();
        }
        if (rows[i].ok)
            assert_int_equal(ms, rows[i].ms);
        else
            assert_non_null(why);
    }
    char buf[32];
    assert_string_equal(bl_duration_format(3600000, buf, sizeof(buf)), "1h");
    assert_string_equal(bl_duration_format(90000, buf, sizeof(buf)), "90s");
    assert_string_equal(bl_duration_format(1500, buf, sizeof(buf)), "1500ms");
    assert_string_equal(bl_duration_format(0, buf, sizeof(buf)), "0ms");
}

static void test_urls(void **state)
{
    static const struct { const char *s; const char *host; int port; const char *path; } ok[] = {
        { "https://10.0.0.1:6443", "10.0.0.1", 6443, "" },
        { "https://api.example.org", "api.example.org", 443, "" },
        { "https://api.example.org/", "api.example.org", 443, "" },
        { "https://[::1]:8443/k8s/prod/", "::1", 8443, "/k8s/prod" },
        { "https://h/a%20b/c", "h", 443, "/a%20b/c" },
    };
    static const char *const bad[] = {
        "http://a", "HTTPS://a", "https://", "https://:443", "https://a:0", "https://a:65536",
        "https://a:x", "https://u:p@a", "https://a?x=1", "https://a/#f", "https://a/b c",
        "https://[::1", "https://[1.2.3.4]", "https://a_b", "https://-a", "https://a/%zz",
        "ftp://a", "https://a/%2",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        bl_url_t u;
        const char *why = NULL;
        if (bl_url_parse(ok[i].s, strlen(ok[i].s), &u, &why) != BL_OK) {
            print_error("%s: %s\n", ok[i].s, why);
            fail();
        }
        assert_string_equal(u.host, ok[i].host);
        assert_int_equal(u.port, ok[i].port);
        assert_string_equal(u.path, ok[i].path);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bl_url_t u;
        const char *why = NULL;
        if (bl_url_parse(bad[i], strlen(bad[i]), &u, &why) == BL_OK) {
            print_error("accepted %s\n", bad[i]);
            fail();
        }
        assert_non_null(why);
    }
}

/* Found by fuzz_config: a NUL inside the host ended the address for
 * inet_pton, so "10.0.0.1\0junk" passed as 10.0.0.1. */
static void test_nul_in_host(void **state)
{
    static const char url[] = "https://10.0.0.1\0\0\0", v6[] = "https://[::1\0x]:1";
    static const char hp[] = "10.0.0.1\0x:8443";
    char host[BL_HOST_MAX + 1];
    bl_url_t u;
    int port;
    const char *why = NULL;
    (void)state;
    assert_int_equal(bl_url_parse(url, sizeof(url) - 1, &u, &why), BL_ERROR);
    assert_string_equal(why, "has an invalid host (a DNS name, an IPv4 address or [IPv6])");
    assert_int_equal(bl_url_parse(v6, sizeof(v6) - 1, &u, &why), BL_ERROR);
    assert_int_equal(bl_hostport_parse(hp, sizeof(hp) - 1, host, &port, &why), BL_ERROR);
    assert_int_equal(bl_url_parse(url, 16, &u, &why), BL_OK); /* the same without the NULs */
    assert_string_equal(u.host, "10.0.0.1");
}

static void test_listen_and_names(void **state)
{
    char host[BL_HOST_MAX + 1];
    int port = 0;
    const char *why;
    (void)state;
    assert_int_equal(bl_hostport_parse("[::]:443", 8, host, &port, &why), BL_OK);
    assert_string_equal(host, "::");
    assert_int_equal(port, 443);
    assert_int_equal(bl_hostport_parse("gw.local:1", 10, host, &port, &why), BL_OK);
    assert_int_equal(bl_hostport_parse("127.0.0.1", 9, host, &port, &why), BL_ERROR);
    assert_int_equal(bl_hostport_parse(":8443", 5, host, &port, &why), BL_ERROR);
    assert_int_equal(bl_hostport_parse("::1:8443", 8, host, &port, &why), BL_ERROR);

    static const char *const conn_ok[] = { "default", "prod-eks", "a", "0", "a-1-b" };
    static const char *const conn_bad[] = { "", "-a", "a-", "A", "a_b", "a.b", "a b",
        "0123456789012345678901234567890123456789012345678901234567890123" };
    for (size_t i = 0; i < BL_ARRAY_LEN(conn_ok); i++)
        assert_int_equal(bl_connection_name_check(conn_ok[i], strlen(conn_ok[i]), &why), BL_OK);
    for (size_t i = 0; i < BL_ARRAY_LEN(conn_bad); i++)
        assert_int_equal(bl_connection_name_check(conn_bad[i], strlen(conn_bad[i]), &why),
                         BL_ERROR);
    static const char *const id_ok[] = { "agent-deploybot", "team:agent", "a@example.org",
                                         "a.b_c", "x", "systemd:x" };
    static const char *const id_bad[] = { "", "Agent", ".a", "a.", "a/b", "a b", "system:x",
        "-a", "a:", "01234567890123456789012345678901234567890123456789012345678901234" };
    for (size_t i = 0; i < BL_ARRAY_LEN(id_ok); i++)
        assert_int_equal(bl_identity_name_check(id_ok[i], strlen(id_ok[i]), &why), BL_OK);
    for (size_t i = 0; i < BL_ARRAY_LEN(id_bad); i++) {
        if (bl_identity_name_check(id_bad[i], strlen(id_bad[i]), &why) != BL_ERROR) {
            print_error("accepted \"%s\"\n", id_bad[i]);
            fail();
        }
    }
    assert_true(bl_is_dns_name("a.b-c.example", 13));
    assert_false(bl_is_dns_name("a..b", 4));
    assert_false(bl_is_dns_name("a-.b", 4));
}

static void test_file_helpers(void **state)
{
    bl_buf_t b, err;
    (void)state;
    const char *dir = newdir();
    char path[400];
    snprintf(path, sizeof(path), "%s/f", dir);
    bl_buf_init(&b, 1 << 20);
    bl_buf_init(&err, 4096);
    assert_int_equal(bl_file_write_atomic(path, "hello", 5, 0640, &err), BL_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(bl_file_read(path, 5, &b, &err), BL_OK);
    assert_int_equal(bl_buf_size(&b), 5);
    bl_buf_reset(&b);
    assert_int_equal(bl_file_read(path, 4, &b, &err), BL_ERROR);
    assert_has(&err, "larger than 4 bytes");
    char *p = bl_file_abspath("/base/", "./x/y");
    assert_string_equal(p, "/base/x/y");
    free(p);
    p = bl_file_abspath("/base", "/abs");
    assert_string_equal(p, "/abs");
    free(p);
    bl_buf_free(&b);
    bl_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_unknown_key_suggests),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_bad_duration_unit),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_duplicate_keys_and_connections),
        cmocka_unit_test(test_connection_credentials),
        cmocka_unit_test(test_tls_errors),
        cmocka_unit_test(test_yaml_syntax),
        cmocka_unit_test(test_report_lines),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_wildcard_listen),
        cmocka_unit_test(test_identity_errors),
        cmocka_unit_test(test_duplicate_credentials),
        cmocka_unit_test(test_identities_file_shapes),
        cmocka_unit_test(test_identities_round_trip),
        cmocka_unit_test(test_put_scalar_round_trip),
        cmocka_unit_test(test_audit_full),
        cmocka_unit_test(test_audit_values),
        cmocka_unit_test(test_audit_errors),
        cmocka_unit_test(test_signing_key_files),
        cmocka_unit_test(test_signing_key_perms),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_impersonate_errors),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_origins_and_templates),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_nul_in_host),
        cmocka_unit_test(test_listen_and_names),
        cmocka_unit_test(test_file_helpers),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
