/*
 * config.c - loads and validates DIR/byline.yaml and the identity registry.
 *
 * The schema is the key tables below; each key's parser stores into
 * bl_config_t, and per-object checks (a connection's credential, the TLS
 * key matching its certificate) run right after the object's mapping so
 * that their messages point at the right line. Identities are parsed last,
 * once both files are open, into one array sized up front; the identity
 * index then finds duplicates of any name or credential.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include "auth/identity.h"
#include "auth/lifetime.h"
#include "auth/pki.h"
#include "auth/token.h"
#include "config/config.h"
#include "config/file.h"
#include "config/schema.h"
#include "config/values.h"
#include "config/yaml.h"
#include "policy/policy.h"

#define BL_TOKEN_FILE_MAX (64 * 1024)

/* Where an identity's name and credentials were written (for duplicates). */
typedef struct {
    bl_yaml_t *y;             /* the file */
    yaml_mark_t name, token, cn, uri;
} bl_id_src_t;

/* One load in progress. */
typedef struct {
    bl_config_t *cfg;
    bl_id_src_t *src;         /* parallel to cfg->ids */
    yaml_node_t *inline_ids;  /* byline.yaml's `identities` value, or NULL */
    yaml_node_t *metrics_at;  /* metrics.listen's value, or NULL */
    yaml_node_t *policy;      /* the `policy` value, read once connections are known; or NULL */
    char metrics_host[BL_HOST_MAX + 1];
    int metrics_port;
} bl_load_t;

#define CFG(f)  offsetof(bl_config_t, f)
#define CONN(f) offsetof(bl_connection_t, f)
#define ID(f)   offsetof(bl_identity_t, f)
#define MS(s)   ((uint64_t)(s) * 1000)

/* ---- values with their own syntax ---- */

static int bl_cfg_listen(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_config_t *cfg = dst;
    char host[BL_HOST_MAX + 1];
    const char *why;
    int port;
    char *s = bl_yaml_strdup(y, v, k->name, 0);
    if (s == NULL)
        return BL_ERROR;
    int rc = bl_hostport_parse(s, strlen(s), host, &port, &why);
    if (rc != BL_OK)
        bl_yaml_error(y, v, "listen: \"%.100s\" %s", s, why);
    free(s);
    if (rc != BL_OK)
        return BL_ERROR;
    free(cfg->listen_host);
    cfg->listen_host = strdup(host);
    cfg->listen_port = port;
    return cfg->listen_host ? BL_OK : BL_ERROR;
}

/* Parses an https URL value into a new string without trailing '/'. */
static char *bl_cfg_url(bl_yaml_t *y, yaml_node_t *v, const char *what, bl_url_t *u)
{
    const char *why;
    char *s = bl_yaml_strdup(y, v, what, 0);
    if (s == NULL)
        return NULL;
    if (bl_url_parse(s, strlen(s), u, &why) != BL_OK) {
        bl_yaml_error(y, v, "%s: \"%.200s\" %s", what, s, why);
        free(s);
        return NULL;
    }
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static int bl_cfg_public_url(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_url_t u;
    char **out = dst;
    free(*out);
    *out = bl_cfg_url(y, v, k->name, &u);
    return *out ? BL_OK : BL_ERROR;
}

/* ---- tls ---- */

static const bl_yaml_key_t bl_tls_keys[] = {
    { "cert", bl_yaml_path, CFG(tls_cert), 0, 0, NULL, BL_YAML_REQUIRED | BL_YAML_FILE },
    { "key", bl_yaml_path, CFG(tls_key), 0, 0, NULL,
      BL_YAML_REQUIRED | BL_YAML_FILE | BL_YAML_SECRET },
    { "ca", bl_yaml_path, CFG(tls_ca), 0, 0, NULL, BL_YAML_FILE },
    { "client_ca", bl_yaml_path, CFG(client_ca), 0, 0, NULL, BL_YAML_FILE },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Reports the lines collected in `why` as one error at `at`. */
static void bl_cfg_report(bl_yaml_t *y, yaml_node_t *at, const char *prefix, bl_buf_t *why)
{
    char *s = bl_buf_data(why);
    size_t n = bl_buf_size(why);
    while (n > 0 && s[n - 1] == '\n')
        n--;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n')
            s[i] = ';';
    bl_yaml_error(y, at, "%s%.*s", prefix, (int)n, n ? s : "");
}

/* Checks that `cert` parses and that `key` is its private key. */
static void bl_cfg_keypair(bl_yaml_t *y, yaml_node_t *at, const char *cert, const char *key)
{
    bl_buf_t why;
    bl_buf_init(&why, 2048);
    X509 *crt = bl_pki_read_cert(cert, &why);
    EVP_PKEY *pk = crt ? bl_pki_read_key(key, &why) : NULL;
    if (crt == NULL || pk == NULL)
        bl_cfg_report(y, at, "", &why);
    else if (bl_pki_key_matches(crt, pk) != BL_OK)
        bl_yaml_error(y, at, "%s is not the private key of %s", key, cert);
    X509_free(crt);
    EVP_PKEY_free(pk);
    bl_buf_free(&why);
}

/* Checks that a CA file holds at least one PEM certificate. */
static void bl_cfg_ca_file(bl_yaml_t *y, yaml_node_t *at, const char *path)
{
    bl_buf_t why;
    bl_buf_init(&why, 2048);
    if (bl_pki_count_certs(path, &why) < 0)
        bl_cfg_report(y, at, "", &why);
    bl_buf_free(&why);
}

static int bl_cfg_tls(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_config_t *cfg = dst;
    yaml_node_t *found[BL_YAML_MAX_KEYS];
    (void)k;
    if (bl_yaml_map(y, v, bl_tls_keys, cfg, found) != BL_OK)
        return BL_ERROR;
    unsigned before = y->nerrors;
    bl_cfg_keypair(y, bl_yaml_found(bl_tls_keys, found, "key"), cfg->tls_cert, cfg->tls_key);
    if (cfg->tls_ca != NULL)
        bl_cfg_ca_file(y, bl_yaml_found(bl_tls_keys, found, "ca"), cfg->tls_ca);
    if (cfg->client_ca != NULL)
        bl_cfg_ca_file(y, bl_yaml_found(bl_tls_keys, found, "client_ca"), cfg->client_ca);
    return y->nerrors == before ? BL_OK : BL_ERROR;
}

/* ---- metrics, limits ---- */

static int bl_cfg_metrics_listen(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_load_t *L = y->ctx;
    char **out = dst;
    const char *why;
    char *s = bl_yaml_strdup(y, v, k->name, 1);
    if (s == NULL)
        return BL_OK; /* "listen:" with nothing: no metrics listener */
    if (bl_hostport_parse(s, strlen(s), L->metrics_host, &L->metrics_port, &why) != BL_OK) {
        bl_yaml_error(y, v, "listen: \"%.100s\" %s", s, why);
        free(s);
        return BL_ERROR;
    }
    free(*out);
    *out = s;
    L->metrics_at = v;
    return BL_OK;
}

static const bl_yaml_key_t bl_metrics_keys[] = {
    { "listen", bl_cfg_metrics_listen, CFG(metrics_listen), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int bl_is_wildcard_host(const char *h)
{
    return !strcmp(h, "0.0.0.0") || !strcmp(h, "::");
}

static int bl_is_loopback_host(const char *h)
{
    return !strncmp(h, "127.", 4) || !strcmp(h, "::1") || !strcmp(h, "localhost");
}

/* /metrics has neither TLS nor authentication: say so when it leaves the
 * host, and refuse the gateway's own address. */
static void bl_cfg_metrics_check(bl_yaml_t *y, bl_load_t *L)
{
    const bl_config_t *cfg = L->cfg;
    const char *h = L->metrics_host;
    if (L->metrics_at == NULL || cfg->listen_host == NULL)
        return;
    if (L->metrics_port == cfg->listen_port &&
        (!strcmp(h, cfg->listen_host) || bl_is_wildcard_host(h) ||
         bl_is_wildcard_host(cfg->listen_host)))
        bl_yaml_error(y, L->metrics_at, "listen: %s is the gateway's own address (listen: "
                                        "%s:%d); give metrics another port", cfg->metrics_listen,
                      cfg->listen_host, cfg->listen_port);
    else if (!bl_is_loopback_host(h))
        bl_yaml_warn(y, L->metrics_at, "metrics.listen: %s is reachable from other hosts and "
                                       "/metrics has no TLS or authentication; put your own "
                                       "access control in front of it", cfg->metrics_listen);
}

static const bl_yaml_key_t bl_limit_keys[] = {
    { "max_connections", bl_yaml_uint, CFG(max_connections), 1, 1000000, NULL, 0 },
    { "max_header_bytes", bl_yaml_uint, CFG(max_header_bytes), 1024, 1024 * 1024, NULL, 0 },
    { "max_headers", bl_yaml_uint, CFG(max_headers), 8, 1000, NULL, 0 },
    { "header_timeout", bl_yaml_duration, CFG(header_timeout_ms), 100, MS(3600), NULL, 0 },
    { "idle_timeout", bl_yaml_duration, CFG(idle_timeout_ms), MS(1), MS(86400), NULL, 0 },
    { "connect_timeout", bl_yaml_duration, CFG(connect_timeout_ms), 100, MS(600), NULL, 0 },
    { "drain_timeout", bl_yaml_duration, CFG(drain_timeout_ms), 0, MS(3600), NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- connections ---- */

/* The default Impersonate-User template. */
#define BL_IMPERSONATE_DEFAULT "byline:{name}"

static int bl_cfg_impersonate_user(bl_yaml_t *y, yaml_node_t *v, void *dst,
                                   const bl_yaml_key_t *k)
{
    char **out = dst;
    const char *why;
    if (bl_yaml_str(y, v, dst, k) != BL_OK || *out == NULL)
        return *out == NULL ? BL_OK : BL_ERROR;
    if (bl_impersonate_template_check(*out, strlen(*out), &why) == BL_OK)
        return BL_OK;
    bl_yaml_error(y, v, "user: \"%.140s\" %s", *out, why);
    free(*out);
    *out = NULL;
    return BL_ERROR;
}

static const bl_yaml_key_t bl_impersonate_keys[] = {
    { "user", bl_cfg_impersonate_user, CONN(impersonate_user), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* `impersonate: true|false`, or a mapping of options meaning true. */
static int bl_cfg_impersonate(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_connection_t *c = dst;
    int rc;
    if (v->type == YAML_MAPPING_NODE) {
        c->impersonate = 1;
        rc = bl_yaml_map(y, v, bl_impersonate_keys, c, NULL);
    } else if (v->type == YAML_SEQUENCE_NODE) {
        bl_yaml_error(y, v, "%s: expected true, false or a mapping (user: ...), found a list",
                      k->name);
        return BL_ERROR;
    } else {
        rc = bl_yaml_bool(y, v, &c->impersonate, k);
    }
    if (rc == BL_OK && c->impersonate && c->impersonate_user == NULL &&
        (c->impersonate_user = strdup(BL_IMPERSONATE_DEFAULT)) == NULL) {
        bl_yaml_error(y, v, "out of memory");
        rc = BL_ERROR;
    }
    if (rc != BL_OK || !c->impersonate) {
        c->impersonate = 0;
        free(c->impersonate_user);
        c->impersonate_user = NULL;
    }
    return rc;
}

/* `via: agent` (the only value): a byline agent carries the requests. */
static int bl_cfg_via(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_connection_t *c = dst;
    char *s = bl_yaml_strdup(y, v, k->name, 0);
    int ok = s && !strcmp(s, "agent");
    if (s && !ok)
        bl_yaml_error(y, v, "via: \"%.64s\": the only value is \"agent\" (leave via out to dial the API server)", s);
    c->via_agent = ok;
    free(s);
    return ok ? BL_OK : BL_ERROR;
}

/* A connection via an agent has no URL or credential here: the agent has them. */
static void bl_cfg_conn_via(bl_yaml_t *y, yaml_node_t **found);

/* `capture_max: SIZE` on a connection: its own session capture bound,
 * replacing audit.capture_max (0 turns capture off there). */
static int bl_cfg_conn_capture(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_connection_t *c = dst;
    uint64_t n;
    if (bl_yaml_size(y, v, &n, k) != BL_OK)
        return BL_ERROR;
    c->capture_max = (size_t)n;
    c->capture_set = 1;
    return BL_OK;
}

static const bl_yaml_key_t bl_conn_keys[] = {
    { "name", bl_yaml_str, CONN(name), 0, 0, NULL, BL_YAML_REQUIRED },
    { "server", bl_yaml_str, CONN(url), 0, 0, NULL, 0 }, /* required unless via: agent */
    { "ca", bl_yaml_path, CONN(ca_file), 0, 0, NULL, BL_YAML_FILE },
    { "tls_server_name", bl_yaml_str, CONN(server_name), 0, 0, NULL, 0 },
    { "token_file", bl_yaml_path, CONN(token_file), 0, 0, NULL, BL_YAML_FILE | BL_YAML_SECRET },
    { "client_cert", bl_yaml_path, CONN(cert_file), 0, 0, NULL, BL_YAML_FILE },
    { "client_key", bl_yaml_path, CONN(key_file), 0, 0, NULL, BL_YAML_FILE | BL_YAML_SECRET },
    { "impersonate", bl_cfg_impersonate, 0, 0, 0, NULL, 0 },
    { "capture_max", bl_cfg_conn_capture, 0, 0, BL_AUDIT_CAPTURE_MAX, NULL, 0 },
    { "via", bl_cfg_via, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Takes c->url apart into host, port and path prefix. */
static void bl_cfg_conn_server(bl_yaml_t *y, yaml_node_t *at, bl_connection_t *c)
{
    bl_url_t u;
    const char *why;
    if (bl_url_parse(c->url, strlen(c->url), &u, &why) != BL_OK) {
        bl_yaml_error(y, at, "server: \"%.200s\" %s", c->url, why);
        return;
    }
    c->host = strdup(u.host);
    c->port = u.port;
    c->path_prefix = strdup(u.path);
    if (c->server_name == NULL)
        c->server_name = strdup(u.host);
    if (c->host == NULL || c->path_prefix == NULL || c->server_name == NULL)
        bl_yaml_error(y, at, "out of memory");
}

/* The token file must hold a token: an empty one is a mistake found now
 * rather than as a 401 from the cluster later. */
static void bl_cfg_token_file(bl_yaml_t *y, yaml_node_t *at, const char *path)
{
    bl_buf_t tok, why;
    bl_buf_init(&tok, BL_TOKEN_FILE_MAX + 1);
    bl_buf_init(&why, 1024);
    if (bl_file_read(path, BL_TOKEN_FILE_MAX, &tok, &why) != BL_OK) {
        bl_cfg_report(y, at, "token_file: ", &why);
    } else {
        bl_str_t t = { bl_buf_data(&tok), bl_buf_size(&tok) };
        while (t.len > 0 && (t.p[t.len - 1] == '\n' || t.p[t.len - 1] == '\r'))
            t.len--;
        if (bl_str_trim(t).len == 0)
            bl_yaml_error(y, at, "token_file: %s is empty", path);
    }
    if (tok.base != NULL)
        OPENSSL_cleanse(tok.base, tok.cap);
    bl_buf_free(&tok);
    bl_buf_free(&why);
}

/* The upstream credential: a token file, or a client certificate and key. */
static void bl_cfg_conn_cred(bl_yaml_t *y, yaml_node_t *item, yaml_node_t **found,
                             bl_connection_t *c)
{
    yaml_node_t *tok = bl_yaml_found(bl_conn_keys, found, "token_file");
    yaml_node_t *crt = bl_yaml_found(bl_conn_keys, found, "client_cert");
    yaml_node_t *key = bl_yaml_found(bl_conn_keys, found, "client_key");
    if (c->token_file != NULL && (c->cert_file != NULL || c->key_file != NULL))
        bl_yaml_error(y, tok, "token_file and client_cert/client_key are mutually exclusive: "
                              "a connection has one upstream credential");
    else if ((c->cert_file != NULL) != (c->key_file != NULL))
        bl_yaml_error(y, crt ? crt : key, "client_cert and client_key go together");
    else if (c->token_file != NULL)
        bl_cfg_token_file(y, tok, c->token_file);
    else if (c->cert_file != NULL)
        bl_cfg_keypair(y, key, c->cert_file, c->key_file);
    else if (c->name != NULL)
        bl_yaml_warn(y, item, "connection \"%s\" has no token_file or client_cert: requests "
                              "reach the cluster without credentials", c->name);
}

static void bl_cfg_conn(bl_yaml_t *y, yaml_node_t *item, bl_config_t *cfg, bl_connection_t *c)
{
    yaml_node_t *found[BL_YAML_MAX_KEYS];
    const char *why;
    unsigned before = y->nerrors;
    bl_yaml_map(y, item, bl_conn_keys, c, found);
    yaml_node_t *name = bl_yaml_found(bl_conn_keys, found, "name");
    if (c->name != NULL && bl_connection_name_check(c->name, strlen(c->name), &why) != BL_OK)
        bl_yaml_error(y, name, "connection name \"%.64s\" %s", c->name, why);
    for (bl_connection_t *o = cfg->conns; c->name != NULL && o < c; o++)
        if (o->name != NULL && !strcmp(o->name, c->name))
            bl_yaml_error(y, name, "duplicate connection name \"%s\"", c->name);
    if (c->via_agent) {
        bl_cfg_conn_via(y, found);
        return;
    }
    if (c->url == NULL && y->nerrors == before)
        bl_yaml_error(y, item, "missing required key \"server\"");
    if (c->url != NULL)
        bl_cfg_conn_server(y, bl_yaml_found(bl_conn_keys, found, "server"), c);
    if (c->server_name != NULL && !bl_is_ip(c->server_name) &&
        !bl_is_dns_name(c->server_name, strlen(c->server_name)))
        bl_yaml_error(y, bl_yaml_found(bl_conn_keys, found, "tls_server_name"),
                      "tls_server_name: \"%.100s\" is not a DNS name or IP address",
                      c->server_name);
    if (y->nerrors == before && c->ca_file != NULL)
        bl_cfg_ca_file(y, bl_yaml_found(bl_conn_keys, found, "ca"), c->ca_file);
    if (y->nerrors == before)
        bl_cfg_conn_cred(y, item, found, c);
}

static void bl_cfg_conn_via(bl_yaml_t *y, yaml_node_t **found)
{
    static const char *const local[] = { "server", "ca", "tls_server_name", "token_file", "client_cert", "client_key" };
    for (size_t i = 0; i < BL_ARRAY_LEN(local); i++) {
        yaml_node_t *n = bl_yaml_found(bl_conn_keys, found, local[i]);
        if (n)
            bl_yaml_error(y, n, "%s: a connection via: agent has no %s here: the agent holds the API "
                                "server's address and credential (docs/AGENT.md)", local[i], local[i]);
    }
}

static int bl_cfg_conns(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_config_t *cfg = dst;
    if (!bl_yaml_expect_seq(y, v, k->name))
        return BL_ERROR;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > BL_CONFIG_MAX_CONNS) {
        bl_yaml_error(y, v, "connections: %s", n ? "more than 64 connections"
                                                 : "at least one connection is required");
        return BL_ERROR;
    }
    cfg->conns = calloc(n, sizeof(*cfg->conns));
    if (cfg->conns == NULL) {
        bl_yaml_error(y, v, "out of memory");
        return BL_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        cfg->nconns++; /* counted first, so bl_config_free() sees a half-parsed one */
        bl_cfg_conn(y, bl_yaml_node(y, v->data.sequence.items.start[i]), cfg, &cfg->conns[i]);
    }
    return BL_OK;
}

/* ---- identities ---- */

static int bl_cfg_groups(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_identity_t *id = dst;
    const char *why;
    if (bl_yaml_is_null(v))
        return BL_OK;
    if (!bl_yaml_expect_seq(y, v, k->name))
        return BL_ERROR;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > BL_CONFIG_MAX_GROUPS) {
        bl_yaml_error(y, v, "groups: more than %d groups", BL_CONFIG_MAX_GROUPS);
        return BL_ERROR;
    }
    id->groups = calloc(n ? n : 1, sizeof(char *));
    if (id->groups == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *g = bl_yaml_node(y, v->data.sequence.items.start[i]);
        char *s = bl_yaml_strdup(y, g, "group", 0);
        if (s == NULL)
            continue;
        int bad = bl_identity_name_check(s, strlen(s), &why) != BL_OK;
        if (bad)
            bl_yaml_error(y, g, "group \"%.64s\" %s", s, why);
        for (size_t j = 0; !bad && j < id->ngroups; j++)
            if (!strcmp(id->groups[j], s)) {
                bl_yaml_error(y, g, "group \"%s\" is listed twice", s);
                bad = 1;
            }
        if (bad)
            free(s);
        else
            id->groups[id->ngroups++] = s;
    }
    return BL_OK;
}

static int bl_cfg_token_hash(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_identity_t *id = dst;
    char *s = bl_yaml_strdup(y, v, k->name, 1);
    if (s == NULL)
        return BL_OK;
    if (bl_token_hash_unhex(s, strlen(s), id->token_sha256) == BL_OK)
        id->has_token = 1;
    else if (!strncmp(s, BL_TOKEN_PREFIX, sizeof(BL_TOKEN_PREFIX) - 1))
        bl_yaml_error(y, v, "token_sha256 holds a token, not its hash: store only the "
                            "SHA-256 (`byline identity add` does), and treat this token as leaked");
    else
        bl_yaml_error(y, v, "token_sha256: expected 64 hex digits (a SHA-256)");
    OPENSSL_cleanse(s, strlen(s));
    free(s);
    return BL_OK;
}

/* An identity's expires / revoked time (dst: int64_t *), RFC 3339 UTC. */
static int bl_cfg_id_time(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    char *s = bl_yaml_strdup(y, v, k->name, 1);
    int rc = BL_OK;
    if (s != NULL && bl_time_parse(s, dst) != BL_OK) {
        bl_yaml_error(y, v, "%s: expected a UTC time like 2027-01-01T00:00:00Z", k->name);
        rc = BL_ERROR;
    }
    free(s);
    return rc;
}

static const bl_yaml_key_t bl_id_keys[] = {
    { "name", bl_yaml_str, ID(name), 0, 0, NULL, BL_YAML_REQUIRED },
    { "groups", bl_cfg_groups, 0, 0, 0, NULL, 0 },
    { "token_sha256", bl_cfg_token_hash, 0, 0, 0, NULL, 0 },
    { "cert_cn", bl_yaml_str, ID(cert_cn), 0, 0, NULL, 0 },
    { "cert_uri", bl_yaml_str, ID(cert_uri), 0, 0, NULL, 0 },
    { "created", bl_yaml_str, ID(created), 0, 0, NULL, 0 },
    { "expires", bl_cfg_id_time, ID(expires), 0, 0, NULL, 0 },
    { "revoked", bl_cfg_id_time, ID(revoked), 0, 0, NULL, 0 },
    { "revoked_reason", bl_yaml_str, ID(revoked_reason), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Returns 1 if s has no byte below 0x20 and no DEL. */
static int bl_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Returns 1 for a URI with a scheme ("spiffe://...", "urn:..."), no spaces. */
static int bl_uri_ok(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[i] && s[i] != ':' && (s[i] == '+' || s[i] == '.' || s[i] == '-' ||
                                   (s[i] >= '0' && s[i] <= '9') || ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z')))
        i++;
    if (s[i] != ':' || s[i + 1] == '\0' || strlen(s) > BL_URL_MAX)
        return 0;
    for (; s[i]; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Returns 1 for "YYYY-MM-DDTHH:MM:SSZ". */
static int bl_created_ok(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof(pat) - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    return 1;
}

static void bl_cfg_identity_check(bl_yaml_t *y, yaml_node_t *item, yaml_node_t **found,
                                  bl_identity_t *id)
{
    const char *why;
    if (id->name != NULL && bl_identity_name_check(id->name, strlen(id->name), &why) != BL_OK)
        bl_yaml_error(y, bl_yaml_found(bl_id_keys, found, "name"), "identity name \"%.64s\" %s",
                      id->name, why);
    if (id->cert_cn != NULL && (strlen(id->cert_cn) > 64 || !bl_printable(id->cert_cn)))
        bl_yaml_error(y, bl_yaml_found(bl_id_keys, found, "cert_cn"),
                      "cert_cn: at most 64 printable characters (an X.509 common name)");
    if (id->cert_uri != NULL && !bl_uri_ok(id->cert_uri))
        bl_yaml_error(y, bl_yaml_found(bl_id_keys, found, "cert_uri"),
                      "cert_uri: expected a URI with a scheme, e.g. spiffe://example.org/agent");
    if (id->created != NULL && !bl_created_ok(id->created))
        bl_yaml_error(y, bl_yaml_found(bl_id_keys, found, "created"),
                      "created: expected a UTC time like 2026-11-28T06:00:00Z");
    if (!id->has_token && id->cert_cn == NULL && id->cert_uri == NULL &&
        bl_yaml_found(bl_id_keys, found, "token_sha256") == NULL)
        bl_yaml_error(y, item, "identity \"%.64s\" has no credential: give it token_sha256, "
                               "cert_cn or cert_uri", id->name ? id->name : "?");
}

static void bl_cfg_identity(bl_yaml_t *y, yaml_node_t *item, bl_identity_t *id, bl_id_src_t *src)
{
    yaml_node_t *found[BL_YAML_MAX_KEYS];
    yaml_node_t *n;
    src->y = y;
    src->name = src->token = src->cn = src->uri = item->start_mark;
    if (bl_yaml_map(y, item, bl_id_keys, id, found) != BL_OK && item->type != YAML_MAPPING_NODE)
        return;
    bl_cfg_identity_check(y, item, found, id);
    if ((n = bl_yaml_found(bl_id_keys, found, "name")) != NULL)
        src->name = n->start_mark;
    if ((n = bl_yaml_found(bl_id_keys, found, "token_sha256")) != NULL)
        src->token = n->start_mark;
    if ((n = bl_yaml_found(bl_id_keys, found, "cert_cn")) != NULL)
        src->cn = n->start_mark;
    if ((n = bl_yaml_found(bl_id_keys, found, "cert_uri")) != NULL)
        src->uri = n->start_mark;
}

/* Records an `identities` list (dst: yaml_node_t **); the entries are
 * parsed once both files are open. */
static int bl_cfg_id_list(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    if (!bl_yaml_is_null(v) && bl_yaml_expect_seq(y, v, k->name))
        *(yaml_node_t **)dst = v;
    return BL_OK;
}

static int bl_cfg_inline_ids(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    (void)dst;
    return bl_cfg_id_list(y, v, &((bl_load_t *)y->ctx)->inline_ids, k);
}

/* Records the `policy` value: its rules name connections, which may come
 * later in the file (bl_cfg_policy() reads it after the whole mapping). */
static int bl_cfg_policy_node(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    (void)dst;
    (void)k;
    ((bl_load_t *)y->ctx)->policy = v;
    return BL_OK;
}

/* ---- top level ---- */

static const bl_yaml_key_t bl_top_keys[] = {
    { "listen", bl_cfg_listen, 0, 0, 0, NULL, 0 },
    { "public_url", bl_cfg_public_url, CFG(public_url), 0, 0, NULL, 0 },
    { "workers", bl_yaml_int, CFG(workers), 1, 64, NULL, 0 },
    { "tls", bl_cfg_tls, 0, 0, 0, NULL, BL_YAML_REQUIRED },
    { "audit", bl_cfg_audit, 0, 0, 0, NULL, 0 },
    { "policy", bl_cfg_policy_node, 0, 0, 0, NULL, 0 },
    { "metrics", bl_yaml_submap, 0, 0, 0, bl_metrics_keys, 0 },
    { "limits", bl_yaml_submap, 0, 0, 0, bl_limit_keys, 0 },
    { "connections", bl_cfg_conns, 0, 0, 0, NULL, BL_YAML_REQUIRED },
    { "identities_file", bl_yaml_path, CFG(identities_file), 0, 0, NULL, 0 },
    { "identities", bl_cfg_inline_ids, 0, 0, 0, NULL, 0 },
    { "issuers", bl_cfg_issuers, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void bl_cfg_defaults(bl_config_t *cfg)
{
    cfg->workers = 1;
    cfg->max_connections = 10000;
    cfg->max_header_bytes = 32768;
    cfg->max_headers = 100;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 120000;
    cfg->connect_timeout_ms = 5000;
    cfg->drain_timeout_ms = 30000;
    bl_cfg_audit_init(cfg);
}

/* Fills what the file left out and needs the parsed values. */
static int bl_cfg_derived(bl_yaml_t *y, bl_config_t *cfg)
{
    char url[BL_HOST_MAX + 32];
    if (cfg->listen_host == NULL) {
        cfg->listen_host = strdup("127.0.0.1");
        cfg->listen_port = 8443;
    }
    if (cfg->public_url == NULL && cfg->listen_host != NULL) {
        const char *h = cfg->listen_host;
        int wild = !strcmp(h, "0.0.0.0") || !strcmp(h, "::");
        if (wild)
            h = strchr(h, ':') ? "::1" : "127.0.0.1";
        snprintf(url, sizeof(url), strchr(h, ':') ? "https://[%s]:%d" : "https://%s:%d", h,
                 cfg->listen_port);
        if (wild)
            bl_yaml_warn(y, NULL, "listen is a wildcard address and public_url is not set: "
                                  "kubeconfigs will point at %s", url);
        cfg->public_url = strdup(url);
    }
    if (cfg->audit_origin == NULL) /* no `audit:` mapping */
        bl_cfg_audit_defaults(y, cfg);
    bl_cfg_metrics_check(y, y->ctx);
    if (cfg->identities_file == NULL)
        cfg->identities_file = bl_file_abspath(cfg->dir, "identities.yaml");
    if (!cfg->listen_host || !cfg->public_url || !cfg->audit_dir || !cfg->audit_origin ||
        !cfg->identities_file) {
        bl_yaml_error(y, NULL, "out of memory");
        return BL_ERROR;
    }
    return BL_OK;
}

/* A configuration others can write lets them grant themselves access. */
static void bl_cfg_perms(bl_yaml_t *y, const char *path, int dir)
{
    unsigned r = bl_file_check(path, dir);
    if (!(r & BL_FILE_MISSING) && (r & BL_FILE_OTHER_WRITABLE))
        bl_yaml_error(y, NULL, "%s is writable by other users, who could grant themselves "
                               "access; run chmod go-w %s", path, path);
}

static size_t bl_seq_len(const yaml_node_t *n)
{
    return n ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

/* Returns the `identities` list of the identities file, NULL if none. */
static yaml_node_t *bl_cfg_file_ids(bl_yaml_t *yi)
{
    static const bl_yaml_key_t keys[] = {
        { "identities", bl_cfg_id_list, 0, 0, 0, NULL, 0 },
        { NULL, NULL, 0, 0, 0, NULL, 0 },
    };
    yaml_node_t *list = NULL;
    bl_yaml_map(yi, bl_yaml_root(yi), keys, &list, NULL);
    return list;
}

/* Reports a duplicate found by the identity index. */
static void bl_cfg_dup(void *ctx, int what, size_t first, size_t dup)
{
    bl_load_t *L = ctx;
    const bl_id_src_t *a = &L->src[first], *b = &L->src[dup];
    const yaml_mark_t *ma, *mb;
    const char *desc;
    switch (what) {
    case BL_ID_DUP_NAME: ma = &a->name; mb = &b->name; desc = "identity name"; break;
    case BL_ID_DUP_TOKEN: ma = &a->token; mb = &b->token; desc = "token_sha256"; break;
    case BL_ID_DUP_CERT_CN: ma = &a->cn; mb = &b->cn; desc = "cert_cn"; break;
    default: ma = &a->uri; mb = &b->uri; desc = "cert_uri"; break;
    }
    const char *na = L->cfg->ids[first].name, *nb = L->cfg->ids[dup].name;
    na = na ? na : "?"; /* a nameless identity was reported already */
    nb = nb ? nb : "?";
    if (what == BL_ID_DUP_NAME)
        bl_yaml_error_at(b->y, mb, "identity name \"%s\" is already used at %s:%zu:%zu", nb,
                         a->y->file, ma->line + 1, ma->column + 1);
    else
        bl_yaml_error_at(b->y, mb, "%s of identity \"%s\" already maps to identity \"%s\" "
                                   "(%s:%zu:%zu): one credential must name one identity",
                         desc, nb, na, a->y->file, ma->line + 1, ma->column + 1);
}

/* Parses both identity lists into one array and indexes it. */
static void bl_cfg_identities(bl_load_t *L, bl_yaml_t *y, bl_yaml_t *yi, yaml_node_t *file_ids)
{
    bl_config_t *cfg = L->cfg;
    size_t ni = bl_seq_len(L->inline_ids), nf = bl_seq_len(file_ids);
    if (ni + nf > BL_CONFIG_MAX_IDS) {
        bl_yaml_error(yi, file_ids, "more than %d identities", BL_CONFIG_MAX_IDS);
        return;
    }
    cfg->ids = calloc(ni + nf + 1, sizeof(*cfg->ids));
    L->src = calloc(ni + nf + 1, sizeof(*L->src));
    if (cfg->ids == NULL || L->src == NULL) {
        bl_yaml_error(y, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < ni + nf; i++) {
        bl_yaml_t *r = i < ni ? y : yi;
        yaml_node_t *seq = i < ni ? L->inline_ids : file_ids;
        size_t j = i < ni ? i : i - ni;
        cfg->nids++;
        bl_cfg_identity(r, bl_yaml_node(r, seq->data.sequence.items.start[j]), &cfg->ids[i],
                        &L->src[i]);
    }
    cfg->nids_inline = ni;
    if (bl_identity_index_build(cfg, bl_cfg_dup, L) == BL_ERROR)
        bl_yaml_error(y, NULL, "out of memory");
}

/* Opens the identities file named by cfg (missing: no identities). */
static int bl_cfg_open_ids(bl_yaml_t *yi, bl_config_t *cfg, int explicit)
{
    unsigned r = bl_file_check(cfg->identities_file, 0);
    if (r & BL_FILE_MISSING) {
        if (explicit)
            bl_yaml_warn(yi, NULL, "does not exist: no identities registered there yet");
        return BL_DECLINED;
    }
    bl_cfg_perms(yi, cfg->identities_file, 0);
    return bl_yaml_load(yi, BL_IDENTITIES_MAX_BYTES);
}

int bl_config_load_ex(const char *dir, bl_config_t **out, bl_buf_t *errors, bl_buf_t *warnings)
{
    bl_load_t L = { 0 };
    bl_yaml_t y = { 0 }, yi = { 0 };
    int explicit_ids = 0;
    *out = NULL;
    bl_config_t *cfg = L.cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->dir = bl_file_abspath(NULL, dir)) == NULL ||
        (cfg->path = bl_file_abspath(cfg->dir, "byline.yaml")) == NULL) {
        bl_buf_printf(errors, "%s: out of memory\n", dir);
        bl_config_free(cfg);
        return BL_ERROR;
    }
    bl_cfg_defaults(cfg);
    y = (bl_yaml_t){ .file = cfg->path, .dir = cfg->dir, .errors = errors,
                     .warnings = warnings, .ctx = &L };
    int rc = bl_yaml_load(&y, BL_CONFIG_MAX_BYTES);
    bl_cfg_perms(&y, cfg->dir, 1);
    bl_cfg_perms(&y, cfg->path, 0);
    if (rc == BL_DECLINED)
        bl_yaml_error(&y, NULL, "is empty");
    if (rc == BL_OK) {
        bl_yaml_map(&y, bl_yaml_root(&y), bl_top_keys, cfg, NULL);
        explicit_ids = cfg->identities_file != NULL;
        bl_cfg_policy(&y, L.policy, cfg);
    }
    if (bl_cfg_derived(&y, cfg) == BL_OK && rc != BL_ERROR) {
        yi = (bl_yaml_t){ .file = cfg->identities_file, .dir = cfg->dir, .errors = errors,
                          .warnings = warnings, .ctx = &L };
        yaml_node_t *file_ids = bl_cfg_open_ids(&yi, cfg, explicit_ids) == BL_OK
                                    ? bl_cfg_file_ids(&yi) : NULL;
        bl_cfg_identities(&L, &y, &yi, file_ids);
    }
    unsigned nerr = y.nerrors + yi.nerrors;
    bl_yaml_free(&y);
    bl_yaml_free(&yi);
    free(L.src);
    if (nerr > 0) {
        bl_config_free(cfg);
        return BL_ERROR;
    }
    *out = cfg;
    return BL_OK;
}

int bl_config_load(const char *dir, bl_config_t **out, bl_buf_t *errors)
{
    return bl_config_load_ex(dir, out, errors, NULL);
}

void bl_identity_clear(bl_identity_t *id)
{
    free(id->name);
    for (size_t i = 0; i < id->ngroups; i++)
        free(id->groups[i]);
    free(id->groups);
    free(id->cert_cn);
    free(id->cert_uri);
    free(id->created);
    free(id->revoked_reason);
    memset(id, 0, sizeof(*id));
}

static void bl_connection_clear(bl_connection_t *c)
{
    free(c->name);
    free(c->url);
    free(c->host);
    free(c->path_prefix);
    free(c->ca_file);
    free(c->server_name);
    free(c->token_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->impersonate_user);
}

void bl_config_free(bl_config_t *cfg)
{
    if (cfg == NULL)
        return;
    bl_identity_index_free(cfg->id_index);
    bl_policy_free(cfg->policy);
    free(cfg->reviewer_group);
    for (size_t i = 0; i < cfg->nids; i++)
        bl_identity_clear(&cfg->ids[i]);
    free(cfg->ids);
    for (size_t i = 0; i < cfg->nconns; i++)
        bl_connection_clear(&cfg->conns[i]);
    free(cfg->conns);
    bl_cfg_issuers_free(cfg);
    free(cfg->dir);
    free(cfg->path);
    free(cfg->identities_file);
    free(cfg->listen_host);
    free(cfg->public_url);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->tls_ca);
    free(cfg->client_ca);
    free(cfg->audit_dir);
    free(cfg->audit_signing_key);
    free(cfg->audit_signing_pub);
    free(cfg->audit_origin);
    free(cfg->metrics_listen);
    free(cfg);
}

const bl_connection_t *bl_config_connection(const bl_config_t *cfg, const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->nconns; i++)
        if (cfg->conns[i].name && strlen(cfg->conns[i].name) == len && memcmp(cfg->conns[i].name, name, len) == 0)
            return &cfg->conns[i];
    return NULL;
}
