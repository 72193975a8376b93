/*
 * cred.h - where the agent's credential for one API server comes from.
 *
 * A credential source appends the header line(s) that authenticate a
 * request to the API server ("Authorization: Bearer ...\r\n"), current at
 * the time of the call: a token file is re-read when it changes (projected
 * ServiceAccount tokens rotate), and a minted token (the EKS source, added
 * with the AWS work in src/aws/) is renewed before it expires. A client
 * certificate authenticates in the TLS handshake instead; its source
 * appends nothing. Sources are used from the agent's loop thread only, and
 * never block it: the EKS source mints and renews on a thread of its own
 * (cred_eks.c) and answers BL_AGAIN while a token is not ready yet.
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
    /* Optional: as header, for the byline identity the gateway named
     * (empty: none). May also return BL_AGAIN: not ready, nothing appended;
     * the caller asks again shortly (never blocks the loop). */
    int (*header_as)(bl_cred_t *c, bl_str_t identity, bl_buf_t *out, bl_buf_t *err);
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
/* header_as when the source has it, else header. Returns as header_as. */
static inline int bl_cred_header_as(bl_cred_t *c, bl_str_t identity, bl_buf_t *out, bl_buf_t *err)
{
    return c->ops->header_as ? c->ops->header_as(c, identity, out, err) : c->ops->header(c, out, err);
}
static inline void bl_cred_free(bl_cred_t *c) { if (c) c->ops->free(c); }

#define BL_CRED_TOKEN_MAX 16384

/* kubernetes-eks (cred_eks.c): EKS tokens for `cluster` in `region`, from
 * the AWS SDKs' default credential chain and, with role_arn, an assumed
 * role (session session_name, default "byline"). per_identity: one
 * AssumeRole session per byline identity, "byline-<identity>", at most
 * BL_EK_MAX_IDENTITIES cached (LRU). remint_after: seconds between mints
 * (0: BL_EKS_REMINT_AFTER, 10 min; tests shorten it). */
#define BL_EK_MAX_IDENTITIES 1024
typedef struct {
    const char *region, *cluster, *role_arn, *session_name;
    int per_identity;
    unsigned remint_after;
} bl_cred_eks_opts_t;

/* Starts the source and its refresher thread (which mints at once; no
 * network call here). Returns the source, or NULL with the reason in err
 * (bad region/cluster/ARN/session name, per_identity without role_arn). */
bl_cred_t *bl_cred_eks(const bl_cred_eks_opts_t *o, bl_buf_t *err);

/* Writes the RoleSessionName for a byline identity into out[80]:
 * "byline-<identity>" in STS's alphabet, at most 64 bytes. Returns out. */
const char *bl_cred_eks_session_name(const char *identity, char out[80]);

#endif
