/*
 * cmd_init.c - `byline init`: a new gateway configuration directory.
 *
 * Writes, in this order so that a failure never leaves a byline.yaml that
 * points at missing files: DIR (0700), DIR/tls (0700) with a gateway CA
 * (kept if one is there already) and a serving certificate signed by it,
 * DIR/audit (0700), the Ed25519 pair that signs the ledger's checkpoints
 * (DIR/audit-signing.key 0600 and .pub 0644; kept if there already, since
 * a new key would orphan the checkpoints signed so far), an empty
 * DIR/identities.yaml (kept if present), and last DIR/byline.yaml (0600,
 * atomically). Then it loads the result with the same loader `byline
 * serve` uses.
 *
 * The upstream CA, token and client certificate are referenced by absolute
 * path, not copied: the credential stays where its owner rotates it (a
 * kubelet-projected token, a cert-manager secret), and byline does not
 * make a second copy of a cluster credential.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/note.h"
#include "auth/pki.h"
#include "cli/cli.h"
#include "cli/cmd.h"
#include "cli/init_policy.h"
#include "config/file.h"
#include "config/values.h"
#include "config/yaml.h"

#define BL_CA_DAYS     3650
#define BL_SERVER_DAYS 730
#define BL_MAX_SANS    32

static const char bl_init_help[] =
    "usage: byline init --dir DIR --upstream URL [options]\n"
    "\n"
    "Creates a gateway configuration in DIR: byline.yaml, a gateway CA and a\n"
    "serving certificate signed by it (tls/), an empty identity registry\n"
    "(identities.yaml), the audit directory and the Ed25519 key pair that signs\n"
    "the audit ledger (audit-signing.key; auditors verify with audit-signing.pub).\n"
    "\n"
    "  --dir DIR                   configuration directory (created 0700)\n"
    "  --upstream URL              the Kubernetes API server: https://host[:port][/path]\n"
    "  --upstream-ca FILE          CA bundle that verifies it (default: system store)\n"
    "  --upstream-token-file FILE  bearer token byline presents upstream, or\n"
    "  --upstream-cert FILE        client certificate byline presents upstream\n"
    "  --upstream-key FILE         ... and its private key\n"
    "  --connection NAME           name of this upstream (default: default)\n"
    "  --listen ADDR:PORT          where the gateway listens (default: 127.0.0.1:8443)\n"
    "  --public-url URL            URL agents use (default: https://<listen>)\n"
    "  --force                     rewrite an existing byline.yaml and serving\n"
    "                              certificate; the CA, the audit signing key and\n"
    "                              identities.yaml are kept\n"
    "\n"
    "Upstream files are referenced by absolute path, not copied, so rotating\n"
    "them in place keeps working.\n";

typedef struct {
    const char *dir, *upstream, *ca, *token, *cert, *key, *conn, *listen, *public_url;
    int force;
    char origin[BL_ORIGIN_MAX + 1];   /* audit.origin written into byline.yaml */
    char host[BL_HOST_MAX + 1];       /* listen host */
    int port;
    char url[BL_URL_MAX + 1];         /* public URL */
    bl_url_t pub;                     /* its parts */
    char *abs[4];                     /* absolute ca, token, cert, key */
} bl_init_t;

/* The SANs of the serving certificate, without repeats. */
typedef struct {
    const char *dns[BL_MAX_SANS], *ips[BL_MAX_SANS];
    size_t ndns, nips;
    char store[BL_MAX_SANS * 2][BL_HOST_MAX + 1];
    size_t nstore;
} bl_sans_t;

static void bl_sans_add(bl_sans_t *s, const char *name)
{
    int ip = bl_is_ip(name);
    const char **v = ip ? s->ips : s->dns;
    size_t *n = ip ? &s->nips : &s->ndns;
    if (!ip && !bl_is_dns_name(name, strlen(name)))
        return;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(v[i], name))
            return;
    if (*n >= BL_MAX_SANS || s->nstore >= BL_ARRAY_LEN(s->store) || strlen(name) > BL_HOST_MAX)
        return;
    memcpy(s->store[s->nstore], name, strlen(name) + 1);
    v[(*n)++] = s->store[s->nstore++];
}

static int bl_is_wildcard(const char *host)
{
    return !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

/* Adds the addresses of every interface (for a wildcard listen), skipping
 * IPv6 link-local ones, which need a zone to be dialled. */
static void bl_sans_interfaces(bl_sans_t *s)
{
    struct ifaddrs *ifa, *i;
    char buf[INET6_ADDRSTRLEN];
    if (getifaddrs(&ifa) != 0)
        return;
    for (i = ifa; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf,
                      sizeof(buf));
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            const struct in6_addr *a = &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(a))
                continue;
            inet_ntop(AF_INET6, a, buf, sizeof(buf));
        } else {
            continue;
        }
        bl_sans_add(s, buf);
    }
    freeifaddrs(ifa);
}

static void bl_sans_collect(bl_sans_t *s, const bl_init_t *o, const char *hostname)
{
    memset(s, 0, sizeof(*s));
    bl_sans_add(s, "localhost");
    bl_sans_add(s, "127.0.0.1");
    bl_sans_add(s, "::1");
    if (hostname[0])
        bl_sans_add(s, hostname);
    if (bl_is_wildcard(o->host))
        bl_sans_interfaces(s);
    else
        bl_sans_add(s, o->host);
    bl_sans_add(s, o->pub.host);
}

/* Parses argv into o. Returns BL_EXIT_OK, or an exit status (help: -1). */
static int bl_init_args(int argc, char **argv, bl_init_t *o)
{
    enum { O_DIR = 256, O_UP, O_CA, O_TOKEN, O_CERT, O_KEY, O_CONN, O_LISTEN, O_PUB, O_FORCE };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "dir", required_argument, NULL, O_DIR },
        { "upstream", required_argument, NULL, O_UP },
        { "upstream-ca", required_argument, NULL, O_CA },
        { "upstream-token-file", required_argument, NULL, O_TOKEN },
        { "upstream-cert", required_argument, NULL, O_CERT },
        { "upstream-key", required_argument, NULL, O_KEY },
        { "connection", required_argument, NULL, O_CONN },
        { "listen", required_argument, NULL, O_LISTEN },
        { "public-url", required_argument, NULL, O_PUB },
        { "force", no_argument, NULL, O_FORCE },
        { NULL, 0, NULL, 0 },
    };
    const char **slot[] = { &o->dir, &o->upstream, &o->ca, &o->token, &o->cert, &o->key,
                            &o->conn, &o->listen, &o->public_url };
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("init", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_init_help, stdout);
            return -1;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        if (c == O_FORCE)
            o->force = 1;
        else
            *slot[c - O_DIR] = optarg;
    }
    if (optind < argc)
        return bl_cli_usage("init", "unexpected argument '%s'", argv[optind]);
    return BL_EXIT_OK;
}

/* Checks the option values before anything is written. */
static int bl_init_check(bl_init_t *o)
{
    const char *why;
    bl_url_t up;
    if (o->dir == NULL || o->upstream == NULL)
        return bl_cli_usage("init", "--dir and --upstream are required");
    if (o->dir[0] == '\0' || strlen(o->dir) > 4000)
        return bl_cli_usage("init", "--dir must be a path of 1 to 4000 bytes");
    if (bl_url_parse(o->upstream, strlen(o->upstream), &up, &why) != BL_OK)
        return bl_cli_usage("init", "--upstream %s %s", o->upstream, why);
    if (o->conn == NULL)
        o->conn = "default";
    if (bl_connection_name_check(o->conn, strlen(o->conn), &why) != BL_OK)
        return bl_cli_usage("init", "--connection %s %s", o->conn, why);
    if (o->listen == NULL)
        o->listen = "127.0.0.1:8443";
    if (bl_hostport_parse(o->listen, strlen(o->listen), o->host, &o->port, &why) != BL_OK)
        return bl_cli_usage("init", "--listen %s %s", o->listen, why);
    if (o->token != NULL && (o->cert != NULL || o->key != NULL))
        return bl_cli_usage("init", "--upstream-token-file and --upstream-cert/--upstream-key "
                                    "are mutually exclusive");
    if ((o->cert != NULL) != (o->key != NULL))
        return bl_cli_usage("init", "--upstream-cert and --upstream-key go together");
    return BL_EXIT_OK;
}

/* Picks the public URL: --public-url, else derived from --listen (for a
 * wildcard listen, this machine's name). */
static int bl_init_public_url(bl_init_t *o, const char *hostname)
{
    const char *why;
    if (o->public_url != NULL) {
        snprintf(o->url, sizeof(o->url), "%s", o->public_url);
    } else {
        const char *h = o->host;
        if (bl_is_wildcard(h))
            h = hostname[0] ? hostname : "127.0.0.1";
        snprintf(o->url, sizeof(o->url), strchr(h, ':') ? "https://[%s]:%d" : "https://%s:%d",
                 h, o->port);
    }
    if (bl_url_parse(o->url, strlen(o->url), &o->pub, &why) != BL_OK)
        return bl_cli_usage("init", "--public-url %s %s", o->url, why);
    size_t n = strlen(o->url);
    while (n > 0 && o->url[n - 1] == '/')
        o->url[--n] = '\0';
    return BL_EXIT_OK;
}

/* Checks the upstream files now, with messages that name the option. */
static int bl_init_upstream_files(bl_init_t *o)
{
    const char *names[] = { "--upstream-ca", "--upstream-token-file", "--upstream-cert",
                            "--upstream-key" };
    const char *paths[] = { o->ca, o->token, o->cert, o->key };
    bl_buf_t err;
    int rc = BL_EXIT_OK;
    bl_buf_init(&err, 4096);
    for (int i = 0; i < 4 && rc == BL_EXIT_OK; i++) {
        if (paths[i] == NULL)
            continue;
        unsigned r = bl_file_check(paths[i], 0);
        if (r & (BL_FILE_MISSING | BL_FILE_UNREADABLE | BL_FILE_NOT_REGULAR))
            rc = bl_cli_fail("init", "%s %s: %s", names[i], paths[i],
                             r & BL_FILE_NOT_REGULAR ? "not a regular file" : strerror(errno));
        else if ((o->abs[i] = bl_file_abspath(NULL, paths[i])) == NULL)
            rc = bl_cli_fail("init", "out of memory");
    }
    if (rc == BL_EXIT_OK && o->ca != NULL && bl_pki_count_certs(o->ca, &err) < 0)
        rc = BL_EXIT_FAIL;
    if (rc == BL_EXIT_OK && o->cert != NULL) {
        X509 *crt = bl_pki_read_cert(o->cert, &err);
        EVP_PKEY *key = crt ? bl_pki_read_key(o->key, &err) : NULL;
        if (crt == NULL || key == NULL)
            rc = BL_EXIT_FAIL;
        else if (bl_pki_key_matches(crt, key) != BL_OK)
            rc = bl_cli_fail("init", "--upstream-key %s is not the key of %s", o->key, o->cert);
        X509_free(crt);
        EVP_PKEY_free(key);
    }
    bl_cli_print(&err);
    bl_buf_free(&err);
    return rc;
}

/* Creates `path` as a 0700 directory, or accepts an existing one that only
 * its owner can write. */
static int bl_init_mkdir(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return BL_EXIT_OK;
    if (errno != EEXIST)
        return bl_cli_fail("init", "cannot create %s: %s", path, strerror(errno));
    unsigned r = bl_file_check(path, 1);
    if (r & BL_FILE_NOT_DIR)
        return bl_cli_fail("init", "%s exists and is not a directory", path);
    if (r & BL_FILE_OTHER_WRITABLE)
        return bl_cli_fail("init", "%s is writable by other users; run chmod go-w %s", path,
                           path);
    return BL_EXIT_OK;
}

/* Joins dir and name into out[n] (--dir is bounded, so it fits). Returns out. */
static char *bl_path(char *out, size_t n, const char *dir, const char *name)
{
    bl_file_pathf(out, n, "%s/%s", dir, name);
    return out;
}

/* Loads DIR/tls/ca.{crt,key} if both exist, else makes a new CA. */
static int bl_init_ca(const char *dir, const char *hostname, X509 **ca, EVP_PKEY **key, int *kept)
{
    char crt_path[4200], key_path[4200], cn[65];
    bl_buf_t err;
    int have_crt = access(bl_path(crt_path, sizeof(crt_path), dir, "tls/ca.crt"), F_OK) == 0;
    int have_key = access(bl_path(key_path, sizeof(key_path), dir, "tls/ca.key"), F_OK) == 0;
    int rc = BL_EXIT_FAIL;
    bl_buf_init(&err, 4096);
    *kept = have_crt && have_key;
    if (have_crt != have_key) {
        bl_cli_fail("init", "%s exists without %s: restore the pair or remove it",
                    have_crt ? crt_path : key_path, have_crt ? key_path : crt_path);
    } else if (*kept) {
        *ca = bl_pki_read_cert(crt_path, &err);
        *key = *ca ? bl_pki_read_key(key_path, &err) : NULL;
        if (*key != NULL && bl_pki_key_matches(*ca, *key) != BL_OK)
            bl_cli_fail("init", "%s is not the key of %s", key_path, crt_path);
        else if (*key != NULL)
            rc = BL_EXIT_OK;
    } else {
        snprintf(cn, sizeof(cn), "byline gateway CA%s%.40s", hostname[0] ? " " : "", hostname);
        const char *org[] = { "byline" };
        bl_pki_req_t req = { .kind = BL_PKI_CA, .cn = cn, .orgs = org, .norgs = 1,
                             .days = BL_CA_DAYS };
        if ((*key = bl_pki_key_new(&err)) != NULL &&
            (*ca = bl_pki_issue(&req, *key, NULL, NULL, &err)) != NULL &&
            bl_pki_write_key(key_path, *key, &err) == BL_OK &&
            bl_pki_write_cert(crt_path, *ca, &err) == BL_OK)
            rc = BL_EXIT_OK;
    }
    bl_cli_print(&err);
    bl_buf_free(&err);
    return rc;
}

/* Keeps an existing audit signing key pair or makes a new one. Half a
 * pair is an error: replacing it would leave the ledger's checkpoints so
 * far under a key nobody can verify with any more. */
static int bl_init_signing_key(const char *dir, int *kept)
{
    char key[4200], pub[4200];
    bl_buf_t err;
    int have_key = access(bl_path(key, sizeof(key), dir, "audit-signing.key"), F_OK) == 0;
    int have_pub = access(bl_path(pub, sizeof(pub), dir, "audit-signing.pub"), F_OK) == 0;
    int rc = BL_EXIT_FAIL;
    *kept = have_key && have_pub;
    bl_buf_init(&err, 4096);
    if (have_key != have_pub)
        bl_cli_fail("init", "%s exists without %s: restore the pair, or move %s aside to "
                            "start a new key", have_key ? key : pub, have_key ? pub : key,
                    have_key ? key : pub);
    else if (*kept || bl_note_keygen(key, pub, &err) == BL_OK)
        rc = BL_EXIT_OK;
    else
        bl_buf_puts(&err, "\n");
    bl_cli_print(&err);
    bl_buf_free(&err);
    return rc;
}

static int bl_init_server_cert(const char *dir, const bl_sans_t *sans, X509 *ca, EVP_PKEY *cakey)
{
    char crt_path[4200], key_path[4200];
    bl_buf_t err;
    X509 *crt = NULL;
    int rc = BL_EXIT_FAIL;
    bl_buf_init(&err, 4096);
    bl_pki_req_t req = { .kind = BL_PKI_SERVER, .cn = "byline gateway", .dns = sans->dns,
                         .ndns = sans->ndns, .ips = sans->ips, .nips = sans->nips,
                         .days = BL_SERVER_DAYS };
    EVP_PKEY *key = bl_pki_key_new(&err);
    if (key != NULL && (crt = bl_pki_issue(&req, key, ca, cakey, &err)) != NULL &&
        bl_pki_write_key(bl_path(key_path, sizeof(key_path), dir, "tls/server.key"), key,
                         &err) == BL_OK &&
        bl_pki_write_cert(bl_path(crt_path, sizeof(crt_path), dir, "tls/server.crt"), crt,
                          &err) == BL_OK)
        rc = BL_EXIT_OK;
    bl_cli_print(&err);
    bl_buf_free(&err);
    X509_free(crt);
    EVP_PKEY_free(key);
    return rc;
}

/* Appends "key: <scalar>\n" with `indent` spaces. */
static void bl_put_kv(bl_buf_t *b, const char *indent, const char *key, const char *value)
{
    bl_buf_printf(b, "%s%s: ", indent, key);
    bl_yaml_put_scalar(b, value);
    bl_buf_puts(b, "\n");
}

static void bl_init_yaml_conn(bl_buf_t *b, const bl_init_t *o)
{
    bl_buf_puts(b, "# Upstream Kubernetes API servers. With several, clients pick one with the\n"
                   "# path prefix /k8s/<name>; requests without it go to the first one.\n"
                   "connections:\n");
    bl_put_kv(b, "  - ", "name", o->conn);
    bl_put_kv(b, "    ", "server", o->upstream);
    if (o->abs[0] != NULL) {
        bl_buf_puts(b, "    # CA bundle that verifies the API server's certificate.\n");
        bl_put_kv(b, "    ", "ca", o->abs[0]);
    } else {
        bl_buf_puts(b, "    # No `ca`: the system trust store verifies the API server.\n");
    }
    bl_buf_puts(b, "    # The credential byline presents upstream on behalf of every identity.\n"
                   "    # Read where it is (not copied), so rotating the file in place works.\n");
    if (o->abs[1] != NULL) {
        bl_put_kv(b, "    ", "token_file", o->abs[1]);
    } else if (o->abs[2] != NULL) {
        bl_put_kv(b, "    ", "client_cert", o->abs[2]);
        bl_put_kv(b, "    ", "client_key", o->abs[3]);
    } else {
        bl_buf_puts(b, "    # None given: add token_file, or client_cert and client_key.\n");
    }
    bl_buf_puts(b, "    # true: send each request as its identity (Kubernetes impersonation, user\n"
                   "    # byline:NAME) instead of as the credential above, which then needs RBAC to\n"
                   "    # impersonate users and groups. Or { user: \"agent:{name}\" }.\n"
                   "    # impersonate: false\n");
}

static int bl_init_yaml(bl_buf_t *b, const bl_init_t *o)
{
    bl_buf_puts(b, "# byline gateway configuration, written by `byline init`.\n"
                   "# Every key is described in docs/CONFIG.md. Relative paths resolve against\n"
                   "# this directory. `byline identity list --dir DIR` checks the file.\n\n"
                   "# Address and port the gateway accepts TLS connections on.\n");
    bl_put_kv(b, "", "listen", o->listen);
    bl_buf_puts(b, "# The URL agents reach the gateway at; `byline kubeconfig` uses it. Its host\n"
                   "# must be in tls/server.crt's subjectAltName.\n");
    bl_put_kv(b, "", "public_url", o->url);
    bl_buf_puts(b,
        "# Event-loop threads (1..64).\n"
        "workers: 1\n\n"
        "tls:\n"
        "  # Serving certificate and key, signed by the gateway CA.\n"
        "  cert: tls/server.crt\n"
        "  key: tls/server.key\n"
        "  # The CA kubeconfigs embed (certificate-authority-data) to verify the gateway.\n"
        "  ca: tls/ca.crt\n"
        "  # Accept client certificates signed by this CA (`byline identity add --cert`).\n"
        "  # Its key, tls/ca.key, is only needed to issue them.\n"
        "  client_ca: tls/ca.crt\n\n"
        "audit:\n"
        "  # The ledger: a record of each request on disk before the request is\n"
        "  # forwarded, chained and signed (docs/AUDIT-FORMAT.md).\n"
        "  dir: audit\n"
        "  # Checkpoints are signed with this Ed25519 key, kept outside the ledger;\n"
        "  # auditors verify them with the public key.\n"
        "  # signing_key: audit-signing.key\n"
        "  # signing_pub: audit-signing.pub\n"
        "  # The name checkpoints are signed under; verifiers need it. Written here so\n"
        "  # it stays the same wherever this directory is deployed.\n");
    bl_put_kv(b, "  ", "origin", o->origin);
    bl_buf_puts(b,
        "  # sync: true           # false: no fdatasync per commit (a crash can lose the last records)\n"
        "  # commit_delay: 0ms    # wait up to 100ms for larger group commits\n"
        "  # segment_size: 64MiB  # start a new ledger file past this size (1MiB..1GiB)\n"
        "  # space_warn: 10%      # warn below this much free space (a percentage or a size)\n"
        "  # space_refuse: 2%     # refuse requests below this much\n"
        "  # level: Metadata      # Metadata | Request | RequestResponse (adds bodies)\n"
        "  # body_max: 16KiB      # body bytes kept at the Request levels (up to 1MiB)\n"
        "  # capture_max: 0       # exec/attach session bytes kept, all streams (0 = none, up to 64MiB)\n\n"
        "# Prometheus metrics at http://ADDR:PORT/metrics: counters only, plain HTTP\n"
        "# without authentication, so keep it on loopback or behind your own access control.\n"
        "# metrics:\n"
        "#   listen: 127.0.0.1:9402\n\n"
        "limits:\n"
        "  max_connections: 10000   # client connections per worker\n"
        "  max_header_bytes: 32768  # request line and headers (1024..1048576)\n"
        "  max_headers: 100         # header fields per request (8..1000)\n"
        "  header_timeout: 10s      # to receive a whole request head\n"
        "  idle_timeout: 120s       # keep-alive connection without a request\n"
        "  connect_timeout: 5s      # TCP and TLS to the API server\n"
        "  drain_timeout: 30s       # on SIGTERM, for requests in flight\n\n");
    bl_init_yaml_conn(b, o);
    bl_buf_puts(b, "\n# Agent identities; `byline identity add` writes this file.\n"
                   "identities_file: identities.yaml\n");
    bl_buf_puts(b, bl_init_policy_section);
    return bl_buf_cstr(b) != NULL ? BL_OK : BL_ERROR;
}

/* Writes identities.yaml (if missing) and byline.yaml, then loads them. */
static int bl_init_files(const bl_init_t *o)
{
    char path[4200];
    bl_buf_t b, err;
    bl_config_t *cfg = NULL;
    int rc = BL_EXIT_FAIL;
    bl_buf_init(&b, 1 << 20);
    bl_buf_init(&err, 4096);
    bl_path(path, sizeof(path), o->dir, "identities.yaml");
    if (access(path, F_OK) != 0 && bl_identities_write(path, NULL, 0, &err) != BL_OK)
        goto end;
    bl_path(path, sizeof(path), o->dir, "policy.yaml"); /* kept if present, like identities */
    if (access(path, F_OK) != 0 && bl_file_write_atomic(path, bl_init_policy_yaml, strlen(bl_init_policy_yaml),
                                                        0600, &err) != BL_OK)
        goto end;
    if (bl_init_yaml(&b, o) != BL_OK ||
        bl_file_write_atomic(bl_path(path, sizeof(path), o->dir, "byline.yaml"), bl_buf_data(&b),
                             bl_buf_size(&b), 0600, &err) != BL_OK)
        goto end;
    rc = bl_cli_load("init", o->dir, &cfg);
    bl_config_free(cfg);
end:
    bl_cli_print(&err);
    bl_buf_free(&b);
    bl_buf_free(&err);
    return rc;
}

static void bl_init_report(const bl_init_t *o, const bl_sans_t *sans, int kept, int kept_sign)
{
    const char *d = o->dir;
    printf("Wrote %s/byline.yaml\n", d);
    printf("  connection  %s -> %s\n", o->conn, o->upstream);
    printf("  gateway CA  %s/tls/ca.crt, %s/tls/ca.key (%s)\n", d, d, kept ? "kept" : "new");
    printf("  serving     %s/tls/server.crt, %s/tls/server.key\n              for", d, d);
    for (size_t i = 0; i < sans->ndns; i++)
        printf(" %s", sans->dns[i]);
    for (size_t i = 0; i < sans->nips; i++)
        printf(" %s", sans->ips[i]);
    printf("\n  identities  %s/identities.yaml\n  audit       %s/audit/\n", d, d);
    printf("  policy      %s/policy.yaml (least privilege: only API discovery is allowed;\n"
           "              add rules for each agent, see docs/POLICY.md)\n", d);
    printf("  audit key   %s/audit-signing.key (%s; stays here)\n"
           "  public key  %s/audit-signing.pub, origin %s\n"
           "              give both to auditors: they verify the ledger's checkpoints\n\n",
           d, kept_sign ? "kept" : "new", d, o->origin);
    printf("Next steps:\n"
           "  1. Register an agent; its token is printed once:\n"
           "       TOKEN=$(byline identity add agent-1 --dir %s)\n"
           "  2. Give the agent a kubeconfig for %s:\n"
           "       BYLINE_TOKEN=$TOKEN byline kubeconfig agent-1 --dir %s > agent-1.kubeconfig\n"
           "  3. Run the gateway:\n"
           "       byline serve --dir %s\n", d, o->url, d, d);
}

int bl_cmd_init(int argc, char **argv)
{
    bl_init_t o = { 0 };
    bl_sans_t sans;
    X509 *ca = NULL;
    EVP_PKEY *cakey = NULL;
    char hostname[256] = "", tls[4200], audit[4200];
    int kept = 0, kept_sign = 0, rc = bl_init_args(argc, argv, &o);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (gethostname(hostname, sizeof(hostname) - 1) != 0 ||
        !bl_is_dns_name(hostname, strlen(hostname)))
        hostname[0] = '\0';
    snprintf(o.origin, sizeof(o.origin), "byline%s%.64s", hostname[0] ? "/" : "", hostname);
    if ((rc = bl_init_check(&o)) != BL_EXIT_OK || (rc = bl_init_public_url(&o, hostname)) != 0 ||
        (rc = bl_init_upstream_files(&o)) != BL_EXIT_OK)
        goto end;
    umask(077);
    rc = BL_EXIT_FAIL;
    if (bl_init_mkdir(o.dir) != BL_EXIT_OK)
        goto end;
    if (access(bl_path(tls, sizeof(tls), o.dir, "byline.yaml"), F_OK) == 0 && !o.force) {
        bl_cli_fail("init", "%s already exists; use --force to rewrite it (the CA and "
                            "identities.yaml are kept)", tls);
        goto end;
    }
    bl_sans_collect(&sans, &o, hostname);
    if (bl_init_mkdir(bl_path(tls, sizeof(tls), o.dir, "tls")) != BL_EXIT_OK ||
        bl_init_mkdir(bl_path(audit, sizeof(audit), o.dir, "audit")) != BL_EXIT_OK ||
        bl_init_ca(o.dir, hostname, &ca, &cakey, &kept) != BL_EXIT_OK ||
        bl_init_server_cert(o.dir, &sans, ca, cakey) != BL_EXIT_OK ||
        bl_init_signing_key(o.dir, &kept_sign) != BL_EXIT_OK ||
        bl_init_files(&o) != BL_EXIT_OK)
        goto end;
    bl_init_report(&o, &sans, kept, kept_sign);
    rc = BL_EXIT_OK;
end:
    X509_free(ca);
    EVP_PKEY_free(cakey);
    for (int i = 0; i < 4; i++)
        free(o.abs[i]);
    return rc;
}
