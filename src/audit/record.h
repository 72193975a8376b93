/*
 * record.h - one audit record per request, written as JSON Lines.
 *
 * A forwarded request produces two entries sharing one id: an "intent"
 * committed to the ledger BEFORE any byte goes upstream, and a "result"
 * once the exchange ends. A request byline refuses itself (401, 403, 400,
 * 502...) produces one "result". The id is a UUIDv7, sent upstream as
 * Audit-ID, so the cluster's audit event carries it as auditID.
 * docs/AUDIT-FORMAT.md documents the entries; the ledger (ledger.h) wraps
 * each in a numbered, chained line.
 */
#ifndef BL_AUDIT_RECORD_H
#define BL_AUDIT_RECORD_H

#include <stdint.h>
#include <time.h>
#include "core/buf.h"
#include "core/uuid.h"
#include "kube/reqinfo.h"

/* Bounds for the client-supplied strings a record keeps (truncated past them). */
#define BL_REC_UA_MAX      256
#define BL_REC_SESSION_MAX 64
#define BL_REC_COMMAND_MAX 128
#define BL_REC_URI_MAX     1024
#define BL_REC_REASON_MAX  256
#define BL_REC_RULE_MAX    64     /* a rule name (policy.h BL_POLICY_NAME_MAX) and its NUL */

typedef enum {
    BL_RESULT_ALLOWED = 0,     /* forwarded (whatever the upstream answered) */
    BL_RESULT_DENIED,          /* refused by byline (403) */
    BL_RESULT_UNAUTHENTICATED, /* no or bad credential (401) */
    BL_RESULT_ERROR,           /* malformed request, upstream failure, audit failure */
    BL_RESULT_LIMITED,         /* refused by a rate limit (429) */
} bl_result_t;

typedef struct {
    char id[BL_UUID_LEN + 1];
    struct timespec ts;            /* CLOCK_REALTIME when the head arrived */
    uint64_t start_us;             /* CLOCK_MONOTONIC, for the duration */
    const char *actor;             /* identity name; NULL = unauthenticated */
    char *const *groups;           /* borrowed from the identity */
    size_t ngroups;
    const char *credential;        /* "token", "cert" or "none" */
    char source_ip[48];
    char user_agent[BL_REC_UA_MAX];
    char kubectl_session[BL_REC_SESSION_MAX];
    char kubectl_command[BL_REC_COMMAND_MAX];
    const char *connection;        /* connection name, borrowed from config; may be NULL */
    char method[16];
    char uri[BL_REC_URI_MAX];      /* request-target as received (prefix included) */
    const bl_kreq_t *kreq;         /* borrowed; NULL if the target was not understood */
    const char *action;            /* rendered kubectl command, borrowed; may be NULL */
    bl_result_t result;
    const char *decision;          /* the policy's: "allowed", "denied" or "review"; NULL if the
                                      request was refused before the policy was asked */
    char rule[BL_REC_RULE_MAX];    /* the rule that decided ("default-deny" for none), "" if none */
    char reason[BL_REC_REASON_MAX];/* why denied / failed, "" otherwise */
    char review[16];               /* the review (review/store.h) that held or approved it, or "" */
    char approved_by[260];         /* the reviewer whose approval let it through, or "" */
    int status;                    /* HTTP status returned to the client; 0 if none */
    int upgraded;                  /* 1 if the exchange became a tunnel (101) */
    uint64_t bytes_in;             /* body/tunnel bytes client -> upstream */
    uint64_t bytes_out;            /* body/tunnel bytes upstream -> client */
    bl_str_t exec;                 /* exec outcome as a canonical JSON object, borrowed; may be empty */
    bl_str_t capture;              /* session capture (audit/capture.h) as a canonical JSON object,
                                      borrowed; may be empty */
    bl_str_t request_body;         /* canonical JSON value (audit.level Request+), borrowed; may be empty */
    bl_str_t response_body;        /* canonical JSON value (RequestResponse), borrowed; may be empty */
} bl_audit_rec_t;

/* Starts a record: fresh UUIDv7 id and timestamps, everything else empty.
 * Returns BL_OK, or BL_ERROR if no id could be generated. */
int bl_rec_begin(bl_audit_rec_t *r);

/* Copies a client-supplied value into a bounded field (truncating). */
void bl_rec_copy(char *dst, size_t cap, bl_str_t src);

/* Sets r->reason from a printf format (truncating). */
void bl_rec_reason(bl_audit_rec_t *r, const char *fmt, ...) BL_PRINTF(2, 3);

/* Returns the lower-case name of a result ("allowed", ...). */
const char *bl_result_name(bl_result_t res);

/* Appends the intent entry (one JSON object in RFC 8785 canonical form,
 * no newline; docs/AUDIT-FORMAT.md section 4) to `out`. BL_OK or BL_ERROR. */
int bl_rec_intent_json(const bl_audit_rec_t *r, bl_buf_t *out);

/* Appends the result entry; `full` = 1 repeats the request fields (for a
 * request byline refused itself, which has no intent). BL_OK or BL_ERROR. */
int bl_rec_result_json(const bl_audit_rec_t *r, int full, bl_buf_t *out);

/* Appends `ts` as a quoted RFC 3339 UTC time with microseconds. */
int bl_rec_ts(bl_buf_t *out, const struct timespec *ts);

#endif
