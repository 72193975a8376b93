/* batch.c - per-worker group write of audit lines. */
#include <string.h>
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

static void bl_batch_deferred(bl_defer_t *d)
{
    bl_audit_batch_flush(d->data);
}

void bl_audit_batch_init(bl_audit_batch_t *b, bl_auditlog_t *log, bl_loop_t *loop)
{
    memset(b, 0, sizeof(*b));
    b->log = log;
    b->loop = loop;
    bl_buf_init(&b->buf, BL_AUDIT_BATCH_MAX);
    b->flush.cb = bl_batch_deferred;
    b->flush.data = b;
}

void bl_audit_batch_forget(bl_audit_batch_t *b, bl_audit_waiter_t *w)
{
    if (w->state == 1)
        bl_wlist_unlink(&b->pending, w);
    else if (w->state == 2)
        bl_wlist_unlink(&b->ready, w);
    w->state = 0;
}

/* Writes the buffered lines; their waiters move to `ready` with the
 * outcome. Tells nobody. */
static void bl_batch_write(bl_audit_batch_t *b)
{
    if (bl_buf_size(&b->buf) == 0 && b->pending.head == NULL)
        return;
    int ok = bl_auditlog_write(b->log, bl_buf_data(&b->buf), bl_buf_size(&b->buf)) == BL_OK;
    bl_buf_reset(&b->buf);
    while (b->pending.head) {
        bl_audit_waiter_t *w = b->pending.head;
        bl_wlist_unlink(&b->pending, w);
        w->state = 2;
        w->ok = ok;
        bl_wlist_push(&b->ready, w);
    }
}

int bl_audit_batch_add(bl_audit_batch_t *b, const char *p, size_t n, bl_audit_waiter_t *w)
{
    if (n > BL_AUDIT_BATCH_MAX)
        return BL_ERROR;
    if (bl_buf_append(&b->buf, p, n) != BL_OK) {
        bl_batch_write(b); /* full: write what is there (in order), then start over */
        if (bl_buf_append(&b->buf, p, n) != BL_OK)
            return BL_ERROR;
    }
    if (w) {
        bl_audit_batch_forget(b, w);
        w->state = 1;
        bl_wlist_push(&b->pending, w);
    }
    bl_loop_defer(b->loop, &b->flush);
    return BL_OK;
}

void bl_audit_batch_flush(bl_audit_batch_t *b)
{
    bl_loop_undefer(b->loop, &b->flush);
    bl_batch_write(b);
    /* Popped one at a time from the live list: a callback may forget
     * another waiter, or add lines (they wait for the next write). */
    while (b->ready.head) {
        bl_audit_waiter_t *w = b->ready.head;
        bl_wlist_unlink(&b->ready, w);
        w->state = 0;
        w->done(w, w->ok);
    }
}

void bl_audit_batch_fini(bl_audit_batch_t *b)
{
    bl_audit_batch_flush(b);
    bl_buf_free(&b->buf);
}
