/*
 * tail.h - reading the audit log back: the newest requests, each intent
 * line joined with its result line, rendered for people or as JSON.
 */
#ifndef BL_AUDIT_TAIL_H
#define BL_AUDIT_TAIL_H

#include <stdio.h>
#include "core/buf.h"

/* Output styles for bl_audit_tail(). */
enum { BL_TAIL_TEXT = 0, BL_TAIL_JSON = 1 };

/*
 * Prints the newest `n` requests recorded in `path` to `out`, oldest
 * first. Text style is `ts=... actor=... action="..." connection=...
 * result=...` followed by status, reason and id. Returns BL_OK,
 * BL_DECLINED if the file does not exist yet, or BL_ERROR with the reason
 * in `err` (unreadable file). Lines that are not
 * valid records are skipped and counted in *skipped (may be NULL).
 */
int bl_audit_tail(const char *path, size_t n, int style, FILE *out, size_t *skipped, bl_buf_t *err);

/* Follows `path` from its current end, printing each request as its
 * result arrives, until interrupted. Returns BL_ERROR if unreadable. */
int bl_audit_follow(const char *path, int style, FILE *out, bl_buf_t *err);

#endif
