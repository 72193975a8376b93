/* audit_ledger.c - shared by `byline audit verify` and `prove` (audit_ledger.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/audit.h"
#include "cli/audit_ledger.h"

int bl_ledger_ctx_init(bl_ledger_ctx_t *c, const char *dir, const char *key, const char *origin, char *err,
                       size_t cap)
{
    bl_buf_t e;
    int rc = BL_ERROR;
    memset(c, 0, sizeof(*c));
    bl_buf_init(&e, 512);
    if (bl_audit_dir_of(dir, c->audit_dir, sizeof(c->audit_dir)) != BL_OK) {
        snprintf(err, cap, "%s: the audit directory's path is too long", dir);
        goto end;
    }
    if ((size_t)snprintf(c->key_path, sizeof(c->key_path), "%s%s%s", key ? key : dir, key ? "" : "/",
                         key ? "" : "audit-signing.pub") >= sizeof(c->key_path)) {
        snprintf(err, cap, "the key's path is too long");
        goto end;
    }
    if (origin && (size_t)snprintf(c->origin, sizeof(c->origin), "%s", origin) >= sizeof(c->origin)) {
        snprintf(err, cap, "--origin is longer than 255 bytes");
        goto end;
    }
    /* load now, so a missing or wrong key is said before anything else */
    bl_verifier_t *v = bl_verifier_load(c->key_path, origin ? origin : "byline", &e);
    if (v == NULL) {
        snprintf(err, cap, "public key: %s", bl_buf_cstr(&e));
        goto end;
    }
    if (origin)
        c->v = v;
    else
        bl_verifier_free(v);
    rc = BL_OK;
end:
    bl_buf_free(&e);
    return rc;
}

int bl_ledger_verifier(bl_ledger_ctx_t *c, const char *note, size_t n, char *err, size_t cap)
{
    const char *why = NULL;
    bl_buf_t o, e;
    int rc = BL_ERROR;
    if (c->v)
        return BL_OK;
    bl_buf_init(&o, sizeof(c->origin) - 1);
    bl_buf_init(&e, 512);
    if (bl_note_origin(note, n, &o, &why) != BL_OK) {
        snprintf(err, cap, "not a checkpoint: %s", why);
        goto end;
    }
    memcpy(c->origin, bl_buf_data(&o), bl_buf_size(&o));
    c->origin[bl_buf_size(&o)] = '\0';
    if ((c->v = bl_verifier_load(c->key_path, c->origin, &e)) == NULL) {
        snprintf(err, cap, "public key: %s", bl_buf_cstr(&e));
        c->origin[0] = '\0';
        goto end;
    }
    rc = BL_OK;
end:
    bl_buf_free(&o);
    bl_buf_free(&e);
    return rc;
}

void bl_ledger_ctx_free(bl_ledger_ctx_t *c)
{
    bl_verifier_free(c->v);
    c->v = NULL;
}

int bl_ledger_read_file(const char *path, bl_buf_t *out, char *why, size_t cap)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = BL_ERROR;
    if (fd < 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return errno == ENOENT ? BL_DECLINED : BL_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > out->max) {
        snprintf(why, cap, "not a regular file of at most %zu bytes", out->max);
        goto end;
    }
    for (;;) {
        size_t room;
        char *p = bl_buf_tail(out, 1, &room);
        if (p == NULL || room == 0) {
            snprintf(why, cap, "longer than %zu bytes", out->max);
            goto end;
        }
        ssize_t n = read(fd, p, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, cap, "%s", strerror(errno));
            goto end;
        }
        if (n == 0)
            break;
        bl_buf_commit(out, (size_t)n);
    }
    rc = BL_OK;
end:
    close(fd);
    return rc;
}

/* ---- open intents: open addressing, linear probing, tombstones ---- */

struct bl_ledger_id_s {
    char id[BL_LEDGER_ID_MAX + 1];
    uint8_t state; /* 0 empty, 1 held, 2 deleted */
    uint64_t seq;
};

static size_t bl_ledger_id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; id[i] && i < BL_LEDGER_ID_MAX; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return (size_t)h;
}

static struct bl_ledger_id_s *bl_ledger_ids_find(const bl_ledger_ids_t *s, const char *id, int for_insert)
{
    if (s->cap == 0)
        return NULL;
    struct bl_ledger_id_s *tomb = NULL;
    for (size_t i = bl_ledger_id_hash(id) & (s->cap - 1), k = 0; k < s->cap; i = (i + 1) & (s->cap - 1), k++) {
        struct bl_ledger_id_s *e = &s->slot[i];
        if (e->state == 0)
            return for_insert ? (tomb ? tomb : e) : NULL;
        if (e->state == 2 && tomb == NULL)
            tomb = e;
        if (e->state == 1 && !strncmp(e->id, id, BL_LEDGER_ID_MAX))
            return e;
    }
    return for_insert ? tomb : NULL;
}

static int bl_ledger_ids_grow(bl_ledger_ids_t *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    if (s->live * 2 < s->cap)
        ncap = s->cap; /* mostly tombstones: rehash at the same size */
    struct bl_ledger_id_s *old = s->slot;
    size_t ocap = s->cap;
    if ((s->slot = calloc(ncap, sizeof(*s->slot))) == NULL) {
        s->slot = old;
        return BL_ERROR;
    }
    s->cap = ncap;
    s->used = s->live = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].state == 1) {
            struct bl_ledger_id_s *e = bl_ledger_ids_find(s, old[i].id, 1);
            *e = old[i];
            s->used++;
            s->live++;
        }
    free(old);
    return BL_OK;
}

int bl_ledger_ids_put(bl_ledger_ids_t *s, const char *id, uint64_t seq)
{
    if (s->live >= BL_LEDGER_IDS_MAX)
        return BL_ERROR;
    if ((s->used + 1) * 4 > s->cap * 3 && bl_ledger_ids_grow(s) != BL_OK)
        return BL_ERROR;
    struct bl_ledger_id_s *e = bl_ledger_ids_find(s, id, 1);
    if (e->state == 1) {
        e->seq = seq; /* the same id again: the later intent is the open one */
        return BL_OK;
    }
    if (e->state == 0)
        s->used++;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->state = 1;
    e->seq = seq;
    s->live++;
    return BL_OK;
}

void bl_ledger_ids_del(bl_ledger_ids_t *s, const char *id)
{
    struct bl_ledger_id_s *e = bl_ledger_ids_find(s, id, 0);
    if (e) {
        e->state = 2;
        s->live--;
    }
}

int bl_ledger_ids_get(const bl_ledger_ids_t *s, const char *id, uint64_t *seq)
{
    const struct bl_ledger_id_s *e = bl_ledger_ids_find(s, id, 0);
    if (e == NULL)
        return BL_DECLINED;
    if (seq)
        *seq = e->seq;
    return BL_OK;
}

void bl_ledger_ids_each(const bl_ledger_ids_t *s, void (*fn)(const char *id, uint64_t seq, void *arg), void *arg)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i].state == 1)
            fn(s->slot[i].id, s->slot[i].seq, arg);
}

static int bl_ledger_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

size_t bl_ledger_ids_seqs(const bl_ledger_ids_t *s, uint64_t **out)
{
    size_t n = 0;
    *out = s->live ? malloc(s->live * sizeof(**out)) : NULL;
    if (*out == NULL)
        return 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i].state == 1)
            (*out)[n++] = s->slot[i].seq;
    qsort(*out, n, sizeof(**out), bl_ledger_u64_cmp);
    return n;
}

void bl_ledger_ids_free(bl_ledger_ids_t *s)
{
    free(s->slot);
    memset(s, 0, sizeof(*s));
}
