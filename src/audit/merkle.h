/*
 * merkle.h - RFC 6962 / RFC 9162 Merkle tree hashing for the audit ledger
 * (docs/AUDIT-FORMAT.md section 3): leaf and node hashes, a compact range
 * that grows one leaf at a time in O(log n) memory, and inclusion proofs.
 */
#ifndef BL_AUDIT_MERKLE_H
#define BL_AUDIT_MERKLE_H

#include <stdint.h>
#include "core/common.h"

typedef struct {
    unsigned char h[32];
} bl_hash_t;

/* out = SHA-256(0x00 || line[0..n)). */
void bl_merkle_leaf(const void *line, size_t n, bl_hash_t *out);

/* out = SHA-256(0x01 || left || right). out may alias either input. */
void bl_merkle_node(const bl_hash_t *left, const bl_hash_t *right, bl_hash_t *out);

/* The roots of the perfect subtrees covering leaves [0, size), largest
 * first: enough to append and to compute the root. A plain value. */
typedef struct {
    uint64_t size;
    unsigned n;          /* subtrees held: popcount(size) */
    bl_hash_t sub[64];
} bl_merkle_range_t;

void bl_merkle_init(bl_merkle_range_t *r);
void bl_merkle_append(bl_merkle_range_t *r, const bl_hash_t *leaf);

/* The tree hash of leaves [0, r->size) (SHA-256 of nothing when empty). */
void bl_merkle_root(const bl_merkle_range_t *r, bl_hash_t *out);

/*
 * Writes the audit path (RFC 9162 2.1.3) of leaf `index` in the tree of the
 * first `size` leaves of `leaves` into path[0..*len) (*len: in capacity,
 * out count; 64 always suffices). Returns BL_OK, or BL_ERROR if index >=
 * size or the capacity is short.
 */
int bl_merkle_prove(const bl_hash_t *leaves, uint64_t size, uint64_t index, bl_hash_t *path, size_t *len);

/* Returns BL_OK if `path` proves `leaf` is leaf `index` of the tree of
 * `size` leaves with root `root`, else BL_ERROR. */
int bl_merkle_verify_inclusion(const bl_hash_t *leaf, uint64_t index, uint64_t size, const bl_hash_t *path,
                               size_t len, const bl_hash_t *root);

#endif
