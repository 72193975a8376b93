/*
 * identity.h - who is asking: map a presented credential (a bearer token
 * or a verified client certificate) to a registered identity.
 *
 * The lookups run on every request, so the loader builds an index once
 * (bl_identity_index_build(), called by bl_config_load()) and the lookups
 * only read it: they are thread-safe and never allocate, except
 * bl_identity_by_cert(), which lets OpenSSL decode the certificate's names
 * (once per TLS connection, not per request).
 *
 * The returned identity belongs to the config and lives as long as it.
 */
#ifndef BL_AUTH_IDENTITY_H
#define BL_AUTH_IDENTITY_H

#include <openssl/x509.h>
#include "config/config.h"

/*
 * Returns the identity whose token_sha256 is SHA-256(token[0..len)), or
 * NULL (unknown token, token longer than BL_TOKEN_MAX, no index). O(1):
 * the table is keyed by the hash itself. The final comparison of the full
 * 32 bytes uses CRYPTO_memcmp. Finding the slot reveals nothing useful
 * through timing: the slot depends on SHA-256 of what the caller sent,
 * which the caller already knows, and says nothing about any stored token.
 */
const bl_identity_t *bl_identity_by_token(const bl_config_t *cfg, const char *token, size_t len);

/*
 * Returns the identity a client certificate maps to, or NULL. The caller
 * must have verified the chain against tls.client_ca already (e.g.
 * SSL_get_verify_result() == X509_V_OK with purpose sslclient); this only
 * maps names. Candidates are the subject CN (matched against cert_cn) and
 * every URI subjectAltName (matched against cert_uri), byte for byte. If
 * they all point at one identity, that one is returned; if they point at
 * two or more different identities the certificate is ambiguous and NULL
 * is returned, as it is for a subject with more than one CN.
 */
const bl_identity_t *bl_identity_by_cert(const bl_config_t *cfg, X509 *peer);

/* Returns the identity named name[0..len), or NULL. O(log n). */
const bl_identity_t *bl_identity_by_name(const bl_config_t *cfg, const char *name, size_t len);

/* What two identities were found to share (for bl_identity_dup_fn). */
enum { BL_ID_DUP_NAME, BL_ID_DUP_TOKEN, BL_ID_DUP_CERT_CN, BL_ID_DUP_CERT_URI };

/* Called once per duplicate: cfg->ids[dup] repeats the `what` of
 * cfg->ids[first] (first < dup). */
typedef void (*bl_identity_dup_fn)(void *ctx, int what, size_t first, size_t dup);

/*
 * Builds the lookup index over cfg->ids into cfg->id_index (replacing any
 * old one). Returns BL_OK; BL_DECLINED if some name or credential belongs
 * to two identities (each reported through on_dup, which may be NULL; the
 * index is then not installed, so every lookup fails closed); or BL_ERROR
 * when out of memory.
 */
int bl_identity_index_build(bl_config_t *cfg, bl_identity_dup_fn on_dup, void *ctx);

/* Frees an index. NULL is fine. */
void bl_identity_index_free(struct bl_identity_index_s *idx);

#endif
