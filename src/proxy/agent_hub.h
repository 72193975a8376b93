/*
 * agent_hub.h - the gateway's side of byline agents: one "hub" thread with
 * its own loop holds every agent session (an HTTP/2 connection the agent
 * dialled in, see docs/AGENT.md) and hands workers byte tunnels through them.
 *
 * A worker that accepted an agent's `POST /byline/agent/v1/connect` checks
 * it (agent_accept.c) and gives the TLS connection to the hub, which
 * answers 101 and speaks HTTP/2 as the client. A worker that needs the
 * API server of a `via: agent` connection (upstream_agent.c) gets one end
 * of a socketpair at once; the hub opens a CONNECT stream on the least
 * busy agent serving that connection and pumps the other end into it.
 *
 * Threads: bl_hub_adopt(), bl_hub_open() and bl_hub_online() may be called
 * from any worker; everything else happens in the hub thread.
 */
#ifndef BL_PROXY_AGENT_HUB_H
#define BL_PROXY_AGENT_HUB_H

#include <openssl/ssl.h>
#include "auth/agentkey.h"
#include "config/config.h"
#include "net/fdstream.h"

typedef struct bl_hub_s bl_hub_t;

/* Loads DIR/agent-keys.yaml and starts the hub thread. Returns the hub,
 * or NULL with the reason in `err`. */
bl_hub_t *bl_hub_start(const bl_config_t *cfg, bl_buf_t *err);

/* Disconnects every agent, stops the thread and frees the hub. NULL is fine. */
void bl_hub_stop(bl_hub_t *h);

/* Returns a reference to the key registry in force (read-only; release
 * it with bl_hub_keys_put). A reload may replace the registry at any
 * time; the reference keeps this one alive. Thread-safe. */
const bl_agentkeys_t *bl_hub_keys_get(bl_hub_t *h);
void bl_hub_keys_put(const bl_agentkeys_t *k);

/* Makes *k (taken: zeroed on return) the registry new agent connections
 * are checked against; the hub thread then narrows each live session to
 * what its key (same name and hash) still serves and cuts off one left
 * with nothing (key removed or replaced). Main thread
 * (proxy/reload.c). Returns BL_OK, or BL_ERROR (out of memory; the
 * registry in force stays, *k is freed). */
int bl_hub_keys_install(bl_hub_t *h, bl_agentkeys_t *k);

/* Returns how many agent sessions now serve connection `k` (an index in
 * cfg->conns); racy by nature, a hint for a quick 503. */
int bl_hub_online(const bl_hub_t *h, size_t k);

/*
 * Hands an authenticated agent connection to the hub: fd and ssl (taken),
 * the agent's key name and SHA-256 (BL_TOKEN_HASH_LEN bytes), the
 * connections it serves (serves[k] for cfg->conns[k]; copied) and bytes
 * already read past its request head (copied).
 */
void bl_hub_adopt(bl_hub_t *h, int fd, SSL *ssl, const char *peer, const char *name,
                  const unsigned char *sha256, const unsigned char *serves, const void *pre, size_t npre);

/*
 * Asks for a tunnel to connection `k`'s API server through an agent. `fd`
 * is the hub's end of a socketpair (taken); `note` (a reference, taken)
 * is set if the tunnel fails, so the worker's end reports why. Returns at
 * once; the tunnel starts in the hub thread.
 */
void bl_hub_open(bl_hub_t *h, size_t k, int fd, bl_fdnote_t *note);

#endif
