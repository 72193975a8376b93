/*
 * http1.c - strict HTTP/1.1 heads and message framing (RFC 9112), over the
 * caller's memory. See http1.h for the contract and docs/internals/http1.md
 * for what is refused and why.
 *
 * A head is parsed in two steps. scan_head() walks the lines with memchr()
 * to find the empty line that ends the head, enforcing line lengths, the
 * header count and "every LF follows a CR" as it goes; it is all a caller
 * pays while a head is still arriving. Only a complete head is validated
 * byte by byte, and because it is known to end in CRLF CRLF, the validating
 * loops need no length checks: every class loop stops at the CR at the
 * latest.
 */
#include <limits.h>
#include "http/http1.h"

#define T1 1
/* tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA */
const unsigned char bl_http_tchar[256] = {
    /*        0  1  2  3  4  5  6  7  8  9  A  B  C  D  E  F */
    /* 0 */   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 1 */   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 2 */   0, T1,0, T1,T1,T1,T1,T1,0, 0, T1,T1,0, T1,T1,0,
    /* 3 */   T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,0, 0, 0, 0, 0, 0,
    /* 4 */   0, T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,
    /* 5 */   T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,0, 0, 0, T1,T1,
    /* 6 */   T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,
    /* 7 */   T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,T1,0, T1,0, T1,0,
    /* 8-F: 0 */
};
#undef T1

/* Field-value bytes (RFC 9110 section 5.5): HTAB, SP, VCHAR, obs-text. */
static inline int value_byte(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

/* request-target bytes: 0x21..0x7E (RFC 3986 never needs more). */
static inline int target_byte(unsigned char c)
{
    return (unsigned char)(c - 0x21) < 0x5e;
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* Nonzero if some byte of x is below n (n <= 128); exact for "any". */
static inline uint64_t has_below(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

/* Nonzero if some byte of x is above n (n <= 127); exact for "any". */
static inline uint64_t has_above(uint64_t x, unsigned n)
{
    return ((x + ONES * (127 - n)) | x) & HIGHS;
}

/* Returns the first byte at or after p that is not a value byte. The
 * caller guarantees such a byte (the line's CR) exists before `end`. */
static const char *skip_value(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load8(p);
        if (has_below(x, 0x20) | has_below(x ^ ONES * 0x7f, 1))
            break;
        p += 8;
    }
    while (value_byte((unsigned char)*p))
        p++;
    return p;
}

/* Same for request-target bytes (the first SP or CR stops it). */
static const char *skip_target(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load8(p);
        if (has_below(x, 0x21) | has_above(x, 0x7e))
            break;
        p += 8;
    }
    while (target_byte((unsigned char)*p))
        p++;
    return p;
}

static inline const char *skip_token(const char *p)
{
    while (bl_http_tchar[(unsigned char)*p])
        p++;
    return p;
}

static inline int fail(bl_http_err_t *err, int status, const char *reason)
{
    err->status = status;
    err->reason = reason;
    return BL_ERROR;
}

/* What a head is measured against; the statuses differ for responses. */
typedef struct {
    size_t first_max;   /* start-line length bound */
    int first_status;
    int field_status;   /* field line too long / too many fields */
    int bad_status;     /* any syntax error */
    size_t capacity;    /* header slots */
} head_rules_t;

/*
 * Finds the end of the head at p[0..n): returns the bytes up to and
 * including the empty line's CRLF, BL_AGAIN, or BL_ERROR for a bare LF, a
 * line longer than its bound (even before its end has arrived) or more
 * field lines than the capacity. Lines are walked with memchr() bounded by
 * the line limit, so the cost is a few calls per line.
 */
static long scan_head(const char *p, size_t n, const head_rules_t *r, bl_http_err_t *err)
{
    size_t start = 0, lines = 0;
    for (;;) {
        size_t max = lines == 0 ? r->first_max : BL_HTTP_MAX_FIELD_LINE;
        int too_long = lines == 0 ? r->first_status : r->field_status;
        size_t avail = n - start, look = BL_MIN(avail, max + 2);
        const char *lf = memchr(p + start, '\n', look);
        if (lf == NULL) {
            /* no LF within max + 2 bytes, or max + 1 bytes not ending in
             * CR: the line cannot end in time */
            if (avail >= max + 2 || (avail == max + 1 && p[n - 1] != '\r'))
                return fail(err, too_long, lines == 0 ? "start-line too long" : "field line too long");
            return BL_AGAIN;
        }
        size_t i = (size_t)(lf - p);
        if (i == start || p[i - 1] != '\r')
            return fail(err, r->bad_status, "bare LF");
        /* the memchr() bound makes linelen <= max here */
        if (i - 1 == start)
            return (long)(i + 1);
        if (lines > 0 && lines > r->capacity)
            return fail(err, r->field_status, "too many header fields");
        lines++;
        start = i + 1;
    }
}

/*
 * Validates the field lines from p up to the empty line that ends the head
 * at `end` (exclusive of that CRLF), storing them in h[]. The caller has
 * run scan_head(), so the count fits and every line ends in CRLF.
 * Returns BL_OK with *count set, or BL_ERROR.
 */
static int parse_fields(const char *p, const char *end, bl_http_header_t *h, size_t *count,
                        int bad, bl_http_err_t *err)
{
    size_t n = 0;
    while (*p != '\r') {
        const char *name = p;
        p = skip_token(p);
        if (*p != ':') {
            if (p == name && (*p == ' ' || *p == '\t'))
                return fail(err, bad, "obs-fold or whitespace before a field line");
            if (*p == ' ' || *p == '\t')
                return fail(err, bad, "whitespace between field name and colon");
            return fail(err, bad, "invalid byte in field name");
        }
        if (p == name)
            return fail(err, bad, "empty field name");
        h[n].name = (bl_str_t){ name, (size_t)(p - name) };
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *v = p;
        p = skip_value(p, end);
        if (*p != '\r')
            return fail(err, bad, "invalid byte in field value");
        if (p[1] != '\n')
            return fail(err, bad, "bare CR");
        const char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        h[n].value = (bl_str_t){ v, (size_t)(ve - v) };
        n++;
        p += 2;
    }
    if (p[1] != '\n')
        return fail(err, bad, "bare CR");
    *count = n;
    return BL_OK;
}

/* Skips the CRLFs allowed before a request-line. Returns the offset of the
 * request-line, BL_AGAIN, or BL_ERROR. */
static long skip_empty_lines(const char *buf, size_t len, bl_http_err_t *err)
{
    size_t off = 0, lines = 0;
    while (off < len && (buf[off] == '\r' || buf[off] == '\n')) {
        if (buf[off] == '\n')
            return fail(err, 400, "bare LF");
        if (off + 1 == len)
            return BL_AGAIN;
        if (buf[off + 1] != '\n')
            return fail(err, 400, "bare CR");
        if (++lines > BL_HTTP_MAX_EMPTY_LINES)
            return fail(err, 400, "too many empty lines before the request-line");
        off += 2;
    }
    return off < len ? (long)off : BL_AGAIN;
}

/* Parses "HTTP/1.x" at p (end - p >= 8 checked by the caller). Returns the
 * minor version (0 or 1), or BL_ERROR: `bad` if malformed, `unsupported` for
 * another well-formed version followed by `next`. */
static int parse_version(const char *p, char next, int bad, int unsupported, bl_http_err_t *err)
{
    if (memcmp(p, "HTTP/", 5) != 0 || (unsigned)(p[5] - '0') > 9 || p[6] != '.' ||
        (unsigned)(p[7] - '0') > 9 || p[8] != next)
        return fail(err, bad, "malformed HTTP-version");
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return fail(err, unsupported, "HTTP version not supported");
    return p[7] - '0';
}

/* Classifies a target that does not start with '/'. Always BL_ERROR. */
static int bad_target(bl_str_t method, bl_str_t t, bl_http_err_t *err)
{
    if (t.len == 1 && t.p[0] == '*')
        return fail(err, 400, "asterisk-form request-target is only allowed with OPTIONS");
    for (size_t i = 0; i + 2 < t.len; i++)
        if (t.p[i] == ':' && t.p[i + 1] == '/' && t.p[i + 2] == '/')
            return fail(err, 400, "absolute-form request-target not accepted");
    if (bl_str_eq(method, "CONNECT"))
        return fail(err, 400, "authority-form request-target not accepted");
    return fail(err, 400, "request-target is not origin-form");
}

/* Validates the request-line at p (ending in CRLF before `end`). Returns a
 * pointer to the first field line, or NULL with *err. */
static const char *parse_request_line(const char *p, const char *end, bl_http_request_t *req,
                                      bl_http_err_t *err)
{
    const char *m = p;
    p = skip_token(p);
    if (p == m || *p != ' ')
        return fail(err, 400, p == m ? "invalid method" : "invalid byte in method"), NULL;
    req->method = (bl_str_t){ m, (size_t)(p - m) };
    const char *t = ++p;
    p = skip_target(p, end);
    if (p == t || *p != ' ') {
        const char *why = p == t ? "empty request-target" : "invalid byte in request-target";
        if (*p == '\r')   /* a CR is always followed by a byte before `end` */
            why = p[1] == '\n' ? "missing HTTP-version" : "bare CR";
        return fail(err, 400, why), NULL;
    }
    req->target = (bl_str_t){ t, (size_t)(p - t) };
    if (*t != '/' && !(req->target.len == 1 && *t == '*' && bl_str_eq(req->method, "OPTIONS")))
        return bad_target(req->method, req->target, err), NULL;
    p++;
    /* "HTTP/1.1" CRLF, and the final CRLF of the head follows: 12 bytes. */
    if (end - p < 12)
        return fail(err, 400, "malformed HTTP-version"), NULL;
    int minor = parse_version(p, '\r', 400, 505, err);
    if (minor < 0)
        return NULL;
    if (p[9] != '\n')
        return fail(err, 400, "bare CR"), NULL;
    req->minor_version = minor;
    return p + 10;
}

int bl_http1_parse_request(const char *buf, size_t len, bl_http_request_t *req,
                           bl_http_err_t *err)
{
    if (len >= INT_MAX)
        return fail(err, 431, "request head too large");
    long off = skip_empty_lines(buf, len, err);
    if (off < 0)
        return (int)off;
    head_rules_t rules = { BL_HTTP_MAX_REQUEST_LINE, 414, 431, 400, req->num_headers };
    long n = scan_head(buf + off, len - (size_t)off, &rules, err);
    if (n < 0)
        return (int)n;
    const char *end = buf + off + n;
    const char *p = parse_request_line(buf + off, end, req, err);
    if (p == NULL)
        return BL_ERROR;
    size_t count;
    if (parse_fields(p, end, req->headers, &count, 400, err) != BL_OK)
        return BL_ERROR;
    req->num_headers = count;
    return (int)(end - buf);
}

/* Validates the status-line at p. Returns the first field line or NULL. */
static const char *parse_status_line(const char *p, const char *end, bl_http_response_t *res,
                                     bl_http_err_t *err)
{
    /* "HTTP/1.1 200" CRLF plus the head's final CRLF: 16 bytes at least. */
    if (end - p < 16)
        return fail(err, 502, "malformed status-line"), NULL;
    int minor = parse_version(p, ' ', 502, 502, err);
    if (minor < 0)
        return NULL;
    unsigned d0 = (unsigned)(p[9] - '0'), d1 = (unsigned)(p[10] - '0'), d2 = (unsigned)(p[11] - '0');
    if (d0 > 9 || d1 > 9 || d2 > 9)
        return fail(err, 502, "malformed status code"), NULL;
    int status = (int)(d0 * 100 + d1 * 10 + d2);
    if (status < 100 || status > 599)
        return fail(err, 502, "status code out of range"), NULL;
    p += 12;
    const char *r = p;
    if (*p == ' ') {
        r = ++p;
        p = skip_value(p, end);
    }
    if (*p != '\r')
        return fail(err, 502, r == p ? "malformed status-line" : "invalid byte in reason-phrase"), NULL;
    if (p[1] != '\n')
        return fail(err, 502, "bare CR"), NULL;
    res->minor_version = minor;
    res->status = status;
    res->reason = (bl_str_t){ r, (size_t)(p - r) };
    return p + 2;
}

int bl_http1_parse_response(const char *buf, size_t len, bl_http_response_t *res,
                            bl_http_err_t *err)
{
    if (len >= INT_MAX)
        return fail(err, 502, "response head too large");
    head_rules_t rules = { BL_HTTP_MAX_REQUEST_LINE, 502, 502, 502, res->num_headers };
    long n = scan_head(buf, len, &rules, err);
    if (n < 0)
        return (int)n;
    if (n == 2)
        return fail(err, 502, "empty line before status-line");
    const char *end = buf + n;
    const char *p = parse_status_line(buf, end, res, err);
    if (p == NULL)
        return BL_ERROR;
    size_t count;
    if (parse_fields(p, end, res->headers, &count, 502, err) != BL_OK)
        return BL_ERROR;
    res->num_headers = count;
    return (int)n;
}

/* ---- framing (RFC 9112 section 6) ---- */

static inline unsigned char lower(unsigned char c)
{
    return (unsigned char)(c - 'A') < 26 ? (unsigned char)(c + 32) : c;
}

/* Returns 1 if p[0..n) equals the NUL-terminated `s` ignoring ASCII case. */
static int eq_nocase(const char *p, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || lower((unsigned char)p[i]) != lower((unsigned char)s[i]))
            return 0;
    return s[n] == '\0';
}

/* The fields that decide framing, gathered in one pass over the headers. */
typedef struct {
    size_t hosts, cls, tes;
    bl_str_t host, cl, te;
} framing_t;

static void collect(const bl_http_header_t *h, size_t n, framing_t *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        bl_str_t k = h[i].name;
        if (k.len == 4 && eq_nocase(k.p, 4, "host")) {
            f->hosts++;
            f->host = h[i].value;
        } else if (k.len == 14 && eq_nocase(k.p, 14, "content-length")) {
            f->cls++;
            f->cl = h[i].value;
        } else if (k.len == 17 && eq_nocase(k.p, 17, "transfer-encoding")) {
            f->tes++;
            f->te = h[i].value;
        }
    }
}

/* Content-Length = 1*DIGIT, at most 2^63-1 (what Go's net/http accepts).
 * Returns BL_OK with *out, or BL_ERROR. */
static int parse_content_length(bl_str_t v, uint64_t *out)
{
    uint64_t x = 0;
    if (v.len == 0)
        return BL_ERROR;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned)((unsigned char)v.p[i] - '0');
        if (d > 9 || x > (UINT64_C(0x7fffffffffffffff) - d) / 10)
            return BL_ERROR;
        x = x * 10 + d;
    }
    *out = x;
    return BL_OK;
}

/* What a Transfer-Encoding list holds, accumulated over its field lines. */
typedef struct {
    size_t codings;    /* transfer-codings seen */
    size_t chunked;    /* how many of them are "chunked" */
    int last_chunked;  /* the final coding is chunked */
    int chunked_params;
} te_t;

static const char *skip_ows(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Parses token or quoted-string at p; returns its end, or NULL. */
static const char *skip_param_value(const char *p, const char *e)
{
    if (p == e)
        return NULL;
    if (*p != '"') {
        const char *s = p;
        while (p < e && bl_http_tchar[(unsigned char)*p])
            p++;
        return p == s ? NULL : p;
    }
    for (p++; p < e; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && ++p == e)
            return NULL;
        if (!value_byte((unsigned char)*p))
            return NULL;
    }
    return NULL;
}

/* Parses one transfer-coding: token *( OWS ";" OWS token BWS "=" BWS
 * ( token / quoted-string ) ) (RFC 9112 section 7). Returns its end or NULL. */
static const char *te_coding(const char *p, const char *e, te_t *t)
{
    const char *s = p;
    while (p < e && bl_http_tchar[(unsigned char)*p])
        p++;
    if (p == s)
        return NULL;
    int chunked = eq_nocase(s, (size_t)(p - s), "chunked");
    t->codings++;
    t->chunked += (size_t)chunked;
    t->last_chunked = chunked;
    for (;;) {
        const char *q = skip_ows(p, e);
        if (q == e || *q != ';')
            return p;
        t->chunked_params |= chunked;
        q = skip_ows(q + 1, e);
        s = q;
        while (q < e && bl_http_tchar[(unsigned char)*q])
            q++;
        if (q == s)
            return NULL;
        q = skip_ows(q, e);
        if (q == e || *q != '=')
            return NULL;
        p = skip_param_value(skip_ows(q + 1, e), e);
        if (p == NULL)
            return NULL;
    }
}

/* Adds the codings of one Transfer-Encoding field value to *t. An empty
 * list element is refused rather than ignored. Returns BL_OK or BL_ERROR. */
static int te_scan(bl_str_t v, te_t *t)
{
    const char *p = v.p, *e = v.p + v.len;
    for (;;) {
        p = te_coding(skip_ows(p, e), e, t);
        if (p == NULL)
            return BL_ERROR;
        p = skip_ows(p, e);
        if (p == e)
            return BL_OK;
        if (*p != ',')
            return BL_ERROR;
        p++;
    }
}

/* uri-host [ ":" port ] bytes: reg-name, IP-literal, IPv4, port. */
static int host_ok(bl_str_t v)
{
    static const char extra[] = "-._~%!$&'()*+,;=:[]";
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (!((unsigned char)(lower(c) - 'a') < 26 || (unsigned char)(c - '0') < 10 ||
              (c != '\0' && strchr(extra, c) != NULL)))
            return 0;
    }
    return 1;
}

/* Request Transfer-Encoding: only exactly "chunked" (section 6.1, 6.3). */
static int request_te(const framing_t *f, int minor, bl_body_t *body, bl_http_err_t *err)
{
    if (minor == 0)
        return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (f->tes > 1)
        return fail(err, 400, "repeated Transfer-Encoding");
    body->kind = BL_BODY_CHUNKED;
    if (eq_nocase(f->te.p, f->te.len, "chunked"))
        return BL_OK;
    te_t t = { 0 };
    if (te_scan(f->te, &t) != BL_OK)
        return fail(err, 400, "malformed Transfer-Encoding");
    if (!t.last_chunked)
        return fail(err, 400, "Transfer-Encoding does not end in chunked");
    if (t.chunked > 1)
        return fail(err, 400, "chunked applied more than once");
    if (t.chunked_params)
        return fail(err, 400, "parameters on chunked");
    return fail(err, 501, "transfer coding not implemented");
}

int bl_http1_request_body(const bl_http_request_t *req, bl_body_t *body, bl_http_err_t *err)
{
    framing_t f;
    collect(req->headers, req->num_headers, &f);
    body->kind = BL_BODY_NONE;
    body->length = 0;
    if (f.hosts > 1)
        return fail(err, 400, "repeated Host");
    if (f.hosts == 0 && req->minor_version == 1)
        return fail(err, 400, "missing Host");
    if (f.hosts == 1 && !host_ok(f.host))
        return fail(err, 400, "invalid Host");
    if (bl_str_eq(req->method, "CONNECT"))
        return fail(err, 501, "CONNECT is not supported");
    if (f.tes > 0 && f.cls > 0)
        return fail(err, 400, "Content-Length together with Transfer-Encoding");
    if (f.tes > 0)
        return request_te(&f, req->minor_version, body, err);
    if (f.cls > 1)
        return fail(err, 400, "repeated Content-Length");
    if (f.cls == 1) {
        if (parse_content_length(f.cl, &body->length) != BL_OK)
            return fail(err, 400, "invalid Content-Length");
        body->kind = BL_BODY_LENGTH;
    }
    return BL_OK;
}

/* Response Transfer-Encoding, a list across all its field lines: chunked
 * last means chunked, anything else reads until close (section 6.3). */
static int response_te(const bl_http_response_t *res, bl_body_t *body, bl_http_err_t *err)
{
    te_t t = { 0 };
    if (res->minor_version == 0)
        return fail(err, 502, "Transfer-Encoding in an HTTP/1.0 response");
    for (size_t i = 0; i < res->num_headers; i++) {
        bl_str_t k = res->headers[i].name;
        if (k.len == 17 && eq_nocase(k.p, 17, "transfer-encoding") &&
            te_scan(res->headers[i].value, &t) != BL_OK)
            return fail(err, 502, "malformed Transfer-Encoding");
    }
    if (t.chunked > 1)
        return fail(err, 502, "chunked applied more than once");
    if (t.chunked_params)
        return fail(err, 502, "parameters on chunked");
    body->kind = t.last_chunked ? BL_BODY_CHUNKED : BL_BODY_CLOSE;
    return BL_OK;
}

int bl_http1_response_body(const bl_http_response_t *res, bl_str_t req_method,
                           bl_body_t *body, bl_http_err_t *err)
{
    framing_t f;
    body->kind = BL_BODY_NONE;
    body->length = 0;
    if (bl_str_eq(req_method, "CONNECT"))
        return fail(err, 502, "CONNECT is not proxied");
    if (bl_str_eq(req_method, "HEAD") || res->status < 200 || res->status == 204 ||
        res->status == 304)
        return BL_OK;
    collect(res->headers, res->num_headers, &f);
    if (f.tes > 0 && f.cls > 0)
        return fail(err, 502, "Content-Length together with Transfer-Encoding");
    if (f.tes > 0)
        return response_te(res, body, err);
    if (f.cls > 1)
        return fail(err, 502, "repeated Content-Length");
    if (f.cls == 1) {
        if (parse_content_length(f.cl, &body->length) != BL_OK)
            return fail(err, 502, "invalid Content-Length");
        body->kind = BL_BODY_LENGTH;
        return BL_OK;
    }
    body->kind = BL_BODY_CLOSE;
    return BL_OK;
}

/* ---- field lookup ---- */

const bl_http_header_t *bl_http_find(const bl_http_header_t *h, size_t n, const char *name,
                                     size_t *pos)
{
    size_t nl = strlen(name);
    for (size_t i = pos != NULL ? *pos : 0; i < n; i++) {
        if (h[i].name.len == nl && eq_nocase(h[i].name.p, nl, name)) {
            if (pos != NULL)
                *pos = i + 1;
            return &h[i];
        }
    }
    if (pos != NULL)
        *pos = n;
    return NULL;
}

/* Returns the end of the list element starting at p: the next comma
 * outside a quoted-string, or e. */
static const char *element_end(const char *p, const char *e)
{
    int quoted = 0;
    for (; p < e; p++) {
        if (quoted) {
            if (*p == '\\' && p + 1 < e)
                p++;
            else if (*p == '"')
                quoted = 0;
        } else if (*p == '"') {
            quoted = 1;
        } else if (*p == ',') {
            break;
        }
    }
    return p;
}

int bl_http_has_token(bl_str_t value, const char *token)
{
    size_t tl = strlen(token);
    if (value.len == 0)
        return 0;
    const char *p = value.p, *e = value.p + value.len;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        p = element_end(p, e);
        const char *t = p;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - s) == tl && eq_nocase(s, tl, token))
            return 1;
    }
    return 0;
}
