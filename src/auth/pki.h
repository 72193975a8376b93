/*
 * pki.h - the gateway's own small PKI: ECDSA P-256 keys and X.509 v3
 * certificates (a CA, serving certificates, client certificates), made with
 * OpenSSL 3's EVP and X509 APIs, plus PEM reading and writing.
 *
 * P-256 because every client byline serves accepts it: Go's crypto/tls
 * (kubectl), OpenSSL, browsers and curl. Certificates carry what Go's
 * verifier insists on: subjectAltName for serving certificates (the CN is
 * ignored), basicConstraints and keyUsage keyCertSign on the CA, and an
 * extendedKeyUsage that keeps a serving certificate from being used as a
 * client certificate and vice versa.
 */
#ifndef BL_AUTH_PKI_H
#define BL_AUTH_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include "core/buf.h"

enum {
    BL_PKI_CA = 1,      /* a CA (CA:TRUE, pathlen 0, keyCertSign + cRLSign) */
    BL_PKI_SERVER = 2,  /* EKU serverAuth */
    BL_PKI_CLIENT = 3   /* EKU clientAuth */
};

/* What a certificate should say. Arrays may be NULL when their count is 0. */
typedef struct {
    int kind;                  /* BL_PKI_CA, BL_PKI_SERVER or BL_PKI_CLIENT */
    const char *cn;            /* subject CN (at most 64 bytes) */
    const char *const *orgs;   /* subject O, one RDN each (Kubernetes reads groups here) */
    size_t norgs;
    const char *const *dns;    /* subjectAltName DNS names */
    size_t ndns;
    const char *const *ips;    /* subjectAltName IP addresses, textual v4 or v6 */
    size_t nips;
    const char *const *uris;   /* subjectAltName URIs */
    size_t nuris;
    unsigned days;             /* validity from now (notBefore is 5 minutes back for skew) */
} bl_pki_req_t;

/* Returns a new P-256 key (caller frees with EVP_PKEY_free), or NULL with a
 * reason appended to `err`. */
EVP_PKEY *bl_pki_key_new(bl_buf_t *err);

/*
 * Issues a certificate for `key` as `req` describes, signed by `issuer_key`
 * under `issuer`'s subject; issuer NULL makes it self-signed (with `key`).
 * The serial is 128 random bits. Returns the certificate (caller frees with
 * X509_free) or NULL with a reason appended to `err`.
 */
X509 *bl_pki_issue(const bl_pki_req_t *req, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                   bl_buf_t *err);

/* Appends the PEM encoding of a certificate / of a private key (PKCS#8,
 * unencrypted) to `out`. Returns BL_OK or BL_ERROR. The caller should
 * OPENSSL_cleanse() a buffer holding a key before freeing it. */
int bl_pki_cert_pem(X509 *crt, bl_buf_t *out);
int bl_pki_key_pem(EVP_PKEY *key, bl_buf_t *out);

/* Writes a certificate (mode 0644) / a private key (mode 0600) to `path`
 * atomically. Returns BL_OK or BL_ERROR with a reason appended to `err`. */
int bl_pki_write_cert(const char *path, X509 *crt, bl_buf_t *err);
int bl_pki_write_key(const char *path, EVP_PKEY *key, bl_buf_t *err);

/* Reads the first PEM certificate / private key from `path`. Returns it
 * (caller frees) or NULL with a reason appended to `err`. */
X509 *bl_pki_read_cert(const char *path, bl_buf_t *err);
EVP_PKEY *bl_pki_read_key(const char *path, bl_buf_t *err);

/* Returns the number of PEM certificates in `path` (>= 1), or BL_ERROR with
 * a reason appended to `err` (unreadable, no certificate, bad PEM). */
int bl_pki_count_certs(const char *path, bl_buf_t *err);

/* Returns BL_OK if `key` is the private key of `crt`, else BL_ERROR. */
int bl_pki_key_matches(X509 *crt, EVP_PKEY *key);

#endif
