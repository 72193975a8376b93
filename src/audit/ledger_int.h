/*
 * ledger_int.h - the ledger writer's private state, shared by ledger.c
 * (the writer thread and commits) and recover.c (start-up).
 */
#ifndef BL_AUDIT_LEDGER_INT_H
#define BL_AUDIT_LEDGER_INT_H

#include <pthread.h>
#include "audit/idset.h"
#include "audit/ledger.h"
#include "audit/merkle.h"
#include "audit/note.h"

#define BL_LEDGER_CK_INTERVAL_MS 1000   /* at most one checkpoint a second under load */
#define BL_LEDGER_SPACE_CHECK_MS 1000

struct bl_ledger_s {
    /* configuration (owned copies) */
    char *dir, *origin, *version;
    int sync;
    unsigned commit_delay_ms;
    uint64_t segment_bytes;
    uint64_t space_warn, space_refuse;
    unsigned space_warn_pct, space_refuse_pct;

    /* the queue, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bl_ledger_batch_t *qhead, *qtail;
    int stop;
    pthread_t thread;
    int running;

    /* shared flags (atomics) */
    int failed_flag;
    int refusing;
    char failed[256];

    /* the writer thread's own state */
    int fd, dirfd;
    unsigned segment;
    uint64_t seg_size;
    uint64_t seq;                 /* next sequence number */
    bl_hash_t prev;               /* leaf hash of the last leaf (zeros before the first) */
    bl_merkle_range_t tree;
    bl_signer_t *signer;
    uint64_t ck_size;             /* tree size at the last checkpoint */
    uint64_t ck_ms;               /* when it was signed (monotonic ms) */
    char note[1024];              /* the latest signed checkpoint, to publish once written */
    size_t note_len;
    bl_idset_t open;              /* intents without a result */
    bl_buf_t out;                 /* lines of the commit being built */
    bl_buf_t ent;                 /* scratch for entries the ledger writes itself */
    uint64_t space_ms;            /* last free-space check */
    int space_warned;
    uint64_t free_bytes;
    unsigned free_pct;
};

/* ledger.c */
uint64_t bl_ledger_now_ms(void);
/* Appends one entry as a leaf line to l->out: seq, prev, tree, open set. */
int bl_ledger_leaf(bl_ledger_t *l, int kind, const char *id, const char *json, size_t n);
/* Appends a signed checkpoint line for the current tree to l->out and
 * publishes it to DIR/checkpoint after the write (see bl_ledger_commit). */
int bl_ledger_checkpoint(bl_ledger_t *l);
/* Writes l->out (one writev), fdatasyncs when sync is on. BL_OK or BL_ERROR
 * (latched, reason in l->failed). */
int bl_ledger_write(bl_ledger_t *l);
/* Builds a ledger-made entry (aborted, notice) into l->ent. */
int bl_ledger_notice(bl_ledger_t *l, const char *event, const char *detail);
int bl_ledger_aborted(bl_ledger_t *l, const char *id, const char *reason);
/* Opens segment `n` for appending (creating it, with file and directory
 * fsync, when `create`). */
int bl_ledger_segment_open(bl_ledger_t *l, unsigned n, int create, bl_buf_t *err);
void bl_ledger_latch(bl_ledger_t *l, const char *fmt, ...) BL_PRINTF(2, 3);

/* recover.c */
/* Reads the existing ledger into l's writer state; cuts a torn tail.
 * Returns BL_OK, or BL_ERROR with the reason (an inconsistent ledger). */
int bl_ledger_recover(bl_ledger_t *l, bl_buf_t *err);

#endif
