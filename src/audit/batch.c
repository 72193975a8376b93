/* batch.c - a worker's double-buffered hand-off to the ledger writer. */
#include <string.h>
#include <time.h>
#include "audit/batch.h"

static void bl_wlist_push(bl_audit_wlist_t *l, bl_audit_waiter_t *w)
{
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

static void bl_wlist_unlink(bl_audit_wlist_t *l, bl_audit_waiter_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    w->prev = w->next = NULL;
}

/* Moves every waiter of list `from` to list `to`, noting `ok`. */
static void bl_wlist_move(bl_audit_batch_t *b, int from, int to, int ok)
{
    while (b->waiting[from].head) {
        bl_audit_waiter_t *w = b->waiting[from].head;
        bl_wlist_unlink(&b->waiting[from], w);
        w->list = to;
        w->ok = ok;
        bl_wlist_push(&b->waiting[to], w);
    }
}

/* Writer thread: hand the batch back and wake the worker. */
static void bl_batch_done(bl_ledger_batch_t *lb)
{
    bl_audit_batch_t *b = lb->owner;
    __atomic_store_n(&b->completed, 1, __ATOMIC_RELEASE);
    bl_loop_wake(b->loop);
}

/* Sends the filling batch if none is being committed. Loop thread only. */
static void bl_batch_send(bl_audit_batch_t *b)
{
    if (b->committing || b->filling->count == 0)
        return;
    b->committing = b->filling;
    b->filling = b->committing == &b->slots[0] ? &b->slots[1] : &b->slots[0];
    bl_wlist_move(b, 1, 2, 0);
#ifdef BL_BENCH_NO_AUDIT
    /* Benchmark builds only (bench/run.sh, `byline-noaudit`): measure the
     * gateway without the ledger. Never built by `make` or `make check`. */
    b->committing->ok = 1;
    bl_batch_done(b->committing);
#else
    bl_ledger_submit(b->ledger, b->committing);
#endif
}

static void bl_batch_deferred(bl_defer_t *d)
{
    bl_batch_send(d->data);
}

void bl_audit_batch_init(bl_audit_batch_t *b, bl_ledger_t *ledger, bl_loop_t *loop)
{
    memset(b, 0, sizeof(*b));
    b->ledger = ledger;
    b->loop = loop;
    for (int i = 0; i < 2; i++) {
        bl_buf_init(&b->slots[i].entries, BL_AUDIT_BATCH_MAX);
        b->slots[i].done = bl_batch_done;
        b->slots[i].owner = b;
    }
    b->filling = &b->slots[0];
    b->flush.cb = bl_batch_deferred;
    b->flush.data = b;
}

void bl_audit_batch_forget(bl_audit_batch_t *b, bl_audit_waiter_t *w)
{
    if (w->list > 0)
        bl_wlist_unlink(&b->waiting[w->list], w);
    w->list = 0;
}

int bl_audit_batch_add(bl_audit_batch_t *b, int kind, const char *id, const char *json, size_t n,
                       bl_audit_waiter_t *w)
{
    if (bl_ledger_batch_add(b->filling, kind, id, json, n) != BL_OK)
        return BL_ERROR;
    if (w) {
        bl_audit_batch_forget(b, w);
        w->list = 1;
        bl_wlist_push(&b->waiting[1], w);
    }
    bl_loop_defer(b->loop, &b->flush);
    return BL_OK;
}

void bl_audit_batch_poll(bl_audit_batch_t *b)
{
    if (!__atomic_exchange_n(&b->completed, 0, __ATOMIC_ACQ_REL) || b->committing == NULL)
        return;
    int ok = b->committing->ok;
    bl_buf_reset(&b->committing->entries);
    b->committing->count = 0;
    b->committing = NULL;
    bl_wlist_move(b, 2, 3, ok);
    bl_batch_send(b); /* what filled meanwhile goes at once */
    /* Popped one at a time from the live list: a callback may forget
     * another waiter, or add entries (they travel with the next batch). */
    while (b->waiting[3].head) {
        bl_audit_waiter_t *w = b->waiting[3].head;
        bl_wlist_unlink(&b->waiting[3], w);
        w->list = 0;
        w->done(w, w->ok);
    }
}

void bl_audit_batch_fini(bl_audit_batch_t *b)
{
    const struct timespec tick = { 0, 1000000 };
    bl_loop_undefer(b->loop, &b->flush);
    while (b->committing || b->filling->count) {
        bl_batch_send(b);
        while (!__atomic_load_n(&b->completed, __ATOMIC_ACQUIRE))
            nanosleep(&tick, NULL);
        bl_audit_batch_poll(b); /* takes it back and sends any next one */
    }
    for (int i = 0; i < 2; i++)
        bl_buf_free(&b->slots[i].entries);
}
