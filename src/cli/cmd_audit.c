/* cmd_audit.c - `byline audit` (placeholder until implemented). */
#include <stdio.h>
#include "cli/cmd.h"

int bl_cmd_audit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline audit: not implemented yet\n");
    return 1;
}
