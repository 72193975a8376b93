/* test_sigv4.c - SigV4 against every case of the aws-c-auth style suite in
 * /work/shared/vectors/aws-sigv4 (read in place; BL_SIGV4_VECTORS overrides),
 * in header and query (presigned) form: canonical request, string to sign,
 * signature, and the Authorization value / the signed query's parameters. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <jansson.h>
#include "aws/sigv4.h"

#define VEC_DEFAULT "/work/shared/vectors/aws-sigv4"
#define MAX_CASES 256
#define FILE_MAX (256 * 1024)

typedef struct {
    char dir[1024];
    char name[300];
    bl_sigv4_form_t form;
} vcase_t;

static const char *vec_root(void)
{
    const char *d = getenv("BL_SIGV4_VECTORS");
    return d && *d ? d : VEC_DEFAULT;
}

/* Reads dir/name into a malloc'd NUL-terminated string (*len set); NULL if absent. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(FILE_MAX + 1);
    size_t n = p ? fread(p, 1, FILE_MAX, f) : 0;
    fclose(f);
    if (p) {
        p[n] = '\0';
        if (len)
            *len = n;
    }
    return p;
}

typedef struct {
    char method[16];
    bl_str_t path, query;
    bl_sigv4_header_t h[BL_SIGV4_MAX_HEADERS];
    size_t nh;
    const char *body;
    size_t body_len;
} parsed_req_t;

/* Parses request.txt in place: "METHOD target HTTP/1.1", "Name:value" lines
 * (a line starting with SP continues the previous value, newline kept), an
 * empty line, the body. Returns 0 or -1. */
static int parse_request(char *t, size_t len, parsed_req_t *r)
{
    memset(r, 0, sizeof(*r));
    char *end = t + len, *nl = memchr(t, '\n', len);
    char *line_end = nl ? nl : end;
    char *sp1 = memchr(t, ' ', (size_t)(line_end - t));
    char *sp2 = line_end;
    while (sp2 > sp1 && sp2[-1] != ' ')
        sp2--;
    if (!sp1 || sp2 <= sp1 + 1 || (size_t)(sp1 - t) >= sizeof(r->method))
        return -1;
    memcpy(r->method, t, (size_t)(sp1 - t));
    bl_str_t target = { sp1 + 1, (size_t)(sp2 - 1 - (sp1 + 1)) };
    const char *q = memchr(target.p, '?', target.len);
    r->path = target;
    if (q) {
        r->path.len = (size_t)(q - target.p);
        r->query = (bl_str_t){ q + 1, target.len - r->path.len - 1 };
    }
    char *p = nl ? nl + 1 : end;
    while (p < end) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        char *le = e ? e : end;
        if (le == p) {
            r->body = e ? e + 1 : end;
            r->body_len = (size_t)(end - r->body);
            break;
        }
        if (*p == ' ' && r->nh > 0) {
            bl_sigv4_header_t *last = &r->h[r->nh - 1];
            last->value.len = (size_t)(le - last->value.p);
        } else {
            char *colon = memchr(p, ':', (size_t)(le - p));
            if (!colon || r->nh == BL_SIGV4_MAX_HEADERS)
                return -1;
            r->h[r->nh].name = (bl_str_t){ p, (size_t)(colon - p) };
            r->h[r->nh].value = (bl_str_t){ colon + 1, (size_t)(le - colon - 1) };
            r->nh++;
        }
        p = e ? e + 1 : end;
    }
    return 0;
}

/* Compares the bytes of `b` with file dir/name exactly. */
static void expect_file(const bl_buf_t *b, const char *dir, const char *name)
{
    size_t n = 0;
    char *want = slurp(dir, name, &n);
    assert_non_null(want);
    if (bl_buf_size(b) != n || memcmp(bl_buf_data(b), want, n) != 0) {
        print_error("%s/%s differs:\n--- want\n%s\n--- got\n%.*s\n", dir, name, want,
                    (int)bl_buf_size(b), bl_buf_data(b));
        free(want);
        fail();
    }
    free(want);
}

/* Percent-decodes in place (test helper). */
static void pct_decode(char *s)
{
    char *o = s;
    for (char *i = s; *i; i++) {
        if (i[0] == '%' && bl_hexval((unsigned char)i[1]) >= 0 && bl_hexval((unsigned char)i[2]) >= 0) {
            *o++ = (char)(bl_hexval((unsigned char)i[1]) * 16 + bl_hexval((unsigned char)i[2]));
            i += 2;
        } else {
            *o++ = *i;
        }
    }
    *o = '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits a query into sorted, decoded "k=v" strings; returns the count. */
static size_t split_query(char *q, char **out, size_t cap)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(q, "&", &save); t && n < cap; t = strtok_r(NULL, "&", &save)) {
        pct_decode(t);
        out[n++] = t;
    }
    qsort(out, n, sizeof(out[0]), cmp_str);
    return n;
}

/* The query of the signed request file's first line and ours must hold the
 * same decoded parameters (the suite keeps the caller's order and raw bytes;
 * byline sends the canonical order). */
static void expect_same_params(const vcase_t *vc, const bl_buf_t *ours)
{
    char *want = slurp(vc->dir, "query-signed-request.txt", NULL);
    assert_non_null(want);
    char *q = strchr(want, '?'), *sp = q ? strstr(q, " HTTP/1.1") : NULL;
    assert_non_null(sp);
    *sp = '\0';
    char *mine = strndup(bl_buf_data(ours), bl_buf_size(ours));
    char *a[BL_SIGV4_MAX_PARAMS + 8], *b[BL_SIGV4_MAX_PARAMS + 8];
    size_t na = split_query(q + 1, a, BL_ARRAY_LEN(a)), nb = split_query(mine, b, BL_ARRAY_LEN(b));
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i], b[i]);
    free(mine);
    free(want);
}

/* The Authorization line of header-signed-request.txt equals ours. */
static void expect_authorization(const vcase_t *vc, const bl_buf_t *ours)
{
    char *want = slurp(vc->dir, "header-signed-request.txt", NULL);
    assert_non_null(want);
    char *a = strstr(want, "\nAuthorization:");
    assert_non_null(a);
    a += strlen("\nAuthorization:");
    *strchr(a, '\n') = '\0';
    assert_int_equal(strlen(a), bl_buf_size(ours));
    assert_memory_equal(a, bl_buf_data(ours), strlen(a));
    free(want);
}

/* Fills creds/params from context.json; returns the parsed root to free. */
static json_t *load_context(const vcase_t *vc, bl_sigv4_creds_t *cr, bl_sigv4_params_t *p)
{
    char path[1400];
    snprintf(path, sizeof(path), "%s/context.json", vc->dir);
    json_t *ctx = json_load_file(path, 0, NULL);
    assert_non_null(ctx);
    json_t *c = json_object_get(ctx, "credentials");
    cr->access_key_id = json_string_value(json_object_get(c, "access_key_id"));
    cr->secret_access_key = json_string_value(json_object_get(c, "secret_access_key"));
    cr->session_token = json_string_value(json_object_get(c, "token"));
    memset(p, 0, sizeof(*p));
    p->form = vc->form;
    p->region = json_string_value(json_object_get(ctx, "region"));
    p->service = json_string_value(json_object_get(ctx, "service"));
    p->expires = (unsigned)json_integer_value(json_object_get(ctx, "expiration_in_seconds"));
    p->normalize_path = json_is_true(json_object_get(ctx, "normalize"));
    p->sign_body = json_is_true(json_object_get(ctx, "sign_body"));
    p->omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token"));
    struct tm tm = { 0 };
    const char *ts = json_string_value(json_object_get(ctx, "timestamp"));
    assert_non_null(ts);
    assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm));
    p->when = timegm(&tm);
    return ctx;
}

static void test_vector(void **state)
{
    const vcase_t *vc = *state;
    const char *pre = vc->form == BL_SIGV4_HEADER ? "header-" : "query-";
    char fname[64];
    size_t len = 0;
    char *raw = slurp(vc->dir, "request.txt", &len);
    assert_non_null(raw);
    parsed_req_t pr;
    assert_int_equal(parse_request(raw, len, &pr), 0);
    bl_sigv4_creds_t cr;
    bl_sigv4_params_t p;
    json_t *ctx = load_context(vc, &cr, &p);
    bl_sigv4_request_t req = { .method = pr.method, .path = pr.path, .query = pr.query,
                               .headers = pr.h, .num_headers = pr.nh, .body = pr.body,
                               .body_len = pr.body_len };
    bl_sigv4_result_t out;
    char err[256] = "";
    bl_sigv4_result_init(&out);
    assert_int_equal(bl_sigv4_sign(&req, &cr, &p, &out, err, sizeof(err)), BL_OK);
    snprintf(fname, sizeof(fname), "%scanonical-request.txt", pre);
    expect_file(&out.canonical_request, vc->dir, fname);
    snprintf(fname, sizeof(fname), "%sstring-to-sign.txt", pre);
    expect_file(&out.string_to_sign, vc->dir, fname);
    snprintf(fname, sizeof(fname), "%ssignature.txt", pre);
    bl_buf_t sig;
    bl_buf_init(&sig, 128);
    bl_buf_puts(&sig, out.signature);
    expect_file(&sig, vc->dir, fname);
    bl_buf_free(&sig);
    if (vc->form == BL_SIGV4_HEADER)
        expect_authorization(vc, &out.authorization);
    else
        expect_same_params(vc, &out.query);
    bl_sigv4_result_free(&out);
    json_decref(ctx);
    free(raw);
}

static int cmp_case(const void *a, const void *b)
{
    const vcase_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->form - (int)y->form;
}

/* Lists the suite's case directories (those with a context.json), both forms. */
static size_t list_cases(vcase_t *cases, size_t cap)
{
    DIR *d = opendir(vec_root());
    size_t n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n + 2 <= cap;) {
        if (e->d_name[0] == '.')
            continue;
        char probe[1400];
        snprintf(probe, sizeof(probe), "%s/%s/context.json", vec_root(), e->d_name);
        FILE *f = fopen(probe, "r");
        if (!f)
            continue;
        fclose(f);
        for (int form = 0; form < 2; form++) {
            snprintf(cases[n].dir, sizeof(cases[n].dir), "%s/%s", vec_root(), e->d_name);
            snprintf(cases[n].name, sizeof(cases[n].name), "%s_%s", form ? "query" : "header",
                     e->d_name);
            cases[n++].form = (bl_sigv4_form_t)form;
        }
    }
    closedir(d);
    qsort(cases, n, sizeof(cases[0]), cmp_case);
    return n;
}

/* The suite must be there and whole: a missing or emptied directory fails. */
static size_t g_ncases;
static void test_suite_present(void **state)
{
    (void)state;
    assert_true(g_ncases >= 2 * 38);
}

static void test_uri_encode(void **state)
{
    (void)state;
    bl_buf_t b;
    bl_buf_init(&b, 256);
    assert_int_equal(bl_sigv4_uri_encode(&b, "a b/~+=\xe1\x88\xb4", 10, 0), BL_OK);
    assert_int_equal(bl_buf_size(&b), strlen("a%20b%2F~%2B%3D%E1%88%B4"));
    assert_memory_equal(bl_buf_data(&b), "a%20b%2F~%2B%3D%E1%88%B4", bl_buf_size(&b));
    bl_buf_reset(&b);
    assert_int_equal(bl_sigv4_uri_encode(&b, "/a b/", 5, 1), BL_OK);
    assert_memory_equal(bl_buf_data(&b), "/a%20b/", 7);
    bl_buf_free(&b);
}

/* AWS's documented derivation example (secret wJalr...EXAMPLEKEY, 20120215,
 * us-east-1, iam). */
static void test_signing_key(void **state)
{
    (void)state;
    unsigned char k[32];
    char hex[65];
    assert_int_equal(bl_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                          "us-east-1", "iam", k), BL_OK);
    static const char *x = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = x[k[i] >> 4];
        hex[2 * i + 1] = x[k[i] & 15];
    }
    hex[64] = '\0';
    assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void test_errors(void **state)
{
    (void)state;
    bl_sigv4_header_t h = { BL_STR("Host"), BL_STR("example.com") };
    bl_sigv4_request_t req = { .method = "GET", .path = BL_STR("/"), .query = BL_STR("a=%zz"),
                               .headers = &h, .num_headers = 1 };
    bl_sigv4_creds_t cr = { "AKID", "SECRETKEYSECRET", "TOKENSECRET" };
    bl_sigv4_params_t p = { .form = BL_SIGV4_QUERY, .region = "us-east-1", .service = "sts",
                            .when = 1700000000, .expires = 60 };
    bl_sigv4_result_t out;
    char err[256] = "";
    bl_sigv4_result_init(&out);
    assert_int_equal(bl_sigv4_sign(&req, &cr, &p, &out, err, sizeof(err)), BL_ERROR);
    assert_null(strstr(err, "SECRET"));
    assert_non_null(strstr(err, "escape"));
    bl_sigv4_result_free(&out);
    req.query = BL_STR("");
    p.expires = 0;
    bl_sigv4_result_init(&out);
    assert_int_equal(bl_sigv4_sign(&req, &cr, &p, &out, err, sizeof(err)), BL_ERROR);
    assert_non_null(strstr(err, "X-Amz-Expires"));
    bl_sigv4_result_free(&out);
    p.expires = 60;
    bl_sigv4_result_init(&out);
    assert_int_equal(bl_sigv4_sign(&req, &cr, &p, &out, err, sizeof(err)), BL_OK);
    assert_non_null(strstr(bl_buf_cstr(&out.query), "X-Amz-Security-Token=TOKENSECRET"));
    assert_non_null(strstr(bl_buf_cstr(&out.query), "X-Amz-Expires=60&"));
    bl_sigv4_result_free(&out);
}

int main(void)
{
    static vcase_t cases[MAX_CASES];
    g_ncases = list_cases(cases, MAX_CASES);
    struct CMUnitTest *t = calloc(g_ncases + 4, sizeof(*t));
    size_t n = 0;
    t[n++] = (struct CMUnitTest){ "suite_present", test_suite_present, NULL, NULL, NULL };
    t[n++] = (struct CMUnitTest){ "uri_encode", test_uri_encode, NULL, NULL, NULL };
    t[n++] = (struct CMUnitTest){ "signing_key", test_signing_key, NULL, NULL, NULL };
    t[n++] = (struct CMUnitTest){ "errors", test_errors, NULL, NULL, NULL };
    for (size_t i = 0; i < g_ncases; i++)
        t[n++] = (struct CMUnitTest){ cases[i].name, test_vector, NULL, NULL, &cases[i] };
    int rc = _cmocka_run_group_tests("sigv4", t, n, NULL, NULL);
    free(t);
    return rc;
}
