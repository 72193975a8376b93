/* cmd_identity.c - `byline identity` (placeholder until implemented). */
#include <stdio.h>
#include "cli/cmd.h"

int bl_cmd_identity(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline identity: not implemented yet\n");
    return 1;
}
