/* cmd_init.c - `byline init` (placeholder until implemented). */
#include <stdio.h>
#include "cli/cmd.h"

int bl_cmd_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline init: not implemented yet\n");
    return 1;
}
