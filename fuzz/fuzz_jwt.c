/*
 * fuzz_jwt.c - libFuzzer target for the hand-written JWT code: the JWS
 * compact parser (bl_jwt_parse), signature checks against a fixed JWKS
 * (bl_jwks_verify: RS256, ES256 raw-to-DER, EdDSA), the claim checks
 * (bl_jwt_check_claims) and JWKS parsing (bl_jwks_parse).
 *
 * Input: a token, or (first byte '{') a JWKS document. The corpus holds
 * tokens validly signed by the keys below (their private halves were
 * thrown away), so mutations reach the verifier and claim checks. Besides
 * crashes and sanitizer reports, the target aborts when:
 *   - a token bl_jwt_parse accepts is not what bl_jwt_shape calls a JWT
 *     (three base64url parts), has an alg other than RS256/ES256/EdDSA, or
 *     a signature outside 1..BL_JWT_SIG_MAX bytes;
 *   - a refusal (parse, verify, claims, JWKS) comes without a reason, or
 *     with one that is not NUL-terminated within its buffer;
 *   - bl_jwt_free leaves JSON behind;
 *   - a parsed JWKS holds no key, too many, or a key whose type does not
 *     fit the alg it is kept for.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/jwks.h"
#include "auth/jwt.h"

#define CHECK(x)                                                                      \
    do {                                                                              \
        if (!(x)) {                                                                   \
            fprintf(stderr, "fuzz_jwt: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Public keys r1 (RS256), e1 (ES256), d1 (EdDSA) of the seed tokens. */
static const char fixed_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"yvg"
    "DZ4C1KDGuGdhPZBV8rVaooDmBjIKeAEHd0daMehW65XV0i2KPiEBtsR1lu3VlQMUaJO_t7JMhKhLot6X8Yf2yYdR"
    "54jPTvbN8hlOsn11_lRYL_m53HfD_muHAyNJS5GQ0JbxvM3VTFuQCqA7f9eGrt9wuISELYWG4ot7D1TujszdDkGM"
    "qpHJv9xOJ4ZVtkHco9XpvZlKgIyvh2ukmlUsQmHjU1Vmq7J5VqmxWzTFLVnHciAm2xbX7_SDydI1K0y0sYHuHlhQ"
    "C5xSZDCbXpp6NopTLwIkd8-D0v2Aqdk9L7vsJzISAGWnOf4ELlychMl9rjHPnPk7-rfHxQfJwTw\",\"e\":\"AQ"
    "AB\"},{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"Ua3VZ8NCyLscWMMHaOtnTpRWM"
    "g6hZaAI5emS_k6eWMw\",\"y\":\"iRIosjGhepUloCBU4JoTtdGJGeZgaGAP44dP4Owoocw\"},{\"kty\":\"O"
    "KP\",\"kid\":\"d1\",\"crv\":\"Ed25519\",\"x\":\"iAnEonxkwJFzkQIWKCaTvQpRe4c2X77KXOwf9GYn"
    "c2s\"}]}";

static bl_jwks_keys_t *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char why[BL_JWT_WHY_MAX];
    (void)argc;
    (void)argv;
    CHECK(bl_jwks_parse(fixed_jwks, sizeof(fixed_jwks) - 1, &keys, why, sizeof(why)) == BL_OK);
    CHECK(keys->n == 3);
    return 0;
}

static void check_why(const char *why, size_t cap)
{
    CHECK(memchr(why, '\0', cap) != NULL);
    CHECK(why[0] != '\0');
}

static void fuzz_jwks(const char *p, size_t n)
{
    bl_jwks_keys_t *set = NULL;
    char why[BL_JWT_WHY_MAX] = "";
    if (bl_jwks_parse(p, n, &set, why, sizeof(why)) != BL_OK) {
        CHECK(set == NULL);
        check_why(why, sizeof(why));
        return;
    }
    CHECK(set->n > 0 && set->n <= BL_JWKS_MAX_KEYS);
    for (size_t i = 0; i < set->n; i++)
        CHECK(bl_jwt_key_fits(set->keys[i].alg, set->keys[i].pkey));
    bl_jwks_keys_unref(set);
}

static void fuzz_token(const char *tok, size_t n)
{
    bl_jwt_t jwt;
    char why[BL_JWT_WHY_MAX] = "";
    int rc = bl_jwt_parse(&jwt, tok, n, why, sizeof(why));
    if (rc != BL_OK) {
        check_why(why, sizeof(why));
        bl_jwt_free(&jwt);
        return;
    }
    CHECK(bl_jwt_shape(tok, n));
    CHECK(jwt.alg == BL_JWT_RS256 || jwt.alg == BL_JWT_ES256 || jwt.alg == BL_JWT_EDDSA);
    CHECK(jwt.signed_part.len < n && jwt.siglen > 0 && jwt.siglen <= BL_JWT_SIG_MAX);
    why[0] = '\0';
    rc = bl_jwks_verify(keys, &jwt, why, sizeof(why));
    if (rc != BL_OK)
        check_why(why, sizeof(why));
    bl_jwt_expect_t want = { "https://issuer.example", "byline", 1800000000, 60 };
    why[0] = '\0';
    if (bl_jwt_check_claims(&jwt, &want, why, sizeof(why)) != BL_OK)
        check_why(why, sizeof(why));
    const char *sub = bl_jwt_claim_str(&jwt, "sub");
    CHECK(sub == NULL || strlen(sub) < BL_JWT_CLAIMS_MAX);
    bl_jwt_free(&jwt);
    CHECK(jwt.header == NULL && jwt.claims == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1); /* exact size: a read past the end is an ASan report */
    CHECK(p != NULL);
    if (size)
        memcpy(p, data, size);
    if (size > 0 && p[0] == '{')
        fuzz_jwks(p, size);
    else
        fuzz_token(p, size);
    free(p);
    return 0;
}
