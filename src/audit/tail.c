/* tail.c - `byline audit tail`: join intent and result lines, newest N. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "audit/tail.h"

#define BL_TAIL_MAX_READ (256u * 1024 * 1024)

typedef struct {
    json_t *rec;     /* merged record (owned) */
    char id[40];
    size_t order;    /* position of its first line */
} bl_tail_row_t;

typedef struct {
    bl_tail_row_t *rows;
    size_t n, cap;
} bl_tail_set_t;

static bl_tail_row_t *bl_tail_find(bl_tail_set_t *s, const char *id)
{
    for (size_t i = s->n; i-- > 0;) /* recent rows are likeliest */
        if (!strcmp(s->rows[i].id, id))
            return &s->rows[i];
    return NULL;
}

/* Merges one parsed line into the set. Returns BL_OK or BL_DECLINED (not a record). */
static int bl_tail_add(bl_tail_set_t *s, json_t *line, size_t order)
{
    const char *id = json_string_value(json_object_get(line, "id"));
    const char *kind = json_string_value(json_object_get(line, "kind"));
    if (id == NULL || kind == NULL || strlen(id) >= sizeof(s->rows[0].id))
        return BL_DECLINED;
    bl_tail_row_t *row = bl_tail_find(s, id);
    if (row) {
        json_object_update_missing(row->rec, line);
        if (!strcmp(kind, "result"))
            json_object_update(row->rec, line);
        json_object_set_new(row->rec, "kind", json_string("request"));
        return BL_OK;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        bl_tail_row_t *r = realloc(s->rows, cap * sizeof(*r));
        if (r == NULL)
            return BL_DECLINED;
        s->rows = r;
        s->cap = cap;
    }
    row = &s->rows[s->n++];
    row->rec = json_deep_copy(line);
    json_object_set_new(row->rec, "kind", json_string("request"));
    snprintf(row->id, sizeof(row->id), "%s", id);
    row->order = order;
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

/* Prints one request in the `ts=... actor=...` form. */
static void bl_tail_print_text(json_t *rec, FILE *out)
{
    bl_buf_t b;
    bl_buf_init(&b, 64 * 1024);
    char ts[32];
    snprintf(ts, sizeof(ts), "%s", bl_tail_str(rec, "ts", "-"));
    char *dot = strchr(ts, '.');
    if (dot)
        memcpy(dot, "Z", 2); /* seconds are enough for people; --json keeps the rest */
    bl_buf_puts(&b, "ts=");
    bl_tail_value(&b, ts, 0);
    bl_buf_puts(&b, " actor=");
    bl_tail_value(&b, json_is_string(json_object_get(rec, "actor")) ? bl_tail_str(rec, "actor", "") : "unauthenticated", 0);
    bl_buf_puts(&b, " action=");
    const char *action = bl_tail_str(rec, "action", NULL);
    char raw[1100];
    if (action == NULL) {
        snprintf(raw, sizeof(raw), "%s %s", bl_tail_str(rec, "method", "-"), bl_tail_str(rec, "uri", "-"));
        action = raw;
    }
    bl_tail_value(&b, action, 1);
    bl_buf_puts(&b, " connection=");
    bl_tail_value(&b, bl_tail_str(rec, "connection", "-"), 0);
    bl_buf_puts(&b, " result=");
    bl_tail_value(&b, bl_tail_str(rec, "result", "pending"), 0);
    json_t *status = json_object_get(rec, "status");
    if (json_is_integer(status))
        bl_buf_printf(&b, " status=%lld", (long long)json_integer_value(status));
    const char *reason = bl_tail_str(rec, "reason", NULL);
    if (reason) {
        bl_buf_puts(&b, " reason=");
        bl_tail_value(&b, reason, 1);
    }
    bl_buf_puts(&b, " id=");
    bl_tail_value(&b, bl_tail_str(rec, "id", "-"), 0);
    fprintf(out, "%s\n", bl_buf_cstr(&b));
    bl_buf_free(&b);
}

static void bl_tail_print(json_t *rec, int style, FILE *out)
{
    if (style == BL_TAIL_JSON) {
        char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
    } else {
        bl_tail_print_text(rec, out);
    }
}

/* Parses every complete line of buf[0..len) into the set. */
static void bl_tail_parse(bl_tail_set_t *s, const char *buf, size_t len, size_t *skipped)
{
    size_t order = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break; /* a line still being written */
        json_error_t e;
        json_t *line = json_loadb(p, (size_t)(nl - p), 0, &e);
        if (line == NULL || bl_tail_add(s, line, order++) != BL_OK)
            if (skipped)
                (*skipped)++;
        json_decref(line);
        p = nl + 1;
    }
}

/* Reads the last `want` bytes of `f` (starting at a line boundary). */
static char *bl_tail_read(FILE *f, off_t size, size_t want, size_t *len)
{
    off_t start = size > (off_t)want ? size - (off_t)want : 0;
    char *buf = malloc((size_t)(size - start) + 1);
    if (buf == NULL || fseeko(f, start, SEEK_SET) != 0) {
        free(buf);
        return NULL;
    }
    size_t n = fread(buf, 1, (size_t)(size - start), f);
    size_t skip = 0;
    if (start > 0) { /* drop the partial first line */
        const char *nl = memchr(buf, '\n', n);
        skip = nl ? (size_t)(nl - buf) + 1 : n;
    }
    memmove(buf, buf + skip, n - skip);
    *len = n - skip;
    return buf;
}

int bl_audit_tail(const char *path, size_t n, int style, FILE *out, size_t *skipped, bl_buf_t *err)
{
    FILE *f = fopen(path, "re");
    struct stat st;
    if (f == NULL && errno == ENOENT)
        return BL_DECLINED; /* no request has been audited yet */
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        bl_buf_printf(err, "cannot read %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return BL_ERROR;
    }
    bl_tail_set_t set = { 0 };
    size_t want = BL_MAX(n, (size_t)1) * 4096;
    for (;;) {
        size_t len = 0;
        char *buf = bl_tail_read(f, st.st_size, want, &len);
        if (buf == NULL)
            break;
        bl_tail_free(&set);
        size_t sk = 0;
        bl_tail_parse(&set, buf, len, &sk);
        free(buf);
        if (skipped)
            *skipped = sk;
        if (set.n > n || (off_t)want >= st.st_size || want >= BL_TAIL_MAX_READ)
            break;
        want *= 4;
    }
    fclose(f);
    size_t first = set.n > n ? set.n - n : 0;
    /* A row whose intent fell off the front of the window is incomplete. */
    for (size_t i = first; i < set.n; i++)
        bl_tail_print(set.rows[i].rec, style, out);
    bl_tail_free(&set);
    return BL_OK;
}

int bl_audit_follow(const char *path, int style, FILE *out, bl_buf_t *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL || fseeko(f, 0, SEEK_END) != 0) {
        bl_buf_printf(err, "cannot read %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return BL_ERROR;
    }
    bl_tail_set_t pending = { 0 };
    bl_buf_t line;
    bl_buf_init(&line, 1024 * 1024);
    for (;;) {
        int ch = fgetc(f);
        if (ch == EOF) {
            clearerr(f);
            fflush(out);
            usleep(200 * 1000);
            continue;
        }
        if (ch != '\n') {
            char c8 = (char)ch;
            if (bl_buf_append(&line, &c8, 1) != BL_OK)
                bl_buf_reset(&line);
            continue;
        }
        json_error_t e;
        json_t *j = json_loadb(bl_buf_data(&line), bl_buf_size(&line), 0, &e);
        bl_buf_reset(&line);
        if (j == NULL)
            continue;
        const char *kind = json_string_value(json_object_get(j, "kind"));
        if (kind && !strcmp(kind, "result")) {
            bl_tail_add(&pending, j, 0);
            bl_tail_row_t *row = bl_tail_find(&pending, json_string_value(json_object_get(j, "id")));
            if (row) {
                bl_tail_print(row->rec, style, out);
                json_decref(row->rec);
                *row = pending.rows[--pending.n];
            }
        } else if (kind && pending.n < 100000) {
            bl_tail_add(&pending, j, 0);
        }
        json_decref(j);
    }
}
