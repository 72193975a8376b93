/*
 * jwks_cache.h - the key sets of the configured JWT issuers, kept fresh
 * by one background thread so no event loop ever blocks on a file or a
 * network fetch.
 *
 * Sources (bl_issuer_t): a jwks_file, checked every few seconds and
 * re-read when its inode, size or mtime change; a jwks_url fetched over
 * HTTPS (bl_https_get) and refreshed after the response's Cache-Control
 * max-age, clamped to [1 min, 24 h], or the issuer's refresh interval
 * (default 1 h) without one; or OIDC discovery from the issuer URL
 * (/.well-known/openid-configuration -> jwks_uri). A failed refresh keeps
 * the last good set and retries with backoff (30 s doubling to 5 min).
 *
 * Rotation: a token naming a kid the set lacks asks for an early refresh
 * (bl_jwks_cache_refresh), granted at most once per min_refresh_ms per
 * issuer. The request then waits without blocking: its waiter is called
 * on its own loop's thread (through bl_loop_wake and
 * bl_jwks_cache_poll) once that refresh has finished, whatever its
 * outcome; the caller bounds the wait with its own timer.
 *
 * Threads: every function but bl_jwks_cache_new/start/free may be called
 * from any thread; the sets handed out are reference-counted snapshots.
 */
#ifndef BL_AUTH_JWKS_CACHE_H
#define BL_AUTH_JWKS_CACHE_H

#include "auth/jwks.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/loop.h"

typedef struct bl_jwks_cache_s bl_jwks_cache_t;
typedef struct bl_jwks_waiter_s bl_jwks_waiter_t;

/* A request waiting for a refresh. Embedded in its owner; zero it first. */
struct bl_jwks_waiter_s {
    bl_loop_t *loop;                   /* set by the caller: done runs on this loop's thread */
    void (*done)(bl_jwks_waiter_t *w); /* set by the caller */
    void *data;                        /* the caller's */
    bl_jwks_waiter_t *next, *prev;     /* private (the cache's lock) */
    size_t issuer;                     /* private */
    uint64_t gen;                      /* private: ready once the issuer's gen reaches it */
    int linked, ready;                 /* private */
};

typedef struct {
    unsigned min_refresh_ms;    /* early refreshes per issuer at most this often; default 10 s */
    unsigned file_check_ms;     /* how often a jwks_file is stat(2)ed; default 5 s */
    unsigned fetch_timeout_ms;  /* one HTTPS fetch, all included; default 5 s */
} bl_jwks_cache_opts_t;

/*
 * Returns a cache for cfg->issuers (cfg must outlive it), or NULL when
 * out of memory. `o` may be NULL for the defaults. Nothing is loaded
 * until bl_jwks_cache_start.
 */
bl_jwks_cache_t *bl_jwks_cache_new(const bl_config_t *cfg, const bl_jwks_cache_opts_t *o);

/*
 * Loads every jwks_file now (a bad one is logged and retried, not fatal)
 * and starts the refresher thread, which fetches the URL sources at once.
 * Returns BL_OK, or BL_ERROR with the reason appended to err.
 */
int bl_jwks_cache_start(bl_jwks_cache_t *c, bl_buf_t *err);

/* Stops the thread (an HTTPS fetch in progress ends at its deadline) and
 * frees everything. Waiters still registered are dropped uncalled. NULL is fine. */
void bl_jwks_cache_free(bl_jwks_cache_t *c);

/* Returns a reference to issuer i's current key set (release with
 * bl_jwks_keys_unref), or NULL if none has loaded yet. */
bl_jwks_keys_t *bl_jwks_cache_keys(bl_jwks_cache_t *c, size_t i);

/*
 * Asks for an early refresh of issuer i's keys. If it is granted (or one
 * is already due), registers w and returns BL_AGAIN: w->done will run on
 * w->loop once the refresh has finished. Returns BL_DECLINED when the
 * rate limit refuses (w is not registered), BL_ERROR if w is already
 * waiting.
 */
int bl_jwks_cache_refresh(bl_jwks_cache_t *c, size_t i, bl_jwks_waiter_t *w);

/* Unregisters w if it is still waiting. Safe to call at any time. */
void bl_jwks_cache_cancel(bl_jwks_cache_t *c, bl_jwks_waiter_t *w);

/* Runs done for every ready waiter of `loop` (call it from that loop's
 * wake callback). Cheap when there is nothing to do. */
void bl_jwks_cache_poll(bl_jwks_cache_t *c, bl_loop_t *loop);

/* Copies why issuer i's last refresh failed ("" if it did not) into buf. */
void bl_jwks_cache_error(bl_jwks_cache_t *c, size_t i, char *buf, size_t cap);

/* Returns how many refreshes of issuer i have finished (for tests). */
uint64_t bl_jwks_cache_generation(bl_jwks_cache_t *c, size_t i);

#endif
