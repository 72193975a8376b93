/*
 * ledger.h - the tamper-evident audit ledger's writer (docs/AUDIT-FORMAT.md).
 *
 * One writer thread owns the segment files. Workers hand it batches of
 * entries; it numbers them (seq), chains them (prev), adds them to the
 * Merkle tree, writes each commit with one writev(2) and one fdatasync(2),
 * signs a checkpoint (after each commit, at most once a second under
 * load), and then reports the batch back. A worker forwards a request
 * only after the batch holding its intent came back committed.
 *
 * Failures latch: after any write or fsync error the ledger refuses every
 * later batch (the fsync is never retried: its error may have dropped
 * dirty pages). Free space below audit.space_refuse refuses intents
 * until space returns; below audit.space_warn it warns.
 */
#ifndef BL_AUDIT_LEDGER_H
#define BL_AUDIT_LEDGER_H

#include <stdint.h>
#include "core/buf.h"

typedef struct bl_ledger_s bl_ledger_t;

typedef struct {
    const char *dir;              /* audit directory (created 0700) */
    const char *signing_key;      /* Ed25519 private key, PEM */
    const char *origin;           /* checkpoint origin and key name */
    int sync;                     /* fdatasync each commit (0: relaxed, recorded) */
    unsigned commit_delay_ms;     /* extra wait to grow a commit */
    uint64_t segment_bytes;       /* rotate segments past this size */
    uint64_t space_warn;          /* bytes, or 0 to use space_warn_pct */
    unsigned space_warn_pct;
    uint64_t space_refuse;        /* bytes, or 0 to use space_refuse_pct */
    unsigned space_refuse_pct;
    const char *version;          /* recorded in the start notice */
} bl_ledger_cfg_t;

/* Entry kinds as they travel in a batch (the JSON says the same). */
enum { BL_ENT_INTENT = 'I', BL_ENT_RESULT = 'R', BL_ENT_OTHER = 'O' };

#define BL_ENT_ID_LEN 36

/*
 * A batch from one worker. `entries` holds records back to back, each:
 * 1 byte kind, 36 bytes id (the request's UUID; spaces for other kinds),
 * 4 bytes length (little endian), then that many bytes of one canonical
 * JSON object (no newline). Use bl_ledger_batch_add() to append.
 */
typedef struct bl_ledger_batch_s bl_ledger_batch_t;
struct bl_ledger_batch_s {
    bl_buf_t entries;
    size_t count;                 /* entries in it */
    int ok;                       /* set by the writer: 1 = on stable storage */
    /* Called by the writer thread after the commit (or failure): it must
     * only hand the batch back to its owner (e.g. queue and bl_loop_wake). */
    void (*done)(bl_ledger_batch_t *b);
    void *owner;
    bl_ledger_batch_t *next;      /* private: the writer's queue */
};

/* Appends one entry to a batch. Returns BL_OK or BL_ERROR (bound). */
int bl_ledger_batch_add(bl_ledger_batch_t *b, int kind, const char *id, const char *json, size_t n);

/*
 * Opens the ledger: reads the existing segments (refusing to start on an
 * inconsistent ledger, with the place), cuts a torn last line left by a
 * crash, closes every intent of the previous run without a result with an
 * `aborted` entry, records a `start` notice (and `relaxed` when sync is
 * off), commits and signs that, and starts the writer thread.
 * Returns the ledger, or NULL with the reason in `err`.
 */
bl_ledger_t *bl_ledger_open(const bl_ledger_cfg_t *cfg, bl_buf_t *err);

/* Queues a batch; its done() is called from the writer thread. */
void bl_ledger_submit(bl_ledger_t *l, bl_ledger_batch_t *b);

/* Returns NULL while healthy, else why the ledger latched failed (static
 * storage of the ledger; valid until close). Thread-safe. */
const char *bl_ledger_failed(bl_ledger_t *l);

/* Returns 1 while free space is below the refuse threshold. Thread-safe. */
int bl_ledger_refusing(bl_ledger_t *l);

/* Commits what is queued, records a `stop` notice, signs, stops the
 * thread and frees. NULL is fine. */
void bl_ledger_close(bl_ledger_t *l);

#endif
