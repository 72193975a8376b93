/*
 * reader.h - walking the ledger's segments line by line, in order
 * (docs/AUDIT-FORMAT.md section 1). Used by recovery, verify, prove, tail,
 * join and query. It reads; it never writes.
 */
#ifndef BL_AUDIT_READER_H
#define BL_AUDIT_READER_H

#include <stdint.h>
#include "core/buf.h"

typedef struct bl_reader_s bl_reader_t;

typedef struct {
    const char *p;        /* the line's bytes, without the '\n'; valid until the next call */
    size_t len;
    unsigned segment;     /* segment number (1 for ledger-000001.jsonl) */
    uint64_t offset;      /* byte offset of the line in its segment */
    uint64_t lineno;      /* 1-based line number in its segment */
    int torn;             /* 1: the bytes after its segment's last '\n' (a torn write in the
                           * newest segment; damage in an earlier one: the caller judges) */
} bl_line_t;

#define BL_READER_MAX_LINE (8u << 20) /* a longer line is an error, not a crash */

/* Opens the ledger in `dir` (segments ledger-*.jsonl). Returns the reader,
 * or NULL with the reason (no directory; a gap in segment numbers is
 * reported by bl_reader_next as an error). */
bl_reader_t *bl_reader_open(const char *dir, bl_buf_t *err);

/*
 * Starts at segment `segment`, byte `offset`, which must be the start of a
 * line (0, or just after a '\n'; otherwise BL_ERROR saying so). `lineno`
 * is the 1-based number of the line at `offset` when the caller knows it
 * (the index stores it): the reader then jumps there, reading one byte to
 * check it is a line start. With `lineno` 0 it counts the lines before
 * `offset` by reading the segment up to it (up to a whole segment).
 * Returns BL_OK or BL_ERROR with the reason in `err`.
 */
int bl_reader_seek(bl_reader_t *r, unsigned segment, uint64_t offset, uint64_t lineno, bl_buf_t *err);

/* Returns BL_OK with the next line, BL_DECLINED at the end, BL_ERROR with
 * the reason (I/O error, line too long, missing segment). After a missing
 * segment or a line longer than BL_READER_MAX_LINE the next call goes on
 * after it (the next segment found; the line after the long one). */
int bl_reader_next(bl_reader_t *r, bl_line_t *line, bl_buf_t *err);

/* Number of segments found. */
unsigned bl_reader_segments(const bl_reader_t *r);

/* Returns the number of the i-th segment found (0-based, ascending; i below
 * bl_reader_segments), or 0 for an i past them. Numbers may have gaps. */
unsigned bl_reader_segment(const bl_reader_t *r, unsigned i);

void bl_reader_close(bl_reader_t *r);

/* Writes the path of segment `n` in `dir` into out (cap bytes). */
void bl_segment_path(const char *dir, unsigned n, char *out, size_t cap);

#endif
