/*
 * cmd_identity.c - `byline identity add|list|remove|revoke|rotate`: the
 * identity registry.
 *
 * Changes take an exclusive flock(2) on DIR, reload the whole configuration
 * (so a change is checked against every identity, inline ones included)
 * and rewrite identities_file atomically. A token is printed once on
 * stdout and never stored: the registry keeps its SHA-256.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "auth/identity.h"
#include "auth/idtable.h"
#include "auth/lifetime.h"
#include "auth/pki.h"
#include "auth/token.h"
#include "cli/cli.h"
#include "cli/cmd.h"
#include "config/file.h"
#include "config/values.h"

#define BL_CLIENT_DAYS 365

static const char bl_identity_help[] =
    "usage: byline identity add NAME --dir DIR [--group GROUP]... [--expires WHEN]\n"
    "                                 [--cert [--ca-key FILE]]\n"
    "       byline identity list --dir DIR [--json]\n"
    "       byline identity revoke NAME --dir DIR [--reason TEXT]\n"
    "       byline identity rotate NAME --dir DIR [--expires WHEN]\n"
    "       byline identity remove NAME --dir DIR\n"
    "\n"
    "add     registers identity NAME (1-64 of a-z 0-9 . _ @ : -, not system:...) and\n"
    "        prints its new bearer token on stdout, once: only its SHA-256 is stored.\n"
    "          TOKEN=$(byline identity add agent-1 --dir DIR)\n"
    "        --group GROUP   a group the identity belongs to (repeatable)\n"
    "        --cert          issue a client certificate instead of a token:\n"
    "                        DIR/identities/NAME.crt and .key, CN=NAME, O=each group,\n"
    "                        signed with tls.client_ca and its key\n"
    "        --ca-key FILE   that CA's private key (default: DIR/tls/ca.key)\n"
    "        --expires WHEN  refuse its credentials from then on: a duration (90d, 12h,\n"
    "                        30m) or a UTC time (2027-01-01T00:00:00Z). With --cert the\n"
    "                        certificate's notAfter is no later than that either.\n"
    "list    shows every identity: name, groups, credential kinds, created, expires,\n"
    "        revoked, last used (as a running gateway recorded it in\n"
    "        DIR/" BL_LASTUSED_FILE ", written every minute), source.\n"
    "        --json          one JSON array of objects instead of the table\n"
    "revoke  refuses every credential of NAME from now on (401 \"revoked\", audited),\n"
    "        also on a running gateway, within about a second. The record stays in\n"
    "        the registry so the audit trail keeps naming it; an issued key is deleted.\n"
    "        --reason TEXT   why (printable, at most 200 bytes); shown in the 401\n"
    "rotate  gives token identity NAME a new token (printed once on stdout); the old\n"
    "        token stops working at once. An identity with an expiry needs --expires.\n"
    "remove  deletes identity NAME from the registry (and its issued key). A removed\n"
    "        certificate stays cryptographically valid until it expires but maps to\n"
    "        no identity; `add --cert` refuses NAME until then.\n";

typedef struct {
    const char *dir, *ca_key, *name, *expires, *reason;
    const char *groups[BL_CONFIG_MAX_GROUPS];
    size_t ngroups;
    int cert, json;
} bl_idopt_t;

/* Parses the options after the verb. Returns BL_EXIT_OK, an exit status,
 * or -1 after printing help. */
static int bl_id_args(int argc, char **argv, bl_idopt_t *o, int want_name)
{
    enum { O_DIR = 256, O_GROUP, O_CERT, O_CAKEY, O_EXPIRES, O_REASON, O_JSON };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "dir", required_argument, NULL, O_DIR },
        { "group", required_argument, NULL, O_GROUP },
        { "cert", no_argument, NULL, O_CERT },
        { "ca-key", required_argument, NULL, O_CAKEY },
        { "expires", required_argument, NULL, O_EXPIRES },
        { "reason", required_argument, NULL, O_REASON },
        { "json", no_argument, NULL, O_JSON },
        { NULL, 0, NULL, 0 },
    };
    const char *why;
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("identity", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_identity_help, stdout);
            return -1;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        if (c == O_DIR)
            o->dir = optarg;
        else if (c == O_CERT)
            o->cert = 1;
        else if (c == O_CAKEY)
            o->ca_key = optarg;
        else if (c == O_EXPIRES)
            o->expires = optarg;
        else if (c == O_REASON)
            o->reason = optarg;
        else if (c == O_JSON)
            o->json = 1;
        else if (o->ngroups == BL_CONFIG_MAX_GROUPS)
            return bl_cli_usage("identity", "more than %d groups", BL_CONFIG_MAX_GROUPS);
        else if (bl_identity_name_check(optarg, strlen(optarg), &why) != BL_OK)
            return bl_cli_usage("identity", "group \"%s\" %s", optarg, why);
        else
            o->groups[o->ngroups++] = optarg;
    }
    if (o->dir == NULL)
        return bl_cli_usage("identity", "--dir DIR is required");
    if (argc - optind > want_name)
        return bl_cli_usage("identity", "unexpected argument '%s'", argv[optind + want_name]);
    if (argc - optind < want_name)
        return bl_cli_usage("identity", "expected an identity NAME");
    if (want_name) {
        o->name = argv[optind];
        if (bl_identity_name_check(o->name, strlen(o->name), &why) != BL_OK)
            return bl_cli_usage("identity", "name \"%s\" %s", o->name, why);
    }
    return BL_EXIT_OK;
}

/* Takes an exclusive lock on DIR for the rest of the process (released
 * when the returned fd is closed). Returns the fd, or -1 after printing. */
static int bl_id_lock(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        bl_cli_fail("identity", "cannot lock %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Rewrites identities_file with the file's identities, minus `skip` (an
 * index into cfg->ids, or -1), plus `add` (or NULL). */
static int bl_id_save(const bl_config_t *cfg, long skip, const bl_identity_t *add)
{
    bl_buf_t err;
    size_t n = 0;
    bl_identity_t *v = calloc(cfg->nids - cfg->nids_inline + 1, sizeof(*v));
    if (v == NULL)
        return bl_cli_fail("identity", "out of memory");
    for (size_t i = cfg->nids_inline; i < cfg->nids; i++)
        if ((long)i != skip)
            v[n++] = cfg->ids[i]; /* shallow: the strings stay the config's */
    if (add != NULL)
        v[n++] = *add;
    bl_buf_init(&err, 4096);
    int rc = bl_identities_write(cfg->identities_file, v, n, &err);
    bl_cli_print(&err);
    bl_buf_free(&err);
    free(v);
    return rc == BL_OK ? BL_EXIT_OK : BL_EXIT_FAIL;
}

typedef struct {
    size_t added;   /* index of the new identity */
    long other;     /* the identity it collides with, or -1 */
    int what;
} bl_id_clash_t;

static void bl_id_clash_cb(void *ctx, int what, size_t first, size_t dup)
{
    bl_id_clash_t *c = ctx;
    if (dup == c->added && c->other < 0) {
        c->other = (long)first;
        c->what = what;
    }
}

/* Fails if the new identity's credential already names another identity
 * (say an inline one with cert_cn equal to the new name). */
static int bl_id_check_clash(const bl_config_t *cfg, const bl_identity_t *nid)
{
    bl_config_t tmp = { 0 };
    bl_id_clash_t c = { cfg->nids, -1, 0 };
    tmp.ids = calloc(cfg->nids + 1, sizeof(*tmp.ids));
    if (tmp.ids == NULL)
        return bl_cli_fail("identity", "out of memory");
    memcpy(tmp.ids, cfg->ids, cfg->nids * sizeof(*tmp.ids));
    tmp.ids[cfg->nids] = *nid;
    tmp.nids = cfg->nids + 1;
    int rc = bl_identity_index_build(&tmp, bl_id_clash_cb, &c);
    bl_identity_index_free(tmp.id_index);
    free(tmp.ids);
    if (rc == BL_ERROR)
        return bl_cli_fail("identity", "out of memory");
    if (c.other >= 0)
        return bl_cli_fail("identity", "its %s is already that of identity \"%s\"",
                           c.what == BL_ID_DUP_CERT_CN ? "certificate CN" : "credential",
                           cfg->ids[c.other].name);
    return BL_EXIT_OK;
}

/* Refuses to issue a certificate for NAME while an earlier one for the
 * same name is unexpired: it would authenticate as the new identity. */
static int bl_id_check_old_cert(const char *crt_path)
{
    char removed[BL_PATH_MAX];
    bl_buf_t err;
    if (access(crt_path, F_OK) == 0)
        return bl_cli_fail("identity", "%s already exists; remove it first", crt_path);
    if (bl_file_pathf(removed, sizeof(removed), "%s.removed", crt_path) != BL_OK)
        return bl_cli_fail("identity", "path too long");
    if (access(removed, F_OK) != 0)
        return BL_EXIT_OK;
    bl_buf_init(&err, 4096);
    X509 *old = bl_pki_read_cert(removed, &err);
    int valid = old == NULL || X509_cmp_current_time(X509_get0_notAfter(old)) > 0;
    X509_free(old);
    bl_buf_free(&err);
    if (valid)
        return bl_cli_fail("identity", "a certificate issued earlier for this name (%s) has "
                                       "not expired and would act as the new identity; pick "
                                       "another name", removed);
    return BL_EXIT_OK;
}

/* Days a new client certificate is valid: BL_CLIENT_DAYS, or fewer so
 * that it ends no later than the identity's expiry (rounded up to a day). */
static unsigned bl_id_days(const bl_identity_t *nid)
{
    int64_t left = nid->expires - (int64_t)time(NULL);
    if (nid->expires == 0 || left >= (int64_t)BL_CLIENT_DAYS * 86400)
        return BL_CLIENT_DAYS;
    return left > 0 ? (unsigned)((left + 86399) / 86400) : 1;
}

/* Parses --expires into *at (0 when absent). Returns BL_EXIT_OK or fails. */
static int bl_id_expires(const bl_idopt_t *o, int64_t *at)
{
    const char *why;
    *at = 0;
    if (o->expires != NULL && bl_expires_parse(o->expires, (int64_t)time(NULL), at, &why) != BL_OK)
        return bl_cli_usage("identity", "--expires %s: %s", o->expires, why);
    return BL_EXIT_OK;
}

/* Issues DIR/identities/NAME.{crt,key} and sets nid->cert_cn. */
static int bl_id_issue(const bl_config_t *cfg, const bl_idopt_t *o, bl_identity_t *nid,
                       char crt_path[BL_PATH_MAX], char key_path[BL_PATH_MAX])
{
    char dir[BL_PATH_MAX], cakey_path[BL_PATH_MAX];
    bl_buf_t err;
    X509 *ca = NULL, *crt = NULL;
    EVP_PKEY *cakey = NULL, *key = NULL;
    int rc = BL_EXIT_FAIL;
    if (cfg->client_ca == NULL)
        return bl_cli_fail("identity", "tls.client_ca is not set in %s, so the gateway would "
                                       "accept no client certificate; set it to the CA that "
                                       "signs them (byline init uses tls/ca.crt)", cfg->path);
    if (bl_file_pathf(dir, sizeof(dir), "%s/identities", cfg->dir) != BL_OK ||
        bl_file_pathf(crt_path, BL_PATH_MAX, "%s/%s.crt", dir, o->name) != BL_OK ||
        bl_file_pathf(key_path, BL_PATH_MAX, "%s/%s.key", dir, o->name) != BL_OK ||
        bl_file_pathf(cakey_path, sizeof(cakey_path), "%s/tls/ca.key", cfg->dir) != BL_OK)
        return bl_cli_fail("identity", "path too long");
    if (bl_id_check_old_cert(crt_path) != BL_EXIT_OK)
        return BL_EXIT_FAIL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return bl_cli_fail("identity", "cannot create %s: %s", dir, strerror(errno));
    bl_buf_init(&err, 4096);
    bl_pki_req_t req = { .kind = BL_PKI_CLIENT, .cn = o->name, .orgs = o->groups,
                         .norgs = o->ngroups, .days = bl_id_days(nid) };
    if ((ca = bl_pki_read_cert(cfg->client_ca, &err)) == NULL ||
        (cakey = bl_pki_read_key(o->ca_key ? o->ca_key : cakey_path, &err)) == NULL)
        goto end;
    if (bl_pki_key_matches(ca, cakey) != BL_OK) {
        bl_cli_fail("identity", "%s is not the key of tls.client_ca %s",
                    o->ca_key ? o->ca_key : cakey_path, cfg->client_ca);
        goto end;
    }
    if ((key = bl_pki_key_new(&err)) != NULL && (crt = bl_pki_issue(&req, key, ca, cakey, &err)) &&
        bl_pki_write_key(key_path, key, &err) == BL_OK &&
        bl_pki_write_cert(crt_path, crt, &err) == BL_OK && (nid->cert_cn = strdup(o->name)))
        rc = BL_EXIT_OK;
    if (rc != BL_EXIT_OK) {
        unlink(key_path);
        unlink(crt_path);
    }
end:
    bl_cli_print(&err);
    bl_buf_free(&err);
    X509_free(ca);
    X509_free(crt);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return rc;
}

/* Sets nid->created to the current UTC time. */
static void bl_id_created(bl_identity_t *nid)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    nid->created = strdup(ts);
}

/* Registers the new identity; prints the token (token mode). */
static int bl_id_register(const bl_config_t *cfg, const bl_idopt_t *o, bl_identity_t *nid)
{
    char token[BL_TOKEN_LEN + 1] = "", crt[BL_PATH_MAX] = "", key[BL_PATH_MAX] = "";
    int rc = BL_EXIT_FAIL, issued = 0;
    if (o->cert) {
        if (bl_id_issue(cfg, o, nid, crt, key) != BL_EXIT_OK)
            return BL_EXIT_FAIL;
        issued = 1;
    } else if (bl_token_generate(token) != BL_OK ||
               bl_token_hash(token, BL_TOKEN_LEN, nid->token_sha256) != BL_OK) {
        return bl_cli_fail("identity", "cannot generate a token (random generator failure)");
    }
    nid->has_token = !o->cert;
    if (bl_id_check_clash(cfg, nid) != BL_EXIT_OK || bl_id_save(cfg, -1, nid) != BL_EXIT_OK)
        goto end;
    if (!o->cert && (printf("%s\n", token) < 0 || fflush(stdout) != 0)) {
        /* A token nobody saw is a credential nobody can use: undo. */
        bl_cli_fail("identity", "cannot write the token to stdout: %s", strerror(errno));
        bl_id_save(cfg, -1, NULL);
        goto end;
    }
    rc = BL_EXIT_OK;
end:
    if (rc != BL_EXIT_OK && issued) {
        unlink(crt);
        unlink(key);
    }
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

static int bl_id_add(int argc, char **argv)
{
    bl_idopt_t o = { 0 };
    bl_identity_t nid = { 0 };
    bl_config_t *cfg = NULL;
    int lock = -1, rc = bl_id_args(argc, argv, &o, 1);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (o.reason || o.json)
        return bl_cli_usage("identity", "add does not take --reason or --json");
    umask(077);
    if ((lock = bl_id_lock(o.dir)) < 0 || (rc = bl_cli_load("identity", o.dir, &cfg)) != 0) {
        rc = BL_EXIT_FAIL;
        goto end;
    }
    rc = BL_EXIT_FAIL;
    const bl_identity_t *old = bl_identity_by_name(cfg, o.name, strlen(o.name));
    if (old != NULL) {
        bl_cli_fail("identity", "identity \"%s\" already exists (in %s); remove it first or "
                                "choose another name", o.name,
                    (size_t)(old - cfg->ids) < cfg->nids_inline ? cfg->path : cfg->identities_file);
        goto end;
    }
    nid.name = (char *)o.name;
    nid.groups = (char **)o.groups;
    nid.ngroups = o.ngroups;
    if ((rc = bl_id_expires(&o, &nid.expires)) != BL_EXIT_OK)
        goto end;
    rc = BL_EXIT_FAIL;
    bl_id_created(&nid);
    if (nid.created == NULL || bl_id_register(cfg, &o, &nid) != BL_EXIT_OK)
        goto end;
    rc = BL_EXIT_OK;
    if (o.cert)
        fprintf(stderr, "byline: registered identity \"%s\" with a client certificate:\n"
                        "  %s/identities/%s.crt and .key (CN=%s, valid %u days)\n"
                        "Next: byline kubeconfig %s --dir %s > %s.kubeconfig\n",
                o.name, cfg->dir, o.name, o.name, bl_id_days(&nid), o.name, o.dir, o.name);
    else
        fprintf(stderr, "byline: registered identity \"%s\". Its token, above, is shown only "
                        "once: store it now.\n"
                        "Next: BYLINE_TOKEN=<token> byline kubeconfig %s --dir %s > %s.kubeconfig\n",
                o.name, o.name, o.dir, o.name);
end:
    free(nid.cert_cn);
    free(nid.created);
    bl_config_free(cfg);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* "token,cert_cn,cert_uri" for the kinds an identity has. */
static const char *bl_id_kinds(const bl_identity_t *id, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s%s%s", id->has_token ? "token" : "",
             id->has_token && id->cert_cn ? "," : "", id->cert_cn ? "cert_cn" : "",
             (id->has_token || id->cert_cn) && id->cert_uri ? "," : "",
             id->cert_uri ? "cert_uri" : "");
    return buf;
}

static const char *bl_id_groups(const bl_identity_t *id, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < id->ngroups && off < n; i++) {
        int w = snprintf(buf + off, n - off, "%s%s", i ? "," : "", id->groups[i]);
        off += w > 0 ? (size_t)w : 0;
    }
    return buf[0] ? buf : "-";
}

/* Reads the gateway's last-used state (a damaged file is reported and
 * treated as empty). Returns a new object (never NULL unless OOM). */
static json_t *bl_id_lastused(const bl_config_t *cfg)
{
    char path[BL_PATH_MAX];
    bl_buf_t err;
    json_t *m = NULL;
    bl_buf_init(&err, 4096);
    if (bl_file_pathf(path, sizeof(path), "%s/" BL_LASTUSED_FILE, cfg->dir) == BL_OK &&
        (m = bl_lastused_read(path, &err)) == NULL)
        fprintf(stderr, "byline identity: %s", bl_buf_cstr(&err));
    bl_buf_free(&err);
    return m ? m : json_object();
}

/* One identity as a JSON object for `list --json`. NULL when OOM. */
static json_t *bl_id_json(const bl_config_t *cfg, size_t i, json_t *lastused)
{
    const bl_identity_t *id = &cfg->ids[i];
    char ts[BL_TIME_LEN + 1], kinds[32];
    const char *src = i < cfg->nids_inline ? cfg->path : cfg->identities_file;
    json_t *o = json_object(), *g = json_array(), *lu = json_object_get(lastused, id->name);
    for (size_t k = 0; g && k < id->ngroups; k++)
        json_array_append_new(g, json_string(id->groups[k]));
    json_object_set_new(o, "name", json_string(id->name));
    json_object_set_new(o, "groups", g);
    json_object_set_new(o, "credentials", json_string(bl_id_kinds(id, kinds, sizeof(kinds))));
    json_object_set_new(o, "created", id->created ? json_string(id->created) : json_null());
    json_object_set_new(o, "expires", id->expires ? json_string(bl_time_format(id->expires, ts)) : json_null());
    json_object_set_new(o, "expired", json_boolean(id->expires && id->expires <= (int64_t)time(NULL)));
    json_object_set_new(o, "revoked", id->revoked ? json_string(bl_time_format(id->revoked, ts)) : json_null());
    if (id->revoked_reason)
        json_object_set_new(o, "revoked_reason", json_string(id->revoked_reason));
    json_object_set_new(o, "last_used", json_is_string(lu) ? json_incref(lu) : json_null());
    json_object_set_new(o, "source", json_string(src));
    return o;
}

static int bl_id_list_json(const bl_config_t *cfg, json_t *lastused)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < cfg->nids; i++)
        json_array_append_new(a, bl_id_json(cfg, i, lastused));
    int rc = a && json_dumpf(a, stdout, JSON_INDENT(2)) == 0 && putchar('\n') != EOF;
    json_decref(a);
    return rc ? BL_EXIT_OK : bl_cli_fail("identity", "cannot write the list");
}

/* The EXPIRES column: the time, "-", or the time and "(expired)". */
static const char *bl_id_when(int64_t t, int past_note, char *buf, size_t n)
{
    char ts[BL_TIME_LEN + 1];
    if (t == 0)
        return "-";
    snprintf(buf, n, "%s%s", bl_time_format(t, ts),
             past_note && t <= (int64_t)time(NULL) ? " (expired)" : "");
    return buf;
}

static void bl_id_list_table(const bl_config_t *cfg, json_t *lastused)
{
    char groups[BL_CONFIG_MAX_GROUPS * (BL_NAME_MAX + 1) + 1], kinds[32], exp[48], rev[32];
    int wn = 4, wg = 6;
    for (size_t i = 0; i < cfg->nids; i++) {
        wn = BL_MAX(wn, (int)strlen(cfg->ids[i].name));
        wg = BL_MAX(wg, (int)strlen(bl_id_groups(&cfg->ids[i], groups, sizeof(groups))));
    }
    printf("%-*s  %-*s  %-22s  %-20s  %-30s  %-20s  %-20s  %s\n", wn, "NAME", wg, "GROUPS",
           "CREDENTIALS", "CREATED", "EXPIRES", "REVOKED", "LAST USED", "SOURCE");
    for (size_t i = 0; i < cfg->nids; i++) {
        const bl_identity_t *id = &cfg->ids[i];
        const char *src = i < cfg->nids_inline ? cfg->path : cfg->identities_file;
        const char *base = strrchr(src, '/');
        json_t *lu = json_object_get(lastused, id->name);
        printf("%-*s  %-*s  %-22s  %-20s  %-30s  %-20s  %-20s  %s\n", wn, id->name, wg,
               bl_id_groups(id, groups, sizeof(groups)), bl_id_kinds(id, kinds, sizeof(kinds)),
               id->created ? id->created : "-", bl_id_when(id->expires, 1, exp, sizeof(exp)),
               bl_id_when(id->revoked, 0, rev, sizeof(rev)),
               json_is_string(lu) ? json_string_value(lu) : "-", base ? base + 1 : src);
    }
}

static int bl_id_list(int argc, char **argv)
{
    bl_idopt_t o = { 0 };
    bl_config_t *cfg = NULL;
    int rc = bl_id_args(argc, argv, &o, 0);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (o.cert || o.ca_key || o.ngroups || o.expires || o.reason)
        return bl_cli_usage("identity", "list takes only --dir and --json");
    if (bl_cli_load("identity", o.dir, &cfg) != BL_EXIT_OK)
        return BL_EXIT_FAIL;
    json_t *lastused = bl_id_lastused(cfg);
    if (o.json)
        rc = bl_id_list_json(cfg, lastused);
    else
        bl_id_list_table(cfg, lastused);
    json_decref(lastused);
    bl_config_free(cfg);
    if (rc == BL_EXIT_OK && fflush(stdout) != 0)
        rc = BL_EXIT_FAIL;
    return rc;
}

/* Deletes the issued key and keeps the certificate as NAME.crt.removed,
 * the record `add --cert` consults. */
static void bl_id_retire_cert(const bl_config_t *cfg, const char *name)
{
    char crt[BL_PATH_MAX], key[BL_PATH_MAX], removed[BL_PATH_MAX];
    if (bl_file_pathf(crt, sizeof(crt), "%s/identities/%s.crt", cfg->dir, name) != BL_OK ||
        bl_file_pathf(key, sizeof(key), "%s/identities/%s.key", cfg->dir, name) != BL_OK ||
        bl_file_pathf(removed, sizeof(removed), "%s.removed", crt) != BL_OK)
        return;
    if (unlink(key) != 0 && errno != ENOENT)
        fprintf(stderr, "byline identity: cannot delete %s: %s\n", key, strerror(errno));
    if (rename(crt, removed) == 0)
        fprintf(stderr, "byline: its certificate is kept as %s; copies of it stay valid until "
                        "they expire but map to no identity\n", removed);
}

static int bl_id_remove(int argc, char **argv)
{
    bl_idopt_t o = { 0 };
    bl_config_t *cfg = NULL;
    int lock = -1, rc = bl_id_args(argc, argv, &o, 1);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    rc = BL_EXIT_FAIL;
    if ((lock = bl_id_lock(o.dir)) < 0 || bl_cli_load("identity", o.dir, &cfg) != BL_EXIT_OK)
        goto end;
    const bl_identity_t *id = bl_identity_by_name(cfg, o.name, strlen(o.name));
    size_t idx = id ? (size_t)(id - cfg->ids) : 0;
    if (id == NULL) {
        bl_cli_fail("identity", "no identity named \"%s\"", o.name);
    } else if (idx < cfg->nids_inline) {
        bl_cli_fail("identity", "\"%s\" is defined in %s; remove it there", o.name, cfg->path);
    } else if (bl_id_save(cfg, (long)idx, NULL) == BL_EXIT_OK) {
        fprintf(stderr, "byline: removed identity \"%s\"\n", o.name);
        if (id->cert_cn != NULL)
            bl_id_retire_cert(cfg, o.name);
        rc = BL_EXIT_OK;
    }
end:
    bl_config_free(cfg);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* Loads DIR under the lock and finds NAME among the file's identities
 * (an inline one is refused: it is edited in byline.yaml). Returns its
 * index, or -1 after printing. */
static long bl_id_find_mutable(const bl_idopt_t *o, int *lock, bl_config_t **cfg, const char *verb)
{
    if ((*lock = bl_id_lock(o->dir)) < 0 || bl_cli_load("identity", o->dir, cfg) != BL_EXIT_OK)
        return -1;
    const bl_identity_t *id = bl_identity_by_name(*cfg, o->name, strlen(o->name));
    size_t idx = id ? (size_t)(id - (*cfg)->ids) : 0;
    if (id == NULL) {
        bl_cli_fail("identity", "no identity named \"%s\"", o->name);
        return -1;
    }
    if (idx < (*cfg)->nids_inline) {
        bl_cli_fail("identity", "\"%s\" is defined in %s; %s it there", o->name, (*cfg)->path, verb);
        return -1;
    }
    return (long)idx;
}

/* Returns 1 if the reason is printable text of at most 200 bytes. */
static int bl_id_reason_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return n > 0 && n <= 200;
}

/* Deletes the key `add --cert` issued for NAME, if it is there: a revoked
 * identity has no use for it. The certificate stays, as the record. */
static void bl_id_drop_key(const bl_config_t *cfg, const char *name)
{
    char key[BL_PATH_MAX];
    if (bl_file_pathf(key, sizeof(key), "%s/identities/%s.key", cfg->dir, name) != BL_OK)
        return;
    if (unlink(key) == 0)
        fprintf(stderr, "byline: deleted its private key %s\n", key);
    else if (errno != ENOENT)
        fprintf(stderr, "byline identity: cannot delete %s: %s\n", key, strerror(errno));
}

static int bl_id_revoke(int argc, char **argv)
{
    bl_idopt_t o = { 0 };
    bl_config_t *cfg = NULL;
    char ts[BL_TIME_LEN + 1];
    int lock = -1, rc = bl_id_args(argc, argv, &o, 1);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (o.cert || o.ca_key || o.ngroups || o.expires || o.json)
        return bl_cli_usage("identity", "revoke takes only NAME, --dir and --reason");
    if (o.reason && !bl_id_reason_ok(o.reason))
        return bl_cli_usage("identity", "--reason: 1-200 printable characters");
    rc = BL_EXIT_FAIL;
    long idx = bl_id_find_mutable(&o, &lock, &cfg, "revoke");
    if (idx < 0)
        goto end;
    bl_identity_t *id = &cfg->ids[idx];
    if (id->revoked) {
        fprintf(stderr, "byline: identity \"%s\" was already revoked at %s\n", o.name,
                bl_time_format(id->revoked, ts));
        rc = BL_EXIT_OK;
        goto end;
    }
    id->revoked = (int64_t)time(NULL);
    if (o.reason && (id->revoked_reason = strdup(o.reason)) == NULL) {
        bl_cli_fail("identity", "out of memory");
        goto end;
    }
    if (bl_id_save(cfg, -1, NULL) != BL_EXIT_OK)
        goto end;
    fprintf(stderr, "byline: revoked identity \"%s\" at %s; a running gateway refuses it within "
                    "about a second. Its record stays so the audit trail can name it.\n",
            o.name, bl_time_format(id->revoked, ts));
    if (id->cert_cn != NULL)
        bl_id_drop_key(cfg, o.name);
    rc = BL_EXIT_OK;
end:
    bl_config_free(cfg);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* Checks that NAME can get a new token and works out its expiry. */
static int bl_id_rotate_check(const bl_idopt_t *o, const bl_identity_t *id, int64_t *expires)
{
    char ts[BL_TIME_LEN + 1];
    if (id->revoked)
        return bl_cli_fail("identity", "\"%s\" was revoked at %s; register a new identity instead",
                           o->name, bl_time_format(id->revoked, ts));
    if (!id->has_token)
        return bl_cli_fail("identity", "\"%s\" has no token to rotate (it uses a client "
                                       "certificate)", o->name);
    if (id->expires && o->expires == NULL)
        return bl_cli_fail("identity", "the token of \"%s\" had an expiry (%s); give the new one "
                                       "--expires (e.g. --expires 90d)", o->name,
                           bl_time_format(id->expires, ts));
    return bl_id_expires(o, expires);
}

static int bl_id_rotate(int argc, char **argv)
{
    bl_idopt_t o = { 0 };
    bl_config_t *cfg = NULL;
    char token[BL_TOKEN_LEN + 1] = "";
    int64_t expires = 0;
    int lock = -1, rc = bl_id_args(argc, argv, &o, 1);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (o.cert || o.ca_key || o.ngroups || o.reason || o.json)
        return bl_cli_usage("identity", "rotate takes only NAME, --dir and --expires");
    rc = BL_EXIT_FAIL;
    long idx = bl_id_find_mutable(&o, &lock, &cfg, "rotate");
    if (idx < 0)
        goto end;
    bl_identity_t *id = &cfg->ids[idx], old = *id;
    if ((rc = bl_id_rotate_check(&o, id, &expires)) != BL_EXIT_OK)
        goto end;
    rc = BL_EXIT_FAIL;
    if (bl_token_generate(token) != BL_OK ||
        bl_token_hash(token, BL_TOKEN_LEN, id->token_sha256) != BL_OK) {
        bl_cli_fail("identity", "cannot generate a token (random generator failure)");
        goto end;
    }
    id->expires = expires;
    if (bl_id_save(cfg, -1, NULL) != BL_EXIT_OK)
        goto end;
    if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
        /* Nobody saw the new token: put the old one back. */
        bl_cli_fail("identity", "cannot write the token to stdout: %s", strerror(errno));
        memcpy(id->token_sha256, old.token_sha256, sizeof(old.token_sha256));
        id->expires = old.expires;
        bl_id_save(cfg, -1, NULL);
        goto end;
    }
    fprintf(stderr, "byline: identity \"%s\" has a new token, above, shown only once; the old one "
                    "no longer works (a running gateway notices within about a second).\n", o.name);
    rc = BL_EXIT_OK;
end:
    OPENSSL_cleanse(token, sizeof(token));
    bl_config_free(cfg);
    if (lock >= 0)
        close(lock);
    return rc;
}

int bl_cmd_identity(int argc, char **argv)
{
    if (argc < 2)
        return bl_cli_usage("identity", "expected add, list, revoke, rotate or remove");
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        fputs(bl_identity_help, stdout);
        return BL_EXIT_OK;
    }
    if (!strcmp(verb, "add"))
        return bl_id_add(argc - 1, argv + 1);
    if (!strcmp(verb, "list"))
        return bl_id_list(argc - 1, argv + 1);
    if (!strcmp(verb, "remove") || !strcmp(verb, "rm"))
        return bl_id_remove(argc - 1, argv + 1);
    if (!strcmp(verb, "revoke"))
        return bl_id_revoke(argc - 1, argv + 1);
    if (!strcmp(verb, "rotate"))
        return bl_id_rotate(argc - 1, argv + 1);
    return bl_cli_usage("identity", "unknown subcommand '%s' (add, list, revoke, rotate, remove)",
                        verb);
}
