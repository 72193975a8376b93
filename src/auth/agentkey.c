/* agentkey.c - the agent key registry; see agentkey.h. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include "auth/agentkey.h"
#include "config/file.h"
#include "config/values.h"
#include "config/yaml.h"

static const char bl_agentkeys_header[] =
    "# byline agent keys, written by `byline agent-key add` and `byline agent-key remove`.\n"
    "# Each entry: the agent's name, the connections it may serve, and the hex SHA-256\n"
    "# of its key (the key itself is never stored). Reference: docs/AGENT.md.\n";

static void bl_agentkey_clear(bl_agentkey_t *k)
{
    free(k->name);
    for (size_t i = 0; i < k->nconns; i++)
        free(k->conns[i]);
    free(k->conns);
    free(k->created);
}

void bl_agentkeys_free(bl_agentkeys_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        bl_agentkey_clear(&k->keys[i]);
    free(k->keys);
    k->keys = NULL;
    k->n = 0;
}

static int bl_ak_conns(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *kk)
{
    bl_agentkey_t *k = dst;
    const char *why;
    if (!bl_yaml_expect_seq(y, v, kk->name))
        return BL_ERROR;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > BL_AGENTKEY_CONNS) {
        bl_yaml_error(y, v, "connections: between 1 and %d names", BL_AGENTKEY_CONNS);
        return BL_ERROR;
    }
    if ((k->conns = calloc(n, sizeof(char *))) == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *c = bl_yaml_node(y, v->data.sequence.items.start[i]);
        char *s = bl_yaml_strdup(y, c, "connection", 0);
        if (s == NULL)
            return BL_ERROR;
        k->conns[k->nconns++] = s;
        if (bl_connection_name_check(s, strlen(s), &why) != BL_OK) {
            bl_yaml_error(y, c, "connection \"%.64s\" %s", s, why);
            return BL_ERROR;
        }
    }
    return BL_OK;
}

static int bl_ak_hash(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *kk)
{
    bl_agentkey_t *k = dst;
    char *s = bl_yaml_strdup(y, v, kk->name, 0);
    int rc = s && bl_token_hash_unhex(s, strlen(s), k->sha256) == BL_OK ? BL_OK : BL_ERROR;
    if (s && rc != BL_OK)
        bl_yaml_error(y, v, "key_sha256: expected 64 hex digits");
    free(s);
    return rc;
}

static const bl_yaml_key_t bl_ak_keys[] = {
    { "name", bl_yaml_str, offsetof(bl_agentkey_t, name), 0, 0, NULL, BL_YAML_REQUIRED },
    { "connections", bl_ak_conns, 0, 0, 0, NULL, BL_YAML_REQUIRED },
    { "key_sha256", bl_ak_hash, 0, 0, 0, NULL, BL_YAML_REQUIRED },
    { "created", bl_yaml_str, offsetof(bl_agentkey_t, created), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int bl_ak_list(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *kk)
{
    bl_agentkeys_t *out = dst;
    if (bl_yaml_is_null(v))
        return BL_OK;
    if (!bl_yaml_expect_seq(y, v, kk->name))
        return BL_ERROR;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > BL_AGENTKEYS_MAX) {
        bl_yaml_error(y, v, "agents: more than %d entries", BL_AGENTKEYS_MAX);
        return BL_ERROR;
    }
    if (n && (out->keys = calloc(n, sizeof(*out->keys))) == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = bl_yaml_node(y, v->data.sequence.items.start[i]);
        bl_agentkey_t *k = &out->keys[out->n++];
        bl_yaml_map(y, item, bl_ak_keys, k, NULL);
        for (size_t j = 0; k->name && j + 1 < out->n; j++)
            if (out->keys[j].name && !strcmp(out->keys[j].name, k->name))
                bl_yaml_error(y, item, "duplicate agent name \"%.64s\"", k->name);
    }
    return BL_OK;
}

int bl_agentkeys_load(const char *path, bl_agentkeys_t *out, bl_buf_t *err)
{
    static const bl_yaml_key_t top[] = {
        { "agents", bl_ak_list, 0, 0, 0, NULL, 0 },
        { NULL, NULL, 0, 0, 0, NULL, 0 },
    };
    struct stat st;
    memset(out, 0, sizeof(*out));
    if (stat(path, &st) != 0 && errno == ENOENT)
        return BL_OK;
    bl_yaml_t y = { .file = path, .dir = "/", .errors = err };
    int rc = bl_yaml_load(&y, BL_AGENTKEYS_MAX_BYTES);
    if (rc == BL_OK)
        bl_yaml_map(&y, bl_yaml_root(&y), top, out, NULL);
    rc = rc == BL_ERROR || y.nerrors ? BL_ERROR : BL_OK;
    bl_yaml_free(&y);
    if (rc != BL_OK)
        bl_agentkeys_free(out);
    return rc;
}

static int bl_ak_put(bl_buf_t *b, const bl_agentkey_t *k)
{
    char hex[2 * BL_TOKEN_HASH_LEN + 1];
    int rc = bl_buf_puts(b, "  - name: ") | bl_yaml_put_scalar(b, k->name) | bl_buf_puts(b, "\n    connections: [");
    for (size_t i = 0; i < k->nconns; i++)
        rc |= (i ? bl_buf_puts(b, ", ") : BL_OK) | bl_yaml_put_scalar(b, k->conns[i]);
    bl_token_hash_hex(k->sha256, hex);
    rc |= bl_buf_printf(b, "]\n    key_sha256: %s\n", hex);
    if (k->created)
        rc |= bl_buf_puts(b, "    created: ") | bl_yaml_put_scalar(b, k->created) | bl_buf_puts(b, "\n");
    return rc ? BL_ERROR : BL_OK;
}

int bl_agentkeys_write(const char *path, const bl_agentkeys_t *k, bl_buf_t *err)
{
    bl_buf_t b;
    int rc = BL_ERROR;
    bl_buf_init(&b, BL_AGENTKEYS_MAX_BYTES);
    if (bl_buf_puts(&b, bl_agentkeys_header) != BL_OK || bl_buf_puts(&b, k->n ? "agents:\n" : "agents: []\n") != BL_OK)
        goto oom;
    for (size_t i = 0; i < k->n; i++)
        if (bl_ak_put(&b, &k->keys[i]) != BL_OK)
            goto oom;
    rc = bl_file_write_atomic(path, bl_buf_data(&b), bl_buf_size(&b), 0600, err);
    bl_buf_free(&b);
    return rc;
oom:
    bl_buf_printf(err, "%s: too large, or a value that is not UTF-8\n", path);
    bl_buf_free(&b);
    return BL_ERROR;
}

const bl_agentkey_t *bl_agentkeys_find(const bl_agentkeys_t *k, const char *key, size_t len)
{
    unsigned char h[BL_TOKEN_HASH_LEN];
    const bl_agentkey_t *hit = NULL;
    if (bl_token_hash(key, len, h) != BL_OK)
        return NULL;
    /* Every entry is compared, so timing says nothing about which matched. */
    for (size_t i = 0; i < k->n; i++)
        if (CRYPTO_memcmp(h, k->keys[i].sha256, sizeof(h)) == 0)
            hit = &k->keys[i];
    return hit;
}

int bl_agentkey_serves(const bl_agentkey_t *k, const char *name, size_t len)
{
    for (size_t i = 0; i < k->nconns; i++)
        if (strlen(k->conns[i]) == len && memcmp(k->conns[i], name, len) == 0)
            return 1;
    return 0;
}

int bl_agentkey_generate(char out[BL_TOKEN_LEN + 1])
{
    if (bl_token_generate(out) != BL_OK)
        return BL_ERROR;
    memcpy(out, BL_AGENTKEY_PREFIX, 4);
    return BL_OK;
}
