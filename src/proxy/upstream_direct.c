/*
 * upstream_direct.c - TLS straight to the API server, with a pool of idle
 * keep-alive connections per worker.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "core/log.h"
#include "core/metrics.h"
#include "net/sock.h"
#include "proxy/upstream.h"

/* Idle connections kept per worker. At least the requests a worker has in
 * flight at once: a smaller pool closes the surplus after every burst and
 * the next burst pays a TLS handshake per request (at 128 connections a
 * pool of 64 cut throughput tenfold). Idle ones close after 30 s. */
#define BL_POOL_MAX        1024
#define BL_POOL_IDLE_MS    30000   /* below kube-apiserver's and most LBs' idle timeouts */
#define BL_TOKEN_MAX       16384
#define BL_TOKEN_RECHECK_MS 10000  /* projected tokens rotate; re-read when the file changes */
#define BL_DNS_TTL_MS      30000

typedef struct {
    bl_sock_t *sock;
    uint64_t since;
} bl_idle_t;

typedef struct {
    bl_upstream_t base;
    SSL_CTX *ctx;
    unsigned connect_timeout_ms;
    const char *verify_name;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t resolved_at;
    bl_idle_t idle[BL_POOL_MAX];
    size_t nidle;
    bl_timer_t sweep;
    bl_buf_t cred;            /* "Host: ...\r\nAuthorization: Bearer ...\r\n" */
    struct timespec token_mtime;
    uint64_t token_checked;
    SSL_SESSION *session;     /* latest ticket from this API server, for resumption */
} bl_direct_t;

/* Returns BL_OK with the first address of host:port in u->addr, or BL_ERROR. */
static int bl_direct_resolve(bl_direct_t *u, const char **err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", u->base.conn->port);
    if (getaddrinfo(u->base.conn->host, port, &hints, &ai) != 0 || ai == NULL) {
        *err = "cannot resolve the API server's host name";
        return BL_ERROR;
    }
    memcpy(&u->addr, ai->ai_addr, ai->ai_addrlen);
    u->addrlen = ai->ai_addrlen;
    u->resolved_at = bl_loop_now(u->base.loop);
    freeaddrinfo(ai);
    return BL_OK;
}

/* Rebuilds the Host and credential lines; re-reads the token file when
 * it changed. Returns BL_OK or BL_ERROR (keeps the previous credential). */
static int bl_direct_load_cred(bl_direct_t *u, bl_buf_t *err)
{
    const bl_connection_t *c = u->base.conn;
    bl_buf_t cred;
    bl_buf_init(&cred, BL_TOKEN_MAX + 1024);
    int rc = BL_ERROR;
    if (c->port == 443)
        bl_buf_printf(&cred, "Host: %s\r\n", c->host);
    else
        bl_buf_printf(&cred, strchr(c->host, ':') ? "Host: [%s]:%d\r\n" : "Host: %s:%d\r\n", c->host, c->port);
    if (c->token_file) {
        FILE *f = fopen(c->token_file, "re");
        char tok[BL_TOKEN_MAX];
        size_t n = f ? fread(tok, 1, sizeof(tok), f) : 0;
        if (f)
            fclose(f);
        while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
            n--;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)tok[i] <= 0x20 || tok[i] == 0x7f)
                n = 0; /* a token with control bytes could inject header lines */
        if (n == 0 || n == sizeof(tok)) {
            bl_buf_printf(err, "cannot read a bearer token from %s", c->token_file);
            goto end;
        }
        bl_buf_puts(&cred, "Authorization: Bearer ");
        bl_buf_append(&cred, tok, n);
        bl_buf_puts(&cred, "\r\n");
        OPENSSL_cleanse(tok, sizeof(tok));
    }
    OPENSSL_cleanse(u->cred.base, u->cred.cap);
    bl_buf_free(&u->cred);
    u->cred = cred;
    cred.base = NULL;
    rc = BL_OK;
end:
    if (cred.base)
        OPENSSL_cleanse(cred.base, cred.cap);
    bl_buf_free(&cred);
    return rc;
}

static void bl_direct_maybe_reload(bl_direct_t *u)
{
    uint64_t now = bl_loop_now(u->base.loop);
    if (!u->base.conn->token_file || now - u->token_checked < BL_TOKEN_RECHECK_MS)
        return;
    u->token_checked = now;
    struct stat st;
    if (stat(u->base.conn->token_file, &st) != 0 ||
        (st.st_mtim.tv_sec == u->token_mtime.tv_sec && st.st_mtim.tv_nsec == u->token_mtime.tv_nsec))
        return;
    bl_buf_t err;
    bl_buf_init(&err, 512);
    if (bl_direct_load_cred(u, &err) == BL_OK)
        u->token_mtime = st.st_mtim;
    else
        bl_warn("connection %s: %s; keeping the previous token", u->base.conn->name, bl_buf_cstr(&err));
    bl_buf_free(&err);
}

static int bl_direct_head(bl_upstream_t *base, bl_buf_t *out)
{
    bl_direct_t *u = (bl_direct_t *)base;
    bl_direct_maybe_reload(u);
    return bl_buf_append(out, bl_buf_data(&u->cred), bl_buf_size(&u->cred));
}

static const char *bl_direct_prefix(bl_upstream_t *base)
{
    return base->conn->path_prefix ? base->conn->path_prefix : "";
}

/* --- TLS session resumption ---
 * OpenSSL hands each new session (TLS 1.3 tickets arrive after the
 * handshake) to this callback; the upstream keeps only the latest one and
 * offers it on its next connect: a resumed handshake costs no certificate
 * check and no key exchange signature. */
static int bl_direct_new_session(SSL *ssl, SSL_SESSION *sess)
{
    bl_sock_t *s = SSL_get_app_data(ssl);
    bl_direct_t *u = s ? s->recycle_data : NULL;
    if (u == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION_free(u->session);
    u->session = sess;
    return 1; /* we hold the reference now */
}

/* --- the idle pool --- */

static void bl_pool_remove(bl_direct_t *u, size_t i)
{
    u->idle[i] = u->idle[--u->nidle];
}

/* An idle connection became readable: the server closed it or sent
 * something unasked. Either way it can no longer carry a request. */
static void bl_pool_on_io(bl_stream_t *s, unsigned events)
{
    bl_direct_t *u = s->owner;
    (void)events;
    for (size_t i = 0; i < u->nidle; i++) {
        if (&u->idle[i].sock->stream == s) {
            char probe;
            long r = bl_stream_read(s, &probe, 1);
            if (r == BL_AGAIN)
                return;
            bl_pool_remove(u, i);
            bl_sock_close((bl_sock_t *)s);
            return;
        }
    }
}

static int bl_pool_recycle(bl_sock_t *s)
{
    bl_direct_t *u = s->recycle_data;
    if (u->nidle == BL_POOL_MAX)
        return BL_DECLINED;
    s->stream.on_io = bl_pool_on_io;
    s->stream.owner = u;
    u->idle[u->nidle].sock = s;
    u->idle[u->nidle].since = bl_loop_now(u->base.loop);
    u->nidle++;
    if (!bl_timer_armed(&u->sweep))
        bl_timer_set(u->base.loop, &u->sweep, BL_POOL_IDLE_MS / 2);
    return BL_OK;
}

static void bl_pool_sweep(bl_timer_t *t)
{
    bl_direct_t *u = t->data;
    uint64_t now = bl_loop_now(u->base.loop);
    for (size_t i = u->nidle; i-- > 0;) {
        if (now - u->idle[i].since >= BL_POOL_IDLE_MS) {
            bl_sock_t *s = u->idle[i].sock;
            bl_pool_remove(u, i);
            bl_sock_close(s);
        }
    }
    if (u->nidle)
        bl_timer_set(u->base.loop, &u->sweep, BL_POOL_IDLE_MS / 2);
}

/* --- connecting --- */

static void bl_direct_finish(bl_upwait_t *w, bl_sock_t *s, const char *err)
{
    bl_timer_cancel(w->up->loop, &w->timer);
    w->pending = NULL;
    if (err) {
        bl_sock_close(s);
        w->cb(w, NULL, err);
        return;
    }
    s->stream.on_io = NULL;
    s->stream.owner = NULL;
    w->cb(w, &s->stream, NULL);
}

static void bl_direct_on_io(bl_stream_t *st, unsigned events)
{
    bl_upwait_t *w = st->owner;
    bl_sock_t *s = (bl_sock_t *)st;
    const char *err = NULL;
    (void)events;
    int rc = bl_sock_handshake(s, &err);
    if (rc == BL_AGAIN)
        return;
    if (rc != BL_OK) {
        ((bl_direct_t *)w->up)->resolved_at = 0; /* re-resolve next time */
        bl_metric_add(BL_M_UPSTREAM_ERRORS, 1);
    }
    bl_direct_finish(w, s, rc == BL_OK ? NULL : err);
}

static void bl_direct_timeout(bl_timer_t *t)
{
    bl_upwait_t *w = t->data;
    bl_metric_add(BL_M_UPSTREAM_ERRORS, 1);
    bl_direct_finish(w, w->pending, "timed out connecting to the API server");
}

static int bl_direct_open(bl_upstream_t *base, bl_upwait_t *w, bl_stream_t **out, const char **err)
{
    bl_direct_t *u = (bl_direct_t *)base;
    while (u->nidle > 0) {
        bl_sock_t *s = u->idle[--u->nidle].sock; /* newest first: least likely to be stale */
        if (!bl_sock_clean(s)) {
            bl_sock_close(s);
            continue;
        }
        s->stream.on_io = NULL;
        s->stream.owner = NULL;
        *out = &s->stream;
        return BL_OK;
    }
    uint64_t now = bl_loop_now(base->loop);
    if ((u->resolved_at == 0 || now - u->resolved_at > BL_DNS_TTL_MS) && bl_direct_resolve(u, err) != BL_OK)
        return BL_ERROR;
    bl_metric_add(BL_M_UPSTREAM_CONNECTS, 1);
    bl_sock_t *s = bl_sock_connect(base->loop, (struct sockaddr *)&u->addr, u->addrlen, u->ctx,
                                   u->verify_name, u->session, err);
    if (s == NULL) {
        bl_metric_add(BL_M_UPSTREAM_ERRORS, 1);
        return BL_ERROR;
    }
    s->recycle = bl_pool_recycle;
    s->recycle_data = u; /* also how bl_direct_new_session finds us */
    s->stream.on_io = bl_direct_on_io;
    s->stream.owner = w;
    w->pending = s;
    w->up = base;
    w->timer.cb = bl_direct_timeout;
    w->timer.data = w;
    bl_timer_set(base->loop, &w->timer, u->connect_timeout_ms);
    return BL_AGAIN;
}

static void bl_direct_cancel(bl_upstream_t *base, bl_upwait_t *w)
{
    if (w->pending == NULL)
        return;
    bl_timer_cancel(base->loop, &w->timer);
    bl_sock_close(w->pending);
    w->pending = NULL;
}

static void bl_direct_free(bl_upstream_t *base)
{
    bl_direct_t *u = (bl_direct_t *)base;
    while (u->nidle > 0)
        bl_sock_close(u->idle[--u->nidle].sock);
    bl_timer_cancel(base->loop, &u->sweep);
    if (u->cred.base)
        OPENSSL_cleanse(u->cred.base, u->cred.cap);
    bl_buf_free(&u->cred);
    SSL_SESSION_free(u->session);
    SSL_CTX_free(u->ctx);
    free(u);
}

static const bl_upstream_ops_t bl_direct_ops = {
    .kind = "direct",
    .open = bl_direct_open,
    .cancel = bl_direct_cancel,
    .head = bl_direct_head,
    .prefix = bl_direct_prefix,
    .free = bl_direct_free,
};

bl_upstream_t *bl_upstream_direct_new(bl_loop_t *loop, const bl_connection_t *conn, SSL_CTX *ctx,
                                      unsigned connect_timeout_ms, bl_buf_t *err)
{
    bl_direct_t *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        bl_buf_printf(err, "out of memory");
        return NULL;
    }
    u->base.ops = &bl_direct_ops;
    u->base.conn = conn;
    u->base.loop = loop;
    u->ctx = ctx;
    SSL_CTX_up_ref(ctx);
    SSL_CTX_sess_set_new_cb(ctx, bl_direct_new_session); /* same for every worker: idempotent */
    u->connect_timeout_ms = connect_timeout_ms;
    u->verify_name = conn->server_name ? conn->server_name : conn->host;
    u->sweep.cb = bl_pool_sweep;
    u->sweep.data = u;
    bl_buf_init(&u->cred, BL_TOKEN_MAX + 1024);
    if (bl_direct_load_cred(u, err) != BL_OK) {
        bl_direct_free(&u->base);
        return NULL;
    }
    struct stat st;
    if (conn->token_file && stat(conn->token_file, &st) == 0)
        u->token_mtime = st.st_mtim;
    u->token_checked = bl_loop_now(loop);
    return &u->base;
}
