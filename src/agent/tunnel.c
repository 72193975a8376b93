/*
 * tunnel.c - one tunnelled request at the agent, as the bl_stream_t the
 * HTTP/2 mux pumps: bytes the gateway sends are written into it, bytes
 * from the API server are read out of it.
 *
 *   HEAD        collect the request head (bounded), check and rewrite it
 *   CRED        the credential is being minted off the loop (kubernetes-eks):
 *               ask again every BL_TUN_CRED_POLL_MS; later bytes wait in head
 *   CONNECTING  TCP + TLS to the API server; later bytes wait in `up`
 *   OPEN        relay both ways; towards the API server only the first
 *               request's body, then nothing unless the API server answered
 *               101 (then raw both ways, half-close passed on). A plain
 *               request's response is followed to its end (its framing)
 *   DONE        that response ended: EOF to the mux; the API server
 *               connection went back to the pool (pool.c) if it can carry
 *               another request, else it was closed
 *   REPLY       the agent answers itself (refused head, API server
 *               unreachable): a Status response, then EOF
 *   CLOSED      the gateway sent bytes after the request: both ends fail
 *
 * State changes notify the mux through a deferred callback, never from
 * inside read()/write(), which nghttp2 may be calling.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include "agent/pool.h"
#include "agent/rewrite.h"
#include "agent/tunnel.h"
#include "core/log.h"
#include "net/sock.h"

#define BL_TUN_HEAD_MAX    (64 * 1024)
#define BL_TUN_UP_MAX      (256 * 1024)
#define BL_TUN_CONNECT_MS  10000
#define BL_TUN_MAX_HEADERS 256
#define BL_TUN_CRED_POLL_MS 50
#define BL_TUN_CRED_POLLS  600      /* 30 s: a few STS round trips with their timeouts */
#define BL_TUN_RESEND_MAX  (64 * 1024) /* a request kept to send again if its pooled connection was dead */

enum { BL_TUN_HEAD, BL_TUN_CRED, BL_TUN_CONNECTING, BL_TUN_OPEN, BL_TUN_REPLY, BL_TUN_CLOSED, BL_TUN_DONE };

typedef struct {
    bl_stream_t stream;         /* must stay first: what the mux holds */
    bl_loop_t *loop;
    bl_agentconn_t *conn;
    int state;
    bl_buf_t head;              /* HEAD: the request head so far */
    bl_buf_t up;                /* bytes for the API server not yet written */
    bl_buf_t reply;             /* REPLY: our answer, read out by the mux */
    bl_sock_t *sock;            /* the API server */
    int want_shut, up_shut;
    int released;
    bl_defer_t notify;          /* tell the mux something changed */
    bl_defer_t reaper;
    bl_timer_t timer;           /* connect timeout; CRED: the next try */
    unsigned polls;             /* CRED: tries so far */
    bl_tunnel_body_t body;      /* where the one request ends */
    int upgrade;                /* the request asks to switch protocols */
    int switched;               /* upgrade: 0 no answer yet, 1 got 101, -1 not 101 */
    char resp[12];              /* upgrade: the response's first bytes */
    size_t resp_n;
    /* Plain requests: the response followed to its end, for the pool. */
    char method[16];            /* the request's method (HEAD has no body) */
    int track;                  /* 1 while the connection may go back to the pool */
    bl_buf_t rhead;             /* the response head so far */
    int rbody_on;               /* the head was read: rbody says where the body ends */
    bl_tunnel_body_t rbody;
    int pooled;                 /* the connection came from the pool: may be dead */
    bl_buf_t resend;            /* pooled: what was sent, to send again on a fresh one */
    int fresh;                  /* sending again: not from the pool */
} bl_tun_t;

static void bl_tn_head_done(bl_tun_t *t, const bl_http_request_t *hr, size_t n);

static void bl_tn_notify_cb(bl_defer_t *d)
{
    bl_tun_t *t = d->data;
    if (!t->released && t->stream.on_io)
        t->stream.on_io(&t->stream, BL_IO_READ | BL_IO_WRITE);
}

static void bl_tn_notify(bl_tun_t *t)
{
    bl_loop_defer(t->loop, &t->notify);
}

/* Drops the API server connection and what waits for it, and moves to
 * `state` (REPLY or CLOSED), telling the mux. */
static void bl_tn_stop(bl_tun_t *t, int state)
{
    if (t->sock) {
        bl_sock_close(t->sock);
        t->sock = NULL;
    }
    bl_timer_cancel(t->loop, &t->timer);
    bl_buf_free(&t->up);
    bl_buf_free(&t->head);
    t->state = state;
    bl_tn_notify(t);
}

/* Switches to answering with a Status of our own (502 unless given). */
static void bl_tn_reply(bl_tun_t *t, int code, const char *msg)
{
    char body[640];
    const char *phrase = code == 403 ? "Forbidden" : code == 400 ? "Bad Request" : code == 431 ? "Request Header Fields Too Large" : "Bad Gateway";
    const char *reason = code == 403 ? "Forbidden" : code == 400 ? "BadRequest" : code == 431 ? "RequestHeaderFieldsTooLarge" : "ServiceUnavailable";
    bl_buf_t b = { .base = body, .cap = sizeof(body), .max = sizeof(body) };
    bl_buf_puts(&b, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":");
    bl_buf_json_str(&b, msg, strlen(msg));
    bl_buf_printf(&b, ",\"reason\":\"%s\",\"code\":%d}\n", reason, code);
    bl_buf_reset(&t->reply);
    bl_buf_printf(&t->reply, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             "Content-Length: %zu\r\n\r\n", code, phrase, b.len);
    bl_buf_append(&t->reply, body, b.len);
    bl_warn("connection %s: answered %d: %s", t->conn->name, code, msg);
    bl_tn_stop(t, BL_TUN_REPLY);
}

/* Stops relaying after the gateway broke the one-request rule: the API
 * server connection closes and both reads and writes fail, so the mux
 * resets the stream. Returns BL_ERROR for the caller to pass on. */
static long bl_tn_close(bl_tun_t *t, const char *why)
{
    bl_warn("connection %s: closing the tunnel: %s; nothing after the first request is forwarded",
            t->conn->name, why);
    bl_tn_stop(t, BL_TUN_CLOSED);
    return BL_ERROR;
}

/* Writes `up` to the API server; passes a half-close on once it is out. */
static void bl_tn_flush(bl_tun_t *t)
{
    if (t->sock == NULL)
        return;
    while (bl_buf_size(&t->up)) {
        long w = bl_stream_write(&t->sock->stream, bl_buf_data(&t->up), bl_buf_size(&t->up));
        if (w == BL_AGAIN)
            return;
        if (w < 0) {
            bl_buf_reset(&t->up);
            return; /* the read side reports the failure */
        }
        if (t->pooled == 1 && bl_buf_append(&t->resend, bl_buf_data(&t->up), (size_t)w) != BL_OK)
            t->pooled = -1; /* too large to send again */
        bl_buf_consume(&t->up, (size_t)w);
        bl_tn_notify(t); /* room again for the mux's bytes */
    }
    bl_buf_free(&t->up);
    if (t->want_shut && !t->up_shut && !t->track) /* a followed request ends without a FIN */
        t->up_shut = bl_stream_shutdown_wr(&t->sock->stream) != BL_AGAIN;
}

static void bl_tn_sock_io(bl_stream_t *s, unsigned events)
{
    bl_tun_t *t = s->owner;
    const char *err = NULL;
    (void)events;
    if (t->state == BL_TUN_CONNECTING) {
        int rc = bl_sock_handshake(t->sock, &err);
        if (rc == BL_AGAIN)
            return;
        if (rc != BL_OK) {
            char msg[400];
            snprintf(msg, sizeof(msg), "byline agent: cannot reach the API server %s: %s", t->conn->server, err);
            bl_tn_reply(t, 502, msg);
            return;
        }
        bl_timer_cancel(t->loop, &t->timer);
        t->state = BL_TUN_OPEN;
    }
    bl_tn_flush(t);
    if (t->stream.on_io)
        t->stream.on_io(&t->stream, events);
}

static void bl_tn_timeout(bl_timer_t *tm)
{
    bl_tun_t *t = tm->data;
    bl_tn_reply(t, 502, "byline agent: timed out connecting to the API server");
}

/* Keeps the API server's newest resumable session (TLS 1.3 tickets come
 * after the handshake): the next tunnel's handshake resumes it, without a
 * certificate check or key exchange signature. The agent has one thread. */
static int bl_tn_new_session(SSL *ssl, SSL_SESSION *sess)
{
    bl_sock_t *s = SSL_get_app_data(ssl);
    bl_agentconn_t *c = s ? s->recycle_data : NULL;
    if (c == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION_free(c->session);
    c->session = sess;
    return 1; /* we hold the reference now */
}

/* Takes an idle connection to the API server from the pool. Returns 1 if
 * it did (OPEN, the request on its way), else 0. */
static int bl_tn_reuse(bl_tun_t *t)
{
    bl_sock_t *s = t->track && !t->fresh ? bl_agentpool_take(t->conn) : NULL;
    if (s == NULL)
        return 0;
    t->sock = s;
    s->recycle_data = t->conn;
    s->stream.on_io = bl_tn_sock_io;
    s->stream.owner = t;
    /* Kept to send again if this connection turns out dead: only requests
     * that may go twice (bl_tn_resend). */
    t->pooled = strcmp(t->method, "GET") == 0 || strcmp(t->method, "HEAD") == 0 ||
                strcmp(t->method, "OPTIONS") == 0 ? 1 : -1;
    bl_buf_init(&t->resend, t->pooled == 1 ? BL_TUN_RESEND_MAX : 0);
    t->state = BL_TUN_OPEN;
    bl_tn_flush(t);
    bl_tn_notify(t);
    return 1;
}

/* Starts TCP + TLS to the connection's API server, unless a pooled
 * connection can take the request. */
static void bl_tn_connect(bl_tun_t *t)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[16], msg[400];
    const char *err = NULL;
    const bl_url_t *u = &t->conn->url;
    if (bl_tn_reuse(t))
        return;
    snprintf(port, sizeof(port), "%d", u->port);
    if (getaddrinfo(u->host, port, &hints, &ai) != 0 || ai == NULL) {
        snprintf(msg, sizeof(msg), "byline agent: cannot resolve the API server's host %s", u->host);
        bl_tn_reply(t, 502, msg);
        return;
    }
    SSL_CTX_sess_set_new_cb(t->conn->ctx, bl_tn_new_session);
    t->sock = bl_sock_connect(t->loop, ai->ai_addr, ai->ai_addrlen, t->conn->ctx,
                              t->conn->server_name ? t->conn->server_name : u->host, t->conn->session, &err);
    freeaddrinfo(ai);
    if (t->sock == NULL) {
        snprintf(msg, sizeof(msg), "byline agent: cannot reach the API server %s: %s", t->conn->server, err);
        bl_tn_reply(t, 502, msg);
        return;
    }
    t->sock->recycle_data = t->conn; /* for bl_tn_new_session; no recycle: never pooled */
    t->sock->stream.on_io = bl_tn_sock_io;
    t->sock->stream.owner = t;
    t->state = BL_TUN_CONNECTING;
    t->timer.cb = bl_tn_timeout;
    t->timer.data = t;
    bl_timer_set(t->loop, &t->timer, BL_TUN_CONNECT_MS);
}

/* CRED: parses the held head again and retries the rewrite. */
static void bl_tn_cred_retry(bl_timer_t *tm)
{
    bl_tun_t *t = tm->data;
    bl_http_header_t hdrs[BL_TUN_MAX_HEADERS];
    bl_http_request_t hr = { .headers = hdrs, .num_headers = BL_TUN_MAX_HEADERS };
    bl_http_err_t err;
    int r = bl_http1_parse_request(bl_buf_data(&t->head), bl_buf_size(&t->head), &hr, &err);
    if (r <= 0) /* it parsed before */
        bl_tn_reply(t, 400, "byline agent: malformed request head");
    else if (++t->polls > BL_TUN_CRED_POLLS)
        bl_tn_reply(t, 502, "byline agent: timed out waiting for the connection's credential (see the agent's log)");
    else
        bl_tn_head_done(t, &hr, (size_t)r);
}

/* HEAD, CRED: a complete head is in t->head. Rewrites it into `up` with
 * any body bytes after it, and connects; or waits in CRED for the
 * credential. */
static void bl_tn_head_done(bl_tun_t *t, const bl_http_request_t *hr, size_t n)
{
    int status, rc;
    const char *why;
    if (t->up.max == 0)
        bl_buf_init(&t->up, BL_TUN_UP_MAX + BL_TUN_HEAD_MAX);
    bl_buf_reset(&t->up);
    if ((rc = bl_tunnel_rewrite(hr, t->conn, &t->up, &status, &why)) == BL_AGAIN) {
        t->state = BL_TUN_CRED;
        t->timer.cb = bl_tn_cred_retry;
        t->timer.data = t;
        bl_timer_set(t->loop, &t->timer, BL_TUN_CRED_POLL_MS);
        return;
    }
    if (rc != BL_OK) {
        bl_tn_reply(t, status, why);
        return;
    }
    bl_http_err_t err;
    char msg[200];
    size_t rest = bl_buf_size(&t->head) - n;
    long k = bl_tunnel_body_init(&t->body, hr, &err) == BL_OK
                 ? bl_tunnel_body_take(&t->body, bl_buf_data(&t->head) + n, rest, &err) : BL_ERROR;
    if (k < 0) {
        snprintf(msg, sizeof(msg), "byline agent: the request's body framing is refused: %s", err.reason);
        bl_tn_reply(t, 400, msg);
        return;
    }
    if ((size_t)k < rest) { /* nothing is forwarded yet: answer in-band */
        bl_tn_reply(t, 400, "byline agent: bytes after the request's body (one request per tunnel)");
        return;
    }
    t->upgrade = bl_tunnel_is_upgrade(hr);
    t->track = !t->upgrade;
    snprintf(t->method, sizeof(t->method), "%.*s", (int)BL_MIN(hr->method.len, sizeof(t->method) - 1), hr->method.p);
    bl_buf_append(&t->up, bl_buf_data(&t->head) + n, rest);
    bl_buf_free(&t->head);
    bl_tn_connect(t);
}

/* HEAD: takes bytes until the head is complete. Returns bytes taken. */
static long bl_tn_take_head(bl_tun_t *t, const char *p, size_t n)
{
    bl_http_header_t hdrs[BL_TUN_MAX_HEADERS];
    bl_http_request_t hr = { .headers = hdrs, .num_headers = BL_TUN_MAX_HEADERS };
    bl_http_err_t err;
    size_t take = BL_MIN(n, BL_TUN_HEAD_MAX - bl_buf_size(&t->head));
    bl_buf_append(&t->head, p, take);
    int r = bl_http1_parse_request(bl_buf_data(&t->head), bl_buf_size(&t->head), &hr, &err);
    if (r > 0)
        bl_tn_head_done(t, &hr, (size_t)r);
    else if (r == BL_ERROR)
        bl_tn_reply(t, 400, "byline agent: malformed request head");
    else if (bl_buf_size(&t->head) >= BL_TUN_HEAD_MAX)
        bl_tn_reply(t, 431, "byline agent: request head too large");
    return (long)take;
}

/* Queues bytes for the API server behind what waits. Returns bytes taken or BL_AGAIN. */
static long bl_tn_queue(bl_tun_t *t, const char *p, size_t n)
{
    if (bl_buf_size(&t->up) >= BL_TUN_UP_MAX)
        return BL_AGAIN;
    size_t take = BL_MIN(n, BL_TUN_UP_MAX - bl_buf_size(&t->up));
    if (t->up.max == 0)
        bl_buf_init(&t->up, BL_TUN_UP_MAX + BL_TUN_HEAD_MAX);
    return bl_buf_append(&t->up, p, take) == BL_OK ? (long)take : BL_AGAIN;
}

/* CONNECTING, OPEN: bytes after the head. Passes on the rest of the
 * request's body, then nothing until a 101 (raw from then on). Returns
 * bytes taken, BL_AGAIN, or BL_ERROR once the tunnel is closed. */
static long bl_tn_body(bl_tun_t *t, const char *p, size_t n)
{
    bl_http_err_t err;
    if (t->state == BL_TUN_OPEN)
        bl_tn_flush(t);
    if (t->switched > 0) {
        if (t->state == BL_TUN_OPEN && bl_buf_size(&t->up) == 0)
            return bl_stream_write(&t->sock->stream, p, n);
        return bl_tn_queue(t, p, n);
    }
    if (n == 0)
        return 0;
    if (!t->body.done) {
        if (bl_buf_size(&t->up) >= BL_TUN_UP_MAX)
            return BL_AGAIN;
        long k = bl_tunnel_body_take(&t->body, p, BL_MIN(n, BL_TUN_UP_MAX - bl_buf_size(&t->up)), &err);
        if (k < 0)
            return bl_tn_close(t, err.reason);
        if (k > 0) {
            bl_tn_queue(t, p, (size_t)k); /* room checked above: takes all k */
            if (t->state == BL_TUN_OPEN)
                bl_tn_flush(t);
            return k;
        }
    }
    if (t->upgrade && t->switched == 0)
        return BL_AGAIN; /* the API server's answer decides; bl_tn_saw_status notifies */
    return bl_tn_close(t, "the gateway sent bytes after the request's body");
}

/* Upgrade: notes the response's first bytes; "HTTP/1.1 101" lets raw
 * bytes through towards the API server. n == 0 is EOF. */
static void bl_tn_saw_status(bl_tun_t *t, const char *p, size_t n)
{
    size_t k = BL_MIN(n, sizeof(t->resp) - t->resp_n);
    memcpy(t->resp + t->resp_n, p, k);
    t->resp_n += k;
    if (t->resp_n == sizeof(t->resp) || n == 0) {
        t->switched = t->resp_n == sizeof(t->resp) && memcmp(t->resp, "HTTP/1.1 101", sizeof(t->resp)) == 0 ? 1 : -1;
        bl_tn_notify(t);
    }
}

static long bl_tn_write(bl_stream_t *s, const void *p, size_t n)
{
    bl_tun_t *t = (bl_tun_t *)s;
    if (t->state == BL_TUN_HEAD)
        return bl_tn_take_head(t, p, n);
    if (t->state == BL_TUN_CRED) { /* body bytes wait behind the head */
        size_t take = BL_MIN(n, BL_TUN_HEAD_MAX - bl_buf_size(&t->head));
        return take && bl_buf_append(&t->head, p, take) == BL_OK ? (long)take : BL_AGAIN;
    }
    if (t->state == BL_TUN_REPLY || t->state == BL_TUN_DONE)
        return (long)n; /* answered (by us, or in full before the body was out): the rest is dropped */
    if (t->state == BL_TUN_CLOSED)
        return BL_ERROR;
    return bl_tn_body(t, p, n);
}

/* The response head `res` is complete: decides where its body ends.
 * Returns 1 if the connection can be followed to that end and reused, 0 to
 * stop following (interim 1xx, HTTP/1.0, "Connection: close", a body that
 * ends with the connection, framing the gateway's parser will refuse). */
static int bl_tn_resp_head(bl_tun_t *t, const bl_http_response_t *res)
{
    bl_body_t body;
    bl_http_err_t err;
    size_t pos = 0;
    const bl_http_header_t *h;
    bl_str_t method = { t->method, strlen(t->method) };
    if (res->minor_version != 1 || res->status < 200)
        return 0;
    while ((h = bl_http_find(res->headers, res->num_headers, "connection", &pos)) != NULL)
        if (bl_http_has_token(h->value, "close"))
            return 0;
    if (bl_http1_response_body(res, method, &body, &err) != BL_OK || body.kind == BL_BODY_CLOSE)
        return 0;
    bl_tunnel_body_from(&t->rbody, &body);
    return 1;
}

/* Follows the response through bytes read from the API server, p[0..n).
 * Returns how many of them to pass on: all, or those up to the response's
 * end (a server that sends more than it framed loses the connection). */
static size_t bl_tn_follow(bl_tun_t *t, const char *p, size_t n)
{
    size_t used = 0;
    bl_http_err_t err;
    if (!t->rbody_on) {
        bl_http_header_t hdrs[BL_TUN_MAX_HEADERS];
        bl_http_response_t res = { .headers = hdrs, .num_headers = BL_TUN_MAX_HEADERS };
        size_t had = bl_buf_size(&t->rhead), take = BL_MIN(n, BL_TUN_HEAD_MAX - had);
        int r;
        if (had == 0) { /* usually the whole head comes in one read: parse it where it is */
            r = bl_http1_parse_response(p, take, &res, &err);
            if (r == BL_AGAIN) {
                bl_buf_init(&t->rhead, BL_TUN_HEAD_MAX);
                bl_buf_append(&t->rhead, p, take);
            }
        } else {
            bl_buf_append(&t->rhead, p, take);
            r = bl_http1_parse_response(bl_buf_data(&t->rhead), bl_buf_size(&t->rhead), &res, &err);
        }
        if (r == BL_AGAIN && take == n)
            return n; /* more head to come */
        int ok = r > 0 && bl_tn_resp_head(t, &res);
        bl_buf_free(&t->rhead);
        if (!ok) {
            t->track = 0; /* relayed as it comes; the connection closes with the tunnel */
            return n;
        }
        used = (size_t)r - had;
        t->rbody_on = 1;
    }
    long k = bl_tunnel_body_take(&t->rbody, p + used, n - used, &err);
    if (k < 0) {
        t->track = 0;
        return n;
    }
    used += (size_t)k;
    if (t->rbody.done && used < n)
        t->track = 0;
    return t->rbody.done ? used : n;
}

/* The response ended: the connection goes back to the pool if the request
 * went out whole and nothing else is pending on it, else it closes. The
 * mux reads EOF from now on. */
static void bl_tn_done(bl_tun_t *t)
{
    bl_sock_t *s = t->sock;
    t->sock = NULL;
    t->state = BL_TUN_DONE;
    bl_buf_free(&t->resend);
    if (t->track && t->body.done && bl_buf_size(&t->up) == 0 && !t->up_shut)
        bl_agentpool_put(t->conn, t->loop, s);
    else
        bl_sock_close(s);
    bl_tn_notify(t);
}

/* A pooled connection ended before any byte of the response: the API
 * server closed it while it was idle. A GET, HEAD or OPTIONS (pooled == 1)
 * goes again, whole, on a new connection. Returns 1 if it was sent again. */
static int bl_tn_resend(bl_tun_t *t)
{
    if (t->pooled != 1 || t->want_shut || t->rbody_on || bl_buf_size(&t->rhead) || bl_buf_size(&t->up))
        return 0;
    bl_sock_close(t->sock);
    t->sock = NULL;
    t->pooled = 0;
    bl_buf_free(&t->up);
    t->up = t->resend; /* what was sent, whole */
    bl_buf_init(&t->resend, 0);
    bl_info("connection %s: a pooled connection to the API server was closed; sending the %s again on a new one",
            t->conn->name, t->method);
    t->fresh = 1;
    bl_tn_connect(t);
    return 1;
}

static long bl_tn_read(bl_stream_t *s, void *p, size_t n)
{
    bl_tun_t *t = (bl_tun_t *)s;
    if (t->state == BL_TUN_REPLY) {
        size_t k = BL_MIN(n, bl_buf_size(&t->reply));
        memcpy(p, bl_buf_data(&t->reply), k);
        bl_buf_consume(&t->reply, k);
        return (long)k; /* 0 once it is all out: EOF */
    }
    if (t->state == BL_TUN_CLOSED)
        return BL_ERROR;
    if (t->state == BL_TUN_DONE)
        return 0;
    if (t->state != BL_TUN_OPEN)
        return BL_AGAIN;
    long r = bl_stream_read(&t->sock->stream, p, n);
    if (t->upgrade && t->switched == 0 && r >= 0)
        bl_tn_saw_status(t, p, (size_t)r);
    if ((r == 0 || r == BL_ERROR) && bl_tn_resend(t))
        return BL_AGAIN;
    if (r > 0 && t->track) {
        if (t->pooled == 1) { /* answered: nothing to send again */
            t->pooled = -1;
            bl_buf_free(&t->resend);
        }
        r = (long)bl_tn_follow(t, p, (size_t)r);
        if (t->rbody_on && t->rbody.done)
            bl_tn_done(t);
    }
    return r;
}

static int bl_tn_shutdown_wr(bl_stream_t *s)
{
    bl_tun_t *t = (bl_tun_t *)s;
    t->want_shut = 1;
    /* The gateway half-closes a plain request's tunnel only when its client
     * went away: the API server must see the FIN (a watch ends on it), and
     * the connection is done for. */
    t->track = 0;
    if (t->state == BL_TUN_HEAD) { /* the gateway gave up before a whole head: nothing to do */
        bl_buf_free(&t->head);
        t->state = BL_TUN_REPLY;
        bl_tn_notify(t);
    } else if (t->state == BL_TUN_OPEN) {
        bl_tn_flush(t);
    }
    return BL_OK; /* CONNECTING: passed on once open (bl_tn_flush) */
}

static void bl_tn_reap(bl_defer_t *d)
{
    free(d->data);
}

static void bl_tn_release(bl_stream_t *s, int reusable)
{
    bl_tun_t *t = (bl_tun_t *)s;
    (void)reusable;
    t->released = 1;
    if (t->sock)
        bl_sock_close(t->sock);
    t->sock = NULL;
    bl_timer_cancel(t->loop, &t->timer);
    bl_loop_undefer(t->loop, &t->notify);
    bl_buf_free(&t->head);
    bl_buf_free(&t->up);
    bl_buf_free(&t->reply);
    bl_buf_free(&t->rhead);
    bl_buf_free(&t->resend);
    t->reaper.cb = bl_tn_reap;
    t->reaper.data = t;
    bl_loop_defer(t->loop, &t->reaper);
}

static const bl_stream_ops_t bl_tn_ops = {
    .kind = "tunnel",
    .read = bl_tn_read,
    .write = bl_tn_write,
    .shutdown_wr = bl_tn_shutdown_wr,
    .release = bl_tn_release,
};

bl_stream_t *bl_tunnel_new(bl_loop_t *loop, bl_agentconn_t *conn)
{
    bl_tun_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->stream.ops = &bl_tn_ops;
    t->loop = loop;
    t->conn = conn;
    t->state = BL_TUN_HEAD;
    bl_buf_init(&t->head, BL_TUN_HEAD_MAX);
    bl_buf_init(&t->reply, 2048);
    t->notify.cb = bl_tn_notify_cb;
    t->notify.data = t;
    return &t->stream;
}
