/*
 * limit.c - rate limits per identity and verb class (limit.h).
 *
 * The name index is one array of (kind, hash, name, entry) keys sorted in
 * that order, searched by bisection: a lookup hashes the name once and
 * compares integers, O(log entries), with a string compare only on equal
 * hashes; the first entry of a run that sets the class is the one
 * configuration order puts first.
 *
 * Buckets: stripe = hash % BL_LIMIT_STRIPES; inside a stripe, an open-
 * addressing table with linear probing and backward-shift deletion (no
 * tombstones), so a full stripe evicts its least recently seen identity
 * and the table never degrades.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy/limit.h"

#define BL_KEY_MAX 64   /* identity names are at most 64 bytes (config/values.h) */

typedef struct {
    char kind;            /* 'u' identity, 'g' group */
    uint64_t hash;        /* bl_lhash(name) */
    const char *name;     /* borrowed from an entry */
    uint32_t entry;
} bl_lkey_t;

static uint64_t bl_lhash(const char *s);

typedef struct {
    uint64_t hash;        /* 0: empty slot */
    uint64_t last_ns;     /* when last seen, for eviction */
    uint64_t tat[BL_CLASS_COUNT];
    char name[BL_KEY_MAX + 1];
} bl_lslot_t;

typedef struct {
    pthread_mutex_t mu;
    uint32_t n;
    bl_lslot_t slots[BL_LIMIT_STRIPE_SLOTS];
} bl_lstripe_t;

struct bl_limits_s {
    bl_limit_t *v;
    size_t n, cap;
    int compiled;
    bl_lkey_t *keys;
    size_t nkeys;
    uint32_t *defaults;   /* entries naming no identity or group, in order */
    size_t ndefaults;
    bl_lstripe_t *stripes; /* NULL when no entry sets a rate */
};

/* ---- classes and rates ---- */

bl_class_t bl_limit_class(const bl_kreq_t *k)
{
    if (k == NULL || !k->is_resource)
        return BL_CLASS_READS;
    if (!strcmp(k->resource, "pods") && (!strcmp(k->subresource, "exec") || !strcmp(k->subresource, "attach") ||
                                         !strcmp(k->subresource, "portforward")))
        return BL_CLASS_EXEC;
    if (!strcmp(k->verb, "get") || !strcmp(k->verb, "list") || !strcmp(k->verb, "watch"))
        return BL_CLASS_READS;
    return BL_CLASS_WRITES;
}

const char *bl_class_name(bl_class_t c)
{
    return c == BL_CLASS_READS ? "reads" : c == BL_CLASS_WRITES ? "writes" : "exec";
}

/* Reads decimal digits at s[*i..len) into *v (1..max). */
static int bl_rate_num(const char *s, size_t len, size_t *i, uint32_t max, uint32_t *v)
{
    uint64_t x = 0;
    size_t start = *i;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9' && x <= max)
        x = x * 10 + (uint64_t)(s[(*i)++] - '0');
    if (*i == start || x == 0 || x > max)
        return BL_ERROR;
    *v = (uint32_t)x;
    return BL_OK;
}

int bl_rate_parse(const char *s, size_t len, bl_rate_t *r, const char **why)
{
    static const char form[] = "is not a rate: write N/s, N/m or N/h, optionally followed by "
                               "\"burst B\" (N and B from 1 to 1000000), e.g. \"50/s burst 100\" or \"5/m\"";
    size_t i = 0;
    bl_rate_t x = { 0, 0, 0 };
    *why = form;
    if (bl_rate_num(s, len, &i, BL_LIMIT_RATE_MAX, &x.count) != BL_OK || i + 2 > len || s[i] != '/')
        return BL_ERROR;
    char u = s[i + 1];
    x.period_ms = u == 's' ? 1000 : u == 'm' ? 60000 : u == 'h' ? 3600000 : 0;
    if (x.period_ms == 0)
        return BL_ERROR;
    i += 2;
    x.burst = x.count;
    if (i < len) {
        static const char kw[] = " burst ";
        if (len - i <= sizeof(kw) - 1 || memcmp(s + i, kw, sizeof(kw) - 1))
            return BL_ERROR;
        i += sizeof(kw) - 1;
        if (bl_rate_num(s, len, &i, BL_LIMIT_BURST_MAX, &x.burst) != BL_OK || i != len)
            return BL_ERROR;
    }
    *r = x;
    *why = NULL;
    return BL_OK;
}

void bl_rate_format(const bl_rate_t *r, char *out, size_t n)
{
    char u = r->period_ms == 1000 ? 's' : r->period_ms == 60000 ? 'm' : 'h';
    if (r->burst != r->count)
        snprintf(out, n, "%u/%c burst %u", r->count, u, r->burst);
    else
        snprintf(out, n, "%u/%c", r->count, u);
}

/* ---- building ---- */

bl_limits_t *bl_limits_new(void)
{
    return calloc(1, sizeof(bl_limits_t));
}

static void bl_strv_free(char **v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void bl_limits_free(bl_limits_t *L)
{
    if (L == NULL)
        return;
    for (size_t i = 0; i < L->n; i++) {
        free(L->v[i].name);
        free(L->v[i].file);
        bl_strv_free(L->v[i].identities, L->v[i].nidentities);
        bl_strv_free(L->v[i].groups, L->v[i].ngroups);
    }
    if (L->stripes)
        for (size_t i = 0; i < BL_LIMIT_STRIPES; i++)
            pthread_mutex_destroy(&L->stripes[i].mu);
    free(L->stripes);
    free(L->v);
    free(L->keys);
    free(L->defaults);
    free(L);
}

bl_limit_t *bl_limits_add(bl_limits_t *L)
{
    if (L->compiled || L->n >= BL_LIMIT_MAX_ENTRIES)
        return NULL;
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 8;
        bl_limit_t *v = realloc(L->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        L->v = v;
        L->cap = cap;
    }
    bl_limit_t *e = &L->v[L->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

size_t bl_limits_count(const bl_limits_t *L)
{
    return L ? L->n : 0;
}

const bl_limit_t *bl_limits_entry(const bl_limits_t *L, size_t i)
{
    return &L->v[i];
}

static int bl_lkey_cmp(const void *a, const void *b)
{
    const bl_lkey_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->entry < y->entry ? -1 : x->entry > y->entry);
}

/* Allocates the stripes (once, when some entry sets a rate). */
static int bl_limits_stripes(bl_limits_t *L)
{
    int any = 0;
    for (size_t i = 0; i < L->n; i++)
        for (int c = 0; c < BL_CLASS_COUNT; c++)
            any |= L->v[i].rate[c].count != 0;
    if (!any)
        return BL_OK;
    L->stripes = calloc(BL_LIMIT_STRIPES, sizeof(*L->stripes));
    if (L->stripes == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < BL_LIMIT_STRIPES; i++)
        pthread_mutex_init(&L->stripes[i].mu, NULL);
    return BL_OK;
}

int bl_limits_compile(bl_limits_t *L)
{
    size_t total = 0;
    L->compiled = 1;
    for (size_t i = 0; i < L->n; i++)
        total += L->v[i].nidentities + L->v[i].ngroups;
    L->keys = malloc((total + 1) * sizeof(*L->keys));
    L->defaults = malloc((L->n + 1) * sizeof(*L->defaults));
    if (L->keys == NULL || L->defaults == NULL)
        return BL_ERROR;
    for (uint32_t i = 0; i < L->n; i++) {
        const bl_limit_t *e = &L->v[i];
        if (e->nidentities == 0 && e->ngroups == 0)
            L->defaults[L->ndefaults++] = i;
        for (uint32_t j = 0; j < e->nidentities; j++)
            L->keys[L->nkeys++] = (bl_lkey_t){ 'u', bl_lhash(e->identities[j]), e->identities[j], i };
        for (uint32_t j = 0; j < e->ngroups; j++)
            L->keys[L->nkeys++] = (bl_lkey_t){ 'g', bl_lhash(e->groups[j]), e->groups[j], i };
    }
    qsort(L->keys, L->nkeys, sizeof(*L->keys), bl_lkey_cmp);
    return bl_limits_stripes(L);
}

/* ---- finding the limit ---- */

/* Returns the first entry number (config order) naming (kind, name) that
 * sets class c, or UINT32_MAX. */
static uint32_t bl_limits_first(const bl_limits_t *L, char kind, const char *name, bl_class_t c)
{
    size_t lo = 0, hi = L->nkeys;
    bl_lkey_t want = { kind, bl_lhash(name), name, 0 };
    while (lo < hi) { /* the first key >= (kind, name, 0) */
        size_t mid = lo + (hi - lo) / 2;
        if (bl_lkey_cmp(&L->keys[mid], &want) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < L->nkeys && L->keys[lo].kind == kind && L->keys[lo].hash == want.hash &&
           !strcmp(L->keys[lo].name, name); lo++)
        if (L->v[L->keys[lo].entry].rate[c].count)
            return L->keys[lo].entry;
    return UINT32_MAX;
}

const bl_limit_t *bl_limits_find(const bl_limits_t *L, const char *actor, char *const *groups,
                                 size_t ngroups, bl_class_t c)
{
    if (L == NULL || L->stripes == NULL || actor == NULL)
        return NULL;
    uint32_t best = bl_limits_first(L, 'u', actor, c);
    if (best != UINT32_MAX)
        return &L->v[best];
    for (size_t i = 0; i < ngroups; i++) {
        uint32_t e = bl_limits_first(L, 'g', groups[i], c);
        best = e < best ? e : best;
    }
    if (best != UINT32_MAX)
        return &L->v[best];
    for (size_t i = 0; i < L->ndefaults; i++)
        if (L->v[L->defaults[i]].rate[c].count)
            return &L->v[L->defaults[i]];
    return NULL;
}

/* ---- buckets ---- */

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t bl_lhash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ? h : 1;
}

#define BL_SLOT_HOME(h) ((size_t)((h) / BL_LIMIT_STRIPES) % BL_LIMIT_STRIPE_SLOTS)
#define BL_SLOT_NEXT(i) (((i) + 1) % BL_LIMIT_STRIPE_SLOTS)

/* Removes slot i by backward shift: later slots of the same probe run
 * move up so that lookups need no tombstones. */
static void bl_stripe_remove(bl_lstripe_t *s, size_t i)
{
    size_t j = i;
    for (;;) {
        s->slots[i].hash = 0;
        size_t k;
        do {
            j = BL_SLOT_NEXT(j);
            if (s->slots[j].hash == 0) {
                s->n--;
                return;
            }
            k = BL_SLOT_HOME(s->slots[j].hash);
        } while (i <= j ? (i < k && k <= j) : (i < k || k <= j));
        s->slots[i] = s->slots[j];
        i = j;
    }
}

/* Forgets the identity seen least recently in a full stripe. */
static void bl_stripe_evict(bl_lstripe_t *s)
{
    size_t old = 0;
    for (size_t i = 1; i < BL_LIMIT_STRIPE_SLOTS; i++)
        if (s->slots[i].hash && (s->slots[old].hash == 0 || s->slots[i].last_ns < s->slots[old].last_ns))
            old = i;
    bl_stripe_remove(s, old);
}

/* Returns the identity's slot, adding it (buckets full) if new. The
 * stripe's mutex is held. A stripe keeps at most 3/4 of its slots used. */
static bl_lslot_t *bl_stripe_slot(bl_lstripe_t *s, uint64_t h, const char *actor)
{
    size_t i = BL_SLOT_HOME(h);
    for (; s->slots[i].hash; i = BL_SLOT_NEXT(i))
        if (s->slots[i].hash == h && !strncmp(s->slots[i].name, actor, BL_KEY_MAX))
            return &s->slots[i];
    if (s->n >= BL_LIMIT_STRIPE_SLOTS * 3 / 4) {
        bl_stripe_evict(s);
        for (i = BL_SLOT_HOME(h); s->slots[i].hash; i = BL_SLOT_NEXT(i))
            ;
    }
    bl_lslot_t *slot = &s->slots[i];
    memset(slot, 0, sizeof(*slot));
    slot->hash = h;
    snprintf(slot->name, sizeof(slot->name), "%s", actor);
    s->n++;
    return slot;
}

/* GCRA: admits at `now` if the bucket has a token, moving *tat on.
 * Returns 0 (admitted) or the nanoseconds until one will be there. */
static uint64_t bl_gcra(uint64_t *tat, const bl_rate_t *r, uint64_t now)
{
    uint64_t t = r->period_ms * 1000000ull / r->count;   /* ns per token; >= 1000 */
    uint64_t tau = t * (uint64_t)(r->burst - 1);
    uint64_t at = *tat > now ? *tat : now;
    if (at - now > tau)
        return at - now - tau;
    *tat = at + t;
    return 0;
}

int bl_limits_check(bl_limits_t *L, const char *actor, char *const *groups, size_t ngroups,
                    bl_class_t c, uint64_t now_ns, bl_limit_verdict_t *v)
{
    v->limit = bl_limits_find(L, actor, groups, ngroups, c);
    v->retry_after_s = 0;
    if (v->limit == NULL)
        return BL_OK;
    uint64_t h = bl_lhash(actor);
    bl_lstripe_t *s = &L->stripes[h % BL_LIMIT_STRIPES];
    pthread_mutex_lock(&s->mu);
    bl_lslot_t *slot = bl_stripe_slot(s, h, actor);
    slot->last_ns = now_ns;
    uint64_t wait = bl_gcra(&slot->tat[c], &v->limit->rate[c], now_ns);
    pthread_mutex_unlock(&s->mu);
    if (wait == 0)
        return BL_OK;
    v->retry_after_s = (wait + 999999999ull) / 1000000000ull;
    return BL_DECLINED;
}

size_t bl_limits_tracked(bl_limits_t *L)
{
    size_t n = 0;
    for (size_t i = 0; L && L->stripes && i < BL_LIMIT_STRIPES; i++) {
        pthread_mutex_lock(&L->stripes[i].mu);
        n += L->stripes[i].n;
        pthread_mutex_unlock(&L->stripes[i].mu);
    }
    return n;
}
