/*
 * jwt.c - parse and verify JWS compact tokens (see jwt.h for the rules).
 *
 * The parse refuses before it decodes: lengths first, then the base64url
 * alphabet, then JSON bounded in size and depth, then the header's alg.
 * Only after all that is a key involved, and the key must fit the alg.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include "auth/jwt.h"
#include "core/base64.h"

static void bl_why(char *why, size_t cap, const char *fmt, ...) BL_PRINTF(3, 4);

/* Writes a reason (truncated to cap) into why. */
static void bl_why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static int bl_b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int bl_jwt_shape(const char *tok, size_t len)
{
    size_t dots = 0, run = 0;
    if (len == 0 || len > BL_JWT_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (run == 0 || ++dots > 2)
                return 0;
            run = 0;
        } else if (bl_b64url_char((unsigned char)tok[i])) {
            run++;
        } else {
            return 0;
        }
    }
    return dots == 2 && run > 0;
}

/* Returns the largest JSON nesting depth in s[0..n) (strings skipped),
 * stopping early once it passes BL_JWT_DEPTH_MAX. */
static int bl_json_depth(const unsigned char *s, size_t n)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n && max <= BL_JWT_DEPTH_MAX; i++) {
        unsigned char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            max = BL_MAX(max, ++depth);
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

/* Decodes one base64url part into a JSON object. Returns it (owned) or
 * NULL with the reason. `what` names the part in messages. */
static json_t *bl_jwt_json(bl_str_t part, size_t max, const char *what, char *why, size_t cap)
{
    unsigned char buf[BL_JWT_CLAIMS_MAX];
    json_error_t jerr;
    if (part.len > (max + 2) / 3 * 4) {
        bl_why(why, cap, "JWT %s larger than %zu bytes", what, max);
        return NULL;
    }
    long n = bl_b64url_decode(part, buf, BL_MIN(max, sizeof(buf)));
    if (n < 0) {
        bl_why(why, cap, "JWT %s is not base64url", what);
        return NULL;
    }
    if (bl_json_depth(buf, (size_t)n) > BL_JWT_DEPTH_MAX) {
        bl_why(why, cap, "JWT %s nests JSON deeper than %d", what, BL_JWT_DEPTH_MAX);
        return NULL;
    }
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        bl_why(why, cap, "JWT %s is not a JSON object%s", what,
               j == NULL && strstr(jerr.text, "duplicate") ? " (duplicate key)" : "");
        json_decref(j);
        return NULL;
    }
    return j;
}

const char *bl_jwt_alg_name(bl_jwt_alg_t alg)
{
    switch (alg) {
    case BL_JWT_RS256: return "RS256";
    case BL_JWT_ES256: return "ES256";
    case BL_JWT_EDDSA: return "EdDSA";
    default: return "?";
    }
}

/* Reads the header's alg, kid and crit. BL_OK or BL_ERROR with why. */
static int bl_jwt_header(bl_jwt_t *jwt, char *why, size_t cap)
{
    const char *alg = json_string_value(json_object_get(jwt->header, "alg"));
    json_t *kid = json_object_get(jwt->header, "kid");
    if (!strcmp(alg, "RS256"))
        jwt->alg = BL_JWT_RS256;
    else if (!strcmp(alg, "ES256"))
        jwt->alg = BL_JWT_ES256;
    else if (!strcmp(alg, "EdDSA"))
        jwt->alg = BL_JWT_EDDSA;
    else if (!strcmp(alg, "none") || !strcmp(alg, "None") || !strcmp(alg, "NONE"))
        bl_why(why, cap, "JWT alg none is refused: an unsigned token proves nothing");
    else if (alg[0] == 'H' && alg[1] == 'S')
        bl_why(why, cap, "JWT alg %.8s is refused: byline verifies only public-key signatures "
                         "(RS256, ES256, EdDSA)", alg);
    else
        bl_why(why, cap, "JWT alg \"%.16s\" is not supported (RS256, ES256, EdDSA)", alg);
    if (jwt->alg == BL_JWT_ALG_NONE_)
        return BL_ERROR;
    if (json_object_get(jwt->header, "crit") != NULL) {
        bl_why(why, cap, "JWT header has crit: byline understands no critical extensions");
        return BL_ERROR;
    }
    if (kid != NULL) {
        const char *k = json_string_value(kid);
        if (k == NULL || k[0] == '\0' || strlen(k) > BL_JWT_KID_MAX) {
            bl_why(why, cap, "JWT kid must be a string of 1 to %d bytes", BL_JWT_KID_MAX);
            return BL_ERROR;
        }
        snprintf(jwt->kid, sizeof(jwt->kid), "%s", k);
    }
    return BL_OK;
}

int bl_jwt_parse(bl_jwt_t *jwt, const char *tok, size_t len, char *why, size_t cap)
{
    memset(jwt, 0, sizeof(*jwt));
    if (len > BL_JWT_MAX) {
        bl_why(why, cap, "bearer token longer than %d bytes", BL_JWT_MAX);
        return BL_DECLINED;
    }
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + len - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(tok + len - d2 - 1)) != NULL) {
        bl_why(why, cap, "not a JWT: a JWS compact token has three dot-separated parts");
        return BL_DECLINED;
    }
    bl_str_t h = { tok, (size_t)(d1 - tok) }, c = { d1 + 1, (size_t)(d2 - d1 - 1) };
    bl_str_t s = { d2 + 1, (size_t)(tok + len - d2 - 1) };
    if ((jwt->header = bl_jwt_json(h, BL_JWT_HEADER_MAX, "header", why, cap)) == NULL)
        return BL_DECLINED;
    if (!json_is_string(json_object_get(jwt->header, "alg"))) {
        bl_why(why, cap, "not a JWT: the header has no alg");
        return BL_DECLINED;
    }
    if (bl_jwt_header(jwt, why, cap) != BL_OK)
        return BL_ERROR;
    if (!bl_jwt_shape(tok, len)) {
        bl_why(why, cap, "JWT is not three base64url parts without padding");
        return BL_ERROR;
    }
    if ((jwt->claims = bl_jwt_json(c, BL_JWT_CLAIMS_MAX, "claims", why, cap)) == NULL)
        return BL_ERROR;
    long n = bl_b64url_decode(s, jwt->sig, sizeof(jwt->sig));
    if (n <= 0) {
        bl_why(why, cap, "JWT signature is not base64url of at most %d bytes", BL_JWT_SIG_MAX);
        return BL_ERROR;
    }
    jwt->siglen = (size_t)n;
    jwt->signed_part = (bl_str_t){ tok, (size_t)(d2 - tok) };
    return BL_OK;
}

void bl_jwt_free(bl_jwt_t *jwt)
{
    json_decref(jwt->header);
    json_decref(jwt->claims);
    jwt->header = jwt->claims = NULL;
}

int bl_jwt_key_fits(bl_jwt_alg_t alg, EVP_PKEY *key)
{
    char group[32];
    size_t glen = 0;
    switch (alg) {
    case BL_JWT_RS256:
        return EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048;
    case BL_JWT_ES256:
        return EVP_PKEY_is_a(key, "EC") &&
               EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                               sizeof(group), &glen) == 1 &&
               !strcmp(group, "prime256v1");
    case BL_JWT_EDDSA:
        return EVP_PKEY_is_a(key, "ED25519");
    default:
        return 0;
    }
}

long bl_jwt_es256_der(const unsigned char *rs, size_t len, unsigned char *der, size_t cap)
{
    long out = BL_ERROR;
    if (len != 64)
        return BL_ERROR;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto end;
    }
    int n = i2d_ECDSA_SIG(sig, NULL); /* sig owns r and s now */
    unsigned char *p = der;
    if (n > 0 && (size_t)n <= cap && i2d_ECDSA_SIG(sig, &p) == n)
        out = n;
end:
    ECDSA_SIG_free(sig);
    return out;
}

int bl_jwt_verify(const bl_jwt_t *jwt, EVP_PKEY *key, char *why, size_t cap)
{
    unsigned char der[80];
    const unsigned char *sig = jwt->sig;
    size_t siglen = jwt->siglen;
    int rc = BL_ERROR;
    if (!bl_jwt_key_fits(jwt->alg, key)) {
        bl_why(why, cap, "JWT alg %s does not fit the key's type", bl_jwt_alg_name(jwt->alg));
        return BL_ERROR;
    }
    if (jwt->alg == BL_JWT_ES256) {
        long n = bl_jwt_es256_der(jwt->sig, jwt->siglen, der, sizeof(der));
        if (n < 0) {
            bl_why(why, cap, "JWT ES256 signature is not 64 bytes (r || s)");
            return BL_ERROR;
        }
        sig = der;
        siglen = (size_t)n;
    } else if (jwt->siglen != (size_t)EVP_PKEY_get_size(key)) {
        bl_why(why, cap, "JWT signature has the wrong length for its key");
        return BL_ERROR;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const char *mdname = jwt->alg == BL_JWT_EDDSA ? NULL : "SHA256";
    if (md != NULL && EVP_DigestVerifyInit_ex(md, NULL, mdname, NULL, NULL, key, NULL) == 1 &&
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt->signed_part.p,
                         jwt->signed_part.len) == 1)
        rc = BL_OK;
    else
        bl_why(why, cap, "JWT signature does not verify");
    EVP_MD_CTX_free(md);
    return rc;
}

/* Reads a NumericDate claim. Returns 1 (present, in *t), 0 (absent) or -1
 * (not a finite number). */
static int bl_jwt_time(const bl_jwt_t *jwt, const char *name, double *t)
{
    json_t *v = json_object_get(jwt->claims, name);
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return -1;
    *t = json_number_value(v);
    return 1;
}

/* Returns 1 if `aud` (a string or an array of strings) holds want. */
static int bl_jwt_aud_has(json_t *aud, const char *want)
{
    size_t i;
    json_t *e;
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), want);
    json_array_foreach(aud, i, e)
        if (json_is_string(e) && !strcmp(json_string_value(e), want))
            return 1;
    return 0;
}

/* Checks exp, nbf and iat. BL_OK or BL_ERROR with why. */
static int bl_jwt_check_times(const bl_jwt_t *jwt, const bl_jwt_expect_t *want, char *why,
                              size_t cap)
{
    double exp, nbf, iat, now = (double)want->now, skew = (double)want->skew;
    int has_exp = bl_jwt_time(jwt, "exp", &exp), has_nbf = bl_jwt_time(jwt, "nbf", &nbf);
    int has_iat = bl_jwt_time(jwt, "iat", &iat);
    if (has_exp < 0 || has_nbf < 0 || has_iat < 0) {
        bl_why(why, cap, "JWT exp, nbf and iat must be numbers (seconds since the epoch)");
        return BL_ERROR;
    }
    if (has_exp == 0) {
        bl_why(why, cap, "JWT has no exp: byline accepts only tokens that expire");
        return BL_ERROR;
    }
    if (now >= exp + skew) {
        bl_why(why, cap, "JWT expired %.0f s ago (clock skew allowed: %u s)", now - exp,
               want->skew);
        return BL_ERROR;
    }
    if (has_nbf && now + skew < nbf) {
        bl_why(why, cap, "JWT not valid yet: nbf is %.0f s ahead (clock skew allowed: %u s)",
               nbf - now, want->skew);
        return BL_ERROR;
    }
    if (has_iat && now + skew < iat) {
        bl_why(why, cap, "JWT issued in the future: iat is %.0f s ahead (clock skew allowed: "
                         "%u s)", iat - now, want->skew);
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_jwt_check_claims(const bl_jwt_t *jwt, const bl_jwt_expect_t *want, char *why, size_t cap)
{
    const char *iss = bl_jwt_claim_str(jwt, "iss");
    json_t *aud = json_object_get(jwt->claims, "aud");
    if (iss == NULL || strcmp(iss, want->issuer) != 0) {
        bl_why(why, cap, "JWT iss is not %.100s", want->issuer);
        return BL_ERROR;
    }
    if (aud == NULL || !(json_is_string(aud) || json_is_array(aud))) {
        bl_why(why, cap, "JWT has no aud (a string or an array of strings)");
        return BL_ERROR;
    }
    if (!bl_jwt_aud_has(aud, want->audience)) {
        bl_why(why, cap, "JWT aud does not include %.100s", want->audience);
        return BL_ERROR;
    }
    return bl_jwt_check_times(jwt, want, why, cap);
}

const char *bl_jwt_claim_str(const bl_jwt_t *jwt, const char *name)
{
    return json_string_value(json_object_get(jwt->claims, name));
}
