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

#endif
