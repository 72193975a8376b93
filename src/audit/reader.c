/*
 * reader.c - the ledger's segments as one stream of lines
 * (docs/AUDIT-FORMAT.md section 1).
 *
 * Segments are found once, at open: names "ledger-NNNNNN.jsonl" with the
 * number written as "%06u" (six or more digits, no extra leading zeros).
 * They are read in numeric order from 1; a missing number is reported once
 * by bl_reader_next, and the call after that goes on with the next segment
 * that exists, so a verifier can report what follows the gap too.
 *
 * A line never spans two segments. Bytes after a segment's last '\n' are
 * returned as one more line with torn = 1: in the last segment that is a
 * write cut short (or, on a running gateway, one still being written); in
 * an earlier one it is damage for the caller to report.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/reader.h"

#define BL_READER_CHUNK (64u * 1024)
#define BL_READER_MAX_SEGMENTS 1000000u /* a 1 GiB segment each: far past any disk */

struct bl_reader_s {
    char *dir;
    unsigned *seg;      /* segment numbers found, ascending */
    unsigned nseg;
    unsigned idx;       /* index in seg[] of the open segment, or nseg when done */
    unsigned expect;    /* the segment number that should come next */
    int fd;             /* the open segment, or -1 */
    char *buf;          /* [start, end) unread bytes of the open segment */
    size_t cap, start, end;
    uint64_t buf_off;   /* segment offset of buf[start] */
    uint64_t lineno;    /* lines returned from the open segment */
    int eof;            /* the open segment has no more bytes */
    int skipping;       /* discarding the rest of an over-long line */
};

void bl_segment_path(const char *dir, unsigned n, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s/ledger-%06u.jsonl", dir, n) >= cap && cap > 0)
        out[0] = '\0';
}

/* Returns the segment number of a canonical segment name, 0 if `name` is
 * not a segment, -1 if it looks like one but is not canonical. */
static long bl_reader_segno(const char *name)
{
    size_t n = strlen(name);
    if (n < 7 + 1 + 6 || strncmp(name, "ledger-", 7) != 0 || strcmp(name + n - 6, ".jsonl") != 0)
        return 0;
    size_t digits = n - 7 - 6;
    unsigned long v = 0;
    for (size_t i = 0; i < digits; i++) {
        unsigned d = (unsigned char)name[7 + i] - '0';
        if (d > 9)
            return 0;
        if (v > BL_READER_MAX_SEGMENTS)
            return -1;
        v = v * 10 + d;
    }
    char canon[32];
    snprintf(canon, sizeof(canon), "%06lu", v);
    if (v == 0 || v > BL_READER_MAX_SEGMENTS || strlen(canon) != digits)
        return -1;
    return (long)v;
}

static int bl_reader_cmp(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* Lists the segments of r->dir into r->seg. Returns BL_OK or BL_ERROR. */
static int bl_reader_scan(bl_reader_t *r, bl_buf_t *err)
{
    DIR *d = opendir(r->dir);
    unsigned cap = 0;
    int rc = BL_ERROR;
    if (d == NULL) {
        bl_buf_printf(err, "%s: %s", r->dir, strerror(errno));
        return BL_ERROR;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long v = bl_reader_segno(e->d_name);
        if (v < 0) {
            bl_buf_printf(err, "%s/%s: not a segment name (ledger-%%06u.jsonl, at most %u)", r->dir, e->d_name,
                          BL_READER_MAX_SEGMENTS);
            goto end;
        }
        if (v == 0)
            continue;
        if (r->nseg == cap) {
            unsigned ncap = cap ? cap * 2 : 16;
            unsigned *p = ncap <= 2 * BL_READER_MAX_SEGMENTS ? realloc(r->seg, ncap * sizeof(*p)) : NULL;
            if (p == NULL) {
                bl_buf_printf(err, "%s: too many segments", r->dir);
                goto end;
            }
            r->seg = p;
            cap = ncap;
        }
        r->seg[r->nseg++] = (unsigned)v;
    }
    if (r->nseg > 1)
        qsort(r->seg, r->nseg, sizeof(*r->seg), bl_reader_cmp);
    rc = BL_OK;
end:
    closedir(d);
    return rc;
}

bl_reader_t *bl_reader_open(const char *dir, bl_buf_t *err)
{
    bl_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->dir = strdup(dir)) == NULL) {
        bl_buf_puts(err, "out of memory");
        goto fail;
    }
    r->fd = -1;
    r->expect = 1;
    if (bl_reader_scan(r, err) != BL_OK)
        goto fail;
    return r;
fail:
    bl_reader_close(r);
    return NULL;
}

unsigned bl_reader_segments(const bl_reader_t *r)
{
    return r->nseg;
}

unsigned bl_reader_segment(const bl_reader_t *r, unsigned i)
{
    return i < r->nseg ? r->seg[i] : 0;
}

void bl_reader_close(bl_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    free(r->seg);
    free(r->dir);
    free(r);
}

/* Opens segment seg[idx] (a regular file) at the start. */
static int bl_reader_open_seg(bl_reader_t *r, unsigned idx, bl_buf_t *err)
{
    char path[4096];
    struct stat st;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->idx = idx;
    r->start = r->end = 0;
    r->buf_off = r->lineno = 0;
    r->eof = r->skipping = 0;
    bl_segment_path(r->dir, r->seg[idx], path, sizeof(path));
    r->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bl_buf_printf(err, "%s: %s", path, r->fd < 0 ? strerror(errno) : "not a regular file");
        r->eof = 1;
        return BL_ERROR;
    }
    return BL_OK;
}

/* Reads more of the open segment into the buffer (compacting, growing up
 * to one maximal line plus a chunk). Returns BL_OK, BL_DECLINED at end of
 * file, BL_ERROR on an I/O error. */
static int bl_reader_fill(bl_reader_t *r, bl_buf_t *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < BL_READER_CHUNK) {
        size_t ncap = r->cap ? r->cap * 2 : 2 * BL_READER_CHUNK;
        if (ncap > BL_READER_MAX_LINE + 2 * BL_READER_CHUNK)
            ncap = BL_READER_MAX_LINE + 2 * BL_READER_CHUNK;
        if (ncap > r->cap) {
            char *p = realloc(r->buf, ncap);
            if (p == NULL) {
                bl_buf_puts(err, "out of memory");
                return BL_ERROR;
            }
            r->buf = p;
            r->cap = ncap;
        }
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bl_buf_printf(err, "segment %06u: read: %s", r->seg[r->idx], strerror(errno));
            return BL_ERROR;
        }
        if (n == 0) {
            r->eof = 1;
            return BL_DECLINED;
        }
        r->end += (size_t)n;
        return BL_OK;
    }
}

/* Moves to the next segment. Returns BL_OK, BL_DECLINED after the last,
 * BL_ERROR for a gap (reported once; the next call goes on after it). */
static int bl_reader_advance(bl_reader_t *r, bl_buf_t *err)
{
    unsigned idx = r->fd >= 0 || r->eof ? r->idx + 1 : r->idx;
    if (idx >= r->nseg) {
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        r->idx = r->nseg;
        r->eof = 0;
        return BL_DECLINED;
    }
    if (r->seg[idx] != r->expect) {
        bl_buf_printf(err, "segment ledger-%06u.jsonl is missing (the next one found is %06u)", r->expect,
                      r->seg[idx]);
        r->expect = r->seg[idx];
        return BL_ERROR;
    }
    r->expect++;
    return bl_reader_open_seg(r, idx, err);
}

/* Returns the line at buf[start] if complete, torn at end of file. */
static int bl_reader_take(bl_reader_t *r, bl_line_t *line, const char *nl)
{
    size_t len = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
    line->p = r->buf + r->start;
    line->len = len;
    line->segment = r->seg[r->idx];
    line->offset = r->buf_off;
    line->lineno = ++r->lineno;
    line->torn = nl == NULL;
    size_t adv = nl ? len + 1 : len;
    r->start += adv;
    r->buf_off += adv;
    return BL_OK;
}

int bl_reader_next(bl_reader_t *r, bl_line_t *line, bl_buf_t *err)
{
    if (r->idx >= r->nseg)
        return BL_DECLINED;
    for (;;) {
        if (r->fd < 0) {
            int rc = bl_reader_advance(r, err);
            if (rc != BL_OK)
                return rc;
        }
        const char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        if (r->skipping && nl) { /* the end of an over-long line: drop it, go on after it */
            r->buf_off += (uint64_t)(nl + 1 - (r->buf + r->start));
            r->start = (size_t)(nl + 1 - r->buf);
            r->skipping = 0;
            continue;
        }
        size_t have = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
        if (!r->skipping && have <= BL_READER_MAX_LINE && nl)
            return bl_reader_take(r, line, nl);
        if (have > BL_READER_MAX_LINE || r->skipping) {
            if (!r->skipping) {
                bl_buf_printf(err, "segment %06u line %llu (offset %llu) is longer than %u bytes", r->seg[r->idx],
                              (unsigned long long)r->lineno + 1, (unsigned long long)r->buf_off, BL_READER_MAX_LINE);
                r->lineno++;
                r->skipping = 1; /* dropped up to its '\n', wherever that is */
                return BL_ERROR;
            }
            r->buf_off += r->end - r->start;
            r->start = r->end;
        }
        int rc = r->eof ? BL_DECLINED : bl_reader_fill(r, err);
        if (rc == BL_ERROR)
            return BL_ERROR;
        if (rc == BL_DECLINED) {
            if (r->end > r->start && !r->skipping)
                return bl_reader_take(r, line, NULL);
            close(r->fd);
            r->fd = -1; /* r->eof stays set: advance moves past this segment */
        }
    }
}

/* Returns the number of '\n' in p[0..n). */
static uint64_t bl_reader_count_nl(const char *p, size_t n)
{
    uint64_t c = 0;
    for (const char *end = p + n; n > 0 && (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        c++;
    return c;
}

/* Says why `offset` cannot be sought to: past the end (`shorter`) or not
 * at a line start. Returns BL_ERROR. */
static int bl_reader_bad_offset(const bl_reader_t *r, uint64_t offset, int shorter, bl_buf_t *err)
{
    if (shorter)
        bl_buf_printf(err, "segment %06u is shorter than offset %llu", r->seg[r->idx], (unsigned long long)offset);
    else
        bl_buf_printf(err, "offset %llu of segment %06u is not at the start of a line", (unsigned long long)offset,
                      r->seg[r->idx]);
    return BL_ERROR;
}

/* Counts lines in [0, offset) of the open segment; the byte before offset
 * must be '\n'. Returns BL_OK or BL_ERROR. */
static int bl_reader_skip_to(bl_reader_t *r, uint64_t offset, bl_buf_t *err)
{
    char last = '\n';
    while (r->buf_off + (r->end - r->start) < offset) {
        if (r->end > r->start) {
            r->lineno += bl_reader_count_nl(r->buf + r->start, r->end - r->start);
            last = r->buf[r->end - 1];
        }
        r->buf_off += r->end - r->start;
        r->start = r->end;
        int rc = bl_reader_fill(r, err);
        if (rc == BL_ERROR)
            return BL_ERROR;
        if (rc == BL_DECLINED)
            return bl_reader_bad_offset(r, offset, 1, err);
    }
    size_t k = (size_t)(offset - r->buf_off);
    if (k > 0) {
        r->lineno += bl_reader_count_nl(r->buf + r->start, k);
        last = r->buf[r->start + k - 1];
    }
    r->start += k;
    r->buf_off = offset;
    if (last != '\n')
        return bl_reader_bad_offset(r, offset, 0, err);
    return BL_OK;
}

/* Positions the open segment at `offset` without reading up to it: the
 * byte before must be '\n' (one pread), the segment at least that long.
 * Returns BL_OK or BL_ERROR. */
static int bl_reader_jump_to(bl_reader_t *r, uint64_t offset, bl_buf_t *err)
{
    struct stat st;
    char last = '\n';
    if (fstat(r->fd, &st) != 0 || (uint64_t)st.st_size < offset)
        return bl_reader_bad_offset(r, offset, 1, err);
    if (offset > 0 && pread(r->fd, &last, 1, (off_t)offset - 1) != 1) {
        bl_buf_printf(err, "segment %06u: read: %s", r->seg[r->idx], strerror(errno));
        return BL_ERROR;
    }
    if (last != '\n')
        return bl_reader_bad_offset(r, offset, 0, err);
    if (lseek(r->fd, (off_t)offset, SEEK_SET) < 0) {
        bl_buf_printf(err, "segment %06u: seek: %s", r->seg[r->idx], strerror(errno));
        return BL_ERROR;
    }
    r->buf_off = offset;
    return BL_OK;
}

int bl_reader_seek(bl_reader_t *r, unsigned segment, uint64_t offset, uint64_t lineno, bl_buf_t *err)
{
    unsigned idx = 0;
    while (idx < r->nseg && r->seg[idx] != segment)
        idx++;
    if (idx == r->nseg) {
        bl_buf_printf(err, "segment ledger-%06u.jsonl does not exist", segment);
        return BL_ERROR;
    }
    r->expect = segment + 1;
    if (bl_reader_open_seg(r, idx, err) != BL_OK)
        return BL_ERROR;
    if (lineno == 0) /* unknown: count the lines before offset */
        return offset == 0 ? BL_OK : bl_reader_skip_to(r, offset, err);
    if (bl_reader_jump_to(r, offset, err) != BL_OK)
        return BL_ERROR;
    r->lineno = lineno - 1;
    return BL_OK;
}
