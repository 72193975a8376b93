/*
 * cred.h - where the agent's credential for one API server comes from.
 *
 * A credential source appends the header line(s) that authenticate a
 * request to the API server ("Authorization: Bearer ...\r\n"), current at
 * the time of the call: a token file is re-read when it changes (projected
 * ServiceAccount tokens rotate), and a minted token (the EKS source, added
 * with the AWS work in src/aws/) is renewed before it expires. A client
 * certificate authenticates in the TLS handshake instead; its source
 * appends nothing. Sources are used from the agent's loop thread only.
 */
#ifndef BL_AGENT_CRED_H
#define BL_AGENT_CRED_H

#include "core/buf.h"

typedef struct bl_cred_s bl_cred_t;

typedef struct {
    const char *kind;           /* "token", "token_file", "client_cert", ... for logs */
    /* Appends the credential's header lines to `out`. Returns BL_OK, or
     * BL_ERROR with a reason (never the secret) appended to `err`. */
    int (*header)(bl_cred_t *c, bl_buf_t *out, bl_buf_t *err);
    /* Wipes and frees the source. */
    void (*free)(bl_cred_t *c);
} bl_cred_ops_t;

struct bl_cred_s {
    const bl_cred_ops_t *ops;
};

/* A fixed bearer token (copied). Returns the source or NULL (err). */
bl_cred_t *bl_cred_token(const char *token, bl_buf_t *err);

/* A bearer token read from `path`, re-read when its mtime or size changes
 * (checked at most every 5 s; a failed re-read keeps the previous token).
 * Returns the source or NULL with the reason in err (the file must hold a
 * token now). */
bl_cred_t *bl_cred_token_file(const char *path, bl_buf_t *err);

/* No header (a client certificate does the work). Never NULL but on OOM. */
bl_cred_t *bl_cred_none(const char *kind);

static inline int bl_cred_header(bl_cred_t *c, bl_buf_t *out, bl_buf_t *err) { return c->ops->header(c, out, err); }
static inline void bl_cred_free(bl_cred_t *c) { if (c) c->ops->free(c); }

#define BL_CRED_TOKEN_MAX 16384

#endif
