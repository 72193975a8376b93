/* identities.c - writes the identity registry (bl_config_load reads it). */
#include "auth/lifetime.h"
#include "auth/token.h"
#include "config/config.h"
#include "config/file.h"
#include "config/yaml.h"

static const char bl_identities_header[] =
    "# byline identity registry, written by `byline identity add` and `byline identity remove`.\n"
    "# Each identity has a name, optional groups, and at least one credential:\n"
    "#   token_sha256  hex SHA-256 of its bearer token (the token itself is never stored)\n"
    "#   cert_cn       subject CN of its client certificate (signed by tls.client_ca)\n"
    "#   cert_uri      a URI subjectAltName of its client certificate\n"
    "# and optionally expires and revoked (UTC times) and revoked_reason; a running\n"
    "# gateway refuses an expired or revoked identity about a second after this file changes.\n"
    "# One credential maps to exactly one identity. Edits by hand are fine; comments are\n"
    "# not kept when byline rewrites this file. Reference: docs/CONFIG.md.\n";

/* Appends "  key: value\n" (value as a YAML scalar) when value is set. */
static int bl_put_field(bl_buf_t *b, const char *key, const char *value)
{
    if (value == NULL)
        return BL_OK;
    if (bl_buf_printf(b, "    %s: ", key) != BL_OK || bl_yaml_put_scalar(b, value) != BL_OK)
        return BL_ERROR;
    return bl_buf_puts(b, "\n");
}

static int bl_put_identity(bl_buf_t *b, const bl_identity_t *id)
{
    char hex[2 * BL_TOKEN_HASH_LEN + 1], t1[BL_TIME_LEN + 1], t2[BL_TIME_LEN + 1];
    if (bl_buf_puts(b, "  - name: ") != BL_OK || bl_yaml_put_scalar(b, id->name) != BL_OK ||
        bl_buf_puts(b, "\n") != BL_OK)
        return BL_ERROR;
    if (id->ngroups > 0) {
        if (bl_buf_puts(b, "    groups: [") != BL_OK)
            return BL_ERROR;
        for (size_t i = 0; i < id->ngroups; i++)
            if ((i > 0 && bl_buf_puts(b, ", ") != BL_OK) ||
                bl_yaml_put_scalar(b, id->groups[i]) != BL_OK)
                return BL_ERROR;
        if (bl_buf_puts(b, "]\n") != BL_OK)
            return BL_ERROR;
    }
    if (id->has_token)
        bl_token_hash_hex(id->token_sha256, hex);
    if (bl_put_field(b, "token_sha256", id->has_token ? hex : NULL) != BL_OK ||
        bl_put_field(b, "cert_cn", id->cert_cn) != BL_OK ||
        bl_put_field(b, "cert_uri", id->cert_uri) != BL_OK ||
        bl_put_field(b, "created", id->created) != BL_OK ||
        bl_put_field(b, "expires", id->expires ? bl_time_format(id->expires, t1) : NULL) != BL_OK ||
        bl_put_field(b, "revoked", id->revoked ? bl_time_format(id->revoked, t2) : NULL) != BL_OK ||
        bl_put_field(b, "revoked_reason", id->revoked_reason) != BL_OK)
        return BL_ERROR;
    return BL_OK;
}

int bl_identities_write(const char *path, const bl_identity_t *ids, size_t n, bl_buf_t *err)
{
    bl_buf_t b;
    int rc = BL_ERROR;
    bl_buf_init(&b, BL_IDENTITIES_MAX_BYTES);
    if (bl_buf_puts(&b, bl_identities_header) != BL_OK ||
        bl_buf_puts(&b, n ? "identities:\n" : "identities: []\n") != BL_OK)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if (bl_put_identity(&b, &ids[i]) != BL_OK)
            goto oom;
    rc = bl_file_write_atomic(path, bl_buf_data(&b), bl_buf_size(&b), 0600, err);
    bl_buf_free(&b);
    return rc;
oom:
    bl_buf_printf(err, "%s: too large, out of memory, or a value that is not UTF-8\n", path);
    bl_buf_free(&b);
    return BL_ERROR;
}
