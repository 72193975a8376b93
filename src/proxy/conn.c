/*
 * conn.c - one client connection: TLS handshake, reading request heads,
 * keep-alive, timeouts. Every event for the connection (client I/O,
 * upstream I/O, timers, deferred resumes) funnels into bl_conn_process(),
 * which runs the state machine until nothing more can happen now.
 */
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "auth/identity.h"
#include "core/log.h"
#include "core/metrics.h"
#include "proxy/proxy.h"

static void bl_conn_free(bl_defer_t *d)
{
    bl_conn_t *c = d->data;
    bl_buf_free(&c->in);
    bl_buf_free(&c->out);
    bl_idtable_unref(c->cert_ids);
    free(c);
}

void bl_conn_close(bl_conn_t *c)
{
    bl_worker_t *w = c->w;
    if (c->state == BL_CONN_CLOSED)
        return;
    if (c->req) {
        bl_req_t *r = c->req;
        c->req = NULL;
        if (r->rec.reason[0] == '\0')
            bl_rec_reason(&r->rec, "%s", c->close_reason ? c->close_reason : "connection closed by byline");
        bl_req_record(r);
        bl_req_free(r);
    }
    c->state = BL_CONN_CLOSED;
    bl_jwks_cache_cancel(w->srv->jwks, &c->auth_wait);
    bl_timer_cancel(w->loop, &c->timer);
    bl_loop_undefer(w->loop, &c->resume);
    bl_sock_close(c->sock);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    bl_metric_add(BL_M_CONNECTIONS_OPEN, -1);
    /* Freed next iteration: an event for it may still be queued in this one. */
    c->resume.cb = bl_conn_free;
    c->resume.data = c;
    bl_loop_defer(w->loop, &c->resume);
}

int bl_conn_flush(bl_conn_t *c)
{
    while (bl_buf_size(&c->out)) {
        long n = bl_stream_write(&c->sock->stream, bl_buf_data(&c->out), bl_buf_size(&c->out));
        if (n == BL_AGAIN)
            return BL_AGAIN;
        if (n < 0)
            return BL_ERROR;
        bl_buf_consume(&c->out, (size_t)n);
    }
    return BL_OK;
}

/* AUTHWAIT ends (keys refreshed, or the wait timed out): parse the head
 * again; this time a missing key is a 401. */
static void bl_conn_auth_resume(bl_conn_t *c)
{
    if (c->state != BL_CONN_AUTHWAIT)
        return;
    bl_jwks_cache_cancel(c->w->srv->jwks, &c->auth_wait);
    bl_timer_cancel(c->w->loop, &c->timer);
    c->state = BL_CONN_HEAD;
    c->auth_waited = 1;
    bl_conn_process(c);
}

static void bl_conn_auth_done(bl_jwks_waiter_t *w)
{
    bl_conn_auth_resume(w->data);
}

void bl_conn_auth_park(bl_conn_t *c)
{
    c->state = BL_CONN_AUTHWAIT;
    bl_timer_set(c->w->loop, &c->timer, BL_AUTH_WAIT_MS);
}

static void bl_conn_timeout(bl_timer_t *t)
{
    bl_conn_t *c = t->data;
    if (c->state == BL_CONN_AUTHWAIT) {
        bl_conn_auth_resume(c);
        return;
    }
    const char *what = c->state == BL_CONN_HANDSHAKE ? "TLS handshake"
                       : c->state == BL_CONN_BUSY    ? (c->req && c->req->phase == BL_REQ_PEEK
                                                            ? "request body" : "response delivery")
                       : c->timed_head               ? "request head"
                                                     : "idle keep-alive";
    bl_debug("closing connection from %s: %s timeout", c->sock->peer_ip, what);
    c->close_reason = c->state == BL_CONN_BUSY ? "timed out waiting for the client" : NULL;
    bl_conn_close(c);
}

static void bl_conn_on_io(bl_stream_t *s, unsigned events)
{
    (void)events;
    bl_conn_process(s->owner);
}

static void bl_conn_resume(bl_defer_t *d)
{
    bl_conn_process(d->data);
}

/* Maps a verified client certificate to an identity in table t, or notes
 * why not; the connection keeps a reference to t. */
void bl_conn_client_cert(bl_conn_t *c, bl_idtable_t *t)
{
    X509 *peer = SSL_get0_peer_certificate(c->sock->ssl);
    if (peer == NULL || c->cert_ids == t)
        return;
    bl_idtable_unref(c->cert_ids);
    c->cert_ids = bl_idtable_ref(t);
    c->cert_id = NULL;
    c->cert_err[0] = '\0';
    long vr = SSL_get_verify_result(c->sock->ssl);
    if (vr != X509_V_OK) {
        snprintf(c->cert_err, sizeof(c->cert_err), "client certificate not trusted: %s",
                 X509_verify_cert_error_string(vr));
        return;
    }
    c->cert_id = bl_identity_by_cert(bl_idtable_cfg(t), peer);
    if (c->cert_id == NULL)
        snprintf(c->cert_err, sizeof(c->cert_err), "client certificate maps to no identity");
}

/* Idle between requests: free what an idle connection does not need. */
static void bl_conn_idle(bl_conn_t *c)
{
    const bl_config_t *cfg = c->w->srv->cfg;
    c->state = BL_CONN_HEAD;
    c->timed_head = 0;
    if (bl_buf_size(&c->in) == 0)
        bl_buf_free(&c->in);
    if (bl_buf_size(&c->out) == 0)
        bl_buf_free(&c->out);
    bl_timer_set(c->w->loop, &c->timer, cfg->idle_timeout_ms);
}

void bl_conn_request_done(bl_conn_t *c)
{
    c->requests++;
    if (c->close_after || c->client_eof || c->w->draining) {
        bl_conn_close(c);
        return;
    }
    bl_conn_idle(c);
    c->again = 1; /* a pipelined request may already be buffered */
}

void bl_conn_drain(bl_conn_t *c)
{
    c->close_reason = "byline is shutting down";
    if (c->state == BL_CONN_HANDSHAKE || (c->state == BL_CONN_HEAD && bl_buf_size(&c->in) == 0))
        bl_conn_close(c);
    else
        c->close_after = 1;
}

/* Reads and parses a request head; hands a complete one to request.c. */
static void bl_conn_read_head(bl_conn_t *c)
{
    const bl_config_t *cfg = c->w->srv->cfg;
    for (;;) {
        if (bl_buf_size(&c->in)) {
            bl_http_request_t hr = { .headers = c->w->hdrs, .num_headers = cfg->max_headers };
            bl_http_err_t err = { 0, NULL };
            size_t avail = BL_MIN(bl_buf_size(&c->in), (size_t)cfg->max_header_bytes);
            int n = bl_http1_parse_request(bl_buf_data(&c->in), avail, &hr, &err);
            if (n > 0) {
                bl_timer_cancel(c->w->loop, &c->timer);
                bl_req_start(c, &hr, (size_t)n);
                c->again = 1;
                return;
            }
            if (n == BL_ERROR || avail >= cfg->max_header_bytes) {
                bl_timer_cancel(c->w->loop, &c->timer);
                bl_req_reject(c, n == BL_ERROR ? err.status : 431,
                              n == BL_ERROR ? err.reason : "request head larger than max_header_bytes");
                c->again = 1;
                return;
            }
        }
        size_t room;
        char *p = bl_buf_tail(&c->in, 4096, &room);
        if (p == NULL) {
            bl_conn_close(c);
            return;
        }
        long n = bl_stream_read(&c->sock->stream, p, room);
        if (n == BL_AGAIN)
            return;
        if (n <= 0) {
            bl_conn_close(c); /* EOF between requests is the normal end */
            return;
        }
        bl_buf_commit(&c->in, (size_t)n);
        if (!c->timed_head) {
            c->timed_head = 1;
            bl_timer_set(c->w->loop, &c->timer, cfg->header_timeout_ms);
        }
    }
}

/* While the request waits (for its body start or an upstream), keep
 * reading so a client that gives up is noticed. */
static void bl_conn_watch_client(bl_conn_t *c)
{
    bl_req_t *r = c->req;
    if (bl_conn_flush(c) == BL_ERROR) { /* a 100 Continue may be waiting */
        bl_conn_close(c);
        return;
    }
    while (!c->client_eof && bl_buf_size(&c->in) < c->in.max) {
        size_t room;
        char *p = bl_buf_tail(&c->in, 4096, &room);
        long n = p ? bl_stream_read(&c->sock->stream, p, room) : BL_AGAIN;
        if (n == BL_AGAIN)
            break;
        if (n <= 0) {
            c->client_eof = 1;
            break;
        }
        bl_buf_commit(&c->in, (size_t)n);
    }
    if (r->phase == BL_REQ_PEEK) {
        bl_req_peek(r);
        return;
    }
    if (c->client_eof) {
        bl_rec_reason(&r->rec, "the client closed the connection");
        r->rec.result = r->has_intent ? r->rec.result : BL_RESULT_ERROR;
        c->close_after = 1;
        bl_req_finish(r);
    }
}

static void bl_conn_busy(bl_conn_t *c)
{
    bl_req_t *r = c->req;
    switch (r->phase) {
    case BL_REQ_PEEK:
        bl_conn_watch_client(c);
        break;
    case BL_REQ_AUDIT:
    case BL_REQ_CONNECT:
        /* Short waits (one loop turn, connect_timeout at most): a client
         * that leaves now is noticed when the exchange starts reading. */
        break;
    case BL_REQ_EXCHANGE:
    case BL_REQ_TUNNEL:
        bl_exchange_run(r);
        break;
    case BL_REQ_REPLY: {
        int rc = bl_conn_flush(c);
        if (rc == BL_OK)
            bl_req_finish(r);
        else if (rc == BL_ERROR)
            bl_conn_close(c);
        break;
    }
    }
}

static void bl_conn_step(bl_conn_t *c)
{
    const char *err = NULL;
    switch (c->state) {
    case BL_CONN_HANDSHAKE: {
        int rc = bl_sock_handshake(c->sock, &err);
        if (rc == BL_AGAIN)
            return;
        if (rc != BL_OK) {
            bl_debug("TLS handshake with %s failed: %s", c->sock->peer_ip, err);
            bl_conn_close(c);
            return;
        }
        bl_conn_client_cert(c, bl_idcache_get(c->w->srv->idreg, &c->w->ids));
        c->state = BL_CONN_HEAD;
        c->again = 1;
        return;
    }
    case BL_CONN_HEAD:
        bl_conn_read_head(c);
        return;
    case BL_CONN_BUSY:
        bl_conn_busy(c);
        return;
    default:
        return;
    }
}

void bl_conn_process(bl_conn_t *c)
{
    if (c->processing) {
        c->again = 1;
        return;
    }
    c->processing = 1;
    do {
        c->again = 0;
        bl_conn_step(c);
    } while (c->again && c->state != BL_CONN_CLOSED);
    c->processing = 0;
}

void bl_conn_accept(bl_worker_t *w, int fd)
{
    const bl_config_t *cfg = w->srv->cfg;
    if (w->nconns >= cfg->max_connections || w->draining) {
        close(fd);
        return;
    }
    bl_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->sock = bl_sock_accept(w->loop, fd, w->srv->tls);
    if (c->sock == NULL) {
        free(c);
        return;
    }
    c->w = w;
    c->state = BL_CONN_HANDSHAKE;
    c->sock->stream.on_io = bl_conn_on_io;
    c->sock->stream.owner = c;
    bl_buf_init(&c->in, BL_MAX((size_t)cfg->max_header_bytes, (size_t)BL_PEEK_MAX) + 4096);
    bl_buf_init(&c->out, BL_IO_BUF_MAX + 4096);
    c->timer.cb = bl_conn_timeout;
    c->timer.data = c;
    c->resume.cb = bl_conn_resume;
    c->resume.data = c;
    c->auth_wait.loop = w->loop;
    c->auth_wait.done = bl_conn_auth_done;
    c->auth_wait.data = c;
    bl_timer_set(w->loop, &c->timer, cfg->header_timeout_ms);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    bl_metric_add(BL_M_CONNECTIONS_OPEN, 1);
    bl_metric_add(BL_M_CONNECTIONS_TOTAL, 1);
}
