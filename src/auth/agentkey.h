/*
 * agentkey.h - the registry of byline agent keys (DIR/agent-keys.yaml).
 *
 * An agent key authenticates a `byline agent` process to the gateway. It
 * looks like an identity token ("bya_" and 43 base64url characters, 256
 * random bits) and, like one, only its SHA-256 is stored. Each key names
 * the connections its agent may serve; an agent announcing any other is
 * refused. Written by `byline agent-key add`, read by `byline serve`.
 */
#ifndef BL_AUTH_AGENTKEY_H
#define BL_AUTH_AGENTKEY_H

#include "auth/token.h"
#include "core/buf.h"

#define BL_AGENTKEY_PREFIX   "bya_"
#define BL_AGENTKEYS_MAX     10000         /* entries in the file */
#define BL_AGENTKEY_CONNS    64            /* connections per key */
#define BL_AGENTKEYS_MAX_BYTES (4 * 1024 * 1024)

typedef struct {
    char *name;                       /* e.g. "eks-vpc-1" */
    char **conns;                     /* owned array of owned names */
    size_t nconns;
    unsigned char sha256[BL_TOKEN_HASH_LEN];
    char *created;                    /* RFC 3339, or NULL */
} bl_agentkey_t;

typedef struct {
    bl_agentkey_t *keys;              /* owned */
    size_t n;
} bl_agentkeys_t;

/* Loads `path` into *out (zeroed first). A missing file is an empty
 * registry. Returns BL_OK, or BL_ERROR with "file:line:col: ..." lines in
 * `err`. Free with bl_agentkeys_free(). */
int bl_agentkeys_load(const char *path, bl_agentkeys_t *out, bl_buf_t *err);

/* Replaces `path` atomically (mode 0600). Returns BL_OK or BL_ERROR. */
int bl_agentkeys_write(const char *path, const bl_agentkeys_t *k, bl_buf_t *err);

/* Returns the entry whose hash matches key[0..len), comparing every entry
 * in constant time, or NULL. */
const bl_agentkey_t *bl_agentkeys_find(const bl_agentkeys_t *k, const char *key, size_t len);

/* Returns 1 if entry `k` may serve connection name[0..len), else 0. */
int bl_agentkey_serves(const bl_agentkey_t *k, const char *name, size_t len);

/* Fills out[] with a new NUL-terminated key. Returns BL_OK or BL_ERROR. */
int bl_agentkey_generate(char out[BL_TOKEN_LEN + 1]);

void bl_agentkeys_free(bl_agentkeys_t *k);

#endif
