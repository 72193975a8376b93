/*
 * file.h - whole-file reads with a bound, atomic replacement of small files,
 * and the permission checks byline applies to its configuration and secrets.
 *
 * Used by the configuration loader, the PEM helpers and the CLI; nothing
 * here is on a request path.
 */
#ifndef BL_CONFIG_FILE_H
#define BL_CONFIG_FILE_H

#include <sys/types.h>
#include <time.h>
#include "core/buf.h"

/*
 * Appends the contents of the regular file at `path` to `out`. Returns
 * BL_OK, or BL_ERROR with a reason ("path: No such file or directory",
 * "path: larger than N bytes", ...) appended to `err` as one line. A file
 * larger than `max` bytes is an error, not a truncation.
 */
int bl_file_read(const char *path, size_t max, bl_buf_t *out, bl_buf_t *err);

/*
 * Replaces `path` with `data` atomically: writes a temporary file in the
 * same directory (created with `mode`), fsyncs it, renames it over `path`
 * and fsyncs the directory, so a reader sees the old or the new content,
 * never a mix, even after a crash. Returns BL_OK or BL_ERROR with a reason
 * appended to `err`; the temporary file is removed on failure.
 */
int bl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         bl_buf_t *err);

/*
 * Returns a newly allocated absolute form of `path`: unchanged if it starts
 * with '/', else `base` + "/" + `path` (base NULL: the current directory).
 * Symbolic links are deliberately not resolved: a Kubernetes-projected
 * secret is a symlink into a directory the kubelet swaps on rotation, and
 * byline must keep following the link. Returns NULL when out of memory or
 * when the current directory cannot be determined. Caller frees.
 */
char *bl_file_abspath(const char *base, const char *path);

/* Formats a path into out[cap]. Returns BL_OK, or BL_ERROR if it does not
 * fit (out then holds a truncated, unusable path). */
int bl_file_pathf(char *out, size_t cap, const char *fmt, ...) BL_PRINTF(3, 4);

#define BL_PATH_MAX 4096

/* What identifies one version of a file, for noticing that it changed:
 * a change to any field is a change. */
typedef struct {
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} bl_filesig_t;

/* Fills *s from stat(path) (following symlinks); exists = 0 when there is
 * no such file or `path` is empty. */
void bl_filesig(const char *path, bl_filesig_t *s);

/* Returns 1 if both describe the same version of the file, else 0. */
int bl_filesig_eq(const bl_filesig_t *a, const bl_filesig_t *b);

/* Permission findings for bl_file_check(); a bit set means "problem". */
enum {
    BL_FILE_MISSING = 1 << 0,        /* stat failed (errno kept) */
    BL_FILE_NOT_REGULAR = 1 << 1,    /* not a regular file */
    BL_FILE_NOT_DIR = 1 << 2,        /* not a directory (when a dir was asked for) */
    BL_FILE_UNREADABLE = 1 << 3,     /* access(R_OK) fails for us */
    BL_FILE_OTHER_WRITABLE = 1 << 4, /* group- or world-writable (on a writable mount) */
    BL_FILE_OTHER_READABLE = 1 << 5  /* group- or world-readable */
};

/*
 * Stats `path` (following symlinks) and returns a mask of BL_FILE_* bits:
 * 0 means a readable regular file (or directory if `want_dir`) that only
 * its owner may write or read. errno is that of the failing call when
 * BL_FILE_MISSING or BL_FILE_UNREADABLE is set.
 */
unsigned bl_file_check(const char *path, int want_dir);

#endif
