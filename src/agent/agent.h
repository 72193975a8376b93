/*
 * agent.h - the `byline agent` process (docs/AGENT.md): dials out to the
 * gateway, holds the connections' credentials, relays tunnelled requests
 * to the API servers. It never audits or decides: the gateway has done so
 * before a request reaches it.
 */
#ifndef BL_AGENT_AGENT_H
#define BL_AGENT_AGENT_H

#include "core/buf.h"

typedef struct {
    const char *gateway;    /* https://host[:port] of the gateway */
    const char *key_file;   /* holds the agent key */
    const char *config;     /* the agent's YAML (conf.h) */
    const char *ca;         /* CA that signed the gateway's certificate; NULL: system store */
} bl_agent_opts_t;

/* Runs in the foreground until SIGTERM/SIGINT (the first drains for up to
 * 30 s, a second stops at once). Returns BL_OK, or BL_ERROR with the
 * reason in `err` when it cannot start. */
int bl_agent_run(const bl_agent_opts_t *o, bl_buf_t *err);

#endif
