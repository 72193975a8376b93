/*
 * test_http1.c - the strict HTTP/1.1 parser (src/http/http1.c, chunked.c).
 *
 * Most cases are rows of tables (refused heads, framing decisions, chunked
 * bodies); each row is registered as its own cmocka test, and every row is
 * also replayed byte by byte and split at every offset, because a parser
 * that is right on whole buffers and wrong on partial ones is how requests
 * get smuggled. The real kubectl 1.32 request heads come from
 * /work/shared/captures (skipped if that file is absent).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/http1.h"

#define CAPTURE "/work/shared/captures/kubectl-1.32-requests.log"
#define CAP 8   /* header capacity used by the tables */

/* ---- helpers ---- */

static int parse_req(const char *raw, size_t len, bl_http_request_t *req, bl_http_header_t *h,
                     size_t cap, bl_http_err_t *err)
{
    memset(req, 0, sizeof(*req));
    req->headers = h;
    req->num_headers = cap;
    err->status = 0;
    err->reason = NULL;
    return bl_http1_parse_request(raw, len, req, err);
}

static int parse_res(const char *raw, size_t len, bl_http_response_t *res, bl_http_header_t *h,
                     size_t cap, bl_http_err_t *err)
{
    memset(res, 0, sizeof(*res));
    res->headers = h;
    res->num_headers = cap;
    err->status = 0;
    err->reason = NULL;
    return bl_http1_parse_response(raw, len, res, err);
}

static void assert_str(bl_str_t s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0) {
        print_error("got \"%.*s\", want \"%s\"\n", (int)s.len, s.p, want);
        fail();
    }
}

static void assert_reason(const bl_http_err_t *err, const char *want)
{
    assert_non_null(err->reason);
    if (strstr(err->reason, want) == NULL) {
        print_error("reason \"%s\" does not contain \"%s\"\n", err->reason, want);
        fail();
    }
}

/* Every proper prefix of a head must give BL_AGAIN, or the same error the
 * whole head gives (never a different error, never success). */
static void check_prefixes(int is_request, const char *raw, size_t len, int whole_rc,
                           const bl_http_err_t *whole_err)
{
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_response_t res;
    bl_http_err_t err;
    size_t end = whole_rc > 0 ? (size_t)whole_rc : len;
    for (size_t k = 0; k < end; k++) {
        int rc = is_request ? parse_req(raw, k, &req, h, CAP, &err)
                            : parse_res(raw, k, &res, h, CAP, &err);
        if (rc == BL_AGAIN)
            continue;
        if (rc != BL_ERROR || whole_rc != BL_ERROR) {
            print_error("prefix %zu of %zu: rc %d, whole rc %d\n", k, len, rc, whole_rc);
            fail();
        }
        assert_int_equal(err.status, whole_err->status);
        assert_string_equal(err.reason, whole_err->reason);
    }
}

/* ---- refused heads ---- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int status;
    const char *reason;   /* substring of err.reason */
} head_case_t;

#define HC(n, raw, st, why) { n, raw, sizeof(raw) - 1, st, why }
#define RL "GET / HTTP/1.1\r\n"
#define HOST "Host: a\r\n"

static head_case_t bad_requests[] = {
    /* line ends (RFC 9112 section 2.2) */
    HC("bare_lf_request_line", "GET / HTTP/1.1\n" HOST "\r\n", 400, "bare LF"),
    HC("bare_lf_field_line", RL "Host: a\n\r\n", 400, "bare LF"),
    HC("bare_lf_final_line", RL HOST "\n", 400, "bare LF"),
    HC("bare_lf_only_head", "GET / HTTP/1.1\n\n", 400, "bare LF"),
    HC("bare_lf_in_value", RL "X: a\nb\r\n" HOST "\r\n", 400, "bare LF"),
    HC("bare_lf_leading", "\n" RL HOST "\r\n", 400, "bare LF"),
    HC("bare_lf_after_leading_crlf", "\r\n\n" RL HOST "\r\n", 400, "bare LF"),
    HC("bare_cr_in_value", RL "X: a\rb\r\n" HOST "\r\n", 400, "bare CR"),
    HC("bare_cr_before_crlf", RL "X: a\r\r\n" HOST "\r\n", 400, "bare CR"),
    HC("bare_cr_in_target", "GET /\r HTTP/1.1\r\n" HOST "\r\n", 400, "bare CR"),
    HC("bare_cr_after_version", "GET / HTTP/1.1\r\r\n" HOST "\r\n", 400, "bare CR"),
    HC("bare_cr_leading", "\rGET / HTTP/1.1\r\n" HOST "\r\n", 400, "bare CR"),
    HC("bare_cr_line_start", RL HOST "\rX: y\r\n\r\n", 400, "bare CR"),
    HC("bare_cr_in_name", RL "Ho\rst: a\r\n\r\n", 400, "field name"),
    HC("bare_cr_in_method", "G\rET / HTTP/1.1\r\n" HOST "\r\n", 400, "method"),
    /* obs-fold and whitespace (section 5.1, 5.2, 2.2) */
    HC("obs_fold_sp", RL HOST "X: a\r\n b\r\n\r\n", 400, "obs-fold"),
    HC("obs_fold_htab", RL HOST "X: a\r\n\tb\r\n\r\n", 400, "obs-fold"),
    HC("ws_before_first_field", RL " Host: a\r\n\r\n", 400, "obs-fold"),
    HC("ws_before_colon_sp", RL "Host : a\r\n\r\n", 400, "whitespace between field name and colon"),
    HC("ws_before_colon_htab", RL "Host\t: a\r\n\r\n", 400, "whitespace between field name and colon"),
    HC("smuggle_te_ws_before_colon", RL HOST "Transfer-Encoding : chunked\r\n\r\n", 400,
       "whitespace between field name and colon"),
    HC("smuggle_cl_ws_before_colon", RL HOST "Content-Length : 5\r\n\r\n", 400,
       "whitespace between field name and colon"),
    HC("smuggle_te_obs_fold", RL HOST "Transfer-Encoding:\r\n chunked\r\n\r\n", 400, "obs-fold"),
    HC("smuggle_te_vt", RL HOST "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 400, "field value"),
    HC("smuggle_te_nul", RL HOST "Transfer-Encoding: chunked\0\r\n\r\n", 400, "field value"),
    /* field names: 1*tchar (RFC 9110 section 5.1, 5.6.2) */
    HC("empty_field_name", RL ": a\r\n\r\n", 400, "empty field name"),
    HC("name_without_colon", RL "Hosta\r\n\r\n", 400, "field name"),
    HC("name_paren", RL "Ho(st: a\r\n\r\n", 400, "field name"),
    HC("name_at", RL "X@: a\r\n\r\n", 400, "field name"),
    HC("name_slash", RL "X/Y: a\r\n\r\n", 400, "field name"),
    HC("name_obs_text", RL "X\x80: a\r\n\r\n", 400, "field name"),
    HC("name_nul", RL "X\0Y: a\r\n\r\n", 400, "field name"),
    HC("name_ctl", RL "\x01X: a\r\n\r\n", 400, "field name"),
    HC("name_del", RL "X\x7f: a\r\n\r\n", 400, "field name"),
    /* method: token, then exactly one SP (section 3) */
    HC("method_paren", "G(ET / HTTP/1.1\r\n" HOST "\r\n", 400, "method"),
    HC("method_empty", " / HTTP/1.1\r\n" HOST "\r\n", 400, "method"),
    HC("method_nul", "GE\0T / HTTP/1.1\r\n" HOST "\r\n", 400, "method"),
    HC("method_htab", "GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400, "method"),
    HC("method_obs_text", "G\xc3\xa9T / HTTP/1.1\r\n" HOST "\r\n", 400, "method"),
    HC("method_only", "GET\r\n" HOST "\r\n", 400, "method"),
    /* field values: no CTL but HTAB (RFC 9110 section 5.5) */
    HC("value_nul", RL "X: a\0b\r\n" HOST "\r\n", 400, "field value"),
    HC("value_leading_nul", RL "X: \0\r\n" HOST "\r\n", 400, "field value"),
    HC("value_soh", RL "X: a\x01" "b\r\n" HOST "\r\n", 400, "field value"),
    HC("value_del", RL "X: a\x7f" "b\r\n" HOST "\r\n", 400, "field value"),
    HC("value_esc", RL "X: a\x1b" "b\r\n" HOST "\r\n", 400, "field value"),
    HC("value_ff", RL "X: a\x0c" "b\r\n" HOST "\r\n", 400, "field value"),
    HC("value_nul_in_long_value", RL "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0aaaaaaaaaaaaaaaa\r\n" HOST "\r\n",
       400, "field value"),
    HC("value_del_in_long_value", RL "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x7f" "aaaaaaaa\r\n" HOST "\r\n",
       400, "field value"),
    /* request-target: origin-form only (section 3.2) */
    HC("target_absolute_form", "GET http://evil/ HTTP/1.1\r\n" HOST "\r\n", 400, "absolute-form"),
    HC("target_absolute_form_https", "GET https://kubernetes.default/api HTTP/1.1\r\n" HOST "\r\n", 400,
       "absolute-form"),
    HC("target_authority_form", "CONNECT evil:443 HTTP/1.1\r\n" HOST "\r\n", 400, "authority-form"),
    HC("target_asterisk_with_get", "GET * HTTP/1.1\r\n" HOST "\r\n", 400, "asterisk-form"),
    HC("target_asterisk_prefix", "OPTIONS *x HTTP/1.1\r\n" HOST "\r\n", 400, "origin-form"),
    HC("target_relative", "GET a/b HTTP/1.1\r\n" HOST "\r\n", 400, "origin-form"),
    HC("target_obs_text", "GET /\x80 HTTP/1.1\r\n" HOST "\r\n", 400, "request-target"),
    HC("target_del", "GET /\x7f HTTP/1.1\r\n" HOST "\r\n", 400, "request-target"),
    HC("target_nul", "GET /\0 HTTP/1.1\r\n" HOST "\r\n", 400, "request-target"),
    HC("target_htab", "GET /a\tb HTTP/1.1\r\n" HOST "\r\n", 400, "request-target"),
    HC("target_long_obs_text", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xff HTTP/1.1\r\n" HOST "\r\n", 400,
       "request-target"),
    HC("target_empty_double_sp", "GET  / HTTP/1.1\r\n" HOST "\r\n", 400, "empty request-target"),
    HC("target_sp_inside", "GET /a b HTTP/1.1\r\n" HOST "\r\n", 400, "HTTP-version"),
    HC("version_missing", "GET /\r\n" HOST "\r\n", 400, "missing HTTP-version"),
    /* HTTP-version (section 2.3) */
    HC("version_double_sp", "GET /  HTTP/1.1\r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_trailing_sp", "GET / HTTP/1.1 \r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_1_2", "GET / HTTP/1.2\r\n" HOST "\r\n", 505, "not supported"),
    HC("version_2_0", "GET / HTTP/2.0\r\n" HOST "\r\n", 505, "not supported"),
    HC("version_0_9", "GET / HTTP/0.9\r\n" HOST "\r\n", 505, "not supported"),
    HC("version_lowercase", "GET / http/1.1\r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_1_10", "GET / HTTP/1.10\r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_1", "GET / HTTP/1\r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_11", "GET / HTTP/11\r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_space", "GET / HTTP/ 1.1\r\n" HOST "\r\n", 400, "malformed HTTP-version"),
    HC("version_short_head", "GET / H\r\n\r\n", 400, "malformed HTTP-version"),
    /* header count above the capacity (CAP = 8) */
    HC("too_many_fields", RL "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\n\r\n",
       431, "too many header fields"),
    HC("too_many_empty_lines", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n" RL HOST "\r\n", 400, "empty lines"),
};

static head_case_t bad_responses[] = {
    HC("resp_bare_lf", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 502, "bare LF"),
    HC("resp_bare_lf_field", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", 502, "bare LF"),
    HC("resp_leading_crlf", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502, "empty line before status-line"),
    HC("resp_obs_fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502, "obs-fold"),
    HC("resp_ws_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", 502, "colon"),
    HC("resp_empty_name", "HTTP/1.1 200 OK\r\n: 5\r\n\r\n", 502, "empty field name"),
    HC("resp_value_nul", "HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n", 502, "field value"),
    HC("resp_version_1_2", "HTTP/1.2 200 OK\r\n\r\n", 502, "not supported"),
    HC("resp_version_2", "HTTP/2 200 OK\r\n\r\n", 502, "malformed HTTP-version"),
    HC("resp_version_lowercase", "http/1.1 200 OK\r\n\r\n", 502, "malformed HTTP-version"),
    HC("resp_no_sp_after_version", "HTTP/1.1200 OK\r\n\r\n", 502, "malformed HTTP-version"),
    HC("resp_status_two_digits", "HTTP/1.1 20 OK\r\n\r\n", 502, "malformed status code"),
    HC("resp_status_four_digits", "HTTP/1.1 2000 OK\r\n\r\n", 502, "malformed status-line"),
    HC("resp_status_alpha", "HTTP/1.1 2x0 OK\r\n\r\n", 502, "malformed status code"),
    HC("resp_status_double_sp", "HTTP/1.1  200 OK\r\n\r\n", 502, "malformed status code"),
    HC("resp_status_099", "HTTP/1.1 099 X\r\n\r\n", 502, "out of range"),
    HC("resp_status_600", "HTTP/1.1 600 X\r\n\r\n", 502, "out of range"),
    HC("resp_reason_ctl", "HTTP/1.1 200 O\x01K\r\n\r\n", 502, "reason-phrase"),
    HC("resp_reason_bare_cr", "HTTP/1.1 200 O\rK\r\n\r\n", 502, "bare CR"),
    HC("resp_too_short", "HTTP/1.1\r\n\r\n", 502, "malformed status-line"),
    HC("resp_too_many_fields",
       "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\n\r\n",
       502, "too many header fields"),
};

static void test_bad_request(void **state)
{
    const head_case_t *c = *state;
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    int rc = parse_req(c->raw, c->len, &req, h, CAP, &err);
    assert_int_equal(rc, BL_ERROR);
    assert_int_equal(err.status, c->status);
    assert_reason(&err, c->reason);
    assert_int_equal(req.num_headers, CAP);   /* untouched on error */
    check_prefixes(1, c->raw, c->len, rc, &err);
}

static void test_bad_response(void **state)
{
    const head_case_t *c = *state;
    bl_http_header_t h[CAP];
    bl_http_response_t res;
    bl_http_err_t err;
    int rc = parse_res(c->raw, c->len, &res, h, CAP, &err);
    assert_int_equal(rc, BL_ERROR);
    assert_int_equal(err.status, c->status);
    assert_reason(&err, c->reason);
    check_prefixes(0, c->raw, c->len, rc, &err);
}

/* ---- framing ---- */

typedef struct {
    const char *name;
    const char *method;   /* responses: the request method */
    const char *raw;
    size_t len;
    int status;           /* 0: accepted */
    const char *reason;
    bl_body_kind_t kind;
    uint64_t length;
} frame_case_t;

#define FOK(n, raw, k, l) { n, NULL, raw, sizeof(raw) - 1, 0, NULL, k, l }
#define FERR(n, raw, st, why) { n, NULL, raw, sizeof(raw) - 1, st, why, BL_BODY_NONE, 0 }
#define POST "POST / HTTP/1.1\r\nHost: a\r\n"

static frame_case_t request_frames[] = {
    FOK("get_without_body", RL HOST "\r\n", BL_BODY_NONE, 0),
    FOK("content_length", POST "Content-Length: 5\r\n\r\n", BL_BODY_LENGTH, 5),
    FOK("content_length_zero", POST "Content-Length: 0\r\n\r\n", BL_BODY_LENGTH, 0),
    FOK("content_length_leading_zeros", POST "Content-Length: 0005\r\n\r\n", BL_BODY_LENGTH, 5),
    FOK("content_length_max", POST "Content-Length: 9223372036854775807\r\n\r\n", BL_BODY_LENGTH,
        UINT64_C(9223372036854775807)),
    FOK("content_length_ows", POST "Content-Length: \t7 \t\r\n\r\n", BL_BODY_LENGTH, 7),
    FOK("content_length_name_case", POST "content-LENGTH: 3\r\n\r\n", BL_BODY_LENGTH, 3),
    FOK("te_chunked", POST "Transfer-Encoding: chunked\r\n\r\n", BL_BODY_CHUNKED, 0),
    FOK("te_chunked_uppercase", POST "Transfer-Encoding: CHUNKED\r\n\r\n", BL_BODY_CHUNKED, 0),
    FOK("te_name_case", POST "transfer-encoding: Chunked\r\n\r\n", BL_BODY_CHUNKED, 0),
    /* OWS around a value is syntax, not content: Go's net/http trims it too */
    FOK("smuggle_te_htab_chunked", POST "Transfer-Encoding:\tchunked\r\n\r\n", BL_BODY_CHUNKED, 0),
    FOK("te_chunked_trailing_ows", POST "Transfer-Encoding: chunked \t\r\n\r\n", BL_BODY_CHUNKED, 0),
    /* "Transfer_Encoding" is a different (valid) field name, not framing */
    FOK("te_underscore_is_not_te", POST "Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        BL_BODY_LENGTH, 5),
    FOK("http10_without_host", "GET / HTTP/1.0\r\n\r\n", BL_BODY_NONE, 0),
    FOK("http10_content_length", "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n", BL_BODY_LENGTH, 2),
    FOK("host_port", "GET / HTTP/1.1\r\nHost: 127.0.0.1:18443\r\n\r\n", BL_BODY_NONE, 0),
    FOK("host_ipv6", "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n", BL_BODY_NONE, 0),
    FOK("host_empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", BL_BODY_NONE, 0),
    FOK("options_asterisk", "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", BL_BODY_NONE, 0),
    /* CL.TE and TE.CL (RFC 9112 section 6.1, 11.2) */
    FERR("smuggle_cl_te", POST "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "Content-Length together with Transfer-Encoding"),
    FERR("smuggle_te_cl", POST "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", 400,
         "Content-Length together with Transfer-Encoding"),
    FERR("smuggle_cl_te_xchunked", POST "Content-Length: 6\r\nTransfer-Encoding: xchunked\r\n\r\n", 400,
         "Content-Length together with Transfer-Encoding"),
    FERR("smuggle_cl_te_identity", POST "Content-Length: 6\r\nTransfer-Encoding: identity\r\n\r\n", 400,
         "Content-Length together with Transfer-Encoding"),
    /* TE.TE: two views of one Transfer-Encoding */
    FERR("smuggle_te_te_second_field", POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
         400, "repeated Transfer-Encoding"),
    FERR("smuggle_te_te_both_chunked",
         POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "repeated Transfer-Encoding"),
    FERR("smuggle_te_xchunked", POST "Transfer-Encoding: xchunked\r\n\r\n", 400, "does not end in chunked"),
    FERR("smuggle_te_chunked_chunked", POST "Transfer-Encoding: chunked, chunked\r\n\r\n", 400,
         "more than once"),
    FERR("smuggle_te_chunked_param", POST "Transfer-Encoding: chunked;x\r\n\r\n", 400,
         "malformed Transfer-Encoding"),
    FERR("te_chunked_param_value", POST "Transfer-Encoding: chunked;q=1\r\n\r\n", 400,
         "parameters on chunked"),
    FERR("smuggle_te_identity", POST "Transfer-Encoding: identity\r\n\r\n", 400, "does not end in chunked"),
    FERR("te_chunked_then_gzip", POST "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
         "does not end in chunked"),
    FERR("te_gzip", POST "Transfer-Encoding: gzip\r\n\r\n", 400, "does not end in chunked"),
    FERR("te_gzip_chunked", POST "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "not implemented"),
    FERR("te_gzip_param_chunked", POST "Transfer-Encoding: gzip;level=\"9\" , chunked\r\n\r\n", 501,
         "not implemented"),
    FERR("te_empty", POST "Transfer-Encoding:\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_comma", POST "Transfer-Encoding: ,\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_trailing_comma", POST "Transfer-Encoding: chunked,\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_leading_comma", POST "Transfer-Encoding: , chunked\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_quoted", POST "Transfer-Encoding: \"chunked\"\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_space_inside", POST "Transfer-Encoding: chun ked\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_param_empty_value", POST "Transfer-Encoding: gzip;a=\r\n\r\n", 400, "malformed Transfer-Encoding"),
    FERR("te_param_empty_value_list", POST "Transfer-Encoding: gzip;a=, chunked\r\n\r\n", 400,
         "malformed Transfer-Encoding"),
    FERR("te_param_no_value", POST "Transfer-Encoding: gzip;a, chunked\r\n\r\n", 400,
         "malformed Transfer-Encoding"),
    FERR("te_param_no_name", POST "Transfer-Encoding: gzip;=b, chunked\r\n\r\n", 400,
         "malformed Transfer-Encoding"),
    FERR("te_param_unterminated_quote", POST "Transfer-Encoding: gzip;a=\"b, chunked\r\n\r\n", 400,
         "malformed Transfer-Encoding"),
    FERR("te_param_trailing_backslash", POST "Transfer-Encoding: gzip;a=\"b\\\r\n\r\n", 400,
         "malformed Transfer-Encoding"),
    FERR("te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
    /* Content-Length = 1*DIGIT, once (section 6.2; RFC 9110 section 8.6) */
    FERR("cl_repeated_equal", POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
         "repeated Content-Length"),
    FERR("cl_repeated_different", POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
         "repeated Content-Length"),
    FERR("cl_list_equal", POST "Content-Length: 5, 5\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_list_different", POST "Content-Length: 5,6\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_plus", POST "Content-Length: +5\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_minus", POST "Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_empty", POST "Content-Length:\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_hex", POST "Content-Length: 0x5\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_space_inside", POST "Content-Length: 5 5\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_alpha", POST "Content-Length: 5a\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_decimal", POST "Content-Length: 5.0\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_2_63", POST "Content-Length: 9223372036854775808\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_overflow", POST "Content-Length: 99999999999999999999\r\n\r\n", 400, "invalid Content-Length"),
    FERR("cl_overflow_u64", POST "Content-Length: 18446744073709551621\r\n\r\n", 400,
         "invalid Content-Length"),
    /* Host (section 3.2) */
    FERR("host_missing", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "missing Host"),
    FERR("host_repeated", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "repeated Host"),
    FERR("host_repeated_http10", "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400, "repeated Host"),
    FERR("host_with_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host"),
    FERR("host_with_slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host"),
    FERR("host_with_userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400, "invalid Host"),
    FERR("host_obs_text", "GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400, "invalid Host"),
    FERR("connect_origin_form", "CONNECT / HTTP/1.1\r\n" HOST "\r\n", 501, "CONNECT"),
};

#define ROK(n, m, raw, k, l) { n, m, raw, sizeof(raw) - 1, 0, NULL, k, l }
#define RERR(n, m, raw, why) { n, m, raw, sizeof(raw) - 1, 502, why, BL_BODY_NONE, 0 }
#define R200 "HTTP/1.1 200 OK\r\n"

static frame_case_t response_frames[] = {
    ROK("resp_content_length", "GET", R200 "Content-Length: 5\r\n\r\n", BL_BODY_LENGTH, 5),
    ROK("resp_head_ignores_length", "HEAD", R200 "Content-Length: 5\r\n\r\n", BL_BODY_NONE, 0),
    ROK("resp_head_ignores_chunked", "HEAD", R200 "Transfer-Encoding: chunked\r\n\r\n", BL_BODY_NONE, 0),
    ROK("resp_204", "DELETE", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", BL_BODY_NONE, 0),
    ROK("resp_304", "GET", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", BL_BODY_NONE, 0),
    ROK("resp_100", "POST", "HTTP/1.1 100 Continue\r\n\r\n", BL_BODY_NONE, 0),
    ROK("resp_101", "GET", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", BL_BODY_NONE, 0),
    ROK("resp_chunked", "GET", R200 "Transfer-Encoding: chunked\r\n\r\n", BL_BODY_CHUNKED, 0),
    ROK("resp_gzip_chunked", "GET", R200 "Transfer-Encoding: gzip, chunked\r\n\r\n", BL_BODY_CHUNKED, 0),
    ROK("resp_te_two_fields", "GET", R200 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        BL_BODY_CHUNKED, 0),
    ROK("resp_chunked_not_last", "GET", R200 "Transfer-Encoding: chunked, gzip\r\n\r\n", BL_BODY_CLOSE, 0),
    ROK("resp_gzip_only", "GET", R200 "Transfer-Encoding: gzip\r\n\r\n", BL_BODY_CLOSE, 0),
    ROK("resp_xchunked", "GET", R200 "Transfer-Encoding: xchunked\r\n\r\n", BL_BODY_CLOSE, 0),
    ROK("resp_neither", "GET", R200 "Content-Type: text/plain\r\n\r\n", BL_BODY_CLOSE, 0),
    ROK("resp_http10_length", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", BL_BODY_LENGTH, 2),
    ROK("resp_http10_close", "GET", "HTTP/1.0 200 OK\r\n\r\n", BL_BODY_CLOSE, 0),
    ROK("resp_404_length", "GET", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", BL_BODY_LENGTH, 0),
    RERR("resp_cl_te", "GET", R200 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Content-Length together with Transfer-Encoding"),
    RERR("resp_te_cl", "POST", R200 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
         "Content-Length together with Transfer-Encoding"),
    RERR("resp_cl_repeated", "GET", R200 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
         "repeated Content-Length"),
    RERR("resp_cl_list", "GET", R200 "Content-Length: 5, 5\r\n\r\n", "invalid Content-Length"),
    RERR("resp_cl_negative", "GET", R200 "Content-Length: -5\r\n\r\n", "invalid Content-Length"),
    RERR("resp_chunked_twice", "GET", R200 "Transfer-Encoding: chunked, chunked\r\n\r\n", "more than once"),
    RERR("resp_chunked_twice_fields", "GET",
         R200 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "more than once"),
    RERR("resp_chunked_param", "GET", R200 "Transfer-Encoding: chunked;a=b\r\n\r\n", "parameters on chunked"),
    RERR("resp_te_malformed", "GET", R200 "Transfer-Encoding: chunked;\r\n\r\n", "malformed Transfer-Encoding"),
    RERR("resp_te_empty_element", "GET", R200 "Transfer-Encoding: gzip,,chunked\r\n\r\n",
         "malformed Transfer-Encoding"),
    RERR("resp_te_http10", "GET", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"),
    RERR("resp_to_connect", "CONNECT", R200 "\r\n", "CONNECT"),
};

static void test_request_frame(void **state)
{
    const frame_case_t *c = *state;
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    bl_body_t body = { BL_BODY_CLOSE, 99 };
    assert_int_equal(parse_req(c->raw, c->len, &req, h, CAP, &err), (int)c->len);
    check_prefixes(1, c->raw, c->len, (int)c->len, &err);
    int rc = bl_http1_request_body(&req, &body, &err);
    if (c->status != 0) {
        assert_int_equal(rc, BL_ERROR);
        assert_int_equal(err.status, c->status);
        assert_reason(&err, c->reason);
        return;
    }
    assert_int_equal(rc, BL_OK);
    assert_int_equal(body.kind, c->kind);
    assert_true(body.length == c->length);
}

static void test_response_frame(void **state)
{
    const frame_case_t *c = *state;
    bl_http_header_t h[CAP];
    bl_http_response_t res;
    bl_http_err_t err;
    bl_body_t body = { BL_BODY_NONE, 99 };
    assert_int_equal(parse_res(c->raw, c->len, &res, h, CAP, &err), (int)c->len);
    int rc = bl_http1_response_body(&res, (bl_str_t){ c->method, strlen(c->method) }, &body, &err);
    if (c->status != 0) {
        assert_int_equal(rc, BL_ERROR);
        assert_int_equal(err.status, c->status);
        assert_reason(&err, c->reason);
        return;
    }
    assert_int_equal(rc, BL_OK);
    assert_int_equal(body.kind, c->kind);
    assert_true(body.length == c->length);
}

/* ---- chunked bodies ---- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int status;          /* 0: no error */
    const char *reason;
    const char *data;    /* decoded payload (when status is 0) */
    size_t consumed;     /* bytes the decoder took (when status is 0) */
    int done;
} chunk_case_t;

#define COK(n, raw, data, used, dn) { n, raw, sizeof(raw) - 1, 0, NULL, data, used, dn }
#define CALL(n, raw, data) COK(n, raw, data, sizeof(raw) - 1, 1)
#define CERR(n, raw, st, why) { n, raw, sizeof(raw) - 1, st, why, NULL, 0, 0 }

static chunk_case_t chunk_cases[] = {
    CALL("chunk_basic", "5\r\nhello\r\n0\r\n\r\n", "hello"),
    CALL("chunk_two", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
    CALL("chunk_hex_case", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"),
    CALL("chunk_16_digits", "0000000000000003\r\nabc\r\n0000000000000000\r\n\r\n", "abc"),
    CALL("chunk_ext_name", "3;foo\r\nabc\r\n0\r\n\r\n", "abc"),
    CALL("chunk_ext_token_value", "3;foo=bar\r\nabc\r\n0\r\n\r\n", "abc"),
    CALL("chunk_ext_quoted", "3;foo=\"b a\\\"r;\"\r\nabc\r\n0\r\n\r\n", "abc"),
    CALL("chunk_ext_bws", "3 ; foo = bar ;\tbaz\t;x=\"y\"\r\nabc\r\n0\r\n\r\n", "abc"),
    CALL("chunk_ext_several", "3;a=1;b;c=\"x\"\r\nabc\r\n0\r\n\r\n", "abc"),
    CALL("chunk_ext_on_last", "0;x=y\r\n\r\n", ""),
    CALL("chunk_trailers", "2\r\nhi\r\n0\r\nX: y\r\nY-Z:\t a b \r\n\r\n", "hi"),
    CALL("chunk_trailer_empty_value", "0\r\nX:\r\n\r\n", ""),
    CALL("chunk_data_holds_crlf", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"),
    COK("chunk_next_message", "0\r\n\r\nGET / HTTP/1.1\r\n", "", 5, 1),
    COK("chunk_next_message_after_data", "1\r\nx\r\n0\r\n\r\n0\r\n\r\n", "x", 11, 1),
    COK("chunk_incomplete_size", "5", "", 1, 0),
    COK("chunk_incomplete_data", "5\r\nhel", "hel", 6, 0),
    COK("chunk_incomplete_trailer", "0\r\nX: y\r\n", "", 9, 0),
    COK("chunk_size_2_62", "4000000000000000\r\nab", "ab", 20, 0),
    /* chunk-size (RFC 9112 section 7.1) */
    CERR("chunk_empty_size", "\r\n", 400, "invalid chunk size"),
    CERR("chunk_size_bare_lf", "5\nhello\r\n0\r\n\r\n", 400, "bare LF"),
    CERR("smuggle_chunk_ext_bare_lf", "1;\nx\r\n0\r\n\r\n", 400, "bare LF"),
    CERR("chunk_size_bare_cr", "5\rhello", 400, "bare CR"),
    CERR("smuggle_chunk_0x", "0x10\r\n", 400, "invalid chunk size"),
    CERR("smuggle_chunk_plus", "+5\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"),
    CERR("smuggle_chunk_minus", "-1\r\n", 400, "invalid chunk size"),
    CERR("chunk_leading_sp", " 5\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"),
    CERR("chunk_leading_htab", "\t5\r\nhello\r\n0\r\n\r\n", 400, "invalid chunk size"),
    CERR("chunk_trailing_sp", "5 \r\nhello\r\n0\r\n\r\n", 400, "chunk extension"),
    CERR("chunk_size_g", "g\r\n", 400, "invalid chunk size"),
    CERR("chunk_size_then_junk", "5x\r\n", 400, "invalid chunk size"),
    CERR("smuggle_chunk_17_digits", "00000000000000005\r\n", 400, "too large"),
    CERR("smuggle_chunk_2_62_plus_1", "4000000000000001\r\n", 400, "too large"),
    CERR("smuggle_chunk_ffff", "FFFFFFFFFFFFFFFF\r\n", 400, "too large"),
    CERR("smuggle_chunk_2_64", "10000000000000000\r\n", 400, "too large"),
    /* chunk extensions (section 7.1.1) */
    CERR("chunk_ext_empty", "5;\r\nhello\r\n0\r\n\r\n", 400, "chunk extension"),
    CERR("chunk_ext_empty_name", "5;=a\r\n", 400, "chunk extension"),
    CERR("chunk_ext_empty_value", "5;a=\r\n", 400, "chunk extension"),
    CERR("chunk_ext_unterminated_quote", "5;a=\"b\r\n", 400, "chunk extension"),
    CERR("chunk_ext_ws_before_crlf", "5;a \r\n", 400, "chunk extension"),
    CERR("chunk_ext_value_ws_before_crlf", "5;a=b \r\n", 400, "chunk extension"),
    CERR("chunk_ext_ws_inside_name", "5;a b=c\r\n", 400, "chunk extension"),
    CERR("chunk_ext_ctl_in_quoted", "5;a=\"\x01\"\r\n", 400, "chunk extension"),
    CERR("chunk_ext_nontoken_name", "5;a@=b\r\n", 400, "chunk extension"),
    CERR("chunk_ext_bare_cr", "5;a\rX", 400, "bare CR"),
    CERR("chunk_ext_junk_after_quote", "5;a=\"b\"c\r\n", 400, "chunk extension"),
    CERR("chunk_ext_nul", "5;a\0\r\n", 400, "chunk extension"),
    CERR("chunk_ext_value_junk", "5;a=b@\r\n", 400, "chunk extension"),
    CERR("chunk_ext_qpair_ctl", "5;a=\"\\\x01\"\r\n", 400, "chunk extension"),
    CALL("chunk_ext_qpair_ok", "1;a=\"\\\t\\x\"\r\nz\r\n0\r\n\r\n", "z"),
    /* CRLF after data */
    CERR("smuggle_chunk_data_lf_only", "5\r\nhello\n0\r\n\r\n", 400, "not followed by CRLF"),
    CERR("chunk_data_too_long", "5\r\nhelloX\r\n0\r\n\r\n", 400, "not followed by CRLF"),
    CERR("chunk_data_cr_only", "5\r\nhello\r0\r\n\r\n", 400, "not followed by CRLF"),
    CERR("chunk_data_no_crlf", "5\r\nhello0\r\n\r\n", 400, "not followed by CRLF"),
    /* trailer section (section 7.1.2) */
    CERR("smuggle_chunk_last_lf_only", "0\r\n\n", 400, "bare LF"),
    CERR("chunk_last_bare_cr", "0\r\n\rX", 400, "bare CR"),
    CERR("chunk_last_lf_lf", "0\n\n", 400, "bare LF"),
    CERR("chunk_trailer_ws_before_colon", "0\r\nX : y\r\n\r\n", 400, "whitespace between trailer name"),
    CERR("chunk_trailer_obs_fold", "0\r\nX: y\r\n z\r\n\r\n", 400, "obs-fold"),
    CERR("chunk_trailer_lf_only", "0\r\nX: y\n\r\n", 400, "bare LF"),
    CERR("chunk_trailer_bare_cr", "0\r\nX: y\rz\r\n\r\n", 400, "bare CR"),
    CERR("chunk_trailer_no_colon", "0\r\nXY\r\n\r\n", 400, "trailer field name"),
    CERR("chunk_trailer_ctl", "0\r\nX: \x01\r\n\r\n", 400, "trailer field value"),
    CERR("chunk_trailer_nul", "0\r\nX: a\0\r\n\r\n", 400, "trailer field value"),
    CERR("chunk_trailer_empty_name", "0\r\n: y\r\n\r\n", 400, "trailer field name"),
};

typedef struct {
    char *out;
    size_t outlen;
    size_t pos;      /* bytes consumed before done / error / end */
    int rc;          /* BL_OK or BL_ERROR */
    bl_http_err_t err;
    int done;
} chunk_run_t;

/* Decodes in[0..len) fed in slices of at most `step` bytes (0: all at once),
 * calling again on every slice until it is consumed, done or refused. */
static void chunk_run(const char *in, size_t len, size_t step, chunk_run_t *r)
{
    bl_chunked_t c;
    bl_chunked_init(&c);
    memset(r, 0, sizeof(*r));
    r->out = malloc(len + 1);
    assert_non_null(r->out);
    while (r->pos < len && !c.done) {
        size_t end = step == 0 ? len : BL_MIN(len, r->pos + step);
        bl_str_t d;
        long n = bl_chunked_decode(&c, in + r->pos, end - r->pos, &d, &r->err);
        if (n == BL_ERROR) {
            r->rc = BL_ERROR;
            break;
        }
        assert_true(n > 0);
        assert_true(d.len <= (size_t)n);
        assert_true(d.len == 0 || (d.p >= in + r->pos && d.p + d.len <= in + r->pos + n));
        memcpy(r->out + r->outlen, d.p, d.len);
        r->outlen += d.len;
        r->pos += (size_t)n;
    }
    r->done = c.done;
}

static void assert_same_run(const chunk_run_t *a, const chunk_run_t *b)
{
    assert_int_equal(a->rc, b->rc);
    if (a->rc == BL_ERROR) {
        /* where a refused call started depends on the slicing; what was
         * refused, and the data handed out before it, must not */
        assert_int_equal(a->err.status, b->err.status);
        assert_string_equal(a->err.reason, b->err.reason);
        assert_true(a->outlen <= b->outlen);
        assert_memory_equal(a->out, b->out, a->outlen);
        return;
    }
    assert_int_equal(a->pos, b->pos);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->outlen, b->outlen);
    assert_memory_equal(a->out, b->out, a->outlen);
}

/* Whole, byte at a time, and split in two at every offset: all must agree. */
static void check_chunked(const char *raw, size_t len, chunk_run_t *whole)
{
    chunk_run_t other;
    chunk_run(raw, len, 0, whole);
    chunk_run(raw, len, 1, &other);
    assert_same_run(whole, &other);
    free(other.out);
    for (size_t k = 1; k < len; k++) {
        bl_chunked_t c;
        bl_chunked_init(&c);
        chunk_run_t s;
        memset(&s, 0, sizeof(s));
        s.out = malloc(len + 1);
        assert_non_null(s.out);
        size_t cuts[2] = { k, len };
        for (int part = 0; part < 2 && s.rc == BL_OK && !c.done; part++) {
            while (s.pos < cuts[part] && !c.done) {
                bl_str_t d;
                long n = bl_chunked_decode(&c, raw + s.pos, cuts[part] - s.pos, &d, &s.err);
                if (n == BL_ERROR) {
                    s.rc = BL_ERROR;
                    break;
                }
                assert_true(n > 0);
                memcpy(s.out + s.outlen, d.p, d.len);
                s.outlen += d.len;
                s.pos += (size_t)n;
            }
        }
        s.done = c.done;
        assert_same_run(whole, &s);
        free(s.out);
    }
}

static void test_chunk_case(void **state)
{
    const chunk_case_t *c = *state;
    chunk_run_t r;
    check_chunked(c->raw, c->len, &r);
    if (c->status != 0) {
        assert_int_equal(r.rc, BL_ERROR);
        assert_int_equal(r.err.status, c->status);
        assert_reason(&r.err, c->reason);
    } else {
        assert_int_equal(r.rc, BL_OK);
        assert_int_equal(r.outlen, strlen(c->data));
        assert_memory_equal(r.out, c->data, r.outlen);
        assert_int_equal(r.pos, c->consumed);
        assert_int_equal(r.done, c->done);
    }
    free(r.out);
}

/* ---- accepted heads ---- */

static void test_request_minimal(void **state)
{
    (void)state;
    static const char raw[] = "GET /api/v1/pods?limit=500 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    assert_int_equal(parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err), (int)sizeof(raw) - 1);
    assert_str(req.method, "GET");
    assert_str(req.target, "/api/v1/pods?limit=500");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 2);
    assert_str(h[0].name, "Host");
    assert_str(h[0].value, "a");
    assert_str(h[1].name, "Accept");
    assert_str(h[1].value, "*/*");
    /* the spans point into the caller's buffer */
    assert_ptr_equal(req.method.p, raw);
    assert_ptr_equal(h[1].value.p, strstr(raw, "*/*"));
}

static void test_request_values(void **state)
{
    (void)state;
    static const char raw[] = "PATCH /x HTTP/1.0\r\n"
                              "A:   a b \t\r\n"
                              "B:\r\n"
                              "C: \t \r\n"
                              "D:caf\xc3\xa9\r\n"
                              "E: a\tb\r\n"
                              "f-!#$%&'*+.^_`|~9: \"q\"\r\n"
                              "\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    assert_int_equal(parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err), (int)sizeof(raw) - 1);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.num_headers, 6);
    assert_str(h[0].value, "a b");
    assert_str(h[1].value, "");
    assert_str(h[2].value, "");
    assert_str(h[3].value, "caf\xc3\xa9");
    assert_str(h[4].value, "a\tb");
    assert_str(h[5].name, "f-!#$%&'*+.^_`|~9");
    assert_str(h[5].value, "\"q\"");
}

static void test_request_leading_crlf(void **state)
{
    (void)state;
    static const char raw[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char eight[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    assert_int_equal(parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err), (int)sizeof(raw) - 1);
    assert_str(req.method, "GET");
    assert_int_equal(parse_req(eight, sizeof(eight) - 1, &req, h, CAP, &err), (int)sizeof(eight) - 1);
    assert_int_equal(parse_req("\r\n", 2, &req, h, CAP, &err), BL_AGAIN);
    assert_int_equal(parse_req("\r", 1, &req, h, CAP, &err), BL_AGAIN);
    assert_int_equal(parse_req("", 0, &req, h, CAP, &err), BL_AGAIN);
}

static void test_request_pipelined(void **state)
{
    (void)state;
    static const char raw[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    int n = parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err);
    assert_int_equal(n, 28);
    assert_str(req.target, "/a");
    assert_int_equal(parse_req(raw + n, sizeof(raw) - 1 - (size_t)n, &req, h, CAP, &err), 28);
    assert_str(req.target, "/b");
}

static void test_request_options_asterisk(void **state)
{
    (void)state;
    static const char raw[] = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    assert_int_equal(parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err), (int)sizeof(raw) - 1);
    assert_str(req.target, "*");
}

/* BL_AGAIN leaves num_headers as the capacity, so the caller can retry. */
static void test_request_again_keeps_capacity(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req = { .headers = h, .num_headers = CAP };
    bl_http_err_t err;
    assert_int_equal(bl_http1_parse_request(raw, 20, &req, &err), BL_AGAIN);
    assert_int_equal(req.num_headers, CAP);
    assert_int_equal(bl_http1_parse_request(raw, sizeof(raw) - 1, &req, &err), (int)sizeof(raw) - 1);
    assert_int_equal(req.num_headers, 2);
}

static void test_request_capacity(void **state)
{
    (void)state;
    static const char four[] = "GET / HTTP/1.1\r\nHost: a\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    static const char none[] = "GET / HTTP/1.0\r\n\r\n";
    bl_http_header_t h[4];
    bl_http_request_t req;
    bl_http_err_t err;
    assert_int_equal(parse_req(four, sizeof(four) - 1, &req, h, 4, &err), (int)sizeof(four) - 1);
    assert_int_equal(req.num_headers, 4);
    assert_int_equal(parse_req(four, sizeof(four) - 1, &req, h, 3, &err), BL_ERROR);
    assert_int_equal(err.status, 431);
    assert_int_equal(parse_req(none, sizeof(none) - 1, &req, NULL, 0, &err), (int)sizeof(none) - 1);
    assert_int_equal(req.num_headers, 0);
    assert_int_equal(parse_req(four, sizeof(four) - 1, &req, NULL, 0, &err), BL_ERROR);
    assert_int_equal(err.status, 431);
    /* the count is enforced before the head is complete */
    assert_int_equal(parse_req(four, sizeof(four) - 3, &req, h, 3, &err), BL_ERROR);
    assert_int_equal(err.status, 431);
}

/* Builds "GET /aaa... HTTP/1.1" with a request-line of exactly `line` bytes. */
static char *long_request_line(size_t line, size_t *len)
{
    const char *head = "GET /", *tail = " HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t fill = line - strlen(head) - strlen(" HTTP/1.1");
    char *b = malloc(line + 64);
    assert_non_null(b);
    memcpy(b, head, strlen(head));
    memset(b + strlen(head), 'a', fill);
    memcpy(b + strlen(head) + fill, tail, strlen(tail));
    *len = strlen(head) + fill + strlen(tail);
    return b;
}

static void test_request_line_limit(void **state)
{
    (void)state;
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    size_t len;
    char *b = long_request_line(BL_HTTP_MAX_REQUEST_LINE, &len);
    assert_int_equal(parse_req(b, len, &req, h, CAP, &err), (int)len);
    assert_int_equal(req.target.len, BL_HTTP_MAX_REQUEST_LINE - 4 - 9);
    /* a line of exactly the limit, CR not yet arrived or arrived: AGAIN */
    assert_int_equal(parse_req(b, BL_HTTP_MAX_REQUEST_LINE, &req, h, CAP, &err), BL_AGAIN);
    assert_int_equal(parse_req(b, BL_HTTP_MAX_REQUEST_LINE + 1, &req, h, CAP, &err), BL_AGAIN);
    free(b);
    b = long_request_line(BL_HTTP_MAX_REQUEST_LINE + 1, &len);
    assert_int_equal(parse_req(b, len, &req, h, CAP, &err), BL_ERROR);
    assert_int_equal(err.status, 414);
    /* refused as soon as the line is known to be too long, before its end */
    assert_int_equal(parse_req(b, BL_HTTP_MAX_REQUEST_LINE, &req, h, CAP, &err), BL_AGAIN);
    assert_int_equal(parse_req(b, BL_HTTP_MAX_REQUEST_LINE + 1, &req, h, CAP, &err), BL_ERROR);
    assert_int_equal(err.status, 414);
    free(b);
    b = long_request_line(3 * BL_HTTP_MAX_REQUEST_LINE, &len);
    assert_int_equal(parse_req(b, 2 * BL_HTTP_MAX_REQUEST_LINE, &req, h, CAP, &err), BL_ERROR);
    assert_int_equal(err.status, 414);
    free(b);
}

/* Builds a request whose second field line is exactly `line` bytes. */
static char *long_field_line(size_t line, size_t *len)
{
    const char *head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t fill = line - 3;
    char *b = malloc(strlen(head) + fill + 8);
    assert_non_null(b);
    memcpy(b, head, strlen(head));
    memset(b + strlen(head), 'v', fill);
    memcpy(b + strlen(head) + fill, "\r\n\r\n", 4);
    *len = strlen(head) + fill + 4;
    return b;
}

static void test_field_line_limit(void **state)
{
    (void)state;
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_response_t res;
    bl_http_err_t err;
    size_t len, head = strlen("GET / HTTP/1.1\r\nHost: a\r\n");
    char *b = long_field_line(BL_HTTP_MAX_FIELD_LINE, &len);
    assert_int_equal(parse_req(b, len, &req, h, CAP, &err), (int)len);
    assert_int_equal(h[1].value.len, BL_HTTP_MAX_FIELD_LINE - 3);
    assert_int_equal(parse_req(b, head + BL_HTTP_MAX_FIELD_LINE + 1, &req, h, CAP, &err), BL_AGAIN);
    free(b);
    b = long_field_line(BL_HTTP_MAX_FIELD_LINE + 1, &len);
    assert_int_equal(parse_req(b, len, &req, h, CAP, &err), BL_ERROR);
    assert_int_equal(err.status, 431);
    assert_int_equal(parse_req(b, head + BL_HTTP_MAX_FIELD_LINE, &req, h, CAP, &err), BL_AGAIN);
    assert_int_equal(parse_req(b, head + BL_HTTP_MAX_FIELD_LINE + 1, &req, h, CAP, &err), BL_ERROR);
    assert_int_equal(err.status, 431);
    free(b);
    /* the same line in a response is a 502 */
    static const char rs[] = "HTTP/1.1 200 OK\r\nX: ";
    size_t rlen = strlen(rs) + BL_HTTP_MAX_FIELD_LINE + 4;
    char *r = malloc(rlen);
    assert_non_null(r);
    memcpy(r, rs, strlen(rs));
    memset(r + strlen(rs), 'v', rlen - strlen(rs) - 4);
    memcpy(r + rlen - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_res(r, rlen, &res, h, CAP, &err), BL_ERROR);
    assert_int_equal(err.status, 502);
    free(r);
}

static void test_request_byte_at_a_time(void **state)
{
    (void)state;
    static const char raw[] = "\r\nPOST /api/v1/namespaces/web/configmaps?fieldManager=kubectl HTTP/1.1\r\n"
                              "Host: 127.0.0.1:18443\r\n"
                              "User-Agent: kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07\r\n"
                              "Content-Length: 57\r\n"
                              "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJ4In0.c2ln\r\n"
                              "\r\n"
                              "{body}";
    size_t head = sizeof(raw) - 1 - strlen("{body}");
    bl_http_header_t h[CAP], h2[CAP];
    bl_http_request_t req, req2;
    bl_http_err_t err;
    for (size_t k = 0; k < head; k++)
        assert_int_equal(parse_req(raw, k, &req, h, CAP, &err), BL_AGAIN);
    for (size_t k = head; k <= sizeof(raw) - 1; k++)
        assert_int_equal(parse_req(raw, k, &req, h, CAP, &err), (int)head);
    /* fed into a growing copy, as a connection buffer would be */
    char *buf = malloc(sizeof(raw));
    assert_non_null(buf);
    int rc = BL_AGAIN;
    size_t have = 0;
    while (rc == BL_AGAIN && have < sizeof(raw) - 1) {
        buf[have] = raw[have];
        have++;
        rc = parse_req(buf, have, &req2, h2, CAP, &err);
    }
    assert_int_equal(rc, (int)head);
    assert_int_equal(have, head);
    assert_int_equal(req2.num_headers, 4);
    assert_str(req2.target, "/api/v1/namespaces/web/configmaps?fieldManager=kubectl");
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(h2[i].name.len, h[i].name.len);
        assert_memory_equal(h2[i].name.p, h[i].name.p, h[i].name.len);
        assert_int_equal(h2[i].value.len, h[i].value.len);
        assert_memory_equal(h2[i].value.p, h[i].value.p, h[i].value.len);
    }
    free(buf);
}

static void test_response_heads(void **state)
{
    (void)state;
    /* what kube-apiserver (Go net/http) sends for a watch */
    static const char watch[] = "HTTP/1.1 200 OK\r\n"
                                "Audit-Id: 5b5a6a57-0f4e-4b0c-9c43-0c9b6f0a2f11\r\n"
                                "Cache-Control: no-cache, private\r\n"
                                "Content-Type: application/json\r\n"
                                "X-Kubernetes-Pf-Flowschema-Uid: 0f3c\r\n"
                                "Date: Mon, 15 Jun 2026 12:04:01 GMT\r\n"
                                "Transfer-Encoding: chunked\r\n"
                                "\r\n";
    bl_http_header_t h[CAP];
    bl_http_response_t res;
    bl_http_err_t err;
    bl_body_t body;
    assert_int_equal(parse_res(watch, sizeof(watch) - 1, &res, h, CAP, &err), (int)sizeof(watch) - 1);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.minor_version, 1);
    assert_str(res.reason, "OK");
    assert_int_equal(res.num_headers, 6);
    assert_str(h[5].value, "chunked");
    assert_int_equal(bl_http1_response_body(&res, BL_STR("GET"), &body, &err), BL_OK);
    assert_int_equal(body.kind, BL_BODY_CHUNKED);
    for (size_t k = 0; k < sizeof(watch) - 1; k++)
        assert_int_equal(parse_res(watch, k, &res, h, CAP, &err), BL_AGAIN);

    static const char *const ok[] = {
        "HTTP/1.0 404 Not Found\r\n\r\n",
        "HTTP/1.1 204 \r\n\r\n",
        "HTTP/1.1 200\r\n\r\n",   /* missing SP tolerated: framing is unaffected */
        "HTTP/1.1 599 a\tb \xe9\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    static const int status[] = { 404, 204, 200, 599, 100 };
    static const char *const reason[] = { "Not Found", "", "", "a\tb \xe9", "Continue" };
    for (size_t i = 0; i < BL_ARRAY_LEN(ok); i++) {
        assert_int_equal(parse_res(ok[i], strlen(ok[i]), &res, h, CAP, &err), (int)strlen(ok[i]));
        assert_int_equal(res.status, status[i]);
        assert_str(res.reason, reason[i]);
        assert_int_equal(res.num_headers, 0);
    }
}

static void test_find_and_has_token(void **state)
{
    (void)state;
    static const char raw[] = "POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                              "X-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
                              "x-stream-protocol-version: v4.channel.k8s.io\r\n"
                              "Upgrade: SPDY/3.1\r\n"
                              "X-STREAM-PROTOCOL-VERSION: channel.k8s.io\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    assert_int_equal(parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err), (int)sizeof(raw) - 1);
    const char *want[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io" };
    size_t pos = 0, found = 0;
    const bl_http_header_t *f;
    while ((f = bl_http_find(h, req.num_headers, "X-Stream-Protocol-Version", &pos)) != NULL) {
        assert_true(found < 3);
        assert_str(f->value, want[found++]);
    }
    assert_int_equal(found, 3);
    assert_int_equal(pos, req.num_headers);
    f = bl_http_find(h, req.num_headers, "connection", NULL);
    assert_non_null(f);
    assert_true(bl_http_has_token(f->value, "upgrade"));
    assert_true(bl_http_has_token(f->value, "Keep-Alive"));
    assert_false(bl_http_has_token(f->value, "close"));
    assert_null(bl_http_find(h, req.num_headers, "Hos", NULL));
    assert_null(bl_http_find(h, req.num_headers, "Hostx", NULL));
    pos = 99;
    assert_null(bl_http_find(h, req.num_headers, "Host", &pos));
    assert_int_equal(pos, req.num_headers);

    assert_true(bl_http_has_token(BL_STR("Upgrade"), "upgrade"));
    assert_true(bl_http_has_token(BL_STR(",, \tchunked\t ,"), "chunked"));
    assert_true(bl_http_has_token(BL_STR("a,upgrade ,x"), "upgrade"));
    assert_true(bl_http_has_token(BL_STR("x=\"a, b\", upgrade"), "upgrade"));
    assert_false(bl_http_has_token(BL_STR("upgrades"), "upgrade"));
    assert_false(bl_http_has_token(BL_STR("x-upgrade"), "upgrade"));
    assert_false(bl_http_has_token(BL_STR("x=\"a, upgrade, b\""), "upgrade"));
    assert_false(bl_http_has_token(BL_STR("x=\"a\\\", upgrade, b\""), "upgrade"));
    assert_false(bl_http_has_token(BL_STR("chunked;x"), "chunked"));
    assert_false(bl_http_has_token(BL_STR(""), "close"));
    assert_false(bl_http_has_token(BL_STR_NULL, "close"));
}

/* ---- chunked: call semantics ---- */

static void test_chunked_one_span_per_call(void **state)
{
    (void)state;
    static const char raw[] = "3\r\nabc\r\n3;x=y\r\ndef\r\n0\r\nT: v\r\n\r\nNEXT";
    bl_chunked_t c;
    bl_str_t d;
    bl_http_err_t err;
    bl_chunked_init(&c);
    long n = bl_chunked_decode(&c, raw, sizeof(raw) - 1, &d, &err);
    assert_int_equal(n, 15);   /* stops where the second span would begin */
    assert_str(d, "abc");
    assert_int_equal(c.done, 0);
    long m = bl_chunked_decode(&c, raw + n, sizeof(raw) - 1 - (size_t)n, &d, &err);
    assert_str(d, "def");
    assert_int_equal(c.done, 1);
    assert_string_equal(raw + n + m, "NEXT");
    /* once done, nothing more is taken */
    assert_int_equal(bl_chunked_decode(&c, "NEXT", 4, &d, &err), 0);
    assert_int_equal(d.len, 0);
    assert_int_equal(bl_chunked_decode(&c, "", 0, &d, &err), 0);
}

/* A bad byte after data: the data comes first, the error on the next call. */
static void test_chunked_deferred_error(void **state)
{
    (void)state;
    static const char raw[] = "3\r\nabcX\r\n";
    bl_chunked_t c;
    bl_str_t d;
    bl_http_err_t err;
    bl_chunked_init(&c);
    long n = bl_chunked_decode(&c, raw, sizeof(raw) - 1, &d, &err);
    assert_int_equal(n, 6);
    assert_str(d, "abc");
    assert_int_equal(bl_chunked_decode(&c, raw + n, sizeof(raw) - 1 - (size_t)n, &d, &err), BL_ERROR);
    assert_int_equal(err.status, 400);
    assert_reason(&err, "not followed by CRLF");
    /* and it keeps refusing */
    assert_int_equal(bl_chunked_decode(&c, raw + n, sizeof(raw) - 1 - (size_t)n, &d, &err), BL_ERROR);
}

static void test_chunked_byte_at_a_time(void **state)
{
    (void)state;
    static const char raw[] = "1a;name=\"quoted \\\" value\" ; n2 = tok\r\n"
                              "abcdefghijklmnopqrstuvwxyz\r\n"
                              "000F\r\n0123456789ABCDE\r\n"
                              "0 ;last\r\n"
                              "Expires: never\r\nX-Sum:\r\n\r\n"
                              "GET / HTTP/1.1\r\n";
    chunk_run_t whole, bytes;
    chunk_run(raw, sizeof(raw) - 1, 0, &whole);
    chunk_run(raw, sizeof(raw) - 1, 1, &bytes);
    assert_int_equal(whole.rc, BL_OK);
    assert_int_equal(whole.done, 1);
    assert_int_equal(whole.outlen, 41);
    assert_memory_equal(whole.out, "abcdefghijklmnopqrstuvwxyz0123456789ABCDE", 41);
    assert_int_equal(whole.pos, sizeof(raw) - 1 - strlen("GET / HTTP/1.1\r\n"));
    assert_same_run(&whole, &bytes);
    free(whole.out);
    free(bytes.out);
}

static void test_chunked_limits(void **state)
{
    (void)state;
    size_t max = BL_CHUNKED_MAX_LINE, len;
    char *b = malloc(2 * max + 64 * 8 + 64);
    chunk_run_t r;
    assert_non_null(b);

    /* size line of exactly the limit (excluding CRLF) passes, one more fails */
    memcpy(b, "1;", 2);
    memset(b + 2, 'e', max - 2);
    memcpy(b + max, "\r\nx\r\n0\r\n\r\n", 10);
    chunk_run(b, max + 10, 0, &r);
    assert_int_equal(r.rc, BL_OK);
    assert_int_equal(r.done, 1);
    free(r.out);
    memset(b + 2, 'e', max - 1);
    memcpy(b + max + 1, "\r\nx\r\n0\r\n\r\n", 10);
    chunk_run(b, max + 11, 1, &r);
    assert_int_equal(r.rc, BL_ERROR);
    assert_reason(&r.err, "chunk-size line too long");
    assert_int_equal(r.pos, max);
    free(r.out);

    /* trailer line of exactly the limit passes, one more fails */
    memcpy(b, "0\r\nX:", 5);
    memset(b + 5, 'v', max - 2);
    memcpy(b + 3 + max, "\r\n\r\n", 4);
    chunk_run(b, max + 7, 0, &r);
    assert_int_equal(r.rc, BL_OK);
    assert_int_equal(r.done, 1);
    free(r.out);
    memset(b + 5, 'v', max - 1);
    memcpy(b + 4 + max, "\r\n\r\n", 4);
    chunk_run(b, max + 8, 0, &r);
    assert_int_equal(r.rc, BL_ERROR);
    assert_int_equal(r.err.status, 431);
    assert_reason(&r.err, "trailer line too long");
    free(r.out);

    /* BL_CHUNKED_MAX_TRAILERS trailer lines pass, one more fails */
    memcpy(b, "0\r\n", 3);
    len = 3;
    for (int i = 0; i < BL_CHUNKED_MAX_TRAILERS; i++) {
        memcpy(b + len, "T: v\r\n", 6);
        len += 6;
    }
    memcpy(b + len, "\r\n", 2);
    chunk_run(b, len + 2, 0, &r);
    assert_int_equal(r.rc, BL_OK);
    assert_int_equal(r.done, 1);
    free(r.out);
    memcpy(b + len, "T: v\r\n\r\n", 8);
    chunk_run(b, len + 8, 0, &r);
    assert_int_equal(r.rc, BL_ERROR);
    assert_int_equal(r.err.status, 431);
    assert_reason(&r.err, "too many trailer fields");
    free(r.out);
    free(b);
}

/* ---- whole messages: a head, its framing, its body, the next head ---- */

static void test_message_stream(void **state)
{
    (void)state;
    static const char raw[] = "POST /api/v1/namespaces/web/configmaps HTTP/1.1\r\n"
                              "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "4\r\n{\"a\"\r\n2\r\n:1\r\n1\r\n}\r\n0\r\n\r\n"
                              "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    bl_body_t body;
    int n = parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err);
    assert_true(n > 0);
    assert_int_equal(bl_http1_request_body(&req, &body, &err), BL_OK);
    assert_int_equal(body.kind, BL_BODY_CHUNKED);
    chunk_run_t r;
    chunk_run(raw + n, sizeof(raw) - 1 - (size_t)n, 0, &r);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.outlen, 7);
    assert_memory_equal(r.out, "{\"a\":1}", 7);
    const char *next = raw + n + r.pos;
    free(r.out);
    assert_int_equal(parse_req(next, strlen(next), &req, h, CAP, &err), (int)strlen(next));
    assert_str(req.target, "/next");
}

/* CL.TE: the classic smuggle is refused before a body byte is read. */
static void test_smuggle_cl_te_message(void **state)
{
    (void)state;
    static const char raw[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED";
    static const char lf[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\nhello\n0\n\nGET /admin HTTP/1.1\r\n";
    bl_http_header_t h[CAP];
    bl_http_request_t req;
    bl_http_err_t err;
    bl_body_t body;
    assert_true(parse_req(raw, sizeof(raw) - 1, &req, h, CAP, &err) > 0);
    assert_int_equal(bl_http1_request_body(&req, &body, &err), BL_ERROR);
    assert_int_equal(err.status, 400);
    /* LF-only chunk lines: refused, never read as a shorter body */
    int n = parse_req(lf, sizeof(lf) - 1, &req, h, CAP, &err);
    assert_true(n > 0);
    assert_int_equal(bl_http1_request_body(&req, &body, &err), BL_OK);
    chunk_run_t r;
    chunk_run(lf + n, sizeof(lf) - 1 - (size_t)n, 0, &r);
    assert_int_equal(r.rc, BL_ERROR);
    assert_int_equal(r.outlen, 0);
    free(r.out);
}

/* ---- the real kubectl 1.32 requests ---- */

typedef struct {
    char reqline[1024];
    char lines[32][1024];
    size_t n;
} cap_head_t;

static int is_head_end(const char *line, size_t len)
{
    static const char *const ends[] = { "BODY: ", "########", "==== ", "TLS-CLIENTHELLO-ALPN:", "WS-" };
    if (len == 0)
        return 1;
    for (size_t i = 0; i < BL_ARRAY_LEN(ends); i++)
        if (len >= strlen(ends[i]) && memcmp(line, ends[i], strlen(ends[i])) == 0)
            return 1;
    return 0;
}

/* Rebuilds the head with CRLF line ends and checks every part of it. */
static void check_capture_head(const cap_head_t *c)
{
    char raw[16384];
    size_t len = 0;
    len += (size_t)snprintf(raw + len, sizeof(raw) - len, "%s\r\n", c->reqline);
    for (size_t i = 0; i < c->n; i++)
        len += (size_t)snprintf(raw + len, sizeof(raw) - len, "%s\r\n", c->lines[i]);
    len += (size_t)snprintf(raw + len, sizeof(raw) - len, "\r\n");
    assert_true(len < sizeof(raw));

    bl_http_header_t h[32];
    bl_http_request_t req;
    bl_http_err_t err;
    int rc = parse_req(raw, len, &req, h, 32, &err);
    if (rc != (int)len) {
        print_error("capture head \"%s\": rc %d (%s)\n", c->reqline, rc, rc == BL_ERROR ? err.reason : "");
        fail();
    }
    const char *sp1 = strchr(c->reqline, ' '), *sp2 = strrchr(c->reqline, ' ');
    assert_int_equal(req.method.len, (size_t)(sp1 - c->reqline));
    assert_memory_equal(req.method.p, c->reqline, req.method.len);
    assert_int_equal(req.target.len, (size_t)(sp2 - sp1 - 1));
    assert_memory_equal(req.target.p, sp1 + 1, req.target.len);
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, c->n);
    for (size_t i = 0; i < c->n; i++) {
        const char *colon = strchr(c->lines[i], ':');
        assert_non_null(colon);
        assert_int_equal(h[i].name.len, (size_t)(colon - c->lines[i]));
        assert_memory_equal(h[i].name.p, c->lines[i], h[i].name.len);
        assert_str(h[i].value, colon + 2);
    }
    bl_body_t body;
    assert_int_equal(bl_http1_request_body(&req, &body, &err), BL_OK);
    const bl_http_header_t *cl = bl_http_find(h, req.num_headers, "content-length", NULL);
    if (cl != NULL) {
        assert_int_equal(body.kind, BL_BODY_LENGTH);
        assert_int_equal(body.length, strtoull(cl->value.p, NULL, 10));
    } else {
        assert_int_equal(body.kind, BL_BODY_NONE);
    }
    const bl_http_header_t *conn = bl_http_find(h, req.num_headers, "Connection", NULL);
    if (conn != NULL)
        assert_true(bl_http_has_token(conn->value, "upgrade"));
    for (size_t k = 0; k < len; k++)
        assert_int_equal(parse_req(raw, k, &req, h, 32, &err), BL_AGAIN);
}

static void test_kubectl_capture(void **state)
{
    (void)state;
    FILE *f = fopen(CAPTURE, "rb");
    if (f == NULL) {
        print_message("%s not found; skipping\n", CAPTURE);
        skip();
    }
    static char file[1 << 20];
    size_t size = fread(file, 1, sizeof(file) - 1, f);
    fclose(f);
    assert_true(size < sizeof(file) - 1);
    file[size] = '\0';

    static cap_head_t cur;
    size_t heads = 0, markers = 0;
    int in_head = 0;
    for (char *line = file; line < file + size;) {
        char *nl = memchr(line, '\n', (size_t)(file + size - line));
        size_t ll = nl != NULL ? (size_t)(nl - line) : (size_t)(file + size - line);
        if (in_head && is_head_end(line, ll)) {
            check_capture_head(&cur);
            heads++;
            in_head = 0;
        }
        if (ll > 5 && memcmp(line, "==== ", 5) == 0) {
            markers++;
            memset(&cur, 0, sizeof(cur));
            assert_true(ll - 5 < sizeof(cur.reqline));
            memcpy(cur.reqline, line + 5, ll - 5);
            in_head = 1;
        } else if (in_head) {
            assert_true(cur.n < BL_ARRAY_LEN(cur.lines) && ll < sizeof(cur.lines[0]));
            memcpy(cur.lines[cur.n++], line, ll);
        }
        line += ll + 1;
    }
    if (in_head) {
        check_capture_head(&cur);
        heads++;
    }
    print_message("checked %zu kubectl request heads\n", heads);
    assert_true(heads > 0);
    assert_int_equal(heads, markers);
}

/* ---- registration ---- */

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_request_minimal),
        cmocka_unit_test(test_request_values),
        cmocka_unit_test(test_request_leading_crlf),
        cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_request_options_asterisk),
        cmocka_unit_test(test_request_again_keeps_capacity),
        cmocka_unit_test(test_request_capacity),
        cmocka_unit_test(test_request_line_limit),
        cmocka_unit_test(test_field_line_limit),
        cmocka_unit_test(test_request_byte_at_a_time),
        cmocka_unit_test(test_response_heads),
        cmocka_unit_test(test_find_and_has_token),
        cmocka_unit_test(test_chunked_one_span_per_call),
        cmocka_unit_test(test_chunked_deferred_error),
        cmocka_unit_test(test_chunked_byte_at_a_time),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_message_stream),
        cmocka_unit_test(test_smuggle_cl_te_message),
        cmocka_unit_test(test_kubectl_capture),
    };
    size_t n = BL_ARRAY_LEN(fixed) + BL_ARRAY_LEN(bad_requests) + BL_ARRAY_LEN(bad_responses) +
               BL_ARRAY_LEN(request_frames) + BL_ARRAY_LEN(response_frames) + BL_ARRAY_LEN(chunk_cases);
    struct CMUnitTest *t = calloc(n, sizeof(*t));
    size_t k = 0;
    if (t == NULL)
        return 1;
    for (size_t i = 0; i < BL_ARRAY_LEN(fixed); i++)
        t[k++] = fixed[i];
#define ADD(table, fn)                                                                  \
    for (size_t i = 0; i < BL_ARRAY_LEN(table); i++)                                    \
        t[k++] = (struct CMUnitTest){ .name = table[i].name, .test_func = fn,           \
                                      .initial_state = &table[i] };
    ADD(bad_requests, test_bad_request)
    ADD(bad_responses, test_bad_response)
    ADD(request_frames, test_request_frame)
    ADD(response_frames, test_response_frame)
    ADD(chunk_cases, test_chunk_case)
#undef ADD
    int failed = _cmocka_run_group_tests("http1", t, n, NULL, NULL);
    free(t);
    return failed;
}
