/* h2mux.c - byte tunnels over HTTP/2 with nghttp2; see h2mux.h. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/buf.h"
#include "core/log.h"
#include "net/h2mux.h"

#define BL_MUX_WINDOW     (256 * 1024)  /* per stream: what a stalled tunnel may hold */
#define BL_MUX_CONN_WINDOW (1 << 30)    /* streams are the bound; the connection never stalls them */
#define BL_MUX_MAX_STREAMS 8192         /* tunnels per session (SETTINGS_MAX_CONCURRENT_STREAMS) */
#define BL_MUX_OUT_MAX    (64 * 1024)   /* frames waiting for the socket before we stop pulling */
#define BL_MUX_IN_CHUNK   (32 * 1024)
#define BL_MUX_PING_MS    15000
#define BL_MUX_DEAD_MS    45000
#define BL_MUX_HDR_MAX    256

typedef struct bl_tun_s bl_tun_t;

struct bl_tun_s {
    bl_mux_t *m;
    int32_t id;
    bl_stream_t *local;
    void *udata;
    bl_buf_t in;                 /* peer -> local, not yet taken by local */
    bl_tun_t *prev, *next;       /* all tunnels */
    bl_tun_t *dnext;             /* dirty list */
    unsigned dirty : 1;
    unsigned peer_eof : 1;       /* END_STREAM from the peer */
    unsigned local_shut : 1;     /* we shut local's write side */
    unsigned deferred : 1;       /* data provider waits for local to be readable */
    unsigned closed : 1;         /* nghttp2 closed the stream */
    unsigned failed : 1;
    unsigned refused : 1;        /* client: a non-2xx answer */
    unsigned rst_sent : 1;
    char why[96];
};

struct bl_mux_s {
    bl_loop_t *loop;
    bl_stream_t *io;
    nghttp2_session *s;
    bl_mux_cb_t cb;
    int server;
    bl_tun_t *tuns;
    size_t ntuns;
    bl_tun_t *dirty;
    bl_buf_t out;                /* frames nghttp2 produced, not yet written */
    bl_timer_t ping;
    bl_defer_t kick;             /* the first run, after bl_mux_new returned */
    uint64_t last_rx;
    int processing, again;
    int goaway;
    const char *dead_why;        /* set once: the session is over */
    int dead_told;
    char hdr_method[16], hdr_auth[BL_MUX_HDR_MAX];
    int hdr_status;
};

static void bl_mux_run(bl_mux_t *m);
static void bl_tun_attach(bl_tun_t *t);

static void bl_tun_mark(bl_tun_t *t)
{
    if (t->dirty)
        return;
    t->dirty = 1;
    t->dnext = t->m->dirty;
    t->m->dirty = t;
}

static void bl_tun_fail(bl_tun_t *t, const char *why)
{
    if (!t->failed)
        snprintf(t->why, sizeof(t->why), "%s", why);
    t->failed = 1;
    bl_tun_mark(t);
}

static void bl_mux_die(bl_mux_t *m, const char *why)
{
    if (m->dead_why == NULL)
        m->dead_why = why;
}

/* --- nghttp2 callbacks --- */

static int bl_h2_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *data)
{
    bl_mux_t *m = data;
    (void)s;
    (void)f;
    m->hdr_method[0] = m->hdr_auth[0] = '\0';
    m->hdr_status = 0;
    return 0;
}

static int bl_h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen, uint8_t flags, void *data)
{
    bl_mux_t *m = data;
    (void)s;
    (void)f;
    (void)flags;
    if (nlen == 7 && !memcmp(name, ":method", 7) && vlen < sizeof(m->hdr_method))
        snprintf(m->hdr_method, sizeof(m->hdr_method), "%.*s", (int)vlen, (const char *)value);
    else if (nlen == 10 && !memcmp(name, ":authority", 10) && vlen < sizeof(m->hdr_auth))
        snprintf(m->hdr_auth, sizeof(m->hdr_auth), "%.*s", (int)vlen, (const char *)value);
    else if (nlen == 7 && !memcmp(name, ":status", 7) && vlen == 3)
        m->hdr_status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static ssize_t bl_h2_read_local(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                                nghttp2_data_source *src, void *data)
{
    bl_tun_t *t = src->ptr;
    (void)s;
    (void)id;
    (void)data;
    if (t->failed)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    long n = bl_stream_read(t->local, buf, len);
    if (n == BL_AGAIN) {
        t->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n < 0) {
        bl_tun_fail(t, "reading the tunnel's local end failed");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (n == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
}

/* Server role: a complete request header block. */
static void bl_h2_accept(bl_mux_t *m, int32_t id)
{
    const char *why = "tunnel refused";
    void *udata = NULL;
    bl_stream_t *local = NULL;
    bl_tun_t *t = NULL;
    if (strcmp(m->hdr_method, "CONNECT") != 0 || !m->hdr_auth[0] || m->goaway)
        why = m->goaway ? "the agent is shutting down" : "only CONNECT tunnels are served";
    else if ((t = calloc(1, sizeof(*t))) != NULL)
        local = m->cb.accept(m->cb.data, m->hdr_auth, strlen(m->hdr_auth), &udata, &why);
    if (local == NULL) {
        free(t);
        const nghttp2_nv nv[] = { { (uint8_t *)":status", (uint8_t *)"403", 7, 3, NGHTTP2_NV_FLAG_NONE } };
        nghttp2_submit_response(m->s, id, nv, 1, NULL);
        bl_debug("h2: refused tunnel %d to %s: %s", id, m->hdr_auth, why);
        return;
    }
    t->m = m;
    t->id = id;
    t->local = local;
    t->udata = udata;
    bl_buf_init(&t->in, BL_MUX_WINDOW + 16 * 1024);
    nghttp2_session_set_stream_user_data(m->s, id, t);
    bl_tun_attach(t);
    const nghttp2_nv nv[] = { { (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE } };
    nghttp2_data_provider dp = { .source.ptr = t, .read_callback = bl_h2_read_local };
    nghttp2_submit_response(m->s, id, nv, 1, &dp);
}

static int bl_h2_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *data)
{
    bl_mux_t *m = data;
    bl_tun_t *t = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (f->hd.type == NGHTTP2_GOAWAY && !m->goaway) {
        m->goaway = 1;
        if (m->cb.closing)
            m->cb.closing(m->cb.data);
    }
    if (f->hd.type == NGHTTP2_HEADERS && m->server && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        bl_h2_accept(m, f->hd.stream_id);
        t = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    } else if (f->hd.type == NGHTTP2_HEADERS && t && !m->server && f->headers.cat == NGHTTP2_HCAT_RESPONSE &&
               (m->hdr_status < 200 || m->hdr_status > 299)) {
        t->refused = 1;
        bl_tun_fail(t, "the agent refused the tunnel");
    }
    if (t && (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        t->peer_eof = 1;
        bl_tun_mark(t);
    }
    return 0;
}

static int bl_h2_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *p, size_t n, void *data)
{
    bl_tun_t *t = nghttp2_session_get_stream_user_data(s, id);
    (void)flags;
    (void)data;
    if (t == NULL || t->failed || t->refused) {
        nghttp2_session_consume(s, id, n); /* nobody will read it: give the window back */
        return 0;
    }
    if (bl_buf_append(&t->in, p, n) != BL_OK) /* only a peer ignoring our window gets here */
        bl_tun_fail(t, "the peer overran the stream's flow-control window");
    bl_tun_mark(t);
    return 0;
}

static int bl_h2_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *data)
{
    bl_tun_t *t = nghttp2_session_get_stream_user_data(s, id);
    (void)data;
    if (t == NULL)
        return 0;
    t->closed = 1;
    if (code != NGHTTP2_NO_ERROR && !t->failed) {
        char why[64];
        snprintf(why, sizeof(why), "stream reset (%s)", nghttp2_http2_strerror(code));
        bl_tun_fail(t, why);
    }
    bl_tun_mark(t);
    return 0;
}

/* --- tunnels --- */

static void bl_tun_on_io(bl_stream_t *s, unsigned events)
{
    bl_tun_t *t = s->owner;
    (void)events;
    if (t->deferred && !t->closed) {
        t->deferred = 0;
        nghttp2_session_resume_data(t->m->s, t->id);
    }
    bl_tun_mark(t);
    bl_mux_run(t->m);
}

static void bl_tun_attach(bl_tun_t *t)
{
    bl_mux_t *m = t->m;
    t->local->on_io = bl_tun_on_io;
    t->local->owner = t;
    t->next = m->tuns;
    if (m->tuns)
        m->tuns->prev = t;
    m->tuns = t;
    m->ntuns++;
}

/* Releases a finished tunnel. */
static void bl_tun_free(bl_tun_t *t, const char *why)
{
    bl_mux_t *m = t->m;
    for (bl_tun_t **pp = &m->dirty; t->dirty && *pp; pp = &(*pp)->dnext)
        if (*pp == t) {
            *pp = t->dnext;
            break;
        }
    if (t->prev)
        t->prev->next = t->next;
    else
        m->tuns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    m->ntuns--;
    if (!t->closed && m->s)
        nghttp2_session_set_stream_user_data(m->s, t->id, NULL);
    if (m->cb.closed)
        m->cb.closed(m->cb.data, t->udata, why == NULL, why);
    bl_stream_release(t->local, 0);
    bl_buf_free(&t->in);
    free(t);
}

/* Moves buffered peer bytes to the local end and returns the window for
 * what it took. Returns 1 when the tunnel is finished and freed. */
static int bl_tun_step(bl_tun_t *t)
{
    bl_mux_t *m = t->m;
    while (!t->failed && bl_buf_size(&t->in)) {
        long w = bl_stream_write(t->local, bl_buf_data(&t->in), bl_buf_size(&t->in));
        if (w == BL_AGAIN)
            break;
        if (w < 0) {
            bl_tun_fail(t, "the tunnel's local end closed");
            break;
        }
        bl_buf_consume(&t->in, (size_t)w);
        if (!t->closed)
            nghttp2_session_consume(m->s, t->id, (size_t)w);
    }
    if (bl_buf_size(&t->in) == 0)
        bl_buf_free(&t->in);
    if (!t->failed && t->peer_eof && !t->local_shut && bl_buf_size(&t->in) == 0)
        t->local_shut = bl_stream_shutdown_wr(t->local) != BL_AGAIN;
    if (t->failed && !t->closed && !t->rst_sent) {
        t->rst_sent = 1;
        nghttp2_submit_rst_stream(m->s, NGHTTP2_FLAG_NONE, t->id, NGHTTP2_CANCEL);
    }
    if (t->closed && (t->failed || (bl_buf_size(&t->in) == 0 && (t->local_shut || !t->peer_eof)))) {
        bl_tun_free(t, t->failed ? t->why : NULL);
        return 1;
    }
    return 0;
}

static void bl_mux_dirty(bl_mux_t *m)
{
    while (m->dirty) {
        bl_tun_t *t = m->dirty;
        m->dirty = t->dnext;
        t->dirty = 0;
        bl_tun_step(t);
    }
}

/* --- the session's socket --- */

/* Reads and feeds the session. Returns 1 if anything was read. */
static int bl_mux_read(bl_mux_t *m)
{
    uint8_t buf[BL_MUX_IN_CHUNK];
    int progress = 0;
    while (!m->dead_why) {
        long n = bl_stream_read(m->io, buf, sizeof(buf));
        if (n == BL_AGAIN)
            break;
        if (n <= 0) {
            bl_mux_die(m, n == 0 ? "the peer closed the connection" : "reading from the peer failed");
            break;
        }
        m->last_rx = bl_loop_now(m->loop);
        progress = 1;
        ssize_t r = nghttp2_session_mem_recv(m->s, buf, (size_t)n);
        if (r < 0) {
            bl_mux_die(m, "HTTP/2 protocol error from the peer");
            break;
        }
    }
    return progress;
}

/* Writes frames until the socket is full. Returns 1 if anything moved. */
static int bl_mux_write(bl_mux_t *m)
{
    int progress = 0;
    while (!m->dead_why) {
        while (bl_buf_size(&m->out) < BL_MUX_OUT_MAX) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(m->s, &p);
            if (n < 0) {
                bl_mux_die(m, "HTTP/2 session failed");
                return progress;
            }
            if (n == 0)
                break;
            if (bl_buf_append(&m->out, p, (size_t)n) != BL_OK) {
                bl_mux_die(m, "out of memory");
                return progress;
            }
        }
        if (bl_buf_size(&m->out) == 0)
            break;
        long w = bl_stream_write(m->io, bl_buf_data(&m->out), bl_buf_size(&m->out));
        if (w == BL_AGAIN)
            break;
        if (w < 0) {
            bl_mux_die(m, "writing to the peer failed");
            break;
        }
        bl_buf_consume(&m->out, (size_t)w);
        progress = 1;
    }
    if (bl_buf_size(&m->out) == 0)
        bl_buf_free(&m->out);
    return progress;
}

static void bl_mux_run(bl_mux_t *m)
{
    if (m->processing) {
        m->again = 1;
        return;
    }
    m->processing = 1;
    do {
        m->again = 0;
        int r = bl_mux_read(m);
        bl_mux_dirty(m);
        int w = bl_mux_write(m);
        bl_mux_dirty(m);
        m->again |= (r || w) && !m->dead_why;
        if (!m->dead_why && !nghttp2_session_want_read(m->s) && !nghttp2_session_want_write(m->s) &&
            bl_buf_size(&m->out) == 0)
            bl_mux_die(m, m->goaway ? "the session ended (GOAWAY)" : "the session ended");
    } while (m->again && !m->dead_why);
    m->processing = 0;
    if (m->dead_why && !m->dead_told) {
        m->dead_told = 1;
        m->cb.dead(m->cb.data, m->dead_why); /* may free m: nothing after this */
    }
}

static void bl_mux_on_io(bl_stream_t *s, unsigned events)
{
    (void)events;
    bl_mux_run(s->owner);
}

static void bl_mux_kick(bl_defer_t *d)
{
    bl_mux_run(d->data);
}

static void bl_mux_ping(bl_timer_t *tm)
{
    bl_mux_t *m = tm->data;
    if (bl_loop_now(m->loop) - m->last_rx >= BL_MUX_DEAD_MS) {
        bl_mux_die(m, "the peer stopped answering keepalive pings");
    } else {
        nghttp2_submit_ping(m->s, NGHTTP2_FLAG_NONE, NULL);
        bl_timer_set(m->loop, &m->ping, BL_MUX_PING_MS);
    }
    bl_mux_run(m);
}

/* --- public --- */

static nghttp2_session *bl_mux_session(bl_mux_t *m)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_session *s = NULL;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto end;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, bl_h2_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, bl_h2_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, bl_h2_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, bl_h2_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, bl_h2_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (m->server)
        nghttp2_session_server_new2(&s, cbs, m, opt);
    else
        nghttp2_session_client_new2(&s, cbs, m, opt);
end:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return s;
}

bl_mux_t *bl_mux_new(bl_loop_t *loop, bl_stream_t *io, int server, const bl_mux_cb_t *cb,
                     const void *pre, size_t npre)
{
    bl_mux_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        bl_stream_release(io, 0);
        return NULL;
    }
    m->loop = loop;
    m->io = io;
    m->server = server;
    m->cb = *cb;
    bl_buf_init(&m->out, BL_MUX_OUT_MAX + 64 * 1024);
    m->s = bl_mux_session(m);
    const nghttp2_settings_entry set[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, BL_MUX_MAX_STREAMS },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, BL_MUX_WINDOW },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    };
    if (m->s == NULL || nghttp2_submit_settings(m->s, NGHTTP2_FLAG_NONE, set, server ? 2 : 3) != 0 ||
        nghttp2_session_set_local_window_size(m->s, NGHTTP2_FLAG_NONE, 0, BL_MUX_CONN_WINDOW) != 0 ||
        (npre && nghttp2_session_mem_recv(m->s, pre, npre) != (ssize_t)npre)) {
        bl_mux_free(m, NULL);
        return NULL;
    }
    io->on_io = bl_mux_on_io;
    io->owner = m;
    m->last_rx = bl_loop_now(loop);
    m->ping.cb = bl_mux_ping;
    m->ping.data = m;
    bl_timer_set(loop, &m->ping, BL_MUX_PING_MS);
    m->kick.cb = bl_mux_kick;
    m->kick.data = m;
    bl_loop_defer(loop, &m->kick);
    return m;
}

int bl_mux_open(bl_mux_t *m, const char *authority, bl_stream_t *local, void *udata)
{
    bl_tun_t *t = NULL;
    if (bl_mux_closing(m) || m->ntuns >= BL_MUX_MAX_STREAMS ||
        nghttp2_session_get_remote_settings(m->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) <= m->ntuns ||
        (t = calloc(1, sizeof(*t))) == NULL)
        goto fail;
    const nghttp2_nv nv[] = {
        { (uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), NGHTTP2_NV_FLAG_NONE },
    };
    nghttp2_data_provider dp = { .source.ptr = t, .read_callback = bl_h2_read_local };
    int32_t id = nghttp2_submit_request(m->s, NULL, nv, 2, &dp, t);
    if (id < 0)
        goto fail;
    t->m = m;
    t->id = id;
    t->local = local;
    t->udata = udata;
    bl_buf_init(&t->in, BL_MUX_WINDOW + 16 * 1024);
    bl_tun_attach(t);
    bl_mux_run(m);
    return BL_OK;
fail:
    free(t);
    bl_stream_release(local, 0);
    return BL_ERROR;
}

size_t bl_mux_ntunnels(const bl_mux_t *m)
{
    return m->ntuns;
}

int bl_mux_closing(const bl_mux_t *m)
{
    return m->goaway || m->dead_why != NULL;
}

void bl_mux_goaway(bl_mux_t *m)
{
    if (m->dead_why)
        return;
    m->goaway = 1;
    /* Not terminate_session(), which closes the connection once GOAWAY is
     * out: open tunnels finish; the session ends when the last one does. */
    nghttp2_submit_goaway(m->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(m->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
    bl_mux_run(m);
}

void bl_mux_free(bl_mux_t *m, const char *why)
{
    if (m == NULL)
        return;
    while (m->tuns) {
        bl_tun_t *t = m->tuns;
        t->closed = 1; /* the session goes with it */
        bl_tun_free(t, why ? why : "the session ended");
    }
    m->dirty = NULL;
    bl_timer_cancel(m->loop, &m->ping);
    bl_loop_undefer(m->loop, &m->kick);
    nghttp2_session_del(m->s);
    m->s = NULL;
    bl_stream_release(m->io, 0);
    bl_buf_free(&m->out);
    free(m);
}
