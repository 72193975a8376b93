/* audit_join.c - `byline audit join`: byline's ledger next to the cluster's audit log. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "audit/join.h"
#include "audit/when.h"
#include "cli/audit.h"

#define BL_JOIN_MAX_LOGS 16

static void bl_join_usage(FILE *f)
{
    fprintf(f, "usage: byline audit join --dir DIR --cluster-log FILE [--cluster-log FILE]...\n"
               "                         [--since T] [--until T] [--grace D] [--shared-user NAME]...\n"
               "                         [--json] [--flagged]\n\n"
               "Lines byline's records up with the cluster's own audit log on auditID (byline sends\n"
               "each record's id upstream as Audit-ID) and prints one timeline, oldest first.\n"
               "Flags (exit 1 when any):\n"
               "  lost      byline forwarded it, the cluster has no event for it\n"
               "  bypass    made with byline's shared credential, no byline record has its auditID\n"
               "  forged    an auditID that is a byline id byline never sent (shaped like one but\n"
               "            not in the ledger; reused by a second request; or byline refused it)\n"
               "  mismatch  both sides, but the verb, the object or the response code differ\n\n"
               "  --dir DIR           configuration directory (its audit.dir is read)\n"
               "  --cluster-log FILE  audit.k8s.io/v1 Events as JSON lines, EventList batches, one\n"
               "                      EventList document, or CloudWatch Logs export lines; gzip or\n"
               "                      plain; '-' reads stdin. Repeat for rotated files.\n"
               "  --since T, --until T  judge only this window: RFC 3339 (2026-06-15T12:00:00Z),\n"
               "                      a date (2026-06-15), a time ago (90s 15m 2h 7d 1w 1h30m)\n"
               "                      or now. Default: the cluster log's first and last event.\n"
               "  --grace D           also read this much beyond each end, so a request near an\n"
               "                      edge finds its other half (default 2m; 0 for none)\n"
               "  --shared-user NAME  the cluster user byline forwards as (also learned from the\n"
               "                      events that match byline records); repeatable\n"
               "  --json              one JSON object per row, then a summary object\n"
               "  --flagged           print only flagged rows (the summary counts everything)\n\n"
               "Exit status: 0 nothing flagged, 1 something flagged, 2 bad usage or unreadable input.\n"
               "docs/AUDIT-JOIN.md says what each kind means and what to do about it.\n");
}

typedef struct {
    const char *dir;
    const char *logs[BL_JOIN_MAX_LOGS];
    size_t nlogs;
    const char *shared[BL_JOIN_MAX_SHARED];
    size_t nshared;
    int json, flagged_only;
    bl_join_opts_t o;
} bl_join_args_t;


/* Parses one option into a. Returns BL_OK or BL_ERROR (message printed). */
static int bl_join_opt(bl_join_args_t *a, int c, const char *arg)
{
    switch (c) {
    case 'd': a->dir = arg; return BL_OK;
    case 'j': a->json = 1; return BL_OK;
    case 'F': a->flagged_only = 1; return BL_OK;
    case 'c':
        if (a->nlogs == BL_JOIN_MAX_LOGS)
            break;
        a->logs[a->nlogs++] = arg;
        return BL_OK;
    case 'u':
        if (a->nshared == BL_JOIN_MAX_SHARED || *arg == '\0')
            break;
        a->shared[a->nshared++] = arg;
        return BL_OK;
    case 's': case 'U':
        if (bl_when_parse(arg, bl_when_now(), c == 's' ? &a->o.since_us : &a->o.until_us) == BL_OK)
            return BL_OK;
        fprintf(stderr, "byline audit join: --%s wants RFC 3339 (2026-06-15T12:00:00Z), a date (2026-06-15), "
                "a time ago (30m, 2h, 7d, 1w) or now, not '%s'\n", c == 's' ? "since" : "until", arg);
        return BL_ERROR;
    case 'g':
        if (bl_when_margin(arg, &a->o.grace_us) == BL_OK)
            return BL_OK;
        fprintf(stderr, "byline audit join: --grace wants a duration (90s, 2m, 1h) or 0, not '%s'\n", arg);
        return BL_ERROR;
    }
    fprintf(stderr, "byline audit join: %s\n", c == 'c' ? "too many --cluster-log files (16 at most)"
                    : c == 'u' ? "--shared-user wants a name (64 at most)" : "bad option");
    return BL_ERROR;
}

/* Parses argv. Returns BL_OK, BL_DECLINED for --help (printed), BL_ERROR. */
static int bl_join_args(bl_join_args_t *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },        { "cluster-log", required_argument, NULL, 'c' },
        { "since", required_argument, NULL, 's' },      { "until", required_argument, NULL, 'U' },
        { "grace", required_argument, NULL, 'g' },      { "shared-user", required_argument, NULL, 'u' },
        { "json", no_argument, NULL, 'j' },             { "flagged", no_argument, NULL, 'F' },
        { "help", no_argument, NULL, 'h' },             { NULL, 0, NULL, 0 },
    };
    int c;
    a->o.since_us = a->o.until_us = BL_JOIN_NO_TIME;
    a->o.grace_us = 120 * 1000000ll;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:c:s:U:g:u:jFh", opts, NULL)) != -1) {
        if (c == 'h')
            return (bl_join_usage(stdout), BL_DECLINED);
        if (c == '?' || bl_join_opt(a, c, optarg) != BL_OK)
            return (c == '?' ? bl_join_usage(stderr) : (void)0, BL_ERROR);
    }
    const char *why = optind != argc ? "unexpected argument" : a->dir == NULL ? "--dir is required"
                      : a->nlogs == 0 ? "--cluster-log is required" : NULL;
    if (why == NULL && a->o.since_us != BL_JOIN_NO_TIME && a->o.until_us != BL_JOIN_NO_TIME &&
        a->o.since_us > a->o.until_us)
        why = "--since is after --until";
    if (why)
        fprintf(stderr, "byline audit join: %s\n", why);
    a->o.shared_users = a->shared;
    a->o.nshared = a->nshared;
    return why ? BL_ERROR : BL_OK;
}

/* Reads every --cluster-log. Returns BL_OK or BL_ERROR (message printed). */
static int bl_join_read_logs(bl_join_t *j, const bl_join_args_t *a)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    int rc = BL_OK;
    for (size_t i = 0; i < a->nlogs && rc == BL_OK; i++) {
        int stdin_ = !strcmp(a->logs[i], "-");
        int fd = stdin_ ? 0 : open(a->logs[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "byline audit join: %s: %s\n", a->logs[i], strerror(errno));
            rc = BL_ERROR;
            break;
        }
        rc = bl_join_read_cluster(j, fd, stdin_ ? "stdin" : a->logs[i], &err);
        if (rc != BL_OK)
            fprintf(stderr, "byline audit join: %s\n", bl_buf_cstr(&err));
        if (!stdin_)
            close(fd);
    }
    bl_buf_free(&err);
    return rc;
}

/* --- the text timeline --- */

/* The timeline's variable columns, between TIME/KIND and CODE. */
enum { BL_COL_ACTOR, BL_COL_ACTION, BL_COL_RESULT, BL_COL_USER, BL_COL_VERB, BL_COL_URI, BL_NCOLS };

static const struct {
    const char *head;
    int min, max, keep; /* widths; where a cut keeps text (bl_join_fit) */
} bl_join_col[BL_NCOLS] = {
    { "ACTOR", 8, 32, 0 },   { "ACTION (byline)", 24, 120, 0 }, { "RESULT", 7, 20, 0 },
    { "USER (cluster)", 12, 48, 1 }, { "VERB", 4, 16, 0 }, { "URI", 16, 100, 2 },
};

#define BL_CELL 1100 /* a kept string (BL_JOIN_MAX_STR) and a prefix */

/* Copies s into out as at most w printable ASCII characters, marking a cut
 * with "..." at the end (keep = 0), the start (1) or the middle (2).
 * Control and non-ASCII bytes become '?': nothing in either log can drive
 * the terminal or hide behind look-alike characters. */
static void bl_join_fit(char *out, size_t cap, const char *s, int w, int keep)
{
    size_t n = s ? strlen(s) : 0, o = 0;
    if (s == NULL || n == 0)
        s = "-", n = 1;
    size_t head = n, tail = 0, width = (size_t)w;
    if (n > width && width > 3) {
        head = keep == 0 ? width - 3 : keep == 1 ? 0 : (width - 3 + 1) / 2;
        tail = width - 3 - head;
    } else if (n > width) {
        head = width;
    }
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (i == head && i < n - tail) {
            for (int d = 0; d < 3 && o + 1 < cap; d++)
                out[o++] = '.';
            i = n - tail;
            if (i >= n)
                break;
        }
        unsigned char ch = (unsigned char)s[i];
        out[o++] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
    }
    out[o] = '\0';
}

/* Writes the text of one row's variable cells (not yet fitted). */
static void bl_join_cells(const bl_join_row_t *row, char cell[BL_NCOLS][BL_CELL])
{
    const bl_join_rec_t *r = row->rec;
    const bl_join_event_t *e = row->ev;
    snprintf(cell[BL_COL_ACTOR], BL_CELL, "%s", r ? (r->actor ? r->actor : "(unauthenticated)") : "-");
    snprintf(cell[BL_COL_ACTION], BL_CELL, "%s", r && r->action ? r->action : "-");
    /* the status first: it survives a cut */
    snprintf(cell[BL_COL_RESULT], BL_CELL, r && r->status ? "%d %s" : "%.0d%s", r ? r->status : 0,
             r ? (r->result ? r->result : "pending") : "-");
    /* impersonated: the agent is what tells rows apart; the shared user is in the summary */
    snprintf(cell[BL_COL_USER], BL_CELL, "%s%s", e && e->imp_user ? "as " : "",
             e ? (e->imp_user ? e->imp_user : (e->user && *e->user ? e->user : "(anonymous)")) : "-");
    snprintf(cell[BL_COL_VERB], BL_CELL, "%s", e && e->verb ? e->verb : "-");
    snprintf(cell[BL_COL_URI], BL_CELL, "%s", e && e->uri ? e->uri : "-");
}

static int bl_join_shown(const bl_join_row_t *row, int flagged_only)
{
    return !flagged_only || bl_join_flagged(row->kind);
}

/* Sizes the columns to their contents (up to each maximum); on a terminal
 * too narrow for that, cuts the URI and the user first, the action last. */
static void bl_join_cols(int w[BL_NCOLS], const bl_join_row_t *rows, size_t n, int flagged_only)
{
    static const struct { int col, floor; } order[] = { /* each column down to a floor, then the next */
        { BL_COL_URI, 48 },    { BL_COL_USER, 24 },   { BL_COL_ACTOR, 16 },  { BL_COL_ACTION, 56 },
        { BL_COL_URI, 32 },    { BL_COL_USER, 20 },   { BL_COL_RESULT, 11 }, { BL_COL_ACTION, 40 },
        { BL_COL_URI, 24 },    { BL_COL_ACTOR, 10 },  { BL_COL_USER, 12 },   { BL_COL_URI, 16 },
        { BL_COL_ACTION, 24 }, { BL_COL_VERB, 4 },    { BL_COL_ACTOR, 8 },
    };
    static char cell[BL_NCOLS][BL_CELL];
    struct winsize ws;
    int total = 41; /* time, kind, CODE and the separators */
    for (int c = 0; c < BL_NCOLS; c++)
        w[c] = (int)strlen(bl_join_col[c].head);
    for (size_t i = 0; i < n; i++) {
        if (!bl_join_shown(&rows[i], flagged_only))
            continue;
        bl_join_cells(&rows[i], cell);
        for (int c = 0; c < BL_NCOLS; c++)
            w[c] = BL_MAX(w[c], BL_MIN((int)strlen(cell[c]), bl_join_col[c].max));
    }
    for (int c = 0; c < BL_NCOLS; c++)
        total += w[c];
    if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
        return; /* a file or a pipe: whole values up to the maximums, for grep */
    for (size_t k = 0; k < BL_ARRAY_LEN(order) && total > ws.ws_col; k++) {
        int c = order[k].col, cut = BL_MIN(total - ws.ws_col, BL_MAX(w[c] - order[k].floor, 0));
        w[c] -= cut;
        total -= cut;
    }
}

static const char *bl_join_label(bl_join_kind_t k)
{
    static const char *labels[BL_JOIN_NKINDS] = { "ok", "MISMATCH", "LOST", "BYPASS",
                                                  "FORGED", "refused", "aborted", "pending" };
    return (unsigned)k < BL_JOIN_NKINDS ? labels[k] : "?";
}

static void bl_join_print_line(const char *t, const char *kind, char cell[BL_NCOLS][BL_CELL], const int w[BL_NCOLS],
                               const char *code)
{
    char fit[BL_NCOLS][BL_CELL];
    for (int c = 0; c < BL_NCOLS; c++)
        bl_join_fit(fit[c], BL_CELL, cell[c], w[c], bl_join_col[c].keep);
    printf("%-19s %-8s %-*s %-*s %-*s | %-*s %-*s %-*s %4s\n", t, kind, w[0], fit[0], w[1], fit[1], w[2], fit[2],
           w[3], fit[3], w[4], fit[4], w[5], fit[5], code);
}

static void bl_join_print_row(const bl_join_row_t *row, const int w[BL_NCOLS])
{
    static char cell[BL_NCOLS][BL_CELL];
    char t[48], code[16], detail[sizeof(row->detail)];
    bl_join_format_time(row->t_us, 0, t, sizeof(t));
    t[10] = ' ', t[19] = '\0'; /* 2026-06-15 12:04:01 */
    bl_join_cells(row, cell);
    snprintf(code, sizeof(code), row->ev && row->ev->code ? "%d" : "-", row->ev ? row->ev->code : 0);
    bl_join_print_line(t, bl_join_label(row->kind), cell, w, code);
    if (row->detail[0]) {
        bl_join_fit(detail, sizeof(detail), row->detail, (int)sizeof(detail) - 1, 0);
        printf("%19s ^ %s: %s\n", "", bl_join_kind_name(row->kind), detail);
    }
}

static void bl_join_print_text(const bl_join_row_t *rows, size_t n, int flagged_only)
{
    static char head[BL_NCOLS][BL_CELL];
    int w[BL_NCOLS];
    bl_join_cols(w, rows, n, flagged_only);
    for (int c = 0; c < BL_NCOLS; c++)
        snprintf(head[c], BL_CELL, "%s", bl_join_col[c].head);
    bl_join_print_line("TIME (UTC)", "KIND", head, w, "CODE");
    for (size_t i = 0; i < n; i++)
        if (bl_join_shown(&rows[i], flagged_only))
            bl_join_print_row(&rows[i], w);
}

static void bl_join_print_summary(const bl_join_t *j, const bl_join_args_t *a)
{
    const bl_join_summary_t *s = bl_join_summary(j);
    const char *const *names;
    size_t n = bl_join_shared(j, &names);
    char since[48], until[48];
    bl_join_format_time(s->since_us, 0, since, sizeof(since));
    bl_join_format_time(s->until_us, 0, until, sizeof(until));
    printf("joined %zu byline records with %zu cluster events: %zu matched, %zu lost, %zu bypass, "
           "%zu forged, %zu mismatch\n", s->records, s->events, s->kinds[BL_JOIN_MATCHED],
           s->kinds[BL_JOIN_LOST], s->kinds[BL_JOIN_BYPASS], s->kinds[BL_JOIN_FORGED], s->kinds[BL_JOIN_MISMATCH]);
    printf("not flagged: %zu refused by byline, %zu aborted, %zu pending; %zu cluster events by other users\n",
           s->kinds[BL_JOIN_REFUSED], s->kinds[BL_JOIN_ABORTED], s->kinds[BL_JOIN_PENDING], s->other_users);
    printf("window: %s .. %s%s; outside it: %zu byline records, %zu cluster events\n", since, until,
           a->o.since_us == BL_JOIN_NO_TIME || a->o.until_us == BL_JOIN_NO_TIME ? " (ends from the cluster log)" : "",
           s->records_outside, s->events_outside);
    printf("byline's cluster user:");
    for (size_t i = 0; i < n; i++) {
        char u[128];
        bl_join_fit(u, sizeof(u), names[i], 120, 1);
        printf("%s %s", i ? "," : "", u);
    }
    printf("%s\n", n ? "" : " unknown");
}

static void bl_join_print_json(const bl_join_t *j, const bl_join_row_t *rows, size_t n, int flagged_only)
{
    for (size_t i = 0; i <= n; i++) {
        if (i < n && flagged_only && !bl_join_flagged(rows[i].kind))
            continue;
        json_t *o = i < n ? bl_join_row_json(&rows[i]) : bl_join_summary_json(j);
        char *txt = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
    }
}

/* Prints the timeline and the summary; returns the exit status (0 or 1). */
static int bl_join_print(const bl_join_t *j, const bl_join_args_t *a)
{
    const bl_join_row_t *rows;
    size_t n = bl_join_rows(j, &rows);
    const bl_join_summary_t *s = bl_join_summary(j);
    const char *const *names;
    if (a->json) {
        bl_join_print_json(j, rows, n, a->flagged_only);
    } else {
        bl_join_print_text(rows, n, a->flagged_only);
        bl_join_print_summary(j, a);
    }
    if (s->bad_lines)
        fprintf(stderr, "byline audit join: %zu bad line(s) in the cluster log skipped (first: %s)\n",
                s->bad_lines, s->first_bad);
    if (s->ledger_bad)
        fprintf(stderr, "byline audit join: %zu ledger line(s) were not entries; run byline audit verify\n",
                s->ledger_bad);
    if (bl_join_shared(j, &names) == 0)
        fprintf(stderr, "byline audit join: no cluster event matched a byline record and no --shared-user "
                "was given: requests that bypassed byline cannot be told from other users'\n");
    return bl_join_nflagged(j) ? 1 : 0;
}

int bl_audit_join_cmd(int argc, char **argv)
{
    bl_join_args_t a;
    memset(&a, 0, sizeof(a));
    int rc = bl_join_args(&a, argc, argv);
    if (rc != BL_OK)
        return rc == BL_DECLINED ? 0 : 2;
    char path[4096];
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    bl_join_t *j = bl_join_new(&a.o);
    int status = 2;
    if (j == NULL || bl_audit_dir_of(a.dir, path, sizeof(path)) != BL_OK) {
        fprintf(stderr, "byline audit join: %s\n", j ? "audit directory path too long" : "out of memory");
        goto end;
    }
    if (bl_join_read_logs(j, &a) != BL_OK)
        goto end;
    if (bl_join_read_ledger(j, path, &err) != BL_OK) {
        fprintf(stderr, "byline audit join: ledger: %s\n", bl_buf_cstr(&err));
        goto end;
    }
    rc = bl_join_run(j);
    if (rc == BL_DECLINED)
        fprintf(stderr, "byline audit join: no audit events in the cluster log (%zu lines, %zu bad); give "
                "--since and --until to judge byline's records against an empty log\n",
                bl_join_summary(j)->lines, bl_join_summary(j)->bad_lines);
    else if (rc != BL_OK)
        fprintf(stderr, "byline audit join: out of memory\n");
    else
        status = bl_join_print(j, &a);
end:
    bl_join_free(j);
    bl_buf_free(&err);
    return status;
}
