/*
 * policy.h - the access policy: named rules with an effect (allow, deny,
 * review) and match fields, evaluated for every request after
 * authentication and before the intent record (docs/POLICY.md).
 *
 * Semantics: deny wins over review, review over allow; a request no rule
 * allows is denied by the implicit rule "default-deny". Among rules of the
 * winning effect, the first in configuration order names the decision.
 *
 * Life cycle: the loader (src/config/policy.c) creates a policy with
 * bl_policy_new(), adds rules with bl_policy_rule_add() and fills them,
 * then bl_policy_compile() builds the lookup index. A compiled policy is
 * immutable: any number of threads may evaluate it at once. Evaluation
 * does not allocate and costs O(rules that name the identity or one of its
 * groups + rules that name no identity or group + glob-subject rules).
 */
#ifndef BL_POLICY_POLICY_H
#define BL_POLICY_POLICY_H

#include <stdint.h>
#include "core/buf.h"
#include "core/common.h"
#include "kube/reqinfo.h"

#define BL_POLICY_MAX_RULES    65536   /* across byline.yaml and its includes */
#define BL_POLICY_MAX_PATTERNS 4096    /* values in one match field of one rule */
#define BL_POLICY_NAME_MAX     63      /* rule names: [A-Za-z0-9._-], 1..63 bytes */
#define BL_POLICY_PATTERN_MAX  1024    /* bytes of one value */
#define BL_POLICY_DEFAULT_RULE "default-deny"

typedef enum {
    BL_EFFECT_ALLOW = 0,   /* ranks: a higher effect wins */
    BL_EFFECT_REVIEW = 1,
    BL_EFFECT_DENY = 2,
} bl_effect_t;

/* One value of a match field: exact unless `glob` (it has * ? or [). */
typedef struct {
    char *s;               /* owned, NUL-terminated */
    uint32_t len;
    uint8_t glob;
} bl_pat_t;

/* A match field: n == 0 means "absent: any value". */
typedef struct {
    bl_pat_t *v;           /* owned array */
    uint32_t n;
} bl_patlist_t;

/* How `command` matches an exec's argv. */
enum { BL_CMD_ANY = 0, BL_CMD_ARGV, BL_CMD_PREFIX, BL_CMD_GLOB };

/* Which requests a rule can match (set by the fields it has). */
enum { BL_RULE_RESOURCE = 1, BL_RULE_NONRESOURCE = 2 };

typedef struct {
    char *name;                /* unique; owned */
    bl_effect_t effect;
    char *file;                /* where it was written (owned), for messages */
    unsigned line, col;        /* 1-based */
    bl_patlist_t identities, groups;
    uint64_t conns;            /* bit i: connection i of the config; ~0 = any */
    uint32_t verbs;            /* BL_VERB_* bits; ~0 = any */
    bl_patlist_t api_groups, resources, namespaces, names, paths;
    int cmd;                   /* BL_CMD_* */
    bl_patlist_t argv;         /* with cmd: the words, prefix, or one glob per word */
    unsigned kinds;            /* BL_RULE_* */
} bl_rule_t;

typedef struct bl_policy_s bl_policy_t;

/* The outcome of one evaluation. `rule` is NULL for the default deny;
 * `name` is then BL_POLICY_DEFAULT_RULE. Both point into the policy. */
typedef struct {
    bl_effect_t effect;
    const bl_rule_t *rule;
    const char *name;
} bl_decision_t;

/* The request as the policy sees it. `kreq` NULL: the target was not
 * understood (never allowed). `conn` is the connection's index in the
 * config (< 64), or -1 when unknown (only rules without `connections`
 * match). Strings are borrowed. */
typedef struct {
    const char *actor;
    char *const *groups;
    size_t ngroups;
    int conn;
    const bl_kreq_t *kreq;
} bl_policy_req_t;

/* Verbs a rule may name. Non-resource requests use the lower-cased HTTP
 * method, which is one of these or BL_VERB_OTHER. */
enum {
    BL_VERB_GET = 1u << 0, BL_VERB_LIST = 1u << 1, BL_VERB_WATCH = 1u << 2,
    BL_VERB_CREATE = 1u << 3, BL_VERB_UPDATE = 1u << 4, BL_VERB_PATCH = 1u << 5,
    BL_VERB_DELETE = 1u << 6, BL_VERB_DELETECOLLECTION = 1u << 7, BL_VERB_PROXY = 1u << 8,
    BL_VERB_POST = 1u << 9, BL_VERB_PUT = 1u << 10, BL_VERB_HEAD = 1u << 11,
    BL_VERB_OPTIONS = 1u << 12, BL_VERB_OTHER = 1u << 31,
};

/* Returns the BL_VERB_* bit for a verb word (exact, lower case), or 0 if
 * the word is not a verb byline knows. */
uint32_t bl_policy_verb_bit(const char *word);

/* Returns a new empty policy (caller frees with bl_policy_free), or NULL
 * when out of memory. An empty compiled policy denies everything. */
bl_policy_t *bl_policy_new(void);

/* Frees a policy and every rule it owns. NULL is fine. */
void bl_policy_free(bl_policy_t *p);

/* Appends a rule with every field "any" and returns it for the caller to
 * fill (strings and arrays it sets become the policy's), or NULL when out
 * of memory or past BL_POLICY_MAX_RULES. Not after bl_policy_compile(). */
bl_rule_t *bl_policy_rule_add(bl_policy_t *p);

/* Returns the number of rules, and rule i (i < count). */
size_t bl_policy_count(const bl_policy_t *p);
const bl_rule_t *bl_policy_rule(const bl_policy_t *p, size_t i);

/* Returns the rule named `name`, or NULL. Not on the request path. */
const bl_rule_t *bl_policy_find(const bl_policy_t *p, const char *name);

/* Builds the index (by identity and group name). Returns BL_OK, or
 * BL_ERROR when out of memory (the policy then denies everything). */
int bl_policy_compile(bl_policy_t *p);

/* Decides one request. `p` NULL denies everything. Never allocates. */
bl_decision_t bl_policy_eval(const bl_policy_t *p, const bl_policy_req_t *q);

/*
 * Guardrails for agents (docs/POLICY.md): built-in rules, the dry-run-only
 * mode and rate limits. The loader fills the guard before compiling; the
 * policy owns what it puts there.
 */
enum { BL_BUILTIN_BLAST_RADIUS = 1 };
#define BL_POLICY_BLAST_RULE   "builtin-blast-radius"
#define BL_POLICY_DRY_RUN_RULE "builtin-dry-run-only"

typedef struct {
    unsigned builtins;                 /* BL_BUILTIN_* turned on; all by default */
    bl_patlist_t dry_run_identities;   /* dry-run-only mode for these identities */
    bl_patlist_t dry_run_groups;       /* ... and members of these groups */
    struct bl_limits_s *limits;        /* policy/limit.h; owned; NULL: none */
} bl_guard_t;

/* Returns the policy's guard (to fill before bl_policy_compile, or to
 * read). `p` must not be NULL. */
bl_guard_t *bl_policy_guard(bl_policy_t *p);

/* Returns 1 if the requester is in dry-run-only mode, else 0 (p NULL: 0). */
int bl_policy_dry_run_only(const bl_policy_t *p, const bl_policy_req_t *q);

/* Returns 1 if the request is a write that kube-apiserver would run for
 * real: a write-class request (not exec, attach or port-forward) without
 * dryRun=All in its query or DeleteOptions. Else 0. */
int bl_policy_is_real_write(const bl_kreq_t *k);

/* Returns 1 if the request falls under the built-in blast-radius rule:
 * deletecollection; delete or patch without a name; or a list sent by
 * `kubectl delete` (how --all and -l begin: kubectl lists, then deletes
 * each object by name). Else 0. */
int bl_policy_is_blast(const bl_kreq_t *k, const char *kubectl_command);

/* bl_policy_eval(), with the client's Kubectl-Command header (NULL if
 * none) so the blast-radius rule sees how `kubectl delete --all` begins.
 * Never allocates. */
bl_decision_t bl_policy_decide(const bl_policy_t *p, const bl_policy_req_t *q, const char *kubectl_command);

/* Returns "allowed", "denied" or "review" (the audit record's words). */
const char *bl_effect_word(bl_effect_t e);

/*
 * Appends the message the client is shown for a decision that is not
 * allow, e.g. "byline: agent-reporting may not delete pods in namespace
 * web (rule reporting-read-only)", or for the default deny "...: no rule
 * allows it". It names only the rule that decided (one that matched this
 * identity), never another. Printable ASCII only. Returns BL_OK, or
 * BL_ERROR when `out` is full (it then holds a truncated message).
 */
int bl_policy_message(const bl_decision_t *d, const bl_policy_req_t *q, bl_buf_t *out);

/* Appends the request part of that message ("delete pods in namespace
 * web", "exec cat /etc/passwd in pod api-0 in namespace web", "get
 * /version"). BL_OK or BL_ERROR when `out` is full. */
int bl_policy_describe(const bl_kreq_t *k, bl_buf_t *out);

#endif
