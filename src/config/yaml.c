/* yaml.c - strict schema-driven YAML reading (libyaml) and YAML quoting. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "config/file.h"
#include "config/values.h"
#include "config/yaml.h"
#include "core/log.h"

#define BL_YAML_MAX_DEPTH 32
#define BL_YAML_LINE_MAX  (2 * BL_PATH_MAX + 1024) /* one report: file, a path, words */

static void bl_yaml_vreport(bl_yaml_t *y, const yaml_mark_t *m, const char *kind,
                            const char *fmt, va_list ap) BL_PRINTF(4, 0);

static void bl_yaml_vreport(bl_yaml_t *y, const yaml_mark_t *m, const char *kind,
                            const char *fmt, va_list ap)
{
    char line[BL_YAML_LINE_MAX];
    int n;
    if (m != NULL)
        n = snprintf(line, sizeof(line), "%s:%zu:%zu: %s", y->file, m->line + 1,
                     m->column + 1, kind);
    else
        n = snprintf(line, sizeof(line), "%s: %s", y->file, kind);
    if (n >= 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap); /* cut, not dropped, if long */
    /* A value quoted in a message must not break "one problem, one line". */
    for (char *p = line; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (kind[0] == 'w' && y->warnings == NULL) {
        bl_warn("%s", line);
    } else {
        bl_buf_t *out = kind[0] == 'w' ? y->warnings : y->errors;
        bl_buf_puts(out, line);
        bl_buf_puts(out, "\n");
    }
}

void bl_yaml_error_at(bl_yaml_t *y, const yaml_mark_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bl_yaml_vreport(y, m, "", fmt, ap);
    va_end(ap);
    y->nerrors++;
}

void bl_yaml_error(bl_yaml_t *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bl_yaml_vreport(y, n ? &n->start_mark : NULL, "", fmt, ap);
    va_end(ap);
    y->nerrors++;
}

void bl_yaml_warn(bl_yaml_t *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bl_yaml_vreport(y, n ? &n->start_mark : NULL, "warning: ", fmt, ap);
    va_end(ap);
}

/* Reports libyaml's syntax error with its position. */
static void bl_yaml_syntax_error(bl_yaml_t *y, const yaml_parser_t *p)
{
    const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->context_mark;
    bl_yaml_error_at(y, m, "YAML syntax error: %s%s%s", p->problem ? p->problem : "cannot parse",
                     p->context ? " " : "", p->context ? p->context : "");
}

/* A first pass over the event stream refuses what the document loader
 * would silently accept: aliases (expansion), more than one document, and
 * absurd nesting. Returns BL_OK or BL_ERROR (reported). */
static int bl_yaml_prescan(bl_yaml_t *y, const char *data, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, docs = 0, rc = BL_ERROR;
    if (!yaml_parser_initialize(&p))
        return BL_ERROR;
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            bl_yaml_syntax_error(y, &p);
            break;
        }
        yaml_mark_t m = ev.start_mark;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        const char *bad = NULL;
        if (t == YAML_ALIAS_EVENT)
            bad = "aliases (*name) are not supported in byline configuration";
        else if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1)
            bad = "only one YAML document is allowed (remove the second '---')";
        else if ((t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) &&
                 ++depth > BL_YAML_MAX_DEPTH)
            bad = "nested too deeply";
        else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT)
            depth--;
        if (bad != NULL) {
            bl_yaml_error_at(y, &m, "%s", bad);
            break;
        }
        if (t == YAML_STREAM_END_EVENT) {
            rc = BL_OK;
            break;
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

int bl_yaml_load_mem(bl_yaml_t *y, const char *data, size_t len)
{
    yaml_parser_t p;
    y->loaded = 0;
    if (bl_yaml_prescan(y, data, len) != BL_OK)
        return BL_ERROR;
    if (!yaml_parser_initialize(&p)) {
        bl_yaml_error(y, NULL, "out of memory");
        return BL_ERROR;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    int ok = yaml_parser_load(&p, &y->doc);
    if (!ok)
        bl_yaml_syntax_error(y, &p);
    yaml_parser_delete(&p);
    if (!ok)
        return BL_ERROR;
    y->loaded = 1;
    return bl_yaml_root(y) ? BL_OK : BL_DECLINED;
}

int bl_yaml_load(bl_yaml_t *y, size_t max)
{
    bl_buf_t data;
    bl_buf_init(&data, max + 1);
    y->loaded = 0;
    if (bl_file_read(y->file, max, &data, y->errors) != BL_OK) {
        y->nerrors++;
        bl_buf_free(&data);
        return BL_ERROR;
    }
    int rc = bl_yaml_load_mem(y, bl_buf_data(&data), bl_buf_size(&data));
    bl_buf_free(&data);
    return rc;
}

void bl_yaml_free(bl_yaml_t *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = 0;
}

yaml_node_t *bl_yaml_root(bl_yaml_t *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *bl_yaml_node(bl_yaml_t *y, int index)
{
    return yaml_document_get_node(&y->doc, index);
}

int bl_yaml_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static const char *bl_yaml_kind(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    return bl_yaml_is_null(n) ? "nothing" : "a scalar";
}

int bl_yaml_expect_seq(bl_yaml_t *y, yaml_node_t *n, const char *what)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return 1;
    bl_yaml_error(y, n, "%s: expected a list, found %s", what, bl_yaml_kind(n));
    return 0;
}

char *bl_yaml_strdup(bl_yaml_t *y, yaml_node_t *v, const char *what, int null_ok)
{
    if (null_ok && bl_yaml_is_null(v))
        return NULL;
    if (v->type != YAML_SCALAR_NODE || bl_yaml_is_null(v)) {
        bl_yaml_error(y, v, "%s: expected a string, found %s", what, bl_yaml_kind(v));
        return NULL;
    }
    size_t len = v->data.scalar.length;
    if (memchr(v->data.scalar.value, '\0', len) != NULL) {
        bl_yaml_error(y, v, "%s: a NUL byte is not allowed", what);
        return NULL;
    }
    char *s = strndup((const char *)v->data.scalar.value, len);
    if (s == NULL)
        bl_yaml_error(y, v, "out of memory");
    return s;
}

/* Edit distance of two short strings (for "did you mean"), capped at 9. */
static size_t bl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[33];
    if (la > 32 || lb > 32)
        return 9;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = BL_MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = BL_MIN(best, diag + (a[i - 1] != b[j - 1]));
            diag = up;
        }
    }
    return BL_MIN(row[lb], (size_t)9);
}

/* Suggests the key within 1 + len/4 edits, else one that the typed key
 * abbreviates ("token" for "token_sha256"). */
static void bl_yaml_unknown_key(bl_yaml_t *y, yaml_node_t *kn, const char *key,
                                const bl_yaml_key_t *keys)
{
    const char *best = NULL;
    size_t len = strlen(key), bestd = BL_MIN(2 + len / 4, (size_t)9); /* 9: too far to tell */
    for (const bl_yaml_key_t *k = keys; k->name != NULL; k++) {
        size_t d = bl_edit_distance(key, k->name);
        if (d < bestd) {
            bestd = d;
            best = k->name;
        }
    }
    for (const bl_yaml_key_t *k = keys; best == NULL && k->name != NULL; k++)
        if (len >= 4 && !strncmp(k->name, key, len))
            best = k->name;
    if (best != NULL)
        bl_yaml_error(y, kn, "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
    else
        bl_yaml_error(y, kn, "unknown key \"%s\"", key);
}

yaml_node_t *bl_yaml_found(const bl_yaml_key_t *keys, yaml_node_t **found, const char *name)
{
    for (size_t i = 0; keys[i].name != NULL; i++)
        if (!strcmp(keys[i].name, name))
            return found[i];
    return NULL;
}

/* Returns the table index of scalar key node kn, or -1 after reporting. */
static int bl_yaml_key_index(bl_yaml_t *y, yaml_node_t *kn, const bl_yaml_key_t *keys)
{
    if (kn->type != YAML_SCALAR_NODE) {
        bl_yaml_error(y, kn, "a key must be a plain string, found %s", bl_yaml_kind(kn));
        return -1;
    }
    const char *s = (const char *)kn->data.scalar.value;
    size_t len = kn->data.scalar.length;
    for (int i = 0; keys[i].name != NULL; i++)
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, s, len) == 0)
            return i;
    char shown[64];
    size_t n = BL_MIN(len, sizeof(shown) - 1);
    for (size_t i = 0; i < n; i++)
        shown[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    shown[n] = '\0';
    bl_yaml_unknown_key(y, kn, shown, keys);
    return -1;
}

int bl_yaml_map(bl_yaml_t *y, yaml_node_t *m, const bl_yaml_key_t *keys, void *dst,
                yaml_node_t **found)
{
    yaml_node_t *seen[BL_YAML_MAX_KEYS] = { 0 };
    unsigned before = y->nerrors;
    size_t nkeys = 0;
    while (keys[nkeys].name != NULL)
        nkeys++;
    if (nkeys > BL_YAML_MAX_KEYS) { /* a table too long for seen[]: a bug, not input */
        bl_yaml_error(y, m, "internal error: key table longer than %d", BL_YAML_MAX_KEYS);
        return BL_ERROR;
    }
    if (m->type != YAML_MAPPING_NODE) {
        bl_yaml_error(y, m, "expected a mapping (key: value lines), found %s", bl_yaml_kind(m));
        return BL_ERROR;
    }
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = bl_yaml_node(y, pr->key), *vn = bl_yaml_node(y, pr->value);
        int i = bl_yaml_key_index(y, kn, keys);
        if (i < 0)
            continue;
        if (seen[i] != NULL) {
            bl_yaml_error(y, kn, "duplicate key \"%s\" (first at line %zu)", keys[i].name,
                          seen[i]->start_mark.line + 1);
            continue;
        }
        seen[i] = vn;
        keys[i].parse(y, vn, (char *)dst + keys[i].off, &keys[i]);
    }
    for (int i = 0; keys[i].name != NULL; i++) {
        if ((keys[i].flags & BL_YAML_REQUIRED) && (seen[i] == NULL || bl_yaml_is_null(seen[i])))
            bl_yaml_error(y, seen[i] ? seen[i] : m, "missing required key \"%s\"", keys[i].name);
        if (found != NULL)
            found[i] = seen[i];
    }
    return y->nerrors == before ? BL_OK : BL_ERROR;
}

int bl_yaml_submap(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    if (bl_yaml_is_null(v))
        return BL_OK; /* "tls:" with nothing under it: the sub-keys' own rules apply */
    return bl_yaml_map(y, v, k->sub, dst, NULL);
}

int bl_yaml_str(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    char **out = dst;
    int before = (int)y->nerrors;
    char *s = bl_yaml_strdup(y, v, k->name, 1); /* null: bl_yaml_map judges "required" */
    if (s != NULL && s[0] == '\0') {
        bl_yaml_error(y, v, "%s: must not be empty", k->name);
        free(s);
        s = NULL;
    }
    free(*out);
    *out = s;
    return (int)y->nerrors == before ? BL_OK : BL_ERROR;
}

/* Checks a path value against the BL_YAML_FILE/SECRET/DIR flags. */
static void bl_yaml_check_path(bl_yaml_t *y, yaml_node_t *v, const char *path,
                               const bl_yaml_key_t *k)
{
    int want_dir = (k->flags & BL_YAML_DIR) != 0;
    unsigned r = bl_file_check(path, want_dir);
    if (want_dir) {
        if (r & BL_FILE_NOT_DIR)
            bl_yaml_error(y, v, "%s: %s is not a directory", k->name, path);
        return; /* a missing directory is created when first needed */
    }
    if (!(k->flags & BL_YAML_FILE))
        return;
    if (r & (BL_FILE_MISSING | BL_FILE_UNREADABLE))
        bl_yaml_error(y, v, "%s: cannot read %s: %s", k->name, path, strerror(errno));
    else if (r & BL_FILE_NOT_REGULAR)
        bl_yaml_error(y, v, "%s: %s is not a regular file", k->name, path);
    else if ((k->flags & BL_YAML_SECRET) && (r & BL_FILE_OTHER_READABLE))
        bl_yaml_warn(y, v, "%s: %s is readable by other users (chmod 600 it)", k->name, path);
}

int bl_yaml_path(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    char **out = dst;
    if (bl_yaml_str(y, v, dst, k) != BL_OK)
        return BL_ERROR;
    if (*out == NULL)
        return BL_OK;
    char *abs = bl_file_abspath(y->dir, *out);
    free(*out);
    *out = abs;
    if (abs == NULL) {
        bl_yaml_error(y, v, "out of memory");
        return BL_ERROR;
    }
    if (strlen(abs) >= BL_PATH_MAX) {
        bl_yaml_error(y, v, "%s: a path of at most %d bytes", k->name, BL_PATH_MAX - 1);
        free(abs);
        *out = NULL;
        return BL_ERROR;
    }
    unsigned before = y->nerrors;
    bl_yaml_check_path(y, v, abs, k);
    return y->nerrors == before ? BL_OK : BL_ERROR;
}

/* Parses a plain decimal scalar into *n within [k->min, k->max]. */
static int bl_yaml_number(bl_yaml_t *y, yaml_node_t *v, const bl_yaml_key_t *k, uint64_t *n)
{
    const char *s = (const char *)v->data.scalar.value;
    size_t len = v->type == YAML_SCALAR_NODE ? v->data.scalar.length : 0;
    uint64_t x = 0;
    int ok = v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
             len > 0 && len <= 12;
    for (size_t i = 0; ok && i < len; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (!ok) {
        bl_yaml_error(y, v, "%s: expected a whole number, found %s", k->name,
                      v->type == YAML_SCALAR_NODE && !bl_yaml_is_null(v) ? "text"
                                                                          : bl_yaml_kind(v));
        return BL_ERROR;
    }
    if (x < k->min || x > k->max) {
        bl_yaml_error(y, v, "%s: %llu is out of range (%llu..%llu)", k->name,
                      (unsigned long long)x, (unsigned long long)k->min,
                      (unsigned long long)k->max);
        return BL_ERROR;
    }
    *n = x;
    return BL_OK;
}

int bl_yaml_uint(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    uint64_t n;
    if (bl_yaml_number(y, v, k, &n) != BL_OK)
        return BL_ERROR;
    *(unsigned *)dst = (unsigned)n;
    return BL_OK;
}

int bl_yaml_int(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    uint64_t n;
    if (bl_yaml_number(y, v, k, &n) != BL_OK)
        return BL_ERROR;
    *(int *)dst = (int)n;
    return BL_OK;
}

int bl_yaml_duration(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    uint64_t ms;
    const char *why;
    char lo[24], hi[24];
    if (v->type != YAML_SCALAR_NODE || bl_yaml_is_null(v)) {
        bl_yaml_error(y, v, "%s: expected a duration such as 10s, found %s", k->name,
                      bl_yaml_kind(v));
        return BL_ERROR;
    }
    if (bl_duration_parse((const char *)v->data.scalar.value, v->data.scalar.length, &ms,
                          &why) != BL_OK) {
        bl_yaml_error(y, v, "%s: invalid duration \"%.*s\": %s", k->name,
                      (int)BL_MIN(v->data.scalar.length, 32), v->data.scalar.value, why);
        return BL_ERROR;
    }
    if (ms < k->min || ms > k->max) {
        bl_yaml_error(y, v, "%s: must be between %s and %s", k->name,
                      bl_duration_format(k->min, lo, sizeof(lo)),
                      bl_duration_format(k->max, hi, sizeof(hi)));
        return BL_ERROR;
    }
    *(unsigned *)dst = (unsigned)ms;
    return BL_OK;
}

/* Only the YAML 1.2 core schema's booleans: yes/no/on/off are booleans
 * to YAML 1.1 readers and strings to 1.2 ones, so they are refused rather
 * than guessed. A quoted "true" is a string, as everywhere in YAML. */
int bl_yaml_bool(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    static const char *const words[] = { "false", "False", "FALSE", "true", "True", "TRUE" };
    if (v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        bl_str_t s = { (const char *)v->data.scalar.value, v->data.scalar.length };
        for (size_t i = 0; i < BL_ARRAY_LEN(words); i++)
            if (bl_str_eq(s, words[i])) {
                *(int *)dst = i >= 3;
                return BL_OK;
            }
        if (bl_str_eq_nocase(s, "yes") || bl_str_eq_nocase(s, "no") ||
            bl_str_eq_nocase(s, "on") || bl_str_eq_nocase(s, "off") ||
            bl_str_eq_nocase(s, "y") || bl_str_eq_nocase(s, "n")) {
            bl_yaml_error(y, v, "%s: write true or false (\"%.*s\" means a boolean to some YAML "
                                "readers and a string to others)", k->name, (int)s.len, s.p);
            return BL_ERROR;
        }
    }
    bl_yaml_error(y, v, "%s: expected true or false, found %s", k->name,
                  v->type == YAML_SCALAR_NODE && !bl_yaml_is_null(v) ? "text" : bl_yaml_kind(v));
    return BL_ERROR;
}

int bl_yaml_size(bl_yaml_t *y, yaml_node_t *v, void *dst, const bl_yaml_key_t *k)
{
    uint64_t n;
    const char *why;
    char lo[24], hi[24];
    if (v->type != YAML_SCALAR_NODE || bl_yaml_is_null(v)) {
        bl_yaml_error(y, v, "%s: expected a size such as 64MiB, found %s", k->name,
                      bl_yaml_kind(v));
        return BL_ERROR;
    }
    if (bl_size_parse((const char *)v->data.scalar.value, v->data.scalar.length, &n, &why) !=
        BL_OK) {
        bl_yaml_error(y, v, "%s: invalid size \"%.*s\": %s", k->name,
                      (int)BL_MIN(v->data.scalar.length, 32), v->data.scalar.value, why);
        return BL_ERROR;
    }
    if (n < k->min || n > k->max) {
        bl_yaml_error(y, v, "%s: must be between %s and %s", k->name,
                      bl_size_format(k->min, lo, sizeof(lo)),
                      bl_size_format(k->max, hi, sizeof(hi)));
        return BL_ERROR;
    }
    *(uint64_t *)dst = n;
    return BL_OK;
}

/* Returns 1 if s can be written as a plain scalar and read back as the
 * same string by any YAML 1.1 or 1.2 reader. */
static int bl_yaml_plain_ok(const char *s)
{
    static const char *const words[] = { "y", "n", "yes", "no", "on", "off",
                                         "true", "false", "null" };
    size_t len = strlen(s);
    if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/' || c == '-'))
            return 0;
    }
    for (size_t i = 0; i < BL_ARRAY_LEN(words); i++)
        if (bl_str_eq_nocase((bl_str_t){ s, len }, words[i]))
            return 0;
    return 1;
}

/* Returns the code point of the UTF-8 sequence at p (NUL-terminated) with
 * its length in *len, or -1 if p does not start valid UTF-8 (truncated,
 * overlong, a surrogate, past U+10FFFF). */
static long bl_utf8_next(const unsigned char *p, size_t *len)
{
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
                                : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0)
        return -1;
    uint32_t c = n == 1 ? p[0] : p[0] & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return -1;
        c = c << 6 | (p[i] & 0x3f);
    }
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return -1;
    *len = n;
    return (long)c;
}

/* Returns 1 if code point c may stand unescaped in a double-quoted scalar
 * and reads back unchanged: YAML-printable and not a line break (NEL,
 * U+2028 and U+2029 are folded) nor a byte order mark. */
static int bl_yaml_raw_ok(long c)
{
    return (c >= 0x20 && c < 0x7f) || (c >= 0xa0 && c <= 0xd7ff && c != 0x2028 && c != 0x2029) ||
           (c >= 0xe000 && c <= 0xfffd && c != 0xfeff) || c >= 0x10000;
}

int bl_yaml_put_scalar(bl_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len;
    if (bl_yaml_plain_ok(s))
        return bl_buf_puts(b, s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p += len)
        if (bl_utf8_next(p, &len) < 0)
            return BL_ERROR; /* no YAML text reads back as these bytes */
    if (bl_buf_puts(b, "\"") != BL_OK)
        return BL_ERROR;
    for (const unsigned char *p = (const unsigned char *)s; *p; p += len) {
        long c = bl_utf8_next(p, &len);
        char esc[6] = { '\\', 'u', hex[(c >> 12) & 15], hex[(c >> 8) & 15], hex[(c >> 4) & 15],
                        hex[c & 15] };
        int rc;
        if (c == '"' || c == '\\')
            rc = bl_buf_append(b, (const char[]){ '\\', (char)c }, 2);
        else if (bl_yaml_raw_ok(c))
            rc = bl_buf_append(b, p, len);
        else if (c < 0x100) /* "\xNN": U+00NN */
            rc = bl_buf_append(b, (const char[]){ '\\', 'x', esc[4], esc[5] }, 4);
        else
            rc = bl_buf_append(b, esc, 6);
        if (rc != BL_OK)
            return BL_ERROR;
    }
    return bl_buf_puts(b, "\"");
}
