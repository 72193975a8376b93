/*
 * upstream.h - how the proxy reaches a connection's Kubernetes API server.
 *
 * The proxy asks an upstream for a byte stream that speaks HTTP/1.1 to
 * the API server, and for the header lines that carry the connection's
 * shared credential. It never learns how the stream is made: the direct
 * implementation (upstream_direct.c) dials TLS and pools connections; a
 * later one relays through a network-resident byline agent, which holds
 * the credential itself and so adds no header here.
 *
 * An upstream belongs to one worker's loop and is used from that thread only.
 */
#ifndef BL_PROXY_UPSTREAM_H
#define BL_PROXY_UPSTREAM_H

#include <openssl/ssl.h>
#include "config/config.h"
#include "core/buf.h"
#include "core/loop.h"
#include "net/stream.h"

typedef struct bl_upstream_s bl_upstream_t;
typedef struct bl_upwait_s bl_upwait_t;

/* A pending open, embedded in the caller's request state. */
struct bl_upwait_s {
    /* Fires exactly once unless cancelled: with a ready stream (now owned
     * by the caller) and err NULL, or with s NULL and a reason. */
    void (*cb)(bl_upwait_t *w, bl_stream_t *s, const char *err);
    void *data;
    /* private to the implementation */
    void *pending;
    bl_timer_t timer;
    bl_upstream_t *up;
};

typedef struct {
    const char *kind;
    /* Returns BL_OK with *out ready now (a pooled stream), BL_AGAIN when
     * w->cb will fire later, BL_ERROR with a static *err, or BL_DECLINED
     * with *err when the upstream is unavailable for now (the client gets
     * a 503, not a 502: e.g. no agent online). */
    int (*open)(bl_upstream_t *u, bl_upwait_t *w, bl_stream_t **out, const char **err);
    /* Abandons a pending open; w->cb will not fire. */
    void (*cancel)(bl_upstream_t *u, bl_upwait_t *w);
    /* Appends the Host line and the credential lines ("Name: value\r\n")
     * every request to this upstream carries. BL_OK or BL_ERROR (full). */
    int (*head)(bl_upstream_t *u, bl_buf_t *out);
    /* Returns the path prefix to put in front of forwarded targets ("" if none). */
    const char *(*prefix)(bl_upstream_t *u);
    /* Closes pooled streams and frees the upstream. */
    void (*free)(bl_upstream_t *u);
} bl_upstream_ops_t;

struct bl_upstream_s {
    const bl_upstream_ops_t *ops;
    const bl_connection_t *conn;  /* borrowed from the config */
    bl_loop_t *loop;
};

/*
 * Returns a direct upstream for `conn` in `loop`'s thread, dialling TLS
 * with `ctx` (shared; its reference is taken). connect_timeout_ms bounds
 * TCP connect plus TLS handshake. NULL with the reason in `err`.
 */
bl_upstream_t *bl_upstream_direct_new(bl_loop_t *loop, const bl_connection_t *conn, SSL_CTX *ctx,
                                      unsigned connect_timeout_ms, bl_buf_t *err);

/*
 * Returns an upstream for connection `conn` (cfg->conns[k], `via: agent`)
 * that tunnels through the agent hub. NULL with the reason in `err`.
 */
struct bl_hub_s;
bl_upstream_t *bl_upstream_agent_new(bl_loop_t *loop, const bl_connection_t *conn, struct bl_hub_s *hub,
                                     size_t k, bl_buf_t *err);

#endif
