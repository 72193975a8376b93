/*
 * join.c - `byline audit join`: byline's side of the join (the ledger's
 * requests), pairing on auditID, classification and the rows. The cluster
 * log's shapes are read in join_input.c. docs/AUDIT-JOIN.md says what each
 * kind means to an operator.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "audit/join_int.h"
#include "audit/reader.h"
#include "audit/when.h"

/* --- small things --- */

char *bl_join_strdup(const char *s, size_t n, int *oom)
{
    if (s == NULL)
        return NULL;
    if (n > BL_JOIN_MAX_STR) { /* cut on a UTF-8 boundary: the output stays valid JSON */
        n = BL_JOIN_MAX_STR;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *d = malloc(n + 1);
    if (d == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *bl_join_jstr(json_t *v, int *oom)
{
    return json_is_string(v) ? bl_join_strdup(json_string_value(v), json_string_length(v), oom) : NULL;
}

void bl_join_bad(bl_join_t *j, size_t lineno, const char *name, const char *why)
{
    if (j->sum.bad_lines++ == 0)
        snprintf(j->sum.first_bad, sizeof(j->sum.first_bad), "%s line %zu: %s", name, lineno, why);
}

_Static_assert(BL_IDMAP_NONE == BL_JOIN_NONE, "the maps' \"none\" is the rows' \"none\"");

void bl_join_format_time(int64_t us, int micro, char *out, size_t cap)
{
    int64_t s = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    time_t t = (time_t)s;
    struct tm tm;
    char date[32];
    if (us == BL_JOIN_NO_TIME || gmtime_r(&t, &tm) == NULL) {
        snprintf(out, cap, "-");
        return;
    }
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    if (micro)
        snprintf(out, cap, "%s.%06dZ", date, (int)(us - s * 1000000));
    else
        snprintf(out, cap, "%sZ", date);
}

/* --- lifecycle --- */

bl_join_t *bl_join_new(const bl_join_opts_t *o)
{
    bl_join_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->o = *o;
    j->ev_min = j->ev_max = BL_JOIN_NO_TIME;
    j->sum.since_us = j->sum.until_us = BL_JOIN_NO_TIME;
    for (size_t i = 0; i < o->nshared && j->nshared < BL_JOIN_MAX_SHARED; i++)
        j->shared[j->nshared++] = o->shared_users[i];
    return j;
}

static void bl_join_rec_clear(bl_join_rec_t *r)
{
    char *s[] = { r->id, r->actor, r->action, r->connection, r->result, r->reason,
                  r->verb, r->api_group, r->namespace_, r->resource, r->subresource, r->name };
    for (size_t i = 0; i < BL_ARRAY_LEN(s); i++)
        free(s[i]);
}

void bl_join_free(bl_join_t *j)
{
    if (j == NULL)
        return;
    for (size_t i = 0; i < j->nrec; i++)
        bl_join_rec_clear(&j->rec[i]);
    for (size_t i = 0; i < j->nev; i++) {
        bl_join_event_t *e = &j->ev[i];
        char *s[] = { e->audit_id, e->user, e->imp_user, e->verb, e->uri, e->stage,
                      e->api_group, e->namespace_, e->resource, e->subresource, e->name };
        for (size_t k = 0; k < BL_ARRAY_LEN(s); k++)
            free(s[k]);
    }
    free(j->rec);
    free(j->ev);
    bl_idmap_free(&j->evmap);
    bl_idmap_free(&j->recmap);
    free(j->rows);
    free(j);
}

/* --- the ledger --- */

/* Appends a record for `id`. Returns its index, or BL_JOIN_NONE (the bound, OOM). */
static uint32_t bl_join_rec_new(bl_join_t *j, const char *id, int64_t t)
{
    size_t max = j->o.max_items ? j->o.max_items : BL_JOIN_MAX_ITEMS;
    int oom = 0;
    if (j->nrec >= max || j->nrec >= BL_JOIN_NONE - 1)
        return BL_JOIN_NONE;
    if (j->nrec == j->reccap) {
        size_t cap = j->reccap ? j->reccap * 2 : 256;
        bl_join_rec_t *r = realloc(j->rec, cap * sizeof(*r));
        if (r == NULL)
            return BL_JOIN_NONE;
        j->rec = r;
        j->reccap = cap;
    }
    bl_join_rec_t *r = &j->rec[j->nrec];
    memset(r, 0, sizeof(*r));
    r->event = BL_JOIN_NONE;
    r->t_us = t;
    if ((r->id = bl_join_strdup(id, strlen(id), &oom)) == NULL ||
        bl_idmap_put(&j->recmap, r->id, (uint32_t)j->nrec) != BL_OK) {
        free(r->id);
        return BL_JOIN_NONE;
    }
    return (uint32_t)j->nrec++;
}

/* Takes the request's own fields (an intent, or a refused request's result). */
static int bl_join_rec_request(bl_join_rec_t *r, json_t *e)
{
    int oom = 0;
    json_t *q = json_object_get(e, "request");
    r->actor = bl_join_jstr(json_object_get(e, "actor"), &oom);
    r->action = bl_join_jstr(json_object_get(e, "action"), &oom);
    r->connection = bl_join_jstr(json_object_get(e, "connection"), &oom);
    r->verb = bl_join_jstr(json_object_get(q, "verb"), &oom);
    r->api_group = bl_join_jstr(json_object_get(q, "apiGroup"), &oom);
    r->namespace_ = bl_join_jstr(json_object_get(q, "namespace"), &oom);
    r->resource = bl_join_jstr(json_object_get(q, "resource"), &oom);
    r->subresource = bl_join_jstr(json_object_get(q, "subresource"), &oom);
    r->name = bl_join_jstr(json_object_get(q, "name"), &oom);
    r->truncated = json_is_true(json_object_get(q, "truncated"));
    return oom ? BL_ERROR : BL_OK;
}

/* Takes a result or aborted entry into its record. */
static int bl_join_rec_outcome(bl_join_rec_t *r, json_t *e, int aborted)
{
    int oom = 0;
    json_t *st = json_object_get(e, "status");
    free(r->result);
    free(r->reason);
    r->result = aborted ? bl_join_strdup("aborted", 7, &oom) : bl_join_jstr(json_object_get(e, "result"), &oom);
    r->reason = bl_join_jstr(json_object_get(e, "reason"), &oom);
    r->status = json_is_integer(st) && json_integer_value(st) > 0 && json_integer_value(st) < 1000
                    ? (int)json_integer_value(st) : 0;
    r->has_result = 1;
    r->aborted = (unsigned char)aborted;
    return oom ? BL_ERROR : BL_OK;
}

/* Returns 1 if t is inside the window plus grace the records are read for. */
static int bl_join_rec_wanted(const bl_join_t *j, int64_t t)
{
    int64_t since = j->o.since_us != BL_JOIN_NO_TIME ? j->o.since_us : j->ev_min;
    int64_t until = j->o.until_us != BL_JOIN_NO_TIME ? j->o.until_us : j->ev_max;
    return (since == BL_JOIN_NO_TIME || t >= since - j->o.grace_us) &&
           (until == BL_JOIN_NO_TIME || t <= until + j->o.grace_us);
}

/* Takes one ledger entry. Returns BL_OK, BL_DECLINED (not a request
 * entry: counted as bad when malformed), BL_ERROR (the bound, OOM). */
static int bl_join_entry(bl_join_t *j, json_t *e)
{
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *ts = json_string_value(json_object_get(e, "ts"));
    int64_t t;
    if (kind && !strcmp(kind, "notice"))
        return BL_OK;
    if (kind == NULL || id == NULL || ts == NULL || bl_when_rfc3339(ts, &t) != BL_OK)
        return BL_DECLINED;
    uint32_t i = bl_idmap_get(&j->recmap, id);
    int intent = !strcmp(kind, "intent"), full = json_object_get(e, "credential") != NULL;
    if (i == BL_JOIN_NONE && (intent || (full && !strcmp(kind, "result")))) {
        if (!bl_join_rec_wanted(j, t))
            return (j->sum.records_outside++, BL_OK);
        if ((i = bl_join_rec_new(j, id, t)) == BL_JOIN_NONE || bl_join_rec_request(&j->rec[i], e) != BL_OK)
            return BL_ERROR;
        j->rec[i].has_intent = (unsigned char)intent;
        if (intent)
            return BL_OK;
    } else if (i == BL_JOIN_NONE || intent) {
        return BL_OK; /* the outcome of a request outside the window; or an id seen twice */
    }
    if (strcmp(kind, "result") && strcmp(kind, "aborted"))
        return BL_DECLINED;
    return bl_join_rec_outcome(&j->rec[i], e, !strcmp(kind, "aborted"));
}

/* Takes one ledger line: a leaf's entry, or a checkpoint (skipped). */
static int bl_join_ledger_line(bl_join_t *j, const bl_line_t *ln)
{
    json_error_t e;
    json_t *line = json_loadb(ln->p, ln->len, JSON_ALLOW_NUL, &e);
    json_t *entry = json_object_get(line, "entry");
    int rc = BL_OK;
    if (json_is_object(entry))
        rc = bl_join_entry(j, entry);
    else if (json_object_get(line, "checkpoint") == NULL)
        rc = BL_DECLINED;
    json_decref(line);
    if (rc == BL_DECLINED)
        j->sum.ledger_bad++;
    return rc == BL_ERROR ? BL_ERROR : BL_OK;
}

int bl_join_read_ledger(bl_join_t *j, const char *dir, bl_buf_t *err)
{
    if ((j->o.since_us == BL_JOIN_NO_TIME || j->o.until_us == BL_JOIN_NO_TIME) && j->ev_min == BL_JOIN_NO_TIME)
        return BL_OK; /* no window to judge in: bl_join_run says so; no need to read a long ledger */
    bl_reader_t *r = bl_reader_open(dir, err);
    bl_line_t ln;
    int rc = BL_ERROR;
    if (r == NULL)
        return BL_ERROR;
    if (bl_reader_segments(r) == 0) {
        bl_buf_printf(err, "no ledger in %s", dir);
        goto end;
    }
    while ((rc = bl_reader_next(r, &ln, err)) == BL_OK) {
        if (ln.torn)
            continue; /* never synced: nothing was forwarded on its account */
        if (bl_join_ledger_line(j, &ln) != BL_OK) {
            bl_buf_printf(err, "more than %zu byline requests (or out of memory); narrow the window "
                          "with --since/--until", j->o.max_items ? j->o.max_items : (size_t)BL_JOIN_MAX_ITEMS);
            rc = BL_ERROR;
            break;
        }
    }
    if (rc == BL_DECLINED)
        rc = BL_OK;
end:
    bl_reader_close(r);
    return rc;
}

/* --- pairing --- */

static int bl_join_is_shared(const bl_join_t *j, const char *user)
{
    for (size_t i = 0; user && *user && i < j->nshared; i++)
        if (!strcmp(j->shared[i], user))
            return 1;
    return 0;
}

/* Returns 1 if id is shaped like byline's ids: a UUIDv7 (RFC 9562). */
static int bl_join_uuid7(const char *id)
{
    if (strlen(id) != 36 || id[14] != '7' || !strchr("89abAB", id[19]) || id[19] == '\0')
        return 0;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? id[i] != '-' : bl_hexval((unsigned char)id[i]) < 0)
            return 0;
    return 1;
}

static int64_t bl_join_abs(int64_t v)
{
    return v < 0 ? -v : v;
}

/* Pairs each record with the cluster request of its id nearest in time
 * (a second request reusing an id stays unpaired, to be flagged). */
static void bl_join_pair(bl_join_t *j)
{
    for (size_t r = 0; r < j->nrec; r++) {
        bl_join_rec_t *rec = &j->rec[r];
        uint32_t best = BL_JOIN_NONE;
        for (uint32_t i = bl_idmap_get(&j->evmap, rec->id); i != BL_JOIN_NONE; i = j->ev[i].next)
            if (!j->ev[i].used && (best == BL_JOIN_NONE ||
                                   bl_join_abs(j->ev[i].t_us - rec->t_us) < bl_join_abs(j->ev[best].t_us - rec->t_us)))
                best = i;
        if (best == BL_JOIN_NONE)
            continue;
        j->ev[best].used = 1;
        rec->event = best;
        /* byline's upstream identity is whoever the cluster says sent what byline forwarded */
        const char *user = j->ev[best].user;
        if (rec->has_intent && user && *user && !bl_join_is_shared(j, user) && j->nshared < BL_JOIN_MAX_SHARED)
            j->shared[j->nshared++] = user;
    }
}

/* --- classification --- */

static const char *bl_join_s(const char *s)
{
    return s ? s : "";
}

/* Writes an object as "resource.group/name/sub -n ns", or "none". */
static void bl_join_obj(char *out, size_t cap, const char *res, const char *group, const char *name,
                        const char *sub, const char *ns)
{
    if (res == NULL || *res == '\0') {
        snprintf(out, cap, "none");
        return;
    }
    snprintf(out, cap, "%s%s%s%s%s%s%s", res, group && *group ? "." : "", bl_join_s(group),
             name && *name ? "/" : "", bl_join_s(name), sub && *sub ? "/" : "", bl_join_s(sub));
    if (ns && *ns) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, " -n %s", ns);
    }
}

/* Returns 1 if byline's value b and the cluster's c name the same thing.
 * The cluster may know a name byline did not (a create's body it did not
 * read whole): that alone is no difference. */
static int bl_join_same(const char *b, const char *c, int creating)
{
    b = bl_join_s(b);
    c = bl_join_s(c);
    if (*b == '\0' && *c != '\0')
        return creating;
    return !strcmp(b, c);
}

static int bl_join_same_object(const bl_join_rec_t *r, const bl_join_event_t *e)
{
    int creating = r->verb && !strcmp(r->verb, "create");
    if (r->resource == NULL || *r->resource == '\0')
        return !e->has_ref || e->resource == NULL;
    if (!e->has_ref || strcmp(r->resource, bl_join_s(e->resource)) ||
        strcmp(bl_join_s(r->subresource), bl_join_s(e->subresource)) ||
        strcmp(bl_join_s(r->api_group), bl_join_s(e->api_group)))
        return 0;
    return r->truncated || (bl_join_same(r->namespace_, e->namespace_, creating) &&
                            bl_join_same(r->name, e->name, creating));
}

/* Appends printf-formatted text to the string d (cap bytes), cutting it short. */
static void BL_PRINTF(3, 4) bl_join_cat(char *d, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(d);
    va_list ap;
    va_start(ap, fmt);
    if (n + 1 < cap)
        vsnprintf(d + n, cap - n, fmt, ap);
    va_end(ap);
}

/* Appends "what: byline X, cluster Y" to detail. */
static void bl_join_diff(char *detail, size_t cap, const char *what, const char *b, const char *c)
{
    bl_join_cat(detail, cap, "%s%s: byline %s, cluster %s", *detail ? "; " : "", what, b, c);
}

/* Compares the two sides. Returns the number of differences, described in detail. */
static int bl_join_compare(const bl_join_rec_t *r, const bl_join_event_t *e, char *detail, size_t cap)
{
    int n = 0;
    char b[160], c[160];
    if (r->verb && e->verb && strcmp(r->verb, e->verb))
        n++, bl_join_diff(detail, cap, "verb", r->verb, e->verb);
    if (!bl_join_same_object(r, e)) {
        bl_join_obj(b, sizeof(b), r->resource, r->api_group, r->name, r->subresource, r->namespace_);
        bl_join_obj(c, sizeof(c), e->resource, e->api_group, e->name, e->subresource, e->namespace_);
        n++, bl_join_diff(detail, cap, "object", b, c);
    }
    if (r->status && e->code && r->status != e->code) {
        snprintf(b, sizeof(b), "%d", r->status);
        snprintf(c, sizeof(c), "%d", e->code);
        n++, bl_join_diff(detail, cap, "code", b, c);
    }
    return n;
}

/* A record paired with a cluster request. */
static bl_join_kind_t bl_join_both(bl_join_t *j, const bl_join_rec_t *r, const bl_join_event_t *e,
                                   char *detail, size_t cap)
{
    if (!r->has_intent) {
        snprintf(detail, cap, "byline refused this request itself (%s, status %d) and never sent it; "
                 "a request to the cluster reused its id", bl_join_s(r->result), r->status);
        return BL_JOIN_FORGED;
    }
    if (bl_join_compare(r, e, detail, cap))
        return BL_JOIN_MISMATCH;
    if (e->rank == 1)
        j->sum.received_only++;
    if (e->rank == 1)
        snprintf(detail, cap, "the cluster logged only RequestReceived for it");
    else if (r->aborted)
        snprintf(detail, cap, "byline stopped before recording the outcome; the cluster has it");
    else if (e->rank == 2)
        snprintf(detail, cap, "still running, or cut off, at the cluster (ResponseStarted only)");
    return BL_JOIN_MATCHED;
}

/* A record with no cluster request. */
static bl_join_kind_t bl_join_byline_only(const bl_join_rec_t *r, char *detail, size_t cap)
{
    if (!r->has_intent) {
        snprintf(detail, cap, "%s%s", r->reason ? "refused by byline: " : "refused by byline",
                 bl_join_s(r->reason));
        return BL_JOIN_REFUSED;
    }
    if (r->aborted) {
        snprintf(detail, cap, "byline stopped after the intent and the cluster has no event: "
                 "probably never sent");
        return BL_JOIN_ABORTED;
    }
    if (!r->has_result) {
        snprintf(detail, cap, "no result yet (in flight when the ledger was read)");
        return BL_JOIN_PENDING;
    }
    if (r->result && strcmp(r->result, "allowed"))
        snprintf(detail, cap, "byline tried to forward it (%s: %s) and the cluster has no event with auditID %s",
                 bl_join_s(r->result), bl_join_s(r->reason), r->id);
    else
        snprintf(detail, cap, "forwarded (status %d) but the cluster has no event with auditID %s",
                 r->status, r->id);
    return BL_JOIN_LOST;
}

/* A cluster request no record was paired with. Returns BL_JOIN_NKINDS
 * when it is none of byline's business (another user). */
static bl_join_kind_t bl_join_cluster_only(const bl_join_t *j, const bl_join_event_t *e, char *detail,
                                           size_t cap)
{
    if (bl_idmap_get(&j->recmap, e->audit_id) != BL_JOIN_NONE) {
        snprintf(detail, cap, "a second request (user %s) reuses the auditID of a byline record",
                 e->user && *e->user ? e->user : "-");
        return BL_JOIN_FORGED;
    }
    if (!bl_join_is_shared(j, e->user))
        return BL_JOIN_NKINDS;
    if (bl_join_uuid7(e->audit_id)) {
        snprintf(detail, cap, "auditID %s looks like a byline id but is not in this ledger: a forged "
                 "Audit-ID, or another gateway's request", e->audit_id);
        return BL_JOIN_FORGED;
    }
    snprintf(detail, cap, "made with byline's credential (%s) but no byline record has auditID %s",
             e->user, e->audit_id);
    return BL_JOIN_BYPASS;
}

static void bl_join_add(bl_join_t *j, bl_join_kind_t k, int64_t t, const bl_join_rec_t *r,
                        const bl_join_event_t *e, const char *detail)
{
    bl_join_row_t *row = &j->rows[j->nrows++];
    row->kind = k;
    row->t_us = t;
    row->rec = r;
    row->ev = e;
    snprintf(row->detail, sizeof(row->detail), "%s", detail);
    j->sum.kinds[k]++;
}

static int bl_join_row_cmp(const void *a, const void *b)
{
    const bl_join_row_t *x = a, *y = b;
    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    const char *ix = x->rec ? x->rec->id : x->ev->audit_id, *iy = y->rec ? y->rec->id : y->ev->audit_id;
    return strcmp(ix, iy);
}

static int bl_join_inside(const bl_join_t *j, int64_t t)
{
    return t >= j->sum.since_us && t <= j->sum.until_us;
}

/* A record is judged inside the window; and, within the grace before the
 * cluster log's first event or after its last (an end not given), unless it
 * would be `lost`: a request reaches the cluster a moment after byline
 * records it, and a refused one never does, but whether the cluster should
 * have logged a request is for the span its log covers to say. */
static int bl_join_rec_inside(const bl_join_t *j, const bl_join_rec_t *r)
{
    if (bl_join_inside(j, r->t_us))
        return 1;
    if (r->event == BL_JOIN_NONE && r->has_intent && r->has_result && !r->aborted)
        return 0;
    if (j->o.since_us == BL_JOIN_NO_TIME && r->t_us < j->sum.since_us)
        return r->t_us >= j->sum.since_us - j->o.grace_us;
    return j->o.until_us == BL_JOIN_NO_TIME && r->t_us > j->sum.until_us && r->t_us <= j->sum.until_us + j->o.grace_us;
}

int bl_join_run(bl_join_t *j)
{
    char detail[sizeof(j->rows[0].detail)];
    j->sum.since_us = j->o.since_us != BL_JOIN_NO_TIME ? j->o.since_us : j->ev_min;
    j->sum.until_us = j->o.until_us != BL_JOIN_NO_TIME ? j->o.until_us : j->ev_max;
    if (j->sum.since_us == BL_JOIN_NO_TIME || j->sum.until_us == BL_JOIN_NO_TIME)
        return BL_DECLINED;
    free(j->rows);
    j->nrows = 0;
    if ((j->rows = calloc(j->nrec + j->nev + 1, sizeof(*j->rows))) == NULL)
        return BL_ERROR;
    bl_join_pair(j);
    for (size_t i = 0; i < j->nrec; i++) {
        const bl_join_rec_t *r = &j->rec[i];
        const bl_join_event_t *e = r->event != BL_JOIN_NONE ? &j->ev[r->event] : NULL;
        if (!bl_join_rec_inside(j, r)) {
            j->sum.records_outside++;
            continue;
        }
        detail[0] = '\0';
        j->sum.records++;
        bl_join_add(j, e ? bl_join_both(j, r, e, detail, sizeof(detail))
                         : bl_join_byline_only(r, detail, sizeof(detail)), r->t_us, r, e, detail);
    }
    for (size_t i = 0; i < j->nev; i++) {
        const bl_join_event_t *e = &j->ev[i];
        if (!bl_join_inside(j, e->t_us)) {
            j->sum.events_outside++;
            continue;
        }
        j->sum.events++;
        if (e->used)
            continue;
        detail[0] = '\0';
        bl_join_kind_t k = bl_join_cluster_only(j, e, detail, sizeof(detail));
        if (k == BL_JOIN_NKINDS)
            j->sum.other_users++;
        else
            bl_join_add(j, k, e->t_us, NULL, e, detail);
    }
    qsort(j->rows, j->nrows, sizeof(*j->rows), bl_join_row_cmp);
    return BL_OK;
}

/* --- results --- */

size_t bl_join_rows(const bl_join_t *j, const bl_join_row_t **rows)
{
    *rows = j->rows;
    return j->nrows;
}

const bl_join_summary_t *bl_join_summary(const bl_join_t *j)
{
    return &j->sum;
}

size_t bl_join_shared(const bl_join_t *j, const char *const **names)
{
    *names = j->shared;
    return j->nshared;
}

int bl_join_flagged(bl_join_kind_t k)
{
    return k == BL_JOIN_MISMATCH || k == BL_JOIN_LOST || k == BL_JOIN_BYPASS || k == BL_JOIN_FORGED;
}

const char *bl_join_kind_name(bl_join_kind_t k)
{
    static const char *names[BL_JOIN_NKINDS] = { "matched", "mismatch", "lost", "bypass",
                                                 "forged", "refused", "aborted", "pending" };
    return (unsigned)k < BL_JOIN_NKINDS ? names[k] : "?";
}

size_t bl_join_nflagged(const bl_join_t *j)
{
    size_t n = 0;
    for (int k = 0; k < BL_JOIN_NKINDS; k++)
        n += bl_join_flagged((bl_join_kind_t)k) ? j->sum.kinds[k] : 0;
    return n;
}

/* Sets key to the string s, unless s is NULL. */
static void bl_join_jset(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

static void bl_join_jtime(json_t *o, const char *key, int64_t us)
{
    char t[48];
    bl_join_format_time(us, 1, t, sizeof(t));
    json_object_set_new(o, key, json_string(t));
}

static json_t *bl_join_rec_json(const bl_join_rec_t *r)
{
    json_t *o = json_object();
    bl_join_jset(o, "id", r->id);
    bl_join_jtime(o, "ts", r->t_us);
    json_object_set_new(o, "actor", r->actor ? json_string(r->actor) : json_null());
    bl_join_jset(o, "action", r->action);
    bl_join_jset(o, "connection", r->connection);
    bl_join_jset(o, "result", r->result ? r->result : (r->has_intent ? "pending" : NULL));
    bl_join_jset(o, "reason", r->reason);
    if (r->status)
        json_object_set_new(o, "status", json_integer(r->status));
    bl_join_jset(o, "verb", r->verb);
    bl_join_jset(o, "apiGroup", r->api_group);
    bl_join_jset(o, "resource", r->resource);
    bl_join_jset(o, "subresource", r->subresource);
    bl_join_jset(o, "namespace", r->namespace_);
    bl_join_jset(o, "name", r->name);
    return o;
}

static json_t *bl_join_ev_json(const bl_join_event_t *e)
{
    json_t *o = json_object(), *ref = json_object();
    bl_join_jset(o, "auditID", e->audit_id);
    bl_join_jtime(o, "requestReceivedTimestamp", e->t_us);
    bl_join_jset(o, "stage", e->stage);
    bl_join_jset(o, "user", e->user);
    bl_join_jset(o, "impersonatedUser", e->imp_user);
    bl_join_jset(o, "verb", e->verb);
    bl_join_jset(o, "requestURI", e->uri);
    if (e->code)
        json_object_set_new(o, "code", json_integer(e->code));
    bl_join_jset(ref, "apiGroup", e->api_group);
    bl_join_jset(ref, "resource", e->resource);
    bl_join_jset(ref, "subresource", e->subresource);
    bl_join_jset(ref, "namespace", e->namespace_);
    bl_join_jset(ref, "name", e->name);
    if (e->has_ref)
        json_object_set(o, "objectRef", ref);
    json_decref(ref);
    return o;
}

json_t *bl_join_row_json(const bl_join_row_t *row)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("row"));
    json_object_set_new(o, "kind", json_string(bl_join_kind_name(row->kind)));
    json_object_set_new(o, "flagged", json_boolean(bl_join_flagged(row->kind)));
    bl_join_jtime(o, "time", row->t_us);
    if (row->detail[0])
        json_object_set_new(o, "detail", json_string(row->detail));
    if (row->rec)
        json_object_set_new(o, "byline", bl_join_rec_json(row->rec));
    if (row->ev)
        json_object_set_new(o, "cluster", bl_join_ev_json(row->ev));
    return o;
}

json_t *bl_join_summary_json(const bl_join_t *j)
{
    const bl_join_summary_t *s = &j->sum;
    json_t *o = json_object(), *users = json_array();
    json_object_set_new(o, "type", json_string("summary"));
    json_object_set_new(o, "records", json_integer((json_int_t)s->records));
    json_object_set_new(o, "events", json_integer((json_int_t)s->events));
    for (int k = 0; k < BL_JOIN_NKINDS; k++)
        json_object_set_new(o, bl_join_kind_name((bl_join_kind_t)k), json_integer((json_int_t)s->kinds[k]));
    json_object_set_new(o, "flagged", json_integer((json_int_t)bl_join_nflagged(j)));
    json_object_set_new(o, "other_users", json_integer((json_int_t)s->other_users));
    json_object_set_new(o, "received_only", json_integer((json_int_t)s->received_only));
    json_object_set_new(o, "records_outside", json_integer((json_int_t)s->records_outside));
    json_object_set_new(o, "events_outside", json_integer((json_int_t)s->events_outside));
    json_object_set_new(o, "lines", json_integer((json_int_t)s->lines));
    json_object_set_new(o, "bad_lines", json_integer((json_int_t)s->bad_lines));
    if (s->bad_lines)
        json_object_set_new(o, "first_bad", json_string(s->first_bad));
    json_object_set_new(o, "ledger_bad", json_integer((json_int_t)s->ledger_bad));
    if (s->since_us != BL_JOIN_NO_TIME)
        bl_join_jtime(o, "since", s->since_us);
    if (s->until_us != BL_JOIN_NO_TIME)
        bl_join_jtime(o, "until", s->until_us);
    for (size_t i = 0; i < j->nshared; i++)
        json_array_append_new(users, json_string(j->shared[i]));
    json_object_set_new(o, "shared_users", users);
    return o;
}
