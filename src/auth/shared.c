/* shared.c - the shared-credential heuristic (see shared.h). */
#include <stdio.h>
#include "auth/shared.h"

/* Forgets addresses not seen within the window. */
static void bl_share_expire(bl_share_t *s, int64_t now_ms, int64_t window_ms)
{
    for (size_t i = 0; i < BL_SHARE_ADDRS; i++)
        if (s->addr[i].ip[0] && now_ms - s->addr[i].last_ms > window_ms)
            memset(&s->addr[i], 0, sizeof(s->addr[i]));
}

/* Returns the slot for ip: its own, a free one, or the least recently
 * seen one (reused). */
static bl_share_addr_t *bl_share_slot(bl_share_t *s, const char *ip, int *fresh)
{
    bl_share_addr_t *free_slot = NULL, *oldest = &s->addr[0];
    *fresh = 0;
    for (size_t i = 0; i < BL_SHARE_ADDRS; i++) {
        bl_share_addr_t *a = &s->addr[i];
        if (a->ip[0] && !strcmp(a->ip, ip))
            return a;
        if (!a->ip[0] && free_slot == NULL)
            free_slot = a;
        if (a->last_ms < oldest->last_ms)
            oldest = a;
    }
    bl_share_addr_t *a = free_slot ? free_slot : oldest;
    memset(a, 0, sizeof(*a));
    snprintf(a->ip, sizeof(a->ip), "%s", ip);
    *fresh = 1;
    return a;
}

/* Puts session first in the address's recent sessions. */
static void bl_share_session(bl_share_addr_t *a, const char *session)
{
    char sid[BL_SHARE_SID_MAX];
    size_t k = 0;
    if (!session[0])
        return;
    for (k = 0; session[k] && k + 1 < sizeof(sid); k++) /* client-supplied: printable ASCII */
        sid[k] = (unsigned char)session[k] >= 0x20 && (unsigned char)session[k] < 0x7f ? session[k] : '?';
    sid[k] = '\0';
    k = 0;
    while (k + 1 < BL_SHARE_SESSIONS && strcmp(a->sessions[k], sid) != 0)
        k++;
    memmove(a->sessions[1], a->sessions[0], k * sizeof(a->sessions[0]));
    memcpy(a->sessions[0], sid, sizeof(sid));
}

int bl_share_note(bl_share_t *s, const char *ip, const char *session, int64_t now_ms,
                  int64_t window_ms)
{
    int fresh, shared = 0;
    bl_share_expire(s, now_ms, window_ms);
    bl_share_addr_t *a = bl_share_slot(s, ip, &fresh);
    if (fresh)
        a->first_ms = now_ms;
    a->last_ms = now_ms;
    bl_share_session(a, session);
    /* Another address seen since this one's first request in the window,
     * and now this one again: their activity interleaves. */
    for (size_t i = 0; !fresh && i < BL_SHARE_ADDRS; i++) {
        const bl_share_addr_t *b = &s->addr[i];
        if (b != a && b->ip[0] && b->last_ms >= a->first_ms && b->first_ms <= a->last_ms)
            shared = 1;
    }
    if (!shared || (s->warned_ms != 0 && now_ms - s->warned_ms < window_ms))
        return 0;
    s->warned_ms = now_ms;
    return 1;
}

int bl_share_addrs_text(const bl_share_t *s, bl_buf_t *out)
{
    int rc = BL_OK, n = 0;
    for (size_t i = 0; i < BL_SHARE_ADDRS; i++)
        if (s->addr[i].ip[0])
            rc |= bl_buf_printf(out, "%s%s", n++ ? ", " : "", s->addr[i].ip);
    return rc ? BL_ERROR : BL_OK;
}

int bl_share_evidence(const bl_share_t *s, bl_buf_t *addrs, bl_buf_t *sessions)
{
    int rc = bl_buf_puts(addrs, "[") | bl_buf_puts(sessions, "[");
    int na = 0, ns = 0;
    for (size_t i = 0; i < BL_SHARE_ADDRS; i++) {
        const bl_share_addr_t *a = &s->addr[i];
        if (!a->ip[0])
            continue;
        rc |= bl_buf_puts(addrs, na++ ? "," : "");
        rc |= bl_buf_json_str(addrs, a->ip, strlen(a->ip));
        for (size_t k = 0; k < BL_SHARE_SESSIONS; k++) {
            if (!a->sessions[k][0])
                continue;
            rc |= bl_buf_puts(sessions, ns++ ? "," : "");
            rc |= bl_buf_json_str(sessions, a->sessions[k], strlen(a->sessions[k]));
        }
    }
    rc |= bl_buf_puts(addrs, "]") | bl_buf_puts(sessions, "]");
    return rc ? BL_ERROR : BL_OK;
}
