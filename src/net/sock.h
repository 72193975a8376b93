/*
 * sock.h - TLS over a non-blocking TCP socket, as a bl_stream_t.
 *
 * Lifetime: bl_sock_accept()/bl_sock_connect() return a socket the caller
 * owns; bl_stream_release() (or bl_sock_close()) gives it up. Memory is
 * freed on the next loop iteration, so a callback already queued in the
 * same epoll batch can still look at it safely (it sees fd == -1).
 */
#ifndef BL_NET_SOCK_H
#define BL_NET_SOCK_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include "net/stream.h"

enum { BL_SOCK_CONNECTING, BL_SOCK_HANDSHAKE, BL_SOCK_OPEN, BL_SOCK_CLOSED };

typedef struct bl_sock_s bl_sock_t;

struct bl_sock_s {
    bl_stream_t stream;          /* must stay first */
    bl_io_t io;
    bl_loop_t *loop;
    SSL *ssl;
    int state;
    unsigned is_client : 1;
    unsigned read_wants_write : 1;  /* SSL_read said WANT_WRITE */
    unsigned write_wants_read : 1;  /* SSL_write said WANT_READ */
    unsigned shut_wr : 1;
    /* Readiness as nginx keeps it: set by an epoll edge, cleared when a
     * read or write would block, so an operation known to block costs no
     * syscall. Both start set (the edge for an fd's initial state may
     * come after the first attempt). */
    unsigned rd_ready : 1;
    unsigned wr_ready : 1;
    unsigned rd_hup : 1;         /* FIN seen: keep reading until EOF, no edge will come */
    bl_defer_t reaper;           /* frees the memory after close */
    /* Set by a pool to take the socket back on release(reusable=1);
     * returns BL_OK if it kept it, BL_DECLINED to have it closed. */
    int (*recycle)(bl_sock_t *s);
    void *recycle_data;
    char peer_ip[INET6_ADDRSTRLEN];
};

/* Wraps an accepted, connected fd for a TLS server handshake. Takes the fd
 * (closes it on failure). Returns the socket or NULL. */
bl_sock_t *bl_sock_accept(bl_loop_t *loop, int fd, SSL_CTX *ctx);

/*
 * Starts a TCP connect to `addr` and a TLS client handshake that verifies
 * the server's certificate for `verify_name` (a DNS name or an IP literal;
 * also sent as SNI when it is a name). `session` (may be NULL) is offered
 * for resumption. Returns the socket, or NULL with *reason set.
 */
bl_sock_t *bl_sock_connect(bl_loop_t *loop, const struct sockaddr *addr, socklen_t addrlen,
                           SSL_CTX *ctx, const char *verify_name, SSL_SESSION *session,
                           const char **reason);

/*
 * Advances the TCP connect and TLS handshake. Returns BL_OK once the stream
 * is open, BL_AGAIN to wait for the next on_io, or BL_ERROR with a static
 * or thread-local *reason (e.g. "certificate verify failed").
 */
int bl_sock_handshake(bl_sock_t *s, const char **reason);

/* Returns 1 if the socket may carry a new request: open, no FIN seen, and
 * no unread bytes buffered in OpenSSL; else 0. */
int bl_sock_clean(bl_sock_t *s);

/* Takes the open TLS connection out of `s` so another loop (thread) can
 * adopt it; `s` is closed without touching the connection. Returns BL_OK
 * with *ssl and *fd now owned by the caller, or BL_ERROR if not open. */
int bl_sock_detach(bl_sock_t *s, SSL **ssl, int *fd);

/* Returns an open socket in `loop` around a detached connection (taken;
 * freed and closed on failure), or NULL. */
bl_sock_t *bl_sock_adopt(bl_loop_t *loop, int fd, SSL *ssl, const char *peer_ip);

/* Closes the socket now (sending close_notify if it can without blocking). */
void bl_sock_close(bl_sock_t *s);

/* Returns the stream view. */
static inline bl_stream_t *bl_sock_stream(bl_sock_t *s) { return &s->stream; }

/* Opens a non-blocking listening socket on host:port with SO_REUSEPORT
 * (so each worker thread can have its own). Returns the fd or -1 with
 * *reason. */
int bl_sock_listen(const char *host, int port, int backlog, const char **reason);

#endif
