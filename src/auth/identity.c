/* identity.c - the identity index and the credential lookups. */
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>
#include "auth/identity.h"
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
