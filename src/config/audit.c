/*
 * audit.c - the `audit:` section of byline.yaml: where the ledger lives,
 * the Ed25519 key that signs its checkpoints, durability, rotation, free
 * space thresholds and how much of each request it keeps
 * (docs/CONFIG.md, docs/AUDIT-FORMAT.md).
 *
 * The signing key may be missing at load (`byline init` and the first
 * `byline serve` create it); when it is there it must be an Ed25519 key
 * only its owner can read, outside the audit directory, with its public
 * half beside it. Checking that here means `byline identity list` finds a
 * broken key as well as `byline serve` does.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "auth/pki.h"
#include "config/file.h"
#include "config/schema.h"
#include "config/values.h"

#define CFG(f) offsetof(bl_config_t, f)
#define KIB    ((uint64_t)1 << 10)
#define MIB    ((uint64_t)1 << 20)
#define GIB    ((uint64_t)1 << 30)
#define BL_PUBKEY_FILE_MAX (64 * 1024)

/* ---- values ---- */

static int bl_cfg_origin(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    char **out = dst;
    const char *why;
    if (bl_yaml_str(y, v, dst, k) != BL_OK || *out == NULL)
        return *out == NULL ? BL_OK : BL_ERROR;
    if (bl_origin_check(*out, strlen(*out), &why) == BL_OK)
        return BL_OK;
    bl_yaml_error(y, v, "origin: \"%.140s\" %s", *out, why);
    free(*out);
    *out = NULL;
    return BL_ERROR;
}

/* The Kubernetes audit policy level names, spelled as Kubernetes does. */
static int bl_cfg_level(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    static const char *const names[] = { "Metadata", "Request", "RequestResponse" };
    if (v->type != YAML_SCALAR_NODE || bl_yaml_is_null(v)) {
        bl_yaml_error(y, v, "%s: expected Metadata, Request or RequestResponse", k->name);
        return BL_ERROR;
    }
    bl_str_t s = { (const char *)v->data.scalar.value, v->data.scalar.length };
    for (int i = 0; i < (int)BL_ARRAY_LEN(names); i++) {
        if (bl_str_eq(s, names[i])) {
            *(int *)dst = i; /* BL_LEVEL_METADATA, _REQUEST, _REQUEST_RESPONSE */
            return BL_OK;
        }
        if (bl_str_eq_nocase(s, names[i])) {
            bl_yaml_error(y, v, "%s: unknown level \"%.*s\" (did you mean \"%s\"?)", k->name,
                          (int)s.len, s.p, names[i]);
            return BL_ERROR;
        }
    }
    if (bl_str_eq_nocase(s, "None"))
        bl_yaml_error(y, v, "%s: None is not a level byline has: every request is recorded "
                            "(Metadata records the least)", k->name);
    else
        bl_yaml_error(y, v, "%s: unknown level \"%.*s\": expected Metadata, Request or "
                            "RequestResponse", k->name, (int)BL_MIN(s.len, 32), s.p);
    return BL_ERROR;
}

/* "10%" (of the file system) or a size; 0 in any unit means "never". */
static int bl_cfg_space(bl_yaml_t *y, yaml_node_t *v, const bl_yaml_key_t *k, uint64_t *bytes,
                        unsigned *pct)
{
    const char *s = (const char *)v->data.scalar.value;
    size_t len = v->type == YAML_SCALAR_NODE ? v->data.scalar.length : 0;
    if (len > 1 && len <= 4 && s[len - 1] == '%') {
        unsigned p = 0;
        size_t i;
        for (i = 0; i + 1 < len && s[i] >= '0' && s[i] <= '9'; i++)
            p = p * 10 + (unsigned)(s[i] - '0');
        if (i + 1 == len && p <= 100) {
            *bytes = 0;
            *pct = p;
            return BL_OK;
        }
    }
    if (len > 0 && s[len - 1] == '%') {
        bl_yaml_error(y, v, "%s: \"%.*s\" is not a percentage from 0%% to 100%%", k->name,
                      (int)BL_MIN(len, 32), s);
        return BL_ERROR;
    }
    size_t digits = 0;
    while (digits < len && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (digits == len && len > 0 && len <= 20 && !(len == 1 && s[0] == '0')) {
        bl_yaml_error(y, v, "%s: \"%.*s\" needs %% or a unit: a percentage of the file system "
                            "such as %.*s%%, or a size such as %.*sGiB", k->name, (int)len, s,
                      (int)len, s, (int)len, s);
        return BL_ERROR;
    }
    uint64_t n;
    bl_yaml_key_t sized = *k;
    sized.min = 0;
    sized.max = UINT64_MAX;
    if (bl_yaml_size(y, v, &n, &sized) != BL_OK)
        return BL_ERROR;
    *bytes = n;
    *pct = 0;
    return BL_OK;
}

static int bl_cfg_space_warn(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_config_t *cfg = dst;
    return bl_cfg_space(y, v, k, &cfg->audit_space_warn, &cfg->audit_space_warn_pct);
}

static int bl_cfg_space_refuse(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    bl_config_t *cfg = dst;
    return bl_cfg_space(y, v, k, &cfg->audit_space_refuse, &cfg->audit_space_refuse_pct);
}

/* bl_yaml_size into a size_t field. */
static int bl_cfg_size_t(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    uint64_t n;
    if (bl_yaml_size(y, v, &n, k) != BL_OK)
        return BL_ERROR;
    *(size_t *)dst = (size_t)n;
    return BL_OK;
}

static const bl_yaml_key_t bl_audit_keys[] = {
    { "dir", bl_yaml_path, CFG(audit_dir), 0, 0, NULL, BL_YAML_DIR },
    { "signing_key", bl_yaml_path, CFG(audit_signing_key), 0, 0, NULL, 0 },
    { "signing_pub", bl_yaml_path, CFG(audit_signing_pub), 0, 0, NULL, 0 },
    { "origin", bl_cfg_origin, CFG(audit_origin), 0, 0, NULL, 0 },
    { "sync", bl_yaml_bool, CFG(audit_sync), 0, 0, NULL, 0 },
    { "commit_delay", bl_yaml_duration, CFG(audit_commit_delay_ms), 0, BL_AUDIT_COMMIT_DELAY_MAX,
      NULL, 0 },
    { "segment_size", bl_yaml_size, CFG(audit_segment_bytes), BL_AUDIT_SEGMENT_MIN,
      BL_AUDIT_SEGMENT_MAX, NULL, 0 },
    { "space_warn", bl_cfg_space_warn, 0, 0, 0, NULL, 0 },
    { "space_refuse", bl_cfg_space_refuse, 0, 0, 0, NULL, 0 },
    { "level", bl_cfg_level, CFG(audit_level), 0, 0, NULL, 0 },
    { "body_max", bl_cfg_size_t, CFG(audit_body_max), 0, BL_AUDIT_BODY_MAX, NULL, 0 },
    { "capture_max", bl_cfg_size_t, CFG(audit_capture_max), 0, BL_AUDIT_CAPTURE_MAX, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

void bl_cfg_audit_init(bl_config_t *cfg)
{
    cfg->audit_sync = 1;
    cfg->audit_commit_delay_ms = 0;
    cfg->audit_segment_bytes = 64 * MIB;
    cfg->audit_space_warn_pct = 10;
    cfg->audit_space_refuse_pct = 2;
    cfg->audit_level = BL_LEVEL_METADATA;
    cfg->audit_body_max = 16 * KIB;
    cfg->audit_capture_max = 0;
}

/* ---- defaults that depend on DIR and the host ---- */

/* "byline/<host name>", or "byline" (with a warning) for a host name that
 * cannot be part of an origin. */
static char *bl_cfg_default_origin(bl_yaml_t *y, yaml_node_t *at)
{
    char host[256] = "", origin[sizeof(host) + 8];
    const char *why;
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    snprintf(origin, sizeof(origin), "byline/%s", host);
    if (host[0] == '\0' || bl_origin_check(origin, strlen(origin), &why) != BL_OK) {
        bl_yaml_warn(y, at, "audit.origin: the host name \"%.64s\" cannot be part of a "
                            "checkpoint origin; using \"byline\" (set audit.origin)", host);
        snprintf(origin, sizeof(origin), "byline");
    }
    return strdup(origin);
}

static int bl_cfg_audit_fill(bl_yaml_t *y, yaml_node_t *at, bl_config_t *cfg)
{
    if (cfg->audit_dir == NULL)
        cfg->audit_dir = bl_file_abspath(cfg->dir, "audit");
    if (cfg->audit_signing_key == NULL)
        cfg->audit_signing_key = bl_file_abspath(cfg->dir, "audit-signing.key");
    if (cfg->audit_signing_pub == NULL)
        cfg->audit_signing_pub = bl_file_abspath(cfg->dir, "audit-signing.pub");
    if (cfg->audit_origin == NULL)
        cfg->audit_origin = bl_cfg_default_origin(y, at);
    if (!cfg->audit_dir || !cfg->audit_signing_key || !cfg->audit_signing_pub ||
        !cfg->audit_origin) {
        bl_yaml_error(y, at, "out of memory");
        return BL_ERROR;
    }
    return BL_OK;
}

/* ---- the signing key files ---- */

/* Writes the directory part of absolute `path` into out[BL_PATH_MAX].
 * Returns BL_OK, or BL_ERROR if it does not fit. */
static int bl_cfg_parent(const char *path, char *out)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash && slash > path ? (size_t)(slash - path) : 1;
    if (n >= BL_PATH_MAX)
        return BL_ERROR;
    memcpy(out, path, n);
    out[n] = '\0';
    return BL_OK;
}

/* Returns 1 if `path` is under directory `dir` (after resolving both
 * where they exist; lexically otherwise). */
static int bl_cfg_inside(const char *path, const char *dir)
{
    char rdir[PATH_MAX], rparent[PATH_MAX], parent[BL_PATH_MAX];
    if (bl_cfg_parent(path, parent) == BL_OK && realpath(dir, rdir) != NULL &&
        realpath(parent, rparent) != NULL) {
        dir = rdir;
        path = rparent; /* the file's directory: inside if it is dir or below */
        if (!strcmp(path, dir))
            return 1;
    }
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    return strncmp(path, dir, dl) == 0 && path[dl] == '/';
}

/* Checks one key file. Returns 1 if it is there and fit to use, 0 if it is
 * missing (to be created: its directory must exist), -1 after reporting. */
static int bl_cfg_key_file(bl_yaml_t *y, yaml_node_t *at, const char *what, const char *path,
                           int secret)
{
    unsigned r = bl_file_check(path, 0);
    if ((r & BL_FILE_MISSING) && errno == ENOENT) {
        char parent[BL_PATH_MAX];
        if (bl_cfg_parent(path, parent) != BL_OK) {
            bl_yaml_error(y, at, "%s: %s: the path is too long", what, path);
            return -1;
        }
        unsigned pr = bl_file_check(parent, 1);
        if (!(pr & (BL_FILE_MISSING | BL_FILE_NOT_DIR)))
            return 0;
        bl_yaml_error(y, at, "%s: cannot create %s: %s %s", what, path, parent,
                      pr & BL_FILE_MISSING ? "does not exist" : "is not a directory");
        return -1;
    }
    if (r & (BL_FILE_MISSING | BL_FILE_UNREADABLE))
        bl_yaml_error(y, at, "%s: cannot read %s: %s", what, path, strerror(errno));
    else if (r & BL_FILE_NOT_REGULAR)
        bl_yaml_error(y, at, "%s: %s is not a regular file", what, path);
    else if (secret && (r & (BL_FILE_OTHER_READABLE | BL_FILE_OTHER_WRITABLE)))
        bl_yaml_error(y, at, "%s: %s is open to other users, who could sign checkpoints as "
                             "this gateway; run chmod 600 %s", what, path, path);
    else if (r & BL_FILE_OTHER_WRITABLE)
        bl_yaml_error(y, at, "%s: %s is writable by other users, who could swap the key "
                             "auditors verify with; run chmod go-w %s", what, path, path);
    else
        return 1;
    return -1;
}

/* Reads a PEM SubjectPublicKeyInfo. Returns it or NULL with a reason. */
static EVP_PKEY *bl_cfg_read_pub(const char *path, bl_buf_t *why)
{
    bl_buf_t pem;
    EVP_PKEY *pub = NULL;
    bl_buf_init(&pem, BL_PUBKEY_FILE_MAX + 1);
    if (bl_file_read(path, BL_PUBKEY_FILE_MAX, &pem, why) == BL_OK) {
        BIO *bio = BIO_new_mem_buf(bl_buf_data(&pem), (int)bl_buf_size(&pem));
        pub = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (pub == NULL) {
            ERR_clear_error(); /* later PEM reads judge by the error queue */
            bl_buf_printf(why, "%s: no PEM public key in it", path);
        }
    }
    bl_buf_free(&pem);
    return pub;
}

/* Both files exist: an Ed25519 private key and its own public key. */
static void bl_cfg_signing_pair(bl_yaml_t *y, yaml_node_t *kat, yaml_node_t *pat,
                                const char *key_path, const char *pub_path)
{
    bl_buf_t why;
    bl_buf_init(&why, 2048);
    EVP_PKEY *key = bl_pki_read_key(key_path, &why);
    EVP_PKEY *pub = key ? bl_cfg_read_pub(pub_path, &why) : NULL;
    if (key == NULL || pub == NULL) {
        while (bl_buf_size(&why) > 0 && bl_buf_data(&why)[bl_buf_size(&why) - 1] == '\n')
            why.len--;
        bl_yaml_error(y, key ? pat : kat, "%s: %s", key ? "signing_pub" : "signing_key",
                      bl_buf_size(&why) ? bl_buf_cstr(&why) : "unreadable");
    } else if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        bl_yaml_error(y, kat, "signing_key: %s is not an Ed25519 key (checkpoints are signed "
                              "with Ed25519)", key_path);
    } else if (EVP_PKEY_get_id(pub) != EVP_PKEY_ED25519 || EVP_PKEY_eq(key, pub) != 1) {
        bl_yaml_error(y, pat, "signing_pub: %s is not the public key of %s", pub_path,
                      key_path);
    }
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    bl_buf_free(&why);
}

static void bl_cfg_signing_files(bl_yaml_t *y, yaml_node_t *kat, yaml_node_t *pat,
                                 const bl_config_t *cfg)
{
    const char *key = cfg->audit_signing_key, *pub = cfg->audit_signing_pub;
    if (!strcmp(key, pub)) {
        bl_yaml_error(y, pat, "signing_pub: the same file as signing_key");
        return;
    }
    if (bl_cfg_inside(key, cfg->audit_dir)) {
        bl_yaml_error(y, kat, "signing_key: %s is inside audit.dir %s: keep the key apart "
                              "from the ledger it signs, or whoever can read the ledger can "
                              "forge its checkpoints", key, cfg->audit_dir);
        return;
    }
    int have_key = bl_cfg_key_file(y, kat, "signing_key", key, 1);
    int have_pub = bl_cfg_key_file(y, pat, "signing_pub", pub, 0);
    if (have_key == 1 && have_pub == 1)
        bl_cfg_signing_pair(y, kat, pat, key, pub);
    else if (have_key == 1 && have_pub == 0)
        bl_yaml_error(y, pat, "signing_pub: %s is missing, so auditors cannot verify "
                              "checkpoints; recreate it with: openssl pkey -in %s -pubout "
                              "-out %s", pub, key, pub);
    else if (have_key == 0 && have_pub == 1)
        bl_yaml_error(y, kat, "signing_key: %s is missing but its public key %s is there: "
                              "restore the key, or move the public key aside to start a "
                              "new key (the old checkpoints still verify with the old key)",
                      key, pub);
}

/* ---- the section ---- */

/* Space thresholds of one kind can be compared now; a percentage against
 * a size depends on the file system, and serve compares those. */
static void bl_cfg_space_order(bl_yaml_t *y, yaml_node_t *at, const bl_config_t *c)
{
    char w[24], r[24];
    if (c->audit_space_warn == 0 && c->audit_space_refuse == 0 && c->audit_space_warn_pct > 0 &&
        c->audit_space_refuse_pct > c->audit_space_warn_pct)
        bl_yaml_error(y, at, "space_refuse: %u%% is above space_warn %u%%: the gateway would "
                             "refuse requests before warning", c->audit_space_refuse_pct,
                      c->audit_space_warn_pct);
    else if (c->audit_space_warn > 0 && c->audit_space_refuse > c->audit_space_warn)
        bl_yaml_error(y, at, "space_refuse: %s is above space_warn %s: the gateway would "
                             "refuse requests before warning",
                      bl_size_format(c->audit_space_refuse, r, sizeof(r)),
                      bl_size_format(c->audit_space_warn, w, sizeof(w)));
}

/* Fills the defaults, then checks the values together unless one of them
 * was wrong already (a default standing in for a bad value would only add
 * confusing reports). */
static int bl_cfg_audit_finish(bl_yaml_t *y, yaml_node_t *sect, bl_config_t *cfg,
                               yaml_node_t **found, int check)
{
    yaml_node_t *kat = found ? bl_yaml_found(bl_audit_keys, found, "signing_key") : NULL;
    yaml_node_t *pat = found ? bl_yaml_found(bl_audit_keys, found, "signing_pub") : NULL;
    yaml_node_t *rat = found ? bl_yaml_found(bl_audit_keys, found, "space_refuse") : NULL;
    unsigned before = y->nerrors;
    if (bl_cfg_audit_fill(y, sect, cfg) != BL_OK || !check)
        return BL_ERROR;
    bl_cfg_signing_files(y, kat ? kat : sect, pat ? pat : sect, cfg);
    bl_cfg_space_order(y, rat ? rat : sect, cfg);
    return y->nerrors == before ? BL_OK : BL_ERROR;
}

int bl_cfg_audit(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    yaml_node_t *found[BL_YAML_MAX_KEYS] = { 0 };
    (void)k;
    if (bl_yaml_is_null(v))
        return bl_cfg_audit_finish(y, NULL, dst, NULL, 1);
    int rc = bl_yaml_map(y, v, bl_audit_keys, dst, found);
    if (v->type != YAML_MAPPING_NODE)
        return BL_ERROR; /* bl_cfg_audit_defaults() fills it in */
    return bl_cfg_audit_finish(y, v, dst, found, rc == BL_OK);
}

int bl_cfg_audit_defaults(bl_yaml_t *y, bl_config_t *cfg)
{
    return bl_cfg_audit_finish(y, NULL, cfg, NULL, 1);
}
