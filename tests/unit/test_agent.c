/*
 * test_agent.c - the byline agent's pieces that need no network: the head
 * rewrite at the agent (src/agent/rewrite.c), the agent key registry
 * (src/auth/agentkey.c), reconnect backoff (src/agent/backoff.c), token
 * credential sources (src/agent/cred.c), the agent config file
 * (src/agent/conf.c), kubeconfigs (src/agent/kubeconfig.c) and the fd
 * stream's failure note (src/net/fdstream.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent/backoff.h"
#include "agent/conf.h"
#include "agent/cred.h"
#include "agent/rewrite.h"
#include "agent/tunnel.h"
#include "core/loop.h"
#include "auth/agentkey.h"
#include "net/fdstream.h"

static char tmpdir[64];

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

/* A connection to https://api.example:6443/prefix with a fixed token. */
static void conn_init(bl_agentconn_t *c, int allow_imp)
{
    bl_buf_t err;
    const char *why;
    memset(c, 0, sizeof(*c));
    c->name = "prod-eks";
    c->server = "https://api.example:6443/prefix";
    assert_int_equal(bl_url_parse(c->server, strlen(c->server), &c->url, &why), BL_OK);
    bl_buf_init(&err, 256);
    c->cred = bl_cred_token("sa-token-1", &err);
    assert_non_null(c->cred);
    bl_buf_free(&err);
    c->allow_impersonation = allow_imp;
}

/* Parses `head` and rewrites it. Returns the rewrite's result; out gets the head. */
static int rewrite(const char *head, bl_agentconn_t *c, bl_buf_t *out, int *status, const char **why)
{
    bl_http_header_t hdrs[32];
    bl_http_request_t hr = { .headers = hdrs, .num_headers = 32 };
    bl_http_err_t err;
    assert_true(bl_http1_parse_request(head, strlen(head), &hr, &err) > 0);
    return bl_tunnel_rewrite(&hr, c, out, status, why);
}

static void test_rewrite_head(void **state)
{
    bl_agentconn_t c;
    bl_buf_t out;
    int status = 0;
    const char *why = NULL;
    (void)state;
    conn_init(&c, 0);
    bl_buf_init(&out, 65536);
    assert_int_equal(rewrite("GET /api/v1/pods?watch=true HTTP/1.1\r\nHost: prod-eks\r\nAudit-ID: 0190-ab\r\n"
                             "Accept: application/json\r\n\r\n", &c, &out, &status, &why), BL_OK);
    assert_string_equal(bl_buf_cstr(&out),
                        "GET /prefix/api/v1/pods?watch=true HTTP/1.1\r\nHost: api.example:6443\r\n"
                        "Authorization: Bearer sa-token-1\r\nAudit-ID: 0190-ab\r\nAccept: application/json\r\n\r\n");
    /* The gateway's Connection is dropped (the agent keeps the API server
     * connection for the next tunnel: tunnel.c, pool.c); an upgrade keeps its own. */
    bl_buf_reset(&out);
    assert_int_equal(rewrite("GET /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &c, &out, &status, &why), BL_OK);
    assert_null(strstr(bl_buf_cstr(&out), "Connection"));
    bl_buf_reset(&out);
    assert_int_equal(rewrite("GET /api/v1/namespaces/a/pods/p/exec?command=ls HTTP/1.1\r\nHost: x\r\n"
                             "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &c, &out, &status, &why), BL_OK);
    assert_non_null(strstr(bl_buf_cstr(&out), "\r\nConnection: Upgrade\r\n"));
    assert_null(strstr(bl_buf_cstr(&out), "close"));
    bl_buf_free(&out);
    bl_cred_free(c.cred);
}

static void test_rewrite_refusals(void **state)
{
    bl_agentconn_t c;
    bl_buf_t out;
    int status = 0;
    const char *why = NULL;
    (void)state;
    conn_init(&c, 0);
    bl_buf_init(&out, 65536);
    assert_int_equal(rewrite("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer stolen\r\n\r\n", &c, &out, &status, &why),
                     BL_DECLINED);
    assert_int_equal(status, 403);
    assert_non_null(strstr(why, "its own credential"));
    assert_int_equal(rewrite("GET / HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic eA==\r\n\r\n", &c, &out, &status, &why),
                     BL_DECLINED);
    assert_int_equal(rewrite("GET / HTTP/1.1\r\nHost: x\r\nimpersonate-user: admin\r\n\r\n", &c, &out, &status, &why),
                     BL_DECLINED);
    assert_int_equal(status, 403);
    assert_non_null(strstr(why, "allow_impersonation"));
    assert_int_equal(rewrite("GET / HTTP/1.0\r\n\r\n", &c, &out, &status, &why), BL_DECLINED);
    assert_int_equal(status, 400);
    /* The gateway's own impersonation passes where the connection allows it. */
    c.allow_impersonation = 1;
    bl_buf_reset(&out);
    assert_int_equal(rewrite("GET /api HTTP/1.1\r\nHost: x\r\nImpersonate-User: byline:bot\r\n\r\n", &c, &out, &status, &why),
                     BL_OK);
    assert_non_null(strstr(bl_buf_cstr(&out), "\r\nImpersonate-User: byline:bot\r\n"));
    bl_buf_free(&out);
    bl_cred_free(c.cred);
}

/* A second request pipelined after the first one's body (here with
 * Impersonate-User) must be found as "after the body", for both framings. */
#define SECOND "GET /api/v1/secrets HTTP/1.1\r\nHost: x\r\nImpersonate-User: admin\r\n\r\n"

static size_t body_end(const char *msg)
{
    bl_http_header_t hdrs[32];
    bl_http_request_t hr = { .headers = hdrs, .num_headers = 32 };
    bl_http_err_t err;
    bl_tunnel_body_t b;
    int n = bl_http1_parse_request(msg, strlen(msg), &hr, &err);
    assert_true(n > 0);
    assert_int_equal(bl_tunnel_body_init(&b, &hr, &err), BL_OK);
    size_t off = (size_t)n;
    for (size_t i = off; i < strlen(msg) && !b.done; i++) { /* byte by byte: splits anywhere */
        long k = bl_tunnel_body_take(&b, msg + off, i + 1 - off, &err);
        assert_true(k >= 0);
        off += (size_t)k;
    }
    assert_true(b.done);
    assert_int_equal(bl_tunnel_body_take(&b, msg + off, strlen(msg) - off, &err), 0);
    return off;
}

static void test_tunnel_body_end(void **state)
{
    const char *cl = "POST /api/v1/namespaces/a/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" SECOND;
    const char *ch = "POST /api/v1/namespaces/a/pods HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n" SECOND;
    const char *none = "GET /api/v1/pods HTTP/1.1\r\nHost: x\r\n\r\n" SECOND;
    (void)state;
    assert_string_equal(cl + body_end(cl), SECOND);
    assert_string_equal(ch + body_end(ch), SECOND);
    assert_string_equal(none + body_end(none), SECOND);
}

/* Through a real tunnel: the second request is never taken for the API server. */
static void test_tunnel_pipelined(void **state)
{
    const char *first = "POST /api/v1/namespaces/a/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    char all[512], url[64], reply[2048];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t salen = sizeof(sa);
    bl_agentconn_t c;
    const char *why;
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
    conn_init(&c, 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/prefix", ntohs(sa.sin_port));
    c.server = url;
    assert_int_equal(bl_url_parse(c.server, strlen(c.server), &c.url, &why), BL_OK);
    c.ctx = SSL_CTX_new(TLS_client_method());
    bl_loop_t *loop = bl_loop_new();
    assert_non_null(loop);

    /* Head and body, then the second request in a later write: refused, tunnel closed. */
    bl_stream_t *s = bl_tunnel_new(loop, &c);
    assert_int_equal(bl_stream_write(s, first, strlen(first)), (long)strlen(first));
    assert_int_equal(bl_stream_write(s, SECOND, strlen(SECOND)), BL_ERROR);
    assert_int_equal(bl_stream_read(s, reply, sizeof(reply)), BL_ERROR);
    bl_stream_release(s, 0);

    /* All in one write: nothing was forwarded yet, so the agent answers 400 itself. */
    snprintf(all, sizeof(all), "%s%s", first, SECOND);
    s = bl_tunnel_new(loop, &c);
    assert_int_equal(bl_stream_write(s, all, strlen(all)), (long)strlen(all));
    long n = bl_stream_read(s, reply, sizeof(reply) - 1);
    assert_true(n > 0);
    reply[n] = 0;
    assert_true(strncmp(reply, "HTTP/1.1 400 ", 13) == 0);
    assert_non_null(strstr(reply, "bytes after the request's body"));
    bl_stream_release(s, 0);

    bl_loop_run_once(loop); /* the tunnels' reapers */
    bl_loop_free(loop);
    SSL_CTX_free(c.ctx);
    bl_cred_free(c.cred);
    close(lfd);
}

static void test_agentkeys(void **state)
{
    char path[256], key[BL_TOKEN_LEN + 1], other[BL_TOKEN_LEN + 1];
    bl_agentkeys_t k = { 0 }, back;
    bl_buf_t err;
    (void)state;
    bl_buf_init(&err, 4096);
    snprintf(path, sizeof(path), "%s/agent-keys.yaml", tmpdir);
    assert_int_equal(bl_agentkeys_load(path, &back, &err), BL_OK); /* missing: empty */
    assert_int_equal(back.n, 0);
    assert_int_equal(bl_agentkey_generate(key), BL_OK);
    assert_int_equal(bl_agentkey_generate(other), BL_OK);
    assert_memory_equal(key, "bya_", 4);
    assert_int_equal(strlen(key), BL_TOKEN_LEN);
    assert_string_not_equal(key, other);
    k.keys = calloc(1, sizeof(*k.keys));
    k.n = 1;
    k.keys[0].name = strdup("vpc-a");
    k.keys[0].conns = calloc(2, sizeof(char *));
    k.keys[0].conns[0] = strdup("prod-eks");
    k.keys[0].conns[1] = strdup("staging");
    k.keys[0].nconns = 2;
    assert_int_equal(bl_token_hash(key, strlen(key), k.keys[0].sha256), BL_OK);
    assert_int_equal(bl_agentkeys_write(path, &k, &err), BL_OK);
    assert_int_equal(bl_agentkeys_load(path, &back, &err), BL_OK);
    assert_int_equal(back.n, 1);
    const bl_agentkey_t *hit = bl_agentkeys_find(&back, key, strlen(key));
    assert_non_null(hit);
    assert_string_equal(hit->name, "vpc-a");
    assert_null(bl_agentkeys_find(&back, other, strlen(other)));
    assert_null(bl_agentkeys_find(&back, key, strlen(key) - 1));
    assert_true(bl_agentkey_serves(hit, "staging", 7));
    assert_false(bl_agentkey_serves(hit, "stag", 4));
    assert_false(bl_agentkey_serves(hit, "prod", 4));
    /* The file holds the hash, never the key. */
    FILE *f = fopen(path, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_null(strstr(text, key + 4));
    bl_agentkeys_free(&k);
    bl_agentkeys_free(&back);
    bl_buf_free(&err);
}

static void test_agentkeys_bad(void **state)
{
    char path[256];
    bl_agentkeys_t k;
    bl_buf_t err;
    (void)state;
    bl_buf_init(&err, 4096);
    write_file("bad-keys.yaml", "agents:\n  - name: a\n    connections: [x]\n    key_sha256: 12ab\n", path, sizeof(path));
    assert_int_equal(bl_agentkeys_load(path, &k, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "bad-keys.yaml:4:17: key_sha256: expected 64 hex digits"));
    bl_buf_free(&err);
}

static void test_backoff(void **state)
{
    (void)state;
    /* Within [ceil/2, ceil], doubling from the base, never above the cap. */
    assert_int_equal(bl_backoff_ms(0, 500, 30000, 0), 250);
    assert_int_equal(bl_backoff_ms(0, 500, 30000, UINT32_MAX), 500);
    assert_int_equal(bl_backoff_ms(3, 500, 30000, 0), 2000);
    assert_int_equal(bl_backoff_ms(3, 500, 30000, UINT32_MAX), 4000);
    assert_int_equal(bl_backoff_ms(6, 500, 30000, UINT32_MAX), 30000);
    assert_int_equal(bl_backoff_ms(60, 500, 30000, 0), 15000);
    assert_int_equal(bl_backoff_ms(1000000, 500, 30000, UINT32_MAX), 30000);
    uint64_t mid = bl_backoff_ms(2, 500, 30000, UINT32_MAX / 2);
    assert_true(mid > 1000 && mid < 2000);
}

static void test_token_file(void **state)
{
    char path[256];
    bl_buf_t out, err;
    (void)state;
    bl_buf_init(&out, 4096);
    bl_buf_init(&err, 4096);
    write_file("sa.token", "  tok-1\n", path, sizeof(path));
    bl_cred_t *c = bl_cred_token_file(path, &err);
    assert_non_null(c);
    assert_int_equal(bl_cred_header(c, &out, &err), BL_OK);
    assert_string_equal(bl_buf_cstr(&out), "Authorization: Bearer tok-1\r\n");
    bl_cred_free(c);
    write_file("bad.token", "a\r\nX-Injected: 1\n", path, sizeof(path));
    assert_null(bl_cred_token_file(path, &err));
    write_file("empty.token", "\n", path, sizeof(path));
    assert_null(bl_cred_token_file(path, &err));
    assert_null(bl_cred_token("two words", &err));
    bl_buf_free(&out);
    bl_buf_free(&err);
}

static void test_conf(void **state)
{
    char path[256], tok[256], cfg[1024];
    bl_agentconf_t conf;
    bl_buf_t err;
    (void)state;
    bl_buf_init(&err, 8192);
    write_file("prod.token", "tok\n", tok, sizeof(tok));
    snprintf(cfg, sizeof(cfg), "connections:\n  - name: prod-eks\n    server: https://10.0.0.1:6443\n"
                               "    token_file: %s\n", tok);
    write_file("agent.yaml", cfg, path, sizeof(path));
    assert_int_equal(bl_agentconf_load(path, &conf, &err), BL_OK);
    assert_int_equal(conf.n, 1);
    assert_non_null(bl_agentconf_find(&conf, "prod-eks", 8));
    assert_int_equal(bl_agentconf_open(&conf, &err), BL_OK);
    assert_int_equal(conf.conns[0].url.port, 6443);
    bl_agentconf_free(&conf);
    write_file("agent2.yaml", "connections:\n  - name: a\n    server: https://x\n    token: t\n    in_cluster: true\n"
                              "  - name: b\n", path, sizeof(path));
    bl_buf_reset(&err);
    assert_int_equal(bl_agentconf_load(path, &conf, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "agent2.yaml:2:5: connection \"a\": give exactly one of"));
    assert_non_null(strstr(bl_buf_cstr(&err), "agent2.yaml:6:5: connection \"b\": give exactly one of"));
    bl_buf_free(&err);
}

/* Applies kubeconfig `text` to a fresh connection. Returns the result; err gets why. */
static int kubeconfig(const char *text, const char *context, bl_agentconn_t *c, bl_buf_t *err)
{
    char path[256];
    write_file("sub/kc.yaml", text, path, sizeof(path));
    memset(c, 0, sizeof(*c));
    c->name = "prod";
    c->kubeconfig = path;
    c->context = (char *)context;
    bl_buf_reset(err);
    return bl_kubeconfig_apply(c, err);
}

static void kc_clear(bl_agentconn_t *c)
{
    free(c->server);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->server_name);
    free(c->token);
    free(c->token_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    free(c->key_pem);
}

static void test_kubeconfig(void **state)
{
    static const char two[] =
        "apiVersion: v1\nkind: Config\ncurrent-context: b\npreferences: {}\n"
        "clusters:\n- name: ca\n  cluster:\n    server: https://a.example\n    certificate-authority: ../ca.crt\n"
        "- name: cb\n  cluster:\n    server: https://b.example:6443\n    tls-server-name: kubernetes\n"
        "    certificate-authority-data: LS0tLS1CRUdJTiBYLS0tLS0K\n"
        "users:\n- name: ua\n  user:\n    tokenFile: a.token\n- name: ub\n  user:\n    token: tok-b\n"
        "contexts:\n- name: a\n  context:\n    cluster: ca\n    user: ua\n"
        "- name: b\n  context:\n    cluster: cb\n    user: ub\n    namespace: web\n";
    bl_agentconn_t c;
    bl_buf_t err;
    char dir[128];
    (void)state;
    bl_buf_init(&err, 4096);
    snprintf(dir, sizeof(dir), "%s/sub", tmpdir);
    mkdir(dir, 0700);
    /* current-context: b, with CA data decoded and the token inline. */
    assert_int_equal(kubeconfig(two, NULL, &c, &err), BL_OK);
    assert_string_equal(c.server, "https://b.example:6443");
    assert_string_equal(c.server_name, "kubernetes");
    assert_string_equal(c.ca_pem, "-----BEGIN X-----\n");
    assert_string_equal(c.token, "tok-b");
    kc_clear(&c);
    /* an explicit context; paths relative to the kubeconfig's directory. */
    assert_int_equal(kubeconfig(two, "a", &c, &err), BL_OK);
    assert_string_equal(c.server, "https://a.example");
    assert_non_null(strstr(c.ca_file, "/sub/../ca.crt"));
    assert_non_null(strstr(c.token_file, "/sub/a.token"));
    kc_clear(&c);
    assert_int_equal(kubeconfig(two, "nope", &c, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "no context \"nope\""));
    kc_clear(&c);
    assert_int_equal(kubeconfig("current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://x\n"
                                "    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\n"
                                "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n", NULL, &c, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "insecure-skip-tls-verify is refused"));
    kc_clear(&c);
    assert_int_equal(kubeconfig("current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://x\n"
                                "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
                                "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n", NULL, &c, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "exec plugin"));
    kc_clear(&c);
    bl_buf_free(&err);
}

static void test_fdstream_note(void **state)
{
    int fds[2];
    char b[16];
    (void)state;
    bl_loop_t *loop = bl_loop_new();
    assert_non_null(loop);
    /* A plain end of stream reads as 0; one with a note as an error with the reason. */
    for (int noted = 0; noted < 2; noted++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        bl_stream_t *s = bl_fdstream_new(loop, fds[0]);
        assert_non_null(s);
        bl_fdnote_t *n = bl_fdstream_note(s);
        assert_int_equal(write(fds[1], "hi", 2), 2);
        if (noted)
            bl_fdnote_set(n, "agent for prod-eks disconnected");
        bl_fdnote_unref(n);
        close(fds[1]);
        /* Bytes before the end still arrive (a full read: the next one asks the kernel again). */
        assert_int_equal(bl_stream_read(s, b, 2), 2);
        assert_int_equal(bl_stream_read(s, b, sizeof(b)), noted ? BL_ERROR : 0);
        if (noted)
            assert_string_equal(s->ops->why(s), "agent for prod-eks disconnected");
        else
            assert_null(s->ops->why(s));
        bl_stream_release(s, 0);
        bl_loop_run_once(loop); /* the deferred free */
    }
    bl_loop_free(loop);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_agent.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_head),
        cmocka_unit_test(test_rewrite_refusals),
        cmocka_unit_test(test_tunnel_body_end),
        cmocka_unit_test(test_tunnel_pipelined),
        cmocka_unit_test(test_agentkeys),
        cmocka_unit_test(test_agentkeys_bad),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_kubeconfig),
        cmocka_unit_test(test_fdstream_note),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
