/* sts.c - STS AssumeRole / AssumeRoleWithWebIdentity. See sts.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <malloc.h>
#include <expat.h>
#include <openssl/crypto.h>
#include "aws/http.h"
#include "aws/sts.h"

#define BL_STS_XML_DEPTH 8
#define BL_STS_XML_TEXT  (16 * 1024)
#define BL_STS_MAX_BODY  (256 * 1024)

/* Writes a message into err. Returns BL_ERROR. */
static int sf(char *err, size_t errlen, const char *fmt, ...) BL_PRINTF(3, 4);
static int sf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return BL_ERROR;
}

/* Returns 1 if s is a region name: [a-z0-9-], 1..32 bytes. */
static int region_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int bl_aws_sts_endpoint(const char *region, char *out, size_t cap, char *err, size_t errlen)
{
    const char *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    const char *svc = getenv("AWS_ENDPOINT_URL_STS"), *all = getenv("AWS_ENDPOINT_URL");
    const char *ep = NULL;
    int n;
    if (!ign || strcasecmp(ign, "true") != 0)
        ep = svc && *svc ? svc : (all && *all ? all : NULL);
    if (!region_ok(region))
        return sf(err, errlen, "a valid AWS region is required (e.g. us-east-1)");
    if (ep)
        n = snprintf(out, cap, "%s", ep);
    else
        n = snprintf(out, cap, "https://sts.%s.amazonaws.com%s", region,
                     strncmp(region, "cn-", 3) ? "" : ".cn");
    if (n < 0 || (size_t)n >= cap)
        return sf(err, errlen, "the STS endpoint URL is too long");
    return BL_OK;
}

int bl_aws_sts_session_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_+=,.@-", c)))
            return 0;
    }
    return 1;
}

/* ---- XML (expat) ---- */

typedef struct {
    XML_Parser p;
    const char *action;
    int depth;
    char names[BL_STS_XML_DEPTH][64];
    bl_buf_t text;
    int bad;
    int error;                 /* the root is ErrorResponse */
    bl_aws_creds_t *out;
    char code[128], message[512], exp[64];
    int have_id, have_sk, have_tok;
} bl_sts_xml_t;

/* A DOCTYPE (entities, external references) has no place in an STS answer: stop. */
static void XMLCALL x_doctype(void *ud, const XML_Char *name, const XML_Char *sys,
                              const XML_Char *pub, int internal)
{
    bl_sts_xml_t *x = ud;
    (void)name, (void)sys, (void)pub, (void)internal;
    x->bad = 1;
    XML_StopParser(x->p, XML_FALSE);
}

/* Pushes the element name (deeper than 8 levels only counted) and starts its text. */
static void XMLCALL x_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    bl_sts_xml_t *x = ud;
    (void)attrs;
    if (x->depth < BL_STS_XML_DEPTH)
        snprintf(x->names[x->depth], sizeof(x->names[0]), "%s", name);
    x->depth++;
    if (bl_buf_data(&x->text))
        OPENSSL_cleanse(bl_buf_data(&x->text), bl_buf_size(&x->text));
    bl_buf_reset(&x->text);
}

/* Collects an element's text, bounded; over the bound stops the parse. */
static void XMLCALL x_text(void *ud, const XML_Char *s, int len)
{
    bl_sts_xml_t *x = ud;
    if (bl_buf_append(&x->text, s, (size_t)len) < 0) {
        x->bad = 1;
        XML_StopParser(x->p, XML_FALSE);
    }
}

/* Returns 1 if the element stack is exactly root/mid/leaf-parent/leaf. */
static int x_at(const bl_sts_xml_t *x, const char *a, const char *b, const char *c, const char *d)
{
    const char *want[4] = { a, b, c, d };
    int n = d ? 4 : 3;
    if (x->depth != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(x->names[i], want[i]))
            return 0;
    return 1;
}

/* Copies the current text into dst[cap]; too long marks the document bad. */
static int x_take(bl_sts_xml_t *x, char *dst, size_t cap)
{
    bl_str_t t = bl_str_trim((bl_str_t){ bl_buf_data(&x->text), bl_buf_size(&x->text) });
    if (t.len >= cap) {
        x->bad = 1;
        return 0;
    }
    if (t.len)
        memcpy(dst, t.p, t.len);
    dst[t.len] = '\0';
    return t.len > 0;
}

/* Takes the text of the leaves we want, by their exact path. */
static void XMLCALL x_end(void *ud, const XML_Char *name)
{
    bl_sts_xml_t *x = ud;
    char resp[96], res[96];
    (void)name;
    snprintf(resp, sizeof(resp), "%sResponse", x->action);
    snprintf(res, sizeof(res), "%sResult", x->action);
    bl_aws_creds_t *o = x->out;
    if (x->depth == 1)
        x->error = !strcmp(x->names[0], "ErrorResponse");
    if (x_at(x, resp, res, "Credentials", "AccessKeyId"))
        x->have_id = x_take(x, o->access_key_id, sizeof(o->access_key_id));
    else if (x_at(x, resp, res, "Credentials", "SecretAccessKey"))
        x->have_sk = x_take(x, o->secret_access_key, sizeof(o->secret_access_key));
    else if (x_at(x, resp, res, "Credentials", "SessionToken"))
        x->have_tok = x_take(x, o->session_token, sizeof(o->session_token));
    else if (x_at(x, resp, res, "Credentials", "Expiration"))
        x_take(x, x->exp, sizeof(x->exp));
    else if (x_at(x, resp, res, "AssumedRoleUser", "Arn"))
        x_take(x, o->arn, sizeof(o->arn));
    else if (x_at(x, "ErrorResponse", "Error", "Code", NULL))
        x_take(x, x->code, sizeof(x->code));
    else if (x_at(x, "ErrorResponse", "Error", "Message", NULL))
        x_take(x, x->message, sizeof(x->message));
    if (bl_buf_data(&x->text))
        OPENSSL_cleanse(bl_buf_data(&x->text), bl_buf_size(&x->text));
    bl_buf_reset(&x->text);
    x->depth--;
}

/* Keeps printable ASCII only (an error text from the network goes to a terminal). */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

/* Judges the parsed document. */
static int x_result(bl_sts_xml_t *x, char *err, size_t errlen)
{
    if (x->error) {
        printable(x->code);
        printable(x->message);
        sf(err, errlen, "%s: %s", x->code[0] ? x->code : "UnknownError", x->message);
        return BL_DECLINED;
    }
    if (!x->have_id || !x->have_sk || !x->have_tok)
        return sf(err, errlen, "the STS %s response lacks credentials", x->action);
    if (bl_aws_parse_time(x->exp, strlen(x->exp), &x->out->expiration) < 0)
        return sf(err, errlen, "the STS %s response has no valid Expiration", x->action);
    return BL_OK;
}

/* expat's memory: every block is cleansed before it is freed, since the
 * parser's buffers hold the response, secret key and session token included. */
static void x_free(void *p)
{
    if (p) {
        OPENSSL_cleanse(p, malloc_usable_size(p));
        free(p);
    }
}

/* realloc() that never leaves a cleartext copy behind: copy, then cleanse the old. */
static void *x_realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    void *q = n ? malloc(n) : NULL;
    if (q)
        memcpy(q, p, BL_MIN(n, malloc_usable_size(p)));
    if (q || n == 0)
        x_free(p);
    return q;
}

static const XML_Memory_Handling_Suite bl_sts_xml_mem = { malloc, x_realloc, x_free };

int bl_aws_sts_parse(const char *xml, size_t len, const char *action, bl_aws_creds_t *out,
                     char *err, size_t errlen)
{
    bl_sts_xml_t *x = calloc(1, sizeof(*x));
    int rc = BL_ERROR;
    if (!x || len > INT32_MAX)
        return sf(err, errlen, "out of memory or document too large");
    x->action = action;
    x->out = out;
    bl_aws_creds_clear(out);
    bl_buf_init(&x->text, BL_STS_XML_TEXT);
    if ((x->p = XML_ParserCreate_MM("UTF-8", &bl_sts_xml_mem, NULL)) == NULL) {
        sf(err, errlen, "out of memory");
        goto end;
    }
    XML_SetUserData(x->p, x);
    XML_SetElementHandler(x->p, x_start, x_end);
    XML_SetCharacterDataHandler(x->p, x_text);
    XML_SetStartDoctypeDeclHandler(x->p, x_doctype);
    if (XML_Parse(x->p, xml, (int)len, XML_TRUE) != XML_STATUS_OK || x->bad) {
        sf(err, errlen, "the STS response is not well-formed XML (or has a DOCTYPE, or a value "
           "too long)");
        goto end;
    }
    rc = x_result(x, err, errlen);
end:
    if (rc != BL_OK)
        bl_aws_creds_clear(out);
    if (x->p)
        XML_ParserFree(x->p);
    if (x->text.base)
        OPENSSL_cleanse(x->text.base, x->text.cap);
    bl_buf_free(&x->text);
    OPENSSL_cleanse(x, sizeof(*x));
    free(x);
    return rc;
}

/* ---- calls ---- */

/* Appends "&name=" + the encoded value to a form body. */
static int form_add(bl_buf_t *b, const char *name, const char *value)
{
    if (bl_buf_printf(b, "%s%s=", bl_buf_size(b) ? "&" : "", name) < 0)
        return BL_ERROR;
    return bl_sigv4_uri_encode(b, value, strlen(value), 0);
}

/* Builds the form body of an STS action. */
static int sts_form(bl_buf_t *b, const char *action, const char *role, const char *session,
                    const char *web_token, int duration_s)
{
    char dur[16];
    snprintf(dur, sizeof(dur), "%d", duration_s > 0 ? duration_s : BL_STS_DEFAULT_DURATION);
    if (form_add(b, "Action", action) < 0 || form_add(b, "Version", BL_STS_VERSION) < 0 ||
        form_add(b, "RoleArn", role) < 0 || form_add(b, "RoleSessionName", session) < 0 ||
        form_add(b, "DurationSeconds", dur) < 0 ||
        (web_token && form_add(b, "WebIdentityToken", web_token) < 0))
        return BL_ERROR;
    return BL_OK;
}

#define BL_STS_CTYPE "application/x-www-form-urlencoded; charset=utf-8"

/* Signs (when `base`) and sends the POST; fills resp. */
static int sts_post(const bl_aws_url_t *u, const bl_aws_creds_t *base, const char *region,
                    const bl_buf_t *body, bl_aws_http_resp_t *resp, char *err, size_t errlen)
{
    bl_sigv4_header_t sh[2] = { { BL_STR("Host"), { u->authority, strlen(u->authority) } },
                                { BL_STR("Content-Type"), BL_STR(BL_STS_CTYPE) } };
    bl_sigv4_request_t sr = { .method = "POST", .path = { u->path, strlen(u->path) },
                              .query = { u->query, strlen(u->query) }, .headers = sh,
                              .num_headers = 2, .body = bl_buf_data(body),
                              .body_len = bl_buf_size(body) };
    bl_sigv4_params_t sp = { .form = BL_SIGV4_HEADER, .region = region, .service = "sts",
                             .when = time(NULL) };
    bl_sigv4_creds_t sc = base ? bl_aws_creds_sigv4(base) : (bl_sigv4_creds_t){ 0 };
    bl_sigv4_result_t sig;
    bl_aws_http_header_t h[4] = { { "Content-Type", BL_STS_CTYPE } };
    size_t nh = 1;
    int rc = BL_ERROR;
    bl_sigv4_result_init(&sig);
    if (base) {
        if (bl_sigv4_sign(&sr, &sc, &sp, &sig, err, errlen) < 0)
            goto end;
        h[nh++] = (bl_aws_http_header_t){ "X-Amz-Date", sig.amz_date };
        if (base->session_token[0])
            h[nh++] = (bl_aws_http_header_t){ "X-Amz-Security-Token", base->session_token };
        h[nh++] = (bl_aws_http_header_t){ "Authorization", bl_buf_cstr(&sig.authorization) };
        if (!h[nh - 1].value)
            goto end;
    }
    bl_aws_http_req_t rq = { .method = "POST", .url = u, .headers = h, .num_headers = nh,
                             .body = bl_buf_data(body), .body_len = bl_buf_size(body),
                             .timeout_ms = 10000, .max_body = BL_STS_MAX_BODY };
    rc = bl_aws_http_do(&rq, resp, err, errlen);
end:
    bl_sigv4_result_free(&sig);
    return rc;
}

/* The common path of both actions. */
static int sts_call(const bl_aws_creds_t *base, const char *region, const char *action,
                    const char *role, const char *session, const char *web_token, int duration_s,
                    bl_aws_creds_t *out, char *err, size_t errlen)
{
    char ep[BL_AWS_HTTP_MAX_URL], e[600] = "";
    bl_aws_url_t *u = calloc(1, sizeof(*u));
    bl_buf_t body;
    bl_aws_http_resp_t resp;
    int rc = BL_ERROR;
    bl_buf_init(&body, 64 * 1024);
    bl_aws_http_resp_init(&resp);
    if (!u) {
        sf(err, errlen, "out of memory");
        goto end;
    }
    if (!role || strncmp(role, "arn:", 4) != 0) {
        sf(err, errlen, "STS %s: the role ARN must start with arn:", action);
        goto end;
    }
    if (!bl_aws_sts_session_name_ok(session)) {
        sf(err, errlen, "STS %s: RoleSessionName must be 2..64 of [A-Za-z0-9_+=,.@-]", action);
        goto end;
    }
    if (bl_aws_sts_endpoint(region, ep, sizeof(ep), e, sizeof(e)) < 0 ||
        bl_aws_url_parse(ep, u, e, sizeof(e)) < 0 ||
        sts_form(&body, action, role, session, web_token, duration_s) < 0 ||
        sts_post(u, base, region, &body, &resp, e, sizeof(e)) < 0) {
        sf(err, errlen, "STS %s failed: %s", action, e[0] ? e : "request too large");
        goto end;
    }
    rc = bl_aws_sts_parse(bl_buf_data(&resp.body), bl_buf_size(&resp.body), action, out, e,
                          sizeof(e));
    if (rc == BL_OK && resp.status != 200)
        rc = BL_ERROR;
    if (rc != BL_OK) {
        bl_aws_creds_clear(out);
        sf(err, errlen, "STS %s failed: %s (HTTP %d from %s)", action,
           rc == BL_DECLINED || resp.status == 200 ? e : "unexpected response", resp.status,
           u->host);
        rc = BL_ERROR;
        goto end;
    }
    snprintf(out->source, sizeof(out->source), "%s", action);
end:
    if (body.base)
        OPENSSL_cleanse(body.base, body.cap);
    bl_buf_free(&body);
    bl_aws_http_resp_free(&resp);
    free(u);
    return rc;
}

int bl_aws_sts_assume_role(const bl_aws_creds_t *base, const char *region, const char *role_arn,
                           const char *session_name, int duration_s, bl_aws_creds_t *out,
                           char *err, size_t errlen)
{
    return sts_call(base, region, "AssumeRole", role_arn, session_name, NULL, duration_s, out,
                    err, errlen);
}

int bl_aws_sts_assume_role_web_identity(const char *region, const char *role_arn,
                                        const char *session_name, const char *web_token,
                                        int duration_s, bl_aws_creds_t *out, char *err,
                                        size_t errlen)
{
    return sts_call(NULL, region, "AssumeRoleWithWebIdentity", role_arn, session_name, web_token,
                    duration_s, out, err, errlen);
}
