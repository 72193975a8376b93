/* eks.c - EKS tokens: a presigned STS GetCallerIdentity URL. See eks.h. */
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include "aws/eks.h"
#include "aws/http.h"
#include "aws/sts.h"

#define BL_EKS_QUERY "Action=GetCallerIdentity&Version=" BL_STS_VERSION

int bl_eks_cluster_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > BL_EKS_CLUSTER_MAX || name[0] == '-' || name[0] == '_')
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

int bl_eks_b64url(bl_buf_t *b, const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t k = BL_MIN(n - i, 3);
        if (k > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (k > 2)
            v |= p[i + 2];
        char q[4] = { a[(v >> 18) & 63], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63] };
        if (bl_buf_append(b, q, k + 1) < 0)
            return BL_ERROR;
    }
    return BL_OK;
}

void bl_eks_token_clear(bl_eks_token_t *t)
{
    OPENSSL_cleanse(t, sizeof(*t));
}

/* Presigns GetCallerIdentity on the endpoint `u`; the full URL goes to `url`. */
static int eks_presign(const bl_aws_creds_t *c, const bl_aws_url_t *u, const char *region,
                       const char *cluster, time_t now, bl_buf_t *url, char *err, size_t errlen)
{
    bl_sigv4_header_t h[2] = { { BL_STR("Host"), { u->authority, strlen(u->authority) } },
                               { BL_STR(BL_EKS_CLUSTER_HEADER), { cluster, strlen(cluster) } } };
    char q[BL_AWS_HTTP_MAX_URL];
    int n = snprintf(q, sizeof(q), "%s%s%s", u->query, u->query[0] ? "&" : "", BL_EKS_QUERY);
    if (n < 0 || (size_t)n >= sizeof(q))
        return BL_ERROR;
    bl_sigv4_request_t rq = { .method = "GET", .path = { u->path, strlen(u->path) },
                              .query = { q, (size_t)n }, .headers = h, .num_headers = 2 };
    bl_sigv4_params_t p = { .form = BL_SIGV4_QUERY, .region = region, .service = "sts",
                            .when = now, .expires = BL_EKS_PRESIGN_EXPIRES };
    bl_sigv4_creds_t sc = bl_aws_creds_sigv4(c);
    bl_sigv4_result_t r;
    bl_sigv4_result_init(&r);
    int rc = bl_sigv4_sign(&rq, &sc, &p, &r, err, errlen);
    if (rc == BL_OK &&
        bl_buf_printf(url, "%s://%s%s?%.*s", u->https ? "https" : "http", u->authority, u->path,
                      (int)bl_buf_size(&r.query), bl_buf_data(&r.query)) < 0)
        rc = BL_ERROR;
    bl_sigv4_result_free(&r);
    return rc;
}

int bl_eks_token_mint(const bl_aws_creds_t *c, const char *region, const char *cluster,
                      time_t now, bl_eks_token_t *t, char *err, size_t errlen)
{
    char ep[BL_AWS_HTTP_MAX_URL], e[256] = "";
    bl_aws_url_t *u = calloc(1, sizeof(*u));
    bl_buf_t url, tok;
    int rc = BL_ERROR;
    bl_buf_init(&url, 3 * BL_EKS_TOKEN_MAX);
    bl_buf_init(&tok, BL_EKS_TOKEN_MAX + 1);
    bl_eks_token_clear(t);
    if (!u || !bl_eks_cluster_name_ok(cluster)) {
        snprintf(err, errlen, "EKS token: %s", u ? "the cluster name must be 1..100 of "
                 "[A-Za-z0-9_-], starting with a letter or digit" : "out of memory");
        goto end;
    }
    if (bl_aws_sts_endpoint(region, ep, sizeof(ep), e, sizeof(e)) < 0 ||
        bl_aws_url_parse(ep, u, e, sizeof(e)) < 0 ||
        eks_presign(c, u, region, cluster, now, &url, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "EKS token: %s", e[0] ? e : "presigning failed");
        goto end;
    }
    if (bl_buf_puts(&tok, BL_EKS_TOKEN_PREFIX) < 0 ||
        bl_eks_b64url(&tok, (const unsigned char *)bl_buf_data(&url), bl_buf_size(&url)) < 0 ||
        bl_buf_size(&tok) > BL_EKS_TOKEN_MAX) {
        snprintf(err, errlen, "EKS token: longer than %d bytes (session token too long?)",
                 BL_EKS_TOKEN_MAX);
        goto end;
    }
    memcpy(t->token, bl_buf_data(&tok), bl_buf_size(&tok));
    t->token[bl_buf_size(&tok)] = '\0';
    t->signed_at = now;
    t->expires = now + BL_EKS_TOKEN_LIFE;
    t->refresh_at = now + BL_EKS_REMINT_AFTER;
    rc = BL_OK;
end:
    if (url.base)
        OPENSSL_cleanse(url.base, url.cap);
    if (tok.base)
        OPENSSL_cleanse(tok.base, tok.cap);
    bl_buf_free(&url);
    bl_buf_free(&tok);
    free(u);
    return rc;
}
