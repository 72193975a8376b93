/*
 * fuzz_kreq.c - libFuzzer target for byline's understanding of Kubernetes
 * requests: bl_kreq_parse, bl_kreq_body(_total), bl_kreq_render, bl_kreq_json.
 *
 * Input: four '\n'-terminated lines, then the body:
 *   method \n target \n content-type \n kubectl-command \n body...
 * (missing lines are empty). Target and body are copied into exact-size heap
 * buffers so a read past their length is an ASan report. Besides crashes and
 * sanitizer reports, the target aborts when:
 *   - a parsed bl_kreq_t breaks its invariants (unterminated strings,
 *     counts past their arrays, argv offsets outside argv_buf);
 *   - parsing the same input twice gives different bytes;
 *   - a body overrides the name, namespace or verb the path gave, or a
 *     protobuf body is read when the caller did not vouch for its length;
 *   - render or json fails within the documented BL_KREQ_*_MAX bounds, the
 *     rendered line holds anything but printable ASCII, or the JSON members
 *     do not parse (with jansson) as an object;
 *   - a render into a too-small buffer leaves part of a line behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "kube/reqinfo.h"

#define CHECK(x)                                                                       \
    do {                                                                               \
        if (!(x)) {                                                                    \
            fprintf(stderr, "fuzz_kreq: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* Takes the next line off *p (without its '\n'). */
static bl_str_t next_line(const uint8_t **p, size_t *n)
{
    const uint8_t *nl = memchr(*p, '\n', *n);
    size_t len = nl ? (size_t)(nl - *p) : *n;
    bl_str_t s = { (const char *)*p, len };
    size_t adv = nl ? len + 1 : len;
    *p += adv;
    *n -= adv;
    return s;
}

#define TERMINATED(f) CHECK(memchr((f), '\0', sizeof(f)) != NULL)

static void check_invariants(const bl_kreq_t *r)
{
    TERMINATED(r->verb); TERMINATED(r->api_group); TERMINATED(r->api_version);
    TERMINATED(r->namespace_); TERMINATED(r->resource); TERMINATED(r->subresource);
    TERMINATED(r->name); TERMINATED(r->path); TERMINATED(r->method);
    TERMINATED(r->container); TERMINATED(r->label_selector); TERMINATED(r->field_selector);
    TERMINATED(r->dry_run); TERMINATED(r->field_manager); TERMINATED(r->body_kind);
    TERMINATED(r->patch_type);
    CHECK(r->argc <= BL_KREQ_MAX_ARGV);
    CHECK(r->nports <= BL_KREQ_MAX_PORTS);
    for (size_t i = 0; i < r->argc; i++) {
        CHECK(r->argv_off[i] < BL_KREQ_ARGV_BYTES);
        CHECK(memchr(r->argv_buf + r->argv_off[i], '\0', BL_KREQ_ARGV_BYTES - r->argv_off[i]));
    }
    for (size_t i = 0; i < r->nports; i++)
        CHECK(r->ports[i] >= 1 && r->ports[i] <= 65535);
    CHECK(!r->is_discovery || !r->is_resource);
    CHECK(r->replicas >= -1 && r->replicas <= INT32_MAX);
}

static void check_render(const bl_kreq_t *r, bl_str_t kcmd)
{
    bl_buf_t b;
    bl_buf_init(&b, BL_KREQ_RENDER_MAX);
    CHECK(bl_kreq_render(r, kcmd, &b) == BL_OK);
    size_t n = bl_buf_size(&b);
    const char *p = bl_buf_data(&b);
    CHECK(n >= 7 && memcmp(p, "kubectl", 7) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7f);
    /* too small: BL_ERROR and nothing appended */
    bl_buf_t small;
    bl_buf_init(&small, n - 1);
    CHECK(bl_kreq_render(r, kcmd, &small) == BL_ERROR);
    CHECK(bl_buf_size(&small) == 0);
    bl_buf_free(&small);
    bl_buf_free(&b);
}

static void check_json(const bl_kreq_t *r)
{
    bl_buf_t b;
    json_error_t e;
    bl_buf_init(&b, BL_KREQ_JSON_MAX + 2);
    CHECK(bl_buf_append(&b, "{", 1) == BL_OK);
    CHECK(bl_kreq_json(r, &b) == BL_OK);
    CHECK(bl_buf_size(&b) <= BL_KREQ_JSON_MAX + 1);
    CHECK(bl_buf_append(&b, "}", 1) == BL_OK);
    json_t *o = json_loadb(bl_buf_data(&b), bl_buf_size(&b), JSON_REJECT_DUPLICATES, &e);
    if (o == NULL)
        fprintf(stderr, "fuzz_kreq: bad JSON: %s\n", e.text);
    CHECK(json_is_object(o));
    json_decref(o);
    bl_buf_free(&b);
}

/* The body may add to the request, never contradict the path. */
static void check_body(const bl_kreq_t *before, const bl_kreq_t *after, bl_str_t ct, int whole)
{
    CHECK(strcmp(before->verb, after->verb) == 0);
    if (before->name[0] != '\0')
        CHECK(strcmp(before->name, after->name) == 0);
    if (before->namespace_[0] != '\0')
        CHECK(strcmp(before->namespace_, after->namespace_) == 0);
    if (!whole && bl_str_eq_nocase(bl_str_trim(ct), "application/vnd.kubernetes.protobuf")) {
        bl_kreq_t a = *after;
        memcpy(a.patch_type, before->patch_type, sizeof(a.patch_type));
        CHECK(memcmp(&a, before, sizeof(a)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bl_kreq_t r, r2, base;
    const char *err;
    bl_str_t method = next_line(&data, &size);
    bl_str_t target = next_line(&data, &size);
    bl_str_t ct = next_line(&data, &size);
    bl_str_t kcmd = next_line(&data, &size);
    char *t = dup_exact((const uint8_t *)target.p, target.len);
    char *body = dup_exact(data, size);
    target.p = t;

    int rc = bl_kreq_parse(&r, method, target, &err);
    CHECK(bl_kreq_parse(&r2, method, target, &err) == rc);
    CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
    check_invariants(&r);
    if (rc != BL_OK) {
        CHECK(err != NULL);
        goto end;
    }
    CHECK(err == NULL);
    base = r;
    /* as a prefix of unknown length, then as the whole body */
    CHECK(bl_kreq_body(&r2, ct, body, size) == BL_OK);
    check_body(&base, &r2, ct, 0);
    check_invariants(&r2);
    CHECK(bl_kreq_body_total(&r, ct, body, size, size) == BL_OK);
    check_body(&base, &r, ct, 1);
    check_invariants(&r);
    check_render(&base, kcmd);
    check_render(&r2, kcmd);
    check_render(&r, kcmd);
    check_json(&r2);
    check_json(&r);
end:
    free(t);
    free(body);
    return 0;
}
