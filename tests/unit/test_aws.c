/* test_aws.c - the AWS library apart from SigV4 (test_sigv4.c): the INI
 * reader, STS XML (expat) incl. errors and hostile documents, the JSON
 * credentials document, times, URLs, endpoints, the default chain's
 * environment and shared-file providers, and the EKS token format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "aws/creds.h"
#include "aws/eks.h"
#include "aws/eks_source.h"
#include "aws/http.h"
#include "aws/ini.h"
#include "aws/sts.h"

#define INI_TEXT                                                                                \
    "\xef\xbb\xbf# comment\r\n"                                                                 \
    "[default]\r\n"                                                                             \
    "aws_access_key_id = AKIDDEFAULT\r\n"                                                       \
    "aws_secret_access_key=sec ret # not a comment\r\n"                                         \
    "\n"                                                                                        \
    "[ ops ]\n"                                                                                 \
    "; another comment\n"                                                                       \
    "aws_access_key_id=AKIDOPS1\n"                                                              \
    "s3 =\n"                                                                                    \
    "  aws_access_key_id = NESTED\n"                                                            \
    "aws_access_key_id =   AKIDOPS2   \n"                                                       \
    "[empty]\n"

static void test_ini(void **state)
{
    (void)state;
    bl_str_t v;
    size_t n = strlen(INI_TEXT);
    assert_int_equal(bl_aws_ini_get(INI_TEXT, n, "default", "aws_access_key_id", &v), 1);
    assert_true(bl_str_eq(v, "AKIDDEFAULT"));
    assert_int_equal(bl_aws_ini_get(INI_TEXT, n, "default", "aws_secret_access_key", &v), 1);
    assert_true(bl_str_eq(v, "sec ret # not a comment"));
    /* trimmed section name; the nested "s3" line is skipped; the last value wins */
    assert_int_equal(bl_aws_ini_get(INI_TEXT, n, "ops", "aws_access_key_id", &v), 1);
    assert_true(bl_str_eq(v, "AKIDOPS2"));
    assert_int_equal(bl_aws_ini_get(INI_TEXT, n, "empty", "aws_access_key_id", &v), 0);
    assert_int_equal(bl_aws_ini_get(INI_TEXT, n, "missing", "aws_access_key_id", &v), BL_DECLINED);
    assert_int_equal(bl_aws_ini_get(INI_TEXT, n, "Default", "aws_access_key_id", &v), BL_DECLINED);
    assert_int_equal(bl_aws_ini_get("", 0, "default", "x", &v), BL_DECLINED);
    assert_int_equal(bl_aws_ini_get("[default", 8, "default", "x", &v), BL_DECLINED);
}

#define XML_AR                                                                                  \
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"               \
    "  <AssumeRoleResult>\n"                                                                    \
    "    <AssumedRoleUser>\n"                                                                   \
    "      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s3-access-example</AssumedRoleId>\n"            \
    "      <Arn>arn:aws:sts::123456789012:assumed-role/xaccounts3access/s3-access-example</Arn>\n" \
    "    </AssumedRoleUser>\n"                                                                  \
    "    <Credentials>\n"                                                                       \
    "      <SecretAccessKey>9drTJvcXLB89EXAMPLELB8923FB892xMFI</SecretAccessKey>\n"             \
    "      <SessionToken>AQoXdzELDDY//////////wEaoAK1wvxJY12r2IrDFT2IvAzTCn3zHoZ7YNtpiQLF0MqZye/" \
    "qwjzP2iEXAMPLE=</SessionToken>\n"                                                          \
    "      <Expiration>2011-07-15T23:28:33.359Z</Expiration>\n"                                 \
    "      <AccessKeyId>ASIAJEXAMPLEXEG2JICEA</AccessKeyId>\n"                                  \
    "    </Credentials>\n"                                                                      \
    "    <PackedPolicySize>8</PackedPolicySize>\n"                                              \
    "  </AssumeRoleResult>\n"                                                                   \
    "  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"          \
    "</ResponseMetadata>\n"                                                                     \
    "</AssumeRoleResponse>\n"

static void test_sts_parse_ok(void **state)
{
    (void)state;
    bl_aws_creds_t c;
    char err[256] = "";
    assert_int_equal(bl_aws_sts_parse(XML_AR, strlen(XML_AR), "AssumeRole", &c, err, sizeof(err)),
                     BL_OK);
    assert_string_equal(c.access_key_id, "ASIAJEXAMPLEXEG2JICEA");
    assert_string_equal(c.secret_access_key, "9drTJvcXLB89EXAMPLELB8923FB892xMFI");
    assert_true(strncmp(c.session_token, "AQoXdzELDDY//", 13) == 0);
    assert_string_equal(c.arn, "arn:aws:sts::123456789012:assumed-role/xaccounts3access/s3-access-example");
    assert_int_equal(c.expiration, 1310772513);
    /* the same document is not an answer to another action */
    assert_int_equal(bl_aws_sts_parse(XML_AR, strlen(XML_AR), "AssumeRoleWithWebIdentity", &c, err,
                                      sizeof(err)), BL_ERROR);
    assert_string_equal(c.secret_access_key, "");
}

static void test_sts_parse_error(void **state)
{
    (void)state;
    static const char doc[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <Error><Type>Sender</Type><Code>AccessDenied</Code>\n"
        "    <Message>User: arn:aws:iam::1:user/bob is not authorized &amp; \x01 no</Message>\n"
        "  </Error><RequestId>x</RequestId></ErrorResponse>";
    bl_aws_creds_t c;
    char err[256] = "";
    assert_int_equal(bl_aws_sts_parse(doc, strlen(doc), "AssumeRole", &c, err, sizeof(err)),
                     BL_ERROR);   /* \x01 is not allowed in XML 1.0 */
    static const char doc2[] =
        "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
        "<Message>The security token included in the request is expired &amp; gone</Message>"
        "</Error></ErrorResponse>";
    assert_int_equal(bl_aws_sts_parse(doc2, strlen(doc2), "AssumeRole", &c, err, sizeof(err)),
                     BL_DECLINED);
    assert_string_equal(err, "ExpiredToken: The security token included in the request is expired & gone");
}

static void test_sts_parse_hostile(void **state)
{
    (void)state;
    static const char *bad[] = {
        "not xml at all",
        "<AssumeRoleResponse><AssumeRoleResult>",   /* truncated */
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
        "\"&lol;&lol;&lol;&lol;\">]><AssumeRoleResponse>&lol2;</AssumeRoleResponse>",
        "<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>",
        "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
        "<SecretAccessKey>S</SecretAccessKey><Expiration>2030-01-01T00:00:00Z</Expiration>"
        "</Credentials></AssumeRoleResult></AssumeRoleResponse>",   /* no SessionToken */
        "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
        "<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
        "<Expiration>soon</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>",
        /* the right leaves at the wrong depth do not count */
        "<AssumeRoleResponse><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S"
        "</SecretAccessKey><SessionToken>T</SessionToken><Expiration>2030-01-01T00:00:00Z"
        "</Expiration></Credentials></AssumeRoleResponse>",
    };
    bl_aws_creds_t c;
    char err[256];
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(bl_aws_sts_parse(bad[i], strlen(bad[i]), "AssumeRole", &c, err, sizeof(err)),
                         BL_ERROR);
        assert_true(err[0] != '\0');
        assert_string_equal(c.access_key_id, "");
    }
    /* a value longer than its field */
    size_t big = BL_AWS_KEY_MAX + 100;
    char *doc = malloc(big + 512);
    int n = snprintf(doc, big + 512, "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>");
    memset(doc + n, 'A', big);
    snprintf(doc + n + big, 512, "</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>");
    assert_int_equal(bl_aws_sts_parse(doc, strlen(doc), "AssumeRole", &c, err, sizeof(err)), BL_ERROR);
    free(doc);
}

static void test_creds_json(void **state)
{
    (void)state;
    bl_aws_creds_t c;
    char err[256];
    static const char ok[] = "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIA1\","
                             "\"SecretAccessKey\":\"sek\",\"Token\":\"tok\",\"Expiration\":"
                             "\"2030-01-01T00:00:00Z\"}";
    assert_int_equal(bl_aws_creds_parse_json(ok, strlen(ok), &c, err, sizeof(err)), BL_OK);
    assert_string_equal(c.session_token, "tok");
    assert_int_equal(c.expiration, 1893456000);
    static const char *bad[] = {
        "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
        "{\"AccessKeyId\":\"A\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"tomorrow\"}",
        "[1,2]", "", "{",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++) {
        assert_int_equal(bl_aws_creds_parse_json(bad[i], strlen(bad[i]), &c, err, sizeof(err)),
                         BL_ERROR);
        assert_null(strstr(err, "\"S\""));
    }
}

static void test_time(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(bl_aws_parse_time("2015-08-30T12:36:00Z", 20, &t), BL_OK);
    assert_int_equal(t, 1440938160);
    assert_int_equal(bl_aws_parse_time("2015-08-30T12:36:00.123Z", 24, &t), BL_OK);
    assert_int_equal(t, 1440938160);
    assert_int_equal(bl_aws_parse_time("2015-08-30T12:36:00+00:00", 25, &t), BL_OK);
    assert_int_equal(bl_aws_parse_time("2015-08-30T12:36:00+02:00", 25, &t), BL_ERROR);
    assert_int_equal(bl_aws_parse_time("2015-13-30T12:36:00Z", 20, &t), BL_ERROR);
    assert_int_equal(bl_aws_parse_time("2015-08-30", 10, &t), BL_ERROR);
    bl_aws_creds_t c = { .expiration = 1000 };
    assert_int_equal(bl_aws_creds_expiring(&c, 899, 100), 0);
    assert_int_equal(bl_aws_creds_expiring(&c, 900, 100), 1);
    c.expiration = 0;
    assert_int_equal(bl_aws_creds_expiring(&c, 1 << 30, 100), 0);
}

static void test_url(void **state)
{
    (void)state;
    bl_aws_url_t u;
    char err[128];
    assert_int_equal(bl_aws_url_parse("https://sts.us-east-1.amazonaws.com", &u, err, sizeof(err)), BL_OK);
    assert_true(u.https);
    assert_string_equal(u.port, "443");
    assert_string_equal(u.path, "/");
    assert_string_equal(u.authority, "sts.us-east-1.amazonaws.com");
    assert_int_equal(bl_aws_url_parse("http://[fd00:ec2::23]:80/v1/credentials?a=b", &u, err, sizeof(err)), BL_OK);
    assert_string_equal(u.host, "fd00:ec2::23");
    assert_string_equal(u.authority, "[fd00:ec2::23]:80");
    assert_string_equal(u.path, "/v1/credentials");
    assert_string_equal(u.query, "a=b");
    static const char *bad[] = { "ftp://x", "https://", "https://h:0", "https://h:99999",
                                 "https://u@h/", "https://h/a b", "https://h/#f", "https://h:8x/" };
    for (size_t i = 0; i < BL_ARRAY_LEN(bad); i++)
        assert_int_equal(bl_aws_url_parse(bad[i], &u, err, sizeof(err)), BL_ERROR);
}

static void test_endpoint(void **state)
{
    (void)state;
    char ep[256], err[128];
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    assert_int_equal(bl_aws_sts_endpoint("eu-west-1", ep, sizeof(ep), err, sizeof(err)), BL_OK);
    assert_string_equal(ep, "https://sts.eu-west-1.amazonaws.com");
    assert_int_equal(bl_aws_sts_endpoint("cn-north-1", ep, sizeof(ep), err, sizeof(err)), BL_OK);
    assert_string_equal(ep, "https://sts.cn-north-1.amazonaws.com.cn");
    setenv("AWS_ENDPOINT_URL", "https://all.example", 1);
    assert_int_equal(bl_aws_sts_endpoint("eu-west-1", ep, sizeof(ep), err, sizeof(err)), BL_OK);
    assert_string_equal(ep, "https://all.example");
    setenv("AWS_ENDPOINT_URL_STS", "https://sts.example", 1);
    assert_int_equal(bl_aws_sts_endpoint("eu-west-1", ep, sizeof(ep), err, sizeof(err)), BL_OK);
    assert_string_equal(ep, "https://sts.example");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    assert_int_equal(bl_aws_sts_endpoint("eu-west-1", ep, sizeof(ep), err, sizeof(err)), BL_OK);
    assert_string_equal(ep, "https://sts.eu-west-1.amazonaws.com");
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    assert_int_equal(bl_aws_sts_endpoint("EU/../x", ep, sizeof(ep), err, sizeof(err)), BL_ERROR);
    assert_int_equal(bl_aws_sts_endpoint("", ep, sizeof(ep), err, sizeof(err)), BL_ERROR);
    assert_true(bl_aws_sts_session_name_ok("byline-agent@x.y"));
    assert_false(bl_aws_sts_session_name_ok("a"));
    assert_false(bl_aws_sts_session_name_ok("has space"));
}

static void test_env_and_file(void **state)
{
    (void)state;
    bl_aws_creds_t c;
    char err[256], path[] = "/tmp/bl-test-aws-XXXXXX";
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    assert_int_equal(bl_aws_creds_from_env(&c, err, sizeof(err)), BL_DECLINED);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    assert_int_equal(bl_aws_creds_from_env(&c, err, sizeof(err)), BL_ERROR);
    setenv("AWS_SECRET_ACCESS_KEY", "envSECRET", 1);
    assert_int_equal(bl_aws_creds_from_env(&c, err, sizeof(err)), BL_OK);
    assert_string_equal(c.secret_access_key, "envSECRET");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, INI_TEXT, strlen(INI_TEXT)), (ssize_t)strlen(INI_TEXT));
    close(fd);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    unsetenv("AWS_PROFILE");
    assert_int_equal(bl_aws_creds_from_shared_file(&c, err, sizeof(err)), BL_OK);
    assert_string_equal(c.access_key_id, "AKIDDEFAULT");
    setenv("AWS_PROFILE", "ops", 1);   /* a key without a secret: an error, not a skip */
    assert_int_equal(bl_aws_creds_from_shared_file(&c, err, sizeof(err)), BL_ERROR);
    assert_non_null(strstr(err, "needs both"));
    setenv("AWS_PROFILE", "nope", 1);
    assert_int_equal(bl_aws_creds_from_shared_file(&c, err, sizeof(err)), BL_ERROR);
    assert_non_null(strstr(err, "'nope' not found"));
    assert_null(strstr(err, "sec ret"));
    unsetenv("AWS_PROFILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    assert_int_equal(bl_aws_creds_from_shared_file(&c, err, sizeof(err)), BL_DECLINED);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unlink(path);
}

static void test_b64url(void **state)
{
    (void)state;
    static const struct { const char *in; size_t n; const char *out; } v[] = {
        { "", 0, "" }, { "f", 1, "Zg" }, { "fo", 2, "Zm8" }, { "foo", 3, "Zm9v" },
        { "foob", 4, "Zm9vYg" }, { "\xfb\xff", 2, "-_8" },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(v); i++) {
        bl_buf_t b;
        bl_buf_init(&b, 64);
        assert_int_equal(bl_eks_b64url(&b, (const unsigned char *)v[i].in, v[i].n), BL_OK);
        assert_int_equal(bl_buf_size(&b), strlen(v[i].out));
        assert_memory_equal(bl_buf_data(&b), v[i].out, bl_buf_size(&b));
        bl_buf_free(&b);
    }
}

/* The token for fixed inputs; the expected signature was computed by the
 * stand-ins' independent Python SigV4 (tests/standin/aws_sigv4.py). */
static void test_eks_token(void **state)
{
    (void)state;
    bl_aws_creds_t c;
    bl_eks_token_t t;
    char err[256];
    memset(&c, 0, sizeof(c));
    snprintf(c.access_key_id, sizeof(c.access_key_id), "AKIDEXAMPLE");
    snprintf(c.secret_access_key, sizeof(c.secret_access_key), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ENDPOINT_URL");
    assert_int_equal(bl_eks_token_mint(&c, "us-east-1", "prod-eks", 1440938160, &t, err, sizeof(err)),
                     BL_OK);
    static const char url[] =
        "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
        "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1"
        "%2Fsts%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60"
        "&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"
        "&X-Amz-Signature=fce36f9a237fb108bb091c30eab043e296abb31dba529c962fe738e7ad9410c8";
    bl_buf_t want;
    bl_buf_init(&want, 4096);
    bl_buf_puts(&want, BL_EKS_TOKEN_PREFIX);
    bl_eks_b64url(&want, (const unsigned char *)url, strlen(url));
    assert_string_equal(t.token, bl_buf_cstr(&want));
    assert_null(strchr(t.token, '='));
    assert_int_equal(t.expires - t.signed_at, 900);
    assert_int_equal(t.refresh_at - t.signed_at, 600);
    bl_buf_free(&want);
    assert_int_equal(bl_eks_token_mint(&c, "us-east-1", "bad name", 1440938160, &t, err, sizeof(err)),
                     BL_ERROR);
    assert_int_equal(bl_eks_token_mint(&c, "", "prod-eks", 1440938160, &t, err, sizeof(err)), BL_ERROR);
    memset(c.session_token, 'T', sizeof(c.session_token) - 1);   /* would exceed 4096 bytes */
    assert_int_equal(bl_eks_token_mint(&c, "us-east-1", "prod-eks", 1440938160, &t, err, sizeof(err)),
                     BL_ERROR);
    assert_non_null(strstr(err, "4096"));
    assert_true(bl_eks_cluster_name_ok("prod_eks-1"));
    assert_false(bl_eks_cluster_name_ok("-x"));
    assert_false(bl_eks_cluster_name_ok(""));
}

/* The renewing source re-mints after 10 minutes and not before; the clock
 * is a parameter, so no waiting. Environment credentials need no network. */
static void test_eks_source(void **state)
{
    (void)state;
    bl_eks_source_t s;
    bl_eks_token_t a, b;
    char err[512];
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ENDPOINT_URL");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    assert_int_equal(bl_eks_source_init(&s, "us-east-1", "prod-eks", NULL, NULL, 0, err,
                                        sizeof(err)), BL_OK);
    assert_int_equal(bl_eks_source_token(&s, 1440938160, &a, err, sizeof(err)), BL_OK);
    assert_string_equal(bl_eks_source_identity(&s), "environment");
    assert_int_equal(bl_eks_source_token(&s, 1440938160 + 599, &b, err, sizeof(err)), BL_OK);
    assert_string_equal(a.token, b.token);
    assert_int_equal(bl_eks_source_token(&s, 1440938160 + 600, &b, err, sizeof(err)), BL_OK);
    assert_string_not_equal(a.token, b.token);
    assert_int_equal(b.signed_at, 1440938160 + 600);
    /* a clock that went backwards also mints anew */
    assert_int_equal(bl_eks_source_token(&s, 1440938160, &b, err, sizeof(err)), BL_OK);
    assert_string_equal(a.token, b.token);
    bl_eks_source_free(&s);
    bl_eks_token_clear(&a);
    bl_eks_token_clear(&b);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(bl_eks_source_init(&s, "us-east-1", "prod eks", NULL, NULL, 0, err,
                                        sizeof(err)), BL_ERROR);
    assert_int_equal(bl_eks_source_init(&s, "", "prod-eks", NULL, NULL, 0, err, sizeof(err)),
                     BL_ERROR);
    assert_int_equal(bl_eks_source_init(&s, "us-east-1", "prod-eks", "role/x", NULL, 0, err,
                                        sizeof(err)), BL_ERROR);
    assert_int_equal(bl_eks_source_init(&s, "us-east-1", "prod-eks", NULL, "bad name", 0, err,
                                        sizeof(err)), BL_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_sts_parse_ok),
        cmocka_unit_test(test_sts_parse_error),
        cmocka_unit_test(test_sts_parse_hostile),
        cmocka_unit_test(test_creds_json),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_env_and_file),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_eks_token),
        cmocka_unit_test(test_eks_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
