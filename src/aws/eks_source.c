/* eks_source.c - renewing EKS tokens and the credentials behind them. */
#include <stdio.h>
#include <openssl/crypto.h>
#include "aws/eks_source.h"
#include "aws/http.h"
#include "aws/sts.h"

/* Credentials must outlive the token minted from them by this much. */
#define BL_EKS_CREDS_MARGIN (BL_EKS_TOKEN_LIFE + 60)

/* Writes msg into err. Returns BL_ERROR. */
static int es_fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return BL_ERROR;
}

int bl_eks_source_init(bl_eks_source_t *s, const char *region, const char *cluster,
                       const char *role_arn, const char *session_name, int role_duration,
                       char *err, size_t errlen)
{
    char ep[BL_AWS_HTTP_MAX_URL];
    memset(s, 0, sizeof(*s));
    if (!role_arn)
        role_arn = "";
    if (!session_name || !*session_name)
        session_name = "byline";
    if (!bl_eks_cluster_name_ok(cluster))
        return es_fail(err, errlen, "the EKS cluster name must be 1..100 of [A-Za-z0-9_-], "
                       "starting with a letter or digit");
    if (!region || strlen(region) >= sizeof(s->region) ||
        bl_aws_sts_endpoint(region, ep, sizeof(ep), err, errlen) < 0)
        return es_fail(err, errlen, "a valid AWS region is required (e.g. us-east-1)");
    if (*role_arn && (strncmp(role_arn, "arn:", 4) != 0 || strlen(role_arn) >= sizeof(s->role_arn)))
        return es_fail(err, errlen, "the role ARN must look like arn:aws:iam::ACCOUNT:role/NAME");
    if (!bl_aws_sts_session_name_ok(session_name))
        return es_fail(err, errlen, "the role session name must be 2..64 of [A-Za-z0-9_+=,.@-]");
    snprintf(s->region, sizeof(s->region), "%s", region);
    snprintf(s->cluster, sizeof(s->cluster), "%s", cluster);
    snprintf(s->role_arn, sizeof(s->role_arn), "%s", role_arn);
    snprintf(s->session_name, sizeof(s->session_name), "%s", session_name);
    s->role_duration = role_duration;
    pthread_mutex_init(&s->lock, NULL);
    return BL_OK;
}

/* Renews base and role credentials when due. Called with the lock held. */
static int renew_creds(bl_eks_source_t *s, time_t now, char *err, size_t errlen)
{
    if (!s->have_base || bl_aws_creds_expiring(&s->base, now, BL_EKS_CREDS_MARGIN)) {
        s->have_base = 0;
        s->have_role = 0;
        if (bl_aws_creds_default(s->region, &s->base, err, errlen) < 0)
            return BL_ERROR;
        s->have_base = 1;
    }
    if (!s->role_arn[0])
        return BL_OK;
    if (!s->have_role || bl_aws_creds_expiring(&s->role, now, BL_EKS_CREDS_MARGIN)) {
        s->have_role = 0;
        if (bl_aws_sts_assume_role(&s->base, s->region, s->role_arn, s->session_name,
                                   s->role_duration, &s->role, err, errlen) < 0)
            return BL_ERROR;
        s->have_role = 1;
    }
    return BL_OK;
}

int bl_eks_source_token(bl_eks_source_t *s, time_t now, bl_eks_token_t *out, char *err,
                        size_t errlen)
{
    int rc = BL_OK;
    pthread_mutex_lock(&s->lock);
    time_t due = s->remint_after > 0 ? s->tok.signed_at + s->remint_after : s->tok.refresh_at;
    if (s->tok.token[0] && now < due && now >= s->tok.signed_at)
        goto copy;
    bl_eks_token_clear(&s->tok);
    if ((rc = renew_creds(s, now, err, errlen)) < 0)
        goto end;
    rc = bl_eks_token_mint(s->role_arn[0] ? &s->role : &s->base, s->region, s->cluster, now,
                           &s->tok, err, errlen);
    if (rc < 0)
        goto end;
copy:
    memcpy(out, &s->tok, sizeof(*out));
end:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const char *bl_eks_source_identity(bl_eks_source_t *s)
{
    if (s->have_role && s->role.arn[0])
        return s->role.arn;
    return s->have_base ? s->base.source : "none";
}

void bl_eks_source_free(bl_eks_source_t *s)
{
    pthread_mutex_destroy(&s->lock);
    OPENSSL_cleanse(s, sizeof(*s));
}
