/*
 * eks_source.h - a source of fresh EKS tokens for one cluster and one AWS
 * identity: base credentials from the default chain, optionally a role
 * assumed with sts:AssumeRole, and the token minted from them, each renewed
 * before it runs out.
 *
 * Renewal: a token is minted anew BL_EKS_REMINT_AFTER (10 min) after it was
 * signed, well inside its 15-minute window, so a request started with it is
 * never refused; credentials (base and role) are renewed when they would
 * expire within the token's window plus a minute, because the cluster's
 * authenticator has STS check the token's signature, which needs the signing
 * credentials to be still valid then.
 *
 * Per-identity sessions: a caller that wants CloudTrail and the
 * authenticator's {{SessionName}} to name each byline identity keeps one
 * source per identity with session_name "byline-<identity>", at the cost of
 * one AssumeRole per identity per credential lifetime (an hour by default).
 *
 * Thread-safe (a mutex); bl_eks_source_token() blocks on network I/O while
 * it renews, so call it from a credential thread, never an event loop.
 */
#ifndef BL_AWS_EKS_SOURCE_H
#define BL_AWS_EKS_SOURCE_H

#include <pthread.h>
#include "aws/eks.h"

typedef struct {
    char region[64];
    char cluster[BL_EKS_CLUSTER_MAX + 1];
    char role_arn[BL_AWS_ARN_MAX];      /* "" for none */
    char session_name[80];
    int role_duration;                  /* AssumeRole DurationSeconds; 0: 3600 */
    int remint_after;                   /* seconds; 0: BL_EKS_REMINT_AFTER (tests shorten it) */
    pthread_mutex_t lock;
    bl_aws_creds_t base, role;
    int have_base, have_role;
    bl_eks_token_t tok;
} bl_eks_source_t;

/*
 * Prepares a source (no I/O). role_arn and session_name may be NULL or "";
 * the session name defaults to "byline". Returns BL_OK, or BL_ERROR with err
 * (bad cluster name, region, role ARN or session name). Free with
 * bl_eks_source_free().
 */
int bl_eks_source_init(bl_eks_source_t *s, const char *region, const char *cluster,
                       const char *role_arn, const char *session_name, int role_duration,
                       char *err, size_t errlen);

/* Copies a token valid for at least 5 more minutes into *out, renewing what
 * is due first. Returns BL_OK, or BL_ERROR with err (no credentials, STS
 * refused, ...). The caller clears *out. */
int bl_eks_source_token(bl_eks_source_t *s, time_t now, bl_eks_token_t *out, char *err,
                        size_t errlen);

/* Returns a description of the identity in use ("environment", or the
 * assumed-role ARN), for messages; valid until the next call. */
const char *bl_eks_source_identity(bl_eks_source_t *s);

/* Cleanses and releases everything. */
void bl_eks_source_free(bl_eks_source_t *s);

#endif
