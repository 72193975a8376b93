/*
 * capture.h - exec/attach session captures: the file format
 * (docs/AUDIT-FORMAT.md section 8), writing one durably next to the
 * ledger, reading one back and checking it against the ledger, and
 * exporting it as asciicast v2 for the asciinema player.
 *
 * A capture file is AUDIT_DIR/sessions/<record id>.cap, JSON Lines:
 *   {"action":..,"actor":..,"bytes":N,"connection":..,"format":"byline-capture",
 *    "id":..,"started":"<RFC 3339>","truncated":false,"version":1}
 *   [t_us,"o","text"]                  stdout ("i" stdin, "e" stderr)
 *   [t_us,"e","<base64>","base64"]     bytes that are not valid UTF-8
 * t_us: microseconds since `started`, never decreasing. A long event is
 * written as several lines of at most 16 KiB each, cut between characters. The result entry
 * of the session names the file with its SHA-256 and size, so the ledger
 * vouches for it; the file is on stable storage (file and directory
 * fsynced) before that entry is queued.
 */
#ifndef BL_AUDIT_CAPTURE_H
#define BL_AUDIT_CAPTURE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "core/buf.h"
#include "kube/tap.h"

#define BL_CAPTURE_SUBDIR    "sessions"
#define BL_CAPTURE_FILE_MAX  ((uint64_t)512 << 20) /* the largest file the reader loads: 64 MiB
                                                   * (audit.capture_max at most) escaped */
#define BL_CAPTURE_JSON_MAX  512                   /* room for the result's "capture" member */
#define BL_CAPTURE_HASH_CHUNK (64 * 1024)          /* bl_capture_check reads this much at a time */

typedef struct bl_capture_writer_s bl_capture_writer_t; /* one capture being written */

/* What the header says about the session. Strings may be NULL. */
typedef struct {
    const char *id;            /* the record id (UUID); names the file */
    const char *actor;
    const char *connection;
    const char *action;        /* the rendered kubectl command */
    struct timespec started;   /* CLOCK_REALTIME of time 0 */
} bl_capture_meta_t;

/*
 * Writes the tap's capture to DIR/sessions/<id>.cap (the directory made
 * 0700 if missing, the file 0600, created exclusively), fsyncs the file
 * and the directory, and appends to `json` the value of the result entry's
 * "capture" member in canonical form:
 *   {"bytes":<file size>,"file":"sessions/<id>.cap","sha256":"<hex>","truncated":<bool>}
 * or, when it could not be written (nothing is left behind),
 *   {"error":"<why>"}
 * `json` needs BL_CAPTURE_JSON_MAX bytes of room. Blocks for the writes
 * and two fsyncs (bounded by audit.capture_max). Returns BL_OK when the
 * file is durable, BL_ERROR otherwise (the error object was appended).
 */
int bl_capture_save(const char *dir, const bl_capture_meta_t *m, const bl_tap_t *tap, bl_buf_t *json);

/* bl_capture_save() without the fsyncs: writes and seals the file, appends
 * the same `json`, and on BL_OK hands the sealed writer to *sealed: the
 * caller must pass it to bl_capture_sync() (e.g. on audit/capsync.h's
 * thread) before anything names the capture. On BL_ERROR *sealed is NULL,
 * nothing is left behind and `json` holds the error object. */
int bl_capture_prepare(const char *dir, const bl_capture_meta_t *m, const bl_tap_t *tap, bl_buf_t *json,
                       bl_capture_writer_t **sealed);

/* ---- the writer, one event at a time (bl_capture_save uses it) ---- */

/* Creates the file and writes the header (`bytes`: the payload the events
 * will add up to; `truncated`: the capture is a strict prefix of the
 * session). Returns a writer, or NULL with the reason in `err`. */
bl_capture_writer_t *bl_capture_create(const char *dir, const bl_capture_meta_t *m, uint64_t bytes,
                                       int truncated, bl_buf_t *err);

/* Appends one event (ch: BL_TAP_STDIN/STDOUT/STDERR). BL_OK or BL_ERROR. */
int bl_capture_write(bl_capture_writer_t *w, uint64_t t_us, int ch, const char *p, size_t n);

/* Flushes, fsyncs file and directory, closes, frees `w`. On BL_OK sets
 * sha256 (32 bytes) and *size. On BL_ERROR the file is removed and `err`
 * says why. */
int bl_capture_finish(bl_capture_writer_t *w, unsigned char sha256[32], uint64_t *size, bl_buf_t *err);

/* bl_capture_finish() in two halves. seal: flushes and finishes the
 * SHA-256 (sets sha256 and *size); the file holds every byte but is not
 * durable, `w` stays open. sync: fsyncs the file and its directory, then
 * closes and frees `w`. Either, on BL_ERROR, removes the file, frees `w`
 * and says why in `err`. */
int bl_capture_seal(bl_capture_writer_t *w, unsigned char sha256[32], uint64_t *size, bl_buf_t *err);
int bl_capture_sync(bl_capture_writer_t *w, bl_buf_t *err);

/* Removes the file and frees `w` (after a failed write). NULL is fine. */
void bl_capture_discard(bl_capture_writer_t *w);

/* ---- reading ---- */

typedef struct {
    uint64_t t_us;
    int ch;                    /* BL_TAP_STDIN/STDOUT/STDERR */
    const char *p;             /* into bl_capture_t.data */
    size_t n;
} bl_capture_event_t;

typedef struct {
    char id[64];
    char actor[256];
    char connection[256];
    char action[4096];
    char started[40];          /* as in the header */
    int64_t started_unix;      /* seconds since 1970 */
    int truncated;
    uint64_t bytes;            /* payload bytes, as the header says (checked) */
    bl_capture_event_t *ev;    /* owned */
    size_t nev;
    char *data;                /* owned: every event's bytes */
} bl_capture_t;

/* Parses a capture file's bytes p[0..n). Returns BL_OK and fills *c (free
 * with bl_capture_free), or BL_ERROR with "line N: why" in `err`. */
int bl_capture_parse(const char *p, size_t n, bl_capture_t *c, bl_buf_t *err);

/*
 * Loads `path` and checks it against what the ledger recorded: size
 * `want_bytes` and SHA-256 `want_sha_hex` (64 lower-case hex digits).
 * Returns BL_OK with *c filled; BL_DECLINED when the file differs from the
 * ledger (tampered or replaced: `err` says what differs, as
 * bl_capture_check says it); BL_ERROR when it cannot be read or parsed
 * (`err` says why). It hashes the very bytes it parses, so what replay
 * plays is what was checked (bl_capture_check then reading again would
 * leave a window to swap the file).
 */
int bl_capture_load(const char *path, const char *want_sha_hex, uint64_t want_bytes, bl_capture_t *c,
                    bl_buf_t *err);

void bl_capture_free(bl_capture_t *c);

/* ---- the ledger's reference to a capture, and checking a file against it ---- */

/* A result entry's "capture" member (docs/AUDIT-FORMAT.md section 7). */
typedef struct {
    char id[64];               /* the entry's id */
    char file[128];            /* exactly "sessions/<id>.cap"; "" when error[0] */
    char sha256[65];           /* 64 lower-case hex digits */
    uint64_t bytes;            /* the file's size */
    int truncated;
    char error[512];           /* set: the capture was not written at the time (no file to check) */
} bl_capture_ref_t;

/*
 * Reads the "capture" member of a result entry `entry` (borrowed) into
 * *ref. Returns BL_DECLINED when there is none (capture was off); BL_OK
 * when it is one byline writes: either {"error":..} (ref->error set) or a
 * file reference whose "file" is exactly "sessions/<id>.cap" for the
 * entry's own "id" (a record id: hex digits and dashes; so never an
 * absolute path, never "..", never another session's file), "sha256" 64
 * lower-case hex digits and "bytes" an integer 0..BL_CAPTURE_FILE_MAX;
 * BL_ERROR otherwise, with what is wrong in `err` (ref->id is set when
 * the entry has a usable id).
 */
int bl_capture_ref_get(const json_t *entry, bl_capture_ref_t *ref, bl_buf_t *err);

/* Writes "<audit_dir>/<ref->file>" into path[0..cap). BL_OK, or BL_ERROR
 * when it does not fit. */
int bl_capture_ref_path(const char *audit_dir, const bl_capture_ref_t *ref, char *path, size_t cap);

/* If `name` (a directory entry of sessions/) is "<record id>.cap", copies
 * the id into id[0..cap) and returns BL_OK; else BL_DECLINED. */
int bl_capture_name_id(const char *name, char *id, size_t cap);

/* What bl_capture_check found. */
typedef enum {
    BL_CAPTURE_MATCH = 0,      /* the size and SHA-256 the ledger recorded */
    BL_CAPTURE_MISSING,        /* no file there (nor a sessions/ directory) */
    BL_CAPTURE_MODIFIED,       /* another size or SHA-256, or a symlink or other non-regular file in its place */
    BL_CAPTURE_UNREADABLE,     /* there, but it cannot be read (permissions, I/O error, sessions/ not a
                                * directory): nothing is known about its content */
} bl_capture_check_t;

/*
 * Checks the file a reference (from bl_capture_ref_get, without error)
 * names, under audit_dir: opens sessions/ and the file in it without
 * following a symlink at either step (nor blocking on a FIFO), compares
 * the size first (a file of another size is not read) and then hashes
 * the file BL_CAPTURE_HASH_CHUNK bytes at a time: memory is bounded
 * whatever the file's size; time is one read of at most ref->bytes + 1
 * bytes. Returns the verdict; for all but MATCH, `err` (reset first) says
 * what differs or why it could not be read, without the file's name.
 */
bl_capture_check_t bl_capture_check(const char *audit_dir, const bl_capture_ref_t *ref, bl_buf_t *err);

typedef struct {
    int width, height;         /* terminal size; 0: 80 x 24 */
    double idle_time_limit;    /* > 0: written to the header */
    const char *title;         /* NULL: "<actor>: <action>" */
    int with_stdin;            /* also "i" events for stdin */
} bl_asciicast_opts_t;

/*
 * Writes the capture as asciicast v2: a header line, then [time, "o",
 * data] for stdout and stderr and [time, "i", data] for stdin (when
 * asked), time in seconds with microseconds. Data is valid UTF-8: a
 * character split across events of one channel is joined, invalid bytes
 * become U+FFFD. Returns BL_OK, or BL_ERROR if writing to `out` failed.
 */
int bl_capture_asciicast(const bl_capture_t *c, const bl_asciicast_opts_t *o, FILE *out);

#endif
