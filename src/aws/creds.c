/* creds.c - AWS credentials: the SDKs' default chain. See creds.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "aws/creds.h"
#include "aws/http.h"
#include "aws/ini.h"
#include "aws/sts.h"

#define BL_AWS_FILE_MAX   (1024 * 1024)
#define BL_AWS_IMDS_TTL   "21600"
#define BL_AWS_IMDS_MS    1000
#define BL_AWS_ECS_HOST   "http://169.254.170.2"

/* Writes a message into err. Returns BL_ERROR. */
static int cf(char *err, size_t errlen, const char *fmt, ...) BL_PRINTF(3, 4);
static int cf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return BL_ERROR;
}

void bl_aws_creds_clear(bl_aws_creds_t *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}

bl_sigv4_creds_t bl_aws_creds_sigv4(const bl_aws_creds_t *c)
{
    return (bl_sigv4_creds_t){ c->access_key_id, c->secret_access_key, c->session_token };
}

int bl_aws_creds_expiring(const bl_aws_creds_t *c, time_t now, int margin)
{
    return c->expiration != 0 && now + margin >= c->expiration;
}

/* Copies a view into dst[cap] with a NUL. Returns BL_OK or BL_ERROR (too long). */
static int put(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return BL_ERROR;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return BL_OK;
}

int bl_aws_parse_time(const char *s, size_t n, time_t *t)
{
    struct tm tm = { 0 };
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return BL_ERROR;
    tm.tm_year = bl_str_digits(s, 4) - 1900;
    tm.tm_mon = bl_str_digits(s + 5, 2) - 1;
    tm.tm_mday = bl_str_digits(s + 8, 2);
    tm.tm_hour = bl_str_digits(s + 11, 2);
    tm.tm_min = bl_str_digits(s + 14, 2);
    tm.tm_sec = bl_str_digits(s + 17, 2);
    size_t i = 19;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
    bl_str_t zone = { s + i, n - i };
    if (!bl_str_eq(zone, "Z") && !bl_str_eq(zone, "+00:00"))
        return BL_ERROR;
    if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
        tm.tm_sec > 60)
        return BL_ERROR;
    *t = timegm(&tm);
    return *t == (time_t)-1 ? BL_ERROR : BL_OK;
}

/* Reads a whole (small) file into buf (max bytes; cleansed by the caller).
 * Returns BL_OK, BL_DECLINED when it does not exist, BL_ERROR otherwise. */
static int read_file(const char *path, bl_buf_t *buf)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? BL_DECLINED : BL_ERROR;
    int rc = BL_OK;
    for (;;) {
        size_t room;
        char *t = bl_buf_tail(buf, 4096, &room);
        if (!t || room == 0) {
            rc = BL_ERROR;
            break;
        }
        size_t n = fread(t, 1, room, f);
        bl_buf_commit(buf, n);
        if (n == 0) {
            rc = ferror(f) ? BL_ERROR : BL_OK;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* Cleanses the whole allocation of b, then frees it. */
static void wipe_buf(bl_buf_t *b)
{
    if (b->base)
        OPENSSL_cleanse(b->base, b->cap);
    bl_buf_free(b);
}

int bl_aws_creds_from_env(bl_aws_creds_t *c, char *err, size_t errlen)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    const char *tok = getenv("AWS_SESSION_TOKEN");
    if ((!id || !*id) && (!sk || !*sk))
        return BL_DECLINED;
    if (!id || !*id || !sk || !*sk)
        return cf(err, errlen, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
    bl_aws_creds_clear(c);
    if (put(c->access_key_id, sizeof(c->access_key_id), id, strlen(id)) < 0 ||
        put(c->secret_access_key, sizeof(c->secret_access_key), sk, strlen(sk)) < 0 ||
        (tok && put(c->session_token, sizeof(c->session_token), tok, strlen(tok)) < 0)) {
        bl_aws_creds_clear(c);
        return cf(err, errlen, "AWS credentials in the environment are too long");
    }
    snprintf(c->source, sizeof(c->source), "environment");
    return BL_OK;
}

/* Copies the profile's keys from the INI text. */
static int shared_keys(const char *text, size_t len, const char *profile, const char *path,
                       int explicit, bl_aws_creds_t *c, char *err, size_t errlen)
{
    bl_str_t id = BL_STR_NULL, sk = BL_STR_NULL, tok = BL_STR_NULL;
    int r = bl_aws_ini_get(text, len, profile, "aws_access_key_id", &id);
    if (r == BL_DECLINED)
        return explicit ? cf(err, errlen, "AWS profile '%s' not found in %s (profiles that only "
                             "live in ~/.aws/config, such as SSO or role_arn, are not supported)",
                             profile, path)
                        : BL_DECLINED;
    bl_aws_ini_get(text, len, profile, "aws_secret_access_key", &sk);
    if (bl_aws_ini_get(text, len, profile, "aws_session_token", &tok) != 1)
        bl_aws_ini_get(text, len, profile, "aws_security_token", &tok);
    if (r != 1 && sk.len == 0)
        return explicit ? cf(err, errlen, "AWS profile '%s' in %s has no aws_access_key_id",
                             profile, path)
                        : BL_DECLINED;
    if (id.len == 0 || sk.len == 0)
        return cf(err, errlen, "AWS profile '%s' in %s needs both aws_access_key_id and "
                  "aws_secret_access_key", profile, path);
    if (put(c->access_key_id, sizeof(c->access_key_id), id.p, id.len) < 0 ||
        put(c->secret_access_key, sizeof(c->secret_access_key), sk.p, sk.len) < 0 ||
        put(c->session_token, sizeof(c->session_token), tok.p ? tok.p : "", tok.len) < 0)
        return cf(err, errlen, "AWS profile '%s' in %s: a value is too long", profile, path);
    snprintf(c->source, sizeof(c->source), "shared file profile %.40s", profile);
    return BL_OK;
}

int bl_aws_creds_from_shared_file(bl_aws_creds_t *c, char *err, size_t errlen)
{
    char path[4096];
    const char *f = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
    const char *profile = getenv("AWS_PROFILE");
    int explicit = profile && *profile;
    if (!explicit)
        profile = "default";
    if (f && *f)
        snprintf(path, sizeof(path), "%s", f);
    else if (home && *home)
        snprintf(path, sizeof(path), "%s/.aws/credentials", home);
    else
        return BL_DECLINED;
    bl_buf_t text;
    bl_buf_init(&text, BL_AWS_FILE_MAX);
    bl_aws_creds_clear(c);
    int rc = read_file(path, &text);
    if (rc == BL_ERROR)
        rc = cf(err, errlen, "cannot read %s (unreadable or over 1 MiB)", path);
    else if (rc == BL_OK)
        rc = shared_keys(bl_buf_data(&text), bl_buf_size(&text), profile, path, explicit, c, err,
                         errlen);
    if (rc != BL_OK)
        bl_aws_creds_clear(c);
    wipe_buf(&text);
    return rc;
}

int bl_aws_creds_from_web_identity(const char *region, bl_aws_creds_t *c, char *err,
                                   size_t errlen)
{
    const char *role = getenv("AWS_ROLE_ARN"), *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *sess = getenv("AWS_ROLE_SESSION_NAME");
    char name[80];
    if (!file || !*file)
        return BL_DECLINED;
    if (!role || !*role)
        return cf(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    if (sess && *sess)
        snprintf(name, sizeof(name), "%.64s", sess);
    else
        snprintf(name, sizeof(name), "byline-%lld", (long long)time(NULL));
    bl_buf_t tok;
    bl_buf_init(&tok, 64 * 1024);
    int rc = read_file(file, &tok);
    bl_str_t t = bl_str_trim((bl_str_t){ bl_buf_data(&tok), bl_buf_size(&tok) });
    while (t.len > 0 && (t.p[t.len - 1] == '\n' || t.p[t.len - 1] == '\r'))
        t.len--;
    if (rc != BL_OK || t.len == 0 || bl_buf_append(&tok, "", 1) < 0) {
        wipe_buf(&tok);
        return cf(err, errlen, "cannot read the web identity token file %s", file);
    }
    char *token = bl_buf_data(&tok) + (t.p - bl_buf_data(&tok));
    token[t.len] = '\0';
    rc = bl_aws_sts_assume_role_web_identity(region, role, name, token, 0, c, err, errlen);
    wipe_buf(&tok);
    if (rc == BL_OK)
        snprintf(c->source, sizeof(c->source), "web identity");
    return rc;
}

int bl_aws_creds_parse_json(const char *json, size_t len, bl_aws_creds_t *c, char *err,
                            size_t errlen)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    int rc = BL_ERROR;
    const char *code = json_string_value(json_object_get(root, "Code"));
    const char *id = json_string_value(json_object_get(root, "AccessKeyId"));
    const char *sk = json_string_value(json_object_get(root, "SecretAccessKey"));
    const char *tok = json_string_value(json_object_get(root, "Token"));
    const char *exp = json_string_value(json_object_get(root, "Expiration"));
    bl_aws_creds_clear(c);
    if (!json_is_object(root)) {
        cf(err, errlen, "the credentials response is not a JSON object");
    } else if (code && strcmp(code, "Success") != 0) {
        cf(err, errlen, "the credentials response says Code=%.64s", code);
    } else if (!id || !*id || !sk || !*sk) {
        cf(err, errlen, "the credentials response lacks AccessKeyId or SecretAccessKey");
    } else if (put(c->access_key_id, sizeof(c->access_key_id), id, strlen(id)) < 0 ||
               put(c->secret_access_key, sizeof(c->secret_access_key), sk, strlen(sk)) < 0 ||
               (tok && put(c->session_token, sizeof(c->session_token), tok, strlen(tok)) < 0)) {
        cf(err, errlen, "a value in the credentials response is too long");
    } else if (exp && bl_aws_parse_time(exp, strlen(exp), &c->expiration) < 0) {
        cf(err, errlen, "the credentials response has a bad Expiration");
    } else {
        rc = BL_OK;
    }
    if (rc != BL_OK)
        bl_aws_creds_clear(c);
    /* jansson keeps its own copies of the strings: wipe them before freeing. */
    if (sk)
        OPENSSL_cleanse((char *)sk, strlen(sk));
    if (tok)
        OPENSSL_cleanse((char *)tok, strlen(tok));
    json_decref(root);
    return rc;
}

/* Returns 1 when a plain-http container credentials host is allowed: loopback
 * or the ECS / EKS Pod Identity link-local addresses, as the SDKs require. */
static int container_host_ok(const bl_aws_url_t *u)
{
    unsigned char a[16];
    if (u->https)
        return 1;
    if (!strcmp(u->host, "localhost") || !strcmp(u->host, "169.254.170.2") ||
        !strcmp(u->host, "169.254.170.23") || !strcmp(u->host, "::1"))
        return 1;
    if (inet_pton(AF_INET6, u->host, a) == 1) {
        static const unsigned char eks[16] = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23 };
        return memcmp(a, eks, 16) == 0;
    }
    return inet_pton(AF_INET, u->host, a) == 1 && a[0] == 127;
}

/* Reads the container Authorization token into tok[cap]; "" when none.
 * Returns BL_OK or BL_ERROR. */
static int container_auth(char *tok, size_t cap, char *err, size_t errlen)
{
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *val = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    tok[0] = '\0';
    if (file && *file) {
        bl_buf_t b;
        bl_buf_init(&b, cap - 1);
        int rc = read_file(file, &b);
        bl_str_t t = bl_str_trim((bl_str_t){ bl_buf_data(&b), bl_buf_size(&b) });
        while (t.len > 0 && (t.p[t.len - 1] == '\n' || t.p[t.len - 1] == '\r'))
            t.len--;
        if (rc == BL_OK)
            rc = put(tok, cap, t.p ? t.p : "", t.len);
        wipe_buf(&b);
        return rc == BL_OK ? BL_OK
                           : cf(err, errlen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
                                file);
    }
    if (val && put(tok, cap, val, strlen(val)) < 0)
        return cf(err, errlen, "AWS_CONTAINER_AUTHORIZATION_TOKEN is too long");
    return BL_OK;
}

/* GETs url with optional header name: value; fills resp. Returns BL_OK only
 * for a 200. */
static int get200(const bl_aws_url_t *u, const char *hname, const char *hval, int timeout_ms,
                  bl_aws_http_resp_t *resp, const char *what, char *err, size_t errlen)
{
    bl_aws_http_header_t h = { hname, hval };
    bl_aws_http_req_t rq = { .method = "GET", .url = u, .headers = &h, .num_headers = hname ? 1 : 0,
                             .timeout_ms = timeout_ms, .max_body = 64 * 1024 };
    char e[256];
    if (bl_aws_http_do(&rq, resp, e, sizeof(e)) < 0)
        return cf(err, errlen, "%s: %s", what, e);
    if (resp->status != 200)
        return cf(err, errlen, "%s: HTTP %d from %s", what, resp->status, u->host);
    return BL_OK;
}

int bl_aws_creds_from_container(bl_aws_creds_t *c, char *err, size_t errlen)
{
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    char url[BL_AWS_HTTP_MAX_URL], tok[BL_AWS_TOKEN_MAX];
    bl_aws_url_t *u = calloc(1, sizeof(*u));
    bl_aws_http_resp_t resp;
    int rc = BL_DECLINED;
    bl_aws_http_resp_init(&resp);
    tok[0] = '\0';
    if (!u)
        return cf(err, errlen, "out of memory");
    if (rel && *rel)
        snprintf(url, sizeof(url), "%s%s%s", BL_AWS_ECS_HOST, rel[0] == '/' ? "" : "/", rel);
    else if (full && *full)
        snprintf(url, sizeof(url), "%s", full);
    else
        goto end;
    rc = BL_ERROR;
    if (bl_aws_url_parse(url, u, err, errlen) < 0)
        goto end;
    if (!container_host_ok(u)) {
        cf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to "
           "loopback or the EKS/ECS link-local hosts, not %s", u->host);
        goto end;
    }
    if (container_auth(tok, sizeof(tok), err, errlen) < 0 ||
        get200(u, tok[0] ? "Authorization" : NULL, tok, 2000, &resp, "container credentials",
               err, errlen) < 0 ||
        bl_aws_creds_parse_json(bl_buf_data(&resp.body), bl_buf_size(&resp.body), c, err,
                                errlen) < 0)
        goto end;
    snprintf(c->source, sizeof(c->source), "container credentials");
    rc = BL_OK;
end:
    OPENSSL_cleanse(tok, sizeof(tok));
    bl_aws_http_resp_free(&resp);
    free(u);
    return rc;
}

/* Builds an IMDS URL from the endpoint and a path. */
static int imds_url(const char *path, bl_aws_url_t *u, char *err, size_t errlen)
{
    const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char url[BL_AWS_HTTP_MAX_URL];
    if (!ep || !*ep)
        ep = "http://169.254.169.254";
    size_t n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--;
    snprintf(url, sizeof(url), "%.*s%s", (int)n, ep, path);
    return bl_aws_url_parse(url, u, err, errlen);
}

/* IMDSv2: PUT for a session token. BL_DECLINED when no IMDS answers. */
static int imds_token(bl_aws_url_t *u, char *tok, size_t cap, char *err, size_t errlen)
{
    bl_aws_http_header_t h = { "X-aws-ec2-metadata-token-ttl-seconds", BL_AWS_IMDS_TTL };
    bl_aws_http_req_t rq = { .method = "PUT", .url = u, .headers = &h, .num_headers = 1,
                             .timeout_ms = BL_AWS_IMDS_MS, .max_body = 4096 };
    bl_aws_http_resp_t resp;
    char e[256];
    int rc = BL_ERROR;
    bl_aws_http_resp_init(&resp);
    if (imds_url("/latest/api/token", u, err, errlen) < 0)
        goto end;
    if (bl_aws_http_do(&rq, &resp, e, sizeof(e)) < 0) {
        rc = BL_DECLINED;
        cf(err, errlen, "no EC2 instance metadata service (%s)", e);
    } else if (resp.status != 200 || bl_buf_size(&resp.body) == 0) {
        cf(err, errlen, "IMDSv2 token request refused: HTTP %d", resp.status);
    } else if (put(tok, cap, bl_buf_data(&resp.body), bl_buf_size(&resp.body)) < 0) {
        cf(err, errlen, "IMDSv2 token too long");
    } else {
        rc = BL_OK;
    }
end:
    bl_aws_http_resp_free(&resp);
    return rc;
}

int bl_aws_creds_from_imds(bl_aws_creds_t *c, char *err, size_t errlen)
{
    const char *off = getenv("AWS_EC2_METADATA_DISABLED");
    char tok[1024], path[512], role[256];
    bl_aws_url_t *u = calloc(1, sizeof(*u));
    bl_aws_http_resp_t resp;
    int rc = BL_DECLINED;
    bl_aws_http_resp_init(&resp);
    if (!u)
        return cf(err, errlen, "out of memory");
    if (off && !strcasecmp(off, "true")) {
        cf(err, errlen, "EC2 instance metadata is disabled (AWS_EC2_METADATA_DISABLED)");
        goto end;
    }
    if ((rc = imds_token(u, tok, sizeof(tok), err, errlen)) != BL_OK)
        goto end;
    rc = BL_ERROR;
    if (imds_url("/latest/meta-data/iam/security-credentials/", u, err, errlen) < 0 ||
        get200(u, "X-aws-ec2-metadata-token", tok, BL_AWS_IMDS_MS, &resp, "IMDS role name", err,
               errlen) < 0)
        goto end;
    size_t rl = strcspn(bl_buf_cstr(&resp.body) ? bl_buf_cstr(&resp.body) : "", "\r\n");
    if (rl == 0 || put(role, sizeof(role), bl_buf_data(&resp.body), rl) < 0 ||
        strpbrk(role, "/?#% ")) {
        cf(err, errlen, "IMDS: no usable instance profile role name");
        goto end;
    }
    snprintf(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%s", role);
    bl_aws_http_resp_free(&resp);
    bl_aws_http_resp_init(&resp);
    if (imds_url(path, u, err, errlen) < 0 ||
        get200(u, "X-aws-ec2-metadata-token", tok, BL_AWS_IMDS_MS, &resp, "IMDS credentials", err,
               errlen) < 0 ||
        bl_aws_creds_parse_json(bl_buf_data(&resp.body), bl_buf_size(&resp.body), c, err,
                                errlen) < 0)
        goto end;
    snprintf(c->source, sizeof(c->source), "EC2 instance metadata (IMDSv2)");
    rc = BL_OK;
end:
    OPENSSL_cleanse(tok, sizeof(tok));
    bl_aws_http_resp_free(&resp);
    free(u);
    return rc;
}

int bl_aws_creds_default(const char *region, bl_aws_creds_t *c, char *err, size_t errlen)
{
    int rc;
    if ((rc = bl_aws_creds_from_env(c, err, errlen)) != BL_DECLINED ||
        (rc = bl_aws_creds_from_shared_file(c, err, errlen)) != BL_DECLINED ||
        (rc = bl_aws_creds_from_web_identity(region, c, err, errlen)) != BL_DECLINED ||
        (rc = bl_aws_creds_from_container(c, err, errlen)) != BL_DECLINED)
        return rc;
    char e[300] = "";
    rc = bl_aws_creds_from_imds(c, e, sizeof(e));
    if (rc == BL_DECLINED)
        return cf(err, errlen, "no AWS credentials found: none in the environment, the shared "
                  "credentials file, web identity or container variables, and %s", e);
    if (rc < 0)
        cf(err, errlen, "%s", e);
    return rc;
}
