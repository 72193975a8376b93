/* test_merkle.c - RFC 6962 / RFC 9162 tree hashes and inclusion proofs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/merkle.h"

/* The leaves of the Certificate Transparency reference tests (RFC 6962
 * implementations, trillian's merkle package): their roots for sizes 1..8
 * and audit paths are the published known answers below. */
static const struct {
    const char *p;
    size_t n;
} ct_leaves[8] = {
    { "", 0 },
    { "\x00", 1 },
    { "\x10", 1 },
    { "\x20\x21", 2 },
    { "\x30\x31", 2 },
    { "\x40\x41\x42\x43", 4 },
    { "\x50\x51\x52\x53\x54\x55\x56\x57", 8 },
    { "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16 },
};

static const char *ct_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void hex32(const char *hex, bl_hash_t *out)
{
    assert_int_equal(strlen(hex), 64);
    for (int i = 0; i < 32; i++)
        out->h[i] = (unsigned char)(bl_hexval((unsigned char)hex[2 * i]) << 4 | bl_hexval((unsigned char)hex[2 * i + 1]));
}

static void assert_hash(const bl_hash_t *h, const char *hex)
{
    bl_hash_t want;
    hex32(hex, &want);
    assert_memory_equal(h->h, want.h, 32);
}

static void ct_leaf_hashes(bl_hash_t *out)
{
    for (int i = 0; i < 8; i++)
        bl_merkle_leaf(ct_leaves[i].p, ct_leaves[i].n, &out[i]);
}

static void roots_of_sizes_0_to_8(void **state)
{
    (void)state;
    bl_hash_t leaves[8], root;
    bl_merkle_range_t r;
    ct_leaf_hashes(leaves);
    bl_merkle_init(&r);
    bl_merkle_root(&r, &root);
    assert_hash(&root, ct_roots[0]);
    for (int n = 1; n <= 8; n++) {
        bl_merkle_append(&r, &leaves[n - 1]);
        assert_int_equal(r.size, n);
        assert_int_equal(r.n, __builtin_popcount((unsigned)n));
        bl_merkle_root(&r, &root);
        assert_hash(&root, ct_roots[n]);
    }
}

static void leaf_and_node_prefixes(void **state)
{
    (void)state;
    bl_hash_t a, b, n1, n2;
    bl_merkle_leaf("", 0, &a);
    assert_hash(&a, ct_roots[1]); /* SHA-256(0x00) */
    bl_merkle_leaf("\x00", 1, &b);
    bl_merkle_node(&a, &b, &n1);
    assert_hash(&n1, ct_roots[2]);
    /* out may alias an input */
    n2 = a;
    bl_merkle_node(&n2, &b, &n2);
    assert_memory_equal(n1.h, n2.h, 32);
    n2 = b;
    bl_merkle_node(&a, &n2, &n2);
    assert_memory_equal(n1.h, n2.h, 32);
}

static void published_audit_paths(void **state)
{
    (void)state;
    static const struct {
        uint64_t index, size;
        size_t n;
        const char *path[3];
    } v[] = {
        { 0, 1, 0, { NULL } },
        { 0, 8, 3,
          { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
        { 5, 8, 3,
          { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
        { 2, 3, 1, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
        { 1, 5, 3,
          { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
    };
    bl_hash_t leaves[8], path[64], root;
    ct_leaf_hashes(leaves);
    for (size_t i = 0; i < BL_ARRAY_LEN(v); i++) {
        size_t len = 64;
        assert_int_equal(bl_merkle_prove(leaves, v[i].size, v[i].index, path, &len), BL_OK);
        assert_int_equal(len, v[i].n);
        for (size_t k = 0; k < len; k++)
            assert_hash(&path[k], v[i].path[k]);
        hex32(ct_roots[v[i].size], &root);
        assert_int_equal(bl_merkle_verify_inclusion(&leaves[v[i].index], v[i].index, v[i].size, path, len, &root),
                         BL_OK);
    }
}

/* MTH by the definition (RFC 9162 2.1.1), recursively. */
static void mth(const bl_hash_t *leaves, uint64_t n, bl_hash_t *out)
{
    if (n == 0) {
        bl_merkle_range_t r;
        bl_merkle_init(&r);
        bl_merkle_root(&r, out);
        return;
    }
    if (n == 1) {
        *out = leaves[0];
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    bl_hash_t l, r;
    mth(leaves, k, &l);
    mth(leaves + k, n - k, &r);
    bl_merkle_node(&l, &r, out);
}

static bl_hash_t *numbered_leaves(size_t n)
{
    bl_hash_t *l = calloc(n, sizeof(*l));
    assert_non_null(l);
    for (size_t i = 0; i < n; i++) {
        char s[32];
        int len = snprintf(s, sizeof(s), "leaf %zu", i);
        bl_merkle_leaf(s, (size_t)len, &l[i]);
    }
    return l;
}

static void compact_range_equals_recursive_mth_0_to_300(void **state)
{
    (void)state;
    bl_hash_t *leaves = numbered_leaves(300), a, b;
    bl_merkle_range_t r;
    bl_merkle_init(&r);
    for (uint64_t n = 0; n <= 300; n++) {
        if (n > 0)
            bl_merkle_append(&r, &leaves[n - 1]);
        bl_merkle_root(&r, &a);
        mth(leaves, n, &b);
        assert_memory_equal(a.h, b.h, 32);
        /* a copy of the range is a plain value that keeps growing the same way */
        bl_merkle_range_t copy = r;
        bl_merkle_root(&copy, &b);
        assert_memory_equal(a.h, b.h, 32);
    }
    free(leaves);
}

static void every_proof_of_sizes_1_to_64(void **state)
{
    (void)state;
    bl_hash_t *leaves = numbered_leaves(65), path[64], root, bad;
    for (uint64_t size = 1; size <= 64; size++) {
        mth(leaves, size, &root);
        for (uint64_t i = 0; i < size; i++) {
            size_t len = 64;
            assert_int_equal(bl_merkle_prove(leaves, size, i, path, &len), BL_OK);
            assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], i, size, path, len, &root), BL_OK);
            /* a flipped byte anywhere: leaf, each path element, root */
            bad = leaves[i];
            bad.h[i % 32] ^= 0x01;
            assert_int_equal(bl_merkle_verify_inclusion(&bad, i, size, path, len, &root), BL_ERROR);
            for (size_t k = 0; k < len; k++) {
                path[k].h[31 - k % 32] ^= 0x80;
                assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], i, size, path, len, &root), BL_ERROR);
                path[k].h[31 - k % 32] ^= 0x80;
            }
            bad = root;
            bad.h[0] ^= 0x40;
            assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], i, size, path, len, &bad), BL_ERROR);
            /* the same path does not prove another index, size, or a shorter/longer path */
            if (size > 1)
                assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], (i + 1) % size, size, path, len, &root),
                                 BL_ERROR);
            /* (the path of leaf 0 of 3 verifies "at size 4" against the size-3 root:
             * only the signed checkpoint binds a root to its size) */
            bl_hash_t bigger;
            mth(leaves, size + 1, &bigger);
            assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], i, size + 1, path, len, &bigger), BL_ERROR);
            if (len > 0)
                assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], i, size, path, len - 1, &root), BL_ERROR);
            path[len] = path[0];
            assert_int_equal(bl_merkle_verify_inclusion(&leaves[i], i, size, path, len + 1, &root), BL_ERROR);
        }
    }
    free(leaves);
}

static void bad_arguments(void **state)
{
    (void)state;
    bl_hash_t leaves[8], path[64], root;
    size_t len = 64;
    ct_leaf_hashes(leaves);
    assert_int_equal(bl_merkle_prove(leaves, 0, 0, path, &len), BL_ERROR);
    len = 64;
    assert_int_equal(bl_merkle_prove(leaves, 8, 8, path, &len), BL_ERROR);
    len = 2; /* size 8 needs 3 */
    assert_int_equal(bl_merkle_prove(leaves, 8, 3, path, &len), BL_ERROR);
    assert_int_equal(len, 0);
    hex32(ct_roots[0], &root);
    assert_int_equal(bl_merkle_verify_inclusion(&root, 0, 0, path, 0, &root), BL_ERROR);
    /* a one-leaf tree: the root is the leaf, and the path must be empty */
    hex32(ct_roots[1], &root);
    assert_int_equal(bl_merkle_verify_inclusion(&leaves[0], 0, 1, path, 0, &root), BL_OK);
    assert_int_equal(bl_merkle_verify_inclusion(&leaves[0], 0, 1, path, 1, &root), BL_ERROR);
    assert_int_equal(bl_merkle_verify_inclusion(&leaves[0], UINT64_MAX, UINT64_MAX, path, 0, &root), BL_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roots_of_sizes_0_to_8),
        cmocka_unit_test(leaf_and_node_prefixes),
        cmocka_unit_test(published_audit_paths),
        cmocka_unit_test(compact_range_equals_recursive_mth_0_to_300),
        cmocka_unit_test(every_proof_of_sizes_1_to_64),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
