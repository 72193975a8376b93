/* writer.c - thread-safe, fail-latched JSON Lines appender. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/writer.h"
#include "core/log.h"

struct bl_auditlog_s {
    pthread_mutex_t mu;
    int fd;
    char failed[256];   /* "" while healthy */
};

bl_auditlog_t *bl_auditlog_open(const char *dir, bl_buf_t *err)
{
    char path[4096];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        bl_buf_printf(err, "cannot create audit directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, BL_AUDIT_FILE) >= sizeof(path)) {
        bl_buf_printf(err, "audit directory path too long");
        return NULL;
    }
    bl_auditlog_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        bl_buf_printf(err, "out of memory");
        return NULL;
    }
    w->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        bl_buf_printf(err, "cannot open audit log %s: %s", path, strerror(errno));
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

int bl_auditlog_write(bl_auditlog_t *w, const char *p, size_t n)
{
    int rc = BL_OK;
    pthread_mutex_lock(&w->mu);
    if (w->failed[0]) {
        rc = BL_ERROR;
        goto end;
    }
    ssize_t k;
    do
        k = write(w->fd, p, n);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)n) {
        /* A short write leaves a torn line; stop writing rather than add
         * records after it that a reader might misattribute. */
        snprintf(w->failed, sizeof(w->failed), "audit write failed: %s",
                 k < 0 ? strerror(errno) : "short write");
        bl_error("%s; refusing all requests until restarted", w->failed);
        rc = BL_ERROR;
    }
end:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

const char *bl_auditlog_failed(bl_auditlog_t *w)
{
    pthread_mutex_lock(&w->mu);
    const char *f = w->failed[0] ? w->failed : NULL;
    pthread_mutex_unlock(&w->mu);
    return f;
}

void bl_auditlog_close(bl_auditlog_t *w)
{
    if (w == NULL)
        return;
    close(w->fd);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
