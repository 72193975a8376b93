/*
 * pool.h - idle keep-alive connections from the agent to one connection's
 * API server. A tunnel whose request and response ended cleanly (both
 * framed, nothing after them, no "Connection: close") gives its TLS
 * connection back; the next tunnel for the same connection takes the
 * newest one instead of a TCP + TLS handshake (tunnel.c). Idle ones close
 * after BL_AGENT_POOL_IDLE_MS, or at once when the server closes them.
 * One loop (the agent's) owns every pooled socket.
 */
#ifndef BL_AGENT_POOL_H
#define BL_AGENT_POOL_H

#include "agent/conf.h"
#include "net/sock.h"

#define BL_AGENT_POOL_MAX     256
#define BL_AGENT_POOL_IDLE_MS 30000

/* Returns the newest idle connection to c's API server (now the caller's,
 * its on_io unset), or NULL. */
bl_sock_t *bl_agentpool_take(bl_agentconn_t *c);

/* Keeps `s` (taken) for later, or closes it if the pool is full or cannot
 * be made. `loop` is the agent's loop. */
void bl_agentpool_put(bl_agentconn_t *c, bl_loop_t *loop, bl_sock_t *s);

/* Closes every idle connection of `c` and frees the pool; before the loop
 * goes. NULL pool is fine. */
void bl_agentpool_free(bl_agentconn_t *c);

#endif
