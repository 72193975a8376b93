/*
 * fuzz_capture.c - libFuzzer target for reading session capture files
 * (src/audit/capture.c: the header and event parser, the strict base64
 * decoder) and the asciicast v2 export (UTF-8 joining across events).
 *
 * Input: the bytes of a capture file. Besides crashes and sanitizer
 * reports the target aborts when a file that parses breaks the contract:
 *   - event times decrease, a channel is unknown, or the events' bytes do
 *     not add up to the header's `bytes`;
 *   - the asciicast export fails, or any of its lines is not a JSON value
 *     jansson accepts (which also means valid UTF-8), or its event times
 *     decrease, or its header is not version 2.
 * Seeds in fuzz/corpus/capture: files byline wrote for real sessions and
 * hand-made edge cases (base64, NUL, split characters).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit/capture.h"

#define CHECK(x)                                                                      \
    do {                                                                              \
        if (!(x)) {                                                                   \
            fprintf(stderr, "fuzz_capture: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static void check_cast(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    double last = 0;
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(nl != NULL); /* every line ends with a newline */
        json_error_t e;
        json_t *v = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &e);
        CHECK(v != NULL);
        if (first) {
            CHECK(json_integer_value(json_object_get(v, "version")) == 2);
            first = 0;
        } else {
            CHECK(json_array_size(v) == 3 && json_is_real(json_array_get(v, 0)));
            CHECK(json_real_value(json_array_get(v, 0)) >= last);
            last = json_real_value(json_array_get(v, 0));
            CHECK(json_is_string(json_array_get(v, 2)) && json_string_length(json_array_get(v, 2)) > 0);
        }
        json_decref(v);
        p = nl + 1;
    }
    CHECK(!first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bl_capture_t c;
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    int rc = bl_capture_parse((const char *)data, size, &c, &err);
    bl_buf_free(&err);
    if (rc != BL_OK)
        return 0;
    uint64_t sum = 0, last = 0;
    for (size_t i = 0; i < c.nev; i++) {
        CHECK(c.ev[i].t_us >= last && c.ev[i].ch >= 0 && c.ev[i].ch <= 2);
        last = c.ev[i].t_us;
        sum += c.ev[i].n;
    }
    CHECK(sum == c.bytes);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    bl_asciicast_opts_t o = { .with_stdin = (int)(size & 1) };
    CHECK(bl_capture_asciicast(&c, &o, f) == BL_OK);
    fclose(f);
    check_cast(text, len);
    free(text);
    bl_capture_free(&c);
    return 0;
}
