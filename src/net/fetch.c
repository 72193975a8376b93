/*
 * fetch.c - blocking, deadline-bounded HTTPS GET (see fetch.h).
 *
 * The socket is non-blocking and every wait is a poll(2) against the one
 * deadline, so a server that stalls at any point costs at most timeout_ms
 * (name resolution aside: getaddrinfo has no timeout of its own).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "config/values.h"
#include "http/http1.h"
#include "net/fetch.h"
#include "net/tls.h"

#define BL_FETCH_HEAD_MAX 16384
#define BL_FETCH_HEADERS  64

static uint64_t bl_fetch_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline. Returns BL_OK or BL_ERROR. */
static int bl_fetch_wait(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = bl_fetch_now();
        if (now >= deadline)
            return BL_ERROR;
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, (int)BL_MIN(deadline - now, (uint64_t)60000));
        if (n > 0)
            return BL_OK;
        if (n < 0 && errno != EINTR)
            return BL_ERROR;
    }
}

/* Connects to host:port before the deadline. Returns the fd or -1. */
static int bl_fetch_connect(const char *host, int port, uint64_t deadline, bl_buf_t *err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char ps[8];
    int fd = -1, why = 0;
    snprintf(ps, sizeof(ps), "%d", port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) {
        bl_buf_printf(err, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        why = errno;
        if (why == EINPROGRESS) {
            why = bl_fetch_wait(fd, POLLOUT, deadline) == BL_OK ? 0 : ETIMEDOUT;
            if (why == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            why = why ? why : soerr;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        bl_buf_printf(err, "cannot connect to %s:%d: %s", host, port, strerror(why ? why : EHOSTUNREACH));
    return fd;
}

/* Drives one SSL call: returns 1 to retry after waiting, 0 on failure. */
static int bl_fetch_retry(SSL *ssl, int fd, int rc, uint64_t deadline)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return bl_fetch_wait(fd, POLLIN, deadline) == BL_OK;
    if (e == SSL_ERROR_WANT_WRITE)
        return bl_fetch_wait(fd, POLLOUT, deadline) == BL_OK;
    return 0;
}

/* Sets the name the server certificate must carry (DNS name or IP). */
static int bl_fetch_verify_name(SSL *ssl, const bl_url_t *u)
{
    if (u->host_is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host) == 1;
    return SSL_set_tlsext_host_name(ssl, u->host) == 1 && SSL_set1_host(ssl, u->host) == 1;
}

/* Handshakes, sends the request and reads until EOF into resp. */
static int bl_fetch_exchange(SSL *ssl, int fd, const bl_url_t *u, uint64_t deadline,
                             size_t max, bl_buf_t *resp, bl_buf_t *err)
{
    char req[BL_URL_PATH_MAX + BL_HOST_MAX + 256];
    int rc, n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nAccept: application/json\r\n"
                         "User-Agent: byline/" BL_VERSION "\r\nConnection: close\r\n\r\n",
                         u->path[0] ? u->path : "/", strchr(u->host, ':') ? "[" : "", u->host,
                         strchr(u->host, ':') ? "]" : "");
    while ((rc = SSL_connect(ssl)) != 1)
        if (!bl_fetch_retry(ssl, fd, rc, deadline)) {
            long vr = SSL_get_verify_result(ssl);
            bl_buf_printf(err, "TLS handshake with %s failed%s%s", u->host,
                          vr != X509_V_OK ? ": " : "",
                          vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
            return BL_ERROR;
        }
    for (int off = 0; off < n;) {
        if ((rc = SSL_write(ssl, req + off, n - off)) > 0)
            off += rc;
        else if (!bl_fetch_retry(ssl, fd, rc, deadline))
            goto io;
    }
    for (;;) {
        size_t room;
        char *p = bl_buf_tail(resp, 4096, &room);
        if (p == NULL || bl_buf_size(resp) > max) {
            bl_buf_printf(err, "response from %s larger than %zu bytes", u->host, max);
            return BL_ERROR;
        }
        rc = SSL_read(ssl, p, (int)BL_MIN(room, (size_t)65536));
        if (rc > 0)
            bl_buf_commit(resp, (size_t)rc);
        else if (SSL_get_error(ssl, rc) == SSL_ERROR_ZERO_RETURN ||
                 (SSL_get_error(ssl, rc) == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
            return BL_OK; /* close-delimited is fine: the framing is checked next */
        else if (!bl_fetch_retry(ssl, fd, rc, deadline))
            goto io;
    }
io:
    bl_buf_printf(err, "%s from %s", bl_fetch_now() >= deadline ? "timed out reading"
                                                               : "connection failed reading", u->host);
    return BL_ERROR;
}

/* Reads max-age from Cache-Control values (no-store/no-cache: 0). */
static long bl_fetch_max_age(const bl_http_response_t *res)
{
    size_t pos = 0;
    long age = -1;
    const bl_http_header_t *h;
    while ((h = bl_http_find(res->headers, res->num_headers, "cache-control", &pos)) != NULL) {
        if (bl_http_has_token(h->value, "no-store") || bl_http_has_token(h->value, "no-cache"))
            return 0;
        for (size_t i = 0; i + 8 <= h->value.len; i++) {
            if (!bl_str_prefix_nocase((bl_str_t){ h->value.p + i, h->value.len - i }, "max-age="))
                continue;
            long v = 0;
            size_t j = i + 8;
            for (; j < h->value.len && h->value.p[j] >= '0' && h->value.p[j] <= '9' && v < 1000000000; j++)
                v = v * 10 + (h->value.p[j] - '0');
            if (j > i + 8)
                age = v;
            break;
        }
    }
    return age;
}

/* Takes the body out of a complete response. */
static int bl_fetch_body(const char *p, size_t n, const char *host, bl_buf_t *body, long *max_age,
                         bl_buf_t *err)
{
    bl_http_header_t hdrs[BL_FETCH_HEADERS];
    bl_http_response_t res = { .headers = hdrs, .num_headers = BL_FETCH_HEADERS };
    bl_http_err_t herr = { 0, NULL };
    bl_body_t fr;
    int hl = bl_http1_parse_response(p, BL_MIN(n, (size_t)BL_FETCH_HEAD_MAX), &res, &herr);
    if (hl <= 0 || bl_http1_response_body(&res, BL_STR("GET"), &fr, &herr) != BL_OK) {
        bl_buf_printf(err, "malformed HTTP response from %s%s%s", host, herr.reason ? ": " : "",
                      herr.reason ? herr.reason : "");
        return BL_ERROR;
    }
    if (res.status != 200) {
        bl_buf_printf(err, "%s answered HTTP %d", host, res.status);
        return BL_ERROR;
    }
    *max_age = bl_fetch_max_age(&res);
    p += hl;
    n -= (size_t)hl;
    if (fr.kind == BL_BODY_LENGTH && fr.length == n)
        return bl_buf_append(body, p, n);
    if (fr.kind == BL_BODY_CLOSE)
        return bl_buf_append(body, p, n);
    if (fr.kind == BL_BODY_CHUNKED) {
        bl_chunked_t ch;
        bl_chunked_init(&ch);
        while (n > 0 && !ch.done) {
            bl_str_t span;
            long k = bl_chunked_decode(&ch, p, n, &span, &herr);
            if (k <= 0 || bl_buf_append(body, span.p, span.len) != BL_OK)
                break;
            p += k;
            n -= (size_t)k;
        }
        if (ch.done)
            return BL_OK;
    }
    bl_buf_printf(err, "truncated or badly framed response body from %s", host);
    return BL_ERROR;
}

int bl_https_get(const char *url, const bl_fetch_opts_t *o, bl_buf_t *body, long *max_age,
                 bl_buf_t *err)
{
    bl_url_t u;
    const char *why;
    bl_buf_t resp;
    int rc = BL_ERROR, fd = -1;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    uint64_t deadline;
    bl_buf_init(&resp, o->max_body + BL_FETCH_HEAD_MAX + 4096);
    *max_age = -1;
    if (bl_url_parse(url, strlen(url), &u, &why) != BL_OK) {
        bl_buf_printf(err, "%.200s %s", url, why);
        goto end;
    }
    if ((ctx = bl_tls_client_ctx(o->ca, NULL, NULL, err)) == NULL)
        goto end;
    /* The deadline bounds the network, not loading the CA bundle. */
    deadline = bl_fetch_now() + o->timeout_ms;
    if ((fd = bl_fetch_connect(u.host, u.port, deadline, err)) < 0)
        goto end;
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 || !bl_fetch_verify_name(ssl, &u)) {
        bl_tls_errors(err);
        goto end;
    }
    if (bl_fetch_exchange(ssl, fd, &u, deadline, o->max_body + BL_FETCH_HEAD_MAX, &resp, err) != BL_OK)
        goto end;
    rc = bl_fetch_body(bl_buf_data(&resp), bl_buf_size(&resp), u.host, body, max_age, err);
    if (rc == BL_OK && bl_buf_size(body) > o->max_body) {
        bl_buf_printf(err, "response from %s larger than %zu bytes", u.host, o->max_body);
        rc = BL_ERROR;
    }
end:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    bl_buf_free(&resp);
    return rc;
}
