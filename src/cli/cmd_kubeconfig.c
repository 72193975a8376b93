/* cmd_kubeconfig.c - `byline kubeconfig` (placeholder until implemented). */
#include <stdio.h>
#include "cli/cmd.h"

int bl_cmd_kubeconfig(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline kubeconfig: not implemented yet\n");
    return 1;
}
