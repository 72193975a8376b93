/*
 * names.h - what byline knows about built-in Kubernetes resources: the
 * singular word kubectl accepts for a (group, plural) pair and whether the
 * resource is cluster-scoped. Used only to render requests for people;
 * nothing here decides what a request may do.
 */
#ifndef BL_KUBE_NAMES_H
#define BL_KUBE_NAMES_H

#include "core/common.h"

#define BL_KRES_CLUSTER 0x1   /* cluster-scoped: no -n / -A when rendering */
#define BL_KRES_QUALIFY 0x2   /* plural is ambiguous across groups: add ".<group>" */

typedef struct {
    const char *group;     /* "" for the core group */
    const char *plural;    /* as in the URL, e.g. "networkpolicies" */
    const char *singular;  /* as kubectl accepts it, e.g. "networkpolicy" */
    unsigned flags;        /* BL_KRES_* */
} bl_kres_t;

/* Returns the static entry for (group, plural), or NULL for resources byline
 * does not know (custom resources, aggregated APIs). */
const bl_kres_t *bl_kres_find(const char *group, const char *plural);

/*
 * Writes the resource type word kubectl would accept into out[cap] (always
 * NUL-terminated when cap > 0): the singular for known resources when
 * `singular` is set, else the plural; unknown resources in a named group are
 * qualified as "<plural>.<group>" (e.g. "widgets.example.com"). Returns the
 * length written; sets *trunc to 1 if the word did not fit.
 */
size_t bl_kres_word(const char *group, const char *plural, int singular,
                    char *out, size_t cap, int *trunc);

#endif
