/*
 * sts.h - AWS STS: AssumeRole (SigV4-signed POST) and
 * AssumeRoleWithWebIdentity (unsigned POST), their XML responses parsed with
 * expat, and the endpoint the SDKs would use.
 *
 * Endpoint: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL (the SDKs'
 * service-specific endpoint variables; both ignored when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else the regional
 * https://sts.REGION.amazonaws.com (.amazonaws.com.cn in cn-*).
 * Blocking (HTTP): call off the event loop.
 */
#ifndef BL_AWS_STS_H
#define BL_AWS_STS_H

#include "aws/creds.h"

#define BL_STS_VERSION "2011-06-15"
#define BL_STS_DEFAULT_DURATION 3600

/* Writes the STS endpoint URL for `region` into out[cap]. Returns BL_OK or
 * BL_ERROR (region empty or malformed, too long). */
int bl_aws_sts_endpoint(const char *region, char *out, size_t cap, char *err, size_t errlen);

/* Returns 1 if `s` is a plausible RoleSessionName (2..64 of [\w+=,.@-]), else 0. */
int bl_aws_sts_session_name_ok(const char *s);

/*
 * sts:AssumeRole with `base` (signed). duration_s 0 means 3600. Returns
 * BL_OK with *out (source "assume-role", arn = the assumed-role ARN,
 * expiration from the response), or BL_ERROR with err: transport errors,
 * or STS's ErrorResponse as "STS AssumeRole failed: Code: Message (HTTP n)".
 */
int bl_aws_sts_assume_role(const bl_aws_creds_t *base, const char *region, const char *role_arn,
                           const char *session_name, int duration_s, bl_aws_creds_t *out,
                           char *err, size_t errlen);

/* sts:AssumeRoleWithWebIdentity (unsigned): the web identity token is sent
 * in the form body only. Returns as bl_aws_sts_assume_role. */
int bl_aws_sts_assume_role_web_identity(const char *region, const char *role_arn,
                                        const char *session_name, const char *web_token,
                                        int duration_s, bl_aws_creds_t *out, char *err,
                                        size_t errlen);

/*
 * Parses an STS XML response to `action` ("AssumeRole",
 * "AssumeRoleWithWebIdentity"). Returns BL_OK with the credentials and the
 * AssumedRoleUser ARN in *out; BL_DECLINED for an ErrorResponse, with
 * "Code: Message" in err; BL_ERROR for anything else (not XML, a DOCTYPE,
 * another root, missing fields, too long values).
 */
int bl_aws_sts_parse(const char *xml, size_t len, const char *action, bl_aws_creds_t *out,
                     char *err, size_t errlen);

#endif
