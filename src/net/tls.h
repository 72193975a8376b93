/*
 * tls.h - OpenSSL 3 contexts for both sides of the gateway.
 * TLS 1.2 is the floor everywhere; ALPN offers/selects http/1.1 only.
 */
#ifndef BL_NET_TLS_H
#define BL_NET_TLS_H

#include <openssl/ssl.h>
#include "core/buf.h"

/*
 * Returns a server context for the gateway's listener, or NULL with a
 * reason appended to `err`. `client_ca` may be NULL; when set, clients
 * are asked (not required) for a certificate, and its verification result
 * is judged per request by the caller, so an untrusted certificate gets a
 * 401 that says why instead of a failed handshake. Caller owns the context.
 */
SSL_CTX *bl_tls_server_ctx(const char *cert, const char *key, const char *client_ca, bl_buf_t *err);

/*
 * Returns a client context for one upstream, or NULL with a reason in
 * `err`. `ca` NULL means the system trust store. `cert`/`key` (both or
 * neither) are presented as the client certificate. Caller owns it.
 */
SSL_CTX *bl_tls_client_ctx(const char *ca, const char *cert, const char *key, bl_buf_t *err);

/* Appends OpenSSL's queued errors (and clears them) to `err`. */
void bl_tls_errors(bl_buf_t *err);

#endif
