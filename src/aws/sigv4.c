/* sigv4.c - AWS Signature Version 4: canonical request, string to sign,
 * signing key, Authorization header and presigned query. See sigv4.h. */
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "aws/sigv4.h"

#define BL_SIGV4_ALGO "AWS4-HMAC-SHA256"

/* One query parameter or header: offsets into a pool (the pool may move). */
typedef struct {
    size_t koff, klen, voff, vlen;
    size_t order;   /* position given, to keep repeated headers in order */
} bl_sigv4_kv_t;

/* Writes "sigv4: msg" into err. Returns BL_ERROR. */
static int sv_fail(char *err, size_t errlen, const char *msg)
{
    if (errlen)
        snprintf(err, errlen, "sigv4: %s", msg);
    return BL_ERROR;
}

void bl_sigv4_result_init(bl_sigv4_result_t *r)
{
    memset(r, 0, sizeof(*r));
    bl_buf_init(&r->canonical_request, BL_SIGV4_MAX_TEXT);
    bl_buf_init(&r->string_to_sign, BL_SIGV4_MAX_TEXT);
    bl_buf_init(&r->signed_headers, BL_SIGV4_MAX_TEXT);
    bl_buf_init(&r->authorization, BL_SIGV4_MAX_TEXT);
    bl_buf_init(&r->query, BL_SIGV4_MAX_TEXT);
}

/* Cleanses the whole allocation (the session token may be in it), then frees. */
static void sv_buf_wipe(bl_buf_t *b)
{
    if (b->base)
        OPENSSL_cleanse(b->base, b->cap);
    bl_buf_free(b);
}

void bl_sigv4_result_free(bl_sigv4_result_t *r)
{
    sv_buf_wipe(&r->canonical_request);
    sv_buf_wipe(&r->string_to_sign);
    sv_buf_wipe(&r->signed_headers);
    sv_buf_wipe(&r->authorization);
    sv_buf_wipe(&r->query);
    OPENSSL_cleanse(r->signature, sizeof(r->signature));
}

/* Returns 1 for the RFC 3986 unreserved bytes SigV4 leaves unencoded. */
static int sv_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

int bl_sigv4_uri_encode(bl_buf_t *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (sv_unreserved(c) || (keep_slash && c == '/')) {
            if (bl_buf_append(b, &s[i], 1) < 0)
                return BL_ERROR;
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            if (bl_buf_append(b, e, 3) < 0)
                return BL_ERROR;
        }
    }
    return BL_OK;
}

/* Writes n bytes as lower-case hex and a NUL into out[2n+1]. */
static void sv_hex(const unsigned char *md, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

int bl_sigv4_sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p ? p : "", n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return BL_ERROR;
    sv_hex(md, 32, hex);
    return BL_OK;
}

/* HMAC-SHA256 of msg under key into out[32]. Returns BL_OK or BL_ERROR. */
static int sv_hmac(const void *key, size_t klen, const char *msg, size_t mlen,
                   unsigned char out[32])
{
    unsigned int olen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &olen) ||
        olen != 32)
        return BL_ERROR;
    return BL_OK;
}

int bl_sigv4_signing_key(const char *secret, const char *date, const char *region,
                         const char *service, unsigned char key[32])
{
    unsigned char k[32];
    char first[256];
    int rc = BL_ERROR;
    int n = snprintf(first, sizeof(first), "AWS4%s", secret);
    if (n < 0 || (size_t)n >= sizeof(first))
        goto end;
    if (sv_hmac(first, (size_t)n, date, strlen(date), k) < 0 ||
        sv_hmac(k, 32, region, strlen(region), k) < 0 ||
        sv_hmac(k, 32, service, strlen(service), k) < 0 ||
        sv_hmac(k, 32, "aws4_request", 12, key) < 0)
        goto end;
    rc = BL_OK;
end:
    OPENSSL_cleanse(first, sizeof(first));
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

/* Appends the canonical URI of `path`: normalised when asked, then encoded.
 * Returns BL_OK or BL_ERROR (bound). */
static int sv_canonical_path(bl_buf_t *b, bl_str_t path, int normalize)
{
    if (path.len == 0)
        return bl_buf_puts(b, "/");
    if (!normalize)
        return bl_sigv4_uri_encode(b, path.p, path.len, 1);
    /* Segments kept so far: start offsets within `b` after the leading '/'. */
    size_t base = bl_buf_size(b), stack[256], depth = 0;
    int trailing = 0;
    if (bl_buf_puts(b, "/") < 0)
        return BL_ERROR;
    for (size_t i = 0; i < path.len;) {
        size_t j = i;
        while (j < path.len && path.p[j] != '/')
            j++;
        bl_str_t seg = { path.p + i, j - i };
        trailing = j == path.len ? 0 : 1;
        if (seg.len == 0 || bl_str_eq(seg, ".")) {
            trailing = 1;
        } else if (bl_str_eq(seg, "..")) {
            if (depth > 0)
                b->len = b->off + stack[--depth];
            trailing = 1;
        } else {
            if (depth == BL_ARRAY_LEN(stack))
                return BL_ERROR;
            stack[depth++] = bl_buf_size(b);
            if ((bl_buf_size(b) > base + 1 && bl_buf_puts(b, "/") < 0) ||
                bl_sigv4_uri_encode(b, seg.p, seg.len, 0) < 0)
                return BL_ERROR;
            trailing = j < path.len;
        }
        i = j + 1;
    }
    if (trailing && bl_buf_size(b) > base + 1)
        return bl_buf_puts(b, "/");
    return BL_OK;
}

/* Percent-decodes s into out (cap bytes). Returns the length or BL_ERROR. */
static long sv_pct_decode(bl_str_t s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= s.len || (hi = bl_hexval((unsigned char)s.p[i + 1])) < 0 ||
                (lo = bl_hexval((unsigned char)s.p[i + 2])) < 0)
                return BL_ERROR;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n == cap)
            return BL_ERROR;
        out[n++] = c;
    }
    return (long)n;
}

/* Adds one decoded-then-encoded parameter to the pool and list. */
static int sv_param_add(bl_buf_t *pool, bl_sigv4_kv_t *kv, size_t *n, bl_str_t k, bl_str_t v,
                        int decode)
{
    char tmp[8192];
    if (*n == BL_SIGV4_MAX_PARAMS)
        return BL_ERROR;
    bl_sigv4_kv_t *e = &kv[*n];
    bl_str_t parts[2] = { k, v };
    for (int w = 0; w < 2; w++) {
        long dl = (long)parts[w].len;
        const char *src = parts[w].p;
        if (decode) {
            if ((dl = sv_pct_decode(parts[w], tmp, sizeof(tmp))) < 0)
                return BL_ERROR;
            src = tmp;
        }
        size_t off = bl_buf_size(pool);
        if (bl_sigv4_uri_encode(pool, src, (size_t)dl, 0) < 0)
            return BL_ERROR;
        if (w == 0) {
            e->koff = off;
            e->klen = bl_buf_size(pool) - off;
        } else {
            e->voff = off;
            e->vlen = bl_buf_size(pool) - off;
        }
    }
    e->order = (*n)++;
    if (decode)
        OPENSSL_cleanse(tmp, sizeof(tmp));
    return BL_OK;
}

/* Splits a raw query into decoded/re-encoded parameters. */
static int sv_parse_query(bl_buf_t *pool, bl_sigv4_kv_t *kv, size_t *n, bl_str_t q)
{
    for (size_t i = 0; i < q.len;) {
        size_t j = i;
        while (j < q.len && q.p[j] != '&')
            j++;
        if (j > i) {
            bl_str_t pair = { q.p + i, j - i };
            const char *eq = memchr(pair.p, '=', pair.len);
            bl_str_t k = pair, v = BL_STR("");
            if (eq) {
                k.len = (size_t)(eq - pair.p);
                v = (bl_str_t){ eq + 1, pair.len - k.len - 1 };
            }
            if (sv_param_add(pool, kv, n, k, v, 1) < 0)
                return BL_ERROR;
        }
        i = j + 1;
    }
    return BL_OK;
}

/* Byte-wise comparison, a shorter prefix first. Returns <0, 0 or >0. */
static int sv_cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, BL_MIN(an, bn));
    return c ? c : (an < bn ? -1 : an > bn);
}

/* Insertion sort (stable; n is bounded and small) by key, then value when
 * by_value, else by the order given. */
static void sv_sort(const char *pool, bl_sigv4_kv_t *kv, size_t n, int by_value)
{
    for (size_t i = 1; i < n; i++) {
        bl_sigv4_kv_t x = kv[i];
        size_t j = i;
        while (j > 0) {
            const bl_sigv4_kv_t *y = &kv[j - 1];
            int c = sv_cmp_bytes(pool + y->koff, y->klen, pool + x.koff, x.klen);
            if (c == 0)
                c = by_value ? sv_cmp_bytes(pool + y->voff, y->vlen, pool + x.voff, x.vlen)
                             : (y->order > x.order ? 1 : -1);
            if (c <= 0)
                break;
            kv[j] = kv[j - 1];
            j--;
        }
        kv[j] = x;
    }
}

/* Appends "k=v&k=v" from the sorted list. */
static int sv_put_query(bl_buf_t *b, const bl_buf_t *pool, const bl_sigv4_kv_t *kv, size_t n)
{
    const char *p = bl_buf_data(pool);
    for (size_t i = 0; i < n; i++) {
        if ((i && bl_buf_puts(b, "&") < 0) || bl_buf_append(b, p + kv[i].koff, kv[i].klen) < 0 ||
            bl_buf_puts(b, "=") < 0 || bl_buf_append(b, p + kv[i].voff, kv[i].vlen) < 0)
            return BL_ERROR;
    }
    return BL_OK;
}

/* Adds a header with its name lower-cased and its value canonicalised. */
static int sv_header_add(bl_buf_t *pool, bl_sigv4_kv_t *kv, size_t *n, bl_str_t name,
                         bl_str_t value)
{
    if (*n == BL_SIGV4_MAX_HEADERS || name.len == 0)
        return BL_ERROR;
    bl_sigv4_kv_t *e = &kv[*n];
    e->koff = bl_buf_size(pool);
    for (size_t i = 0; i < name.len; i++) {
        char c = name.p[i];
        c = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        if (bl_buf_append(pool, &c, 1) < 0)
            return BL_ERROR;
    }
    e->klen = name.len;
    e->voff = bl_buf_size(pool);
    int space = 0, any = 0;
    for (size_t i = 0; i < value.len; i++) {
        char c = value.p[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = any;
            continue;
        }
        if ((space && bl_buf_puts(pool, " ") < 0) || bl_buf_append(pool, &c, 1) < 0)
            return BL_ERROR;
        space = 0;
        any = 1;
    }
    e->vlen = bl_buf_size(pool) - e->voff;
    e->order = (*n)++;
    return BL_OK;
}

/* Appends the canonical header lines (duplicates joined with ',') to `cr`
 * and the signed-header list to `sh`. `kv` must be sorted. */
static int sv_put_headers(bl_buf_t *cr, bl_buf_t *sh, const bl_buf_t *pool,
                          const bl_sigv4_kv_t *kv, size_t n)
{
    const char *p = bl_buf_data(pool);
    for (size_t i = 0; i < n; i++) {
        int same = i > 0 && sv_cmp_bytes(p + kv[i - 1].koff, kv[i - 1].klen, p + kv[i].koff,
                                         kv[i].klen) == 0;
        if (same) {
            if (bl_buf_puts(cr, ",") < 0)
                return BL_ERROR;
        } else if ((i && bl_buf_puts(cr, "\n") < 0) || (i && bl_buf_puts(sh, ";") < 0) ||
                   bl_buf_append(sh, p + kv[i].koff, kv[i].klen) < 0 ||
                   bl_buf_append(cr, p + kv[i].koff, kv[i].klen) < 0 || bl_buf_puts(cr, ":") < 0)
            return BL_ERROR;
        if (bl_buf_append(cr, p + kv[i].voff, kv[i].vlen) < 0)
            return BL_ERROR;
    }
    return n ? bl_buf_puts(cr, "\n") : BL_OK;
}

typedef struct {
    const bl_sigv4_request_t *req;
    const bl_sigv4_creds_t *creds;
    const bl_sigv4_params_t *p;
    bl_sigv4_result_t *out;
    char date[9];
    char scope[256];
    int token;          /* the token is present */
    int token_signed;   /* ... and goes into what is signed */
    bl_buf_t pool;
    bl_sigv4_kv_t hdr[BL_SIGV4_MAX_HEADERS];
    size_t nhdr;
    bl_sigv4_kv_t qp[BL_SIGV4_MAX_PARAMS];
    size_t nqp;
} bl_sigv4_ctx_t;

/* Collects and sorts the headers to sign into c->hdr. */
static int sv_collect_headers(bl_sigv4_ctx_t *c)
{
    const bl_sigv4_request_t *r = c->req;
    for (size_t i = 0; i < r->num_headers; i++)
        if (sv_header_add(&c->pool, c->hdr, &c->nhdr, r->headers[i].name, r->headers[i].value) < 0)
            return BL_ERROR;
    if (c->p->form == BL_SIGV4_HEADER) {
        bl_str_t d = { c->out->amz_date, 16 };
        if (sv_header_add(&c->pool, c->hdr, &c->nhdr, BL_STR("x-amz-date"), d) < 0)
            return BL_ERROR;
        if (c->token_signed) {
            bl_str_t t = { c->creds->session_token, strlen(c->creds->session_token) };
            if (sv_header_add(&c->pool, c->hdr, &c->nhdr, BL_STR("x-amz-security-token"), t) < 0)
                return BL_ERROR;
        }
        if (c->p->sign_body) {
            bl_str_t h = { c->out->payload_hash, strlen(c->out->payload_hash) };
            if (sv_header_add(&c->pool, c->hdr, &c->nhdr, BL_STR("x-amz-content-sha256"), h) < 0)
                return BL_ERROR;
        }
    }
    sv_sort(bl_buf_data(&c->pool), c->hdr, c->nhdr, 0);
    return BL_OK;
}

/* Adds the X-Amz-* presigning parameters (query form) to c->qp. */
static int sv_presign_params(bl_sigv4_ctx_t *c)
{
    char cred[512], exp[16];
    int n = snprintf(cred, sizeof(cred), "%s/%s", c->creds->access_key_id, c->scope);
    if (n < 0 || (size_t)n >= sizeof(cred))
        return BL_ERROR;
    snprintf(exp, sizeof(exp), "%u", c->p->expires);
    const char *sh = bl_buf_cstr(&c->out->signed_headers);
    if (sh == NULL)
        return BL_ERROR;
    struct { const char *k, *v; } add[] = {
        { "X-Amz-Algorithm", BL_SIGV4_ALGO }, { "X-Amz-Credential", cred },
        { "X-Amz-Date", c->out->amz_date }, { "X-Amz-Expires", exp },
        { "X-Amz-SignedHeaders", sh },
        { "X-Amz-Security-Token", c->token_signed ? c->creds->session_token : NULL },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(add); i++) {
        if (add[i].v == NULL)
            continue;
        bl_str_t k = { add[i].k, strlen(add[i].k) }, v = { add[i].v, strlen(add[i].v) };
        if (sv_param_add(&c->pool, c->qp, &c->nqp, k, v, 0) < 0)
            return BL_ERROR;
    }
    return BL_OK;
}

/* Builds out->canonical_request (and out->signed_headers). */
static int sv_canonical_request(bl_sigv4_ctx_t *c)
{
    bl_buf_t *cr = &c->out->canonical_request, *sh = &c->out->signed_headers;
    if (sv_collect_headers(c) < 0)
        return BL_ERROR;
    bl_buf_t scratch;
    bl_buf_init(&scratch, BL_SIGV4_MAX_TEXT);
    int rc = sv_put_headers(&scratch, sh, &c->pool, c->hdr, c->nhdr);
    if (rc == BL_OK && sv_parse_query(&c->pool, c->qp, &c->nqp, c->req->query) < 0)
        rc = BL_ERROR;
    if (rc == BL_OK && c->p->form == BL_SIGV4_QUERY && sv_presign_params(c) < 0)
        rc = BL_ERROR;
    if (rc == BL_OK) {
        sv_sort(bl_buf_data(&c->pool), c->qp, c->nqp, 1);
        if (bl_buf_puts(cr, c->req->method) < 0 || bl_buf_puts(cr, "\n") < 0 ||
            sv_canonical_path(cr, c->req->path, c->p->normalize_path) < 0 ||
            bl_buf_puts(cr, "\n") < 0 || sv_put_query(cr, &c->pool, c->qp, c->nqp) < 0 ||
            bl_buf_puts(cr, "\n") < 0 ||
            bl_buf_append(cr, bl_buf_data(&scratch), bl_buf_size(&scratch)) < 0 ||
            bl_buf_puts(cr, "\n") < 0 ||
            bl_buf_append(cr, bl_buf_data(sh), bl_buf_size(sh)) < 0 ||
            bl_buf_puts(cr, "\n") < 0 || bl_buf_puts(cr, c->out->payload_hash) < 0)
            rc = BL_ERROR;
    }
    sv_buf_wipe(&scratch);
    return rc;
}

/* Builds the string to sign and the signature. */
static int sv_sign(bl_sigv4_ctx_t *c)
{
    bl_sigv4_result_t *o = c->out;
    char crh[65];
    unsigned char key[32], sig[32];
    int rc = BL_ERROR;
    if (bl_sigv4_sha256_hex(bl_buf_data(&o->canonical_request), bl_buf_size(&o->canonical_request),
                            crh) < 0 ||
        bl_buf_printf(&o->string_to_sign, "%s\n%s\n%s\n%s", BL_SIGV4_ALGO, o->amz_date, c->scope,
                      crh) < 0)
        goto end;
    if (bl_sigv4_signing_key(c->creds->secret_access_key, c->date, c->p->region, c->p->service,
                             key) < 0 ||
        sv_hmac(key, 32, bl_buf_data(&o->string_to_sign), bl_buf_size(&o->string_to_sign), sig) < 0)
        goto end;
    sv_hex(sig, 32, o->signature);
    rc = BL_OK;
end:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* Builds the Authorization value or the query string to send. */
static int sv_finish(bl_sigv4_ctx_t *c)
{
    bl_sigv4_result_t *o = c->out;
    if (c->p->form == BL_SIGV4_HEADER)
        return bl_buf_printf(&o->authorization, "%s Credential=%s/%s, SignedHeaders=%.*s, "
                             "Signature=%s", BL_SIGV4_ALGO, c->creds->access_key_id, c->scope,
                             (int)bl_buf_size(&o->signed_headers), bl_buf_data(&o->signed_headers),
                             o->signature);
    if (sv_put_query(&o->query, &c->pool, c->qp, c->nqp) < 0 ||
        bl_buf_printf(&o->query, "&X-Amz-Signature=%s", o->signature) < 0)
        return BL_ERROR;
    if (c->token && !c->token_signed) {
        const char *t = c->creds->session_token;
        if (bl_buf_puts(&o->query, "&X-Amz-Security-Token=") < 0 ||
            bl_sigv4_uri_encode(&o->query, t, strlen(t), 0) < 0)
            return BL_ERROR;
    }
    return BL_OK;
}

/* Checks the parameters; sets the dates, scope and payload hash. */
static int sv_prepare(bl_sigv4_ctx_t *c, char *err, size_t errlen)
{
    const bl_sigv4_params_t *p = c->p;
    struct tm tm;
    if (!p->region || !*p->region || !p->service || !*p->service || !c->req->method ||
        !c->creds->access_key_id || !*c->creds->access_key_id || !c->creds->secret_access_key)
        return sv_fail(err, errlen, "region, service, method and credentials are required");
    if (p->form == BL_SIGV4_QUERY && (p->expires < 1 || p->expires > BL_SIGV4_MAX_EXPIRES))
        return sv_fail(err, errlen, "X-Amz-Expires must be 1..604800 seconds");
    if (gmtime_r(&p->when, &tm) == NULL ||
        strftime(c->out->amz_date, sizeof(c->out->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return sv_fail(err, errlen, "the signing time is out of range");
    memcpy(c->date, c->out->amz_date, 8);
    c->date[8] = '\0';
    int n = snprintf(c->scope, sizeof(c->scope), "%s/%s/%s/aws4_request", c->date, p->region,
                     p->service);
    if (n < 0 || (size_t)n >= sizeof(c->scope))
        return sv_fail(err, errlen, "region or service too long");
    c->token = c->creds->session_token && *c->creds->session_token;
    c->token_signed = c->token && !p->omit_session_token;
    if (c->req->payload_hash) {
        if (strlen(c->req->payload_hash) >= sizeof(c->out->payload_hash))
            return sv_fail(err, errlen, "payload hash too long");
        snprintf(c->out->payload_hash, sizeof(c->out->payload_hash), "%s", c->req->payload_hash);
    } else if (bl_sigv4_sha256_hex(c->req->body, c->req->body_len, c->out->payload_hash) < 0) {
        return sv_fail(err, errlen, "SHA-256 failed");
    }
    return BL_OK;
}

int bl_sigv4_sign(const bl_sigv4_request_t *req, const bl_sigv4_creds_t *creds,
                  const bl_sigv4_params_t *p, bl_sigv4_result_t *out, char *err, size_t errlen)
{
    bl_sigv4_ctx_t *c = calloc(1, sizeof(*c));
    int rc = BL_ERROR;
    if (c == NULL)
        return sv_fail(err, errlen, "out of memory");
    c->req = req;
    c->creds = creds;
    c->p = p;
    c->out = out;
    bl_buf_init(&c->pool, BL_SIGV4_MAX_TEXT);
    if (sv_prepare(c, err, errlen) < 0)
        goto end;
    if (sv_canonical_request(c) < 0) {
        sv_fail(err, errlen, "bad request to sign (too many headers or parameters, a bad "
                             "%-escape in the query, or too long)");
        goto end;
    }
    if (sv_sign(c) < 0 || sv_finish(c) < 0) {
        sv_fail(err, errlen, "signing failed");
        goto end;
    }
    rc = BL_OK;
end:
    sv_buf_wipe(&c->pool);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
    return rc;
}
