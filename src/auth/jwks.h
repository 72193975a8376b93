/*
 * jwks.h - JSON Web Key Sets (RFC 7517, RFC 7518 section 6, RFC 8037)
 * into OpenSSL public keys, and choosing the key for a token.
 *
 * Understood: kty RSA (n, e; at least 2048 bits), kty EC with crv P-256
 * (x, y; the point must be on the curve), kty OKP with crv Ed25519 (x).
 * A key whose `use` is not "sig", whose key_ops lack "verify", whose alg
 * is not RS256/ES256/EdDSA or does not fit its kty, or whose kty byline
 * does not use (oct: symmetric keys are never used) is skipped, as RFC
 * 7517 section 5 asks; a malformed key of a known type makes the whole
 * set an error, so a broken publication is noticed rather than half used.
 *
 * A bl_jwks_keys_t is immutable once parsed and reference-counted, so a
 * worker can verify with a set while the refresher thread replaces it.
 */
#ifndef BL_AUTH_JWKS_H
#define BL_AUTH_JWKS_H

#include <openssl/evp.h>
#include "auth/jwt.h"
#include "core/common.h"

#define BL_JWKS_MAX_BYTES (256 * 1024) /* a JWKS document */
#define BL_JWKS_MAX_KEYS  64

typedef struct {
    char kid[BL_JWT_KID_MAX + 1];  /* "" when the key has none */
    bl_jwt_alg_t alg;              /* the alg it is for (from alg, or from its type) */
    EVP_PKEY *pkey;                /* owned */
} bl_jwk_t;

typedef struct {
    bl_jwk_t keys[BL_JWKS_MAX_KEYS];
    size_t n;
    size_t skipped;                /* keys ignored (unknown type, use enc, ...) */
    int refs;                      /* atomic */
} bl_jwks_keys_t;

/*
 * Parses a JWKS document json[0..len). Returns BL_OK with a new set in
 * *out (one reference, released with bl_jwks_keys_unref), or BL_ERROR
 * with the reason in why[0..cap). A set with no usable key is an error.
 */
int bl_jwks_parse(const char *json, size_t len, bl_jwks_keys_t **out, char *why, size_t cap);

/* Takes / drops a reference (thread-safe). Unref frees at zero; NULL is fine. */
bl_jwks_keys_t *bl_jwks_keys_ref(bl_jwks_keys_t *k);
void bl_jwks_keys_unref(bl_jwks_keys_t *k);

/*
 * Verifies jwt's signature with the key set: the key named by the
 * token's kid (whose alg must be the token's), or, for a token without
 * kid, each key made for the token's alg in turn. Returns BL_OK;
 * BL_DECLINED if the token names a kid the set does not have (a reason to
 * refresh the set); or BL_ERROR with the reason in why.
 */
int bl_jwks_verify(const bl_jwks_keys_t *set, const bl_jwt_t *jwt, char *why, size_t cap);

#endif
