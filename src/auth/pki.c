/* pki.c - P-256 keys and X.509 v3 certificates with OpenSSL 3, PEM I/O. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "auth/pki.h"
#include "config/file.h"

#define BL_PEM_MAX (1024 * 1024)  /* no certificate bundle or key is bigger */

/* Appends OpenSSL's queued errors, "; "-separated, and clears them. */
static void bl_pki_openssl_errors(bl_buf_t *err)
{
    unsigned long e;
    const char *sep = "";
    char line[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, line, sizeof(line));
        bl_buf_printf(err, "%s%s", sep, line);
        sep = "; ";
    }
}

/* Appends "what: <openssl errors>\n" to err. Returns BL_ERROR. */
static int bl_pki_fail(bl_buf_t *err, const char *what)
{
    bl_buf_printf(err, "%s: ", what);
    bl_pki_openssl_errors(err);
    bl_buf_puts(err, "\n");
    return BL_ERROR;
}

EVP_PKEY *bl_pki_key_new(bl_buf_t *err)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL)
        bl_pki_fail(err, "cannot generate a P-256 key");
    return key;
}

/* Sets a random positive 128-bit serial (RFC 5280 allows up to 20 bytes). */
static int bl_pki_serial(X509 *crt)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return BL_ERROR;
    r[0] = (unsigned char)((r[0] & 0x7f) | 0x40); /* positive, never shorter than 16 bytes */
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)) != NULL;
    BN_free(bn);
    return ok ? BL_OK : BL_ERROR;
}

/* Fills the subject: one O per organisation, then the CN. */
static int bl_pki_subject(X509 *crt, const bl_pki_req_t *req)
{
    X509_NAME *name = X509_get_subject_name(crt);
    for (size_t i = 0; i < req->norgs; i++)
        if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                        (const unsigned char *)req->orgs[i], -1, -1, 0))
            return BL_ERROR;
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)req->cn,
                                    -1, -1, 0))
        return BL_ERROR;
    return BL_OK;
}

/* Appends one GENERAL_NAME of `type` (GEN_DNS, GEN_URI: IA5 text;
 * GEN_IPADD: textual address) to gens. Returns BL_OK or BL_ERROR. */
static int bl_pki_gen_push(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_STRING *s = NULL;
    if (gn == NULL)
        return BL_ERROR;
    if (type == GEN_IPADD) {
        s = a2i_IPADDRESS(value);
    } else if ((s = ASN1_IA5STRING_new()) != NULL && !ASN1_STRING_set(s, value, -1)) {
        ASN1_STRING_free(s);
        s = NULL;
    }
    if (s == NULL) {
        GENERAL_NAME_free(gn);
        return BL_ERROR;
    }
    GENERAL_NAME_set0_value(gn, type, s);
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        return BL_ERROR;
    }
    return BL_OK;
}

/* Adds subjectAltName built field by field: values are never parsed as
 * OpenSSL config text, so a ',' in a name cannot smuggle another entry. */
static int bl_pki_sans(X509 *crt, const bl_pki_req_t *req)
{
    if (req->ndns + req->nips + req->nuris == 0)
        return BL_OK;
    int rc = BL_ERROR;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL)
        return BL_ERROR;
    for (size_t i = 0; i < req->ndns; i++)
        if (bl_pki_gen_push(gens, GEN_DNS, req->dns[i]) != BL_OK)
            goto end;
    for (size_t i = 0; i < req->nips; i++)
        if (bl_pki_gen_push(gens, GEN_IPADD, req->ips[i]) != BL_OK)
            goto end;
    for (size_t i = 0; i < req->nuris; i++)
        if (bl_pki_gen_push(gens, GEN_URI, req->uris[i]) != BL_OK)
            goto end;
    if (X509_add1_ext_i2d(crt, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1)
        rc = BL_OK;
end:
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Adds one extension from its OpenSSL text form (fixed strings only). */
static int bl_pki_ext(X509 *crt, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return BL_ERROR;
    int ok = X509_add_ext(crt, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? BL_OK : BL_ERROR;
}

static int bl_pki_extensions(X509 *crt, X509 *issuer, const bl_pki_req_t *req)
{
    X509V3_CTX ctx;
    int ca = req->kind == BL_PKI_CA;
    X509V3_set_ctx(&ctx, issuer ? issuer : crt, crt, NULL, NULL, 0);
    if (bl_pki_ext(crt, &ctx, NID_basic_constraints,
                   ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") != BL_OK ||
        bl_pki_ext(crt, &ctx, NID_key_usage,
                   ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                      : "critical,digitalSignature") != BL_OK ||
        bl_pki_ext(crt, &ctx, NID_subject_key_identifier, "hash") != BL_OK)
        return BL_ERROR;
    if (!ca && bl_pki_ext(crt, &ctx, NID_ext_key_usage,
                          req->kind == BL_PKI_SERVER ? "serverAuth" : "clientAuth") != BL_OK)
        return BL_ERROR;
    if (issuer != NULL &&
        bl_pki_ext(crt, &ctx, NID_authority_key_identifier, "keyid:always") != BL_OK)
        return BL_ERROR;
    return bl_pki_sans(crt, req);
}

X509 *bl_pki_issue(const bl_pki_req_t *req, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                   bl_buf_t *err)
{
    X509 *crt = X509_new();
    if (crt == NULL || !X509_set_version(crt, X509_VERSION_3) || bl_pki_serial(crt) != BL_OK ||
        X509_gmtime_adj(X509_getm_notBefore(crt), -300) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(crt), (int)req->days, 0, NULL) == NULL ||
        bl_pki_subject(crt, req) != BL_OK ||
        !X509_set_issuer_name(crt, X509_get_subject_name(issuer ? issuer : crt)) ||
        !X509_set_pubkey(crt, key) || bl_pki_extensions(crt, issuer, req) != BL_OK ||
        X509_sign(crt, issuer ? issuer_key : key, EVP_sha256()) <= 0) {
        bl_buf_printf(err, "cannot issue a certificate for \"%s\": ", req->cn);
        bl_pki_openssl_errors(err);
        bl_buf_puts(err, "\n");
        X509_free(crt);
        return NULL;
    }
    return crt;
}

/* Appends what `bio` (a memory BIO) holds to out. */
static int bl_pki_bio_drain(BIO *bio, bl_buf_t *out)
{
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    return n > 0 ? bl_buf_append(out, p, (size_t)n) : BL_ERROR;
}

int bl_pki_cert_pem(X509 *crt, bl_buf_t *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = BL_ERROR;
    if (bio != NULL && PEM_write_bio_X509(bio, crt))
        rc = bl_pki_bio_drain(bio, out);
    BIO_free(bio);
    return rc;
}

int bl_pki_key_pem(EVP_PKEY *key, bl_buf_t *out)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    int rc = BL_ERROR;
    if (bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        rc = bl_pki_bio_drain(bio, out);
    BIO_free(bio);
    return rc;
}

int bl_pki_write_cert(const char *path, X509 *crt, bl_buf_t *err)
{
    bl_buf_t pem;
    bl_buf_init(&pem, BL_PEM_MAX);
    int rc = bl_pki_cert_pem(crt, &pem);
    if (rc != BL_OK)
        bl_pki_fail(err, path);
    else
        rc = bl_file_write_atomic(path, bl_buf_data(&pem), bl_buf_size(&pem), 0644, err);
    bl_buf_free(&pem);
    return rc;
}

int bl_pki_write_key(const char *path, EVP_PKEY *key, bl_buf_t *err)
{
    bl_buf_t pem;
    bl_buf_init(&pem, BL_PEM_MAX);
    int rc = bl_pki_key_pem(key, &pem);
    if (rc != BL_OK)
        bl_pki_fail(err, path);
    else
        rc = bl_file_write_atomic(path, bl_buf_data(&pem), bl_buf_size(&pem), 0600, err);
    if (pem.base != NULL)
        OPENSSL_cleanse(pem.base, pem.cap);
    bl_buf_free(&pem);
    return rc;
}

/* Reads `path` into a new memory BIO (bounded). Returns it or NULL with a
 * reason in err; *pem holds the bytes and must outlive the BIO. */
static BIO *bl_pki_open(const char *path, bl_buf_t *pem, bl_buf_t *err)
{
    bl_buf_init(pem, BL_PEM_MAX + 1);
    if (bl_file_read(path, BL_PEM_MAX, pem, err) != BL_OK)
        return NULL;
    BIO *bio = BIO_new_mem_buf(bl_buf_data(pem), (int)bl_buf_size(pem));
    if (bio == NULL)
        bl_pki_fail(err, path);
    return bio;
}

/* Passphrase callback that refuses: an encrypted key is an error, never a
 * terminal prompt in the middle of a server start. */
static int bl_pki_no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

X509 *bl_pki_read_cert(const char *path, bl_buf_t *err)
{
    bl_buf_t pem;
    X509 *crt = NULL;
    BIO *bio = bl_pki_open(path, &pem, err);
    if (bio != NULL && (crt = PEM_read_bio_X509(bio, NULL, bl_pki_no_pass, NULL)) == NULL)
        bl_pki_fail(err, path);
    BIO_free(bio);
    bl_buf_free(&pem);
    return crt;
}

EVP_PKEY *bl_pki_read_key(const char *path, bl_buf_t *err)
{
    bl_buf_t pem;
    EVP_PKEY *key = NULL;
    BIO *bio = bl_pki_open(path, &pem, err);
    if (bio != NULL && (key = PEM_read_bio_PrivateKey(bio, NULL, bl_pki_no_pass, NULL)) == NULL)
        bl_pki_fail(err, path);
    BIO_free(bio);
    if (pem.base != NULL)
        OPENSSL_cleanse(pem.base, pem.cap);
    bl_buf_free(&pem);
    return key;
}

int bl_pki_count_certs(const char *path, bl_buf_t *err)
{
    bl_buf_t pem;
    int n = 0;
    X509 *crt;
    BIO *bio = bl_pki_open(path, &pem, err);
    if (bio == NULL) {
        bl_buf_free(&pem);
        return BL_ERROR;
    }
    while ((crt = PEM_read_bio_X509(bio, NULL, bl_pki_no_pass, NULL)) != NULL) {
        X509_free(crt);
        n++;
    }
    /* The loop ends on "no start line" after the last certificate; any
     * other error is a damaged certificate. */
    unsigned long e = ERR_peek_last_error();
    if (n == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) ||
        (e != 0 && ERR_GET_LIB(e) != ERR_LIB_PEM)) {
        bl_buf_printf(err, "%s: %s\n", path,
                      n == 0 ? "no PEM certificate in it" : "a damaged PEM certificate in it");
        n = BL_ERROR;
    }
    ERR_clear_error();
    BIO_free(bio);
    bl_buf_free(&pem);
    return n;
}

int bl_pki_key_matches(X509 *crt, EVP_PKEY *key)
{
    int ok = X509_check_private_key(crt, key);
    ERR_clear_error();
    return ok == 1 ? BL_OK : BL_ERROR;
}
