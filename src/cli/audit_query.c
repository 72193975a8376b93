/* audit_query.c - `byline audit query`: filter the audit records through the index. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "audit/index.h"
#include "audit/ocsf.h"
#include "audit/tail.h"
#include "audit/when.h"
#include "cli/audit.h"
#include "core/common.h"

#define BL_QUERY_LIMIT 100 /* -n default: the newest 100 matches */

enum { BL_QUERY_LOGFMT, BL_QUERY_JSON, BL_QUERY_OCSF };

typedef struct {
    const char *dir;
    const char *index;          /* --index FILE, or NULL: AUDIT_DIR/index.sqlite */
    bl_index_filter_t f;
    int format;
    int rebuild;
} bl_query_opts_t;

static void bl_query_usage(FILE *f)
{
    fprintf(f,
            "usage: byline audit query --dir DIR [filters] [-n N] [--format logfmt|json|ocsf]\n\n"
            "Prints the audit records that match every filter given, oldest first, one\n"
            "request per line (intent and result merged), as `byline audit tail` does.\n"
            "Reads an index (AUDIT_DIR/index.sqlite) that it first brings up to date with\n"
            "the ledger; the ledger stays the record of truth (`byline audit verify`).\n\n"
            "filters (exact match; '*', '?' and [...] make a case-sensitive glob):\n"
            "  --actor NAME          identity name\n"
            "  --connection NAME     upstream connection\n"
            "  --verb VERB           Kubernetes verb: get list watch create update patch delete...\n"
            "  --namespace NS        namespace\n"
            "  --resource RES        resource, e.g. pods or deployments; pods/exec for a subresource\n"
            "  --result R            allowed denied unauthenticated error aborted pending\n"
            "  --id ID               one request id (the cluster's auditID)\n"
            "  --since T, --until T  since T (inclusive) / until T (exclusive): RFC 3339\n"
            "                        (2026-06-15T12:00:00Z), a date (2026-06-15), or a time\n"
            "                        before now (90s 15m 2h 7d 1w 1h30m), or now\n\n"
            "output:\n"
            "  -n N                  the newest N matches (default %d; 0 for all)\n"
            "  --format F            logfmt (default), json (one merged object per line),\n"
            "                        ocsf (OCSF %s API Activity, class 6003, one per line)\n"
            "  --json                the same as --format json\n"
            "  --notices             also gateway notices (start, stop, relaxed, space);\n"
            "                        they match time filters only; ocsf leaves them out\n"
            "  --rebuild             rebuild the index from the ledger first\n"
            "  --index FILE          keep the index in FILE instead of AUDIT_DIR/index.sqlite\n"
            "  --dir DIR             configuration directory (its audit.dir is read)\n\n"
            "Exit status: 0 (also when nothing matches), 1 on failure, 2 on bad usage.\n",
            BL_QUERY_LIMIT, BL_OCSF_VERSION);
}

/* Reads a --since/--until value. Returns BL_OK or BL_ERROR (said why). */
static int bl_query_time(const char *opt, const char *v, int64_t *us)
{
    if (bl_when_parse(v, bl_when_now(), us) == BL_OK)
        return BL_OK;
    fprintf(stderr, "byline audit query: %s wants an RFC 3339 time (2026-06-15T12:00:00Z), a date "
                    "(2026-06-15), a duration before now (15m, 2h, 7d, 1w) or now, not '%s'\n", opt, v);
    return BL_ERROR;
}

static int bl_query_format(const char *v, int *format)
{
    static const char *const names[] = { "logfmt", "json", "ocsf" };
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, names[i])) {
            *format = i;
            return BL_OK;
        }
    fprintf(stderr, "byline audit query: --format is logfmt, json or ocsf, not '%s'\n", v);
    return BL_ERROR;
}

static int bl_query_limit(const char *v, uint64_t *limit)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno || n > 100000000ULL) {
        fprintf(stderr, "byline audit query: -n wants a number from 0 (all) to 100000000, not '%s'\n", v);
        return BL_ERROR;
    }
    *limit = n;
    return BL_OK;
}

/* Applies one option. Returns BL_OK, BL_DECLINED for --help, BL_ERROR. */
static int bl_query_opt(bl_query_opts_t *o, int c, const char *v)
{
    bl_index_filter_t *f = &o->f;
    switch (c) {
    case 'd': o->dir = v; return BL_OK;
    case 'a': f->actor = v; return BL_OK;
    case 'c': f->connection = v; return BL_OK;
    case 'v': f->verb = v; return BL_OK;
    case 'N': f->namespace_ = v; return BL_OK;
    case 'r': f->resource = v; return BL_OK;
    case 'R': f->result = v; return BL_OK;
    case 'i': f->id = v; return BL_OK;
    case 's': return bl_query_time("--since", v, &f->since_us);
    case 'u': return bl_query_time("--until", v, &f->until_us);
    case 'n': return bl_query_limit(v, &f->limit);
    case 'f': return bl_query_format(v, &o->format);
    case 'j': o->format = BL_QUERY_JSON; return BL_OK;
    case 'T': f->notices = 1; return BL_OK;
    case 'B': o->rebuild = 1; return BL_OK;
    case 'I': o->index = v; return BL_OK;
    case 'h': bl_query_usage(stdout); return BL_DECLINED;
    default: bl_query_usage(stderr); return BL_ERROR;
    }
}

/* Parses argv into *o. Returns BL_OK, BL_DECLINED (--help done), BL_ERROR. */
static int bl_query_args(int argc, char **argv, bl_query_opts_t *o)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },      { "actor", required_argument, NULL, 'a' },
        { "connection", required_argument, NULL, 'c' }, { "verb", required_argument, NULL, 'v' },
        { "namespace", required_argument, NULL, 'N' }, { "resource", required_argument, NULL, 'r' },
        { "result", required_argument, NULL, 'R' },   { "id", required_argument, NULL, 'i' },
        { "since", required_argument, NULL, 's' },    { "until", required_argument, NULL, 'u' },
        { "limit", required_argument, NULL, 'n' },    { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },           { "notices", no_argument, NULL, 'T' },
        { "rebuild", no_argument, NULL, 'B' },        { "index", required_argument, NULL, 'I' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, rc = BL_OK;
    memset(o, 0, sizeof(*o));
    bl_index_filter_init(&o->f);
    o->f.limit = BL_QUERY_LIMIT;
    optind = 1;
    while (rc == BL_OK && (c = getopt_long(argc, argv, "d:n:h", opts, NULL)) != -1)
        rc = bl_query_opt(o, c, optarg);
    if (rc != BL_OK)
        return rc;
    if (o->dir == NULL || optind != argc) {
        fprintf(stderr, "byline audit query: %s\n", o->dir ? "unexpected argument" : "--dir is required");
        return BL_ERROR;
    }
    if (o->f.since_us != INT64_MIN && o->f.until_us != INT64_MAX && o->f.since_us >= o->f.until_us) {
        fprintf(stderr, "byline audit query: --since must be before --until\n");
        return BL_ERROR;
    }
    return BL_OK;
}

typedef struct {
    int format;
    bl_buf_t line;
} bl_query_out_t;

/* Prints one record (bl_index_row_fn). */
static int bl_query_row(void *arg, const char *json, size_t len)
{
    bl_query_out_t *out = arg;
    json_error_t je;
    if (out->format == BL_QUERY_JSON) { /* stored canonical: as tail --json prints it */
        fwrite(json, 1, len, stdout);
        putchar('\n');
        return BL_OK;
    }
    json_t *rec = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    int rc = BL_OK;
    bl_buf_reset(&out->line);
    if (out->format == BL_QUERY_OCSF)
        rc = bl_ocsf_render(rec, &out->line);
    else
        bl_audit_render_text(rec, &out->line);
    if (rc == BL_OK && rec)
        printf("%s\n", bl_buf_cstr(&out->line));
    json_decref(rec);
    return BL_OK; /* a record that does not render (a notice in OCSF) is left out */
}

/* Opens the index (`path`, or the one in the audit directory), or (when
 * that cannot be written) a throwaway one in memory. Returns the index or
 * NULL (said why). */
static bl_index_t *bl_query_open(const char *adir, const char *path)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    bl_index_t *ix = bl_index_open(adir, path, &err);
    if (ix == NULL) {
        fprintf(stderr, "byline audit query: %s; using a temporary index in memory\n", bl_buf_cstr(&err));
        bl_buf_reset(&err);
        if ((ix = bl_index_open(adir, ":memory:", &err)) == NULL)
            fprintf(stderr, "byline audit query: %s\n", bl_buf_cstr(&err));
    }
    bl_buf_free(&err);
    return ix;
}

/* Brings the index up to date, saying on stderr what people should know. */
static int bl_query_update(bl_index_t *ix, int rebuild, bl_buf_t *err)
{
    bl_index_stats_t st;
    if (rebuild && bl_index_reset(ix, err) != BL_OK)
        return BL_ERROR;
    if (bl_index_update(ix, &st, err) != BL_OK)
        return BL_ERROR;
    if (st.rebuilt && st.lines > 0)
        fprintf(stderr, "byline audit query: indexed %llu entries from the start of the ledger (%s)\n",
                (unsigned long long)st.entries, rebuild ? "--rebuild" : st.why);
    if (st.skipped)
        fprintf(stderr, "byline audit query: %llu line(s) were not audit entries and were skipped%s%s "
                        "(`byline audit verify` checks the ledger)\n",
                (unsigned long long)st.skipped, st.warning[0] ? ": " : "", st.warning);
    return BL_OK;
}

static int bl_query_run(const bl_query_opts_t *o, const char *adir)
{
    bl_buf_t err;
    bl_query_out_t out = { .format = o->format };
    uint64_t matched = 0;
    long long n = BL_ERROR;
    bl_buf_init(&err, 4096);
    bl_buf_init(&out.line, 1 << 20);
    bl_index_t *ix = bl_query_open(adir, o->index);
    if (ix && bl_query_update(ix, o->rebuild, &err) == BL_OK)
        n = bl_index_query(ix, &o->f, bl_query_row, &out, &matched, &err);
    if (n >= 0 && matched > (uint64_t)n)
        fprintf(stderr, "byline audit query: showing the newest %lld of %llu matching records (-n 0 shows all)\n",
                n, (unsigned long long)matched);
    if (ix && n < 0)
        fprintf(stderr, "byline audit query: %s\n", bl_buf_cstr(&err));
    bl_index_close(ix);
    bl_buf_free(&out.line);
    bl_buf_free(&err);
    return n >= 0 ? 0 : 1;
}

int bl_audit_query_cmd(int argc, char **argv)
{
    bl_query_opts_t o;
    char adir[4096];
    struct stat st;
    int rc = bl_query_args(argc, argv, &o);
    if (rc != BL_OK)
        return rc == BL_DECLINED ? 0 : 2;
    if (bl_audit_dir_of(o.dir, adir, sizeof(adir)) != BL_OK) {
        fprintf(stderr, "byline audit query: audit directory path too long\n");
        return 1;
    }
    if (stat(adir, &st) != 0 && errno == ENOENT) {
        fprintf(stderr, "byline audit: no records yet (no ledger in %s)\n", adir);
        return 0;
    }
    return bl_query_run(&o, adir);
}
