/*
 * glob.h - shell-style wildcard matching for policy rules: `*` (any run),
 * `?` (one byte), `[abc]` `[a-z]` `[!x]` (one byte of a set) and `\x`
 * (x itself). Matching is iterative with one backtrack point, so it takes
 * O(len(pattern) * len(string)) time whatever the pattern: a hostile
 * request string cannot make it slow. It never allocates.
 */
#ifndef BL_POLICY_GLOB_H
#define BL_POLICY_GLOB_H

#include <stddef.h>

/* BL_GLOB_PATH: `*`, `?` and sets do not match '/', and do not match a
 * '.' that begins the string or follows a '/' (so "/var/log/x" patterns
 * cannot reach "/var/log/../../etc/shadow" or hidden files). */
#define BL_GLOB_PATH 1

/* Returns 1 if `s` (slen bytes) matches the pattern (plen bytes), else 0. */
int bl_glob_match(const char *pat, size_t plen, const char *s, size_t slen, unsigned flags);

/* Returns 1 if the pattern has an unescaped * ? or [, else 0. */
int bl_glob_is_glob(const char *pat, size_t plen);

/* Returns NULL if the pattern is well formed, else a static reason
 * (an unterminated set, or a trailing backslash). */
const char *bl_glob_check(const char *pat, size_t plen);

#endif
