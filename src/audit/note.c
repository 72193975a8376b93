/*
 * note.c - signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed
 * notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint), Ed25519 through
 * OpenSSL 3 (docs/AUDIT-FORMAT.md section 5).
 *
 * The parser follows golang.org/x/mod/sumdb/note's Open: the whole note is
 * valid UTF-8 without control characters other than '\n'; the text ends at
 * the last blank line; every signature line is "— name base64", the base64
 * holding a 4-byte big-endian key ID and the signature; signatures by other
 * keys are ignored, and one by our key that fails rejects the note. So a
 * note we sign opens with Go's verifier for the key
 * "<name>+<key ID hex>+<base64(0x01 || public key)>".
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "audit/note.h"

#define BL_NOTE_KEYFILE_MAX (16u * 1024) /* a PEM key is a few hundred bytes */
#define BL_NOTE_SIGS_MAX 100              /* as Go's verifier; C2SP asks for at least 16 */
#define BL_NOTE_SIG_LEN 64                /* Ed25519 */
#define BL_NOTE_ALG_ED25519 0x01

static const char bl_note_dash[] = "\xe2\x80\x94 "; /* U+2014 EM DASH, space */

struct bl_signer_s {
    EVP_PKEY *pkey;
    char *name;
    unsigned char keyid[4];
    unsigned char pub[32];
};

struct bl_verifier_s {
    EVP_PKEY *pkey;
    char *name;
    unsigned char keyid[4];
};

/* ---- base64 (RFC 4648 section 4, with padding) ---- */

static const char bl_b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int bl_note_b64_encode(const void *p, size_t n, bl_buf_t *out)
{
    const unsigned char *s = p;
    size_t mark = out->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = { bl_b64_alpha[v >> 18], bl_b64_alpha[(v >> 12) & 63],
                      i + 1 < n ? bl_b64_alpha[(v >> 6) & 63] : '=', i + 2 < n ? bl_b64_alpha[v & 63] : '=' };
        if (bl_buf_append(out, q, 4) != BL_OK) {
            out->len = mark;
            return BL_ERROR;
        }
    }
    return BL_OK;
}

static int bl_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long bl_note_b64_decode(bl_str_t in, unsigned char *out, size_t cap)
{
    if (in.len % 4 != 0)
        return BL_ERROR;
    size_t pad = 0;
    while (pad < 2 && pad < in.len && in.p[in.len - 1 - pad] == '=')
        pad++;
    size_t outlen = in.len / 4 * 3 - pad, o = 0;
    if (outlen > cap)
        return BL_ERROR;
    uint32_t acc = 0;
    for (size_t i = 0; i < in.len - pad; i++) {
        int v = bl_b64_val((unsigned char)in.p[i]);
        if (v < 0)
            return BL_ERROR;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
        }
    }
    /* the last quantum: 2 or 3 characters whose unused bits must be zero,
     * so that every byte string has exactly one encoding */
    if (pad == 2) {
        if (acc & 0x0f)
            return BL_ERROR;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (pad == 1) {
        if (acc & 0x03)
            return BL_ERROR;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    return (long)o;
}

/* ---- keys ---- */

/* Returns 1 if `name` may be a key name: 1..255 bytes of printable ASCII
 * without space or '+' (C2SP forbids spaces and '+'; ASCII keeps it simple
 * and covers origins like "byline/host.example"). */
int bl_note_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f || name[i] == '+')
            return 0;
    return 1;
}

/* keyid = SHA-256(name || 0x0A || 0x01 || pub)[:4]. Returns BL_OK or BL_ERROR. */
static int bl_note_keyid(const char *name, const unsigned char pub[32], unsigned char keyid[4])
{
    size_t n = strlen(name);
    unsigned char buf[256 + 2 + 32], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (n > 255)
        return BL_ERROR;
    memcpy(buf, name, n);
    buf[n] = '\n';
    buf[n + 1] = BL_NOTE_ALG_ED25519;
    memcpy(buf + n + 2, pub, 32);
    if (!EVP_Digest(buf, n + 2 + 32, md, &mdlen, EVP_sha256(), NULL) || mdlen < 4)
        return BL_ERROR;
    memcpy(keyid, md, 4);
    return BL_OK;
}

/* Writes data to path through a temporary file in the same directory:
 * fsync, then link(2) (no_overwrite: fails if path exists) or rename(2),
 * then fsync of the directory. Returns BL_OK or BL_ERROR with the reason. */
static int bl_note_write_file(const char *path, const void *data, size_t n, mode_t mode, int no_overwrite,
                              bl_buf_t *err)
{
    char tmp[4096], dir[4096];
    int fd = -1, rc = BL_ERROR, placed = 0;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp) ||
        (size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir)) {
        bl_buf_printf(err, "%s: path too long", path);
        return BL_ERROR;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        bl_buf_printf(err, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        return BL_ERROR;
    }
    const char *p = data;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bl_buf_printf(err, "%s: write: %s", tmp, strerror(errno));
            goto end;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        bl_buf_printf(err, "%s: %s", tmp, strerror(errno));
        goto end;
    }
    placed = no_overwrite ? link(tmp, path) == 0 : rename(tmp, path) == 0;
    if (!placed) {
        bl_buf_printf(err, "%s: %s", path,
                      errno == EEXIST ? "already exists; refusing to overwrite a signing key" : strerror(errno));
        goto end;
    }
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the name is durable too; best effort where unsupported */
        close(dfd);
    }
    rc = BL_OK;
end:
    close(fd);
    if (no_overwrite || !placed)
        unlink(tmp);
    return rc;
}

/* Appends the PEM of pkey (private: PKCS#8; else SubjectPublicKeyInfo). */
static int bl_note_pem(EVP_PKEY *pkey, int private, bl_buf_t *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    int ok = b != NULL && (private ? PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL)
                                   : PEM_write_bio_PUBKEY(b, pkey));
    long n = ok ? BIO_get_mem_data(b, &p) : 0;
    ok = ok && n > 0 && bl_buf_append(out, p, (size_t)n) == BL_OK;
    BIO_free(b);
    return ok ? BL_OK : BL_ERROR;
}

int bl_note_keygen(const char *key_path, const char *pub_path, bl_buf_t *err)
{
    bl_buf_t priv, pub;
    int rc = BL_ERROR;
    bl_buf_init(&priv, BL_NOTE_KEYFILE_MAX);
    bl_buf_init(&pub, BL_NOTE_KEYFILE_MAX);
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pkey == NULL || bl_note_pem(pkey, 1, &priv) != BL_OK || bl_note_pem(pkey, 0, &pub) != BL_OK) {
        bl_buf_puts(err, "cannot generate an Ed25519 key (OpenSSL)");
        goto end;
    }
    if (bl_note_write_file(key_path, bl_buf_data(&priv), bl_buf_size(&priv), 0600, 1, err) != BL_OK)
        goto end;
    if (bl_note_write_file(pub_path, bl_buf_data(&pub), bl_buf_size(&pub), 0644, 0, err) != BL_OK) {
        unlink(key_path); /* a private key without its public half helps nobody */
        goto end;
    }
    rc = BL_OK;
end:
    OPENSSL_cleanse(bl_buf_data(&priv), bl_buf_size(&priv));
    bl_buf_free(&priv);
    bl_buf_free(&pub);
    EVP_PKEY_free(pkey);
    return rc;
}

static int bl_note_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0; /* never prompt on a terminal: an encrypted key is an error */
}

/* Reads and parses a PEM key file (regular file, bounded). Returns the key
 * or NULL with the reason. */
static EVP_PKEY *bl_note_read_key(const char *path, int private, bl_buf_t *err)
{
    char buf[BL_NOTE_KEYFILE_MAX];
    struct stat st;
    ssize_t n = -1;
    EVP_PKEY *pkey = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        bl_buf_printf(err, "%s: %s", path, strerror(errno));
        goto end;
    }
    if (!S_ISREG(st.st_mode) || st.st_size >= (off_t)sizeof(buf)) {
        bl_buf_printf(err, "%s: not a key file (a regular file under %u bytes)", path, BL_NOTE_KEYFILE_MAX);
        goto end;
    }
    n = read(fd, buf, sizeof(buf));
    BIO *b = n > 0 ? BIO_new_mem_buf(buf, (int)n) : NULL;
    if (b != NULL)
        pkey = private ? PEM_read_bio_PrivateKey(b, NULL, bl_note_no_passphrase, NULL)
                       : PEM_read_bio_PUBKEY(b, NULL, bl_note_no_passphrase, NULL);
    BIO_free(b);
    if (pkey == NULL || !EVP_PKEY_is_a(pkey, "ED25519")) {
        bl_buf_printf(err, "%s: not an unencrypted Ed25519 %s key in PEM", path, private ? "private" : "public");
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
end:
    if (n > 0)
        OPENSSL_cleanse(buf, (size_t)n);
    if (fd >= 0)
        close(fd);
    return pkey;
}

bl_signer_t *bl_signer_load(const char *key_path, const char *name, bl_buf_t *err)
{
    size_t publen = 32;
    if (!bl_note_name_ok(name)) {
        bl_buf_printf(err, "'%.64s' cannot be a key name (1..255 printable ASCII characters, no space or '+')", name);
        return NULL;
    }
    bl_signer_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        bl_buf_puts(err, "out of memory");
        goto fail;
    }
    if ((s->pkey = bl_note_read_key(key_path, 1, err)) == NULL)
        goto fail;
    if (!EVP_PKEY_get_raw_public_key(s->pkey, s->pub, &publen) || publen != 32 ||
        bl_note_keyid(name, s->pub, s->keyid) != BL_OK) {
        bl_buf_printf(err, "%s: cannot read the public half", key_path);
        goto fail;
    }
    return s;
fail:
    bl_signer_free(s);
    return NULL;
}

void bl_signer_free(bl_signer_t *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    free(s->name);
    free(s);
}

/* Builds a verifier around pkey (taken over, also on failure). */
static bl_verifier_t *bl_verifier_new(EVP_PKEY *pkey, const char *name, bl_buf_t *err)
{
    unsigned char pub[32];
    size_t publen = sizeof(pub);
    bl_verifier_t *v = calloc(1, sizeof(*v));
    if (v == NULL || (v->name = strdup(name)) == NULL) {
        if (err)
            bl_buf_puts(err, "out of memory");
        goto fail;
    }
    v->pkey = pkey;
    pkey = NULL;
    if (!EVP_PKEY_get_raw_public_key(v->pkey, pub, &publen) || publen != 32 ||
        bl_note_keyid(name, pub, v->keyid) != BL_OK) {
        if (err)
            bl_buf_puts(err, "not an Ed25519 public key");
        goto fail;
    }
    return v;
fail:
    EVP_PKEY_free(pkey);
    bl_verifier_free(v);
    return NULL;
}

bl_verifier_t *bl_verifier_load(const char *pub_path, const char *name, bl_buf_t *err)
{
    if (!bl_note_name_ok(name)) {
        bl_buf_printf(err, "'%.64s' cannot be a key name (1..255 printable ASCII characters, no space or '+')", name);
        return NULL;
    }
    EVP_PKEY *pkey = bl_note_read_key(pub_path, 0, err);
    return pkey ? bl_verifier_new(pkey, name, err) : NULL;
}

bl_verifier_t *bl_verifier_from_signer(const bl_signer_t *s)
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, s->pub, sizeof(s->pub));
    return pkey ? bl_verifier_new(pkey, s->name, NULL) : NULL;
}

void bl_verifier_free(bl_verifier_t *v)
{
    if (v == NULL)
        return;
    EVP_PKEY_free(v->pkey);
    free(v->name);
    free(v);
}

int bl_note_vkey(const bl_verifier_t *v, bl_buf_t *out)
{
    unsigned char raw[33];
    size_t publen = 32;
    size_t mark = out->len;
    raw[0] = BL_NOTE_ALG_ED25519;
    if (!EVP_PKEY_get_raw_public_key(v->pkey, raw + 1, &publen) || publen != 32 ||
        bl_buf_printf(out, "%s+%02x%02x%02x%02x+", v->name, v->keyid[0], v->keyid[1], v->keyid[2], v->keyid[3]) !=
            BL_OK ||
        bl_note_b64_encode(raw, sizeof(raw), out) != BL_OK) {
        out->len = mark;
        return BL_ERROR;
    }
    return BL_OK;
}

/* ---- signing ---- */

/* ---- parsing and verifying ---- */

/* Returns 1 if p[0..n) is valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF) without ASCII control characters but '\n'. */
static int bl_note_text_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\n')
                return 0;
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

int bl_note_sign_text(bl_signer_t *s, const char *text, size_t n, bl_buf_t *out)
{
    size_t mark = out->len;
    unsigned char blob[4 + BL_NOTE_SIG_LEN];
    size_t siglen = BL_NOTE_SIG_LEN;
    EVP_MD_CTX *c = NULL;
    int rc = BL_ERROR;
    /* the text a verifier will accept: UTF-8 lines, no blank last line */
    if (n == 0 || text[n - 1] != '\n' || (n > 1 && text[n - 2] == '\n') || n > BL_NOTE_MAX ||
        !bl_note_text_ok((const unsigned char *)text, n))
        return BL_ERROR;
    memcpy(blob, s->keyid, 4);
    if ((c = EVP_MD_CTX_new()) == NULL || !EVP_DigestSignInit_ex(c, NULL, NULL, NULL, NULL, s->pkey, NULL) ||
        !EVP_DigestSign(c, blob + 4, &siglen, (const unsigned char *)text, n) || siglen != BL_NOTE_SIG_LEN)
        goto end;
    if (bl_buf_append(out, text, n) != BL_OK || bl_buf_append(out, "\n", 1) != BL_OK ||
        bl_buf_puts(out, bl_note_dash) != BL_OK || bl_buf_puts(out, s->name) != BL_OK ||
        bl_buf_append(out, " ", 1) != BL_OK || bl_note_b64_encode(blob, sizeof(blob), out) != BL_OK ||
        bl_buf_append(out, "\n", 1) != BL_OK)
        goto end;
    rc = BL_OK;
end:
    if (rc != BL_OK)
        out->len = BL_MAX(mark, out->off);
    EVP_MD_CTX_free(c);
    return rc;
}

int bl_note_sign(bl_signer_t *s, uint64_t size, const bl_hash_t *root, bl_buf_t *out)
{
    char body[256 + 1 + 20 + 1 + 44 + 1 + 1];
    bl_buf_t b;
    int rc = BL_ERROR;
    bl_buf_init(&b, sizeof(body));
    if (bl_buf_puts(&b, s->name) == BL_OK && bl_buf_append(&b, "\n", 1) == BL_OK && bl_buf_putu64(&b, size) == BL_OK &&
        bl_buf_append(&b, "\n", 1) == BL_OK && bl_note_b64_encode(root->h, sizeof(root->h), &b) == BL_OK &&
        bl_buf_append(&b, "\n", 1) == BL_OK)
        rc = bl_note_sign_text(s, bl_buf_data(&b), bl_buf_size(&b), out);
    bl_buf_free(&b);
    return rc;
}

/* Parses the checkpoint body text[0..n) (ends in '\n'): exactly origin,
 * size, root. Returns BL_OK or BL_ERROR with *why. */
static int bl_note_body(const char *text, size_t n, bl_str_t *origin, uint64_t *size, bl_hash_t *root,
                        const char **why)
{
    bl_str_t line[3];
    const char *p = text, *end = text + n;
    for (int i = 0; i < 3; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || nl == p) {
            *why = "a checkpoint body is three non-empty lines: origin, tree size, root hash";
            return BL_ERROR;
        }
        line[i] = (bl_str_t){ p, (size_t)(nl - p) };
        p = nl + 1;
    }
    if (p != end) {
        *why = "the checkpoint has extension lines (byline writes none)";
        return BL_ERROR;
    }
    uint64_t v = 0;
    if (line[1].len > 20 || (line[1].len > 1 && line[1].p[0] == '0')) {
        *why = "the tree size is not a decimal number without leading zeros";
        return BL_ERROR;
    }
    for (size_t i = 0; i < line[1].len; i++) {
        unsigned d = (unsigned char)line[1].p[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            *why = "the tree size is not a decimal number below 2^64";
            return BL_ERROR;
        }
        v = v * 10 + d;
    }
    if (line[2].len != 44 || bl_note_b64_decode(line[2], root->h, sizeof(root->h)) != (long)sizeof(root->h)) {
        *why = "the root hash is not the base64 of 32 bytes";
        return BL_ERROR;
    }
    *origin = line[0];
    *size = v;
    return BL_OK;
}

/* Checks one signature line (without '\n'): BL_OK if it is ours and
 * verifies, BL_DECLINED if it is someone else's, BL_AGAIN if it is ours and
 * does not verify, BL_ERROR if malformed. */
static int bl_note_sigline(const bl_verifier_t *v, bl_str_t line, const char *text, size_t tn)
{
    unsigned char blob[4 + 8192]; /* room for others' post-quantum signatures */
    size_t dl = sizeof(bl_note_dash) - 1;
    if (line.len < dl || memcmp(line.p, bl_note_dash, dl) != 0)
        return BL_ERROR;
    line.p += dl;
    line.len -= dl;
    const char *sp = memchr(line.p, ' ', line.len);
    if (sp == NULL || sp == line.p)
        return BL_ERROR;
    bl_str_t name = { line.p, (size_t)(sp - line.p) };
    bl_str_t b64 = { sp + 1, line.len - name.len - 1 };
    long n = bl_note_b64_decode(b64, blob, sizeof(blob));
    if (n < 5 || memchr(name.p, '+', name.len) != NULL)
        return BL_ERROR;
    if (!bl_str_eq(name, v->name) || memcmp(blob, v->keyid, 4) != 0)
        return BL_DECLINED;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && n == 4 + BL_NOTE_SIG_LEN && EVP_DigestVerifyInit_ex(c, NULL, NULL, NULL, NULL, v->pkey, NULL) &&
             EVP_DigestVerify(c, blob + 4, (size_t)n - 4, (const unsigned char *)text, tn) == 1;
    EVP_MD_CTX_free(c);
    return ok ? BL_OK : BL_AGAIN;
}

/* Splits a note into text (with its final '\n') and signature block.
 * Returns BL_OK or BL_ERROR with *why. */
static int bl_note_split(const char *note, size_t n, size_t *tn, const char **why)
{
    if (n > BL_NOTE_MAX) {
        *why = "the note is longer than 64 KiB";
        return BL_ERROR;
    }
    if (!bl_note_text_ok((const unsigned char *)note, n)) {
        *why = "the note is not UTF-8 text without control characters";
        return BL_ERROR;
    }
    size_t split = n;
    for (size_t i = n; i-- > 1;)
        if (note[i] == '\n' && note[i - 1] == '\n') {
            split = i - 1;
            break;
        }
    if (split == n || split + 2 >= n || note[n - 1] != '\n') {
        *why = "no blank line followed by signature lines";
        return BL_ERROR;
    }
    *tn = split + 1;
    return BL_OK;
}

int bl_note_open(const bl_verifier_t *v, const char *note, size_t n, size_t *text_len, const char **why)
{
    size_t tn;
    int found = 0, count = 0;
    if (bl_note_split(note, n, &tn, why) != BL_OK)
        return BL_ERROR;
    for (const char *p = note + tn + 1, *end = note + n; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)); /* found: the note ends in '\n' */
        int rc = bl_note_sigline(v, (bl_str_t){ p, (size_t)(nl - p) }, note, tn);
        p = nl + 1;
        if (rc == BL_ERROR || ++count > BL_NOTE_SIGS_MAX) {
            *why = rc == BL_ERROR ? "a signature line is not \"\xe2\x80\x94 name base64\"" : "more than 100 signatures";
            return BL_ERROR;
        }
        if (rc == BL_AGAIN) {
            *why = "the signature by the key does not verify";
            return BL_DECLINED;
        }
        found |= rc == BL_OK;
    }
    if (!found) {
        *why = "no signature by the key (name and key ID)";
        return BL_DECLINED;
    }
    *text_len = tn;
    *why = NULL;
    return BL_OK;
}

int bl_note_verify(const bl_verifier_t *v, const char *note, size_t n, uint64_t *size, bl_hash_t *root,
                   bl_buf_t *origin_out, const char **why)
{
    size_t tn;
    bl_str_t origin;
    uint64_t sz;
    bl_hash_t rt;
    /* well-formed first (a malformed note is BL_ERROR whoever signed it), then the signature */
    if (bl_note_split(note, n, &tn, why) != BL_OK || bl_note_body(note, tn, &origin, &sz, &rt, why) != BL_OK)
        return BL_ERROR;
    int rc = bl_note_open(v, note, n, &tn, why);
    if (rc != BL_OK)
        return rc;
    if (!bl_str_eq(origin, v->name)) {
        *why = "the origin line is not the key name";
        return BL_DECLINED;
    }
    if (origin_out && bl_buf_putstr(origin_out, origin) != BL_OK) {
        *why = "the origin does not fit";
        return BL_ERROR;
    }
    *size = sz;
    *root = rt;
    return BL_OK;
}

int bl_note_origin(const char *note, size_t n, bl_buf_t *out, const char **why)
{
    size_t tn;
    bl_str_t origin;
    uint64_t sz;
    bl_hash_t rt;
    if (bl_note_split(note, n, &tn, why) != BL_OK || bl_note_body(note, tn, &origin, &sz, &rt, why) != BL_OK)
        return BL_ERROR;
    char name[256];
    if (origin.len >= sizeof(name)) {
        *why = "the origin is longer than 255 bytes";
        return BL_ERROR;
    }
    memcpy(name, origin.p, origin.len);
    name[origin.len] = '\0';
    if (!bl_note_name_ok(name)) {
        *why = "the origin cannot be a key name";
        return BL_ERROR;
    }
    return bl_buf_putstr(out, origin);
}
