/* test_note.c - signed notes and checkpoints (C2SP signed-note, tlog-checkpoint). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "audit/note.h"

/* golang.org/x/mod/sumdb/note's documented example (note.go, note_test.go):
 * its signer key, verifier key and the note it signs. Ed25519 is
 * deterministic, so our signature must be the same bytes. */
#define GO_SKEY_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define GO_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define GO_TEXT "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
#define GO_NOTE GO_TEXT "\n\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

static char tmpdir[] = "/tmp/byline-test-note-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Writes the Go example's private key as PKCS#8 PEM and its public half. */
static void write_go_keys(const char *key, const char *pub)
{
    unsigned char raw[33];
    assert_int_equal(bl_note_b64_decode(BL_STR(GO_SKEY_B64), raw, sizeof(raw)), 33);
    assert_int_equal(raw[0], 0x01);
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, raw + 1, 32);
    assert_non_null(pk);
    FILE *f = fopen(key, "w");
    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    f = fopen(pub, "w");
    assert_non_null(f);
    assert_true(PEM_write_PUBKEY(f, pk));
    fclose(f);
    EVP_PKEY_free(pk);
}

static void go_sumdb_note_known_answer(void **state)
{
    (void)state;
    char key[512], pub[512];
    path_of(key, sizeof(key), "go.key");
    path_of(pub, sizeof(pub), "go.pub");
    write_go_keys(key, pub);
    bl_buf_t out, err;
    bl_buf_init(&out, 4096);
    bl_buf_init(&err, 1024);
    bl_signer_t *s = bl_signer_load(key, "PeterNeumann", &err);
    assert_non_null(s);
    assert_int_equal(bl_note_sign_text(s, GO_TEXT, strlen(GO_TEXT), &out), BL_OK);
    assert_int_equal(bl_buf_size(&out), strlen(GO_NOTE));
    assert_memory_equal(bl_buf_data(&out), GO_NOTE, strlen(GO_NOTE));

    /* the key ID and the verifier key in Go's text form */
    bl_verifier_t *v = bl_verifier_load(pub, "PeterNeumann", &err);
    assert_non_null(v);
    bl_buf_reset(&out);
    assert_int_equal(bl_note_vkey(v, &out), BL_OK);
    assert_string_equal(bl_buf_cstr(&out), GO_VKEY);
    bl_verifier_t *v2 = bl_verifier_from_signer(s);
    bl_buf_reset(&out);
    assert_int_equal(bl_note_vkey(v2, &out), BL_OK);
    assert_string_equal(bl_buf_cstr(&out), GO_VKEY);

    /* Go's note opens with our verifier */
    size_t tn = 0;
    const char *why = NULL;
    assert_int_equal(bl_note_open(v, GO_NOTE, strlen(GO_NOTE), &tn, &why), BL_OK);
    assert_int_equal(tn, strlen(GO_TEXT));
    /* ... and is not a checkpoint */
    uint64_t size;
    bl_hash_t root;
    assert_int_equal(bl_note_verify(v, GO_NOTE, strlen(GO_NOTE), &size, &root, NULL, &why), BL_ERROR);
    assert_non_null(why);
    bl_verifier_free(v);
    bl_verifier_free(v2);
    bl_signer_free(s);
    bl_buf_free(&out);
    bl_buf_free(&err);
}

/* Keys for the checkpoint tests, made by bl_note_keygen. */
static void keygen(const char *k, const char *p, char *key, char *pub)
{
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    path_of(key, 512, k);
    path_of(pub, 512, p);
    assert_int_equal(bl_note_keygen(key, pub, &err), BL_OK);
    bl_buf_free(&err);
}

static void keygen_modes_and_no_overwrite(void **state)
{
    (void)state;
    char key[512], pub[512], other[512];
    struct stat st;
    keygen("a.key", "a.pub", key, pub);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    FILE *f = fopen(key, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n"); /* PKCS#8, unencrypted */
    f = fopen(pub, "r");
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PUBLIC KEY-----\n"); /* SubjectPublicKeyInfo */

    bl_buf_t err;
    bl_buf_init(&err, 1024);
    path_of(other, sizeof(other), "other.pub");
    assert_int_equal(bl_note_keygen(key, other, &err), BL_ERROR);
    assert_non_null(strstr(bl_buf_cstr(&err), "refusing to overwrite"));
    assert_int_equal(access(other, F_OK), -1); /* nothing half-made */
    /* no temporary file left behind */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -q tmp", tmpdir);
    assert_int_not_equal(system(cmd), 0);
    /* the public key is not a private key, and the private key loads */
    bl_buf_reset(&err);
    assert_null(bl_signer_load(pub, "byline/test", &err));
    assert_true(bl_buf_size(&err) > 0);
    bl_signer_t *s = bl_signer_load(key, "byline/test", &err);
    assert_non_null(s);
    bl_signer_free(s);
    /* names: no space, no '+', not empty */
    assert_null(bl_signer_load(key, "byline test", &err));
    assert_null(bl_signer_load(key, "byline+test", &err));
    assert_null(bl_signer_load(key, "", &err));
    assert_null(bl_verifier_load(pub, "a\tb", &err));
    bl_buf_free(&err);
}

static void checkpoint_round_trip_and_text(void **state)
{
    (void)state;
    char key[512], pub[512];
    keygen("b.key", "b.pub", key, pub);
    bl_buf_t out, err, origin;
    bl_buf_init(&out, 4096);
    bl_buf_init(&err, 1024);
    bl_buf_init(&origin, 256);
    bl_signer_t *s = bl_signer_load(key, "byline/gw-1.example", &err);
    bl_verifier_t *v = bl_verifier_load(pub, "byline/gw-1.example", &err);
    assert_non_null(s);
    assert_non_null(v);
    bl_hash_t root, got;
    for (int i = 0; i < 32; i++)
        root.h[i] = (unsigned char)(i * 7 + 1);
    const uint64_t sizes[] = { 0, 1, 1234567, UINT64_MAX };
    for (size_t i = 0; i < BL_ARRAY_LEN(sizes); i++) {
        bl_buf_reset(&out);
        bl_buf_reset(&origin);
        assert_int_equal(bl_note_sign(s, sizes[i], &root, &out), BL_OK);
        char want[128];
        snprintf(want, sizeof(want), "byline/gw-1.example\n%llu\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=\n\n"
                 "\xe2\x80\x94 byline/gw-1.example ", (unsigned long long)sizes[i]);
        const char *n = bl_buf_cstr(&out);
        assert_memory_equal(n, want, strlen(want));
        /* base64 of 4 + 64 bytes, then the final newline */
        assert_int_equal(strlen(n), strlen(want) + 92 + 1);
        assert_int_equal(n[strlen(n) - 1], '\n');
        uint64_t size = 42;
        const char *why = "unset";
        assert_int_equal(bl_note_verify(v, n, strlen(n), &size, &got, &origin, &why), BL_OK);
        assert_null(why);
        assert_true(size == sizes[i]);
        assert_memory_equal(got.h, root.h, 32);
        assert_string_equal(bl_buf_cstr(&origin), "byline/gw-1.example");
        bl_buf_reset(&origin);
        assert_int_equal(bl_note_origin(n, strlen(n), &origin, &why), BL_OK);
        assert_string_equal(bl_buf_cstr(&origin), "byline/gw-1.example");
    }
    bl_signer_free(s);
    bl_verifier_free(v);
    bl_buf_free(&out);
    bl_buf_free(&err);
    bl_buf_free(&origin);
}

/* Signs a checkpoint of size 5 with key/name into out. */
static void sign5(const char *key, const char *name, bl_buf_t *out)
{
    bl_buf_t err;
    bl_hash_t root;
    memset(root.h, 0xab, sizeof(root.h));
    bl_buf_init(&err, 1024);
    bl_signer_t *s = bl_signer_load(key, name, &err);
    assert_non_null(s);
    assert_int_equal(bl_note_sign(s, 5, &root, out), BL_OK);
    bl_signer_free(s);
    bl_buf_free(&err);
}

static int verify_str(const bl_verifier_t *v, const char *note)
{
    uint64_t size;
    bl_hash_t root;
    const char *why = NULL;
    int rc = bl_note_verify(v, note, strlen(note), &size, &root, NULL, &why);
    assert_true(rc == BL_OK ? why == NULL : why != NULL);
    return rc;
}

static void wrong_key_and_tampering_are_declined(void **state)
{
    (void)state;
    char k1[512], p1[512], k2[512], p2[512];
    keygen("c1.key", "c1.pub", k1, p1);
    keygen("c2.key", "c2.pub", k2, p2);
    bl_buf_t n1, n2, err;
    bl_buf_init(&n1, 4096);
    bl_buf_init(&n2, 4096);
    bl_buf_init(&err, 1024);
    sign5(k1, "byline/h", &n1);
    sign5(k2, "byline/h", &n2);
    bl_verifier_t *v = bl_verifier_load(p1, "byline/h", &err);
    bl_verifier_t *other_name = bl_verifier_load(p1, "byline/other", &err);
    assert_non_null(v);
    assert_non_null(other_name);
    const char *good = bl_buf_cstr(&n1);
    assert_int_equal(verify_str(v, good), BL_OK);
    /* another key, same name: a different key ID, so no signature of ours */
    assert_int_equal(verify_str(v, bl_buf_cstr(&n2)), BL_DECLINED);
    /* our key under another name */
    assert_int_equal(verify_str(other_name, good), BL_DECLINED);

    char *t = strdup(good);
    t[strlen("byline/h\n")] = '6'; /* size 5 -> 6 */
    assert_int_equal(verify_str(v, t), BL_DECLINED);
    strcpy(t, good);
    t[strlen("byline/h\n5\n")] = 'A'; /* the root's first character (q -> A) */
    assert_int_equal(verify_str(v, t), BL_DECLINED);
    strcpy(t, good);
    t[0] = 'c'; /* origin */
    assert_int_equal(verify_str(v, t), BL_DECLINED);
    strcpy(t, good);
    char *sig = strrchr(t, ' ') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A'; /* the signature itself */
    assert_int_equal(verify_str(v, t), BL_DECLINED);
    free(t);

    /* a signature by someone else is ignored beside ours, in any order */
    bl_buf_t both;
    bl_buf_init(&both, 8192);
    const char *sig2 = strstr(bl_buf_cstr(&n2), "\n\n") + 2;
    const char *sig1 = strstr(good, "\n\n") + 2;
    char *n2other = strdup(sig2);
    memcpy(strstr(n2other, "byline/h"), "byline/x", 8); /* a witness's name */
    bl_buf_printf(&both, "byline/h\n5\n%.*s\n\n%s%s", 44, good + strlen("byline/h\n5\n"), n2other, sig1);
    assert_int_equal(verify_str(v, bl_buf_cstr(&both)), BL_OK);
    /* but a failing signature that claims our name and key ID rejects the note */
    bl_buf_reset(&both);
    char *bad1 = strdup(sig1);
    bad1[strlen(bad1) - 5] = bad1[strlen(bad1) - 5] == 'A' ? 'B' : 'A'; /* still base64 */
    bl_buf_printf(&both, "byline/h\n5\n%.*s\n\n%s%s", 44, good + strlen("byline/h\n5\n"), bad1, sig1);
    assert_int_equal(verify_str(v, bl_buf_cstr(&both)), BL_DECLINED);
    free(bad1);
    free(n2other);
    bl_buf_free(&both);
    bl_verifier_free(v);
    bl_verifier_free(other_name);
    bl_buf_free(&n1);
    bl_buf_free(&n2);
    bl_buf_free(&err);
}

static void malformed_notes_are_errors(void **state)
{
    (void)state;
    char k[512], p[512];
    keygen("d.key", "d.pub", k, p);
    bl_buf_t n, err;
    bl_buf_init(&n, 4096);
    bl_buf_init(&err, 1024);
    sign5(k, "byline/h", &n);
    bl_verifier_t *v = bl_verifier_load(p, "byline/h", &err);
    const char *good = bl_buf_cstr(&n);
    const char *sigline = strstr(good, "\n\n") + 2;
    const char *root = good + strlen("byline/h\n5\n");
    char b[8192];
    /* each: a printf of (root, sigline) */
    static const char *fmts[] = {
        "",
        "byline/h\n5\n%.44s\n%s",                /* no blank line */
        "byline/h\n5\n%.44s\n\n",                /* no signature */
        "byline/h\n05\n%.44s\n\n%s",             /* leading zero */
        "byline/h\n+5\n%.44s\n\n%s",
        "byline/h\n18446744073709551616\n%.44s\n\n%s", /* 2^64 */
        "byline/h\n5\n%.43s\n\n%s",              /* 43 base64 characters */
        "byline/h\n5\n%.40s\n\n%s",              /* 30 bytes */
        "byline/h\n5\n%.44s\next\n\n%s",         /* an extension line */
        "byline/h\n5\n\n%.44s\n\n%s",            /* an empty line in the body */
        "\n5\n%.44s\n\n%s",                      /* empty origin */
        "byline/h\n5\n%.44s\n\n- %s",            /* a hyphen, not an em dash */
        "byline/h\r\n5\n%.44s\n\n%s",            /* CR */
        "byline/h\xff\n5\n%.44s\n\n%s",          /* not UTF-8 */
        "byline/h\xc0\xaf\n5\n%.44s\n\n%s",      /* overlong */
        "byline/h\xed\xa0\x80\n5\n%.44s\n\n%s",  /* a surrogate */
        "byline/h\n5\n%.44s\n\n%s\n",            /* a blank line at the end */
        "byline/h\n5\n%.44s\n\n\xe2\x80\x94 byline/h\n", /* no base64 */
        "byline/h\n5\n%.44s\n\n\xe2\x80\x94 byline/h AAAA\n", /* under 5 bytes */
        "byline/h\n5\n%.44s\n\n\xe2\x80\x94 byl+ine/h AAAAAAAA\n", /* '+' in a name */
        "byline/h\n5\n%.44s\n\n\xe2\x80\x94  AAAAAAAA\n",     /* empty name */
        "byline/h\n5\n%.44s\n\n\xe2\x80\x94 x AAAAAAB=\n",   /* bad padding bits */
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(fmts); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(b, sizeof(b), fmts[i], root, sigline); /* the table's formats, all literals */
#pragma GCC diagnostic pop
        if (strchr(fmts[i], '%') == NULL)
            snprintf(b, sizeof(b), "%s", fmts[i]);
        assert_int_equal(verify_str(v, b), BL_ERROR);
    }
    /* the note without its final newline */
    size_t len = strlen(good);
    uint64_t size;
    bl_hash_t h;
    const char *why;
    assert_int_equal(bl_note_verify(v, good, len - 1, &size, &h, NULL, &why), BL_ERROR);
    /* more than 100 signature lines */
    bl_buf_t many;
    bl_buf_init(&many, BL_NOTE_MAX * 2);
    bl_buf_append(&many, good, len);
    for (int i = 0; i < 100; i++)
        bl_buf_puts(&many, "\xe2\x80\x94 w AAAAAAAA\n");
    assert_int_equal(verify_str(v, bl_buf_cstr(&many)), BL_ERROR);
    /* longer than BL_NOTE_MAX */
    bl_buf_reset(&many);
    bl_buf_append(&many, good, len);
    while (bl_buf_size(&many) <= BL_NOTE_MAX)
        bl_buf_puts(&many, "\xe2\x80\x94 w AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    assert_int_equal(verify_str(v, bl_buf_cstr(&many)), BL_ERROR);
    /* a NUL inside */
    char *t = strdup(good);
    t[3] = '\0';
    assert_int_equal(bl_note_verify(v, t, len, &size, &h, NULL, &why), BL_ERROR);
    free(t);
    /* signing text a verifier would refuse is refused */
    bl_buf_t out;
    bl_buf_init(&out, 4096);
    bl_signer_t *s = bl_signer_load(k, "byline/h", &err);
    assert_int_equal(bl_note_sign_text(s, "no newline", 10, &out), BL_ERROR);
    assert_int_equal(bl_note_sign_text(s, "a\n\n", 3, &out), BL_ERROR);
    assert_int_equal(bl_note_sign_text(s, "a\rb\n", 4, &out), BL_ERROR);
    assert_int_equal(bl_buf_size(&out), 0);
    bl_signer_free(s);
    bl_buf_free(&out);
    bl_buf_free(&many);
    bl_verifier_free(v);
    bl_buf_free(&n);
    bl_buf_free(&err);
}

static void strict_base64(void **state)
{
    (void)state;
    unsigned char b[8];
    assert_int_equal(bl_note_b64_decode(BL_STR(""), b, sizeof(b)), 0);
    assert_int_equal(bl_note_b64_decode(BL_STR("AA=="), b, sizeof(b)), 1);
    assert_int_equal(b[0], 0);
    assert_int_equal(bl_note_b64_decode(BL_STR("+/8="), b, sizeof(b)), 2);
    assert_int_equal(b[0], 0xfb);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(bl_note_b64_decode(BL_STR("AB=="), b, sizeof(b)), BL_ERROR); /* stray bits */
    assert_int_equal(bl_note_b64_decode(BL_STR("AAB="), b, sizeof(b)), BL_ERROR);
    assert_int_equal(bl_note_b64_decode(BL_STR("AA"), b, sizeof(b)), BL_ERROR);    /* no padding */
    assert_int_equal(bl_note_b64_decode(BL_STR("A==="), b, sizeof(b)), BL_ERROR);
    assert_int_equal(bl_note_b64_decode(BL_STR("A=A="), b, sizeof(b)), BL_ERROR);
    assert_int_equal(bl_note_b64_decode(BL_STR("-_8="), b, sizeof(b)), BL_ERROR); /* base64url */
    assert_int_equal(bl_note_b64_decode(BL_STR("AAAAAAAAAAAA"), b, 8), BL_ERROR);  /* 9 > 8 */
    bl_buf_t o;
    bl_buf_init(&o, 64);
    assert_int_equal(bl_note_b64_encode("\xfb\xff", 2, &o), BL_OK);
    assert_int_equal(bl_note_b64_encode("f", 1, &o), BL_OK);
    assert_int_equal(bl_note_b64_encode("foo", 3, &o), BL_OK);
    assert_string_equal(bl_buf_cstr(&o), "+/8=Zg==Zm9v");
    bl_buf_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(go_sumdb_note_known_answer),
        cmocka_unit_test(keygen_modes_and_no_overwrite),
        cmocka_unit_test(checkpoint_round_trip_and_text),
        cmocka_unit_test(wrong_key_and_tampering_are_declined),
        cmocka_unit_test(malformed_notes_are_errors),
        cmocka_unit_test(strict_base64),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
