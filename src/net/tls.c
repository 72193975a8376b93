/* tls.c - OpenSSL contexts: gateway listener and upstream clients. */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "net/tls.h"

void bl_tls_errors(bl_buf_t *err)
{
    unsigned long e;
    char line[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, line, sizeof(line));
        bl_buf_printf(err, "%s%s", bl_buf_size(err) ? "; " : "", line);
    }
}

/* Chooses http/1.1 if the client offers it; a client that offers ALPN
 * without it (h2 only) is refused, as RFC 7301 asks. */
static int bl_tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                              const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* Accepts any client certificate at handshake time; the per-request
 * authentication step reads SSL_get_verify_result() and refuses with a
 * 401 naming the reason. */
static int bl_tls_verify_later(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

static void bl_tls_common(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Without read-ahead OpenSSL spends two read(2)s per record (header,
     * then body); with it, one read takes whatever has arrived. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Room for several 16 KiB records per read(2) on bulk transfers; the
     * buffer is released whenever it empties (SSL_MODE_RELEASE_BUFFERS). */
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
}

SSL_CTX *bl_tls_server_ctx(const char *cert, const char *key, const char *client_ca, bl_buf_t *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto fail;
    bl_tls_common(ctx);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        bl_buf_printf(err, "cannot load TLS certificate %s: ", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        bl_buf_printf(err, "cannot load TLS key %s: ", key);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, bl_tls_alpn_select, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"byline", 6);
    if (client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            bl_buf_printf(err, "cannot load client CA %s: ", client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, bl_tls_verify_later);
    }
    return ctx;
fail:
    bl_tls_errors(err);
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *bl_tls_client_ctx(const char *ca, const char *cert, const char *key, bl_buf_t *err)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto fail;
    bl_tls_common(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        bl_buf_printf(err, "cannot load upstream CA %s: ", ca ? ca : "(system store)");
        goto fail;
    }
    if (cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
                 SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
        bl_buf_printf(err, "cannot load upstream client certificate %s / %s: ", cert, key);
        goto fail;
    }
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    /* Sessions are kept by whoever owns the connection (one per upstream
     * per worker, see upstream_direct.c), never in OpenSSL's own store,
     * which would grow with every ticket and never be read. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    return ctx;
fail:
    bl_tls_errors(err);
    SSL_CTX_free(ctx);
    return NULL;
}
