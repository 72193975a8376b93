/* idtable.c - the live identity registry (see idtable.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "audit/record.h"
#include "auth/idtable.h"
#include "auth/lifetime.h"
#include "auth/shared.h"
#include "config/file.h"
#include "core/log.h"
#include "core/metrics.h"

#define BL_RT_BUCKETS 4096
#define BL_RT_MAX     (2 * BL_CONFIG_MAX_IDS) /* names remembered per process */

/* What the gateway learns about one identity name; lives as long as the
 * registry, so it survives reloads and old tables may point at it. */
typedef struct bl_idrt_s {
    char *name;
    _Atomic int64_t last_used;    /* seconds since the epoch; 0 = not in this run or the file */
    pthread_mutex_t mu;           /* guards share */
    bl_share_t *share;            /* allocated on first use */
    struct bl_idrt_s *next;       /* hash chain (main thread only) */
} bl_idrt_t;

struct bl_idtable_s {
    _Atomic long refs;
    const bl_config_t *cfg;
    bl_config_t *owned;           /* freed with the table (NULL for the first, borrowed one) */
    bl_idrt_t **rt;               /* parallel to cfg->ids; an entry may be NULL (bound reached) */
    bl_idreg_t *reg;
};

struct bl_idreg_s {
    pthread_mutex_t mu;           /* guards cur */
    bl_idtable_t *cur;
    _Atomic uint64_t gen;
    _Atomic int dirty;            /* some last_used changed since the last flush */
    char *dir;
    char state_path[BL_PATH_MAX];
    char watch[2][BL_PATH_MAX];   /* byline.yaml, the identities file */
    bl_filesig_t sig[2];
    int64_t checked_ms, flushed_ms;
    bl_idrt_t *buckets[BL_RT_BUCKETS];
    size_t nrt;
};

/* ---- per-name run-time state (main thread) ---- */

static size_t bl_rt_hash(const char *s)
{
    size_t h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % BL_RT_BUCKETS;
}

/* Returns the state for name, creating it. NULL past the bound or OOM. */
static bl_idrt_t *bl_rt_get(bl_idreg_t *reg, const char *name)
{
    size_t b = bl_rt_hash(name);
    for (bl_idrt_t *rt = reg->buckets[b]; rt; rt = rt->next)
        if (!strcmp(rt->name, name))
            return rt;
    if (reg->nrt >= BL_RT_MAX)
        return NULL;
    bl_idrt_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL || (rt->name = strdup(name)) == NULL) {
        free(rt);
        return NULL;
    }
    pthread_mutex_init(&rt->mu, NULL);
    rt->next = reg->buckets[b];
    reg->buckets[b] = rt;
    reg->nrt++;
    return rt;
}

/* ---- tables ---- */

bl_idtable_t *bl_idtable_ref(bl_idtable_t *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void bl_idtable_unref(bl_idtable_t *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(t->rt);
    bl_config_free(t->owned);
    free(t);
}

const bl_config_t *bl_idtable_cfg(const bl_idtable_t *t)
{
    return t->cfg;
}

/* Builds a table over cfg (owned when `owned`); one reference. */
static bl_idtable_t *bl_idtable_new(bl_idreg_t *reg, const bl_config_t *cfg, bl_config_t *owned)
{
    bl_idtable_t *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->rt = calloc(cfg->nids ? cfg->nids : 1, sizeof(*t->rt))) == NULL) {
        free(t);
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->cfg = cfg;
    t->owned = owned;
    t->reg = reg;
    for (size_t i = 0; i < cfg->nids; i++)
        t->rt[i] = bl_rt_get(reg, cfg->ids[i].name);
    return t;
}

bl_idtable_t *bl_idcache_get(bl_idreg_t *reg, bl_idcache_t *c)
{
    uint64_t gen = atomic_load_explicit(&reg->gen, memory_order_acquire);
    if (c->t != NULL && c->gen == gen)
        return c->t;
    pthread_mutex_lock(&reg->mu);
    bl_idtable_unref(c->t);
    c->t = bl_idtable_ref(reg->cur);
    c->gen = atomic_load_explicit(&reg->gen, memory_order_relaxed);
    pthread_mutex_unlock(&reg->mu);
    return c->t;
}

void bl_idcache_release(bl_idcache_t *c)
{
    bl_idtable_unref(c->t);
    c->t = NULL;
}

/* Swaps in table t (its reference passes to the registry). */
static void bl_idreg_swap(bl_idreg_t *reg, bl_idtable_t *t)
{
    pthread_mutex_lock(&reg->mu);
    bl_idtable_t *old = reg->cur;
    reg->cur = t;
    atomic_fetch_add_explicit(&reg->gen, 1, memory_order_release);
    pthread_mutex_unlock(&reg->mu);
    bl_idtable_unref(old);
}

int bl_idreg_install(bl_idreg_t *reg, bl_config_t *cfg)
{
    bl_idtable_t *t = bl_idtable_new(reg, cfg, cfg);
    if (t == NULL) {
        bl_config_free(cfg);
        return BL_ERROR;
    }
    bl_idreg_swap(reg, t);
    return BL_OK;
}

/* ---- use: last used and shared-credential signs ---- */

/* Appends the shared-credential notice entry for rt to out. */
static int bl_idtable_notice(const bl_idrt_t *rt, int64_t now_ms, bl_buf_t *out)
{
    bl_buf_t addrs, sids, detail, text;
    struct timespec ts = { (time_t)(now_ms / 1000), (long)(now_ms % 1000) * 1000000 };
    bl_buf_init(&addrs, 1024);
    bl_buf_init(&sids, 2048);
    bl_buf_init(&detail, 1024);
    bl_buf_init(&text, 1024);
    int rc = bl_share_evidence(rt->share, &addrs, &sids) | bl_share_addrs_text(rt->share, &text);
    rc |= bl_buf_printf(&detail, "identity %s appears to be shared: requests from different "
                        "source addresses (%.*s) interleaved within %d minutes", rt->name,
                        (int)bl_buf_size(&text), bl_buf_data(&text), BL_SHARE_WINDOW_MS / 60000);
    rc |= bl_buf_puts(out, "{\"addresses\":") | bl_buf_append(out, bl_buf_data(&addrs), bl_buf_size(&addrs));
    rc |= bl_buf_puts(out, ",\"detail\":") | bl_buf_json_str(out, bl_buf_data(&detail), bl_buf_size(&detail));
    rc |= bl_buf_puts(out, ",\"event\":\"shared-credential\",\"identity\":");
    rc |= bl_buf_json_str(out, rt->name, strlen(rt->name));
    rc |= bl_buf_puts(out, ",\"kind\":\"notice\",\"sessions\":");
    rc |= bl_buf_append(out, bl_buf_data(&sids), bl_buf_size(&sids));
    rc |= bl_buf_puts(out, ",\"ts\":") | bl_rec_ts(out, &ts);
    rc |= bl_buf_puts(out, ",\"version\":\"" BL_VERSION "\"}");
    if (rc == BL_OK)
        bl_warn("%.*s; kubectl sessions %.*s", (int)bl_buf_size(&detail), bl_buf_data(&detail),
                (int)bl_buf_size(&sids), bl_buf_data(&sids));
    bl_buf_free(&addrs);
    bl_buf_free(&sids);
    bl_buf_free(&detail);
    bl_buf_free(&text);
    return rc ? BL_ERROR : BL_OK;
}

int bl_idtable_used(bl_idtable_t *t, const bl_identity_t *id, const char *ip,
                    const char *session, int64_t now_ms, bl_buf_t *notice)
{
    size_t i = (size_t)(id - t->cfg->ids);
    bl_idrt_t *rt = id >= t->cfg->ids && i < t->cfg->nids ? t->rt[i] : NULL;
    int fire = 0;
    if (rt == NULL)
        return 0; /* not a registered identity (a JWT's), or past the bound */
    int64_t s = now_ms / 1000;
    if (atomic_load_explicit(&rt->last_used, memory_order_relaxed) < s) {
        atomic_store_explicit(&rt->last_used, s, memory_order_relaxed);
        atomic_store_explicit(&t->reg->dirty, 1, memory_order_relaxed);
    }
    pthread_mutex_lock(&rt->mu);
    if (rt->share == NULL)
        rt->share = calloc(1, sizeof(*rt->share));
    if (rt->share != NULL && bl_share_note(rt->share, ip, session, now_ms, BL_SHARE_WINDOW_MS)) {
        bl_metric_add(BL_M_SHARED_CREDENTIAL_WARNINGS, 1);
        fire = bl_idtable_notice(rt, now_ms, notice) == BL_OK;
    }
    pthread_mutex_unlock(&rt->mu);
    return fire;
}

/* ---- the last-used state file ---- */

int bl_lastused_json(const char *const *names, const int64_t *times, size_t n, bl_buf_t *out)
{
    char ts[BL_TIME_LEN + 1];
    int rc = bl_buf_puts(out, "{\"last_used\":{");
    for (size_t i = 0; i < n; i++) {
        rc |= bl_buf_puts(out, i ? ",\n" : "\n");
        rc |= bl_buf_json_str(out, names[i], strlen(names[i]));
        rc |= bl_buf_printf(out, ":\"%s\"", bl_time_format(times[i], ts));
    }
    rc |= bl_buf_puts(out, n ? "\n},\"version\":1}\n" : "},\"version\":1}\n");
    return rc ? BL_ERROR : BL_OK;
}

json_t *bl_lastused_read(const char *path, bl_buf_t *err)
{
    bl_buf_t b;
    json_error_t je;
    json_t *root = NULL, *m;
    bl_buf_init(&b, BL_LASTUSED_MAX);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        bl_buf_free(&b);
        return json_object();
    }
    if (bl_file_read(path, BL_LASTUSED_MAX, &b, err) != BL_OK)
        goto end;
    root = json_loadb(bl_buf_data(&b), bl_buf_size(&b), JSON_REJECT_DUPLICATES, &je);
    m = json_object_get(root, "last_used");
    if (!json_is_object(m)) {
        bl_buf_printf(err, "%s: not a byline last-used state file (%s)\n", path,
                      root ? "no last_used object" : je.text);
        json_decref(root);
        root = NULL;
        goto end;
    }
    json_incref(m);
    json_decref(root);
    root = m;
end:
    bl_buf_free(&b);
    return root;
}

/* Drops the newline that ends the messages of a bl_buf_t error list. */
static void bl_idreg_chomp(bl_buf_t *b)
{
    while (b->len > 0 && bl_buf_data(b)[b->len - 1] == '\n')
        b->len--;
}

/* Seeds the per-name state from the state file (a damaged file is
 * reported and ignored: it is rewritten at the next flush). */
static void bl_idreg_seed(bl_idreg_t *reg)
{
    bl_buf_t err;
    const char *name;
    json_t *v;
    int64_t t;
    bl_buf_init(&err, 1024);
    json_t *m = bl_lastused_read(reg->state_path, &err);
    bl_idreg_chomp(&err);
    if (m == NULL)
        bl_warn("identities: %s; last-used times start afresh", bl_buf_cstr(&err));
    json_object_foreach(m, name, v) {
        bl_idrt_t *rt;
        if (json_is_string(v) && bl_time_parse(json_string_value(v), &t) == BL_OK &&
            (rt = bl_rt_get(reg, name)) != NULL)
            atomic_store(&rt->last_used, t);
    }
    json_decref(m);
    bl_buf_free(&err);
}

bl_idreg_t *bl_idreg_new(const bl_config_t *cfg)
{
    bl_idreg_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL || (reg->dir = strdup(cfg->dir)) == NULL ||
        bl_file_pathf(reg->state_path, sizeof(reg->state_path), "%s/" BL_LASTUSED_FILE,
                      cfg->dir) != BL_OK) {
        bl_error("identities: out of memory, or a path too long");
        free(reg ? reg->dir : NULL);
        free(reg);
        return NULL;
    }
    pthread_mutex_init(&reg->mu, NULL);
    snprintf(reg->watch[0], BL_PATH_MAX, "%s", cfg->path);
    snprintf(reg->watch[1], BL_PATH_MAX, "%s", cfg->identities_file ? cfg->identities_file : "");
    for (int i = 0; i < 2; i++)
        bl_filesig(reg->watch[i], &reg->sig[i]);
    bl_idreg_seed(reg);
    if ((reg->cur = bl_idtable_new(reg, cfg, NULL)) == NULL) {
        bl_error("identities: out of memory");
        bl_idreg_free(reg);
        return NULL;
    }
    return reg;
}

/* Loads the configuration again and installs its identities. */
static int bl_idreg_reload(bl_idreg_t *reg)
{
    bl_buf_t errors, warnings;
    bl_config_t *cfg = NULL;
    size_t revoked = 0;
    bl_buf_init(&errors, 64 * 1024);
    bl_buf_init(&warnings, 64 * 1024);
    int rc = bl_config_load_ex(reg->dir, &cfg, &errors, &warnings);
    bl_idreg_chomp(&errors);
    if (rc != BL_OK) {
        bl_error("identities: the configuration changed but does not load, so the identities "
                 "in force stay:\n%s", bl_buf_size(&errors) ? bl_buf_cstr(&errors) : "out of memory");
    } else {
        for (size_t i = 0; i < cfg->nids; i++)
            revoked += cfg->ids[i].revoked != 0;
        size_t n = cfg->nids;
        rc = bl_idreg_install(reg, cfg);
        if (rc == BL_OK)
            bl_info("identities: reloaded %zu identit%s (%zu revoked) from %s", n,
                    n == 1 ? "y" : "ies", revoked, reg->watch[1]);
        else
            bl_error("identities: out of memory while reloading; the identities in force stay");
    }
    bl_buf_free(&errors);
    bl_buf_free(&warnings);
    return rc;
}

int bl_idreg_tick(bl_idreg_t *reg, int64_t now_ms, int force)
{
    bl_filesig_t now[2];
    int changed = 0, rc = 0;
    if (!force && now_ms - reg->flushed_ms >= BL_IDREG_FLUSH_MS) {
        reg->flushed_ms = now_ms;
        bl_idreg_flush(reg);
    }
    if (!force && now_ms - reg->checked_ms < BL_IDREG_CHECK_MS)
        return 0;
    reg->checked_ms = now_ms;
    for (int i = 0; i < 2; i++) {
        bl_filesig(reg->watch[i], &now[i]);
        changed |= !bl_filesig_eq(&now[i], &reg->sig[i]);
    }
    if (!changed && !force)
        return 0;
    /* Remember the signature read before loading: a change during the
     * load is seen at the next check. A broken file is not retried until
     * it changes again. */
    memcpy(reg->sig, now, sizeof(now));
    rc = bl_idreg_reload(reg);
    return rc == BL_OK ? 1 : BL_ERROR;
}

/* Orders the state file by identity name. */
static int bl_rt_cmp(const void *a, const void *b)
{
    return strcmp((*(bl_idrt_t *const *)a)->name, (*(bl_idrt_t *const *)b)->name);
}

int bl_idreg_flush(bl_idreg_t *reg)
{
    bl_buf_t out, err;
    char dir[BL_PATH_MAX];
    size_t n = 0;
    int rc = BL_ERROR;
    if (!atomic_exchange(&reg->dirty, 0))
        return BL_OK;
    bl_idrt_t **v = calloc(reg->nrt + 1, sizeof(*v));
    const char **names = calloc(reg->nrt + 1, sizeof(*names));
    int64_t *times = calloc(reg->nrt + 1, sizeof(*times));
    bl_buf_init(&out, BL_LASTUSED_MAX);
    bl_buf_init(&err, 1024);
    if (v == NULL || names == NULL || times == NULL)
        goto end;
    for (size_t b = 0; b < BL_RT_BUCKETS; b++)
        for (bl_idrt_t *rt = reg->buckets[b]; rt; rt = rt->next)
            if (atomic_load(&rt->last_used) > 0)
                v[n++] = rt;
    qsort(v, n, sizeof(*v), bl_rt_cmp);
    for (size_t i = 0; i < n; i++) {
        names[i] = v[i]->name;
        times[i] = atomic_load(&v[i]->last_used);
    }
    snprintf(dir, sizeof(dir), "%s/state", reg->dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        bl_buf_printf(&err, "%s: %s", dir, strerror(errno));
    else if (bl_lastused_json(names, times, n, &out) == BL_OK &&
             bl_file_write_atomic(reg->state_path, bl_buf_data(&out), bl_buf_size(&out), 0600,
                                  &err) == BL_OK)
        rc = BL_OK;
end:
    if (rc != BL_OK) {
        atomic_store(&reg->dirty, 1); /* try again at the next flush */
        bl_warn("identities: cannot write %s: %s", reg->state_path,
                bl_buf_size(&err) ? bl_buf_cstr(&err) : "out of memory");
    }
    free(v);
    free(names);
    free(times);
    bl_buf_free(&out);
    bl_buf_free(&err);
    return rc;
}

void bl_idreg_free(bl_idreg_t *reg)
{
    if (reg == NULL)
        return;
    bl_idreg_flush(reg);
    bl_idtable_unref(reg->cur);
    for (size_t b = 0; b < BL_RT_BUCKETS; b++)
        for (bl_idrt_t *rt = reg->buckets[b], *next; rt; rt = next) {
            next = rt->next;
            pthread_mutex_destroy(&rt->mu);
            free(rt->share);
            free(rt->name);
            free(rt);
        }
    pthread_mutex_destroy(&reg->mu);
    free(reg->dir);
    free(reg);
}
