/*
 * eks.h - EKS authentication tokens, as aws-iam-authenticator and
 * `aws eks get-token` make them.
 *
 * A token is "k8s-aws-v1." followed by the base64url encoding, without
 * padding, of a presigned STS GetCallerIdentity URL:
 *   GET https://sts.REGION.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15
 *       &X-Amz-Algorithm=..&X-Amz-Credential=..&X-Amz-Date=..&X-Amz-Expires=60
 *       &X-Amz-SignedHeaders=host%3Bx-k8s-aws-id[&X-Amz-Security-Token=..]&X-Amz-Signature=..
 * signed (SigV4, service sts) over the headers host and x-k8s-aws-id = the
 * cluster name. X-Amz-Expires=60 is what the reference clients send and STS
 * ignores it: the authenticator accepts the URL for 15 minutes after
 * X-Amz-Date. The endpoint honours AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL
 * (sts.h). A token is a bearer credential: never log it.
 */
#ifndef BL_AWS_EKS_H
#define BL_AWS_EKS_H

#include <time.h>
#include "aws/creds.h"

#define BL_EKS_TOKEN_PREFIX   "k8s-aws-v1."
#define BL_EKS_CLUSTER_HEADER "x-k8s-aws-id"
#define BL_EKS_PRESIGN_EXPIRES 60     /* X-Amz-Expires as the reference clients send it */
#define BL_EKS_TOKEN_LIFE     900     /* the authenticator's window after X-Amz-Date */
#define BL_EKS_EXEC_LIFE      840     /* ExecCredential expiry: 14 minutes, as aws eks get-token */
#define BL_EKS_REMINT_AFTER   600     /* long-lived callers re-mint after 10 minutes */
#define BL_EKS_TOKEN_MAX      4096    /* aws-iam-authenticator refuses longer tokens */
#define BL_EKS_CLUSTER_MAX    100     /* EKS cluster names are at most 100 characters */

typedef struct {
    char token[BL_EKS_TOKEN_MAX + 1];
    time_t signed_at;      /* X-Amz-Date */
    time_t expires;        /* signed_at + BL_EKS_TOKEN_LIFE: refused after this */
    time_t refresh_at;     /* signed_at + BL_EKS_REMINT_AFTER: mint anew from here on */
} bl_eks_token_t;

/* Returns 1 if `name` is a valid EKS cluster name (1..100 of [A-Za-z0-9_-],
 * starting with a letter or digit), else 0. */
int bl_eks_cluster_name_ok(const char *name);

/*
 * Mints a token for `cluster` with credentials `c`, signed at `now`.
 * Returns BL_OK with *t, or BL_ERROR with err (bad cluster name or region,
 * signing failed, token over 4096 bytes). The caller clears *t with
 * bl_eks_token_clear() when done.
 */
int bl_eks_token_mint(const bl_aws_creds_t *c, const char *region, const char *cluster,
                      time_t now, bl_eks_token_t *t, char *err, size_t errlen);

/* Cleanses a token. */
void bl_eks_token_clear(bl_eks_token_t *t);

/* Appends base64url of p[0..n) without padding to b. Returns BL_OK or BL_ERROR. */
int bl_eks_b64url(bl_buf_t *b, const unsigned char *p, size_t n);

#endif
