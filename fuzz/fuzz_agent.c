/*
 * fuzz_agent.c - libFuzzer target for what the byline agent and the
 * gateway's agent support read: the request head a tunnel receives from
 * the gateway (src/agent/rewrite.c over the strict parser), the agent key
 * registry (src/auth/agentkey.c), the agent's config (src/agent/conf.c)
 * and kubeconfigs (src/agent/kubeconfig.c).
 *
 * Input: one mode byte, then the data.
 *   mode % 4 == 0  a request head, rewritten for https://api.example:6443/p
 *                  with a fixed token (allow_impersonation = mode bit 2)
 *   mode % 4 == 1  DIR/agent-keys.yaml
 *   mode % 4 == 2  the agent's YAML config (loaded, not opened)
 *   mode % 4 == 3  a kubeconfig, applied to a connection
 * Files go to a private directory made once. Besides crashes, sanitizer
 * reports and leaks, the target aborts when:
 *   - a rewritten head is not itself a valid request head, lacks the
 *     credential line or Host, or keeps an Authorization or (when not
 *     allowed) Impersonate-* field from the input;
 *   - a refusal has no reason or a status other than 400/403;
 *   - a loaded key registry does not write and load back equal;
 *   - BL_ERROR comes without an error line, BL_OK with one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent/conf.h"
#include "agent/rewrite.h"
#include "auth/agentkey.h"

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static char dir[64];

static const char *put(const char *name, const uint8_t *p, size_t n)
{
    static char path[128];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_agent.XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fwrite(p, 1, n, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

/* Returns 1 if the head has a field `name` (case-insensitive prefix when `prefix`). */
static int has_field(const bl_http_request_t *hr, const char *name, int prefix)
{
    for (size_t i = 0; i < hr->num_headers; i++) {
        bl_str_t n = hr->headers[i].name;
        if (prefix ? bl_str_prefix_nocase(n, name) : bl_str_eq_nocase(n, name))
            return 1;
    }
    return 0;
}

static void fuzz_rewrite(const uint8_t *p, size_t n, int allow)
{
    bl_http_header_t hdrs[64], out_hdrs[80];
    bl_http_request_t hr = { .headers = hdrs, .num_headers = 64 }, back = { .headers = out_hdrs, .num_headers = 80 };
    bl_http_err_t err;
    bl_buf_t out, e;
    const char *why = NULL;
    int status = 0;
    if (bl_http1_parse_request((const char *)p, n, &hr, &err) <= 0)
        return;
    bl_agentconn_t c = { .name = "prod", .server = "https://api.example:6443/p", .allow_impersonation = allow };
    CHECK(bl_url_parse(c.server, strlen(c.server), &c.url, &why) == BL_OK);
    bl_buf_init(&e, 256);
    c.cred = bl_cred_token("tok", &e);
    CHECK(c.cred != NULL);
    bl_buf_init(&out, 256 * 1024);
    int rc = bl_tunnel_rewrite(&hr, &c, &out, &status, &why);
    if (rc == BL_DECLINED) {
        CHECK(why && *why && (status == 400 || status == 403));
    } else if (rc == BL_OK) {
        CHECK(bl_http1_parse_request(bl_buf_data(&out), bl_buf_size(&out), &back, &err) == (int)bl_buf_size(&out));
        CHECK(back.method.len == hr.method.len && !memcmp(back.method.p, hr.method.p, hr.method.len));
        CHECK(back.target.len == hr.target.len + 2 && !memcmp(back.target.p, "/p", 2));
        CHECK(has_field(&back, "host", 0) && !has_field(&hr, "authorization", 0) && !has_field(&hr, "proxy-authorization", 0));
        CHECK(allow || !has_field(&back, "impersonate-", 1));
        CHECK(strstr(bl_buf_cstr(&out), "\r\nAuthorization: Bearer tok\r\n") != NULL);
    }
    bl_cred_free(c.cred);
    bl_buf_free(&out);
    bl_buf_free(&e);
}

static void fuzz_keys(const uint8_t *p, size_t n)
{
    bl_agentkeys_t k, again;
    bl_buf_t err;
    bl_buf_init(&err, 1 << 20);
    const char *path = put("agent-keys.yaml", p, n);
    int rc = bl_agentkeys_load(path, &k, &err);
    CHECK((rc == BL_OK) == (bl_buf_size(&err) == 0));
    if (rc == BL_OK && bl_agentkeys_write(path, &k, &err) == BL_OK) {
        CHECK(bl_agentkeys_load(path, &again, &err) == BL_OK && again.n == k.n);
        for (size_t i = 0; i < k.n; i++) {
            CHECK(!strcmp(k.keys[i].name, again.keys[i].name) && k.keys[i].nconns == again.keys[i].nconns);
            CHECK(!memcmp(k.keys[i].sha256, again.keys[i].sha256, 32));
        }
        bl_agentkeys_free(&again);
    }
    bl_agentkeys_free(&k);
    bl_buf_free(&err);
}

static void fuzz_conf(const uint8_t *p, size_t n)
{
    bl_agentconf_t conf;
    bl_buf_t err;
    bl_buf_init(&err, 1 << 20);
    int rc = bl_agentconf_load(put("agent.yaml", p, n), &conf, &err);
    CHECK((rc == BL_OK) == (bl_buf_size(&err) == 0));
    if (rc == BL_OK)
        bl_agentconf_free(&conf);
    bl_buf_free(&err);
}

static void fuzz_kubeconfig(const uint8_t *p, size_t n)
{
    bl_agentconf_t conf = { 0 };
    bl_buf_t err;
    bl_agentconn_t *c = calloc(1, sizeof(*c));
    CHECK(c != NULL);
    conf.conns = c;
    conf.n = 1;
    c->name = strdup("prod");
    c->kubeconfig = strdup(put("kc.yaml", p, n));
    bl_buf_init(&err, 1 << 20);
    int rc = bl_kubeconfig_apply(c, &err);
    CHECK((rc == BL_OK) == (bl_buf_size(&err) == 0));
    if (rc == BL_OK)
        CHECK(c->server && (c->token || c->token_file || (c->cert_file && c->key_file) || (c->cert_pem && c->key_pem)));
    bl_agentconf_free(&conf);
    bl_buf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    switch (data[0] % 4) {
    case 0: fuzz_rewrite(data + 1, size - 1, (data[0] >> 2) & 1); break;
    case 1: fuzz_keys(data + 1, size - 1); break;
    case 2: fuzz_conf(data + 1, size - 1); break;
    default: fuzz_kubeconfig(data + 1, size - 1); break;
    }
    return 0;
}
