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

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "core/buf.h"
#include "kube/tap.h"

#define BL_CAPTURE_SUBDIR    "sessions"
#define BL_CAPTURE_FILE_MAX  ((uint64_t)512 << 20) /* the largest file the reader loads: 64 MiB
                                                   * (audit.capture_max at most) escaped */
#define BL_CAPTURE_JSON_MAX  512                   /* room for the result's "capture" member */

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

/* ---- the writer, one event at a time (bl_capture_save uses it) ---- */

typedef struct bl_capture_writer_s bl_capture_writer_t;

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
 * ledger (tampered or replaced: `err` says what differs); BL_ERROR when it
 * cannot be read or parsed (`err` says why).
 */
int bl_capture_load(const char *path, const char *want_sha_hex, uint64_t want_bytes, bl_capture_t *c,
                    bl_buf_t *err);

void bl_capture_free(bl_capture_t *c);

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
