/* audit_verify.c - `byline audit verify` (placeholder until implemented). */
#include <stdio.h>
#include "cli/audit.h"

int bl_audit_verify_cmd(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline audit verify: not implemented yet\n");
    return 1;
}
