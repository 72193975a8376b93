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

/*
 * Workload identity: verifies a bearer JWT against the configured issuer
 * its (unverified) `iss` names, with that issuer's keys from `keys`, at
 * time `now` (seconds since the epoch), and maps its claims to a new
 * identity in *out (name = username_prefix + username claim, groups =
 * groups_prefix + each groups claim value; printable ASCII without
 * spaces, at most BL_JWT_NAME_MAX bytes, never "system:..."). The caller
 * owns *out and frees it with bl_identity_free(). Returns:
 *   BL_OK       verified and mapped;
 *   BL_DECLINED not a JWT, or no issuer named by its iss is configured
 *               (why says which), so the caller may report an unknown token;
 *   BL_AGAIN    the token names a key the issuer's set does not have (or
 *               no set has loaded yet) and a refresh was asked for: `w` is
 *               registered with `keys` and called when it has finished;
 *               try again then (with w NULL, so it cannot wait twice);
 *   BL_ERROR    refused; why says why (never quoting the token).
 * Allocates; thread-safe.
 */
#define BL_JWT_NAME_MAX 256
struct bl_jwks_cache_s;
struct bl_jwks_waiter_s;
int bl_identity_by_jwt(const bl_config_t *cfg, struct bl_jwks_cache_s *keys, const char *tok,
                       size_t len, int64_t now, struct bl_jwks_waiter_s *w, bl_identity_t **out,
                       char *why, size_t cap);

/* Frees an identity made by bl_identity_by_jwt(). NULL is fine. */
void bl_identity_free(bl_identity_t *id);

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
