/*
 * conf.h - the agent's configuration file (`byline agent --config FILE`):
 * the connections it serves, each with its API server and credential.
 *
 *   connections:
 *     - name: prod-eks                 # as the gateway names it (via: agent)
 *       server: https://10.0.0.1:6443  # or in_cluster / kubeconfig
 *       ca: /etc/byline/prod-ca.crt    # default: the system store
 *       token_file: /etc/byline/prod.token   # or token, client_cert + client_key
 *       allow_impersonation: false     # pass the gateway's Impersonate-* headers
 *     - name: prod-eks2
 *       type: kubernetes-eks           # EKS tokens (docs/EKS.md); or EKS_* env vars
 *       cluster_url: https://ABC.gr7.us-east-1.eks.amazonaws.com
 *       region: us-east-1
 *       cluster: prod
 *       role_arn: arn:aws:iam::111122223333:role/byline-agent
 *       per_identity_sessions: false   # AssumeRole as byline-<identity>
 *
 * A bl_agentconf_t owns every string in it; free with bl_agentconf_free().
 */
#ifndef BL_AGENT_CONF_H
#define BL_AGENT_CONF_H

#include <openssl/ssl.h>
#include "agent/cred.h"
#include "config/values.h"
#include "core/buf.h"

#define BL_AGENT_MAX_CONNS 64
#define BL_AGENT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct {
    char *name;
    char *server;               /* https://host[:port][/prefix] */
    bl_url_t url;               /* server taken apart */
    char *ca_file;              /* NULL: system store */
    char *ca_pem;               /* CA from a kubeconfig's certificate-authority-data, or NULL */
    char *server_name;          /* name to verify (default: url.host) */
    char *token;                /* a fixed bearer token (secret), or NULL */
    char *token_file;
    char *cert_file, *key_file; /* client certificate */
    char *cert_pem, *key_pem;   /* ...from kubeconfig -data fields */
    char *kubeconfig;           /* path, read at load time */
    char *context;              /* kubeconfig context (default: current-context) */
    int in_cluster;             /* the pod's ServiceAccount */
    char *sa_dir;               /* in_cluster: where it is mounted (default BL_AGENT_SA_DIR) */
    int allow_impersonation;
    /* type: kubernetes-eks; each string also from the environment (conf.c) */
    char *type;                 /* NULL or "kubernetes-eks" */
    char *eks_region, *eks_cluster, *eks_role_arn, *eks_session_name;
    int per_identity_sessions;
    unsigned eks_token_refresh; /* ms between mints; 0: 10 min */
    /* built by bl_agentconf_open() */
    SSL_CTX *ctx;
    bl_cred_t *cred;
    SSL_SESSION *session;       /* latest TLS session from this API server, for resumption (tunnel.c) */
    struct bl_agentpool_s *pool; /* idle connections to it (pool.c), or NULL */
} bl_agentconn_t;

typedef struct bl_agentpool_s bl_agentpool_t;

typedef struct {
    bl_agentconn_t *conns;
    size_t n;
} bl_agentconf_t;

/* Reads `path` (YAML). Returns BL_OK with *out filled, or BL_ERROR with
 * "file:line:col: ..." lines in `err`. */
int bl_agentconf_load(const char *path, bl_agentconf_t *out, bl_buf_t *err);

/* Builds each connection's TLS context and credential source. Returns
 * BL_OK or BL_ERROR with the reason in `err`. */
int bl_agentconf_open(bl_agentconf_t *c, bl_buf_t *err);

/* Returns the connection named name[0..len), or NULL. */
bl_agentconn_t *bl_agentconf_find(const bl_agentconf_t *c, const char *name, size_t len);

void bl_agentconf_free(bl_agentconf_t *c);

/* Fills in server/CA/token from a kubeconfig (kubeconfig.c). Returns BL_OK
 * or BL_ERROR with the reason in `err`. */
int bl_kubeconfig_apply(bl_agentconn_t *c, bl_buf_t *err);

#endif
