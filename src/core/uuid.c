/* uuid.c - UUIDv7: 48-bit Unix milliseconds, version, 74 random bits. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdint.h>
#include "core/common.h"
#include "core/uuid.h"

/* Random bytes are drawn from OpenSSL's DRBG a pool at a time: one call
 * per 400 ids instead of one (and its fork-safety getpid) per id. */
#define BL_UUID_POOL 4000

static int bl_uuid_random(unsigned char *dst, size_t n)
{
    static _Thread_local unsigned char pool[BL_UUID_POOL];
    static _Thread_local size_t left;
    if (left < n) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            return BL_ERROR;
        left = sizeof(pool);
    }
    memcpy(dst, pool + sizeof(pool) - left, n);
    OPENSSL_cleanse(pool + sizeof(pool) - left, n);
    left -= n;
    return BL_OK;
}

int bl_uuid7(char out[BL_UUID_LEN + 1], const struct timespec *now)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t ms = (uint64_t)now->tv_sec * 1000u + (uint64_t)now->tv_nsec / 1000000u;
    if (bl_uuid_random(b + 6, 10) != BL_OK)
        return BL_ERROR;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return BL_OK;
}
