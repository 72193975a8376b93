/*
 * fuzz_aws.c - libFuzzer target for the hand-written parts of src/aws: the
 * INI reader (ini.c), the SigV4 canonicalisation of untrusted-shaped paths,
 * queries and headers (sigv4.c), URL parsing (http.c), time parsing and the
 * credentials JSON (creds.c), and the STS XML handlers over expat (sts.c).
 *
 * Input: one selector byte, then the payload:
 *   'i' INI text; 'x' STS XML; 'j' credentials JSON; 'u' a URL; 't' a time;
 *   's' a request to sign: "METHOD PATH?QUERY\n" then "Name:value" lines.
 * Besides crashes and sanitizer reports, it aborts when: an INI value is not
 * inside the input or untrimmed; a parse that says BL_OK leaves a required
 * field empty; a signature is not 64 lower-case hex digits, or signing the
 * same request twice differs; a parsed URL has an empty host or a port
 * outside 1..65535.
 */
#include <stdio.h>
#include <stdlib.h>
#include "aws/creds.h"
#include "aws/http.h"
#include "aws/ini.h"
#include "aws/sigv4.h"
#include "aws/sts.h"

static void fz_ini(const char *p, size_t n)
{
    static const char *sections[] = { "default", "ops", "" };
    static const char *keys[] = { "aws_access_key_id", "aws_secret_access_key", "" };
    for (size_t s = 0; s < 3; s++)
        for (size_t k = 0; k < 3; k++) {
            bl_str_t v = BL_STR_NULL;
            if (bl_aws_ini_get(p, n, sections[s], keys[k], &v) != 1)
                continue;
            if (v.len && (v.p < p || v.p + v.len > p + n || v.p[0] == ' ' || v.p[v.len - 1] == ' '))
                abort();
        }
}

static void fz_sign_once(const bl_sigv4_request_t *rq, int form, char sig[65])
{
    bl_sigv4_creds_t c = { "AKIDEXAMPLE", "secret", form ? "token" : NULL };
    bl_sigv4_params_t p = { .form = (bl_sigv4_form_t)form, .region = "us-east-1",
                            .service = "sts", .when = 1440938160, .expires = 60,
                            .normalize_path = form };
    bl_sigv4_result_t r;
    char err[256];
    bl_sigv4_result_init(&r);
    sig[0] = '\0';
    if (bl_sigv4_sign(rq, &c, &p, &r, err, sizeof(err)) == BL_OK) {
        if (strlen(r.signature) != 64 || strspn(r.signature, "0123456789abcdef") != 64)
            abort();
        memcpy(sig, r.signature, 65);
    }
    bl_sigv4_result_free(&r);
}

static void fz_sign(const char *p, size_t n)
{
    bl_sigv4_header_t h[BL_SIGV4_MAX_HEADERS + 2];
    size_t nh = 0;
    const char *nl = memchr(p, '\n', n), *end = p + n;
    bl_str_t line = { p, nl ? (size_t)(nl - p) : n };
    const char *sp = memchr(line.p, ' ', line.len);
    bl_str_t target = sp ? (bl_str_t){ sp + 1, line.len - (size_t)(sp + 1 - line.p) } : line;
    const char *q = memchr(target.p, '?', target.len);
    bl_str_t path = target, query = BL_STR_NULL;
    if (q) {
        path.len = (size_t)(q - target.p);
        query = (bl_str_t){ q + 1, target.len - path.len - 1 };
    }
    for (const char *l = nl ? nl + 1 : end; l < end && nh < BL_ARRAY_LEN(h);) {
        const char *e = memchr(l, '\n', (size_t)(end - l));
        const char *le = e ? e : end, *c = memchr(l, ':', (size_t)(le - l));
        if (c)
            h[nh++] = (bl_sigv4_header_t){ { l, (size_t)(c - l) }, { c + 1, (size_t)(le - c - 1) } };
        l = e ? e + 1 : end;
    }
    bl_sigv4_request_t rq = { .method = "GET", .path = path, .query = query, .headers = h,
                              .num_headers = nh };
    for (int form = 0; form < 2; form++) {
        char a[65], b[65];
        fz_sign_once(&rq, form, a);
        fz_sign_once(&rq, form, b);
        if (strcmp(a, b) != 0)
            abort();
    }
}

static void fz_url(const char *p, size_t n)
{
    char s[BL_AWS_HTTP_MAX_URL + 16], err[128];
    bl_aws_url_t u;
    size_t k = BL_MIN(n, sizeof(s) - 1);
    memcpy(s, p, k);
    s[k] = '\0';
    if (bl_aws_url_parse(s, &u, err, sizeof(err)) == BL_OK &&
        (!u.host[0] || atoi(u.port) < 1 || atoi(u.port) > 65535 || u.path[0] != '/'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    bl_aws_creds_t c;
    char err[512];
    time_t t;
    switch (data[0]) {
    case 'i':
        fz_ini(p, n);
        break;
    case 'x':
        if (bl_aws_sts_parse(p, n, "AssumeRole", &c, err, sizeof(err)) == BL_OK &&
            (!c.access_key_id[0] || !c.secret_access_key[0] || !c.session_token[0] || !c.expiration))
            abort();
        break;
    case 'j':
        if (bl_aws_creds_parse_json(p, n, &c, err, sizeof(err)) == BL_OK &&
            (!c.access_key_id[0] || !c.secret_access_key[0]))
            abort();
        break;
    case 'u':
        fz_url(p, n);
        break;
    case 't':
        bl_aws_parse_time(p, n, &t);
        break;
    case 's':
        fz_sign(p, n);
        break;
    }
    return 0;
}
