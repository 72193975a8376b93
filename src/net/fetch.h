/*
 * fetch.h - a small blocking HTTPS GET for background threads (JWKS and
 * OIDC discovery documents). Never call it on an event-loop thread.
 *
 * The server certificate is verified against `ca` (or the system store)
 * and the URL's host name; TLS 1.2 is the floor. Everything is bounded:
 * one deadline covers connect, handshake and the whole response (not
 * name resolution, which has no timeout of its own);
 * the body is at most `max_body` bytes; only 200 is success.
 */
#ifndef BL_NET_FETCH_H
#define BL_NET_FETCH_H

#include "core/buf.h"

typedef struct {
    const char *ca;           /* CA bundle (PEM) or NULL for the system store */
    unsigned timeout_ms;      /* the whole exchange */
    size_t max_body;          /* larger bodies are an error */
} bl_fetch_opts_t;

/*
 * GETs `url` (https://host[:port][/path]). Returns BL_OK with the body
 * appended to `body` and *max_age set from Cache-Control max-age (seconds,
 * or -1 when absent; no-store/no-cache give 0), or BL_ERROR with a reason
 * appended to `err`. Thread-safe.
 */
int bl_https_get(const char *url, const bl_fetch_opts_t *o, bl_buf_t *body, long *max_age,
                 bl_buf_t *err);

#endif
