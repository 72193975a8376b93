/* audit_checkpoint.c - `byline audit checkpoint` (placeholder until implemented). */
#include <stdio.h>
#include "cli/audit.h"

int bl_audit_checkpoint_cmd(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline audit checkpoint: not implemented yet\n");
    return 1;
}
