/*
 * merkle.c - RFC 6962 / RFC 9162 Merkle tree hashing (docs/AUDIT-FORMAT.md
 * section 3).
 *
 * Hashing runs once per ledger entry on the writer's path, so the SHA-256
 * implementation is fetched once (pthread_once) and every thread keeps one
 * EVP_MD_CTX for its life (a pthread key frees it when the thread ends)
 * instead of allocating a context per hash as EVP_Digest would.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "audit/merkle.h"

static pthread_once_t bl_merkle_once = PTHREAD_ONCE_INIT;
static EVP_MD *bl_merkle_md;       /* fetched once, kept for the process's life */
static pthread_key_t bl_merkle_key; /* this thread's EVP_MD_CTX */
static int bl_merkle_key_ok;

static void bl_merkle_ctx_free(void *p)
{
    EVP_MD_CTX_free(p);
}

static void bl_merkle_setup(void)
{
    bl_merkle_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    bl_merkle_key_ok = pthread_key_create(&bl_merkle_key, bl_merkle_ctx_free) == 0;
}

/* A hash we cannot compute must never become a wrong hash in a
 * tamper-evident ledger: without SHA-256 (a broken OpenSSL installation or
 * no memory for one context) the process stops. */
static _Noreturn void bl_merkle_fatal(const char *what)
{
    fprintf(stderr, "byline: SHA-256 unavailable (%s); stopping rather than write a wrong hash\n", what);
    abort();
}

/* Returns this thread's digest context, ready for a new SHA-256. */
static EVP_MD_CTX *bl_merkle_ctx(void)
{
    pthread_once(&bl_merkle_once, bl_merkle_setup);
    if (bl_merkle_md == NULL || !bl_merkle_key_ok)
        bl_merkle_fatal("EVP_MD_fetch");
    EVP_MD_CTX *c = pthread_getspecific(bl_merkle_key);
    if (c == NULL) {
        c = EVP_MD_CTX_new();
        if (c == NULL || pthread_setspecific(bl_merkle_key, c) != 0)
            bl_merkle_fatal("EVP_MD_CTX_new");
    }
    if (!EVP_DigestInit_ex2(c, bl_merkle_md, NULL))
        bl_merkle_fatal("EVP_DigestInit_ex2");
    return c;
}

/* out = SHA-256(prefix || a[0..an) || b[0..bn)); prefix < 0 means none. */
static void bl_merkle_sha256(int prefix, const void *a, size_t an, const void *b, size_t bn, bl_hash_t *out)
{
    EVP_MD_CTX *c = bl_merkle_ctx();
    unsigned char p = (unsigned char)prefix;
    unsigned len = 0;
    bl_hash_t h;
    if ((prefix >= 0 && !EVP_DigestUpdate(c, &p, 1)) || (an && !EVP_DigestUpdate(c, a, an)) ||
        (bn && !EVP_DigestUpdate(c, b, bn)) || !EVP_DigestFinal_ex(c, h.h, &len) || len != sizeof(h.h))
        bl_merkle_fatal("EVP_Digest");
    *out = h; /* through a temporary: out may alias the inputs */
}

void bl_merkle_leaf(const void *line, size_t n, bl_hash_t *out)
{
    bl_merkle_sha256(0x00, line, n, NULL, 0, out);
}

void bl_merkle_node(const bl_hash_t *left, const bl_hash_t *right, bl_hash_t *out)
{
    bl_merkle_sha256(0x01, left->h, sizeof(left->h), right->h, sizeof(right->h), out);
}

void bl_merkle_init(bl_merkle_range_t *r)
{
    r->size = 0;
    r->n = 0;
}

/* The subtrees are the set bits of size, largest first: appending a leaf
 * merges one subtree per trailing 1 bit of the old size, as binary +1 carries. */
void bl_merkle_append(bl_merkle_range_t *r, const bl_hash_t *leaf)
{
    if (r->size == UINT64_MAX)
        return; /* 2^64 - 1 leaves: unreachable at any real rate */
    bl_hash_t h = *leaf;
    for (uint64_t s = r->size; s & 1; s >>= 1)
        bl_merkle_node(&r->sub[--r->n], &h, &h);
    r->sub[r->n++] = h;
    r->size++;
}

void bl_merkle_root(const bl_merkle_range_t *r, bl_hash_t *out)
{
    if (r->n == 0) {
        bl_merkle_sha256(-1, NULL, 0, NULL, 0, out);
        return;
    }
    bl_hash_t h = r->sub[r->n - 1];
    for (unsigned i = r->n - 1; i-- > 0;)
        bl_merkle_node(&r->sub[i], &h, &h);
    *out = h;
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t bl_merkle_split(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* MTH(leaves[0..n)) through a compact range: O(n) time, O(log n) memory. */
static void bl_merkle_mth(const bl_hash_t *leaves, uint64_t n, bl_hash_t *out)
{
    bl_merkle_range_t r;
    bl_merkle_init(&r);
    for (uint64_t i = 0; i < n; i++)
        bl_merkle_append(&r, &leaves[i]);
    bl_merkle_root(&r, out);
}

/* RFC 9162 2.1.3.1 PATH(m, D[n]), deepest sibling first. */
static int bl_merkle_path(const bl_hash_t *leaves, uint64_t n, uint64_t m, bl_hash_t *path, size_t cap,
                          size_t *len)
{
    if (n <= 1)
        return BL_OK;
    uint64_t k = bl_merkle_split(n);
    int rc = m < k ? bl_merkle_path(leaves, k, m, path, cap, len)
                   : bl_merkle_path(leaves + k, n - k, m - k, path, cap, len);
    if (rc != BL_OK || *len >= cap)
        return BL_ERROR;
    if (m < k)
        bl_merkle_mth(leaves + k, n - k, &path[*len]);
    else
        bl_merkle_mth(leaves, k, &path[*len]);
    (*len)++;
    return BL_OK;
}

int bl_merkle_prove(const bl_hash_t *leaves, uint64_t size, uint64_t index, bl_hash_t *path, size_t *len)
{
    size_t cap = *len;
    *len = 0;
    if (index >= size)
        return BL_ERROR;
    if (bl_merkle_path(leaves, size, index, path, cap, len) != BL_OK) {
        *len = 0;
        return BL_ERROR;
    }
    return BL_OK;
}

/* RFC 9162 2.1.3.2, step by step. */
int bl_merkle_verify_inclusion(const bl_hash_t *leaf, uint64_t index, uint64_t size, const bl_hash_t *path,
                               size_t len, const bl_hash_t *root)
{
    if (index >= size)
        return BL_ERROR;
    uint64_t fn = index, sn = size - 1;
    bl_hash_t r = *leaf;
    for (size_t i = 0; i < len; i++) {
        if (sn == 0)
            return BL_ERROR;
        if ((fn & 1) || fn == sn) {
            bl_merkle_node(&path[i], &r, &r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            bl_merkle_node(&r, &path[i], &r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || CRYPTO_memcmp(r.h, root->h, sizeof(r.h)) != 0)
        return BL_ERROR;
    return BL_OK;
}
