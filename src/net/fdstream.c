/* fdstream.c - a non-blocking fd as a bl_stream_t, edge-triggered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/fdstream.h"

struct bl_fdstream_s {
    bl_stream_t stream;   /* must stay first */
    bl_io_t io;
    bl_loop_t *loop;
    bl_defer_t reaper;
    unsigned rd_ready : 1, wr_ready : 1, rd_hup : 1, shut_wr : 1;
    bl_fdnote_t *note;
};

struct bl_fdnote_s {
    int refs;             /* atomic */
    int set;              /* atomic: why[] is written */
    char why[128];
};

static const char *bl_fdnote_get(bl_fdnote_t *n)
{
    return n && __atomic_load_n(&n->set, __ATOMIC_ACQUIRE) ? n->why : NULL;
}

static void bl_fd_reap(bl_defer_t *d)
{
    bl_fdstream_t *s = d->data;
    bl_fdnote_unref(s->note);
    free(s);
}

static void bl_fd_nop(bl_io_t *io, unsigned events)
{
    (void)io;
    (void)events;
}

static void bl_fd_io(bl_io_t *io, unsigned events)
{
    bl_fdstream_t *s = io->data;
    if (events & BL_IO_RDHUP)
        s->rd_hup = 1;
    if (events & BL_IO_READ)
        s->rd_ready = 1;
    if (events & BL_IO_WRITE)
        s->wr_ready = 1;
    if (s->stream.on_io)
        s->stream.on_io(&s->stream, events);
}

static long bl_fd_read(bl_stream_t *st, void *p, size_t n)
{
    bl_fdstream_t *s = (bl_fdstream_t *)st;
    if (s->io.fd < 0)
        return BL_ERROR;
    if (!s->rd_ready)
        return BL_AGAIN;
    ssize_t r;
    do
        r = read(s->io.fd, p, n);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->rd_ready = 0;
            return BL_AGAIN;
        }
        return BL_ERROR;
    }
    if (r == 0 && bl_fdnote_get(s->note))
        return BL_ERROR; /* the peer end was closed on a failure, not a finished exchange */
    if ((size_t)r < n && !s->rd_hup)
        s->rd_ready = 0;
    return r;
}

static long bl_fd_write(bl_stream_t *st, const void *p, size_t n)
{
    bl_fdstream_t *s = (bl_fdstream_t *)st;
    if (s->io.fd < 0 || s->shut_wr)
        return BL_ERROR;
    if (n == 0)
        return 0;
    if (!s->wr_ready)
        return BL_AGAIN;
    ssize_t w;
    do
        w = send(s->io.fd, p, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->wr_ready = 0;
            return BL_AGAIN;
        }
        return BL_ERROR;
    }
    if ((size_t)w < n)
        s->wr_ready = 0;
    return w;
}

static int bl_fd_shutdown_wr(bl_stream_t *st)
{
    bl_fdstream_t *s = (bl_fdstream_t *)st;
    if (s->io.fd < 0)
        return BL_ERROR;
    if (!s->shut_wr)
        shutdown(s->io.fd, SHUT_WR);
    s->shut_wr = 1;
    return BL_OK;
}

static void bl_fd_release(bl_stream_t *st, int reusable)
{
    bl_fdstream_t *s = (bl_fdstream_t *)st;
    (void)reusable; /* a tunnel carries one exchange: never pooled */
    if (s->io.fd >= 0) {
        bl_loop_del(s->loop, &s->io);
        close(s->io.fd);
    }
    s->io.fd = -1;
    s->io.cb = bl_fd_nop;
    s->reaper.cb = bl_fd_reap;
    s->reaper.data = s;
    bl_loop_defer(s->loop, &s->reaper);
}

static const char *bl_fd_why(bl_stream_t *st)
{
    return bl_fdnote_get(((bl_fdstream_t *)st)->note);
}

static const bl_stream_ops_t bl_fd_ops = {
    .kind = "fd",
    .read = bl_fd_read,
    .write = bl_fd_write,
    .shutdown_wr = bl_fd_shutdown_wr,
    .release = bl_fd_release,
    .why = bl_fd_why,
};

bl_stream_t *bl_fdstream_new(bl_loop_t *loop, int fd)
{
    bl_fdstream_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        return NULL;
    }
    s->stream.ops = &bl_fd_ops;
    s->loop = loop;
    s->io.fd = fd;
    s->io.cb = bl_fd_io;
    s->io.data = s;
    s->rd_ready = s->wr_ready = 1;
    if (bl_loop_add(loop, &s->io) != BL_OK) {
        close(fd);
        free(s);
        return NULL;
    }
    return &s->stream;
}

bl_fdnote_t *bl_fdstream_note(bl_stream_t *st)
{
    bl_fdstream_t *s = (bl_fdstream_t *)st;
    if (s->note == NULL && (s->note = calloc(1, sizeof(*s->note))) != NULL)
        s->note->refs = 1;
    if (s->note)
        __atomic_add_fetch(&s->note->refs, 1, __ATOMIC_RELAXED);
    return s->note;
}

void bl_fdnote_set(bl_fdnote_t *n, const char *why)
{
    if (n == NULL || __atomic_load_n(&n->set, __ATOMIC_ACQUIRE))
        return;
    snprintf(n->why, sizeof(n->why), "%s", why);
    __atomic_store_n(&n->set, 1, __ATOMIC_RELEASE);
}

void bl_fdnote_unref(bl_fdnote_t *n)
{
    if (n && __atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(n);
}
