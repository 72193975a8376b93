/*
 * tap_int.h - the tap's state, shared by tap.c (outcome, captures, JSON),
 * tap_ws.c (WebSocket framing and channels) and tap_spdy.c (SPDY/3.1
 * framing, header inflation, streams). Private to src/kube/tap*.c and the
 * tap's tests.
 *
 * Every decoder is a byte-at-a-time-safe state machine: a frame header or
 * a control frame's fixed part may be split anywhere across feed() calls,
 * payload bytes the tap does not need are skipped without being read.
 */
#ifndef BL_KUBE_TAP_INT_H
#define BL_KUBE_TAP_INT_H

#include <zlib.h>
#include "kube/tap.h"

#define BL_TAP_STATUS_MAX   (64 * 1024) /* error channel bytes kept: one Status */
#define BL_TAP_HBLOCK_MAX   (64 * 1024) /* one inflated SPDY header block */
#define BL_TAP_STREAMS_MAX  256         /* SPDY streams of interest open at once */
#define BL_TAP_MSG_MAX      256         /* sizeof outcome.message */
#define BL_TAP_REASON_MAX   64          /* sizeof outcome.reason */

/* Where a span of decoded payload goes. The first three equal channel + 1. */
enum {
    BL_TAP_SINK_NONE = 0,
    BL_TAP_SINK_STDIN,
    BL_TAP_SINK_STDOUT,
    BL_TAP_SINK_STDERR,
    BL_TAP_SINK_ERROR,  /* the error channel (exec: a Status; port-forward: text) */
    BL_TAP_SINK_SPDY,   /* WS_SPDY: the payload is this direction's SPDY stream */
};

/* How a span of the error channel ended (bl_tap_err_end). */
enum {
    BL_TAP_ERR_MORE = 0, /* one message/frame ended; more may follow */
    BL_TAP_ERR_EOS,      /* the sender closed the channel cleanly */
    BL_TAP_ERR_RESET,    /* the channel was reset: keep what arrived, infer nothing */
};

/* One direction of WebSocket framing (RFC 6455 section 5.2). */
typedef struct {
    uint64_t left;          /* payload bytes left in the current frame */
    unsigned char hdr[14];  /* frame header being collected */
    uint8_t hlen, hneed;    /* bytes collected / needed (0: between frames) */
    uint8_t op, fin, masked;
    uint8_t kpos;           /* mask key index of the next payload byte */
    unsigned char key[4];
    uint8_t msg;            /* opcode of the data message in progress, 0 if none */
    uint8_t started;        /* the message's channel byte was seen */
    uint8_t ch;             /* the message's channel */
    uint8_t sink;           /* BL_TAP_SINK_* for the rest of the message */
    uint8_t b64;            /* the message is base64 text */
    uint8_t b64bad;         /* a byte outside the alphabet: ignore the rest */
    uint8_t b64n;           /* sextets pending in b64acc */
    uint8_t b64pad;         /* '=' seen: the message's data ended */
    uint32_t b64acc;
} bl_tap_ws_t;

/* SPDY per-direction parser phases. */
enum {
    BL_SPDY_HEAD = 0, /* collecting the 8-byte frame header */
    BL_SPDY_FIXED,    /* collecting a control frame's fixed fields */
    BL_SPDY_BLOCK,    /* inflating a header block */
    BL_SPDY_DATA,     /* a DATA frame's payload */
    BL_SPDY_SKIP,     /* payload nobody needs */
};

/* One direction of SPDY/3.1. The zlib stream lives as long as the
 * connection: every header block is inflated, in order. */
typedef struct {
    z_stream z;
    bl_buf_t block;          /* inflated header block of the current SYN_STREAM */
    uint32_t left;           /* payload bytes left in the current frame */
    uint32_t sid;            /* stream of the current frame */
    size_t inflated;         /* bytes the current header block inflated to */
    unsigned char hdr[10];   /* frame header, then the control frame's fixed part */
    uint8_t hlen, hneed;
    uint8_t phase;           /* BL_SPDY_* */
    uint8_t type;            /* control frame type (low byte; others are skipped) */
    uint8_t flags;
    uint8_t sink;            /* DATA: BL_TAP_SINK_* */
    uint8_t zinit;           /* z holds an inflate state */
} bl_tap_spdy_t;

/* A SPDY stream the tap cares about (error, stdin, stdout, stderr). */
typedef struct {
    uint32_t id;
    uint8_t sink;            /* BL_TAP_SINK_* its DATA goes to */
    uint8_t fin;             /* bit BL_TAP_UP / BL_TAP_DOWN: that side half-closed */
} bl_tap_stream_t;

struct bl_tap_s {
    int proto;                 /* BL_TAP_* */
    int portforward;           /* a port-forward session (told, or seen in SPDY headers) */
    int lost;
    size_t capture_max;
    bl_buf_t cap;              /* events: 8-byte time (LE), channel, 4-byte length (LE), bytes */
    size_t cap_last;           /* offset of the last event's header; SIZE_MAX: none */
    size_t cap_events;
    uint64_t cap_bytes;        /* payload bytes kept */
    int cap_trunc;             /* something did not fit: nothing more is kept */
    uint64_t now_us;           /* bl_tap_clock() */

    bl_buf_t err;              /* error channel bytes of the current owner */
    int64_t err_owner;         /* SPDY stream id / WebSocket channel; -1: none */
    int err_done;              /* the outcome is final; error bytes are ignored */
    int client_closed;         /* WebSocket: the client sent a close frame first */

    int known, exit_code;
    char reason[BL_TAP_REASON_MAX];
    char message[BL_TAP_MSG_MAX];

    bl_tap_ws_t ws[2];
    bl_tap_spdy_t *spdy;       /* [2] for SPDY and WS_SPDY, else NULL */
    bl_tap_stream_t *streams;  /* [BL_TAP_STREAMS_MAX], allocated with spdy */
    size_t nstreams;
    unsigned char *pf_prefix;  /* [256] WebSocket port-forward: port bytes seen per channel */
};

/* tap.c: routes decoded payload bytes to a capture or the error channel. */
void bl_tap_sink(bl_tap_t *t, int sink, int64_t owner, const unsigned char *p, size_t n);

/* tap.c: returns 1 (and marks the capture truncated) if `sink` is a
 * capture that cannot take another byte now, so the caller can skip the
 * bytes unread; else 0. Call it only with bytes to deliver. */
int bl_tap_sink_full(bl_tap_t *t, int sink);

/* tap.c: an error-channel span ended (BL_TAP_ERR_*); decodes what it can. */
void bl_tap_err_end(bl_tap_t *t, int64_t owner, int how);

/* tap.c: gives up decoding: sets `lost`; bl_tap_feed() frees the decoders'
 * memory once the decoder that gave up has returned. */
void bl_tap_lose(bl_tap_t *t);

/* tap_ws.c */
void bl_tap_ws_feed(bl_tap_t *t, int dir, const unsigned char *p, size_t n);

/* tap_spdy.c */
int bl_tap_spdy_init(bl_tap_t *t);
void bl_tap_spdy_feed(bl_tap_t *t, int dir, const unsigned char *p, size_t n);
/* Returns how many of the next bytes of direction `dir` the SPDY parser
 * would skip unread (0 if it needs to see them); bl_tap_spdy_skip() then
 * consumes up to that many without reading them. */
size_t bl_tap_spdy_skippable(const bl_tap_t *t, int dir);
void bl_tap_spdy_skip(bl_tap_t *t, int dir, size_t n);
/* Returns how many bytes the parser wants to see before its next decision. */
size_t bl_tap_spdy_want(const bl_tap_t *t, int dir);
void bl_tap_spdy_free(bl_tap_t *t);

#endif
