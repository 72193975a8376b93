/*
 * store.h - the review store: requests a `review` rule held back, and the
 * human decisions on them (docs/POLICY.md, "Review").
 *
 * One SQLite file, DIR/state/reviews.db (mode 0600), shared by the gateway
 * (it creates pending reviews and reads approvals) and the `byline review`
 * CLI (it writes decisions). SQLite's file locking serialises the two
 * processes; a store handle also has a mutex, so the gateway's workers may
 * share one. Only requests that hit a review rule touch the store: it is
 * disk I/O on the worker's thread, bounded by a 2 s busy timeout.
 *
 * A review is keyed by a short id, "r-" + 10 base32 characters (50 bits from
 * RAND_bytes). It names one identity and one command: the command key is a
 * canonical string of everything that makes the request what it is
 * (connection, verb, object, exec argv, scale replicas...), and an approval
 * matches only a request with the same identity and the same key's SHA-256.
 */
#ifndef BL_REVIEW_STORE_H
#define BL_REVIEW_STORE_H

#include <stdint.h>
#include "core/buf.h"
#include "core/common.h"
#include "kube/reqinfo.h"

#define BL_REVIEW_ID_LEN      12          /* "r-" + 10 base32 */
#define BL_REVIEW_NAME_MAX    256         /* identity names (as JWT names) */
#define BL_REVIEW_ACTION_MAX  1024        /* the rendered command kept for people (truncated) */
#define BL_REVIEW_KEY_MAX     8192        /* a canonical command key; longer: no review possible */
#define BL_REVIEW_REASON_MAX  256
#define BL_REVIEW_FILE        "state/reviews.db"
#define BL_REVIEW_EXPIRE_MS   (3600u * 1000u)  /* pending reviews expire after 1 h by default */
#define BL_REVIEW_WINDOW_MS   (15u * 60u * 1000u) /* default approval window */
#define BL_REVIEW_MAX_PENDING 1000
#define BL_REVIEW_POLL_MS     2000        /* the gateway looks for new decisions this often */
#define BL_REVIEW_HOLD_POLL_MS 500        /* ...and for a held request's, this often */

typedef enum {
    BL_REVIEW_PENDING = 0,
    BL_REVIEW_APPROVED,
    BL_REVIEW_DENIED,
    BL_REVIEW_EXPIRED,
} bl_review_state_t;

/* One review, as stored. Strings are NUL-terminated and bounded. */
typedef struct {
    char id[BL_REVIEW_ID_LEN + 1];
    char identity[BL_REVIEW_NAME_MAX + 1];   /* who asked */
    char connection[128];
    char rule[64];                           /* the review rule that matched */
    char action[BL_REVIEW_ACTION_MAX + 1];   /* e.g. "kubectl delete pod x -n web" */
    char key_sha256[65];                     /* lower-case hex of the command key */
    char record[40];                         /* audit id of the request that opened it */
    int64_t requested_ms;                    /* epoch ms */
    bl_review_state_t state;
    char reviewer[BL_REVIEW_NAME_MAX + 1];   /* who decided; "" while pending or expired */
    int64_t decided_ms;                      /* 0 while pending */
    int64_t until_ms;                        /* approved: the window's end; else 0 */
    char reason[BL_REVIEW_REASON_MAX + 1];
} bl_review_t;

typedef struct bl_review_store_s bl_review_store_t;

/* Limits the gateway applies when it opens reviews (from the config). */
typedef struct {
    uint64_t expire_ms;      /* a pending review expires this long after it was asked */
    unsigned max_pending;    /* more pending reviews than this: refuse to open another */
} bl_review_limits_t;

/* Returns "pending", "approved", "denied" or "expired". */
const char *bl_review_state_word(bl_review_state_t s);

/*
 * Appends the canonical command key of request `k` on connection `conn`:
 * "byline-review-v1" then one "\n<field>=<len>:<value>" per field (argv as
 * one length-prefixed word each), so that no two commands share a key.
 * Returns BL_OK, or BL_ERROR if `out` is full.
 */
int bl_review_key(const bl_kreq_t *k, const char *conn, bl_buf_t *out);

/* Writes the lower-case hex SHA-256 of key[0..n) and a NUL into hex[65]. */
void bl_review_key_hash(const char *key, size_t n, char hex[65]);

/* Writes a fresh review id ("r-" + 10 base32) and a NUL into id. BL_OK or
 * BL_ERROR when the random generator fails. */
int bl_review_new_id(char id[BL_REVIEW_ID_LEN + 1]);

/* Returns 1 if s looks like a review id. */
int bl_review_id_ok(const char *s);

/*
 * Opens (creating, mode 0600; the directory 0700 if missing) the store of
 * config directory `dir`: dir/state/reviews.db. Returns the handle (close
 * with bl_review_close) or NULL with the reason appended to err.
 */
bl_review_store_t *bl_review_open(const char *dir, bl_buf_t *err);
void bl_review_close(bl_review_store_t *st);

/*
 * The gateway's question for a request a review rule matched. `want`
 * carries identity, connection, rule, action, key_sha256 and record; `key`
 * is the command key itself (kept for `byline review show`).
 * Expires stale pending reviews first. Returns:
 *   BL_OK       an approval for this identity and key is active: *out is it;
 *   BL_DECLINED not approved: *out is the pending review (reused if one is
 *               pending for this identity and key, else new);
 *   BL_ERROR    store failure, or lim->max_pending reached (err says).
 */
int bl_review_request(bl_review_store_t *st, const bl_review_t *want, const char *key, int64_t now_ms,
                      const bl_review_limits_t *lim, bl_review_t *out, bl_buf_t *err);

/*
 * A reviewer's decision on pending review `id`: approve (window_ms from
 * now) or deny (with reason). Refuses (BL_DECLINED, err says why) an
 * unknown id, a review that is not pending or has expired (expire_ms after
 * it was asked), and a reviewer who is the identity that asked. Returns
 * BL_OK with *out the decided review, or BL_ERROR on store failure.
 */
int bl_review_decide(bl_review_store_t *st, const char *id, const char *reviewer, int approve,
                     uint64_t window_ms, const char *reason, int64_t now_ms, uint64_t expire_ms,
                     bl_review_t *out, bl_buf_t *err);

/* Reads review `id`. BL_OK, BL_DECLINED if there is none, BL_ERROR. */
int bl_review_get(bl_review_store_t *st, const char *id, bl_review_t *out, bl_buf_t *err);

/* Calls fn for each review, oldest first: unless `all`, only pending ones
 * younger than expire_ms and approvals whose window is open. A pending
 * review past expire_ms is shown as expired (the store is not written).
 * fn returns BL_OK to go on. Returns the count visited, or BL_ERROR. */
long bl_review_list(bl_review_store_t *st, int all, int64_t now_ms, uint64_t expire_ms,
                    int (*fn)(const bl_review_t *rv, void *arg), void *arg, bl_buf_t *err);

/*
 * For the gateway's ledger: marks pending reviews older than expire_ms
 * expired, then claims up to `cap` decided or expired reviews whose
 * outcome the ledger has not seen yet (each is claimed once, whichever
 * worker asks). Returns the count written to out[], or BL_ERROR.
 */
long bl_review_take_outcomes(bl_review_store_t *st, int64_t now_ms, uint64_t expire_ms,
                             bl_review_t *out, size_t cap, bl_buf_t *err);

/* Appends the ledger's notice entry for a decided review (canonical JSON,
 * docs/AUDIT-FORMAT.md "review notices"), written at now_ms. BL_OK or BL_ERROR. */
int bl_review_notice_json(const bl_review_t *rv, int64_t now_ms, bl_buf_t *out);

#endif
