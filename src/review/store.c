/*
 * store.c - the review store on SQLite (store.h).
 *
 * Every operation that reads then writes runs in one BEGIN IMMEDIATE
 * transaction, so the gateway's workers and a concurrent `byline review`
 * never both decide or both open the same review.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <jansson.h>
#include <sqlite3.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "audit/jcs.h"
#include "review/store.h"

#define BL_REVIEW_BUSY_MS 2000
#define BL_REVIEW_COLS "id, identity, connection, rule, action, key_sha256, record, requested_ms, state," \
                       " reviewer, decided_ms, until_ms, reason"

struct bl_review_store_s {
    sqlite3 *db;
    pthread_mutex_t lock;   /* one transaction at a time on this handle */
};

static const char *const bl_review_states[] = { "pending", "approved", "denied", "expired" };

static const char bl_review_schema[] =
    "CREATE TABLE IF NOT EXISTS reviews(id TEXT PRIMARY KEY, identity TEXT NOT NULL,"
    " connection TEXT NOT NULL, rule TEXT NOT NULL, action TEXT NOT NULL, command_key TEXT NOT NULL,"
    " key_sha256 TEXT NOT NULL, record TEXT NOT NULL, requested_ms INTEGER NOT NULL, state TEXT NOT NULL,"
    " reviewer TEXT NOT NULL DEFAULT '', decided_ms INTEGER NOT NULL DEFAULT 0,"
    " until_ms INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
    " logged INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX IF NOT EXISTS reviews_match ON reviews(identity, key_sha256, state);"
    "CREATE INDEX IF NOT EXISTS reviews_age ON reviews(state, requested_ms);"
    "CREATE INDEX IF NOT EXISTS reviews_logged ON reviews(logged);"
    "PRAGMA user_version = 1;"
    /* WAL: the CLI reads while the gateway writes, and a commit costs no
     * fsync (NORMAL): a decision lost to a power cut is asked for again. */
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

const char *bl_review_state_word(bl_review_state_t s)
{
    return (unsigned)s < BL_ARRAY_LEN(bl_review_states) ? bl_review_states[s] : "unknown";
}

static bl_review_state_t bl_review_state_parse(const char *s)
{
    for (size_t i = 0; s && i < BL_ARRAY_LEN(bl_review_states); i++)
        if (!strcmp(s, bl_review_states[i]))
            return (bl_review_state_t)i;
    return BL_REVIEW_EXPIRED; /* unknown words count as over */
}

/* ---- the command key ---- */

/* Appends "\n<name>=<len>:<value>". */
static int bl_key_field(bl_buf_t *out, const char *name, const char *v, size_t n)
{
    int rc = bl_buf_printf(out, "\n%s=%zu:", name, n);
    return rc | bl_buf_append(out, v, n);
}

static int bl_key_str(bl_buf_t *out, const char *name, const char *v)
{
    return bl_key_field(out, name, v, strlen(v));
}

/* The verb the key names: exec, attach and port-forward are one command
 * whether kubectl opens them with a WebSocket GET or a SPDY POST (1.30+
 * tries the first, then falls back), so both count as "create". */
static const char *bl_review_verb(const bl_kreq_t *k)
{
    const char *sub = k->subresource;
    if (k->is_resource && (!strcmp(sub, "exec") || !strcmp(sub, "attach") || !strcmp(sub, "portforward")))
        return "create";
    return k->verb;
}

int bl_review_key(const bl_kreq_t *k, const char *conn, bl_buf_t *out)
{
    size_t mark = out->len;
    int rc = bl_buf_puts(out, "byline-review-v1");
    rc |= bl_key_str(out, "connection", conn ? conn : "");
    rc |= bl_key_str(out, "verb", bl_review_verb(k));
    rc |= bl_key_str(out, "resource", k->is_resource ? "1" : "0");
    rc |= bl_key_str(out, "apiGroup", k->api_group);
    rc |= bl_key_str(out, "kind", k->resource);
    rc |= bl_key_str(out, "subresource", k->subresource);
    rc |= bl_key_str(out, "namespace", k->namespace_);
    rc |= bl_key_str(out, "name", k->name);
    rc |= bl_key_str(out, "path", k->is_resource ? "" : k->path);
    rc |= bl_key_str(out, "container", k->container);
    rc |= bl_buf_printf(out, "\nstdio=%d%d%d%d", k->stdin_, k->stdout_, k->stderr_, k->tty);
    rc |= bl_buf_printf(out, "\nargv=%zu", k->argc);
    for (size_t i = 0; i < k->argc; i++)
        rc |= bl_key_str(out, "arg", k->argv_buf + k->argv_off[i]);
    rc |= bl_key_str(out, "labelSelector", k->label_selector);
    rc |= bl_key_str(out, "fieldSelector", k->field_selector);
    rc |= bl_key_str(out, "dryRun", k->dry_run);
    rc |= bl_key_str(out, "patchType", k->patch_type);
    rc |= bl_key_str(out, "bodyKind", k->body_kind);
    rc |= bl_buf_printf(out, "\nreplicas=%ld\nrestart=%d\nforce=%d", k->replicas, k->body_restart, k->force);
    rc |= bl_buf_printf(out, "\nports=%zu", k->nports);
    for (size_t i = 0; i < k->nports && i < BL_KREQ_MAX_PORTS; i++)
        rc |= bl_buf_printf(out, ":%d", k->ports[i]);
    if (rc || k->truncated || k->argv_truncated) { /* a truncated request has no exact key */
        out->len = mark;
        return BL_ERROR;
    }
    return BL_OK;
}

void bl_review_key_hash(const char *key, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char digits[] = "0123456789abcdef";
    if (EVP_Digest(key, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        memset(md, 0, sizeof(md)); /* only on allocation failure; matches nothing real */
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

/* ---- ids ---- */

static const char bl_b32[] = "0123456789abcdefghjkmnpqrstvwxyz"; /* no i l o u: easy to read aloud */

int bl_review_new_id(char id[BL_REVIEW_ID_LEN + 1])
{
    unsigned char r[8];
    uint64_t v = 0;
    if (RAND_bytes(r, sizeof(r)) != 1)
        return BL_ERROR;
    for (size_t i = 0; i < sizeof(r); i++)
        v = v << 8 | r[i];
    id[0] = 'r';
    id[1] = '-';
    for (int i = 0; i < 10; i++, v >>= 5)
        id[2 + i] = bl_b32[v & 31];
    id[BL_REVIEW_ID_LEN] = '\0';
    return BL_OK;
}

int bl_review_id_ok(const char *s)
{
    if (s == NULL || strlen(s) != BL_REVIEW_ID_LEN || s[0] != 'r' || s[1] != '-')
        return 0;
    for (int i = 2; i < BL_REVIEW_ID_LEN; i++)
        if (s[i] == '\0' || strchr(bl_b32, s[i]) == NULL)
            return 0;
    return 1;
}

/* ---- opening ---- */

/* Appends "<what>: <sqlite's message>" to err. Returns BL_ERROR. */
static int bl_review_sqlerr(bl_review_store_t *st, const char *what, bl_buf_t *err)
{
    if (err)
        bl_buf_printf(err, "review store: %s: %s", what, st && st->db ? sqlite3_errmsg(st->db) : "out of memory");
    return BL_ERROR;
}

/* Creates dir/state (0700) if missing and writes dir/state/reviews.db into path. */
static int bl_review_path(const char *dir, char *path, size_t cap, bl_buf_t *err)
{
    char sdir[4096];
    if ((size_t)snprintf(sdir, sizeof(sdir), "%s/state", dir) >= sizeof(sdir) ||
        (size_t)snprintf(path, cap, "%s/%s", dir, BL_REVIEW_FILE) >= cap) {
        bl_buf_printf(err, "review store: the path under %s is too long", dir);
        return BL_ERROR;
    }
    if (mkdir(sdir, 0700) != 0 && errno != EEXIST) {
        bl_buf_printf(err, "review store: cannot create %s: %s", sdir, strerror(errno));
        return BL_ERROR;
    }
    return BL_OK;
}

bl_review_store_t *bl_review_open(const char *dir, bl_buf_t *err)
{
    char path[4200];
    bl_review_store_t *st = NULL;
    if (bl_review_path(dir, path, sizeof(path), err) != BL_OK || (st = calloc(1, sizeof(*st))) == NULL)
        goto fail;
    pthread_mutex_init(&st->lock, NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600); /* 0600 before SQLite sees it */
    if (fd < 0) {
        bl_buf_printf(err, "review store: cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(st->db, BL_REVIEW_BUSY_MS) != SQLITE_OK ||
        sqlite3_exec(st->db, bl_review_schema, NULL, NULL, NULL) != SQLITE_OK) {
        bl_review_sqlerr(st, path, err);
        goto fail;
    }
    return st;
fail:
    bl_review_close(st);
    return NULL;
}

void bl_review_close(bl_review_store_t *st)
{
    if (st == NULL)
        return;
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ---- rows ---- */

static void bl_col(sqlite3_stmt *s, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Reads a row selected with BL_REVIEW_COLS into *rv. */
static void bl_review_row(sqlite3_stmt *s, bl_review_t *rv)
{
    memset(rv, 0, sizeof(*rv));
    bl_col(s, 0, rv->id, sizeof(rv->id));
    bl_col(s, 1, rv->identity, sizeof(rv->identity));
    bl_col(s, 2, rv->connection, sizeof(rv->connection));
    bl_col(s, 3, rv->rule, sizeof(rv->rule));
    bl_col(s, 4, rv->action, sizeof(rv->action));
    bl_col(s, 5, rv->key_sha256, sizeof(rv->key_sha256));
    bl_col(s, 6, rv->record, sizeof(rv->record));
    rv->requested_ms = sqlite3_column_int64(s, 7);
    rv->state = bl_review_state_parse((const char *)sqlite3_column_text(s, 8));
    bl_col(s, 9, rv->reviewer, sizeof(rv->reviewer));
    rv->decided_ms = sqlite3_column_int64(s, 10);
    rv->until_ms = sqlite3_column_int64(s, 11);
    bl_col(s, 12, rv->reason, sizeof(rv->reason));
}

/* Binds "?N" parameters from a format: 's' text, 'i' int64. */
static int bl_bind(sqlite3_stmt *s, const char *fmt, va_list ap)
{
    int rc = SQLITE_OK;
    for (int i = 1; *fmt && rc == SQLITE_OK; fmt++, i++) {
        if (*fmt == 's')
            rc = sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
    }
    return rc;
}

/*
 * Runs one statement with parameters. With `rv`, reads the first row into
 * it. Returns 1 if a row was read, 0 if none (or rv NULL and it ran), or
 * BL_ERROR (err says).
 */
static int bl_run(bl_review_store_t *st, bl_review_t *rv, bl_buf_t *err, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    va_list ap;
    int rc;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return bl_review_sqlerr(st, "prepare", err);
    va_start(ap, fmt);
    rc = bl_bind(s, fmt, ap);
    va_end(ap);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && rv)
        bl_review_row(s, rv);
    int out = rc == SQLITE_ROW ? (rv != NULL) : rc == SQLITE_DONE ? 0 : bl_review_sqlerr(st, "query", err);
    sqlite3_finalize(s);
    return out;
}

/* Begins an immediate transaction under the handle's lock. BL_OK or BL_ERROR (unlocked). */
static int bl_begin(bl_review_store_t *st, bl_buf_t *err)
{
    pthread_mutex_lock(&st->lock);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
        return BL_OK;
    bl_review_sqlerr(st, "begin", err);
    pthread_mutex_unlock(&st->lock);
    return BL_ERROR;
}

/* Commits (rc >= 0 and commit works) or rolls back; unlocks. Returns rc, or BL_ERROR. */
static int bl_end(bl_review_store_t *st, int rc, bl_buf_t *err)
{
    if (rc >= 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = bl_review_sqlerr(st, "commit", err);
    if (rc < 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int bl_expire(bl_review_store_t *st, int64_t now_ms, uint64_t expire_ms, bl_buf_t *err)
{
    return bl_run(st, NULL, err, "UPDATE reviews SET state = 'expired', logged = 0, decided_ms = ?1"
                  " WHERE state = 'pending' AND requested_ms <= ?2", "ii", now_ms, now_ms - (int64_t)expire_ms);
}

/* ---- the gateway's side ---- */

/* Inserts `want` as a new pending review; fills *out. BL_DECLINED (the
 * caller's "pending") or BL_ERROR. */
static int bl_review_insert(bl_review_store_t *st, const bl_review_t *want, const char *key, int64_t now_ms,
                            bl_review_t *out, bl_buf_t *err)
{
    *out = *want;
    out->state = BL_REVIEW_PENDING;
    out->requested_ms = now_ms;
    out->reviewer[0] = out->reason[0] = '\0';
    out->decided_ms = out->until_ms = 0;
    for (int tries = 0; tries < 4; tries++) {
        if (bl_review_new_id(out->id) != BL_OK) {
            bl_buf_printf(err, "review store: no random bytes for an id");
            return BL_ERROR;
        }
        int rc = bl_run(st, NULL, err, "INSERT OR IGNORE INTO reviews(id, identity, connection, rule, action,"
                        " command_key, key_sha256, record, requested_ms, state) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,'pending')",
                        "ssssssssi", out->id, want->identity, want->connection, want->rule, want->action, key,
                        want->key_sha256, want->record, now_ms);
        if (rc < 0)
            return BL_ERROR;
        if (sqlite3_changes(st->db) == 1)
            return BL_DECLINED;
    }
    bl_buf_printf(err, "review store: no free review id");
    return BL_ERROR;
}

int bl_review_request(bl_review_store_t *st, const bl_review_t *want, const char *key, int64_t now_ms,
                      const bl_review_limits_t *lim, bl_review_t *out, bl_buf_t *err)
{
    int rc;
    if (bl_begin(st, err) != BL_OK)
        return BL_ERROR;
    if ((rc = bl_expire(st, now_ms, lim->expire_ms, err)) < 0)
        goto end;
    rc = bl_run(st, out, err, "SELECT " BL_REVIEW_COLS " FROM reviews WHERE identity = ?1 AND key_sha256 = ?2"
                " AND state = 'approved' AND until_ms > ?3 ORDER BY until_ms DESC LIMIT 1",
                "ssi", want->identity, want->key_sha256, now_ms);
    if (rc != 0) {
        rc = rc == 1 ? BL_OK : BL_ERROR;
        goto end;
    }
    rc = bl_run(st, out, err, "SELECT " BL_REVIEW_COLS " FROM reviews WHERE identity = ?1 AND key_sha256 = ?2"
                " AND state = 'pending' ORDER BY requested_ms LIMIT 1", "ss", want->identity, want->key_sha256);
    if (rc != 0) {
        rc = rc == 1 ? 1 : BL_ERROR; /* commit: the expiry above stays */
        goto end;
    }
    sqlite3_stmt *s = NULL;
    int64_t npending = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM reviews WHERE state = 'pending'", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        npending = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (npending >= (int64_t)lim->max_pending) {
        bl_buf_printf(err, "%lld reviews are pending already (policy.review_max_pending)", (long long)npending);
        rc = BL_ERROR;
        goto end;
    }
    rc = bl_review_insert(st, want, key, now_ms, out, err) == BL_DECLINED ? 1 : BL_ERROR;
end:
    rc = bl_end(st, rc, err);
    return rc == 1 ? BL_DECLINED : rc;
}

/* Returns 1 if no outcome waits for the ledger and no pending review is
 * due to expire, else 0 (also when the store cannot say: look closer). */
static int bl_review_idle(bl_review_store_t *st, int64_t now_ms, uint64_t expire_ms)
{
    sqlite3_stmt *s = NULL;
    int idle = 0;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "SELECT EXISTS(SELECT 1 FROM reviews WHERE state = 'pending' AND requested_ms <= ?1)"
                           " OR EXISTS(SELECT 1 FROM reviews WHERE logged = 0)", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(s, 1, now_ms - (int64_t)expire_ms) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        idle = sqlite3_column_int(s, 0) == 0;
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return idle;
}

long bl_review_take_outcomes(bl_review_store_t *st, int64_t now_ms, uint64_t expire_ms, bl_review_t *out,
                             size_t cap, bl_buf_t *err)
{
    long n = 0;
    sqlite3_stmt *s = NULL;
    if (bl_review_idle(st, now_ms, expire_ms) == 1)
        return 0; /* the usual poll: a read, no write transaction */
    if (bl_begin(st, err) != BL_OK)
        return BL_ERROR;
    if (bl_expire(st, now_ms, expire_ms, err) < 0) {
        n = BL_ERROR;
        goto end;
    }
    if (sqlite3_prepare_v2(st->db, "SELECT " BL_REVIEW_COLS " FROM reviews WHERE logged = 0 ORDER BY decided_ms"
                           " LIMIT ?1", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(s, 1, (int64_t)cap) != SQLITE_OK) {
        n = bl_review_sqlerr(st, "outcomes", err);
        goto end;
    }
    while ((size_t)n < cap && sqlite3_step(s) == SQLITE_ROW)
        bl_review_row(s, &out[n++]);
    for (long i = 0; i < n; i++)
        if (bl_run(st, NULL, err, "UPDATE reviews SET logged = 1 WHERE id = ?1", "s", out[i].id) < 0) {
            n = BL_ERROR;
            break;
        }
end:
    sqlite3_finalize(s);
    return bl_end(st, (int)n, err);
}

/* ---- the reviewer's side ---- */

/* Refuses a decision on rv (BL_DECLINED with the reason), or BL_OK. */
static int bl_review_decidable(const bl_review_t *rv, const char *reviewer, int64_t now_ms, uint64_t expire_ms,
                               bl_buf_t *err)
{
    if (rv->state == BL_REVIEW_PENDING && rv->requested_ms <= now_ms - (int64_t)expire_ms) {
        bl_buf_printf(err, "review %s has expired (it was pending longer than policy.review_expire); the "
                      "agent must ask again", rv->id);
        return BL_DECLINED;
    }
    if (rv->state != BL_REVIEW_PENDING) {
        bl_buf_printf(err, "review %s is %s already%s%s", rv->id, bl_review_state_word(rv->state),
                      rv->reviewer[0] ? " by " : "", rv->reviewer);
        return BL_DECLINED;
    }
    if (!strcmp(rv->identity, reviewer)) {
        bl_buf_printf(err, "%s cannot decide review %s: it is that identity's own request", reviewer, rv->id);
        return BL_DECLINED;
    }
    return BL_OK;
}

int bl_review_decide(bl_review_store_t *st, const char *id, const char *reviewer, int approve, uint64_t window_ms,
                     const char *reason, int64_t now_ms, uint64_t expire_ms, bl_review_t *out, bl_buf_t *err)
{
    int rc;
    if (bl_begin(st, err) != BL_OK)
        return BL_ERROR;
    rc = bl_run(st, out, err, "SELECT " BL_REVIEW_COLS " FROM reviews WHERE id = ?1", "s", id);
    if (rc == 0) {
        bl_buf_printf(err, "no review %s", id);
        rc = BL_DECLINED;
    }
    if (rc == 1)
        rc = bl_review_decidable(out, reviewer, now_ms, expire_ms, err);
    if (rc == BL_OK) {
        out->state = approve ? BL_REVIEW_APPROVED : BL_REVIEW_DENIED;
        out->decided_ms = now_ms;
        out->until_ms = approve ? now_ms + (int64_t)window_ms : 0;
        snprintf(out->reviewer, sizeof(out->reviewer), "%s", reviewer);
        snprintf(out->reason, sizeof(out->reason), "%s", reason ? reason : "");
        rc = bl_run(st, NULL, err, "UPDATE reviews SET state = ?1, reviewer = ?2, decided_ms = ?3, until_ms = ?4,"
                    " reason = ?5, logged = 0 WHERE id = ?6 AND state = 'pending'", "ssiiss",
                    bl_review_state_word(out->state), out->reviewer, now_ms, out->until_ms, out->reason, id);
    }
    return bl_end(st, rc, err);
}

int bl_review_get(bl_review_store_t *st, const char *id, bl_review_t *out, bl_buf_t *err)
{
    pthread_mutex_lock(&st->lock);
    int rc = bl_run(st, out, err, "SELECT " BL_REVIEW_COLS " FROM reviews WHERE id = ?1", "s", id);
    pthread_mutex_unlock(&st->lock);
    return rc == 1 ? BL_OK : rc == 0 ? BL_DECLINED : BL_ERROR;
}

long bl_review_list(bl_review_store_t *st, int all, int64_t now_ms, uint64_t expire_ms,
                    int (*fn)(const bl_review_t *rv, void *arg), void *arg, bl_buf_t *err)
{
    sqlite3_stmt *s = NULL;
    bl_review_t rv;
    long n = 0;
    int rc = SQLITE_DONE;
    int64_t stale = now_ms - (int64_t)expire_ms;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, all ? "SELECT " BL_REVIEW_COLS " FROM reviews WHERE ?1 = ?1 AND ?2 = ?2"
                                         " ORDER BY requested_ms, id"
                                       : "SELECT " BL_REVIEW_COLS " FROM reviews WHERE (state = 'pending' AND"
                                         " requested_ms > ?2) OR (state = 'approved' AND until_ms > ?1)"
                                         " ORDER BY requested_ms, id",
                           -1, &s, NULL) != SQLITE_OK || sqlite3_bind_int64(s, 1, now_ms) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, stale) != SQLITE_OK) {
        n = bl_review_sqlerr(st, "list", err);
        goto end;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        bl_review_row(s, &rv);
        if (rv.state == BL_REVIEW_PENDING && rv.requested_ms <= stale)
            rv.state = BL_REVIEW_EXPIRED; /* the gateway records it so on its next look */
        n++;
        if (fn(&rv, arg) != BL_OK)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        n = bl_review_sqlerr(st, "list", err);
end:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return n;
}

/* ---- the ledger's notice ---- */

/* Returns a new JSON string of ms as RFC 3339 UTC with microseconds. */
static json_t *bl_review_time(int64_t ms)
{
    char s[48];
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    gmtime_r(&t, &tm);
    size_t n = strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(s + n, sizeof(s) - n, ".%06dZ", (int)(ms % 1000) * 1000);
    return json_string(s);
}

int bl_review_notice_json(const bl_review_t *rv, int64_t now_ms, bl_buf_t *out)
{
    char event[32], detail[2048];
    snprintf(event, sizeof(event), "review-%s", bl_review_state_word(rv->state));
    snprintf(detail, sizeof(detail), "review %s of %s's \"%.300s\" %s%s%s", rv->id, rv->identity, rv->action,
             bl_review_state_word(rv->state), rv->reviewer[0] ? " by " : "", rv->reviewer);
    json_t *o = json_object();
    int rc = json_object_set_new(o, "kind", json_string("notice"));
    rc |= json_object_set_new(o, "event", json_string(event));
    rc |= json_object_set_new(o, "detail", json_string(detail));
    rc |= json_object_set_new(o, "review", json_string(rv->id));
    rc |= json_object_set_new(o, "actor", json_string(rv->identity));
    rc |= json_object_set_new(o, "action", json_string(rv->action));
    rc |= json_object_set_new(o, "connection", json_string(rv->connection));
    rc |= json_object_set_new(o, "rule", json_string(rv->rule));
    rc |= json_object_set_new(o, "command_sha256", json_string(rv->key_sha256));
    rc |= json_object_set_new(o, "request_id", json_string(rv->record));
    rc |= json_object_set_new(o, "requested", bl_review_time(rv->requested_ms));
    rc |= json_object_set_new(o, "decided", bl_review_time(rv->decided_ms));
    rc |= json_object_set_new(o, "ts", bl_review_time(now_ms));
    rc |= json_object_set_new(o, "version", json_string(BL_VERSION));
    if (rv->reviewer[0])
        rc |= json_object_set_new(o, "reviewer", json_string(rv->reviewer));
    if (rv->state == BL_REVIEW_APPROVED)
        rc |= json_object_set_new(o, "until", bl_review_time(rv->until_ms));
    if (rv->reason[0])
        rc |= json_object_set_new(o, "reason", json_string(rv->reason));
    rc = rc || o == NULL ? BL_ERROR : bl_jcs_dump(o, out);
    json_decref(o);
    return rc;
}
