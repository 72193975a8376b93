/*
 * audit_prove.c - `byline audit prove SEQ`: the RFC 9162 inclusion proof
 * of one entry against the latest checkpoint in the ledger that verifies
 * with the key, with everything a third party needs to check it alone:
 * the entry's exact line (leaf hash = SHA-256(0x00 || line)), the audit
 * path, and the signed checkpoint. The proof is verified before printing.
 *
 * Every leaf hash is held in memory (32 bytes each) up to
 * BL_PROVE_LEAVES_MAX.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/reader.h"
#include "cli/audit.h"
#include "cli/audit_ledger.h"

#define BL_PROVE_LEAVES_MAX (1u << 25) /* 1 GiB of hashes: 33 million entries */

typedef struct {
    bl_ledger_ctx_t lc;
    bl_hash_t *leaves;
    uint64_t n, cap;
    uint64_t seq;
    int found;
    uint64_t index;          /* leaf index of the entry */
    bl_buf_t line;           /* its line */
    bl_buf_t ck;             /* the latest verified checkpoint note */
    uint64_t ck_size;
    bl_hash_t ck_root;
    char error[600];
} bl_prove_t;

static void bl_prove_usage(FILE *f)
{
    fprintf(f, "usage: byline audit prove SEQ --dir DIR [--key PUBKEY] [--origin NAME] [--json]\n\n"
               "Prints the inclusion proof (RFC 9162) of entry SEQ in the tree signed by the\n"
               "latest checkpoint in the ledger: leaf index, tree size, leaf hash, audit path,\n"
               "the checkpoint and the entry's line. Checked before it is printed.\n");
}

static int bl_prove_push(bl_prove_t *p, const bl_hash_t *h)
{
    if (p->n == p->cap) {
        uint64_t ncap = p->cap ? p->cap * 2 : 1024;
        bl_hash_t *q = ncap <= BL_PROVE_LEAVES_MAX ? realloc(p->leaves, ncap * sizeof(*q)) : NULL;
        if (q == NULL) {
            snprintf(p->error, sizeof(p->error), "the ledger has more than %u entries, more than prove holds",
                     BL_PROVE_LEAVES_MAX);
            return BL_ERROR;
        }
        p->leaves = q;
        p->cap = ncap;
    }
    p->leaves[p->n++] = *h;
    return BL_OK;
}

/* A checkpoint line: kept when it verifies and is not behind the last one kept. */
static void bl_prove_checkpoint(bl_prove_t *p, json_t *o)
{
    const char *note = json_string_value(json_object_get(o, "checkpoint")), *why;
    size_t n = json_string_length(json_object_get(o, "checkpoint"));
    uint64_t size;
    bl_hash_t root;
    if (bl_ledger_verifier(&p->lc, note, n, p->error, sizeof(p->error)) != BL_OK) {
        p->error[0] = '\0';
        return;
    }
    if (bl_note_verify(p->lc.v, note, n, &size, &root, NULL, &why) != BL_OK || size > p->n)
        return;
    bl_buf_reset(&p->ck);
    if (bl_buf_append(&p->ck, note, n) == BL_OK) {
        p->ck_size = size;
        p->ck_root = root;
    }
}

static int bl_prove_line(bl_prove_t *p, const bl_line_t *l)
{
    json_error_t e;
    json_t *o = json_loadb(l->p, l->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    int rc = BL_OK;
    if (json_is_string(json_object_get(o, "checkpoint"))) {
        bl_prove_checkpoint(p, o);
    } else {
        bl_hash_t h;
        bl_merkle_leaf(l->p, l->len, &h);
        json_t *seq = json_object_get(o, "seq");
        if (json_is_integer(seq) && (uint64_t)json_integer_value(seq) == p->seq && !p->found) {
            p->found = 1;
            p->index = p->n;
            if (bl_buf_append(&p->line, l->p, l->len) != BL_OK)
                rc = BL_ERROR;
        }
        if (rc == BL_OK)
            rc = bl_prove_push(p, &h);
    }
    json_decref(o);
    return rc;
}

static int bl_prove_read(bl_prove_t *p)
{
    bl_buf_t err;
    bl_line_t l;
    int rc;
    bl_buf_init(&err, 1024);
    bl_reader_t *r = bl_reader_open(p->lc.audit_dir, &err);
    if (r == NULL) {
        snprintf(p->error, sizeof(p->error), "%s", bl_buf_cstr(&err));
        bl_buf_free(&err);
        return BL_ERROR;
    }
    while ((rc = bl_reader_next(r, &l, &err)) == BL_OK)
        if (!l.torn && bl_prove_line(p, &l) != BL_OK)
            break;
    if (rc == BL_ERROR)
        snprintf(p->error, sizeof(p->error), "%s (run `byline audit verify`)", bl_buf_cstr(&err));
    bl_reader_close(r);
    bl_buf_free(&err);
    return rc == BL_ERROR || p->error[0] ? BL_ERROR : BL_OK;
}

static void bl_prove_print(const bl_prove_t *p, const bl_hash_t *path, size_t len, int as_json)
{
    bl_buf_t b;
    bl_buf_init(&b, 64 * 100);
    bl_note_b64_encode(p->leaves[p->index].h, 32, &b);
    char leaf[48];
    snprintf(leaf, sizeof(leaf), "%.*s", (int)bl_buf_size(&b), bl_buf_data(&b));
    json_t *ap = json_array();
    for (size_t i = 0; i < len; i++) {
        bl_buf_reset(&b);
        bl_note_b64_encode(path[i].h, 32, &b);
        json_array_append_new(ap, json_stringn(bl_buf_data(&b), bl_buf_size(&b)));
    }
    json_error_t e;
    json_t *entry = json_loadb(bl_buf_data(&p->line), bl_buf_size(&p->line), JSON_ALLOW_NUL, &e);
    if (as_json) {
        json_t *o = json_pack("{s:I,s:I,s:I,s:s,s:o,s:s%,s:s%,s:O?}", "seq", (json_int_t)p->seq, "leaf_index",
                              (json_int_t)p->index, "tree_size", (json_int_t)p->ck_size, "leaf_hash", leaf,
                              "audit_path", ap, "checkpoint", bl_buf_data(&p->ck), bl_buf_size(&p->ck), "line",
                              bl_buf_data(&p->line), bl_buf_size(&p->line), "entry",
                              json_object_get(entry, "entry"));
        char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
    } else {
        printf("entry:       %llu\nleaf index:  %llu\ntree size:   %llu\nleaf hash:   %s  (SHA-256 of 0x00 and the line)\n",
               (unsigned long long)p->seq, (unsigned long long)p->index, (unsigned long long)p->ck_size, leaf);
        printf("audit path:  %zu hash(es), leaf to root (RFC 9162 2.1.3)\n", len);
        for (size_t i = 0; i < len; i++)
            printf("  %s\n", json_string_value(json_array_get(ap, i)));
        printf("checkpoint:\n%.*s", (int)bl_buf_size(&p->ck), bl_buf_data(&p->ck));
        printf("line:\n%.*s\n", (int)bl_buf_size(&p->line), bl_buf_data(&p->line));
        printf("verified:    the path leads from the leaf hash to the checkpoint's root\n");
        json_decref(ap);
    }
    json_decref(entry);
    bl_buf_free(&b);
}

static int bl_prove_run(bl_prove_t *p, int as_json)
{
    bl_hash_t path[64];
    size_t len = BL_ARRAY_LEN(path);
    if (bl_prove_read(p) != BL_OK)
        return BL_ERROR;
    if (!p->found) {
        snprintf(p->error, sizeof(p->error), "entry %llu is not in the ledger", (unsigned long long)p->seq);
        return BL_ERROR;
    }
    if (bl_buf_size(&p->ck) == 0 || p->index >= p->ck_size) {
        snprintf(p->error, sizeof(p->error),
                 "entry %llu is not yet covered by a checkpoint that verifies (latest: tree size %llu); "
                 "byline signs one within a second of each write",
                 (unsigned long long)p->seq, (unsigned long long)p->ck_size);
        return BL_ERROR;
    }
    if (p->index != p->seq || bl_merkle_prove(p->leaves, p->ck_size, p->index, path, &len) != BL_OK ||
        bl_merkle_verify_inclusion(&p->leaves[p->index], p->index, p->ck_size, path, len, &p->ck_root) != BL_OK) {
        snprintf(p->error, sizeof(p->error),
                 "the ledger does not match its checkpoint of size %llu: no proof (run `byline audit verify`)",
                 (unsigned long long)p->ck_size);
        return BL_ERROR;
    }
    bl_prove_print(p, path, len, as_json);
    return BL_OK;
}

int bl_audit_prove_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' }, { "key", required_argument, NULL, 'k' },
        { "origin", required_argument, NULL, 'o' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },      { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *key = NULL, *origin = NULL;
    int as_json = 0, c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:k:o:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'j': as_json = 1; break;
        case 'h': bl_prove_usage(stdout); return 0;
        default: bl_prove_usage(stderr); return 2;
        }
    }
    if (dir == NULL || optind != argc - 1) {
        fprintf(stderr, "byline audit prove: %s\n", dir ? "one SEQ is required" : "--dir is required");
        return 2;
    }
    const char *s = argv[optind];
    unsigned long long seq = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || (s[0] == '0' && s[1] != '\0')) {
        fprintf(stderr, "byline audit prove: SEQ is an entry's sequence number, not '%s'\n", s);
        return 2;
    }
    bl_prove_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return 1;
    p->seq = seq;
    bl_buf_init(&p->line, BL_READER_MAX_LINE);
    bl_buf_init(&p->ck, BL_NOTE_MAX);
    int rc = bl_ledger_ctx_init(&p->lc, dir, key, origin, p->error, sizeof(p->error));
    if (rc == BL_OK)
        rc = bl_prove_run(p, as_json);
    if (rc != BL_OK)
        fprintf(stderr, "byline audit prove: %s\n", p->error);
    bl_ledger_ctx_free(&p->lc);
    free(p->leaves);
    bl_buf_free(&p->line);
    bl_buf_free(&p->ck);
    free(p);
    return rc == BL_OK ? 0 : 1;
}
