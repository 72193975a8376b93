/*
 * cmd_review.c - `byline review list|show|approve|deny`: a person decides
 * on the requests a `review` rule held back (docs/POLICY.md "Review").
 *
 * The CLI writes decisions to the review store (DIR/state/reviews.db)
 * only; the gateway, the ledger's one writer, records them in the audit
 * ledger. The CLI's trust is the host account that can read and write
 * DIR: --as names the reviewer, who must be an identity of the config,
 * live, in policy.reviewer_group, and not the identity that asked.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"
#include "cli/cmd.h"
#include "config/values.h"
#include "review/store.h"

#define BL_REVIEW_FOR_MAX_MS (24u * 3600u * 1000u)

static const char bl_review_help[] =
    "usage: byline review list    --dir DIR [--all] [--json]\n"
    "       byline review show    ID --dir DIR [--json]\n"
    "       byline review approve ID --dir DIR --as NAME [--for DURATION] [--reason TEXT]\n"
    "       byline review deny    ID --dir DIR --as NAME --reason TEXT\n"
    "\n"
    "Decides on requests that a `review` rule held back. The agent's 403 names\n"
    "the review id (r-...). An approval lets that identity run exactly that\n"
    "command (same verb, object, exec argv, connection) until the window ends:\n"
    "--for, default policy.review_window (15m), at most 24h.\n"
    "\n"
    "  list      pending reviews and open approvals (--all: every review)\n"
    "  show      one review\n"
    "  approve   grant it; --as NAME is the reviewer\n"
    "  deny      refuse it, with a reason\n"
    "\n"
    "The reviewer (--as) must be an identity in DIR's configuration, not expired\n"
    "or revoked, a member of policy.reviewer_group (default \"reviewers\"; \"*\"\n"
    "allows any identity), and not the identity that asked. Whoever can write\n"
    "DIR can act as any reviewer: run this on the gateway host as its operator.\n"
    "The gateway writes each decision into the audit ledger (a notice with\n"
    "event review-approved or review-denied) when it next handles a request a\n"
    "review rule matches.\n";

typedef struct {
    const char *dir, *as, *reason, *dur;
    int all, json;
    const char *id;
} bl_review_opts_t;

/* Parses the options of `byline review SUB`. Returns BL_EXIT_OK or BL_EXIT_USAGE. */
static int bl_review_args(int argc, char **argv, int want_id, bl_review_opts_t *o)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' }, { "as", required_argument, NULL, 'a' },
        { "reason", required_argument, NULL, 'r' }, { "for", required_argument, NULL, 'f' },
        { "all", no_argument, NULL, 'A' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("review", argc, argv, opts)) != -1) {
        switch (c) {
        case 'd': o->dir = optarg; break;
        case 'a': o->as = optarg; break;
        case 'r': o->reason = optarg; break;
        case 'f': o->dur = optarg; break;
        case 'A': o->all = 1; break;
        case 'j': o->json = 1; break;
        case 'h': fputs(bl_review_help, stdout); exit(BL_EXIT_OK);
        default: return BL_EXIT_USAGE;
        }
    }
    if (o->dir == NULL)
        return bl_cli_usage("review", "--dir DIR is required");
    if (want_id && optind < argc)
        o->id = argv[optind++];
    if (want_id && o->id == NULL)
        return bl_cli_usage("review", "expected a review ID (r-...)");
    if (optind < argc)
        return bl_cli_usage("review", "unexpected argument '%s'", argv[optind]);
    if (o->id && !bl_review_id_ok(o->id))
        return bl_cli_usage("review", "'%s' is not a review id (r- and 10 characters of 0-9 a-z)", o->id);
    return BL_EXIT_OK;
}

static int64_t bl_review_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Writes ms as "2026-06-15T12:04:01Z" (or "-" for 0) into out. */
static const char *bl_review_when(int64_t ms, char *out, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    if (ms == 0 || gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "-");
    return out;
}

/* Returns a new JSON object for one review (NULL on OOM). */
static json_t *bl_review_json(const bl_review_t *rv)
{
    char a[32], b[32], c[32];
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", rv->id, "state",
                     bl_review_state_word(rv->state), "identity", rv->identity, "connection", rv->connection, "rule",
                     rv->rule, "action", rv->action, "command_sha256", rv->key_sha256, "request_id", rv->record,
                     "requested", bl_review_when(rv->requested_ms, a, sizeof(a)), "reviewer", rv->reviewer, "decided",
                     bl_review_when(rv->decided_ms, b, sizeof(b)), "until", bl_review_when(rv->until_ms, c, sizeof(c)),
                     "reason", rv->reason);
}

/* Prints one review as JSON (one line) or as a line of the table. */
static int bl_review_print(const bl_review_t *rv, void *arg)
{
    const bl_review_opts_t *o = arg;
    char a[32], b[32];
    if (o->json) {
        json_t *j = bl_review_json(rv);
        int rc = j && json_dumpf(j, stdout, JSON_COMPACT) == 0 ? BL_OK : BL_ERROR;
        json_decref(j);
        fputc('\n', stdout);
        return rc;
    }
    printf("%-12s  %-8s  %-20s  %-20s  %s  %s  %s%s%s\n", rv->id, bl_review_state_word(rv->state), rv->identity,
           bl_review_when(rv->requested_ms, a, sizeof(a)), rv->connection, rv->action,
           rv->reviewer[0] ? "by " : "", rv->reviewer,
           rv->state == BL_REVIEW_APPROVED ? bl_review_when(rv->until_ms, b, sizeof(b)) : "");
    return BL_OK;
}

/* Loads the config and opens its review store. BL_EXIT_OK or BL_EXIT_FAIL. */
static int bl_review_load(const bl_review_opts_t *o, bl_config_t **cfg, bl_review_store_t **st)
{
    bl_buf_t err;
    if (bl_cli_load("review", o->dir, cfg) != BL_EXIT_OK)
        return BL_EXIT_FAIL;
    bl_buf_init(&err, 1024);
    *st = bl_review_open((*cfg)->dir, &err);
    int rc = *st ? BL_EXIT_OK : bl_cli_fail("review", "%s", bl_buf_cstr(&err));
    bl_buf_free(&err);
    return rc;
}

static int bl_review_list_cmd(int argc, char **argv)
{
    bl_review_opts_t o = { 0 };
    bl_config_t *cfg = NULL;
    bl_review_store_t *st = NULL;
    bl_buf_t err;
    int rc = bl_review_args(argc, argv, 0, &o);
    if (rc != BL_EXIT_OK)
        return rc;
    if (o.as || o.reason || o.dur)
        return bl_cli_usage("review", "list takes only --dir, --all and --json");
    if ((rc = bl_review_load(&o, &cfg, &st)) != BL_EXIT_OK)
        goto end;
    bl_buf_init(&err, 1024);
    if (!o.json)
        printf("%-12s  %-8s  %-20s  %-20s  %s\n", "ID", "STATE", "IDENTITY", "REQUESTED", "CONNECTION ACTION");
    if (bl_review_list(st, o.all, bl_review_now_ms(), cfg->review_expire_ms ? cfg->review_expire_ms : BL_REVIEW_EXPIRE_MS,
                       bl_review_print, &o, &err) < 0)
        rc = bl_cli_fail("review", "%s", bl_buf_cstr(&err));
    bl_buf_free(&err);
end:
    bl_review_close(st);
    bl_config_free(cfg);
    return rc;
}

static int bl_review_show_cmd(int argc, char **argv)
{
    bl_review_opts_t o = { 0 };
    bl_config_t *cfg = NULL;
    bl_review_store_t *st = NULL;
    bl_review_t rv;
    bl_buf_t err;
    int rc = bl_review_args(argc, argv, 1, &o);
    if (rc != BL_EXIT_OK)
        return rc;
    if ((rc = bl_review_load(&o, &cfg, &st)) != BL_EXIT_OK)
        goto end;
    bl_buf_init(&err, 1024);
    int got = bl_review_get(st, o.id, &rv, &err);
    if (got == BL_DECLINED)
        rc = bl_cli_fail("review", "no review %s", o.id);
    else if (got != BL_OK)
        rc = bl_cli_fail("review", "%s", bl_buf_cstr(&err));
    else if (o.json)
        bl_review_print(&rv, &o);
    else {
        json_t *j = bl_review_json(&rv);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) printf("%-15s %s\n", k, json_string_value(v));
        json_decref(j);
    }
    bl_buf_free(&err);
end:
    bl_review_close(st);
    bl_config_free(cfg);
    return rc;
}

/* Returns NULL if `name` may decide reviews, else why not (static or in why[]). */
static const char *bl_review_reviewer(const bl_config_t *cfg, const char *name, char *why, size_t cap)
{
    const bl_identity_t *id = NULL;
    for (size_t i = 0; i < cfg->nids && id == NULL; i++)
        if (!strcmp(cfg->ids[i].name, name))
            id = &cfg->ids[i];
    if (id == NULL)
        return "is not an identity in this configuration";
    if (id->revoked)
        return "is revoked";
    if (id->expires && id->expires <= (int64_t)time(NULL))
        return "has expired";
    const char *group = cfg->reviewer_group ? cfg->reviewer_group : "reviewers";
    if (!strcmp(group, "*"))
        return NULL;
    for (size_t g = 0; g < id->ngroups; g++)
        if (!strcmp(id->groups[g], group))
            return NULL;
    snprintf(why, cap, "is not in the reviewer group \"%s\" (policy.reviewer_group)", group);
    return why;
}

/* Returns 1 if s is UTF-8 without control characters (it goes into the
 * ledger's JSON and onto terminals), else 0. */
static int bl_review_text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    json_t *j = json_string(s); /* NULL for invalid UTF-8 */
    json_decref(j);
    return j != NULL;
}

/* Checks the options of approve/deny; sets *window. BL_EXIT_OK or BL_EXIT_USAGE. */
static int bl_review_decision_args(const bl_review_opts_t *o, const bl_config_t *cfg, int approve, uint64_t *window)
{
    const char *why = NULL;
    char lo[24];
    *window = cfg->review_window_ms ? cfg->review_window_ms : BL_REVIEW_WINDOW_MS;
    if (o->as == NULL)
        return bl_cli_usage("review", "--as NAME (the reviewer's identity) is required");
    if (!approve && (o->reason == NULL || o->reason[0] == '\0'))
        return bl_cli_usage("review", "deny needs --reason TEXT");
    if (!approve && o->dur)
        return bl_cli_usage("review", "deny does not take --for");
    if (o->reason && strlen(o->reason) > BL_REVIEW_REASON_MAX)
        return bl_cli_usage("review", "--reason is longer than %d bytes", BL_REVIEW_REASON_MAX);
    if (o->reason && !bl_review_text_ok(o->reason))
        return bl_cli_usage("review", "--reason must be UTF-8 text without control characters");
    if (o->dur && (bl_duration_parse(o->dur, strlen(o->dur), window, &why) != BL_OK || *window < 1000 ||
                   *window > BL_REVIEW_FOR_MAX_MS))
        return bl_cli_usage("review", "--for %s: %s", o->dur,
                            why ? why : (bl_duration_format(*window, lo, sizeof(lo)), "must be between 1s and 24h"));
    return BL_EXIT_OK;
}

/* approve (approve = 1) or deny. */
static int bl_review_decide_cmd(int argc, char **argv, int approve)
{
    bl_review_opts_t o = { 0 };
    bl_config_t *cfg = NULL;
    bl_review_store_t *st = NULL;
    bl_review_t rv;
    uint64_t window = 0;
    char why[160], a[32];
    const char *bad;
    bl_buf_t err;
    int rc = bl_review_args(argc, argv, 1, &o);
    if (rc != BL_EXIT_OK)
        return rc;
    if (o.all || o.json)
        return bl_cli_usage("review", "%s does not take --all or --json", approve ? "approve" : "deny");
    if ((rc = bl_review_load(&o, &cfg, &st)) != BL_EXIT_OK)
        goto end;
    if ((rc = bl_review_decision_args(&o, cfg, approve, &window)) != BL_EXIT_OK)
        goto end;
    if ((bad = bl_review_reviewer(cfg, o.as, why, sizeof(why))) != NULL) {
        rc = bl_cli_fail("review", "%s cannot decide reviews: it %s", o.as, bad);
        goto end;
    }
    bl_buf_init(&err, 1024);
    int got = bl_review_decide(st, o.id, o.as, approve, window, o.reason, bl_review_now_ms(),
                               cfg->review_expire_ms ? cfg->review_expire_ms : BL_REVIEW_EXPIRE_MS, &rv, &err);
    if (got != BL_OK)
        rc = bl_cli_fail("review", "%s", bl_buf_cstr(&err));
    else if (approve)
        printf("review %s approved by %s until %s: %s may run \"%s\" on %s\n", rv.id, rv.reviewer,
               bl_review_when(rv.until_ms, a, sizeof(a)), rv.identity, rv.action, rv.connection);
    else
        printf("review %s denied by %s: %s may not run \"%s\" on %s\n", rv.id, rv.reviewer, rv.identity, rv.action,
               rv.connection);
    bl_buf_free(&err);
end:
    bl_review_close(st);
    bl_config_free(cfg);
    return rc;
}

int bl_cmd_review(int argc, char **argv)
{
    if (argc < 2)
        return bl_cli_usage("review", "expected list, show, approve or deny");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(bl_review_help, stdout);
        return BL_EXIT_OK;
    }
    if (!strcmp(sub, "list"))
        return bl_review_list_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "show"))
        return bl_review_show_cmd(argc - 1, argv + 1);
    if (!strcmp(sub, "approve"))
        return bl_review_decide_cmd(argc - 1, argv + 1, 1);
    if (!strcmp(sub, "deny"))
        return bl_review_decide_cmd(argc - 1, argv + 1, 0);
    return bl_cli_usage("review", "unknown subcommand '%s' (list, show, approve, deny)", sub);
}
