/*
 * join_input.c - reading the cluster's audit log for `byline audit join`:
 * every shape kube-apiserver's backends and CloudWatch Logs give it, each
 * event folded with the other stages of the same request.
 *
 * Shapes, per line (gzip or plain):
 *   {"kind":"Event",...}                        the log backend (--audit-log-path)
 *   {"kind":"EventList","items":[...]}          one webhook POST body per line
 *   2026-11-28T06:22:33.445Z {"kind":"Event"..} CloudWatch export to S3 (a
 *                                               timestamp, maybe a stream name, then the message)
 *   {"timestamp":..,"message":"{\"kind\":..}"}  `aws logs filter-log-events` events, one per line
 *   [ ... ]                                     an array of any of these
 * and, when the first line is not a JSON value by itself, the whole input
 * as one document: a pretty-printed EventList, or the full output of
 * `aws logs filter-log-events` ({"events":[...]}).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include "audit/join_int.h"
#include "audit/when.h"

#define BL_JOIN_MAX_DEPTH 4   /* array -> EventList -> message -> Event */
#define BL_JOIN_MAX_CHAIN 64  /* requests sharing one auditID searched for a stage to fold */

/* --- one event --- */

static int bl_join_stage_rank(const char *stage)
{
    if (!strcmp(stage, "ResponseComplete") || !strcmp(stage, "Panic"))
        return 3;
    if (!strcmp(stage, "ResponseStarted"))
        return 2;
    return !strcmp(stage, "RequestReceived") ? 1 : 0;
}

static void bl_join_event_clear(bl_join_event_t *e)
{
    char **s[] = { &e->user, &e->imp_user, &e->verb, &e->uri, &e->stage, &e->api_group,
                   &e->namespace_, &e->resource, &e->subresource, &e->name };
    for (size_t i = 0; i < BL_ARRAY_LEN(s); i++) {
        free(*s[i]);
        *s[i] = NULL;
    }
}

/* Takes the fields of one stage's event `v` into e (replacing what it
 * held). Returns BL_OK or BL_ERROR (OOM). */
static int bl_join_event_fill(bl_join_event_t *e, json_t *v, int rank)
{
    int oom = 0;
    json_t *ref = json_object_get(v, "objectRef");
    bl_join_event_clear(e);
    e->user = bl_join_jstr(json_object_get(json_object_get(v, "user"), "username"), &oom);
    e->imp_user = bl_join_jstr(json_object_get(json_object_get(v, "impersonatedUser"), "username"), &oom);
    e->verb = bl_join_jstr(json_object_get(v, "verb"), &oom);
    e->uri = bl_join_jstr(json_object_get(v, "requestURI"), &oom);
    e->stage = bl_join_jstr(json_object_get(v, "stage"), &oom);
    e->has_ref = json_is_object(ref);
    e->api_group = bl_join_jstr(json_object_get(ref, "apiGroup"), &oom);
    e->namespace_ = bl_join_jstr(json_object_get(ref, "namespace"), &oom);
    e->resource = bl_join_jstr(json_object_get(ref, "resource"), &oom);
    e->subresource = bl_join_jstr(json_object_get(ref, "subresource"), &oom);
    e->name = bl_join_jstr(json_object_get(ref, "name"), &oom);
    json_t *code = json_object_get(json_object_get(v, "responseStatus"), "code");
    e->code = json_is_integer(code) && json_integer_value(code) > 0 && json_integer_value(code) < 1000
                  ? (int)json_integer_value(code) : 0;
    e->rank = rank;
    return oom ? BL_ERROR : BL_OK;
}

/* Returns the request with this auditID and receive time, or BL_JOIN_NONE;
 * *last is the last request in the auditID's chain (or BL_JOIN_NONE). */
static uint32_t bl_join_event_find(bl_join_t *j, const char *id, int64_t t, uint32_t *last)
{
    uint32_t i = bl_idmap_get(&j->evmap, id);
    *last = BL_JOIN_NONE;
    for (int n = 0; i != BL_JOIN_NONE && n < BL_JOIN_MAX_CHAIN; n++) {
        if (j->ev[i].t_us == t)
            return i;
        *last = i;
        i = j->ev[i].next;
    }
    return BL_JOIN_NONE;
}

/* Appends a new request for auditID `id`. Returns its index, or BL_JOIN_NONE
 * with *fatal set (the bound, or OOM). */
static uint32_t bl_join_event_new(bl_join_t *j, const char *id, int64_t t, uint32_t last, int *fatal)
{
    size_t max = j->o.max_items ? j->o.max_items : BL_JOIN_MAX_ITEMS;
    if (j->nev >= max || j->nev >= BL_JOIN_NONE - 1)
        return (*fatal = 1, BL_JOIN_NONE);
    if (j->nev == j->evcap) {
        size_t cap = j->evcap ? j->evcap * 2 : 256;
        bl_join_event_t *ev = realloc(j->ev, cap * sizeof(*ev));
        if (ev == NULL)
            return (*fatal = 1, BL_JOIN_NONE);
        j->ev = ev;
        j->evcap = cap;
    }
    bl_join_event_t *e = &j->ev[j->nev];
    int oom = 0;
    memset(e, 0, sizeof(*e));
    e->next = BL_JOIN_NONE;
    e->t_us = t;
    if ((e->audit_id = bl_join_strdup(id, strlen(id), &oom)) == NULL)
        return (*fatal = 1, BL_JOIN_NONE);
    if (last == BL_JOIN_NONE && bl_idmap_put(&j->evmap, e->audit_id, (uint32_t)j->nev) != BL_OK) {
        free(e->audit_id);
        return (*fatal = 1, BL_JOIN_NONE);
    }
    if (last != BL_JOIN_NONE)
        j->ev[last].next = (uint32_t)j->nev;
    j->ev_min = j->ev_min == BL_JOIN_NO_TIME || t < j->ev_min ? t : j->ev_min;
    j->ev_max = j->ev_max == BL_JOIN_NO_TIME || t > j->ev_max ? t : j->ev_max;
    return (uint32_t)j->nev++;
}

static void bl_join_unusable(bl_join_t *j, const char *why)
{
    j->bad_items++;
    snprintf(j->bad_why, sizeof(j->bad_why), "%s", why);
}

/* Takes one audit Event. Returns BL_OK (taken, or unusable and counted),
 * or BL_ERROR (the bound on events, or OOM). */
static int bl_join_event(bl_join_t *j, json_t *v)
{
    const char *id = json_string_value(json_object_get(v, "auditID"));
    const char *stage = json_string_value(json_object_get(v, "stage"));
    const char *ts = json_string_value(json_object_get(v, "requestReceivedTimestamp"));
    int64_t t;
    int rank = stage ? bl_join_stage_rank(stage) : 0, fatal = 0;
    if (ts == NULL)
        ts = json_string_value(json_object_get(v, "stageTimestamp"));
    if (id == NULL || *id == '\0' || rank == 0)
        return (bl_join_unusable(j, "an Event without an auditID or a known stage"), BL_OK);
    if (ts == NULL || bl_when_rfc3339(ts, &t) != BL_OK)
        return (bl_join_unusable(j, "an Event without a valid requestReceivedTimestamp"), BL_OK);
    if ((j->o.since_us != BL_JOIN_NO_TIME && t < j->o.since_us - j->o.grace_us) ||
        (j->o.until_us != BL_JOIN_NO_TIME && t > j->o.until_us + j->o.grace_us)) {
        j->sum.events_outside++;
        return BL_OK;
    }
    char key[BL_JOIN_MAX_STR + 1];
    snprintf(key, sizeof(key), "%s", id); /* the key as it is kept: cut like every string */
    uint32_t last, i = bl_join_event_find(j, key, t, &last);
    if (i == BL_JOIN_NONE && (i = bl_join_event_new(j, key, t, last, &fatal)) == BL_JOIN_NONE)
        return BL_ERROR;
    if (rank > j->ev[i].rank && bl_join_event_fill(&j->ev[i], v, rank) != BL_OK)
        return BL_ERROR;
    return BL_OK;
}

/* --- shapes --- */

static int bl_join_value(bl_join_t *j, json_t *v, int depth);

static int bl_join_each(bl_join_t *j, json_t *arr, int depth)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        if (bl_join_value(j, x, depth + 1) == BL_ERROR)
            return BL_ERROR;
    }
    return BL_OK;
}

/* A CloudWatch event's message is the Event as a string. */
static int bl_join_message(bl_join_t *j, const char *msg, int depth)
{
    json_error_t e;
    json_t *v = json_loads(msg, 0, &e);
    if (v == NULL)
        return (bl_join_unusable(j, "a CloudWatch message that is not JSON"), BL_OK);
    int rc = bl_join_value(j, v, depth + 1);
    json_decref(v);
    return rc;
}

/* Takes whatever audit events `v` holds. Returns BL_OK (unusable parts are
 * counted) or BL_ERROR (fatal: the bound, OOM). */
static int bl_join_value(bl_join_t *j, json_t *v, int depth)
{
    if (depth > BL_JOIN_MAX_DEPTH)
        return (bl_join_unusable(j, "audit events nested too deep"), BL_OK);
    if (json_is_array(v))
        return bl_join_each(j, v, depth);
    if (!json_is_object(v))
        return (bl_join_unusable(j, "not a JSON object"), BL_OK);
    const char *kind = json_string_value(json_object_get(v, "kind"));
    const char *msg = json_string_value(json_object_get(v, "message"));
    json_t *items = json_object_get(v, "items"), *events = json_object_get(v, "events");
    if (kind && !strcmp(kind, "EventList") && json_is_array(items))
        return bl_join_each(j, items, depth);
    if (json_object_get(v, "auditID") || (kind && !strcmp(kind, "Event")))
        return bl_join_event(j, v);
    if (msg)
        return bl_join_message(j, msg, depth);
    if (json_is_array(events))
        return bl_join_each(j, events, depth);
    bl_join_unusable(j, "neither an audit Event, an EventList nor a CloudWatch log event");
    return BL_OK;
}

/* Skips a CloudWatch prefix (a timestamp, maybe a log stream name) before
 * the JSON. Returns where the JSON starts, or NULL if this is not one. */
static const char *bl_join_skip_prefix(const char *p, const char *end)
{
    if (p == end || *p < '0' || *p > '9')
        return NULL;
    for (int tokens = 0; tokens < 3 && p < end && *p != '{'; tokens++) {
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    return p < end && *p == '{' ? p : NULL;
}

/* Takes one parsed value (stolen) read as line `lineno` of `name`: its
 * events, and the first reason its unusable objects were unusable.
 * Returns what bl_join_value returns. */
static int bl_join_take_value(bl_join_t *j, json_t *v, size_t lineno, const char *name)
{
    j->bad_items = 0;
    int rc = bl_join_value(j, v, 0);
    json_decref(v);
    if (rc == BL_OK && j->bad_items)
        bl_join_bad(j, lineno, name, j->bad_why);
    return rc;
}

/* Takes one input line. Returns BL_OK, BL_DECLINED if it is not JSON (the
 * caller decides whether that is bad), BL_ERROR (fatal). */
static int bl_join_line(bl_join_t *j, const char *p, size_t n, size_t lineno, const char *name)
{
    if (n == 0)
        return BL_OK; /* p may be NULL: an empty buffer has no memory yet */
    const char *end = p + n;
    json_error_t e;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    if (p == end)
        return BL_OK;
    j->sum.lines++;
    const char *json = *p == '{' || *p == '[' ? p : bl_join_skip_prefix(p, end);
    json_t *v = json ? json_loadb(json, (size_t)(end - json), 0, &e) : NULL;
    if (v == NULL)
        return BL_DECLINED;
    return bl_join_take_value(j, v, lineno, name);
}

/* --- the input --- */

typedef struct {
    gzFile gz;
    char chunk[64 * 1024];
    size_t pos, len;
    int eof;
} bl_join_in_t;

/* Reads the next line (without '\n') into `line`. Returns BL_OK, BL_DECLINED
 * at the end, or BL_ERROR on a read error. A line over the buffer's bound
 * is read to its end and dropped, with *too_long set. */
static int bl_join_getline(bl_join_in_t *in, bl_buf_t *line, int *too_long)
{
    bl_buf_reset(line);
    *too_long = 0;
    for (;;) {
        if (in->pos == in->len) {
            if (in->eof)
                return bl_buf_size(line) || *too_long ? BL_OK : BL_DECLINED;
            int n = gzread(in->gz, in->chunk, sizeof(in->chunk));
            if (n < 0)
                return BL_ERROR;
            in->eof = n == 0;
            in->pos = 0;
            in->len = (size_t)n;
            continue;
        }
        char *nl = memchr(in->chunk + in->pos, '\n', in->len - in->pos);
        size_t take = (nl ? (size_t)(nl - in->chunk) : in->len) - in->pos;
        if (!*too_long && bl_buf_append(line, in->chunk + in->pos, take) != BL_OK) {
            *too_long = 1;
            bl_buf_reset(line);
        }
        in->pos += take + (nl != NULL);
        if (nl)
            return BL_OK;
    }
}

/* The first line was not a JSON value alone: is the whole input one? The
 * document is in `doc`; if it does not parse, its lines are taken one by
 * one instead. Returns BL_OK or BL_ERROR. */
static int bl_join_document(bl_join_t *j, bl_buf_t *doc, const char *name)
{
    json_error_t e;
    json_t *v = json_loadb(bl_buf_data(doc), bl_buf_size(doc), 0, &e);
    if (v) {
        j->sum.lines++;
        return bl_join_take_value(j, v, 1, name);
    }
    const char *p = bl_buf_data(doc), *end = p + bl_buf_size(doc);
    for (size_t lineno = 1; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        int rc = bl_join_line(j, p, n, lineno, name);
        if (rc == BL_ERROR)
            return BL_ERROR;
        if (rc == BL_DECLINED)
            bl_join_bad(j, lineno, name, "not JSON, nor a timestamp followed by JSON");
        p += n + 1;
    }
    return BL_OK;
}

/* Takes one line while reading lines. Returns BL_OK, BL_AGAIN when the
 * first non-empty line starts a JSON value it does not finish (the input
 * may be one pretty-printed document), or BL_ERROR (fatal). */
static int bl_join_take_line(bl_join_t *j, const char *p, size_t n, size_t lineno, const char *name, int *seen)
{
    size_t k = 0;
    while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
        k++;
    int first = !*seen && k < n;
    *seen |= k < n;
    int rc = bl_join_line(j, p, n, lineno, name);
    if (rc == BL_DECLINED && first && (p[k] == '{' || p[k] == '[')) {
        j->sum.lines--; /* counted again as the document */
        return BL_AGAIN;
    }
    if (rc == BL_DECLINED)
        bl_join_bad(j, lineno, name, "not JSON, nor a timestamp followed by JSON");
    return rc == BL_ERROR ? BL_ERROR : BL_OK;
}

/* Reads lines; switches to whole-document mode when the first non-empty
 * line starts a JSON value it does not finish. */
static int bl_join_lines(bl_join_t *j, bl_join_in_t *in, const char *name, bl_buf_t *err)
{
    bl_buf_t line, doc;
    bl_buf_init(&line, BL_JOIN_MAX_LINE);
    bl_buf_init(&doc, BL_JOIN_MAX_DOC);
    int rc = BL_OK, too_long, docmode = 0, seen = 0;
    size_t lineno = 0, max = j->o.max_items ? j->o.max_items : (size_t)BL_JOIN_MAX_ITEMS;
    while (rc == BL_OK && (rc = bl_join_getline(in, &line, &too_long)) == BL_OK) {
        const char *p = bl_buf_data(&line);
        size_t n = bl_buf_size(&line);
        lineno++;
        if (docmode && (bl_buf_append(&doc, "\n", 1) || bl_buf_append(&doc, p, n))) {
            bl_buf_printf(err, "%s: not JSON lines, and over %u MiB as one document", name, BL_JOIN_MAX_DOC >> 20);
            rc = BL_ERROR;
        } else if (!docmode && too_long) {
            j->sum.lines++;
            bl_join_bad(j, lineno, name, "line longer than 16 MiB");
        } else if (!docmode && (rc = bl_join_take_line(j, p, n, lineno, name, &seen)) == BL_AGAIN) {
            docmode = 1;
            rc = bl_buf_append(&doc, p, n) == BL_OK ? BL_OK : BL_ERROR;
        }
        if (rc == BL_ERROR && bl_buf_size(err) == 0)
            bl_buf_printf(err, "%s: more than %zu cluster requests (or out of memory); narrow the window "
                          "with --since/--until", name, max);
    }
    if (rc == BL_DECLINED && docmode && (rc = bl_join_document(j, &doc, name)) != BL_OK)
        bl_buf_printf(err, "%s: more than %zu cluster requests (or out of memory)", name, max);
    else if (rc == BL_DECLINED)
        rc = BL_OK;
    else if (rc == BL_ERROR && bl_buf_size(err) == 0)
        bl_buf_printf(err, "%s: read error", name);
    bl_buf_free(&line);
    bl_buf_free(&doc);
    return rc;
}

int bl_join_read_cluster(bl_join_t *j, int fd, const char *name, bl_buf_t *err)
{
    int rc = BL_ERROR, dfd = dup(fd);
    bl_join_in_t *in = calloc(1, sizeof(*in));
    if (dfd < 0 || in == NULL) {
        bl_buf_printf(err, "%s: %s", name, dfd < 0 ? strerror(errno) : "out of memory");
        goto end;
    }
    if ((in->gz = gzdopen(dfd, "rb")) == NULL) {
        bl_buf_printf(err, "%s: cannot read", name);
        close(dfd);
        goto end;
    }
    gzbuffer(in->gz, 128 * 1024);
    rc = bl_join_lines(j, in, name, err);
    gzclose(in->gz);
end:
    free(in);
    return rc;
}
