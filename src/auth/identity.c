/* identity.c - the identity index and the credential lookups, and
 * workload identities mapped from verified JWT claims. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>
#include "auth/identity.h"
#include "auth/jwks_cache.h"
#include "auth/jwt.h"
#include "auth/token.h"

/* Sorted views for the string keys, a hash table for the token hashes. */
enum { BL_IDX_NAME, BL_IDX_CN, BL_IDX_URI, BL_IDX_N };

struct bl_identity_index_s {
    uint32_t *tok;        /* open addressing: 1 + index into cfg->ids, 0 = empty */
    size_t tok_mask;      /* slots - 1; slots is a power of two >= 2 x tokens */
    const bl_identity_t **sorted[BL_IDX_N];
    size_t nsorted[BL_IDX_N];
};

/* The string an identity has for sorted view `which`, or NULL. */
static const char *bl_idx_key(const bl_identity_t *id, int which)
{
    return which == BL_IDX_NAME ? id->name : which == BL_IDX_CN ? id->cert_cn : id->cert_uri;
}

static int bl_idx_cmp(const void *a, const void *b, void *arg)
{
    const bl_identity_t *x = *(const bl_identity_t *const *)a;
    const bl_identity_t *y = *(const bl_identity_t *const *)b;
    int which = *(const int *)arg;
    int c = strcmp(bl_idx_key(x, which), bl_idx_key(y, which));
    return c != 0 ? c : (x > y) - (x < y); /* ties in array order: first is first */
}

/* Compares key[0..len) with NUL-terminated s, in strcmp order. */
static int bl_idx_keycmp(const char *key, size_t len, const char *s)
{
    size_t sl = strlen(s);
    int c = memcmp(key, s, BL_MIN(len, sl));
    return c != 0 ? c : (len > sl) - (len < sl);
}

static const bl_identity_t *bl_idx_find(const struct bl_identity_index_s *idx, int which,
                                        const char *key, size_t len)
{
    const bl_identity_t **v = idx->sorted[which];
    size_t lo = 0, hi = idx->nsorted[which];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bl_idx_keycmp(key, len, bl_idx_key(v[mid], which));
        if (c == 0)
            return v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Builds sorted view `which`; reports equal neighbours as duplicates. */
static int bl_idx_sort(struct bl_identity_index_s *idx, const bl_config_t *cfg, int which,
                       bl_identity_dup_fn on_dup, void *ctx, int *dups)
{
    static const int what[BL_IDX_N] = { BL_ID_DUP_NAME, BL_ID_DUP_CERT_CN, BL_ID_DUP_CERT_URI };
    size_t n = 0;
    const bl_identity_t **v = malloc((cfg->nids ? cfg->nids : 1) * sizeof(*v));
    if (v == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < cfg->nids; i++)
        if (bl_idx_key(&cfg->ids[i], which) != NULL)
            v[n++] = &cfg->ids[i];
    qsort_r(v, n, sizeof(*v), bl_idx_cmp, &which);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(bl_idx_key(v[first], which), bl_idx_key(v[i], which)) != 0) {
            first = i;
            continue;
        }
        (*dups)++;
        if (on_dup != NULL)
            on_dup(ctx, what[which], (size_t)(v[first] - cfg->ids), (size_t)(v[i] - cfg->ids));
    }
    idx->sorted[which] = v;
    idx->nsorted[which] = n;
    return BL_OK;
}

static size_t bl_tok_slot(const unsigned char h[BL_TOKEN_HASH_LEN], size_t mask)
{
    uint64_t x;
    memcpy(&x, h, sizeof(x)); /* SHA-256 output is uniform: its bytes are the hash */
    return (size_t)x & mask;
}

static int bl_idx_tokens(struct bl_identity_index_s *idx, const bl_config_t *cfg,
                         bl_identity_dup_fn on_dup, void *ctx, int *dups)
{
    size_t ntok = 0, slots = 16;
    for (size_t i = 0; i < cfg->nids; i++)
        ntok += cfg->ids[i].has_token != 0;
    while (slots < 2 * ntok)
        slots *= 2;
    idx->tok = calloc(slots, sizeof(*idx->tok));
    if (idx->tok == NULL)
        return BL_ERROR;
    idx->tok_mask = slots - 1;
    for (size_t i = 0; i < cfg->nids; i++) {
        const bl_identity_t *id = &cfg->ids[i];
        if (!id->has_token)
            continue;
        size_t s = bl_tok_slot(id->token_sha256, idx->tok_mask);
        while (idx->tok[s] != 0 &&
               memcmp(cfg->ids[idx->tok[s] - 1].token_sha256, id->token_sha256,
                      BL_TOKEN_HASH_LEN) != 0)
            s = (s + 1) & idx->tok_mask;
        if (idx->tok[s] != 0) {
            (*dups)++;
            if (on_dup != NULL)
                on_dup(ctx, BL_ID_DUP_TOKEN, idx->tok[s] - 1, i);
            continue;
        }
        idx->tok[s] = (uint32_t)(i + 1);
    }
    return BL_OK;
}

void bl_identity_index_free(struct bl_identity_index_s *idx)
{
    if (idx == NULL)
        return;
    free(idx->tok);
    for (int i = 0; i < BL_IDX_N; i++)
        free(idx->sorted[i]);
    free(idx);
}

int bl_identity_index_build(bl_config_t *cfg, bl_identity_dup_fn on_dup, void *ctx)
{
    int dups = 0;
    if (cfg->nids >= UINT32_MAX)
        return BL_ERROR;
    struct bl_identity_index_s *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return BL_ERROR;
    for (int w = 0; w < BL_IDX_N; w++)
        if (bl_idx_sort(idx, cfg, w, on_dup, ctx, &dups) != BL_OK)
            goto oom;
    if (bl_idx_tokens(idx, cfg, on_dup, ctx, &dups) != BL_OK)
        goto oom;
    bl_identity_index_free(cfg->id_index);
    cfg->id_index = NULL;
    if (dups > 0) {
        bl_identity_index_free(idx);
        return BL_DECLINED;
    }
    cfg->id_index = idx;
    return BL_OK;
oom:
    bl_identity_index_free(idx);
    return BL_ERROR;
}

const bl_identity_t *bl_identity_by_token(const bl_config_t *cfg, const char *token, size_t len)
{
    unsigned char h[BL_TOKEN_HASH_LEN];
    const struct bl_identity_index_s *idx = cfg ? cfg->id_index : NULL;
    if (idx == NULL || bl_token_hash(token, len, h) != BL_OK)
        return NULL;
    /* The table is at most half full, so an empty slot ends every probe. */
    for (size_t s = bl_tok_slot(h, idx->tok_mask);; s = (s + 1) & idx->tok_mask) {
        uint32_t v = idx->tok[s];
        if (v == 0)
            return NULL;
        if (CRYPTO_memcmp(cfg->ids[v - 1].token_sha256, h, BL_TOKEN_HASH_LEN) == 0)
            return &cfg->ids[v - 1];
    }
}

const bl_identity_t *bl_identity_by_name(const bl_config_t *cfg, const char *name, size_t len)
{
    if (cfg == NULL || cfg->id_index == NULL)
        return NULL;
    return bl_idx_find(cfg->id_index, BL_IDX_NAME, name, len);
}

/* Folds candidate c into *match: 0 while consistent, -1 once two differ. */
static int bl_cert_merge(const bl_identity_t **match, const bl_identity_t *c)
{
    if (c == NULL)
        return 0;
    if (*match != NULL && *match != c)
        return -1;
    *match = c;
    return 0;
}

/* Matches the subject CN. Returns 0 or -1 (several CNs: ambiguous). */
static int bl_cert_cn(const struct bl_identity_index_s *idx, X509 *peer,
                      const bl_identity_t **match)
{
    const X509_NAME *subj = X509_get_subject_name(peer);
    int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (i < 0)
        return 0;
    if (X509_NAME_get_index_by_NID(subj, NID_commonName, i) >= 0)
        return -1;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
    int rc = 0;
    if (n > 0 && memchr(utf8, '\0', (size_t)n) == NULL)
        rc = bl_cert_merge(match, bl_idx_find(idx, BL_IDX_CN, (const char *)utf8, (size_t)n));
    OPENSSL_free(utf8);
    return rc;
}

/* Matches every URI subjectAltName. Returns 0 or -1 (ambiguous). */
static int bl_cert_uris(const struct bl_identity_index_s *idx, X509 *peer,
                        const bl_identity_t **match)
{
    int crit = 0, rc = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(peer, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL)
        return crit == -2 ? -1 : 0; /* -2: several SAN extensions */
    for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (gn->type != GEN_URI)
            continue;
        const char *s = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        int n = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        if (n > 0 && memchr(s, '\0', (size_t)n) == NULL)
            rc = bl_cert_merge(match, bl_idx_find(idx, BL_IDX_URI, s, (size_t)n));
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

const bl_identity_t *bl_identity_by_cert(const bl_config_t *cfg, X509 *peer)
{
    const bl_identity_t *match = NULL;
    if (cfg == NULL || cfg->id_index == NULL || peer == NULL)
        return NULL;
    if (bl_cert_cn(cfg->id_index, peer, &match) < 0 ||
        bl_cert_uris(cfg->id_index, peer, &match) < 0)
        return NULL;
    return match;
}

/* ---- workload identity (JWT) ---- */

static void bl_jwt_why(char *why, size_t cap, const char *fmt, ...) BL_PRINTF(3, 4);

static void bl_jwt_why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* Copies an untrusted claim value for a message: bounded, and bytes
 * outside printable ASCII shown as '?'. Returns out. */
static const char *bl_jwt_shown(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
    return out;
}

/* Returns a new string prefix + value if it is a name byline can carry
 * (printable ASCII without spaces, at most BL_JWT_NAME_MAX bytes, not
 * "system:..."), else NULL with why. `what` names it in messages. */
static char *bl_jwt_name(const char *prefix, const char *value, const char *what, char *why,
                         size_t cap)
{
    char shown[48];
    size_t pl = prefix ? strlen(prefix) : 0, vl = strlen(value);
    for (size_t i = 0; i < vl; i++)
        if ((unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f) {
            bl_jwt_why(why, cap, "JWT %s \"%s\" has bytes other than printable ASCII", what,
                       bl_jwt_shown(value, shown, sizeof(shown)));
            return NULL;
        }
    if (vl == 0 || pl + vl > BL_JWT_NAME_MAX) {
        bl_jwt_why(why, cap, "JWT %s is empty or longer than %d bytes", what, BL_JWT_NAME_MAX);
        return NULL;
    }
    char *s = malloc(pl + vl + 1);
    if (s == NULL) {
        bl_jwt_why(why, cap, "out of memory");
        return NULL;
    }
    memcpy(s, prefix ? prefix : "", pl);
    memcpy(s + pl, value, vl + 1);
    if (!strncmp(s, "system:", 7)) {
        bl_jwt_why(why, cap, "JWT %s maps to \"%s\", and system: is reserved by Kubernetes "
                             "(configure a prefix)", what, bl_jwt_shown(s, shown, sizeof(shown)));
        free(s);
        return NULL;
    }
    return s;
}

/* Returns 1 if claim `name` is the string `want` or an array holding it. */
static int bl_jwt_claim_is(const bl_jwt_t *jwt, const char *name, const char *want)
{
    json_t *v = json_object_get(jwt->claims, name), *e;
    size_t i;
    if (json_is_string(v))
        return !strcmp(json_string_value(v), want);
    json_array_foreach(v, i, e)
        if (json_is_string(e) && !strcmp(json_string_value(e), want))
            return 1;
    return 0;
}

/* Fills id->groups from the issuer's groups claim. BL_OK or BL_ERROR. */
static int bl_jwt_groups(const bl_issuer_t *is, const bl_jwt_t *jwt, bl_identity_t *id, char *why,
                         size_t cap)
{
    json_t *g = is->groups_claim ? json_object_get(jwt->claims, is->groups_claim) : NULL, *e;
    size_t i, n = json_is_array(g) ? json_array_size(g) : g != NULL;
    if (g == NULL)
        return BL_OK; /* a token without the claim is in no group */
    if (!(json_is_string(g) || json_is_array(g)) || n > BL_CONFIG_MAX_GROUPS) {
        bl_jwt_why(why, cap, "JWT %.64s must be a string or an array of at most %d strings",
                   is->groups_claim, BL_CONFIG_MAX_GROUPS);
        return BL_ERROR;
    }
    if ((id->groups = calloc(n ? n : 1, sizeof(char *))) == NULL)
        return BL_ERROR;
    if (json_is_string(g))
        return (id->groups[id->ngroups++] = bl_jwt_name(is->groups_prefix, json_string_value(g), "group",
                                                        why, cap)) ? BL_OK : BL_ERROR;
    json_array_foreach(g, i, e) {
        if (!json_is_string(e)) {
            bl_jwt_why(why, cap, "JWT %.64s holds a value that is not a string", is->groups_claim);
            return BL_ERROR;
        }
        if ((id->groups[id->ngroups] = bl_jwt_name(is->groups_prefix, json_string_value(e), "group",
                                                   why, cap)) == NULL)
            return BL_ERROR;
        id->ngroups++;
    }
    return BL_OK;
}

/* Checks the issuer's claims and required claims, then maps the identity. */
static int bl_jwt_map(const bl_issuer_t *is, const bl_jwt_t *jwt, int64_t now, bl_identity_t **out,
                      char *why, size_t cap)
{
    bl_jwt_expect_t want = { is->issuer, is->audience, now, is->clock_skew_ms / 1000 };
    if (bl_jwt_check_claims(jwt, &want, why, cap) != BL_OK)
        return BL_ERROR;
    for (size_t i = 0; i < is->nclaims; i++)
        if (!bl_jwt_claim_is(jwt, is->claims[i].name, is->claims[i].value)) {
            bl_jwt_why(why, cap, "JWT claim %.64s does not have the value this issuer requires",
                       is->claims[i].name);
            return BL_ERROR;
        }
    const char *user = bl_jwt_claim_str(jwt, is->username_claim);
    if (user == NULL) {
        bl_jwt_why(why, cap, "JWT has no string claim %.64s to name the identity", is->username_claim);
        return BL_ERROR;
    }
    bl_identity_t *id = calloc(1, sizeof(*id));
    if (id == NULL || (id->name = bl_jwt_name(is->username_prefix, user, is->username_claim, why,
                                              cap)) == NULL ||
        bl_jwt_groups(is, jwt, id, why, cap) != BL_OK) {
        bl_identity_free(id);
        return BL_ERROR;
    }
    *out = id;
    return BL_OK;
}

/* Verifies the signature with issuer i's keys, or asks for fresh ones. */
static int bl_jwt_keys(bl_jwks_cache_t *keys, size_t i, const bl_jwt_t *jwt, bl_jwks_waiter_t *w,
                       char *why, size_t cap)
{
    char last[BL_JWT_WHY_MAX];
    bl_jwks_keys_t *set = bl_jwks_cache_keys(keys, i);
    int rc = bl_jwks_verify(set, jwt, why, cap);
    bl_jwks_keys_unref(set);
    if (rc != BL_DECLINED)
        return rc;
    if (w != NULL && bl_jwks_cache_refresh(keys, i, w) == BL_AGAIN)
        return BL_AGAIN;
    if (set == NULL) {
        bl_jwks_cache_error(keys, i, last, sizeof(last));
        bl_jwt_why(why, cap, "no keys for this JWT issuer yet%s%s", last[0] ? ": " : "", last);
    }
    return BL_ERROR;
}

int bl_identity_by_jwt(const bl_config_t *cfg, bl_jwks_cache_t *keys, const char *tok, size_t len,
                       int64_t now, bl_jwks_waiter_t *w, bl_identity_t **out, char *why, size_t cap)
{
    bl_jwt_t jwt;
    char shown[104];
    size_t i = 0;
    *out = NULL;
    int rc = bl_jwt_parse(&jwt, tok, len, why, cap);
    if (rc != BL_OK)
        goto end;
    const char *iss = bl_jwt_claim_str(&jwt, "iss");
    while (i < cfg->nissuers && (iss == NULL || strcmp(cfg->issuers[i].issuer, iss) != 0))
        i++;
    if (i == cfg->nissuers || keys == NULL) {
        bl_jwt_why(why, cap, "JWT issuer \"%s\" is not configured",
                   iss ? bl_jwt_shown(iss, shown, sizeof(shown)) : "(none)");
        rc = BL_DECLINED;
        goto end;
    }
    rc = bl_jwt_keys(keys, i, &jwt, w, why, cap);
    if (rc == BL_OK)
        rc = bl_jwt_map(&cfg->issuers[i], &jwt, now, out, why, cap);
end:
    bl_jwt_free(&jwt);
    return rc;
}

void bl_identity_free(bl_identity_t *id)
{
    if (id == NULL)
        return;
    bl_identity_clear(id);
    free(id);
}
