/*
 * token.h - byline bearer tokens: generation and hashing.
 *
 * A token is "byl_" followed by 43 base64url characters encoding 32 bytes
 * from the OpenSSL CSPRNG (256 bits of entropy), 47 characters in all. The
 * prefix lets secret scanners recognise a leaked byline token. byline keeps
 * only the SHA-256 of a token; a preimage search over 2^256 is hopeless,
 * so no salt or slow hash is needed (unlike for passwords).
 */
#ifndef BL_AUTH_TOKEN_H
#define BL_AUTH_TOKEN_H

#include "core/common.h"

#define BL_TOKEN_PREFIX   "byl_"
#define BL_TOKEN_LEN      47   /* strlen("byl_") + 43 */
#define BL_TOKEN_HASH_LEN 32   /* SHA-256 */
#define BL_TOKEN_MAX      4096 /* longer presented tokens are refused unhashed */

/* Fills out[0..BL_TOKEN_LEN] with a new NUL-terminated token. Returns BL_OK,
 * or BL_ERROR if the random generator failed (out is then zeroed). */
int bl_token_generate(char out[BL_TOKEN_LEN + 1]);

/*
 * Computes the SHA-256 of token[0..len) into out. Thread-safe and cheap:
 * the digest is fetched once per process and each thread reuses one
 * digest context (about 130 ns for a byline token).
 * Returns BL_OK, or BL_ERROR when len exceeds BL_TOKEN_MAX or OpenSSL fails.
 */
int bl_token_hash(const char *token, size_t len, unsigned char out[BL_TOKEN_HASH_LEN]);

/* Writes the hash as 64 lower-case hex digits and a NUL into out. */
void bl_token_hash_hex(const unsigned char h[BL_TOKEN_HASH_LEN], char out[2 * BL_TOKEN_HASH_LEN + 1]);

/* Parses exactly 64 hex digits (either case) from s[0..len) into out.
 * Returns BL_OK or BL_ERROR. */
int bl_token_hash_unhex(const char *s, size_t len, unsigned char out[BL_TOKEN_HASH_LEN]);

#endif
