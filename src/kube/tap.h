/*
 * tap.h - passive decoding of kubectl's streaming protocols, to learn how
 * an exec ended (and optionally keep a bounded copy of the session)
 * without changing a single relayed byte.
 *
 * The proxy feeds the tap every byte it relays after a 101, in each
 * direction, in order. The tap decodes:
 *   - WebSocket (RFC 6455) with the channel.k8s.io subprotocols (v1..v5,
 *     and base64 variants): channel 0 stdin, 1 stdout, 2 stderr, 3 error
 *     (a metav1.Status: success, or NonZeroExitCode with the exit code in
 *     details.causes), 4 resize, 255 close;
 *   - SPDY/3.1 (kubectl 1.27..1.29 and the fallback): frames, the
 *     zlib-compressed header blocks (SPDY/3 dictionary) of SYN_STREAM to
 *     learn each stream's `streamtype`, and the error stream's DATA;
 *   - SPDY/3.1 inside WebSocket binary messages (port-forward tunnel,
 *     subprotocol SPDY/3.1+portforward.k8s.io).
 * Memory is bounded: a frame or header block larger than the tap's limits
 * makes it stop decoding (state "lost"), never affects the relay.
 */
#ifndef BL_KUBE_TAP_H
#define BL_KUBE_TAP_H

#include "core/buf.h"
#include "core/common.h"

typedef struct bl_tap_s bl_tap_t;

enum {
    BL_TAP_WEBSOCKET = 1,   /* Upgrade: websocket, channel.k8s.io subprotocol */
    BL_TAP_SPDY,            /* Upgrade: SPDY/3.1 */
    BL_TAP_WS_SPDY,         /* websocket carrying SPDY (SPDY/3.1+portforward.k8s.io) */
};

enum { BL_TAP_UP = 0, BL_TAP_DOWN = 1 }; /* client->server, server->client */

/* Session-capture channels. */
enum { BL_TAP_STDIN = 0, BL_TAP_STDOUT = 1, BL_TAP_STDERR = 2, BL_TAP_NCHAN = 3 };

/* Returns a tap for `proto`; `capture_max` > 0 also keeps a session
 * capture: stdin, stdout and stderr as one list of timed events in the
 * order they were relayed (see bl_tap_event), at most `capture_max` bytes
 * in all, counting BL_TAP_EVENT_OVERHEAD bytes per event. NULL when out of
 * memory or `proto` is not a BL_TAP_* value. The caller frees it with
 * bl_tap_free(). */
bl_tap_t *bl_tap_new(int proto, size_t capture_max);

/* Each captured event costs this much of `capture_max` besides its bytes
 * (its time, channel and length). */
#define BL_TAP_EVENT_OVERHEAD 13

/* Picks the protocol from the 101's Upgrade and Sec-WebSocket-Protocol
 * values. Returns a BL_TAP_* value, or 0 if there is nothing to decode. */
int bl_tap_proto(bl_str_t upgrade, bl_str_t ws_protocol);

/* Says the session is a port-forward (the request's subresource), before
 * the first feed. Needed only for BL_TAP_WEBSOCKET, whose channel numbers
 * mean something else there (kubelet's ?ports= protocol: channel 2i data,
 * 2i+1 errors of port i); SPDY port-forward is recognised from its stream
 * headers. The outcome is then the first error text any port reported.
 * Returns BL_OK, or BL_ERROR when out of memory. */
int bl_tap_portforward(bl_tap_t *t);

/* Feeds bytes relayed in direction `dir`. Never fails; a tap that cannot
 * follow the stream stops decoding quietly. */
void bl_tap_feed(bl_tap_t *t, int dir, const char *p, size_t n);

typedef struct {
    int known;             /* 1 once the error channel reported */
    int exit_code;         /* 0 for Success; the code for NonZeroExitCode; -1 otherwise */
    char reason[64];       /* Status reason, e.g. "NonZeroExitCode", "InternalError" */
    char message[256];     /* Status message */
    int lost;              /* 1 if decoding gave up (limits or malformed stream) */
} bl_tap_outcome_t;

/* Fills *o with what the error channel said so far. */
void bl_tap_outcome(const bl_tap_t *t, bl_tap_outcome_t *o);

/* Sets the time stamped on bytes captured by the following feeds:
 * microseconds since the session started, on a monotonic clock. Time never
 * goes backwards: an earlier value than the last one is ignored. Without a
 * call every event is at 0. Cheap; only matters when capturing. */
void bl_tap_clock(bl_tap_t *t, uint64_t us);

/* Returns 1 if the tap keeps a capture (capture_max > 0), else 0. */
int bl_tap_capturing(const bl_tap_t *t);

/* One captured event: `n` bytes (owned by the tap) relayed on channel `ch`
 * (BL_TAP_STDIN/STDOUT/STDERR) at `t_us`. Bytes of one channel fed at the
 * same time make one event, however they were chunked or framed, so the
 * list does not depend on how reads split the stream. */
typedef struct {
    uint64_t t_us;
    int ch;
    const char *p;
    size_t n;
} bl_tap_event_t;

/* Walks the capture in relay order: start with *pos = 0. Returns BL_OK
 * with the next event in *ev, or BL_DECLINED after the last one. */
int bl_tap_event(const bl_tap_t *t, size_t *pos, bl_tap_event_t *ev);

/* Says how much was captured: events, bytes (payload only), and whether
 * the capture is a strict prefix of the session (*truncated = 1: the bound
 * was reached, memory ran out, or decoding gave up). A capture is always a
 * prefix in time: after the first byte that did not fit, nothing more is
 * kept on any channel. Any argument may be NULL. */
void bl_tap_capture_info(const bl_tap_t *t, size_t *events, uint64_t *bytes, int *truncated);

/* Appends the outcome as one JSON object in RFC 8785 canonical form (keys
 * sorted), the value of the result entry's "exec" member, e.g.
 * {"exit_code":3,"reason":"NonZeroExitCode"} or
 * {"exit_code":-1,"message":"...","reason":"InternalError"}; "message" is
 * left out when the exit code is known, "reason" when there is none, and
 * "lost":true is added when decoding gave up (then {"exit_code":-1,
 * "lost":true} even if the error channel said nothing).
 * Returns BL_OK, BL_DECLINED if nothing is known and nothing was lost
 * (nothing appended), or BL_ERROR if `out` is full (nothing appended). */
int bl_tap_json(const bl_tap_t *t, bl_buf_t *out);

/* bl_tap_json() never appends more than this many bytes (a 255-byte
 * message and a 63-byte reason of control characters, escaped, and
 * "lost"); room for this much always suffices. */
#define BL_TAP_JSON_MAX 2048

void bl_tap_free(bl_tap_t *t);

#endif
