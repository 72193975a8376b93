/* index.c - the query index in SQLite (index.h): open, update, select. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/index.h"
#include "audit/jcs.h"
#include "audit/merge.h"
#include "audit/merkle.h"
#include "audit/reader.h"
#include "audit/when.h"

#define BL_INDEX_SCHEMA  2           /* PRAGMA user_version (set in bl_index_schema); another is rebuilt */
#define BL_INDEX_STR(x)  #x
#define BL_INDEX_XSTR(x) BL_INDEX_STR(x) /* BL_INDEX_SCHEMA in SQL */
#define BL_INDEX_RAW_MAX (20u << 20) /* one merged record: two entries of at most 8 MiB each */
#define BL_INDEX_PASSES  8           /* rebuilds / restarts in one update before giving up */
#define BL_INDEX_SLOTS   (4 * BL_INDEX_BATCH) /* rows a batch keeps in memory (a power of two) */

/* Where reading stopped: the last line read, and the chain after it. */
typedef struct {
    int valid;              /* 0: nothing indexed yet */
    unsigned seg;
    uint64_t off, len;      /* the last line read: segment, offset, length */
    uint64_t lineno;        /* its 1-based line number: resuming jumps there, not counting lines */
    char line_hash[48];     /* base64 SHA-256(0x00 || that line) */
    int chained;            /* 1: an entry was read; seq and leaf_hash are set */
    uint64_t seq;           /* the next entry's seq */
    char leaf_hash[48];     /* base64 leaf hash of the last entry: the next prev */
} bl_index_pos_t;

/* A row the batch is building: an intent and, often, its result come in
 * the same batch, so the row is written once, not written and rewritten. */
typedef struct {
    char id[40];
    uint64_t seq;           /* the seq of its first entry */
    json_t *rec;            /* NULL: a free slot */
} bl_index_slot_t;

struct bl_index_s {
    sqlite3 *db;
    char *dir;
    char path[4096];
    int memory;             /* 1: ":memory:" */
    int corrupt;            /* the last SQLite error said the file is damaged */
    int replaced;           /* the file there was damaged or of another layout */
    sqlite3_stmt *get;      /* seq, raw of a request id */
    sqlite3_stmt *put;      /* one record row */
    bl_index_slot_t *slots; /* this batch's rows by id, written at its end */
    size_t used;
};

static int bl_index_flush(bl_index_t *ix, int write, bl_buf_t *err);

static const char bl_index_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS pos(one INTEGER PRIMARY KEY CHECK (one = 1), seg INTEGER NOT NULL,"
    " off INTEGER NOT NULL, len INTEGER NOT NULL, line_hash TEXT NOT NULL, chained INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, leaf_hash TEXT NOT NULL, lineno INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS records(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, kind TEXT NOT NULL,"
    " ts TEXT, ts_us INTEGER, actor TEXT, groups TEXT, connection TEXT, verb TEXT, resource TEXT,"
    " subresource TEXT, namespace TEXT, name TEXT, action TEXT, result TEXT, status INTEGER,"
    " duration_us INTEGER, source_ip TEXT, raw TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS records_ts ON records(ts_us);"
    "CREATE INDEX IF NOT EXISTS records_actor ON records(actor);"
    "CREATE INDEX IF NOT EXISTS records_connection ON records(connection);"
    "CREATE INDEX IF NOT EXISTS records_verb ON records(verb);"
    "CREATE INDEX IF NOT EXISTS records_namespace ON records(namespace);"
    "CREATE INDEX IF NOT EXISTS records_resource ON records(resource, subresource);"
    "CREATE INDEX IF NOT EXISTS records_result ON records(result);";

static const char bl_index_put_sql[] =
    "INSERT OR REPLACE INTO records(seq, id, kind, ts, ts_us, actor, groups, connection, verb, resource,"
    " subresource, namespace, name, action, result, status, duration_us, source_ip, raw)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/* Records SQLite's last error in `err` (prefixed by `what`) and notes a
 * damaged file. Returns BL_ERROR. */
static int bl_index_sqlerr(bl_index_t *ix, const char *what, bl_buf_t *err)
{
    int code = sqlite3_errcode(ix->db) & 0xff;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
        ix->corrupt = 1;
    bl_buf_printf(err, "%s: %s: %s", ix->path, what, sqlite3_errmsg(ix->db));
    return BL_ERROR;
}

static int bl_index_exec(bl_index_t *ix, const char *sql, bl_buf_t *err)
{
    return sqlite3_exec(ix->db, sql, NULL, NULL, NULL) == SQLITE_OK ? BL_OK : bl_index_sqlerr(ix, sql, err);
}

/* Creates the file with mode 0600 before SQLite does (it would use the
 * umask); SQLite gives its -wal and -shm files the same mode. */
static int bl_index_create_file(bl_index_t *ix, bl_buf_t *err)
{
    int fd = open(ix->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || ((st.st_mode & 077) && fchmod(fd, 0600) != 0)) {
        bl_buf_printf(err, "%s: %s", ix->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return BL_ERROR;
    }
    close(fd);
    return BL_OK;
}

/* Returns user_version, or -1 on an error. */
static int bl_index_version(bl_index_t *ix)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Creates the tables (dropping those of another schema version) and the
 * cached statements. Returns BL_OK, BL_DECLINED when the file is not an
 * index of ours (replace it), BL_ERROR. */
static int bl_index_schema(bl_index_t *ix, bl_buf_t *err)
{
    /* WAL: queries read while another updates. synchronous=NORMAL: a power
     * cut may lose the last batches, never consistency; they are re-read.
     * temp_store=MEMORY: statement journals stay out of /var/tmp. */
    if (bl_index_exec(ix, "PRAGMA journal_mode=WAL", err) != BL_OK ||
        bl_index_exec(ix, "PRAGMA synchronous=NORMAL", err) != BL_OK ||
        bl_index_exec(ix, "PRAGMA temp_store=MEMORY", err) != BL_OK)
        return ix->corrupt ? BL_DECLINED : BL_ERROR;
    int v = bl_index_version(ix);
    if (v < 0) {
        bl_index_sqlerr(ix, "user_version", err);
        return ix->corrupt ? BL_DECLINED : BL_ERROR;
    }
    if (v != 0 && v != BL_INDEX_SCHEMA) {
        ix->replaced = 1;
        if (bl_index_exec(ix, "DROP TABLE IF EXISTS pos; DROP TABLE IF EXISTS records", err) != BL_OK)
            return BL_ERROR;
    }
    /* on an existing index none of this writes, so it needs no lock */
    if (bl_index_exec(ix, bl_index_schema_sql, err) != BL_OK ||
        (v != BL_INDEX_SCHEMA && bl_index_exec(ix, "PRAGMA user_version=" BL_INDEX_XSTR(BL_INDEX_SCHEMA), err) != BL_OK) ||
        sqlite3_prepare_v2(ix->db, "SELECT seq, raw FROM records WHERE id = ?1", -1, &ix->get, NULL) ||
        sqlite3_prepare_v2(ix->db, bl_index_put_sql, -1, &ix->put, NULL)) {
        int code = sqlite3_errcode(ix->db) & 0xff;
        if (bl_buf_size(err) == 0)
            bl_index_sqlerr(ix, "schema", err);
        /* a foreign table of the same name, or a damaged file */
        return code == SQLITE_ERROR || code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? BL_DECLINED : BL_ERROR;
    }
    return BL_OK;
}

static void bl_index_disconnect(bl_index_t *ix)
{
    sqlite3_finalize(ix->get);
    sqlite3_finalize(ix->put);
    ix->get = ix->put = NULL;
    sqlite3_close(ix->db);
    ix->db = NULL;
}

/* Opens the database. Returns BL_OK, BL_DECLINED (not usable as an index:
 * the caller may replace the file) or BL_ERROR. */
static int bl_index_connect(bl_index_t *ix, bl_buf_t *err)
{
    ix->corrupt = 0;
    if (!ix->memory && bl_index_create_file(ix, err) != BL_OK)
        return BL_ERROR;
    if (sqlite3_open_v2(ix->path, &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        bl_buf_printf(err, "%s: %s", ix->path, ix->db ? sqlite3_errmsg(ix->db) : "out of memory");
        return BL_ERROR;
    }
    sqlite3_busy_timeout(ix->db, BL_INDEX_BUSY_MS);
    sqlite3_extended_result_codes(ix->db, 1);
    return bl_index_schema(ix, err);
}

/* Removes the index file and SQLite's companions. */
static void bl_index_unlink(bl_index_t *ix)
{
    char p[4096 + 8];
    unlink(ix->path);
    snprintf(p, sizeof(p), "%s-wal", ix->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", ix->path);
    unlink(p);
}

/* Closes, deletes and recreates the index file. BL_OK or BL_ERROR. */
static int bl_index_recreate(bl_index_t *ix, bl_buf_t *err)
{
    bl_index_disconnect(ix);
    if (!ix->memory)
        bl_index_unlink(ix);
    bl_buf_reset(err);
    return bl_index_connect(ix, err) == BL_OK ? BL_OK : BL_ERROR;
}

bl_index_t *bl_index_open(const char *audit_dir, const char *path, bl_buf_t *err)
{
    bl_index_t *ix = calloc(1, sizeof(*ix));
    if (ix == NULL || (ix->dir = strdup(audit_dir)) == NULL) {
        bl_buf_puts(err, "out of memory");
        goto fail;
    }
    int n = path ? snprintf(ix->path, sizeof(ix->path), "%s", path)
                 : snprintf(ix->path, sizeof(ix->path), "%s/%s", audit_dir, BL_INDEX_FILE);
    if (n < 0 || (size_t)n >= sizeof(ix->path)) {
        bl_buf_printf(err, "%s: path too long", audit_dir);
        goto fail;
    }
    ix->memory = !strcmp(ix->path, ":memory:");
    if ((ix->slots = calloc(BL_INDEX_SLOTS, sizeof(*ix->slots))) == NULL) {
        bl_buf_puts(err, "out of memory");
        goto fail;
    }
    int rc = bl_index_connect(ix, err);
    if (rc == BL_DECLINED) { /* damaged or foreign: it is derived data, start again */
        rc = bl_index_recreate(ix, err);
        ix->replaced = 1;
    }
    if (rc != BL_OK)
        goto fail;
    return ix;
fail:
    bl_index_close(ix);
    return NULL;
}

void bl_index_close(bl_index_t *ix)
{
    if (ix == NULL)
        return;
    bl_index_disconnect(ix);
    if (ix->slots)
        bl_index_flush(ix, 0, NULL);
    free(ix->slots);
    free(ix->dir);
    free(ix);
}

/* --- the position --- */

static void bl_index_col_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Reads the position into *p (valid = 0 when there is none). */
static int bl_index_pos_get(bl_index_t *ix, bl_index_pos_t *p, bl_buf_t *err)
{
    sqlite3_stmt *st = NULL;
    memset(p, 0, sizeof(*p));
    if (sqlite3_prepare_v2(ix->db, "SELECT seg, off, len, line_hash, chained, seq, leaf_hash, lineno FROM pos", -1, &st,
                           NULL) != SQLITE_OK)
        return bl_index_sqlerr(ix, "reading the position", err);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        p->valid = 1;
        p->seg = (unsigned)sqlite3_column_int64(st, 0);
        p->off = (uint64_t)sqlite3_column_int64(st, 1);
        p->len = (uint64_t)sqlite3_column_int64(st, 2);
        bl_index_col_text(st, 3, p->line_hash, sizeof(p->line_hash));
        p->chained = sqlite3_column_int(st, 4);
        p->seq = (uint64_t)sqlite3_column_int64(st, 5);
        bl_index_col_text(st, 6, p->leaf_hash, sizeof(p->leaf_hash));
        p->lineno = (uint64_t)sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? BL_OK : bl_index_sqlerr(ix, "reading the position", err);
}

static int bl_index_pos_put(bl_index_t *ix, const bl_index_pos_t *p, bl_buf_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "INSERT OR REPLACE INTO pos VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &st,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, p->seg);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)p->off);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)p->len);
        sqlite3_bind_text(st, 4, p->line_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, p->chained);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)p->seq);
        sqlite3_bind_text(st, 7, p->leaf_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)p->lineno);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? BL_OK : bl_index_sqlerr(ix, "writing the position", err);
}

static int bl_index_pos_eq(const bl_index_pos_t *a, const bl_index_pos_t *b)
{
    return a->valid == b->valid && (!a->valid || (a->seg == b->seg && a->off == b->off && a->len == b->len &&
                                                  a->lineno == b->lineno &&
                                                  !strcmp(a->line_hash, b->line_hash) && a->chained == b->chained &&
                                                  a->seq == b->seq && !strcmp(a->leaf_hash, b->leaf_hash)));
}

int bl_index_reset(bl_index_t *ix, bl_buf_t *err)
{
    if (bl_index_exec(ix, "BEGIN IMMEDIATE", err) != BL_OK)
        return BL_ERROR;
    if (bl_index_exec(ix, "DELETE FROM records; DELETE FROM pos; COMMIT", err) != BL_OK) {
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
        return BL_ERROR;
    }
    return BL_OK;
}

/* --- one record --- */

static const char *bl_index_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void bl_index_bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bl_index_bind_int(sqlite3_stmt *st, int i, const json_t *v)
{
    if (json_is_integer(v))
        sqlite3_bind_int64(st, i, json_integer_value(v));
    else
        sqlite3_bind_null(st, i);
}

/* Binds the columns of `rec` (not raw, not seq) to ix->put; `groups`
 * holds the comma-joined groups until the step. */
static void bl_index_bind_rec(bl_index_t *ix, const json_t *rec, bl_buf_t *groups)
{
    sqlite3_stmt *st = ix->put;
    const json_t *req = json_object_get(rec, "request");
    const char *kind = bl_index_str(rec, "kind");
    int request = kind && !strcmp(kind, "request");
    int64_t us;
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(rec, "groups"), i, g) {
        if (json_is_string(g))
            bl_buf_printf(groups, "%s%s", bl_buf_size(groups) ? "," : "", json_string_value(g));
    }
    bl_index_bind_str(st, 2, bl_index_str(rec, "id"));
    bl_index_bind_str(st, 3, request ? "request" : "notice");
    bl_index_bind_str(st, 4, bl_index_str(rec, "ts"));
    if (bl_index_str(rec, "ts") && bl_when_rfc3339(bl_index_str(rec, "ts"), &us) == BL_OK)
        sqlite3_bind_int64(st, 5, us);
    bl_index_bind_str(st, 6, bl_index_str(rec, "actor"));
    bl_index_bind_str(st, 7, request ? bl_buf_cstr(groups) : NULL);
    bl_index_bind_str(st, 8, bl_index_str(rec, "connection"));
    bl_index_bind_str(st, 9, bl_index_str(req, "verb"));
    bl_index_bind_str(st, 10, bl_index_str(req, "resource"));
    bl_index_bind_str(st, 11, bl_index_str(req, "subresource"));
    bl_index_bind_str(st, 12, bl_index_str(req, "namespace"));
    bl_index_bind_str(st, 13, bl_index_str(req, "name"));
    bl_index_bind_str(st, 14, bl_index_str(rec, request ? "action" : "event"));
    const char *result = bl_index_str(rec, "result");
    bl_index_bind_str(st, 15, request ? (result ? result : "pending") : NULL);
    bl_index_bind_int(st, 16, json_object_get(rec, "status"));
    bl_index_bind_int(st, 17, json_object_get(rec, "duration_us"));
    bl_index_bind_str(st, 18, bl_index_str(rec, "source_ip"));
}

/* Writes the row of `rec` whose first entry has sequence number `seq`.
 * Returns BL_OK, BL_DECLINED (it cannot be serialised: skipped), BL_ERROR. */
static int bl_index_put(bl_index_t *ix, uint64_t seq, const json_t *rec, bl_buf_t *err)
{
    bl_buf_t raw, groups;
    bl_buf_init(&raw, BL_INDEX_RAW_MAX);
    bl_buf_init(&groups, 64 * 1024);
    int rc = BL_DECLINED;
    if (bl_jcs_dump(rec, &raw) != BL_OK)
        goto end;
    sqlite3_bind_int64(ix->put, 1, (sqlite3_int64)seq);
    bl_index_bind_rec(ix, rec, &groups);
    sqlite3_bind_text(ix->put, 19, bl_buf_data(&raw), (int)bl_buf_size(&raw), SQLITE_STATIC);
    rc = sqlite3_step(ix->put) == SQLITE_DONE ? BL_OK : bl_index_sqlerr(ix, "writing a record", err);
    sqlite3_reset(ix->put);
    sqlite3_clear_bindings(ix->put);
end:
    bl_buf_free(&raw);
    bl_buf_free(&groups);
    return rc;
}

/* Looks up the record of request `id`: *rec (owned by the caller) and the
 * seq of its first entry, or *rec = NULL. Returns BL_OK or BL_ERROR. */
static int bl_index_get(bl_index_t *ix, const char *id, uint64_t *seq, json_t **rec, bl_buf_t *err)
{
    *rec = NULL;
    sqlite3_bind_text(ix->get, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(ix->get);
    if (rc == SQLITE_ROW) {
        json_error_t je;
        *seq = (uint64_t)sqlite3_column_int64(ix->get, 0);
        const char *raw = (const char *)sqlite3_column_text(ix->get, 1);
        *rec = raw ? json_loadb(raw, (size_t)sqlite3_column_bytes(ix->get, 1), JSON_ALLOW_NUL, &je) : NULL;
    }
    sqlite3_reset(ix->get);
    sqlite3_clear_bindings(ix->get);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? BL_OK : bl_index_sqlerr(ix, "reading a record", err);
}

/* Returns the slot of request `id` (36 characters), or the free slot
 * where it goes. */
static bl_index_slot_t *bl_index_slot(bl_index_t *ix, const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (size_t i = (size_t)h & (BL_INDEX_SLOTS - 1);; i = (i + 1) & (BL_INDEX_SLOTS - 1))
        if (ix->slots[i].rec == NULL || !strcmp(ix->slots[i].id, id))
            return &ix->slots[i];
}

/* Writes the batch's rows (on success) and empties the cache. Returns
 * BL_OK, or BL_ERROR; with write = 0 it only drops them. */
static int bl_index_flush(bl_index_t *ix, int write, bl_buf_t *err)
{
    int rc = BL_OK;
    for (size_t i = 0; i < BL_INDEX_SLOTS && ix->used > 0; i++) {
        bl_index_slot_t *sl = &ix->slots[i];
        if (sl->rec == NULL)
            continue;
        if (write && rc == BL_OK && bl_index_put(ix, sl->seq, sl->rec, err) == BL_ERROR)
            rc = BL_ERROR; /* one that cannot be serialised is skipped, as in bl_index_entry */
        json_decref(sl->rec);
        sl->rec = NULL;
        ix->used--;
    }
    return rc;
}

/* Indexes a request entry: its row from this batch, or from the table,
 * or a new one. Returns BL_OK, BL_DECLINED (skipped), BL_ERROR. */
static int bl_index_request(bl_index_t *ix, json_t *e, const char *id, uint64_t seq, bl_buf_t *err)
{
    if (strlen(id) >= sizeof(ix->slots[0].id) || ix->used >= BL_INDEX_SLOTS / 2) {
        if (bl_index_flush(ix, 1, err) != BL_OK)
            return BL_ERROR;
        if (strlen(id) >= sizeof(ix->slots[0].id)) /* not an id byline wrote: skipped */
            return BL_DECLINED;
    }
    bl_index_slot_t *sl = bl_index_slot(ix, id);
    if (sl->rec)
        return bl_merge_add(sl->rec, e);
    sl->seq = seq;
    if (bl_index_get(ix, id, &sl->seq, &sl->rec, err) != BL_OK)
        return BL_ERROR;
    if (sl->rec && bl_merge_add(sl->rec, e) != BL_OK) {
        json_decref(sl->rec);
        sl->rec = NULL;
        return BL_DECLINED;
    }
    if (sl->rec == NULL && (sl->rec = bl_merge_start(e)) == NULL)
        return BL_DECLINED;
    snprintf(sl->id, sizeof(sl->id), "%s", id);
    ix->used++;
    return BL_OK;
}

/* Indexes ledger entry `e` with sequence number `seq`: a new row, or the
 * row of its request completed. Returns BL_OK, BL_DECLINED (not an entry
 * byline can show: skipped) or BL_ERROR. */
static int bl_index_entry(bl_index_t *ix, json_t *e, uint64_t seq, bl_buf_t *err)
{
    const char *id = bl_index_str(e, "id");
    const char *kind = bl_index_str(e, "kind");
    if (kind == NULL)
        return BL_DECLINED;
    if (id && strcmp(kind, "notice"))
        return bl_index_request(ix, e, id, seq, err);
    json_t *rec = bl_merge_start(e); /* a notice: a row of its own */
    int rc = rec ? bl_index_put(ix, seq, rec, err) : BL_DECLINED;
    json_decref(rec);
    return rc;
}

/* --- reading the ledger --- */

static void bl_index_hash(const bl_line_t *ln, char out[48])
{
    bl_hash_t h;
    bl_merkle_leaf(ln->p, ln->len, &h);
    EVP_EncodeBlock((unsigned char *)out, h.h, sizeof(h.h));
}

/* Indexes one complete line and moves *pos past it. `strict`: the next
 * entry must continue the chain (seq and prev) of the indexed ones.
 * Returns BL_OK, BL_DECLINED (the chain does not continue: why in st),
 * BL_ERROR. */
static int bl_index_line(bl_index_t *ix, const bl_line_t *ln, bl_index_pos_t *pos, int strict,
                         bl_index_stats_t *st, bl_buf_t *err)
{
    json_error_t je;
    json_t *line = json_loadb(ln->p, ln->len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    json_t *entry = json_object_get(line, "entry"), *seq = json_object_get(line, "seq");
    const char *prev = bl_index_str(line, "prev");
    char hash[48];
    int rc = BL_OK;
    bl_index_hash(ln, hash);
    if (json_is_object(entry) && json_is_integer(seq) && json_integer_value(seq) >= 0 && prev) {
        uint64_t s = (uint64_t)json_integer_value(seq);
        if (strict && pos->chained && (s != pos->seq || strcmp(prev, pos->leaf_hash))) {
            snprintf(st->why, sizeof(st->why), "entry %llu in segment %06u does not follow indexed entry %llu",
                     (unsigned long long)s, ln->segment, (unsigned long long)pos->seq - 1);
            rc = BL_DECLINED;
            goto end;
        }
        rc = bl_index_entry(ix, entry, s, err);
        st->entries += rc == BL_OK;
        st->skipped += rc == BL_DECLINED;
        rc = rc == BL_ERROR ? BL_ERROR : BL_OK;
        pos->chained = 1;
        pos->seq = s + 1;
        memcpy(pos->leaf_hash, hash, sizeof(hash));
    } else if (!json_is_string(json_object_get(line, "checkpoint"))) {
        st->skipped++; /* damage is for `audit verify` to report */
    }
    pos->valid = 1;
    pos->seg = ln->segment;
    pos->off = ln->offset;
    pos->len = ln->len;
    pos->lineno = ln->lineno;
    memcpy(pos->line_hash, hash, sizeof(hash));
end:
    json_decref(line);
    return rc;
}

/* Seeks `r` past the last line indexed, checking it is still the same
 * line. Returns BL_OK, or BL_DECLINED with why in st (rebuild). */
static int bl_index_resume(bl_reader_t *r, const bl_index_pos_t *pos, bl_index_stats_t *st)
{
    bl_buf_t e;
    bl_line_t ln;
    char hash[48];
    int rc = BL_OK;
    bl_buf_init(&e, 1024);
    if (bl_reader_seek(r, pos->seg, pos->off, pos->lineno, &e) != BL_OK) {
        snprintf(st->why, sizeof(st->why), "the ledger changed: %s", bl_buf_cstr(&e));
        rc = BL_DECLINED;
    } else if (bl_reader_next(r, &ln, &e) != BL_OK || ln.torn || ln.len != pos->len ||
               (bl_index_hash(&ln, hash), strcmp(hash, pos->line_hash))) {
        snprintf(st->why, sizeof(st->why), "the ledger changed: segment %06u offset %llu is not the line indexed",
                 pos->seg, (unsigned long long)pos->off);
        rc = BL_DECLINED;
    }
    bl_buf_free(&e);
    return rc;
}

/* Returns the next line to index: BL_OK, BL_DECLINED at the end (a torn
 * tail of the newest segment is not a line yet). Reader errors are
 * counted and skipped; BL_ERROR after too many. */
static int bl_index_next(bl_reader_t *r, bl_line_t *ln, bl_index_stats_t *st, bl_buf_t *err)
{
    bl_buf_t e;
    bl_buf_init(&e, 1024);
    int rc, torn = 0, errors = 0;
    while ((rc = bl_reader_next(r, ln, &e)) != BL_DECLINED) {
        if (rc == BL_OK && !ln->torn)
            break;
        st->skipped += torn; /* a torn line with lines after it: damage */
        torn = rc == BL_OK;
        if (rc == BL_ERROR && !st->warning[0])
            snprintf(st->warning, sizeof(st->warning), "%s", bl_buf_cstr(&e));
        st->skipped += rc == BL_ERROR;
        bl_buf_reset(&e);
        if (rc == BL_ERROR && ++errors > BL_INDEX_MAX_ERRORS) {
            bl_buf_printf(err, "reading the ledger: %s", st->warning);
            rc = BL_ERROR;
            break;
        }
    }
    bl_buf_free(&e);
    return rc;
}

/* Indexes up to BL_INDEX_BATCH lines in one transaction, after checking
 * nobody else moved the index since *pos. Sets *more when lines may be
 * left. Returns BL_OK, BL_AGAIN (moved: start over), BL_DECLINED
 * (mismatch: rebuild), BL_ERROR. */
static int bl_index_batch(bl_index_t *ix, bl_reader_t *r, bl_index_pos_t *pos, int strict, int *more,
                          bl_index_stats_t *st, bl_buf_t *err)
{
    bl_index_pos_t cur;
    bl_line_t ln;
    int rc = BL_OK, n;
    *more = 0;
    if (bl_index_exec(ix, "BEGIN IMMEDIATE", err) != BL_OK)
        return BL_ERROR;
    if ((rc = bl_index_pos_get(ix, &cur, err)) == BL_OK && !bl_index_pos_eq(&cur, pos))
        rc = BL_AGAIN;
    if (rc == BL_OK && !pos->valid)
        rc = bl_index_exec(ix, "DELETE FROM records", err); /* from scratch: nothing else in it */
    for (n = 0; rc == BL_OK && n < BL_INDEX_BATCH; n++) {
        if ((rc = bl_index_next(r, &ln, st, err)) == BL_DECLINED) {
            rc = BL_OK;
            break;
        }
        if (rc == BL_OK)
            rc = bl_index_line(ix, &ln, pos, strict, st, err);
        st->lines += rc == BL_OK;
    }
    if (bl_index_flush(ix, rc == BL_OK, err) != BL_OK)
        rc = BL_ERROR;
    if (rc == BL_OK && pos->valid)
        rc = bl_index_pos_put(ix, pos, err);
    if (rc == BL_OK && (rc = bl_index_exec(ix, "COMMIT", err)) == BL_OK) {
        st->batches++;
        *more = n == BL_INDEX_BATCH;
        return BL_OK;
    }
    sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* One pass from the recorded position to the end of the ledger.
 * Returns BL_OK, BL_AGAIN, BL_DECLINED (why in st), BL_ERROR. */
static int bl_index_pass(bl_index_t *ix, bl_index_stats_t *st, bl_buf_t *err)
{
    bl_index_pos_t pos;
    int rc = bl_index_pos_get(ix, &pos, err), more = 1;
    int strict = pos.valid; /* a rebuild does not judge the chain, in any batch */
    if (rc != BL_OK)
        return rc;
    bl_reader_t *r = bl_reader_open(ix->dir, err);
    if (r == NULL)
        return BL_ERROR;
    if (pos.valid) {
        rc = bl_index_resume(r, &pos, st); /* BL_DECLINED: it does not match the ledger */
    } else {
        st->rebuilt = 1; /* a fresh reader starts at the first segment */
        if (!st->why[0])
            snprintf(st->why, sizeof(st->why), "%s", ix->replaced ? "the index file was damaged or of another "
                                                                    "version; replaced" : "there was no index yet");
    }
    while (rc == BL_OK && more)
        rc = bl_index_batch(ix, r, &pos, strict, &more, st, err);
    bl_reader_close(r);
    return rc;
}

int bl_index_update(bl_index_t *ix, bl_index_stats_t *st, bl_buf_t *err)
{
    bl_index_stats_t local;
    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < BL_INDEX_PASSES; i++) {
        int rc = bl_index_pass(ix, st, err);
        if (rc == BL_OK)
            return BL_OK;
        if (rc == BL_DECLINED && bl_index_reset(ix, err) == BL_OK)
            continue; /* rebuild from scratch */
        if (rc == BL_ERROR && ix->corrupt && bl_index_recreate(ix, err) == BL_OK) {
            ix->replaced = 1;
            continue;
        }
        if (rc != BL_AGAIN) /* BL_AGAIN: another query moved the index; start from where it is */
            return BL_ERROR;
    }
    bl_buf_printf(err, "%s: the index kept changing during the update; try again", ix->path);
    return BL_ERROR;
}

/* --- selecting --- */

typedef struct {
    const char *s;          /* text, or NULL for the integer */
    int len;
    int64_t i;
} bl_index_param_t;

typedef struct {
    bl_buf_t where;
    bl_index_param_t p[16];
    int n;
} bl_index_sel_t;

/* Adds "AND col = ?" (or GLOB for a pattern) for s[0..len). */
static void bl_index_sel_str(bl_index_sel_t *q, const char *col, const char *s, size_t len)
{
    int glob = memchr(s, '*', len) || memchr(s, '?', len) || memchr(s, '[', len);
    bl_buf_printf(&q->where, " AND %s %s ?%d", col, glob ? "GLOB" : "=", q->n + 1);
    q->p[q->n++] = (bl_index_param_t){ s, (int)BL_MIN(len, (size_t)1 << 20), 0 };
}

static void bl_index_sel_opt(bl_index_sel_t *q, const char *col, const char *s)
{
    if (s)
        bl_index_sel_str(q, col, s, strlen(s));
}

static void bl_index_sel_int(bl_index_sel_t *q, const char *cond, int64_t v)
{
    bl_buf_printf(&q->where, " AND %s ?%d", cond, q->n + 1);
    q->p[q->n++] = (bl_index_param_t){ NULL, 0, v };
}

/* Builds the WHERE clause and its parameters for `f`. */
static void bl_index_sel_build(bl_index_sel_t *q, const bl_index_filter_t *f)
{
    bl_buf_puts(&q->where, f->notices ? "1" : "kind = 'request'");
    bl_index_sel_opt(q, "actor", f->actor);
    bl_index_sel_opt(q, "connection", f->connection);
    bl_index_sel_opt(q, "verb", f->verb);
    bl_index_sel_opt(q, "namespace", f->namespace_);
    if (f->resource) {
        const char *slash = strchr(f->resource, '/');
        bl_index_sel_str(q, "resource", f->resource, slash ? (size_t)(slash - f->resource) : strlen(f->resource));
        if (slash)
            bl_index_sel_opt(q, "subresource", slash + 1);
    }
    bl_index_sel_opt(q, "result", f->result);
    bl_index_sel_opt(q, "id", f->id);
    if (f->since_us != INT64_MIN)
        bl_index_sel_int(q, "ts_us >=", f->since_us);
    if (f->until_us != INT64_MAX)
        bl_index_sel_int(q, "ts_us <", f->until_us);
}

/* Prepares `sql` (which ends in WHERE <where>...) with q's parameters. */
static int bl_index_sel_prepare(bl_index_t *ix, bl_index_sel_t *q, const char *sql, sqlite3_stmt **st,
                                bl_buf_t *err)
{
    if (sqlite3_prepare_v2(ix->db, sql, -1, st, NULL) != SQLITE_OK)
        return bl_index_sqlerr(ix, "query", err);
    for (int i = 0; i < q->n; i++) {
        if (q->p[i].s)
            sqlite3_bind_text(*st, i + 1, q->p[i].s, q->p[i].len, SQLITE_STATIC);
        else
            sqlite3_bind_int64(*st, i + 1, q->p[i].i);
    }
    return BL_OK;
}

/* Counts the records q selects into *matched. */
static int bl_index_count(bl_index_t *ix, bl_index_sel_t *q, uint64_t *matched, bl_buf_t *err)
{
    bl_buf_t sql;
    sqlite3_stmt *st = NULL;
    bl_buf_init(&sql, 8192);
    bl_buf_printf(&sql, "SELECT count(*) FROM records WHERE %s", bl_buf_cstr(&q->where));
    int rc = bl_index_sel_prepare(ix, q, bl_buf_cstr(&sql), &st, err);
    if (rc == BL_OK && sqlite3_step(st) == SQLITE_ROW)
        *matched = (uint64_t)sqlite3_column_int64(st, 0);
    else if (rc == BL_OK)
        rc = bl_index_sqlerr(ix, "count", err);
    sqlite3_finalize(st);
    bl_buf_free(&sql);
    return rc;
}

void bl_index_filter_init(bl_index_filter_t *f)
{
    memset(f, 0, sizeof(*f));
    f->since_us = INT64_MIN;
    f->until_us = INT64_MAX;
}

long long bl_index_query(bl_index_t *ix, const bl_index_filter_t *f, bl_index_row_fn fn, void *arg,
                         uint64_t *matched, bl_buf_t *err)
{
    bl_index_sel_t q = { .n = 0 };
    bl_buf_t sql;
    sqlite3_stmt *st = NULL;
    long long n = 0;
    bl_buf_init(&q.where, 4096);
    bl_buf_init(&sql, 8192);
    bl_index_sel_build(&q, f);
    bl_buf_printf(&sql, "SELECT raw FROM (SELECT seq, raw FROM records WHERE %s ORDER BY seq DESC LIMIT %lld)"
                        " ORDER BY seq", bl_buf_cstr(&q.where), f->limit ? (long long)f->limit : -1LL);
    int rc = bl_index_sel_prepare(ix, &q, bl_buf_cstr(&sql), &st, err);
    while (rc == BL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = fn(arg, (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        n++;
    }
    if (rc == SQLITE_DONE)
        rc = BL_OK;
    else if (rc > 0) /* an SQLite code, not one of ours */
        rc = bl_index_sqlerr(ix, "query", err);
    sqlite3_finalize(st);
    if (rc == BL_OK && matched && f->limit && (uint64_t)n >= f->limit)
        rc = bl_index_count(ix, &q, matched, err); /* there may be more than were shown */
    else if (rc == BL_OK && matched)
        *matched = (uint64_t)n;
    bl_buf_free(&q.where);
    bl_buf_free(&sql);
    return rc == BL_OK ? n : rc;
}
