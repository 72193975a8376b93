/* reload.c - configuration reload without a restart (see reload.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include "audit/record.h"
#include "config/file.h"
#include "core/log.h"
#include "core/metrics.h"
#include "policy/policy.h"
#include "proxy/agent_hub.h"
#include "proxy/reload.h"

#define BL_RELOAD_NOTICE_MAX (256 * 1024)
#define BL_RELOAD_LIST_MAX   (16 * 1024)

typedef struct {
    char *path;                   /* owned, absolute */
    bl_filesig_t sig;             /* as last checked */
    unsigned char sha[32];        /* of the content the snapshot in force was loaded from */
    int hashed;                   /* sha is set (the file was readable) */
} bl_rwatch_t;

struct bl_reload_s {
    const bl_config_t *boot;
    bl_idreg_t *reg;
    bl_ledger_t *ledger;
    struct bl_hub_s *hub;
    char agent_keys[BL_PATH_MAX]; /* DIR/agent-keys.yaml with a hub, else "" */
    bl_rwatch_t *files;
    size_t nfiles;
    int64_t checked_ms, flushed_ms;
    int64_t started_ms;           /* when the reload in progress began (monotonic) */
};

/* Returns a monotonic clock in milliseconds. */
static int64_t bl_reload_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hashes the file's content into w->sha (w->hashed = 0 when unreadable). */
static void bl_rwatch_hash(bl_rwatch_t *w)
{
    bl_buf_t data, err;
    bl_buf_init(&data, BL_IDENTITIES_MAX_BYTES);
    bl_buf_init(&err, 512);
    w->hashed = bl_file_read(w->path, BL_IDENTITIES_MAX_BYTES, &data, &err) == BL_OK &&
                EVP_Digest(bl_buf_data(&data), bl_buf_size(&data), w->sha, NULL, EVP_sha256(), NULL) == 1;
    bl_buf_free(&data);
    bl_buf_free(&err);
}

static void bl_rwatch_free(bl_rwatch_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].path);
    free(v);
}

/* Adds path to the list unless it is there or the list is full. BL_OK or BL_ERROR (OOM). */
static int bl_rwatch_add(bl_rwatch_t *v, size_t *n, const char *path)
{
    if (path == NULL || path[0] == '\0' || *n >= BL_RELOAD_MAX_FILES)
        return BL_OK;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(v[i].path, path))
            return BL_OK;
    memset(&v[*n], 0, sizeof(v[*n]));
    if ((v[*n].path = strdup(path)) == NULL)
        return BL_ERROR;
    bl_filesig(path, &v[*n].sig);
    bl_rwatch_hash(&v[*n]);
    (*n)++;
    return BL_OK;
}

/* Returns the files cfg was loaded from (byline.yaml, the identities
 * file, each file a rule was written in), signed and hashed now; NULL
 * when out of memory. */
static bl_rwatch_t *bl_rwatch_list(const bl_config_t *cfg, const char *agent_keys, size_t *n)
{
    bl_rwatch_t *v = calloc(BL_RELOAD_MAX_FILES, sizeof(*v));
    int rc = v ? BL_OK : BL_ERROR;
    *n = 0;
    if (rc == BL_OK)
        rc = bl_rwatch_add(v, n, cfg->path) | bl_rwatch_add(v, n, cfg->identities_file) |
             bl_rwatch_add(v, n, agent_keys);
    for (size_t i = 0; rc == BL_OK && i < bl_policy_count(cfg->policy); i++)
        rc = bl_rwatch_add(v, n, bl_policy_rule(cfg->policy, i)->file);
    if (rc != BL_OK) {
        bl_rwatch_free(v, *n);
        return NULL;
    }
    return v;
}

/* Returns 1 if a connection of cfg goes through an agent. */
static int bl_has_agents(const bl_config_t *cfg)
{
    for (size_t k = 0; k < cfg->nconns; k++)
        if (cfg->conns[k].via_agent)
            return 1;
    return 0;
}

bl_reload_t *bl_reload_new(const bl_config_t *boot)
{
    bl_reload_t *rl = calloc(1, sizeof(*rl));
    if (rl != NULL && bl_has_agents(boot) &&
        bl_file_pathf(rl->agent_keys, sizeof(rl->agent_keys), "%s/agent-keys.yaml", boot->dir) != BL_OK)
        rl->agent_keys[0] = '\0';
    if (rl == NULL || (rl->files = bl_rwatch_list(boot, rl->agent_keys, &rl->nfiles)) == NULL) {
        bl_error("reload: out of memory");
        free(rl);
        return NULL;
    }
    rl->boot = boot;
    bl_metric_set(BL_M_CONFIG_LAST_RELOAD_OK, 1);
    bl_metric_set(BL_M_CONFIG_LAST_RELOAD_TS, (int64_t)time(NULL));
    return rl;
}

void bl_reload_attach(bl_reload_t *rl, bl_idreg_t *reg, bl_ledger_t *ledger, struct bl_hub_s *hub)
{
    rl->reg = reg;
    rl->ledger = ledger;
    rl->hub = hub;
}

void bl_reload_free(bl_reload_t *rl)
{
    if (rl == NULL)
        return;
    bl_rwatch_free(rl->files, rl->nfiles);
    free(rl);
}

/* ---- what only a restart applies ---- */

static int bl_same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && !strcmp(a, b);
}

/* Appends ", what" (or "what" first) to out. */
static int bl_need(bl_buf_t *out, const char *what, const char *name)
{
    return bl_buf_printf(out, "%s%s%s%s", bl_buf_size(out) ? ", " : "", what, name ? " " : "",
                         name ? name : "");
}

/* Returns 1 if any rule of policy p has effect review. */
static int bl_has_review(const struct bl_policy_s *p)
{
    for (size_t i = 0; i < bl_policy_count(p); i++)
        if (bl_policy_rule(p, i)->effect == BL_EFFECT_REVIEW)
            return 1;
    return 0;
}

static int bl_conn_same(const bl_connection_t *a, const bl_connection_t *b)
{
    return bl_same(a->url, b->url) && bl_same(a->ca_file, b->ca_file) &&
           bl_same(a->server_name, b->server_name) && bl_same(a->token_file, b->token_file) &&
           bl_same(a->cert_file, b->cert_file) && bl_same(a->key_file, b->key_file) &&
           a->capture_set == b->capture_set && a->capture_max == b->capture_max &&
           a->impersonate == b->impersonate && bl_same(a->impersonate_user, b->impersonate_user);
}

static int bl_issuer_same(const bl_issuer_t *a, const bl_issuer_t *b)
{
    int same = bl_same(a->issuer, b->issuer) && bl_same(a->audience, b->audience) &&
               bl_same(a->jwks_file, b->jwks_file) && bl_same(a->jwks_url, b->jwks_url) &&
               bl_same(a->ca_file, b->ca_file) && a->clock_skew_ms == b->clock_skew_ms &&
               a->refresh_ms == b->refresh_ms && bl_same(a->username_claim, b->username_claim) &&
               bl_same(a->username_prefix, b->username_prefix) &&
               bl_same(a->groups_claim, b->groups_claim) &&
               bl_same(a->groups_prefix, b->groups_prefix) && a->nclaims == b->nclaims;
    for (size_t i = 0; same && i < a->nclaims; i++)
        same = bl_same(a->claims[i].name, b->claims[i].name) && bl_same(a->claims[i].value, b->claims[i].value);
    return same;
}

static int bl_audit_same(const bl_config_t *a, const bl_config_t *b)
{
    return bl_same(a->audit_dir, b->audit_dir) && bl_same(a->audit_signing_key, b->audit_signing_key) &&
           bl_same(a->audit_signing_pub, b->audit_signing_pub) && bl_same(a->audit_origin, b->audit_origin) &&
           a->audit_sync == b->audit_sync && a->audit_commit_delay_ms == b->audit_commit_delay_ms &&
           a->audit_segment_bytes == b->audit_segment_bytes && a->audit_space_warn == b->audit_space_warn &&
           a->audit_space_warn_pct == b->audit_space_warn_pct && a->audit_space_refuse == b->audit_space_refuse &&
           a->audit_space_refuse_pct == b->audit_space_refuse_pct && a->audit_level == b->audit_level &&
           a->audit_body_max == b->audit_body_max && a->audit_capture_max == b->audit_capture_max;
}

static int bl_limits_same(const bl_config_t *a, const bl_config_t *b)
{
    return a->workers == b->workers && a->max_connections == b->max_connections &&
           a->max_header_bytes == b->max_header_bytes && a->max_headers == b->max_headers &&
           a->header_timeout_ms == b->header_timeout_ms && a->idle_timeout_ms == b->idle_timeout_ms &&
           a->connect_timeout_ms == b->connect_timeout_ms && a->drain_timeout_ms == b->drain_timeout_ms;
}

/* The connections' names and order (what rules refer to) must not move. */
static int bl_conns_fixed(const bl_config_t *a, const bl_config_t *b, bl_buf_t *out)
{
    int same = a->nconns == b->nconns;
    for (size_t k = 0; same && k < a->nconns; k++)
        same = !strcmp(a->conns[k].name, b->conns[k].name) && a->conns[k].via_agent == b->conns[k].via_agent;
    if (same)
        return BL_OK;
    bl_buf_reset(out);
    bl_buf_puts(out, "connections were added, removed, renamed, reordered or moved to or from "
                "`via: agent`; that needs a restart");
    return BL_DECLINED;
}

int bl_reload_restart_needs(const bl_config_t *boot, const bl_config_t *cfg, bl_buf_t *out)
{
    int rc = BL_OK;
    if (bl_conns_fixed(boot, cfg, out) != BL_OK)
        return BL_DECLINED;
    if (!bl_same(boot->listen_host, cfg->listen_host) || boot->listen_port != cfg->listen_port)
        rc |= bl_need(out, "listen", NULL);
    if (!bl_same(boot->tls_cert, cfg->tls_cert) || !bl_same(boot->tls_key, cfg->tls_key) ||
        !bl_same(boot->client_ca, cfg->client_ca))
        rc |= bl_need(out, "tls", NULL);
    if (!bl_audit_same(boot, cfg))
        rc |= bl_need(out, "audit", NULL);
    if (!bl_same(boot->metrics_listen, cfg->metrics_listen))
        rc |= bl_need(out, "metrics", NULL);
    if (!bl_limits_same(boot, cfg))
        rc |= bl_need(out, "workers, limits or timeouts", NULL);
    for (size_t k = 0; k < boot->nconns; k++)
        if (!bl_conn_same(&boot->conns[k], &cfg->conns[k]))
            rc |= bl_need(out, "connection", cfg->conns[k].name);
    int issuers = boot->nissuers == cfg->nissuers;
    for (size_t i = 0; issuers && i < boot->nissuers; i++)
        issuers = bl_issuer_same(&boot->issuers[i], &cfg->issuers[i]);
    if (!issuers)
        rc |= bl_need(out, "issuers", NULL);
    if (boot->review_expire_ms != cfg->review_expire_ms || boot->review_window_ms != cfg->review_window_ms ||
        boot->review_max_pending != cfg->review_max_pending || !bl_same(boot->reviewer_group, cfg->reviewer_group) ||
        (!bl_has_review(boot->policy) && bl_has_review(cfg->policy)))
        rc |= bl_need(out, "review settings (or the first review rule)", NULL);
    return rc == BL_OK ? BL_OK : BL_ERROR;
}

/* ---- the ledger notice ---- */

/* Writer thread: the notice is committed (or the ledger failed); free it. */
static void bl_reload_notice_done(bl_ledger_batch_t *b)
{
    if (!b->ok)
        bl_warn("reload: the ledger did not commit the reload notice");
    bl_buf_free(&b->entries);
    free(b);
}

static int bl_hex(bl_buf_t *out, const unsigned char *sha)
{
    int rc = bl_buf_puts(out, "\"");
    for (int i = 0; rc == BL_OK && i < 32; i++)
        rc = bl_buf_printf(out, "%02x", sha[i]);
    return rc | bl_buf_puts(out, "\"");
}

/* Appends {"PATH":"SHA-256 hex" or null,...} for the watched files
 * (sorted keys: the list is small, so a selection sort does). */
static int bl_files_json(const bl_rwatch_t *v, size_t n, bl_buf_t *out)
{
    int rc = bl_buf_puts(out, "{");
    const char *last = NULL;
    for (size_t done = 0; rc == BL_OK && done < n; done++) {
        const bl_rwatch_t *next = NULL;
        for (size_t i = 0; i < n; i++)
            if ((last == NULL || strcmp(v[i].path, last) > 0) && (next == NULL || strcmp(v[i].path, next->path) < 0))
                next = &v[i];
        rc |= bl_buf_puts(out, done ? "," : "") | bl_buf_json_str(out, next->path, strlen(next->path));
        rc |= bl_buf_puts(out, ":") | (next->hashed ? bl_hex(out, next->sha) : bl_buf_puts(out, "null"));
        last = next->path;
    }
    return rc | bl_buf_puts(out, "}");
}

/* Queues the `reload` notice (canonical JSON: keys sorted). Logged on failure. */
static void bl_reload_notice(bl_reload_t *rl, const char *changed, const char *restart, const bl_config_t *cfg)
{
    bl_ledger_batch_t *b = calloc(1, sizeof(*b));
    bl_buf_t j, detail;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    bl_buf_init(&j, BL_RELOAD_NOTICE_MAX);
    bl_buf_init(&detail, BL_RELOAD_LIST_MAX + 512);
    int rc = b == NULL ? BL_ERROR : BL_OK;
    rc |= bl_buf_printf(&detail, "configuration reloaded: %zu rule%s, %zu identit%s; changed: %s; needs a restart: %s",
                        bl_policy_count(cfg->policy), bl_policy_count(cfg->policy) == 1 ? "" : "s",
                        cfg->nids, cfg->nids == 1 ? "y" : "ies", changed[0] ? changed : "nothing",
                        restart[0] ? restart : "nothing");
    rc |= bl_buf_puts(&j, "{\"changed\":") | bl_buf_json_str(&j, changed, strlen(changed));
    rc |= bl_buf_puts(&j, ",\"config_sha256\":") | bl_hex(&j, rl->files[0].sha);
    rc |= bl_buf_puts(&j, ",\"detail\":") | bl_buf_json_str(&j, bl_buf_data(&detail), bl_buf_size(&detail));
    rc |= bl_buf_puts(&j, ",\"event\":\"reload\",\"files\":") | bl_files_json(rl->files, rl->nfiles, &j);
    rc |= bl_buf_puts(&j, ",\"kind\":\"notice\",\"restart_needed\":") | bl_buf_json_str(&j, restart, strlen(restart));
    rc |= bl_buf_puts(&j, ",\"ts\":") | bl_rec_ts(&j, &ts);
    rc |= bl_buf_puts(&j, ",\"version\":\"" BL_VERSION "\"}");
    if (rc == BL_OK) {
        bl_buf_init(&b->entries, BL_RELOAD_NOTICE_MAX + 64);
        b->done = bl_reload_notice_done;
        b->owner = rl;
        rc = bl_ledger_batch_add(b, BL_ENT_OTHER, NULL, bl_buf_data(&j), bl_buf_size(&j));
    }
    if (rc == BL_OK)
        bl_ledger_submit(rl->ledger, b);
    else {
        bl_error("reload: the reload notice could not be built (too many or too long file names)");
        if (b)
            bl_buf_free(&b->entries);
        free(b);
    }
    bl_buf_free(&j);
    bl_buf_free(&detail);
}

/* ---- reloading ---- */

/* Returns path relative to the config directory when it is inside it. */
static const char *bl_rel(const bl_config_t *cfg, const char *path)
{
    size_t n = strlen(cfg->dir);
    return !strncmp(path, cfg->dir, n) && path[n] == '/' ? path + n + 1 : path;
}

/* Appends to out the files whose content differs between the lists
 * `was` and `now` (added, removed or edited), comma-separated. */
static int bl_changed_files(const bl_config_t *cfg, const bl_rwatch_t *was, size_t nwas,
                            const bl_rwatch_t *now, size_t nnow, bl_buf_t *out)
{
    int rc = BL_OK;
    for (size_t i = 0; i < nnow; i++) {
        size_t j = 0;
        while (j < nwas && strcmp(was[j].path, now[i].path))
            j++;
        if (j == nwas || was[j].hashed != now[i].hashed || memcmp(was[j].sha, now[i].sha, 32))
            rc |= bl_need(out, bl_rel(cfg, now[i].path), j == nwas ? "(added)" : NULL);
    }
    for (size_t j = 0; j < nwas; j++) {
        size_t i = 0;
        while (i < nnow && strcmp(was[j].path, now[i].path))
            i++;
        if (i == nnow)
            rc |= bl_need(out, bl_rel(cfg, was[j].path), "(no longer used)");
    }
    return rc;
}

/* Logs each "file:line:col: message" line of a refused reload. */
static void bl_reload_refused(const bl_config_t *boot, const char *why, bl_buf_t *errors)
{
    const char *p = bl_buf_size(errors) ? bl_buf_cstr(errors) : "out of memory";
    bl_error("reload: the configuration in %s was not applied (%s); the configuration in force stays", boot->dir, why);
    while (*p) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (n > 0)
            bl_error("reload: %.*s", n, p);
        p += n + (nl != NULL);
    }
    bl_metric_add(BL_M_CONFIG_RELOAD_FAILURES, 1);
    bl_metric_set(BL_M_CONFIG_LAST_RELOAD_OK, 0);
}

/* Installs cfg (taken) as the new snapshot with the watch list `files`
 * (taken); logs, counts and writes the notice. */
static int bl_reload_apply(bl_reload_t *rl, bl_config_t *cfg, bl_agentkeys_t *keys, bl_rwatch_t *files,
                           size_t nfiles, const char *restart)
{
    bl_buf_t changed;
    bl_buf_init(&changed, BL_RELOAD_LIST_MAX);
    bl_changed_files(cfg, rl->files, rl->nfiles, files, nfiles, &changed);
    bl_rwatch_free(rl->files, rl->nfiles);
    rl->files = files;
    rl->nfiles = nfiles;
    size_t nrules = bl_policy_count(cfg->policy), nids = cfg->nids;
    /* The notice reads cfg before the registry owns it (workers may then
     * drop it at any time: only the registry's reference keeps it). */
    bl_reload_notice(rl, bl_buf_cstr(&changed), restart, cfg);
    if (rl->hub && bl_hub_keys_install(rl->hub, keys) != BL_OK)
        bl_error("reload: out of memory while installing the agent keys; the ones in force stay");
    if (bl_idreg_install(rl->reg, cfg) != BL_OK) {
        bl_error("reload: out of memory while installing the new configuration; the old one stays");
        bl_buf_free(&changed);
        bl_metric_add(BL_M_CONFIG_RELOAD_FAILURES, 1);
        return BL_ERROR;
    }
    bl_info("reload: applied (%zu rule%s, %zu identit%s) in %lld ms; changed: %s", nrules,
            nrules == 1 ? "" : "s", nids, nids == 1 ? "y" : "ies", (long long)(bl_reload_ms() - rl->started_ms),
            bl_buf_size(&changed) ? bl_buf_cstr(&changed) : "nothing");
    if (restart[0])
        bl_warn("reload: needs a restart: %s (kept as started until then)", restart);
    bl_metric_add(BL_M_CONFIG_RELOADS, 1);
    bl_metric_set(BL_M_CONFIG_LAST_RELOAD_OK, 1);
    bl_metric_set(BL_M_CONFIG_LAST_RELOAD_TS, (int64_t)time(NULL));
    bl_buf_free(&changed);
    return 1;
}

/* Loads the configuration again and applies it, or refuses it. */
static int bl_reload_run(bl_reload_t *rl)
{
    bl_buf_t errors, warnings, restart;
    bl_config_t *cfg = NULL;
    bl_rwatch_t *files = NULL;
    bl_agentkeys_t keys = { 0 };
    size_t nfiles = 0;
    int rc = BL_ERROR;
    bl_buf_init(&errors, 64 * 1024);
    bl_buf_init(&warnings, 64 * 1024);
    bl_buf_init(&restart, BL_RELOAD_LIST_MAX);
    if (bl_config_load_ex(rl->boot->dir, &cfg, &errors, &warnings) != BL_OK) {
        bl_reload_refused(rl->boot, "it does not load", &errors);
        goto end;
    }
    if (bl_buf_size(&warnings))
        bl_warn("reload: %s", bl_buf_cstr(&warnings));
    int need = bl_reload_restart_needs(rl->boot, cfg, &restart);
    if (need != BL_OK) {
        bl_reload_refused(rl->boot, need == BL_DECLINED ? bl_buf_cstr(&restart) : "out of memory", &errors);
        goto end;
    }
    if (rl->hub && bl_agentkeys_load(rl->agent_keys, &keys, &errors) != BL_OK) {
        bl_reload_refused(rl->boot, "the agent keys do not load", &errors);
        goto end;
    }
    if ((files = bl_rwatch_list(cfg, rl->agent_keys, &nfiles)) == NULL) {
        bl_reload_refused(rl->boot, "out of memory", &errors);
        goto end;
    }
    rc = bl_reload_apply(rl, cfg, &keys, files, nfiles, bl_buf_size(&restart) ? bl_buf_cstr(&restart) : "");
    cfg = NULL;
end:
    bl_agentkeys_free(&keys);
    bl_config_free(cfg);
    bl_buf_free(&errors);
    bl_buf_free(&warnings);
    bl_buf_free(&restart);
    return rc;
}

int bl_reload_tick(bl_reload_t *rl, int64_t now_ms, int force)
{
    int changed = 0;
    if (now_ms - rl->flushed_ms >= BL_IDREG_FLUSH_MS) {
        rl->flushed_ms = now_ms;
        bl_idreg_flush(rl->reg);
    }
    if (!force && now_ms - rl->checked_ms < BL_RELOAD_CHECK_MS)
        return 0;
    rl->checked_ms = now_ms;
    /* Remember each signature read before loading: a change during the
     * load is seen at the next check. A broken file is not retried until
     * it changes again (or SIGHUP). */
    for (size_t i = 0; i < rl->nfiles; i++) {
        bl_filesig_t s;
        bl_filesig(rl->files[i].path, &s);
        changed |= !bl_filesig_eq(&s, &rl->files[i].sig);
        rl->files[i].sig = s;
    }
    if (!changed && !force)
        return 0;
    if (force)
        bl_info("SIGHUP: reloading the configuration from %s", rl->boot->dir);
    rl->started_ms = bl_reload_ms();
    return bl_reload_run(rl);
}
