/*
 * values.h - the syntax of typed configuration values: durations, https
 * URLs, listen addresses and the names byline gives connections and
 * identities. Pure functions over caller memory; nothing here allocates.
 *
 * Each checker returns BL_OK, or BL_ERROR and sets *why to a static
 * phrase fit for "file:line:col: <what> <why>" messages.
 */
#ifndef BL_CONFIG_VALUES_H
#define BL_CONFIG_VALUES_H

#include "core/common.h"

#define BL_HOST_MAX     253   /* DNS name length bound; IPv6 literals fit too */
#define BL_URL_MAX      2048
#define BL_URL_PATH_MAX 1024
#define BL_NAME_MAX     64    /* identity and group names (an X.509 CN is at most 64) */
#define BL_CONN_NAME_MAX 63   /* a DNS label */

/*
 * Parses a duration: one or more <digits><unit> with unit ms, s, m or h,
 * e.g. "500ms", "10s", "1m30s". Returns BL_OK with the total in *ms, or
 * BL_ERROR (no unit, unknown unit, sign, fraction, overflow past 2^32-1 ms).
 */
int bl_duration_parse(const char *s, size_t len, uint64_t *ms, const char **why);

/* Writes `ms` in the largest exact unit ("2m", "1500ms") into out[n].
 * Returns out. */
char *bl_duration_format(uint64_t ms, char *out, size_t n);

/* An https URL taken apart. `host` has no brackets for IPv6 literals;
 * `path` has no trailing '/' and is "" when absent. */
typedef struct {
    char host[BL_HOST_MAX + 1];
    int host_is_ip;                 /* 1 for an IPv4 or IPv6 literal */
    int port;                       /* 443 when absent */
    char path[BL_URL_PATH_MAX + 1];
} bl_url_t;

/*
 * Parses "https://host[:port][/path]". No userinfo, query or fragment;
 * the host is a DNS name, an IPv4 address or a bracketed IPv6 address.
 * Returns BL_OK with *u filled, or BL_ERROR with *why.
 */
int bl_url_parse(const char *s, size_t len, bl_url_t *u, const char **why);

/*
 * Parses a listen address "host:port" or "[v6]:port" (port 1..65535).
 * Returns BL_OK with host (no brackets, NUL-terminated, at most
 * BL_HOST_MAX bytes) and *port, or BL_ERROR with *why.
 */
int bl_hostport_parse(const char *s, size_t len, char host[BL_HOST_MAX + 1], int *port,
                      const char **why);

/*
 * Parses a size: "0", or <digits><unit> with unit B, KiB, MiB, GiB or TiB
 * (powers of 1024), e.g. "16KiB", "64MiB", "4096B". A bare number other
 * than 0 needs a unit, and KB/MB/GB are refused as ambiguous (SI says
 * 1000, much software says 1024): the writer says which one. Returns BL_OK
 * with the byte count in *bytes, or BL_ERROR (no unit, unknown unit,
 * sign, fraction, more than 2^53 before the unit) with *why.
 */
int bl_size_parse(const char *s, size_t len, uint64_t *bytes, const char **why);

/* Writes `bytes` in the largest exact unit ("64MiB", "1500B", "0") into
 * out[n]. Returns out. */
char *bl_size_format(uint64_t bytes, char *out, size_t n);

#define BL_ORIGIN_MAX 128

/*
 * Checkpoint origins (also the signed note's key name): 1..128 bytes of
 * [A-Za-z0-9._/:-] starting with a letter or digit, e.g. "byline/gw-1"
 * or "audit.example.org/byline". C2SP forbids spaces and '+' in both.
 */
int bl_origin_check(const char *s, size_t len, const char **why);

#define BL_IMPERSONATE_MAX 128

/*
 * Impersonate-User templates: 1..128 bytes of printable ASCII (inner
 * spaces allowed) holding "{name}" at least once and no other '{' or '}';
 * "{name}" becomes the identity's name. Refused when every expansion, or
 * some identity name, would make a user beginning with "system:", which
 * Kubernetes reserves for its own components ("system:{name}", or "sys"
 * before "{name}" for an identity named "tem:x").
 */
int bl_impersonate_template_check(const char *s, size_t len, const char **why);

/* Returns 1 if `s` is an IPv4 or IPv6 literal (no brackets), else 0. */
int bl_is_ip(const char *s);

/* Returns 1 if `s` is a DNS name (letters, digits, '-', labels of 1..63
 * bytes, at most 253 bytes, no leading/trailing '-' in a label), else 0. */
int bl_is_dns_name(const char *s, size_t len);

/* Connection names: a DNS label, [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most
 * 63 bytes. They appear in URLs (/k8s/<name>/) and audit records. */
int bl_connection_name_check(const char *s, size_t len, const char **why);

/*
 * Identity and group names: 1..64 bytes of [a-z0-9._@:-], starting and
 * ending with [a-z0-9], not beginning with "system:" (a prefix Kubernetes
 * reserves for its own users and groups). Lower case only, so two names
 * never differ by case alone; ':' '@' '.' allow "team:agent" and e-mail
 * style names; no '/' or leading '.', so a name is also a safe file name.
 */
int bl_identity_name_check(const char *s, size_t len, const char **why);

#endif
