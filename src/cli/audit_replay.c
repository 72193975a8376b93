/*
 * audit_replay.c - `byline audit replay ID`: plays back an exec/attach
 * session captured with audit.capture_max, or exports it as asciicast v2.
 *
 * The ledger vouches for the capture: the session's result entry names
 * the file with its size and SHA-256, and replay refuses a file that does
 * not match (it was modified or replaced). Whether the ledger itself is
 * intact is `byline audit verify`'s job.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "audit/capture.h"
#include "audit/reader.h"
#include "cli/audit.h"

typedef struct {
    const char *id;
    int asciicast, no_wait, with_stdin;
    double speed, idle_limit;     /* idle_limit 0: none */
    int idle_set;                 /* --idle-limit was given */
} bl_replay_opts_t;

/* What the ledger says about the session's capture. */
typedef struct {
    int found;                    /* a result entry for the id */
    int has_capture;
    int bad;                      /* the capture member is not one byline writes: why says so */
    bl_capture_ref_t cap;         /* cap.error: it was not written at the time */
    char why[512];
} bl_replay_ref_t;

static void bl_replay_usage(FILE *f)
{
    fprintf(f, "usage: byline audit replay ID --dir DIR [--asciicast] [--speed X] [--idle-limit S]\n"
               "                           [--no-wait] [--stdin]\n\n"
               "Plays back the exec/attach session with record id ID (the Audit-ID), as captured\n"
               "with audit.capture_max: stdout to stdout and stderr to stderr, with the original\n"
               "timing. The capture is checked against the SHA-256 the ledger recorded for it\n"
               "first; a capture that does not match is refused (exit 1). Check the ledger\n"
               "itself with `byline audit verify`.\n\n"
               "  --dir DIR        configuration directory (its audit.dir is read)\n"
               "  --asciicast      write asciicast v2 to stdout instead (for the asciinema player):\n"
               "                   stdout and stderr as \"o\" events, stdin as \"i\" events\n"
               "  --speed X        play X times as fast (default 1)\n"
               "  --idle-limit S   shorten every pause to at most S seconds (default 2; 0: keep\n"
               "                   pauses); with --asciicast, written as the idle_time_limit\n"
               "  --no-wait        print everything at once\n"
               "  --stdin          also print what was typed (stdin) when playing\n");
}

/* A record id: 36 characters of hex digits and dashes (a UUID). */
static int bl_replay_id_ok(const char *id)
{
    return strlen(id) == 36 && strspn(id, "0123456789abcdef-") == 36;
}

/* Reads the result entry's "capture" member into *ref (the checks are
 * bl_capture_ref_get's, shared with `audit verify`). */
static void bl_replay_take(bl_replay_ref_t *ref, const json_t *entry)
{
    bl_buf_t err;
    bl_buf_init(&err, sizeof(ref->why));
    int rc = bl_capture_ref_get(entry, &ref->cap, &err);
    ref->found = 1;
    ref->has_capture = rc != BL_DECLINED;
    if (rc == BL_ERROR) {
        ref->bad = 1;
        snprintf(ref->why, sizeof(ref->why), "%s", bl_buf_cstr(&err) ? bl_buf_cstr(&err) : "malformed");
    }
    bl_buf_free(&err);
}

/* Walks the ledger for the result entry of `id`. BL_OK (ref->found says
 * whether it was there) or BL_ERROR with the reason in err. */
static int bl_replay_find(const char *audit_dir, const char *id, bl_replay_ref_t *ref, bl_buf_t *err)
{
    bl_reader_t *r = bl_reader_open(audit_dir, err);
    bl_line_t l;
    int rc = BL_OK;
    if (r == NULL)
        return BL_ERROR;
    while (!ref->found && (rc = bl_reader_next(r, &l, err)) != BL_DECLINED) {
        if (rc != BL_OK)
            break; /* unreadable line or segment: the ledger is damaged; say so */
        if (l.torn || memmem(l.p, l.len, id, 36) == NULL)
            continue;
        json_error_t e;
        json_t *o = json_loadb(l.p, l.len, JSON_ALLOW_NUL, &e);
        const json_t *entry = json_object_get(o, "entry");
        const char *eid = json_string_value(json_object_get(entry, "id"));
        const char *kind = json_string_value(json_object_get(entry, "kind"));
        if (eid && kind && !strcmp(eid, id) && !strcmp(kind, "result"))
            bl_replay_take(ref, entry);
        json_decref(o);
    }
    bl_reader_close(r);
    return ref->found || rc == BL_DECLINED ? BL_OK : BL_ERROR;
}

static int bl_replay_write(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return BL_ERROR;
        p += k;
        n -= (size_t)k;
    }
    return BL_OK;
}

static void bl_replay_sleep(uint64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Plays the events to stdout/stderr with their timing. */
static int bl_replay_play(const bl_capture_t *c, const bl_replay_opts_t *o)
{
    uint64_t prev = 0, idle = (uint64_t)(o->idle_limit * 1e6);
    for (size_t i = 0; i < c->nev; i++) {
        const bl_capture_event_t *ev = &c->ev[i];
        if (ev->ch == BL_TAP_STDIN && !o->with_stdin)
            continue;
        uint64_t gap = ev->t_us - prev;
        prev = ev->t_us;
        if (idle && gap > idle)
            gap = idle;
        if (!o->no_wait && gap)
            bl_replay_sleep((uint64_t)((double)gap / o->speed));
        if (bl_replay_write(ev->ch == BL_TAP_STDERR ? 2 : 1, ev->p, ev->n) != BL_OK)
            return BL_ERROR;
    }
    if (c->truncated)
        fprintf(stderr, "\n[byline: the capture ends here; the session went on past audit.capture_max]\n");
    return BL_OK;
}

static int bl_replay_number(const char *arg, const char *what, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (*arg == '\0' || *end != '\0' || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "byline audit replay: %s wants a number from %g to %g, not '%s'\n", what, lo, hi, arg);
        return BL_ERROR;
    }
    *out = v;
    return BL_OK;
}

/* Parses argv; returns 0 to go on, else the exit status (help: -1). */
static int bl_replay_args(int argc, char **argv, bl_replay_opts_t *o, const char **dir)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },   { "asciicast", no_argument, NULL, 'a' },
        { "speed", required_argument, NULL, 's' }, { "idle-limit", required_argument, NULL, 'i' },
        { "no-wait", no_argument, NULL, 'n' },     { "stdin", no_argument, NULL, 'I' },
        { "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': *dir = optarg; break;
        case 'a': o->asciicast = 1; break;
        case 'n': o->no_wait = 1; break;
        case 'I': o->with_stdin = 1; break;
        case 's': if (bl_replay_number(optarg, "--speed", 0.01, 1000, &o->speed)) return 2; break;
        case 'i':
            if (bl_replay_number(optarg, "--idle-limit", 0, 86400, &o->idle_limit))
                return 2;
            o->idle_set = 1;
            break;
        case 'h': bl_replay_usage(stdout); return -1;
        default: bl_replay_usage(stderr); return 2;
        }
    }
    if (*dir == NULL || optind != argc - 1) {
        fprintf(stderr, "byline audit replay: %s\n", *dir == NULL ? "--dir is required" :
                optind == argc ? "which session? give its record id" : "one record id at a time");
        return 2;
    }
    o->id = argv[optind];
    if (!bl_replay_id_ok(o->id)) {
        fprintf(stderr, "byline audit replay: '%s' is not a record id (a lower-case UUID)\n", o->id);
        return 2;
    }
    return 0;
}

/* Loads the capture the ledger names, checked. Returns 0 or the exit status. */
static int bl_replay_load(const char *audit_dir, const bl_replay_opts_t *o, bl_capture_t *cap)
{
    bl_replay_ref_t ref;
    bl_buf_t err;
    char path[4096];
    const char *want = ref.cap.file;
    int st = 1;
    memset(&ref, 0, sizeof(ref));
    bl_buf_init(&err, 4096);
    if (bl_replay_find(audit_dir, o->id, &ref, &err) != BL_OK)
        fprintf(stderr, "byline audit replay: reading the ledger: %s\n", bl_buf_cstr(&err));
    else if (!ref.found)
        fprintf(stderr, "byline audit replay: no result entry for %s in the ledger (a wrong id, or the "
                        "session has not ended yet)\n", o->id);
    else if (!ref.has_capture)
        fprintf(stderr, "byline audit replay: session %s was not captured (audit.capture_max was 0, or it was "
                        "not an exec/attach session)\n", o->id);
    else if (ref.bad)
        fprintf(stderr, "byline audit replay: the ledger's capture entry for %s is not one byline writes: %s\n",
                o->id, ref.why);
    else if (ref.cap.error[0])
        fprintf(stderr, "byline audit replay: the capture of %s was not written at the time: %s\n", o->id,
                ref.cap.error);
    else if (bl_capture_ref_path(audit_dir, &ref.cap, path, sizeof(path)) != BL_OK)
        fprintf(stderr, "byline audit replay: audit directory path too long\n");
    else
        st = 0;
    if (st == 0) {
        int rc = bl_capture_load(path, ref.cap.sha256, ref.cap.bytes, cap, &err);
        if (rc == BL_DECLINED)
            fprintf(stderr, "byline audit replay: %s does not match the ledger: %s. The capture was modified "
                            "or replaced after it was recorded; not replaying it\n", want, bl_buf_cstr(&err));
        else if (rc != BL_OK)
            fprintf(stderr, "byline audit replay: %s: %s\n", want, bl_buf_cstr(&err));
        else if (strcmp(cap->id, o->id) != 0)
            fprintf(stderr, "byline audit replay: %s holds the capture of %s, not %s\n", want, cap->id, o->id);
        st = rc == BL_OK && strcmp(cap->id, o->id) == 0 ? 0 : 1;
        if (rc == BL_OK && st)
            bl_capture_free(cap);
    }
    bl_buf_free(&err);
    return st;
}

int bl_audit_replay_cmd(int argc, char **argv)
{
    bl_replay_opts_t o = { .speed = 1, .idle_limit = 2 };
    const char *dir = NULL;
    char audit_dir[4096];
    bl_capture_t cap;
    int st = bl_replay_args(argc, argv, &o, &dir);
    if (st)
        return st < 0 ? 0 : st;
    if (bl_audit_dir_of(dir, audit_dir, sizeof(audit_dir)) != BL_OK) {
        fprintf(stderr, "byline audit replay: audit directory path too long\n");
        return 1;
    }
    if ((st = bl_replay_load(audit_dir, &o, &cap)) != 0)
        return st;
    int rc;
    if (o.asciicast) {
        bl_asciicast_opts_t ao = { .idle_time_limit = o.idle_set ? o.idle_limit : 0, .with_stdin = 1 };
        rc = bl_capture_asciicast(&cap, &ao, stdout);
    } else {
        rc = bl_replay_play(&cap, &o);
    }
    bl_capture_free(&cap);
    if (rc != BL_OK)
        fprintf(stderr, "byline audit replay: writing the output failed: %s\n", strerror(errno));
    return rc == BL_OK ? 0 : 1;
}
