/*
 * jwks.c - JWKS documents into EVP_PKEYs built with OSSL_PARAM and
 * EVP_PKEY_fromdata (no deprecated RSA/EC_KEY calls), and key choice.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include "auth/jwks.h"
#include "core/base64.h"

#define BL_JWK_RSA_MAX_BYTES 1024   /* 8192-bit modulus */

static void bl_why(char *why, size_t cap, const char *fmt, ...) BL_PRINTF(3, 4);

static void bl_why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* Decodes the base64url string member `name` of k into out[0..cap).
 * Returns its length, or BL_ERROR (absent, not a string, not base64url,
 * too long). */
static long bl_jwk_bytes(json_t *k, const char *name, unsigned char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(k, name));
    if (s == NULL || s[0] == '\0' || strchr(s, '='))
        return BL_ERROR;
    return bl_b64url_decode((bl_str_t){ s, strlen(s) }, out, cap);
}

/* Builds a public key of `type` from params. Returns it (owned) or NULL. */
static EVP_PKEY *bl_jwk_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = bld ? OSSL_PARAM_BLD_to_param(bld) : NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *bl_jwk_rsa(json_t *k, char *why, size_t cap)
{
    unsigned char n[BL_JWK_RSA_MAX_BYTES], e[8];
    long nl = bl_jwk_bytes(k, "n", n, sizeof(n)), el = bl_jwk_bytes(k, "e", e, sizeof(e));
    EVP_PKEY *pk = NULL;
    if (nl <= 0 || el <= 0) {
        bl_why(why, cap, "RSA key needs base64url n (at most 8192 bits) and e");
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn && be && (BN_num_bits(bn) < 2048 || !BN_is_odd(be) || BN_is_one(be))) {
        bl_why(why, cap, "RSA key must have at least 2048 bits and an odd e > 1");
        goto end;
    }
    if (bld && bn && be && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pk = bl_jwk_fromdata("RSA", bld);
    if (pk == NULL)
        bl_why(why, cap, "RSA key not accepted by OpenSSL");
end:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

/* Returns 1 if a fresh public key passes OpenSSL's public-key check
 * (for EC: the point is on the curve and not the identity). */
static int bl_jwk_check(EVP_PKEY *pk)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    int ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *bl_jwk_ec(json_t *k, char *why, size_t cap)
{
    unsigned char pt[65];
    const char *crv = json_string_value(json_object_get(k, "crv"));
    if (crv == NULL || strcmp(crv, "P-256") != 0) {
        bl_why(why, cap, "EC key crv must be P-256");
        return NULL;
    }
    pt[0] = 0x04; /* uncompressed point: x || y */
    if (bl_jwk_bytes(k, "x", pt + 1, 32) != 32 || bl_jwk_bytes(k, "y", pt + 33, 32) != 32) {
        bl_why(why, cap, "EC P-256 key needs 32-byte base64url x and y");
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
        pk = bl_jwk_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (pk != NULL && !bl_jwk_check(pk)) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    if (pk == NULL)
        bl_why(why, cap, "EC key is not a point on P-256");
    return pk;
}

static EVP_PKEY *bl_jwk_okp(json_t *k, char *why, size_t cap)
{
    unsigned char x[32];
    const char *crv = json_string_value(json_object_get(k, "crv"));
    if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
        bl_why(why, cap, "OKP key crv must be Ed25519");
        return NULL;
    }
    if (bl_jwk_bytes(k, "x", x, sizeof(x)) != 32) {
        bl_why(why, cap, "Ed25519 key needs a 32-byte base64url x");
        return NULL;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, x, sizeof(x)))
        pk = bl_jwk_fromdata("ED25519", bld);
    OSSL_PARAM_BLD_free(bld);
    if (pk == NULL)
        bl_why(why, cap, "Ed25519 key not accepted by OpenSSL");
    return pk;
}

/* Returns 1 if the key may verify signatures per use and key_ops. */
static int bl_jwk_for_sig(json_t *k)
{
    json_t *use = json_object_get(k, "use"), *ops = json_object_get(k, "key_ops"), *e;
    size_t i;
    if (use != NULL && !(json_is_string(use) && !strcmp(json_string_value(use), "sig")))
        return 0;
    if (ops == NULL)
        return 1;
    json_array_foreach(ops, i, e)
        if (json_is_string(e) && !strcmp(json_string_value(e), "verify"))
            return 1;
    return 0;
}

/* Maps kty (and an optional alg) to the alg the key serves. Returns the
 * alg, or BL_JWT_ALG_NONE_ if byline does not use such a key. */
static bl_jwt_alg_t bl_jwk_alg(const char *kty, json_t *alg)
{
    bl_jwt_alg_t by_kty = !strcmp(kty, "RSA") ? BL_JWT_RS256
                          : !strcmp(kty, "EC") ? BL_JWT_ES256
                          : !strcmp(kty, "OKP") ? BL_JWT_EDDSA : BL_JWT_ALG_NONE_;
    if (alg == NULL || by_kty == BL_JWT_ALG_NONE_)
        return by_kty;
    const char *a = json_string_value(alg);
    return a != NULL && !strcmp(a, bl_jwt_alg_name(by_kty)) ? by_kty : BL_JWT_ALG_NONE_;
}

/* Adds key k to set unless skipped. BL_OK or BL_ERROR with why. */
static int bl_jwks_add(bl_jwks_keys_t *set, json_t *k, size_t i, char *why, size_t cap)
{
    char kwhy[BL_JWT_WHY_MAX];
    const char *kty = json_string_value(json_object_get(k, "kty"));
    json_t *kid = json_object_get(k, "kid");
    if (!json_is_object(k) || kty == NULL) {
        bl_why(why, cap, "JWKS key %zu has no kty", i);
        return BL_ERROR;
    }
    bl_jwt_alg_t alg = bl_jwk_alg(kty, json_object_get(k, "alg"));
    if (alg == BL_JWT_ALG_NONE_ || !bl_jwk_for_sig(k)) {
        set->skipped++;
        return BL_OK;
    }
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                        json_string_length(kid) > BL_JWT_KID_MAX)) {
        bl_why(why, cap, "JWKS key %zu: kid must be a string of 1 to %d bytes", i, BL_JWT_KID_MAX);
        return BL_ERROR;
    }
    EVP_PKEY *pk = alg == BL_JWT_RS256 ? bl_jwk_rsa(k, kwhy, sizeof(kwhy))
                   : alg == BL_JWT_ES256 ? bl_jwk_ec(k, kwhy, sizeof(kwhy))
                                         : bl_jwk_okp(k, kwhy, sizeof(kwhy));
    if (pk == NULL) {
        bl_why(why, cap, "JWKS key %zu (kid %.40s): %s", i, kid ? json_string_value(kid) : "-",
               kwhy);
        return BL_ERROR;
    }
    bl_jwk_t *dst = &set->keys[set->n++];
    dst->alg = alg;
    dst->pkey = pk;
    snprintf(dst->kid, sizeof(dst->kid), "%s", kid ? json_string_value(kid) : "");
    return BL_OK;
}

int bl_jwks_parse(const char *json, size_t len, bl_jwks_keys_t **out, char *why, size_t cap)
{
    json_error_t jerr;
    json_t *doc = NULL, *keys, *k;
    size_t i;
    int rc = BL_ERROR;
    bl_jwks_keys_t *set = NULL;
    *out = NULL;
    if (len > BL_JWKS_MAX_BYTES) {
        bl_why(why, cap, "JWKS larger than %d bytes", BL_JWKS_MAX_BYTES);
        goto end;
    }
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    keys = json_object_get(doc, "keys");
    if (doc == NULL || !json_is_array(keys)) {
        bl_why(why, cap, "JWKS is not a JSON object with a keys array%s%.80s",
               doc ? "" : ": ", doc ? "" : jerr.text);
        goto end;
    }
    if (json_array_size(keys) > BL_JWKS_MAX_KEYS) {
        bl_why(why, cap, "JWKS has more than %d keys", BL_JWKS_MAX_KEYS);
        goto end;
    }
    if ((set = calloc(1, sizeof(*set))) == NULL) {
        bl_why(why, cap, "out of memory");
        goto end;
    }
    set->refs = 1;
    json_array_foreach(keys, i, k)
        if (bl_jwks_add(set, k, i, why, cap) != BL_OK)
            goto end;
    if (set->n == 0) {
        bl_why(why, cap, "JWKS has no RS256, ES256 or EdDSA signing key");
        goto end;
    }
    *out = set;
    set = NULL;
    rc = BL_OK;
end:
    bl_jwks_keys_unref(set);
    json_decref(doc);
    return rc;
}

bl_jwks_keys_t *bl_jwks_keys_ref(bl_jwks_keys_t *k)
{
    if (k != NULL)
        __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
    return k;
}

void bl_jwks_keys_unref(bl_jwks_keys_t *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k);
}

int bl_jwks_verify(const bl_jwks_keys_t *set, const bl_jwt_t *jwt, char *why, size_t cap)
{
    size_t tried = 0;
    if (set == NULL)
        return BL_DECLINED;
    for (size_t i = 0; i < set->n; i++) {
        const bl_jwk_t *k = &set->keys[i];
        if (jwt->kid[0] != '\0' && strcmp(k->kid, jwt->kid) != 0)
            continue;
        if (k->alg != jwt->alg) {
            if (jwt->kid[0] == '\0')
                continue;
            bl_why(why, cap, "JWT alg %s does not fit key %.40s (a %s key)",
                   bl_jwt_alg_name(jwt->alg), k->kid, bl_jwt_alg_name(k->alg));
            return BL_ERROR;
        }
        tried++;
        if (bl_jwt_verify(jwt, k->pkey, why, cap) == BL_OK)
            return BL_OK;
        if (jwt->kid[0] != '\0')
            return BL_ERROR; /* kids are unique in practice; the named key said no */
    }
    if (jwt->kid[0] != '\0') {
        bl_why(why, cap, "JWT kid %.40s is not in the issuer's JWKS", jwt->kid);
        return BL_DECLINED;
    }
    if (tried == 0)
        bl_why(why, cap, "JWT has no kid and the JWKS has no %s key", bl_jwt_alg_name(jwt->alg));
    return BL_ERROR;
}
