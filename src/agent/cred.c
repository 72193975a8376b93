/* cred.c - the credential sources that need no cloud: see cred.h. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include "agent/cred.h"
#include "config/file.h"

#define BL_CRED_RECHECK_MS 5000

typedef struct {
    bl_cred_t base;
    char *path;                 /* token_file only */
    bl_buf_t line;              /* "Authorization: Bearer ...\r\n" */
    struct timespec mtime;
    off_t size;
    uint64_t checked;           /* monotonic ms of the last stat() */
} bl_tokcred_t;

static uint64_t bl_cred_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Builds the header line for token[0..n) into `line`. Returns BL_OK, or
 * BL_ERROR for an empty token or one with bytes that could end a header. */
static int bl_cred_line(bl_buf_t *line, const char *tok, size_t n)
{
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t'))
        n--;
    while (n > 0 && (*tok == ' ' || *tok == '\t')) {
        tok++;
        n--;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tok[i] <= 0x20 || tok[i] == 0x7f)
            return BL_ERROR;
    if (n == 0)
        return BL_ERROR;
    bl_buf_reset(line);
    return bl_buf_puts(line, "Authorization: Bearer ") | bl_buf_append(line, tok, n) | bl_buf_puts(line, "\r\n")
               ? BL_ERROR : BL_OK;
}

static void bl_tokcred_free(bl_cred_t *base)
{
    bl_tokcred_t *c = (bl_tokcred_t *)base;
    if (c->line.base)
        OPENSSL_cleanse(c->line.base, c->line.cap);
    bl_buf_free(&c->line);
    free(c->path);
    free(c);
}

/* Re-reads the token file into c->line. Returns BL_OK or BL_ERROR (err). */
static int bl_tokcred_load(bl_tokcred_t *c, bl_buf_t *err)
{
    bl_buf_t tok, line;
    int rc = BL_ERROR;
    bl_buf_init(&tok, BL_CRED_TOKEN_MAX + 1);
    bl_buf_init(&line, BL_CRED_TOKEN_MAX + 64);
    if (bl_file_read(c->path, BL_CRED_TOKEN_MAX, &tok, err) != BL_OK)
        goto end;
    if (bl_cred_line(&line, bl_buf_data(&tok), bl_buf_size(&tok)) != BL_OK) {
        bl_buf_printf(err, "%s holds no usable bearer token", c->path);
        goto end;
    }
    bl_buf_t old = c->line;
    c->line = line;
    line = old;
    rc = BL_OK;
end:
    if (tok.base)
        OPENSSL_cleanse(tok.base, tok.cap);
    if (line.base)
        OPENSSL_cleanse(line.base, line.cap);
    bl_buf_free(&tok);
    bl_buf_free(&line);
    return rc;
}

static int bl_tokcred_header(bl_cred_t *base, bl_buf_t *out, bl_buf_t *err)
{
    bl_tokcred_t *c = (bl_tokcred_t *)base;
    uint64_t now = bl_cred_now();
    struct stat st;
    if (c->path && now - c->checked >= BL_CRED_RECHECK_MS) {
        c->checked = now;
        if (stat(c->path, &st) == 0 && (st.st_size != c->size || st.st_mtim.tv_sec != c->mtime.tv_sec ||
                                         st.st_mtim.tv_nsec != c->mtime.tv_nsec)) {
            bl_buf_t why;
            bl_buf_init(&why, 512);
            if (bl_tokcred_load(c, &why) == BL_OK) {
                c->mtime = st.st_mtim;
                c->size = st.st_size;
            }
            bl_buf_free(&why); /* a half-written rotation: keep the previous token, retry later */
        }
    }
    if (bl_buf_size(&c->line) == 0) {
        bl_buf_printf(err, "no bearer token");
        return BL_ERROR;
    }
    return bl_buf_append(out, bl_buf_data(&c->line), bl_buf_size(&c->line));
}

static const bl_cred_ops_t bl_token_ops = { "token", bl_tokcred_header, bl_tokcred_free, NULL };
static const bl_cred_ops_t bl_token_file_ops = { "token_file", bl_tokcred_header, bl_tokcred_free, NULL };

bl_cred_t *bl_cred_token(const char *token, bl_buf_t *err)
{
    bl_tokcred_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base.ops = &bl_token_ops;
    bl_buf_init(&c->line, BL_CRED_TOKEN_MAX + 64);
    if (strlen(token) > BL_CRED_TOKEN_MAX || bl_cred_line(&c->line, token, strlen(token)) != BL_OK) {
        bl_buf_printf(err, "the token is empty, too long or holds control characters");
        bl_tokcred_free(&c->base);
        return NULL;
    }
    return &c->base;
}

bl_cred_t *bl_cred_token_file(const char *path, bl_buf_t *err)
{
    bl_tokcred_t *c = calloc(1, sizeof(*c));
    struct stat st;
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        return NULL;
    }
    c->base.ops = &bl_token_file_ops;
    bl_buf_init(&c->line, BL_CRED_TOKEN_MAX + 64);
    if (stat(path, &st) == 0) {
        c->mtime = st.st_mtim;
        c->size = st.st_size;
    }
    c->checked = bl_cred_now();
    if (bl_tokcred_load(c, err) != BL_OK) {
        bl_tokcred_free(&c->base);
        return NULL;
    }
    return &c->base;
}

static int bl_nocred_header(bl_cred_t *c, bl_buf_t *out, bl_buf_t *err)
{
    (void)c;
    (void)out;
    (void)err;
    return BL_OK;
}

static void bl_nocred_free(bl_cred_t *c)
{
    free(c);
}

bl_cred_t *bl_cred_none(const char *kind)
{
    typedef struct { bl_cred_t base; bl_cred_ops_t ops; } bl_nocred_t;
    bl_nocred_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ops = (bl_cred_ops_t){ kind, bl_nocred_header, bl_nocred_free, NULL };
    c->base.ops = &c->ops;
    return &c->base;
}
