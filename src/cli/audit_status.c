/* audit_status.c - `byline audit status` (placeholder until implemented). */
#include <stdio.h>
#include "cli/audit.h"

int bl_audit_status_cmd(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline audit status: not implemented yet\n");
    return 1;
}
