/*
 * http1.h - strict HTTP/1.1 message parsing per RFC 9112, over memory the
 * caller owns (zero-copy: every bl_str_t points into the caller's buffer).
 *
 * The parser is deliberately unforgiving, because byline sits between an
 * untrusted client and the Kubernetes API server and must never let the two
 * disagree about where a message ends (request smuggling):
 *   - lines end in CRLF; a bare CR or bare LF anywhere is an error;
 *   - obs-fold (a header line starting with SP/HTAB) is an error;
 *   - whitespace between a field name and ':' is an error;
 *   - field names are tokens; values may not hold CTLs other than HTAB;
 *   - only origin-form targets ("/..."), plus "*" for OPTIONS;
 *   - only HTTP/1.0 and HTTP/1.1.
 * Framing (Content-Length / Transfer-Encoding) is judged separately by
 * bl_http1_request_body() / bl_http1_response_body(), after the caller
 * has had a chance to authenticate the sender and audit the rejection.
 */
#ifndef BL_HTTP_HTTP1_H
#define BL_HTTP_HTTP1_H

#include <stdint.h>
#include "core/common.h"

typedef struct {
    bl_str_t name;   /* as sent (case preserved) */
    bl_str_t value;  /* leading/trailing OWS removed */
} bl_http_header_t;

/* Why a message was refused: `status` is the HTTP status to answer with
 * (400, 414, 431, 501, 502...) and `reason` a static, human-readable phrase
 * such as "Content-Length together with Transfer-Encoding". */
typedef struct {
    int status;
    const char *reason;
} bl_http_err_t;

typedef struct {
    bl_str_t method;
    bl_str_t target;            /* origin-form: path and optional ?query */
    int minor_version;          /* 0 or 1 */
    bl_http_header_t *headers;  /* caller-provided array ... */
    size_t num_headers;         /* in: capacity of `headers`; out: count */
} bl_http_request_t;

typedef struct {
    int minor_version;
    int status;                 /* 100..599 */
    bl_str_t reason;
    bl_http_header_t *headers;
    size_t num_headers;         /* in: capacity; out: count */
} bl_http_response_t;

/* Limits the parser enforces besides the header count (capacity above).
 * Line lengths exclude the CRLF. A response exceeding them is a 502. */
#define BL_HTTP_MAX_REQUEST_LINE 8192  /* longer: 414 (also bounds the status-line) */
#define BL_HTTP_MAX_FIELD_LINE   8192  /* longer: 431 */
#define BL_HTTP_MAX_EMPTY_LINES  8     /* leading CRLFs skipped before a request-line; more: 400 */

/* tchar (RFC 9110 section 5.6.2): 1 for the bytes allowed in a token
 * (method, field name, transfer-coding), 0 otherwise. */
extern const unsigned char bl_http_tchar[256];

static inline int bl_http_is_tchar(unsigned char c) { return bl_http_tchar[c]; }

/*
 * Parses a request head (request-line, fields, empty line) at buf[0..len).
 * Returns the number of bytes the head occupies (> 0) when complete,
 * BL_AGAIN when more bytes are needed, or BL_ERROR with *err filled.
 * Leading empty lines (CRLF) before the request-line are skipped and
 * counted in the return value. `len` must be below INT_MAX.
 *
 * req->num_headers is only overwritten (with the count) on success, so a
 * caller may call again with the same *req after BL_AGAIN. Errors and their
 * status: 400 for any syntax error, 414 request-line too long, 431 field
 * line too long or more fields than the capacity, 505 a well-formed
 * HTTP-version other than 1.0/1.1. Limits are checked before the head is
 * complete, so an over-long line fails without waiting for its end.
 * Re-parsing from the start on every read is cheap: an incomplete head is
 * detected by a memchr() walk over its lines before any byte is validated.
 */
int bl_http1_parse_request(const char *buf, size_t len, bl_http_request_t *req,
                           bl_http_err_t *err);

/* Same for a response head (status-line, fields, empty line). Every error
 * is status 502. No leading empty lines are skipped. The reason-phrase may
 * be empty; a status-line without the SP after the code ("HTTP/1.1 200")
 * is tolerated, since it cannot change where the message ends. The caller
 * loops over interim 1xx responses (101 ends HTTP on the connection). */
int bl_http1_parse_response(const char *buf, size_t len, bl_http_response_t *res,
                            bl_http_err_t *err);

typedef enum {
    BL_BODY_NONE = 0,   /* no body */
    BL_BODY_LENGTH,     /* exactly `length` bytes */
    BL_BODY_CHUNKED,    /* chunked transfer coding */
    BL_BODY_CLOSE       /* responses only: until the connection closes */
} bl_body_kind_t;

typedef struct {
    bl_body_kind_t kind;
    uint64_t length;    /* for BL_BODY_LENGTH */
} bl_body_t;

/*
 * Decides how a request body is framed (RFC 9112 section 6). Returns BL_OK
 * with *body set, or BL_ERROR with *err for: Content-Length together with
 * Transfer-Encoding; several Content-Length fields or a list value (even if
 * equal); a Content-Length that is not 1*DIGIT or overflows; any
 * Transfer-Encoding other than exactly "chunked" (501); a missing or repeated
 * Host in HTTP/1.1 (400).
 *
 * In detail: Transfer-Encoding whose codings end in chunked with other
 * codings before it ("gzip, chunked") is 501; every other refused
 * Transfer-Encoding (chunked twice, not last, with parameters, unknown
 * codings, repeated field lines, HTTP/1.0) is 400. A repeated Host or a
 * Host with bytes outside authority syntax is 400 in any version. The
 * CONNECT method is 501 (byline does not tunnel). Content-Length must fit
 * in 63 bits; "Content-Length: 0" gives BL_BODY_LENGTH with length 0.
 */
int bl_http1_request_body(const bl_http_request_t *req, bl_body_t *body, bl_http_err_t *err);

/*
 * Decides how a response body is framed, given the request method that
 * elicited it. HEAD, 1xx, 204 and 304 have no body; CONNECT is not proxied.
 * The same conflicts as for requests are errors (status 502), so a hostile
 * upstream cannot desynchronise the client connection either. A
 * Transfer-Encoding whose last coding is not chunked means BL_BODY_CLOSE.
 * Neither field means BL_BODY_CLOSE.
 *
 * Also 502: a response to CONNECT, an HTTP/1.0 response with
 * Transfer-Encoding (RFC 9112 section 6.1: faulty framing), chunked applied
 * twice, a malformed Transfer-Encoding list.
 */
int bl_http1_response_body(const bl_http_response_t *res, bl_str_t req_method,
                           bl_body_t *body, bl_http_err_t *err);

/* Returns the first header named `name` (ASCII case-insensitive) at or after
 * index *pos, advancing *pos past it so callers can iterate; NULL at the end
 * (then *pos is n). `pos` may be NULL to find the first one. */
const bl_http_header_t *bl_http_find(const bl_http_header_t *h, size_t n, const char *name,
                                     size_t *pos);

/* Returns 1 if a comma-separated field value contains `token`
 * (case-insensitive, OWS-trimmed elements), else 0. An element must equal
 * the token as a whole ("chunked;x" does not contain "chunked"), and commas
 * inside quoted-strings do not split elements. */
int bl_http_has_token(bl_str_t value, const char *token);

/*
 * Incremental decoder for the chunked transfer coding. Chunk extensions
 * and trailer fields are validated and then discarded (byline re-encodes
 * bodies, so nothing the client framed passes through verbatim).
 */
typedef struct {
    int state;           /* private */
    uint64_t remaining;  /* private: bytes left in the current chunk */
    size_t line_len;     /* private: bytes seen on the current size/trailer line */
    size_t trailers;     /* private: trailer lines seen */
    int done;            /* 1 once the last-chunk and trailers are consumed */
} bl_chunked_t;

#define BL_CHUNKED_MAX_LINE     4096  /* chunk-size line incl. extensions */
#define BL_CHUNKED_MAX_TRAILERS 64

/* Prepares a decoder for a new body. */
void bl_chunked_init(bl_chunked_t *c);

/*
 * Consumes bytes from in[0..len). Returns the number of bytes consumed
 * (>= 0; 0 only when len is 0 or the body is done), and sets *data to the
 * payload bytes found within them (a span inside `in`, possibly empty; at
 * most one span per call, so call again with the rest). Returns BL_ERROR
 * with *err on a malformed size, extension, CRLF or trailer, or a chunk
 * size of more than 2^62. Once c->done is 1, the body has ended and any
 * further bytes belong to the next message.
 *
 * BL_ERROR never comes with data: if a call has found data and then meets
 * a bad byte, it returns the bytes before that byte and the next call
 * fails. Errors are status 400 (431 for too many or too long trailer
 * lines); a caller decoding a response body answers its client 502.
 * The size line is 1*16HEXDIG, then optional extensions with BWS only
 * around ';' and '=' (no whitespace before the CRLF).
 */
long bl_chunked_decode(bl_chunked_t *c, const char *in, size_t len, bl_str_t *data,
                       bl_http_err_t *err);

#endif
