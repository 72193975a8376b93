/*
 * creds.h - AWS credentials and the SDKs' default provider chain.
 *
 * Order (the first provider that is configured answers; a provider that is
 * configured but fails stops the chain with its error, so a broken setup is
 * never papered over by a weaker identity further down):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. shared credentials file: AWS_SHARED_CREDENTIALS_FILE or
 *      ~/.aws/credentials, profile AWS_PROFILE (else "default");
 *   3. web identity (IRSA): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE via
 *      sts:AssumeRoleWithWebIdentity (unsigned), session AWS_ROLE_SESSION_NAME;
 *   4. container credentials (EKS Pod Identity, ECS):
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI (http only to loopback or the
 *      EKS/ECS link-local hosts) or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *      (on http://169.254.170.2), Authorization from
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read each time) or
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN;
 *   5. EC2 instance metadata, IMDSv2 only (a PUT for a session token first),
 *      at AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254;
 *      skipped when AWS_EC2_METADATA_DISABLED=true.
 *
 * Secrets: the key material lives in fixed arrays inside bl_aws_creds_t so
 * that bl_aws_creds_clear() can cleanse all of it; error messages name the
 * source and variable, never a value. Blocking (HTTP): call off the loop.
 */
#ifndef BL_AWS_CREDS_H
#define BL_AWS_CREDS_H

#include <time.h>
#include "aws/sigv4.h"
#include "core/common.h"

#define BL_AWS_KEY_MAX   256
#define BL_AWS_TOKEN_MAX 8192
#define BL_AWS_ARN_MAX   2048

typedef struct {
    char access_key_id[BL_AWS_KEY_MAX];
    char secret_access_key[BL_AWS_KEY_MAX];
    char session_token[BL_AWS_TOKEN_MAX];   /* "" when none */
    time_t expiration;                      /* 0: does not expire */
    char source[64];                        /* "environment", "shared file profile x", ... */
    char arn[BL_AWS_ARN_MAX];               /* assumed-role ARN when known, else "" */
} bl_aws_creds_t;

/* Cleanses the whole structure (secrets included). */
void bl_aws_creds_clear(bl_aws_creds_t *c);

/* Returns the borrowed SigV4 view of `c` (valid while `c` is). */
bl_sigv4_creds_t bl_aws_creds_sigv4(const bl_aws_creds_t *c);

/* Returns 1 when `c` expires within `margin` seconds of `now` (or already
 * has), 0 when it is fresh or never expires. Callers refresh on 1. */
int bl_aws_creds_expiring(const bl_aws_creds_t *c, time_t now, int margin);

/* Parses an ISO 8601 UTC time "YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)".
 * Returns BL_OK with *t, or BL_ERROR. */
int bl_aws_parse_time(const char *s, size_t n, time_t *t);

/* The providers. Each returns BL_OK with *c filled, BL_DECLINED when it is
 * not configured (the chain goes on), or BL_ERROR with err (it is
 * configured but failed). `region` is used by web identity (STS). */
int bl_aws_creds_from_env(bl_aws_creds_t *c, char *err, size_t errlen);
int bl_aws_creds_from_shared_file(bl_aws_creds_t *c, char *err, size_t errlen);
int bl_aws_creds_from_web_identity(const char *region, bl_aws_creds_t *c, char *err,
                                   size_t errlen);
int bl_aws_creds_from_container(bl_aws_creds_t *c, char *err, size_t errlen);
int bl_aws_creds_from_imds(bl_aws_creds_t *c, char *err, size_t errlen);

/* Walks the chain above. Returns BL_OK with *c (c->source says which), or
 * BL_ERROR with err (a provider failed, or none is configured). */
int bl_aws_creds_default(const char *region, bl_aws_creds_t *c, char *err, size_t errlen);

/* Parses the JSON credentials document of the container endpoint and IMDS
 * ({"AccessKeyId","SecretAccessKey","Token","Expiration"}; IMDS adds
 * "Code":"Success"). Returns BL_OK or BL_ERROR with err (no values in it). */
int bl_aws_creds_parse_json(const char *json, size_t len, bl_aws_creds_t *c, char *err,
                            size_t errlen);

#endif
