/*
 * agent.c - the `byline agent` process: dial the gateway over TLS, upgrade
 * to byline-agent/1 with the agent key, then serve HTTP/2 CONNECT tunnels
 * (h2mux.h) to the configured API servers (tunnel.h) until the session
 * ends; then reconnect with jittered exponential backoff.
 *
 *   WAIT --timer--> DIAL --TLS ok--> UPGRADE --101--> SESSION --dead--> WAIT
 */
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include "agent/agent.h"
#include "agent/pool.h"
#include "agent/backoff.h"
#include "auth/agentkey.h"
#include "agent/tunnel.h"
#include "config/file.h"
#include "core/log.h"
#include "http/http1.h"
#include "net/h2mux.h"
#include "net/sock.h"
#include "net/tls.h"

#define BL_AG_BASE_MS     500
#define BL_AG_CAP_MS      30000
#define BL_AG_DIAL_MS     15000     /* TCP + TLS + upgrade answer */
#define BL_AG_DRAIN_MS    30000     /* SIGTERM: tunnels may finish this long */
#define BL_AG_KEY_MAX     512
#define BL_AG_IN_MAX      (16 * 1024)

enum { BL_AG_WAIT, BL_AG_DIAL, BL_AG_UPGRADE, BL_AG_SESSION };

typedef struct {
    const bl_agent_opts_t *o;
    bl_loop_t *loop;
    bl_agentconf_t conf;
    bl_url_t gw;
    SSL_CTX *gw_ctx;
    char key[BL_AG_KEY_MAX];
    bl_buf_t req;                /* the upgrade request (holds the key) */
    int state;
    bl_sock_t *sock;             /* DIAL, UPGRADE */
    bl_buf_t in;                 /* UPGRADE: the answer's head */
    bl_mux_t *mux;               /* SESSION */
    bl_timer_t timer;
    bl_defer_t reap;             /* frees a dead mux outside its callbacks */
    bl_mux_t *dead_mux;
    unsigned attempt;
    int stopping;
} bl_ag_t;

static volatile sig_atomic_t bl_ag_signals;
static bl_loop_t *bl_ag_sigloop;

static void bl_ag_dial(bl_ag_t *a);

/* --- reconnecting --- */

static void bl_ag_timer(bl_timer_t *t);

static void bl_ag_retry(bl_ag_t *a, const char *why)
{
    uint32_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
    uint64_t ms = bl_backoff_ms(a->attempt++, BL_AG_BASE_MS, BL_AG_CAP_MS, rnd);
    if (a->sock) {
        bl_sock_close(a->sock);
        a->sock = NULL;
    }
    bl_buf_free(&a->in);
    a->state = BL_AG_WAIT;
    if (a->stopping) {
        bl_loop_stop(a->loop);
        return;
    }
    bl_warn("gateway %s: %s; reconnecting in %llu ms", a->o->gateway, why, (unsigned long long)ms);
    bl_timer_set(a->loop, &a->timer, ms);
}

/* --- the session --- */

static bl_stream_t *bl_ag_accept(void *data, const char *auth, size_t len, void **udata, const char **why)
{
    bl_ag_t *a = data;
    bl_agentconn_t *c = bl_agentconf_find(&a->conf, auth, len);
    *udata = NULL;
    if (c == NULL) {
        *why = "this agent does not serve that connection";
        return NULL;
    }
    return bl_tunnel_new(a->loop, c);
}

static void bl_ag_reap(bl_defer_t *d)
{
    bl_ag_t *a = d->data;
    bl_mux_free(a->dead_mux, "the gateway session ended");
    a->dead_mux = NULL;
}

static void bl_ag_dead(void *data, const char *why)
{
    bl_ag_t *a = data;
    a->dead_mux = a->mux;
    a->mux = NULL;
    bl_loop_defer(a->loop, &a->reap);
    bl_timer_cancel(a->loop, &a->timer);
    bl_ag_retry(a, why);
}

static void bl_ag_session(bl_ag_t *a, const char *pre, size_t npre)
{
    const bl_mux_cb_t cb = { .accept = bl_ag_accept, .dead = bl_ag_dead, .data = a };
    bl_stream_t *io = &a->sock->stream;
    a->sock = NULL;
    bl_timer_cancel(a->loop, &a->timer);
    a->mux = bl_mux_new(a->loop, io, 1, &cb, pre, npre);
    if (a->mux == NULL) {
        bl_ag_retry(a, "cannot start HTTP/2");
        return;
    }
    a->state = BL_AG_SESSION;
    a->attempt = 0;
    bl_info("connected to gateway %s; serving %zu connection(s)", a->o->gateway, a->conf.n);
}

/* --- dialling and upgrading --- */

/* UPGRADE: reads the gateway's answer. */
static void bl_ag_upgrade(bl_ag_t *a)
{
    bl_http_header_t hdrs[32];
    bl_http_response_t res = { .headers = hdrs, .num_headers = 32 };
    bl_http_err_t err;
    char msg[300];
    for (;;) {
        size_t room;
        char *p = bl_buf_tail(&a->in, 1024, &room);
        long n = p ? bl_stream_read(&a->sock->stream, p, room) : BL_ERROR;
        if (n > 0)
            bl_buf_commit(&a->in, (size_t)n);
        int r = bl_http1_parse_response(bl_buf_data(&a->in), bl_buf_size(&a->in), &res, &err);
        if (r > 0 && res.status == 101) {
            bl_ag_session(a, bl_buf_data(&a->in) + r, bl_buf_size(&a->in) - (size_t)r);
            bl_buf_free(&a->in);
            return;
        }
        if (r > 0 || r == BL_ERROR || n == 0 || n == BL_ERROR) {
            if (r > 0)
                snprintf(msg, sizeof(msg), "the gateway refused the agent (%d): %.*s", res.status,
                         (int)BL_MIN(bl_buf_size(&a->in) - (size_t)r, 200u), bl_buf_data(&a->in) + r);
            else
                snprintf(msg, sizeof(msg), "no valid answer to the upgrade request");
            for (char *q = msg; *q; q++)
                if ((unsigned char)*q < 0x20)
                    *q = ' ';
            bl_ag_retry(a, msg);
            return;
        }
        if (n == BL_AGAIN)
            return;
    }
}

static void bl_ag_sock_io(bl_stream_t *s, unsigned events)
{
    bl_ag_t *a = s->owner;
    const char *err = NULL;
    (void)events;
    if (a->state == BL_AG_DIAL) {
        int rc = bl_sock_handshake(a->sock, &err);
        if (rc == BL_AGAIN)
            return;
        if (rc != BL_OK) {
            bl_ag_retry(a, err);
            return;
        }
        a->state = BL_AG_UPGRADE;
        long w = bl_stream_write(&a->sock->stream, bl_buf_data(&a->req), bl_buf_size(&a->req));
        if (w != (long)bl_buf_size(&a->req)) { /* a fresh socket takes a few hundred bytes */
            bl_ag_retry(a, "cannot send the upgrade request");
            return;
        }
        bl_buf_init(&a->in, BL_AG_IN_MAX);
    }
    if (a->state == BL_AG_UPGRADE)
        bl_ag_upgrade(a);
}

static void bl_ag_dial(bl_ag_t *a)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[16];
    const char *err = "cannot resolve the gateway's host";
    snprintf(port, sizeof(port), "%d", a->gw.port);
    if (getaddrinfo(a->gw.host, port, &hints, &ai) == 0 && ai != NULL) {
        a->sock = bl_sock_connect(a->loop, ai->ai_addr, ai->ai_addrlen, a->gw_ctx, a->gw.host, NULL, &err);
        freeaddrinfo(ai);
    }
    if (a->sock == NULL) {
        bl_ag_retry(a, err);
        return;
    }
    a->sock->stream.on_io = bl_ag_sock_io;
    a->sock->stream.owner = a;
    a->state = BL_AG_DIAL;
    bl_timer_set(a->loop, &a->timer, BL_AG_DIAL_MS);
}

static void bl_ag_timer(bl_timer_t *t)
{
    bl_ag_t *a = t->data;
    if (a->state == BL_AG_WAIT)
        bl_ag_dial(a);
    else if (a->state == BL_AG_SESSION) /* SIGTERM's grace is over */
        bl_loop_stop(a->loop);
    else
        bl_ag_retry(a, "timed out connecting to the gateway");
}

/* --- signals --- */

static void bl_ag_on_signal(int sig)
{
    (void)sig;
    bl_ag_signals++;
    if (bl_ag_sigloop)
        bl_loop_wake(bl_ag_sigloop);
}

static void bl_ag_wake(bl_loop_t *loop, void *data)
{
    bl_ag_t *a = data;
    if (bl_ag_signals == 0)
        return;
    if (bl_ag_signals > 1 || a->state != BL_AG_SESSION || a->mux == NULL) {
        bl_info("stopping");
        bl_loop_stop(loop);
        return;
    }
    if (a->stopping)
        return;
    a->stopping = 1;
    bl_info("draining: no new requests, open ones may finish (up to %d s); signal again to stop now", BL_AG_DRAIN_MS / 1000);
    bl_mux_goaway(a->mux);
    bl_timer_set(loop, &a->timer, BL_AG_DRAIN_MS);
}

/* --- setup --- */

/* Reads the key file and builds the upgrade request. BL_OK or BL_ERROR (err). */
static int bl_ag_request(bl_ag_t *a, bl_buf_t *err)
{
    bl_buf_t k;
    bl_buf_init(&k, BL_AG_KEY_MAX);
    int rc = bl_file_read(a->o->key_file, BL_AG_KEY_MAX - 1, &k, err);
    bl_str_t key = { bl_buf_data(&k), bl_buf_size(&k) };
    while (key.len > 0 && (key.p[key.len - 1] == '\n' || key.p[key.len - 1] == '\r'))
        key.len--;
    key = bl_str_trim(key);
    if (rc == BL_OK && (key.len != BL_TOKEN_LEN || memcmp(key.p, BL_AGENTKEY_PREFIX, 4) != 0)) {
        bl_buf_printf(err, "%s does not hold an agent key (bya_..., from `byline agent-key add`)", a->o->key_file);
        rc = BL_ERROR;
    }
    if (rc == BL_OK) {
        int v6 = strchr(a->gw.host, ':') != NULL;
        bl_buf_init(&a->req, 8192);
        rc = bl_buf_printf(&a->req, v6 ? "POST /byline/agent/v1/connect HTTP/1.1\r\nHost: [%s]:%d\r\n"
                                       : "POST /byline/agent/v1/connect HTTP/1.1\r\nHost: %s:%d\r\n",
                           a->gw.host, a->gw.port);
        rc |= bl_buf_puts(&a->req, "Authorization: Bearer ") | bl_buf_putstr(&a->req, key);
        rc |= bl_buf_printf(&a->req, "\r\nUser-Agent: byline-agent/%s\r\nByline-Agent-Connections: ", BL_VERSION);
        for (size_t i = 0; i < a->conf.n; i++)
            rc |= bl_buf_printf(&a->req, "%s%s", i ? ", " : "", a->conf.conns[i].name);
        rc |= bl_buf_puts(&a->req, "\r\nConnection: Upgrade\r\nUpgrade: byline-agent/1\r\n\r\n");
    }
    if (k.base)
        OPENSSL_cleanse(k.base, k.cap);
    bl_buf_free(&k);
    return rc ? BL_ERROR : BL_OK;
}

static int bl_ag_setup(bl_ag_t *a, bl_buf_t *err)
{
    const char *why;
    if (bl_url_parse(a->o->gateway, strlen(a->o->gateway), &a->gw, &why) != BL_OK) {
        bl_buf_printf(err, "--gateway \"%.200s\" %s", a->o->gateway, why);
        return BL_ERROR;
    }
    if (bl_agentconf_load(a->o->config, &a->conf, err) != BL_OK || bl_agentconf_open(&a->conf, err) != BL_OK)
        return BL_ERROR;
    if ((a->gw_ctx = bl_tls_client_ctx(a->o->ca, NULL, NULL, err)) == NULL)
        return BL_ERROR;
    if (bl_ag_request(a, err) != BL_OK)
        return BL_ERROR;
    if ((a->loop = bl_loop_new()) == NULL) {
        bl_buf_printf(err, "cannot create the event loop");
        return BL_ERROR;
    }
    return BL_OK;
}

static void bl_ag_free(bl_ag_t *a)
{
    bl_mux_free(a->mux, "the agent is stopping");
    bl_mux_free(a->dead_mux, "the agent is stopping");
    if (a->sock)
        bl_sock_close(a->sock);
    for (size_t i = 0; i < a->conf.n; i++) /* idle API server connections, while the loop is there */
        bl_agentpool_free(&a->conf.conns[i]);
    if (a->loop) {
        bl_timer_cancel(a->loop, &a->timer);
        bl_loop_undefer(a->loop, &a->reap);
        bl_loop_run_once(a->loop);
        bl_loop_free(a->loop);
    }
    bl_agentconf_free(&a->conf);
    SSL_CTX_free(a->gw_ctx);
    if (a->req.base)
        OPENSSL_cleanse(a->req.base, a->req.cap);
    bl_buf_free(&a->req);
    bl_buf_free(&a->in);
}

int bl_agent_run(const bl_agent_opts_t *o, bl_buf_t *err)
{
    bl_ag_t a = { .o = o };
    int rc = BL_ERROR;
    a.timer.cb = bl_ag_timer;
    a.timer.data = &a;
    a.reap.cb = bl_ag_reap;
    a.reap.data = &a;
    signal(SIGPIPE, SIG_IGN);
    if (bl_ag_setup(&a, err) != BL_OK)
        goto end;
    struct sigaction sa = { .sa_handler = bl_ag_on_signal };
    sigemptyset(&sa.sa_mask);
    bl_ag_sigloop = a.loop;
    bl_loop_on_wake(a.loop, bl_ag_wake, &a);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    bl_info("byline agent %s: dialling %s for %zu connection(s)", BL_VERSION, o->gateway, a.conf.n);
    bl_ag_dial(&a);
    rc = bl_loop_run(a.loop);
    bl_ag_sigloop = NULL;
end:
    bl_ag_free(&a);
    return rc;
}
