/*
 * batch.h - one worker's side of the audit ledger: entries gathered during
 * a loop turn go to the ledger's writer thread as one batch; while a batch
 * is being committed, the next one fills. When the writer reports the
 * batch on stable storage, the requests waiting for their intent are told
 * (on the worker's own thread) and may go upstream.
 *
 * Waiters are only ever told from bl_audit_batch_poll(), called by the
 * worker's loop when the writer wakes it; never from inside add().
 */
#ifndef BL_AUDIT_BATCH_H
#define BL_AUDIT_BATCH_H

#include "audit/ledger.h"
#include "core/buf.h"
#include "core/loop.h"

typedef struct bl_audit_waiter_s bl_audit_waiter_t;

/* Embedded in whoever waits for its entry to be committed. */
struct bl_audit_waiter_s {
    bl_audit_waiter_t *prev, *next;
    /* Called once: ok = 1 when the entry is on stable storage, 0 if not. */
    void (*done)(bl_audit_waiter_t *w, int ok);
    int list;    /* private: 0 none, 1 filling, 2 committing, 3 told soon */
    int ok;      /* private */
};

typedef struct {
    bl_audit_waiter_t *head, *tail;
} bl_audit_wlist_t;

typedef struct {
    bl_ledger_t *ledger;            /* borrowed */
    bl_loop_t *loop;
    bl_ledger_batch_t slots[2];
    bl_ledger_batch_t *filling;     /* gathering entries */
    bl_ledger_batch_t *committing;  /* with the writer, or NULL */
    bl_audit_wlist_t waiting[4];    /* indexed by waiter list: [1] filling, [2] committing, [3] ready */
    int completed;                  /* set by the writer thread (atomic) */
    bl_defer_t flush;
} bl_audit_batch_t;

#define BL_AUDIT_BATCH_MAX (16u << 20)

/* Sets up the batch for one worker. */
void bl_audit_batch_init(bl_audit_batch_t *b, bl_ledger_t *ledger, bl_loop_t *loop);

/*
 * Adds one entry (kind BL_ENT_*, the request id or NULL, canonical JSON).
 * `w` (may be NULL) is told, on a later loop turn, whether it was
 * committed. Returns BL_OK, or BL_ERROR if it does not fit (nothing queued).
 */
int bl_audit_batch_add(bl_audit_batch_t *b, int kind, const char *id, const char *json, size_t n,
                       bl_audit_waiter_t *w);

/* Stops waiting: `w` will not be called (its entry is still committed). */
void bl_audit_batch_forget(bl_audit_batch_t *b, bl_audit_waiter_t *w);

/* Worker loop, on wake: takes a committed batch back, tells its waiters,
 * sends the next one. */
void bl_audit_batch_poll(bl_audit_batch_t *b);

/* At shutdown: sends what is left and waits until all of it is committed. */
void bl_audit_batch_fini(bl_audit_batch_t *b);

#endif
