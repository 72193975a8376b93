/*
 * jwks_cache.c - issuer key sets, the refresher thread and the waiters
 * (see jwks_cache.h).
 *
 * One mutex guards every source's state and the waiter list; it is never
 * held across I/O. The thread picks the first due source, drops the lock,
 * loads, retakes the lock, installs the result, bumps the source's
 * generation and wakes the loops of the waiters that became ready.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <jansson.h>
#include "auth/jwks_cache.h"
#include "config/file.h"
#include "config/values.h"
#include "core/log.h"
#include "net/fetch.h"

#define BL_AGE_MIN_MS     (60u * 1000)
#define BL_AGE_MAX_MS     (24u * 3600 * 1000)
#define BL_RETRY_MS       (30u * 1000)
#define BL_RETRY_MAX_MS   (5u * 60 * 1000)
#define BL_DISCOVERY_MAX  (64 * 1024)

typedef struct {
    const bl_issuer_t *is;
    bl_jwks_keys_t *keys;        /* current set, or NULL */
    char err[BL_JWT_WHY_MAX + 64];
    char *jwks_uri;              /* from discovery (owned), or NULL */
    uint64_t next_at;            /* monotonic ms: next scheduled load */
    uint64_t forced_at;          /* last granted early refresh */
    uint64_t gen;                /* finished loads */
    unsigned failures;           /* consecutive */
    int want, busy, forced_once;
    struct stat st;              /* jwks_file: what was read last */
} bl_jwks_src_t;

struct bl_jwks_cache_s {
    const bl_config_t *cfg;
    bl_jwks_cache_opts_t o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started, stop;
    bl_jwks_src_t *src;
    size_t n;
    bl_jwks_waiter_t *waiters;   /* doubly linked */
    int nready;                  /* waiters ready but not yet polled (atomic reads) */
};

static uint64_t bl_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bl_jwks_cache_t *bl_jwks_cache_new(const bl_config_t *cfg, const bl_jwks_cache_opts_t *o)
{
    bl_jwks_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->src = calloc(cfg->nissuers ? cfg->nissuers : 1, sizeof(*c->src))) == NULL) {
        free(c);
        return NULL;
    }
    c->cfg = cfg;
    c->n = cfg->nissuers;
    c->o = o ? *o : (bl_jwks_cache_opts_t){ 0 };
    if (o == NULL) {
        c->o.min_refresh_ms = 10000;
        c->o.file_check_ms = 5000;
    }
    if (c->o.fetch_timeout_ms == 0)
        c->o.fetch_timeout_ms = 5000;
    for (size_t i = 0; i < c->n; i++)
        c->src[i].is = &cfg->issuers[i];
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    return c;
}

/* ---- loading (no lock held) ---- */

/* Reads a jwks_file if it changed. Returns BL_OK with *out (NULL: no
 * change), or BL_ERROR with why. */
static int bl_jwks_load_file(bl_jwks_src_t *s, int have, bl_jwks_keys_t **out, char *why, size_t cap)
{
    struct stat st;
    bl_buf_t body, err;
    int rc = BL_ERROR;
    *out = NULL;
    if (stat(s->is->jwks_file, &st) != 0) {
        snprintf(why, cap, "%s: %s", s->is->jwks_file, strerror(errno));
        return BL_ERROR;
    }
    if (have && st.st_ino == s->st.st_ino && st.st_dev == s->st.st_dev && st.st_size == s->st.st_size &&
        st.st_mtim.tv_sec == s->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == s->st.st_mtim.tv_nsec)
        return BL_OK;
    bl_buf_init(&body, BL_JWKS_MAX_BYTES + 1);
    bl_buf_init(&err, 512);
    if (bl_file_read(s->is->jwks_file, BL_JWKS_MAX_BYTES, &body, &err) != BL_OK)
        snprintf(why, cap, "%s", bl_buf_cstr(&err));
    else if (bl_jwks_parse(bl_buf_data(&body), bl_buf_size(&body), out, why, cap) == BL_OK)
        rc = BL_OK;
    if (rc == BL_OK)
        s->st = st; /* only the loader thread (or start, before it) touches st */
    bl_buf_free(&body);
    bl_buf_free(&err);
    return rc;
}

/* GETs url into body. Returns BL_OK with *max_age, or BL_ERROR with why. */
static int bl_jwks_get(bl_jwks_cache_t *c, const bl_jwks_src_t *s, const char *url, size_t max,
                       bl_buf_t *body, long *max_age, char *why, size_t cap)
{
    bl_buf_t err;
    bl_fetch_opts_t fo = { .ca = s->is->ca_file, .timeout_ms = c->o.fetch_timeout_ms, .max_body = max };
    bl_buf_init(&err, 1024);
    int rc = bl_https_get(url, &fo, body, max_age, &err);
    if (rc != BL_OK)
        snprintf(why, cap, "GET %.120s: %s", url, bl_buf_cstr(&err));
    bl_buf_free(&err);
    return rc;
}

/* OIDC discovery: the issuer's jwks_uri. Returns it (owned) or NULL with why. */
static char *bl_jwks_discover(bl_jwks_cache_t *c, const bl_jwks_src_t *s, char *why, size_t cap)
{
    char url[BL_URL_MAX + 64];
    bl_buf_t body;
    long age;
    char *uri = NULL;
    size_t n = strlen(s->is->issuer);
    while (n > 0 && s->is->issuer[n - 1] == '/')
        n--;
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)BL_MIN(n, (size_t)BL_URL_MAX), s->is->issuer);
    bl_buf_init(&body, BL_DISCOVERY_MAX + 1);
    if (bl_jwks_get(c, s, url, BL_DISCOVERY_MAX, &body, &age, why, cap) == BL_OK) {
        json_t *doc = json_loadb(bl_buf_data(&body), bl_buf_size(&body), JSON_REJECT_DUPLICATES, NULL);
        const char *iss = json_string_value(json_object_get(doc, "issuer"));
        const char *ju = json_string_value(json_object_get(doc, "jwks_uri"));
        if (iss == NULL || strcmp(iss, s->is->issuer) != 0)
            snprintf(why, cap, "discovery document at %.100s names another issuer", url);
        else if (ju == NULL || strncmp(ju, "https://", 8) != 0 || strlen(ju) > BL_URL_MAX)
            snprintf(why, cap, "discovery document at %.100s has no https jwks_uri", url);
        else if ((uri = strdup(ju)) == NULL)
            snprintf(why, cap, "out of memory");
        json_decref(doc);
    }
    bl_buf_free(&body);
    return uri;
}

/* Fetches a URL source (discovering jwks_uri first if need be). Returns
 * BL_OK with *out and *age_ms, or BL_ERROR with why. */
static int bl_jwks_load_url(bl_jwks_cache_t *c, bl_jwks_src_t *s, bl_jwks_keys_t **out,
                            uint64_t *age_ms, char *why, size_t cap)
{
    bl_buf_t body;
    long age = -1;
    int rc = BL_ERROR;
    const char *url = s->is->jwks_url;
    if (url == NULL && s->jwks_uri == NULL)
        s->jwks_uri = bl_jwks_discover(c, s, why, cap); /* loader thread only */
    if (url == NULL && (url = s->jwks_uri) == NULL)
        return BL_ERROR;
    bl_buf_init(&body, BL_JWKS_MAX_BYTES + 1);
    if (bl_jwks_get(c, s, url, BL_JWKS_MAX_BYTES, &body, &age, why, cap) == BL_OK)
        rc = bl_jwks_parse(bl_buf_data(&body), bl_buf_size(&body), out, why, cap);
    bl_buf_free(&body);
    uint64_t ms = age < 0 ? s->is->refresh_ms : (uint64_t)age * 1000;
    *age_ms = BL_MIN(BL_MAX(ms, (uint64_t)BL_AGE_MIN_MS), (uint64_t)BL_AGE_MAX_MS);
    if (rc != BL_OK && s->is->jwks_url == NULL) {
        free(s->jwks_uri); /* discover again next time: the issuer may have moved its keys */
        s->jwks_uri = NULL;
    }
    return rc;
}

/* Loads one source. Returns BL_OK with *out (NULL: unchanged) and the
 * delay until the next load, or BL_ERROR with why. */
static int bl_jwks_load(bl_jwks_cache_t *c, bl_jwks_src_t *s, int have, bl_jwks_keys_t **out,
                        uint64_t *next_ms, char *why, size_t cap)
{
    if (s->is->jwks_file != NULL) {
        *next_ms = c->o.file_check_ms;
        return bl_jwks_load_file(s, have, out, why, cap);
    }
    return bl_jwks_load_url(c, s, out, next_ms, why, cap);
}

/* ---- installing (lock held) ---- */

/* Marks issuer i's waiters whose generation has come ready; wakes their loops. */
static void bl_jwks_ready(bl_jwks_cache_t *c, size_t i)
{
    for (bl_jwks_waiter_t *w = c->waiters; w != NULL; w = w->next) {
        if (w->issuer != i || w->ready || c->src[i].gen < w->gen)
            continue;
        w->ready = 1;
        __atomic_add_fetch(&c->nready, 1, __ATOMIC_RELEASE);
        bl_loop_wake(w->loop);
    }
}

/* Logs a change of a source's state (new keys, or a new failure). */
static void bl_jwks_log(const bl_jwks_src_t *s, const bl_jwks_keys_t *k, const char *why, int changed)
{
    if (k != NULL)
        bl_info("jwks: issuer %s: %zu key(s) in use%s%s", s->is->issuer, k->n,
                k->skipped ? ", some skipped (not for RS256/ES256/EdDSA signing)" : "",
                s->keys ? " (rotated)" : "");
    else if (changed)
        bl_warn("jwks: issuer %s: %s%s", s->is->issuer, why, s->keys ? "; keeping the previous keys" : "");
}

static void bl_jwks_install(bl_jwks_cache_t *c, size_t i, int rc, bl_jwks_keys_t *k,
                            uint64_t next_ms, const char *why)
{
    bl_jwks_src_t *s = &c->src[i];
    uint64_t now = bl_mono_ms();
    bl_jwks_log(s, k, why, rc != BL_OK && strcmp(s->err, why) != 0);
    if (rc == BL_OK) {
        s->failures = 0;
        s->err[0] = '\0';
        if (k != NULL) {
            bl_jwks_keys_unref(s->keys);
            s->keys = k;
        }
        s->next_at = now + next_ms;
    } else {
        uint64_t back = (uint64_t)BL_RETRY_MS << BL_MIN(s->failures, 4u);
        s->failures++;
        snprintf(s->err, sizeof(s->err), "%s", why);
        s->next_at = now + BL_MIN(BL_MIN(back, (uint64_t)BL_RETRY_MAX_MS),
                                  s->is->jwks_file ? (uint64_t)c->o.file_check_ms : UINT64_MAX);
    }
    s->gen++;
    s->busy = 0;
    bl_jwks_ready(c, i);
}

/* Returns the index of the first due source, or n with *wait_ms set. */
static size_t bl_jwks_due(bl_jwks_cache_t *c, uint64_t now, uint64_t *until)
{
    *until = now + 60000;
    for (size_t i = 0; i < c->n; i++) {
        if (c->src[i].want || c->src[i].next_at <= now)
            return i;
        *until = BL_MIN(*until, c->src[i].next_at);
    }
    return c->n;
}

static void *bl_jwks_main(void *arg)
{
    bl_jwks_cache_t *c = arg;
    char why[sizeof(c->src[0].err)];
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        uint64_t until;
        size_t i = bl_jwks_due(c, bl_mono_ms(), &until);
        if (i == c->n) {
            struct timespec ts = { (time_t)(until / 1000), (long)(until % 1000) * 1000000 };
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            continue;
        }
        bl_jwks_src_t *s = &c->src[i];
        int have = s->keys != NULL;
        s->want = 0;
        s->busy = 1;
        pthread_mutex_unlock(&c->mu);
        bl_jwks_keys_t *k = NULL;
        uint64_t next_ms = 0;
        why[0] = '\0';
        int rc = bl_jwks_load(c, s, have, &k, &next_ms, why, sizeof(why));
        pthread_mutex_lock(&c->mu);
        bl_jwks_install(c, i, rc, k, next_ms, why);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int bl_jwks_cache_start(bl_jwks_cache_t *c, bl_buf_t *err)
{
    char why[sizeof(c->src[0].err)];
    for (size_t i = 0; i < c->n; i++) {
        bl_jwks_src_t *s = &c->src[i];
        if (s->is->jwks_file == NULL)
            continue; /* fetched by the thread at once (next_at is 0) */
        bl_jwks_keys_t *k = NULL;
        uint64_t next_ms = 0;
        why[0] = '\0';
        int rc = bl_jwks_load(c, s, 0, &k, &next_ms, why, sizeof(why));
        pthread_mutex_lock(&c->mu);
        bl_jwks_install(c, i, rc, k, next_ms, why);
        pthread_mutex_unlock(&c->mu);
    }
    if (pthread_create(&c->thread, NULL, bl_jwks_main, c) != 0) {
        bl_buf_printf(err, "jwks: cannot start the refresher thread: %s", strerror(errno));
        return BL_ERROR;
    }
    pthread_setname_np(c->thread, "byline-jwks");
    c->started = 1;
    return BL_OK;
}

void bl_jwks_cache_free(bl_jwks_cache_t *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    for (size_t i = 0; i < c->n; i++) {
        bl_jwks_keys_unref(c->src[i].keys);
        free(c->src[i].jwks_uri);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->src);
    free(c);
}

bl_jwks_keys_t *bl_jwks_cache_keys(bl_jwks_cache_t *c, size_t i)
{
    if (i >= c->n)
        return NULL;
    pthread_mutex_lock(&c->mu);
    bl_jwks_keys_t *k = bl_jwks_keys_ref(c->src[i].keys);
    pthread_mutex_unlock(&c->mu);
    return k;
}

/* Asks the thread for an early load of s unless the rate limit refuses
 * (lock held). Returns 1 if a load is asked for now, else 0. */
static int bl_jwks_force(bl_jwks_cache_t *c, bl_jwks_src_t *s, uint64_t now)
{
    if (s->want)
        return 1;
    if (s->forced_once && now - s->forced_at < c->o.min_refresh_ms)
        return 0;
    s->forced_once = 1;
    s->forced_at = now;
    s->want = 1;
    pthread_cond_signal(&c->cv);
    return 1;
}

int bl_jwks_cache_refresh(bl_jwks_cache_t *c, size_t i, bl_jwks_waiter_t *w)
{
    int rc = BL_AGAIN;
    if (i >= c->n || w->linked)
        return BL_ERROR;
    pthread_mutex_lock(&c->mu);
    bl_jwks_src_t *s = &c->src[i];
    uint64_t now = bl_mono_ms();
    if (s->busy) {
        /* The running load may have started before what the token needs
         * was published: wait for one more after it if the rate limit
         * allows, else for the running one (never refuse: many requests
         * with a new kid arrive together while the first one's load runs). */
        w->gen = s->gen + (bl_jwks_force(c, s, now) ? 2 : 1);
    } else if (s->next_at <= now || bl_jwks_force(c, s, now)) {
        w->gen = s->gen + 1; /* due anyway, or asked for */
    } else {
        rc = BL_DECLINED;
        goto end;
    }
    w->issuer = i;
    w->ready = 0;
    w->linked = 1;
    w->prev = NULL;
    w->next = c->waiters;
    if (c->waiters)
        c->waiters->prev = w;
    c->waiters = w;
end:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Unlinks w (lock held). */
static void bl_jwks_unlink(bl_jwks_cache_t *c, bl_jwks_waiter_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        c->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->ready)
        __atomic_sub_fetch(&c->nready, 1, __ATOMIC_RELEASE);
    w->next = w->prev = NULL;
    w->linked = 0;
}

void bl_jwks_cache_cancel(bl_jwks_cache_t *c, bl_jwks_waiter_t *w)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    if (w->linked)
        bl_jwks_unlink(c, w);
    pthread_mutex_unlock(&c->mu);
}

void bl_jwks_cache_poll(bl_jwks_cache_t *c, bl_loop_t *loop)
{
    bl_jwks_waiter_t *run = NULL, *w, *next;
    if (c == NULL || __atomic_load_n(&c->nready, __ATOMIC_ACQUIRE) == 0)
        return;
    pthread_mutex_lock(&c->mu);
    for (w = c->waiters; w != NULL; w = next) {
        next = w->next;
        if (w->ready && w->loop == loop) {
            bl_jwks_unlink(c, w);
            w->next = run; /* a private list now: linked is 0 */
            run = w;
        }
    }
    pthread_mutex_unlock(&c->mu);
    for (w = run; w != NULL; w = next) {
        next = w->next;
        w->next = NULL;
        w->done(w);
    }
}

void bl_jwks_cache_error(bl_jwks_cache_t *c, size_t i, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (i >= c->n)
        return;
    pthread_mutex_lock(&c->mu);
    snprintf(buf, cap, "%s", c->src[i].err);
    pthread_mutex_unlock(&c->mu);
}

uint64_t bl_jwks_cache_generation(bl_jwks_cache_t *c, size_t i)
{
    pthread_mutex_lock(&c->mu);
    uint64_t g = i < c->n ? c->src[i].gen : 0;
    pthread_mutex_unlock(&c->mu);
    return g;
}
