/*
 * config.h - byline's configuration: DIR/byline.yaml plus the identity
 * registry it names (DIR/identities.yaml by default).
 *
 * A bl_config_t is immutable once loaded and owns every string in it;
 * bl_config_free() releases the lot. Paths in it are absolute (relative
 * paths in the YAML are resolved against the config directory).
 */
#ifndef BL_CONFIG_CONFIG_H
#define BL_CONFIG_CONFIG_H

#include "core/buf.h"
#include "core/common.h"

/* One non-human identity (an agent). Exactly one name per credential. */
typedef struct {
    char *name;                      /* e.g. "agent-deploybot" */
    char **groups;                   /* owned array of owned strings */
    size_t ngroups;
    int has_token;                   /* 1 if token_sha256 is set */
    unsigned char token_sha256[32];  /* SHA-256 of the bearer token; never the token */
    char *cert_cn;                   /* client-cert subject CN that maps here, or NULL */
    char *cert_uri;                  /* client-cert URI SAN that maps here, or NULL */
    char *created;                   /* RFC 3339 UTC time it was registered, or NULL */
    int64_t expires;                 /* every credential is refused from then on (epoch s); 0 = never */
    int64_t revoked;                 /* when `byline identity revoke` revoked it (epoch s); 0 = not */
    char *revoked_reason;            /* the operator's reason, or NULL */
} bl_identity_t;

/* One upstream Kubernetes API server and the shared credential for it. */
typedef struct {
    char *name;          /* e.g. "prod-eks"; appears in every audit record */
    char *url;           /* as configured: https://host[:port][/prefix] */
    char *host;          /* parsed from url */
    int port;            /* parsed from url (default 443) */
    char *path_prefix;   /* parsed from url without trailing '/', "" if none */
    char *ca_file;       /* CA bundle to verify the API server; NULL = system store */
    char *server_name;   /* name to verify in its certificate (default: host) */
    char *token_file;    /* bearer token file, or NULL */
    char *cert_file;     /* client certificate (PEM), or NULL */
    char *key_file;      /* its private key (PEM), or NULL */
    int capture_set;     /* 1: capture_max below replaces audit.capture_max for this connection */
    size_t capture_max;  /* exec/attach session capture bound (bytes, 0 = off) when capture_set */
    int impersonate;     /* 1: send Impersonate-User/-Group/-Extra-* for the identity */
    char *impersonate_user; /* template for Impersonate-User; "{name}" is the identity (default "byline:{name}");
                               NULL when impersonate is 0 */
    int via_agent;       /* 1: `via: agent`: reached through a byline agent (docs/AGENT.md), which
                            holds the API server URL and credential; url/host/etc. are NULL */
} bl_connection_t;

/* A claim a JWT must carry with exactly this string value (or, for an
 * array claim, hold as one element). */
typedef struct {
    char *name;
    char *value;
} bl_claim_want_t;

/* One trusted JWT issuer (workload identity, docs/IDENTITY.md). Tokens
 * whose `iss` is `issuer` are verified with its JWKS and mapped to an
 * identity: name = username_prefix + the username claim, groups =
 * groups_prefix + each value of the groups claim. */
typedef struct {
    char *issuer;            /* exact `iss` */
    char *audience;          /* `aud` must hold it */
    char *jwks_file;         /* JWKS on disk (re-read when it changes), or NULL */
    char *jwks_url;          /* JWKS over https, or NULL; both NULL: OIDC discovery from issuer */
    char *ca_file;           /* CA for jwks_url / discovery; NULL = system store */
    unsigned clock_skew_ms;  /* allowed for exp/nbf/iat; default 60 s */
    unsigned refresh_ms;     /* JWKS refresh when the server sets no max-age; default 1 h */
    char *username_claim;    /* default "sub" */
    char *username_prefix;   /* or NULL */
    char *groups_claim;      /* or NULL: no groups */
    char *groups_prefix;     /* or NULL */
    bl_claim_want_t *claims; /* required claims, owned */
    size_t nclaims;
} bl_issuer_t;

/* How much of request and response bodies the audit keeps (as in the
 * Kubernetes audit policy levels). Secret and ConfigMap bodies never. */
enum { BL_LEVEL_METADATA = 0, BL_LEVEL_REQUEST = 1, BL_LEVEL_REQUEST_RESPONSE = 2 };

typedef struct {
    char *dir;                 /* the config directory (absolute) */
    char *path;                /* DIR/byline.yaml */
    char *identities_file;     /* where `byline identity add` writes */
    char *listen_host;         /* e.g. "127.0.0.1" */
    int listen_port;           /* e.g. 8443 */
    char *public_url;          /* server URL for kubeconfigs (default https://listen) */
    char *tls_cert;            /* gateway serving certificate (PEM) */
    char *tls_key;             /* its key */
    char *tls_ca;              /* CA certificate kubeconfigs embed as CA data */
    char *client_ca;           /* CA to verify client certificates, or NULL */
    char *audit_dir;           /* JSON Lines audit records live here */
    char *audit_signing_key;   /* Ed25519 private key (PEM) that signs checkpoints; default DIR/audit-signing.key */
    char *audit_signing_pub;   /* its public key (PEM); default DIR/audit-signing.pub */
    char *audit_origin;        /* checkpoint origin and key name; default "byline/<hostname>" */
    int audit_sync;            /* 1 (default): fdatasync every group commit; 0: relaxed (recorded, signed) */
    unsigned audit_commit_delay_ms; /* extra wait to gather a larger batch; default 0 */
    uint64_t audit_segment_bytes;   /* rotate segments at this size; default 64 MiB */
    uint64_t audit_space_warn;      /* warn below this much free space (bytes; 0 = use the percentage) */
    unsigned audit_space_warn_pct;  /* ...or below this percentage of the file system; default 10;
                                       both 0: never */
    uint64_t audit_space_refuse;    /* refuse requests below this much free space (bytes; 0 = percentage) */
    unsigned audit_space_refuse_pct;/* ...or percentage; default 2; both 0: never */
    int audit_level;           /* BL_LEVEL_*; default BL_LEVEL_METADATA */
    size_t audit_body_max;     /* bytes of a body kept at the Request levels; default 16 KiB */
    size_t audit_capture_max;  /* exec/attach session capture, bytes per session (all channels); 0 (default) = off */
    char *metrics_listen;      /* "host:port" for Prometheus /metrics, as written ("[::1]:9402" for
                                  IPv6); NULL (default) = off */
    struct bl_policy_s *policy; /* the `policy:` rules, compiled (policy/policy.h); never NULL after
                                   a successful load. No rules: every request is denied */
    unsigned review_expire_ms;   /* policy.review_expire: a pending review expires; default 1 h */
    unsigned review_window_ms;   /* policy.review_window: an approval's default window; default 15 m */
    unsigned review_max_pending; /* policy.review_max_pending: open reviews at most; default 1000 */
    unsigned review_hold_ms;     /* policy.review_hold: keep a held request open this long for a
                                    decision; default 0 = answer 403 at once */
    char *reviewer_group;        /* policy.reviewer_group: identities that may decide reviews must be
                                    in it; default "reviewers"; "*" = any identity (review/store.h) */
    int workers;               /* event-loop threads (default 1) */
    unsigned max_connections;  /* per worker; default 10000 */
    unsigned max_header_bytes; /* request head bound; default 32768 */
    unsigned max_headers;      /* header count bound; default 100 */
    unsigned header_timeout_ms;  /* to receive a whole request head; default 10000 */
    unsigned idle_timeout_ms;    /* keep-alive idle; default 120000 */
    unsigned connect_timeout_ms; /* upstream TCP+TLS connect; default 5000 */
    unsigned drain_timeout_ms;   /* SIGTERM grace for in-flight requests; default 30000 */
    bl_connection_t *conns;    /* owned array */
    size_t nconns;
    bl_identity_t *ids;        /* owned array */
    size_t nids;
    size_t nids_inline;        /* ids[0..nids_inline) come from byline.yaml's `identities`,
                                  the rest from identities_file */
    struct bl_identity_index_s *id_index; /* private: lookup tables (auth/identity.h) */
    bl_issuer_t *issuers;      /* owned array: trusted JWT issuers (`issuers:`) */
    size_t nissuers;
} bl_config_t;

/*
 * Loads DIR/byline.yaml and its identities file. Returns BL_OK and a new
 * config in *out (caller frees with bl_config_free), or BL_ERROR with every
 * problem found appended to `errors` as "file:line:col: message" lines.
 * Two identities sharing a name, token hash, cert CN or URI is an error.
 */
int bl_config_load(const char *dir, bl_config_t **out, bl_buf_t *errors);

/*
 * Same as bl_config_load(), but warnings (e.g. a secret file others may
 * read, a missing identities file) are appended to `warnings` as
 * "file:line:col: warning: message" lines instead of being logged.
 * bl_config_load() logs them with bl_warn().
 */
int bl_config_load_ex(const char *dir, bl_config_t **out, bl_buf_t *errors, bl_buf_t *warnings);

/* Frees a config and everything it owns. NULL is fine. */
void bl_config_free(bl_config_t *cfg);

/* Returns the connection named `name`, or NULL. */
const bl_connection_t *bl_config_connection(const bl_config_t *cfg, const char *name, size_t len);

/*
 * Replaces the identities file at `path` with ids[0..n) (atomically, mode
 * 0600; the header comment is regenerated, hand-written comments are not
 * kept). Returns BL_OK or BL_ERROR with a reason appended to `err`.
 */
int bl_identities_write(const char *path, const bl_identity_t *ids, size_t n, bl_buf_t *err);

/* Frees what one identity owns (not the struct itself). */
void bl_identity_clear(bl_identity_t *id);

/* Limits enforced by the loader. */
#define BL_CONFIG_MAX_BYTES      (1024 * 1024)       /* byline.yaml */
#define BL_IDENTITIES_MAX_BYTES  (64 * 1024 * 1024)  /* identities file */
#define BL_CONFIG_MAX_CONNS      64
#define BL_CONFIG_MAX_IDS        200000
#define BL_CONFIG_MAX_GROUPS     64                   /* per identity */
#define BL_AUDIT_COMMIT_DELAY_MAX 100                 /* audit.commit_delay, ms */
#define BL_AUDIT_SEGMENT_MIN     (1024 * 1024)        /* audit.segment_size */
#define BL_AUDIT_SEGMENT_MAX     (1024 * 1024 * 1024)
#define BL_AUDIT_BODY_MAX        (1024 * 1024)        /* audit.body_max */
#define BL_AUDIT_CAPTURE_MAX     (64 * 1024 * 1024)   /* audit.capture_max */
#define BL_CONFIG_MAX_ISSUERS    32
#define BL_CONFIG_MAX_CLAIMS     16                   /* required claims per issuer */

#endif
