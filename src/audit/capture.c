/*
 * capture.c - session captures: writing one next to the ledger, durably,
 * with its SHA-256 for the result entry; reading one back and checking it
 * against the ledger; asciicast v2 export. The format is in capture.h and
 * docs/AUDIT-FORMAT.md section 8.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "audit/capture.h"
#include "audit/record.h"

#define BL_CAP_FLUSH  (128 * 1024)   /* write out past this much */
#define BL_CAP_OUTMAX (512 * 1024)   /* one piece, escaped (6 x 16 KiB), always fits */
#define BL_CAP_PIECE  (16 * 1024)    /* event bytes per line at most */

struct bl_capture_writer_s {
    int dfd, fd;              /* the sessions directory, the file */
    char name[64];            /* "<id>.cap" */
    EVP_MD_CTX *md;
    bl_buf_t out;             /* bytes not yet written */
    uint64_t size;            /* bytes written */
};

static const char bl_cap_codes[] = "ioe";

/* Returns 1 if p[0..n) is valid UTF-8 (NUL included), else 0. */
static int bl_cap_utf8_ok(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t k = bl_utf8_len(u + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Sets err to "what: strerror(errno)" and returns BL_ERROR. */
static int bl_cap_fail(bl_buf_t *err, const char *what)
{
    int e = errno;
    bl_buf_reset(err);
    bl_buf_printf(err, "%s: %s", what, strerror(e));
    return BL_ERROR;
}

/* A record id names a file: only hex digits and dashes, 1..40 of them. */
static int bl_cap_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 40)
        return 0;
    return strspn(id, "0123456789abcdefABCDEF-") == n;
}

/* Opens DIR/sessions, making it (0700) and syncing DIR if it is new.
 * Returns the directory's fd, or -1 with the reason in err. */
static int bl_cap_dir(const char *dir, bl_buf_t *err)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/" BL_CAPTURE_SUBDIR, dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        bl_buf_reset(err);
        bl_buf_puts(err, "audit directory path too long");
        return -1;
    }
    if (mkdir(path, 0700) == 0) {
        int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = pfd >= 0 ? fsync(pfd) : -1;
        if (pfd >= 0)
            close(pfd);
        if (rc != 0) {
            bl_cap_fail(err, "syncing the audit directory");
            return -1;
        }
    } else if (errno != EEXIST) {
        bl_cap_fail(err, "creating " BL_CAPTURE_SUBDIR "/");
        return -1;
    }
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        bl_cap_fail(err, "opening " BL_CAPTURE_SUBDIR "/");
    return dfd;
}

/* Writes out what is buffered and hashes it. BL_OK or BL_ERROR. */
static int bl_cap_flush(bl_capture_writer_t *w)
{
    const char *p = bl_buf_data(&w->out);
    size_t n = bl_buf_size(&w->out);
    if (n && EVP_DigestUpdate(w->md, p, n) != 1)
        return BL_ERROR;
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return BL_ERROR;
        p += k;
        n -= (size_t)k;
        w->size += (uint64_t)k;
    }
    bl_buf_reset(&w->out);
    return BL_OK;
}

/* Closes and frees everything `w` holds (the file stays). */
static void bl_cap_free(bl_capture_writer_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->dfd >= 0)
        close(w->dfd);
    EVP_MD_CTX_free(w->md);
    bl_buf_free(&w->out);
    free(w);
}

void bl_capture_discard(bl_capture_writer_t *w)
{
    if (w == NULL)
        return;
    if (w->dfd >= 0 && w->name[0])
        unlinkat(w->dfd, w->name, 0);
    bl_cap_free(w);
}

/* "key":"value" for a present string (keys in sorted order by the caller). */
static int bl_cap_hstr(bl_buf_t *b, const char *key, const char *v)
{
    if (v == NULL)
        return BL_OK;
    int rc = bl_buf_printf(b, "\"%s\":", key);
    return rc | bl_buf_json_str(b, v, strlen(v)) | bl_buf_puts(b, ",");
}

/* The header line, canonical JSON (RFC 8785 key order). */
static int bl_cap_header(bl_buf_t *b, const bl_capture_meta_t *m, uint64_t bytes, int truncated)
{
    int rc = bl_buf_puts(b, "{");
    rc |= bl_cap_hstr(b, "action", m->action);
    rc |= bl_cap_hstr(b, "actor", m->actor);
    rc |= bl_buf_puts(b, "\"bytes\":") | bl_buf_putu64(b, bytes) | bl_buf_puts(b, ",");
    rc |= bl_cap_hstr(b, "connection", m->connection);
    rc |= bl_cap_hstr(b, "format", "byline-capture");
    rc |= bl_cap_hstr(b, "id", m->id);
    rc |= bl_buf_puts(b, "\"started\":") | bl_rec_ts(b, &m->started);
    rc |= bl_buf_puts(b, truncated ? ",\"truncated\":true" : ",\"truncated\":false");
    rc |= bl_buf_puts(b, ",\"version\":1}\n");
    return rc ? BL_ERROR : BL_OK;
}

bl_capture_writer_t *bl_capture_create(const char *dir, const bl_capture_meta_t *m, uint64_t bytes,
                                       int truncated, bl_buf_t *err)
{
    if (!bl_cap_id_ok(m->id)) {
        bl_buf_reset(err);
        bl_buf_puts(err, "a record id that cannot name a file");
        return NULL;
    }
    bl_capture_writer_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        bl_buf_reset(err);
        bl_buf_puts(err, "out of memory");
        if (w)
            EVP_MD_CTX_free(w->md);
        free(w);
        return NULL;
    }
    w->fd = -1;
    bl_buf_init(&w->out, BL_CAP_OUTMAX);
    snprintf(w->name, sizeof(w->name), "%s.cap", m->id);
    w->dfd = bl_cap_dir(dir, err);
    if (w->dfd < 0) {
        bl_cap_free(w);
        return NULL;
    }
    w->fd = openat(w->dfd, w->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        bl_cap_fail(err, "creating the capture file");
        w->name[0] = '\0'; /* not ours: never remove it */
        bl_cap_free(w);
        return NULL;
    }
    if (bl_cap_header(&w->out, m, bytes, truncated) != BL_OK || bl_cap_flush(w) != BL_OK) {
        bl_cap_fail(err, "writing the capture file");
        bl_capture_discard(w);
        return NULL;
    }
    return w;
}

/* Appends standard base64 (RFC 4648, padded) of p[0..n). */
static int bl_cap_b64(bl_buf_t *b, const char *p, size_t n)
{
    unsigned char tmp[4 * (BL_CAP_PIECE / 3 + 1) + 1];
    int k = EVP_EncodeBlock(tmp, (const unsigned char *)p, (int)n);
    return bl_buf_append(b, tmp, (size_t)k);
}

/* One line for at most BL_CAP_PIECE bytes. */
static int bl_cap_line(bl_capture_writer_t *w, uint64_t t_us, int ch, const char *p, size_t n)
{
    bl_buf_t *b = &w->out;
    char code[2] = { bl_cap_codes[ch], '\0' };
    int rc = bl_buf_puts(b, "[") | bl_buf_putu64(b, t_us) | bl_buf_puts(b, ",\"");
    rc |= bl_buf_puts(b, code) | bl_buf_puts(b, "\",");
    if (bl_cap_utf8_ok(p, n)) {
        rc |= bl_buf_json_str(b, p, n) | bl_buf_puts(b, "]\n");
    } else {
        rc |= bl_buf_puts(b, "\"") | bl_cap_b64(b, p, n) | bl_buf_puts(b, "\",\"base64\"]\n");
    }
    if (rc)
        return BL_ERROR;
    return bl_buf_size(b) >= BL_CAP_FLUSH ? bl_cap_flush(w) : BL_OK;
}

/* How many of p[0..n) go on one line. */
static size_t bl_cap_piece(const char *p, size_t n)
{
    if (n <= BL_CAP_PIECE)
        return n;
    size_t k = BL_CAP_PIECE;
    /* Cut before a character's continuation bytes, not inside it. */
    while (k > BL_CAP_PIECE - 3 && ((unsigned char)p[k] & 0xc0) == 0x80)
        k--;
    return k;
}

int bl_capture_write(bl_capture_writer_t *w, uint64_t t_us, int ch, const char *p, size_t n)
{
    if (ch < 0 || ch > 2)
        return BL_ERROR;
    while (n > 0) {
        size_t k = bl_cap_piece(p, n);
        if (bl_cap_line(w, t_us, ch, p, k) != BL_OK)
            return BL_ERROR;
        p += k;
        n -= k;
    }
    return BL_OK;
}

int bl_capture_seal(bl_capture_writer_t *w, unsigned char sha256[32], uint64_t *size, bl_buf_t *err)
{
    unsigned int mdlen = 0;
    if (bl_cap_flush(w) != BL_OK) {
        bl_cap_fail(err, "writing the capture file");
        goto fail;
    }
    if (EVP_DigestFinal_ex(w->md, sha256, &mdlen) != 1 || mdlen != 32) {
        bl_buf_reset(err);
        bl_buf_puts(err, "SHA-256 failed");
        goto fail;
    }
    *size = w->size;
    return BL_OK;
fail:
    bl_capture_discard(w);
    return BL_ERROR;
}

int bl_capture_sync(bl_capture_writer_t *w, bl_buf_t *err)
{
    if (fsync(w->fd) != 0) {
        bl_cap_fail(err, "syncing the capture file");
        goto fail;
    }
    if (fsync(w->dfd) != 0) {
        bl_cap_fail(err, "syncing " BL_CAPTURE_SUBDIR "/");
        goto fail;
    }
    bl_cap_free(w);
    return BL_OK;
fail:
    bl_capture_discard(w);
    return BL_ERROR;
}

int bl_capture_finish(bl_capture_writer_t *w, unsigned char sha256[32], uint64_t *size, bl_buf_t *err)
{
    if (bl_capture_seal(w, sha256, size, err) != BL_OK)
        return BL_ERROR;
    return bl_capture_sync(w, err);
}

/* Writes the 64 lower-case hex digits of a SHA-256 and a NUL into h. */
static void bl_cap_hex(const unsigned char sha[32], char h[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        h[2 * i] = hex[sha[i] >> 4];
        h[2 * i + 1] = hex[sha[i] & 15];
    }
    h[64] = '\0';
}

/* Appends {"bytes":..,"file":..,"sha256":..,"truncated":..}. */
static int bl_cap_json_ok(bl_buf_t *json, const char *id, const unsigned char sha[32], uint64_t size,
                          int truncated)
{
    char h[65];
    bl_cap_hex(sha, h);
    return bl_buf_printf(json, "{\"bytes\":%llu,\"file\":\"" BL_CAPTURE_SUBDIR "/%s.cap\",\"sha256\":\"%s\","
                         "\"truncated\":%s}", (unsigned long long)size, id, h, truncated ? "true" : "false");
}

/* Appends {"error":"<why>"} to json. */
static void bl_cap_json_error(bl_buf_t *json, const bl_buf_t *err)
{
    const char *why = bl_buf_size(err) ? bl_buf_data(err) : "unknown";
    size_t n = bl_buf_size(err) ? bl_buf_size(err) : 7;
    bl_buf_puts(json, "{\"error\":");
    bl_buf_json_str(json, why, n);
    bl_buf_puts(json, "}");
}

int bl_capture_prepare(const char *dir, const bl_capture_meta_t *m, const bl_tap_t *tap, bl_buf_t *json,
                       bl_capture_writer_t **sealed)
{
    uint64_t bytes, size = 0;
    int truncated, rc = BL_ERROR;
    unsigned char sha[32];
    bl_buf_t err;
    bl_buf_init(&err, 256);
    *sealed = NULL;
    bl_tap_capture_info(tap, NULL, &bytes, &truncated);
    bl_capture_writer_t *w = bl_capture_create(dir, m, bytes, truncated, &err);
    if (w != NULL) {
        size_t pos = 0;
        bl_tap_event_t ev;
        int failed = 0;
        while (!failed && bl_tap_event(tap, &pos, &ev) == BL_OK)
            failed = bl_capture_write(w, ev.t_us, ev.ch, ev.p, ev.n) != BL_OK;
        if (failed) {
            bl_cap_fail(&err, "writing the capture file");
            bl_capture_discard(w);
        } else {
            rc = bl_capture_seal(w, sha, &size, &err);
        }
    }
    size_t mark = json->len;
    if (rc == BL_OK && bl_cap_json_ok(json, m->id, sha, size, truncated) == BL_OK) {
        *sealed = w;
        goto end;
    }
    json->len = mark;
    if (rc == BL_OK) { /* written, but no room to say so: the caller's bug; say it anyway */
        bl_capture_discard(w);
        bl_buf_reset(&err);
        bl_buf_puts(&err, "no room for the capture's JSON");
        rc = BL_ERROR;
    }
    bl_cap_json_error(json, &err);
end:
    bl_buf_free(&err);
    return rc;
}

int bl_capture_save(const char *dir, const bl_capture_meta_t *m, const bl_tap_t *tap, bl_buf_t *json)
{
    bl_capture_writer_t *w;
    size_t mark = json->len;
    if (bl_capture_prepare(dir, m, tap, json, &w) != BL_OK)
        return BL_ERROR;
    bl_buf_t err;
    bl_buf_init(&err, 256);
    int rc = bl_capture_sync(w, &err);
    if (rc != BL_OK) {
        json->len = mark;
        bl_cap_json_error(json, &err);
    }
    bl_buf_free(&err);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

void bl_capture_free(bl_capture_t *c)
{
    free(c->ev);
    free(c->data);
    memset(c, 0, sizeof(*c));
}

/* Copies a header string member into dst (cap bytes); absent is "". */
static int bl_cap_getstr(const json_t *h, const char *key, char *dst, size_t cap)
{
    const json_t *v = json_object_get(h, key);
    dst[0] = '\0';
    if (v == NULL)
        return BL_OK;
    if (!json_is_string(v) || json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
        return BL_ERROR;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return BL_OK;
}

/* Parses "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" into seconds since 1970. */
static int bl_cap_time(const char *s, int64_t *out)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (strlen(s) != sizeof(shape) - 1)
        return BL_ERROR;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return BL_ERROR;
#define BL_D2(i) ((s[i] - '0') * 10 + (s[(i) + 1] - '0'))
    struct tm tm = { 0 };
    tm.tm_year = BL_D2(0) * 100 + BL_D2(2) - 1900;
    tm.tm_mon = BL_D2(5) - 1;
    tm.tm_mday = BL_D2(8);
    tm.tm_hour = BL_D2(11);
    tm.tm_min = BL_D2(14);
    tm.tm_sec = BL_D2(17);
#undef BL_D2
    *out = (int64_t)timegm(&tm);
    return BL_OK;
}

/* Parses the header line p[0..n) into c's header fields. Returns BL_OK,
 * or BL_ERROR with "line 1: why" appended to err. */
static int bl_cap_header_parse(const char *p, size_t n, bl_capture_t *c, bl_buf_t *err)
{
    json_error_t e;
    json_t *h = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e);
    const char *why = NULL;
    if (!json_is_object(h))
        why = "the header is not a JSON object";
    else if (!json_is_string(json_object_get(h, "format")) ||
             strcmp(json_string_value(json_object_get(h, "format")), "byline-capture") != 0)
        why = "not a byline capture (format)";
    else if (json_integer_value(json_object_get(h, "version")) != 1 || !json_is_integer(json_object_get(h, "version")))
        why = "unknown version (this byline reads version 1)";
    else if (bl_cap_getstr(h, "id", c->id, sizeof(c->id)) || bl_cap_getstr(h, "actor", c->actor, sizeof(c->actor)) ||
             bl_cap_getstr(h, "connection", c->connection, sizeof(c->connection)) ||
             bl_cap_getstr(h, "action", c->action, sizeof(c->action)) ||
             bl_cap_getstr(h, "started", c->started, sizeof(c->started)))
        why = "a header string is not a string or too long";
    else if (bl_cap_time(c->started, &c->started_unix) != BL_OK)
        why = "started is not an RFC 3339 UTC time with microseconds";
    else if (!json_is_boolean(json_object_get(h, "truncated")) || !json_is_integer(json_object_get(h, "bytes")) ||
             json_integer_value(json_object_get(h, "bytes")) < 0)
        why = "truncated or bytes missing";
    if (why == NULL) {
        c->truncated = json_is_true(json_object_get(h, "truncated"));
        c->bytes = (uint64_t)json_integer_value(json_object_get(h, "bytes"));
    }
    json_decref(h);
    if (why)
        bl_buf_printf(err, "line 1: %s", why);
    return why ? BL_ERROR : BL_OK;
}

/* Strict standard base64 with padding. Returns the decoded length, or -1. */
static long bl_cap_unb64(const char *s, size_t n, char *out)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = i + 4 == n ? (s[i + 3] == '=') + (s[i + 3] == '=' && s[i + 2] == '=') : 0;
        uint32_t acc = 0;
        for (int k = 0; k < 4; k++) {
            const char *q = s[i + k] ? memchr(alpha, s[i + k], 64) : NULL;
            if (k < 4 - pad && q == NULL)
                return -1;
            acc = acc << 6 | (uint32_t)(k < 4 - pad ? q - alpha : 0);
        }
        if ((pad == 1 && (acc & 0xff)) || (pad == 2 && (acc & 0xffff)))
            return -1; /* unused bits must be zero: one text per byte string */
        out[o++] = (char)(acc >> 16);
        if (pad < 2)
            out[o++] = (char)(acc >> 8);
        if (pad < 1)
            out[o++] = (char)acc;
    }
    return (long)o;
}

/* One event line into c->ev[c->nev], its decoded bytes at c->data + *used
 * (the caller sized data to the file, which no decoding outgrows).
 * Returns NULL, or why the line is not an event (static text). */
static const char *bl_cap_event_parse(const char *p, size_t n, bl_capture_t *c, size_t *used)
{
    json_error_t e;
    json_t *a = json_loadb(p, n, JSON_ALLOW_NUL, &e);
    const char *why = NULL;
    size_t sz = json_array_size(a);
    const json_t *t = json_array_get(a, 0), *code = json_array_get(a, 1), *d = json_array_get(a, 2);
    const char *cs = json_string_value(code), *ch = cs && strlen(cs) == 1 ? strchr(bl_cap_codes, cs[0]) : NULL;
    bl_capture_event_t *ev = &c->ev[c->nev];
    if (!json_is_array(a) || (sz != 3 && sz != 4) || !json_is_integer(t) || json_integer_value(t) < 0 ||
        ch == NULL || !json_is_string(d))
        why = "not an event: [t_us, \"i\"|\"o\"|\"e\", data]";
    else if (c->nev && (uint64_t)json_integer_value(t) < c->ev[c->nev - 1].t_us)
        why = "time goes backwards";
    else if (sz == 4 && (!json_is_string(json_array_get(a, 3)) ||
                         strcmp(json_string_value(json_array_get(a, 3)), "base64") != 0))
        why = "the fourth element can only be \"base64\"";
    if (why == NULL) {
        ev->t_us = (uint64_t)json_integer_value(t);
        ev->ch = (int)(ch - bl_cap_codes);
        ev->n = json_string_length(d);
        if (sz == 4) {
            long k = bl_cap_unb64(json_string_value(d), ev->n, c->data + *used);
            why = k < 0 ? "data is not padded standard base64" : NULL;
            ev->n = k < 0 ? 0 : (size_t)k;
        } else {
            memcpy(c->data + *used, json_string_value(d), ev->n);
        }
        *used += ev->n;
        c->nev += why == NULL;
    }
    json_decref(a);
    return why;
}

int bl_capture_parse(const char *p, size_t n, bl_capture_t *c, bl_buf_t *err)
{
    memset(c, 0, sizeof(*c));
    bl_buf_reset(err);
    size_t lines = 0, used = 0, line = 1;
    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    const char *nl = n ? memchr(p, '\n', n) : NULL;
    if (nl == NULL || p[n - 1] != '\n') {
        bl_buf_puts(err, nl ? "the last line has no newline (cut short?)" : "no header line");
        return BL_ERROR;
    }
    if (bl_cap_header_parse(p, (size_t)(nl - p), c, err) != BL_OK)
        return BL_ERROR;
    c->ev = calloc(lines, sizeof(*c->ev));
    c->data = malloc(n);
    if (c->ev == NULL || c->data == NULL) {
        bl_buf_puts(err, "out of memory");
        goto fail;
    }
    for (const char *q = nl + 1; q < p + n; line++) {
        const char *end = memchr(q, '\n', (size_t)(p + n - q));
        const char *why = bl_cap_event_parse(q, (size_t)(end - q), c, &used);
        if (why) {
            bl_buf_printf(err, "line %zu: %s", line + 1, why);
            goto fail;
        }
        q = end + 1;
    }
    if (used != c->bytes) {
        bl_buf_printf(err, "the events hold %zu bytes, the header says %llu", used, (unsigned long long)c->bytes);
        goto fail;
    }
    for (size_t i = 0, off = 0; i < c->nev; off += c->ev[i].n, i++)
        c->ev[i].p = c->data + off; /* now that data no longer moves */
    return BL_OK;
fail:
    bl_capture_free(c);
    return BL_ERROR;
}

/* Reads the whole regular file at path (at most max bytes, not following a
 * symlink) into *out (malloc'd, the caller frees). BL_OK or BL_ERROR. */
static int bl_cap_slurp(const char *path, uint64_t max, char **out, size_t *len, bl_buf_t *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        bl_buf_printf(err, "%s: not a regular file of at most %llu bytes", path, (unsigned long long)max);
        close(fd);
        return BL_ERROR;
    }
    buf = malloc((size_t)st.st_size + 1);
    while (buf && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            goto fail;
        got += (size_t)k;
    }
    if (buf == NULL)
        goto fail;
    close(fd);
    *out = buf;
    *len = got;
    return BL_OK;
fail:
    bl_buf_printf(err, "%s: %s", path, strerror(errno ? errno : EIO));
    if (fd >= 0)
        close(fd);
    free(buf);
    return BL_ERROR;
}

/* Compares a file's size and SHA-256 with what the ledger recorded (the
 * one comparison replay and verify share). Returns BL_OK when both match,
 * else BL_DECLINED with what differs in err. */
static int bl_cap_compare(uint64_t size, const unsigned char md[32], const char *want_sha_hex, uint64_t want_bytes,
                          bl_buf_t *err)
{
    char got[65];
    if (size != want_bytes) {
        bl_buf_printf(err, "it has %llu bytes, the ledger recorded %llu", (unsigned long long)size,
                      (unsigned long long)want_bytes);
        return BL_DECLINED;
    }
    bl_cap_hex(md, got);
    if (want_sha_hex == NULL || strcmp(got, want_sha_hex) != 0) {
        bl_buf_printf(err, "its SHA-256 is %s, the ledger recorded %.64s", got, want_sha_hex ? want_sha_hex : "none");
        return BL_DECLINED;
    }
    return BL_OK;
}

int bl_capture_load(const char *path, const char *want_sha_hex, uint64_t want_bytes, bl_capture_t *c,
                    bl_buf_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    memset(c, 0, sizeof(*c));
    bl_buf_reset(err);
    if (bl_cap_slurp(path, BL_CAPTURE_FILE_MAX, &buf, &len, err) != BL_OK)
        return BL_ERROR;
    int rc = BL_DECLINED;
    if (len != want_bytes) {
        bl_cap_compare(len, md, want_sha_hex, want_bytes, err); /* says the sizes; md is not read */
        goto end;
    }
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        bl_buf_puts(err, "SHA-256 failed");
        rc = BL_ERROR;
        goto end;
    }
    if (bl_cap_compare(len, md, want_sha_hex, want_bytes, err) != BL_OK)
        goto end;
    rc = bl_capture_parse(buf, len, c, err);
end:
    free(buf);
    return rc;
}

/* ---- the ledger's reference, checked without loading the file ----------- */

/* Copies the "error" or the file reference of a capture member into ref.
 * Returns BL_OK or BL_ERROR with what is wrong. */
static int bl_cap_ref_fields(const json_t *cap, bl_capture_ref_t *ref, bl_buf_t *err)
{
    const char *s = json_string_value(json_object_get(cap, "error"));
    if (s != NULL) {
        snprintf(ref->error, sizeof(ref->error), "%s", s[0] ? s : "(no reason given)");
        return BL_OK;
    }
    const char *file = json_string_value(json_object_get(cap, "file"));
    const char *sha = json_string_value(json_object_get(cap, "sha256"));
    const json_t *b = json_object_get(cap, "bytes");
    char want[128];
    snprintf(want, sizeof(want), BL_CAPTURE_SUBDIR "/%s.cap", ref->id);
    if (file == NULL || strcmp(file, want) != 0) {
        bl_buf_printf(err, "its \"file\" is %s%.200s%s, not %s", file ? "\"" : "", file ? file : "absent",
                      file ? "\"" : "", want);
        if (file && (file[0] == '/' || strstr(file, "..")))
            bl_buf_puts(err, " (it points outside the audit directory; not followed)");
        return BL_ERROR;
    }
    if (sha == NULL || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64) {
        bl_buf_puts(err, "its \"sha256\" is not 64 lower-case hex digits");
        return BL_ERROR;
    }
    if (!json_is_integer(b) || json_integer_value(b) < 0 || (uint64_t)json_integer_value(b) > BL_CAPTURE_FILE_MAX) {
        bl_buf_printf(err, "its \"bytes\" is not an integer from 0 to %llu", (unsigned long long)BL_CAPTURE_FILE_MAX);
        return BL_ERROR;
    }
    memcpy(ref->file, want, sizeof(ref->file));
    memcpy(ref->sha256, sha, 65);
    ref->bytes = (uint64_t)json_integer_value(b);
    ref->truncated = json_is_true(json_object_get(cap, "truncated"));
    return BL_OK;
}

int bl_capture_ref_get(const json_t *entry, bl_capture_ref_t *ref, bl_buf_t *err)
{
    const json_t *cap = json_object_get(entry, "capture");
    const char *id = json_string_value(json_object_get(entry, "id"));
    memset(ref, 0, sizeof(*ref));
    bl_buf_reset(err);
    if (cap == NULL)
        return BL_DECLINED;
    if (id != NULL && bl_cap_id_ok(id))
        snprintf(ref->id, sizeof(ref->id), "%s", id);
    if (!json_is_object(cap)) {
        bl_buf_puts(err, "its \"capture\" is not an object");
        return BL_ERROR;
    }
    if (ref->id[0] == '\0' && !json_is_string(json_object_get(cap, "error"))) {
        bl_buf_puts(err, "the entry has no record id to name a capture file by");
        return BL_ERROR;
    }
    return bl_cap_ref_fields(cap, ref, err);
}

int bl_capture_ref_path(const char *audit_dir, const bl_capture_ref_t *ref, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/%s", audit_dir, ref->file);
    return n < 0 || (size_t)n >= cap ? BL_ERROR : BL_OK;
}

int bl_capture_name_id(const char *name, char *id, size_t cap)
{
    size_t n = strlen(name);
    if (n < 5 || n - 4 >= cap || strcmp(name + n - 4, ".cap") != 0)
        return BL_DECLINED;
    memcpy(id, name, n - 4);
    id[n - 4] = '\0';
    return bl_cap_id_ok(id) ? BL_OK : BL_DECLINED;
}

/* Opens the capture file ref names under audit_dir, following no symlink,
 * as a regular file. Returns the fd, or -1 with *verdict and err set. */
static int bl_cap_open_checked(const char *audit_dir, const bl_capture_ref_t *ref, struct stat *st,
                               bl_capture_check_t *verdict, bl_buf_t *err)
{
    char path[4096];
    int fd = -1, n = snprintf(path, sizeof(path), "%s/" BL_CAPTURE_SUBDIR, audit_dir);
    *verdict = BL_CAPTURE_UNREADABLE;
    if (n < 0 || (size_t)n >= sizeof(path)) {
        bl_buf_puts(err, "the audit directory's path is too long");
        return -1;
    }
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        *verdict = errno == ENOENT ? BL_CAPTURE_MISSING : BL_CAPTURE_UNREADABLE;
        bl_buf_printf(err, "%s", errno == ENOENT ? "there is no " BL_CAPTURE_SUBDIR " directory"
                      : errno == ELOOP || errno == ENOTDIR ? BL_CAPTURE_SUBDIR " is not a directory (a symlink is not followed)"
                      : strerror(errno));
        return -1;
    }
    fd = openat(dfd, ref->file + sizeof(BL_CAPTURE_SUBDIR), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (fd < 0) {
        *verdict = e == ENOENT ? BL_CAPTURE_MISSING : e == ELOOP ? BL_CAPTURE_MODIFIED : BL_CAPTURE_UNREADABLE;
        bl_buf_printf(err, "%s", e == ENOENT ? "no such file" : e == ELOOP ? "a symbolic link is in its place"
                                                                           : strerror(e));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        bl_buf_puts(err, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        *verdict = BL_CAPTURE_MODIFIED;
        bl_buf_puts(err, "not a regular file");
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* Hashes fd from where it is, at most `limit` bytes, in bounded pieces.
 * Sets md and *size (the bytes read). Returns BL_OK, or BL_ERROR with err. */
static int bl_cap_hash_fd(int fd, uint64_t limit, unsigned char md[32], uint64_t *size, bl_buf_t *err)
{
    unsigned char *buf = malloc(BL_CAPTURE_HASH_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;
    int rc = BL_ERROR;
    *size = 0;
    if (buf == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        bl_buf_puts(err, "out of memory");
        goto end;
    }
    while (*size < limit) {
        ssize_t k = read(fd, buf, (size_t)BL_MIN((uint64_t)BL_CAPTURE_HASH_CHUNK, limit - *size));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            bl_buf_printf(err, "reading it: %s", strerror(errno));
            goto end;
        }
        if (k == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)k) != 1)
            goto sha;
        *size += (uint64_t)k;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
        rc = BL_OK;
        goto end;
    }
sha:
    bl_buf_puts(err, "SHA-256 failed");
end:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

bl_capture_check_t bl_capture_check(const char *audit_dir, const bl_capture_ref_t *ref, bl_buf_t *err)
{
    bl_capture_check_t verdict;
    struct stat st;
    unsigned char md[32];
    uint64_t size;
    bl_buf_reset(err);
    int fd = bl_cap_open_checked(audit_dir, ref, &st, &verdict, err);
    if (fd < 0)
        return verdict;
    if ((uint64_t)st.st_size != ref->bytes) { /* not worth reading */
        bl_cap_compare((uint64_t)st.st_size, md, ref->sha256, ref->bytes, err);
        verdict = BL_CAPTURE_MODIFIED;
    } else if (bl_cap_hash_fd(fd, ref->bytes + 1, md, &size, err) != BL_OK) {
        verdict = BL_CAPTURE_UNREADABLE;
    } else {
        /* a file that grew or shrank while read differs in size here */
        verdict = bl_cap_compare(size, md, ref->sha256, ref->bytes, err) == BL_OK ? BL_CAPTURE_MATCH
                                                                                 : BL_CAPTURE_MODIFIED;
    }
    close(fd);
    return verdict;
}

/* ---- asciicast v2 ------------------------------------------------------- */

/* Returns how many bytes at the end of p[0..n) begin a UTF-8 character
 * that the next event may complete (0..3). */
static size_t bl_cap_utf8_tail(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char b = u[n - k];
        if ((b & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t need = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* Appends "<seconds>.<microseconds>". BL_OK or BL_ERROR (full). */
static int bl_cap_secs(bl_buf_t *b, uint64_t us)
{
    return bl_buf_printf(b, "%llu.%06llu", (unsigned long long)(us / 1000000u),
                         (unsigned long long)(us % 1000000u));
}

/* Writes the asciicast v2 header line. BL_OK, or BL_ERROR if writing failed. */
static int bl_cast_header(const bl_capture_t *c, const bl_asciicast_opts_t *o, FILE *out)
{
    bl_buf_t b, title;
    bl_buf_init(&b, 64 * 1024);
    bl_buf_init(&title, 8192);
    if (o->title)
        bl_buf_puts(&title, o->title);
    else
        bl_buf_printf(&title, "%s: %s", c->actor[0] ? c->actor : "(unauthenticated)",
                      c->action[0] ? c->action : "kubectl exec");
    int rc = bl_buf_printf(&b, "{\"version\": 2, \"width\": %d, \"height\": %d, \"timestamp\": %lld, \"duration\": ",
                           o->width > 0 ? o->width : 80, o->height > 0 ? o->height : 24, (long long)c->started_unix);
    rc |= bl_cap_secs(&b, c->nev ? c->ev[c->nev - 1].t_us : 0);
    if (o->idle_time_limit > 0)
        rc |= bl_buf_printf(&b, ", \"idle_time_limit\": %.3f", o->idle_time_limit);
    rc |= bl_buf_puts(&b, ", \"title\": ");
    rc |= bl_buf_json_str(&b, bl_buf_data(&title), bl_buf_size(&title));
    rc |= bl_buf_puts(&b, ", \"env\": {}}\n");
    if (rc == BL_OK && fwrite(bl_buf_data(&b), 1, bl_buf_size(&b), out) != bl_buf_size(&b))
        rc = BL_ERROR;
    bl_buf_free(&b);
    bl_buf_free(&title);
    return rc ? BL_ERROR : BL_OK;
}

/* One event line; bytes of p[0..n) that are not valid UTF-8 become U+FFFD
 * (bl_buf_json_str). Nothing is written for n == 0. */
static int bl_cast_line(FILE *out, uint64_t t_us, char code, const char *p, size_t n)
{
    if (n == 0)
        return BL_OK;
    bl_buf_t b;
    bl_buf_init(&b, 8 * n + 64);
    char head[4] = { ',', ' ', '"', code };
    int rc = bl_buf_puts(&b, "[") | bl_cap_secs(&b, t_us) | bl_buf_append(&b, head, 4) | bl_buf_puts(&b, "\", ");
    rc |= bl_buf_json_str(&b, p, n) | bl_buf_puts(&b, "]\n");
    if (rc == BL_OK && fwrite(bl_buf_data(&b), 1, bl_buf_size(&b), out) != bl_buf_size(&b))
        rc = BL_ERROR;
    bl_buf_free(&b);
    return rc ? BL_ERROR : BL_OK;
}

int bl_capture_asciicast(const bl_capture_t *c, const bl_asciicast_opts_t *o, FILE *out)
{
    char carry[3][4]; /* per channel: the start of a character split across events */
    size_t ncarry[3] = { 0, 0, 0 };
    int rc = bl_cast_header(c, o, out);
    char *tmp = NULL;
    for (size_t i = 0; rc == BL_OK && i < c->nev; i++) {
        const bl_capture_event_t *ev = &c->ev[i];
        if (ev->ch == BL_TAP_STDIN && !o->with_stdin)
            continue;
        size_t n = ncarry[ev->ch] + ev->n;
        char *joined = realloc(tmp, n ? n : 1);
        if (joined == NULL) {
            rc = BL_ERROR;
            break;
        }
        tmp = joined;
        memcpy(tmp, carry[ev->ch], ncarry[ev->ch]);
        memcpy(tmp + ncarry[ev->ch], ev->p, ev->n);
        size_t keep = bl_cap_utf8_tail(tmp, n);
        memcpy(carry[ev->ch], tmp + n - keep, keep);
        ncarry[ev->ch] = keep;
        rc = bl_cast_line(out, ev->t_us, ev->ch == BL_TAP_STDIN ? 'i' : 'o', tmp, n - keep);
    }
    uint64_t last = c->nev ? c->ev[c->nev - 1].t_us : 0;
    for (int ch = 0; rc == BL_OK && ch < 3; ch++) /* a character never completed: U+FFFD */
        rc = bl_cast_line(out, last, ch == BL_TAP_STDIN ? 'i' : 'o', carry[ch], ncarry[ch]);
    free(tmp);
    if (rc == BL_OK && fflush(out) != 0)
        rc = BL_ERROR;
    return rc;
}
