/*
 * agent_accept.c - a byline agent dialling in, in the worker that accepted
 * it: `POST /byline/agent/v1/connect` with its key as a bearer token, the
 * connections it serves in `Byline-Agent-Connections`, and an upgrade to
 * `byline-agent/1`. A valid agent's TLS connection goes to the agent hub
 * (which answers 101 and runs HTTP/2); anything else gets a 4xx and is
 * closed. These are not kubectl requests: they are logged, not audited.
 */
#include <stdio.h>
#include "core/log.h"
#include "proxy/agent_hub.h"
#include "proxy/proxy.h"

#define BL_AGENT_PATH "/byline/agent/v1/connect"
#define BL_AGENT_PROTO "byline-agent/1"

int bl_agent_accept_wants(const bl_http_request_t *hr)
{
    return bl_str_eq(hr->target, BL_AGENT_PATH);
}

/* Answers with a short plain-text error and closes the connection. */
static void bl_agent_refuse(bl_conn_t *c, int code, const char *phrase, const char *msg)
{
    bl_warn("agent connection from %s refused: %s", c->sock->peer_ip, msg);
    bl_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                           "Content-Length: %zu\r\n\r\n%s\n", code, phrase, strlen(msg) + 1, msg);
    bl_conn_flush(c);
    bl_conn_close(c);
}

/* Returns the header's single value, or an empty view if absent or repeated. */
static bl_str_t bl_agent_header(const bl_http_request_t *hr, const char *name)
{
    size_t pos = 0;
    const bl_http_header_t *h = bl_http_find(hr->headers, hr->num_headers, name, &pos);
    if (h == NULL || bl_http_find(hr->headers, hr->num_headers, name, &pos))
        return BL_STR_NULL;
    return h->value;
}

/* Fills serves[] from the announced list. Returns NULL or why not (msg). */
static const char *bl_agent_conns(bl_conn_t *c, bl_str_t list, const bl_agentkey_t *key,
                                  unsigned char *serves, char *msg, size_t cap)
{
    const bl_config_t *cfg = c->w->srv->cfg;
    const char *p = list.p, *end = p + list.len;
    int n = 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        bl_str_t el = bl_str_trim((bl_str_t){ p, (size_t)((comma ? comma : end) - p) });
        p = comma ? comma + 1 : end;
        if (el.len == 0)
            continue;
        const bl_connection_t *conn = bl_config_connection(cfg, el.p, el.len);
        if (conn == NULL || !conn->via_agent) {
            snprintf(msg, cap, "connection \"%.*s\" is not configured here with via: agent", (int)BL_MIN(el.len, 64u), el.p);
            return msg;
        }
        if (!bl_agentkey_serves(key, el.p, el.len)) {
            snprintf(msg, cap, "agent %s is not registered for connection %s", key->name, conn->name);
            return msg;
        }
        serves[conn - cfg->conns] = 1;
        n++;
    }
    return n ? NULL : "Byline-Agent-Connections names no connection";
}

/* Returns the agent's entry in registry `reg`, or NULL with *why. */
static const bl_agentkey_t *bl_agent_key(const bl_agentkeys_t *reg, const bl_http_request_t *hr,
                                         const char **why)
{
    bl_str_t auth = bl_agent_header(hr, "authorization");
    if (!bl_str_prefix_nocase(auth, "bearer ")) {
        *why = "no agent key (Authorization: Bearer)";
        return NULL;
    }
    bl_str_t tok = bl_str_trim((bl_str_t){ auth.p + 7, auth.len - 7 });
    const bl_agentkey_t *k = bl_agentkeys_find(reg, tok.p, tok.len);
    *why = "unknown agent key";
    return k;
}

/* bl_agent_accept with a reference to the key registry in force. */
static void bl_agent_accept_with(bl_conn_t *c, const bl_http_request_t *hr, size_t head_len,
                                 const bl_agentkeys_t *reg)
{
    unsigned char serves[BL_CONFIG_MAX_CONNS] = { 0 };
    char msg[256];
    const char *why = NULL;
    SSL *ssl = NULL;
    int fd = -1;
    bl_str_t upgrade = bl_agent_header(hr, "upgrade");
    bl_http_err_t herr;
    bl_body_t body;
    const bl_agentkey_t *key = bl_agent_key(reg, hr, &why);
    if (key == NULL) {
        bl_agent_refuse(c, 401, "Unauthorized", why);
        return;
    }
    if (!bl_str_eq(hr->method, "POST") || !bl_str_eq_nocase(upgrade, BL_AGENT_PROTO) ||
        bl_http1_request_body(hr, &body, &herr) != BL_OK || body.kind != BL_BODY_NONE) {
        bl_agent_refuse(c, 400, "Bad Request", "expected POST with Upgrade: " BL_AGENT_PROTO " and no body");
        return;
    }
    why = bl_agent_conns(c, bl_agent_header(hr, "byline-agent-connections"), key, serves, msg, sizeof(msg));
    if (why) {
        bl_agent_refuse(c, 403, "Forbidden", why);
        return;
    }
    bl_buf_consume(&c->in, head_len);
    if (bl_sock_detach(c->sock, &ssl, &fd) != BL_OK) {
        bl_conn_close(c);
        return;
    }
    bl_hub_adopt(c->w->srv->hub, fd, ssl, c->sock->peer_ip, key->name, key->sha256, serves, bl_buf_data(&c->in), bl_buf_size(&c->in));
    bl_buf_reset(&c->in);
    bl_conn_close(c);
}

void bl_agent_accept(bl_conn_t *c, const bl_http_request_t *hr, size_t head_len)
{
    if (c->w->srv->hub == NULL) {
        bl_agent_refuse(c, 404, "Not Found", "no connection here is configured with via: agent");
        return;
    }
    /* A reload may swap the registry meanwhile: this one stays until adopt copied the name. */
    const bl_agentkeys_t *reg = bl_hub_keys_get(c->w->srv->hub);
    bl_agent_accept_with(c, hr, head_len, reg);
    bl_hub_keys_put(reg);
}
