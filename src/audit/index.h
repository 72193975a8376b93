/*
 * index.h - the query index: AUDIT_DIR/index.sqlite, one row per request
 * (intent and result merged, merge.h) and one per gateway notice, so that
 * `byline audit query` filters without reading the whole ledger each time.
 *
 * The index is derived data. The ledger stays the only source of truth:
 * the index is not chained, not signed and not tamper-evident; evidence
 * comes from `byline audit verify` on the ledger. byline serve never
 * writes the index (it stays off the request path); each query brings it
 * up to date first, from where the last update stopped:
 *
 *  - it remembers the last line it read (segment, offset, length, leaf
 *    hash), the next sequence number and the last entry's leaf hash;
 *  - an update seeks to that line, checks its hash, and reads on from
 *    there, into later segments; each new entry must carry the next seq
 *    and a prev equal to the last leaf hash;
 *  - it rebuilds from scratch when the index is missing, unreadable, of
 *    another schema, or does not match the ledger (replaced, rotated away,
 *    shorter than the recorded offset, a different line or chain there);
 *  - it writes in batches of BL_INDEX_BATCH lines, one transaction each,
 *    the position with them, so a crash leaves a consistent index;
 *  - SQLite's lock (BEGIN IMMEDIATE, busy timeout, WAL) keeps concurrent
 *    queries from indexing the same lines twice.
 */
#ifndef BL_AUDIT_INDEX_H
#define BL_AUDIT_INDEX_H

#include <stdint.h>
#include "core/buf.h"

#define BL_INDEX_FILE       "index.sqlite"
#define BL_INDEX_BATCH      4096      /* ledger lines per transaction */
#define BL_INDEX_BUSY_MS    10000     /* wait this long for another writer */
#define BL_INDEX_MAX_ERRORS 1000      /* reader errors in one update before giving up */

typedef struct bl_index_s bl_index_t;

/* What to select. NULL strings match anything; a value with '*', '?' or
 * '[' is a GLOB pattern (case-sensitive), else it must match exactly. */
typedef struct {
    const char *actor;
    const char *connection;
    const char *verb;
    const char *namespace_;
    const char *resource;       /* "pods", or "pods/exec" for a subresource */
    const char *result;         /* allowed denied unauthenticated error aborted pending */
    const char *id;
    int64_t since_us;           /* ts >= since (INT64_MIN: no bound) */
    int64_t until_us;           /* ts < until (INT64_MAX: no bound) */
    uint64_t limit;             /* the newest N matches (0: all) */
    int notices;                /* 1: gateway notices too (they match time filters only) */
} bl_index_filter_t;

/* Sets up a filter that matches every request. */
void bl_index_filter_init(bl_index_filter_t *f);

/* What an update did. */
typedef struct {
    int rebuilt;                /* 1: the index was (re)built from scratch */
    char why[256];              /* why it was rebuilt, for people */
    uint64_t lines;             /* ledger lines read */
    uint64_t entries;           /* entries indexed */
    uint64_t skipped;           /* lines that were not ledger lines, and reader errors */
    uint64_t batches;           /* transactions committed */
    char warning[256];          /* the first reader error, if any */
} bl_index_stats_t;

/*
 * Opens (creating, mode 0600) AUDIT_DIR/index.sqlite; an unreadable or
 * foreign file there is replaced. With `path` NULL the index lives in the
 * audit directory; ":memory:" builds a throwaway one (for a reader who
 * cannot write the directory). Returns the index (free it with
 * bl_index_close) or NULL with the reason in `err`.
 */
bl_index_t *bl_index_open(const char *audit_dir, const char *path, bl_buf_t *err);

/* Empties the index so that the next update rebuilds it. BL_OK or BL_ERROR. */
int bl_index_reset(bl_index_t *ix, bl_buf_t *err);

/*
 * Brings the index up to date with the ledger (see above). `st` may be
 * NULL. Returns BL_OK (also when there is no ledger yet: then the index
 * is empty), or BL_ERROR with the reason in `err`.
 */
int bl_index_update(bl_index_t *ix, bl_index_stats_t *st, bl_buf_t *err);

/* Called with each selected record, oldest first: its merged JSON
 * (canonical, RFC 8785; valid during the call). Return BL_OK to go on. */
typedef int (*bl_index_row_fn)(void *arg, const char *json, size_t len);

/*
 * Calls `fn` for the records `f` selects, oldest first (the newest
 * f->limit of them when set). If `matched` is not NULL it gets how many
 * records match in all. Returns the number of records passed to fn, or
 * BL_ERROR with the reason in `err` (or what fn returned, if not BL_OK).
 */
long long bl_index_query(bl_index_t *ix, const bl_index_filter_t *f, bl_index_row_fn fn, void *arg,
                         uint64_t *matched, bl_buf_t *err);

/* Closes the database. NULL is fine. */
void bl_index_close(bl_index_t *ix);

#endif
