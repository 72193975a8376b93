/*
 * tail.c - `byline audit tail`: the newest requests, intents joined with
 * results.
 *
 * The ledger is read backwards, from the end of the newest segment, and
 * only as far back as the requests asked for. A request starts at its
 * intent, at a result that carries the request's own fields (a request
 * refused without an intent: docs/AUDIT-FORMAT.md section 4), or is a
 * notice. Reading backwards, a request's result is met before its intent,
 * so once n starts have been met the n newest requests are whole, as far
 * as the ledger has them: `tail -n 100` reads a few hundred lines, not the
 * ledger. A result whose intent is never found (a lost segment) counts as
 * a request of its own where it stands, found only when the reading
 * reaches the ledger's start.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "audit/idmap.h"
#include "audit/merge.h"
#include "audit/reader.h"
#include "audit/tail.h"

#define BL_TAIL_CHUNK (64u * 1024)
#define BL_TAIL_AT(seg, off) (((uint64_t)(seg) << 40) | (off)) /* segments < 2^20, offsets < 2^40 */

/* --- one segment, line by line from its end --- */

typedef struct {
    int fd;
    unsigned seg;
    uint64_t pos;       /* segment offset of buf[0] */
    uint64_t end;       /* the lines from here on were returned */
    char *buf;          /* bytes [pos, pos + len) of the segment */
    size_t len, cap;
    int started;        /* the segment's last byte was looked at (torn or not) */
} bl_back_t;

/* Opens segment `seg` of `dir` at its end. Returns BL_OK or BL_ERROR. */
static int bl_back_open(bl_back_t *b, const char *dir, unsigned seg, bl_buf_t *err)
{
    char path[4096];
    struct stat st;
    memset(b, 0, sizeof(*b));
    b->seg = seg;
    bl_segment_path(dir, seg, path, sizeof(path));
    b->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (b->fd < 0 || fstat(b->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bl_buf_printf(err, "%s: %s", path, b->fd < 0 ? strerror(errno) : "not a regular file");
        return BL_ERROR;
    }
    b->pos = b->end = (uint64_t)st.st_size;
    return BL_OK;
}

static void bl_back_close(bl_back_t *b)
{
    if (b->fd >= 0)
        close(b->fd);
    free(b->buf);
    b->fd = -1;
    b->buf = NULL;
}

/* Reads the chunk before b->pos in front of the first `keep` bytes of the
 * buffer (the rest is dropped). Returns BL_OK or BL_ERROR. */
static int bl_back_load(bl_back_t *b, size_t keep, bl_buf_t *err)
{
    size_t n = b->pos < BL_TAIL_CHUNK ? (size_t)b->pos : BL_TAIL_CHUNK;
    if (keep + n > b->cap) {
        size_t cap = b->cap ? b->cap : 2 * BL_TAIL_CHUNK;
        while (cap < keep + n)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (p == NULL) {
            bl_buf_puts(err, "out of memory");
            return BL_ERROR;
        }
        b->buf = p;
        b->cap = cap;
    }
    memmove(b->buf + n, b->buf, keep);
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(b->fd, b->buf + got, n - got, (off_t)(b->pos - n + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            bl_buf_printf(err, "segment %06u: read: %s", b->seg, r < 0 ? strerror(errno) : "it shrank");
            return BL_ERROR;
        }
        got += (size_t)r;
    }
    b->pos -= n;
    b->len = keep + n;
    return BL_OK;
}

/*
 * Returns BL_OK with the line before those returned so far (its segment
 * and offset set; lineno 0, not counted), BL_DECLINED at the segment's
 * start, BL_ERROR on a read error. The bytes after the last '\n' come
 * first, as a torn line. A line longer than BL_READER_MAX_LINE comes back
 * with p NULL: not read, to be counted as skipped.
 */
static int bl_back_prev(bl_back_t *b, bl_line_t *ln, bl_buf_t *err)
{
    if (b->end == 0)
        return BL_DECLINED;
    if (b->pos == b->end && bl_back_load(b, 0, err) != BL_OK)
        return BL_ERROR;
    int torn = !b->started && b->buf[b->end - 1 - b->pos] != '\n', longline = 0;
    uint64_t stop = torn ? b->end : b->end - 1; /* the line's bytes end here */
    b->started = 1;
    for (;;) {
        uint64_t hi = longline ? b->pos + b->len : stop; /* what the buffer holds of the line */
        const char *nl = hi > b->pos ? memrchr(b->buf, '\n', (size_t)(hi - b->pos)) : NULL;
        if (nl || b->pos == 0) {
            uint64_t start = nl ? b->pos + (uint64_t)(nl - b->buf) + 1 : 0;
            longline |= stop - start > BL_READER_MAX_LINE;
            ln->p = longline ? NULL : b->buf + (start - b->pos);
            ln->len = (size_t)(stop - start);
            ln->segment = b->seg;
            ln->offset = start;
            ln->lineno = 0;
            ln->torn = torn;
            b->end = start;
            return BL_OK;
        }
        longline |= stop - b->pos > BL_READER_MAX_LINE; /* keep no more of it: only its start matters */
        if (bl_back_load(b, longline ? 0 : (size_t)(stop - b->pos), err) != BL_OK)
            return BL_ERROR;
    }
}

/* --- the newest requests --- */

typedef struct {
    char *id;        /* owned; NULL for a notice */
    json_t *ents;    /* its entries read so far, newest first (an owned array) */
    uint64_t at;     /* where its oldest entry read stands: BL_TAIL_AT(segment, offset) */
    int started;     /* its first entry was read: it is whole */
} bl_tail_row_t;

typedef struct {
    bl_tail_row_t *rows;
    size_t n, cap;
    size_t nstarted;  /* rows started */
    bl_idmap_t ids;   /* id -> index in rows (keys: the rows' ids) */
} bl_tail_set_t;

static void bl_tail_free(bl_tail_set_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].id);
        json_decref(s->rows[i].ents);
    }
    free(s->rows);
    bl_idmap_free(&s->ids);
    memset(s, 0, sizeof(*s));
}

/* Returns 1 if entry `e` (of kind `kind`) is the first of its request: an
 * intent, a notice, one without an id, or a result refused without an
 * intent (it carries the request's fields; a later result never does). */
static int bl_tail_starts(json_t *e, const char *kind, const char *id)
{
    if (id == NULL || !strcmp(kind, "intent") || !strcmp(kind, "notice"))
        return 1;
    return !strcmp(kind, "result") && (json_object_get(e, "credential") || json_object_get(e, "method") ||
                                       json_object_get(e, "uri"));
}

/* Appends a new row for `e`. Returns BL_OK or BL_ERROR (out of memory). */
static int bl_tail_new(bl_tail_set_t *s, json_t *e, const char *id, uint64_t at, int starts)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        bl_tail_row_t *r = cap < BL_IDMAP_NONE ? realloc(s->rows, cap * sizeof(*r)) : NULL;
        if (r == NULL)
            return BL_ERROR;
        s->rows = r;
        s->cap = cap;
    }
    bl_tail_row_t *row = &s->rows[s->n];
    row->id = id ? strdup(id) : NULL;
    row->ents = json_array();
    row->at = at;
    row->started = starts;
    if ((id && row->id == NULL) || row->ents == NULL || json_array_append(row->ents, e) != 0 ||
        (id && bl_idmap_put(&s->ids, row->id, (uint32_t)s->n) != BL_OK)) {
        free(row->id);
        json_decref(row->ents);
        return BL_ERROR;
    }
    s->n++;
    s->nstarted += (size_t)starts;
    return BL_OK;
}

/* Takes entry `e` (borrowed), read at `at`, older than all taken before.
 * Returns BL_OK, BL_DECLINED (not an entry: no kind) or BL_ERROR (OOM). */
static int bl_tail_take(bl_tail_set_t *s, json_t *e, uint64_t at)
{
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *id = json_string_value(json_object_get(e, "id"));
    if (kind == NULL)
        return BL_DECLINED;
    int starts = bl_tail_starts(e, kind, id);
    uint32_t i = id && strcmp(kind, "notice") ? bl_idmap_get(&s->ids, id) : BL_IDMAP_NONE;
    if (i == BL_IDMAP_NONE)
        return bl_tail_new(s, e, strcmp(kind, "notice") ? id : NULL, at, starts);
    bl_tail_row_t *row = &s->rows[i];
    if (json_array_append(row->ents, e) != 0)
        return BL_ERROR;
    row->at = at;
    s->nstarted += (size_t)(starts && !row->started);
    row->started |= starts;
    return BL_OK;
}

/* Returns a new merged record (merge.h) of `row`'s entries, oldest first,
 * or NULL (out of memory). */
static json_t *bl_tail_merge(const bl_tail_row_t *row)
{
    size_t n = json_array_size(row->ents);
    json_t *rec = n ? bl_merge_start(json_array_get(row->ents, n - 1)) : NULL;
    for (size_t k = n - 1; rec && k-- > 0;)
        bl_merge_add(rec, json_array_get(row->ents, k));
    return rec;
}

/* Appends v as a logfmt value: bare if safe, else quoted and escaped. */
static void bl_tail_value(bl_buf_t *b, const char *v, int force_quote)
{
    int quote = force_quote || *v == '\0';
    for (const char *p = v; *p && !quote; p++)
        quote = *p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x21;
    if (!quote) {
        bl_buf_puts(b, v);
        return;
    }
    bl_buf_puts(b, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            bl_buf_printf(b, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            bl_buf_printf(b, "\\x%02x", (unsigned char)*p);
        else
            bl_buf_append(b, p, 1);
    }
    bl_buf_puts(b, "\"");
}

static const char *bl_tail_str(json_t *rec, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(rec, key));
    return v ? v : dflt;
}

static void bl_tail_kv(bl_buf_t *b, const char *key, const char *v, int quote)
{
    bl_buf_printf(b, "%s%s=", bl_buf_size(b) ? " " : "", key);
    bl_tail_value(b, v, quote);
}

void bl_audit_render_text(const void *json_rec, bl_buf_t *b)
{
    json_t *rec = (json_t *)json_rec;
    char ts[32], raw[1100];
    snprintf(ts, sizeof(ts), "%s", bl_tail_str(rec, "ts", "-"));
    char *dot = strchr(ts, '.');
    if (dot)
        memcpy(dot, "Z", 2); /* seconds are enough for people; --json keeps the rest */
    bl_tail_kv(b, "ts", ts, 0);
    if (!strcmp(bl_tail_str(rec, "kind", ""), "notice")) {
        bl_tail_kv(b, "notice", bl_tail_str(rec, "event", "-"), 0);
        bl_tail_kv(b, "detail", bl_tail_str(rec, "detail", ""), 1);
        return;
    }
    bl_tail_kv(b, "actor", json_is_string(json_object_get(rec, "actor")) ? bl_tail_str(rec, "actor", "") : "unauthenticated", 0);
    const char *action = bl_tail_str(rec, "action", NULL);
    if (action == NULL) {
        snprintf(raw, sizeof(raw), "%s %s", bl_tail_str(rec, "method", "-"), bl_tail_str(rec, "uri", "-"));
        action = raw;
    }
    bl_tail_kv(b, "action", action, 1);
    bl_tail_kv(b, "connection", bl_tail_str(rec, "connection", "-"), 0);
    bl_tail_kv(b, "result", bl_tail_str(rec, "result", "pending"), 0);
    json_t *status = json_object_get(rec, "status");
    if (json_is_integer(status))
        bl_buf_printf(b, " status=%lld", (long long)json_integer_value(status));
    json_t *exit_code = json_object_get(json_object_get(rec, "exec"), "exit_code");
    if (json_is_integer(exit_code))
        bl_buf_printf(b, " exit=%lld", (long long)json_integer_value(exit_code));
    const char *reason = bl_tail_str(rec, "reason", NULL);
    if (reason)
        bl_tail_kv(b, "reason", reason, 1);
    bl_tail_kv(b, "id", bl_tail_str(rec, "id", "-"), 0);
}

static void bl_tail_print(json_t *rec, int style, FILE *out)
{
    if (style == BL_TAIL_JSON) {
        char *s = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        return;
    }
    bl_buf_t b;
    bl_buf_init(&b, 64 * 1024);
    bl_audit_render_text(rec, &b);
    fprintf(out, "%s\n", bl_buf_cstr(&b));
    bl_buf_free(&b);
}

/* Returns the entry of a ledger line (borrowed from *line_json, which the
 * caller frees), NULL for a checkpoint, or sets *bad for anything else. */
static json_t *bl_tail_entry(const bl_line_t *ln, json_t **line_json, int *bad)
{
    json_error_t e;
    *line_json = json_loadb(ln->p, ln->len, JSON_ALLOW_NUL, &e);
    json_t *entry = json_object_get(*line_json, "entry");
    if (*line_json && entry == NULL && json_object_get(*line_json, "checkpoint"))
        return NULL;
    *bad = entry == NULL || !json_is_object(entry);
    return *bad ? NULL : entry;
}

/* Takes segment `seg`'s lines, newest first, until n requests are whole.
 * Returns BL_OK or BL_ERROR. */
static int bl_tail_segment(const char *dir, unsigned seg, size_t n, bl_tail_set_t *set, size_t *skipped,
                           bl_buf_t *err)
{
    bl_back_t b;
    bl_line_t ln;
    int rc = bl_back_open(&b, dir, seg, err);
    while (rc == BL_OK && set->nstarted < n && (rc = bl_back_prev(&b, &ln, err)) == BL_OK) {
        json_t *line = NULL;
        int bad = 0;
        json_t *e = ln.torn || ln.p == NULL ? NULL : bl_tail_entry(&ln, &line, &bad);
        int took = e ? bl_tail_take(set, e, BL_TAIL_AT(seg, ln.offset)) : BL_OK;
        json_decref(line);
        if (took == BL_ERROR) {
            bl_buf_puts(err, "out of memory");
            rc = BL_ERROR;
        }
        *skipped += (size_t)(bad || took == BL_DECLINED || ln.torn || ln.p == NULL);
    }
    bl_back_close(&b);
    return rc == BL_ERROR ? BL_ERROR : BL_OK;
}

/* Reads the ledger backwards into `set` until n requests are whole or the
 * ledger's first line. Returns BL_OK, BL_DECLINED (no segments) or
 * BL_ERROR (a segment missing on the way, a read error). */
static int bl_tail_collect(const char *dir, size_t n, bl_tail_set_t *set, size_t *skipped, bl_buf_t *err)
{
    bl_reader_t *r = bl_reader_open(dir, err);
    if (r == NULL)
        return BL_ERROR;
    unsigned nseg = bl_reader_segments(r);
    int rc = nseg ? BL_OK : BL_DECLINED;
    for (unsigned i = nseg; rc == BL_OK && i-- > 0 && set->nstarted < n;) {
        unsigned seg = bl_reader_segment(r, i), want = i + 1 < nseg ? bl_reader_segment(r, i + 1) - 1 : seg;
        if (seg != want) {
            bl_buf_printf(err, "segment ledger-%06u.jsonl is missing (reading back from the newest)", want);
            rc = BL_ERROR;
        } else {
            rc = bl_tail_segment(dir, seg, n, set, skipped, err);
        }
        if (rc == BL_OK && i == 0 && seg != 1 && set->nstarted < n) {
            bl_buf_printf(err, "segment ledger-%06u.jsonl is missing (reading back from the newest)", seg - 1);
            rc = BL_ERROR;
        }
    }
    bl_reader_close(r);
    return rc;
}

static int bl_tail_cmp(const void *a, const void *b)
{
    uint64_t x = (*(bl_tail_row_t *const *)a)->at, y = (*(bl_tail_row_t *const *)b)->at;
    return (x > y) - (x < y);
}

/* Prints the newest n whole rows of `set`, oldest first. With `all` (the
 * ledger was read to its start) every row counts as whole. Returns BL_OK
 * or BL_ERROR (out of memory). */
static int bl_tail_output(bl_tail_set_t *set, size_t n, int all, int style, FILE *out, bl_buf_t *err)
{
    bl_tail_row_t **pick = malloc((set->n ? set->n : 1) * sizeof(*pick));
    size_t k = 0;
    if (pick == NULL) {
        bl_buf_puts(err, "out of memory");
        return BL_ERROR;
    }
    for (size_t i = 0; i < set->n; i++)
        if (all || set->rows[i].started)
            pick[k++] = &set->rows[i];
    qsort(pick, k, sizeof(*pick), bl_tail_cmp);
    for (size_t i = k > n ? k - n : 0; i < k; i++) {
        json_t *rec = bl_tail_merge(pick[i]);
        if (rec)
            bl_tail_print(rec, style, out);
        json_decref(rec);
    }
    free(pick);
    return BL_OK;
}

int bl_audit_tail(const char *dir, size_t n, int style, FILE *out, size_t *skipped, bl_buf_t *err)
{
    bl_tail_set_t set = { 0 };
    size_t sk = 0;
    int rc = bl_tail_collect(dir, n, &set, &sk, err);
    if (rc == BL_OK)
        rc = bl_tail_output(&set, n, set.nstarted < n, style, out, err);
    bl_tail_free(&set);
    if (skipped)
        *skipped = sk;
    return rc;
}

/* --- follow --- */

/* Requests waiting for their outcome while following: the requests in
 * flight, a few at a time, so a linear search is enough; bounded below. */
typedef struct {
    json_t *rec;     /* merged entry (owned) */
    char id[40];     /* "" for notices */
} bl_follow_row_t;

typedef struct {
    bl_follow_row_t *rows;
    size_t n, cap;
} bl_follow_set_t;

#define BL_FOLLOW_MAX 100000 /* requests pending at once; more are not shown */

/* Merges one entry into the set: a result or aborted entry completes the
 * row of its intent (merge.h). Returns BL_OK or BL_DECLINED (not kept). */
static int bl_follow_add(bl_follow_set_t *s, json_t *e)
{
    const char *id = json_string_value(json_object_get(e, "id"));
    for (size_t i = s->n; id && i-- > 0;) /* recent rows are likeliest */
        if (s->rows[i].id[0] && !strcmp(s->rows[i].id, id))
            return bl_merge_add(s->rows[i].rec, e);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        bl_follow_row_t *r = s->n < BL_FOLLOW_MAX ? realloc(s->rows, cap * sizeof(*r)) : NULL;
        if (r == NULL)
            return BL_DECLINED;
        s->rows = r;
        s->cap = cap;
    }
    json_t *rec = bl_merge_start(e);
    if (rec == NULL)
        return BL_DECLINED;
    s->rows[s->n].rec = rec;
    snprintf(s->rows[s->n].id, sizeof(s->rows[s->n].id), "%s", id ? id : "");
    s->n++;
    return BL_OK;
}

/* Prints each request of `set` that has its outcome, and drops it. */
static void bl_follow_flush(bl_follow_set_t *set, int style, FILE *out)
{
    size_t keep = 0;
    for (size_t i = 0; i < set->n; i++) {
        json_t *rec = set->rows[i].rec;
        if (json_object_get(rec, "result") || !set->rows[i].id[0]) {
            bl_tail_print(rec, style, out);
            json_decref(rec);
        } else {
            set->rows[keep++] = set->rows[i];
        }
    }
    set->n = keep;
    fflush(out);
}

/* Returns the offset in segment `seg` where following starts: its end, or
 * the start of the bytes after its last '\n' (a write in progress: shown
 * once it is whole). 0 if the segment cannot be read (yet). */
static uint64_t bl_follow_start(const char *dir, unsigned seg)
{
    bl_back_t b;
    bl_line_t ln;
    bl_buf_t e;
    uint64_t off = 0;
    bl_buf_init(&e, 1024);
    if (bl_back_open(&b, dir, seg, &e) == BL_OK) {
        off = b.end;
        if (bl_back_prev(&b, &ln, &e) == BL_OK && ln.torn)
            off = ln.offset;
    }
    bl_back_close(&b);
    bl_buf_free(&e);
    return off;
}

int bl_audit_follow(const char *dir, int style, FILE *out, bl_buf_t *err)
{
    bl_reader_t *r = bl_reader_open(dir, err);
    if (r == NULL)
        return BL_ERROR;
    unsigned nseg = bl_reader_segments(r);
    unsigned seg = nseg ? bl_reader_segment(r, nseg - 1) : 1;
    bl_reader_close(r);
    char path[4096];
    uint64_t off = bl_follow_start(dir, seg); /* skip what is already there */
    uint64_t lineno = 1; /* follow shows no line numbers: any known one spares counting them each tick */
    bl_follow_set_t pending = { 0 };
    const struct timespec tick = { 0, 200 * 1000000 };
    for (;;) {
        r = bl_reader_open(dir, err);
        if (r && bl_reader_seek(r, seg, off, lineno, err) == BL_OK) {
            bl_line_t ln;
            while (bl_reader_next(r, &ln, err) == BL_OK && !ln.torn) {
                json_t *line = NULL;
                int bad = 0;
                json_t *e = bl_tail_entry(&ln, &line, &bad);
                if (e)
                    bl_follow_add(&pending, e);
                json_decref(line);
                seg = ln.segment;
                off = ln.offset + ln.len + 1;
            }
        }
        bl_reader_close(r);
        bl_follow_flush(&pending, style, out);
        bl_segment_path(dir, seg + 1, path, sizeof(path));
        if (access(path, F_OK) == 0) { /* rotated: the rest of this segment was read */
            seg++;
            off = 0;
            continue;
        }
        nanosleep(&tick, NULL);
    }
}
