/*
 * policy.c - the rule model, its index and evaluation (policy.h).
 *
 * The index maps each exact identity name and group name a rule lists to
 * the rules that list it (one open-addressing table, keys prefixed 'u' or
 * 'g'); rules that name no identity or group sit in `any`, rules with a
 * glob among their identities or groups in `globs` (their subject is
 * checked at evaluation). A request then visits only its identity's
 * bucket, its groups' buckets and those two lists. Each list holds rule
 * numbers in configuration order, so the first rule of the winning effect
 * is found without sorting.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "kube/names.h"
#include "policy/glob.h"
#include "policy/limit.h"
#include "policy/policy.h"

typedef struct {
    const char *key;      /* identity or group name, borrowed from a rule; NULL = empty slot */
    char kind;            /* 'u' identity, 'g' group */
    uint32_t hash, off, n;
} bl_bucket_t;

struct bl_policy_s {
    bl_rule_t *rules;
    size_t n, cap;
    int compiled;
    bl_bucket_t *tab;     /* tabmask + 1 slots; key NULL = empty */
    size_t tabmask;
    uint32_t *idx;        /* the buckets' rule numbers */
    uint32_t *any, *globs;
    size_t nany, nglobs;
    bl_guard_t guard;
    bl_rule_t blast;      /* the built-in blast-radius rule (not in `rules`) */
};

/* ---- building ---- */

static const struct { const char *word; uint32_t bit; } bl_verbs[] = {
    { "get", BL_VERB_GET }, { "list", BL_VERB_LIST }, { "watch", BL_VERB_WATCH },
    { "create", BL_VERB_CREATE }, { "update", BL_VERB_UPDATE }, { "patch", BL_VERB_PATCH },
    { "delete", BL_VERB_DELETE }, { "deletecollection", BL_VERB_DELETECOLLECTION },
    { "proxy", BL_VERB_PROXY }, { "post", BL_VERB_POST }, { "put", BL_VERB_PUT },
    { "head", BL_VERB_HEAD }, { "options", BL_VERB_OPTIONS },
};

uint32_t bl_policy_verb_bit(const char *word)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(bl_verbs); i++)
        if (!strcmp(word, bl_verbs[i].word))
            return bl_verbs[i].bit;
    return 0;
}

bl_policy_t *bl_policy_new(void)
{
    static char blast_name[] = BL_POLICY_BLAST_RULE;
    bl_policy_t *p = calloc(1, sizeof(bl_policy_t));
    if (p == NULL)
        return NULL;
    p->guard.builtins = BL_BUILTIN_BLAST_RADIUS;
    p->blast.name = blast_name; /* static: never freed (the rule is not in `rules`) */
    p->blast.effect = BL_EFFECT_REVIEW;
    p->blast.conns = UINT64_MAX;
    p->blast.verbs = BL_VERB_DELETE | BL_VERB_DELETECOLLECTION | BL_VERB_PATCH | BL_VERB_LIST;
    p->blast.kinds = BL_RULE_RESOURCE;
    return p;
}

bl_guard_t *bl_policy_guard(bl_policy_t *p)
{
    return &p->guard;
}

static void bl_patlist_free(bl_patlist_t *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->v[i].s);
    free(l->v);
}

static void bl_rule_free(bl_rule_t *r)
{
    free(r->name);
    free(r->file);
    bl_patlist_t *lists[] = { &r->identities, &r->groups, &r->api_groups, &r->resources,
                              &r->namespaces, &r->names, &r->paths, &r->argv };
    for (size_t i = 0; i < BL_ARRAY_LEN(lists); i++)
        bl_patlist_free(lists[i]);
}

static void bl_policy_index_free(bl_policy_t *p)
{
    free(p->tab);
    free(p->idx);
    free(p->any);
    free(p->globs);
    p->tab = NULL;
    p->idx = p->any = p->globs = NULL;
    p->nany = p->nglobs = 0;
    p->tabmask = 0;
}

void bl_policy_free(bl_policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        bl_rule_free(&p->rules[i]);
    free(p->rules);
    bl_policy_index_free(p);
    bl_patlist_free(&p->guard.dry_run_identities);
    bl_patlist_free(&p->guard.dry_run_groups);
    bl_limits_free(p->guard.limits);
    free(p);
}

bl_rule_t *bl_policy_rule_add(bl_policy_t *p)
{
    if (p->compiled || p->n >= BL_POLICY_MAX_RULES)
        return NULL;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        bl_rule_t *r = realloc(p->rules, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        p->rules = r;
        p->cap = cap;
    }
    bl_rule_t *r = &p->rules[p->n++];
    memset(r, 0, sizeof(*r));
    r->conns = UINT64_MAX;
    r->verbs = UINT32_MAX;
    r->kinds = BL_RULE_RESOURCE | BL_RULE_NONRESOURCE;
    return r;
}

size_t bl_policy_count(const bl_policy_t *p)
{
    return p ? p->n : 0;
}

const bl_rule_t *bl_policy_rule(const bl_policy_t *p, size_t i)
{
    return &p->rules[i];
}

const bl_rule_t *bl_policy_find(const bl_policy_t *p, const char *name)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (p->rules[i].name && !strcmp(p->rules[i].name, name))
            return &p->rules[i];
    return NULL;
}

/* FNV-1a over the kind byte and the name. */
static uint32_t bl_key_hash(char kind, const char *name)
{
    uint32_t h = 2166136261u;
    h = (h ^ (unsigned char)kind) * 16777619u;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h;
}

/* One (subject key, rule) pair while building. */
typedef struct {
    char kind;
    const char *name;
    uint32_t rule;
} bl_pair_t;

static int bl_pair_cmp(const void *a, const void *b)
{
    const bl_pair_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Collects the exact subject pairs, and fills `any` and `globs`. Returns
 * the number of pairs written to `pairs`. */
static size_t bl_policy_pairs(bl_policy_t *p, bl_pair_t *pairs)
{
    size_t np = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        const bl_rule_t *r = &p->rules[i];
        int glob = 0;
        if (r->identities.n == 0 && r->groups.n == 0) {
            p->any[p->nany++] = i;
            continue;
        }
        for (uint32_t j = 0; j < r->identities.n; j++) {
            glob |= r->identities.v[j].glob;
            if (!r->identities.v[j].glob)
                pairs[np++] = (bl_pair_t){ 'u', r->identities.v[j].s, i };
        }
        for (uint32_t j = 0; j < r->groups.n; j++) {
            glob |= r->groups.v[j].glob;
            if (!r->groups.v[j].glob)
                pairs[np++] = (bl_pair_t){ 'g', r->groups.v[j].s, i };
        }
        if (glob)
            p->globs[p->nglobs++] = i;
    }
    return np;
}

/* Puts the sorted pairs into buckets of the hash table. */
static int bl_policy_table(bl_policy_t *p, bl_pair_t *pairs, size_t np)
{
    size_t nb = 0, slots = 16;
    for (size_t i = 0; i < np; i++)
        nb += i == 0 || pairs[i].kind != pairs[i - 1].kind || strcmp(pairs[i].name, pairs[i - 1].name);
    while (slots < 2 * nb)
        slots *= 2;
    p->tab = calloc(slots, sizeof(*p->tab));
    p->idx = malloc((np + 1) * sizeof(*p->idx));
    if (p->tab == NULL || p->idx == NULL)
        return BL_ERROR;
    p->tabmask = slots - 1;
    size_t out = 0;
    for (size_t i = 0; i < np;) {
        size_t j = i;
        uint32_t off = (uint32_t)out;
        for (; j < np && pairs[j].kind == pairs[i].kind && !strcmp(pairs[j].name, pairs[i].name); j++)
            if (out == off || p->idx[out - 1] != pairs[j].rule)
                p->idx[out++] = pairs[j].rule;
        uint32_t h = bl_key_hash(pairs[i].kind, pairs[i].name);
        size_t s = h & p->tabmask;
        while (p->tab[s].key != NULL)
            s = (s + 1) & p->tabmask;
        p->tab[s] = (bl_bucket_t){ pairs[i].name, pairs[i].kind, h, off, (uint32_t)(out - off) };
        i = j;
    }
    return BL_OK;
}

int bl_policy_compile(bl_policy_t *p)
{
    size_t total = 0;
    int rc = BL_ERROR;
    bl_policy_index_free(p);
    for (size_t i = 0; i < p->n; i++)
        total += p->rules[i].identities.n + p->rules[i].groups.n;
    bl_pair_t *pairs = malloc((total + 1) * sizeof(*pairs));
    p->any = malloc((p->n + 1) * sizeof(*p->any));
    p->globs = malloc((p->n + 1) * sizeof(*p->globs));
    if (pairs == NULL || p->any == NULL || p->globs == NULL)
        goto end;
    size_t np = bl_policy_pairs(p, pairs);
    qsort(pairs, np, sizeof(*pairs), bl_pair_cmp);
    rc = bl_policy_table(p, pairs, np);
end:
    free(pairs);
    if (rc != BL_OK)
        bl_policy_index_free(p);
    p->compiled = 1;
    return rc;
}

/* Returns the bucket of rules listing identity (kind 'u') or group ('g')
 * `name`, setting *n; NULL if none. */
static const uint32_t *bl_policy_bucket(const bl_policy_t *p, char kind, const char *name,
                                        size_t *n)
{
    uint32_t h = bl_key_hash(kind, name);
    for (size_t s = h & p->tabmask; p->tab[s].key != NULL; s = (s + 1) & p->tabmask)
        if (p->tab[s].hash == h && p->tab[s].kind == kind && !strcmp(p->tab[s].key, name)) {
            *n = p->tab[s].n;
            return p->idx + p->tab[s].off;
        }
    *n = 0;
    return NULL;
}

/* ---- evaluation ---- */

/* Fields of the request that cannot be known (a truncated field, a create
 * whose name is in a body byline could not read, an exec argv cut short):
 * a deny or review rule that constrains them matches, an allow rule not. */
enum { BL_UNK_STRINGS = 1, BL_UNK_NAME = 2, BL_UNK_ARGV = 4 };

#define BL_RES_MAX (sizeof(((bl_kreq_t *)0)->resource) + sizeof(((bl_kreq_t *)0)->subresource) + 1)
#define BL_PATH_MAX_DECODED sizeof(((bl_kreq_t *)0)->path)

/* The request, prepared once per evaluation (on the stack). */
typedef struct {
    const bl_policy_req_t *q;
    const bl_kreq_t *k;
    unsigned kind;         /* BL_RULE_RESOURCE or BL_RULE_NONRESOURCE */
    uint32_t verb;
    unsigned unknown;      /* BL_UNK_* */
    int exec;              /* pods/exec */
    char res[BL_RES_MAX];  /* "resource" or "resource/subresource" */
    size_t reslen;
    char path[BL_PATH_MAX_DECODED]; /* non-resource path, percent-decoded */
    size_t pathlen;
} bl_view_t;

static int bl_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the non-resource path as the API server sees it (Go decodes the
 * whole path). Returns BL_OK or BL_ERROR (bad escape: unknown). */
static int bl_view_path(bl_view_t *v)
{
    const char *s = v->k->path;
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h = bl_hex(s[i + 1]), l = h < 0 ? -1 : bl_hex(s[i + 2]);
            if (h < 0 || l < 0)
                return BL_ERROR;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= sizeof(v->path))
            return BL_ERROR;
        v->path[o++] = (char)c;
    }
    v->path[o] = '\0';
    v->pathlen = o;
    return BL_OK;
}

/* exec, attach and port-forward are `create` on their subresource whether
 * kubectl sends a WebSocket GET or a SPDY POST: one rule covers both. */
static int bl_is_stream_sub(const bl_kreq_t *k)
{
    return k->is_resource && !strcmp(k->resource, "pods") &&
           (!strcmp(k->subresource, "exec") || !strcmp(k->subresource, "attach") ||
            !strcmp(k->subresource, "portforward"));
}

static void bl_view_init(bl_view_t *v, const bl_policy_req_t *q)
{
    const bl_kreq_t *k = q->kreq;
    v->q = q;
    v->k = k;
    v->kind = k->is_resource ? BL_RULE_RESOURCE : BL_RULE_NONRESOURCE;
    v->verb = bl_is_stream_sub(k) ? BL_VERB_CREATE : bl_policy_verb_bit(k->verb);
    if (v->verb == 0)
        v->verb = BL_VERB_OTHER;
    v->unknown = k->truncated ? BL_UNK_STRINGS : 0;
    if (k->is_resource && !strcmp(k->verb, "create") && k->name[0] == '\0' && k->subresource[0] == '\0')
        v->unknown |= BL_UNK_NAME;
    if (k->argv_truncated)
        v->unknown |= BL_UNK_ARGV;
    v->exec = k->is_resource && !strcmp(k->resource, "pods") && !strcmp(k->subresource, "exec");
    size_t rl = strnlen(k->resource, sizeof(k->resource) - 1), sl = strnlen(k->subresource, sizeof(k->subresource) - 1);
    memcpy(v->res, k->resource, rl); /* "resource[/subresource]": fits by BL_RES_MAX */
    v->reslen = rl;
    if (sl) {
        v->res[v->reslen++] = '/';
        memcpy(v->res + v->reslen, k->subresource, sl);
        v->reslen += sl;
    }
    v->res[v->reslen] = '\0';
    v->pathlen = 0;
    v->path[0] = '\0';
    if (!k->is_resource && bl_view_path(v) != BL_OK)
        v->unknown |= BL_UNK_STRINGS;
}

/* Returns 1 if `s` matches one of the patterns (or the list is empty). An
 * unknown value matches only for a deny/review rule (`cons`). */
static int bl_list_match(const bl_patlist_t *l, const char *s, size_t len, int unknown, int cons,
                         unsigned flags)
{
    if (l->n == 0)
        return 1;
    if (unknown)
        return cons;
    for (uint32_t i = 0; i < l->n; i++) {
        const bl_pat_t *p = &l->v[i];
        if (p->glob ? bl_glob_match(p->s, p->len, s, len, flags)
                    : p->len == len && memcmp(p->s, s, len) == 0)
            return 1;
    }
    return 0;
}

/* Resources: "*" alone is every resource and subresource (as in RBAC);
 * otherwise a pattern is matched against "resource[/subresource]" and
 * wildcards do not cross the '/': "pods" is not "pods/exec". */
static int bl_res_match(const bl_patlist_t *l, const bl_view_t *v, int cons)
{
    if (l->n == 0)
        return 1;
    if (v->unknown & BL_UNK_STRINGS)
        return cons;
    for (uint32_t i = 0; i < l->n; i++) {
        const bl_pat_t *p = &l->v[i];
        if ((p->len == 1 && p->s[0] == '*') ||
            (p->glob ? bl_glob_match(p->s, p->len, v->res, v->reslen, BL_GLOB_PATH)
                     : p->len == v->reslen && memcmp(p->s, v->res, v->reslen) == 0))
            return 1;
    }
    return 0;
}

/* The exec argv against `command`. Only pods/exec requests have one. */
static int bl_cmd_match(const bl_rule_t *r, const bl_view_t *v, int cons)
{
    if (r->cmd == BL_CMD_ANY)
        return 1;
    if (!v->exec)
        return 0;
    if (v->unknown & (BL_UNK_ARGV | BL_UNK_STRINGS))
        return cons;
    const bl_kreq_t *k = v->k;
    size_t n = r->argv.n;
    if (r->cmd == BL_CMD_PREFIX ? k->argc < n : k->argc != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const bl_pat_t *p = &r->argv.v[i];
        const char *a = bl_kreq_arg(k, i);
        size_t alen = strlen(a);
        if (r->cmd == BL_CMD_GLOB ? !bl_glob_match(p->s, p->len, a, alen, BL_GLOB_PATH)
                                  : (p->len != alen || memcmp(p->s, a, alen) != 0))
            return 0;
    }
    return 1;
}

/* Returns 1 if the rule's identities or groups name the requester. */
static int bl_subject_match(const bl_rule_t *r, const bl_policy_req_t *q)
{
    const char *a = q->actor ? q->actor : "";
    if (r->identities.n == 0 && r->groups.n == 0)
        return 1;
    if (bl_list_match(&r->identities, a, strlen(a), 0, 0, 0) && r->identities.n)
        return 1;
    for (size_t i = 0; i < q->ngroups && r->groups.n; i++)
        if (bl_list_match(&r->groups, q->groups[i], strlen(q->groups[i]), 0, 0, 0))
            return 1;
    return 0;
}

/* Returns 1 if rule r matches the request (its subject is checked only
 * when `subject`: a bucket already matched it). */
static int bl_rule_match(const bl_rule_t *r, const bl_view_t *v, int subject)
{
    const bl_kreq_t *k = v->k;
    int cons = r->effect != BL_EFFECT_ALLOW;
    int unk = (v->unknown & BL_UNK_STRINGS) != 0;
    if (!(r->kinds & v->kind) || !(r->verbs & v->verb))
        return 0;
    if (r->conns != UINT64_MAX && (v->q->conn < 0 || v->q->conn > 63 || !(r->conns >> v->q->conn & 1)))
        return 0;
    if (subject && !bl_subject_match(r, v->q))
        return 0;
    if (v->kind == BL_RULE_NONRESOURCE)
        return bl_list_match(&r->paths, v->path, v->pathlen, unk, cons, 0);
    return bl_list_match(&r->api_groups, k->api_group, strlen(k->api_group), unk, cons, 0) &&
           bl_res_match(&r->resources, v, cons) &&
           bl_list_match(&r->namespaces, k->namespace_, strlen(k->namespace_), unk, cons, 0) &&
           bl_list_match(&r->names, k->name, strlen(k->name), unk || (v->unknown & BL_UNK_NAME), cons, 0) &&
           bl_cmd_match(r, v, cons);
}

/* Visits a list of rule numbers, keeping the best decision so far. */
static void bl_scan(const bl_policy_t *p, const uint32_t *list, size_t n, const bl_view_t *v,
                    int subject, bl_decision_t *d, uint32_t *best)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t ri = list[i];
        const bl_rule_t *r = &p->rules[ri];
        if (d->rule && (r->effect < d->effect || (r->effect == d->effect && ri >= *best)))
            continue;
        if (bl_rule_match(r, v, subject)) {
            *d = (bl_decision_t){ r->effect, r, r->name };
            *best = ri;
        }
    }
}

bl_decision_t bl_policy_eval(const bl_policy_t *p, const bl_policy_req_t *q)
{
    return bl_policy_decide(p, q, NULL);
}

bl_decision_t bl_policy_decide(const bl_policy_t *p, const bl_policy_req_t *q, const char *kubectl_command)
{
    bl_decision_t d = { BL_EFFECT_DENY, NULL, BL_POLICY_DEFAULT_RULE };
    uint32_t best = UINT32_MAX;
    bl_view_t v;
    size_t n;
    const uint32_t *b;
    if (p == NULL || p->tab == NULL || q->kreq == NULL)
        return d;
    bl_view_init(&v, q);
    if (q->actor && (b = bl_policy_bucket(p, 'u', q->actor, &n)) != NULL)
        bl_scan(p, b, n, &v, 0, &d, &best);
    for (size_t i = 0; i < q->ngroups; i++)
        if ((b = bl_policy_bucket(p, 'g', q->groups[i], &n)) != NULL)
            bl_scan(p, b, n, &v, 0, &d, &best);
    bl_scan(p, p->globs, p->nglobs, &v, 1, &d, &best);
    bl_scan(p, p->any, p->nany, &v, 0, &d, &best);
    if (d.rule == NULL)
        d = (bl_decision_t){ BL_EFFECT_DENY, NULL, BL_POLICY_DEFAULT_RULE };
    /* The built-in rule is a review rule that only ever turns an allow
     * into review: deny still wins, and it lets nothing through that no
     * rule allows. */
    else if (d.effect == BL_EFFECT_ALLOW && (p->guard.builtins & BL_BUILTIN_BLAST_RADIUS) &&
             bl_policy_is_blast(q->kreq, kubectl_command))
        d = (bl_decision_t){ BL_EFFECT_REVIEW, &p->blast, p->blast.name };
    return d;
}

int bl_policy_is_blast(const bl_kreq_t *k, const char *kubectl_command)
{
    if (!k->is_resource || k->subresource[0])
        return 0;
    if (!strcmp(k->verb, "deletecollection"))
        return 1;
    if (k->name[0] == '\0' && (!strcmp(k->verb, "delete") || !strcmp(k->verb, "patch")))
        return 1;
    return kubectl_command && !strcmp(k->verb, "list") && !strcmp(kubectl_command, "kubectl delete");
}

/* Returns 1 if one of the lists names the identity or one of its groups. */
static int bl_names_match(const bl_patlist_t *ids, const bl_patlist_t *groups, const bl_policy_req_t *q)
{
    bl_rule_t r = { .identities = *ids, .groups = *groups };
    return (ids->n || groups->n) && bl_subject_match(&r, q);
}

int bl_policy_dry_run_only(const bl_policy_t *p, const bl_policy_req_t *q)
{
    return p && q->actor && bl_names_match(&p->guard.dry_run_identities, &p->guard.dry_run_groups, q);
}

int bl_policy_is_real_write(const bl_kreq_t *k)
{
    return k && bl_limit_class(k) == BL_CLASS_WRITES && strcmp(k->dry_run, "All") != 0;
}

const char *bl_effect_word(bl_effect_t e)
{
    return e == BL_EFFECT_ALLOW ? "allowed" : e == BL_EFFECT_REVIEW ? "review" : "denied";
}

/* ---- messages ---- */

/* Appends at most `max` bytes of s, with anything but printable ASCII
 * (and the quote and backslash, which JSON and shells would escape) as
 * '?', and "..." when it was cut. */
static int bl_put_safe(bl_buf_t *b, const char *s, size_t max)
{
    int rc = BL_OK;
    size_t i;
    for (i = 0; s[i] && i < max; i++) {
        char c = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
        rc |= bl_buf_append(b, &c, 1);
    }
    if (s[i])
        rc |= bl_buf_puts(b, "...");
    return rc ? BL_ERROR : BL_OK;
}

/* Appends the exec argv, words quoted with '...' when they hold a space
 * or shell characters; at most about 96 bytes. */
static int bl_put_argv(bl_buf_t *b, const bl_kreq_t *k)
{
    int rc = BL_OK;
    size_t start = bl_buf_size(b);
    for (size_t i = 0; i < k->argc; i++) {
        const char *a = bl_kreq_arg(k, i);
        int quote = a[0] == '\0' || strpbrk(a, " \t'$`;&|<>(){}*?[]~!#") != NULL;
        if (bl_buf_size(b) - start > 96) {
            rc |= bl_buf_puts(b, " ...");
            break;
        }
        rc |= bl_buf_puts(b, i ? (quote ? " '" : " ") : (quote ? "'" : ""));
        rc |= bl_put_safe(b, a, 64);
        rc |= quote ? bl_buf_puts(b, "'") : BL_OK;
    }
    if (k->argc == 0)
        rc |= bl_buf_puts(b, "(no command)");
    return rc ? BL_ERROR : BL_OK;
}

/* " in namespace ns", " in all namespaces", or nothing (cluster scope). */
static int bl_put_scope(bl_buf_t *b, const bl_kreq_t *k)
{
    const bl_kres_t *kr = bl_kres_find(k->api_group, k->resource);
    if (k->namespace_[0] && strcmp(k->resource, "namespaces")) {
        int rc = bl_buf_puts(b, " in namespace ");
        return rc | bl_put_safe(b, k->namespace_, 63);
    }
    if (!k->namespace_[0] && !(kr && (kr->flags & BL_KRES_CLUSTER)) &&
        (!strcmp(k->verb, "list") || !strcmp(k->verb, "watch") || !strcmp(k->verb, "deletecollection")))
        return bl_buf_puts(b, " in all namespaces");
    return BL_OK;
}

int bl_policy_describe(const bl_kreq_t *k, bl_buf_t *out)
{
    int rc = BL_OK;
    if (!k->is_resource) {
        rc |= bl_put_safe(out, k->verb[0] ? k->verb : "request", 16);
        rc |= bl_buf_puts(out, " ");
        return rc | bl_put_safe(out, k->path, 128);
    }
    if (bl_is_stream_sub(k)) {
        const char *s = k->subresource;
        rc |= bl_buf_puts(out, !strcmp(s, "exec") ? "exec " : !strcmp(s, "attach") ? "attach to pod "
                                                                                   : "port-forward pod ");
        if (!strcmp(s, "exec")) {
            rc |= bl_put_argv(out, k);
            rc |= bl_buf_puts(out, " in pod ");
        }
        rc |= bl_put_safe(out, k->name, 63);
        return rc | bl_put_scope(out, k);
    }
    rc |= bl_put_safe(out, k->verb[0] ? k->verb : "request", 20);
    rc |= bl_buf_puts(out, " ");
    if (!strcmp(k->resource, "namespaces") && k->name[0] && !k->subresource[0]) {
        rc |= bl_buf_puts(out, "namespace ");
        return rc | bl_put_safe(out, k->name, 63);
    }
    rc |= bl_put_safe(out, k->resource, 63);
    if (k->api_group[0]) {
        rc |= bl_buf_puts(out, ".");
        rc |= bl_put_safe(out, k->api_group, 63);
    }
    if (k->subresource[0]) {
        rc |= bl_buf_puts(out, "/");
        rc |= bl_put_safe(out, k->subresource, 31);
    }
    return rc | bl_put_scope(out, k);
}

/* What the blast-radius rule holds: "delete pods in bulk in namespace
 * web" (deletecollection, a nameless delete, kubectl delete's list) or
 * "patch pods without a name in namespace web". */
static int bl_describe_blast(const bl_kreq_t *k, bl_buf_t *out)
{
    int patch = !strcmp(k->verb, "patch");
    int rc = bl_buf_puts(out, patch ? "patch " : "delete ");
    rc |= bl_put_safe(out, k->resource, 63);
    if (k->api_group[0]) {
        rc |= bl_buf_puts(out, ".");
        rc |= bl_put_safe(out, k->api_group, 63);
    }
    rc |= bl_buf_puts(out, patch ? " without a name" : " in bulk");
    return rc | bl_put_scope(out, k);
}

/* The whole message fits in BL_POLICY_MESSAGE_MAX bytes: the description
 * of the request is cut first, so the rule's name always survives. */
#define BL_POLICY_MESSAGE_MAX 255

int bl_policy_message(const bl_decision_t *d, const bl_policy_req_t *q, bl_buf_t *out)
{
    char what[1024], tail[160], head[96];
    bl_buf_t w = { .base = what, .cap = sizeof(what), .max = sizeof(what) };
    const char *actor = q->actor ? q->actor : "an unauthenticated client";
    int blast = d->rule && !strcmp(d->name, BL_POLICY_BLAST_RULE);
    if (q->kreq == NULL || (blast ? bl_describe_blast(q->kreq, &w) : bl_policy_describe(q->kreq, &w)) != BL_OK)
        w.len = (size_t)snprintf(what, sizeof(what), "make this request");
    if (d->rule == NULL)
        snprintf(tail, sizeof(tail), ": no rule allows it (default deny)");
    else
        snprintf(tail, sizeof(tail), " (rule %s)", d->name);
    snprintf(head, sizeof(head), d->effect == BL_EFFECT_REVIEW ? "byline: %.64s needs human review to "
                                                               : "byline: %.64s may not ", actor);
    size_t room = BL_POLICY_MESSAGE_MAX - strlen(head) - strlen(tail);
    size_t wl = w.len;
    if (wl > room)
        wl = room - 3;
    int rc = bl_buf_puts(out, head);
    rc |= bl_buf_append(out, what, wl);
    rc |= wl < w.len ? bl_buf_puts(out, "...") : BL_OK;
    rc |= bl_buf_puts(out, tail);
    return rc ? BL_ERROR : BL_OK;
}
