/* batch.c - per-worker group write of audit lines. */
#include <string.h>
#include "audit/batch.h"

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
    b->head = b->tail = NULL;
    b->flush.cb = bl_batch_deferred;
    b->flush.data = b;
}

void bl_audit_batch_forget(bl_audit_batch_t *b, bl_audit_waiter_t *w)
{
    if (!w->queued)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        b->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = 0;
}

int bl_audit_batch_add(bl_audit_batch_t *b, const char *p, size_t n, bl_audit_waiter_t *w)
{
    if (n > BL_AUDIT_BATCH_MAX)
        return BL_ERROR;
    if (bl_buf_append(&b->buf, p, n) != BL_OK) {
        bl_audit_batch_flush(b); /* full: write what is there, then start over */
        if (bl_buf_append(&b->buf, p, n) != BL_OK)
            return BL_ERROR;
    }
    if (w) {
        w->next = NULL;
        w->prev = b->tail;
        if (b->tail)
            b->tail->next = w;
        else
            b->head = w;
        b->tail = w;
        w->queued = 1;
        w->gen = b->gen;
    }
    bl_loop_defer(b->loop, &b->flush);
    return BL_OK;
}

void bl_audit_batch_flush(bl_audit_batch_t *b)
{
    bl_loop_undefer(b->loop, &b->flush);
    if (bl_buf_size(&b->buf) == 0 && b->head == NULL)
        return;
    int ok = bl_auditlog_write(b->log, bl_buf_data(&b->buf), bl_buf_size(&b->buf)) == BL_OK;
    bl_buf_reset(&b->buf);
    /* Waiters are popped from the live list, so a callback may forget
     * another waiter or add new lines; those belong to the next write. */
    unsigned gen = b->gen++;
    while (b->head && b->head->gen == gen) {
        bl_audit_waiter_t *w = b->head;
        bl_audit_batch_forget(b, w);
        w->done(w, ok);
    }
}

void bl_audit_batch_fini(bl_audit_batch_t *b)
{
    bl_audit_batch_flush(b);
    bl_buf_free(&b->buf);
}
