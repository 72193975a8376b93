/*
 * sigv4.h - AWS Signature Version 4 (HMAC-SHA256) on OpenSSL 3.
 *
 * Two forms, as the SDKs and aws-c-auth produce them:
 *   - header form: the caller sends X-Amz-Date (always), X-Amz-Security-Token
 *     (when the credentials have a session token), x-amz-content-sha256
 *     (when sign_body) and Authorization (result->authorization);
 *   - query form (a presigned URL): result->query is the whole query string
 *     to send, X-Amz-Algorithm .. X-Amz-Signature included, X-Amz-Expires
 *     from the parameters.
 *
 * The canonical request follows the AWS rules:
 *   - the path is taken as given and URI-encoded once (RFC 3986 unreserved
 *     kept, '/' kept), which is the "double encoding" of non-S3 services when
 *     the given path is already percent-encoded; with normalize_path, dot
 *     segments are removed and empty segments collapsed first;
 *   - query parameters are percent-decoded, re-encoded (unreserved kept,
 *     everything else %XX upper-case), and sorted by key, then value;
 *   - header names are lower-cased, values trimmed and inner runs of
 *     whitespace (SP, HTAB, CR, LF: folded lines too) collapsed to one SP;
 *     repeated names are joined with ',' in the order given; every header
 *     given is signed.
 *
 * Secrets: the signing key lives on the stack and is cleansed; the results
 * may hold the session token (canonical request, query), so
 * bl_sigv4_result_free() cleanses them too. No secret is ever logged.
 */
#ifndef BL_AWS_SIGV4_H
#define BL_AWS_SIGV4_H

#include <time.h>
#include "core/buf.h"
#include "core/common.h"

#define BL_SIGV4_MAX_HEADERS 64
#define BL_SIGV4_MAX_PARAMS  128
#define BL_SIGV4_MAX_TEXT    (64 * 1024)   /* bound of each result buffer */
#define BL_SIGV4_MAX_EXPIRES 604800        /* 7 days, as AWS allows */

typedef struct {
    bl_str_t name;
    bl_str_t value;
} bl_sigv4_header_t;

/* Borrowed NUL-terminated credential strings; session_token NULL or "" for none. */
typedef struct {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
} bl_sigv4_creds_t;

typedef struct {
    const char *method;                 /* "GET", "POST" */
    bl_str_t path;                      /* as sent; empty means "/" */
    bl_str_t query;                     /* without '?'; may be empty */
    const bl_sigv4_header_t *headers;   /* must include Host */
    size_t num_headers;
    const void *body;
    size_t body_len;
    const char *payload_hash;           /* NULL: hex SHA-256 of the body */
} bl_sigv4_request_t;

typedef enum { BL_SIGV4_HEADER = 0, BL_SIGV4_QUERY = 1 } bl_sigv4_form_t;

typedef struct {
    bl_sigv4_form_t form;
    const char *region;
    const char *service;
    time_t when;                 /* the signing time */
    unsigned expires;            /* query form: X-Amz-Expires, 1..604800 */
    int normalize_path;          /* remove dot segments and empty segments */
    int sign_body;               /* header form: add and sign x-amz-content-sha256 */
    int omit_session_token;      /* the token is sent but not signed (added after) */
} bl_sigv4_params_t;

typedef struct {
    char amz_date[17];           /* YYYYMMDDTHHMMSSZ */
    char payload_hash[65];       /* hex */
    char signature[65];          /* hex */
    bl_buf_t canonical_request;
    bl_buf_t string_to_sign;
    bl_buf_t signed_headers;     /* "host;x-amz-date" */
    bl_buf_t authorization;      /* header form: the Authorization value */
    bl_buf_t query;              /* query form: the query string to send */
} bl_sigv4_result_t;

/* Prepares an empty result (no allocation). */
void bl_sigv4_result_init(bl_sigv4_result_t *r);

/* Cleanses and releases the result's buffers; it may be reused after init. */
void bl_sigv4_result_free(bl_sigv4_result_t *r);

/*
 * Signs `req` with `creds` as `p` says, filling `out` (initialised by the
 * caller; freed by the caller with bl_sigv4_result_free even on error).
 * Returns BL_OK, or BL_ERROR with a message in err[0..errlen) that never
 * contains a secret (too many headers or parameters, a bad %-escape in the
 * query, an empty region/service, expires out of range, a bound exceeded).
 */
int bl_sigv4_sign(const bl_sigv4_request_t *req, const bl_sigv4_creds_t *creds,
                  const bl_sigv4_params_t *p, bl_sigv4_result_t *out, char *err, size_t errlen);

/* Appends bytes `s` URI-encoded: A-Z a-z 0-9 - . _ ~ kept (and '/' when
 * keep_slash), every other byte %XX with upper-case hex. Returns BL_OK or
 * BL_ERROR (bound). */
int bl_sigv4_uri_encode(bl_buf_t *b, const char *s, size_t n, int keep_slash);

/* Writes the lower-case hex SHA-256 of p[0..n) and a NUL into hex[65].
 * Returns BL_OK or BL_ERROR. */
int bl_sigv4_sha256_hex(const void *p, size_t n, char hex[65]);

/* Derives the signing key HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region),
 * service), "aws4_request") into key[32]; `date` is YYYYMMDD. The caller
 * cleanses `key`. Returns BL_OK or BL_ERROR. */
int bl_sigv4_signing_key(const char *secret, const char *date, const char *region,
                         const char *service, unsigned char key[32]);

#endif
