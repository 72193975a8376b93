/*
 * test_agent_eks.c - the agent's kubernetes-eks pieces that need no network:
 * the connection type in the agent config (keys, environment variables,
 * errors), per-identity RoleSessionNames, the Byline-Identity field at the
 * agent's head rewrite, BL_AGAIN from a credential that is not ready, and the
 * EKS credential source minting from static environment credentials (local
 * signing: no role, so no STS call).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent/conf.h"
#include "agent/cred.h"
#include "agent/rewrite.h"

static char tmpdir[64];

/* Writes text to tmpdir/agent.yaml and loads it. Returns the load's result. */
static int load(const char *text, bl_agentconf_t *conf, bl_buf_t *err)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/agent.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    bl_buf_init(err, 4096);
    return bl_agentconf_load(path, conf, err);
}

static void clear_env(void)
{
    unsetenv("EKS_CLUSTER");
    unsetenv("EKS_AWS_REGION");
    unsetenv("EKS_ROLE_ARN");
    unsetenv("KUBERNETES_CLUSTER_URL");
}

static void test_conf_file(void **state)
{
    bl_agentconf_t conf;
    bl_buf_t err;
    (void)state;
    clear_env();
    setenv("EKS_CLUSTER", "from-env", 1); /* the file wins */
    assert_int_equal(load("connections:\n  - name: prod\n    type: kubernetes-eks\n"
                          "    cluster_url: https://abc.eks.amazonaws.com\n    region: eu-west-1\n"
                          "    cluster: prod\n    role_arn: arn:aws:iam::111122223333:role/r\n"
                          "    per_identity_sessions: true\n    token_refresh: 5m\n", &conf, &err), BL_OK);
    assert_string_equal(conf.conns[0].type, "kubernetes-eks");
    assert_string_equal(conf.conns[0].server, "https://abc.eks.amazonaws.com");
    assert_string_equal(conf.conns[0].eks_cluster, "prod");
    assert_string_equal(conf.conns[0].eks_region, "eu-west-1");
    assert_int_equal(conf.conns[0].per_identity_sessions, 1);
    assert_int_equal(conf.conns[0].eks_token_refresh, 300000);
    bl_agentconf_free(&conf);
    bl_buf_free(&err);
    clear_env();
}

static void test_conf_env(void **state)
{
    bl_agentconf_t conf;
    bl_buf_t err;
    (void)state;
    clear_env();
    setenv("EKS_CLUSTER", "prod", 1);
    setenv("EKS_AWS_REGION", "us-east-1", 1);
    setenv("EKS_ROLE_ARN", "arn:aws:iam::111122223333:role/r", 1);
    setenv("KUBERNETES_CLUSTER_URL", "https://x.eks.amazonaws.com", 1);
    assert_int_equal(load("connections:\n  - name: prod\n    type: kubernetes-eks\n", &conf, &err), BL_OK);
    assert_string_equal(conf.conns[0].server, "https://x.eks.amazonaws.com");
    assert_string_equal(conf.conns[0].eks_cluster, "prod");
    assert_string_equal(conf.conns[0].eks_region, "us-east-1");
    assert_string_equal(conf.conns[0].eks_role_arn, "arn:aws:iam::111122223333:role/r");
    bl_agentconf_free(&conf);
    bl_buf_free(&err);
    clear_env();
}

static void test_conf_errors(void **state)
{
    static const struct { const char *body, *want; } cases[] = {
        { "    type: kubernetes-eks\n", "needs cluster_url (or KUBERNETES_CLUSTER_URL)" },
        { "    type: kubernetes-eks\n", "needs region (or EKS_AWS_REGION)" },
        { "    type: kubernetes-eks\n", "needs cluster (or EKS_CLUSTER)" },
        { "    type: kubernetes-eks\n    cluster_url: https://a\n    region: r\n    cluster: c\n"
          "    per_identity_sessions: true\n", "per_identity_sessions needs role_arn" },
        { "    type: kubernetes-eks\n    cluster_url: https://a\n    region: r\n    cluster: c\n"
          "    token_file: /etc/hostname\n", "mints its own tokens" },
        { "    type: eks\n", "type must be kubernetes-eks" },
        { "    server: https://a\n    token: t\n    role_arn: x\n", "go with type: kubernetes-eks" },
        { "    type: kubernetes-eks\n    cluster_url: https://a\n    region: r\n    cluster: c\n"
          "    token_refresh: 20m\n", "token_refresh: must be between" },
    };
    (void)state;
    clear_env();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bl_agentconf_t conf;
        bl_buf_t err;
        char text[512];
        snprintf(text, sizeof(text), "connections:\n  - name: prod\n%s", cases[i].body);
        assert_int_equal(load(text, &conf, &err), BL_ERROR);
        if (strstr(bl_buf_cstr(&err), cases[i].want) == NULL)
            fail_msg("case %zu: %s lacks %s", i, bl_buf_cstr(&err), cases[i].want);
        bl_buf_free(&err);
    }
}

static void test_session_names(void **state)
{
    char a[80], b[80];
    char long1[65], long2[65];
    (void)state;
    assert_string_equal(bl_cred_eks_session_name("agent-deploybot", a), "byline-agent-deploybot");
    assert_string_equal(bl_cred_eks_session_name("team:bot@corp.example", a), "byline-team-bot@corp.example");
    memset(long1, 'a', 64);
    long1[64] = '\0';
    memcpy(long2, long1, sizeof(long2));
    long2[63] = 'b';
    bl_cred_eks_session_name(long1, a);
    bl_cred_eks_session_name(long2, b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strlen(b), 64);
    assert_string_not_equal(a, b); /* cut names stay distinct */
    assert_memory_equal(a, "byline-aaaa", 11);
}

/* A credential that is never ready. */
static int again_header(bl_cred_t *c, bl_buf_t *out, bl_buf_t *err)
{
    (void)c, (void)out, (void)err;
    return BL_AGAIN;
}

static int seen_identity_len;
static char seen_identity[80];

static int record_header_as(bl_cred_t *c, bl_str_t id, bl_buf_t *out, bl_buf_t *err)
{
    (void)c, (void)err;
    seen_identity_len = (int)id.len;
    snprintf(seen_identity, sizeof(seen_identity), "%.*s", (int)id.len, id.p);
    return bl_buf_puts(out, "Authorization: Bearer t\r\n");
}

static int rewrite(const char *head, bl_cred_t *cred, bl_buf_t *out, int *status, const char **why)
{
    bl_agentconn_t c;
    bl_http_header_t hdrs[32];
    bl_http_request_t hr = { .headers = hdrs, .num_headers = 32 };
    bl_http_err_t err;
    const char *w;
    memset(&c, 0, sizeof(c));
    c.name = "prod";
    c.server = "https://api.example";
    assert_int_equal(bl_url_parse(c.server, strlen(c.server), &c.url, &w), BL_OK);
    c.cred = cred;
    assert_true(bl_http1_parse_request(head, strlen(head), &hr, &err) > 0);
    return bl_tunnel_rewrite(&hr, &c, out, status, why);
}

static void test_rewrite_identity(void **state)
{
    static const bl_cred_ops_t rec_ops = { "test", again_header, NULL, record_header_as };
    static const bl_cred_ops_t again_ops = { "test", again_header, NULL, NULL };
    bl_cred_t rec = { &rec_ops }, again = { &again_ops };
    bl_buf_t out;
    int status;
    const char *why;
    (void)state;
    bl_buf_init(&out, 8192);
    assert_int_equal(rewrite("GET /api HTTP/1.1\r\nHost: gw\r\nByline-Identity: agent-x\r\nAccept: */*\r\n\r\n",
                             &rec, &out, &status, &why), BL_OK);
    assert_string_equal(seen_identity, "agent-x");
    assert_null(strstr(bl_buf_cstr(&out), "agent-x")); /* never forwarded */
    assert_non_null(strstr(bl_buf_cstr(&out), "Accept: */*\r\n"));
    bl_buf_reset(&out);
    assert_int_equal(rewrite("GET /api HTTP/1.1\r\nHost: gw\r\n\r\n", &rec, &out, &status, &why), BL_OK);
    assert_int_equal(seen_identity_len, 0);
    bl_buf_reset(&out);
    assert_int_equal(rewrite("GET /api HTTP/1.1\r\nByline-Identity: a\r\nbyline-identity: b\r\n\r\n", &rec, &out,
                             &status, &why), BL_DECLINED);
    assert_int_equal(status, 400);
    bl_buf_reset(&out);
    assert_int_equal(rewrite("GET /api HTTP/1.1\r\nHost: gw\r\n\r\n", &again, &out, &status, &why), BL_AGAIN);
    bl_buf_free(&out);
}

static void test_cred_errors(void **state)
{
    bl_buf_t err;
    (void)state;
    bl_buf_init(&err, 1024);
    bl_cred_eks_opts_t o = { "us-east-1", "prod", NULL, NULL, 1, 0 };
    assert_null(bl_cred_eks(&o, &err));
    assert_non_null(strstr(bl_buf_cstr(&err), "per_identity_sessions needs role_arn"));
    bl_buf_reset(&err);
    bl_cred_eks_opts_t bad = { "us-east-1", "-bad", NULL, NULL, 0, 0 };
    assert_null(bl_cred_eks(&bad, &err));
    assert_non_null(strstr(bl_buf_cstr(&err), "cluster name"));
    bl_buf_free(&err);
}

/* Static credentials and no role: the refresher signs locally. The loop
 * side never waits; it sees BL_AGAIN until the token is there. */
static void test_cred_mints(void **state)
{
    bl_buf_t out, err;
    int rc = BL_AGAIN;
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    bl_buf_init(&out, 8192);
    bl_buf_init(&err, 1024);
    bl_cred_eks_opts_t o = { "us-east-1", "prod", NULL, NULL, 0, 0 };
    bl_cred_t *c = bl_cred_eks(&o, &err);
    assert_non_null(c);
    for (int i = 0; i < 2000 && rc == BL_AGAIN; i++) { /* bounded: the thread signs within ms */
        rc = bl_cred_header_as(c, BL_STR_NULL, &out, &err);
        if (rc == BL_AGAIN)
            usleep(5000);
    }
    assert_int_equal(rc, BL_OK);
    assert_memory_equal(bl_buf_data(&out), "Authorization: Bearer k8s-aws-v1.", 33);
    assert_memory_equal(bl_buf_data(&out) + bl_buf_size(&out) - 2, "\r\n", 2);
    assert_string_equal(c->ops->kind, "kubernetes-eks");
    bl_cred_free(c);
    bl_buf_free(&out);
    bl_buf_free(&err);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/bl-agent-eks-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof(path), "%s/agent.yaml", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_file),       cmocka_unit_test(test_conf_env),
        cmocka_unit_test(test_conf_errors),     cmocka_unit_test(test_session_names),
        cmocka_unit_test(test_rewrite_identity), cmocka_unit_test(test_cred_errors),
        cmocka_unit_test(test_cred_mints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
