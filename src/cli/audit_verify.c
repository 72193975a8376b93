/*
 * audit_verify.c - `byline audit verify`: checks the whole ledger as
 * docs/AUDIT-FORMAT.md section 6 says, and prints a summary in the manner
 * of `aws cloudtrail validate-logs` (what was asked, what was found, N/M
 * valid, each INVALID item, a verdict).
 *
 * One pass, O(log n) memory for the tree plus the requests still open.
 * A damaged line does not stop the pass: the failure is recorded with its
 * place and the checks go on, so one verify run names every problem. A
 * checkpoint whose root differs only because of damage already found at a
 * lower sequence number is counted invalid but not reported again as a
 * fork; a root mismatch no damage explains is a fork.
 *
 * Session captures: each result entry's "capture" member is checked once
 * the next leaf's prev vouches for that entry (an entry found modified is
 * not trusted to name a file), so one capture is in hand at a time. The
 * files in sessions/ are listed before the ledger is read; those no
 * result names are warnings, not failures (see bl_verify_orphan).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/capture.h"
#include "audit/jcs.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/reader.h"
#include "cli/audit.h"
#include "cli/audit_ledger.h"

#define BL_VERIFY_FAILURES_MAX 10000 /* kept in detail; past that, counted */
#define BL_VERIFY_WARNINGS_MAX 1000  /* likewise */

typedef struct {
    const char *kind;   /* modified, missing, reordered, truncated, fork, bad-signature, unclosed,
                         * capture-missing, capture-modified, capture-unreadable, capture-invalid */
    int has_at;
    uint64_t at;        /* the sequence number or tree size after '@' */
    unsigned segment;   /* where (0: not in a segment) */
    uint64_t lineno;
    char detail[320];
} bl_vfail_t;

typedef struct {
    const char *kind;   /* capture-unreferenced, sessions-unlisted */
    char file[160];     /* relative to the audit directory */
    char detail[240];
} bl_vwarn_t;

/* The newest leaf's capture reference, not yet checked. */
typedef struct {
    int have;
    int skip;           /* the entry itself was found modified */
    int bad;            /* the member is not one byline writes: why */
    uint64_t seq;
    unsigned segment;
    uint64_t lineno;
    bl_capture_ref_t ref;
    char why[240];
} bl_vcap_t;

/* What the ledger said about a file listed in sessions/ (the low 2 bits of
 * its value in bl_verify_t.sessions; the entry's seq is the rest). */
#define BL_VSESS_LISTED  0u /* nothing yet */
#define BL_VSESS_ABORTED 1u /* its request was aborted at seq */
#define BL_VSESS_NOFILE  2u /* its result at seq names no file, or names one badly */

typedef struct {
    const char *label;  /* "trusted checkpoint" or "checkpoint file" */
    const char *path;
    int loaded;         /* verified and parsed */
    uint64_t size;
    bl_hash_t root;
    const char *status; /* consistent, fork, truncated, bad-signature, absent, contradicted */
} bl_vtrust_t;

typedef struct {
    int live;
    bl_ledger_ctx_t lc;         /* key, verifier, origin */
    bl_merkle_range_t tree;
    uint64_t expect, leaves, first_seq, last_seq;
    int have_seq;
    bl_hash_t prev;
    int prev_known;
    unsigned prev_seg;          /* where the previous leaf is */
    uint64_t prev_line;
    uint64_t damage;            /* lowest seq of damage found (UINT64_MAX: none) */
    uint64_t unknown;           /* 1 + highest seq whose entry is unreadable or missing (0: none) */
    uint64_t entries_bad, missing;
    uint64_t checkpoints, checkpoints_ok;
    uint64_t intents, results, aborted, notices, other;
    int pending_fork;
    uint64_t fork_size;
    unsigned fork_seg;
    uint64_t fork_line;
    struct { uint64_t lo, hi; int filled; } gap[64]; /* seq ranges jumped over, not yet judged */
    unsigned ngap;
    bl_vtrust_t trust[2];
    unsigned ntrust;
    bl_ledger_ids_t open;       /* open intents: id -> seq */
    bl_vfail_t *fail;
    size_t nfail, fails_dropped;
    unsigned torn_seg;
    uint64_t torn_off, torn_len;
    int torn;
    unsigned last_seg;
    uint64_t last_lineno;
    int no_captures;            /* --no-captures: no capture file is looked at */
    bl_vcap_t cap;
    uint64_t captures, captures_checked, captures_valid, captures_unwritten, captures_untrusted;
    bl_ledger_ids_t sessions;   /* files in sessions/ no result has named yet: id -> BL_VSESS_* | seq << 2 */
    bl_vwarn_t *warn;
    size_t nwarn, warns_dropped;
    char error[512];            /* a reason verification could not run at all */
} bl_verify_t;

static void bl_verify_usage(FILE *f)
{
    fprintf(f,
            "usage: byline audit verify --dir DIR [--key PUBKEY] [--origin NAME]\n"
            "                           [--trusted-checkpoint FILE] [--live] [--no-captures] [--json]\n\n"
            "Checks the whole audit ledger: every line canonical, sequence numbers without gaps,\n"
            "each entry chained to the previous one, every checkpoint signed and matching the\n"
            "recomputed Merkle tree, every intent closed by a result or an abort, the tree\n"
            "against a checkpoint kept elsewhere (and the audit directory's checkpoint file),\n"
            "and every session capture a result names: sessions/<id>.cap of that entry's id,\n"
            "present, of the recorded size and SHA-256 (hashed in 64 KiB pieces). Files in\n"
            "sessions/ that no result names (a crash between writing the capture and its result)\n"
            "are warnings, not failures.\n\n"
            "  --dir DIR                 configuration directory (its audit.dir is read)\n"
            "  --key PUBKEY              the signing key's public half (default DIR/audit-signing.pub)\n"
            "  --origin NAME             the checkpoints' origin (default: what the checkpoints say)\n"
            "  --trusted-checkpoint FILE a checkpoint published earlier: the ledger must extend it\n"
            "  --live                    the gateway is running: open intents are in flight\n"
            "  --no-captures             do not look at capture files (the ledger was shipped without\n"
            "                            sessions/); the summary says they were not checked\n"
            "  --json                    one JSON object instead of the summary\n\n"
            "Exits 0 when everything checks out, 1 when something does not (each failure named:\n"
            "modified@SEQ, missing@SEQ, reordered@SEQ, truncated, fork@SIZE, bad-signature,\n"
            "unclosed@SEQ, and for the capture named by the result entry SEQ: capture-missing@SEQ,\n"
            "capture-modified@SEQ, capture-unreadable@SEQ, capture-invalid@SEQ), 2 on bad usage.\n");
}

/* Records a failure; deduplicates a repeat of the last one (same kind and place). */
static void bl_vfail(bl_verify_t *vf, const char *kind, int has_at, uint64_t at, unsigned seg, uint64_t lineno,
                     const char *fmt, ...) BL_PRINTF(7, 8);

static void bl_vfail(bl_verify_t *vf, const char *kind, int has_at, uint64_t at, unsigned seg, uint64_t lineno,
                     const char *fmt, ...)
{
    if (vf->nfail > 0) {
        bl_vfail_t *l = &vf->fail[vf->nfail - 1];
        if (!strcmp(l->kind, kind) && l->has_at == has_at && l->at == at)
            return;
    }
    if (has_at && (!strcmp(kind, "modified") || !strcmp(kind, "missing") || !strcmp(kind, "reordered")) &&
        at < vf->damage)
        vf->damage = at;
    if (vf->nfail == BL_VERIFY_FAILURES_MAX) {
        vf->fails_dropped++;
        return;
    }
    if (vf->nfail % 64 == 0) {
        bl_vfail_t *p = realloc(vf->fail, (vf->nfail + 64) * sizeof(*p));
        if (p == NULL) {
            vf->fails_dropped++;
            return;
        }
        vf->fail = p;
    }
    bl_vfail_t *f = &vf->fail[vf->nfail++];
    f->kind = kind;
    f->has_at = has_at;
    f->at = at;
    f->segment = seg;
    f->lineno = lineno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
}

/* Records a warning (it does not change the verdict). */
static void bl_vwarn(bl_verify_t *vf, const char *kind, const char *file, const char *detail)
{
    if (vf->nwarn == BL_VERIFY_WARNINGS_MAX) {
        vf->warns_dropped++;
        return;
    }
    if (vf->nwarn % 64 == 0) {
        bl_vwarn_t *p = realloc(vf->warn, (vf->nwarn + 64) * sizeof(*p));
        if (p == NULL) {
            vf->warns_dropped++;
            return;
        }
        vf->warn = p;
    }
    bl_vwarn_t *w = &vf->warn[vf->nwarn++];
    w->kind = kind;
    snprintf(w->file, sizeof(w->file), "%s", file);
    snprintf(w->detail, sizeof(w->detail), "%s", detail);
}

/* ---- session captures ---- */

/* Lists sessions/ before the ledger is read: on a running gateway a
 * capture is on disk before its result is queued, so every file whose
 * result the pass below reads is in the list. */
static void bl_verify_sessions_list(bl_verify_t *vf)
{
    char path[4200], id[64];
    snprintf(path, sizeof(path), "%s/" BL_CAPTURE_SUBDIR, vf->lc.audit_dir);
    DIR *d = opendir(path);
    struct dirent *de;
    if (d == NULL) {
        if (errno != ENOENT)
            bl_vwarn(vf, "sessions-unlisted", BL_CAPTURE_SUBDIR, strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), BL_CAPTURE_SUBDIR "/%s", de->d_name);
        if (bl_capture_name_id(de->d_name, id, sizeof(id)) != BL_OK) {
            bl_vwarn(vf, "capture-unreferenced", path, "not a capture file's name (<record id>.cap)");
        } else if (bl_ledger_ids_put(&vf->sessions, id, BL_VSESS_LISTED) != BL_OK) {
            bl_vwarn(vf, "sessions-unlisted", BL_CAPTURE_SUBDIR,
                     "too many files to hold: files no result names are not looked for");
            bl_ledger_ids_free(&vf->sessions);
            break;
        }
    }
    closedir(d);
}

/* Notes what the ledger said about a listed capture file's request. */
static void bl_verify_session_mark(bl_verify_t *vf, const char *id, unsigned tag, uint64_t seq)
{
    if (bl_ledger_ids_get(&vf->sessions, id, NULL) == BL_OK)
        bl_ledger_ids_put(&vf->sessions, id, tag | seq << 2);
}

/* Takes a result entry's capture member as the one pending (the previous
 * one was settled before). `self_bad`: the entry was already found modified. */
static void bl_verify_capture_take(bl_verify_t *vf, const json_t *entry, uint64_t seq, const bl_line_t *l,
                                   int self_bad)
{
    bl_vcap_t *c = &vf->cap;
    bl_buf_t err;
    bl_buf_init(&err, sizeof(c->why));
    int rc = bl_capture_ref_get(entry, &c->ref, &err);
    if (rc == BL_DECLINED)
        goto end;
    if (rc == BL_OK && c->ref.error[0]) {
        vf->captures_unwritten++;
        if (c->ref.id[0])
            bl_verify_session_mark(vf, c->ref.id, BL_VSESS_NOFILE, seq);
        goto end;
    }
    vf->captures++;
    c->have = 1;
    c->skip = self_bad;
    c->bad = rc == BL_ERROR;
    c->seq = seq;
    c->segment = l->segment;
    c->lineno = l->lineno;
    snprintf(c->why, sizeof(c->why), "%s", c->bad && bl_buf_cstr(&err) ? bl_buf_cstr(&err) : "");
    if (rc == BL_OK)
        bl_ledger_ids_del(&vf->sessions, c->ref.id);
    else if (c->ref.id[0])
        bl_verify_session_mark(vf, c->ref.id, BL_VSESS_NOFILE, seq);
end:
    bl_buf_free(&err);
}

/* Checks the pending capture. `modified`: the next leaf's prev showed the
 * entry naming it was modified; then its reference is not trusted and the
 * modified@ already reported covers it. */
static void bl_verify_capture_settle(bl_verify_t *vf, int modified)
{
    static const char *kinds[] = { [BL_CAPTURE_MISSING] = "capture-missing", [BL_CAPTURE_MODIFIED] = "capture-modified",
                                   [BL_CAPTURE_UNREADABLE] = "capture-unreadable" };
    bl_vcap_t *c = &vf->cap;
    if (!c->have)
        return;
    c->have = 0;
    if (modified || c->skip) {
        vf->captures_untrusted++;
        return;
    }
    if (c->bad) {
        bl_vfail(vf, "capture-invalid", 1, c->seq, c->segment, c->lineno, "the capture member: %s", c->why);
        return;
    }
    if (vf->no_captures)
        return;
    bl_buf_t err;
    bl_buf_init(&err, 512);
    vf->captures_checked++;
    bl_capture_check_t v = bl_capture_check(vf->lc.audit_dir, &c->ref, &err);
    if (v == BL_CAPTURE_MATCH)
        vf->captures_valid++;
    else
        bl_vfail(vf, kinds[v], 1, c->seq, c->segment, c->lineno, "%s: %s", c->ref.file,
                 bl_buf_cstr(&err) ? bl_buf_cstr(&err) : "?");
    bl_buf_free(&err);
}

/*
 * A file in sessions/ that no result names. A warning, not a failure: the
 * gateway writes and syncs a capture before it queues the result that
 * names it, so a crash in between leaves exactly this (the restart then
 * writes an aborted entry for the intent); the ledger vouches only for
 * files it names, replay refuses a file no result names, and an extra
 * file falsifies no recorded fact. The detail says which case it looks
 * like, so an operator can tell a crash's leftover from a stray file.
 */
static void bl_verify_orphan(const char *id, uint64_t v, void *arg)
{
    bl_verify_t *vf = arg;
    char file[128], detail[240];
    unsigned long long seq = (unsigned long long)(v >> 2);
    uint64_t open;
    snprintf(file, sizeof(file), BL_CAPTURE_SUBDIR "/%s.cap", id);
    if ((v & 3) == BL_VSESS_ABORTED)
        snprintf(detail, sizeof(detail), "no result names it; its request was aborted at entry %llu (the gateway "
                 "stopped after writing the capture, before the result)", seq);
    else if ((v & 3) == BL_VSESS_NOFILE)
        snprintf(detail, sizeof(detail), "the request's result, entry %llu, does not name it", seq);
    else if (bl_ledger_ids_get(&vf->open, id, &open) == BL_OK)
        snprintf(detail, sizeof(detail), "no result names it yet; its intent, entry %llu, is %s",
                 (unsigned long long)open, vf->live ? "in flight" : "unclosed");
    else
        snprintf(detail, sizeof(detail), "no entry in the ledger has its id (not a capture of this ledger, or "
                 "the entries about it are missing)");
    bl_vwarn(vf, "capture-unreferenced", file, detail);
}

static int bl_vwarn_cmp(const void *a, const void *b)
{
    const bl_vwarn_t *x = a, *y = b;
    int k = strcmp(x->kind, y->kind);
    return k ? k : strcmp(x->file, y->file);
}

/* ---- the trusted checkpoints ---- */

static void bl_verify_trust_load(bl_verify_t *vf, bl_vtrust_t *t)
{
    char why[512];
    const char *w = why;
    bl_buf_t note;
    bl_buf_init(&note, BL_NOTE_MAX);
    int rc = bl_ledger_read_file(t->path, &note, why, sizeof(why));
    if (rc == BL_DECLINED && t == &vf->trust[vf->ntrust - 1] && !strcmp(t->label, "checkpoint file")) {
        t->status = "absent"; /* a ledger without checkpoints yet has none */
        goto end;
    }
    if (rc == BL_OK && bl_ledger_verifier(&vf->lc, bl_buf_data(&note), bl_buf_size(&note), why, sizeof(why)) != BL_OK)
        rc = BL_ERROR;
    if (rc == BL_OK)
        rc = bl_note_verify(vf->lc.v, bl_buf_data(&note), bl_buf_size(&note), &t->size, &t->root, NULL, &w);
    if (rc == BL_OK) {
        t->loaded = 1;
        t->status = "consistent";
    } else {
        t->status = "bad-signature";
        bl_vfail(vf, "bad-signature", 0, 0, 0, 0, "%s %s: %s", t->label, t->path, w);
    }
end:
    bl_buf_free(&note);
}

/* Compares the tree of vf->leaves leaves with each trusted checkpoint of that size. */
static void bl_verify_trust_check(bl_verify_t *vf)
{
    for (unsigned i = 0; i < vf->ntrust; i++) {
        bl_vtrust_t *t = &vf->trust[i];
        if (!t->loaded || t->size != vf->leaves)
            continue;
        bl_hash_t root;
        bl_merkle_root(&vf->tree, &root);
        if (memcmp(root.h, t->root.h, sizeof(root.h)) == 0)
            continue;
        if (vf->damage < t->size) {
            t->status = "contradicted by the damage above";
        } else {
            t->status = "fork";
            bl_vfail(vf, "fork", 1, t->size, 0, 0, "the ledger's tree of %llu entries is not the one the %s %s signed",
                     (unsigned long long)t->size, t->label, t->path);
        }
    }
}

/* ---- lines ---- */

/* Settles a checkpoint mismatch left open until the next leaf showed
 * whether the leaf before it was modified. */
static void bl_verify_settle_fork(bl_verify_t *vf)
{
    if (!vf->pending_fork)
        return;
    vf->pending_fork = 0;
    if (vf->damage < vf->fork_size)
        return;
    bl_vfail(vf, "fork", 1, vf->fork_size, vf->fork_seg, vf->fork_line,
             "the checkpoint's root is not the tree of the %llu entries before it: history was rewritten",
             (unsigned long long)vf->fork_size);
}

/* Jumped-over sequence numbers become missing@ unless a later line filled them (reordered). */
static void bl_verify_settle_gaps(bl_verify_t *vf, unsigned keep)
{
    while (vf->ngap > keep) {
        if (!vf->gap[0].filled)
            bl_vfail(vf, "missing", 1, vf->gap[0].lo, 0, 0, "entries %llu..%llu are not in the ledger",
                     (unsigned long long)vf->gap[0].lo, (unsigned long long)vf->gap[0].hi - 1);
        memmove(&vf->gap[0], &vf->gap[1], (vf->ngap - 1) * sizeof(vf->gap[0]));
        vf->ngap--;
    }
}

static void bl_verify_entry(bl_verify_t *vf, json_t *entry, uint64_t seq, const bl_line_t *l, int self_bad)
{
    const char *kind = json_string_value(json_object_get(entry, "kind"));
    const char *id = json_string_value(json_object_get(entry, "id"));
    if (kind && !strcmp(kind, "intent")) {
        vf->intents++;
        if (id && bl_ledger_ids_put(&vf->open, id, seq) != BL_OK)
            bl_vfail(vf, "unclosed", 1, seq, l->segment, l->lineno, "more open intents than the verifier holds");
    } else if (kind && (!strcmp(kind, "result") || !strcmp(kind, "aborted"))) {
        kind[0] == 'r' ? vf->results++ : vf->aborted++;
        if (id)
            bl_ledger_ids_del(&vf->open, id);
        if (kind[0] == 'r')
            bl_verify_capture_take(vf, entry, seq, l, self_bad);
        else if (id)
            bl_verify_session_mark(vf, id, BL_VSESS_ABORTED, seq);
    } else if (kind && !strcmp(kind, "notice")) {
        vf->notices++;
    } else {
        vf->other++;
    }
}

static void bl_verify_leaf(bl_verify_t *vf, const bl_line_t *l, json_t *o, const bl_hash_t *h)
{
    json_t *entry = json_object_get(o, "entry");
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    bl_hash_t prev;
    bl_str_t p64 = { json_string_value(json_object_get(o, "prev")), json_string_length(json_object_get(o, "prev")) };
    int prev_ok = bl_note_b64_decode(p64, prev.h, sizeof(prev.h)) == (long)sizeof(prev.h);
    int before_bad = 0, self_bad = !prev_ok;
    if (!prev_ok) {
        bl_vfail(vf, "modified", 1, seq, l->segment, l->lineno, "prev is not the base64 of 32 bytes");
        vf->entries_bad++;
    }
    if (seq == vf->expect) {
        if (prev_ok && vf->prev_known && memcmp(prev.h, vf->prev.h, sizeof(prev.h)) != 0) {
            self_bad = seq == 0;
            before_bad = seq > 0;
            if (seq == 0)
                bl_vfail(vf, "modified", 1, 0, l->segment, l->lineno, "entry 0's prev is not 32 zero bytes");
            else
                bl_vfail(vf, "modified", 1, seq - 1, vf->prev_seg, vf->prev_line,
                         "the entry's hash is not the prev of entry %llu (%s line %llu)", (unsigned long long)seq,
                         l->segment == vf->prev_seg ? "its" : "the next segment's", (unsigned long long)l->lineno);
            vf->entries_bad++;
        }
    } else if (seq > vf->expect) {
        if (vf->ngap == BL_ARRAY_LEN(vf->gap))
            bl_verify_settle_gaps(vf, vf->ngap - 1);
        vf->gap[vf->ngap].lo = vf->expect;
        vf->gap[vf->ngap].hi = seq;
        vf->gap[vf->ngap++].filled = 0;
        vf->missing += seq - vf->expect;
        vf->unknown = BL_MAX(vf->unknown, seq);
        if (vf->expect < vf->damage)
            vf->damage = vf->expect;
    } else {
        bl_vfail(vf, "reordered", 1, seq, l->segment, l->lineno, "entry %llu comes after entry %llu",
                 (unsigned long long)seq, (unsigned long long)vf->expect - 1);
        vf->entries_bad++;
        for (unsigned i = 0; i < vf->ngap; i++) {
            if (seq < vf->gap[i].lo || seq >= vf->gap[i].hi || vf->gap[i].filled)
                continue;
            /* an end of the range turned up late: moved, not lost */
            if (seq == vf->gap[i].lo)
                vf->gap[i].lo++;
            else if (seq == vf->gap[i].hi - 1)
                vf->gap[i].hi--;
            else
                continue;
            vf->gap[i].filled = vf->gap[i].lo == vf->gap[i].hi;
            vf->missing--;
        }
    }
    if (seq >= vf->expect) {
        vf->expect = seq + 1;
        vf->prev = *h;
        vf->prev_known = 1;
        vf->prev_seg = l->segment;
        vf->prev_line = l->lineno;
    }
    if (!vf->have_seq || seq < vf->first_seq)
        vf->first_seq = seq;
    if (!vf->have_seq || seq > vf->last_seq)
        vf->last_seq = seq;
    vf->have_seq = 1;
    bl_verify_capture_settle(vf, before_bad);
    bl_verify_entry(vf, entry, seq, l, self_bad);
}

/* Chooses the key name from the first checkpoint seen, unless given. */
static int bl_verify_need_verifier(bl_verify_t *vf, const char *note, size_t n)
{
    if (vf->lc.v)
        return BL_OK;
    return bl_ledger_verifier(&vf->lc, note, n, vf->error, sizeof(vf->error));
}

static void bl_verify_checkpoint(bl_verify_t *vf, const bl_line_t *l, json_t *o)
{
    json_t *c = json_object_get(o, "checkpoint");
    const char *note = json_string_value(c), *why = NULL;
    size_t n = json_string_length(c);
    uint64_t size;
    bl_hash_t root, mine;
    vf->checkpoints++;
    if (bl_verify_need_verifier(vf, note, n) != BL_OK) {
        bl_vfail(vf, "bad-signature", 0, 0, l->segment, l->lineno, "%s", vf->error);
        vf->error[0] = '\0';
        return;
    }
    if (bl_note_verify(vf->lc.v, note, n, &size, &root, NULL, &why) != BL_OK) {
        bl_vfail(vf, "bad-signature", 0, 0, l->segment, l->lineno, "checkpoint after entry %llu: %s",
                 (unsigned long long)vf->expect - (vf->expect > 0), why);
        return;
    }
    bl_merkle_root(&vf->tree, &mine);
    if (size == vf->leaves && memcmp(root.h, mine.h, sizeof(root.h)) == 0) {
        vf->checkpoints_ok++;
        return;
    }
    if (vf->damage < size || vf->damage < vf->leaves)
        return; /* explained by damage already reported */
    if (!vf->pending_fork) {
        vf->pending_fork = 1;
        vf->fork_size = size;
        vf->fork_seg = l->segment;
        vf->fork_line = l->lineno;
    }
}

/* A line that is not a canonical leaf or checkpoint line. */
static void bl_verify_broken(bl_verify_t *vf, const bl_line_t *l, const bl_hash_t *h, const char *why)
{
    static const char ck[] = "{\"checkpoint\":";
    bl_vfail(vf, "modified", 1, vf->expect, l->segment, l->lineno, "%s", why);
    if (l->len >= sizeof(ck) - 1 && memcmp(l->p, ck, sizeof(ck) - 1) == 0) {
        vf->checkpoints++; /* a damaged checkpoint: not a leaf */
        return;
    }
    vf->entries_bad++;
    bl_verify_capture_settle(vf, 0); /* whether the entry before was modified cannot be told now */
    vf->unknown = BL_MAX(vf->unknown, vf->expect + 1);
    bl_merkle_append(&vf->tree, h); /* taken as the leaf expected here */
    vf->leaves++;
    vf->expect++;
    vf->prev_known = 0;            /* its real hash is unknown: the next prev cannot be judged */
}

/* Returns the parsed line when it is a canonical leaf or checkpoint line. */
static json_t *bl_verify_parse(const bl_line_t *l, int *is_leaf, const char **why)
{
    json_error_t e;
    json_t *o = json_loadb(l->p, l->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    *why = "the line is not JSON";
    if (o == NULL)
        return NULL;
    bl_buf_t b;
    bl_buf_init(&b, l->len);
    int canonical = bl_jcs_dump(o, &b) == BL_OK && bl_buf_size(&b) == l->len && memcmp(b.base, l->p, l->len) == 0;
    bl_buf_free(&b);
    json_t *seq = json_object_get(o, "seq");
    *is_leaf = json_object_size(o) == 3 && json_is_object(json_object_get(o, "entry")) &&
               json_is_string(json_object_get(o, "prev")) && json_is_integer(seq) && json_integer_value(seq) >= 0;
    int is_ck = json_object_size(o) == 1 && json_is_string(json_object_get(o, "checkpoint"));
    if (canonical && (*is_leaf || is_ck))
        return o;
    *why = canonical ? "the line is neither a leaf nor a checkpoint" : "the line is not in canonical form (RFC 8785)";
    json_decref(o);
    return NULL;
}

static void bl_verify_line(bl_verify_t *vf, const bl_line_t *l)
{
    bl_hash_t h;
    int is_leaf = 0;
    const char *why;
    vf->last_seg = l->segment;
    vf->last_lineno = l->lineno;
    bl_merkle_leaf(l->p, l->len, &h);
    json_t *o = bl_verify_parse(l, &is_leaf, &why);
    if (o == NULL) {
        bl_verify_broken(vf, l, &h, why);
    } else if (is_leaf) {
        bl_verify_leaf(vf, l, o, &h);
        bl_merkle_append(&vf->tree, &h);
        vf->leaves++;
    } else {
        bl_verify_checkpoint(vf, l, o);
    }
    json_decref(o);
    if (o == NULL || is_leaf) {
        bl_verify_settle_fork(vf);
        bl_verify_trust_check(vf);
    }
}

/* Reads every line. Returns BL_OK, or BL_ERROR when the ledger cannot be read. */
static int bl_verify_read(bl_verify_t *vf, bl_reader_t *r, unsigned nseg)
{
    bl_buf_t err;
    bl_line_t l;
    int rc;
    bl_buf_init(&err, 1024);
    bl_verify_trust_check(vf); /* a trusted checkpoint of size 0 */
    while ((rc = bl_reader_next(r, &l, &err)) != BL_DECLINED) {
        if (rc == BL_ERROR) {
            /* a missing segment or an over-long line: the entries there are gone or unreadable */
            bl_vfail(vf, strstr(bl_buf_cstr(&err), "missing") ? "missing" : "modified", 1, vf->expect, 0, 0, "%s",
                     bl_buf_cstr(&err));
            bl_buf_reset(&err);
            continue;
        }
        if (l.torn && l.segment == nseg) { /* the newest write, cut short or still going */
            vf->torn = 1;
            vf->torn_seg = l.segment;
            vf->torn_off = l.offset;
            vf->torn_len = l.len;
            continue;
        }
        if (l.torn)
            bl_vfail(vf, "modified", 1, vf->expect, l.segment, l.lineno, "segment %06u does not end in a newline",
                     l.segment);
        bl_verify_line(vf, &l);
    }
    bl_buf_free(&err);
    return BL_OK;
}

/* The end: gaps, forks, truncation, open intents. An intent whose result
 * may be in an unreadable, missing or cut-off entry is counted open but
 * not reported: the damage that hides its result already is. */
static void bl_verify_finish(bl_verify_t *vf)
{
    int truncated = 0;
    bl_verify_capture_settle(vf, 0); /* the last entry: only checkpoints cover it */
    bl_ledger_ids_each(&vf->sessions, bl_verify_orphan, vf);
    if (vf->nwarn)
        qsort(vf->warn, vf->nwarn, sizeof(*vf->warn), bl_vwarn_cmp);
    bl_verify_settle_fork(vf);
    bl_verify_settle_gaps(vf, 0);
    for (unsigned i = 0; i < vf->ntrust; i++) {
        bl_vtrust_t *t = &vf->trust[i];
        if (!t->loaded || t->size <= vf->leaves)
            continue;
        if (vf->expect >= t->size && vf->damage < t->size) {
            t->status = "contradicted by the damage above"; /* entries missing inside, not at the end */
            continue;
        }
        t->status = "truncated";
        truncated = 1;
        bl_vfail(vf, "truncated", 0, 0, 0, 0, "the %s %s has %llu entries; the ledger %llu", t->label, t->path,
                 (unsigned long long)t->size, (unsigned long long)vf->leaves);
    }
    if (vf->live || truncated)
        return;
    uint64_t *seqs = NULL;
    size_t n = bl_ledger_ids_seqs(&vf->open, &seqs);
    for (size_t i = 0; i < n; i++)
        if (seqs[i] + 1 >= vf->unknown)
            bl_vfail(vf, "unclosed", 1, seqs[i], 0, 0, "intent %llu has no result or aborted entry",
                     (unsigned long long)seqs[i]);
    free(seqs);
}

/* ---- output ---- */

static void bl_verify_place(const bl_vfail_t *f, char *out, size_t cap)
{
    if (f->segment)
        snprintf(out, cap, "ledger-%06u.jsonl line %llu: ", f->segment, (unsigned long long)f->lineno);
    else
        out[0] = '\0';
}

static void bl_verify_name(const bl_vfail_t *f, char *out, size_t cap)
{
    if (f->has_at)
        snprintf(out, cap, "%s@%llu", f->kind, (unsigned long long)f->at);
    else
        snprintf(out, cap, "%s", f->kind);
}

static size_t bl_verify_open_count(const bl_verify_t *vf)
{
    return vf->open.live;
}

/* The captures line of the summary. */
static void bl_verify_print_captures(const bl_verify_t *vf)
{
    if (vf->no_captures) {
        printf("captures not checked (--no-captures): %llu named by the ledger\n", (unsigned long long)vf->captures);
        return;
    }
    printf("%llu/%llu captures valid (%llu checked", (unsigned long long)vf->captures_valid,
           (unsigned long long)vf->captures, (unsigned long long)vf->captures_checked);
    if (vf->captures_untrusted)
        printf("; %llu named by modified entries, not checked", (unsigned long long)vf->captures_untrusted);
    if (vf->captures_unwritten)
        printf("; %llu not written at the time", (unsigned long long)vf->captures_unwritten);
    printf(")\n");
}

static void bl_verify_print_warnings(const bl_verify_t *vf)
{
    for (size_t i = 0; i < vf->nwarn && i < 10; i++)
        printf("WARNING %s: %s: %s\n", vf->warn[i].kind, vf->warn[i].file, vf->warn[i].detail);
    if (vf->nwarn + vf->warns_dropped > 10)
        printf("(and %zu more warnings; --json lists %s)\n", vf->nwarn + vf->warns_dropped - 10,
               vf->warns_dropped ? "the first 1000" : "them all");
}

static void bl_verify_print_text(const bl_verify_t *vf, unsigned nseg)
{
    char name[64], place[64];
    printf("Verifying the audit ledger in %s\n", vf->lc.audit_dir);
    printf("  key %s%s%s\n\n", vf->lc.key_path, vf->lc.origin[0] ? ", origin " : "", vf->lc.origin);
    printf("Results requested for every entry from 0\n");
    if (vf->have_seq)
        printf("Results found for entries %llu to %llu in %u segment(s), up to ledger-%06u.jsonl line %llu:\n\n",
               (unsigned long long)vf->first_seq, (unsigned long long)vf->last_seq, nseg, vf->last_seg,
               (unsigned long long)vf->last_lineno);
    else
        printf("Results found for no entries in %u segment(s):\n\n", nseg);
    uint64_t bad = BL_MIN(vf->entries_bad, vf->leaves);
    printf("%llu/%llu entries valid", (unsigned long long)(vf->leaves - bad), (unsigned long long)vf->leaves);
    if (vf->missing)
        printf(", %llu missing", (unsigned long long)vf->missing);
    printf("\n%llu/%llu checkpoints valid\n", (unsigned long long)vf->checkpoints_ok,
           (unsigned long long)vf->checkpoints);
    printf("%u segment(s)\n", nseg);
    bl_verify_print_captures(vf);
    printf("%llu intents, %llu results, %llu aborted, %llu notices; %zu request(s) %s\n",
           (unsigned long long)vf->intents, (unsigned long long)vf->results, (unsigned long long)vf->aborted,
           (unsigned long long)vf->notices, bl_verify_open_count(vf), vf->live ? "in flight" : "unclosed");
    for (unsigned i = 0; i < vf->ntrust; i++) {
        printf("%s %s: %s", vf->trust[i].label, vf->trust[i].path, vf->trust[i].status);
        if (vf->trust[i].loaded)
            printf(" (tree size %llu)", (unsigned long long)vf->trust[i].size);
        printf("\n");
    }
    if (vf->torn)
        printf("torn last line: %llu bytes at ledger-%06u.jsonl offset %llu (%s; not an entry)\n",
               (unsigned long long)vf->torn_len, vf->torn_seg, (unsigned long long)vf->torn_off,
               vf->live ? "being written" : "a write cut short; the gateway drops it when it starts");
    /* the first of each kind, with its place; the count of the rest */
    static const char *kinds[] = { "modified", "missing", "reordered", "truncated", "fork", "bad-signature", "unclosed",
                                   "capture-missing", "capture-modified", "capture-unreadable", "capture-invalid" };
    if (vf->nfail || vf->nwarn)
        printf("\n");
    for (size_t k = 0; k < BL_ARRAY_LEN(kinds); k++) {
        size_t count = 0;
        const bl_vfail_t *first = NULL;
        for (size_t i = 0; i < vf->nfail; i++)
            if (!strcmp(vf->fail[i].kind, kinds[k]) && count++ == 0)
                first = &vf->fail[i];
        if (first == NULL)
            continue;
        bl_verify_name(first, name, sizeof(name));
        bl_verify_place(first, place, sizeof(place));
        printf("INVALID %s: %s%s", name, place, first->detail);
        if (count > 1)
            printf(" (and %zu more %s)", count - 1, kinds[k]);
        printf("\n");
    }
    if (vf->fails_dropped)
        printf("(%zu more failures not kept)\n", vf->fails_dropped);
    bl_verify_print_warnings(vf);
    printf("\nVerdict: %s", vf->nfail || vf->fails_dropped ? "INVALID" : "VALID");
    for (size_t i = 0; i < vf->nfail && i < 8; i++) {
        bl_verify_name(&vf->fail[i], name, sizeof(name));
        printf("%s%s", i ? ", " : " (", name);
    }
    printf("%s", vf->nfail > 8 ? ", ...)" : vf->nfail ? ")" : "");
    if (vf->nwarn + vf->warns_dropped)
        printf(", with %zu warning(s)", vf->nwarn + vf->warns_dropped);
    printf("%s\n", vf->no_captures ? "; captures not checked" : "");
}

/* Adds the captures' counts and the warnings to o. */
static void bl_verify_json_captures(const bl_verify_t *vf, json_t *o)
{
    json_t *warns = json_array();
    for (size_t i = 0; i < vf->nwarn; i++)
        json_array_append_new(warns, json_pack("{s:s,s:s,s:s}", "warning", vf->warn[i].kind, "file", vf->warn[i].file,
                                               "detail", vf->warn[i].detail));
    json_object_set_new(o, "captures", json_integer((json_int_t)vf->captures));
    json_object_set_new(o, "captures_skipped", json_boolean(vf->no_captures));
    json_object_set_new(o, "captures_checked", json_integer((json_int_t)vf->captures_checked));
    json_object_set_new(o, "captures_valid", json_integer((json_int_t)vf->captures_valid));
    json_object_set_new(o, "captures_not_trusted", json_integer((json_int_t)vf->captures_untrusted));
    json_object_set_new(o, "captures_not_written", json_integer((json_int_t)vf->captures_unwritten));
    json_object_set_new(o, "warnings", warns);
    json_object_set_new(o, "warnings_not_kept", json_integer((json_int_t)vf->warns_dropped));
}

static void bl_verify_print_json(const bl_verify_t *vf, unsigned nseg)
{
    json_t *o = json_object(), *fails = json_array(), *trust = json_array();
    char name[64];
    for (size_t i = 0; i < vf->nfail; i++) {
        const bl_vfail_t *f = &vf->fail[i];
        bl_verify_name(f, name, sizeof(name));
        json_t *j = json_pack("{s:s,s:s,s:s}", "failure", name, "kind", f->kind, "detail", f->detail);
        if (f->has_at)
            json_object_set_new(j, f->kind[0] == 'f' ? "size" : "seq", json_integer((json_int_t)f->at));
        if (f->segment) {
            json_object_set_new(j, "segment", json_integer(f->segment));
            json_object_set_new(j, "line", json_integer((json_int_t)f->lineno));
        }
        json_array_append_new(fails, j);
    }
    for (unsigned i = 0; i < vf->ntrust; i++) {
        json_t *t = json_pack("{s:s,s:s,s:s}", "source", vf->trust[i].label, "path", vf->trust[i].path, "status",
                              vf->trust[i].status);
        if (vf->trust[i].loaded)
            json_object_set_new(t, "size", json_integer((json_int_t)vf->trust[i].size));
        json_array_append_new(trust, t);
    }
    uint64_t bad = BL_MIN(vf->entries_bad, vf->leaves);
    json_object_set_new(o, "audit_dir", json_string(vf->lc.audit_dir));
    json_object_set_new(o, "key", json_string(vf->lc.key_path));
    json_object_set_new(o, "origin", vf->lc.origin[0] ? json_string(vf->lc.origin) : json_null());
    json_object_set_new(o, "segments", json_integer(nseg));
    json_object_set_new(o, "entries", json_integer((json_int_t)vf->leaves));
    json_object_set_new(o, "entries_valid", json_integer((json_int_t)(vf->leaves - bad)));
    json_object_set_new(o, "entries_missing", json_integer((json_int_t)vf->missing));
    json_object_set_new(o, "first_seq", vf->have_seq ? json_integer((json_int_t)vf->first_seq) : json_null());
    json_object_set_new(o, "last_seq", vf->have_seq ? json_integer((json_int_t)vf->last_seq) : json_null());
    json_object_set_new(o, "checkpoints", json_integer((json_int_t)vf->checkpoints));
    json_object_set_new(o, "checkpoints_valid", json_integer((json_int_t)vf->checkpoints_ok));
    json_object_set_new(o, "intents", json_integer((json_int_t)vf->intents));
    json_object_set_new(o, "results", json_integer((json_int_t)vf->results));
    json_object_set_new(o, "aborted", json_integer((json_int_t)vf->aborted));
    json_object_set_new(o, "notices", json_integer((json_int_t)vf->notices));
    json_object_set_new(o, vf->live ? "in_flight" : "unclosed", json_integer((json_int_t)bl_verify_open_count(vf)));
    json_object_set_new(o, "trusted", trust);
    bl_verify_json_captures(vf, o);
    json_object_set_new(o, "torn", vf->torn ? json_pack("{s:i,s:I,s:I}", "segment", (int)vf->torn_seg, "offset",
                                                        (json_int_t)vf->torn_off, "bytes", (json_int_t)vf->torn_len)
                                            : json_null());
    json_object_set_new(o, "failures", fails);
    json_object_set_new(o, "failures_not_kept", json_integer((json_int_t)vf->fails_dropped));
    json_object_set_new(o, "verdict", json_string(vf->nfail || vf->fails_dropped ? "invalid" : "valid"));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    json_decref(o);
}

typedef struct {
    const char *dir, *key, *origin, *trusted;
    int live, as_json, no_captures;
} bl_verify_opts_t;

static int bl_verify_run(const bl_verify_opts_t *opt)
{
    const char *dir = opt->dir, *key = opt->key, *origin = opt->origin, *trusted = opt->trusted;
    int live = opt->live, as_json = opt->as_json;
    bl_verify_t *vf = calloc(1, sizeof(*vf));
    char ckfile[4200];
    bl_buf_t err;
    bl_reader_t *r = NULL;
    int rc = 1;
    bl_buf_init(&err, 1024);
    if (vf == NULL)
        return 1;
    vf->live = live;
    vf->no_captures = opt->no_captures;
    vf->damage = UINT64_MAX;
    bl_merkle_init(&vf->tree);
    if (bl_ledger_ctx_init(&vf->lc, dir, key, origin, vf->error, sizeof(vf->error)) != BL_OK)
        goto fatal;
    /* the checkpoint file before the segments: on a running gateway the
     * ledger read afterwards is at least as long as what it signs */
    snprintf(ckfile, sizeof(ckfile), "%s/checkpoint", vf->lc.audit_dir);
    if (trusted)
        vf->trust[vf->ntrust++] = (bl_vtrust_t){ .label = "trusted checkpoint", .path = trusted };
    vf->trust[vf->ntrust++] = (bl_vtrust_t){ .label = "checkpoint file", .path = ckfile };
    for (unsigned i = 0; i < vf->ntrust; i++)
        bl_verify_trust_load(vf, &vf->trust[i]);
    if ((r = bl_reader_open(vf->lc.audit_dir, &err)) == NULL) {
        snprintf(vf->error, sizeof(vf->error), "%s", bl_buf_cstr(&err));
        goto fatal;
    }
    unsigned nseg = bl_reader_segments(r);
    if (!vf->no_captures)
        bl_verify_sessions_list(vf);
    bl_verify_read(vf, r, nseg);
    bl_verify_finish(vf);
    if (as_json)
        bl_verify_print_json(vf, nseg);
    else
        bl_verify_print_text(vf, nseg);
    rc = vf->nfail || vf->fails_dropped ? 1 : 0;
    goto end;
fatal:
    if (as_json) {
        json_t *o = json_pack("{s:s,s:s}", "verdict", "error", "error", vf->error);
        char *txt = json_dumps(o, JSON_COMPACT);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
    }
    fprintf(stderr, "byline audit verify: %s\n", vf->error);
end:
    bl_reader_close(r);
    bl_ledger_ids_free(&vf->open);
    bl_ledger_ids_free(&vf->sessions);
    bl_ledger_ctx_free(&vf->lc);
    free(vf->fail);
    free(vf->warn);
    free(vf);
    bl_buf_free(&err);
    return rc;
}

int bl_audit_verify_mem(const char *p, size_t n, const bl_verifier_t *v, int live)
{
    bl_verify_t *vf = calloc(1, sizeof(*vf));
    if (vf == NULL)
        return BL_ERROR;
    vf->live = live;
    vf->no_captures = 1; /* no audit directory */
    vf->damage = UINT64_MAX;
    vf->lc.v = (bl_verifier_t *)v; /* borrowed: not freed here */
    bl_merkle_init(&vf->tree);
    for (size_t off = 0, lineno = 1; off < n; lineno++) {
        const char *nl = memchr(p + off, '\n', n - off);
        size_t len = nl ? (size_t)(nl - (p + off)) : n - off;
        bl_line_t l = { p + off, len, 1, off, lineno, nl == NULL };
        if (len > BL_READER_MAX_LINE)
            bl_vfail(vf, "modified", 1, vf->expect, 1, lineno, "line too long");
        else if (!l.torn)
            bl_verify_line(vf, &l);
        off += len + (nl != NULL);
    }
    bl_verify_finish(vf);
    int rc = (int)BL_MIN(vf->nfail + vf->fails_dropped, (size_t)INT32_MAX);
    bl_ledger_ids_free(&vf->open);
    free(vf->fail);
    free(vf->warn);
    free(vf);
    return rc;
}

int bl_audit_verify_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },  { "key", required_argument, NULL, 'k' },
        { "origin", required_argument, NULL, 'o' }, { "trusted-checkpoint", required_argument, NULL, 't' },
        { "live", no_argument, NULL, 'l' },       { "json", no_argument, NULL, 'j' },
        { "no-captures", no_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bl_verify_opts_t o = { 0 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:k:o:t:ljh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.dir = optarg; break;
        case 'k': o.key = optarg; break;
        case 'o': o.origin = optarg; break;
        case 't': o.trusted = optarg; break;
        case 'l': o.live = 1; break;
        case 'j': o.as_json = 1; break;
        case 'C': o.no_captures = 1; break;
        case 'h': bl_verify_usage(stdout); return 0;
        default: bl_verify_usage(stderr); return 2;
        }
    }
    if (o.dir == NULL || optind != argc) {
        fprintf(stderr, "byline audit verify: %s\n", o.dir ? "unexpected argument" : "--dir is required");
        return 2;
    }
    return bl_verify_run(&o);
}
