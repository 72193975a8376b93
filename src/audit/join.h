/*
 * join.h - lining byline's ledger up with the cluster's own audit log
 * (`byline audit join`, docs/AUDIT-JOIN.md).
 *
 * byline sends each record's id upstream as `Audit-ID`; kube-apiserver logs
 * it as the event's `auditID`. A join reads the cluster's events (JSON
 * lines of audit.k8s.io/v1 Events, EventList batches, a whole-file
 * EventList, CloudWatch Logs exports; gzip or plain), reads byline's
 * ledger, pairs the two on the id and classifies every row:
 *
 *   matched   both sides, and they agree
 *   mismatch  both sides, but verb, object or response code differ
 *   lost      byline forwarded it (intent + result) but the cluster has no event
 *   bypass    the cluster's event was made with byline's shared credential
 *             and no byline record has its auditID
 *   forged    an event whose auditID is a byline id byline never sent: shaped
 *             like one (UUIDv7) but not in the ledger, a second request
 *             reusing a matched id, or the id of a request byline refused
 *   refused, aborted, pending   byline-only rows that need no cluster event
 *
 * The first four are flags. Everything held is bounded (events, records,
 * line length, string lengths); bad input is counted, never fatal.
 *
 * Use: bl_join_new(); bl_join_read_cluster() once or more;
 * bl_join_read_ledger(); bl_join_run(); then the rows and the summary.
 */
#ifndef BL_AUDIT_JOIN_H
#define BL_AUDIT_JOIN_H

#include <jansson.h>
#include <stdint.h>
#include "core/buf.h"

#define BL_JOIN_MAX_ITEMS   1000000u     /* default bound on events, and on records, held */
#define BL_JOIN_MAX_LINE    (16u << 20)  /* a longer input line is skipped as bad */
#define BL_JOIN_MAX_DOC     (256u << 20) /* a pretty-printed whole-file document */
#define BL_JOIN_MAX_STR     1024         /* strings kept from either side are cut here */
#define BL_JOIN_MAX_SHARED  64           /* shared-credential user names */
#define BL_JOIN_NO_TIME     INT64_MIN
#define BL_JOIN_NONE        UINT32_MAX

typedef enum {
    BL_JOIN_MATCHED = 0,
    BL_JOIN_MISMATCH,
    BL_JOIN_LOST,
    BL_JOIN_BYPASS,
    BL_JOIN_FORGED,
    BL_JOIN_REFUSED,  /* byline refused it itself: no event expected, none found */
    BL_JOIN_ABORTED,  /* byline stopped before the outcome; no event found */
    BL_JOIN_PENDING,  /* intent without a result yet (in flight); no event found */
    BL_JOIN_NKINDS
} bl_join_kind_t;

/* One byline request: its intent merged with its result or aborted entry.
 * Strings are owned by the join (NULL when absent). */
typedef struct {
    char *id, *actor, *action, *connection, *result, *reason;
    char *verb, *api_group, *namespace_, *resource, *subresource, *name;
    int status;              /* HTTP status the client got; 0 if none */
    int64_t t_us;            /* the request's ts (microseconds since the epoch) */
    unsigned char has_intent, has_result, aborted, truncated;
    uint32_t event;          /* matched event index, or BL_JOIN_NONE */
} bl_join_rec_t;

/* One cluster request: all the stages logged for one auditID and one
 * requestReceivedTimestamp, folded into the most complete one. */
typedef struct {
    char *audit_id, *user, *imp_user, *verb, *uri, *stage;
    char *api_group, *namespace_, *resource, *subresource, *name;
    int code;                /* responseStatus.code; 0 if none */
    int has_ref;             /* 1 if the event had an objectRef */
    int rank;                /* 1 RequestReceived, 2 ResponseStarted, 3 ResponseComplete/Panic */
    int64_t t_us;            /* requestReceivedTimestamp (else stageTimestamp) */
    uint32_t next;           /* next request with the same auditID, or BL_JOIN_NONE */
    unsigned char used;      /* paired with a byline record */
} bl_join_event_t;

/* One line of the timeline. `rec`/`ev` may be NULL (one side only). */
typedef struct {
    bl_join_kind_t kind;
    int64_t t_us;
    const bl_join_rec_t *rec;
    const bl_join_event_t *ev;
    char detail[320];        /* why it is flagged, or a note; "" if none */
} bl_join_row_t;

typedef struct {
    size_t records, events;            /* judged: inside the window */
    size_t kinds[BL_JOIN_NKINDS];
    size_t other_users;                /* events by users other than the shared ones */
    size_t received_only;              /* matched, but the cluster logged only RequestReceived */
    size_t records_outside;            /* requests in the ledger outside the window */
    size_t events_outside;             /* cluster requests (or, past the grace, event lines) outside it */
    size_t bad_lines, lines;           /* cluster input */
    size_t ledger_bad;                 /* ledger lines that were not entries */
    int64_t since_us, until_us;        /* the window judged */
    char first_bad[256];               /* where and why the first bad line was bad */
} bl_join_summary_t;

typedef struct {
    int64_t since_us, until_us;        /* BL_JOIN_NO_TIME: the cluster log's first/last event */
    int64_t grace_us;                  /* read this much beyond each end, so edges match */
    const char *const *shared_users;   /* --shared-user names (borrowed) */
    size_t nshared;
    size_t max_items;                  /* 0: BL_JOIN_MAX_ITEMS */
} bl_join_opts_t;

typedef struct bl_join_s bl_join_t;

/* Returns a new join (owned by the caller, bl_join_free), or NULL (OOM).
 * `o` is copied; the shared user names are borrowed for its lifetime. */
bl_join_t *bl_join_new(const bl_join_opts_t *o);
void bl_join_free(bl_join_t *j);

/* Reads cluster events from `fd` (plain or gzip; the fd is not closed),
 * `name` naming it in messages. Bad lines are counted in the summary.
 * Returns BL_OK, or BL_ERROR with the reason in err (read error, too many
 * events, a document too large). */
int bl_join_read_cluster(bl_join_t *j, int fd, const char *name, bl_buf_t *err);

/* Reads the ledger in audit directory `dir`, keeping the requests inside
 * the window (plus grace). Call after the cluster log: with an end of the
 * window not given, the cluster log's first or last event is that end (and
 * with no events either, nothing is read). Returns BL_OK, or BL_ERROR with
 * the reason (no ledger, unreadable, too many records). */
int bl_join_read_ledger(bl_join_t *j, const char *dir, bl_buf_t *err);

/* Pairs, classifies and orders the rows. Returns BL_OK, or BL_DECLINED when
 * no window can be judged (no --since/--until and no cluster events), or
 * BL_ERROR (OOM). */
int bl_join_run(bl_join_t *j);

/* The rows, oldest first (owned by the join). Returns their count. */
size_t bl_join_rows(const bl_join_t *j, const bl_join_row_t **rows);

/* The counts (owned by the join). */
const bl_join_summary_t *bl_join_summary(const bl_join_t *j);

/* The shared-credential user names in effect (given and learned). */
size_t bl_join_shared(const bl_join_t *j, const char *const **names);

/* Returns 1 if the kind is a flag (lost, bypass, forged, mismatch). */
int bl_join_flagged(bl_join_kind_t k);

/* Returns how many rows are flagged. */
size_t bl_join_nflagged(const bl_join_t *j);

/* Writes `us` as RFC 3339 UTC ("2026-06-15T12:04:01Z", with micro: ".123456Z"), "-" if unknown. */
void bl_join_format_time(int64_t us, int micro, char *out, size_t cap);

/* Returns the kind's name ("matched", "lost", ...). */
const char *bl_join_kind_name(bl_join_kind_t k);

/* Returns a new JSON object for one row / the summary (caller decrefs). */
json_t *bl_join_row_json(const bl_join_row_t *row);
json_t *bl_join_summary_json(const bl_join_t *j);

#endif
