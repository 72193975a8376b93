/* backoff.c - see backoff.h. */
#include "agent/backoff.h"

uint64_t bl_backoff_ms(unsigned attempt, uint64_t base, uint64_t cap, uint32_t rnd)
{
    uint64_t ceil = base;
    for (unsigned i = 0; i < attempt && ceil < cap; i++)
        ceil *= 2;
    if (ceil > cap)
        ceil = cap;
    uint64_t half = ceil / 2;
    return half + (ceil - half) * (uint64_t)rnd / UINT32_MAX;
}
