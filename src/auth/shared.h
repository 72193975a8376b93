/*
 * shared.h - detecting one credential used by two agents.
 *
 * Per identity, a small fixed table remembers the source addresses that
 * authenticated within the last `window` and, for each, when it was
 * first and last seen in that window and the last few kubectl session ids
 * it sent (the Kubectl-Session header: one per kubectl process).
 *
 * The heuristic (docs/IDENTITY.md, "Shared credentials"): an identity
 * appears to be shared when, within the window, requests from two
 * different source addresses interleave: address B was seen after address
 * A's first request in the window, and then A is seen again (their
 * activity spans overlap). An agent that moves (A ... A, then B ... B)
 * never fires it, nor does one address running many kubectl commands in
 * sequence or in parallel. It fires at most once per identity per window.
 *
 * Pure logic: the caller supplies the clock and serialises calls for one
 * bl_share_t (the identity's lock). No allocation.
 */
#ifndef BL_AUTH_SHARED_H
#define BL_AUTH_SHARED_H

#include <stdint.h>
#include "core/buf.h"

#define BL_SHARE_ADDRS    4    /* addresses remembered per identity */
#define BL_SHARE_SESSIONS 2    /* session ids remembered per address */
#define BL_SHARE_IP_MAX   48
#define BL_SHARE_SID_MAX  40   /* kubectl sends a 36-character UUID */
#define BL_SHARE_WINDOW_MS (10 * 60 * 1000)

typedef struct {
    char ip[BL_SHARE_IP_MAX];                         /* "" = free slot */
    char sessions[BL_SHARE_SESSIONS][BL_SHARE_SID_MAX]; /* most recent first; "" = none */
    int64_t first_ms, last_ms;
} bl_share_addr_t;

typedef struct {
    bl_share_addr_t addr[BL_SHARE_ADDRS];
    int64_t warned_ms;   /* when it last fired; 0 = never */
} bl_share_t;

/*
 * Records one successful authentication from `ip` (with kubectl session
 * `session`, "" if none) at now_ms, forgetting what is older than
 * window_ms. Returns 1 when the identity appears to be shared and has not
 * been reported within the window (the caller reports it now; see
 * bl_share_evidence()), else 0.
 */
int bl_share_note(bl_share_t *s, const char *ip, const char *session, int64_t now_ms,
                  int64_t window_ms);

/* Appends the addresses remembered as text, "10.0.0.7, 10.0.0.9", for
 * messages. Returns BL_OK or BL_ERROR (bound). */
int bl_share_addrs_text(const bl_share_t *s, bl_buf_t *out);

/* Appends the addresses and then the sessions remembered, as two JSON
 * arrays of strings separated by '\n' in *addrs / *sessions (each
 * "[...]"), for the notice. Returns BL_OK or BL_ERROR (bound). */
int bl_share_evidence(const bl_share_t *s, bl_buf_t *addrs, bl_buf_t *sessions);

#endif
