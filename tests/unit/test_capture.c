/* test_capture.c - session capture files (src/audit/capture.c): writing
 * and reading back, the checks against the ledger's SHA-256 and size, the
 * format's strictness, asciicast v2 export, bl_capture_save from a tap, and
 * what `audit verify` and `replay` share: the result entry's reference
 * (bl_capture_ref_get) and the streamed check of a file (bl_capture_check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/capture.h"
#include "kube/tap.h"

#define ID "01900000-0000-7000-8000-0000000000aa"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_capture.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static bl_capture_meta_t meta(void)
{
    bl_capture_meta_t m = { .id = ID, .actor = "agent-x", .connection = "prod", .action = "kubectl exec p -- sh" };
    m.started.tv_sec = 1767225600; /* 2026-01-01T00:00:00Z */
    m.started.tv_nsec = 123456000;
    return m;
}

static void path_of(char *out, size_t cap)
{
    snprintf(out, cap, "%s/sessions/" ID ".cap", tmpdir);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *n = fread(buf, 1, (1 << 20) - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

static void hex_sha(const char *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len;
    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Concatenates channel ch's events. */
static size_t joined(const bl_capture_t *c, int ch, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nev; i++) {
        if (c->ev[i].ch != ch)
            continue;
        assert_true(n + c->ev[i].n <= cap);
        memcpy(out + n, c->ev[i].p, c->ev[i].n);
        n += c->ev[i].n;
    }
    return n;
}

/* Writes, reads back: every byte, channel and time survives, binary too;
 * long events are cut into lines between characters; modes are private. */
static void round_trip(void **state)
{
    (void)state;
    static char big[40000];
    for (size_t i = 0; i + 3 <= sizeof(big); i += 3)
        memcpy(big + i, "\xe2\x82\xac", 3); /* EUR sign: 16384 falls inside one */
    big[sizeof(big) - 1] = 'z';
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_capture_meta_t m = meta();
    uint64_t total = 6 + 3 + 2 + sizeof(big);
    bl_capture_writer_t *w = bl_capture_create(tmpdir, &m, total, 0, &err);
    assert_non_null(w);
    assert_int_equal(bl_capture_write(w, 0, BL_TAP_STDOUT, "hello\n", 6), BL_OK);
    assert_int_equal(bl_capture_write(w, 5, BL_TAP_STDERR, "\xff\x00" "a", 3), BL_OK);
    assert_int_equal(bl_capture_write(w, 5, BL_TAP_STDIN, "\x00x", 2), BL_OK);
    assert_int_equal(bl_capture_write(w, 7000000, BL_TAP_STDOUT, big, sizeof(big)), BL_OK);
    unsigned char sha[32];
    uint64_t size;
    assert_int_equal(bl_capture_finish(w, sha, &size, &err), BL_OK);
    char path[256], hex[65], want[65];
    path_of(path, sizeof(path));
    size_t n;
    char *raw = slurp(path, &n);
    assert_int_equal(n, size);
    hex_sha(raw, n, want);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha[i]);
    assert_string_equal(hex, want);
    assert_non_null(strstr(raw, "[0,\"o\",\"hello\\n\"]\n"));
    assert_non_null(strstr(raw, "[5,\"e\",\"/wBh\",\"base64\"]\n")); /* not UTF-8 */
    assert_non_null(strstr(raw, "[5,\"i\",\"\\u0000x\"]\n"));       /* NUL is UTF-8: kept as text */
    char *b = strstr(raw, "[7000000,\"o\",\"\xe2\x82\xac");
    assert_non_null(b);
    assert_null(strstr(b, "base64")); /* cut between characters: every line of it is text */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path + strlen(path) - strlen("/" ID ".cap"), 64, "%s", "");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    bl_capture_t c;
    path_of(path, sizeof(path));
    assert_int_equal(bl_capture_load(path, want, size, &c, &err), BL_OK);
    assert_string_equal(c.id, ID);
    assert_string_equal(c.actor, "agent-x");
    assert_string_equal(c.started, "2026-01-01T00:00:00.123456Z");
    assert_int_equal(c.started_unix, 1767225600);
    assert_int_equal(c.truncated, 0);
    assert_int_equal(c.bytes, total);
    assert_true(c.nev >= 6); /* 40000 bytes: three lines */
    static char got[sizeof(big) + 16];
    assert_int_equal(joined(&c, BL_TAP_STDOUT, got, sizeof(got)), 6 + sizeof(big));
    assert_memory_equal(got, "hello\n", 6);
    assert_memory_equal(got + 6, big, sizeof(big));
    assert_int_equal(joined(&c, BL_TAP_STDERR, got, sizeof(got)), 3);
    assert_memory_equal(got, "\xff\x00" "a", 3);
    assert_int_equal(joined(&c, BL_TAP_STDIN, got, sizeof(got)), 2);
    assert_memory_equal(got, "\x00x", 2);
    assert_int_equal(c.ev[c.nev - 1].t_us, 7000000);
    bl_capture_free(&c);
    free(raw);
    bl_buf_free(&err);
}

/* The ledger's SHA-256 and size decide: any change is BL_DECLINED. */
static void tamper_is_declined(void **state)
{
    (void)state;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    bl_capture_meta_t m = meta();
    bl_capture_writer_t *w = bl_capture_create(tmpdir, &m, 3, 0, &err);
    assert_non_null(w);
    assert_int_equal(bl_capture_write(w, 1, BL_TAP_STDOUT, "abc", 3), BL_OK);
    unsigned char sha[32];
    uint64_t size;
    assert_int_equal(bl_capture_finish(w, sha, &size, &err), BL_OK);
    char path[256], hex[65];
    path_of(path, sizeof(path));
    size_t n;
    char *raw = slurp(path, &n);
    hex_sha(raw, n, hex);
    bl_capture_t c;
    assert_int_equal(bl_capture_load(path, hex, size, &c, &err), BL_OK);
    bl_capture_free(&c);
    assert_int_equal(bl_capture_load(path, hex, size + 1, &c, &err), BL_DECLINED);
    assert_non_null(strstr(bl_buf_cstr(&err), "the ledger recorded"));
    char bad[65];
    memcpy(bad, hex, sizeof(bad));
    bad[0] = bad[0] == '0' ? '1' : '0';
    assert_int_equal(bl_capture_load(path, bad, size, &c, &err), BL_DECLINED);
    assert_non_null(strstr(bl_buf_cstr(&err), "SHA-256"));
    char *p = strstr(raw, "abc"); /* same size, one byte changed */
    p[0] = 'A';
    FILE *f = fopen(path, "wb");
    fwrite(raw, 1, n, f);
    fclose(f);
    assert_int_equal(bl_capture_load(path, hex, size, &c, &err), BL_DECLINED);
    unlink(path);
    assert_int_equal(bl_capture_load(path, hex, size, &c, &err), BL_ERROR);
    free(raw);
    bl_buf_free(&err);
}

static int parse_str(const char *text, bl_capture_t *c)
{
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    int rc = bl_capture_parse(text, strlen(text), c, &err);
    bl_buf_free(&err);
    return rc;
}

#define HDR(bytes)                                                                            \
    "{\"action\":\"kubectl exec p -- sh\",\"actor\":\"a\",\"bytes\":" #bytes ",\"format\":\"byline-capture\"," \
    "\"id\":\"" ID "\",\"started\":\"2026-01-01T00:00:00.000000Z\",\"truncated\":false,\"version\":1}\n"

/* Anything off in a file is an error with a line number, never a crash. */
static void parse_is_strict(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        HDR(0),                                           /* fine, see below */
        HDR(1) "[0,\"o\",\"a\"]",                         /* no final newline */
        HDR(2) "[0,\"o\",\"a\"]\n",                       /* bytes do not add up */
        HDR(2) "[5,\"o\",\"a\"]\n[4,\"o\",\"b\"]\n",      /* time backwards */
        HDR(1) "[0,\"x\",\"a\"]\n",                       /* unknown channel */
        HDR(1) "[-1,\"o\",\"a\"]\n",
        HDR(1) "[0.5,\"o\",\"a\"]\n",
        HDR(1) "[0,\"o\",\"QQ=\",\"base64\"]\n",          /* not a multiple of 4 */
        HDR(1) "[0,\"o\",\"QR==\",\"base64\"]\n",         /* unused bits set */
        HDR(1) "[0,\"o\",\"Q===\",\"base64\"]\n",
        HDR(1) "[0,\"o\",\"a\",\"hex\"]\n",
        HDR(1) "{\"a\":1}\n",
        "{\"format\":\"byline-capture\",\"version\":2}\n",
        "{\"format\":\"other\",\"version\":1}\n",
        "not json\n",
    };
    bl_capture_t c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_str(bad[i], &c);
        if (i == 1) {
            assert_int_equal(rc, BL_OK);
            assert_int_equal(c.nev, 0);
            bl_capture_free(&c);
        } else {
            assert_int_equal(rc, BL_ERROR);
        }
    }
    assert_int_equal(parse_str(HDR(5) "[0,\"o\",\"QUJD\",\"base64\"]\n[0,\"e\",\"Q\\u0000\"]\n", &c), BL_OK);
    assert_int_equal(c.nev, 2);
    assert_memory_equal(c.ev[0].p, "ABC", 3);
    assert_int_equal(c.ev[1].n, 2);
    assert_memory_equal(c.ev[1].p, "Q\0", 2);
    bl_capture_free(&c);
}

/* Runs bl_capture_asciicast into a string. */
static char *cast(const bl_capture_t *c, const bl_asciicast_opts_t *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(bl_capture_asciicast(c, o, f), BL_OK);
    fclose(f);
    return buf;
}

/* asciicast v2: a header, then [seconds, "o"|"i", valid UTF-8]. */
static void asciicast_v2(void **state)
{
    (void)state;
    /* "\xe2\x82\xac" (EUR) split across two stdout events, an invalid byte
     * on stderr, and stdin. */
    bl_capture_t c;
    assert_int_equal(parse_str(HDR(14) "[0,\"o\",\"4oI=\",\"base64\"]\n[5,\"i\",\"ls\\r\"]\n"
                                       "[1500000,\"e\",\"/w==\",\"base64\"]\n[2000001,\"o\",\"rCE=\",\"base64\"]\n"
                                       "[2000001,\"o\",\"\\u001b[0m\\n\"]\n[2000002,\"e\",\"4g==\",\"base64\"]\n", &c),
                     BL_OK);
    bl_asciicast_opts_t o = { .with_stdin = 1 };
    char *text = cast(&c, &o);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    json_error_t e;
    json_t *h = json_loads(line, 0, &e);
    assert_non_null(h);
    assert_int_equal(json_integer_value(json_object_get(h, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(h, "width")), 80);
    assert_int_equal(json_integer_value(json_object_get(h, "height")), 24);
    assert_int_equal(json_integer_value(json_object_get(h, "timestamp")), 1767225600);
    assert_string_equal(json_string_value(json_object_get(h, "title")), "a: kubectl exec p -- sh");
    assert_true(json_is_object(json_object_get(h, "env")));
    assert_null(json_object_get(h, "idle_time_limit"));
    json_decref(h);
    static const char *const want[][3] = {
        { "0.000005", "i", "ls\r" },
        { "1.500000", "o", "\xef\xbf\xbd" },          /* 0xff: U+FFFD */
        { "2.000001", "o", "\xe2\x82\xac!" },         /* joined across events */
        { "2.000001", "o", "\x1b[0m\n" },
        { "2.000002", "o", "\xef\xbf\xbd" },          /* a character never finished */
    };
    double last = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        line = strtok_r(NULL, "\n", &save);
        assert_non_null(line);
        assert_memory_equal(line + 1, want[i][0], strlen(want[i][0])); /* seconds with microseconds */
        json_t *ev = json_loads(line, 0, &e);
        assert_non_null(ev);
        assert_int_equal(json_array_size(ev), 3);
        assert_true(json_is_real(json_array_get(ev, 0)));
        assert_true(json_real_value(json_array_get(ev, 0)) >= last);
        last = json_real_value(json_array_get(ev, 0));
        assert_string_equal(json_string_value(json_array_get(ev, 1)), want[i][1]);
        assert_string_equal(json_string_value(json_array_get(ev, 2)), want[i][2]);
        json_decref(ev);
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(text);
    bl_asciicast_opts_t o2 = { .width = 132, .height = 40, .idle_time_limit = 1.5, .title = "t" };
    text = cast(&c, &o2); /* no stdin events without with_stdin */
    assert_null(strstr(text, "\"i\""));
    assert_non_null(strstr(text, "\"width\": 132, \"height\": 40"));
    assert_non_null(strstr(text, "\"idle_time_limit\": 1.500"));
    free(text);
    bl_capture_free(&c);
}

/* One unmasked server-to-client WebSocket binary message on channel ch. */
static void ws_feed(bl_tap_t *t, int ch, const char *s)
{
    unsigned char f[128];
    size_t n = strlen(s);
    f[0] = 0x82;
    f[1] = (unsigned char)(n + 1);
    f[2] = (unsigned char)ch;
    memcpy(f + 3, s, n);
    bl_tap_feed(t, BL_TAP_DOWN, (const char *)f, n + 3);
}

/* From a tap to a durable file and the result's "capture" member; a
 * failure leaves no file and says why in {"error":...}. */
static void save_from_tap(void **state)
{
    (void)state;
    bl_tap_t *t = bl_tap_new(BL_TAP_WEBSOCKET, 1024);
    assert_non_null(t);
    ws_feed(t, 1, "out\n");
    bl_tap_clock(t, 300000);
    ws_feed(t, 2, "err\n");
    char buf[BL_CAPTURE_JSON_MAX];
    bl_buf_t json = { .base = buf, .cap = sizeof(buf), .max = sizeof(buf) };
    bl_capture_meta_t m = meta();
    assert_int_equal(bl_capture_save(tmpdir, &m, t, &json), BL_OK);
    json_error_t e;
    json_t *j = json_loadb(bl_buf_data(&json), bl_buf_size(&json), 0, &e);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "file")), "sessions/" ID ".cap");
    assert_true(json_is_false(json_object_get(j, "truncated")));
    assert_memory_equal(bl_buf_data(&json), "{\"bytes\":", 9); /* canonical: keys sorted */
    char path[256];
    path_of(path, sizeof(path));
    bl_capture_t c;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    assert_int_equal(bl_capture_load(path, json_string_value(json_object_get(j, "sha256")),
                                     (uint64_t)json_integer_value(json_object_get(j, "bytes")), &c, &err), BL_OK);
    assert_int_equal(c.nev, 2);
    assert_int_equal(c.ev[0].ch, BL_TAP_STDOUT);
    assert_int_equal(c.ev[1].ch, BL_TAP_STDERR);
    assert_int_equal(c.ev[1].t_us, 300000);
    bl_capture_free(&c);
    json_decref(j);

    bl_buf_reset(&json); /* the same id again: never overwritten */
    assert_int_equal(bl_capture_save(tmpdir, &m, t, &json), BL_ERROR);
    assert_memory_equal(bl_buf_data(&json), "{\"error\":\"creating the capture file: File exists\"}",
                        bl_buf_size(&json));
    assert_int_equal(access(path, F_OK), 0);
    bl_buf_reset(&json); /* no audit directory to write in */
    char nodir[128];
    snprintf(nodir, sizeof(nodir), "%s/missing/deeper", tmpdir);
    assert_int_equal(bl_capture_save(nodir, &m, t, &json), BL_ERROR);
    j = json_loadb(bl_buf_data(&json), bl_buf_size(&json), 0, &e);
    assert_non_null(j);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "sessions/"));
    json_decref(j);
    bl_capture_meta_t evil = meta();
    evil.id = "../../x";
    bl_buf_reset(&json);
    assert_int_equal(bl_capture_save(tmpdir, &evil, t, &json), BL_ERROR);
    bl_buf_free(&err);
    bl_tap_free(t);
}

/* Returns bl_capture_ref_get's verdict on a result entry given as JSON. */
static int ref_of(const char *entry_json, bl_capture_ref_t *ref, bl_buf_t *err)
{
    json_error_t e;
    json_t *j = json_loads(entry_json, 0, &e);
    assert_non_null(j);
    int rc = bl_capture_ref_get(j, ref, err);
    json_decref(j);
    return rc;
}

#define SHA64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Only the reference byline writes is taken: sessions/<the entry's id>.cap,
 * nothing absolute, no '..', another session's file or a malformed hash. */
static void ref_is_strict(void **state)
{
    (void)state;
    bl_capture_ref_t r;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    assert_int_equal(ref_of("{\"id\":\"" ID "\",\"kind\":\"result\"}", &r, &err), BL_DECLINED);
    assert_int_equal(ref_of("{\"id\":\"" ID "\",\"capture\":{\"bytes\":7,\"file\":\"sessions/" ID ".cap\","
                            "\"sha256\":\"" SHA64 "\",\"truncated\":true}}", &r, &err), BL_OK);
    assert_string_equal(r.file, "sessions/" ID ".cap");
    assert_string_equal(r.sha256, SHA64);
    assert_int_equal(r.bytes, 7);
    assert_int_equal(r.truncated, 1);
    assert_string_equal(r.error, "");
    char path[64];
    assert_int_equal(bl_capture_ref_path("/a", &r, path, sizeof(path)), BL_OK);
    assert_string_equal(path, "/a/sessions/" ID ".cap");
    assert_int_equal(bl_capture_ref_path("/a", &r, path, 20), BL_ERROR);
    assert_int_equal(ref_of("{\"id\":\"" ID "\",\"capture\":{\"error\":\"disk full\"}}", &r, &err), BL_OK);
    assert_string_equal(r.error, "disk full");
    static const char *bad[] = {
        "\"capture\":[]",
        "\"capture\":{\"bytes\":7,\"file\":\"/etc/passwd\",\"sha256\":\"" SHA64 "\"}",
        "\"capture\":{\"bytes\":7,\"file\":\"sessions/../../" ID ".cap\",\"sha256\":\"" SHA64 "\"}",
        "\"capture\":{\"bytes\":7,\"file\":\"sessions/01900000-0000-7000-8000-0000000000bb.cap\",\"sha256\":\"" SHA64 "\"}",
        "\"capture\":{\"bytes\":7,\"sha256\":\"" SHA64 "\"}",
        "\"capture\":{\"bytes\":7,\"file\":\"sessions/" ID ".cap\",\"sha256\":\"" SHA64 "0\"}",
        "\"capture\":{\"bytes\":7,\"file\":\"sessions/" ID ".cap\",\"sha256\":\"ABCDEF6789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
        "\"capture\":{\"bytes\":-1,\"file\":\"sessions/" ID ".cap\",\"sha256\":\"" SHA64 "\"}",
        "\"capture\":{\"bytes\":\"7\",\"file\":\"sessions/" ID ".cap\",\"sha256\":\"" SHA64 "\"}",
        "\"capture\":{\"bytes\":9007199254740991,\"file\":\"sessions/" ID ".cap\",\"sha256\":\"" SHA64 "\"}",
    };
    char text[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{\"id\":\"" ID "\",%s}", bad[i]);
        assert_int_equal(ref_of(text, &r, &err), BL_ERROR);
        assert_true(bl_buf_size(&err) > 0);
    }
    assert_int_equal(ref_of("{\"capture\":{\"bytes\":7,\"file\":\"sessions/" ID ".cap\",\"sha256\":\"" SHA64
                            "\"}}", &r, &err), BL_ERROR); /* no id to name it by */
    assert_int_equal(ref_of("{\"id\":\"../x\",\"capture\":{\"bytes\":7,\"file\":\"sessions/../x.cap\",\"sha256\":\""
                            SHA64 "\"}}", &r, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "no record id"));
    char id[64];
    assert_int_equal(bl_capture_name_id(ID ".cap", id, sizeof(id)), BL_OK);
    assert_string_equal(id, ID);
    assert_int_equal(bl_capture_name_id(ID ".cap.tmp", id, sizeof(id)), BL_DECLINED);
    assert_int_equal(bl_capture_name_id(".cap", id, sizeof(id)), BL_DECLINED);
    assert_int_equal(bl_capture_name_id("x y.cap", id, sizeof(id)), BL_DECLINED);
    assert_int_equal(bl_capture_name_id(ID ".cap", id, 8), BL_DECLINED);
    bl_buf_free(&err);
}

/* Writes n bytes of a pattern as the capture file; sets ref to match it. */
static void put_capture(size_t n, bl_capture_ref_t *ref)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/sessions", tmpdir);
    mkdir(path, 0700);
    path_of(path, sizeof(path));
    char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 23);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
    memset(ref, 0, sizeof(*ref));
    snprintf(ref->id, sizeof(ref->id), "%s", ID);
    snprintf(ref->file, sizeof(ref->file), "sessions/%s.cap", ID);
    hex_sha(p, n, ref->sha256);
    ref->bytes = n;
    free(p);
}

/* The streamed check: sizes around the read piece match; a changed byte,
 * another size, no file, a symlink or FIFO in its place, sessions/ not a
 * directory each get their verdict (and a FIFO does not block). */
static void check_verdicts(void **state)
{
    (void)state;
    bl_capture_ref_t r;
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    static const size_t sizes[] = { 0, 1, BL_CAPTURE_HASH_CHUNK - 1, BL_CAPTURE_HASH_CHUNK,
                                    BL_CAPTURE_HASH_CHUNK + 1, 3 * BL_CAPTURE_HASH_CHUNK + 17 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        put_capture(sizes[i], &r);
        assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MATCH);
    }
    char path[256], other[256];
    path_of(path, sizeof(path));
    FILE *f = fopen(path, "r+b"); /* the last byte of the last size, changed */
    assert_non_null(f);
    fseek(f, -1, SEEK_END);
    fputc('#', f);
    fclose(f);
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MODIFIED);
    assert_non_null(strstr(bl_buf_cstr(&err), "SHA-256"));
    put_capture(100, &r);
    r.bytes = 99;
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MODIFIED);
    assert_non_null(strstr(bl_buf_cstr(&err), "100 bytes, the ledger recorded 99"));
    r.bytes = 100;
    snprintf(other, sizeof(other), "%s/elsewhere.cap", tmpdir);
    assert_int_equal(rename(path, other), 0);
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MISSING);
    assert_int_equal(symlink(other, path), 0); /* the same bytes, through a link: not followed */
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MODIFIED);
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MODIFIED);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sessions", tmpdir);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_MISSING);
    assert_int_equal(symlink(tmpdir, path), 0); /* sessions/ -> elsewhere: not followed */
    assert_int_equal(bl_capture_check(tmpdir, &r, &err), BL_CAPTURE_UNREADABLE);
    bl_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(tamper_is_declined, setup, teardown),
        cmocka_unit_test(parse_is_strict),
        cmocka_unit_test(asciicast_v2),
        cmocka_unit_test_setup_teardown(save_from_tap, setup, teardown),
        cmocka_unit_test(ref_is_strict),
        cmocka_unit_test_setup_teardown(check_verdicts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
