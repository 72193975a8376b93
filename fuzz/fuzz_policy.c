/*
 * fuzz_policy.c - libFuzzer target for the hand-written parts of the
 * policy: the wildcard matcher (src/policy/glob.c) and evaluation with its
 * message (src/policy/policy.c) over requests read by the real parser.
 *
 * Input: PATTERN \0 STRING \0 METHOD TARGET (the last part optional).
 *
 * Besides crashes and sanitizer reports, the target aborts when:
 *   - for a pattern without [ or \ (where the syntaxes agree), the matcher
 *     disagrees with fnmatch(3): flags 0 against fnmatch's 0, and
 *     BL_GLOB_PATH against FNM_PATHNAME | FNM_PERIOD;
 *   - a decision names no rule, or a rule that is not the policy's;
 *   - a message is longer than 255 bytes or holds anything but printable
 *     ASCII without '"' and '\', or lacks the deciding rule's name (or,
 *     for the default deny, "no rule allows it").
 */
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kube/reqinfo.h"
#include "policy/glob.h"
#include "policy/policy.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); abort(); } } while (0)

static bl_policy_t *policy;

/* A small policy with every kind of field, built once. */
static bl_pat_t pat(const char *s)
{
    return (bl_pat_t){ strdup(s), (uint32_t)strlen(s), (uint8_t)bl_glob_is_glob(s, strlen(s)) };
}

static void list(bl_patlist_t *l, const char *a, const char *b)
{
    l->v = calloc(2, sizeof(*l->v));
    l->v[l->n++] = pat(a);
    if (b)
        l->v[l->n++] = pat(b);
}

static void build(void)
{
    policy = bl_policy_new();
    bl_rule_t *r = bl_policy_rule_add(policy);
    r->name = strdup("reads");
    r->effect = BL_EFFECT_ALLOW;
    r->verbs = BL_VERB_GET | BL_VERB_LIST | BL_VERB_WATCH;
    list(&r->identities, "agent-*", NULL);
    list(&r->resources, "*", NULL);
    r->kinds = BL_RULE_RESOURCE;
    r = bl_policy_rule_add(policy);
    r->name = strdup("logs");
    r->effect = BL_EFFECT_ALLOW;
    list(&r->identities, "agent-a", NULL);
    list(&r->argv, "cat", "/var/log/*");
    r->cmd = BL_CMD_GLOB;
    r->kinds = BL_RULE_RESOURCE;
    r = bl_policy_rule_add(policy);
    r->name = strdup("no-secrets");
    r->effect = BL_EFFECT_DENY;
    list(&r->groups, "readers", NULL);
    list(&r->resources, "secrets", "*/status");
    list(&r->names, "prod-*", "x");
    r->kinds = BL_RULE_RESOURCE;
    r = bl_policy_rule_add(policy);
    r->name = strdup("health");
    r->effect = BL_EFFECT_REVIEW;
    list(&r->paths, "/healthz*", "/version");
    r->kinds = BL_RULE_NONRESOURCE;
    if (bl_policy_compile(policy) != BL_OK)
        abort();
}

static int simple(const char *p)
{
    return strpbrk(p, "[\\") == NULL;
}

static void globs(const char *p, size_t pl, const char *s, size_t sl)
{
    int a = bl_glob_match(p, pl, s, sl, 0), b = bl_glob_match(p, pl, s, sl, BL_GLOB_PATH);
    (void)bl_glob_check(p, pl);
    (void)bl_glob_is_glob(p, pl);
    if (strlen(p) == pl && strlen(s) == sl && simple(p)) {
        CHECK(a == (fnmatch(p, s, 0) == 0));
        CHECK(b == (fnmatch(p, s, FNM_PATHNAME | FNM_PERIOD) == 0));
    }
}

static void decide(const char *req, size_t len, const char *actor)
{
    static bl_kreq_t k;
    static char *groups[] = { "readers" };
    const char *sp = memchr(req, ' ', len), *why;
    char msg[512];
    if (sp == NULL)
        return;
    bl_str_t m = { req, (size_t)(sp - req) }, t = { sp + 1, len - (size_t)(sp - req) - 1 };
    if (bl_kreq_parse(&k, m, t, &why) != BL_OK)
        return;
    bl_policy_req_t q = { actor, groups, 1, 0, &k };
    bl_decision_t d = bl_policy_eval(policy, &q);
    CHECK(d.name != NULL);
    CHECK(d.rule == NULL || d.rule == bl_policy_find(policy, d.name));
    bl_buf_t b = { .base = msg, .cap = sizeof(msg) - 1, .max = sizeof(msg) - 1 };
    CHECK(bl_policy_message(&d, &q, &b) == BL_OK);
    msg[b.len] = '\0';
    CHECK(b.len <= 255);
    for (size_t i = 0; i < b.len; i++)
        CHECK(msg[i] >= 0x20 && msg[i] < 0x7f && msg[i] != '"' && msg[i] != '\\');
    CHECK(d.rule ? strstr(msg, d.name) != NULL : strstr(msg, "no rule allows it") != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (policy == NULL)
        build();
    if (size > 8192)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *p = buf, *s = memchr(buf, '\0', size);
    size_t pl = s ? (size_t)(s - buf) : size;
    s = s ? s + 1 : buf + size;
    const char *end = buf + size, *r = memchr(s, '\0', (size_t)(end - s));
    size_t sl = r ? (size_t)(r - s) : (size_t)(end - s);
    globs(p, pl, s, sl);
    if (r && r + 1 < end) {
        decide(r + 1, (size_t)(end - r - 1), "agent-a");
        decide(r + 1, (size_t)(end - r - 1), NULL);
    }
    free(buf);
    return 0;
}
