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

/* Returns a tap for `proto`; `capture_max` > 0 keeps up to that many bytes
 * of each of stdin, stdout and stderr. NULL when out of memory or `proto`
 * is not a BL_TAP_* value. The caller frees it with bl_tap_free(). */
bl_tap_t *bl_tap_new(int proto, size_t capture_max);

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

/* Returns the captured bytes of channel `ch` (empty when not capturing)
 * and sets *truncated if more was sent than kept. Owned by the tap. */
bl_str_t bl_tap_capture(const bl_tap_t *t, int ch, int *truncated);

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
