/*
 * h2mux.h - many byte tunnels over one HTTP/2 connection (nghttp2).
 *
 * Each tunnel is an HTTP/2 stream opened with CONNECT (RFC 9113 section
 * 8.5; :authority names what to reach) and pumped to and from a local
 * bl_stream_t: bytes the peer sends on the stream are written to the
 * local stream, bytes read from the local stream go to the peer. END_STREAM
 * maps to a half-close (shutdown_wr / EOF) and RST_STREAM to a failure.
 *
 * Flow control is per stream: a peer's DATA is acknowledged (WINDOW_UPDATE)
 * only once the local stream took it, and the local stream is read only
 * when HTTP/2 may send (nghttp2 pulls; a stream with nothing to read is
 * deferred until its local end becomes readable). A stalled local stream
 * therefore stalls only its own tunnel. Both sides PING every 15 s; a peer
 * silent for 45 s is dead.
 *
 * The byline gateway (agent hub) is the client role: it opens tunnels. The
 * agent is the server role: it accepts them. A mux lives in one loop and
 * is used from that thread only.
 */
#ifndef BL_NET_H2MUX_H
#define BL_NET_H2MUX_H

#include <stdint.h>
#include "net/stream.h"

typedef struct bl_mux_s bl_mux_t;

typedef struct {
    /* Server role: the peer asks for a tunnel to authority[0..len). Returns
     * a local stream to pump (the mux owns it from then on), or NULL to
     * refuse with a 403 and `*why` (static). Sets *udata for closed(). */
    bl_stream_t *(*accept)(void *data, const char *authority, size_t len, void **udata, const char **why);
    /* A tunnel ended. ok=1 when both directions finished in order; else
     * why says what failed. Its local stream is released right after. */
    void (*closed)(void *data, void *udata, int ok, const char *why);
    /* The session is over (peer gone, protocol error, silent peer, both
     * sides done after GOAWAY): the owner must bl_mux_free() it (it may in
     * this callback). Called at most once. */
    void (*dead)(void *data, const char *why);
    /* Optional: the peer sent GOAWAY (it is draining); open tunnels go on,
     * no new one should be opened. Called at most once, from inside the
     * session's processing: only note it. */
    void (*closing)(void *data);
    void *data;
} bl_mux_cb_t;

/*
 * Starts an HTTP/2 session over `io` (an open stream; taken, released by
 * bl_mux_free), as server (server=1) or client. `pre` holds bytes already
 * read from io that belong to the session. Sends the connection preface
 * and SETTINGS. Returns the mux or NULL (io is then released too).
 */
bl_mux_t *bl_mux_new(bl_loop_t *loop, bl_stream_t *io, int server, const bl_mux_cb_t *cb,
                     const void *pre, size_t npre);

/* Client role: opens a tunnel to `authority` pumping `local` (taken: on
 * failure it is released at once). Returns BL_OK or BL_ERROR (the session
 * is dead, draining or full). */
int bl_mux_open(bl_mux_t *m, const char *authority, bl_stream_t *local, void *udata);

/* Returns the number of open tunnels. */
size_t bl_mux_ntunnels(const bl_mux_t *m);

/* Returns 1 if no new tunnel should be opened: the peer sent GOAWAY, we
 * did, or the session is dead. */
int bl_mux_closing(const bl_mux_t *m);

/* Sends GOAWAY: open tunnels finish, no new ones start; the session ends
 * (dead callback) when the last tunnel is done. */
void bl_mux_goaway(bl_mux_t *m);

/* Fails every open tunnel (closed callback with why), releases them and
 * the io stream, frees the mux. NULL is fine. */
void bl_mux_free(bl_mux_t *m, const char *why);

#endif
