/* agent_hub.c - agent sessions in one thread; see agent_hub.h. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "core/log.h"
#include "core/metrics.h"
#include "net/h2mux.h"
#include "net/sock.h"
#include "proxy/agent_hub.h"

#define BL_HUB_NAME_MAX 64
#define BL_HUB_MAX_PER_CONN 16384   /* tunnels in flight per connection, over all its agents
                                       (each agent session also takes at most 4096) */
#define BL_HUB_101 "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: byline-agent/1\r\n\r\n"

typedef struct bl_hubagent_s bl_hubagent_t;

/* One agent session (hub thread only). */
struct bl_hubagent_s {
    bl_hub_t *hub;
    bl_mux_t *mux;
    bl_hubagent_t *prev, *next;
    char name[BL_HUB_NAME_MAX];
    char peer[INET6_ADDRSTRLEN];
    unsigned char serves[BL_CONFIG_MAX_CONNS];
    unsigned char sha[BL_TOKEN_HASH_LEN]; /* its key's hash: a reload that replaced the key cuts it off */
    size_t ntuns;
    int counted;                 /* included in hub->online[] */
    bl_defer_t reap;
    const char *why;             /* why the session ended */
};

/* One tunnel's note, so a failure reaches the worker's end. */
typedef struct {
    bl_hubagent_t *a;
    bl_fdnote_t *note;
    size_t conn;
} bl_hubtun_t;

/* A request from a worker, queued for the hub thread. */
typedef struct bl_hubmsg_s {
    struct bl_hubmsg_s *next;
    int fd;
    SSL *ssl;                    /* adopt: the agent's connection; open: NULL */
    size_t conn;                 /* open: the connection index */
    bl_fdnote_t *note;
    char peer[INET6_ADDRSTRLEN];
    char name[BL_HUB_NAME_MAX];
    unsigned char serves[BL_CONFIG_MAX_CONNS];
    unsigned char sha[BL_TOKEN_HASH_LEN];
    size_t npre;
    char pre[];
} bl_hubmsg_t;

/* A key registry and its references (the registry first: a pointer to
 * it is a pointer to the holder). */
typedef struct {
    bl_agentkeys_t k;
    _Atomic long refs;
} bl_hubkeys_t;

struct bl_hub_s {
    const bl_config_t *cfg;
    bl_hubkeys_t *keys;           /* in force; swapped under mu by a reload */
    bl_loop_t *loop;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    bl_hubmsg_t *q, **qtail;     /* guarded by mu */
    int stopping;                /* guarded by mu */
    int rekey;                   /* guarded by mu: a new key registry is in force */
    bl_hubagent_t *agents;
    size_t rr;                   /* round-robin start among equally busy agents */
    int online[BL_CONFIG_MAX_CONNS]; /* atomic: live sessions per connection */
    size_t inflight[BL_CONFIG_MAX_CONNS]; /* tunnels per connection */
};

/* --- sessions --- */

/* Sets byline_agent_connections_unserved from hub->online[]. */
static void bl_hub_unserved(const bl_hub_t *h)
{
    int64_t n = 0;
    for (size_t k = 0; k < h->cfg->nconns; k++)
        n += h->cfg->conns[k].via_agent && __atomic_load_n(&h->online[k], __ATOMIC_RELAXED) == 0;
    bl_metric_set(BL_M_AGENT_UNSERVED, n);
}

static void bl_hub_count(bl_hubagent_t *a, int delta)
{
    for (size_t k = 0; k < a->hub->cfg->nconns; k++)
        if (a->serves[k])
            __atomic_add_fetch(&a->hub->online[k], delta, __ATOMIC_RELAXED);
    a->counted = delta > 0;
    bl_metric_add(BL_M_AGENT_SESSIONS, delta);
    bl_hub_unserved(a->hub);
}

static void bl_hub_tun_closed(void *data, void *udata, int ok, const char *why)
{
    bl_hubagent_t *a = data;
    bl_hubtun_t *t = udata;
    char msg[192];
    if (!ok) {
        const char *cname = a->hub->cfg->conns[t->conn].name;
        bl_metric_add(BL_M_AGENT_TUNNEL_FAILURES, 1);
        if (a->why)
            snprintf(msg, sizeof(msg), "agent for %s disconnected", cname);
        else
            snprintf(msg, sizeof(msg), "agent %s for %s: %s", a->name, cname, why);
        bl_fdnote_set(t->note, msg);
    }
    bl_fdnote_unref(t->note);
    a->ntuns--;
    a->hub->inflight[t->conn]--;
    free(t);
}

static void bl_hub_reap(bl_defer_t *d)
{
    bl_hubagent_t *a = d->data;
    bl_hub_t *h = a->hub;
    if (a->prev)
        a->prev->next = a->next;
    else
        h->agents = a->next;
    if (a->next)
        a->next->prev = a->prev;
    bl_mux_free(a->mux, a->why);
    free(a);
}

/* The session is over: no new tunnels; the rest goes next loop turn. */
static void bl_hub_agent_dead(void *data, const char *why)
{
    bl_hubagent_t *a = data;
    if (a->why)
        return;
    a->why = why ? why : "session ended";
    if (a->counted)
        bl_hub_count(a, -1);
    bl_warn("agent %s (%s) disconnected: %s; %zu tunnel(s) fail", a->name, a->peer, a->why, a->ntuns);
    a->reap.cb = bl_hub_reap;
    a->reap.data = a;
    bl_loop_defer(a->hub->loop, &a->reap);
}

/* The agent is draining (SIGTERM): it serves what it has, nothing new, so
 * it no longer counts as online (new requests get the 503 if it was the last). */
static void bl_hub_agent_closing(void *data)
{
    bl_hubagent_t *a = data;
    if (a->counted)
        bl_hub_count(a, -1);
    bl_info("agent %s (%s) is draining; %zu tunnel(s) open", a->name, a->peer, a->ntuns);
}

/* Narrows a->serves to what its key in `reg` (same name and hash) still
 * allows, keeping hub->online[] in step. Returns NULL if it still serves a
 * connection, else why it must be cut off (static). */
static const char *bl_hub_rekey_agent(bl_hubagent_t *a, const bl_agentkeys_t *reg)
{
    const bl_config_t *cfg = a->hub->cfg;
    const bl_agentkey_t *e = NULL;
    unsigned char serves[BL_CONFIG_MAX_CONNS] = { 0 };
    int n = 0, counted = a->counted;
    for (size_t i = 0; i < reg->n && e == NULL; i++)
        if (strcmp(reg->keys[i].name, a->name) == 0 && CRYPTO_memcmp(reg->keys[i].sha256, a->sha, sizeof(a->sha)) == 0)
            e = &reg->keys[i];
    if (e == NULL)
        return "its agent key was removed or replaced";
    for (size_t k = 0; k < cfg->nconns; k++) {
        serves[k] = a->serves[k] && bl_agentkey_serves(e, cfg->conns[k].name, strlen(cfg->conns[k].name));
        n += serves[k];
    }
    if (counted)
        bl_hub_count(a, -1);
    memcpy(a->serves, serves, sizeof(a->serves));
    if (counted)
        bl_hub_count(a, 1);
    return n ? NULL : "its agent key no longer names a connection it serves";
}

/* Checks agent a against the registry in force; one whose key is gone or
 * serves nothing is cut off at once (its open tunnels fail: a revoked
 * agent must not carry traffic, not even a long watch). Returns 1 if so. */
static int bl_hub_recheck(bl_hubagent_t *a)
{
    const bl_agentkeys_t *reg = bl_hub_keys_get(a->hub);
    const char *why = bl_hub_rekey_agent(a, reg);
    bl_hub_keys_put(reg);
    if (why == NULL)
        return 0;
    bl_warn("agent %s (%s) cut off: %s", a->name, a->peer, why);
    bl_hub_agent_dead(a, why);
    return 1;
}

static void bl_hub_adopt_msg(bl_hub_t *h, bl_hubmsg_t *m)
{
    static const bl_mux_cb_t cb = { .closed = bl_hub_tun_closed, .dead = bl_hub_agent_dead,
                                    .closing = bl_hub_agent_closing };
    bl_sock_t *s = bl_sock_adopt(h->loop, m->fd, m->ssl, m->peer);
    bl_hubagent_t *a = s ? calloc(1, sizeof(*a)) : NULL;
    if (a == NULL || bl_stream_write(&s->stream, BL_HUB_101, sizeof(BL_HUB_101) - 1) != sizeof(BL_HUB_101) - 1) {
        bl_warn("agent %s (%s): could not start its session", m->name, m->peer);
        free(a);
        if (s)
            bl_sock_close(s);
        return;
    }
    a->hub = h;
    snprintf(a->name, sizeof(a->name), "%s", m->name);
    snprintf(a->peer, sizeof(a->peer), "%s", m->peer);
    memcpy(a->serves, m->serves, sizeof(a->serves));
    memcpy(a->sha, m->sha, sizeof(a->sha));
    bl_mux_cb_t c = cb;
    c.data = a;
    a->mux = bl_mux_new(h->loop, &s->stream, 0, &c, m->pre, m->npre);
    if (a->mux == NULL) {
        bl_warn("agent %s (%s): could not start HTTP/2", a->name, a->peer);
        free(a);
        return;
    }
    a->next = h->agents;
    if (h->agents)
        h->agents->prev = a;
    h->agents = a;
    /* A reload may have come between the worker's check and now. */
    if (bl_hub_recheck(a))
        return;
    bl_hub_count(a, 1);
    bl_info("agent %s connected from %s", a->name, a->peer);
}

static int bl_hub_usable(const bl_hubagent_t *a, size_t k)
{
    return a->serves[k] && !a->why && !bl_mux_closing(a->mux);
}

/* Returns the least busy live agent serving connection k, or NULL; equally
 * busy ones take turns. */
static bl_hubagent_t *bl_hub_pick(bl_hub_t *h, size_t k)
{
    size_t least = SIZE_MAX, ties = 0;
    for (bl_hubagent_t *a = h->agents; a; a = a->next) {
        if (!bl_hub_usable(a, k) || a->ntuns > least)
            continue;
        ties = a->ntuns < least ? 1 : ties + 1;
        least = a->ntuns;
    }
    if (ties == 0)
        return NULL;
    size_t want = h->rr++ % ties;
    for (bl_hubagent_t *a = h->agents; a; a = a->next)
        if (bl_hub_usable(a, k) && a->ntuns == least && want-- == 0)
            return a;
    return NULL;
}

static void bl_hub_open_msg(bl_hub_t *h, bl_hubmsg_t *m)
{
    const char *cname = h->cfg->conns[m->conn].name;
    char msg[160];
    bl_hubagent_t *a = h->inflight[m->conn] < BL_HUB_MAX_PER_CONN ? bl_hub_pick(h, m->conn) : NULL;
    bl_hubtun_t *t = a ? calloc(1, sizeof(*t)) : NULL;
    bl_stream_t *local = t ? bl_fdstream_new(h->loop, m->fd) : NULL;
    if (local == NULL) {
        snprintf(msg, sizeof(msg), a ? "out of memory for a tunnel to %s"
                                   : h->inflight[m->conn] >= BL_HUB_MAX_PER_CONN ? "too many requests in flight through the agents for %s"
                                   : "no agent online for connection %s", cname);
        bl_fdnote_set(m->note, msg);
        bl_fdnote_unref(m->note);
        if (t == NULL)
            close(m->fd);
        free(t);
        bl_metric_add(BL_M_AGENT_TUNNEL_FAILURES, 1);
        return;
    }
    t->a = a;
    t->note = m->note;
    t->conn = m->conn;
    a->ntuns++;
    h->inflight[m->conn]++;
    if (bl_mux_open(a->mux, cname, local, t) != BL_OK) { /* local is released */
        snprintf(msg, sizeof(msg), "agent %s for %s cannot take more requests", a->name, cname);
        bl_fdnote_set(t->note, msg);
        bl_fdnote_unref(t->note);
        a->ntuns--;
        h->inflight[m->conn]--;
        free(t);
        bl_metric_add(BL_M_AGENT_TUNNEL_FAILURES, 1);
        return;
    }
    bl_metric_add(BL_M_AGENT_TUNNELS, 1);
}

/* --- the thread and its queue --- */

static void bl_hub_free_msg(bl_hubmsg_t *m)
{
    if (m->ssl)
        SSL_free(m->ssl);
    if (m->note) {
        bl_fdnote_set(m->note, "byline is shutting down");
        bl_fdnote_unref(m->note);
    }
    close(m->fd);
    free(m);
}

static void bl_hub_wake(bl_loop_t *loop, void *data)
{
    bl_hub_t *h = data;
    pthread_mutex_lock(&h->mu);
    bl_hubmsg_t *m = h->q;
    int stopping = h->stopping, rekey = h->rekey;
    h->rekey = 0;
    h->q = NULL;
    h->qtail = &h->q;
    pthread_mutex_unlock(&h->mu);
    while (m) {
        bl_hubmsg_t *next = m->next;
        if (stopping) {
            bl_hub_free_msg(m);
        } else {
            if (m->ssl)
                bl_hub_adopt_msg(h, m);
            else
                bl_hub_open_msg(h, m);
            free(m);
        }
        m = next;
    }
    if (rekey && !stopping)          /* reaps are deferred: the list stays walkable */
        for (bl_hubagent_t *a = h->agents; a; a = a->next)
            if (!a->why)
                bl_hub_recheck(a);
    if (stopping) {
        for (bl_hubagent_t *a = h->agents; a; a = a->next)
            bl_hub_agent_dead(a, "byline is shutting down");
        bl_loop_stop(loop);
    }
}

static void bl_hub_post(bl_hub_t *h, bl_hubmsg_t *m)
{
    pthread_mutex_lock(&h->mu);
    int stopping = h->stopping;
    if (!stopping) {
        *h->qtail = m;
        h->qtail = &m->next;
    }
    pthread_mutex_unlock(&h->mu);
    if (stopping)
        bl_hub_free_msg(m);
    else
        bl_loop_wake(h->loop);
}

static void *bl_hub_main(void *arg)
{
    bl_hub_t *h = arg;
    if (bl_loop_run(h->loop) != BL_OK)
        bl_error("agent hub: event loop failed");
    return NULL;
}

/* --- public --- */

bl_hub_t *bl_hub_start(const bl_config_t *cfg, bl_buf_t *err)
{
    char path[4200];
    bl_hub_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cfg = cfg;
    h->qtail = &h->q;
    pthread_mutex_init(&h->mu, NULL);
    snprintf(path, sizeof(path), "%s/agent-keys.yaml", cfg->dir);
    if ((h->keys = calloc(1, sizeof(*h->keys))) != NULL)
        atomic_init(&h->keys->refs, 1);
    if (h->keys == NULL || bl_agentkeys_load(path, &h->keys->k, err) != BL_OK ||
        (h->loop = bl_loop_new()) == NULL) {
        bl_hub_stop(h);
        return NULL;
    }
    bl_loop_on_wake(h->loop, bl_hub_wake, h);
    if (pthread_create(&h->thread, NULL, bl_hub_main, h) != 0) {
        bl_buf_printf(err, "cannot start the agent hub thread");
        bl_hub_stop(h);
        return NULL;
    }
    pthread_setname_np(h->thread, "byline-hub");
    h->started = 1;
    bl_hub_unserved(h); /* every via: agent connection, until an agent dials in */
    return h;
}

void bl_hub_stop(bl_hub_t *h)
{
    if (h == NULL)
        return;
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stopping = 1;
        pthread_mutex_unlock(&h->mu);
        bl_loop_wake(h->loop);
        pthread_join(h->thread, NULL);
    }
    while (h->agents) {              /* reaps that the stop left queued */
        bl_hubagent_t *a = h->agents;
        if (a->reap.queued)
            bl_loop_undefer(h->loop, &a->reap);
        bl_hub_reap(&a->reap);
    }
    if (h->loop) {
        bl_loop_run_once(h->loop);   /* deferred frees of sockets */
        bl_loop_free(h->loop);
    }
    while (h->q) {
        bl_hubmsg_t *m = h->q;
        h->q = m->next;
        bl_hub_free_msg(m);
    }
    bl_hub_keys_put(h->keys ? &h->keys->k : NULL);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const bl_agentkeys_t *bl_hub_keys_get(bl_hub_t *h)
{
    pthread_mutex_lock(&h->mu);
    bl_hubkeys_t *hk = h->keys;
    atomic_fetch_add_explicit(&hk->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&h->mu);
    return &hk->k;
}

void bl_hub_keys_put(const bl_agentkeys_t *k)
{
    bl_hubkeys_t *hk = (bl_hubkeys_t *)k;
    if (hk == NULL || atomic_fetch_sub_explicit(&hk->refs, 1, memory_order_acq_rel) != 1)
        return;
    bl_agentkeys_free(&hk->k);
    free(hk);
}

int bl_hub_keys_install(bl_hub_t *h, bl_agentkeys_t *k)
{
    bl_hubkeys_t *hk = calloc(1, sizeof(*hk));
    if (hk == NULL) {
        bl_agentkeys_free(k);
        return BL_ERROR;
    }
    hk->k = *k;
    memset(k, 0, sizeof(*k));
    atomic_init(&hk->refs, 1);
    pthread_mutex_lock(&h->mu);
    bl_hubkeys_t *old = h->keys;
    h->keys = hk;
    h->rekey = 1;                /* the hub thread re-checks live agents */
    pthread_mutex_unlock(&h->mu);
    bl_loop_wake(h->loop);
    bl_hub_keys_put(&old->k);
    return BL_OK;
}

int bl_hub_online(const bl_hub_t *h, size_t k)
{
    return __atomic_load_n(&h->online[k], __ATOMIC_RELAXED);
}

void bl_hub_adopt(bl_hub_t *h, int fd, SSL *ssl, const char *peer, const char *name,
                  const unsigned char *sha256, const unsigned char *serves, const void *pre, size_t npre)
{
    bl_hubmsg_t *m = calloc(1, sizeof(*m) + npre);
    if (m == NULL) {
        SSL_free(ssl);
        close(fd);
        return;
    }
    m->fd = fd;
    m->ssl = ssl;
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    snprintf(m->name, sizeof(m->name), "%s", name);
    memcpy(m->serves, serves, sizeof(m->serves));
    memcpy(m->sha, sha256, sizeof(m->sha));
    memcpy(m->pre, pre, npre);
    m->npre = npre;
    bl_hub_post(h, m);
}

void bl_hub_open(bl_hub_t *h, size_t k, int fd, bl_fdnote_t *note)
{
    bl_hubmsg_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        bl_fdnote_set(note, "out of memory");
        bl_fdnote_unref(note);
        close(fd);
        return;
    }
    m->fd = fd;
    m->conn = k;
    m->note = note;
    bl_hub_post(h, m);
}
