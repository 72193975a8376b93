/*
 * metrics.c - process-wide counters and gauges, and the plain-HTTP
 * /metrics listener that serves them in the Prometheus text format 0.0.4.
 *
 * Updates are relaxed atomic adds on a fixed array: no lock, no allocation,
 * callable from any thread on the hot path. A scrape reads each value once;
 * values read at slightly different instants are fine for monitoring (the
 * histogram's count is the sum of the buckets it read, so it always agrees
 * with its own +Inf bucket).
 *
 * The listener is one thread polling the listening socket, a wake pipe and
 * up to BL_METRICS_CONNS clients, each with a deadline: a client that sends
 * slowly or not at all holds one slot until its deadline and never delays
 * the others. One request per connection (Connection: close), a bounded
 * request head, GET or HEAD /metrics and nothing else. The endpoint has no
 * TLS and no authentication; it carries counters only, never an identity,
 * a connection name, a request or a secret (docs/CONFIG.md, metrics).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "core/metrics.h"

#ifndef BL_METRICS_TIMEOUT_MS
#define BL_METRICS_TIMEOUT_MS 5000      /* a whole exchange: read, answer, close */
#endif
#define BL_METRICS_DRAIN_MS   1000      /* after the answer, for the client's FIN */
#define BL_METRICS_CONNS      16        /* clients served at once */
#define BL_METRICS_HEAD_MAX   8192      /* request line and headers */
#define BL_METRICS_OUT_MAX    (1 << 20) /* one response */
#define BL_METRICS_LISTEN_MAX 300       /* "host:port" text */

/* ---- values ---- */

static _Atomic int64_t bl_metric_values[BL_M_COUNT];

/* Commit latency buckets: upper bounds in microseconds and as Prometheus
 * writes them (seconds). A latency goes into the first bucket whose bound
 * is >= it; the last slot counts those above every bound (+Inf only). */
static const uint64_t bl_commit_le_us[] = { 100, 250, 500, 1000, 2500, 5000, 10000, 25000,
                                            50000, 100000, 250000, 500000, 1000000, 2500000 };
static const char *const bl_commit_le[] = { "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                                            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                            "0.5", "1", "2.5" };
#define BL_COMMIT_BUCKETS BL_ARRAY_LEN(bl_commit_le_us)
static _Atomic uint64_t bl_commit_counts[BL_COMMIT_BUCKETS + 1];
static _Atomic uint64_t bl_commit_sum_us;

void bl_metric_add(bl_metric_t m, int64_t delta)
{
    if ((unsigned)m < BL_M_COUNT)
        atomic_fetch_add_explicit(&bl_metric_values[m], delta, memory_order_relaxed);
}

void bl_metric_set(bl_metric_t m, int64_t value)
{
    if ((unsigned)m < BL_M_COUNT)
        atomic_store_explicit(&bl_metric_values[m], value, memory_order_relaxed);
}

int64_t bl_metric_get(bl_metric_t m)
{
    if ((unsigned)m >= BL_M_COUNT)
        return 0;
    return atomic_load_explicit(&bl_metric_values[m], memory_order_relaxed);
}

void bl_metric_commit_latency(uint64_t us)
{
    size_t i = 0;
    while (i < BL_COMMIT_BUCKETS && us > bl_commit_le_us[i])
        i++;
    atomic_fetch_add_explicit(&bl_commit_counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bl_commit_sum_us, us, memory_order_relaxed);
}

/* ---- rendering ---- */

typedef struct {
    const char *name;   /* without "byline_" */
    const char *type;   /* "counter" or "gauge" */
    const char *help;
    int by_result;      /* 1: one series per result, m[] in bl_results order;
                           2: one per verb class, in bl_classes order */
    bl_metric_t m[5];
} bl_family_t;

static const bl_family_t bl_families[] = {
    { "requests_total", "counter",
      "Requests by outcome: allowed (forwarded), denied (403 by byline), unauthenticated (401), "
      "error (malformed, upstream or audit failure), limited (429 by a rate limit).", 1,
      { BL_M_REQUESTS_ALLOWED, BL_M_REQUESTS_DENIED, BL_M_REQUESTS_UNAUTHENTICATED,
        BL_M_REQUESTS_ERROR, BL_M_REQUESTS_LIMITED } },
    { "requests_limited_total", "counter", "Requests refused with 429 by a rate limit "
      "(policy.limits), by verb class.", 2, { BL_M_LIMITED_READS, BL_M_LIMITED_WRITES, BL_M_LIMITED_EXEC } },
    { "connections_open", "gauge", "Client connections open now.", 0, { BL_M_CONNECTIONS_OPEN } },
    { "connections_total", "counter", "Client connections accepted.",
      0, { BL_M_CONNECTIONS_TOTAL } },
    { "upstream_connects_total", "counter", "New connections to Kubernetes API servers.",
      0, { BL_M_UPSTREAM_CONNECTS } },
    { "upstream_errors_total", "counter", "Upstream connect and protocol failures.",
      0, { BL_M_UPSTREAM_ERRORS } },
    { "audit_entries_total", "counter", "Audit ledger entries committed.",
      0, { BL_M_AUDIT_ENTRIES } },
    { "audit_commits_total", "counter", "Audit ledger group commits.", 0, { BL_M_AUDIT_COMMITS } },
    { "audit_bytes_total", "counter", "Audit ledger bytes written.", 0, { BL_M_AUDIT_BYTES } },
    { "audit_checkpoints_total", "counter", "Signed audit ledger checkpoints written.",
      0, { BL_M_AUDIT_CHECKPOINTS } },
    { "config_reloads_total", "counter", "Configuration reloads applied (SIGHUP or a changed file).",
      0, { BL_M_CONFIG_RELOADS } },
    { "config_reload_failures_total", "counter", "Configuration reloads refused: the new config "
      "did not load (errors in the log) or changed the connections; the old one stays.",
      0, { BL_M_CONFIG_RELOAD_FAILURES } },
    { "config_last_reload_successful", "gauge", "1 if the last configuration reload (or the start) "
      "succeeded, 0 if it was refused.", 0, { BL_M_CONFIG_LAST_RELOAD_OK } },
    { "config_last_reload_success_timestamp_seconds", "gauge", "When the configuration in force was "
      "loaded (Unix time).", 0, { BL_M_CONFIG_LAST_RELOAD_TS } },
    { "audit_failed", "gauge", "1 once the audit ledger has failed and requests can no longer "
      "be recorded.", 0, { BL_M_AUDIT_FAILED } },
    { "audit_refusing", "gauge", "1 while free space on the audit file system is below "
      "audit.space_refuse.", 0, { BL_M_AUDIT_REFUSING } },
    { "audit_free_bytes", "gauge", "Free bytes on the audit file system.",
      0, { BL_M_AUDIT_FREE_BYTES } },
    { "shared_credential_warnings_total", "counter", "Identities found to appear shared (one "
      "credential used from interleaving source addresses); the audit ledger's shared-credential "
      "notices name them.", 0, { BL_M_SHARED_CREDENTIAL_WARNINGS } },
    { "agent_sessions", "gauge", "byline agent sessions connected and taking requests (not "
      "draining).", 0, { BL_M_AGENT_SESSIONS } },
    { "agent_connections_unserved", "gauge", "Connections with via: agent that no agent session "
      "serves now: their requests get 503.", 0, { BL_M_AGENT_UNSERVED } },
    { "agent_tunnels_total", "counter", "Requests handed to a byline agent.", 0, { BL_M_AGENT_TUNNELS } },
    { "agent_tunnel_failures_total", "counter", "Requests for a via: agent connection that no agent "
      "could take (none online, too many in flight) or whose agent went away before the end.",
      0, { BL_M_AGENT_TUNNEL_FAILURES } },
};

static const char *const bl_results[] = { "allowed", "denied", "unauthenticated", "error", "limited" };
static const char *const bl_classes[] = { "reads", "writes", "exec" };

static int bl_render_family(bl_buf_t *out, const bl_family_t *f)
{
    int rc = bl_buf_printf(out, "# HELP byline_%s %s\n# TYPE byline_%s %s\n", f->name, f->help,
                           f->name, f->type);
    size_t n = f->by_result == 1 ? BL_ARRAY_LEN(bl_results) : f->by_result == 2 ? BL_ARRAY_LEN(bl_classes) : 1;
    for (size_t i = 0; rc == BL_OK && i < n; i++) {
        long long v = (long long)bl_metric_get(f->m[i]);
        if (f->by_result == 1)
            rc = bl_buf_printf(out, "byline_%s{result=\"%s\"} %lld\n", f->name, bl_results[i], v);
        else if (f->by_result == 2)
            rc = bl_buf_printf(out, "byline_%s{class=\"%s\"} %lld\n", f->name, bl_classes[i], v);
        else
            rc = bl_buf_printf(out, "byline_%s %lld\n", f->name, v);
    }
    return rc;
}

static int bl_render_commit_histogram(bl_buf_t *out)
{
    static const char name[] = "byline_audit_commit_seconds";
    unsigned long long total = 0;
    int rc = bl_buf_printf(out, "# HELP %s Time to write one audit ledger group commit, "
                                "fdatasync included.\n# TYPE %s histogram\n", name, name);
    for (size_t i = 0; rc == BL_OK && i <= BL_COMMIT_BUCKETS; i++) {
        total += atomic_load_explicit(&bl_commit_counts[i], memory_order_relaxed);
        rc = bl_buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name,
                           i < BL_COMMIT_BUCKETS ? bl_commit_le[i] : "+Inf", total);
    }
    unsigned long long us = atomic_load_explicit(&bl_commit_sum_us, memory_order_relaxed);
    if (rc == BL_OK)
        rc = bl_buf_printf(out, "%s_sum %llu.%06llu\n%s_count %llu\n", name, us / 1000000,
                           us % 1000000, name, total);
    return rc;
}

int bl_metrics_render(bl_buf_t *out)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(bl_families); i++)
        if (bl_render_family(out, &bl_families[i]) != BL_OK)
            return BL_ERROR;
    return bl_render_commit_histogram(out);
}

/* ---- the listener ---- */

enum { BL_MC_FREE, BL_MC_READ, BL_MC_WRITE, BL_MC_DRAIN };

typedef struct {
    int fd;
    _Atomic int state;      /* BL_MC_*; atomic only so that a test may watch it */
    uint64_t deadline;      /* monotonic ms */
    size_t in_len;
    char in[BL_METRICS_HEAD_MAX];
    bl_buf_t out;
    size_t out_off;
} bl_mconn_t;

typedef struct {
    pthread_t thread;
    int lfd;
    int wake[2];            /* [1] written by bl_metrics_stop() */
    bl_mconn_t conns[BL_METRICS_CONNS];
} bl_mserver_t;

static bl_mserver_t *bl_msrv;  /* the running listener; owned by start/stop's caller thread */

static uint64_t bl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void bl_mconn_close(bl_mconn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = BL_MC_FREE;
    bl_buf_free(&c->out);
}

/* Returns the length of the request head in c->in (through its blank
 * line), or 0 if it has not all arrived. */
static size_t bl_mconn_head_len(const bl_mconn_t *c)
{
    for (size_t i = 0; i + 1 < c->in_len; i++) {
        if (c->in[i] == '\n' && c->in[i + 1] == '\n')
            return i + 2;
        if (i + 3 < c->in_len && !memcmp(c->in + i, "\r\n\r\n", 4))
            return i + 4;
    }
    return 0;
}

/* Appends a whole response. Returns BL_OK or BL_ERROR (out of room). */
static int bl_mconn_reply(bl_buf_t *out, const char *status, const char *type, const char *extra,
                          const bl_buf_t *body, int head_only)
{
    size_t n = body ? bl_buf_size(body) : 0;
    int rc = bl_buf_printf(out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                                "%sConnection: close\r\n\r\n", status, type, n, extra);
    if (rc == BL_OK && n > 0 && !head_only)
        rc = bl_buf_append(out, bl_buf_data(body), n);
    return rc;
}

/* Answers the request line at c->in: GET or HEAD /metrics, else an error
 * status. Fills c->out. */
static void bl_mconn_answer(bl_mconn_t *c, int complete)
{
    static const char text[] = "text/plain; charset=utf-8";
    const char *line = c->in, *sp1, *sp2, *eol = memchr(c->in, '\n', c->in_len);
    size_t ll = eol ? (size_t)(eol - line) : 0;
    bl_buf_t body;
    bl_buf_init(&body, BL_METRICS_OUT_MAX);
    bl_buf_init(&c->out, BL_METRICS_OUT_MAX + 1024);
    if (ll > 0 && line[ll - 1] == '\r')
        ll--;
    sp1 = ll ? memchr(line, ' ', ll) : NULL;
    sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - line)) : NULL;
    int head = sp1 && sp1 - line == 4 && !memcmp(line, "HEAD", 4);
    int get = sp1 && sp1 - line == 3 && !memcmp(line, "GET", 3);
    size_t tl = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
    int rc;
    if (!complete) {
        bl_buf_puts(&body, "request head too large\n");
        rc = bl_mconn_reply(&c->out, "431 Request Header Fields Too Large", text, "", &body, 0);
    } else if (!sp2 || ll - (size_t)(sp2 + 1 - line) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7)) {
        bl_buf_puts(&body, "bad request\n");
        rc = bl_mconn_reply(&c->out, "400 Bad Request", text, "", &body, 0);
    } else if (!(tl == 8 && !memcmp(sp1 + 1, "/metrics", 8)) &&
               !(tl > 8 && !memcmp(sp1 + 1, "/metrics?", 9))) {
        bl_buf_puts(&body, "not found: try /metrics\n");
        rc = bl_mconn_reply(&c->out, "404 Not Found", text, "", &body, head);
    } else if (!get && !head) {
        bl_buf_puts(&body, "method not allowed\n");
        rc = bl_mconn_reply(&c->out, "405 Method Not Allowed", text, "Allow: GET, HEAD\r\n",
                            &body, 0);
    } else if (bl_metrics_render(&body) == BL_OK) {
        rc = bl_mconn_reply(&c->out, "200 OK", "text/plain; version=0.0.4; charset=utf-8", "",
                            &body, head);
    } else {
        bl_buf_reset(&body);
        rc = bl_mconn_reply(&c->out, "500 Internal Server Error", text, "", NULL, 0);
    }
    bl_buf_free(&body);
    c->out_off = 0;
    c->state = rc == BL_OK ? BL_MC_WRITE : BL_MC_FREE;
    if (rc != BL_OK)
        bl_mconn_close(c);
}

static void bl_mconn_read(bl_mconn_t *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        bl_mconn_close(c); /* gone before asking anything */
        return;
    }
    c->in_len += (size_t)n;
    size_t head = bl_mconn_head_len(c);
    if (head > 0 || c->in_len == sizeof(c->in))
        bl_mconn_answer(c, head > 0);
}

static void bl_mconn_write(bl_mconn_t *c, uint64_t now)
{
    while (c->out_off < bl_buf_size(&c->out)) {
        ssize_t n = send(c->fd, bl_buf_data(&c->out) + c->out_off,
                         bl_buf_size(&c->out) - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            bl_mconn_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    /* Half-close and read until the client's FIN: closing with unread
     * bytes would reset the connection and could cut the answer short. */
    shutdown(c->fd, SHUT_WR);
    bl_buf_free(&c->out);
    c->state = BL_MC_DRAIN;
    c->deadline = BL_MIN(c->deadline, now + BL_METRICS_DRAIN_MS);
}

static void bl_mconn_drain(bl_mconn_t *c)
{
    char sink[1024];
    ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        bl_mconn_close(c);
}

/* Accepts what the free slots can take. */
static void bl_msrv_accept(bl_mserver_t *s, uint64_t now)
{
    for (size_t i = 0; i < BL_METRICS_CONNS; i++) {
        bl_mconn_t *c = &s->conns[i];
        if (c->state != BL_MC_FREE)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a connection that went away: poll again */
        c->fd = fd;
        c->state = BL_MC_READ;
        c->in_len = 0;
        c->deadline = now + BL_METRICS_TIMEOUT_MS;
    }
}

/* Fills pfd (wake pipe, listener if a slot is free, then clients) and
 * returns the count; *timeout gets the time to the nearest deadline. */
static nfds_t bl_msrv_pollset(bl_mserver_t *s, struct pollfd *pfd, size_t *map, uint64_t now,
                              int *timeout)
{
    nfds_t n = 2;
    int room = 0;
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < BL_METRICS_CONNS; i++) {
        bl_mconn_t *c = &s->conns[i];
        if (c->state == BL_MC_FREE) {
            room = 1;
            continue;
        }
        pfd[n] = (struct pollfd){ c->fd, c->state == BL_MC_WRITE ? POLLOUT : POLLIN, 0 };
        map[n++] = i;
        next = BL_MIN(next, c->deadline);
    }
    pfd[0] = (struct pollfd){ s->wake[0], POLLIN, 0 };
    pfd[1] = (struct pollfd){ room ? s->lfd : -1, POLLIN, 0 };
    *timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)BL_MIN(next - now, 60000);
    return n;
}

static void *bl_msrv_run(void *arg)
{
    bl_mserver_t *s = arg;
    struct pollfd pfd[BL_METRICS_CONNS + 2];
    size_t map[BL_METRICS_CONNS + 2];
    for (;;) {
        int timeout;
        nfds_t n = bl_msrv_pollset(s, pfd, map, bl_now_ms(), &timeout);
        if (poll(pfd, n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            bl_error("metrics: poll: %s; the /metrics listener stops", strerror(errno));
            break;
        }
        if (pfd[0].revents)
            break; /* bl_metrics_stop() */
        uint64_t now = bl_now_ms();
        for (nfds_t i = 2; i < n; i++) {
            bl_mconn_t *c = &s->conns[map[i]];
            if (pfd[i].revents && c->state == BL_MC_READ)
                bl_mconn_read(c);
            if (pfd[i].revents && c->state == BL_MC_WRITE)
                bl_mconn_write(c, now);
            else if (pfd[i].revents && c->state == BL_MC_DRAIN)
                bl_mconn_drain(c);
            if (c->state != BL_MC_FREE && c->deadline <= now)
                bl_mconn_close(c); /* too slow: its slot goes to the next client */
        }
        if (pfd[1].revents)
            bl_msrv_accept(s, now);
    }
    return NULL;
}

/* Splits "host:port" / "[v6]:port" into host[hn] and port[pn] (1..65535). */
static int bl_metrics_split(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *he = colon;
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        return BL_ERROR;
    if (addr[0] == '[') {
        h = addr + 1;
        he = colon - 1;
        if (he < h || *he != ']')
            return BL_ERROR;
    }
    if ((size_t)(he - h) >= hn || strlen(colon + 1) >= pn)
        return BL_ERROR;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    return BL_OK;
}

/* Opens the listening socket. Returns the fd, or -1 with the reason. */
static int bl_metrics_listen(const char *addr, bl_buf_t *err)
{
    char host[BL_METRICS_LISTEN_MAX], port[8];
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int one = 1, fd = -1;
    if (strlen(addr) >= BL_METRICS_LISTEN_MAX ||
        bl_metrics_split(addr, host, sizeof(host), port, sizeof(port)) != BL_OK) {
        bl_buf_printf(err, "metrics: \"%.64s\" is not host:port", addr);
        return -1;
    }
    /* "localhost" from /etc/hosts could also be ::1; the loader's loopback
     * check and the docs mean 127.0.0.1. */
    const char *node = !strcmp(host, "localhost") ? "127.0.0.1" : host[0] ? host : NULL;
    int gai = getaddrinfo(node, port, &hints, &ai);
    if (gai != 0) {
        bl_buf_printf(err, "metrics: cannot resolve %s: %s", addr, gai_strerror(gai));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, BL_METRICS_CONNS) != 0) {
        bl_buf_printf(err, "metrics: cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Starts the thread with every signal blocked: signals are the main
 * thread's business, and poll() here need not see EINTR. */
static int bl_metrics_spawn(bl_mserver_t *s)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, bl_msrv_run, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        pthread_setname_np(s->thread, "byline-metrics");
    return rc;
}

int bl_metrics_start(const char *addr, bl_buf_t *err)
{
    if (bl_msrv != NULL) {
        bl_buf_puts(err, "metrics: the listener is already running");
        return BL_ERROR;
    }
    bl_mserver_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        bl_buf_puts(err, "metrics: out of memory");
        return BL_ERROR;
    }
    s->wake[0] = s->wake[1] = -1;
    for (size_t i = 0; i < BL_METRICS_CONNS; i++)
        s->conns[i].fd = -1;
    if ((s->lfd = bl_metrics_listen(addr, err)) < 0)
        goto fail;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0 || bl_metrics_spawn(s) != 0) {
        bl_buf_printf(err, "metrics: cannot start the listener thread: %s", strerror(errno));
        goto fail;
    }
    bl_msrv = s;
    return BL_OK;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake[0] >= 0) {
        close(s->wake[0]);
        close(s->wake[1]);
    }
    free(s);
    return BL_ERROR;
}

void bl_metrics_stop(void)
{
    bl_mserver_t *s = bl_msrv;
    if (s == NULL)
        return;
    while (write(s->wake[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < BL_METRICS_CONNS; i++)
        bl_mconn_close(&s->conns[i]);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
    bl_msrv = NULL;
}
