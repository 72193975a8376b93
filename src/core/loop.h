/*
 * loop.h - the event loop: edge-triggered epoll, a timer heap and a queue
 * of deferred callbacks. One loop per worker thread; nothing in it is
 * shared between threads except bl_loop_wake().
 *
 * Each iteration: run deferred callbacks, fire expired timers, then wait
 * in epoll_wait until the next timer is due (HAProxy's run_poll_loop shape).
 */
#ifndef BL_CORE_LOOP_H
#define BL_CORE_LOOP_H

#include <stdint.h>
#include "core/common.h"

typedef struct bl_loop_s bl_loop_t;
typedef struct bl_io_s bl_io_t;
typedef struct bl_timer_s bl_timer_t;
typedef struct bl_defer_s bl_defer_t;

/* I/O readiness bits passed to bl_io_t callbacks. */
#define BL_IO_READ  0x1
#define BL_IO_WRITE 0x2
#define BL_IO_ERROR 0x4   /* EPOLLERR/EPOLLHUP: the fd is dead or hung up */
#define BL_IO_RDHUP 0x8   /* EPOLLRDHUP: the peer sent FIN; reads end in EOF */

/* A file descriptor watched for readiness. Owned by whoever embeds it. */
struct bl_io_s {
    int fd;
    void (*cb)(bl_io_t *io, unsigned events);
    void *data;
};

/* A one-shot timer. Owned by the embedder; the loop only links it. */
struct bl_timer_s {
    uint64_t at;        /* due time, ms on the loop clock */
    size_t idx;         /* heap index + 1; 0 when not armed */
    void (*cb)(bl_timer_t *t);
    void *data;
};

/* A callback to run on the next iteration (e.g. to resume buffered work). */
struct bl_defer_s {
    bl_defer_t *next;
    int queued;
    void (*cb)(bl_defer_t *d);
    void *data;
};

/* Returns a new loop or NULL (errno set). Free with bl_loop_free(). */
bl_loop_t *bl_loop_new(void);
void bl_loop_free(bl_loop_t *loop);

/* Watches io->fd for read and write readiness, edge-triggered. Returns BL_OK
 * or BL_ERROR. The callback fires on every edge until bl_loop_del(). */
int bl_loop_add(bl_loop_t *loop, bl_io_t *io);

/* Stops watching io->fd (call before close()). */
void bl_loop_del(bl_loop_t *loop, bl_io_t *io);

/* Returns the cached monotonic time in milliseconds (updated each iteration). */
uint64_t bl_loop_now(const bl_loop_t *loop);

/* Arms (or re-arms) `t` to fire `ms` from now. */
void bl_timer_set(bl_loop_t *loop, bl_timer_t *t, uint64_t ms);

/* Disarms `t` if armed. Safe to call on a disarmed timer. */
void bl_timer_cancel(bl_loop_t *loop, bl_timer_t *t);

static inline int bl_timer_armed(const bl_timer_t *t) { return t->idx != 0; }

/* Queues d->cb for the next iteration; no-op if already queued. */
void bl_loop_defer(bl_loop_t *loop, bl_defer_t *d);

/* Removes d from the queue if queued (call before freeing its owner). */
void bl_loop_undefer(bl_loop_t *loop, bl_defer_t *d);

/* Runs until bl_loop_stop(). Returns BL_OK, or BL_ERROR if epoll fails. */
int bl_loop_run(bl_loop_t *loop);

/* Runs deferred callbacks and due timers once, without waiting. */
void bl_loop_run_once(bl_loop_t *loop);

/* Makes bl_loop_run() return after the current iteration. Loop thread only. */
void bl_loop_stop(bl_loop_t *loop);

/* Sets a callback run in the loop thread whenever bl_loop_wake() is called
 * from any thread (or a signal handler). */
void bl_loop_on_wake(bl_loop_t *loop, void (*cb)(bl_loop_t *loop, void *data), void *data);

/* Async-signal-safe and thread-safe: wakes the loop and runs its wake callback. */
void bl_loop_wake(bl_loop_t *loop);

#endif
