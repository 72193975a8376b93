/*
 * rewrite.h - the one change the agent makes to a request: the head the
 * gateway sent through a tunnel becomes the head for the API server.
 *
 * The agent re-decides nothing the gateway decided; it only refuses what
 * its gateway never sends, so that a confused or compromised peer cannot
 * borrow the agent's credential for more than plain requests: a client
 * credential (Authorization, Proxy-Authorization), and Impersonate-*
 * unless the connection allows it (set allow_impersonation when the
 * gateway's connection has impersonate: true).
 */
#ifndef BL_AGENT_REWRITE_H
#define BL_AGENT_REWRITE_H

#include "agent/conf.h"
#include "http/http1.h"

/* The gateway names the byline identity behind a tunnelled request in this
 * field, for the agent only: the agent uses it to pick a per-identity
 * credential (kubernetes-eks per_identity_sessions) and never forwards it;
 * the gateway drops any Byline-* field a client sends (request.c). */
#define BL_AGENT_IDENTITY_HEADER "byline-identity"

/*
 * Appends the rewritten head to `out`: the request line with the API
 * server's path prefix, Host for the API server, the credential's lines,
 * then every other field as received. Returns BL_OK; BL_DECLINED with
 * *status (403 or 400) and a static *why when the head is refused; or
 * BL_ERROR with *why (credential unavailable, 502; head too large, 431);
 * or BL_AGAIN when the credential is not ready yet (being minted off the
 * loop): `out` may hold a partial head; reset it and call again shortly.
 */
int bl_tunnel_rewrite(const bl_http_request_t *hr, bl_agentconn_t *c, bl_buf_t *out, int *status,
                      const char **why);

/* Returns 1 if the request asks to switch protocols (an Upgrade field and
 * the "upgrade" token in Connection: exec, attach, port-forward), else 0.
 * Every other request keeps its connection open (no Connection field):
 * the tunnel follows its response to the end and pools the connection
 * (tunnel.c, pool.c); only the next tunnel's own checked request follows. */
int bl_tunnel_is_upgrade(const bl_http_request_t *hr);

/*
 * Where the tunnel's one request ends. The agent checks and rewrites only
 * the first head on a tunnel, so it forwards exactly that request's body
 * and nothing after it: a second, pipelined request would reach the API
 * server with the agent's credential, unchecked and unrecorded. After a
 * 101 the tunnel relays raw bytes both ways; that is the caller's call.
 */
typedef struct {
    bl_body_t body;         /* framing from the head */
    uint64_t left;          /* BL_BODY_LENGTH: bytes still to come */
    bl_chunked_t chunked;   /* BL_BODY_CHUNKED: the decoder, for the end only */
    int done;               /* 1 once the whole body has been taken */
} bl_tunnel_body_t;

/* Reads the framing of hr's body. Returns BL_OK, or BL_ERROR with *err
 * (conflicting or unsupported framing: the strict parser's rules). */
int bl_tunnel_body_init(bl_tunnel_body_t *b, const bl_http_request_t *hr, bl_http_err_t *err);

/* Sets b to follow a body framed as `body` (a response's, for instance). */
void bl_tunnel_body_from(bl_tunnel_body_t *b, const bl_body_t *body);

/* Takes body bytes from p[0..n). Returns how many of them belong to the
 * body (fewer than n when the body ends inside; 0 once b->done), or
 * BL_ERROR with *err on a malformed chunked body. */
long bl_tunnel_body_take(bl_tunnel_body_t *b, const char *p, size_t n, bl_http_err_t *err);

#endif
