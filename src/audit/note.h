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

#endif
