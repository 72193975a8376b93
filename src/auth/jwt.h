/*
 * jwt.h - a strict JSON Web Token (RFC 7519, JWS compact serialisation,
 * RFC 7515) parser and verifier for workload identity: Kubernetes
 * ServiceAccount tokens, GitHub Actions OIDC tokens, SPIFFE JWT-SVIDs.
 *
 * Only what byline needs and nothing an attacker can steer:
 *   - three base64url parts without padding, each bounded;
 *   - alg RS256, ES256 or EdDSA (Ed25519); `none` and every HMAC alg are
 *     refused before any key is looked at, so a public key is never used
 *     as an HMAC secret (the RS/HS confusion attack);
 *   - the key's type must match alg (RS256 needs RSA >= 2048 bits, ES256
 *     a P-256 key, EdDSA an Ed25519 key);
 *   - a `crit` header is refused; jku, x5u, jwk and x5c are ignored: keys
 *     come only from the configured JWKS, never from the token;
 *   - JSON with duplicate keys or nesting deeper than BL_JWT_DEPTH_MAX is
 *     refused.
 * Failure reasons are short phrases for the 401 audit record; they never
 * contain the token or its signature.
 */
#ifndef BL_AUTH_JWT_H
#define BL_AUTH_JWT_H

#include <jansson.h>
#include <openssl/evp.h>
#include "core/common.h"

#define BL_JWT_MAX         8192  /* whole token, bytes */
#define BL_JWT_HEADER_MAX  1024  /* decoded header JSON */
#define BL_JWT_CLAIMS_MAX  6144  /* decoded claims JSON */
#define BL_JWT_SIG_MAX     1024  /* decoded signature (RSA 8192 bits) */
#define BL_JWT_DEPTH_MAX   8     /* JSON nesting */
#define BL_JWT_KID_MAX     128
#define BL_JWT_WHY_MAX     160   /* a reason fits in this many bytes */

typedef enum { BL_JWT_ALG_NONE_ = 0, BL_JWT_RS256, BL_JWT_ES256, BL_JWT_EDDSA } bl_jwt_alg_t;

/* A parsed (not yet verified) token. Owns header and claims. */
typedef struct {
    bl_str_t signed_part;         /* "header.claims", borrowed from the token */
    bl_jwt_alg_t alg;
    char kid[BL_JWT_KID_MAX + 1]; /* "" when the header has none */
    json_t *header;               /* owned */
    json_t *claims;               /* owned */
    unsigned char sig[BL_JWT_SIG_MAX];
    size_t siglen;
} bl_jwt_t;

/* What the claims must say. */
typedef struct {
    const char *issuer;           /* exact `iss` */
    const char *audience;         /* must be `aud` or one of its elements */
    int64_t now;                  /* seconds since the epoch */
    unsigned skew;                /* seconds allowed either way for exp/nbf/iat */
} bl_jwt_expect_t;

/*
 * Returns 1 if tok[0..len) looks like a JWS compact token (three
 * non-empty dot-separated base64url parts), else 0. Cheap; decodes nothing.
 */
int bl_jwt_shape(const char *tok, size_t len);

/*
 * Parses tok[0..len) into *jwt (which the caller then frees with
 * bl_jwt_free, whatever the result). The token must outlive *jwt.
 * Returns BL_OK; BL_DECLINED if it is not a JWT at all (wrong part count
 * or a header that is not a JSON object with `alg`), so the caller may
 * try other credential kinds; BL_ERROR if it is a JWT byline refuses
 * (bad base64, padding, sizes, alg none/HS*, crit, ...). why[0..cap)
 * receives the reason for both.
 */
int bl_jwt_parse(bl_jwt_t *jwt, const char *tok, size_t len, char *why, size_t cap);

/* Releases what a parsed token owns. Safe on a zeroed or freed one. */
void bl_jwt_free(bl_jwt_t *jwt);

/* Returns the name of an alg ("RS256", ...). */
const char *bl_jwt_alg_name(bl_jwt_alg_t alg);

/*
 * Returns 1 if `key` is of the type `alg` needs (and RSA of at least
 * 2048 bits), else 0.
 */
int bl_jwt_key_fits(bl_jwt_alg_t alg, EVP_PKEY *key);

/*
 * Verifies jwt's signature with `key`. Returns BL_OK, or BL_ERROR with
 * the reason in why (bad signature, key type does not fit alg, ...).
 */
int bl_jwt_verify(const bl_jwt_t *jwt, EVP_PKEY *key, char *why, size_t cap);

/*
 * Checks iss, aud, exp (required), nbf and iat against *want. Returns
 * BL_OK or BL_ERROR with the reason in why.
 */
int bl_jwt_check_claims(const bl_jwt_t *jwt, const bl_jwt_expect_t *want, char *why, size_t cap);

/* Returns the string claim `name`, or NULL (absent or not a string).
 * Borrowed from jwt->claims. */
const char *bl_jwt_claim_str(const bl_jwt_t *jwt, const char *name);

/*
 * Converts a 64-byte JOSE ES256 signature (r || s, 32 bytes each) into
 * DER for OpenSSL. Returns the DER length written to der[0..cap), or
 * BL_ERROR.
 */
long bl_jwt_es256_der(const unsigned char *rs, size_t len, unsigned char *der, size_t cap);

#endif
