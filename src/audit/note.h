/*
 * note.h - signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed
 * notes, Ed25519 via OpenSSL 3 (docs/AUDIT-FORMAT.md section 5).
 */
#ifndef BL_AUDIT_NOTE_H
#define BL_AUDIT_NOTE_H

#include "audit/merkle.h"
#include "core/buf.h"

typedef struct bl_signer_s bl_signer_t;      /* private key + name + key ID */
typedef struct bl_verifier_s bl_verifier_t;  /* public key + name + key ID */

/* Creates an Ed25519 key pair: the private key as PKCS#8 PEM at key_path
 * (0600, refusing to overwrite), the public key as SubjectPublicKeyInfo
 * PEM at pub_path (0644). Returns BL_OK or BL_ERROR with the reason. */
int bl_note_keygen(const char *key_path, const char *pub_path, bl_buf_t *err);

/* Loads a signer; `name` is the key name and checkpoint origin (copied).
 * Returns it (free with bl_signer_free) or NULL with the reason. */
bl_signer_t *bl_signer_load(const char *key_path, const char *name, bl_buf_t *err);
void bl_signer_free(bl_signer_t *s);

/* Loads a verifier from a public key PEM for key name `name`. */
bl_verifier_t *bl_verifier_load(const char *pub_path, const char *name, bl_buf_t *err);
/* The verifier matching a signer (same key), for checking our own notes. */
bl_verifier_t *bl_verifier_from_signer(const bl_signer_t *s);
void bl_verifier_free(bl_verifier_t *v);

/* Appends the signed checkpoint for (size, root) to `out`:
 * "<origin>\n<size>\n<b64 root>\n\n— <name> <b64(keyid||sig)>\n".
 * Returns BL_OK or BL_ERROR. */
int bl_note_sign(bl_signer_t *s, uint64_t size, const bl_hash_t *root, bl_buf_t *out);

/*
 * Parses and verifies a signed checkpoint. Returns BL_OK with *size and
 * *root set when a signature line for the verifier's name and key ID
 * verifies; BL_DECLINED if the note is well formed but no signature
 * verifies (bad-signature); BL_ERROR if it is malformed. *why (static)
 * says what is wrong. origin_out (may be NULL) gets the origin line.
 */
int bl_note_verify(const bl_verifier_t *v, const char *note, size_t n, uint64_t *size, bl_hash_t *root,
                   bl_buf_t *origin_out, const char **why);

/* ---- additions for the verifier, the prover and tests ---- */

#define BL_NOTE_MAX (64u * 1024) /* a longer note is malformed */

/* Appends the standard base64 (RFC 4648 section 4, padded) of p[0..n).
 * Returns BL_OK, or BL_ERROR with nothing appended. */
int bl_note_b64_encode(const void *p, size_t n, bl_buf_t *out);

/* Decodes padded standard base64 into out[0..cap), strictly: length a
 * multiple of 4, no whitespace, unused bits zero (one encoding per byte
 * string). Returns the decoded length or BL_ERROR. */
long bl_note_b64_decode(bl_str_t in, unsigned char *out, size_t cap);

/* Returns 1 if `name` may be a key name and origin: 1..255 printable ASCII
 * bytes, no space, no '+'. */
int bl_note_name_ok(const char *name);

/* Appends the verifier key in golang.org/x/mod/sumdb/note's text form,
 * "<name>+<key ID, 8 hex>+<base64(0x01 || public key)>", for checking our
 * checkpoints with Go tools or witnesses. Returns BL_OK or BL_ERROR. */
int bl_note_vkey(const bl_verifier_t *v, bl_buf_t *out);

/* Appends a C2SP signed note of any text: text[0..n) (valid UTF-8, no
 * control characters but '\n', ending in one '\n'), a blank line, and the
 * signature line. Returns BL_OK, or BL_ERROR with nothing appended. */
int bl_note_sign_text(bl_signer_t *s, const char *text, size_t n, bl_buf_t *out);

/* Verifies a C2SP signed note of any text. Returns BL_OK with *text_len
 * (the text is note[0..*text_len), ending in '\n') when a signature by the
 * verifier's name and key ID verifies; BL_DECLINED when none does or one
 * of ours fails; BL_ERROR when malformed; *why (static) says which. */
int bl_note_open(const bl_verifier_t *v, const char *note, size_t n, size_t *text_len, const char **why);

/* Appends the origin line of a well-formed checkpoint note WITHOUT
 * verifying it: only for choosing the key name to verify with. Returns
 * BL_OK, or BL_ERROR with *why (static) when the note is malformed or the
 * origin cannot be a key name. */
int bl_note_origin(const char *note, size_t n, bl_buf_t *out, const char **why);

#endif
