/* audit_checkpoint.c - `byline audit checkpoint`: the latest signed checkpoint. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli/audit.h"
#include "core/common.h"

static void bl_ck_usage(FILE *f)
{
    fprintf(f, "usage: byline audit checkpoint --dir DIR\n\n"
               "Prints the ledger's latest signed checkpoint (a C2SP signed note: origin,\n"
               "tree size, root hash, Ed25519 signature). Publish it somewhere the gateway\n"
               "cannot write (a ticket, a bucket, a second host): later, `byline audit\n"
               "verify --trusted-checkpoint FILE` proves the ledger still extends it, so\n"
               "nothing it covered was changed, removed or reordered.\n");
}

int bl_audit_checkpoint_cmd(int argc, char **argv)
{
    static const struct option opts[] = { { "dir", required_argument, NULL, 'd' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        if (c == 'd')
            dir = optarg;
        else if (c == 'h')
            return bl_ck_usage(stdout), 0;
        else
            return bl_ck_usage(stderr), 2;
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr, "byline audit checkpoint: %s\n", dir ? "unexpected argument" : "--dir is required");
        return 2;
    }
    char adir[4096], path[4200], buf[4096];
    if (bl_audit_dir_of(dir, adir, sizeof(adir)) != BL_OK)
        return 1;
    snprintf(path, sizeof(path), "%s/checkpoint", adir);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "byline audit checkpoint: no checkpoint in %s yet\n", adir);
        return 1;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    fwrite(buf, 1, n, stdout);
    return n > 0 ? 0 : 1;
}
