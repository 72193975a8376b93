/*
 * ledger.c - the ledger writer thread: numbering, chaining, the Merkle
 * tree, group commit (one writev + one fdatasync), signed checkpoints,
 * segment rotation, free-space thresholds and the failure latch.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "audit/ledger_int.h"
#include "audit/reader.h"
#include "audit/record.h"
#include "core/log.h"
#include "core/metrics.h"

#define BL_LEDGER_OUT_MAX (64u << 20)  /* one commit's lines: the queue is bounded by the workers' batches */

uint64_t bl_ledger_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int bl_ledger_batch_add(bl_ledger_batch_t *b, int kind, const char *id, const char *json, size_t n)
{
    char head[1 + BL_ENT_ID_LEN + 4];
    if (n > UINT32_MAX)
        return BL_ERROR;
    head[0] = (char)kind;
    memset(head + 1, ' ', BL_ENT_ID_LEN);
    if (id)
        memcpy(head + 1, id, BL_MIN(strlen(id), (size_t)BL_ENT_ID_LEN));
    for (int i = 0; i < 4; i++)
        head[1 + BL_ENT_ID_LEN + i] = (char)((n >> (8 * i)) & 0xff);
    size_t mark = b->entries.len;
    if (bl_buf_append(&b->entries, head, sizeof(head)) != BL_OK || bl_buf_append(&b->entries, json, n) != BL_OK) {
        b->entries.len = mark;
        return BL_ERROR;
    }
    b->count++;
    return BL_OK;
}

void bl_ledger_latch(bl_ledger_t *l, const char *fmt, ...)
{
    if (__atomic_load_n(&l->failed_flag, __ATOMIC_ACQUIRE))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->failed, sizeof(l->failed), fmt, ap);
    va_end(ap);
    __atomic_store_n(&l->failed_flag, 1, __ATOMIC_RELEASE);
    bl_metric_set(BL_M_AUDIT_FAILED, 1);
    bl_error("audit ledger failed: %s; every request is refused until byline is restarted", l->failed);
}

/* --- building lines --- */

static void bl_ledger_b64(const bl_hash_t *h, char out[45])
{
    EVP_EncodeBlock((unsigned char *)out, h->h, 32);
}

int bl_ledger_leaf(bl_ledger_t *l, int kind, const char *id, const char *json, size_t n)
{
    char prev[45];
    size_t start = bl_buf_size(&l->out);
    bl_ledger_b64(&l->prev, prev);
    int rc = bl_buf_puts(&l->out, "{\"entry\":");
    rc |= bl_buf_append(&l->out, json, n);
    rc |= bl_buf_puts(&l->out, ",\"prev\":\"");
    rc |= bl_buf_puts(&l->out, prev);
    rc |= bl_buf_puts(&l->out, "\",\"seq\":");
    rc |= bl_buf_putu64(&l->out, l->seq);
    rc |= bl_buf_puts(&l->out, "}");
    if (rc != BL_OK)
        return BL_ERROR;
    bl_hash_t leaf;
    bl_merkle_leaf(bl_buf_data(&l->out) + start, bl_buf_size(&l->out) - start, &leaf);
    if (bl_buf_puts(&l->out, "\n") != BL_OK)
        return BL_ERROR;
    bl_merkle_append(&l->tree, &leaf);
    l->prev = leaf;
    l->seq++;
    if (kind == BL_ENT_INTENT && id)
        bl_idset_add(&l->open, id);
    else if (kind == BL_ENT_RESULT && id)
        bl_idset_del(&l->open, id);
    return BL_OK;
}

/* Entries the ledger writes itself carry the wall-clock time. */
static int bl_ledger_ts(bl_buf_t *b)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return bl_rec_ts(b, &now);
}

int bl_ledger_notice(bl_ledger_t *l, const char *event, const char *detail)
{
    bl_buf_t *e = &l->ent;
    bl_buf_reset(e);
    int rc = bl_buf_puts(e, "{\"detail\":");
    rc |= bl_buf_json_str(e, detail, strlen(detail));
    rc |= bl_buf_puts(e, ",\"event\":");
    rc |= bl_buf_json_str(e, event, strlen(event));
    rc |= bl_buf_puts(e, ",\"kind\":\"notice\",\"ts\":");
    rc |= bl_ledger_ts(e);
    rc |= bl_buf_puts(e, ",\"version\":");
    rc |= bl_buf_json_str(e, l->version, strlen(l->version));
    rc |= bl_buf_puts(e, "}");
    if (rc != BL_OK)
        return BL_ERROR;
    return bl_ledger_leaf(l, BL_ENT_OTHER, NULL, bl_buf_data(e), bl_buf_size(e));
}

int bl_ledger_aborted(bl_ledger_t *l, const char *id, const char *reason)
{
    bl_buf_t *e = &l->ent;
    bl_buf_reset(e);
    int rc = bl_buf_puts(e, "{\"id\":");
    rc |= bl_buf_json_str(e, id, BL_ENT_ID_LEN);
    rc |= bl_buf_puts(e, ",\"kind\":\"aborted\",\"reason\":");
    rc |= bl_buf_json_str(e, reason, strlen(reason));
    rc |= bl_buf_puts(e, ",\"ts\":");
    rc |= bl_ledger_ts(e);
    rc |= bl_buf_puts(e, "}");
    if (rc != BL_OK)
        return BL_ERROR;
    return bl_ledger_leaf(l, BL_ENT_RESULT, id, bl_buf_data(e), bl_buf_size(e));
}

int bl_ledger_checkpoint(bl_ledger_t *l)
{
    bl_hash_t root;
    char buf[1024];
    bl_buf_t note = { .base = buf, .cap = sizeof(buf), .max = sizeof(buf) };
    bl_merkle_root(&l->tree, &root);
    if (bl_note_sign(l->signer, l->tree.size, &root, &note) != BL_OK)
        return BL_ERROR;
    int rc = bl_buf_puts(&l->out, "{\"checkpoint\":");
    rc |= bl_buf_json_str(&l->out, bl_buf_data(&note), bl_buf_size(&note));
    rc |= bl_buf_puts(&l->out, "}\n");
    if (rc != BL_OK)
        return BL_ERROR;
    memcpy(l->note, bl_buf_data(&note), bl_buf_size(&note)); /* published once written */
    l->note_len = bl_buf_size(&note);
    l->ck_size = l->tree.size;
    l->ck_ms = bl_ledger_now_ms();
    bl_metric_add(BL_M_AUDIT_CHECKPOINTS, 1);
    return BL_OK;
}

/* --- files --- */

/* Replaces DIR/name with `data` (write to a temporary, rename). */
static void bl_ledger_publish(bl_ledger_t *l, const char *name, const char *data, size_t n)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", l->dir, name);
    snprintf(path, sizeof(path), "%s/%s", l->dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, data, n);
    if (l->sync)
        fdatasync(fd);
    close(fd);
    if (w == (ssize_t)n)
        rename(tmp, path);
    else
        unlink(tmp);
}

int bl_ledger_segment_open(bl_ledger_t *l, unsigned n, int create, bl_buf_t *err)
{
    char path[4096];
    bl_segment_path(l->dir, n, path, sizeof(path));
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = open(path, flags, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        bl_buf_printf(err, "cannot open audit segment %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return BL_ERROR;
    }
    /* A new file is only durable once its directory entry is. */
    if (create && (fsync(fd) != 0 || fsync(l->dirfd) != 0)) {
        bl_buf_printf(err, "cannot fsync new audit segment %s: %s", path, strerror(errno));
        close(fd);
        return BL_ERROR;
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = fd;
    l->segment = n;
    l->seg_size = (uint64_t)st.st_size;
    return BL_OK;
}

int bl_ledger_write(bl_ledger_t *l)
{
    size_t n = bl_buf_size(&l->out), done = 0;
    uint64_t t0 = bl_ledger_now_ms();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    while (done < n) {
        struct iovec iov = { bl_buf_data(&l->out) + done, n - done };
        ssize_t w = writev(l->fd, &iov, 1);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bl_ledger_latch(l, "writing segment %u: %s", l->segment, w < 0 ? strerror(errno) : "no progress");
            return BL_ERROR;
        }
        done += (size_t)w;
    }
    if (l->sync && fdatasync(l->fd) != 0) {
        /* Never retried: after a failed fsync the kernel may have dropped
         * the dirty pages, so a later success would prove nothing. */
        bl_ledger_latch(l, "fdatasync of segment %u: %s", l->segment, strerror(errno));
        return BL_ERROR;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)t0;
    bl_metric_commit_latency((uint64_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000));
    bl_metric_add(BL_M_AUDIT_COMMITS, 1);
    bl_metric_add(BL_M_AUDIT_BYTES, (int64_t)n);
    l->seg_size += n;
    bl_buf_reset(&l->out);
    return BL_OK;
}

/* --- free space and status --- */

static void bl_ledger_status(bl_ledger_t *l)
{
    char buf[1024];
    const char *state = __atomic_load_n(&l->failed_flag, __ATOMIC_ACQUIRE) ? "failed"
                        : __atomic_load_n(&l->refusing, __ATOMIC_ACQUIRE) ? "refusing"
                                                                          : "ok";
    bl_buf_t b = { .base = buf, .cap = sizeof(buf), .max = sizeof(buf) };
    int rc = bl_buf_puts(&b, "{\"checkpoint_size\":");
    rc |= bl_buf_putu64(&b, l->ck_size);
    rc |= bl_buf_puts(&b, ",\"free_bytes\":");
    rc |= bl_buf_putu64(&b, l->free_bytes);
    rc |= bl_buf_puts(&b, ",\"free_pct\":");
    rc |= bl_buf_putu64(&b, l->free_pct);
    rc |= bl_buf_puts(&b, ",\"open_intents\":");
    rc |= bl_buf_putu64(&b, l->open.count);
    rc |= bl_buf_printf(&b, ",\"pid\":%d,\"reason\":", (int)getpid());
    rc |= bl_buf_json_str(&b, l->failed, strlen(l->failed));
    rc |= bl_buf_puts(&b, ",\"segment\":");
    rc |= bl_buf_putu64(&b, l->segment);
    rc |= bl_buf_puts(&b, ",\"seq\":");
    rc |= bl_buf_putu64(&b, l->seq);
    rc |= bl_buf_printf(&b, ",\"state\":\"%s\",\"sync\":%s,\"updated\":", state, l->sync ? "true" : "false");
    rc |= bl_ledger_ts(&b);
    rc |= bl_buf_puts(&b, "}");
    if (rc != BL_OK)
        return;
    /* Overwritten in place and padded to a fixed size: on a full disk a
     * new file could not be written, and that is when status matters. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/status.json", l->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    memset(buf + b.len, ' ', sizeof(buf) - b.len - 1);
    buf[sizeof(buf) - 1] = '\n';
    ssize_t w = pwrite(fd, buf, sizeof(buf), 0);
    (void)w;
    close(fd);
}

/* Returns 1 if `free` is below a threshold given in bytes or percent. */
static int bl_ledger_below(uint64_t free, unsigned pct, uint64_t bytes, unsigned pct_threshold)
{
    return bytes ? free < bytes : pct < pct_threshold;
}

/* Checks free space (at most once a second) and moves between ok, warn
 * and refuse, saying so in the log, the ledger and the metrics. */
static void bl_ledger_space(bl_ledger_t *l, int force)
{
    uint64_t now = bl_ledger_now_ms();
    struct statvfs vfs;
    if ((!force && now - l->space_ms < BL_LEDGER_SPACE_CHECK_MS) || statvfs(l->dir, &vfs) != 0)
        return;
    l->space_ms = now;
    l->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    l->free_pct = vfs.f_blocks ? (unsigned)((uint64_t)vfs.f_bavail * 100 / vfs.f_blocks) : 100;
    bl_metric_set(BL_M_AUDIT_FREE_BYTES, (int64_t)l->free_bytes);
    int refuse = bl_ledger_below(l->free_bytes, l->free_pct, l->space_refuse, l->space_refuse_pct);
    int warn = bl_ledger_below(l->free_bytes, l->free_pct, l->space_warn, l->space_warn_pct);
    char detail[200];
    if (refuse != __atomic_load_n(&l->refusing, __ATOMIC_ACQUIRE)) {
        snprintf(detail, sizeof(detail), "%s: %llu bytes (%u%%) free in the audit directory",
                 refuse ? "refusing requests: free space below audit.space_refuse" : "free space recovered: accepting requests",
                 (unsigned long long)l->free_bytes, l->free_pct);
        bl_log(refuse ? BL_LOG_ERROR : BL_LOG_WARN, "audit: %s", detail);
        __atomic_store_n(&l->refusing, refuse, __ATOMIC_RELEASE);
        bl_metric_set(BL_M_AUDIT_REFUSING, refuse);
        bl_ledger_notice(l, "space", detail);
    } else if (warn && !l->space_warned) {
        snprintf(detail, sizeof(detail), "free space below audit.space_warn: %llu bytes (%u%%) free",
                 (unsigned long long)l->free_bytes, l->free_pct);
        bl_warn("audit: %s", detail);
        bl_ledger_notice(l, "space", detail);
    }
    l->space_warned = warn;
}

/* --- the writer thread --- */

static void bl_ledger_finish(bl_ledger_batch_t *list, int ok)
{
    while (list) {
        bl_ledger_batch_t *next = list->next;
        list->ok = ok;
        list->done(list);
        list = next;
    }
}

/* Turns queued batches into leaves. Returns the entries added, or -1. */
static long bl_ledger_take(bl_ledger_t *l, bl_ledger_batch_t *list)
{
    long count = 0;
    for (bl_ledger_batch_t *b = list; b; b = b->next) {
        const char *p = bl_buf_data(&b->entries), *end = p + bl_buf_size(&b->entries);
        while (end - p >= 1 + BL_ENT_ID_LEN + 4) {
            char id[BL_ENT_ID_LEN + 1];
            const unsigned char *q = (const unsigned char *)p + 1 + BL_ENT_ID_LEN;
            size_t n = (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 | (size_t)q[3] << 24;
            memcpy(id, p + 1, BL_ENT_ID_LEN);
            id[BL_ENT_ID_LEN] = '\0';
            if ((size_t)(end - (const char *)(q + 4)) < n ||
                bl_ledger_leaf(l, p[0], id[0] != ' ' ? id : NULL, (const char *)(q + 4), n) != BL_OK)
                return -1;
            p = (const char *)(q + 4) + n;
            count++;
        }
    }
    return count;
}

/* One group commit: leaves, maybe a checkpoint, one write, one fdatasync;
 * then each batch's done() with whether its entries are durable. */
static void bl_ledger_commit(bl_ledger_t *l, bl_ledger_batch_t *list)
{
    if (__atomic_load_n(&l->failed_flag, __ATOMIC_ACQUIRE)) {
        bl_ledger_finish(list, 0);
        return;
    }
    bl_buf_reset(&l->out);
    bl_ledger_space(l, 0);
    long n = bl_ledger_take(l, list);
    if (n < 0) {
        bl_ledger_latch(l, "an audit entry could not be added (out of memory or too large)");
        bl_ledger_finish(list, 0);
        return;
    }
    int rotate = l->seg_size + bl_buf_size(&l->out) >= l->segment_bytes;
    uint64_t now = bl_ledger_now_ms();
    /* Signed with this commit when the last checkpoint is a second old (a
     * quiet ledger: every commit), else by the tick bl_ledger_wait() sets
     * for a second after the last one: at most one signature and one
     * published file per second under load, whatever the batch pattern. */
    int ck = l->tree.size > l->ck_size && (rotate || now - l->ck_ms >= BL_LEDGER_CK_INTERVAL_MS);
    if (ck && bl_ledger_checkpoint(l) != BL_OK)
        bl_ledger_latch(l, "cannot sign a checkpoint");
    int ok = !__atomic_load_n(&l->failed_flag, __ATOMIC_ACQUIRE) && bl_ledger_write(l) == BL_OK;
    if (ok) {
        bl_metric_add(BL_M_AUDIT_ENTRIES, n);
        if (rotate) {
            bl_buf_t err;
            bl_buf_init(&err, 512);
            if (bl_ledger_segment_open(l, l->segment + 1, 1, &err) != BL_OK)
                bl_ledger_latch(l, "%s", bl_buf_cstr(&err));
            bl_buf_free(&err);
        }
    }
    /* The entries are durable: release the requests before the published
     * copies (the checkpoint is already in the ledger itself). */
    bl_ledger_finish(list, ok);
    if (ok && ck)
        bl_ledger_publish(l, "checkpoint", l->note, l->note_len);
    if (ck || !ok)
        bl_ledger_status(l);
}

/* Waits for batches, or for the moment an unsigned commit needs its
 * checkpoint (a second after the last one). Returns the batches taken, or
 * NULL on a checkpoint tick or at stop. Called with mu held. */
static bl_ledger_batch_t *bl_ledger_wait(bl_ledger_t *l)
{
    while (l->qhead == NULL && !l->stop) {
        /* A failed ledger signs nothing more: waiting for a checkpoint that
         * will never be written would spin here. */
        if (l->tree.size > l->ck_size && !__atomic_load_n(&l->failed_flag, __ATOMIC_ACQUIRE)) {
            uint64_t due = l->ck_ms + BL_LEDGER_CK_INTERVAL_MS;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = due > bl_ledger_now_ms() ? due - bl_ledger_now_ms() : 0;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (wait == 0 || pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
                break;
        } else {
            pthread_cond_wait(&l->cv, &l->mu);
        }
    }
    bl_ledger_batch_t *list = l->qhead;
    l->qhead = l->qtail = NULL;
    return list;
}

static void bl_ledger_gather_more(bl_ledger_t *l, bl_ledger_batch_t **list)
{
    if (l->commit_delay_ms == 0)
        return;
    struct timespec d = { (time_t)(l->commit_delay_ms / 1000), (long)(l->commit_delay_ms % 1000) * 1000000 };
    nanosleep(&d, NULL);
    pthread_mutex_lock(&l->mu);
    bl_ledger_batch_t *tail = *list;
    while (tail && tail->next)
        tail = tail->next;
    if (tail)
        tail->next = l->qhead;
    else
        *list = l->qhead;
    l->qhead = l->qtail = NULL;
    pthread_mutex_unlock(&l->mu);
}

static void *bl_ledger_main(void *arg)
{
    bl_ledger_t *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bl_ledger_batch_t *list = bl_ledger_wait(l);
        int stop = l->stop && list == NULL;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break; /* bl_ledger_close() writes the last, signed commit */
        bl_ledger_gather_more(l, &list);
        bl_ledger_commit(l, list);
    }
    return NULL;
}

void bl_ledger_submit(bl_ledger_t *l, bl_ledger_batch_t *b)
{
    b->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->qtail)
        l->qtail->next = b;
    else
        l->qhead = b;
    l->qtail = b;
    pthread_mutex_unlock(&l->mu);
    /* After the unlock: a writer woken while the mutex is still held would
     * (on the worker's core) run at once only to block on the mutex. The
     * writer looks at the queue under the mutex before waiting, so the
     * wake-up cannot be lost. */
    pthread_cond_signal(&l->cv);
}

const char *bl_ledger_failed(bl_ledger_t *l)
{
    return __atomic_load_n(&l->failed_flag, __ATOMIC_ACQUIRE) ? l->failed : NULL;
}

int bl_ledger_refusing(bl_ledger_t *l)
{
    return __atomic_load_n(&l->refusing, __ATOMIC_ACQUIRE);
}

/* --- open and close --- */

static void bl_ledger_abort_one(const char *id, void *arg)
{
    bl_ledger_t *l = arg;
    char copy[BL_ENT_ID_LEN + 1];
    memcpy(copy, id, BL_ENT_ID_LEN);
    copy[BL_ENT_ID_LEN] = '\0';
    bl_ledger_aborted(l, copy, "byline stopped before the request finished; it was restarted");
}

/* Closes the previous run's open intents and records this start. */
static int bl_ledger_start(bl_ledger_t *l, bl_buf_t *err)
{
    bl_buf_reset(&l->out);
    size_t open = l->open.count;
    /* bl_ledger_aborted removes from the set it walks: walk a snapshot. */
    bl_idset_t snapshot = l->open;
    bl_idset_init(&l->open);
    for (size_t i = 0; i < snapshot.cap; i++)
        if (snapshot.slot[i][0] != '\0' && snapshot.slot[i][0] != '\x01')
            bl_idset_add(&l->open, snapshot.slot[i]);
    bl_idset_each(&snapshot, bl_ledger_abort_one, l);
    bl_idset_free(&snapshot);
    char detail[160];
    snprintf(detail, sizeof(detail), "byline started; %zu request(s) of the previous run closed as aborted", open);
    int rc = bl_ledger_notice(l, "start", detail);
    if (!l->sync)
        rc |= bl_ledger_notice(l, "relaxed", "audit.sync is off: commits are not fdatasync'ed");
    rc |= bl_ledger_checkpoint(l);
    if (rc != BL_OK || bl_ledger_write(l) != BL_OK) {
        bl_buf_printf(err, "cannot write to the audit ledger in %s: %s", l->dir, l->failed[0] ? l->failed : "out of memory");
        return BL_ERROR;
    }
    bl_ledger_publish(l, "checkpoint", l->note, l->note_len);
    if (open)
        bl_warn("audit: closed %zu request(s) left open by the previous run as aborted", open);
    return BL_OK;
}

static int bl_ledger_init(bl_ledger_t *l, const bl_ledger_cfg_t *cfg, bl_buf_t *err)
{
    l->fd = l->dirfd = -1;
    l->dir = strdup(cfg->dir);
    l->origin = strdup(cfg->origin);
    l->version = strdup(cfg->version ? cfg->version : "");
    l->sync = cfg->sync;
    l->commit_delay_ms = cfg->commit_delay_ms;
    l->segment_bytes = cfg->segment_bytes ? cfg->segment_bytes : (64u << 20);
    l->space_warn = cfg->space_warn;
    l->space_warn_pct = cfg->space_warn_pct;
    l->space_refuse = cfg->space_refuse;
    l->space_refuse_pct = cfg->space_refuse_pct;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    bl_merkle_init(&l->tree);
    bl_idset_init(&l->open);
    bl_buf_init(&l->out, BL_LEDGER_OUT_MAX);
    bl_buf_init(&l->ent, 64 * 1024);
    if (!l->dir || !l->origin || !l->version) {
        bl_buf_printf(err, "out of memory");
        return BL_ERROR;
    }
    if (mkdir(l->dir, 0700) != 0 && errno != EEXIST) {
        bl_buf_printf(err, "cannot create audit directory %s: %s", l->dir, strerror(errno));
        return BL_ERROR;
    }
    l->dirfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dirfd < 0) {
        bl_buf_printf(err, "cannot open audit directory %s: %s", l->dir, strerror(errno));
        return BL_ERROR;
    }
    l->signer = bl_signer_load(cfg->signing_key, l->origin, err);
    return l->signer ? BL_OK : BL_ERROR;
}

static void bl_ledger_free(bl_ledger_t *l)
{
    if (l->fd >= 0)
        close(l->fd);
    if (l->dirfd >= 0)
        close(l->dirfd);
    bl_signer_free(l->signer);
    bl_idset_free(&l->open);
    bl_buf_free(&l->out);
    bl_buf_free(&l->ent);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->dir);
    free(l->origin);
    free(l->version);
    free(l);
}

bl_ledger_t *bl_ledger_open(const bl_ledger_cfg_t *cfg, bl_buf_t *err)
{
    bl_ledger_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        bl_buf_printf(err, "out of memory");
        return NULL;
    }
    if (bl_ledger_init(l, cfg, err) != BL_OK || bl_ledger_recover(l, err) != BL_OK)
        goto fail;
    bl_ledger_space(l, 1);
    if (bl_ledger_start(l, err) != BL_OK)
        goto fail;
    bl_ledger_status(l);
    if (pthread_create(&l->thread, NULL, bl_ledger_main, l) != 0) {
        bl_buf_printf(err, "cannot start the audit writer thread");
        goto fail;
    }
    pthread_setname_np(l->thread, "byline-ledger");
    l->running = 1;
    return l;
fail:
    bl_ledger_free(l);
    return NULL;
}

void bl_ledger_close(bl_ledger_t *l)
{
    if (l == NULL)
        return;
    if (l->running) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (!bl_ledger_failed(l)) {
        bl_buf_reset(&l->out);
        if (bl_ledger_notice(l, "stop", "byline stopped") == BL_OK && bl_ledger_checkpoint(l) == BL_OK &&
            bl_ledger_write(l) == BL_OK)
            bl_ledger_publish(l, "checkpoint", l->note, l->note_len);
    }
    bl_ledger_status(l);
    bl_ledger_free(l);
}
