/*
 * upstream_agent.c - a connection reached through a byline agent: each
 * request gets one end of a socketpair at once, and the agent hub tunnels
 * the other end to the API server through an agent (agent_hub.h). The
 * agent holds the credential, so head() adds only a Host line (which the
 * agent replaces with the API server's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/metrics.h"
#include "proxy/agent_hub.h"
#include "proxy/upstream.h"

typedef struct {
    bl_upstream_t base;
    bl_hub_t *hub;
    size_t k;                /* index in cfg->conns */
    char offline[160];       /* "no agent online for connection NAME" */
} bl_agentup_t;

static int bl_agentup_open(bl_upstream_t *base, bl_upwait_t *w, bl_stream_t **out, const char **err)
{
    bl_agentup_t *u = (bl_agentup_t *)base;
    int fds[2];
    (void)w;
    if (bl_hub_online(u->hub, u->k) == 0) {
        bl_metric_add(BL_M_AGENT_TUNNEL_FAILURES, 1);
        *err = u->offline;
        return BL_DECLINED;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        *err = "cannot create a socketpair for the agent tunnel";
        return BL_ERROR;
    }
    bl_stream_t *s = bl_fdstream_new(base->loop, fds[0]);
    bl_fdnote_t *note = s ? bl_fdstream_note(s) : NULL;
    if (note == NULL) {
        if (s)
            bl_stream_release(s, 0);
        close(fds[1]);
        *err = "out of memory";
        return BL_ERROR;
    }
    bl_hub_open(u->hub, u->k, fds[1], note);
    /* Ready now: the request head waits in the socket buffer until the hub
     * has a tunnel. Like a pooled stream, one that fails before any answer
     * is retried for reads, possibly through another agent. */
    *out = s;
    return BL_OK;
}

static void bl_agentup_cancel(bl_upstream_t *base, bl_upwait_t *w)
{
    (void)base;
    (void)w; /* open never waits */
}

static int bl_agentup_head(bl_upstream_t *base, bl_buf_t *out)
{
    return bl_buf_printf(out, "Host: %s\r\n", base->conn->name);
}

static const char *bl_agentup_prefix(bl_upstream_t *base)
{
    (void)base;
    return ""; /* the agent adds its API server's path prefix */
}

static void bl_agentup_free(bl_upstream_t *base)
{
    free(base);
}

static const bl_upstream_ops_t bl_agentup_ops = {
    .kind = "agent",
    .open = bl_agentup_open,
    .cancel = bl_agentup_cancel,
    .head = bl_agentup_head,
    .prefix = bl_agentup_prefix,
    .free = bl_agentup_free,
};

bl_upstream_t *bl_upstream_agent_new(bl_loop_t *loop, const bl_connection_t *conn, bl_hub_t *hub, size_t k,
                                     bl_buf_t *err)
{
    bl_agentup_t *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        bl_buf_printf(err, "out of memory");
        return NULL;
    }
    u->base.ops = &bl_agentup_ops;
    u->base.conn = conn;
    u->base.loop = loop;
    u->hub = hub;
    u->k = k;
    snprintf(u->offline, sizeof(u->offline), "no agent online for connection %s", conn->name);
    return &u->base;
}
