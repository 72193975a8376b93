/*
 * writer.h - appends audit lines to DIR/audit.jsonl.
 *
 * Shared by all worker threads. Each line goes out in one write(2) under
 * a mutex, so lines never interleave. The first failed or short write
 * latches the writer into the failed state: every later call fails too,
 * and the gateway refuses requests rather than forward them unaudited.
 */
#ifndef BL_AUDIT_WRITER_H
#define BL_AUDIT_WRITER_H

#include "core/buf.h"

#define BL_AUDIT_FILE "audit.jsonl"

typedef struct bl_auditlog_s bl_auditlog_t;

/* Creates `dir` (0700) if needed and opens DIR/audit.jsonl for appending
 * (0600). Returns the writer, or NULL with the reason in `err`. */
bl_auditlog_t *bl_auditlog_open(const char *dir, bl_buf_t *err);

/* Appends p[0..n) (whole lines). Returns BL_OK, or BL_ERROR if the line is
 * not on disk (the writer is then latched failed; see bl_auditlog_failed). */
int bl_auditlog_write(bl_auditlog_t *w, const char *p, size_t n);

/* Returns NULL while healthy, else why the writer latched failed. */
const char *bl_auditlog_failed(bl_auditlog_t *w);

/* Closes the file and frees the writer. NULL is fine. */
void bl_auditlog_close(bl_auditlog_t *w);

#endif
