/* file.c - bounded whole-file reads, atomic replacement, permission checks. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "config/file.h"

int bl_file_read(const char *path, size_t max, bl_buf_t *out, bl_buf_t *err)
{
    int rc = BL_ERROR;
    struct stat st;
    /* O_NONBLOCK: opening a FIFO must not hang the loader before the
     * regular-file check below refuses it (no effect on regular files). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        bl_buf_printf(err, "%s: %s\n", path, strerror(errno));
        return BL_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bl_buf_printf(err, "%s: not a regular file\n", path);
        goto end;
    }
    /* The stat size is only a hint (the file may grow); the loop enforces max. */
    size_t got = 0;
    for (;;) {
        size_t room;
        char *p = bl_buf_tail(out, 4096, &room);
        if (p == NULL) {
            bl_buf_printf(err, "%s: larger than %zu bytes\n", path, max);
            goto end;
        }
        ssize_t n = read(fd, p, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bl_buf_printf(err, "%s: %s\n", path, strerror(errno));
            goto end;
        }
        if (n == 0)
            break;
        bl_buf_commit(out, (size_t)n);
        got += (size_t)n;
        if (got > max) {
            bl_buf_printf(err, "%s: larger than %zu bytes\n", path, max);
            goto end;
        }
    }
    rc = BL_OK;
end:
    close(fd);
    return rc;
}

/* Writes all of data to fd. Returns BL_OK or BL_ERROR (errno set). */
static int bl_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return BL_ERROR;
        data += n;
        len -= (size_t)n;
    }
    return BL_OK;
}

/* fsyncs the directory holding `path` so a rename in it is durable. */
static int bl_fsync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    if (n >= sizeof(dir))
        return BL_ERROR;
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return BL_ERROR;
    int rc = fsync(fd) == 0 ? BL_OK : BL_ERROR;
    close(fd);
    return rc;
}

int bl_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         bl_buf_t *err)
{
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int n = snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp.XXXXXX", (int)(base - path), path, base);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        bl_buf_printf(err, "%s: path too long\n", path);
        return BL_ERROR;
    }
    int fd = mkostemp(tmp, O_CLOEXEC); /* created 0600 */
    if (fd < 0) {
        bl_buf_printf(err, "%s: cannot create a temporary file: %s\n", path, strerror(errno));
        return BL_ERROR;
    }
    if (fchmod(fd, mode) != 0 || bl_write_all(fd, data, len) != BL_OK || fsync(fd) != 0) {
        bl_buf_printf(err, "%s: %s\n", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        bl_buf_printf(err, "%s: %s\n", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        bl_buf_printf(err, "%s: %s\n", path, strerror(errno));
        goto fail;
    }
    if (bl_fsync_parent(path) != BL_OK) {
        bl_buf_printf(err, "%s: cannot sync its directory: %s\n", path, strerror(errno));
        return BL_ERROR; /* the rename happened; nothing to remove */
    }
    return BL_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return BL_ERROR;
}

char *bl_file_abspath(const char *base, const char *path)
{
    char cwd[4096];
    if (path[0] == '/')
        return strdup(path);
    if (base == NULL) {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return NULL;
        base = cwd;
    }
    size_t bl = strlen(base), pl = strlen(path);
    while (bl > 1 && base[bl - 1] == '/')
        bl--;
    while (pl > 2 && path[0] == '.' && path[1] == '/') {
        path += 2;
        pl -= 2;
    }
    if (pl == 1 && path[0] == '.')
        pl = 0;
    char *out = malloc(bl + pl + 2);
    if (out == NULL)
        return NULL;
    memcpy(out, base, bl);
    size_t n = bl;
    if (pl > 0) {
        if (n == 0 || out[n - 1] != '/')
            out[n++] = '/';
        memcpy(out + n, path, pl);
        n += pl;
    }
    out[n] = '\0';
    return out;
}

int bl_file_pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap ? BL_OK : BL_ERROR;
}

unsigned bl_file_check(const char *path, int want_dir)
{
    struct stat st;
    unsigned r = 0;
    if (stat(path, &st) != 0)
        return BL_FILE_MISSING;
    if (want_dir && !S_ISDIR(st.st_mode))
        r |= BL_FILE_NOT_DIR;
    if (!want_dir && !S_ISREG(st.st_mode))
        r |= BL_FILE_NOT_REGULAR;
    /* Write bits mean nothing on a read-only mount (a Kubernetes ConfigMap
     * volume shows 0777 directories that nobody can write). */
    struct statvfs vfs;
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
        !(statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)))
        r |= BL_FILE_OTHER_WRITABLE;
    if (st.st_mode & (S_IRGRP | S_IROTH))
        r |= BL_FILE_OTHER_READABLE;
    int saved = errno;
    if (access(path, want_dir ? R_OK | X_OK : R_OK) != 0) {
        saved = errno;
        r |= BL_FILE_UNREADABLE;
    }
    errno = saved;
    return r;
}

void bl_filesig(const char *path, bl_filesig_t *s)
{
    struct stat st;
    memset(s, 0, sizeof(*s));
    if (path[0] == '\0' || stat(path, &st) != 0)
        return;
    s->exists = 1;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
}

int bl_filesig_eq(const bl_filesig_t *a, const bl_filesig_t *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}
