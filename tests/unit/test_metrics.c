/*
 * test_metrics.c - src/core/metrics.c: counters under concurrent updates,
 * the commit latency histogram's buckets, the Prometheus text exposition
 * (every sample under its # HELP / # TYPE, values as set; promtool check
 * metrics accepts it when installed), and the /metrics
 * listener over real sockets: GET, HEAD, 404, 405, 400, 431, requests in
 * pieces, idle and slow clients that must not hold up others, every slot
 * busy, start errors, restart, stop with clients connected.
 *
 * It includes metrics.c (h2o style) to shorten the per-client deadline to
 * 300 ms, so the tests that wait for a deadline wait for an event (the
 * server closing), not for seconds; nothing asserts on durations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>

#define BL_METRICS_TIMEOUT_MS 300
#include "core/metrics.c"

/* ---- helpers ---- */

/* Returns the value of the sample line "<key> <value>" in text, or fails. */
static double sample(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
    }
    print_error("no sample \"%s\" in:\n%s\n", key, text);
    fail();
    return 0;
}

static char *render(void)
{
    bl_buf_t b;
    bl_buf_init(&b, 1 << 20);
    assert_int_equal(bl_metrics_render(&b), BL_OK);
    char *s = strndup(bl_buf_data(&b), bl_buf_size(&b));
    bl_buf_free(&b);
    assert_non_null(s);
    return s;
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int port;   /* the running listener's */

static void start(void)
{
    char addr[64];
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    if (bl_metrics_start(addr, &err) != BL_OK) {
        print_error("%s\n", bl_buf_cstr(&err));
        fail();
    }
    bl_buf_free(&err);
}

/* A connected client socket with a 10 s receive timeout (a hang fails
 * the test instead of hanging it). */
static int client(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 10, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until the server closes. Returns what came (caller frees). */
static char *read_all(int fd)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0)
            print_error("recv: %s\n", strerror(errno));
        assert_true(r >= 0); /* a timeout is a hang: fail */
        if (r == 0)
            break;
        n += (size_t)r;
        assert_true(n < cap);
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static char *exchange(const char *req)
{
    int fd = client();
    send_all(fd, req, strlen(req));
    return read_all(fd);
}

/* A parsed response: status code, one header's value, the body. */
typedef struct {
    int status;
    char type[128], allow[64];
    long length;          /* Content-Length, -1 if absent */
    const char *body;
    size_t body_len;
} resp_t;

static void parse(const char *raw, resp_t *r)
{
    const char *end = strstr(raw, "\r\n\r\n");
    memset(r, 0, sizeof(*r));
    r->length = -1;
    assert_non_null(end);
    assert_int_equal(strncmp(raw, "HTTP/1.1 ", 9), 0);
    r->status = atoi(raw + 9);
    for (const char *p = strstr(raw, "\r\n") + 2; p < end; p = strstr(p, "\r\n") + 2) {
        const char *colon = strchr(p, ':');
        size_t vl = (size_t)(strstr(p, "\r\n") - colon - 2);
        if (!strncasecmp(p, "Content-Type:", 13))
            snprintf(r->type, sizeof(r->type), "%.*s", (int)vl, colon + 2);
        else if (!strncasecmp(p, "Allow:", 6))
            snprintf(r->allow, sizeof(r->allow), "%.*s", (int)vl, colon + 2);
        else if (!strncasecmp(p, "Content-Length:", 15))
            r->length = atol(colon + 2);
    }
    r->body = end + 4;
    r->body_len = strlen(r->body);
}

/* ---- values and rendering ---- */

static void test_counters_and_gauges(void **state)
{
    (void)state;
    int64_t a = bl_metric_get(BL_M_REQUESTS_ALLOWED);
    bl_metric_add(BL_M_REQUESTS_ALLOWED, 3);
    assert_int_equal(bl_metric_get(BL_M_REQUESTS_ALLOWED), a + 3);
    bl_metric_set(BL_M_CONNECTIONS_OPEN, 5);
    bl_metric_add(BL_M_CONNECTIONS_OPEN, -2);
    assert_int_equal(bl_metric_get(BL_M_CONNECTIONS_OPEN), 3);
    bl_metric_set(BL_M_AUDIT_FREE_BYTES, INT64_C(123456789012));
    assert_true(bl_metric_get(BL_M_AUDIT_FREE_BYTES) == INT64_C(123456789012));
    /* out of range is ignored, not a crash */
    bl_metric_add(BL_M_COUNT, 1);
    bl_metric_set((bl_metric_t)-1, 1);
    assert_int_equal(bl_metric_get(BL_M_COUNT), 0);
}

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        bl_metric_add(BL_M_AUDIT_ENTRIES, 1);
        bl_metric_commit_latency(50);
    }
    return NULL;
}

/* Relaxed atomics lose no update: 4 threads x 100000 adds add 400000. */
static void test_concurrent_adds(void **state)
{
    pthread_t t[4];
    (void)state;
    int64_t before = bl_metric_get(BL_M_AUDIT_ENTRIES);
    char *r0 = render();
    double c0 = sample(r0, "byline_audit_commit_seconds_count");
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(bl_metric_get(BL_M_AUDIT_ENTRIES) - before, 400000);
    char *r1 = render();
    assert_true(sample(r1, "byline_audit_commit_seconds_count") - c0 == 400000);
    free(r0);
    free(r1);
}

static void test_histogram_buckets(void **state)
{
    static const char *const le[] = { "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                      "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                                      "+Inf" };
    /* latency (us) -> the first bucket it counts in; a bound is inclusive */
    static const struct { uint64_t us; size_t first; } obs[] = {
        { 0, 0 }, { 100, 0 }, { 101, 1 }, { 1000, 3 }, { 1001, 4 }, { 999999, 12 },
        { 2500000, 13 }, { 2500001, 14 }, { UINT64_C(3600000000), 14 },
    };
    double before[15], after[15];
    char key[128];
    (void)state;
    char *r0 = render();
    for (size_t i = 0; i < 15; i++) {
        snprintf(key, sizeof(key), "byline_audit_commit_seconds_bucket{le=\"%s\"}", le[i]);
        before[i] = sample(r0, key);
    }
    double sum0 = sample(r0, "byline_audit_commit_seconds_sum");
    uint64_t total_us = 0;
    for (size_t j = 0; j < BL_ARRAY_LEN(obs); j++) {
        bl_metric_commit_latency(obs[j].us);
        total_us += obs[j].us;
    }
    char *r1 = render();
    for (size_t i = 0; i < 15; i++) {
        snprintf(key, sizeof(key), "byline_audit_commit_seconds_bucket{le=\"%s\"}", le[i]);
        after[i] = sample(r1, key);
        double want = 0;
        for (size_t j = 0; j < BL_ARRAY_LEN(obs); j++)
            want += obs[j].first <= i;
        if (after[i] - before[i] != want) {
            print_error("le=%s: +%g, want +%g\n", le[i], after[i] - before[i], want);
            fail();
        }
        if (i > 0)
            assert_true(after[i] >= after[i - 1]); /* cumulative */
    }
    assert_true(sample(r1, "byline_audit_commit_seconds_count") == after[14]);
    double sum1 = sample(r1, "byline_audit_commit_seconds_sum");
    double want_sum = (double)total_us / 1e6;
    assert_true(sum1 - sum0 > want_sum - 1e-5 && sum1 - sum0 < want_sum + 1e-5);
    free(r0);
    free(r1);
}

/* Every line is a comment or "name[{labels}] value"; every sample follows
 * the # HELP and # TYPE of its family; every family is there once. */
static void test_exposition_format(void **state)
{
    static const char *const families[] = {
        "requests_total counter", "requests_limited_total counter", "connections_open gauge",
        "connections_total counter",
        "upstream_connects_total counter", "upstream_errors_total counter",
        "audit_entries_total counter", "audit_commits_total counter",
        "audit_bytes_total counter", "audit_checkpoints_total counter", "config_reloads_total counter",
        "config_reload_failures_total counter", "config_last_reload_successful gauge",
        "config_last_reload_success_timestamp_seconds gauge", "audit_failed gauge",
        "audit_refusing gauge", "audit_free_bytes gauge", "shared_credential_warnings_total counter",
        "agent_sessions gauge", "agent_connections_unserved gauge", "agent_tunnels_total counter",
        "agent_tunnel_failures_total counter", "audit_commit_seconds histogram",
    };
    char family[64] = "", help[80] = "", want[128];
    size_t ntype = 0;
    (void)state;
    bl_metric_set(BL_M_AUDIT_FAILED, 1);
    bl_metric_set(BL_M_CONNECTIONS_OPEN, -1); /* a gauge may go below 0 after a bug: render it */
    bl_metric_add(BL_M_REQUESTS_DENIED, 7);
    char *text = render();
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        if (!strncmp(line, "# HELP byline_", 14)) {
            snprintf(help, sizeof(help), "%.*s", (int)strcspn(line + 14, " "), line + 14);
            assert_true(strlen(line) > 15 + strlen(help)); /* has text */
        } else if (!strncmp(line, "# TYPE byline_", 14)) {
            assert_true(ntype < BL_ARRAY_LEN(families));
            assert_string_equal(line + 14, families[ntype]);
            snprintf(family, sizeof(family), "byline_%.*s", (int)strcspn(line + 14, " "),
                     line + 14);
            assert_string_equal(family + 7, help); /* HELP right before TYPE */
            ntype++;
        } else {
            size_t nl_ = strcspn(line, "{ ");
            assert_true(family[0] != '\0');
            assert_int_equal(strncmp(line, family, strlen(family)), 0);
            const char *suffix = line + strlen(family);
            assert_true(suffix == line + nl_ || !strncmp(suffix, "_bucket{", 8) ||
                        !strncmp(suffix, "_sum ", 5) || !strncmp(suffix, "_count ", 7));
            const char *v = strrchr(line, ' ') + 1;
            char *end;
            strtod(v, &end);
            assert_true(end > v && *end == '\0');
            if (line[nl_] == '{')
                assert_non_null(strstr(line, "=\"") && strstr(line, "\"} "));
        }
    }
    assert_int_equal(ntype, BL_ARRAY_LEN(families));
    free(text);
    text = render();
    snprintf(want, sizeof(want), "byline_requests_total{result=\"denied\"}");
    assert_true(sample(text, want) >= 7);
    assert_true(sample(text, "byline_audit_failed") == 1);
    assert_true(sample(text, "byline_connections_open") == -1);
    assert_non_null(strstr(text, "byline_requests_total{result=\"allowed\"} "));
    assert_non_null(strstr(text, "byline_requests_total{result=\"unauthenticated\"} "));
    assert_non_null(strstr(text, "byline_requests_total{result=\"error\"} "));
    assert_non_null(strstr(text, "byline_audit_commit_seconds_bucket{le=\"+Inf\"} "));
    free(text);
    /* a buffer too small is an error, not a cut */
    bl_buf_t small;
    bl_buf_init(&small, 100);
    assert_int_equal(bl_metrics_render(&small), BL_ERROR);
    bl_buf_free(&small);
    bl_metric_set(BL_M_CONNECTIONS_OPEN, 0);
    bl_metric_set(BL_M_AUDIT_FAILED, 0);
}

/* The real Prometheus parser and linter, when installed (Debian package
 * prometheus), accepts what we render. */
static void test_promtool_accepts(void **state)
{
    char path[] = "/tmp/byline-test-metrics-XXXXXX", cmd[200];
    (void)state;
    if (access("/usr/bin/promtool", X_OK) != 0) {
        print_message("promtool not installed (apt-get install prometheus): skipped\n");
        skip();
    }
    bl_metric_commit_latency(1234);
    bl_metric_add(BL_M_REQUESTS_ALLOWED, 1);
    char *text = render();
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    free(text);
    assert_int_equal(rc, 0);
}

/* ---- the listener ---- */

static void test_get_metrics(void **state)
{
    resp_t r;
    (void)state;
    start();
    bl_metric_add(BL_M_REQUESTS_UNAUTHENTICATED, 2);
    int64_t unauth = bl_metric_get(BL_M_REQUESTS_UNAUTHENTICATED);
    char *raw = exchange("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n");
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(r.length, (long)r.body_len);
    assert_true(sample(r.body, "byline_requests_total{result=\"unauthenticated\"}") == unauth);
    assert_non_null(strstr(r.body, "# TYPE byline_audit_commit_seconds histogram\n"));
    free(raw);
    /* HTTP/1.0, a query string, bare LF line ends */
    raw = exchange("GET /metrics?x=1 HTTP/1.0\n\n");
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    free(raw);
    /* HEAD: the length of the body, no body */
    raw = exchange("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.length > 100);
    assert_int_equal(r.body_len, 0);
    free(raw);
    bl_metrics_stop();
}

static void test_other_requests(void **state)
{
    static const struct { const char *req; int status; } rows[] = {
        { "GET / HTTP/1.1\r\n\r\n", 404 },
        { "GET /metricsx HTTP/1.1\r\n\r\n", 404 },
        { "GET /metrics/ HTTP/1.1\r\n\r\n", 404 },
        { "GET http://x/metrics HTTP/1.1\r\n\r\n", 404 },
        { "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405 },
        { "DELETE /metrics HTTP/1.1\r\n\r\n", 405 },
        { "GET /metrics\r\n\r\n", 400 },
        { "GET /metrics HTTP/2.0\r\n\r\n", 400 },
        { "GET  /metrics HTTP/1.1\r\n\r\n", 400 },
        { "hello\r\n\r\n", 400 },
        { "\r\n\r\n", 400 },
    };
    resp_t r;
    (void)state;
    start();
    for (size_t i = 0; i < BL_ARRAY_LEN(rows); i++) {
        char *raw = exchange(rows[i].req);
        parse(raw, &r);
        if (r.status != rows[i].status) {
            print_error("%s-> %d, want %d\n", rows[i].req, r.status, rows[i].status);
            fail();
        }
        assert_int_equal(r.length, (long)r.body_len);
        assert_null(strstr(r.body, "byline_")); /* no metrics outside GET /metrics */
        if (r.status == 405)
            assert_string_equal(r.allow, "GET, HEAD");
        free(raw);
    }
    /* a head past 8 KiB: 431, then closed */
    char big[BL_METRICS_HEAD_MAX + 100];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    int fd = client();
    send_all(fd, big, BL_METRICS_HEAD_MAX); /* exactly the bound, no blank line */
    char *raw = read_all(fd);
    parse(raw, &r);
    assert_int_equal(r.status, 431);
    free(raw);
    bl_metrics_stop();
}

/* A request arriving a byte at a time is answered once complete. */
static void test_request_in_pieces(void **state)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    resp_t r;
    (void)state;
    start();
    int fd = client();
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t i = 0; i < sizeof(req) - 1; i++)
        send_all(fd, req + i, 1);
    char *raw = read_all(fd);
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    free(raw);
    bl_metrics_stop();
}

/* A client that sends nothing holds its own slot only, until its deadline. */
static void test_idle_client_does_not_block(void **state)
{
    resp_t r;
    (void)state;
    start();
    int idle = client();
    int partial = client();
    send_all(partial, "GET /metr", 9);
    char *raw = exchange("GET /metrics HTTP/1.1\r\n\r\n"); /* while both wait */
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    free(raw);
    /* at the deadline the server closes both: EOF, no answer */
    raw = read_all(idle);
    assert_string_equal(raw, "");
    free(raw);
    raw = read_all(partial);
    assert_string_equal(raw, "");
    free(raw);
    bl_metrics_stop();
}

/* Returns the number of slots holding a client (the listener's own state,
 * read from the test thread). */
static size_t slots_busy(void)
{
    size_t n = 0;
    for (size_t i = 0; i < BL_METRICS_CONNS; i++)
        n += atomic_load_explicit(&bl_msrv->conns[i].state, memory_order_relaxed) != BL_MC_FREE;
    return n;
}

/* With every slot held by idle clients, a new client waits in the accept
 * queue and is served once a deadline frees a slot; the idle ones are
 * closed without an answer. */
static void test_all_slots_busy(void **state)
{
    int idle[BL_METRICS_CONNS];
    resp_t r;
    (void)state;
    start();
    for (size_t i = 0; i < BL_METRICS_CONNS; i++)
        idle[i] = client();
    for (int spins = 0; slots_busy() < BL_METRICS_CONNS; spins++) {
        assert_true(spins < 100000); /* 10 s */
        usleep(100);
    }
    char *raw = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    free(raw);
    for (size_t i = 0; i < BL_METRICS_CONNS; i++) {
        raw = read_all(idle[i]);
        assert_string_equal(raw, "");
        free(raw);
    }
    bl_metrics_stop();
}

static void test_start_errors_and_restart(void **state)
{
    bl_buf_t err;
    resp_t r;
    char addr[64];
    (void)state;
    bl_buf_init(&err, 4096);
    start();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(bl_metrics_start(addr, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "already running"));
    int held = client(); /* stop must not wait for it */
    bl_metrics_stop();
    char byte;
    ssize_t got = recv(held, &byte, 1, 0); /* EOF if it was accepted, a reset if it was not */
    assert_true(got == 0 || (got < 0 && errno == ECONNRESET));
    close(held);
    bl_metrics_stop(); /* twice is fine */

    /* the port in use by someone else */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int other = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(other, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(other, 1), 0);
    assert_int_equal(getsockname(other, (struct sockaddr *)&a, &al), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
    bl_buf_reset(&err);
    assert_int_equal(bl_metrics_start(addr, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "cannot listen on 127.0.0.1:"));
    assert_non_null(strstr(bl_buf_cstr(&err), "Address already in use"));
    close(other);
    static const char *const bad[] = { "nonsense", "127.0.0.1:", "[::1:80", "127.0.0.1:99999",
                                       "127.0.0.1:0", "127.0.0.1:-1", "1.2.3.4.5:80" };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        bl_buf_reset(&err);
        if (bl_metrics_start(bad[i], &err) != BL_ERROR) {
            print_error("started on \"%s\"\n", bad[i]);
            bl_metrics_stop();
            fail();
        }
        assert_true(bl_buf_size(&err) > 0);
    }
    /* after all that, a new start works: IPv6 loopback if the host has it */
    bl_buf_reset(&err);
    snprintf(addr, sizeof(addr), "[::1]:%d", free_port());
    if (bl_metrics_start(addr, &err) == BL_OK)
        bl_metrics_stop();
    start();
    char *raw = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    parse(raw, &r);
    assert_int_equal(r.status, 200);
    free(raw);
    bl_metrics_stop();
    bl_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_concurrent_adds),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_exposition_format),
        cmocka_unit_test(test_promtool_accepts),
        cmocka_unit_test(test_get_metrics),
        cmocka_unit_test(test_other_requests),
        cmocka_unit_test(test_request_in_pieces),
        cmocka_unit_test(test_idle_client_does_not_block),
        cmocka_unit_test(test_all_slots_busy),
        cmocka_unit_test(test_start_errors_and_restart),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
