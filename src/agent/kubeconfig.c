/*
 * kubeconfig.c - an agent connection described by a kubeconfig: the
 * context (`context:` or current-context) names a cluster (server, CA,
 * tls-server-name) and a user (token, tokenFile, or a client certificate,
 * as files or -data). Relative paths are relative to the kubeconfig's
 * directory, as kubectl reads them. Exec plugins, auth providers and
 * insecure-skip-tls-verify are refused with a clear error.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include "agent/conf.h"
#include "config/yaml.h"

#define BL_KC_MAX_BYTES (4 * 1024 * 1024)
#define BL_KC_PEM_MAX   (1024 * 1024)

/* Returns the value node of `key` in mapping `m`, or NULL. */
static yaml_node_t *bl_kc_get(bl_yaml_t *y, yaml_node_t *m, const char *key)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = bl_yaml_node(y, p->key);
        if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
            !memcmp(k->data.scalar.value, key, k->data.scalar.length))
            return bl_yaml_node(y, p->value);
    }
    return NULL;
}

/* Returns a scalar's text (NUL-terminated inside libyaml's node), or NULL. */
static const char *bl_kc_str(bl_yaml_t *y, yaml_node_t *m, const char *key)
{
    yaml_node_t *v = bl_kc_get(y, m, key);
    return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/* Returns the `inner` mapping of the entry named `name` in list `list`. */
static yaml_node_t *bl_kc_named(bl_yaml_t *y, const char *list, const char *name, const char *inner)
{
    yaml_node_t *seq = bl_kc_get(y, bl_yaml_root(y), list);
    if (name == NULL || seq == NULL || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
        yaml_node_t *e = bl_yaml_node(y, *i);
        const char *n = bl_kc_str(y, e, "name");
        if (n && !strcmp(n, name))
            return bl_kc_get(y, e, inner);
    }
    return NULL;
}

/* Returns a new string with the decoded base64 `s` (PEM text), or NULL. */
static char *bl_kc_b64(const char *s)
{
    size_t n = strlen(s), k = 0, pad = 0;
    if (n > BL_KC_PEM_MAX * 2)
        return NULL;
    char *clean = malloc(n + 1), *out = malloc(n + 1);
    for (size_t i = 0; clean && i < n; i++)
        if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ')
            clean[k++] = s[i];
    int len = clean && out && k % 4 == 0 && k > 0 ? EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)k) : -1;
    while (len > 0 && pad < 2 && k > pad && clean[k - 1 - pad] == '=')
        pad++;
    free(clean);
    if (len < 0) {
        free(out);
        return NULL;
    }
    out[len - (int)pad] = '\0';
    return out;
}

/* Returns `path` resolved against the kubeconfig's directory (new string). */
static char *bl_kc_path(const char *kubeconfig, const char *path)
{
    char buf[8192];
    const char *slash = strrchr(kubeconfig, '/');
    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - kubeconfig), kubeconfig, path);
    return strdup(buf);
}

/* Sets *dst (if unset) from a file key or a -data key. BL_OK or BL_ERROR. */
static int bl_kc_file_or_data(bl_yaml_t *y, yaml_node_t *m, const char *kc, const char *key, char **file, char **pem,
                              bl_buf_t *err)
{
    char dkey[64];
    snprintf(dkey, sizeof(dkey), "%s-data", key);
    const char *f = bl_kc_str(y, m, key), *d = bl_kc_str(y, m, dkey);
    if (d && !*pem && !*file && (*pem = bl_kc_b64(d)) == NULL) {
        bl_buf_printf(err, "%s: %s is not valid base64", kc, dkey);
        return BL_ERROR;
    }
    if (f && !d && !*file && !*pem)
        *file = bl_kc_path(kc, f);
    return BL_OK;
}

/* The user's credential: token, tokenFile or a client certificate. */
static int bl_kc_user(bl_yaml_t *y, yaml_node_t *u, bl_agentconn_t *c, bl_buf_t *err)
{
    const char *kc = c->kubeconfig, *tok = bl_kc_str(y, u, "token"), *tf = bl_kc_str(y, u, "tokenFile");
    if (bl_kc_get(y, u, "exec") || bl_kc_get(y, u, "auth-provider")) {
        bl_buf_printf(err, "%s: the user runs an exec plugin or auth provider, which the agent does not; "
                           "give it a token, tokenFile or client certificate", kc);
        return BL_ERROR;
    }
    if (tok && !c->token)
        c->token = strdup(tok);
    else if (tf && !c->token_file)
        c->token_file = bl_kc_path(kc, tf);
    else if (bl_kc_file_or_data(y, u, kc, "client-certificate", &c->cert_file, &c->cert_pem, err) != BL_OK ||
             bl_kc_file_or_data(y, u, kc, "client-key", &c->key_file, &c->key_pem, err) != BL_OK)
        return BL_ERROR;
    if (!c->token && !c->token_file && !(c->cert_file && c->key_file) && !(c->cert_pem && c->key_pem)) {
        bl_buf_printf(err, "%s: the user has no token, tokenFile or client certificate and key", kc);
        return BL_ERROR;
    }
    if ((c->cert_file && !c->key_file) || (c->cert_pem && !c->key_pem)) {
        bl_buf_printf(err, "%s: a client certificate without its key (or as file and data mixed)", kc);
        return BL_ERROR;
    }
    return BL_OK;
}

static int bl_kc_cluster(bl_yaml_t *y, yaml_node_t *cl, bl_agentconn_t *c, bl_buf_t *err)
{
    const char *kc = c->kubeconfig, *server = bl_kc_str(y, cl, "server"), *skip = bl_kc_str(y, cl, "insecure-skip-tls-verify");
    const char *sni = bl_kc_str(y, cl, "tls-server-name");
    if (skip && !strcmp(skip, "true")) {
        bl_buf_printf(err, "%s: insecure-skip-tls-verify is refused: the agent verifies the API server", kc);
        return BL_ERROR;
    }
    if (server == NULL && c->server == NULL) {
        bl_buf_printf(err, "%s: the cluster has no server", kc);
        return BL_ERROR;
    }
    if (c->server == NULL)
        c->server = strdup(server);
    if (sni && !c->server_name)
        c->server_name = strdup(sni);
    return c->ca_file ? BL_OK : bl_kc_file_or_data(y, cl, kc, "certificate-authority", &c->ca_file, &c->ca_pem, err);
}

int bl_kubeconfig_apply(bl_agentconn_t *c, bl_buf_t *err)
{
    bl_buf_t yerr;
    bl_buf_init(&yerr, 8192);
    bl_yaml_t y = { .file = c->kubeconfig, .dir = "/", .errors = &yerr };
    int rc = BL_ERROR;
    if (bl_yaml_load(&y, BL_KC_MAX_BYTES) != BL_OK) {
        bl_buf_printf(err, "%s", bl_buf_size(&yerr) ? bl_buf_cstr(&yerr) : "empty kubeconfig");
        goto end;
    }
    const char *ctxname = c->context ? c->context : bl_kc_str(&y, bl_yaml_root(&y), "current-context");
    yaml_node_t *ctx = bl_kc_named(&y, "contexts", ctxname, "context");
    if (ctx == NULL) {
        bl_buf_printf(err, "%s: no context \"%s\"", c->kubeconfig, ctxname ? ctxname : "(no current-context)");
        goto end;
    }
    const char *cname = bl_kc_str(&y, ctx, "cluster"), *uname = bl_kc_str(&y, ctx, "user");
    yaml_node_t *cl = bl_kc_named(&y, "clusters", cname, "cluster"), *u = bl_kc_named(&y, "users", uname, "user");
    if (cl == NULL || u == NULL) {
        bl_buf_printf(err, "%s: context \"%s\" names a %s that is not in the file", c->kubeconfig, ctxname,
                      cl ? "user" : "cluster");
        goto end;
    }
    if (bl_kc_cluster(&y, cl, c, err) == BL_OK && bl_kc_user(&y, u, c, err) == BL_OK)
        rc = BL_OK;
end:
    bl_yaml_free(&y);
    bl_buf_free(&yerr);
    return rc;
}
