/* pool.c - the agent's idle API server connections; see pool.h. */
#include <stdlib.h>
#include "agent/pool.h"

struct bl_agentpool_s {
    bl_loop_t *loop;
    bl_timer_t sweep;
    size_t n;
    struct {
        bl_sock_t *sock;
        uint64_t since;
    } idle[BL_AGENT_POOL_MAX];
};

static void bl_ap_remove(bl_agentpool_t *p, size_t i)
{
    p->idle[i] = p->idle[--p->n];
}

/* An idle connection became readable: the server closed it or sent
 * something unasked. Either way it can carry no request. */
static void bl_ap_on_io(bl_stream_t *s, unsigned events)
{
    bl_agentpool_t *p = s->owner;
    char probe;
    (void)events;
    if (bl_stream_read(s, &probe, 1) == BL_AGAIN)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (&p->idle[i].sock->stream == s) {
            bl_ap_remove(p, i);
            break;
        }
    bl_sock_close((bl_sock_t *)s);
}

static void bl_ap_sweep(bl_timer_t *t)
{
    bl_agentpool_t *p = t->data;
    uint64_t now = bl_loop_now(p->loop);
    for (size_t i = p->n; i-- > 0;)
        if (now - p->idle[i].since >= BL_AGENT_POOL_IDLE_MS) {
            bl_sock_t *s = p->idle[i].sock;
            bl_ap_remove(p, i);
            bl_sock_close(s);
        }
    if (p->n)
        bl_timer_set(p->loop, &p->sweep, BL_AGENT_POOL_IDLE_MS / 2);
}

bl_sock_t *bl_agentpool_take(bl_agentconn_t *c)
{
    bl_agentpool_t *p = c->pool;
    while (p && p->n > 0) {
        bl_sock_t *s = p->idle[--p->n].sock; /* newest first: least likely to be stale */
        if (bl_sock_clean(s)) {
            s->stream.on_io = NULL;
            s->stream.owner = NULL;
            return s;
        }
        bl_sock_close(s);
    }
    return NULL;
}

void bl_agentpool_put(bl_agentconn_t *c, bl_loop_t *loop, bl_sock_t *s)
{
    if (c->pool == NULL && (c->pool = calloc(1, sizeof(*c->pool))) != NULL) {
        c->pool->loop = loop;
        c->pool->sweep.cb = bl_ap_sweep;
        c->pool->sweep.data = c->pool;
    }
    bl_agentpool_t *p = c->pool;
    if (p == NULL || p->n == BL_AGENT_POOL_MAX || !bl_sock_clean(s)) {
        bl_sock_close(s);
        return;
    }
    s->stream.on_io = bl_ap_on_io;
    s->stream.owner = p;
    p->idle[p->n].sock = s;
    p->idle[p->n].since = bl_loop_now(loop);
    p->n++;
    if (!bl_timer_armed(&p->sweep))
        bl_timer_set(loop, &p->sweep, BL_AGENT_POOL_IDLE_MS / 2);
}

void bl_agentpool_free(bl_agentconn_t *c)
{
    bl_agentpool_t *p = c->pool;
    if (p == NULL)
        return;
    while (p->n > 0)
        bl_sock_close(p->idle[--p->n].sock);
    bl_timer_cancel(p->loop, &p->sweep);
    free(p);
    c->pool = NULL;
}
