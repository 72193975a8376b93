/*
 * buf.h - a growable byte buffer with a hard upper bound.
 *
 * Invariants: 0 <= off <= len <= cap <= max. Bytes [off, len) are the
 * unread payload; [0, off) has been consumed and is reclaimed lazily.
 * The buffer owns `base`; bl_buf_free() releases it.
 */
#ifndef BL_CORE_BUF_H
#define BL_CORE_BUF_H

#include <stdarg.h>
#include "core/common.h"

typedef struct {
    char *base;
    size_t off;   /* start of unread data */
    size_t len;   /* end of data */
    size_t cap;   /* allocated bytes */
    size_t max;   /* never grow beyond this */
} bl_buf_t;

/* Sets up an empty buffer that may grow to `max` bytes; allocates lazily. */
void bl_buf_init(bl_buf_t *b, size_t max);

/* Releases the memory; the buffer is empty and reusable afterwards. */
void bl_buf_free(bl_buf_t *b);

/* Returns the number of unread bytes. */
static inline size_t bl_buf_size(const bl_buf_t *b) { return b->len - b->off; }

/* Returns a pointer to the unread bytes (valid until the next mutation). */
static inline char *bl_buf_data(const bl_buf_t *b) { return b->base ? b->base + b->off : b->base; }

/* Ensures room for `n` more bytes at the end. Returns BL_OK, or BL_ERROR if
 * that would exceed `max` or memory is exhausted. */
int bl_buf_reserve(bl_buf_t *b, size_t n);

/* Returns the writable tail and its size after reserving at least `min`
 * bytes (up to the bound); *room is 0 if the buffer is full. Commit with
 * bl_buf_commit(). */
char *bl_buf_tail(bl_buf_t *b, size_t min, size_t *room);

/* Marks `n` bytes written at the tail as data. */
static inline void bl_buf_commit(bl_buf_t *b, size_t n) { b->len += n; }

/* Drops `n` unread bytes from the front. */
void bl_buf_consume(bl_buf_t *b, size_t n);

/* Empties the buffer but keeps its memory. */
static inline void bl_buf_reset(bl_buf_t *b) { b->off = b->len = 0; }

/* Appends bytes. Returns BL_OK or BL_ERROR (bound exceeded / OOM). */
int bl_buf_append(bl_buf_t *b, const void *p, size_t n);

static inline int bl_buf_puts(bl_buf_t *b, const char *s) { return bl_buf_append(b, s, strlen(s)); }
static inline int bl_buf_putstr(bl_buf_t *b, bl_str_t s) { return bl_buf_append(b, s.p, s.len); }

/* Appends `v` in decimal / lower-case hex. Returns BL_OK or BL_ERROR.
 * (The hot paths use these and bl_buf_field rather than printf.) */
int bl_buf_putu64(bl_buf_t *b, uint64_t v);
int bl_buf_puthex(bl_buf_t *b, uint64_t v);

/* Appends an HTTP field line "name: value\r\n". Returns BL_OK or BL_ERROR. */
int bl_buf_field(bl_buf_t *b, bl_str_t name, bl_str_t value);

/* Appends printf-formatted text. Returns BL_OK or BL_ERROR. */
int bl_buf_printf(bl_buf_t *b, const char *fmt, ...) BL_PRINTF(2, 3);
int bl_buf_vprintf(bl_buf_t *b, const char *fmt, va_list ap) BL_PRINTF(2, 0);

/* Appends `s` as a JSON string literal with quotes, in RFC 8785 canonical
 * form: only '"', '\\' and control bytes are escaped (\b \t \n \f \r, else
 * \u00xx); valid UTF-8 is copied; an invalid byte becomes U+FFFD (raw).
 * Returns BL_OK or BL_ERROR. */
int bl_buf_json_str(bl_buf_t *b, const char *s, size_t n);

/* Returns a NUL-terminated copy of the unread data, owned by the buffer
 * (valid until the next mutation), or NULL when out of room. */
const char *bl_buf_cstr(bl_buf_t *b);

#endif
