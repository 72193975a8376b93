/*
 * server.c - the gateway process: TLS contexts, the audit writer, one
 * event loop per worker thread (each with its own SO_REUSEPORT listener),
 * and signal handling: SIGTERM/SIGINT drain gracefully, a second one
 * stops at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "core/metrics.h"
#include "audit/capsync.h"
#include "audit/note.h"
#include "proxy/reload.h"
#include "net/tls.h"
#include "proxy/agent_hub.h"
#include "proxy/proxy.h"
#include "policy/policy.h"
#include "review/store.h"

#define BL_LISTEN_BACKLOG 4096
#define BL_DRAIN_POLL_MS  50

static void bl_worker_accept(bl_io_t *io, unsigned events)
{
    bl_worker_t *w = io->data;
    (void)events;
    while (io->fd >= 0) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            bl_conn_accept(w, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Edge-triggered: no new edge will come for the backlog. Retry soon. */
            bl_warn("accept: %s; retrying in 100ms", strerror(errno));
            bl_timer_set(w->loop, &w->accept_retry, 100);
        }
        return;
    }
}

static void bl_worker_accept_retry(bl_timer_t *t)
{
    bl_worker_t *w = t->data;
    bl_worker_accept(&w->listen_io, BL_IO_READ);
}

/* Stops the loop once every connection is gone, or at the deadline. */
static void bl_worker_drain_tick(bl_timer_t *t)
{
    bl_worker_t *w = t->data;
    if (w->nconns == 0 || bl_loop_now(w->loop) >= w->drain_until) {
        while (w->conns)
            bl_conn_close(w->conns);
        bl_loop_stop(w->loop);
        return;
    }
    bl_timer_set(w->loop, t, BL_DRAIN_POLL_MS);
}

/* Runs in the worker thread when the main thread asks it to drain or stop. */
static void bl_worker_on_wake(bl_loop_t *loop, void *data)
{
    bl_worker_t *w = data;
    (void)loop;
    bl_audit_batch_poll(&w->audit); /* the ledger committed our batch */
    bl_jwks_cache_poll(w->srv->jwks, w->loop); /* JWT keys a parked request waited for */
    if (!w->srv->draining)
        return;
    if (w->draining) { /* asked again: stop now */
        if (w->srv->draining > 1) {
            w->drain_until = bl_loop_now(w->loop);
            bl_timer_set(w->loop, &w->drain_deadline, 0);
        }
        return;
    }
    w->draining = 1;
    if (w->listen_io.fd >= 0) {
        bl_loop_del(w->loop, &w->listen_io);
        close(w->listen_io.fd);
        w->listen_io.fd = -1;
    }
    w->drain_until = bl_loop_now(w->loop) + (w->srv->draining > 1 ? 0 : w->srv->cfg->drain_timeout_ms);
    for (bl_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        bl_conn_drain(c);
    }
    w->drain_deadline.cb = bl_worker_drain_tick;
    w->drain_deadline.data = w;
    bl_timer_set(w->loop, &w->drain_deadline, 0);
}

static void *bl_worker_main(void *arg)
{
    bl_worker_t *w = arg;
    if (bl_loop_run(w->loop) != BL_OK)
        bl_error("worker %d: event loop failed: %s", w->index, strerror(errno));
    __atomic_sub_fetch(&w->srv->running, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Sets up worker `i`: loop, listener, upstreams. BL_OK or BL_ERROR (logged). */
static int bl_worker_init(bl_server_t *srv, int i)
{
    const bl_config_t *cfg = srv->cfg;
    bl_worker_t *w = &srv->workers[i];
    const char *reason = NULL;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    w->srv = srv;
    w->index = i;
    w->listen_io.fd = -1;
    w->loop = bl_loop_new();
    w->upstreams = calloc(cfg->nconns, sizeof(*w->upstreams));
    w->hdrs = calloc(cfg->max_headers, sizeof(*w->hdrs));
    bl_audit_batch_init(&w->audit, srv->ledger, w->loop);
    /* An intent line holds the request JSON and the action, each escaped. */
    bl_buf_init(&w->scratch, 2 * (BL_KREQ_JSON_MAX + BL_KREQ_RENDER_MAX) + 16 * 1024);
    if (w->loop == NULL || w->upstreams == NULL || w->hdrs == NULL)
        goto fail;
    for (size_t k = 0; k < cfg->nconns; k++) {
        if (cfg->conns[k].via_agent)
            w->upstreams[k] = bl_upstream_agent_new(w->loop, &cfg->conns[k], srv->hub, k, &err);
        else
            w->upstreams[k] = bl_upstream_direct_new(w->loop, &cfg->conns[k], srv->upstream_tls[k],
                                                     cfg->connect_timeout_ms, &err);
        if (w->upstreams[k] == NULL) {
            bl_error("connection %s: %s", cfg->conns[k].name, bl_buf_cstr(&err));
            goto fail;
        }
    }
    w->listen_io.fd = bl_sock_listen(cfg->listen_host, cfg->listen_port, BL_LISTEN_BACKLOG, &reason);
    if (w->listen_io.fd < 0) {
        bl_error("%s", reason);
        goto fail;
    }
    w->listen_io.cb = bl_worker_accept;
    w->listen_io.data = w;
    w->accept_retry.cb = bl_worker_accept_retry;
    w->accept_retry.data = w;
    if (bl_loop_add(w->loop, &w->listen_io) != BL_OK)
        goto fail;
    bl_loop_on_wake(w->loop, bl_worker_on_wake, w);
    if (i == 0 && srv->reviews) { /* decisions reach the ledger even if no held request comes back */
        w->review_poll.cb = bl_req_review_poll;
        w->review_poll.data = w;
        bl_timer_set(w->loop, &w->review_poll, BL_REVIEW_POLL_MS);
    }
    bl_buf_free(&err);
    return BL_OK;
fail:
    bl_buf_free(&err);
    return BL_ERROR;
}

static void bl_worker_fini(bl_worker_t *w)
{
    if (w->loop == NULL)
        return;
    while (w->conns)
        bl_conn_close(w->conns);
    if (w->listen_io.fd >= 0)
        close(w->listen_io.fd);
    for (size_t k = 0; w->upstreams && k < w->srv->cfg->nconns; k++)
        if (w->upstreams[k])
            w->upstreams[k]->ops->free(w->upstreams[k]);
    bl_timer_cancel(w->loop, &w->review_poll);
    bl_audit_batch_fini(&w->audit); /* the closed connections' result lines */
    /* One more pass runs the deferred frees of sockets and connections. */
    bl_loop_stop(w->loop);
    bl_loop_run_once(w->loop);
    bl_idcache_release(&w->ids);
    bl_loop_free(w->loop);
    free(w->upstreams);
    free(w->hdrs);
    bl_buf_free(&w->scratch);
}

/* Opens the audit ledger with the configured key, creating the key pair
 * on first start. Returns it or NULL with the reason. */
static bl_ledger_t *bl_server_ledger(const bl_config_t *cfg, bl_buf_t *err)
{
    char key[4096], pub[4096], origin[300], host[256] = "localhost";
    snprintf(key, sizeof(key), "%s", cfg->audit_signing_key ? cfg->audit_signing_key : "");
    snprintf(pub, sizeof(pub), "%s", cfg->audit_signing_pub ? cfg->audit_signing_pub : "");
    if (!key[0])
        snprintf(key, sizeof(key), "%.4000s/audit-signing.key", cfg->dir);
    if (!pub[0])
        snprintf(pub, sizeof(pub), "%.4000s/audit-signing.pub", cfg->dir);
    gethostname(host, sizeof(host) - 1);
    snprintf(origin, sizeof(origin), "%s", cfg->audit_origin ? cfg->audit_origin : "");
    if (!origin[0])
        snprintf(origin, sizeof(origin), "byline/%s", host);
    if (access(key, F_OK) != 0) {
        if (bl_note_keygen(key, pub, err) != BL_OK)
            return NULL;
        bl_warn("audit: created the checkpoint signing key %s; give auditors %s", key, pub);
    }
    bl_ledger_cfg_t lc = {
        .dir = cfg->audit_dir, .signing_key = key, .origin = origin, .sync = cfg->audit_sync,
        .commit_delay_ms = cfg->audit_commit_delay_ms, .segment_bytes = cfg->audit_segment_bytes,
        .space_warn = cfg->audit_space_warn, .space_warn_pct = cfg->audit_space_warn_pct,
        .space_refuse = cfg->audit_space_refuse, .space_refuse_pct = cfg->audit_space_refuse_pct,
        .version = BL_VERSION,
    };
    return bl_ledger_open(&lc, err);
}

/* Returns 1 if a rule has effect review, the built-in blast-radius rule
 * included: only then is the review store opened (docs/POLICY.md "Review"). */
static int bl_server_has_review(const bl_config_t *cfg)
{
    if (bl_policy_guard(cfg->policy)->builtins & BL_BUILTIN_BLAST_RADIUS)
        return 1;
    for (size_t i = 0; i < bl_policy_count(cfg->policy); i++)
        if (bl_policy_rule(cfg->policy, i)->effect == BL_EFFECT_REVIEW)
            return 1;
    return 0;
}

/* Creates the TLS contexts and the audit ledger. BL_OK or BL_ERROR (logged). */
static int bl_server_open(bl_server_t *srv)
{
    const bl_config_t *cfg = srv->cfg;
    bl_buf_t err;
    bl_buf_init(&err, 2048);
    int rc = BL_ERROR;
    srv->tls = bl_tls_server_ctx(cfg->tls_cert, cfg->tls_key, cfg->client_ca, &err);
    if (srv->tls == NULL)
        goto end;
    srv->upstream_tls = calloc(cfg->nconns, sizeof(*srv->upstream_tls));
    if (srv->upstream_tls == NULL)
        goto end;
    int agents = 0;
    for (size_t k = 0; k < cfg->nconns; k++) {
        const bl_connection_t *c = &cfg->conns[k];
        agents |= c->via_agent;
        if (c->via_agent)
            continue; /* the agent dials the API server */
        srv->upstream_tls[k] = bl_tls_client_ctx(c->ca_file, c->cert_file, c->key_file, &err);
        if (srv->upstream_tls[k] == NULL)
            goto end;
    }
    if (agents && (srv->hub = bl_hub_start(cfg, &err)) == NULL)
        goto end;
    srv->ledger = bl_server_ledger(cfg, &err);
    if (srv->ledger == NULL)
        goto end;
    if ((srv->capsync = bl_capsync_start(srv->ledger, BL_CAPSYNC_MAX)) == NULL)
        goto end;
    if (cfg->nissuers > 0 && ((srv->jwks = bl_jwks_cache_new(cfg, NULL)) == NULL ||
                              bl_jwks_cache_start(srv->jwks, &err) != BL_OK))
        goto end;
    if (cfg->metrics_listen && bl_metrics_start(cfg->metrics_listen, &err) != BL_OK)
        goto end;
    if ((srv->idreg = bl_idreg_new(cfg)) == NULL)
        goto end;
    if (bl_server_has_review(cfg) && (srv->reviews = bl_review_open(cfg->dir, &err)) == NULL)
        goto end;
    rc = BL_OK;
end:
    if (rc != BL_OK)
        bl_error("%s", bl_buf_size(&err) ? bl_buf_cstr(&err) : "out of memory");
    bl_buf_free(&err);
    return rc;
}

static void bl_server_close(bl_server_t *srv)
{
    for (int i = 0; srv->workers && i < srv->nworkers; i++)
        bl_worker_fini(&srv->workers[i]);
    free(srv->workers);
    bl_hub_stop(srv->hub); /* after the workers: none can ask it for a tunnel now */
    for (size_t k = 0; srv->upstream_tls && k < srv->cfg->nconns; k++)
        SSL_CTX_free(srv->upstream_tls[k]);
    free(srv->upstream_tls);
    SSL_CTX_free(srv->tls);
    bl_capsync_stop(srv->capsync); /* after the workers, before the ledger: its results go in */
    bl_ledger_close(srv->ledger); /* after the workers: their last results are in */
    bl_jwks_cache_free(srv->jwks);
    bl_idreg_free(srv->idreg); /* after the workers: writes the last-used times */
    bl_review_close(srv->reviews);
    if (srv->cfg->metrics_listen)
        bl_metrics_stop();
}

/* Waits for signals until every worker has stopped: the first SIGTERM or
 * SIGINT drains, the next one stops at once; SIGHUP reloads the
 * configuration (proxy/reload.h), as does a change to its files. */
static void bl_server_signals(bl_server_t *srv, sigset_t *set, bl_reload_t *rl)
{
    const struct timespec tick = { 0, 100 * 1000000 };
    if (rl != NULL)
        bl_reload_attach(rl, srv->idreg, srv->ledger, srv->hub);
    while (__atomic_load_n(&srv->running, __ATOMIC_ACQUIRE) > 0) {
        int sig = sigtimedwait(set, NULL, &tick);
        struct timespec mono;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        int64_t now_ms = (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000;
        /* A config file changed (a revoke, a rule), or SIGHUP: reload now.
         * Without a reloader (out of memory) the identities still reload. */
        if (rl != NULL)
            bl_reload_tick(rl, now_ms, sig == SIGHUP && !srv->draining);
        else
            bl_idreg_tick(srv->idreg, now_ms, 0);
        if (sig < 0 || sig == SIGHUP)
            continue;
        srv->draining++;
        if (srv->draining == 1)
            bl_info("%s: draining (up to %ums); send it again to stop now", strsignal(sig), srv->cfg->drain_timeout_ms);
        else
            bl_info("%s: stopping now", strsignal(sig));
        for (int i = 0; i < srv->nworkers; i++)
            bl_loop_wake(srv->workers[i].loop);
    }
}

/* Raises the soft open-file limit to the hard one (as Go's runtime and
 * nginx's worker_rlimit_nofile do): every client connection holds a
 * descriptor and so does its upstream connection, and 1024, the usual soft
 * limit, is a few hundred watches. Says what the limit is when it is below
 * what limits.max_connections would need. */
static void bl_server_nofile(const bl_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < 2 * (uint64_t)cfg->max_connections + 64)
        bl_info("open-file limit %llu: about %llu connections per process before accept() fails "
                "(limits.max_connections is %u per worker)",
                (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur - 64) / 2, cfg->max_connections);
}

int bl_server_run(const bl_config_t *cfg)
{
    bl_server_t srv = { .cfg = cfg };
    sigset_t set, old;
    int started = 0, rc = BL_ERROR;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit makes ledger writes fail (and latch), not kill us */
    pthread_sigmask(SIG_BLOCK, &set, &old); /* workers inherit the mask */
    /* Before anything reads a file (agent keys, TLS): a change from here on is seen. */
    bl_reload_t *rl = bl_reload_new(cfg);
    if (bl_server_open(&srv) != BL_OK)
        goto end;
    srv.nworkers = cfg->workers > 0 ? cfg->workers : 1;
    bl_server_nofile(cfg);
    srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers));
    if (srv.workers == NULL)
        goto end;
    for (int i = 0; i < srv.nworkers; i++)
        if (bl_worker_init(&srv, i) != BL_OK)
            goto end;
    for (; started < srv.nworkers; started++) {
        __atomic_add_fetch(&srv.running, 1, __ATOMIC_RELEASE);
        if (pthread_create(&srv.workers[started].thread, NULL, bl_worker_main, &srv.workers[started]) != 0) {
            __atomic_sub_fetch(&srv.running, 1, __ATOMIC_RELEASE);
            goto end;
        }
        char name[16];
        snprintf(name, sizeof(name), "byline-w%d", started % 10000);
        pthread_setname_np(srv.workers[started].thread, name);
    }
    bl_info("listening on https://%s:%d with %d worker(s); %zu connection(s), %zu identit%s; audit in %s",
            cfg->listen_host, cfg->listen_port, srv.nworkers, cfg->nconns, cfg->nids,
            cfg->nids == 1 ? "y" : "ies", cfg->audit_dir);
    bl_server_signals(&srv, &set, rl);
    rc = BL_OK;
end:
    if (started < srv.nworkers && srv.workers) {
        srv.draining = 2;
        for (int i = 0; i < started; i++)
            bl_loop_wake(srv.workers[i].loop);
    }
    for (int i = 0; i < started; i++)
        pthread_join(srv.workers[i].thread, NULL);
    bl_server_close(&srv);
    bl_reload_free(rl);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == BL_OK)
        bl_info("stopped");
    return rc;
}
