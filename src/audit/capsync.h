/*
 * capsync.h - the capture syncer: one thread ("byline-capture") that makes
 * session captures durable and only then hands the result entry that names
 * each one to the ledger. A worker writes and seals a capture (page cache
 * only) and queues it here, so its other connections never wait for the
 * capture's two fsyncs. The ledger still never names a capture that is
 * not on stable storage.
 */
#ifndef BL_AUDIT_CAPSYNC_H
#define BL_AUDIT_CAPSYNC_H

#include "audit/capture.h"
#include "audit/ledger.h"

typedef struct bl_capsync_s bl_capsync_t;

#define BL_CAPSYNC_MAX 256 /* captures queued at most (each holds two open fds) */

/* Starts the thread; at most `max` captures wait in its queue. Returns the
 * syncer (the caller owns it: stop it before closing `ledger`), or NULL if
 * a thread or memory could not be had. */
bl_capsync_t *bl_capsync_start(bl_ledger_t *ledger, size_t max);

/* Queues a sealed capture (bl_capture_prepare) with the two renderings of
 * its request's result entry: `ok` names the capture, `failed` says it
 * could not be made durable. Takes `w`; copies the lines. Returns BL_OK;
 * BL_ERROR (the queue is full: the disk is that slow; or out of memory)
 * queues nothing and leaves `w` with the caller. */
int bl_capsync_push(bl_capsync_t *cs, bl_capture_writer_t *w, const char *id, const char *ok, size_t nok,
                    const char *failed, size_t nfailed);

/* Syncs what is queued, hands its entries to the ledger, stops the thread
 * and frees `cs`. NULL is fine. */
void bl_capsync_stop(bl_capsync_t *cs);

#endif
