/* rewrite.c - the agent's head rewrite; see rewrite.h. */
#include <stdio.h>
#include "agent/rewrite.h"
#include "core/log.h"

/* Returns a static reason if the field must not reach the API server
 * through this agent, else NULL. */
static const char *bl_rw_refused(bl_str_t name, const bl_agentconn_t *c)
{
    if (bl_str_eq_nocase(name, "authorization") || bl_str_eq_nocase(name, "proxy-authorization"))
        return "byline agent: the request carries its own credential; the agent adds the connection's";
    if (bl_str_prefix_nocase(name, "impersonate-") && !c->allow_impersonation)
        return "byline agent: Impersonate-* headers are refused (set allow_impersonation: true for this "
               "connection if the gateway's connection has impersonate: true)";
    return NULL;
}

static int bl_rw_host(bl_buf_t *out, const bl_url_t *u)
{
    int v6 = strchr(u->host, ':') != NULL;
    if (u->port == 443)
        return bl_buf_printf(out, v6 ? "Host: [%s]\r\n" : "Host: %s\r\n", u->host);
    return bl_buf_printf(out, v6 ? "Host: [%s]:%d\r\n" : "Host: %s:%d\r\n", u->host, u->port);
}

int bl_tunnel_rewrite(const bl_http_request_t *hr, bl_agentconn_t *c, bl_buf_t *out, int *status,
                      const char **why)
{
    *status = 400;
    if (hr->minor_version != 1 || bl_str_eq(hr->method, "CONNECT") || hr->target.len == 0 || hr->target.p[0] != '/') {
        *why = "byline agent: expected an HTTP/1.1 request in origin form";
        return BL_DECLINED;
    }
    for (size_t i = 0; i < hr->num_headers; i++)
        if ((*why = bl_rw_refused(hr->headers[i].name, c)) != NULL) {
            *status = 403;
            return BL_DECLINED;
        }
    int rc = bl_buf_putstr(out, hr->method) | bl_buf_puts(out, " ") | bl_buf_puts(out, c->url.path) |
             bl_buf_putstr(out, hr->target) | bl_buf_puts(out, " HTTP/1.1\r\n") | bl_rw_host(out, &c->url);
    size_t pos = 0;
    const bl_http_header_t *who = bl_http_find(hr->headers, hr->num_headers, BL_AGENT_IDENTITY_HEADER, &pos);
    if (who && bl_http_find(hr->headers, hr->num_headers, BL_AGENT_IDENTITY_HEADER, &pos)) {
        *why = "byline agent: more than one Byline-Identity field";
        return BL_DECLINED; /* the gateway sends one; two means someone else added one */
    }
    bl_buf_t err;
    bl_buf_init(&err, 512);
    int crc = bl_cred_header_as(c->cred, who ? who->value : BL_STR_NULL, out, &err);
    if (crc == BL_AGAIN) {
        bl_buf_free(&err);
        *status = 502;
        *why = "byline agent: the connection's credential is not ready yet";
        return BL_AGAIN;
    }
    if (crc != BL_OK) {
        bl_warn("connection %s: credential (%s): %s", c->name, c->cred->ops->kind, bl_buf_cstr(&err));
        bl_buf_free(&err);
        *status = 502;
        *why = "byline agent: the connection's credential is unavailable (see the agent's log)";
        return BL_ERROR;
    }
    bl_buf_free(&err);
    int upgrade = bl_tunnel_is_upgrade(hr);
    for (size_t i = 0; i < hr->num_headers; i++)
        if (!bl_str_eq_nocase(hr->headers[i].name, "host") &&
            !bl_str_eq_nocase(hr->headers[i].name, BL_AGENT_IDENTITY_HEADER) &&
            (upgrade || !bl_str_eq_nocase(hr->headers[i].name, "connection")))
            rc |= bl_buf_field(out, hr->headers[i].name, hr->headers[i].value);
    rc |= bl_buf_puts(out, "\r\n");
    if (rc) {
        *status = 431;
        *why = "byline agent: request head too large";
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_tunnel_is_upgrade(const bl_http_request_t *hr)
{
    size_t pos = 0;
    const bl_http_header_t *h;
    if (bl_http_find(hr->headers, hr->num_headers, "upgrade", NULL) == NULL)
        return 0;
    while ((h = bl_http_find(hr->headers, hr->num_headers, "connection", &pos)) != NULL)
        if (bl_http_has_token(h->value, "upgrade"))
            return 1;
    return 0;
}

void bl_tunnel_body_from(bl_tunnel_body_t *b, const bl_body_t *body)
{
    memset(b, 0, sizeof(*b));
    b->body = *body;
    bl_chunked_init(&b->chunked);
    b->left = b->body.kind == BL_BODY_LENGTH ? b->body.length : 0;
    b->done = b->body.kind != BL_BODY_CHUNKED && b->left == 0;
}

int bl_tunnel_body_init(bl_tunnel_body_t *b, const bl_http_request_t *hr, bl_http_err_t *err)
{
    bl_body_t body;
    if (bl_http1_request_body(hr, &body, err) != BL_OK)
        return BL_ERROR;
    bl_tunnel_body_from(b, &body);
    return BL_OK;
}

long bl_tunnel_body_take(bl_tunnel_body_t *b, const char *p, size_t n, bl_http_err_t *err)
{
    size_t off = 0;
    bl_str_t data;
    if (b->done)
        return 0;
    if (b->body.kind == BL_BODY_LENGTH) {
        off = (size_t)BL_MIN((uint64_t)n, b->left);
        b->left -= off;
        b->done = b->left == 0;
        return (long)off;
    }
    while (off < n && !b->chunked.done) { /* one payload span per call: loop */
        long r = bl_chunked_decode(&b->chunked, p + off, n - off, &data, err);
        if (r < 0)
            return BL_ERROR;
        if (r == 0)
            break;
        off += (size_t)r;
    }
    b->done = b->chunked.done;
    return (long)off;
}
