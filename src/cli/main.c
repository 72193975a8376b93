/* main.c - `byline <command>`: dispatch to src/cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>
#include "cli/cmd.h"
#include "core/common.h"


static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} bl_commands[] = {
    { "init", bl_cmd_init, "write DIR/byline.yaml and the TLS material for a gateway" },
    { "identity", bl_cmd_identity, "register agent identities (add, list, remove)" },
    { "kubeconfig", bl_cmd_kubeconfig, "print a kubeconfig that reaches the gateway as an identity" },
    { "serve", bl_cmd_serve, "run the gateway in the foreground" },
    { "audit", bl_cmd_audit, "the audit ledger: tail, query, verify, prove, join, replay, status" },
    { "agent", bl_cmd_agent, "run a byline agent: carries a cluster's requests from inside its network" },
    { "agent-key", bl_cmd_agent_key, "register byline agents' keys on the gateway (add, list, remove)" },
    { "policy", bl_cmd_policy, "what the policy decides for a request (check)" },
    { "review", bl_cmd_review, "decide on requests a review rule held back (list, show, approve, deny)" },
    { "config", bl_cmd_config, "check the whole configuration, every error with file:line:col" },
    { "eks-token", bl_cmd_eks_token, "print an EKS token as an ExecCredential (kubectl exec plugin)" },
};

static void bl_usage(FILE *f)
{
    fprintf(f, "usage: byline <command> [options]\n\n"
               "byline is an access gateway for Kubernetes: each agent authenticates as\n"
               "its own identity, and every request is audited as the kubectl command\n"
               "it amounts to before it reaches the cluster.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(bl_commands) / sizeof(bl_commands[0]); i++)
        fprintf(f, "  %-11s %s\n", bl_commands[i].name, bl_commands[i].summary);
    fprintf(f, "\nRun `byline <command> --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        bl_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        bl_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("byline %s\n", BL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(bl_commands) / sizeof(bl_commands[0]); i++)
        if (!strcmp(argv[1], bl_commands[i].name))
            return bl_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "byline: unknown command '%s'\n", argv[1]);
    bl_usage(stderr);
    return 2;
}
