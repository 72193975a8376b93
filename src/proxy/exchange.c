/*
 * exchange.c - moving one request's bytes: the request body up, the
 * response head and body down, and after a 101 a raw tunnel both ways.
 *
 * Nothing the client framed reaches the upstream verbatim, and nothing
 * the upstream framed reaches the client verbatim (but for the 101 head,
 * relayed unchanged): heads are rebuilt, chunked bodies are decoded and
 * re-encoded, and lengths are counted. Whatever either side sends past
 * the end of its message is never passed on as part of this one. That is
 * what makes smuggling impossible in both directions.
 *
 * Buffers: c->in (client bytes), r->qout (re-chunked request body),
 * r->uin (upstream bytes), c->out (our heads and chunk framing). Raw
 * bodies go straight from c->in to the upstream and from r->uin to the
 * client, without a copy.
 */
#include <stdio.h>
#include "core/log.h"
#include "kube/tap.h"
#include "proxy/proxy.h"

#define BL_MAX_RETRIES 3
#define BL_FILL_MIN    (32 * 1024)
#define BL_COALESCE_MAX (16 * 1024)
#define BL_MAX_1XX      8

static void bl_ex_attach(bl_req_t *r, bl_stream_t *s, int pooled);

/* Reads from a stream into the tail of `b`. Returns bytes read (> 0),
 * 0 at EOF, BL_AGAIN (including "buffer full"), or BL_ERROR. Room for a
 * whole TLS record (16 KiB) is made first: smaller reads would be relayed
 * as smaller records, costing a write(2) and a record header each. */
static long bl_ex_fill(bl_stream_t *s, bl_buf_t *b)
{
    size_t room;
    char *p = bl_buf_tail(b, BL_FILL_MIN, &room);
    if (p == NULL)
        return BL_AGAIN;
    long n = bl_stream_read(s, p, room);
    if (n > 0)
        bl_buf_commit(b, (size_t)n);
    return n;
}

/* Writes up to n bytes of p to s. Returns bytes written (>= 0; 0 means
 * "would block") or BL_ERROR. */
static long bl_ex_put(bl_stream_t *s, const char *p, size_t n)
{
    long w = n ? bl_stream_write(s, p, n) : 0;
    return w == BL_AGAIN ? 0 : w;
}

/* Appends one chunk of the chunked coding: size line, data, CRLF. The
 * callers leave 64 bytes of headroom, so this cannot fail. */
static void bl_ex_chunk(bl_buf_t *out, bl_str_t span)
{
    bl_buf_puthex(out, span.len);
    bl_buf_append(out, "\r\n", 2);
    bl_buf_append(out, span.p, span.len);
    bl_buf_append(out, "\r\n", 2);
}

/* --- the exec tap --- */

/* How much of this exec/attach session to capture (0: nothing): the
 * connection's capture_max when it sets one, else audit.capture_max.
 * Policy hook: a rule that asks for (or forbids) capture decides here. */
static size_t bl_ex_capture_max(const bl_req_t *r)
{
    const bl_connection_t *conn = r->connection;
    if (r->portforward)
        return 0; /* tunnelled TCP, not a terminal: nothing to replay */
    if (conn && conn->capture_set)
        return conn->capture_max;
    return r->conn->w->srv->cfg->audit_capture_max;
}

/* Feeds the tap; a capturing tap first learns the time since the request
 * arrived (the capture's time 0 is the record's ts). */
static void bl_ex_tap_feed(bl_req_t *r, int dir, const char *p, size_t n)
{
    if (bl_tap_capturing(r->tap)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        bl_tap_clock(r->tap, (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u - r->rec.start_us);
    }
    bl_tap_feed(r->tap, dir, p, n);
}

/* --- connecting --- */

static void bl_ex_connected(bl_upwait_t *w, bl_stream_t *s, const char *err)
{
    bl_req_t *r = w->data;
    bl_conn_t *c = r->conn;
    if (s == NULL)
        bl_exchange_abort(r, err);
    else
        bl_ex_attach(r, s, 0);
    bl_conn_process(c);
}

void bl_exchange_connect(bl_req_t *r)
{
    bl_stream_t *s = NULL;
    const char *err = NULL;
    r->phase = BL_REQ_CONNECT;
    r->wait.cb = bl_ex_connected;
    r->wait.data = r;
    int rc = r->up->ops->open(r->up, &r->wait, &s, &err);
    if (rc == BL_OK) {
        bl_ex_attach(r, s, 1);
    } else if (rc == BL_DECLINED) { /* unavailable for now (no agent online): a byline refusal */
        bl_rec_reason(&r->rec, "%s", err);
        r->rec.result = BL_RESULT_ERROR;
        r->conn->close_after = r->conn->close_after || r->qbody.kind == BL_BODY_CHUNKED ||
                               (r->qbody.kind == BL_BODY_LENGTH && r->qbody.length > 0);
        bl_reply_status(r, 503, "ServiceUnavailable", "byline: %s", err);
    } else if (rc != BL_AGAIN) {
        bl_exchange_abort(r, err);
    }
}

static void bl_ex_on_io(bl_stream_t *s, unsigned events)
{
    bl_req_t *r = s->owner;
    (void)events;
    bl_conn_process(r->conn);
}

static void bl_ex_attach(bl_req_t *r, bl_stream_t *s, int pooled)
{
    r->us = s;
    r->us_pooled = pooled;
    s->on_io = bl_ex_on_io;
    s->owner = r;
    r->phase = BL_REQ_EXCHANGE;
    r->conn->again = 1;
}

/* A pooled connection died before answering: most likely the server
 * closed it while idle. Sending the request again is only safe when the
 * server cannot have acted on it: its head never went out whole, or it is
 * a read (GET, HEAD, OPTIONS) and not an upgrade. An exec or a DELETE
 * whose head was delivered is never re-sent (net/http's rule too). */
static int bl_ex_retry(bl_req_t *r)
{
    int head_unsent = r->uhead_sent < bl_buf_size(&r->uhead);
    int safe = !r->upgrade && (bl_str_eq(r->method, "GET") || bl_str_eq(r->method, "HEAD") ||
                               bl_str_eq(r->method, "OPTIONS"));
    if (!r->us_pooled || r->rhead_done || bl_buf_size(&r->uin) || r->rec.bytes_in || r->client_fault ||
        r->retries >= BL_MAX_RETRIES || !(head_unsent || safe))
        return BL_DECLINED;
    bl_stream_release(r->us, 0);
    r->us = NULL;
    r->uhead_sent = 0;
    r->upstream_eof = 0;   /* the new connection may be pooled again */
    r->rec.reason[0] = '\0'; /* the dead one's "closed before answering" */
    r->retries++;
    bl_exchange_connect(r);
    return BL_OK;
}

/* --- client -> upstream --- */

static int bl_ex_send_head(bl_req_t *r)
{
    int progress = 0;
    while (r->uhead_sent < bl_buf_size(&r->uhead)) {
        long w = bl_ex_put(r->us, bl_buf_data(&r->uhead) + r->uhead_sent, bl_buf_size(&r->uhead) - r->uhead_sent);
        if (w <= 0)
            return w < 0 ? BL_ERROR : progress;
        r->uhead_sent += (size_t)w;
        progress = 1;
    }
    return progress;
}

/* Raw bytes from c->in to the upstream, at most `limit`. */
static int bl_ex_send_raw(bl_req_t *r, uint64_t *limit)
{
    bl_conn_t *c = r->conn;
    size_t n = (size_t)BL_MIN((uint64_t)bl_buf_size(&c->in), *limit);
    long w = bl_ex_put(r->us, bl_buf_data(&c->in), n);
    if (w <= 0)
        return w < 0 ? BL_ERROR : 0;
    if (r->tap)
        bl_ex_tap_feed(r, BL_TAP_UP, bl_buf_data(&c->in), (size_t)w);
    bl_buf_consume(&c->in, (size_t)w);
    *limit -= (uint64_t)w;
    r->rec.bytes_in += (uint64_t)w;
    return 1;
}

/* Decodes the client's chunks from c->in and re-encodes them into qout. */
static int bl_ex_rechunk_request(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    int progress = 0;
    while (!r->qchunk.done && bl_buf_size(&c->in) > 0 && r->qout.max - bl_buf_size(&r->qout) > 64) {
        bl_str_t span;
        bl_http_err_t err;
        size_t avail = BL_MIN(bl_buf_size(&c->in), r->qout.max - bl_buf_size(&r->qout) - 64);
        long k = bl_chunked_decode(&r->qchunk, bl_buf_data(&c->in), avail, &span, &err);
        if (k < 0) {
            bl_rec_reason(&r->rec, "malformed chunked request body: %s", err.reason);
            r->client_fault = 1;
            return BL_ERROR;
        }
        if (span.len)
            bl_ex_chunk(&r->qout, span);
        r->rec.bytes_in += span.len;
        bl_buf_consume(&c->in, (size_t)k);
        if (r->qchunk.done)
            bl_buf_puts(&r->qout, "0\r\n\r\n");
        progress = 1;
        if (k == 0)
            break;
    }
    while (bl_buf_size(&r->qout) > 0) {
        long w = bl_ex_put(r->us, bl_buf_data(&r->qout), bl_buf_size(&r->qout));
        if (w <= 0)
            return w < 0 ? BL_ERROR : progress;
        bl_buf_consume(&r->qout, (size_t)w);
        progress = 1;
    }
    if (r->qchunk.done)
        r->qdone = 1;
    return progress;
}

/* Reads from the client when the current phase wants more. Returns 1 on
 * progress, 0 if nothing came, BL_ERROR if the client is gone. */
static int bl_ex_read_client(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    if (c->client_eof)
        return 0;
    long n = bl_ex_fill(&c->sock->stream, &c->in);
    if (n == BL_AGAIN)
        return 0;
    if (n == 0) {
        c->client_eof = 1;
        return 1;
    }
    return n > 0 ? 1 : BL_ERROR;
}

static int bl_ex_pump_up(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    int p = bl_ex_send_head(r), q;
    if (p < 0 || r->uhead_sent < bl_buf_size(&r->uhead))
        return p;
    if (r->phase == BL_REQ_TUNNEL) {
        uint64_t unlimited = UINT64_MAX;
        q = bl_buf_size(&c->in) ? bl_ex_send_raw(r, &unlimited) : 0;
        if (q < 0)
            return q;
        if (c->client_eof && bl_buf_size(&c->in) == 0 && !r->us_shut) {
            /* An upstream that already closed cannot take our FIN; either
             * way this direction is finished. */
            r->us_shut = bl_stream_shutdown_wr(r->us) != BL_AGAIN;
            q |= r->us_shut;
        }
    } else if (r->qbody.kind == BL_BODY_CHUNKED) {
        q = bl_ex_rechunk_request(r);
    } else {
        q = bl_buf_size(&c->in) && r->qleft ? bl_ex_send_raw(r, &r->qleft) : 0;
        r->qdone = r->qleft == 0;
    }
    if (q < 0)
        return q;
    return p | q;
}

/* --- upstream -> client --- */

/* Returns 1 if the header must not be relayed to the client. */
static int bl_ex_resp_dropped(bl_str_t name, const bl_http_response_t *res, int keep_length)
{
    static const char *const drop[] = { "connection", "keep-alive", "proxy-connection", "te",
                                        "trailer", "transfer-encoding", "upgrade" };
    for (size_t i = 0; i < BL_ARRAY_LEN(drop); i++)
        if (bl_str_eq_nocase(name, drop[i]))
            return 1;
    if (!keep_length && bl_str_eq_nocase(name, "content-length"))
        return 1;
    size_t pos = 0;
    const bl_http_header_t *c;
    char tok[64];
    while ((c = bl_http_find(res->headers, res->num_headers, "connection", &pos)) != NULL) {
        if (name.len >= sizeof(tok))
            break;
        memcpy(tok, name.p, name.len);
        tok[name.len] = '\0';
        if (bl_http_has_token(c->value, tok))
            return 1;
    }
    return 0;
}

/* Writes the client's copy of a final response head into c->out. */
static int bl_ex_relay_head(bl_req_t *r, const bl_http_response_t *res)
{
    bl_conn_t *c = r->conn;
    bl_buf_t *o = &c->out;
    int keep_length = r->rbody.kind == BL_BODY_NONE;
    int rc = bl_buf_puts(o, "HTTP/1.1 ");
    rc |= bl_buf_putu64(o, (uint64_t)res->status);
    rc |= bl_buf_puts(o, " ");
    rc |= bl_buf_putstr(o, res->reason);
    rc |= bl_buf_puts(o, "\r\n");
    for (size_t i = 0; i < res->num_headers; i++) {
        const bl_http_header_t *h = &res->headers[i];
        if (!bl_ex_resp_dropped(h->name, res, keep_length))
            rc |= bl_buf_field(o, h->name, h->value);
        if (bl_str_eq_nocase(h->name, "content-type"))
            r->rjson = bl_str_prefix_nocase(h->value, "application/json");
    }
    if (r->rbody.kind == BL_BODY_LENGTH) {
        rc |= bl_buf_puts(o, "Content-Length: ");
        rc |= bl_buf_putu64(o, r->rbody.length);
        rc |= bl_buf_puts(o, "\r\n");
    }
    else if (r->rchunked_out)
        rc |= bl_buf_puts(o, "Transfer-Encoding: chunked\r\n");
    if (c->close_after)
        rc |= bl_buf_puts(o, "Connection: close\r\n");
    rc |= bl_buf_puts(o, "\r\n");
    return rc ? BL_ERROR : BL_OK;
}

/* After a 101: a passive tap learns how the exec ended (and keeps a copy
 * of the session when audit.capture_max says so). No tap, no harm: the
 * relay never depends on it. */
static void bl_ex_tap_start(bl_req_t *r, const bl_http_response_t *res)
{
    size_t pos = 0;
    const bl_http_header_t *up = bl_http_find(res->headers, res->num_headers, "upgrade", &pos);
    pos = 0;
    const bl_http_header_t *wsp = bl_http_find(res->headers, res->num_headers, "sec-websocket-protocol", &pos);
    int proto = bl_tap_proto(up ? up->value : BL_STR_NULL, wsp ? wsp->value : BL_STR_NULL);
    if (proto == 0)
        return;
    r->tap = bl_tap_new(proto, bl_ex_capture_max(r));
    if (r->tap && r->portforward && bl_tap_portforward(r->tap) != BL_OK) {
        bl_tap_free(r->tap);
        r->tap = NULL;
    }
}

/* Handles a complete response head of `n` bytes at the front of r->uin. */
static int bl_ex_response_head(bl_req_t *r, const bl_http_response_t *res, size_t n)
{
    bl_conn_t *c = r->conn;
    bl_http_err_t err;
    if (res->status == 101) {
        if (!r->upgrade) {
            bl_rec_reason(&r->rec, "the API server switched protocols unasked");
            return BL_ERROR;
        }
        /* The 101 goes to the client exactly as the server sent it. */
        if (bl_buf_append(&c->out, bl_buf_data(&r->uin), n) != BL_OK)
            return BL_ERROR;
        bl_ex_tap_start(r, res);
        bl_buf_consume(&r->uin, n);
        r->rhead_done = 1;
        r->rec.status = 101;
        r->rec.upgraded = 1;
        r->phase = BL_REQ_TUNNEL;
        return 1;
    }
    if (res->status < 200) { /* 100 Continue, 103 Early Hints: pass on, keep reading */
        if (++r->informational > BL_MAX_1XX) {
            bl_rec_reason(&r->rec, "the API server sent more than %d informational responses", BL_MAX_1XX);
            return BL_ERROR;
        }
        /* HTTP/1.0 has no 1xx; byline answered any Expect: 100-continue itself. */
        if (r->minor == 1 && res->status != 100 && bl_buf_append(&c->out, bl_buf_data(&r->uin), n) != BL_OK)
            return BL_ERROR;
        bl_buf_consume(&r->uin, n);
        return 1;
    }
    if (bl_http1_response_body(res, r->method, &r->rbody, &err) != BL_OK) {
        bl_rec_reason(&r->rec, "malformed response from the API server: %s", err.reason);
        return BL_ERROR;
    }
    size_t pos = 0;
    const bl_http_header_t *h;
    r->upstream_reusable = res->minor_version == 1 && r->rbody.kind != BL_BODY_CLOSE;
    while ((h = bl_http_find(res->headers, res->num_headers, "connection", &pos)) != NULL)
        if (bl_http_has_token(h->value, "close"))
            r->upstream_reusable = 0;
    /* An HTTP/1.1 client gets chunks for chunked and close-delimited bodies
     * (so its connection stays reusable); an HTTP/1.0 client gets the bytes
     * plain, ended by closing the connection. */
    r->rchunked_out = r->minor == 1 && (r->rbody.kind == BL_BODY_CHUNKED || r->rbody.kind == BL_BODY_CLOSE);
    r->rdecode = r->rbody.kind == BL_BODY_CHUNKED || r->rchunked_out;
    if ((r->rbody.kind == BL_BODY_CLOSE || r->rbody.kind == BL_BODY_CHUNKED) && !r->rchunked_out)
        c->close_after = 1;
    if (r->rbody.kind == BL_BODY_CHUNKED)
        bl_chunked_init(&r->rchunk);
    r->rleft = r->rbody.kind == BL_BODY_LENGTH ? r->rbody.length : 0;
    r->rdone = r->rbody.kind == BL_BODY_NONE || (r->rbody.kind == BL_BODY_LENGTH && r->rleft == 0);
    r->rec.status = res->status;
    if (!r->qdone)
        c->close_after = 1; /* answered before the body was sent: stop sending it */
    int rc = bl_ex_relay_head(r, res);
    bl_buf_consume(&r->uin, n);
    r->rhead_done = 1;
    return rc == BL_OK ? 1 : BL_ERROR;
}

static int bl_ex_read_head(bl_req_t *r)
{
    bl_http_header_t hdrs[128];
    bl_http_response_t res = { .headers = hdrs, .num_headers = BL_ARRAY_LEN(hdrs) };
    bl_http_err_t err;
    int progress = 0;
    for (;;) {
        if (bl_buf_size(&r->uin)) {
            res.num_headers = BL_ARRAY_LEN(hdrs);
            int n = bl_http1_parse_response(bl_buf_data(&r->uin), bl_buf_size(&r->uin), &res, &err);
            if (n > 0)
                return bl_ex_response_head(r, &res, (size_t)n);
            if (n == BL_ERROR) {
                bl_rec_reason(&r->rec, "malformed response from the API server: %s", err.reason);
                return BL_ERROR;
            }
            if (bl_buf_size(&r->uin) >= r->uin.max) {
                bl_rec_reason(&r->rec, "response head from the API server too large");
                return BL_ERROR;
            }
        }
        long k = bl_ex_fill(r->us, &r->uin);
        if (k == BL_AGAIN)
            return progress;
        if (k <= 0) {
            r->upstream_eof = 1;
            bl_rec_reason(&r->rec, "the API server closed the connection before answering");
            return BL_ERROR;
        }
        progress = 1;
    }
}

/* At audit.level RequestResponse, keeps the first audit.body_max bytes of
 * the response body (one more, to know it was longer). */
static void bl_ex_keep(bl_req_t *r, const char *p, size_t n)
{
    const bl_config_t *cfg = r->conn->w->srv->cfg;
    if (cfg->audit_level < BL_LEVEL_REQUEST_RESPONSE || r->phase == BL_REQ_TUNNEL)
        return;
    if (r->respcap.max == 0)
        bl_buf_init(&r->respcap, cfg->audit_body_max + 1);
    size_t room = r->respcap.max - bl_buf_size(&r->respcap);
    bl_buf_append(&r->respcap, p, BL_MIN(n, room));
}

/* Decodes upstream chunks (or close-delimited bytes) into chunks in c->out. */
static int bl_ex_rechunk_response(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    int progress = 0;
    while (!r->rdone && bl_buf_size(&r->uin) && c->out.max - bl_buf_size(&c->out) > 64) {
        size_t avail = BL_MIN(bl_buf_size(&r->uin), c->out.max - bl_buf_size(&c->out) - 64);
        bl_str_t span = { bl_buf_data(&r->uin), avail };
        long k = (long)avail;
        if (r->rbody.kind == BL_BODY_CHUNKED) {
            bl_http_err_t err;
            k = bl_chunked_decode(&r->rchunk, bl_buf_data(&r->uin), avail, &span, &err);
            if (k < 0) {
                bl_rec_reason(&r->rec, "malformed chunked response from the API server: %s", err.reason);
                return BL_ERROR;
            }
            r->rdone = r->rchunk.done;
        }
        bl_ex_keep(r, span.p, span.len);
        if (span.len && r->rchunked_out)
            bl_ex_chunk(&c->out, span);
        else if (span.len)
            bl_buf_append(&c->out, span.p, span.len); /* fits: avail is bounded by the room */
        r->rec.bytes_out += span.len;
        bl_buf_consume(&r->uin, (size_t)k);
        progress = 1;
        if (k == 0)
            break;
    }
    return progress;
}

/* Raw bytes from r->uin to the client, at most r->rleft unless unlimited. */
static int bl_ex_relay_raw(bl_req_t *r, int limited)
{
    bl_conn_t *c = r->conn;
    size_t n = bl_buf_size(&r->uin);
    if (limited)
        n = (size_t)BL_MIN((uint64_t)n, r->rleft);
    long w = bl_ex_put(&c->sock->stream, bl_buf_data(&r->uin), n);
    if (w <= 0)
        return w < 0 ? BL_ERROR : 0;
    if (r->tap)
        bl_ex_tap_feed(r, BL_TAP_DOWN, bl_buf_data(&r->uin), (size_t)w);
    bl_ex_keep(r, bl_buf_data(&r->uin), (size_t)w);
    bl_buf_consume(&r->uin, (size_t)w);
    r->rec.bytes_out += (uint64_t)w;
    if (limited) {
        r->rleft -= (uint64_t)w;
        r->rdone = r->rleft == 0;
    }
    return 1;
}

/* A small raw body waiting behind our response head goes out with it: one
 * write(2) and one TLS record instead of two. */
static void bl_ex_coalesce(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    if (r->phase != BL_REQ_EXCHANGE || r->rdecode || bl_buf_size(&r->uin) == 0)
        return;
    size_t n = bl_buf_size(&r->uin);
    int limited = r->rbody.kind == BL_BODY_LENGTH;
    if (limited)
        n = (size_t)BL_MIN((uint64_t)n, r->rleft);
    if (n > BL_COALESCE_MAX || bl_buf_append(&c->out, bl_buf_data(&r->uin), n) != BL_OK)
        return;
    bl_ex_keep(r, bl_buf_data(&r->uin), n);
    bl_buf_consume(&r->uin, n);
    r->rec.bytes_out += n;
    if (limited) {
        r->rleft -= n;
        r->rdone = r->rleft == 0;
    }
}

/* Upstream end of stream during a body or tunnel. */
static int bl_ex_upstream_eof(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    r->upstream_eof = 1;
    if (r->phase == BL_REQ_TUNNEL) {
        if (bl_buf_size(&r->uin) || bl_buf_size(&c->out) || r->client_shut)
            return 1;
        r->client_shut = bl_stream_shutdown_wr(&c->sock->stream) != BL_AGAIN;
        return 1;
    }
    if (r->rbody.kind == BL_BODY_CLOSE) {
        r->rdone = 1;
        if (r->rchunked_out)
            bl_buf_puts(&c->out, "0\r\n\r\n");
        return 1;
    }
    bl_rec_reason(&r->rec, "the API server closed the connection mid-response");
    return BL_ERROR;
}

static int bl_ex_pump_body(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    int progress = 0, rc;
    for (;;) {
        if (bl_buf_size(&c->out)) {
            bl_ex_coalesce(r);
            rc = bl_conn_flush(c);
            if (rc == BL_ERROR)
                return BL_ERROR;
            if (rc == BL_AGAIN)
                return progress;
        }
        if (r->rdone && r->phase != BL_REQ_TUNNEL)
            return progress;
        if (bl_buf_size(&r->uin)) {
            if (r->rdecode && r->phase != BL_REQ_TUNNEL) {
                rc = bl_ex_rechunk_response(r);
                if (r->rdone && r->rbody.kind == BL_BODY_CHUNKED && r->rchunked_out)
                    bl_buf_puts(&c->out, "0\r\n\r\n");
            } else {
                rc = bl_ex_relay_raw(r, r->phase != BL_REQ_TUNNEL && r->rbody.kind == BL_BODY_LENGTH);
            }
            if (rc < 0)
                return rc;
            if (rc == 0)
                return progress;
            progress = 1;
            continue;
        }
        if (r->upstream_eof)
            return bl_ex_upstream_eof(r) < 0 ? BL_ERROR : progress;
        long k = bl_ex_fill(r->us, &r->uin);
        if (k == BL_AGAIN)
            return progress;
        if (k < 0) {
            bl_rec_reason(&r->rec, "reading from the API server failed");
            return BL_ERROR;
        }
        if (k == 0 && bl_ex_upstream_eof(r) < 0)
            return BL_ERROR;
        progress = 1;
    }
}

static int bl_ex_pump_down(bl_req_t *r)
{
    int p = 0;
    if (!r->rhead_done) {
        p = bl_ex_read_head(r);
        if (p <= 0)
            return p;
    }
    int q = bl_ex_pump_body(r);
    return q < 0 ? q : (p | q);
}

/* --- completion --- */

static int bl_ex_finished(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    if (bl_buf_size(&c->out))
        return 0;
    if (r->phase == BL_REQ_TUNNEL)
        return r->upstream_eof && r->client_shut && c->client_eof && r->us_shut;
    return r->rdone;
}

static void bl_ex_complete(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    int reusable = r->phase == BL_REQ_EXCHANGE && r->upstream_reusable && r->qdone &&
                   bl_buf_size(&r->uin) == 0 && !r->upstream_eof;
    if (r->phase == BL_REQ_TUNNEL || !r->qdone)
        c->close_after = 1;
    bl_stream_release(r->us, reusable);
    r->us = NULL;
    bl_req_finish(r);
}

/* A JSON watch cut short upstream ends with an ERROR event carrying a
 * Status, as kube-apiserver ends one it must stop, then the last chunk: the
 * client reports why instead of taking the end for a quiet close. c->out
 * holds only whole chunks here, so one more is well framed. Returns BL_OK
 * when the event is queued (the request finishes once it is written), or
 * BL_DECLINED when the response cannot carry one. */
static int bl_ex_watch_error(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    char ev[2 * BL_REC_REASON_MAX + 256], msg[BL_REC_REASON_MAX + 16];
    bl_buf_t b = { .base = ev, .cap = sizeof(ev), .max = sizeof(ev) };
    if (!r->watch || !r->rjson || !r->rchunked_out || r->rdone || r->phase != BL_REQ_EXCHANGE || c->client_eof)
        return BL_DECLINED;
    int rc = bl_buf_puts(&b, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                             "\"metadata\":{},\"status\":\"Failure\",\"message\":");
    snprintf(msg, sizeof(msg), "byline: %s", r->rec.reason[0] ? r->rec.reason : "the API server stream broke");
    rc |= bl_buf_json_str(&b, msg, strlen(msg));
    rc |= bl_buf_puts(&b, ",\"reason\":\"ServiceUnavailable\",\"code\":503}}\n");
    if (rc != BL_OK || bl_buf_size(&c->out) + b.len + 64 > c->out.max)
        return BL_DECLINED;
    bl_ex_chunk(&c->out, (bl_str_t){ ev, b.len });
    bl_buf_puts(&c->out, "0\r\n\r\n");
    r->phase = BL_REQ_REPLY;
    bl_timer_set(c->w->loop, &c->timer, c->w->srv->cfg->header_timeout_ms);
    c->again = 1;
    return BL_OK;
}

void bl_exchange_abort(bl_req_t *r, const char *why)
{
    bl_conn_t *c = r->conn;
    const char *swhy = r->us && r->us->ops->why ? r->us->ops->why(r->us) : NULL;
    if (swhy) /* the stream knows better, e.g. "agent for prod-eks disconnected" */
        bl_rec_reason(&r->rec, "%s", swhy);
    else if (why && !r->rec.reason[0])
        bl_rec_reason(&r->rec, "%s", why);
    if (r->us) {
        bl_stream_release(r->us, 0);
        r->us = NULL;
    }
    if (!r->rhead_done && bl_buf_size(&c->out) == 0 && !c->client_eof) {
        /* The client has seen nothing yet: it gets a Status that says why. */
        c->close_after = c->close_after || !r->qdone || r->rec.bytes_in > 0;
        r->rec.result = BL_RESULT_ERROR;
        if (r->client_fault)
            bl_reply_status(r, 400, "BadRequest", "byline: %s", r->rec.reason);
        else
            bl_reply_status(r, 502, "BadGateway", "byline: connection %s: %s", r->connection->name,
                            r->rec.reason);
        return;
    }
    /* Mid-response: the only honest signal left is closing the connection
     * (after a watch's last word, when it can have one). */
    c->close_after = 1;
    if (bl_ex_watch_error(r) == BL_OK)
        return;
    bl_buf_reset(&c->out);
    bl_req_finish(r);
}

/* Nothing can move now: give back buffers that are empty, so a watch or
 * exec session idling for hours holds only its state, not 100 KiB of
 * buffers. They are allocated again (from the heap, cheaply) on the next
 * byte. */
static void bl_ex_trim(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    if (bl_buf_size(&r->uin) == 0)
        bl_buf_free(&r->uin);
    if (bl_buf_size(&r->qout) == 0)
        bl_buf_free(&r->qout);
    if (bl_buf_size(&c->in) == 0)
        bl_buf_free(&c->in);
    if (bl_buf_size(&c->out) == 0)
        bl_buf_free(&c->out);
    if (r->rhead_done && r->uhead_sent == bl_buf_size(&r->uhead) && r->uhead.base) {
        r->uhead_sent = 0; /* sent, and no retry is possible once an answer came */
        bl_buf_free(&r->uhead);
    }
}

void bl_exchange_run(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    for (int round = 0; round < 16; round++) {
        int up = bl_ex_pump_up(r);
        if (up == BL_ERROR) {
            if (!r->client_fault && bl_ex_retry(r) == BL_OK)
                return;
            {
                bl_exchange_abort(r, "writing to the API server failed");
                return;
            }
        }
        int down = bl_ex_pump_down(r);
        if (down == BL_ERROR) {
            if (bl_ex_retry(r) == BL_OK)
                return;
            {
                bl_exchange_abort(r, NULL);
                return;
            }
        }
        int cl = 0;
        if ((r->phase == BL_REQ_TUNNEL || !r->qdone || !r->rdone) && bl_buf_size(&c->in) < c->in.max) {
            cl = bl_ex_read_client(r);
            if (cl == BL_ERROR || (c->client_eof && r->phase != BL_REQ_TUNNEL)) {
                bl_rec_reason(&r->rec, "the client closed the connection");
                c->close_after = 1;
                c->client_eof = 1;
                {
                bl_exchange_abort(r, NULL);
                return;
            }
            }
        }
        if (bl_ex_finished(r))
            {
            bl_ex_complete(r);
            return;
        }
        if (!up && !down && !cl) {
            bl_ex_trim(r);
            return;
        }
    }
    bl_loop_defer(c->w->loop, &c->resume); /* busy connection: let others run */
}
