/* cmd_agent.c - `byline agent`: the network-resident agent (docs/AGENT.md). */
#include <stdio.h>
#include <string.h>
#include "agent/agent.h"
#include "cli/cli.h"
#include "cli/cmd.h"
#include "core/log.h"

static const char bl_agent_help[] =
    "usage: byline agent --gateway URL --key-file FILE --config FILE [--ca FILE]\n"
    "                    [--log-level debug|info|warn|error]\n"
    "\n"
    "Runs a byline agent in the foreground, logging to stderr. It dials out to the\n"
    "gateway over TLS, authenticates with its agent key (`byline agent-key add` on\n"
    "the gateway), announces the connections in its config, and relays the requests\n"
    "the gateway has already authenticated, decided and audited to those API servers\n"
    "with the credentials only it holds. It reconnects with jittered backoff.\n"
    "\n"
    "  --gateway URL    https://host[:port] of the gateway's listener\n"
    "  --key-file FILE  the agent key (bya_...)\n"
    "  --config FILE    connections served: name, server, ca, and one credential\n"
    "                   (token, token_file, client_cert/client_key, kubeconfig,\n"
    "                   in_cluster: true, or type: kubernetes-eks with region,\n"
    "                   cluster, role_arn or EKS_* variables); see docs/AGENT.md\n"
    "  --ca FILE        CA that signed the gateway's certificate (DIR/tls/ca.crt from\n"
    "                   `byline init`); default: the system store\n"
    "  --log-level L    default info\n"
    "\n"
    "SIGTERM or SIGINT drains (no new requests, open ones finish for up to 30 s);\n"
    "a second signal stops at once.\n";

static int bl_agent_level(const char *s)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

int bl_cmd_agent(int argc, char **argv)
{
    enum { O_GW = 256, O_KEY, O_CFG, O_CA, O_LOG };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "gateway", required_argument, NULL, O_GW },
        { "key-file", required_argument, NULL, O_KEY },
        { "config", required_argument, NULL, O_CFG },
        { "ca", required_argument, NULL, O_CA },
        { "log-level", required_argument, NULL, O_LOG },
        { NULL, 0, NULL, 0 },
    };
    bl_agent_opts_t o = { 0 };
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("agent", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_agent_help, stdout);
            return BL_EXIT_OK;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        if (c == O_GW)
            o.gateway = optarg;
        else if (c == O_KEY)
            o.key_file = optarg;
        else if (c == O_CFG)
            o.config = optarg;
        else if (c == O_CA)
            o.ca = optarg;
        else if (bl_agent_level(optarg) < 0)
            return bl_cli_usage("agent", "unknown log level '%s'", optarg);
        else
            bl_log_set_level(bl_agent_level(optarg));
    }
    if (optind != argc)
        return bl_cli_usage("agent", "unexpected argument '%s'", argv[optind]);
    if (!o.gateway || !o.key_file || !o.config)
        return bl_cli_usage("agent", "%s is required", !o.gateway ? "--gateway URL" : !o.key_file ? "--key-file FILE" : "--config FILE");
    bl_buf_t err;
    bl_buf_init(&err, 64 * 1024);
    int rc = bl_agent_run(&o, &err);
    if (rc != BL_OK)
        bl_cli_fail("agent", "%s", bl_buf_size(&err) ? bl_buf_cstr(&err) : "failed");
    bl_buf_free(&err);
    return rc == BL_OK ? BL_EXIT_OK : BL_EXIT_FAIL;
}
