/*
 * test_identity.c - tokens (src/auth/token.c), the identity index and its
 * lookups (src/auth/identity.c) and the gateway PKI (src/auth/pki.c).
 *
 * Configurations are built in memory here (test_config.c covers files).
 * Client certificates are issued with pki.c; their chains are checked
 * with OpenSSL's own verifier, with the purposes a TLS server and client
 * apply, so the EKU separation the gateway relies on is tested for real.
 *
 * CRYPTO_memcmp is interposed (defined below, so the linker binds
 * identity.o to it) to prove the token comparison goes through it: with
 * the comparison forced to "differ", the right token must not match.
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "auth/identity.h"
#include "auth/pki.h"
#include "auth/token.h"

static int memcmp_calls;
static int memcmp_force_differ;

/* Constant-time like OpenSSL's; counts calls; can be forced to "differ". */
int CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    memcmp_calls++;
    return memcmp_force_differ ? 1 : d != 0;
}

/* ---- helpers ---- */

/* A config holding n identities; the caller fills them, then indexes. */
static bl_config_t *new_cfg(size_t n)
{
    bl_config_t *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    cfg->ids = calloc(n ? n : 1, sizeof(*cfg->ids));
    assert_non_null(cfg->ids);
    cfg->nids = n;
    return cfg;
}

static void set_token(bl_identity_t *id, const char *token)
{
    assert_int_equal(bl_token_hash(token, strlen(token), id->token_sha256), BL_OK);
    id->has_token = 1;
}

typedef struct {
    int n;
    int what[16];
    size_t first[16], dup[16];
} dups_t;

static void on_dup(void *ctx, int what, size_t first, size_t dup)
{
    dups_t *d = ctx;
    if (d->n < 16) {
        d->what[d->n] = what;
        d->first[d->n] = first;
        d->dup[d->n] = dup;
    }
    d->n++;
}

/* ---- tokens ---- */

static void test_token_format(void **state)
{
    static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char a[BL_TOKEN_LEN + 1], b[BL_TOKEN_LEN + 1];
    (void)state;
    assert_int_equal(bl_token_generate(a), BL_OK);
    assert_int_equal(bl_token_generate(b), BL_OK);
    assert_int_equal(strlen(a), 47);
    assert_memory_equal(a, "byl_", 4);
    for (size_t i = 4; i < BL_TOKEN_LEN; i++)
        assert_non_null(strchr(b64url, a[i]));
    /* 43 characters carry 258 bits: the last one holds 4 data bits and two
     * zero bits, as unpadded base64url of 32 bytes must. */
    assert_int_equal((strchr(b64url, a[46]) - b64url) & 3, 0);
    assert_string_not_equal(a, b);
}

static void test_token_hash(void **state)
{
    unsigned char h[BL_TOKEN_HASH_LEN], back[BL_TOKEN_HASH_LEN];
    char hex[2 * BL_TOKEN_HASH_LEN + 1];
    (void)state;
    assert_int_equal(bl_token_hash("abc", 3, h), BL_OK);
    bl_token_hash_hex(h, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(bl_token_hash_unhex(hex, 64, back), BL_OK);
    assert_memory_equal(h, back, sizeof(h));
    assert_int_equal(bl_token_hash_unhex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                                         64, back), BL_OK);
    assert_memory_equal(h, back, sizeof(h));
    assert_int_equal(bl_token_hash_unhex(hex, 63, back), BL_ERROR);
    assert_int_equal(bl_token_hash_unhex("g8", 2, back), BL_ERROR);
    hex[10] = 'x';
    assert_int_equal(bl_token_hash_unhex(hex, 64, back), BL_ERROR);
    assert_int_equal(bl_token_hash("", 0, h), BL_OK);
    bl_token_hash_hex(h, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char big[BL_TOKEN_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_int_equal(bl_token_hash(big, BL_TOKEN_MAX, h), BL_OK);
    assert_int_equal(bl_token_hash(big, BL_TOKEN_MAX + 1, h), BL_ERROR);
}

/* ---- token lookups ---- */

static void test_by_token(void **state)
{
    enum { N = 1000 };
    char tok[32];
    (void)state;
    bl_config_t *cfg = new_cfg(N + 1);
    for (size_t i = 0; i < N; i++) {
        snprintf(tok, sizeof(tok), "token-%zu", i);
        cfg->ids[i].name = strdup(tok + 6);
        set_token(&cfg->ids[i], tok);
    }
    cfg->ids[N].name = strdup("cert-only");
    cfg->ids[N].cert_cn = strdup("cert-only");
    assert_null(bl_identity_by_token(cfg, "token-1", 7)); /* no index yet: fail closed */
    assert_int_equal(bl_identity_index_build(cfg, NULL, NULL), BL_OK);
    for (size_t i = 0; i < N; i++) {
        snprintf(tok, sizeof(tok), "token-%zu", i);
        assert_ptr_equal(bl_identity_by_token(cfg, tok, strlen(tok)), &cfg->ids[i]);
    }
    assert_null(bl_identity_by_token(cfg, "token-1000", 10));
    assert_null(bl_identity_by_token(cfg, "token-", 6));
    assert_null(bl_identity_by_token(cfg, "", 0));
    assert_null(bl_identity_by_token(cfg, "token-9999", 10));
    assert_null(bl_identity_by_token(cfg, "Token-1", 7));
    /* the length is the caller's: bytes past it are not part of the token */
    assert_ptr_equal(bl_identity_by_token(cfg, "token-12xyz", 8), &cfg->ids[12]);
    assert_null(bl_identity_by_token(NULL, "token-1", 7));
    bl_config_free(cfg);
}

static void test_by_token_compares_with_crypto_memcmp(void **state)
{
    (void)state;
    bl_config_t *cfg = new_cfg(1);
    cfg->ids[0].name = strdup("agent");
    set_token(&cfg->ids[0], "byl_secret");
    assert_int_equal(bl_identity_index_build(cfg, NULL, NULL), BL_OK);
    memcmp_calls = 0;
    assert_non_null(bl_identity_by_token(cfg, "byl_secret", 10));
    assert_true(memcmp_calls >= 1);
    memcmp_force_differ = 1;
    memcmp_calls = 0;
    const bl_identity_t *id = bl_identity_by_token(cfg, "byl_secret", 10);
    memcmp_force_differ = 0;
    assert_null(id);
    assert_true(memcmp_calls >= 1);
    bl_config_free(cfg);
}

/* ---- the index ---- */

static void test_index_duplicates(void **state)
{
    dups_t d = { 0 };
    (void)state;
    bl_config_t *cfg = new_cfg(6);
    const char *names[] = { "a", "b", "c", "b", "e", "f" };
    for (size_t i = 0; i < 6; i++)
        cfg->ids[i].name = strdup(names[i]);
    set_token(&cfg->ids[0], "t1");
    set_token(&cfg->ids[4], "t1");         /* token of a */
    cfg->ids[1].cert_cn = strdup("cn");
    cfg->ids[2].cert_cn = strdup("cn");    /* CN of b */
    cfg->ids[3].cert_uri = strdup("urn:x");
    cfg->ids[5].cert_uri = strdup("urn:x"); /* URI of the second b */
    assert_int_equal(bl_identity_index_build(cfg, on_dup, &d), BL_DECLINED);
    assert_null(cfg->id_index); /* lookups fail closed */
    assert_null(bl_identity_by_token(cfg, "t1", 2));
    assert_int_equal(d.n, 4);
    int seen[4] = { 0 };
    for (int i = 0; i < d.n; i++) {
        seen[d.what[i]]++;
        assert_true(d.first[i] < d.dup[i]);
        if (d.what[i] == BL_ID_DUP_NAME)
            assert_true(d.first[i] == 1 && d.dup[i] == 3);
        if (d.what[i] == BL_ID_DUP_TOKEN)
            assert_true(d.first[i] == 0 && d.dup[i] == 4);
        if (d.what[i] == BL_ID_DUP_CERT_CN)
            assert_true(d.first[i] == 1 && d.dup[i] == 2);
        if (d.what[i] == BL_ID_DUP_CERT_URI)
            assert_true(d.first[i] == 3 && d.dup[i] == 5);
    }
    assert_int_equal(seen[BL_ID_DUP_NAME] + seen[BL_ID_DUP_TOKEN] + seen[BL_ID_DUP_CERT_CN] +
                     seen[BL_ID_DUP_CERT_URI], 4);
    bl_config_free(cfg);
}

static void test_by_name(void **state)
{
    (void)state;
    bl_config_t *cfg = new_cfg(3);
    const char *names[] = { "agent-b", "agent-a", "agent-ab" };
    for (size_t i = 0; i < 3; i++) {
        cfg->ids[i].name = strdup(names[i]);
        cfg->ids[i].cert_cn = strdup(names[i]);
    }
    assert_int_equal(bl_identity_index_build(cfg, NULL, NULL), BL_OK);
    assert_ptr_equal(bl_identity_by_name(cfg, "agent-a", 7), &cfg->ids[1]);
    assert_ptr_equal(bl_identity_by_name(cfg, "agent-ab", 8), &cfg->ids[2]);
    assert_ptr_equal(bl_identity_by_name(cfg, "agent-abc", 7), &cfg->ids[1]);
    assert_null(bl_identity_by_name(cfg, "agent", 5));
    assert_null(bl_identity_by_name(cfg, "agent-c", 7));
    bl_config_free(cfg);
}

/* ---- certificates ---- */

typedef struct {
    X509 *ca;
    EVP_PKEY *cakey;
} pki_t;

static pki_t pki;

static int setup_pki(void **state)
{
    bl_buf_t err;
    (void)state;
    bl_buf_init(&err, 4096);
    bl_pki_req_t req = { .kind = BL_PKI_CA, .cn = "test CA", .days = 1 };
    pki.cakey = bl_pki_key_new(&err);
    pki.ca = pki.cakey ? bl_pki_issue(&req, pki.cakey, NULL, NULL, &err) : NULL;
    bl_buf_free(&err);
    return pki.ca ? 0 : -1;
}

static int teardown_pki(void **state)
{
    (void)state;
    X509_free(pki.ca);
    EVP_PKEY_free(pki.cakey);
    return 0;
}

/* Issues a certificate of `kind` for cn with the given SANs, signed by the CA. */
static X509 *issue(int kind, const char *cn, const char *const *uris, size_t nuris,
                   const char *const *dns, size_t ndns, EVP_PKEY **keyp)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    const char *org[] = { "ops", "ci" };
    bl_pki_req_t req = { .kind = kind, .cn = cn, .orgs = org, .norgs = 2, .uris = uris,
                         .nuris = nuris, .dns = dns, .ndns = ndns, .days = 1 };
    EVP_PKEY *key = bl_pki_key_new(&err);
    assert_non_null(key);
    X509 *crt = bl_pki_issue(&req, key, pki.ca, pki.cakey, &err);
    if (crt == NULL)
        print_error("%s\n", bl_buf_cstr(&err));
    assert_non_null(crt);
    if (keyp)
        *keyp = key;
    else
        EVP_PKEY_free(key);
    bl_buf_free(&err);
    return crt;
}

/* Verifies crt against the CA the way a TLS peer would. Returns 1 if OK. */
static int verify(X509 *crt, int purpose, const char *host, const char *ip)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_add_cert(store, pki.ca);
    X509_STORE_CTX_init(ctx, store, crt, NULL);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    if (host)
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (ip)
        X509_VERIFY_PARAM_set1_ip_asc(param, ip);
    int ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void test_pki_purposes(void **state)
{
    (void)state;
    const char *dns[] = { "localhost", "gw.example.org" };
    X509 *srv = issue(BL_PKI_SERVER, "byline gateway", NULL, 0, dns, 2, NULL);
    X509 *cli = issue(BL_PKI_CLIENT, "agent-ci", NULL, 0, NULL, 0, NULL);
    assert_true(verify(srv, X509_PURPOSE_SSL_SERVER, "localhost", NULL));
    assert_true(verify(srv, X509_PURPOSE_SSL_SERVER, "gw.example.org", NULL));
    assert_false(verify(srv, X509_PURPOSE_SSL_SERVER, "other.example.org", NULL));
    assert_false(verify(srv, X509_PURPOSE_SSL_CLIENT, NULL, NULL));
    assert_true(verify(cli, X509_PURPOSE_SSL_CLIENT, NULL, NULL));
    assert_false(verify(cli, X509_PURPOSE_SSL_SERVER, NULL, NULL));
    /* IP SANs */
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    const char *ips[] = { "127.0.0.1", "::1" };
    bl_pki_req_t req = { .kind = BL_PKI_SERVER, .cn = "ip", .ips = ips, .nips = 2, .days = 1 };
    EVP_PKEY *key = bl_pki_key_new(&err);
    X509 *ipcrt = bl_pki_issue(&req, key, pki.ca, pki.cakey, &err);
    assert_non_null(ipcrt);
    assert_true(verify(ipcrt, X509_PURPOSE_SSL_SERVER, NULL, "127.0.0.1"));
    assert_true(verify(ipcrt, X509_PURPOSE_SSL_SERVER, NULL, "::1"));
    assert_false(verify(ipcrt, X509_PURPOSE_SSL_SERVER, NULL, "10.0.0.1"));
    /* a bad IP is refused, not silently dropped */
    const char *badip[] = { "300.1.1.1" };
    req.ips = badip;
    req.nips = 1;
    assert_null(bl_pki_issue(&req, key, pki.ca, pki.cakey, &err));
    assert_true(bl_buf_size(&err) > 0);
    /* the CA is a CA; the leaves are not */
    assert_int_equal(X509_check_ca(pki.ca), 1);
    assert_int_equal(X509_check_ca(srv), 0);
    X509_free(ipcrt);
    EVP_PKEY_free(key);
    X509_free(srv);
    X509_free(cli);
    bl_buf_free(&err);
}

static void test_pki_files(void **state)
{
    char dir[] = "/tmp/byline-test-pki-XXXXXX", crt_path[64], key_path[64], enc_path[64];
    bl_buf_t err;
    EVP_PKEY *key, *other;
    struct stat st;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(crt_path, sizeof(crt_path), "%s/a.crt", dir);
    snprintf(key_path, sizeof(key_path), "%s/a.key", dir);
    snprintf(enc_path, sizeof(enc_path), "%s/enc.key", dir);
    bl_buf_init(&err, 4096);
    X509 *crt = issue(BL_PKI_CLIENT, "agent", NULL, 0, NULL, 0, &key);
    assert_int_equal(bl_pki_write_cert(crt_path, crt, &err), BL_OK);
    assert_int_equal(bl_pki_write_key(key_path, key, &err), BL_OK);
    assert_int_equal(stat(key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    X509 *crt2 = bl_pki_read_cert(crt_path, &err);
    EVP_PKEY *key2 = bl_pki_read_key(key_path, &err);
    assert_non_null(crt2);
    assert_non_null(key2);
    assert_int_equal(X509_cmp(crt, crt2), 0);
    assert_int_equal(bl_pki_key_matches(crt2, key2), BL_OK);
    X509 *other_crt = issue(BL_PKI_CLIENT, "other", NULL, 0, NULL, 0, &other);
    assert_int_equal(bl_pki_key_matches(crt2, other), BL_ERROR);
    assert_int_equal(bl_pki_count_certs(crt_path, &err), 1);
    /* an encrypted key is an error, never a passphrase prompt */
    BIO *bio = BIO_new_file(enc_path, "w");
    assert_true(PEM_write_bio_PrivateKey(bio, key, EVP_aes_128_cbc(), NULL, 0, NULL, "pw"));
    BIO_free(bio);
    bl_buf_reset(&err);
    assert_null(bl_pki_read_key(enc_path, &err));
    assert_true(bl_buf_size(&err) > 0);
    bl_buf_reset(&err);
    assert_null(bl_pki_read_cert(key_path, &err));
    assert_int_equal(bl_pki_count_certs(key_path, &err), BL_ERROR);
    X509_free(crt);
    X509_free(crt2);
    X509_free(other_crt);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
    EVP_PKEY_free(other);
    bl_buf_free(&err);
    unlink(crt_path);
    unlink(key_path);
    unlink(enc_path);
    rmdir(dir);
}

static void test_by_cert(void **state)
{
    (void)state;
    bl_config_t *cfg = new_cfg(3);
    cfg->ids[0].name = strdup("agent-a");
    cfg->ids[0].cert_cn = strdup("agent-a");
    cfg->ids[1].name = strdup("agent-b");
    cfg->ids[1].cert_uri = strdup("spiffe://example.org/b");
    cfg->ids[2].name = strdup("agent-c");
    cfg->ids[2].cert_cn = strdup("agent-c");
    cfg->ids[2].cert_uri = strdup("spiffe://example.org/c");
    assert_int_equal(bl_identity_index_build(cfg, NULL, NULL), BL_OK);
    const char *uri_b[] = { "spiffe://example.org/b" };
    const char *uri_c[] = { "spiffe://example.org/c" };
    const char *uri_bc[] = { "spiffe://example.org/b", "spiffe://example.org/c" };
    const char *uri_other[] = { "spiffe://example.org/zzz" };
    struct {
        const char *cn;
        const char *const *uris;
        size_t nuris;
        int want; /* index into ids, or -1 */
    } rows[] = {
        { "agent-a", NULL, 0, 0 },          /* by CN */
        { "nobody", uri_b, 1, 1 },          /* by URI, CN unknown */
        { "agent-c", uri_c, 1, 2 },         /* CN and URI agree */
        { "agent-a", uri_other, 1, 0 },     /* unknown URI is no conflict */
        { "agent-a", uri_b, 1, -1 },        /* CN and URI disagree: ambiguous */
        { "nobody", uri_bc, 2, -1 },        /* two URIs, two identities */
        { "nobody", NULL, 0, -1 },          /* unknown */
        { "AGENT-A", NULL, 0, -1 },         /* exact bytes only */
        { "agent-a ", NULL, 0, -1 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        X509 *crt = issue(BL_PKI_CLIENT, rows[i].cn, rows[i].uris, rows[i].nuris, NULL, 0, NULL);
        const bl_identity_t *got = bl_identity_by_cert(cfg, crt);
        const bl_identity_t *want = rows[i].want < 0 ? NULL : &cfg->ids[rows[i].want];
        if (got != want) {
            print_error("row %zu (CN=%s): got %s, want %s\n", i, rows[i].cn,
                        got ? got->name : "NULL", want ? want->name : "NULL");
            fail();
        }
        X509_free(crt);
    }
    /* a subject with two CNs is ambiguous, even if one of them maps */
    X509 *two = issue(BL_PKI_CLIENT, "agent-a", NULL, 0, NULL, 0, NULL);
    assert_ptr_equal(bl_identity_by_cert(cfg, two), &cfg->ids[0]);
    assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(two), "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"nobody", -1, -1, 0));
    assert_null(bl_identity_by_cert(cfg, two));
    X509_free(two);
    /* no subject CN at all, URI only */
    X509 *nocn = issue(BL_PKI_CLIENT, "x", uri_b, 1, NULL, 0, NULL);
    X509_NAME *subj = X509_get_subject_name(nocn);
    X509_NAME_ENTRY_free(X509_NAME_delete_entry(subj, X509_NAME_get_index_by_NID(subj, NID_commonName, -1)));
    assert_ptr_equal(bl_identity_by_cert(cfg, nocn), &cfg->ids[1]);
    X509_free(nocn);
    assert_null(bl_identity_by_cert(cfg, NULL));
    bl_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_format),
        cmocka_unit_test(test_token_hash),
        cmocka_unit_test(test_by_token),
        cmocka_unit_test(test_by_token_compares_with_crypto_memcmp),
        cmocka_unit_test(test_index_duplicates),
        cmocka_unit_test(test_by_name),
        cmocka_unit_test(test_pki_purposes),
        cmocka_unit_test(test_pki_files),
        cmocka_unit_test(test_by_cert),
    };
    return cmocka_run_group_tests_name("identity", tests, setup_pki, teardown_pki);
}
