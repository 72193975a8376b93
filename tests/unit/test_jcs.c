/* test_jcs.c - RFC 8785 canonical JSON for ledger lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/jcs.h"

/* Parses `in` as a ledger reader does and returns its canonical form (static). */
static const char *canon(const char *in, int *rc)
{
    static char out[4096];
    json_error_t e;
    json_t *v = json_loadb(in, strlen(in), JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    assert_non_null(v);
    bl_buf_t b;
    bl_buf_init(&b, sizeof(out) - 1);
    *rc = bl_jcs_dump(v, &b);
    size_t n = bl_buf_size(&b);
    if (n)
        memcpy(out, bl_buf_data(&b), n);
    out[n] = '\0';
    bl_buf_free(&b);
    json_decref(v);
    return out;
}

static void assert_canon(const char *in, const char *want)
{
    int rc;
    const char *got = canon(in, &rc);
    assert_int_equal(rc, BL_OK);
    assert_string_equal(got, want);
    assert_true(bl_jcs_is_canonical(want, strlen(want)));
}

/* RFC 8785 section 3.2.2's example without its non-integer numbers. */
static void rfc8785_strings_and_literals(void **state)
{
    (void)state;
    assert_canon("{\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
                 "  \"literals\": [null, true, false]\n}",
                 "{\"literals\":[null,true,false],\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

/* RFC 8785 section 3.2.3: members sorted by UTF-16 code units, so the
 * emoji (U+1F600, surrogates D83D DE00) sorts before U+FB33. */
static void rfc8785_sorting_by_utf16(void **state)
{
    (void)state;
    assert_canon("{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", "
                 "\"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\", "
                 "\"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\", "
                 "\"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}",
                 "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
                 "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
                 "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
    /* UTF-8 byte order would put U+FFFD after U+10000; UTF-16 puts it after */
    assert_canon("{\"\\ufffd\":1,\"\\ud800\\udc00\":2,\"\\ue000\":3}",
                 "{\"\xf0\x90\x80\x80\":2,\"\xee\x80\x80\":3,\"\xef\xbf\xbd\":1}");
    /* a prefix sorts first; nested objects are sorted too */
    assert_canon("{\"ab\":{\"z\":1,\"a\":[{\"y\":0,\"x\":0}]},\"a\":2,\"\":3}",
                 "{\"\":3,\"a\":2,\"ab\":{\"a\":[{\"x\":0,\"y\":0}],\"z\":1}}");
}

static void string_escapes(void **state)
{
    (void)state;
    /* the short forms, lower-case \u00xx for the rest of U+0000..U+001F, nothing else escaped */
    assert_canon("[\"\\b\\t\\n\\f\\r\\u0000\\u0001\\u001F\\u001f\\u0020\\u007f\\u2028/\\u00e9\"]",
                 "[\"\\b\\t\\n\\f\\r\\u0000\\u0001\\u001f\\u001f \x7f\xe2\x80\xa8/\xc3\xa9\"]");
    /* U+0000 inside a value is kept, by length */
    assert_canon("{\"k\":\"x\\u0000y\"}", "{\"k\":\"x\\u0000y\"}");
}

static void integers_only(void **state)
{
    (void)state;
    int rc;
    assert_canon("[0,-1,42,9007199254740992,-9007199254740992]", "[0,-1,42,9007199254740992,-9007199254740992]");
    assert_canon("-0", "0");
    canon("9007199254740993", &rc); /* past 2^53: a double would round it */
    assert_int_equal(rc, BL_ERROR);
    canon("{\"a\":[1,2.5]}", &rc);
    assert_int_equal(rc, BL_ERROR);
    canon("1.0", &rc);
    assert_int_equal(rc, BL_ERROR);
    /* a failed dump leaves the buffer as it was */
    bl_buf_t b;
    bl_buf_init(&b, 64);
    bl_buf_puts(&b, "keep");
    json_t *v = json_pack("{s:i,s:f}", "a", 1, "b", 0.5);
    assert_int_equal(bl_jcs_dump(v, &b), BL_ERROR);
    assert_int_equal(bl_buf_size(&b), 4);
    json_decref(v);
    /* and a full buffer is an error, not a cut line */
    bl_buf_t small;
    bl_buf_init(&small, 5);
    v = json_pack("{s:s}", "key", "value");
    assert_int_equal(bl_jcs_dump(v, &small), BL_ERROR);
    assert_int_equal(bl_buf_size(&small), 0);
    json_decref(v);
    bl_buf_free(&b);
    bl_buf_free(&small);
}

static void is_canonical(void **state)
{
    (void)state;
    static const char *yes[] = {
        "{\"entry\":{\"kind\":\"notice\"},\"prev\":\"AAAA\",\"seq\":0}",
        "{\"checkpoint\":\"a\\nb\\n\"}",
        "{\"a\":\"\\u0000\"}",
        "[]",
        "{}",
    };
    static const char *no[] = {
        "",
        " {}",
        "{} ",
        "{}\n",
        "{\"b\":1,\"a\":2}",           /* unsorted */
        "{\"a\":1,\"a\":1}",           /* duplicate */
        "{\"a\": 1}",                  /* whitespace */
        "{\"a\":\"\\u0041\"}",         /* needless escape */
        "{\"a\":\"\\u001F\"}",         /* upper-case hex */
        "{\"a\":\"\\u000a\"}",         /* the short form exists */
        "{\"a\":\"\\/\"}",
        "{\"a\":\"\\u00e9\"}",         /* non-ASCII is written as UTF-8 */
        "{\"a\":1.0}",
        "{\"a\":1e2}",
        "{\"a\":-0}",
        "{\"a\":01}",
        "{\"a\":\"\xff\"}",            /* not UTF-8 */
        "{\"a\":\"\x01\"}",            /* raw control character */
        "{\"a\":99999999999999999999}",
        "{\"a\":9007199254740993}",
        "{\"a\":true",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(yes); i++)
        assert_true(bl_jcs_is_canonical(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < BL_ARRAY_LEN(no); i++)
        assert_false(bl_jcs_is_canonical(no[i], strlen(no[i])));
    /* by length: a NUL byte outside a string, and the bytes after it */
    assert_false(bl_jcs_is_canonical("{}\0", 3));
    assert_false(bl_jcs_is_canonical("{\"a\":1}", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc8785_strings_and_literals),
        cmocka_unit_test(rfc8785_sorting_by_utf16),
        cmocka_unit_test(string_escapes),
        cmocka_unit_test(integers_only),
        cmocka_unit_test(is_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
