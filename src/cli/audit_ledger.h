/*
 * audit_ledger.h - what `byline audit verify` and `byline audit prove`
 * share: where the ledger and its key are, the key name chosen from a
 * checkpoint, bounded file reads, and a set of open intent ids.
 */
#ifndef BL_CLI_AUDIT_LEDGER_H
#define BL_CLI_AUDIT_LEDGER_H

#include <stdint.h>
#include "audit/note.h"
#include "core/buf.h"

typedef struct {
    char audit_dir[4096];
    char key_path[4096];
    char origin[256];   /* the key name: given, or taken from the first checkpoint seen */
    bl_verifier_t *v;   /* NULL until the origin is known */
} bl_ledger_ctx_t;

/* Resolves DIR's audit directory and the public key (key, or
 * DIR/audit-signing.pub) and checks that the key loads; with `origin`
 * the verifier is ready at once. Returns BL_OK or BL_ERROR with err. */
int bl_ledger_ctx_init(bl_ledger_ctx_t *c, const char *dir, const char *key, const char *origin, char *err,
                       size_t cap);

/* Makes c->v for the origin of `note` (a checkpoint not yet verified: the
 * name only selects the key ID; the signature still has to verify).
 * Returns BL_OK or BL_ERROR with err. */
int bl_ledger_verifier(bl_ledger_ctx_t *c, const char *note, size_t n, char *err, size_t cap);

void bl_ledger_ctx_free(bl_ledger_ctx_t *c);

/* Reads a regular file of at most out->max bytes into out. Returns BL_OK,
 * BL_DECLINED if it does not exist, BL_ERROR with why. */
int bl_ledger_read_file(const char *path, bl_buf_t *out, char *why, size_t cap);

/* Open intents: id -> sequence number. */
typedef struct {
    struct bl_ledger_id_s *slot;
    size_t cap, used, live;
} bl_ledger_ids_t;

#define BL_LEDGER_IDS_MAX (1u << 20) /* open intents held at once */
#define BL_LEDGER_ID_MAX 64          /* a UUID is 36 */

/* Adds id (a longer one is cut to BL_LEDGER_ID_MAX bytes). Returns BL_OK,
 * or BL_ERROR past BL_LEDGER_IDS_MAX or out of memory. */
int bl_ledger_ids_put(bl_ledger_ids_t *s, const char *id, uint64_t seq);
void bl_ledger_ids_del(bl_ledger_ids_t *s, const char *id);
/* Returns BL_OK and sets *seq (may be NULL) when id is held, else BL_DECLINED. */
int bl_ledger_ids_get(const bl_ledger_ids_t *s, const char *id, uint64_t *seq);
/* Calls fn(id, seq, arg) for each id held, in no particular order; fn must
 * not change the set. */
void bl_ledger_ids_each(const bl_ledger_ids_t *s, void (*fn)(const char *id, uint64_t seq, void *arg), void *arg);
/* Sets *out (malloc'd, ascending) to the sequence numbers held; returns their count. */
size_t bl_ledger_ids_seqs(const bl_ledger_ids_t *s, uint64_t **out);
void bl_ledger_ids_free(bl_ledger_ids_t *s);

/* Runs the checks of `byline audit verify` over one segment held in
 * p[0..n) (a torn last line is skipped) with verifier v (borrowed), no
 * trusted checkpoint. Returns the number of failures found, or BL_ERROR.
 * For the fuzzer and tests. */
int bl_audit_verify_mem(const char *p, size_t n, const bl_verifier_t *v, int live);

#endif
