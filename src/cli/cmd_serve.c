/* cmd_serve.c - `byline serve` (placeholder until implemented). */
#include <stdio.h>
#include "cli/cmd.h"

int bl_cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline serve: not implemented yet\n");
    return 1;
}
