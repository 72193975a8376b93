/*
 * reload.h - reloading the configuration of a running gateway without a
 * restart (docs/OPERATIONS.md "Reloading").
 *
 * Triggers: SIGHUP, or a change (inode, size or mtime) to byline.yaml,
 * the identities file, a policy file a rule came from or
 * DIR/agent-keys.yaml, seen by a stat
 * at most once a second from the main thread's signal loop.
 *
 * The snapshot. A reload loads the whole configuration again on the main
 * thread (never a worker's). The loaded config becomes the identity
 * registry's new table (auth/idtable.h): that table is the "reloadable
 * snapshot". A request takes a reference to the current table when it
 * authenticates and keeps it for its whole life, so it is authorised,
 * named and audited by one configuration even when a reload happens
 * mid-request; the old table (and its config) is freed when its last
 * request or connection lets go. Open connections, watches and exec
 * sessions are never touched.
 *
 * What a snapshot changes: identities (tokens, certificate mappings,
 * expiry, revocation) and the policy rules; the agent key registry is
 * swapped alongside (proxy/agent_hub.h), both or neither. Everything else is read from
 * the configuration the gateway started with; a reload that changes such
 * a setting applies the rest and reports "needs a restart: ..." in the
 * log and the ledger notice. A reload that adds, removes, renames or
 * reorders connections is refused as a whole: rules name connections by
 * their position.
 *
 * A config that does not load is refused with every error logged
 * (file:line:col, as `byline config check` prints them) and the snapshot
 * in force stays. Each outcome is counted in metrics; each applied
 * reload appends a ledger notice (event "reload") with the SHA-256 of
 * byline.yaml and of every watched file, and what changed.
 *
 * Threads: everything here runs on the main thread.
 */
#ifndef BL_PROXY_RELOAD_H
#define BL_PROXY_RELOAD_H

#include <stdint.h>
#include "audit/ledger.h"
#include "auth/idtable.h"
#include "config/config.h"

typedef struct bl_reload_s bl_reload_t;
struct bl_hub_s; /* proxy/agent_hub.h */

#define BL_RELOAD_CHECK_MS  1000   /* stat the watched files at most this often */
#define BL_RELOAD_MAX_FILES 256    /* watched files (byline.yaml, identities, policy files) */

/*
 * Creates the reloader for the gateway started with `boot` (borrowed; it
 * must outlive the reloader) and records the files' signatures and
 * digests (DIR/agent-keys.yaml too when a connection is `via: agent`).
 * Call it before the gateway reads anything else, so a change made while
 * it starts is seen. Returns it, or NULL when out of memory (logged).
 */
bl_reload_t *bl_reload_new(const bl_config_t *boot);

/* Tells the reloader where snapshots go (`reg`), where notices go
 * (`ledger`) and which hub holds the agent keys (NULL: none); all
 * borrowed. Before the first bl_reload_tick. */
void bl_reload_attach(bl_reload_t *rl, bl_idreg_t *reg, bl_ledger_t *ledger, struct bl_hub_s *hub);

/* Frees the reloader (not the snapshots: the registry owns them). NULL is fine. */
void bl_reload_free(bl_reload_t *rl);

/*
 * Main thread, every ~100 ms: checks the watched files (at most once per
 * BL_RELOAD_CHECK_MS of now_ms, a monotonic clock) and reloads when one
 * changed, or at once when `force` (SIGHUP). Also writes the identities'
 * last-used state when due. Returns 1 if a new snapshot was installed, 0
 * if nothing was due, BL_ERROR if the reload was refused (logged, counted).
 */
int bl_reload_tick(bl_reload_t *rl, int64_t now_ms, int force);

/*
 * Appends to `out` a comma-separated list of what differs between the
 * running gateway's `boot` config and `cfg` that only a restart applies
 * (e.g. "listen, connection prod: url"); nothing when all is reloadable.
 * Returns BL_OK, BL_DECLINED when connections were added, removed,
 * renamed or reordered (the reload must be refused; the reason is in
 * out), or BL_ERROR (bound).
 */
int bl_reload_restart_needs(const bl_config_t *boot, const bl_config_t *cfg, bl_buf_t *out);

#endif
