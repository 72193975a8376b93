/*
 * recover.c - the ledger writer's start-up: read what earlier runs wrote,
 * check it is one unbroken chain, rebuild the Merkle tree and the set of
 * intents without results, and cut a line a crash left half written.
 *
 * A ledger that does not add up (a gap, a broken chain, a checkpoint that
 * disagrees with its entries) stops byline from starting: appending to a
 * history that was altered would bless it. `byline audit verify` says
 * what is wrong; moving the audit directory aside starts a new ledger.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <unistd.h>
#include "audit/ledger_int.h"
#include "audit/reader.h"
#include "core/log.h"

/* Cuts segment `seg` back to `offset` bytes (a torn or garbled last line). */
static int bl_recover_cut(bl_ledger_t *l, unsigned seg, uint64_t offset, bl_buf_t *err)
{
    char path[4096];
    bl_segment_path(l->dir, seg, path, sizeof(path));
    if (truncate(path, (off_t)offset) != 0) {
        bl_buf_printf(err, "cannot cut the torn last line of %s: %s", path, strerror(errno));
        return BL_ERROR;
    }
    bl_warn("audit: %s ended in a half-written line (a crash while writing); cut it at byte %llu", path,
            (unsigned long long)offset);
    return BL_OK;
}

/* Checks one leaf against the chain and adds it. */
static int bl_recover_leaf(bl_ledger_t *l, json_t *j, const bl_line_t *ln, bl_buf_t *err)
{
    char prev[45];
    json_t *seq = json_object_get(j, "seq");
    const char *p = json_string_value(json_object_get(j, "prev"));
    json_t *e = json_object_get(j, "entry");
    EVP_EncodeBlock((unsigned char *)prev, l->prev.h, 32);
    if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != l->seq || p == NULL || strcmp(p, prev) ||
        !json_is_object(e)) {
        bl_buf_printf(err, "audit ledger is inconsistent at segment %u line %llu (expected seq %llu after the "
                           "previous entry); run `byline audit verify`",
                      ln->segment, (unsigned long long)ln->lineno, (unsigned long long)l->seq);
        return BL_ERROR;
    }
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *id = json_string_value(json_object_get(e, "id"));
    int k = kind && !strcmp(kind, "intent") ? BL_ENT_INTENT
            : kind && (!strcmp(kind, "result") || !strcmp(kind, "aborted")) ? BL_ENT_RESULT
                                                                            : BL_ENT_OTHER;
    bl_hash_t leaf;
    bl_merkle_leaf(ln->p, ln->len, &leaf);
    bl_merkle_append(&l->tree, &leaf);
    l->prev = leaf;
    l->seq++;
    if (id && strlen(id) == BL_ENT_ID_LEN) {
        if (k == BL_ENT_INTENT && bl_idset_add(&l->open, id) != BL_OK) {
            bl_buf_printf(err, "out of memory");
            return BL_ERROR;
        }
        if (k == BL_ENT_RESULT)
            bl_idset_del(&l->open, id);
    }
    return BL_OK;
}

/* A checkpoint line must cover exactly the leaves before it, with their root. */
static int bl_recover_checkpoint(bl_ledger_t *l, const char *note, const bl_line_t *ln, bl_buf_t *err)
{
    bl_verifier_t *v = bl_verifier_from_signer(l->signer);
    uint64_t size = 0;
    bl_hash_t root, ours;
    const char *why = "no verifier";
    int rc = v ? bl_note_verify(v, note, strlen(note), &size, &root, NULL, &why) : BL_ERROR;
    bl_verifier_free(v);
    bl_merkle_root(&l->tree, &ours);
    if (rc == BL_DECLINED) {
        /* Signed with another key (a rotated key): the chain still binds it. */
        bl_warn("audit: checkpoint at segment %u line %llu is not signed by the current key", ln->segment,
                (unsigned long long)ln->lineno);
        return BL_OK;
    }
    if (rc != BL_OK || size != l->tree.size || memcmp(root.h, ours.h, 32) != 0) {
        bl_buf_printf(err, "audit ledger is inconsistent: the checkpoint at segment %u line %llu does not match the "
                           "entries before it (%s); run `byline audit verify`",
                      ln->segment, (unsigned long long)ln->lineno, rc != BL_OK ? why : "different tree");
        return BL_ERROR;
    }
    l->ck_size = size;
    return BL_OK;
}

/* Handles one line. Returns BL_OK, BL_DECLINED when it was the torn or
 * garbled last line (cut), or BL_ERROR. */
static int bl_recover_line(bl_ledger_t *l, const bl_line_t *ln, int last_segment, bl_buf_t *err)
{
    json_error_t je;
    json_t *j = ln->torn ? NULL : json_loadb(ln->p, ln->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    int rc;
    if (j == NULL) {
        if (ln->torn && last_segment)
            return bl_recover_cut(l, ln->segment, ln->offset, err) == BL_OK ? BL_DECLINED : BL_ERROR;
        bl_buf_printf(err, "audit ledger is damaged at segment %u line %llu (not JSON); run `byline audit verify`",
                      ln->segment, (unsigned long long)ln->lineno);
        return BL_ERROR;
    }
    const char *note = json_string_value(json_object_get(j, "checkpoint"));
    rc = note ? bl_recover_checkpoint(l, note, ln, err) : bl_recover_leaf(l, j, ln, err);
    json_decref(j);
    return rc;
}

int bl_ledger_recover(bl_ledger_t *l, bl_buf_t *err)
{
    bl_reader_t *r = bl_reader_open(l->dir, err);
    if (r == NULL)
        return BL_ERROR;
    unsigned nseg = bl_reader_segments(r);
    int rc = BL_OK;
    bl_line_t ln;
    while (rc == BL_OK && (rc = bl_reader_next(r, &ln, err)) == BL_OK)
        rc = bl_recover_line(l, &ln, ln.segment == nseg, err);
    bl_reader_close(r);
    if (rc == BL_ERROR)
        return BL_ERROR;
    l->ck_ms = bl_ledger_now_ms();
    if (l->seq)
        bl_info("audit: ledger in %s holds %llu entries in %u segment(s); %zu request(s) were left open",
                l->dir, (unsigned long long)l->seq, nseg, l->open.count);
    return nseg ? bl_ledger_segment_open(l, nseg, 0, err) : bl_ledger_segment_open(l, 1, 1, err);
}
