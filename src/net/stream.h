/*
 * stream.h - a bidirectional byte stream, the one interface the proxy
 * moves bytes through. A TLS socket (net/sock.h) is one implementation;
 * a later one is a multiplexed stream to a network-resident byline agent.
 *
 * Readiness is edge-style: the stream calls owner->on_io when it may have
 * become readable or writable; the owner then reads/writes until BL_AGAIN.
 * An owner that stops early (its buffer is full) must retry on its own
 * when it has room again; no further edge is promised.
 */
#ifndef BL_NET_STREAM_H
#define BL_NET_STREAM_H

#include "core/common.h"
#include "core/loop.h"

typedef struct bl_stream_s bl_stream_t;

typedef struct {
    const char *kind;  /* "tls", ... for logs */
    /* Returns bytes read (> 0), 0 at orderly end of stream, BL_AGAIN, or BL_ERROR. */
    long (*read)(bl_stream_t *s, void *p, size_t n);
    /* Returns bytes written (> 0), BL_AGAIN, or BL_ERROR. */
    long (*write)(bl_stream_t *s, const void *p, size_t n);
    /* Ends our sending direction (the peer reads EOF); reading goes on.
     * Returns BL_OK, BL_AGAIN (call again when writable) or BL_ERROR. */
    int (*shutdown_wr)(bl_stream_t *s);
    /* Gives the stream up. reusable=1 offers it to its pool (only when a
     * whole HTTP exchange completed on it); otherwise it is closed. The
     * stream must not be touched afterwards; its memory is freed later. */
    void (*release)(bl_stream_t *s, int reusable);
    /* Optional (may be NULL): returns why the stream failed, when it knows
     * better than "read failed" (e.g. "agent for prod-eks disconnected"),
     * else NULL. The string belongs to the stream. */
    const char *(*why)(bl_stream_t *s);
} bl_stream_ops_t;

struct bl_stream_s {
    const bl_stream_ops_t *ops;
    void (*on_io)(bl_stream_t *s, unsigned events); /* BL_IO_* bits */
    void *owner;
};

static inline long bl_stream_read(bl_stream_t *s, void *p, size_t n) { return s->ops->read(s, p, n); }
static inline long bl_stream_write(bl_stream_t *s, const void *p, size_t n) { return s->ops->write(s, p, n); }
static inline int bl_stream_shutdown_wr(bl_stream_t *s) { return s->ops->shutdown_wr(s); }
static inline void bl_stream_release(bl_stream_t *s, int reusable) { s->ops->release(s, reusable); }

#endif
