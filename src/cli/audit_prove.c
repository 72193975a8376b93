/* audit_prove.c - `byline audit prove` (placeholder until implemented). */
#include <stdio.h>
#include "cli/audit.h"

int bl_audit_prove_cmd(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "byline audit prove: not implemented yet\n");
    return 1;
}
