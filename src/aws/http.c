/* http.c - blocking HTTP/1.1 (+TLS) client for AWS endpoints. See http.h. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "aws/http.h"
#include "http/http1.h"

#define BL_AWS_HTTP_MAX_HEAD (64 * 1024)
#define BL_AWS_HTTP_MAX_FIELDS 100

typedef struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int timeout_ms;
} bl_aws_conn_t;

/* Writes an error message into err. Returns BL_ERROR. */
static int hf(char *err, size_t errlen, const char *fmt, ...) BL_PRINTF(3, 4);
static int hf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return BL_ERROR;
}

/* Copies [p, p+n) into dst[cap] with a NUL. Returns BL_OK or BL_ERROR. */
static int cpy(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return BL_ERROR;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return BL_OK;
}

/* Splits "host[:port]" or "[v6][:port]" into u->host and u->port. */
static int url_authority(bl_aws_url_t *u, const char *a, size_t n)
{
    const char *port = NULL, *h = a;
    size_t hl = n;
    if (n > 0 && a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb)
            return BL_ERROR;
        h = a + 1;
        hl = (size_t)(rb - h);
        if (rb + 1 < a + n) {
            if (rb[1] != ':')
                return BL_ERROR;
            port = rb + 2;
        }
    } else {
        const char *c = memchr(a, ':', n);
        if (c) {
            hl = (size_t)(c - a);
            port = c + 1;
        }
    }
    if (hl == 0 || cpy(u->host, sizeof(u->host), h, hl) < 0 ||
        strpbrk(u->host, "@/?#%\\ ") != NULL)
        return BL_ERROR;
    size_t pl = port ? (size_t)(a + n - port) : 0;
    if (port && (pl == 0 || pl > 5 || strspn(port, "0123456789") < pl))
        return BL_ERROR;
    if (port) {
        if (cpy(u->port, sizeof(u->port), port, pl) < 0 || atoi(u->port) < 1 ||
            atoi(u->port) > 65535)
            return BL_ERROR;
    } else {
        snprintf(u->port, sizeof(u->port), "%s", u->https ? "443" : "80");
    }
    return cpy(u->authority, sizeof(u->authority), a, n);
}

int bl_aws_url_parse(const char *url, bl_aws_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (!strncmp(url, "https://", 8)) {
        u->https = 1;
        p = url + 8;
    } else if (!strncmp(url, "http://", 7)) {
        p = url + 7;
    } else {
        return hf(err, errlen, "URL must start with http:// or https://");
    }
    size_t alen = strcspn(p, "/?#");
    if (url_authority(u, p, alen) < 0)
        return hf(err, errlen, "bad host or port in URL");
    p += alen;
    if (strchr(p, '#') || strpbrk(p, " \r\n\t"))
        return hf(err, errlen, "URL may not hold a fragment or whitespace");
    size_t plen = strcspn(p, "?");
    if (plen == 0 ? cpy(u->path, sizeof(u->path), "/", 1) < 0
                  : cpy(u->path, sizeof(u->path), p, plen) < 0)
        return hf(err, errlen, "URL path too long");
    if (p[plen] == '?' && cpy(u->query, sizeof(u->query), p + plen + 1, strlen(p + plen + 1)) < 0)
        return hf(err, errlen, "URL query too long");
    return BL_OK;
}

void bl_aws_http_resp_init(bl_aws_http_resp_t *r)
{
    r->status = 0;
    bl_buf_init(&r->body, BL_AWS_HTTP_DEF_MAX);
}

void bl_aws_http_resp_free(bl_aws_http_resp_t *r)
{
    if (r->body.base)
        OPENSSL_cleanse(r->body.base, r->body.cap);
    bl_buf_free(&r->body);
}

/* Connects with a timeout to one address. Returns the fd or -1. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (errno != EINPROGRESS || poll(&pfd, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            close(fd);
            return -1;
        }
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Resolves and connects. Returns BL_OK or BL_ERROR with err. */
static int conn_open(bl_aws_conn_t *c, const bl_aws_url_t *u, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int g = getaddrinfo(u->host, u->port, &hints, &res);
    if (g != 0)
        return hf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(g));
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next)
        c->fd = connect_one(ai, c->timeout_ms);
    freeaddrinfo(res);
    if (c->fd < 0)
        return hf(err, errlen, "cannot connect to %s:%s (refused or timed out)", u->host, u->port);
    return BL_OK;
}

/* Sets up TLS on c->fd and verifies the peer. Returns BL_OK or BL_ERROR. */
static int conn_tls(bl_aws_conn_t *c, const bl_aws_url_t *u, char *err, size_t errlen)
{
    const char *bundle = getenv("AWS_CA_BUNDLE");
    unsigned char a6[16];
    int is_ip = inet_pton(AF_INET, u->host, a6) == 1 || inet_pton(AF_INET6, u->host, a6) == 1;
    if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
        !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION))
        return hf(err, errlen, "TLS setup failed");
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (bundle && *bundle ? !SSL_CTX_load_verify_locations(c->ctx, bundle, NULL)
                          : !SSL_CTX_set_default_verify_paths(c->ctx))
        return hf(err, errlen, "cannot load CA certificates %s", bundle ? bundle : "(system)");
    if ((c->ssl = SSL_new(c->ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd))
        return hf(err, errlen, "TLS setup failed");
    if (is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host)
              : (!SSL_set1_host(c->ssl, u->host) || !SSL_set_tlsext_host_name(c->ssl, u->host)))
        return hf(err, errlen, "TLS setup failed for %s", u->host);
    ERR_clear_error();
    if (SSL_connect(c->ssl) != 1) {
        long v = SSL_get_verify_result(c->ssl);
        return hf(err, errlen, "TLS handshake with %s failed: %s", u->host,
                  v != X509_V_OK ? X509_verify_cert_error_string(v) : "handshake error or timeout");
    }
    return BL_OK;
}

/* Releases the TLS objects and the socket (each may be absent). */
static void conn_close(bl_aws_conn_t *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
}

/* Writes all of p[0..n). Returns BL_OK or BL_ERROR. */
static int conn_write(bl_aws_conn_t *c, const char *p, size_t n)
{
    while (n > 0) {
        long w;
        if (c->ssl) {
            size_t done = 0;
            w = SSL_write_ex(c->ssl, p, n, &done) == 1 ? (long)done : -1;
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return BL_ERROR;
        p += w;
        n -= (size_t)w;
    }
    return BL_OK;
}

/* Reads some bytes. Returns the count, 0 at end of stream, or BL_ERROR. */
static long conn_read(bl_aws_conn_t *c, char *p, size_t n)
{
    if (c->ssl) {
        size_t got = 0;
        if (SSL_read_ex(c->ssl, p, n, &got) == 1)
            return (long)got;
        return SSL_get_error(c->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : BL_ERROR;
    }
    for (;;) {
        long r = recv(c->fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? BL_ERROR : r;
    }
}

/* Builds the request head and body into out. Returns BL_OK or BL_ERROR. */
static int build_request(bl_buf_t *out, const bl_aws_http_req_t *rq)
{
    const bl_aws_url_t *u = rq->url;
    int has_body = rq->body_len > 0 || strcmp(rq->method, "GET") != 0;
    if (bl_buf_printf(out, "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: byline/%s\r\n"
                      "Connection: close\r\n", rq->method, u->path, u->query[0] ? "?" : "",
                      u->query, u->authority, BL_VERSION) < 0)
        return BL_ERROR;
    if (has_body && bl_buf_printf(out, "Content-Length: %zu\r\n", rq->body_len) < 0)
        return BL_ERROR;
    for (size_t i = 0; i < rq->num_headers; i++) {
        const char *v = rq->headers[i].value;
        if (strpbrk(v, "\r\n") || bl_buf_printf(out, "%s: %s\r\n", rq->headers[i].name, v) < 0)
            return BL_ERROR;
    }
    if (bl_buf_puts(out, "\r\n") < 0 || bl_buf_append(out, rq->body, rq->body_len) < 0)
        return BL_ERROR;
    return BL_OK;
}

/* Response reading state. */
typedef struct {
    bl_buf_t raw;          /* bytes as received */
    size_t head_len;       /* 0 until the head is parsed */
    size_t consumed;       /* raw bytes after the head already framed */
    bl_body_t framing;
    bl_chunked_t chunked;
    int done;
} bl_aws_rd_t;

/* Parses the head once complete. Returns BL_OK, BL_AGAIN or BL_ERROR. */
static int rd_head(bl_aws_rd_t *r, const char *method, bl_aws_http_resp_t *resp)
{
    bl_http_header_t h[BL_AWS_HTTP_MAX_FIELDS];
    bl_http_response_t res = { .headers = h, .num_headers = BL_AWS_HTTP_MAX_FIELDS };
    bl_http_err_t e;
    for (;;) {
        const char *p = bl_buf_data(&r->raw) + r->consumed;
        int n = bl_http1_parse_response(p, bl_buf_size(&r->raw) - r->consumed, &res, &e);
        if (n < 0)
            return n;
        if (res.status >= 100 && res.status < 200) {   /* interim: skip */
            r->consumed += (size_t)n;
            res.num_headers = BL_AWS_HTTP_MAX_FIELDS;
            continue;
        }
        if (bl_http1_response_body(&res, (bl_str_t){ method, strlen(method) }, &r->framing, &e) < 0)
            return BL_ERROR;
        resp->status = res.status;
        r->consumed += (size_t)n;
        r->head_len = r->consumed;
        bl_chunked_init(&r->chunked);
        return BL_OK;
    }
}

/* Moves framed body bytes from raw into resp->body. Returns BL_OK or BL_ERROR. */
static int rd_body(bl_aws_rd_t *r, bl_aws_http_resp_t *resp)
{
    const char *p = bl_buf_data(&r->raw);
    size_t have = bl_buf_size(&r->raw);
    if (r->framing.kind == BL_BODY_NONE) {
        r->done = 1;
        return BL_OK;
    }
    while (r->consumed < have && !r->done) {
        size_t n = have - r->consumed;
        if (r->framing.kind == BL_BODY_CHUNKED) {
            bl_str_t data;
            bl_http_err_t e;
            long c = bl_chunked_decode(&r->chunked, p + r->consumed, n, &data, &e);
            if (c < 0 || bl_buf_append(&resp->body, data.p, data.len) < 0)
                return BL_ERROR;
            r->consumed += (size_t)c;
            r->done = r->chunked.done;
            if (c == 0)
                break;
            continue;
        }
        if (r->framing.kind == BL_BODY_LENGTH)
            n = BL_MIN(n, (size_t)(r->framing.length - bl_buf_size(&resp->body)));
        if (bl_buf_append(&resp->body, p + r->consumed, n) < 0)
            return BL_ERROR;
        r->consumed += n;
        if (r->framing.kind == BL_BODY_LENGTH && bl_buf_size(&resp->body) == r->framing.length)
            r->done = 1;   /* bytes after the body are ignored: the connection closes */
    }
    if (r->framing.kind == BL_BODY_LENGTH && bl_buf_size(&resp->body) == r->framing.length)
        r->done = 1;
    return BL_OK;
}

/* Reads until the response is complete. Returns BL_OK or BL_ERROR with err. */
static int read_response(bl_aws_conn_t *c, const bl_aws_http_req_t *rq, bl_aws_http_resp_t *resp,
                         char *err, size_t errlen)
{
    bl_aws_rd_t r = { .consumed = 0 };
    size_t max = rq->max_body ? rq->max_body : BL_AWS_HTTP_DEF_MAX;
    int rc = BL_ERROR;
    bl_buf_init(&r.raw, max * 2 + BL_AWS_HTTP_MAX_HEAD);
    resp->body.max = max;
    while (!r.done) {
        size_t room;
        char *t = bl_buf_tail(&r.raw, 4096, &room);
        long n = t && room ? conn_read(c, t, room) : BL_ERROR;
        if (n < 0) {
            hf(err, errlen, "reading from %s failed (timeout, reset or response too large)",
               rq->url->host);
            goto end;
        }
        bl_buf_commit(&r.raw, (size_t)n);
        if (r.head_len == 0) {
            int h = rd_head(&r, rq->method, resp);
            if (h == BL_ERROR || (h == BL_AGAIN && n == 0)) {
                hf(err, errlen, "malformed or truncated HTTP response from %s", rq->url->host);
                goto end;
            }
            if (h == BL_AGAIN)
                continue;
            if (r.framing.kind == BL_BODY_LENGTH && r.framing.length > max) {
                hf(err, errlen, "response from %s is larger than allowed", rq->url->host);
                goto end;
            }
        }
        if (rd_body(&r, resp) < 0) {
            hf(err, errlen, "bad or too large response body from %s", rq->url->host);
            goto end;
        }
        if (n == 0 && !r.done) {
            if (r.framing.kind != BL_BODY_CLOSE) {
                hf(err, errlen, "response from %s was cut short", rq->url->host);
                goto end;
            }
            r.done = 1;
        }
    }
    rc = BL_OK;
end:
    if (r.raw.base)
        OPENSSL_cleanse(r.raw.base, r.raw.cap);
    bl_buf_free(&r.raw);
    return rc;
}

int bl_aws_http_do(const bl_aws_http_req_t *rq, bl_aws_http_resp_t *resp, char *err, size_t errlen)
{
    bl_aws_conn_t c = { .fd = -1, .timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms
                                                                 : BL_AWS_HTTP_DEF_TIMEOUT };
    bl_buf_t out;
    int rc = BL_ERROR;
    bl_buf_init(&out, BL_AWS_HTTP_MAX_HEAD + rq->body_len);
    if (build_request(&out, rq) < 0) {
        hf(err, errlen, "cannot build the request to %s (header with CR/LF or too long)",
           rq->url->host);
        goto end;
    }
    if (conn_open(&c, rq->url, err, errlen) < 0 ||
        (rq->url->https && conn_tls(&c, rq->url, err, errlen) < 0))
        goto end;
    if (conn_write(&c, bl_buf_data(&out), bl_buf_size(&out)) < 0) {
        hf(err, errlen, "sending to %s failed (timeout or reset)", rq->url->host);
        goto end;
    }
    rc = read_response(&c, rq, resp, err, errlen);
end:
    conn_close(&c);
    if (out.base)
        OPENSSL_cleanse(out.base, out.cap);
    bl_buf_free(&out);
    ERR_clear_error();
    return rc;
}
