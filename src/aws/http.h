/*
 * http.h - a small blocking HTTP/1.1 client for AWS calls (STS, the
 * container credentials endpoint, EC2 instance metadata).
 *
 * Blocking by design: it runs off the event loop, in the CLI (`byline
 * eks-token`) or in a credential thread of the agent, never on a loop
 * thread. Each call opens one connection (Connection: close), so there is
 * no shared state and calls are safe from several threads.
 *
 *   - https:// uses TLS 1.2+ and verifies the peer against the system CAs,
 *     or the PEM file in AWS_CA_BUNDLE (as the SDKs do), and the host name
 *     (or IP address) of the URL; http:// is plain (IMDS, container
 *     endpoints, test stand-ins);
 *   - timeouts: connect, and every read and write, each bounded by
 *     timeout_ms (a stalled peer cannot hold the caller longer than a few
 *     timeouts);
 *   - responses: the head is parsed by the strict HTTP/1.1 parser; the body
 *     is framed by Content-Length, chunked, or the connection's close, and
 *     bounded by max_body;
 *   - no proxies (HTTPS_PROXY is not read), no redirects, no keep-alive.
 * Errors never hold request or response bodies or header values, which may
 * carry secrets; only the host, status and a reason.
 */
#ifndef BL_AWS_HTTP_H
#define BL_AWS_HTTP_H

#include "core/buf.h"
#include "core/common.h"

#define BL_AWS_HTTP_MAX_URL     8192
#define BL_AWS_HTTP_DEF_TIMEOUT 5000          /* ms */
#define BL_AWS_HTTP_DEF_MAX     (1024 * 1024) /* bytes of body */

typedef struct {
    int https;
    char host[256];       /* no brackets around an IPv6 literal */
    char port[8];
    char authority[300];  /* the Host header: as in the URL, default port left out */
    char path[BL_AWS_HTTP_MAX_URL];   /* "/" when the URL has none; as given */
    char query[BL_AWS_HTTP_MAX_URL];  /* without '?'; may be empty */
} bl_aws_url_t;

typedef struct {
    const char *name;
    const char *value;
} bl_aws_http_header_t;

typedef struct {
    const char *method;                   /* "GET", "PUT", "POST" */
    const bl_aws_url_t *url;
    const bl_aws_http_header_t *headers;  /* besides Host, Content-Length, Connection */
    size_t num_headers;
    const void *body;
    size_t body_len;
    int timeout_ms;                       /* 0: BL_AWS_HTTP_DEF_TIMEOUT */
    size_t max_body;                      /* 0: BL_AWS_HTTP_DEF_MAX */
} bl_aws_http_req_t;

typedef struct {
    int status;
    bl_buf_t body;        /* owned; cleansed by bl_aws_http_resp_free */
} bl_aws_http_resp_t;

/* Parses an absolute http:// or https:// URL (no userinfo, no fragment).
 * Returns BL_OK, or BL_ERROR with a message in err. */
int bl_aws_url_parse(const char *url, bl_aws_url_t *u, char *err, size_t errlen);

/* Prepares an empty response. */
void bl_aws_http_resp_init(bl_aws_http_resp_t *r);

/* Cleanses (it may hold credentials) and frees the response body. */
void bl_aws_http_resp_free(bl_aws_http_resp_t *r);

/*
 * Sends one request and reads the whole response into `resp` (initialised
 * by the caller, who frees it in every case). Returns BL_OK when a complete
 * response arrived, whatever its status, or BL_ERROR with a message in err
 * (resolve/connect/TLS/verify failure, timeout, malformed or truncated
 * response, body over max_body).
 */
int bl_aws_http_do(const bl_aws_http_req_t *req, bl_aws_http_resp_t *resp, char *err,
                   size_t errlen);

#endif
