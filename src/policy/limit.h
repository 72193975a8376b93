/*
 * limit.h - per-identity rate limits per verb class (reads, writes, exec),
 * the `policy.limits` section (docs/POLICY.md, "Rate limits").
 *
 * Each limit is "N per period, burst B" and is enforced with one token
 * bucket per identity and class, kept as a GCRA "theoretical arrival
 * time" (one 64-bit time per bucket): a request at time t is admitted when
 * TAT - t <= (B - 1) * T, with T = period / N, and moves TAT on by T. The
 * state is in memory only (never written to disk), shared by every worker
 * thread: identities hash to one of BL_LIMIT_STRIPES stripes, each with
 * its own mutex and a fixed table of BL_LIMIT_STRIPE_SLOTS identities.
 * When a stripe is full, the identity it saw least recently is forgotten
 * (its buckets start full again the next time): memory is bounded by
 * BL_LIMIT_STRIPES * BL_LIMIT_STRIPE_SLOTS identities, allocated once.
 *
 * Which limit applies: for each class, the first entry (in configuration
 * order) that names the identity; failing that, the first that names one
 * of its groups; failing that, the first entry that names neither (a
 * default for everyone). A class no applicable entry sets is unlimited.
 *
 * Life cycle: the loader creates a set with bl_limits_new(), adds entries
 * with bl_limits_add() and fills them, then bl_limits_compile(). After
 * that, bl_limits_check() may be called from any thread at once.
 */
#ifndef BL_POLICY_LIMIT_H
#define BL_POLICY_LIMIT_H

#include <stdint.h>
#include "core/common.h"
#include "kube/reqinfo.h"

#define BL_LIMIT_MAX_ENTRIES  4096
#define BL_LIMIT_STRIPES      64
#define BL_LIMIT_STRIPE_SLOTS 256   /* identities per stripe: 16384 in all */
#define BL_LIMIT_RATE_MAX     1000000 /* N in "N/s" */
#define BL_LIMIT_BURST_MAX    1000000

/* Verb classes (docs/POLICY.md). */
typedef enum {
    BL_CLASS_READS = 0,   /* get, list, watch (counted once, when it starts), discovery
                             and other non-resource requests */
    BL_CLASS_WRITES,      /* create, update, patch, delete, deletecollection, proxy */
    BL_CLASS_EXEC,        /* pods/exec, pods/attach, pods/portforward */
    BL_CLASS_COUNT
} bl_class_t;

/* A rate: `count` requests per `period_ms`, `burst` at once. count == 0:
 * not set (unlimited). */
typedef struct {
    uint32_t count;
    uint32_t burst;
    uint64_t period_ms;
} bl_rate_t;

/* One entry of policy.limits. Strings are owned by the set. */
typedef struct {
    char *name;
    char **identities, **groups;   /* exact names */
    uint32_t nidentities, ngroups;
    bl_rate_t rate[BL_CLASS_COUNT];
    char *file;
    unsigned line, col;
} bl_limit_t;

typedef struct bl_limits_s bl_limits_t;

/* The verdict of one check. `name` points into the set. */
typedef struct {
    const bl_limit_t *limit;   /* the entry that applied; NULL: unlimited */
    uint64_t retry_after_s;    /* when limited: seconds until one more is admitted, rounded up */
} bl_limit_verdict_t;

/* Returns the class of a request (kreq NULL: reads). */
bl_class_t bl_limit_class(const bl_kreq_t *k);

/* Returns "reads", "writes" or "exec". */
const char *bl_class_name(bl_class_t c);

/*
 * Parses "N/s", "N/m" or "N/h", optionally followed by " burst B"
 * (e.g. "50/s burst 100"; the burst defaults to N). N and B are 1..10^6.
 * Returns BL_OK with *r, or BL_ERROR with *why (a static phrase).
 */
int bl_rate_parse(const char *s, size_t len, bl_rate_t *r, const char **why);

/* Writes a rate as the config spells it ("5/m", "50/s burst 100"). */
void bl_rate_format(const bl_rate_t *r, char *out, size_t n);

/* Returns a new empty set, or NULL when out of memory. Free with
 * bl_limits_free() (NULL is fine). */
bl_limits_t *bl_limits_new(void);
void bl_limits_free(bl_limits_t *L);

/* Appends an empty entry for the caller to fill (strings and arrays it
 * sets become the set's). NULL when out of memory or past
 * BL_LIMIT_MAX_ENTRIES, or after bl_limits_compile(). */
bl_limit_t *bl_limits_add(bl_limits_t *L);

/* Returns the number of entries, and entry i. */
size_t bl_limits_count(const bl_limits_t *L);
const bl_limit_t *bl_limits_entry(const bl_limits_t *L, size_t i);

/* Builds the name index and allocates the bucket table (only when some
 * entry sets a rate). Returns BL_OK, or BL_ERROR when out of memory. */
int bl_limits_compile(bl_limits_t *L);

/* Returns the entry whose rate for class `c` applies to the identity, or
 * NULL when the class is unlimited for it. Does not touch any bucket. */
const bl_limit_t *bl_limits_find(const bl_limits_t *L, const char *actor, char *const *groups,
                                 size_t ngroups, bl_class_t c);

/*
 * Takes one token from the identity's bucket for class `c` at time
 * `now_ns` (any monotonic clock, the same one every call). Returns BL_OK
 * (admitted, or unlimited: v->limit says which) or BL_DECLINED (limited:
 * v->retry_after_s >= 1). L NULL or actor NULL: BL_OK, unlimited. Never
 * allocates; thread-safe.
 */
int bl_limits_check(bl_limits_t *L, const char *actor, char *const *groups, size_t ngroups,
                    bl_class_t c, uint64_t now_ns, bl_limit_verdict_t *v);

/* Returns the number of identities with buckets now (for tests). */
size_t bl_limits_tracked(bl_limits_t *L);

#endif
