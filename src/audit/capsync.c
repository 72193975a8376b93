/* capsync.c - the capture syncer's thread and queue; see capsync.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit/capsync.h"
#include "core/log.h"

typedef struct bl_capjob_s bl_capjob_t;
struct bl_capjob_s {
    bl_ledger_batch_t batch;      /* the result entry, once the capture is durable */
    bl_capjob_t *next;            /* the syncer's queue */
    bl_capture_writer_t *w;       /* owned: sealed, not yet synced */
    char id[BL_ENT_ID_LEN + 1];
    char *ok, *failed;            /* owned: the two renderings of the result entry */
    size_t nok, nfailed;
};

struct bl_capsync_s {
    bl_ledger_t *ledger;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bl_capjob_t *head, *tail;     /* guarded by mu */
    size_t n, max;                /* queued (guarded by mu), and the bound */
    int stop;                     /* guarded by mu */
};

static void bl_capjob_free(bl_capjob_t *j)
{
    bl_buf_free(&j->batch.entries);
    free(j->ok);
    free(j->failed);
    free(j);
}

/* Ledger writer thread: the result entry is committed (or the ledger failed). */
static void bl_capjob_done(bl_ledger_batch_t *b)
{
    bl_capjob_t *j = b->owner;
    if (!b->ok)
        bl_error("audit: the result entry of %s was not committed (the ledger failed)", j->id);
    bl_capjob_free(j);
}

/* Makes one capture durable and queues the result entry that fits. */
static void bl_capjob_run(bl_capsync_t *cs, bl_capjob_t *j)
{
    bl_buf_t err;
    bl_buf_init(&err, 256);
    int synced = bl_capture_sync(j->w, &err) == BL_OK;
    j->w = NULL;
    if (!synced)
        bl_warn("audit: the session capture of %s was not written: %s", j->id, bl_buf_cstr(&err));
    bl_buf_free(&err);
    const char *line = synced ? j->ok : j->failed;
    size_t n = synced ? j->nok : j->nfailed;
    if (bl_ledger_batch_add(&j->batch, BL_ENT_RESULT, j->id, line, n) != BL_OK) {
        bl_error("audit: result record for %s not written", j->id);
        bl_capjob_free(j);
        return;
    }
    bl_ledger_submit(cs->ledger, &j->batch);
}

static void *bl_capsync_main(void *arg)
{
    bl_capsync_t *cs = arg;
    pthread_mutex_lock(&cs->mu);
    for (;;) {
        while (cs->head == NULL && !cs->stop)
            pthread_cond_wait(&cs->cv, &cs->mu);
        bl_capjob_t *j = cs->head;
        if (j == NULL)
            break; /* stopping, and nothing is left */
        cs->head = j->next;
        if (cs->head == NULL)
            cs->tail = NULL;
        cs->n--;
        pthread_mutex_unlock(&cs->mu);
        bl_capjob_run(cs, j);
        pthread_mutex_lock(&cs->mu);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

bl_capsync_t *bl_capsync_start(bl_ledger_t *ledger, size_t max)
{
    bl_capsync_t *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return NULL;
    cs->ledger = ledger;
    cs->max = max;
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->cv, NULL);
    if (pthread_create(&cs->thread, NULL, bl_capsync_main, cs) != 0) {
        pthread_cond_destroy(&cs->cv);
        pthread_mutex_destroy(&cs->mu);
        free(cs);
        return NULL;
    }
    pthread_setname_np(cs->thread, "byline-capture");
    return cs;
}

int bl_capsync_push(bl_capsync_t *cs, bl_capture_writer_t *w, const char *id, const char *ok, size_t nok,
                    const char *failed, size_t nfailed)
{
    bl_capjob_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->ok = malloc(nok)) == NULL || (j->failed = malloc(nfailed ? nfailed : 1)) == NULL) {
        if (j)
            free(j->ok);
        free(j);
        return BL_ERROR;
    }
    memcpy(j->ok, ok, nok);
    memcpy(j->failed, failed, nfailed);
    j->nok = nok;
    j->nfailed = nfailed;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->w = w;
    bl_buf_init(&j->batch.entries, BL_MAX(nok, nfailed) + 64);
    j->batch.done = bl_capjob_done;
    j->batch.owner = j;
    pthread_mutex_lock(&cs->mu);
    int full = cs->n >= cs->max;
    if (!full) {
        if (cs->tail)
            cs->tail->next = j;
        else
            cs->head = j;
        cs->tail = j;
        cs->n++;
    }
    pthread_mutex_unlock(&cs->mu);
    if (full) {
        j->w = NULL; /* still the caller's */
        bl_capjob_free(j);
        return BL_ERROR;
    }
    pthread_cond_signal(&cs->cv);
    return BL_OK;
}

void bl_capsync_stop(bl_capsync_t *cs)
{
    if (cs == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    cs->stop = 1;
    pthread_mutex_unlock(&cs->mu);
    pthread_cond_signal(&cs->cv);
    pthread_join(cs->thread, NULL);
    pthread_cond_destroy(&cs->cv);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}
