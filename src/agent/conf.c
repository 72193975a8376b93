/* conf.c - the agent's configuration file; see conf.h. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include "agent/conf.h"
#include "config/yaml.h"
#include "net/tls.h"

#define AC(f) offsetof(bl_agentconn_t, f)
#define BL_AGENTCONF_MAX_BYTES (1024 * 1024)

static const bl_yaml_key_t bl_ac_keys[] = {
    { "name", bl_yaml_str, AC(name), 0, 0, NULL, BL_YAML_REQUIRED },
    { "server", bl_yaml_str, AC(server), 0, 0, NULL, 0 },
    { "ca", bl_yaml_path, AC(ca_file), 0, 0, NULL, BL_YAML_FILE },
    { "tls_server_name", bl_yaml_str, AC(server_name), 0, 0, NULL, 0 },
    { "token", bl_yaml_str, AC(token), 0, 0, NULL, 0 },
    { "token_file", bl_yaml_path, AC(token_file), 0, 0, NULL, BL_YAML_FILE | BL_YAML_SECRET },
    { "client_cert", bl_yaml_path, AC(cert_file), 0, 0, NULL, BL_YAML_FILE },
    { "client_key", bl_yaml_path, AC(key_file), 0, 0, NULL, BL_YAML_FILE | BL_YAML_SECRET },
    { "kubeconfig", bl_yaml_path, AC(kubeconfig), 0, 0, NULL, BL_YAML_FILE | BL_YAML_SECRET },
    { "context", bl_yaml_str, AC(context), 0, 0, NULL, 0 },
    { "in_cluster", bl_yaml_bool, AC(in_cluster), 0, 0, NULL, 0 },
    { "service_account_dir", bl_yaml_path, AC(sa_dir), 0, 0, NULL, 0 },
    { "allow_impersonation", bl_yaml_bool, AC(allow_impersonation), 0, 0, NULL, 0 },
    { "type", bl_yaml_str, AC(type), 0, 0, NULL, 0 },
    { "cluster_url", bl_yaml_str, AC(server), 0, 0, NULL, 0 }, /* kubernetes-eks's name for server */
    { "region", bl_yaml_str, AC(eks_region), 0, 0, NULL, 0 },
    { "cluster", bl_yaml_str, AC(eks_cluster), 0, 0, NULL, 0 },
    { "role_arn", bl_yaml_str, AC(eks_role_arn), 0, 0, NULL, 0 },
    { "session_name", bl_yaml_str, AC(eks_session_name), 0, 0, NULL, 0 },
    { "per_identity_sessions", bl_yaml_bool, AC(per_identity_sessions), 0, 0, NULL, 0 },
    { "token_refresh", bl_yaml_duration, AC(eks_token_refresh), 1000, 600000, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

#define BL_AC_EKS "kubernetes-eks"

/* kubernetes-eks: a key the file leaves out comes from the environment
 * variable other gateways' users know (the file wins: an explicit per-
 * connection setting beats the process-wide one). Returns BL_OK, or
 * BL_ERROR on OOM. */
static int bl_ac_eks_env(bl_agentconn_t *c)
{
    struct { char **dst; const char *var; } m[] = {
        { &c->server, "KUBERNETES_CLUSTER_URL" }, { &c->eks_region, "EKS_AWS_REGION" },
        { &c->eks_cluster, "EKS_CLUSTER" }, { &c->eks_role_arn, "EKS_ROLE_ARN" },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(m); i++) {
        const char *v = getenv(m[i].var);
        if (*m[i].dst == NULL && v && *v && (*m[i].dst = strdup(v)) == NULL)
            return BL_ERROR;
    }
    return BL_OK;
}

/* kubernetes-eks: the keys it needs, and no other credential. */
static void bl_ac_check_eks(bl_yaml_t *y, yaml_node_t *item, bl_agentconn_t *c)
{
    if (bl_ac_eks_env(c) != BL_OK) {
        bl_yaml_error(y, item, "out of memory");
        return;
    }
    if (c->in_cluster || c->kubeconfig || c->token || c->token_file || c->cert_file)
        bl_yaml_error(y, item, "connection \"%s\": type kubernetes-eks mints its own tokens; remove in_cluster, "
                               "kubeconfig, token, token_file and client_cert", c->name ? c->name : "?");
    if (!c->server)
        bl_yaml_error(y, item, "connection \"%s\": kubernetes-eks needs cluster_url (or KUBERNETES_CLUSTER_URL)",
                      c->name ? c->name : "?");
    if (!c->eks_region)
        bl_yaml_error(y, item, "connection \"%s\": kubernetes-eks needs region (or EKS_AWS_REGION)", c->name ? c->name : "?");
    if (!c->eks_cluster)
        bl_yaml_error(y, item, "connection \"%s\": kubernetes-eks needs cluster (or EKS_CLUSTER)", c->name ? c->name : "?");
    if (c->per_identity_sessions && !c->eks_role_arn)
        bl_yaml_error(y, item, "connection \"%s\": per_identity_sessions needs role_arn (or EKS_ROLE_ARN)",
                      c->name ? c->name : "?");
}

/* Exactly one way to find the server and credential. */
static void bl_ac_check(bl_yaml_t *y, yaml_node_t *item, bl_agentconn_t *c)
{
    int sources = !!c->in_cluster + !!c->kubeconfig + !!(c->token || c->token_file || c->cert_file);
    if (c->name && bl_connection_name_check(c->name, strlen(c->name), &(const char *){ NULL }) != BL_OK)
        bl_yaml_error(y, item, "connection name \"%.64s\" is not valid", c->name);
    if (c->type && strcmp(c->type, BL_AC_EKS) != 0) {
        bl_yaml_error(y, item, "connection \"%s\": type must be " BL_AC_EKS " (or left out)", c->name ? c->name : "?");
        return;
    }
    if (c->type) {
        bl_ac_check_eks(y, item, c);
        return;
    }
    if (c->eks_region || c->eks_cluster || c->eks_role_arn || c->eks_session_name || c->per_identity_sessions ||
        c->eks_token_refresh)
        bl_yaml_error(y, item, "connection \"%s\": region, cluster, role_arn, session_name, per_identity_sessions "
                               "and token_refresh go with type: " BL_AC_EKS, c->name ? c->name : "?");
    if (sources != 1)
        bl_yaml_error(y, item, "connection \"%s\": give exactly one of in_cluster: true, kubeconfig, or "
                               "token / token_file / client_cert", c->name ? c->name : "?");
    if (!!c->token + !!c->token_file + !!c->cert_file > 1)
        bl_yaml_error(y, item, "token, token_file and client_cert are mutually exclusive");
    if (!c->cert_file != !c->key_file)
        bl_yaml_error(y, item, "client_cert and client_key go together");
    if (!c->in_cluster && !c->kubeconfig && !c->server)
        bl_yaml_error(y, item, "missing required key \"server\"");
}

static int bl_ac_conns(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_agentconf_t *out = dst;
    if (!bl_yaml_expect_seq(y, v, k->name))
        return BL_ERROR;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > BL_AGENT_MAX_CONNS) {
        bl_yaml_error(y, v, "connections: between 1 and %d", BL_AGENT_MAX_CONNS);
        return BL_ERROR;
    }
    if ((out->conns = calloc(n, sizeof(*out->conns))) == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = bl_yaml_node(y, v->data.sequence.items.start[i]);
        bl_agentconn_t *c = &out->conns[out->n++];
        unsigned before = y->nerrors;
        bl_yaml_map(y, item, bl_ac_keys, c, NULL);
        if (y->nerrors == before)
            bl_ac_check(y, item, c);
        for (size_t j = 0; c->name && j + 1 < out->n; j++)
            if (out->conns[j].name && !strcmp(out->conns[j].name, c->name))
                bl_yaml_error(y, item, "duplicate connection name \"%s\"", c->name);
    }
    return BL_OK;
}

int bl_agentconf_load(const char *path, bl_agentconf_t *out, bl_buf_t *err)
{
    static const bl_yaml_key_t top[] = {
        { "connections", bl_ac_conns, 0, 0, 0, NULL, BL_YAML_REQUIRED },
        { NULL, NULL, 0, 0, 0, NULL, 0 },
    };
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    memset(out, 0, sizeof(*out));
    bl_yaml_t y = { .file = path, .dir = dir[0] ? dir : "/", .errors = err };
    int rc = bl_yaml_load(&y, BL_AGENTCONF_MAX_BYTES);
    if (rc == BL_DECLINED)
        bl_yaml_error(&y, NULL, "empty configuration: expected connections:");
    else if (rc == BL_OK)
        bl_yaml_map(&y, bl_yaml_root(&y), top, out, NULL);
    rc = y.nerrors ? BL_ERROR : BL_OK;
    bl_yaml_free(&y);
    if (rc != BL_OK)
        bl_agentconf_free(out);
    return rc;
}

/* Returns a client context from PEM held in memory (kubeconfig -data), or
 * NULL with the reason in `err`. */
static SSL_CTX *bl_ac_ctx_pem(const bl_agentconn_t *c, bl_buf_t *err)
{
    SSL_CTX *ctx = bl_tls_client_ctx(c->ca_file, c->cert_file, c->key_file, err);
    BIO *b = NULL;
    if (ctx && c->ca_pem) {
        X509_STORE *st = X509_STORE_new(); /* only the kubeconfig's CA, not the system's */
        X509 *x;
        if (st == NULL)
            goto fail;
        SSL_CTX_set_cert_store(ctx, st);
        b = BIO_new_mem_buf(c->ca_pem, -1);
        int n = 0;
        while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            n += X509_STORE_add_cert(st, x) == 1;
            X509_free(x);
        }
        ERR_clear_error();
        BIO_free(b);
        if (n == 0)
            goto fail;
    }
    if (ctx && c->cert_pem) {
        b = BIO_new_mem_buf(c->cert_pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        b = BIO_new_mem_buf(c->key_pem, -1);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        int ok = x && k && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, k) == 1;
        X509_free(x);
        EVP_PKEY_free(k);
        if (!ok)
            goto fail;
    }
    return ctx;
fail:
    bl_buf_printf(err, "kubeconfig: cannot load its certificate data: ");
    bl_tls_errors(err);
    SSL_CTX_free(ctx);
    return NULL;
}

/* in_cluster: the API server from the environment, CA and token from the
 * mounted ServiceAccount. Returns BL_OK or BL_ERROR (err). */
static int bl_ac_in_cluster(bl_agentconn_t *c, bl_buf_t *err)
{
    const char *dir = c->sa_dir ? c->sa_dir : BL_AGENT_SA_DIR;
    char p[4200];
    if (c->server == NULL) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
        if (host == NULL || port == NULL) {
            bl_buf_printf(err, "in_cluster: KUBERNETES_SERVICE_HOST/PORT are not set (not in a pod?) and no server is given");
            return BL_ERROR;
        }
        snprintf(p, sizeof(p), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
        c->server = strdup(p);
    }
    snprintf(p, sizeof(p), "%.4000s/ca.crt", dir);
    if (c->ca_file == NULL)
        c->ca_file = strdup(p);
    snprintf(p, sizeof(p), "%.4000s/token", dir);
    c->token_file = strdup(p);
    return c->server && c->ca_file && c->token_file ? BL_OK : BL_ERROR;
}

/* Builds one connection's URL, TLS context and credential. */
static int bl_ac_open(bl_agentconn_t *c, bl_buf_t *err)
{
    const char *why;
    if (c->in_cluster && bl_ac_in_cluster(c, err) != BL_OK)
        return BL_ERROR;
    if (c->kubeconfig && bl_kubeconfig_apply(c, err) != BL_OK)
        return BL_ERROR;
    if (bl_url_parse(c->server, strlen(c->server), &c->url, &why) != BL_OK) {
        bl_buf_printf(err, "server \"%.200s\" %s", c->server, why);
        return BL_ERROR;
    }
    if (c->ca_pem || c->cert_pem)
        c->ctx = bl_ac_ctx_pem(c, err);
    else
        c->ctx = bl_tls_client_ctx(c->ca_file, c->cert_file, c->key_file, err);
    if (c->ctx == NULL)
        return BL_ERROR;
    if (c->type) {
        bl_cred_eks_opts_t o = { c->eks_region, c->eks_cluster, c->eks_role_arn, c->eks_session_name,
                                 c->per_identity_sessions, c->eks_token_refresh / 1000 };
        c->cred = bl_cred_eks(&o, err);
    } else if (c->token)
        c->cred = bl_cred_token(c->token, err);
    else if (c->token_file)
        c->cred = bl_cred_token_file(c->token_file, err);
    else if (c->cert_file || c->cert_pem)
        c->cred = bl_cred_none("client_cert");
    else
        bl_buf_printf(err, "no credential for the API server");
    return c->cred ? BL_OK : BL_ERROR;
}

int bl_agentconf_open(bl_agentconf_t *conf, bl_buf_t *err)
{
    for (size_t i = 0; i < conf->n; i++) {
        size_t before = bl_buf_size(err);
        if (bl_ac_open(&conf->conns[i], err) != BL_OK) {
            if (bl_buf_size(err) == before)
                bl_buf_printf(err, "out of memory");
            bl_buf_printf(err, " (connection %s)", conf->conns[i].name);
            return BL_ERROR;
        }
    }
    return BL_OK;
}

bl_agentconn_t *bl_agentconf_find(const bl_agentconf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->n; i++)
        if (strlen(conf->conns[i].name) == len && !memcmp(conf->conns[i].name, name, len))
            return &conf->conns[i];
    return NULL;
}

/* Frees a secret string after wiping it. */
static void bl_ac_wipe(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void bl_agentconf_free(bl_agentconf_t *conf)
{
    for (size_t i = 0; i < conf->n; i++) {
        bl_agentconn_t *c = &conf->conns[i];
        free(c->name);
        free(c->server);
        free(c->ca_file);
        free(c->ca_pem);
        free(c->server_name);
        bl_ac_wipe(c->token);
        free(c->token_file);
        free(c->cert_file);
        free(c->key_file);
        free(c->cert_pem);
        bl_ac_wipe(c->key_pem);
        free(c->kubeconfig);
        free(c->context);
        free(c->sa_dir);
        free(c->type);
        free(c->eks_region);
        free(c->eks_cluster);
        free(c->eks_role_arn);
        free(c->eks_session_name);
        SSL_SESSION_free(c->session);
        SSL_CTX_free(c->ctx);
        bl_cred_free(c->cred);
    }
    free(conf->conns);
    conf->conns = NULL;
    conf->n = 0;
}
