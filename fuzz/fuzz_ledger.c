/*
 * fuzz_ledger.c - libFuzzer target for reading the audit ledger: the input
 * is taken both as one segment (every line through the checks of `byline
 * audit verify`: JCS canonical form, leaf shape, sequence, prev chain,
 * checkpoints, open intents) and as a signed checkpoint note
 * (bl_note_verify, bl_note_open, bl_note_origin).
 *
 * The key is fixed (seed 32 x 0x42, name "byline/fuzz") so the corpus can
 * hold correctly signed checkpoints. Besides crashes and sanitizer
 * reports, the target aborts when:
 *   - verify gives a different count for the same bytes, or --live finds
 *     more than a plain run;
 *   - bl_note_verify returns anything but OK / DECLINED / ERROR, or *why
 *     disagrees with the result; a note that verifies does not open, or
 *     re-signing its (size, root) does not verify to the same values;
 *   - a line bl_jcs_is_canonical accepts does not dump to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "audit/jcs.h"
#include "audit/note.h"
#include "cli/audit_ledger.h"

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "fuzz_ledger: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static bl_signer_t *signer;
static bl_verifier_t *verifier;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    unsigned char seed[32];
    char dir[] = "/tmp/byline-fuzz-ledger-XXXXXX", path[64];
    bl_buf_t err;
    bl_buf_init(&err, 1024);
    memset(seed, 0x42, sizeof(seed));
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed, sizeof(seed));
    CHECK(pk != NULL && mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/k", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    signer = bl_signer_load(path, "byline/fuzz", &err);
    CHECK(signer != NULL);
    verifier = bl_verifier_from_signer(signer);
    CHECK(verifier != NULL);
    unlink(path);
    rmdir(dir);
    EVP_PKEY_free(pk);
    bl_buf_free(&err);
    return 0;
}

static void check_note(const char *p, size_t n)
{
    uint64_t size = 0, size2 = 0;
    bl_hash_t root, root2;
    const char *why = NULL;
    bl_buf_t origin, again;
    size_t tn = 0;
    bl_buf_init(&origin, 256);
    bl_buf_init(&again, 1024);
    int rc = bl_note_verify(verifier, p, n, &size, &root, &origin, &why);
    CHECK(rc == BL_OK || rc == BL_DECLINED || rc == BL_ERROR);
    CHECK((rc == BL_OK) == (why == NULL));
    int rc2 = bl_note_open(verifier, p, n, &tn, &why);
    CHECK(rc2 == BL_OK || rc2 == BL_DECLINED || rc2 == BL_ERROR);
    if (rc == BL_OK) {
        CHECK(rc2 == BL_OK && tn < n && p[tn - 1] == '\n');
        CHECK(bl_buf_size(&origin) == strlen("byline/fuzz"));
        CHECK(bl_note_sign(signer, size, &root, &again) == BL_OK);
        CHECK(bl_note_verify(verifier, bl_buf_data(&again), bl_buf_size(&again), &size2, &root2, NULL, &why) ==
              BL_OK);
        CHECK(size2 == size && memcmp(root.h, root2.h, 32) == 0);
    }
    bl_buf_reset(&origin);
    if (bl_note_origin(p, n, &origin, &why) == BL_OK)
        CHECK(bl_buf_size(&origin) > 0 && bl_buf_size(&origin) < 256);
    bl_buf_free(&origin);
    bl_buf_free(&again);
}

static void check_lines(const char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        const char *nl = memchr(p + off, '\n', n - off);
        size_t len = nl ? (size_t)(nl - (p + off)) : n - off;
        if (bl_jcs_is_canonical(p + off, len)) {
            json_error_t e;
            json_t *v = json_loadb(p + off, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
            bl_buf_t b;
            bl_buf_init(&b, len + 1);
            CHECK(v != NULL && bl_jcs_dump(v, &b) == BL_OK && bl_buf_size(&b) == len &&
                  memcmp(bl_buf_data(&b), p + off, len) == 0);
            bl_buf_free(&b);
            json_decref(v);
        }
        off += len + (nl != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1); /* exact size: a read past it is an ASan report */
    CHECK(p != NULL);
    if (size)
        memcpy(p, data, size);
    int a = bl_audit_verify_mem(p, size, verifier, 0);
    CHECK(a >= 0);
    CHECK(bl_audit_verify_mem(p, size, verifier, 0) == a);
    int live = bl_audit_verify_mem(p, size, verifier, 1);
    CHECK(live >= 0 && live <= a);
    check_note(p, size);
    check_lines(p, size);
    free(p);
    return 0;
}
