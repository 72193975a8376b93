/*
 * guard.h - the guardrails for agents that run after the policy allowed a
 * request (docs/POLICY.md): the dry-run-only mode and per-identity rate
 * limits. The built-in blast-radius rule is part of the policy itself.
 */
#ifndef BL_PROXY_GUARD_H
#define BL_PROXY_GUARD_H

#include "policy/policy.h"
#include "proxy/proxy.h"

/*
 * Checks an allowed request: a real write (or an exec, attach or
 * port-forward) from an identity in dry-run-only mode is refused with a
 * 403 naming --dry-run=server; then one token is taken from the
 * identity's bucket for the request's verb class, and an empty bucket
 * gets a 429 TooManyRequests with Retry-After. Returns BL_OK to go on, or
 * BL_DECLINED after the reply and the record (result denied or limited,
 * the rule or limit named). A watch counts once, when it starts.
 */
int bl_req_guard(bl_req_t *r, const bl_policy_req_t *q);

#endif
