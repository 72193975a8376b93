/* tail.c - `byline audit tail`: the newest requests, intents joined with results. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "audit/merge.h"
#include "audit/reader.h"
#include "audit/tail.h"

typedef struct {
    json_t *rec;     /* merged entry (owned) */
    char id[40];     /* "" for notices */
} bl_tail_row_t;

typedef struct {
    bl_tail_row_t *rows;
    size_t n, cap;
} bl_tail_set_t;

static bl_tail_row_t *bl_tail_find(bl_tail_set_t *s, const char *id)
{
    for (size_t i = s->n; i-- > 0;) /* recent rows are likeliest */
        if (s->rows[i].id[0] && !strcmp(s->rows[i].id, id))
            return &s->rows[i];
    return NULL;
}

static bl_tail_row_t *bl_tail_push(bl_tail_set_t *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        bl_tail_row_t *r = realloc(s->rows, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        s->rows = r;
        s->cap = cap;
    }
    return &s->rows[s->n++];
}

/* Merges one entry into the set: a result or aborted entry completes the
 * row of its intent (merge.h). Returns BL_OK or BL_DECLINED (not an entry). */
static int bl_tail_add(bl_tail_set_t *s, json_t *e)
{
    const char *id = json_string_value(json_object_get(e, "id"));
    bl_tail_row_t *row = id ? bl_tail_find(s, id) : NULL;
    if (row)
        return bl_merge_add(row->rec, e);
    json_t *rec = bl_merge_start(e);
    if (rec == NULL || (row = bl_tail_push(s)) == NULL) {
        json_decref(rec);
        return BL_DECLINED;
    }
    row->rec = rec;
    snprintf(row->id, sizeof(row->id), "%s", id ? id : "");
    return BL_OK;
}

static void bl_tail_free(bl_tail_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->rows[i].rec);
    free(s->rows);
    s->rows = NULL;
    s->n = s->cap = 0;
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

/* Reads segments first..last into the set. */
static int bl_tail_read(const char *dir, unsigned first, bl_tail_set_t *set, size_t *skipped, bl_buf_t *err)
{
    bl_reader_t *r = bl_reader_open(dir, err);
    if (r == NULL || bl_reader_seek(r, first, 0, err) != BL_OK) {
        bl_reader_close(r);
        return BL_ERROR;
    }
    bl_line_t ln;
    int rc;
    while ((rc = bl_reader_next(r, &ln, err)) == BL_OK) {
        json_t *line = NULL;
        int bad = 0;
        json_t *e = ln.torn ? NULL : bl_tail_entry(&ln, &line, &bad);
        if (e && bl_tail_add(set, e) != BL_OK)
            bad = 1;
        *skipped += (size_t)(bad || ln.torn);
        json_decref(line);
    }
    bl_reader_close(r);
    return rc == BL_ERROR ? BL_ERROR : BL_OK;
}

int bl_audit_tail(const char *dir, size_t n, int style, FILE *out, size_t *skipped, bl_buf_t *err)
{
    size_t sk = 0;
    bl_reader_t *r = bl_reader_open(dir, err);
    unsigned nseg = r ? bl_reader_segments(r) : 0;
    bl_reader_close(r);
    if (r == NULL)
        return BL_ERROR;
    if (nseg == 0)
        return BL_DECLINED;
    bl_tail_set_t set = { 0 };
    /* Newest segments first, widening until there are enough requests. */
    for (unsigned first = nseg; first >= 1; first--) {
        bl_tail_free(&set);
        sk = 0;
        if (bl_tail_read(dir, first, &set, &sk, err) != BL_OK) {
            bl_tail_free(&set);
            return BL_ERROR;
        }
        if (set.n > n)
            break;
    }
    for (size_t i = set.n > n ? set.n - n : 0; i < set.n; i++)
        bl_tail_print(set.rows[i].rec, style, out);
    bl_tail_free(&set);
    if (skipped)
        *skipped = sk;
    return BL_OK;
}

/* --- follow --- */

/* Prints each request of `set` that has its outcome, and drops it. */
static void bl_tail_flush_done(bl_tail_set_t *set, int style, FILE *out)
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

int bl_audit_follow(const char *dir, int style, FILE *out, bl_buf_t *err)
{
    bl_reader_t *r = bl_reader_open(dir, err);
    if (r == NULL)
        return BL_ERROR;
    unsigned seg = bl_reader_segments(r);
    bl_reader_close(r);
    /* Start at the end: skip what is already there. */
    char path[4096];
    struct stat st;
    bl_segment_path(dir, seg ? seg : 1, path, sizeof(path));
    uint64_t off = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (seg == 0)
        seg = 1;
    bl_tail_set_t pending = { 0 };
    const struct timespec tick = { 0, 200 * 1000000 };
    for (;;) {
        r = bl_reader_open(dir, err);
        if (r && bl_reader_seek(r, seg, off, err) == BL_OK) {
            bl_line_t ln;
            while (bl_reader_next(r, &ln, err) == BL_OK && !ln.torn) {
                json_t *line = NULL;
                int bad = 0;
                json_t *e = bl_tail_entry(&ln, &line, &bad);
                if (e && pending.n < 100000)
                    bl_tail_add(&pending, e);
                json_decref(line);
                seg = ln.segment;
                off = ln.offset + ln.len + 1;
            }
        }
        bl_reader_close(r);
        bl_tail_flush_done(&pending, style, out);
        bl_segment_path(dir, seg + 1, path, sizeof(path));
        if (access(path, F_OK) == 0) { /* rotated: the rest of this segment was read */
            seg++;
            off = 0;
            continue;
        }
        nanosleep(&tick, NULL);
    }
}
