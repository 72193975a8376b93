/* sock.c - non-blocking TCP + OpenSSL, edge-triggered. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "net/sock.h"

static _Thread_local char bl_sock_reason[256];

static void bl_sock_io_cb(bl_io_t *io, unsigned events);

/* Returns a reason string built from OpenSSL's error queue (thread-local). */
static const char *bl_sock_ssl_reason(SSL *ssl, const char *what)
{
    unsigned long e = ERR_get_error();
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(bl_sock_reason, sizeof(bl_sock_reason), "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(vr));
    else if (e)
        snprintf(bl_sock_reason, sizeof(bl_sock_reason), "%s: %s", what, ERR_reason_error_string(e));
    else
        snprintf(bl_sock_reason, sizeof(bl_sock_reason), "%s: %s", what,
                 errno ? strerror(errno) : "connection closed");
    ERR_clear_error();
    return bl_sock_reason;
}

int bl_sock_clean(bl_sock_t *s)
{
    /* Bytes OpenSSL read ahead but nobody asked for would answer the next
     * request on this connection: such a socket is never reused. */
    return s->state == BL_SOCK_OPEN && !s->shut_wr && !s->rd_hup && !SSL_has_pending(s->ssl);
}

static void bl_sock_reap(bl_defer_t *d)
{
    free(d->data);
}

static void bl_sock_nop(bl_io_t *io, unsigned events)
{
    (void)io;
    (void)events;
}

void bl_sock_close(bl_sock_t *s)
{
    if (s->state == BL_SOCK_CLOSED)
        return;
    if (s->ssl) {
        if (s->state == BL_SOCK_OPEN && !s->shut_wr)
            SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        s->ssl = NULL;
        ERR_clear_error();
    }
    if (s->io.fd >= 0) {
        bl_loop_del(s->loop, &s->io);
        close(s->io.fd);
    }
    s->io.fd = -1;
    s->io.cb = bl_sock_nop;
    s->state = BL_SOCK_CLOSED;
    s->reaper.cb = bl_sock_reap;
    s->reaper.data = s;
    bl_loop_defer(s->loop, &s->reaper);
}

static long bl_sock_read(bl_stream_t *st, void *p, size_t n)
{
    bl_sock_t *s = (bl_sock_t *)st;
    if (s->state != BL_SOCK_OPEN)
        return BL_ERROR;
    if (!s->rd_ready && !SSL_has_pending(s->ssl))
        return BL_AGAIN;
    int cap = n > INT32_MAX ? INT32_MAX : (int)n;
    errno = 0;
    int r = SSL_read(s->ssl, p, cap);
    if (r > 0) {
        s->read_wants_write = 0;
        return r;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        s->rd_ready = 0;
        return BL_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->read_wants_write = 1;
        s->wr_ready = 0;
        return BL_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == ECONNRESET)
            return errno == 0 ? 0 : BL_ERROR;
        /* fallthrough */
    default:
        ERR_clear_error();
        return BL_ERROR;
    }
}

static long bl_sock_write(bl_stream_t *st, const void *p, size_t n)
{
    bl_sock_t *s = (bl_sock_t *)st;
    if (s->state != BL_SOCK_OPEN || s->shut_wr)
        return BL_ERROR;
    if (n == 0)
        return 0;
    if (!s->wr_ready)
        return BL_AGAIN;
    int cap = n > INT32_MAX ? INT32_MAX : (int)n;
    int r = SSL_write(s->ssl, p, cap);
    if (r > 0) {
        s->write_wants_read = 0;
        return r;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_WRITE:
        s->wr_ready = 0;
        return BL_AGAIN;
    case SSL_ERROR_WANT_READ:
        s->write_wants_read = 1;
        s->rd_ready = 0;
        return BL_AGAIN;
    default:
        ERR_clear_error();
        return BL_ERROR;
    }
}

static int bl_sock_shutdown_wr(bl_stream_t *st)
{
    bl_sock_t *s = (bl_sock_t *)st;
    if (s->state != BL_SOCK_OPEN)
        return BL_ERROR;
    if (s->shut_wr)
        return BL_OK;
    /* TLS has no half-close of its own: close_notify then TCP FIN, and
     * keep reading (SSL_OP_IGNORE_UNEXPECTED_EOF lets the peer's plain FIN
     * read as EOF too). */
    int r = SSL_shutdown(s->ssl);
    if (r < 0) {
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return BL_AGAIN;
        ERR_clear_error();
    }
    s->shut_wr = 1;
    shutdown(s->io.fd, SHUT_WR);
    return BL_OK;
}

static void bl_sock_release(bl_stream_t *st, int reusable)
{
    bl_sock_t *s = (bl_sock_t *)st;
    if (reusable && s->recycle && bl_sock_clean(s) && s->recycle(s) == BL_OK)
        return;
    bl_sock_close(s);
}

static const bl_stream_ops_t bl_sock_ops = {
    .kind = "tls",
    .read = bl_sock_read,
    .write = bl_sock_write,
    .shutdown_wr = bl_sock_shutdown_wr,
    .release = bl_sock_release,
};

/* --- a socket BIO that keeps the readiness flags ---
 * OpenSSL's own socket BIO cannot tell us that a read drained the kernel
 * buffer. Ours notes a short read or write: the next attempt would block,
 * so it is skipped until epoll reports an edge (h2o plugs in a BIO for
 * the same reason). */

static int bl_bio_write(BIO *b, const char *p, int n)
{
    bl_sock_t *s = BIO_get_data(b);
    ssize_t w;
    BIO_clear_retry_flags(b);
    do
        w = write(s->io.fd, p, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->wr_ready = 0;
            BIO_set_retry_write(b);
        }
        return -1;
    }
    if (w < n)
        s->wr_ready = 0;
    return (int)w;
}

static int bl_bio_read(BIO *b, char *p, int n)
{
    bl_sock_t *s = BIO_get_data(b);
    ssize_t r;
    BIO_clear_retry_flags(b);
    do
        r = read(s->io.fd, p, (size_t)n);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->rd_ready = 0;
            BIO_set_retry_read(b);
        }
        return -1;
    }
    if (r < n && !s->rd_hup)
        s->rd_ready = 0;
    return (int)r;
}

static long bl_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bl_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bl_bio_meth; /* one for the process, never freed */

static void bl_bio_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "byline socket");
    if (m && BIO_meth_set_write(m, bl_bio_write) && BIO_meth_set_read(m, bl_bio_read) &&
        BIO_meth_set_ctrl(m, bl_bio_ctrl) && BIO_meth_set_create(m, bl_bio_create))
        bl_bio_meth = m;
    else
        BIO_meth_free(m);
}

/* Returns the BIO method, or NULL if OpenSSL could not make one. */
static BIO_METHOD *bl_bio_method(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bl_bio_init);
    return bl_bio_meth;
}

static bl_sock_t *bl_sock_new(bl_loop_t *loop, int fd, SSL_CTX *ctx)
{
    bl_sock_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->stream.ops = &bl_sock_ops;
    s->loop = loop;
    s->io.fd = fd;
    s->io.cb = bl_sock_io_cb;
    s->io.data = s;
    s->rd_ready = s->wr_ready = 1;
    s->ssl = SSL_new(ctx);
    if (s->ssl)
        SSL_set_app_data(s->ssl, s);
    BIO *bio = s->ssl && bl_bio_method() ? BIO_new(bl_bio_method()) : NULL;
    if (bio) {
        BIO_set_data(bio, s);
        SSL_set_bio(s->ssl, bio, bio);
    }
    if (s->ssl == NULL || bio == NULL || bl_loop_add(loop, &s->io) != BL_OK) {
        SSL_free(s->ssl);
        free(s);
        return NULL;
    }
    return s;
}

static void bl_sock_io_cb(bl_io_t *io, unsigned events)
{
    bl_sock_t *s = io->data;
    /* A TLS read can need the socket writable and vice versa. */
    if ((events & BL_IO_WRITE) && s->read_wants_write)
        events |= BL_IO_READ;
    if ((events & BL_IO_READ) && s->write_wants_read)
        events |= BL_IO_WRITE;
    if (events & BL_IO_RDHUP)
        s->rd_hup = 1;
    if (events & BL_IO_READ)
        s->rd_ready = 1;
    if (events & BL_IO_WRITE)
        s->wr_ready = 1;
    if (s->stream.on_io)
        s->stream.on_io(&s->stream, events);
}

static void bl_sock_tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Watches and exec sessions may idle for hours; keepalive finds dead peers. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

bl_sock_t *bl_sock_accept(bl_loop_t *loop, int fd, SSL_CTX *ctx)
{
    bl_sock_tune(fd);
    bl_sock_t *s = bl_sock_new(loop, fd, ctx);
    if (s == NULL) {
        close(fd);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        const void *a = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
        inet_ntop(ss.ss_family, a, s->peer_ip, sizeof(s->peer_ip));
        /* Show IPv4-mapped peers as plain IPv4, as logs and X-Forwarded-For expect. */
        if (!strncmp(s->peer_ip, "::ffff:", 7) && strchr(s->peer_ip + 7, '.'))
            memmove(s->peer_ip, s->peer_ip + 7, strlen(s->peer_ip + 7) + 1);
    }
    SSL_set_accept_state(s->ssl);
    s->state = BL_SOCK_HANDSHAKE;
    return s;
}

static int bl_sock_set_verify_name(SSL *ssl, const char *name)
{
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? BL_OK : BL_ERROR;
    if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
        return BL_ERROR;
    return BL_OK;
}

bl_sock_t *bl_sock_connect(bl_loop_t *loop, const struct sockaddr *addr, socklen_t addrlen,
                           SSL_CTX *ctx, const char *verify_name, SSL_SESSION *session,
                           const char **reason)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *reason = strerror(errno);
        return NULL;
    }
    bl_sock_tune(fd);
    if (connect(fd, addr, addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(bl_sock_reason, sizeof(bl_sock_reason), "connect: %s", strerror(errno));
        *reason = bl_sock_reason;
        close(fd);
        return NULL;
    }
    bl_sock_t *s = bl_sock_new(loop, fd, ctx);
    if (s == NULL) {
        *reason = "out of memory";
        close(fd);
        return NULL;
    }
    s->is_client = 1;
    s->state = BL_SOCK_CONNECTING;
    SSL_set_connect_state(s->ssl);
    if (bl_sock_set_verify_name(s->ssl, verify_name) != BL_OK) {
        *reason = "invalid upstream TLS server name";
        bl_sock_close(s);
        return NULL;
    }
    if (session)
        SSL_set_session(s->ssl, session);
    return s;
}

int bl_sock_handshake(bl_sock_t *s, const char **reason)
{
    if (s->state == BL_SOCK_OPEN)
        return BL_OK;
    if (s->state == BL_SOCK_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == EINPROGRESS || err == EALREADY)
            return BL_AGAIN;
        if (err != 0) {
            snprintf(bl_sock_reason, sizeof(bl_sock_reason), "connect: %s", strerror(err));
            *reason = bl_sock_reason;
            return BL_ERROR;
        }
        s->state = BL_SOCK_HANDSHAKE;
    }
    if (s->state != BL_SOCK_HANDSHAKE) {
        *reason = "socket closed";
        return BL_ERROR;
    }
    errno = 0;
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->state = BL_SOCK_OPEN;
        return BL_OK;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        /* A client that has not finished connecting gets a write edge first. */
        return BL_AGAIN;
    }
    *reason = bl_sock_ssl_reason(s->is_client ? s->ssl : NULL, "TLS handshake");
    return BL_ERROR;
}

int bl_sock_detach(bl_sock_t *s, SSL **ssl, int *fd)
{
    if (s->state != BL_SOCK_OPEN)
        return BL_ERROR;
    bl_loop_del(s->loop, &s->io);
    *ssl = s->ssl;
    *fd = s->io.fd;
    SSL_set_app_data(s->ssl, NULL);
    s->ssl = NULL;
    s->io.fd = -1;
    bl_sock_close(s);
    return BL_OK;
}

bl_sock_t *bl_sock_adopt(bl_loop_t *loop, int fd, SSL *ssl, const char *peer_ip)
{
    bl_sock_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail;
    s->stream.ops = &bl_sock_ops;
    s->loop = loop;
    s->io.fd = fd;
    s->io.cb = bl_sock_io_cb;
    s->io.data = s;
    s->rd_ready = s->wr_ready = 1;
    s->ssl = ssl;
    s->state = BL_SOCK_OPEN;
    snprintf(s->peer_ip, sizeof(s->peer_ip), "%s", peer_ip ? peer_ip : "");
    SSL_set_app_data(ssl, s);
    BIO_set_data(SSL_get_rbio(ssl), s); /* one BIO for both directions */
    if (bl_loop_add(loop, &s->io) != BL_OK) {
        free(s);
        goto fail;
    }
    return s;
fail:
    SSL_free(ssl);
    close(fd);
    return NULL;
}

int bl_sock_listen(const char *host, int port, int backlog, const char **reason)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &ai);
    if (gai != 0) {
        snprintf(bl_sock_reason, sizeof(bl_sock_reason), "cannot resolve listen address %s: %s", host, gai_strerror(gai));
        *reason = bl_sock_reason;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
        snprintf(bl_sock_reason, sizeof(bl_sock_reason), "cannot listen on %s:%d: %s", host, port, strerror(errno));
        *reason = bl_sock_reason;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}
