/* loop.c - epoll + binary-heap timers + deferred queue. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "core/loop.h"

#define BL_LOOP_MAX_EVENTS 256

struct bl_loop_s {
    int epfd;
    int stop;
    uint64_t now;
    bl_timer_t **heap;       /* min-heap on `at` */
    size_t nheap, capheap;
    bl_defer_t *defer_head, *defer_tail;
    size_t ndefer;
    bl_io_t wake_io;         /* eventfd */
    void (*wake_cb)(bl_loop_t *, void *);
    void *wake_data;
};

static uint64_t bl_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void bl_loop_wake_cb(bl_io_t *io, unsigned events)
{
    bl_loop_t *loop = io->data;
    uint64_t v;
    int woken = 0;
    (void)events;
    /* The eventfd is always writable, so edges come without a wake: only
     * a counter read from it means someone called bl_loop_wake(). */
    while (read(io->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        woken = 1;
    if (woken && loop->wake_cb)
        loop->wake_cb(loop, loop->wake_data);
}

bl_loop_t *bl_loop_new(void)
{
    bl_loop_t *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epfd < 0 || loop->wake_io.fd < 0)
        goto fail;
    loop->wake_io.cb = bl_loop_wake_cb;
    loop->wake_io.data = loop;
    if (bl_loop_add(loop, &loop->wake_io) != BL_OK)
        goto fail;
    loop->now = bl_clock_ms();
    return loop;
fail:
    bl_loop_free(loop);
    return NULL;
}

void bl_loop_free(bl_loop_t *loop)
{
    if (loop == NULL)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wake_io.fd > 0)
        close(loop->wake_io.fd);
    free(loop->heap);
    free(loop);
}

int bl_loop_add(bl_loop_t *loop, bl_io_t *io)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = io };
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0 ? BL_OK : BL_ERROR;
}

void bl_loop_del(bl_loop_t *loop, bl_io_t *io)
{
    if (io->fd >= 0)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

uint64_t bl_loop_now(const bl_loop_t *loop)
{
    return loop->now;
}

/* --- timer heap: heap[i] has idx i+1 --- */

static void bl_heap_place(bl_loop_t *loop, size_t i, bl_timer_t *t)
{
    loop->heap[i] = t;
    t->idx = i + 1;
}

static void bl_heap_up(bl_loop_t *loop, size_t i)
{
    bl_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->at <= t->at)
            break;
        bl_heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    bl_heap_place(loop, i, t);
}

static void bl_heap_down(bl_loop_t *loop, size_t i)
{
    bl_timer_t *t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && loop->heap[c + 1]->at < loop->heap[c]->at)
            c++;
        if (t->at <= loop->heap[c]->at)
            break;
        bl_heap_place(loop, i, loop->heap[c]);
        i = c;
    }
    bl_heap_place(loop, i, t);
}

void bl_timer_cancel(bl_loop_t *loop, bl_timer_t *t)
{
    if (t->idx == 0)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    bl_timer_t *last = loop->heap[--loop->nheap];
    if (i == loop->nheap)
        return;
    bl_heap_place(loop, i, last);
    bl_heap_up(loop, i);
    bl_heap_down(loop, last->idx - 1);
}

void bl_timer_set(bl_loop_t *loop, bl_timer_t *t, uint64_t ms)
{
    bl_timer_cancel(loop, t);
    if (loop->nheap == loop->capheap) {
        size_t cap = loop->capheap ? loop->capheap * 2 : 64;
        bl_timer_t **h = realloc(loop->heap, cap * sizeof(*h));
        if (h == NULL)
            abort(); /* a lost timeout would leak a connection forever */
        loop->heap = h;
        loop->capheap = cap;
    }
    t->at = loop->now + ms;
    loop->heap[loop->nheap] = t;
    t->idx = ++loop->nheap;
    bl_heap_up(loop, loop->nheap - 1);
}

static void bl_timers_run(bl_loop_t *loop)
{
    while (loop->nheap > 0 && loop->heap[0]->at <= loop->now) {
        bl_timer_t *t = loop->heap[0];
        bl_timer_cancel(loop, t);
        t->cb(t);
    }
}

/* --- deferred queue --- */

void bl_loop_defer(bl_loop_t *loop, bl_defer_t *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
    loop->ndefer++;
}

void bl_loop_undefer(bl_loop_t *loop, bl_defer_t *d)
{
    if (!d->queued)
        return;
    bl_defer_t **pp = &loop->defer_head, *prev = NULL;
    while (*pp && *pp != d) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == d) {
        *pp = d->next;
        if (loop->defer_tail == d)
            loop->defer_tail = prev;
        loop->ndefer--;
    }
    d->queued = 0;
}

static void bl_defer_run(bl_loop_t *loop)
{
    /* Pop from the live queue (so bl_loop_undefer stays correct), but only
     * as many as were queued when the pass began: a callback that re-queues
     * itself cannot starve I/O. */
    size_t budget = loop->ndefer;
    while (budget-- > 0 && loop->defer_head) {
        bl_defer_t *d = loop->defer_head;
        loop->defer_head = d->next;
        if (loop->defer_head == NULL)
            loop->defer_tail = NULL;
        loop->ndefer--;
        d->queued = 0;
        d->cb(d);
    }
}

void bl_loop_stop(bl_loop_t *loop)
{
    loop->stop = 1;
}

void bl_loop_on_wake(bl_loop_t *loop, void (*cb)(bl_loop_t *, void *), void *data)
{
    loop->wake_cb = cb;
    loop->wake_data = data;
}

void bl_loop_wake(bl_loop_t *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wake_io.fd, &one, sizeof(one));
    (void)n;
}

void bl_loop_run_once(bl_loop_t *loop)
{
    loop->now = bl_clock_ms();
    bl_defer_run(loop);
    bl_timers_run(loop);
}

int bl_loop_run(bl_loop_t *loop)
{
    struct epoll_event evs[BL_LOOP_MAX_EVENTS];
    while (!loop->stop) {
        loop->now = bl_clock_ms();
        bl_defer_run(loop);
        bl_timers_run(loop);
        if (loop->stop)
            break;
        int timeout = -1;
        if (loop->defer_head)
            timeout = 0;
        else if (loop->nheap > 0)
            timeout = loop->heap[0]->at > loop->now ? (int)BL_MIN(loop->heap[0]->at - loop->now, 60000u) : 0;
        int n = epoll_wait(loop->epfd, evs, BL_LOOP_MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return BL_ERROR;
        }
        loop->now = bl_clock_ms();
        for (int i = 0; i < n; i++) {
            bl_io_t *io = evs[i].data.ptr;
            unsigned e = 0;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
                e |= BL_IO_READ;
            if (evs[i].events & (EPOLLRDHUP | EPOLLHUP))
                e |= BL_IO_RDHUP;
            if (evs[i].events & EPOLLOUT)
                e |= BL_IO_WRITE;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                e |= BL_IO_ERROR | BL_IO_READ | BL_IO_WRITE;
            io->cb(io, e);
        }
    }
    return BL_OK;
}
