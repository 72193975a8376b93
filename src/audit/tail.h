/*
 * tail.h - reading the ledger back for people: the newest requests, each
 * intent joined with its result (or aborted entry), rendered as
 * `ts=... actor=... action="..." connection=... result=...` or as JSON.
 */
#ifndef BL_AUDIT_TAIL_H
#define BL_AUDIT_TAIL_H

#include <stdio.h>
#include "core/buf.h"

/* Output styles for bl_audit_tail(). */
enum { BL_TAIL_TEXT = 0, BL_TAIL_JSON = 1 };

/*
 * Prints the newest `n` requests (and gateway notices) in the ledger in
 * audit directory `dir` to `out`, oldest first, ordered by where each
 * started (its intent) and each with its outcome. Reads from the end of
 * the newest segment backwards, only as far as those n need. Returns
 * BL_OK, BL_DECLINED if there is no ledger yet, or BL_ERROR with the
 * reason in `err` (a read error, or a segment missing before the n were
 * found). Lines read that are not ledger lines are counted in *skipped.
 */
int bl_audit_tail(const char *dir, size_t n, int style, FILE *out, size_t *skipped, bl_buf_t *err);

/* Follows the ledger from its current end (across segment rotations),
 * printing each request as its result arrives, until interrupted.
 * Returns BL_ERROR if it cannot be read. */
int bl_audit_follow(const char *dir, int style, FILE *out, bl_buf_t *err);

/* Renders one merged request (or notice) as a text line into `b`. */
void bl_audit_render_text(const void *json_rec, bl_buf_t *b);

#endif
