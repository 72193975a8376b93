/*
 * fuzz_http1.c - libFuzzer target for the strict HTTP/1.1 parser.
 *
 * Input: 3 control bytes, then the message bytes.
 *   ctl[0]  bits 0-2: request method for the response framing; bits 3-7:
 *           header capacity 1..32
 *   ctl[1..2]  where to split the message (modulo its length + 1)
 * The same message is read as a request, as a response and as a chunked
 * body. Besides crashes and sanitizer reports, the target aborts when:
 *   - a prefix of the message parses differently from the whole (a prefix
 *     of an accepted head must be BL_AGAIN; a refused prefix must be
 *     refused by the whole for the same reason);
 *   - the chunked decoder's output differs between one call, a split at
 *     the fuzzer's offset, and one byte per call;
 *   - an accepted message breaks an invariant a smuggler would exploit
 *     (checked by small, independent re-implementations below).
 * Prefixes are copied into exact-size heap buffers so that any read past
 * `len` is an ASan report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/http1.h"

#define MAX_CAP 32

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "fuzz_http1: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static const char *const methods[8] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT" };

static char *dup_exact(const char *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    if (n)
        memcpy(b, p, n);
    return b;
}

static int ieq(bl_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s.p[i], b = (unsigned char)lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a + 32);
        if (a != b)
            return 0;
    }
    return 1;
}

static int same_str(bl_str_t a, const char *abase, bl_str_t b, const char *bbase)
{
    return a.len == b.len && (a.len == 0 || a.p - abase == b.p - bbase);
}

/* Every accepted field: token name, value without CTLs or edge OWS, inside
 * the head. */
static void check_fields(const bl_http_header_t *h, size_t n, const char *base, size_t head)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name.len > 0);
        CHECK(h[i].name.p >= base && h[i].name.p + h[i].name.len <= base + head);
        for (size_t k = 0; k < h[i].name.len; k++)
            CHECK(bl_http_is_tchar((unsigned char)h[i].name.p[k]));
        CHECK(h[i].name.p[h[i].name.len] == ':');
        bl_str_t v = h[i].value;
        CHECK(v.len == 0 || (v.p >= base && v.p + v.len <= base + head));
        for (size_t k = 0; k < v.len; k++) {
            unsigned char c = (unsigned char)v.p[k];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (v.len)
            CHECK(v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.len - 1] != ' ' && v.p[v.len - 1] != '\t');
    }
}

static size_t count(const bl_http_header_t *h, size_t n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ieq(h[i].name, name);
    return c;
}

/* An accepted request body decision, re-derived the simple way. */
static void check_request_framing(const bl_http_request_t *req, const bl_body_t *b)
{
    size_t cl = count(req->headers, req->num_headers, "content-length");
    size_t te = count(req->headers, req->num_headers, "transfer-encoding");
    size_t host = count(req->headers, req->num_headers, "host");
    CHECK(host <= 1 && (req->minor_version == 0 || host == 1));
    CHECK(cl + te <= 1);
    CHECK(!bl_str_eq(req->method, "CONNECT"));
    const bl_http_header_t *f;
    if (te) {
        f = bl_http_find(req->headers, req->num_headers, "Transfer-Encoding", NULL);
        CHECK(req->minor_version == 1 && ieq(f->value, "chunked") && b->kind == BL_BODY_CHUNKED);
    } else if (cl) {
        f = bl_http_find(req->headers, req->num_headers, "Content-Length", NULL);
        uint64_t v = 0;
        CHECK(f->value.len > 0);
        for (size_t i = 0; i < f->value.len; i++) {
            CHECK(f->value.p[i] >= '0' && f->value.p[i] <= '9');
            CHECK(v <= (UINT64_C(0x7fffffffffffffff) - (uint64_t)(f->value.p[i] - '0')) / 10);
            v = v * 10 + (uint64_t)(f->value.p[i] - '0');
        }
        CHECK(b->kind == BL_BODY_LENGTH && b->length == v);
    } else {
        CHECK(b->kind == BL_BODY_NONE);
    }
}

typedef struct {
    uint8_t *out;
    size_t outlen, pos;
    int rc, done, status;
    const char *reason;
} run_t;

/* Feeds in[0..len) to a fresh decoder: pieces end at `cut` and `len`, and
 * are at most `step` bytes (0: no limit). Each piece is offered until it is
 * consumed, refused, or the body is done. */
static void chunk_run(const char *in, size_t len, size_t cut, size_t step, run_t *r)
{
    bl_chunked_t c;
    bl_chunked_init(&c);
    memset(r, 0, sizeof(*r));
    r->out = malloc(len ? len : 1);
    CHECK(r->out != NULL);
    size_t ends[2] = { cut, len };
    for (int part = 0; part < 2 && r->rc == BL_OK && !c.done; part++) {
        while (r->pos < ends[part] && !c.done) {
            size_t n = ends[part] - r->pos;
            if (step && n > step)
                n = step;
            char *piece = dup_exact(in + r->pos, n);
            bl_str_t d;
            bl_http_err_t err = { 0, NULL };
            long k = bl_chunked_decode(&c, piece, n, &d, &err);
            if (k == BL_ERROR) {
                free(piece);
                r->rc = BL_ERROR;
                r->status = err.status;
                r->reason = err.reason;
                CHECK(err.reason != NULL && (err.status == 400 || err.status == 431));
                break;
            }
            CHECK(k > 0 && (size_t)k <= n);
            CHECK(d.len <= (size_t)k);
            CHECK(d.len == 0 || (d.p >= piece && d.p + d.len <= piece + k));
            if (d.len)
                memcpy(r->out + r->outlen, d.p, d.len);
            r->outlen += d.len;
            r->pos += (size_t)k;
            free(piece);
        }
    }
    r->done = c.done;
    if (c.done) {
        bl_str_t d;
        bl_http_err_t err;
        CHECK(bl_chunked_decode(&c, "x", 1, &d, &err) == 0 && d.len == 0);
    }
}

static void chunk_same(const run_t *a, const run_t *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc == BL_ERROR) {
        CHECK(a->status == b->status && strcmp(a->reason, b->reason) == 0);
        /* data handed out before the refusal is a prefix of the same body */
        size_t n = a->outlen < b->outlen ? a->outlen : b->outlen;
        CHECK(memcmp(a->out, b->out, n) == 0);
        return;
    }
    CHECK(a->pos == b->pos && a->done == b->done && a->outlen == b->outlen);
    CHECK(memcmp(a->out, b->out, a->outlen) == 0);
}

static void fuzz_chunked(const char *in, size_t len, size_t cut)
{
    run_t whole, split, bytes;
    chunk_run(in, len, len, 0, &whole);
    chunk_run(in, len, cut, 0, &split);
    chunk_same(&whole, &split);
    if (whole.rc == BL_OK) {
        CHECK(whole.pos == len || whole.done);
        CHECK(whole.outlen <= whole.pos);
    }
    if (len <= 2048) {
        chunk_run(in, len, len, 1, &bytes);
        chunk_same(&whole, &bytes);
        free(bytes.out);
    }
    free(whole.out);
    free(split.out);
}

static void fuzz_request(const char *in, size_t len, size_t cut, size_t cap)
{
    bl_http_header_t h[MAX_CAP], hp[MAX_CAP];
    bl_http_request_t req = { .headers = h, .num_headers = cap };
    bl_http_request_t pre = { .headers = hp, .num_headers = cap };
    bl_http_err_t err = { 0, NULL }, perr = { 0, NULL };
    int rc = bl_http1_parse_request(in, len, &req, &err);
    char *p = dup_exact(in, cut);
    int prc = bl_http1_parse_request(p, cut, &pre, &perr);

    CHECK(rc > 0 || rc == BL_AGAIN || rc == BL_ERROR);
    if (rc == BL_ERROR)
        CHECK(err.reason != NULL &&
              (err.status == 400 || err.status == 414 || err.status == 431 || err.status == 505));
    if (prc == BL_ERROR) {
        CHECK(rc == BL_ERROR && perr.status == err.status && strcmp(perr.reason, err.reason) == 0);
    } else if (rc > 0 && cut < (size_t)rc) {
        CHECK(prc == BL_AGAIN && pre.num_headers == cap);
    } else if (rc > 0) {
        CHECK(prc == rc && pre.num_headers == req.num_headers && pre.minor_version == req.minor_version);
        CHECK(same_str(pre.method, p, req.method, in) && same_str(pre.target, p, req.target, in));
        for (size_t i = 0; i < req.num_headers; i++)
            CHECK(same_str(hp[i].name, p, h[i].name, in) && same_str(hp[i].value, p, h[i].value, in));
    } else if (rc == BL_AGAIN) {
        CHECK(prc == BL_AGAIN);
    }
    free(p);
    if (rc <= 0)
        return;

    CHECK(req.num_headers <= cap && req.method.p >= in);
    CHECK(req.method.len > 0 && (req.minor_version == 0 || req.minor_version == 1));
    for (size_t i = 0; i < req.method.len; i++)
        CHECK(bl_http_is_tchar((unsigned char)req.method.p[i]));
    CHECK(req.target.len > 0 && (req.target.p[0] == '/' || (req.target.len == 1 && req.target.p[0] == '*' &&
                                                             bl_str_eq(req.method, "OPTIONS"))));
    for (size_t i = 0; i < req.target.len; i++)
        CHECK(req.target.p[i] >= 0x21 && req.target.p[i] <= 0x7e);
    check_fields(h, req.num_headers, in, (size_t)rc);

    bl_body_t body;
    if (bl_http1_request_body(&req, &body, &err) == BL_OK) {
        check_request_framing(&req, &body);
        if (body.kind == BL_BODY_CHUNKED)
            fuzz_chunked(in + rc, len - (size_t)rc, cut > (size_t)rc ? cut - (size_t)rc : 0);
    } else {
        CHECK(err.reason != NULL && (err.status == 400 || err.status == 501));
    }
    for (size_t i = 0; i < req.num_headers; i++) {
        (void)bl_http_has_token(h[i].value, "chunked");
        (void)bl_http_has_token(h[i].value, "upgrade");
    }
}

static void fuzz_response(const char *in, size_t len, size_t cut, size_t cap, const char *method)
{
    bl_http_header_t h[MAX_CAP], hp[MAX_CAP];
    bl_http_response_t res = { .headers = h, .num_headers = cap };
    bl_http_response_t pre = { .headers = hp, .num_headers = cap };
    bl_http_err_t err = { 0, NULL }, perr = { 0, NULL };
    int rc = bl_http1_parse_response(in, len, &res, &err);
    char *p = dup_exact(in, cut);
    int prc = bl_http1_parse_response(p, cut, &pre, &perr);

    if (rc == BL_ERROR)
        CHECK(err.status == 502 && err.reason != NULL);
    if (prc == BL_ERROR) {
        CHECK(rc == BL_ERROR && strcmp(perr.reason, err.reason) == 0);
    } else if (rc > 0 && cut < (size_t)rc) {
        CHECK(prc == BL_AGAIN);
    } else if (rc > 0) {
        CHECK(prc == rc && pre.status == res.status && pre.num_headers == res.num_headers);
        CHECK(same_str(pre.reason, p, res.reason, in));
    } else if (rc == BL_AGAIN) {
        CHECK(prc == BL_AGAIN);
    }
    free(p);
    if (rc <= 0)
        return;

    CHECK(res.status >= 100 && res.status <= 599 && res.num_headers <= cap);
    check_fields(h, res.num_headers, in, (size_t)rc);
    bl_body_t body;
    bl_str_t m = { method, strlen(method) };
    if (bl_http1_response_body(&res, m, &body, &err) == BL_OK) {
        size_t cl = count(h, res.num_headers, "content-length");
        size_t te = count(h, res.num_headers, "transfer-encoding");
        int bodiless = bl_str_eq(m, "HEAD") || res.status < 200 || res.status == 204 || res.status == 304;
        CHECK(!bl_str_eq(m, "CONNECT"));
        CHECK(bodiless ? body.kind == BL_BODY_NONE : body.kind != BL_BODY_NONE);
        if (body.kind == BL_BODY_LENGTH)
            CHECK(cl == 1 && te == 0);
        if (body.kind == BL_BODY_CHUNKED)
            CHECK(cl == 0 && te >= 1 && res.minor_version == 1);
        if (body.kind == BL_BODY_CHUNKED)
            fuzz_chunked(in + rc, len - (size_t)rc, cut > (size_t)rc ? cut - (size_t)rc : 0);
    } else {
        CHECK(err.status == 502 && err.reason != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const char *method = methods[data[0] & 7];
    size_t cap = 1 + (size_t)(data[0] >> 3);
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    size_t cut = ((size_t)data[1] << 8 | data[2]) % (len + 1);

    fuzz_request(in, len, cut, cap);
    fuzz_response(in, len, cut, cap, method);
    fuzz_chunked(in, len, cut);
    (void)bl_http_has_token((bl_str_t){ in, len }, "upgrade");
    return 0;
}
