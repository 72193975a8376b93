/*
 * fuzz_config.c - libFuzzer target for the configuration loader (src/config):
 * the whole of bl_config_load_ex() over a real directory, so that yaml.c
 * (prescan, strict mapping walk, scalar parsers), values.c (durations, URLs,
 * addresses, names) and config.c (schema, per-object checks, credentials,
 * duplicate identities across two files) all run as they do in byline; the
 * identities writer (identities.c) by a write-and-reload round trip; and the
 * value checkers once more directly, on every input line.
 *
 * Input: byline.yaml, optionally followed by a line "#--- identities.yaml"
 * and the identities file (absent without that line). At most 64 KiB.
 *
 * Both are written into DIR, a private directory made once (on tmpfs when
 * /dev/shm exists) holding fixed files a config may name by relative path:
 *   ca.crt server.crt server.key up.crt up.key other.key   PEM, one test CA
 *   up.token (0600)  open.token (0644)  empty.token  big.token (> 64 KiB)
 *   notpem.crt  shared.yaml (0666, "identities: []")  sub/
 * The loader only reads files; nothing here touches the network. DIR is
 * removed at exit; a run that crashes leaves it behind (about 128 KiB).
 *
 * Besides crashes, sanitizer reports and leaks, the target aborts when:
 *   - BL_OK comes with error lines or without a config, BL_ERROR without
 *     error lines or with a config;
 *   - an error or warning line is not "FILE:LINE:COL: message" or "FILE:
 *     message" with an absolute FILE, a position inside the input and a
 *     non-empty message;
 *   - a loaded config breaks what config.h documents: NULL or relative
 *     paths, ports, limits or counts out of range, a connection whose parts
 *     disagree with its URL, a bad name, an identity without a credential,
 *     two identities sharing a name, token hash, cert CN or cert URI;
 *   - identities written by bl_identities_write() do not load back equal;
 *   - a value checker accepts something outside its documented syntax, or
 *     a duration or URL does not survive formatting and parsing again;
 *   - a line of valid UTF-8, written by bl_yaml_put_scalar(), does not read
 *     back (with bl_yaml_load_mem) as the same string.
 * FUZZ_CONFIG_VERBOSE=1 prints the errors and warnings of each input.
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth/identity.h"
#include "auth/pki.h"
#include "config/config.h"
#include "config/file.h"
#include "config/values.h"
#include "config/yaml.h"

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "fuzz_config: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define FUZZ_MAX_INPUT (64 * 1024)
#define MARKER "#--- identities.yaml\n"

static char dir[256];    /* DIR */
static char rtdir[300];  /* DIR/rt: a fixed byline.yaml for the identities round trip */
static int verbose;      /* FUZZ_CONFIG_VERBOSE=1: print what each input loads to */

/* ---- the directory (made once) ---- */

static void put(const char *d, const char *name, const void *data, size_t n, mode_t mode)
{
    char path[400];
    CHECK(bl_file_pathf(path, sizeof(path), "%s/%s", d, name) == BL_OK);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, n, f) == n);
    CHECK(fclose(f) == 0);
    CHECK(chmod(path, mode) == 0);
}

static void put_pair(const char *name, int kind, X509 *ca, EVP_PKEY *cakey, bl_buf_t *err)
{
    char path[400];
    const char *dns[] = { "localhost" };
    bl_pki_req_t req = { .kind = kind, .cn = name, .dns = dns, .ndns = 1, .days = 3650 };
    EVP_PKEY *key = bl_pki_key_new(err);
    X509 *crt = key ? bl_pki_issue(&req, key, ca, cakey, err) : NULL;
    CHECK(crt != NULL);
    CHECK(bl_file_pathf(path, sizeof(path), "%s/%s.crt", dir, name) == BL_OK);
    CHECK(bl_pki_write_cert(path, crt, err) == BL_OK);
    CHECK(bl_file_pathf(path, sizeof(path), "%s/%s.key", dir, name) == BL_OK);
    CHECK(bl_pki_write_key(path, key, err) == BL_OK);
    X509_free(crt);
    EVP_PKEY_free(key);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_dir(void)
{
    static const char rt_yaml[] = "tls:\n  cert: ../server.crt\n  key: ../server.key\n"
                                  "connections:\n  - name: a\n    server: https://a\n"
                                  "    token_file: ../up.token\n";
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    bl_buf_t err;
    CHECK(bl_file_pathf(dir, sizeof(dir), "%s/byline-fuzz-config-XXXXXX", base) == BL_OK);
    CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    bl_buf_init(&err, 4096);
    bl_pki_req_t careq = { .kind = BL_PKI_CA, .cn = "fuzz CA", .days = 3650 };
    EVP_PKEY *cakey = bl_pki_key_new(&err);
    X509 *ca = cakey ? bl_pki_issue(&careq, cakey, NULL, NULL, &err) : NULL;
    CHECK(ca != NULL);
    char path[400];
    CHECK(bl_file_pathf(path, sizeof(path), "%s/ca.crt", dir) == BL_OK);
    CHECK(bl_pki_write_cert(path, ca, &err) == BL_OK);
    put_pair("server", BL_PKI_SERVER, ca, cakey, &err);
    put_pair("up", BL_PKI_CLIENT, ca, cakey, &err);
    put_pair("other", BL_PKI_SERVER, ca, cakey, &err);
    put(dir, "up.token", "upstream-secret-token\n", 22, 0600);
    put(dir, "open.token", "upstream-secret-token\n", 22, 0644);
    put(dir, "empty.token", " \r\n", 3, 0600);
    put(dir, "notpem.crt", "hello\n", 6, 0644);
    put(dir, "shared.yaml", "identities: []\n", 15, 0666);
    char *big = malloc(65 * 1024);
    CHECK(big != NULL);
    memset(big, 'x', 65 * 1024);
    put(dir, "big.token", big, 65 * 1024, 0600);
    free(big);
    CHECK(bl_file_pathf(path, sizeof(path), "%s/sub", dir) == BL_OK);
    CHECK(mkdir(path, 0700) == 0);
    CHECK(bl_file_pathf(rtdir, sizeof(rtdir), "%s/rt", dir) == BL_OK);
    CHECK(mkdir(rtdir, 0700) == 0);
    put(rtdir, "byline.yaml", rt_yaml, sizeof(rt_yaml) - 1, 0600);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    bl_buf_free(&err);
}

/* ---- error and warning lines ---- */

/* The two files this input wrote, for the positions in messages. */
typedef struct {
    char path[400];
    size_t len;
} src_t;

/* Returns the message after "FILE:" at p (FILE known: "L:C: msg" or " msg"),
 * checking the position against the file's length. */
static const char *after_position(const char *p, const char *end, size_t len)
{
    if (p < end && *p == ' ')
        return p + 1;
    unsigned long lc[2];
    for (int i = 0; i < 2; i++) {
        char *e;
        CHECK(p < end && *p >= '1' && *p <= '9');
        lc[i] = strtoul(p, &e, 10);
        CHECK(e < end && *e == ':');
        p = e + 1;
    }
    CHECK(lc[0] <= len + 1 && lc[1] <= len + 1);
    CHECK(p < end && *p == ' ');
    return p + 1;
}

/* Every line of b: an absolute FILE, an optional position, a message. */
static void check_lines(bl_buf_t *b, int warning, const src_t *srcs, size_t nsrcs)
{
    if (bl_buf_size(b) == 0)
        return;
    const char *p = bl_buf_data(b), *end = p + bl_buf_size(b);
    CHECK(end[-1] == '\n');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *msg = NULL;
        CHECK(nl != NULL && nl > p && *p == '/');
        for (size_t i = 0; i < nsrcs && msg == NULL; i++) {
            size_t n = strlen(srcs[i].path);
            if ((size_t)(nl - p) > n && !memcmp(p, srcs[i].path, n) && p[n] == ':')
                msg = after_position(p + n + 1, nl, srcs[i].len);
        }
        if (msg == NULL) { /* a file named by identities_file, whose name may hold ": " */
            const char *sep = warning ? ": warning: " : ": ";
            msg = memmem(p, (size_t)(nl - p), sep, strlen(sep));
            CHECK(msg != NULL);
            msg += strlen(sep);
        } else {
            int is_warning = nl - msg >= 9 && !memcmp(msg, "warning: ", 9);
            CHECK(is_warning == warning);
            msg += warning ? 9 : 0;
        }
        CHECK(msg < nl && *msg != ' ');
        p = nl + 1;
    }
}

/* ---- a loaded config ---- */

static void check_path(const char *p, int required)
{
    CHECK(p != NULL || !required);
    CHECK(p == NULL || p[0] == '/');
}

static void check_host(const char *h)
{
    CHECK(h != NULL && h[0] != '\0' && strlen(h) <= BL_HOST_MAX);
    CHECK(bl_is_ip(h) || bl_is_dns_name(h, strlen(h)));
}

static void check_conn(const bl_config_t *cfg, const bl_connection_t *c)
{
    const char *why;
    bl_url_t u;
    CHECK(c->name != NULL && bl_connection_name_check(c->name, strlen(c->name), &why) == BL_OK);
    CHECK(bl_config_connection(cfg, c->name, strlen(c->name)) == c);
    if (c->via_agent) { /* a byline agent holds the address and the credential */
        CHECK(!c->url && !c->host && !c->server_name && !c->ca_file && !c->token_file && !c->cert_file && !c->key_file);
        return;
    }
    CHECK(c->url != NULL && bl_url_parse(c->url, strlen(c->url), &u, &why) == BL_OK);
    CHECK(c->host != NULL && strcmp(c->host, u.host) == 0);
    check_host(c->host);
    CHECK(c->port == u.port && c->port >= 1 && c->port <= 65535);
    CHECK(c->path_prefix != NULL && strcmp(c->path_prefix, u.path) == 0);
    size_t pl = strlen(c->path_prefix);
    CHECK(pl == 0 || (c->path_prefix[0] == '/' && c->path_prefix[pl - 1] != '/'));
    check_host(c->server_name);
    check_path(c->ca_file, 0);
    check_path(c->token_file, 0);
    check_path(c->cert_file, 0);
    check_path(c->key_file, 0);
    CHECK(!(c->token_file && (c->cert_file || c->key_file)));
    CHECK((c->cert_file == NULL) == (c->key_file == NULL));
}

static void check_identity(const bl_config_t *cfg, const bl_identity_t *id)
{
    const char *why;
    CHECK(id->name != NULL && bl_identity_name_check(id->name, strlen(id->name), &why) == BL_OK);
    CHECK(bl_identity_by_name(cfg, id->name, strlen(id->name)) == id);
    CHECK(id->ngroups <= BL_CONFIG_MAX_GROUPS && (id->ngroups == 0 || id->groups != NULL));
    for (size_t g = 0; g < id->ngroups; g++) {
        CHECK(id->groups[g] != NULL);
        CHECK(bl_identity_name_check(id->groups[g], strlen(id->groups[g]), &why) == BL_OK);
        for (size_t h = 0; h < g; h++)
            CHECK(strcmp(id->groups[g], id->groups[h]) != 0);
    }
    CHECK(id->has_token || id->cert_cn != NULL || id->cert_uri != NULL);
    CHECK(id->cert_cn == NULL || (id->cert_cn[0] != '\0' && strlen(id->cert_cn) <= 64));
    CHECK(id->cert_uri == NULL || strchr(id->cert_uri, ':') != NULL);
    CHECK(id->created == NULL || strlen(id->created) == 20);
}

/* Which field cmp_field() compares: 0 name, 1 token hash, 2 cert CN, 3 cert URI. */
static int field;

/* Returns the field as bytes (NULL when unset) and its length. */
static const void *field_of(const bl_identity_t *id, size_t *n)
{
    const char *s = field == 0 ? id->name : field == 2 ? id->cert_cn : id->cert_uri;
    if (field == 1) {
        *n = 32;
        return id->has_token ? id->token_sha256 : NULL;
    }
    *n = s ? strlen(s) + 1 : 0;
    return s;
}

/* Orders unset fields first, then by bytes. */
static int cmp_field(const void *a, const void *b)
{
    size_t na, nb;
    const void *x = field_of(*(const bl_identity_t *const *)a, &na);
    const void *y = field_of(*(const bl_identity_t *const *)b, &nb);
    if (x == NULL || y == NULL)
        return (x != NULL) - (y != NULL);
    int c = memcmp(x, y, BL_MIN(na, nb));
    return c ? c : (na > nb) - (na < nb);
}

/* One name, token hash, cert CN or cert URI names one identity. */
static void check_unique(const bl_config_t *cfg)
{
    const bl_identity_t **v = malloc((cfg->nids + 1) * sizeof(*v));
    CHECK(v != NULL);
    for (size_t i = 0; i < cfg->nids; i++)
        v[i] = &cfg->ids[i];
    for (field = 0; field < 4; field++) {
        qsort(v, cfg->nids, sizeof(*v), cmp_field);
        for (size_t i = 1; i < cfg->nids; i++) {
            size_t n;
            CHECK(field_of(v[i], &n) == NULL || cmp_field(&v[i - 1], &v[i]) != 0);
        }
    }
    free(v);
}

static void check_config(const bl_config_t *cfg)
{
    const char *why;
    bl_url_t u;
    check_path(cfg->dir, 1);
    check_path(cfg->path, 1);
    check_path(cfg->identities_file, 1);
    check_path(cfg->tls_cert, 1);
    check_path(cfg->tls_key, 1);
    check_path(cfg->tls_ca, 0);
    check_path(cfg->client_ca, 0);
    check_path(cfg->audit_dir, 1);
    check_host(cfg->listen_host);
    CHECK(cfg->listen_port >= 1 && cfg->listen_port <= 65535);
    CHECK(cfg->public_url != NULL);
    CHECK(bl_url_parse(cfg->public_url, strlen(cfg->public_url), &u, &why) == BL_OK);
    CHECK(cfg->public_url[strlen(cfg->public_url) - 1] != '/');
    CHECK(cfg->workers >= 1 && cfg->workers <= 64);
    CHECK(cfg->max_connections >= 1 && cfg->max_connections <= 1000000);
    CHECK(cfg->max_header_bytes >= 1024 && cfg->max_header_bytes <= 1024 * 1024);
    CHECK(cfg->max_headers >= 8 && cfg->max_headers <= 1000);
    CHECK(cfg->header_timeout_ms >= 100 && cfg->header_timeout_ms <= 3600000);
    CHECK(cfg->idle_timeout_ms >= 1000 && cfg->idle_timeout_ms <= 86400000);
    CHECK(cfg->connect_timeout_ms >= 100 && cfg->connect_timeout_ms <= 600000);
    CHECK(cfg->drain_timeout_ms <= 3600000);
    CHECK(cfg->nconns >= 1 && cfg->nconns <= BL_CONFIG_MAX_CONNS && cfg->conns != NULL);
    for (size_t i = 0; i < cfg->nconns; i++)
        check_conn(cfg, &cfg->conns[i]);
    CHECK(cfg->nids <= BL_CONFIG_MAX_IDS && cfg->nids_inline <= cfg->nids);
    CHECK(cfg->id_index != NULL);
    for (size_t i = 0; i < cfg->nids; i++)
        check_identity(cfg, &cfg->ids[i]);
    check_unique(cfg);
}

/* ---- the identities writer: write, load back, compare ---- */

static int str_eq(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static void check_same_identity(const bl_identity_t *a, const bl_identity_t *b)
{
    CHECK(str_eq(a->name, b->name));
    CHECK(a->ngroups == b->ngroups);
    for (size_t g = 0; g < a->ngroups; g++)
        CHECK(str_eq(a->groups[g], b->groups[g]));
    CHECK(a->has_token == b->has_token);
    CHECK(memcmp(a->token_sha256, b->token_sha256, 32) == 0);
    CHECK(str_eq(a->cert_cn, b->cert_cn));
    CHECK(str_eq(a->cert_uri, b->cert_uri));
    CHECK(str_eq(a->created, b->created));
}

/* What `byline identity add` does to a registry: rewrite it whole. Every
 * identity that loaded must load back the same from what was written. */
static void check_round_trip(const bl_config_t *cfg)
{
    char path[400];
    bl_buf_t err, errs, warns;
    bl_config_t *back = NULL;
    if (cfg->nids == 0)
        return;
    CHECK(bl_file_pathf(path, sizeof(path), "%s/identities.yaml", rtdir) == BL_OK);
    bl_buf_init(&err, 4096);
    bl_buf_init(&errs, 1 << 20);
    bl_buf_init(&warns, 1 << 20);
    CHECK(bl_identities_write(path, cfg->ids, cfg->nids, &err) == BL_OK);
    int rc = bl_config_load_ex(rtdir, &back, &errs, &warns);
    if (rc != BL_OK)
        fprintf(stderr, "fuzz_config: written identities do not load:\n%s\n",
                bl_buf_cstr(&errs));
    CHECK(rc == BL_OK && back->nids == cfg->nids);
    for (size_t i = 0; i < cfg->nids; i++)
        check_same_identity(&cfg->ids[i], &back->ids[i]);
    bl_config_free(back);
    bl_buf_free(&err);
    bl_buf_free(&errs);
    bl_buf_free(&warns);
}

/* ---- the value checkers, straight on each line's value ---- */

static int only(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] != '\0' && strchr(set, s[i]) != NULL)))
            return 0;
    return 1;
}

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void check_duration(const char *s, size_t n)
{
    uint64_t ms, again;
    const char *why = NULL;
    char out[32];
    if (bl_duration_parse(s, n, &ms, &why) != BL_OK) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(ms <= UINT32_MAX && n > 0 && only(s, n, ""));
    bl_duration_format(ms, out, sizeof(out));
    CHECK(bl_duration_parse(out, strlen(out), &again, &why) == BL_OK && again == ms);
}

static void check_url(const char *s, size_t n)
{
    bl_url_t u, u2;
    const char *why = NULL;
    char again[BL_URL_MAX + 64];
    if (bl_url_parse(s, n, &u, &why) != BL_OK) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(n >= 9 && memcmp(s, "https://", 8) == 0 && memchr(s, '\0', n) == NULL);
    CHECK(memchr(s, '?', n) == NULL && memchr(s, '#', n) == NULL);
    size_t hl = strlen(u.host), pl = strlen(u.path);
    CHECK(hl >= 1 && hl <= BL_HOST_MAX && u.port >= 1 && u.port <= 65535);
    CHECK(u.host_is_ip == bl_is_ip(u.host));
    CHECK(u.host_is_ip || bl_is_dns_name(u.host, hl));
    CHECK(pl <= BL_URL_PATH_MAX && (pl == 0 || (u.path[0] == '/' && u.path[pl - 1] != '/')));
    /* its parts, put back together, parse to the same parts */
    int k = snprintf(again, sizeof(again), strchr(u.host, ':') ? "https://[%s]:%d%s"
                                                                 : "https://%s:%d%s",
                     u.host, u.port, u.path);
    CHECK(k > 0 && (size_t)k < sizeof(again));
    CHECK(bl_url_parse(again, (size_t)k, &u2, &why) == BL_OK);
    CHECK(!strcmp(u.host, u2.host) && u.port == u2.port && !strcmp(u.path, u2.path));
    CHECK(u.host_is_ip == u2.host_is_ip);
}

static void check_hostport(const char *s, size_t n)
{
    char host[BL_HOST_MAX + 1];
    int port = 0;
    const char *why = NULL;
    if (bl_hostport_parse(s, n, host, &port, &why) != BL_OK) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(memchr(s, '\0', n) == NULL);
    check_host(host);
    CHECK(port >= 1 && port <= 65535);
    CHECK(strchr(host, ':') == NULL || s[0] == '[');
}

static void check_names(const char *s, size_t n)
{
    const char *why;
    if (bl_connection_name_check(s, n, &why) == BL_OK)
        CHECK(n >= 1 && n <= 63 && only(s, n, "-") && alnum(s[0]) && alnum(s[n - 1]));
    if (bl_identity_name_check(s, n, &why) == BL_OK) {
        CHECK(n >= 1 && n <= 64 && only(s, n, "-._@:") && alnum(s[0]) && alnum(s[n - 1]));
        CHECK(n < 7 || memcmp(s, "system:", 7) != 0);
    }
    if (bl_is_dns_name(s, n)) {
        CHECK(n >= 1 && n <= BL_HOST_MAX && s[0] != '.' && s[0] != '-');
        CHECK(memmem(s, n, "..", 2) == NULL && memchr(s, '\0', n) == NULL);
    }
}

/* Runs the checkers on the value of one line ("  - key: value" -> "value"),
 * copied to an exact-size heap buffer so a read past it is an ASan report. */
static void check_values(const char *line, size_t n)
{
    const char *v = memmem(line, n, ": ", 2);
    v = v ? v + 2 : line;
    size_t vn = n - (size_t)(v - line);
    char *s = malloc(vn ? vn : 1);
    CHECK(s != NULL);
    memcpy(s, v, vn);
    check_duration(s, vn);
    check_url(s, vn);
    check_hostport(s, vn);
    check_names(s, vn);
    free(s);
}

/* ---- YAML quoting: bl_yaml_put_scalar reads back as what it wrote ---- */

/* Returns 1 if s[0..n) is UTF-8 without NUL, overlong forms or surrogates. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                              : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0 || len == 0 || n - i < len)
            return 0;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static void check_scalar(const char *line, size_t n)
{
    bl_buf_t b, errs;
    if (!utf8_ok((const unsigned char *)line, n))
        return;
    char *s = strndup(line, n);
    CHECK(s != NULL);
    bl_buf_init(&b, 8 * n + 16);
    bl_buf_init(&errs, 1 << 16);
    CHECK(bl_buf_puts(&b, "v: ") == BL_OK && bl_yaml_put_scalar(&b, s) == BL_OK);
    bl_yaml_t y = { .file = "scalar", .errors = &errs };
    int rc = bl_yaml_load_mem(&y, bl_buf_data(&b), bl_buf_size(&b));
    if (rc != BL_OK)
        fprintf(stderr, "fuzz_config: %.*s\n", (int)bl_buf_size(&errs), bl_buf_data(&errs));
    CHECK(rc == BL_OK);
    yaml_node_t *root = bl_yaml_root(&y);
    CHECK(root->type == YAML_MAPPING_NODE);
    CHECK(root->data.mapping.pairs.top - root->data.mapping.pairs.start == 1);
    yaml_node_t *v = bl_yaml_node(&y, root->data.mapping.pairs.start[0].value);
    CHECK(v->type == YAML_SCALAR_NODE && v->data.scalar.length == n);
    CHECK(memcmp(v->data.scalar.value, s, n) == 0);
    bl_yaml_free(&y);
    bl_buf_free(&errs);
    bl_buf_free(&b);
    free(s);
}

/* ---- the input ---- */

/* Writes `name` in DIR with data[0..n), or removes it when data is NULL. */
static void write_input(const char *name, const char *data, size_t n, src_t *src)
{
    CHECK(bl_file_pathf(src->path, sizeof(src->path), "%s/%s", dir, name) == BL_OK);
    src->len = n;
    if (data != NULL)
        put(dir, name, data, n, 0600);
    else
        CHECK(unlink(src->path) == 0 || errno == ENOENT);
}

/* A UBSan report is a finding too, not a line in the log. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_dir();
    verbose = getenv("FUZZ_CONFIG_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *ids = NULL;
    size_t n = size, nids = 0;
    src_t srcs[2];
    bl_buf_t errs, warns;
    bl_config_t *cfg = (bl_config_t *)1; /* the loader must set it either way */
    if (size > FUZZ_MAX_INPUT)
        return 0;
    const char *m = size >= strlen(MARKER) && !memcmp(in, MARKER, strlen(MARKER))
                        ? in : memmem(in, size, "\n" MARKER, strlen(MARKER) + 1);
    if (m != NULL) {
        n = (size_t)(m - in) + (m != in); /* byline.yaml keeps its last '\n' */
        ids = m + (m != in) + strlen(MARKER);
        nids = size - (size_t)(ids - in);
    }
    write_input("byline.yaml", in, n, &srcs[0]);
    write_input("identities.yaml", ids, nids, &srcs[1]);

    bl_buf_init(&errs, 64 << 20);
    bl_buf_init(&warns, 64 << 20);
    int rc = bl_config_load_ex(dir, &cfg, &errs, &warns);
    if (verbose)
        fprintf(stderr, "rc=%d nids=%zu\n%s%s", rc, rc == BL_OK ? cfg->nids : 0,
                bl_buf_size(&errs) ? bl_buf_cstr(&errs) : "",
                bl_buf_size(&warns) ? bl_buf_cstr(&warns) : "");
    CHECK(rc == BL_OK || rc == BL_ERROR);
    CHECK((rc == BL_OK) == (cfg != NULL));
    CHECK((rc == BL_OK) == (bl_buf_size(&errs) == 0));
    check_lines(&errs, 0, srcs, 2);
    check_lines(&warns, 1, srcs, 2);
    if (rc == BL_OK) {
        check_config(cfg);
        check_round_trip(cfg);
    }
    bl_config_free(cfg);
    bl_buf_free(&errs);
    bl_buf_free(&warns);

    for (const char *p = in, *end = in + size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        check_values(p, len);
        check_scalar(p, len);
        p += len + 1;
    }
    return 0;
}
