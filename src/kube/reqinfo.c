/*
 * reqinfo.c - method + request target -> bl_kreq_t.
 *
 * The resolver follows kube-apiserver's RequestInfoFactory step by step
 * (prefix, group, version, special verb, namespace, resource, name,
 * subresource; then list/watch/deletecollection and the fieldSelector name)
 * because byline's record is only worth something if it names the object the
 * API server will act on. Where the server's view depends on details byline
 * cannot reproduce exactly, the parse fails instead of guessing:
 *
 *   - Go decodes the whole path before splitting it, so an encoded '/' in a
 *     segment that decides the object would split differently upstream;
 *   - an empty segment ("//") would make the server see an empty namespace
 *     or name;
 *   - "." and ".." segments, bad %-escapes and NUL bytes never name a
 *     legitimate object.
 */
#include "kube/reqinfo.h"

#define BL_KREQ_SEGS       10    /* path segments the resolver may look at */
#define BL_KREQ_SEG_BYTES  256   /* decoded bytes kept per segment */
#define BL_KREQ_VAL_BYTES  BL_KREQ_ARGV_BYTES  /* decoded bytes per query value */

typedef struct {
    char s[BL_KREQ_SEG_BYTES];
    size_t len;    /* bytes kept in s (NUL-terminated) */
    int trunc;     /* the decoded segment was longer than s */
} bl_kseg_t;

typedef struct {
    bl_kseg_t seg[BL_KREQ_SEGS];
    size_t n;             /* segments in the path (all, not only those kept) */
    size_t first_empty;   /* index of the first empty segment, or SIZE_MAX */
    size_t first_slash;   /* index of the first segment holding %2F, or SIZE_MAX */
} bl_kpath_t;

#define BL_PCT_SLASH 0x1  /* an encoded '/' was decoded */

/*
 * Percent-decodes `in` into out[0..cap) ("+" as space when `form`, as in a
 * query). *outlen receives the full decoded length, which may exceed cap
 * (the excess is not written). Returns BL_OK, or BL_ERROR on a malformed
 * escape or a decoded NUL byte.
 */
static int bl_pct_decode(bl_str_t in, int form, char *out, size_t cap, size_t *outlen,
                         unsigned *flags)
{
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == '%') {
            if (in.len - i < 3)
                return BL_ERROR;
            int hi = bl_hexval((unsigned char)in.p[i + 1]);
            int lo = bl_hexval((unsigned char)in.p[i + 2]);
            if (hi < 0 || lo < 0)
                return BL_ERROR;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (c == '/')
                *flags |= BL_PCT_SLASH;
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (c == '\0')
            return BL_ERROR;
        if (o < cap)
            out[o] = (char)c;
        o++;
    }
    *outlen = o;
    return BL_OK;
}

/* Copies n bytes into a char array of size cap, NUL-terminated; sets
 * r->truncated when they do not fit (or `src_trunc` says the source was
 * already cut). */
static void bl_kreq_put(bl_kreq_t *r, char *dst, size_t cap, const char *src, size_t n,
                        int src_trunc)
{
    if (n > cap - 1 || src_trunc) {
        r->truncated = 1;
        n = BL_MIN(n, cap - 1);
    }
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

#define BL_KREQ_SET(r, field, src, n, t) bl_kreq_put((r), (field), sizeof(field), (src), (n), (t))

static int bl_seg_is(const bl_kseg_t *s, const char *lit)
{
    return !s->trunc && s->len == strlen(lit) && memcmp(s->s, lit, s->len) == 0;
}

/* Decodes one raw segment into *s. Returns BL_OK, or BL_ERROR with *err. */
static int bl_kpath_seg(bl_kpath_t *kp, bl_str_t raw, bl_kseg_t *s, const char **err)
{
    unsigned flags = 0;
    size_t full;
    if (bl_pct_decode(raw, 0, s->s, sizeof(s->s) - 1, &full, &flags) != BL_OK) {
        *err = "invalid percent-encoding in path";
        return BL_ERROR;
    }
    s->trunc = full > sizeof(s->s) - 1;
    s->len = s->trunc ? sizeof(s->s) - 1 : full;
    s->s[s->len] = '\0';
    if (bl_seg_is(s, ".") || bl_seg_is(s, "..")) {
        *err = "\".\" or \"..\" segment in path";
        return BL_ERROR;
    }
    if (full == 0 && kp->first_empty == SIZE_MAX)
        kp->first_empty = kp->n;
    if ((flags & BL_PCT_SLASH) && kp->first_slash == SIZE_MAX)
        kp->first_slash = kp->n;
    return BL_OK;
}

/*
 * Splits and decodes a path the way Go's strings.Split(strings.Trim(p, "/"),
 * "/") does, keeping the first BL_KREQ_SEGS segments and validating all.
 */
static int bl_kpath_split(bl_kpath_t *kp, bl_str_t path, const char **err)
{
    bl_kseg_t spare;
    kp->n = 0;
    kp->first_empty = kp->first_slash = SIZE_MAX;
    while (path.len > 0 && path.p[0] == '/') {
        path.p++;
        path.len--;
    }
    while (path.len > 0 && path.p[path.len - 1] == '/')
        path.len--;
    if (path.len == 0)
        return BL_OK;
    size_t start = 0;
    for (size_t i = 0; i <= path.len; i++) {
        if (i < path.len && path.p[i] != '/')
            continue;
        bl_str_t raw = { path.p + start, i - start };
        bl_kseg_t *s = kp->n < BL_KREQ_SEGS ? &kp->seg[kp->n] : &spare;
        if (bl_kpath_seg(kp, raw, s, err) != BL_OK)
            return BL_ERROR;
        kp->n++;
        start = i + 1;
    }
    return BL_OK;
}

/* Returns 1 for the paths kubectl reads to discover the API or check health. */
static int bl_kreq_is_discovery(const bl_kpath_t *kp)
{
    static const char *const roots[] = { "version", "api", "apis", "openapi", "healthz",
                                         "livez", "readyz", "metrics", ".well-known",
                                         "openid" };
    if (kp->n == 0)
        return 1;   /* "/" lists the server's paths */
    const bl_kseg_t *s0 = &kp->seg[0];
    if (kp->n == 1) {
        for (size_t i = 0; i < BL_ARRAY_LEN(roots); i++)
            if (bl_seg_is(s0, roots[i]))
                return 1;
        return 0;
    }
    if (bl_seg_is(s0, "api"))
        return kp->n == 2;                /* /api/v1 */
    if (bl_seg_is(s0, "apis"))
        return kp->n <= 3;                /* /apis/<group>[/<version>] */
    return bl_seg_is(s0, "openapi") || bl_seg_is(s0, "healthz") || bl_seg_is(s0, "livez") ||
           bl_seg_is(s0, "readyz") || bl_seg_is(s0, "metrics") ||
           bl_seg_is(s0, ".well-known") || bl_seg_is(s0, "openid");
}

/* Sets r->verb from the HTTP method as the resolver does for resource paths
 * (case-sensitive, like Go's req.Method; unknown methods give ""). */
static void bl_kreq_method_verb(bl_kreq_t *r, bl_str_t method)
{
    static const char *const map[][2] = {
        { "GET", "get" },       { "HEAD", "get" },     { "POST", "create" },
        { "PUT", "update" },    { "PATCH", "patch" },  { "DELETE", "delete" },
    };
    r->verb[0] = '\0';
    for (size_t i = 0; i < BL_ARRAY_LEN(map); i++)
        if (bl_str_eq(method, map[i][0])) {
            BL_KREQ_SET(r, r->verb, map[i][1], strlen(map[i][1]), 0);
            return;
        }
}

/* Non-resource requests carry the lower-cased HTTP method as their verb. */
static void bl_kreq_lower_verb(bl_kreq_t *r, bl_str_t method)
{
    size_t n = BL_MIN(method.len, sizeof(r->verb) - 1);
    if (method.len > n)
        r->truncated = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)method.p[i];
        r->verb[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    r->verb[n] = '\0';
}

/*
 * Resolves a resource path (kp->seg[0] is "api" or "apis"). Returns the
 * number of segments that decided the object (prefix..subresource), or
 * BL_ERROR with *err when the server could not resolve it either.
 */
static long bl_kreq_resolve(bl_kreq_t *r, const bl_kpath_t *kp, bl_str_t method,
                            const char **err)
{
    const bl_kseg_t *p = kp->seg;
    size_t i = 1;
    if (bl_seg_is(&p[0], "apis")) {
        BL_KREQ_SET(r, r->api_group, p[1].s, p[1].len, p[1].trunc);
        i = 2;
    }
    r->is_resource = 1;
    BL_KREQ_SET(r, r->api_version, p[i].s, p[i].len, p[i].trunc);
    i++;
    if (bl_seg_is(&p[i], "watch") || bl_seg_is(&p[i], "proxy")) {
        if (kp->n - i < 2) {
            *err = "special verb without a resource";
            return BL_ERROR;
        }
        BL_KREQ_SET(r, r->verb, p[i].s, p[i].len, 0);
        i++;
    } else {
        bl_kreq_method_verb(r, method);
    }
    if (bl_seg_is(&p[i], "namespaces") && kp->n - i > 1) {
        BL_KREQ_SET(r, r->namespace_, p[i + 1].s, p[i + 1].len, p[i + 1].trunc);
        /* /namespaces/<ns>/status and /finalize are the namespace's own subresources */
        if (kp->n - i > 2 && !bl_seg_is(&p[i + 2], "status") &&
            !bl_seg_is(&p[i + 2], "finalize"))
            i += 2;
    }
    size_t parts = kp->n - i;
    int proxy = strcmp(r->verb, "proxy") == 0;
    BL_KREQ_SET(r, r->resource, p[i].s, p[i].len, p[i].trunc);
    if (parts >= 2)
        BL_KREQ_SET(r, r->name, p[i + 1].s, p[i + 1].len, p[i + 1].trunc);
    if (parts >= 3 && !proxy)
        BL_KREQ_SET(r, r->subresource, p[i + 2].s, p[i + 2].len, p[i + 2].trunc);
    return (long)(i + BL_MIN(parts, proxy ? 2u : 3u));
}

/* Query handling ------------------------------------------------------- */

enum {
    BL_Q_WATCH = 1 << 0, BL_Q_FSEL = 1 << 1, BL_Q_LSEL = 1 << 2, BL_Q_FMGR = 1 << 3,
    BL_Q_FORCE = 1 << 4, BL_Q_CONTAINER = 1 << 5, BL_Q_STDIN = 1 << 6,
    BL_Q_STDOUT = 1 << 7, BL_Q_STDERR = 1 << 8, BL_Q_TTY = 1 << 9, BL_Q_FOLLOW = 1 << 10,
    BL_Q_PREVIOUS = 1 << 11, BL_Q_TAIL = 1 << 12,
};

typedef struct {
    unsigned seen;        /* BL_Q_* keys already taken (Go uses the first value) */
    int watch;            /* watch=<not 0/false> */
    char fsel[BL_KREQ_VAL_BYTES + 1];   /* the whole fieldSelector, for the name */
    size_t fsel_len;
    int fsel_trunc;
} bl_kquery_t;

/* Go's Convert_Slice_string_To_bool: only "0" and "false" (any case) are false. */
static int bl_qbool(const char *v, size_t n)
{
    if (n == 1 && v[0] == '0')
        return 0;
    return !bl_str_eq_nocase((bl_str_t){ v, n }, "false");
}

/* Parses a decimal integer like strconv.ParseInt(s, 10, 64). Returns BL_OK. */
static int bl_qint(const char *v, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long acc = 0;
    if (n > 0 && (v[0] == '+' || v[0] == '-')) {
        neg = v[0] == '-';
        i = 1;
    }
    if (i == n)
        return BL_ERROR;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return BL_ERROR;
        acc = acc * 10 + (unsigned long long)(v[i] - '0');
        if (acc > (unsigned long long)INT64_MAX + (unsigned long long)neg)
            return BL_ERROR;
    }
    *out = neg ? (long long)(0 - acc) : (long long)acc;
    return BL_OK;
}

/* Returns 1 the first time `bit` is taken, 0 after (later values are ignored). */
static int bl_qfirst(bl_kquery_t *q, unsigned bit)
{
    if (q->seen & bit)
        return 0;
    q->seen |= bit;
    return 1;
}

static void bl_kreq_add_arg(bl_kreq_t *r, const char *v, size_t n, int vtrunc)
{
    size_t used = r->argc ? r->argv_off[r->argc - 1] +
                            strlen(r->argv_buf + r->argv_off[r->argc - 1]) + 1 : 0;
    if (r->argv_truncated || r->argc == BL_KREQ_MAX_ARGV || vtrunc ||
        n + 1 > sizeof(r->argv_buf) - used) {
        r->argv_truncated = 1;
        return;
    }
    memcpy(r->argv_buf + used, v, n);
    r->argv_buf[used + n] = '\0';
    r->argv_off[r->argc++] = used;
}

static void bl_kreq_add_port(bl_kreq_t *r, const char *v, size_t n)
{
    long long port;
    if (bl_qint(v, n, &port) != BL_OK || port < 1 || port > 65535)
        return;
    if (r->nports == BL_KREQ_MAX_PORTS) {
        r->truncated = 1;
        return;
    }
    r->ports[r->nports++] = (int)port;
}

static int bl_key_is(const char *k, size_t kn, const char *lit)
{
    return kn == strlen(lit) && memcmp(k, lit, kn) == 0;
}

/* Options of exec and attach (PodExecOptions / PodAttachOptions). */
static void bl_kreq_q_exec(bl_kreq_t *r, bl_kquery_t *q, const char *k, size_t kn,
                           const char *v, size_t vn, int vt)
{
    if (bl_key_is(k, kn, "command") && strcmp(r->subresource, "exec") == 0)
        bl_kreq_add_arg(r, v, vn, vt);
    else if (bl_key_is(k, kn, "container") && bl_qfirst(q, BL_Q_CONTAINER))
        BL_KREQ_SET(r, r->container, v, vn, vt);
    else if (bl_key_is(k, kn, "stdin") && bl_qfirst(q, BL_Q_STDIN))
        r->stdin_ = bl_qbool(v, vn);
    else if (bl_key_is(k, kn, "stdout") && bl_qfirst(q, BL_Q_STDOUT))
        r->stdout_ = bl_qbool(v, vn);
    else if (bl_key_is(k, kn, "stderr") && bl_qfirst(q, BL_Q_STDERR))
        r->stderr_ = bl_qbool(v, vn);
    else if (bl_key_is(k, kn, "tty") && bl_qfirst(q, BL_Q_TTY))
        r->tty = bl_qbool(v, vn);
}

/* Options of log (PodLogOptions). */
static void bl_kreq_q_log(bl_kreq_t *r, bl_kquery_t *q, const char *k, size_t kn,
                          const char *v, size_t vn, int vt)
{
    long long n;
    if (bl_key_is(k, kn, "container") && bl_qfirst(q, BL_Q_CONTAINER))
        BL_KREQ_SET(r, r->container, v, vn, vt);
    else if (bl_key_is(k, kn, "follow") && bl_qfirst(q, BL_Q_FOLLOW))
        r->follow = bl_qbool(v, vn);
    else if (bl_key_is(k, kn, "previous") && bl_qfirst(q, BL_Q_PREVIOUS))
        r->previous = bl_qbool(v, vn);
    else if (bl_key_is(k, kn, "tailLines") && bl_qfirst(q, BL_Q_TAIL))
        r->tail_lines = bl_qint(v, vn, &n) == BL_OK && n >= 0 && !vt ? (long)n : -1;
}

/* Takes one decoded key=value pair. */
static void bl_kreq_qpair(bl_kreq_t *r, bl_kquery_t *q, const char *k, size_t kn,
                          const char *v, size_t vn, int vt)
{
    if (bl_key_is(k, kn, "watch") && bl_qfirst(q, BL_Q_WATCH)) {
        q->watch = bl_qbool(v, vn);
    } else if (bl_key_is(k, kn, "fieldSelector") && bl_qfirst(q, BL_Q_FSEL)) {
        BL_KREQ_SET(r, r->field_selector, v, vn, vt);
        memcpy(q->fsel, v, vn);
        q->fsel[vn] = '\0';
        q->fsel_len = vn;
        q->fsel_trunc = vt;
    } else if (bl_key_is(k, kn, "labelSelector") && bl_qfirst(q, BL_Q_LSEL)) {
        BL_KREQ_SET(r, r->label_selector, v, vn, vt);
    } else if (bl_key_is(k, kn, "dryRun")) {
        /* a list; the server accepts only "All" in it */
        if (bl_key_is(v, vn, "All"))
            BL_KREQ_SET(r, r->dry_run, "All", 3, 0);
    } else if (bl_key_is(k, kn, "fieldManager") && bl_qfirst(q, BL_Q_FMGR)) {
        BL_KREQ_SET(r, r->field_manager, v, vn, vt);
    } else if (bl_key_is(k, kn, "force") && bl_qfirst(q, BL_Q_FORCE)) {
        r->force = bl_qbool(v, vn);
    } else if (strcmp(r->subresource, "exec") == 0 || strcmp(r->subresource, "attach") == 0) {
        bl_kreq_q_exec(r, q, k, kn, v, vn, vt);
    } else if (strcmp(r->subresource, "log") == 0) {
        bl_kreq_q_log(r, q, k, kn, v, vn, vt);
    } else if (strcmp(r->subresource, "portforward") == 0 && bl_key_is(k, kn, "ports")) {
        bl_kreq_add_port(r, v, vn);
    }
}

/*
 * Walks "k=v&k=v" like Go's url.ParseQuery: empty pairs are skipped and so
 * are pairs holding a raw ';' (Go drops those too). Returns BL_OK, or
 * BL_ERROR on a malformed escape (Go would drop the pair; byline refuses).
 */
static int bl_kreq_query(bl_kreq_t *r, bl_kquery_t *q, bl_str_t query, const char **err)
{
    char key[64];
    char val[BL_KREQ_VAL_BYTES + 1];
    size_t start = 0;
    if (query.len == 0)
        return BL_OK; /* query.p may be NULL */
    for (size_t i = 0; i <= query.len; i++) {
        if (i < query.len && query.p[i] != '&')
            continue;
        bl_str_t pair = { query.p + start, i - start };
        start = i + 1;
        if (pair.len == 0 || memchr(pair.p, ';', pair.len) != NULL)
            continue;
        const char *eq = memchr(pair.p, '=', pair.len);
        bl_str_t k = { pair.p, eq ? (size_t)(eq - pair.p) : pair.len };
        bl_str_t v = eq ? (bl_str_t){ eq + 1, pair.len - k.len - 1 } : BL_STR_NULL;
        size_t kn, vn;
        unsigned flags = 0;
        if (bl_pct_decode(k, 1, key, sizeof(key), &kn, &flags) != BL_OK ||
            bl_pct_decode(v, 1, val, sizeof(val) - 1, &vn, &flags) != BL_OK) {
            *err = "invalid percent-encoding in query";
            return BL_ERROR;
        }
        if (kn > sizeof(key))
            continue;   /* no key byline reads is that long */
        int vt = vn > sizeof(val) - 1;
        vn = BL_MIN(vn, sizeof(val) - 1);
        val[vn] = '\0';
        bl_kreq_qpair(r, q, key, kn, val, vn, vt);
    }
    return BL_OK;
}

/* Field selectors ------------------------------------------------------- */

/* Splits off the next term at an unescaped ',' (fields.splitTerms). */
static bl_str_t bl_fsel_term(bl_str_t *rest)
{
    int esc = 0;
    size_t i;
    for (i = 0; i < rest->len; i++) {
        if (esc)
            esc = 0;
        else if (rest->p[i] == '\\')
            esc = 1;
        else if (rest->p[i] == ',')
            break;
    }
    bl_str_t t = { rest->p, i };
    size_t adv = i < rest->len ? i + 1 : i;
    rest->p += adv;
    rest->len -= adv;
    return t;
}

/* Unescapes a selector value (fields.UnescapeValue) into out[cap]. Returns
 * the length, or -1 if the value is invalid or does not fit. */
static long bl_fsel_unescape(bl_str_t v, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (c == '\\') {
            if (++i == v.len || (v.p[i] != '\\' && v.p[i] != ',' && v.p[i] != '='))
                return -1;
            c = v.p[i];
        } else if (c == ',' || c == '=') {
            return -1;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

/* Go's string ordering: bytewise, shorter prefix first. */
static int bl_str_less(bl_str_t a, bl_str_t b)
{
    int c = memcmp(a.p, b.p, BL_MIN(a.len, b.len));
    return c < 0 || (c == 0 && a.len < b.len);
}

/* Splits a term at its first operator ("!=", "==" or "=", tried in that
 * order at each position, as fields.splitTerm does). Returns the operator
 * index, or -1 if the term has none. */
static int bl_fsel_split(bl_str_t t, bl_str_t *lhs, bl_str_t *rhs)
{
    static const char *const ops[] = { "!=", "==", "=" };
    for (size_t i = 0; i < t.len; i++)
        for (size_t j = 0; j < BL_ARRAY_LEN(ops); j++) {
            size_t n = strlen(ops[j]);
            if (t.len - i >= n && memcmp(t.p + i, ops[j], n) == 0) {
                *lhs = (bl_str_t){ t.p, i };
                *rhs = (bl_str_t){ t.p + i + n, t.len - i - n };
                return (int)j;
            }
        }
    return -1;
}

/*
 * Finds the name a field selector pins, as fields.ParseSelector(sel)
 * .RequiresExactMatch("metadata.name") does: every term must parse (else no
 * name at all); of several "metadata.name=" terms the smallest (Go sorts the
 * terms) wins. Returns the name length (> 0) written to out, or 0.
 */
static size_t bl_fsel_name(bl_str_t sel, char *out, size_t cap)
{
    bl_str_t best = BL_STR_NULL, best_rhs = BL_STR_NULL;
    while (sel.len > 0) {
        bl_str_t t = bl_fsel_term(&sel), lhs, rhs;
        if (t.len == 0)
            continue;
        int op = bl_fsel_split(t, &lhs, &rhs);
        if (op < 0 || bl_fsel_unescape(rhs, out, cap) < 0)
            return 0;   /* one bad term invalidates the whole selector */
        if (op != 0 && bl_str_eq(lhs, "metadata.name") &&
            (best.p == NULL || bl_str_less(t, best))) {
            best = t;
            best_rhs = rhs;
        }
    }
    if (best.p == NULL)
        return 0;
    long n = bl_fsel_unescape(best_rhs, out, cap);
    /* path.IsValidPathSegmentName: the server ignores names it could not route */
    if (n <= 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0 ||
        strpbrk(out, "/%") != NULL)
        return 0;
    return (size_t)n;
}

/* Public API ------------------------------------------------------------- */

static void bl_kreq_init(bl_kreq_t *r)
{
    memset(r, 0, sizeof(*r));
    r->tail_lines = -1;
    r->replicas = -1;
}

/* Rejects bytes no request-target may hold: controls, SP, DEL. */
static int bl_target_ok(bl_str_t t)
{
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* After the path and query: GET without a name is list or watch (and may
 * name its object by fieldSelector), DELETE without one deletes a collection. */
static void bl_kreq_finish_verb(bl_kreq_t *r, const bl_kquery_t *q)
{
    if (r->name[0] == '\0' && strcmp(r->verb, "get") == 0) {
        if (q->watch)
            BL_KREQ_SET(r, r->verb, "watch", 5, 0);
        else
            BL_KREQ_SET(r, r->verb, "list", 4, 0);
        if ((q->seen & BL_Q_FSEL) && !q->fsel_trunc) {
            char name[BL_KREQ_VAL_BYTES + 1];
            size_t n = bl_fsel_name((bl_str_t){ q->fsel, q->fsel_len }, name, sizeof(name));
            if (n > 0)
                BL_KREQ_SET(r, r->name, name, n, 0);
        }
    }
    if (r->name[0] == '\0' && strcmp(r->verb, "delete") == 0)
        BL_KREQ_SET(r, r->verb, "deletecollection", 16, 0);
}

/*
 * Fills r from an already split path. Returns BL_OK, or BL_ERROR with *err
 * when a segment that decides the object is empty or held an encoded '/'.
 */
static int bl_kreq_from_path(bl_kreq_t *r, const bl_kpath_t *kp, bl_str_t method,
                             const char **err)
{
    const bl_kseg_t *p = kp->seg;
    int api = kp->n >= 3 && bl_seg_is(&p[0], "api");
    int apis = kp->n >= 4 && bl_seg_is(&p[0], "apis");
    size_t decided = kp->n;   /* a non-resource path is taken whole */
    if (api || apis) {
        long n = bl_kreq_resolve(r, kp, method, err);
        if (n < 0)
            return BL_ERROR;
        decided = (size_t)n;
    } else {
        bl_kreq_lower_verb(r, method);
        r->is_discovery = (bl_str_eq(method, "GET") || bl_str_eq(method, "HEAD")) &&
                          bl_kreq_is_discovery(kp);
    }
    if (kp->first_slash < decided) {
        /* Go decodes before splitting: upstream would see more segments */
        *err = "encoded '/' in a path segment";
        return BL_ERROR;
    }
    if (r->is_resource && kp->first_empty < decided) {
        *err = "empty path segment";
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_kreq_parse(bl_kreq_t *r, bl_str_t method, bl_str_t target, const char **err)
{
    bl_kpath_t kp;
    bl_kquery_t q;
    bl_kreq_init(r);
    *err = NULL;
    BL_KREQ_SET(r, r->method, method.p, method.len, 0);
    if (target.len == 0 || target.p == NULL || !bl_target_ok(target)) {
        *err = "empty request target, or control character or space in it";
        return BL_ERROR;
    }
    const char *qm = memchr(target.p, '?', target.len);
    bl_str_t path = { target.p, qm ? (size_t)(qm - target.p) : target.len };
    bl_str_t query = qm ? (bl_str_t){ qm + 1, target.len - path.len - 1 } : BL_STR_NULL;
    BL_KREQ_SET(r, r->path, path.p, path.len, 0);
    if (bl_str_eq(path, "*") && query.len == 0) {   /* OPTIONS * */
        bl_kreq_lower_verb(r, method);
        return BL_OK;
    }
    if (path.len == 0 || path.p[0] != '/') {
        *err = "request target is not origin-form";
        return BL_ERROR;
    }
    if (bl_kpath_split(&kp, path, err) != BL_OK || bl_kreq_from_path(r, &kp, method, err) != BL_OK)
        return BL_ERROR;
    memset(&q, 0, offsetof(bl_kquery_t, fsel));
    q.fsel_len = 0;
    q.fsel_trunc = 0;
    if (bl_kreq_query(r, &q, query, err) != BL_OK)
        return BL_ERROR;
    if (r->is_resource)
        bl_kreq_finish_verb(r, &q);
    return BL_OK;
}
