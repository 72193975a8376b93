/*
 * cmd.h - the byline subcommands. Each takes the argv after the subcommand
 * name (argv[0] is the subcommand itself) and returns the process exit
 * status: 0 on success, 1 on failure, 2 on bad usage.
 */
#ifndef BL_CLI_CMD_H
#define BL_CLI_CMD_H

int bl_cmd_init(int argc, char **argv);
int bl_cmd_identity(int argc, char **argv);
int bl_cmd_kubeconfig(int argc, char **argv);
int bl_cmd_serve(int argc, char **argv);
int bl_cmd_audit(int argc, char **argv);
int bl_cmd_agent(int argc, char **argv);
int bl_cmd_agent_key(int argc, char **argv);
int bl_cmd_policy(int argc, char **argv);
int bl_cmd_review(int argc, char **argv);
int bl_cmd_config(int argc, char **argv);
int bl_cmd_eks_token(int argc, char **argv);

#endif
