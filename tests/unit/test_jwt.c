/*
 * test_jwt.c - workload identity: the JWT parser and verifier
 * (src/auth/jwt.c), JWKS parsing (src/auth/jwks.c), the issuers' key
 * cache with its refresh-on-unknown-kid (src/auth/jwks_cache.c), the
 * claim mapping (bl_identity_by_jwt in src/auth/identity.c) and the
 * `issuers:` config section (src/config/issuers.c).
 *
 * Keys are generated here with OpenSSL (RSA 2048, EC P-256, Ed25519) and
 * tokens are signed here with OpenSSL's EVP_DigestSign and this file's own
 * base64url encoder: none of byline's JWT code makes the tokens it checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include "auth/identity.h"
#include "auth/jwks.h"
#include "auth/jwks_cache.h"
#include "auth/jwt.h"
#include "config/schema.h"
#include "core/loop.h"

#define ISS "https://kubernetes.default.svc.cluster.local"
#define AUD "byline"
#define NOW ((int64_t)1800000000)

static EVP_PKEY *rsa, *rsa2, *ec, *ed;
static char dir[] = "/tmp/byline-test-jwt-XXXXXX";

/* ---- signing side (OpenSSL only) ---- */

/* base64url without padding of p[0..n) into a new string. */
static char *b64u(const void *p, size_t n)
{
    char *out = malloc(4 * (n / 3 + 1) + 1);
    assert_non_null(out);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}

/* Signs input with key as `alg` wants it (ES256: raw r || s). */
static char *sign_b64(EVP_PKEY *key, const char *alg, const char *input)
{
    unsigned char sig[1024], raw[64] = { 0 };
    size_t n = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, strcmp(alg, "EdDSA") ? "SHA256" : NULL, NULL,
                                           NULL, key, NULL), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    if (strcmp(alg, "ES256") != 0)
        return b64u(sig, n);
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    assert_non_null(es);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    return b64u(raw, 64);
}

/* header.claims (both JSON text) base64url-encoded and joined. */
static char *signing_input(const char *header, const char *claims)
{
    char *h = b64u(header, strlen(header)), *c = b64u(claims, strlen(claims));
    char *s = malloc(strlen(h) + strlen(c) + 2);
    sprintf(s, "%s.%s", h, c); /* sized above */
    free(h);
    free(c);
    return s;
}

static char *join_sig(char *input, char *sig)
{
    char *t = malloc(strlen(input) + strlen(sig) + 2);
    sprintf(t, "%s.%s", input, sig); /* sized above */
    free(input);
    free(sig);
    return t;
}

/* A token with these header and claims, signed by key for alg. */
static char *make(EVP_PKEY *key, const char *header, const char *claims)
{
    const char *alg = strstr(header, "ES256") ? "ES256" : strstr(header, "EdDSA") ? "EdDSA" : "RS256";
    char *in = signing_input(header, claims);
    return join_sig(in, sign_b64(key, alg, in));
}

/* Standard claims: iss ISS, aud, exp/nbf/iat relative to NOW. */
static char *claims(const char *sub, const char *aud, long exp, long nbf, const char *extra)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":%s,\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld%s}",
             ISS, sub, aud, (long long)(NOW + exp), (long long)(NOW + nbf),
             (long long)(NOW + nbf), extra ? extra : "");
    return buf;
}

/* ---- JWKS writing (OpenSSL params) ---- */

static char *bn_b64(EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char buf[512];
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64u(buf, (size_t)n);
}

static char *ec_coord(EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char buf[32];
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    BN_bn2binpad(bn, buf, 32);
    BN_free(bn);
    return b64u(buf, 32);
}

/* Appends the JWK of k (kid) to out. */
static void jwk(char *out, size_t cap, EVP_PKEY *k, const char *kid)
{
    size_t l = strlen(out);
    char *a, *b = NULL;
    if (EVP_PKEY_is_a(k, "RSA")) {
        a = bn_b64(k, OSSL_PKEY_PARAM_RSA_N);
        b = bn_b64(k, OSSL_PKEY_PARAM_RSA_E);
        snprintf(out + l, cap - l, "%s{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}",
                 l > 9 ? "," : "", kid, a, b);
    } else if (EVP_PKEY_is_a(k, "EC")) {
        a = ec_coord(k, OSSL_PKEY_PARAM_EC_PUB_X);
        b = ec_coord(k, OSSL_PKEY_PARAM_EC_PUB_Y);
        snprintf(out + l, cap - l, "%s{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
                 l > 9 ? "," : "", kid, a, b);
    } else {
        unsigned char raw[32];
        size_t rl = sizeof(raw);
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &rl), 1);
        a = b64u(raw, rl);
        snprintf(out + l, cap - l, "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\",\"alg\":\"EdDSA\",\"x\":\"%s\"}",
                 l > 9 ? "," : "", kid, a);
    }
    free(a);
    free(b);
}

/* {"keys":[...]} with the given (key, kid) pairs; NULL-terminated. */
static char *jwks_of(EVP_PKEY *k1, const char *kid1, ...)
{
    static char buf[16384];
    va_list ap;
    snprintf(buf, sizeof(buf), "{\"keys\":[");
    va_start(ap, kid1);
    for (EVP_PKEY *k = k1; k != NULL; k = va_arg(ap, EVP_PKEY *))
        jwk(buf, sizeof(buf), k, k == k1 ? kid1 : va_arg(ap, const char *));
    va_end(ap);
    strcat(buf, "]}"); /* room left: buf is far larger than three keys */
    return buf;
}

static void write_file(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* a new inode: the cache sees a change */
}

/* ---- fixtures ---- */

static int setup_keys(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return rsa && rsa2 && ec && ed && mkdtemp(dir) ? 0 : -1;
}

static int teardown_keys(void **state)
{
    char cmd[128];
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* One issuer with jwks_file dir/<name>, prefix "jwt:", groups from "groups". */
typedef struct {
    bl_config_t cfg;
    bl_issuer_t is;
    bl_claim_want_t want;
    char path[256];
    bl_jwks_cache_t *cache;
} fx_t;

static void fx_init(fx_t *f, const char *name, const char *jwks, unsigned min_refresh_ms)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s/%s", dir, name);
    write_file(f->path, jwks);
    f->is = (bl_issuer_t){ .issuer = ISS, .audience = AUD, .jwks_file = f->path,
                           .clock_skew_ms = 60000, .refresh_ms = 3600000, .username_claim = "sub",
                           .username_prefix = "jwt:", .groups_claim = "groups", .groups_prefix = "oidc:" };
    f->cfg.issuers = &f->is;
    f->cfg.nissuers = 1;
    bl_jwks_cache_opts_t o = { .min_refresh_ms = min_refresh_ms, .file_check_ms = 3600000 };
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    f->cache = bl_jwks_cache_new(&f->cfg, &o);
    assert_non_null(f->cache);
    assert_int_equal(bl_jwks_cache_start(f->cache, &err), BL_OK);
    bl_buf_free(&err);
}

static void fx_fini(fx_t *f)
{
    bl_jwks_cache_free(f->cache);
}

/* Presents tok; returns the result, with the identity freed (name kept in name). */
static int present(fx_t *f, const char *tok, char *why, size_t cap, char *name, size_t ncap)
{
    bl_identity_t *id = NULL;
    why[0] = '\0';
    int rc = bl_identity_by_jwt(&f->cfg, f->cache, tok, strlen(tok), NOW, NULL, &id, why, cap);
    if (name)
        snprintf(name, ncap, "%s", id ? id->name : "");
    if (rc == BL_OK)
        assert_non_null(id);
    else
        assert_null(id);
    bl_identity_free(id);
    return rc;
}

static fx_t FX;

static int setup_fx(void **state)
{
    (void)state;
    fx_init(&FX, "main.jwks", jwks_of(rsa, "r1", ec, "e1", ed, "d1", NULL), 10000);
    return 0;
}

static int teardown_fx(void **state)
{
    (void)state;
    fx_fini(&FX);
    return 0;
}

/* ---- tests: valid tokens ---- */

static void test_valid_each_alg(void **state)
{
    char why[256], name[300];
    struct { EVP_PKEY **k; const char *hdr; } c[] = {
        { &rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}" },
        { &ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}" },
        { &ed, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}" },
        { &rsa, "{\"alg\":\"RS256\"}" }, /* no kid: every RS256 key is tried */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *t = make(*c[i].k, c[i].hdr, claims("system:serviceaccount:web:deploybot", "\"" AUD "\"", 600, -10, NULL));
        assert_int_equal(present(&FX, t, why, sizeof(why), name, sizeof(name)), BL_OK);
        assert_string_equal(name, "jwt:system:serviceaccount:web:deploybot");
        free(t);
    }
}

static void test_groups_and_aud_array(void **state)
{
    char why[256];
    bl_identity_t *id = NULL;
    (void)state;
    char *t = make(ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
                   claims("agent-1", "[\"other\",\"" AUD "\"]", 600, 0, ",\"groups\":[\"deployers\",\"readers\"]"));
    assert_int_equal(bl_identity_by_jwt(&FX.cfg, FX.cache, t, strlen(t), NOW, NULL, &id, why, sizeof(why)), BL_OK);
    assert_string_equal(id->name, "jwt:agent-1");
    assert_int_equal(id->ngroups, 2);
    assert_string_equal(id->groups[0], "oidc:deployers");
    assert_string_equal(id->groups[1], "oidc:readers");
    bl_identity_free(id);
    free(t);
}

/* ---- tests: refused claims ---- */

static void expect_refused(const char *tok, int want_rc, const char *needle)
{
    char why[256];
    int rc = present(&FX, tok, why, sizeof(why), NULL, 0);
    if (rc != want_rc || strstr(why, needle) == NULL)
        fail_msg("rc %d (want %d), why \"%s\" (want \"%s\")", rc, want_rc, why, needle);
    assert_null(strstr(why, tok)); /* the reason never quotes the token */
}

static void test_time_and_audience(void **state)
{
    const char *h = "{\"alg\":\"RS256\",\"kid\":\"r1\"}";
    char *t;
    (void)state;
    t = make(rsa, h, claims("a", "\"" AUD "\"", -61, -3600, NULL));
    expect_refused(t, BL_ERROR, "expired");
    free(t);
    t = make(rsa, h, claims("a", "\"" AUD "\"", -30, -3600, NULL)); /* within the 60 s skew */
    expect_refused(t, BL_OK, "");
    free(t);
    t = make(rsa, h, claims("a", "\"" AUD "\"", 3600, 120, NULL));
    expect_refused(t, BL_ERROR, "not valid yet");
    free(t);
    t = make(rsa, h, claims("a", "\"someone-else\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "aud does not include byline");
    free(t);
    t = make(rsa, h, "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"byline\"}");
    expect_refused(t, BL_ERROR, "no exp");
    free(t);
    t = make(rsa, h, "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"byline\",\"exp\":\"tomorrow\"}");
    expect_refused(t, BL_ERROR, "must be numbers");
    free(t);
}

static void test_wrong_issuer(void **state)
{
    (void)state;
    char *in = signing_input("{\"alg\":\"RS256\",\"kid\":\"r1\"}",
                             "{\"iss\":\"https://evil.example\",\"sub\":\"a\",\"aud\":\"byline\",\"exp\":1900000000}");
    char *t = join_sig(in, sign_b64(rsa, "RS256", in));
    expect_refused(t, BL_DECLINED, "issuer \"https://evil.example\" is not configured");
    free(t);
}

static void test_bad_signature(void **state)
{
    (void)state;
    const char *hdrs[] = { "{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"alg\":\"ES256\",\"kid\":\"e1\"}",
                           "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}" };
    EVP_PKEY *keys[] = { rsa, ec, ed };
    for (int i = 0; i < 3; i++) {
        char *t = make(keys[i], hdrs[i], claims("a", "\"" AUD "\"", 600, 0, NULL));
        char *dot = strrchr(t, '.');
        dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* a changed signature byte */
        expect_refused(t, BL_ERROR, "does not verify");
        free(t);
        /* a valid signature over other claims */
        t = make(keys[i], hdrs[i], claims("a", "\"" AUD "\"", 600, 0, NULL));
        char *t2 = make(keys[i], hdrs[i], claims("root", "\"" AUD "\"", 600, 0, NULL));
        char *mix = malloc(strlen(t) + strlen(t2) + 1);
        size_t keep = (size_t)(strrchr(t2, '.') - t2);
        memcpy(mix, t2, keep);
        strcpy(mix + keep, strrchr(t, '.')); /* sized above */
        expect_refused(mix, BL_ERROR, "does not verify");
        free(t);
        free(t2);
        free(mix);
    }
    /* signed by another RSA key under r1's kid */
    char *t = make(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "does not verify");
    free(t);
}

static void test_alg_none(void **state)
{
    (void)state;
    const char *nones[] = { "{\"alg\":\"none\"}", "{\"alg\":\"none\",\"kid\":\"r1\"}", "{\"alg\":\"NONE\"}" };
    for (int i = 0; i < 3; i++) {
        char *in = signing_input(nones[i], claims("a", "\"" AUD "\"", 600, 0, NULL));
        char *t = malloc(strlen(in) + 2);
        sprintf(t, "%s.", in); /* empty signature, as RFC 7519 section 6.1 writes it */
        expect_refused(t, BL_ERROR, "alg none is refused");
        free(t);
        char *t2 = join_sig(in, b64u("x", 1));
        expect_refused(t2, BL_ERROR, "alg none is refused");
        free(t2);
    }
}

/* The RS/HS confusion attack: an HS256 token whose HMAC key is the RSA
 * public key (PEM and DER), as a verifier that takes the key bytes for
 * the alg the token names would accept. */
static void test_rs_hs_confusion(void **state)
{
    (void)state;
    BIO *b = BIO_new(BIO_s_mem());
    unsigned char *der = NULL;
    char *pem;
    assert_int_equal(PEM_write_bio_PUBKEY(b, rsa), 1);
    long pl = BIO_get_mem_data(b, &pem);
    int dl = i2d_PUBKEY(rsa, &der);
    struct { const void *k; size_t n; } secrets[] = { { pem, (size_t)pl }, { der, (size_t)dl } };
    const char *hdrs[] = { "{\"alg\":\"HS256\",\"kid\":\"r1\"}", "{\"alg\":\"HS256\"}", "{\"alg\":\"HS512\",\"kid\":\"r1\"}" };
    for (int s = 0; s < 2; s++)
        for (int h = 0; h < 3; h++) {
            unsigned char mac[64];
            unsigned int ml = 0;
            char *in = signing_input(hdrs[h], claims("admin", "\"" AUD "\"", 600, 0, NULL));
            HMAC(h == 2 ? EVP_sha512() : EVP_sha256(), secrets[s].k, (int)secrets[s].n,
                 (const unsigned char *)in, strlen(in), mac, &ml);
            char *t = join_sig(in, b64u(mac, ml));
            expect_refused(t, BL_ERROR, "is refused: byline verifies only public-key signatures");
            free(t);
        }
    OPENSSL_free(der);
    BIO_free(b);
}

static void test_alg_key_mismatch(void **state)
{
    (void)state;
    /* RS256 naming the EC key's kid (signed with RSA), ES256 naming the RSA key's. */
    char *t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"e1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "does not fit key e1");
    free(t);
    t = make(ec, "{\"alg\":\"ES256\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "does not fit key r1");
    free(t);
    t = make(ed, "{\"alg\":\"EdDSA\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "does not fit key r1");
    free(t);
    /* the verifier itself refuses a key of the wrong type */
    bl_jwt_t jwt;
    char why[160];
    t = make(rsa, "{\"alg\":\"RS256\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    assert_int_equal(bl_jwt_parse(&jwt, t, strlen(t), why, sizeof(why)), BL_OK);
    assert_int_equal(bl_jwt_verify(&jwt, ec, why, sizeof(why)), BL_ERROR);
    assert_int_equal(bl_jwt_verify(&jwt, ed, why, sizeof(why)), BL_ERROR);
    assert_int_equal(bl_jwt_verify(&jwt, rsa, why, sizeof(why)), BL_OK);
    bl_jwt_free(&jwt);
    free(t);
}

static void test_header_rules(void **state)
{
    (void)state;
    char *t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"],\"exp\":1}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "crit");
    free(t);
    t = make(rsa, "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "not supported");
    free(t);
    t = make(rsa, "{\"alg\":\"RS256\",\"alg\":\"none\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_DECLINED, "duplicate key");
    free(t);
    t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{\"iss\":\"" ISS "\",\"iss\":\"x\",\"aud\":\"byline\",\"exp\":1900000000}");
    expect_refused(t, BL_ERROR, "duplicate key");
    free(t);
    /* a jku pointing elsewhere is ignored: the key still comes from the JWKS */
    t = make(rsa2, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"jku\":\"https://evil.example/jwks\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "does not verify");
    free(t);
}

static void test_mapping_rules(void **state)
{
    (void)state;
    FX.is.username_prefix = NULL;
    char *t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("system:serviceaccount:a:b", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "system: is reserved");
    free(t);
    FX.is.username_prefix = "jwt:";
    FX.is.groups_prefix = NULL;
    t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, ",\"groups\":[\"system:masters\"]"));
    expect_refused(t, BL_ERROR, "system: is reserved");
    free(t);
    FX.is.groups_prefix = "oidc:";
    t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("a\\r\\nImpersonate-User: x", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_ERROR, "printable ASCII");
    free(t);
    bl_claim_want_t want = { "repository", "acme/deploy" };
    FX.is.claims = &want;
    FX.is.nclaims = 1;
    t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, ",\"repository\":\"acme/other\""));
    expect_refused(t, BL_ERROR, "claim repository does not have the value");
    free(t);
    t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, ",\"repository\":\"acme/deploy\""));
    expect_refused(t, BL_OK, "");
    free(t);
    FX.is.claims = NULL;
    FX.is.nclaims = 0;
}

/* ---- tests: malformed input ---- */

static void test_malformed(void **state)
{
    (void)state;
    char *good = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    char buf[BL_JWT_MAX + 64];
    bl_jwt_t jwt;
    char why[160];
    /* part counts */
    const char *shapes[] = { "abc", "abc.def", "a.b.c.d", "..", "a..b", "" };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        assert_int_equal(bl_jwt_shape(shapes[i], strlen(shapes[i])), 0);
        assert_int_equal(bl_jwt_parse(&jwt, shapes[i], strlen(shapes[i]), why, sizeof(why)), BL_DECLINED);
        bl_jwt_free(&jwt);
    }
    assert_int_equal(bl_jwt_shape(good, strlen(good)), 1);
    /* bad base64 in the claims and in the signature, padding */
    snprintf(buf, sizeof(buf), "%s", good);
    strchr(buf, '.')[2] = '*';
    expect_refused(buf, BL_ERROR, "three base64url parts");
    snprintf(buf, sizeof(buf), "%s=", good);
    expect_refused(buf, BL_ERROR, "three base64url parts");
    snprintf(buf, sizeof(buf), "%s", good);
    *strrchr(buf, '.') = '\0';
    strcat(buf, ".A"); /* 1 char: not base64 of anything */
    expect_refused(buf, BL_ERROR, "signature is not base64url");
    /* a header that is not JSON: not a JWT (maybe some other token) */
    expect_refused("eyJhbGciOi.eyJ.sig", BL_DECLINED, "");
    /* huge header */
    char big[3000];
    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"alg\":\"RS256\",\"x\":\"", 20);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    char *t = make(rsa, big, claims("a", "\"" AUD "\"", 600, 0, NULL));
    expect_refused(t, BL_DECLINED, "header larger than");
    free(t);
    /* deep nesting in the claims */
    char deep[256] = "{\"iss\":\"" ISS "\",\"x\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    for (int i = 0; i < 20; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    t = make(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", deep);
    expect_refused(t, BL_ERROR, "deeper than");
    free(t);
    /* over-long token */
    memset(buf, 'A', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    buf[100] = buf[200] = '.';
    expect_refused(buf, BL_DECLINED, "");
    /* ES256 signature of the wrong length */
    t = make(ec, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    *strrchr(t, '.') = '\0';
    char *t2 = join_sig(strdup(t), b64u("0123456789012345678901234567890123456789012345678901234567890123x", 65));
    expect_refused(t2, BL_ERROR, "not 64 bytes");
    free(t2);
    free(t);
    free(good);
}

/* ---- tests: JWKS ---- */

static void test_jwks_parse(void **state)
{
    (void)state;
    bl_jwks_keys_t *k = NULL;
    char why[160];
    /* skipped: oct, use enc, alg RS512, key_ops without verify */
    const char *ok = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
                     "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
                     "{\"kty\":\"RSA\",\"alg\":\"RS512\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
                     "{\"kty\":\"RSA\",\"key_ops\":[\"encrypt\"],\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
    assert_int_equal(bl_jwks_parse(ok, strlen(ok), &k, why, sizeof(why)), BL_ERROR);
    assert_non_null(strstr(why, "no RS256, ES256 or EdDSA signing key"));
    char *full = strdup(jwks_of(rsa, "r1", ec, "e1", ed, "d1", NULL));
    assert_int_equal(bl_jwks_parse(full, strlen(full), &k, why, sizeof(why)), BL_OK);
    assert_int_equal(k->n, 3);
    assert_int_equal(k->keys[1].alg, BL_JWT_ES256);
    bl_jwks_keys_unref(k);
    free(full);
    /* a small RSA key, an EC point off the curve, bad Ed25519 length, bad kid */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *s = strdup(jwks_of(small, "s", NULL));
    assert_int_equal(bl_jwks_parse(s, strlen(s), &k, why, sizeof(why)), BL_ERROR);
    assert_non_null(strstr(why, "2048"));
    free(s);
    EVP_PKEY_free(small);
    char *e = strdup(jwks_of(ec, "e1", NULL));
    char *y = strstr(e, "\"y\":\"") + 5;
    y[5] = y[5] == 'A' ? 'B' : 'A';
    assert_int_equal(bl_jwks_parse(e, strlen(e), &k, why, sizeof(why)), BL_ERROR);
    assert_non_null(strstr(why, "not a point on P-256"));
    free(e);
    const char *bad[] = { "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}",
                          "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
                          "{\"keys\":[{\"kty\":\"RSA\",\"kid\":7,\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                          "{\"keys\":{}}", "[]", "{\"keys\":[1]}", "not json" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bl_jwks_parse(bad[i], strlen(bad[i]), &k, why, sizeof(why)), BL_ERROR);
        assert_null(k);
    }
}

/* ---- tests: rotation (unknown kid -> refresh) ---- */

static int waiter_called;

static void on_done(bl_jwks_waiter_t *w)
{
    waiter_called++;
    bl_loop_stop(w->loop);
}

static void on_wake(bl_loop_t *loop, void *data)
{
    bl_jwks_cache_poll(data, loop);
}

static void test_unknown_kid_refresh(void **state)
{
    (void)state;
    fx_t f;
    char why[256], name[300];
    bl_identity_t *id = NULL;
    fx_init(&f, "rot.jwks", jwks_of(rsa, "old", NULL), 3600000);
    bl_loop_t *loop = bl_loop_new();
    assert_non_null(loop);
    bl_loop_on_wake(loop, on_wake, f.cache);
    bl_jwks_waiter_t w = { .loop = loop, .done = on_done };
    char *t = make(rsa2, "{\"alg\":\"RS256\",\"kid\":\"new\"}", claims("rotated", "\"" AUD "\"", 600, 0, NULL));
    /* The issuer rotates: the file has the new key, but the cache checks it
     * only hourly, so until the token asks, "new" is unknown. */
    write_file(f.path, jwks_of(rsa, "old", rsa2, "new", NULL));
    uint64_t gen = bl_jwks_cache_generation(f.cache, 0);
    assert_int_equal(present(&f, t, why, sizeof(why), NULL, 0), BL_ERROR);
    assert_non_null(strstr(why, "kid new is not in the issuer's JWKS"));
    assert_int_equal(bl_identity_by_jwt(&f.cfg, f.cache, t, strlen(t), NOW, &w, &id, why, sizeof(why)), BL_AGAIN);
    assert_int_equal(bl_loop_run(loop), BL_OK); /* until the waiter is called */
    assert_int_equal(waiter_called, 1);
    assert_true(bl_jwks_cache_generation(f.cache, 0) > gen);
    assert_int_equal(present(&f, t, why, sizeof(why), name, sizeof(name)), BL_OK);
    assert_string_equal(name, "jwt:rotated");
    /* Rate limited: another unknown kid gets no second early refresh. */
    char *t2 = make(ec, "{\"alg\":\"ES256\",\"kid\":\"later\"}", claims("x", "\"" AUD "\"", 600, 0, NULL));
    assert_int_equal(bl_identity_by_jwt(&f.cfg, f.cache, t2, strlen(t2), NOW, &w, &id, why, sizeof(why)), BL_ERROR);
    assert_non_null(strstr(why, "kid later is not in the issuer's JWKS"));
    assert_int_equal(w.linked, 0);
    /* A cancelled waiter is never called. */
    bl_jwks_cache_cancel(f.cache, &w);
    free(t2);
    free(t);
    bl_loop_free(loop);
    fx_fini(&f);
}

static void test_broken_jwks_file_keeps_keys(void **state)
{
    (void)state;
    fx_t f;
    char why[256];
    bl_identity_t *id = NULL;
    fx_init(&f, "broken.jwks", jwks_of(ed, "d1", NULL), 0);
    bl_loop_t *loop = bl_loop_new();
    bl_loop_on_wake(loop, on_wake, f.cache);
    bl_jwks_waiter_t w = { .loop = loop, .done = on_done };
    write_file(f.path, "{\"keys\": [ broken");
    char *t = make(ed, "{\"alg\":\"EdDSA\",\"kid\":\"zz\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    waiter_called = 0;
    assert_int_equal(bl_identity_by_jwt(&f.cfg, f.cache, t, strlen(t), NOW, &w, &id, why, sizeof(why)), BL_AGAIN);
    assert_int_equal(bl_loop_run(loop), BL_OK);
    assert_int_equal(waiter_called, 1);
    bl_jwks_cache_error(f.cache, 0, why, sizeof(why));
    assert_non_null(strstr(why, "not a JSON object"));
    free(t);
    t = make(ed, "{\"alg\":\"EdDSA\",\"kid\":\"d1\"}", claims("a", "\"" AUD "\"", 600, 0, NULL));
    assert_int_equal(present(&f, t, why, sizeof(why), NULL, 0), BL_OK); /* the old set stays */
    free(t);
    bl_loop_free(loop);
    fx_fini(&f);
}

/* ---- tests: config ---- */

static const bl_yaml_key_t top_keys[] = {
    { "issuers", bl_cfg_issuers, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int load_issuers(const char *yaml, bl_config_t *cfg, bl_buf_t *errors, bl_buf_t *warnings)
{
    bl_yaml_t y = { .file = "byline.yaml", .dir = dir, .errors = errors, .warnings = warnings };
    memset(cfg, 0, sizeof(*cfg));
    assert_int_equal(bl_yaml_load_mem(&y, yaml, strlen(yaml)), BL_OK);
    bl_yaml_map(&y, bl_yaml_root(&y), top_keys, cfg, NULL);
    unsigned n = y.nerrors;
    bl_yaml_free(&y);
    return n ? BL_ERROR : BL_OK;
}

static void test_config(void **state)
{
    (void)state;
    bl_config_t cfg;
    bl_buf_t err, warn;
    char yaml[2048];
    bl_buf_init(&err, 8192);
    bl_buf_init(&warn, 8192);
    snprintf(yaml, sizeof(yaml),
             "issuers:\n"
             "  - issuer: https://token.actions.githubusercontent.com\n"
             "    audience: byline\n"
             "    username_prefix: \"gha:\"\n"
             "    groups_claim: repository_owner\n"
             "    claims: {repository: acme/deploy, workflow: release}\n"
             "  - issuer: %s\n"
             "    audience: byline\n"
             "    jwks_file: %s/main.jwks\n"
             "    clock_skew: 30s\n",
             ISS, dir);
    assert_int_equal(load_issuers(yaml, &cfg, &err, &warn), BL_OK);
    assert_int_equal(cfg.nissuers, 2);
    assert_string_equal(cfg.issuers[0].username_claim, "sub");
    assert_null(cfg.issuers[0].jwks_url); /* discovery */
    assert_int_equal(cfg.issuers[0].nclaims, 2);
    assert_string_equal(cfg.issuers[0].claims[1].value, "release");
    assert_int_equal(cfg.issuers[1].clock_skew_ms, 30000);
    assert_int_equal(cfg.issuers[1].refresh_ms, 3600000);
    assert_non_null(strstr(bl_buf_cstr(&warn), "byline.yaml:7:5: warning: issuer \"" ISS "\" has no username_prefix"));
    bl_cfg_issuers_free(&cfg);
    bl_buf_reset(&err);
    snprintf(yaml, sizeof(yaml),
             "issuers:\n"
             "  - issuer: spiffe-ish\n"           /* not https, no keys */
             "    audience: byline\n"
             "  - issuer: a\n"
             "    audience: b\n"
             "    jwks_file: %s/main.jwks\n"
             "    jwks_url: https://x.example/jwks\n"
             "    username_prefix: \"system:\"\n"
             "    clock_skew: 1h\n"
             "  - issuer: c\n",
             dir);
    assert_int_equal(load_issuers(yaml, &cfg, &err, &warn), BL_ERROR);
    const char *e = bl_buf_cstr(&err);
    assert_non_null(strstr(e, "byline.yaml:2:5: issuer \"spiffe-ish\" needs jwks_file or jwks_url"));
    assert_non_null(strstr(e, "byline.yaml:7:15: jwks_file and jwks_url are mutually exclusive"));
    assert_non_null(strstr(e, "byline.yaml:8:22: username_prefix: \"system:\" is reserved"));
    assert_non_null(strstr(e, "byline.yaml:9:17: clock_skew: must be between"));
    assert_non_null(strstr(e, "audience"));
    bl_cfg_issuers_free(&cfg);
    bl_buf_free(&err);
    bl_buf_free(&warn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_each_alg, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_groups_and_aud_array, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_time_and_audience, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_wrong_issuer, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_bad_signature, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_alg_none, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_rs_hs_confusion, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_alg_key_mismatch, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_header_rules, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_mapping_rules, setup_fx, teardown_fx),
        cmocka_unit_test_setup_teardown(test_malformed, setup_fx, teardown_fx),
        cmocka_unit_test(test_jwks_parse),
        cmocka_unit_test(test_unknown_kid_refresh),
        cmocka_unit_test(test_broken_jwks_file_keeps_keys),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
