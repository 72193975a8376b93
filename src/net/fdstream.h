/*
 * fdstream.h - a plain (no TLS) non-blocking file descriptor, usually one
 * end of a socketpair, as a bl_stream_t.
 *
 * The agent hub gives each tunnelled request a socketpair: the worker
 * moves HTTP/1.1 through one end exactly as through a TLS socket, the hub
 * pumps the other end into an HTTP/2 stream. Lifetime as for bl_sock_t:
 * bl_stream_release() closes the fd at once and frees the memory on the
 * next loop iteration, so an event already queued is harmless.
 */
#ifndef BL_NET_FDSTREAM_H
#define BL_NET_FDSTREAM_H

#include "net/stream.h"

typedef struct bl_fdstream_s bl_fdstream_t;

/* Wraps `fd` (non-blocking; taken: closed on failure and on release) in
 * `loop`. Returns the stream or NULL. */
bl_stream_t *bl_fdstream_new(bl_loop_t *loop, int fd);

/*
 * A note on why the peer end went away, shared across threads: the thread
 * that owns the peer end sets it before closing that end, and the stream
 * then reports EOF as BL_ERROR and ops->why as the note's text.
 * bl_fdstream_note() returns a new reference to the stream's note (the
 * stream keeps its own until it is freed); drop it with bl_fdnote_unref().
 */
typedef struct bl_fdnote_s bl_fdnote_t;
bl_fdnote_t *bl_fdstream_note(bl_stream_t *s);
/* Sets the text once (a copy, at most 127 bytes); later calls are ignored. */
void bl_fdnote_set(bl_fdnote_t *n, const char *why);
void bl_fdnote_unref(bl_fdnote_t *n);

#endif
