/*
 * batch.h - audit lines gathered per worker and written together.
 *
 * Requests admitted in one turn of a worker's loop add their intent lines
 * (and finished requests their result lines) to the worker's batch; the
 * batch is written with one write(2) at the start of the next turn, and
 * only then are the waiting requests told to go upstream. One syscall per
 * batch instead of two per request, and still no request leaves before
 * its record is in the log. (Group commit with fdatasync builds on this.)
 *
 * Waiters are only ever told from the deferred flush at the top of a loop
 * turn, never from inside bl_audit_batch_add(): a caller adding a line is
 * not re-entered, even when a full batch has to be written early.
 */
#ifndef BL_AUDIT_BATCH_H
#define BL_AUDIT_BATCH_H

#include "audit/writer.h"
#include "core/buf.h"
#include "core/loop.h"

typedef struct bl_audit_waiter_s bl_audit_waiter_t;

/* Embedded in whoever waits for its line to be written. */
struct bl_audit_waiter_s {
    bl_audit_waiter_t *prev, *next;
    /* Called once: ok = 1 when the line is in the log, 0 if writing failed. */
    void (*done)(bl_audit_waiter_t *w, int ok);
    int state;   /* private: 0 idle, 1 line not yet written, 2 written, not yet told */
    int ok;      /* private: outcome of the write, for state 2 */
};

typedef struct {
    bl_audit_waiter_t *head, *tail;
} bl_audit_wlist_t;

typedef struct {
    bl_auditlog_t *log;            /* borrowed, shared by all workers */
    bl_loop_t *loop;
    bl_buf_t buf;                  /* lines not yet written */
    bl_audit_wlist_t pending;      /* their waiters */
    bl_audit_wlist_t ready;        /* written; to be told on the next flush */
    bl_defer_t flush;
} bl_audit_batch_t;

#define BL_AUDIT_BATCH_MAX (4u << 20) /* write early rather than grow past this */

/* Sets up an empty batch writing to `log` from `loop`'s thread. */
void bl_audit_batch_init(bl_audit_batch_t *b, bl_auditlog_t *log, bl_loop_t *loop);

/*
 * Adds one or more whole lines. `w` (may be NULL) is told, on a later loop
 * turn, whether they were written. Never calls any waiter. Returns BL_OK,
 * or BL_ERROR if the line alone exceeds the batch bound (nothing queued,
 * `w` not queued).
 */
int bl_audit_batch_add(bl_audit_batch_t *b, const char *p, size_t n, bl_audit_waiter_t *w);

/* Stops waiting: `w` will not be called (its line is still written). */
void bl_audit_batch_forget(bl_audit_batch_t *b, bl_audit_waiter_t *w);

/* Writes everything now and tells the waiters. Called from the loop (the
 * deferred flush) and at shutdown; not from inside a waiter. */
void bl_audit_batch_flush(bl_audit_batch_t *b);

/* Flushes, then frees the buffer. */
void bl_audit_batch_fini(bl_audit_batch_t *b);

#endif
