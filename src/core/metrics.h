/*
 * metrics.h - process-wide counters and gauges, served in the Prometheus
 * text format on `metrics.listen` (/metrics). Updating is a relaxed atomic
 * add: callable from any thread, on the hot path.
 */
#ifndef BL_CORE_METRICS_H
#define BL_CORE_METRICS_H

#include <stdint.h>
#include "core/buf.h"

typedef enum {
    BL_M_REQUESTS_ALLOWED,      /* counter: forwarded requests */
    BL_M_REQUESTS_DENIED,       /* counter: refused by policy or hygiene (403) */
    BL_M_REQUESTS_UNAUTHENTICATED, /* counter: 401 */
    BL_M_REQUESTS_ERROR,        /* counter: malformed, upstream or audit failure */
    BL_M_CONNECTIONS_OPEN,      /* gauge: client connections now */
    BL_M_CONNECTIONS_TOTAL,     /* counter: client connections accepted */
    BL_M_UPSTREAM_CONNECTS,     /* counter: new upstream connections */
    BL_M_UPSTREAM_ERRORS,       /* counter: upstream connect/protocol failures */
    BL_M_AUDIT_ENTRIES,         /* counter: ledger entries committed */
    BL_M_AUDIT_COMMITS,         /* counter: group commits (writev + fdatasync) */
    BL_M_AUDIT_BYTES,           /* counter: ledger bytes written */
    BL_M_AUDIT_CHECKPOINTS,     /* counter: signed checkpoints */
    BL_M_CONFIG_RELOADS,        /* counter: configuration reloads applied (proxy/reload.h) */
    BL_M_CONFIG_RELOAD_FAILURES,/* counter: reloads refused (the config did not load, or needs a restart) */
    BL_M_CONFIG_LAST_RELOAD_OK, /* gauge: 1 if the last reload (or the start) succeeded */
    BL_M_CONFIG_LAST_RELOAD_TS, /* gauge: when the config in force was loaded (epoch s) */
    BL_M_AUDIT_FAILED,          /* gauge: 1 once the ledger latched failed */
    BL_M_AUDIT_REFUSING,        /* gauge: 1 while free space is below the refuse threshold */
    BL_M_AUDIT_FREE_BYTES,      /* gauge: free bytes on the audit file system */
    BL_M_SHARED_CREDENTIAL_WARNINGS, /* counter: "identity X appears to be shared" notices */
    BL_M_REQUESTS_LIMITED,      /* counter: refused by a rate limit (429) */
    BL_M_LIMITED_READS,         /* counter: 429s by verb class (policy/limit.h), in class order */
    BL_M_LIMITED_WRITES,
    BL_M_LIMITED_EXEC,
    BL_M_AGENT_SESSIONS,        /* gauge: agent sessions taking requests now (proxy/agent_hub.c) */
    BL_M_AGENT_UNSERVED,        /* gauge: `via: agent` connections with no such session */
    BL_M_AGENT_TUNNELS,         /* counter: requests handed to an agent */
    BL_M_AGENT_TUNNEL_FAILURES, /* counter: requests no agent could take, or whose agent went away */
    BL_M_COUNT
} bl_metric_t;

void bl_metric_add(bl_metric_t m, int64_t delta);
void bl_metric_set(bl_metric_t m, int64_t value);
int64_t bl_metric_get(bl_metric_t m);

/* Records one group commit's latency (write + fdatasync) in microseconds
 * into the byline_audit_commit_seconds histogram. */
void bl_metric_commit_latency(uint64_t us);

/* Appends every metric in the Prometheus text exposition format. */
int bl_metrics_render(bl_buf_t *out);

/* Starts the /metrics listener thread on "host:port". Returns BL_OK, or
 * BL_ERROR with the reason in err. bl_metrics_stop() ends it. */
int bl_metrics_start(const char *listen, bl_buf_t *err);
void bl_metrics_stop(void);

#endif
