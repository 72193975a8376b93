/*
 * idtable.h - the gateway's live identity registry: an immutable table of
 * identities (a loaded config's ids and lookup index) that can be replaced
 * while worker threads use it, plus what the gateway learns per identity
 * at run time (last successful authentication, shared-credential signs).
 *
 * Swapping. The registry holds the current table. Readers take a
 * reference (atomic count) and keep using "their" table for as long as
 * they hold it: a request for its life (its audit record points at the
 * identity's name), a connection for its client-certificate mapping. A
 * reload builds a whole new table, then swaps the pointer under a mutex
 * and bumps a generation number; the old table is freed when its last
 * reference goes. Workers cache the current table (bl_idcache_t) and
 * consult the mutex only when the generation moved, so the request path
 * costs one atomic load plus one reference.
 *
 * Reloading. The general configuration reload (proxy/reload.c: SIGHUP or
 * a changed file) loads the whole configuration and hands it to
 * bl_idreg_install(); the table then is that configuration's snapshot.
 * bl_idreg_tick() is the identities-only fallback: it stats the
 * identities file and byline.yaml at most once a second and, when either
 * changed (inode, size or mtime), loads the configuration again; a file
 * that does not load is reported with its errors and the table in force
 * stays.
 *
 * Last used. Each authentication stores the second in a per-identity
 * atomic (per name, so it survives reloads); bl_idreg_tick() writes
 * DIR/state/last-used.json (0600, atomically) at most once a minute when
 * something changed, and bl_idreg_free() at shutdown.
 */
#ifndef BL_AUTH_IDTABLE_H
#define BL_AUTH_IDTABLE_H

#include <stdint.h>
#include <jansson.h>
#include "config/config.h"
#include "core/buf.h"

typedef struct bl_idtable_s bl_idtable_t;
typedef struct bl_idreg_s bl_idreg_t;

#define BL_IDREG_CHECK_MS 1000      /* stat the files at most this often */
#define BL_IDREG_FLUSH_MS 60000     /* write last-used at most this often */
#define BL_LASTUSED_FILE  "state/last-used.json" /* under the config directory */
#define BL_LASTUSED_MAX   (32u << 20)

/* A worker's cached reference to the current table (zero-initialise). */
typedef struct {
    bl_idtable_t *t;
    uint64_t gen;
} bl_idcache_t;

/*
 * Creates the registry around `cfg` (borrowed: it must outlive the
 * registry; later tables own their configs), reads the last-used state
 * file and records the files' signatures. Returns it or NULL (out of
 * memory, logged).
 */
bl_idreg_t *bl_idreg_new(const bl_config_t *cfg);

/* Writes the last-used state and frees the registry. Every table
 * reference must have been released. NULL is fine. */
void bl_idreg_free(bl_idreg_t *reg);

/*
 * Main thread: checks the files (at most once per BL_IDREG_CHECK_MS of
 * now_ms, a monotonic clock; always when force) and reloads on a change;
 * writes the last-used state when due. Returns 1 if a new table was
 * installed, 0 if nothing changed, BL_ERROR if a changed file did not
 * load (logged; the old table stays).
 */
int bl_idreg_tick(bl_idreg_t *reg, int64_t now_ms, int force);

/* Makes the identities of `cfg` (now owned by the registry, freed with
 * its table) the current table. Returns BL_OK, or BL_ERROR (out of
 * memory; cfg freed). */
int bl_idreg_install(bl_idreg_t *reg, bl_config_t *cfg);

/* Writes DIR/state/last-used.json now if anything changed since the last
 * write. Returns BL_OK or BL_ERROR (logged). */
int bl_idreg_flush(bl_idreg_t *reg);

/* Returns the current table, borrowed from the cache `c` (valid until the
 * next call with the same cache, or bl_idcache_release()). Thread-safe for
 * one cache per thread. */
bl_idtable_t *bl_idcache_get(bl_idreg_t *reg, bl_idcache_t *c);
void bl_idcache_release(bl_idcache_t *c);

/* Takes / drops a reference. Both thread-safe; NULL is fine. */
bl_idtable_t *bl_idtable_ref(bl_idtable_t *t);
void bl_idtable_unref(bl_idtable_t *t);

/* The config the table was built from: its ids and index (for
 * auth/identity.h's lookups), and, for a table the general reload
 * installed, the whole configuration snapshot. Lives as long as the table. */
const bl_config_t *bl_idtable_cfg(const bl_idtable_t *t);

/*
 * Records that identity `id` (from this table) authenticated at now_ms
 * (CLOCK_REALTIME milliseconds) from `ip` with kubectl session `session`
 * ("" if none). Updates last used; when the identity now appears to be
 * shared (auth/shared.h), logs a warning, counts it in
 * byline_shared_credential_warnings_total, appends the ledger's notice
 * entry (canonical JSON, docs/AUDIT-FORMAT.md) to `notice` and returns 1;
 * else 0. Thread-safe.
 */
int bl_idtable_used(bl_idtable_t *t, const bl_identity_t *id, const char *ip,
                    const char *session, int64_t now_ms, bl_buf_t *notice);

/*
 * Reads a last-used state file into a new JSON object mapping identity
 * names to times (strings, RFC 3339 UTC); a missing file is an empty
 * object. Returns it (caller json_decref()s) or NULL with the reason in
 * err (unreadable, malformed).
 */
json_t *bl_lastused_read(const char *path, bl_buf_t *err);

/* Appends the state file's JSON for the (name, time) pairs to out:
 * {"last_used":{NAME:TIME,...},"version":1} with names in the order given.
 * Returns BL_OK or BL_ERROR (bound). */
int bl_lastused_json(const char *const *names, const int64_t *times, size_t n, bl_buf_t *out);

#endif
