/*
 * tunnel.h - one request tunnelled from the gateway, at the agent: a
 * bl_stream_t that takes the gateway's HTTP/1.1 request (head checked and
 * rewritten by rewrite.h), relays it to the connection's API server over
 * TLS, and gives back the raw response and, after a 101, the raw session.
 */
#ifndef BL_AGENT_TUNNEL_H
#define BL_AGENT_TUNNEL_H

#include "agent/conf.h"
#include "net/stream.h"

/* Returns a new tunnel for connection `conn` (borrowed; must outlive it)
 * in `loop`, or NULL. Released with bl_stream_release(). */
bl_stream_t *bl_tunnel_new(bl_loop_t *loop, bl_agentconn_t *conn);

#endif
