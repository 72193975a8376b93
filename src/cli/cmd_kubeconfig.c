/*
 * cmd_kubeconfig.c - `byline kubeconfig NAME`: a kubeconfig that reaches
 * the gateway as identity NAME.
 *
 * byline stores only a hash of a token, so the token comes from the
 * caller (--token-file or $BYLINE_TOKEN) and is checked against the hash
 * before it is written: a kubeconfig that would get 401s is an error here,
 * not a puzzle later. A certificate identity gets the certificate and key
 * `byline identity add --cert` left in DIR/identities/.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "auth/identity.h"
#include "auth/pki.h"
#include "auth/token.h"
#include "cli/cli.h"
#include "cli/cmd.h"
#include "config/file.h"
#include "config/yaml.h"

#define BL_PEM_FILE_MAX (1024 * 1024)

static const char bl_kubeconfig_help[] =
    "usage: byline kubeconfig NAME --dir DIR [--connection C] [--token-file FILE]\n"
    "\n"
    "Prints a kubeconfig that reaches the gateway as identity NAME: cluster\n"
    "byline-<connection> (server: public_url, plus /k8s/<connection> when the\n"
    "config has several connections or --connection is given), user NAME,\n"
    "context NAME@byline-<connection>, the gateway CA as certificate-authority-data.\n"
    "\n"
    "The credential: NAME's token from --token-file FILE or $BYLINE_TOKEN (byline\n"
    "keeps only its hash and checks the token against it), or for a certificate\n"
    "identity DIR/identities/NAME.crt and .key.\n";

typedef struct {
    const char *dir, *name, *conn, *token_file;
} bl_kcopt_t;

static int bl_kc_args(int argc, char **argv, bl_kcopt_t *o)
{
    enum { O_DIR = 256, O_CONN, O_TOKEN };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "dir", required_argument, NULL, O_DIR },
        { "connection", required_argument, NULL, O_CONN },
        { "token-file", required_argument, NULL, O_TOKEN },
        { NULL, 0, NULL, 0 },
    };
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("kubeconfig", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_kubeconfig_help, stdout);
            return -1;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        *(c == O_DIR ? &o->dir : c == O_CONN ? &o->conn : &o->token_file) = optarg;
    }
    if (argc - optind > 1)
        return bl_cli_usage("kubeconfig", "unexpected argument '%s'", argv[optind + 1]);
    if (argc - optind < 1)
        return bl_cli_usage("kubeconfig", "expected an identity NAME");
    o->name = argv[optind];
    if (o->dir == NULL)
        return bl_cli_usage("kubeconfig", "--dir DIR is required");
    return BL_EXIT_OK;
}

/* Appends base64 (one line) of the file at `path`. */
static int bl_kc_base64_file(bl_buf_t *out, const char *path)
{
    bl_buf_t raw, err;
    int rc = BL_ERROR;
    bl_buf_init(&raw, BL_PEM_FILE_MAX + 1);
    bl_buf_init(&err, 1024);
    if (bl_file_read(path, BL_PEM_FILE_MAX, &raw, &err) != BL_OK) {
        bl_cli_print(&err);
    } else {
        size_t n = 4 * ((bl_buf_size(&raw) + 2) / 3);
        size_t room;
        char *p = bl_buf_tail(out, n + 1, &room);
        if (p != NULL && room > n) {
            EVP_EncodeBlock((unsigned char *)p, (const unsigned char *)bl_buf_data(&raw),
                            (int)bl_buf_size(&raw));
            bl_buf_commit(out, n);
            rc = BL_OK;
        }
    }
    if (raw.base != NULL)
        OPENSSL_cleanse(raw.base, raw.cap); /* may be a private key */
    bl_buf_free(&raw);
    bl_buf_free(&err);
    return rc;
}

/* Reads the token: the first line of --token-file, or $BYLINE_TOKEN,
 * without surrounding blanks. Returns its length, 0 if none was given, or
 * BL_ERROR after printing why. */
static long bl_kc_token(const bl_kcopt_t *o, char *out, size_t cap)
{
    bl_buf_t b, err;
    bl_str_t t = BL_STR_NULL;
    long rc = BL_ERROR;
    bl_buf_init(&b, cap + 1);
    bl_buf_init(&err, 1024);
    if (o->token_file != NULL) {
        if (bl_file_read(o->token_file, cap, &b, &err) != BL_OK) {
            bl_cli_print(&err);
            goto end;
        }
        t = (bl_str_t){ bl_buf_data(&b), bl_buf_size(&b) };
    } else if (getenv("BYLINE_TOKEN") != NULL) {
        t = (bl_str_t){ getenv("BYLINE_TOKEN"), strlen(getenv("BYLINE_TOKEN")) };
    }
    const char *nl = t.len ? memchr(t.p, '\n', t.len) : NULL;
    if (nl != NULL)
        t.len = (size_t)(nl - t.p);
    t = bl_str_trim(t);
    while (t.len > 0 && t.p[t.len - 1] == '\r')
        t.len--;
    if (t.len >= cap) {
        bl_cli_fail("kubeconfig", "the token is too long");
        goto end;
    }
    memcpy(out, t.p ? t.p : "", t.len);
    out[t.len] = '\0';
    rc = (long)t.len;
end:
    if (b.base != NULL)
        OPENSSL_cleanse(b.base, b.cap);
    bl_buf_free(&b);
    bl_buf_free(&err);
    return rc;
}

/* Appends the `user:` credential of a token identity. */
static int bl_kc_user_token(bl_buf_t *out, const bl_kcopt_t *o, const bl_identity_t *id)
{
    char token[BL_TOKEN_MAX + 1];
    unsigned char h[BL_TOKEN_HASH_LEN];
    long n = bl_kc_token(o, token, sizeof(token));
    int rc = BL_EXIT_FAIL;
    if (n == 0)
        bl_cli_fail("kubeconfig", "identity \"%s\" authenticates with a token, and byline keeps "
                                  "only its hash: pass it with --token-file FILE or "
                                  "$BYLINE_TOKEN", o->name);
    else if (n > 0 && (bl_token_hash(token, (size_t)n, h) != BL_OK ||
                       CRYPTO_memcmp(h, id->token_sha256, sizeof(h)) != 0))
        bl_cli_fail("kubeconfig", "that token is not identity \"%s\"'s (its SHA-256 does not "
                                  "match the registry)", o->name);
    else if (n > 0 && bl_buf_puts(out, "      token: ") == BL_OK &&
             bl_yaml_put_scalar(out, token) == BL_OK && bl_buf_puts(out, "\n") == BL_OK)
        rc = BL_EXIT_OK;
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

/* Checks that NAME.crt/.key are a pair and that the certificate maps to
 * this identity, then appends them as client-certificate/key-data. */
static int bl_kc_user_cert(bl_buf_t *out, const bl_config_t *cfg, const bl_identity_t *id)
{
    char crt_path[BL_PATH_MAX], key_path[BL_PATH_MAX];
    bl_buf_t err;
    EVP_PKEY *key = NULL;
    int rc = BL_EXIT_FAIL;
    if (bl_file_pathf(crt_path, sizeof(crt_path), "%s/identities/%s.crt", cfg->dir, id->name) !=
            BL_OK ||
        bl_file_pathf(key_path, sizeof(key_path), "%s/identities/%s.key", cfg->dir, id->name) !=
            BL_OK)
        return bl_cli_fail("kubeconfig", "path too long");
    bl_buf_init(&err, 4096);
    X509 *crt = bl_pki_read_cert(crt_path, &err);
    if (crt == NULL || (key = bl_pki_read_key(key_path, &err)) == NULL) {
        bl_cli_print(&err);
        bl_cli_fail("kubeconfig", "identity \"%s\" has no token and its certificate cannot be "
                                  "read", id->name);
    } else if (bl_pki_key_matches(crt, key) != BL_OK) {
        bl_cli_fail("kubeconfig", "%s is not the key of %s", key_path, crt_path);
    } else if (bl_identity_by_cert(cfg, crt) != id) {
        bl_cli_fail("kubeconfig", "%s does not map to identity \"%s\"", crt_path, id->name);
    } else if (bl_buf_puts(out, "      client-certificate-data: ") == BL_OK &&
               bl_kc_base64_file(out, crt_path) == BL_OK &&
               bl_buf_puts(out, "\n      client-key-data: ") == BL_OK &&
               bl_kc_base64_file(out, key_path) == BL_OK && bl_buf_puts(out, "\n") == BL_OK) {
        rc = BL_EXIT_OK;
    }
    X509_free(crt);
    EVP_PKEY_free(key);
    bl_buf_free(&err);
    return rc;
}

/* Appends "<key>: <value as a YAML scalar>\n"; `key` carries its indent.
 * Returns BL_OK or BL_ERROR (out of room). */
static int bl_kc_kv(bl_buf_t *out, const char *key, const char *fmt, ...) BL_PRINTF(3, 4);

static int bl_kc_kv(bl_buf_t *out, const char *key, const char *fmt, ...)
{
    bl_buf_t v;
    va_list ap;
    bl_buf_init(&v, 4096);
    va_start(ap, fmt);
    int rc = bl_buf_vprintf(&v, fmt, ap);
    va_end(ap);
    const char *s = rc == BL_OK ? bl_buf_cstr(&v) : NULL;
    if (s == NULL || bl_buf_printf(out, "%s: ", key) != BL_OK ||
        bl_yaml_put_scalar(out, s) != BL_OK || bl_buf_puts(out, "\n") != BL_OK)
        rc = BL_ERROR;
    bl_buf_free(&v);
    return rc;
}

/* Appends the clusters: section for connection `conn`. */
static int bl_kc_cluster(bl_buf_t *out, const bl_config_t *cfg, const char *conn, int prefixed)
{
    if (bl_buf_puts(out, "apiVersion: v1\nkind: Config\n") != BL_OK ||
        bl_kc_kv(out, "clusters:\n  - name", "byline-%s", conn) != BL_OK ||
        bl_buf_puts(out, "    cluster:\n") != BL_OK ||
        bl_kc_kv(out, "      server", "%s%s%s", cfg->public_url, prefixed ? "/k8s/" : "",
                 prefixed ? conn : "") != BL_OK)
        return bl_cli_fail("kubeconfig", "out of memory");
    if (cfg->tls_ca == NULL) {
        fprintf(stderr, "byline kubeconfig: tls.ca is not set, so no certificate-authority-data: "
                        "clients verify the gateway with their system trust store\n");
        return BL_EXIT_OK;
    }
    if (bl_buf_puts(out, "      certificate-authority-data: ") != BL_OK ||
        bl_kc_base64_file(out, cfg->tls_ca) != BL_OK || bl_buf_puts(out, "\n") != BL_OK)
        return bl_cli_fail("kubeconfig", "cannot embed tls.ca %s", cfg->tls_ca);
    return BL_EXIT_OK;
}

static int bl_kc_write(const bl_config_t *cfg, const bl_kcopt_t *o, const bl_identity_t *id,
                       const char *conn)
{
    bl_buf_t out;
    bl_buf_init(&out, 8 * 1024 * 1024);
    int rc = bl_kc_cluster(&out, cfg, conn, o->conn != NULL || cfg->nconns > 1);
    if (rc == BL_EXIT_OK && (bl_kc_kv(&out, "users:\n  - name", "%s", id->name) != BL_OK ||
                             bl_buf_puts(&out, "    user:\n") != BL_OK))
        rc = bl_cli_fail("kubeconfig", "out of memory");
    if (rc == BL_EXIT_OK) {
        int use_token = id->has_token && (o->token_file || getenv("BYLINE_TOKEN") || !id->cert_cn);
        rc = use_token ? bl_kc_user_token(&out, o, id) : bl_kc_user_cert(&out, cfg, id);
    }
    if (rc == BL_EXIT_OK) {
        if (bl_kc_kv(&out, "contexts:\n  - name", "%s@byline-%s", id->name, conn) != BL_OK ||
            bl_buf_puts(&out, "    context:\n") != BL_OK ||
            bl_kc_kv(&out, "      cluster", "byline-%s", conn) != BL_OK ||
            bl_kc_kv(&out, "      user", "%s", id->name) != BL_OK ||
            bl_kc_kv(&out, "current-context", "%s@byline-%s", id->name, conn) != BL_OK)
            rc = bl_cli_fail("kubeconfig", "out of memory");
        else if (fwrite(bl_buf_data(&out), 1, bl_buf_size(&out), stdout) != bl_buf_size(&out) ||
                 fflush(stdout) != 0)
            rc = bl_cli_fail("kubeconfig", "cannot write to stdout");
    }
    if (out.base != NULL)
        OPENSSL_cleanse(out.base, out.cap);
    bl_buf_free(&out);
    return rc;
}

int bl_cmd_kubeconfig(int argc, char **argv)
{
    bl_kcopt_t o = { 0 };
    bl_config_t *cfg = NULL;
    int rc = bl_kc_args(argc, argv, &o);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (bl_cli_load("kubeconfig", o.dir, &cfg) != BL_EXIT_OK)
        return BL_EXIT_FAIL;
    const bl_identity_t *id = bl_identity_by_name(cfg, o.name, strlen(o.name));
    const bl_connection_t *conn = o.conn ? bl_config_connection(cfg, o.conn, strlen(o.conn))
                                         : &cfg->conns[0];
    if (id == NULL)
        rc = bl_cli_fail("kubeconfig", "no identity named \"%s\" (see byline identity list "
                                       "--dir %s)", o.name, o.dir);
    else if (conn == NULL)
        rc = bl_cli_fail("kubeconfig", "no connection named \"%s\" in %s", o.conn, cfg->path);
    else if (o.token_file != NULL && !id->has_token)
        rc = bl_cli_fail("kubeconfig", "identity \"%s\" has no token (it authenticates with a "
                                       "certificate); drop --token-file", o.name);
    else if (!id->has_token && id->cert_cn == NULL)
        rc = bl_cli_fail("kubeconfig", "identity \"%s\" authenticates only with a certificate "
                                       "URI; build its kubeconfig with the certificate you "
                                       "issued it", o.name);
    else
        rc = bl_kc_write(cfg, &o, id, conn->name);
    bl_config_free(cfg);
    return rc;
}
