/*
 * fuzz_query.c - libFuzzer target for what `byline audit query` parses or
 * builds from untrusted-shaped input: the --since/--until time syntax
 * (when.c), and records from the ledger (whose strings come from clients:
 * names, URIs, user agents) merged (merge.c) and rendered as OCSF (ocsf.c).
 *
 * Input: one selector byte, then the payload:
 *   't' a time string; 'o' a JSON record to render as OCSF;
 *   'm' two JSON entries separated by a NUL byte, merged then rendered.
 * Besides crashes and sanitizer reports, it aborts when: a parsed time lies
 * outside years 0000..9999 (+/- a day), a duration is not in
 * (0, BL_WHEN_MAX_SPAN_US] or --since parses it to another time than
 * now minus it; an OCSF event is not canonical JSON, lacks class_uid 6003
 * or api.operation, or has a type_uid other than 600300 + activity_id.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/jcs.h"
#include "audit/merge.h"
#include "audit/ocsf.h"
#include "audit/when.h"

#define FZ_NOW 1781525041000000LL

static void fz_time(const char *s)
{
    int64_t us, d;
    const int64_t lo = -62167219200LL * 1000000 - 86400LL * 1000000; /* 0000-01-01, a day early */
    const int64_t hi = 253402300800LL * 1000000 + 86400LL * 1000000;  /* 10000-01-01, a day late */
    if (bl_when_rfc3339(s, &us) == BL_OK && (us < lo || us > hi))
        abort();
    if (bl_when_duration(s, &d) == BL_OK) {
        if (d <= 0 || d > BL_WHEN_MAX_SPAN_US)
            abort();
        if (bl_when_parse(s, FZ_NOW, &us) != BL_OK || us != FZ_NOW - d)
            abort();
    }
    if (bl_when_parse(s, FZ_NOW, &us) == BL_OK && (us < lo - BL_WHEN_MAX_SPAN_US || us > hi))
        abort();
}

/* Renders rec as OCSF and checks the event's invariants. */
static void fz_ocsf(const json_t *rec)
{
    bl_buf_t b;
    bl_buf_init(&b, 1 << 20);
    if (bl_ocsf_render(rec, &b) == BL_OK) {
        if (!bl_jcs_is_canonical(bl_buf_data(&b), bl_buf_size(&b)))
            abort();
        json_error_t e;
        json_t *ev = json_loadb(bl_buf_data(&b), bl_buf_size(&b), 0, &e);
        json_int_t act = json_integer_value(json_object_get(ev, "activity_id"));
        if (ev == NULL || json_integer_value(json_object_get(ev, "class_uid")) != 6003 ||
            json_integer_value(json_object_get(ev, "type_uid")) != 600300 + act ||
            !json_is_string(json_object_get(json_object_get(ev, "api"), "operation")))
            abort();
        json_decref(ev);
    }
    bl_buf_free(&b);
}

static void fz_merge(const char *p, size_t n)
{
    const char *nul = memchr(p, '\0', n);
    size_t n1 = nul ? (size_t)(nul - p) : n;
    json_error_t e;
    json_t *a = json_loadb(p, n1, 0, &e);
    json_t *b = nul ? json_loadb(nul + 1, n - n1 - 1, 0, &e) : NULL;
    json_t *rec = a ? bl_merge_start(a) : NULL;
    if (rec && b)
        bl_merge_add(rec, b);
    if (rec)
        fz_ocsf(rec);
    json_decref(rec);
    json_decref(a);
    json_decref(b);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] == 't' && n < 256) {
        char s[256];
        memcpy(s, p, n);
        s[n] = '\0';
        fz_time(s);
    } else if (data[0] == 'o') {
        json_error_t e;
        json_t *rec = json_loadb(p, n, JSON_ALLOW_NUL, &e);
        if (rec)
            fz_ocsf(rec);
        json_decref(rec);
    } else if (data[0] == 'm') {
        fz_merge(p, n);
    }
    return 0;
}
