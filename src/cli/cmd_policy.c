/*
 * cmd_policy.c - `byline policy check`: what the policy decides for an
 * identity's request, without a cluster. The request comes from
 * --request 'METHOD /path' or from a kubectl command line after --
 * (policy_kubectl.c); either way the real request parser (kube/reqinfo.h)
 * reads it and the real evaluator (policy/policy.h) decides, as
 * `byline serve` would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/cmd.h"
#include "cli/policy_kubectl.h"
#include "kube/reqinfo.h"
#include "policy/policy.h"

static const char bl_policy_help[] =
    "usage: byline policy check --dir DIR --as NAME [--group G]... [--connection C]\n"
    "                           (--request 'METHOD /path?query' | -- kubectl ARGS...)\n"
    "\n"
    "Prints the policy's decision for identity NAME (its groups from the registry,\n"
    "plus any --group) on connection C (default: the first), the rule that made it\n"
    "and the message the agent would get. Nothing is sent anywhere.\n"
    "\n"
    "  --request 'DELETE /api/v1/namespaces/web/pods/x'   one HTTP request, read by\n"
    "        byline's request parser (a /k8s/<connection>/ prefix picks the connection)\n"
    "  -- kubectl delete pod x -n web                     the requests that kubectl\n"
    "        command sends, e.g. exec = GET the pod, then the exec. Supported: get,\n"
    "        describe, delete NAME, create TYPE NAME, scale, exec, attach, logs,\n"
    "        port-forward, edit, patch, label, annotate, rollout restart; -n (default\n"
    "        namespace: default), -A, -l, -w, -c, -i, -t. Built-in types by singular,\n"
    "        plural, short name or plural.group. Others fail: use --request.\n"
    "\n"
    "Exit status: 0 every request allowed, 1 one denied (or needing review), 2 usage.\n";

#define BL_POLICY_MAX_GROUPS 64

typedef struct {
    const char *dir, *as, *conn, *request;
    const char *groups[BL_POLICY_MAX_GROUPS];
    size_t ngroups;
    int argc;            /* the kubectl command line after -- */
    char **argv;
} bl_popt_t;

/* Parses the options after "check". Returns BL_EXIT_OK, an exit status,
 * or -1 after printing help. */
static int bl_policy_args(int argc, char **argv, bl_popt_t *o)
{
    enum { O_DIR = 256, O_AS, O_GROUP, O_CONN, O_REQ };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },        { "dir", required_argument, NULL, O_DIR },
        { "as", required_argument, NULL, O_AS },   { "group", required_argument, NULL, O_GROUP },
        { "connection", required_argument, NULL, O_CONN },
        { "request", required_argument, NULL, O_REQ }, { NULL, 0, NULL, 0 },
    };
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("policy check", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_policy_help, stdout);
            return -1;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        if (c == O_GROUP && o->ngroups == BL_POLICY_MAX_GROUPS)
            return bl_cli_usage("policy check", "more than %d --group", BL_POLICY_MAX_GROUPS);
        if (c == O_GROUP)
            o->groups[o->ngroups++] = optarg;
        else
            *(c == O_DIR ? &o->dir : c == O_AS ? &o->as : c == O_CONN ? &o->conn : &o->request) = optarg;
    }
    int dashdash = optind > 0 && optind <= argc && !strcmp(argv[optind - 1], "--");
    o->argc = argc - optind;
    o->argv = argv + optind;
    if (o->dir == NULL || o->as == NULL)
        return bl_cli_usage("policy check", "--dir DIR and --as NAME are required");
    if ((o->request != NULL) == (o->argc > 0))
        return bl_cli_usage("policy check", "give either --request 'METHOD /path' or -- kubectl ARGS...");
    if (o->argc > 0 && !dashdash)
        return bl_cli_usage("policy check", "put the kubectl command after --, e.g. -- kubectl get pods");
    return BL_EXIT_OK;
}

/* The identity's groups from the registry plus --group. Returns the count
 * written to out[max]. */
static size_t bl_policy_groups(const bl_config_t *cfg, const bl_popt_t *o, char **out, size_t max, int *known)
{
    size_t n = 0;
    *known = 0;
    for (size_t i = 0; i < cfg->nids; i++) {
        if (cfg->ids[i].name == NULL || strcmp(cfg->ids[i].name, o->as))
            continue;
        *known = 1;
        for (size_t g = 0; g < cfg->ids[i].ngroups && n < max; g++)
            out[n++] = cfg->ids[i].groups[g];
    }
    for (size_t g = 0; g < o->ngroups && n < max; g++)
        out[n++] = (char *)o->groups[g];
    return n;
}

/* Splits "METHOD TARGET" into r (the target may carry /k8s/<conn>/).
 * Returns BL_OK or BL_ERROR after printing why. */
static int bl_policy_request(const char *s, bl_kcmd_req_t *r)
{
    while (*s == ' ')
        s++;
    const char *sp = strchr(s, ' ');
    if (sp == NULL || sp - s >= (long)sizeof(r->method) || sp == s) {
        bl_cli_usage("policy check", "--request: expected 'METHOD /path', e.g. 'GET /api/v1/namespaces/web/pods'");
        return BL_ERROR;
    }
    memcpy(r->method, s, (size_t)(sp - s));
    r->method[sp - s] = '\0';
    while (*sp == ' ')
        sp++;
    if (strlen(sp) >= sizeof(r->target)) {
        bl_cli_usage("policy check", "--request: the path is longer than %zu bytes", sizeof(r->target) - 1);
        return BL_ERROR;
    }
    snprintf(r->target, sizeof(r->target), "%s", sp);
    r->body[0] = '\0';
    return BL_OK;
}

/* Takes a "/k8s/<connection>" prefix off the target, as the gateway's
 * router does. Returns the connection index, `dflt` without a prefix, or
 * -1 (printed) for an unknown connection. */
static int bl_policy_route(const bl_config_t *cfg, bl_str_t *t, int dflt)
{
    if (t->len < 6 || memcmp(t->p, "/k8s/", 5))
        return dflt;
    size_t end = 5;
    while (end < t->len && t->p[end] != '/' && t->p[end] != '?')
        end++;
    const bl_connection_t *c = bl_config_connection(cfg, t->p + 5, end - 5);
    if (c == NULL) {
        bl_cli_fail("policy check", "no connection named in %.*s", (int)BL_MIN(end, 128), t->p);
        return -1;
    }
    *t = end < t->len ? (bl_str_t){ t->p + end, t->len - end } : BL_STR("/");
    return (int)(c - cfg->conns);
}

/* Prints the decision block of one parsed request. */
static void bl_policy_print(const bl_kcmd_req_t *rq, const bl_kreq_t *k, const bl_policy_req_t *q,
                            const bl_decision_t *d, const char *conn)
{
    char line[BL_KREQ_RENDER_MAX];
    bl_buf_t b = { .base = line, .cap = sizeof(line) - 1, .max = sizeof(line) - 1 };
    printf("request:    %s %s\n", rq->method, rq->target);
    if (bl_kreq_render(k, BL_STR_NULL, &b) == BL_OK) {
        line[b.len] = '\0';
        printf("action:     %s\n", line);
    }
    printf("connection: %s\ndecision:   %s\n", conn, bl_effect_word(d->effect));
    if (d->rule)
        printf("rule:       %s (%s:%u:%u)\n", d->name, d->rule->file ? d->rule->file : "?", d->rule->line, d->rule->col);
    else
        printf("rule:       %s (no rule allows it)\n", d->name);
    if (d->effect != BL_EFFECT_ALLOW) {
        b.len = 0;
        if (bl_policy_message(d, q, &b) == BL_OK) {
            line[b.len] = '\0';
            printf("message:    %s\n", line);
        }
    }
}

/* Parses and decides one request. Returns 0 allowed, 1 denied, review or
 * refused by the parser, 2 for an unknown connection. */
static int bl_policy_one(const bl_config_t *cfg, const bl_popt_t *o, char **groups, size_t ng, int conn,
                         const bl_kcmd_req_t *rq)
{
    bl_kreq_t *k = malloc(sizeof(*k));
    const char *why;
    bl_str_t t = { rq->target, strlen(rq->target) };
    int rc = BL_EXIT_FAIL;
    if ((conn = bl_policy_route(cfg, &t, conn)) < 0 || k == NULL) {
        free(k);
        return conn < 0 ? BL_EXIT_USAGE : BL_EXIT_FAIL;
    }
    bl_str_t method = { rq->method, strlen(rq->method) };
    if (bl_kreq_parse(k, method, t, &why) != BL_OK) {
        printf("request:    %s %s\ndecision:   refused (byline answers 400: %s)\n", rq->method, rq->target, why);
    } else {
        bl_str_t ct = rq->body[0] ? BL_STR("application/json")
                                  : !strcmp(rq->method, "PATCH") ? BL_STR("application/strategic-merge-patch+json")
                                                                 : BL_STR_NULL;
        bl_kreq_body(k, ct, rq->body, strlen(rq->body));
        bl_policy_req_t q = { o->as, groups, ng, conn, k };
        bl_decision_t d = bl_policy_eval(cfg->policy, &q);
        bl_policy_print(rq, k, &q, &d, cfg->conns[conn].name);
        rc = d.effect == BL_EFFECT_ALLOW ? BL_EXIT_OK : BL_EXIT_FAIL;
    }
    free(k);
    return rc;
}

/* Returns the requests to check (count >= 1) in `reqs`, or -1 after
 * printing why (usage). */
static int bl_policy_reqs(const bl_popt_t *o, bl_kcmd_req_t *reqs)
{
    bl_buf_t err;
    if (o->request)
        return bl_policy_request(o->request, &reqs[0]) == BL_OK ? 1 : -1;
    bl_buf_init(&err, 4096);
    int n = bl_kcmd_parse(o->argc, o->argv, reqs, BL_KCMD_MAX_REQS, &err);
    if (n < 0) {
        while (bl_buf_size(&err) && bl_buf_data(&err)[bl_buf_size(&err) - 1] == '\n')
            err.len--;
        bl_cli_usage("policy check", "%.*s", (int)bl_buf_size(&err), bl_buf_data(&err));
    }
    bl_buf_free(&err);
    return n < 0 ? -1 : n;
}

static int bl_policy_check(int argc, char **argv)
{
    bl_popt_t o = { 0 };
    bl_config_t *cfg = NULL;
    char *groups[BL_POLICY_MAX_GROUPS * 2];
    int known, rc = bl_policy_args(argc, argv, &o), conn = 0, worst = BL_EXIT_OK;
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    bl_kcmd_req_t *reqs = calloc(BL_KCMD_MAX_REQS, sizeof(*reqs));
    int n = reqs ? bl_policy_reqs(&o, reqs) : -1;
    if (n < 0 || (rc = bl_cli_load("policy check", o.dir, &cfg)) != BL_EXIT_OK) {
        free(reqs);
        return n < 0 ? BL_EXIT_USAGE : rc;
    }
    if (o.conn) {
        const bl_connection_t *c = bl_config_connection(cfg, o.conn, strlen(o.conn));
        conn = c ? (int)(c - cfg->conns) : -1;
    }
    size_t ng = bl_policy_groups(cfg, &o, groups, BL_ARRAY_LEN(groups), &known);
    if (conn < 0) {
        worst = bl_cli_usage("policy check", "no connection named '%s' in %s", o.conn, cfg->path);
    } else {
        if (!known)
            fprintf(stderr, "byline policy check: note: %s is not a registered identity; evaluating it "
                            "with %zu group(s) from --group\n", o.as, ng);
        for (int i = 0; i < n; i++) {
            int one = bl_policy_one(cfg, &o, groups, ng, conn, &reqs[i]);
            worst = BL_MAX(worst, one);
            if (i + 1 < n)
                printf("\n");
        }
    }
    bl_config_free(cfg);
    free(reqs);
    return worst;
}

int bl_cmd_policy(int argc, char **argv)
{
    if (argc < 2)
        return bl_cli_usage("policy", "expected check");
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        fputs(bl_policy_help, stdout);
        return BL_EXIT_OK;
    }
    if (!strcmp(verb, "check"))
        return bl_policy_check(argc - 1, argv + 1);
    return bl_cli_usage("policy", "unknown subcommand '%s' (check)", verb);
}
