/*
 * cmd_eks_token.c - `byline eks-token --cluster NAME [--region R]
 * [--role-arn ARN] [--session-name S]`: prints an ExecCredential with an
 * EKS token, as `aws eks get-token` does, so it serves as a kubectl exec
 * credential plugin and for debugging what the agent would send.
 *
 * No option takes a secret: credentials come only from the AWS default
 * chain (aws/creds.h), so none ever shows in /proc/PID/cmdline. The token
 * is printed on stdout only; stderr never carries a secret.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "aws/eks_source.h"
#include "cli/cli.h"
#include "cli/cmd.h"

static const char bl_eks_token_help[] =
    "usage: byline eks-token --cluster NAME [--region R] [--role-arn ARN] [--session-name S]\n"
    "\n"
    "Prints an ExecCredential (client.authentication.k8s.io/v1beta1, or the\n"
    "version kubectl asks for in KUBERNETES_EXEC_INFO) holding an EKS token for\n"
    "cluster NAME: k8s-aws-v1. + base64url of a presigned STS GetCallerIdentity\n"
    "URL, the same as `aws eks get-token`. Usable as a kubectl exec plugin.\n"
    "\n"
    "  --cluster NAME       EKS cluster name (or $EKS_CLUSTER)\n"
    "  --region R           AWS region (or $EKS_AWS_REGION, $AWS_REGION, $AWS_DEFAULT_REGION)\n"
    "  --role-arn ARN       assume this role with sts:AssumeRole first (or $EKS_ROLE_ARN)\n"
    "  --session-name S     RoleSessionName (default byline-<login name>)\n"
    "\n"
    "AWS credentials come from the SDKs' default chain: environment, shared\n"
    "credentials file (AWS_PROFILE), web identity, container credentials (EKS\n"
    "Pod Identity), EC2 instance metadata (IMDSv2). AWS_ENDPOINT_URL_STS and\n"
    "AWS_ENDPOINT_URL override the STS endpoint. See docs/EKS.md.\n";

typedef struct {
    const char *cluster, *region, *role_arn, *session;
} bl_ekopt_t;

/* Returns the first non-empty environment variable of the list, or NULL. */
static const char *env_first(const char *a, const char *b, const char *c)
{
    const char *names[3] = { a, b, c };
    for (int i = 0; i < 3; i++) {
        const char *v = names[i] ? getenv(names[i]) : NULL;
        if (v && *v)
            return v;
    }
    return NULL;
}

/* Parses argv. Returns BL_EXIT_OK, BL_EXIT_USAGE, or -1 after --help. */
static int ek_args(int argc, char **argv, bl_ekopt_t *o)
{
    enum { O_CLUSTER = 256, O_REGION, O_ROLE, O_SESSION };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "cluster", required_argument, NULL, O_CLUSTER },
        { "region", required_argument, NULL, O_REGION },
        { "role-arn", required_argument, NULL, O_ROLE },
        { "session-name", required_argument, NULL, O_SESSION },
        { NULL, 0, NULL, 0 },
    };
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("eks-token", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_eks_token_help, stdout);
            return -1;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        *(c == O_CLUSTER ? &o->cluster : c == O_REGION ? &o->region
                                       : c == O_ROLE   ? &o->role_arn : &o->session) = optarg;
    }
    if (argc - optind > 0)
        return bl_cli_usage("eks-token", "unexpected argument '%s'", argv[optind]);
    if (!o->cluster && !(o->cluster = env_first("EKS_CLUSTER", NULL, NULL)))
        return bl_cli_usage("eks-token", "--cluster NAME (or $EKS_CLUSTER) is required");
    if (!o->region && !(o->region = env_first("EKS_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")))
        return bl_cli_usage("eks-token", "--region R (or $EKS_AWS_REGION, $AWS_REGION) is required");
    if (!o->role_arn)
        o->role_arn = env_first("EKS_ROLE_ARN", NULL, NULL);
    return BL_EXIT_OK;
}

/* Writes "byline-<login name>" (unsafe bytes dropped) into out. */
static void default_session(char *out, size_t cap)
{
    struct passwd *pw = getpwuid(getuid());
    const char *u = getenv("USER");
    if ((!u || !*u) && pw)
        u = pw->pw_name;
    size_t n = (size_t)snprintf(out, cap, "byline-");
    for (; u && *u && n + 1 < cap && n < 64; u++)
        if (strchr("_+=,.@-", *u) || (*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
            (*u >= '0' && *u <= '9'))
            out[n++] = *u;
    if (n == strlen("byline-"))
        n = (size_t)snprintf(out, cap, "byline-eks-token");
    out[n] = '\0';
}

/* The ExecCredential apiVersion: the one kubectl asks for, if known. */
static const char *exec_api_version(void)
{
    const char *info = getenv("KUBERNETES_EXEC_INFO");
    static char v[64];
    snprintf(v, sizeof(v), "client.authentication.k8s.io/v1beta1");
    json_t *j = info ? json_loads(info, 0, NULL) : NULL;
    const char *av = json_string_value(json_object_get(j, "apiVersion"));
    if (av && (!strcmp(av, "client.authentication.k8s.io/v1") ||
               !strcmp(av, "client.authentication.k8s.io/v1beta1")))
        snprintf(v, sizeof(v), "%s", av);
    json_decref(j);
    return v;
}

/* Prints the ExecCredential for token t. Returns BL_EXIT_OK or BL_EXIT_FAIL. */
static int print_exec_credential(const bl_eks_token_t *t)
{
    char ts[32];
    struct tm tm;
    time_t exp = t->signed_at + BL_EKS_EXEC_LIFE;
    bl_buf_t out;
    int rc = BL_EXIT_FAIL;
    bl_buf_init(&out, 2 * BL_EKS_TOKEN_MAX);
    gmtime_r(&exp, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (bl_buf_printf(&out, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\",\"spec\":{},"
                      "\"status\":{\"expirationTimestamp\":\"%s\",\"token\":", exec_api_version(),
                      ts) == BL_OK &&
        bl_buf_json_str(&out, t->token, strlen(t->token)) == BL_OK && bl_buf_puts(&out, "}}\n") == BL_OK &&
        fwrite(bl_buf_data(&out), 1, bl_buf_size(&out), stdout) == bl_buf_size(&out) &&
        fflush(stdout) == 0)
        rc = BL_EXIT_OK;
    if (out.base)
        OPENSSL_cleanse(out.base, out.cap);
    bl_buf_free(&out);
    return rc == BL_EXIT_OK ? rc : bl_cli_fail("eks-token", "cannot write the ExecCredential");
}

int bl_cmd_eks_token(int argc, char **argv)
{
    bl_ekopt_t o = { 0 };
    char session[80], err[1024] = "";
    int rc = ek_args(argc, argv, &o);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (o.session)
        snprintf(session, sizeof(session), "%s", o.session);
    else
        default_session(session, sizeof(session));
    bl_eks_source_t *s = calloc(1, sizeof(*s));
    bl_eks_token_t *t = calloc(1, sizeof(*t));
    if (!s || !t) {
        free(s);
        free(t);
        return bl_cli_fail("eks-token", "out of memory");
    }
    /* One token only: the shortest role session STS grants (15 minutes), as
     * aws-iam-authenticator does. */
    if (bl_eks_source_init(s, o.region, o.cluster, o.role_arn, session, 900, err, sizeof(err)) < 0) {
        rc = bl_cli_usage("eks-token", "%s", err);
        goto done;
    }
    if (bl_eks_source_token(s, time(NULL), t, err, sizeof(err)) < 0)
        rc = bl_cli_fail("eks-token", "%s", err);
    else
        rc = print_exec_credential(t);
    bl_eks_source_free(s);
done:
    bl_eks_token_clear(t);
    free(t);
    free(s);
    return rc;
}
