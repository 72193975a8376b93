/*
 * backoff.h - reconnect delays: exponential with full jitter, capped.
 */
#ifndef BL_AGENT_BACKOFF_H
#define BL_AGENT_BACKOFF_H

#include <stdint.h>

/*
 * Returns the delay in ms before reconnect attempt `attempt` (0 for the
 * first retry): a value in [ceil/2, ceil] where ceil = min(cap, base *
 * 2^attempt), placed by `rnd` (any 32-bit random value). Half the ceiling
 * is kept so agents that lost the same gateway do not retry at once, yet
 * none waits longer than `cap`.
 */
uint64_t bl_backoff_ms(unsigned attempt, uint64_t base, uint64_t cap, uint32_t rnd);

#endif
