/* values.c - syntax checks for durations, sizes, URLs, addresses and names. */
#include <arpa/inet.h>
#include <stdio.h>
#include "config/values.h"

static int bl_is_digit(char c) { return c >= '0' && c <= '9'; }
static int bl_is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || bl_is_digit(c); }
static int bl_is_alnum(char c) { return bl_is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

int bl_duration_parse(const char *s, size_t len, uint64_t *ms, const char **why)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    uint64_t total = 0;
    size_t i = 0;
    if (len == 0) {
        *why = "is empty";
        return BL_ERROR;
    }
    while (i < len) {
        uint64_t n = 0;
        size_t start = i;
        while (i < len && bl_is_digit(s[i])) {
            n = n * 10 + (uint64_t)(s[i++] - '0');
            if (n > UINT32_MAX) {
                *why = "is too long";
                return BL_ERROR;
            }
        }
        if (i == start) {
            *why = "must be digits and a unit (ms, s, m, h), e.g. 10s or 1m30s";
            return BL_ERROR;
        }
        size_t u = i;
        while (i < len && s[i] >= 'a' && s[i] <= 'z')
            i++;
        size_t k;
        for (k = 0; k < BL_ARRAY_LEN(units); k++)
            if (strlen(units[k].unit) == i - u && memcmp(s + u, units[k].unit, i - u) == 0)
                break;
        if (k == BL_ARRAY_LEN(units)) {
            *why = i == u ? "needs a unit (ms, s, m, h), e.g. 10s"
                          : "has an unknown unit (use ms, s, m, h)";
            return BL_ERROR;
        }
        total += n * units[k].ms;
        if (total > UINT32_MAX) {
            *why = "is too long";
            return BL_ERROR;
        }
    }
    *ms = total;
    return BL_OK;
}

char *bl_duration_format(uint64_t ms, char *out, size_t n)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, n, "%llums", (unsigned long long)ms);
    return out;
}

int bl_is_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int bl_is_dns_name(const char *s, size_t len)
{
    size_t label = 0;
    if (len == 0 || len > BL_HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!bl_is_alnum(c) && !(c == '-' && label > 0))
            return 0;
        if (++label > 63)
            return 0;
    }
    return s[len - 1] != '-' && s[len - 1] != '.';
}

/* Parses a decimal port 1..65535 from s[0..len). Returns it, or -1. */
static int bl_port_parse(const char *s, size_t len)
{
    int port = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!bl_is_digit(s[i]))
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* Splits "host[:port]" / "[v6][:port]" at s[0..len). Fills host and *port
 * (or leaves *port alone when absent). Returns BL_OK or BL_ERROR + *why. */
static int bl_authority_parse(const char *s, size_t len, char *host, int *port, int *is_ip,
                              const char **why)
{
    const char *h = s, *colon = NULL;
    size_t hl;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL) {
            *why = "has an unclosed '[' in the host";
            return BL_ERROR;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        if (close + 1 < s + len) {
            if (close[1] != ':') {
                *why = "has junk after the IPv6 address";
                return BL_ERROR;
            }
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        hl = colon ? (size_t)(colon - s) : len;
    }
    if (hl == 0 || hl > BL_HOST_MAX) {
        *why = hl == 0 ? "has no host" : "has a host name that is too long";
        return BL_ERROR;
    }
    /* inet_pton stops at a NUL: "10.0.0.1\0junk" must not pass as an address */
    if (memchr(h, '\0', hl) != NULL) {
        *why = "has an invalid host (a DNS name, an IPv4 address or [IPv6])";
        return BL_ERROR;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *is_ip = bl_is_ip(host);
    if (h != s ? !(*is_ip && strchr(host, ':')) : !(*is_ip || bl_is_dns_name(host, hl))) {
        *why = "has an invalid host (a DNS name, an IPv4 address or [IPv6])";
        return BL_ERROR;
    }
    if (colon != NULL) {
        int p = bl_port_parse(colon + 1, (size_t)(s + len - colon - 1));
        if (p < 0) {
            *why = "has an invalid port (1..65535)";
            return BL_ERROR;
        }
        *port = p;
    }
    return BL_OK;
}

/* RFC 3986 pchar minus pct-encoding, plus '/'. */
static int bl_is_path_char(char c)
{
    return bl_is_alnum(c) || (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

static int bl_is_hex(char c)
{
    return bl_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int bl_url_parse(const char *s, size_t len, bl_url_t *u, const char **why)
{
    static const char scheme[] = "https://";
    if (len > BL_URL_MAX) {
        *why = "is too long";
        return BL_ERROR;
    }
    if (len < sizeof(scheme) - 1 || memcmp(s, scheme, sizeof(scheme) - 1) != 0) {
        *why = "must start with https:// (byline speaks TLS only)";
        return BL_ERROR;
    }
    s += sizeof(scheme) - 1;
    len -= sizeof(scheme) - 1;
    size_t auth = 0;
    while (auth < len && s[auth] != '/' && s[auth] != '?' && s[auth] != '#')
        auth++;
    if (memchr(s, '@', auth) != NULL) {
        *why = "must not hold credentials (user@host); use token_file or client_cert";
        return BL_ERROR;
    }
    u->port = 443;
    if (bl_authority_parse(s, auth, u->host, &u->port, &u->host_is_ip, why) != BL_OK)
        return BL_ERROR;
    const char *p = s + auth;
    size_t pl = len - auth;
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    if (pl > BL_URL_PATH_MAX) {
        *why = "has a path that is too long";
        return BL_ERROR;
    }
    for (size_t i = 0; i < pl; i++) {
        if (p[i] == '%') {
            if (i + 2 >= pl || !bl_is_hex(p[i + 1]) || !bl_is_hex(p[i + 2])) {
                *why = "has a bad %-escape in its path";
                return BL_ERROR;
            }
            i += 2;
            continue;
        }
        if (p[i] == '?' || p[i] == '#') {
            *why = "must not have a query or fragment";
            return BL_ERROR;
        }
        if (!bl_is_path_char(p[i])) {
            *why = "has an invalid character in its path";
            return BL_ERROR;
        }
    }
    memcpy(u->path, p, pl);
    u->path[pl] = '\0';
    return BL_OK;
}

int bl_hostport_parse(const char *s, size_t len, char host[BL_HOST_MAX + 1], int *port,
                      const char **why)
{
    int is_ip, p = -1;
    if (len > BL_HOST_MAX + 8) {
        *why = "is too long";
        return BL_ERROR;
    }
    if (bl_authority_parse(s, len, host, &p, &is_ip, why) != BL_OK)
        return BL_ERROR;
    if (p < 0) {
        *why = "needs a port, e.g. 127.0.0.1:8443";
        return BL_ERROR;
    }
    *port = p;
    return BL_OK;
}

int bl_connection_name_check(const char *s, size_t len, const char **why)
{
    if (len == 0 || len > BL_CONN_NAME_MAX) {
        *why = "must be 1 to 63 characters";
        return BL_ERROR;
    }
    for (size_t i = 0; i < len; i++) {
        if (!bl_is_lower_alnum(s[i]) && !(s[i] == '-' && i > 0 && i + 1 < len)) {
            *why = "must be lower-case letters, digits and '-', starting and ending "
                   "with a letter or digit";
            return BL_ERROR;
        }
    }
    return BL_OK;
}

int bl_identity_name_check(const char *s, size_t len, const char **why)
{
    if (len == 0 || len > BL_NAME_MAX) {
        *why = "must be 1 to 64 characters";
        return BL_ERROR;
    }
    for (size_t i = 0; i < len; i++) {
        int inner = i > 0 && i + 1 < len && strchr("-._@:", s[i]) != NULL && s[i] != '\0';
        if (!bl_is_lower_alnum(s[i]) && !inner) {
            *why = "must be lower-case letters, digits and - . _ @ :, starting and "
                   "ending with a letter or digit";
            return BL_ERROR;
        }
    }
    if (len >= 7 && memcmp(s, "system:", 7) == 0) {
        *why = "must not begin with \"system:\" (reserved by Kubernetes)";
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_size_parse(const char *s, size_t len, uint64_t *bytes, const char **why)
{
    static const struct { const char *unit; unsigned shift; } units[] = {
        { "B", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
    };
    uint64_t n = 0;
    size_t i = 0;
    while (i < len && bl_is_digit(s[i])) {
        n = n * 10 + (uint64_t)(s[i++] - '0');
        if (n > (UINT64_C(1) << 53)) {
            *why = "is too large";
            return BL_ERROR;
        }
    }
    if (i == 0 || (i < len && !bl_is_alnum(s[i]))) {
        *why = len == 0 ? "is empty" : "must be digits and a unit (B, KiB, MiB, GiB), e.g. 64MiB";
        return BL_ERROR;
    }
    if (i == len) {
        *bytes = n;
        if (n == 0)
            return BL_OK;
        *why = "needs a unit (B, KiB, MiB, GiB), e.g. 16KiB or 16384B";
        return BL_ERROR;
    }
    for (size_t k = 0; k < BL_ARRAY_LEN(units); k++) {
        if (strlen(units[k].unit) != len - i || memcmp(s + i, units[k].unit, len - i) != 0)
            continue;
        if (n > (UINT64_C(1) << 62) >> units[k].shift) {
            *why = "is too large";
            return BL_ERROR;
        }
        *bytes = n << units[k].shift;
        return BL_OK;
    }
    if (len - i == 2 && s[i + 1] == 'B' && strchr("kKMGT", s[i]) != NULL && s[i] != '\0')
        *why = "is ambiguous (1000 or 1024?): write KiB, MiB or GiB (powers of 1024) "
               "or the bytes with B";
    else
        *why = "has an unknown unit (use B, KiB, MiB, GiB)";
    return BL_ERROR;
}

char *bl_size_format(uint64_t bytes, char *out, size_t n)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    size_t k = 0;
    if (bytes == 0) {
        snprintf(out, n, "0");
        return out;
    }
    while (k + 1 < BL_ARRAY_LEN(units) && bytes % 1024 == 0) {
        bytes /= 1024;
        k++;
    }
    snprintf(out, n, "%llu%s", (unsigned long long)bytes, units[k]);
    return out;
}

int bl_origin_check(const char *s, size_t len, const char **why)
{
    if (len == 0 || len > BL_ORIGIN_MAX) {
        *why = "must be 1 to 128 characters";
        return BL_ERROR;
    }
    for (size_t i = 0; i < len; i++) {
        if (!bl_is_alnum(s[i]) && !(i > 0 && s[i] != '\0' && strchr("._/:-", s[i]) != NULL)) {
            *why = "must be letters, digits and . _ / : - starting with a letter or digit, "
                   "e.g. byline/gw-1 (no spaces or '+': it is a signed-note key name)";
            return BL_ERROR;
        }
    }
    return BL_OK;
}

int bl_impersonate_template_check(const char *s, size_t len, const char **why)
{
    static const char ph[] = "{name}", sys[] = "system:";
    const char *first = memmem(s, len, ph, sizeof(ph) - 1);
    if (len == 0 || len > BL_IMPERSONATE_MAX) {
        *why = "must be 1 to 128 characters";
        return BL_ERROR;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e || (s[i] == ' ' && (i == 0 || i + 1 == len))) {
            *why = "must be printable ASCII without leading or trailing spaces";
            return BL_ERROR;
        }
        if (s[i] == '{' && len - i >= sizeof(ph) - 1 && !memcmp(s + i, ph, sizeof(ph) - 1)) {
            i += sizeof(ph) - 2;
        } else if (s[i] == '{' || s[i] == '}') {
            *why = "has a '{' or '}' that is not part of {name} (the only placeholder)";
            return BL_ERROR;
        }
    }
    if (first == NULL) {
        *why = "must contain {name}: without it every identity would act as one user";
        return BL_ERROR;
    }
    size_t pre = (size_t)(first - s);
    if ((pre >= sizeof(sys) - 1 && !memcmp(s, sys, sizeof(sys) - 1)) ||
        (pre > 0 && pre < sizeof(sys) - 1 && !memcmp(s, sys, pre))) {
        *why = "could make a user name beginning with \"system:\", which Kubernetes reserves "
               "for its own components";
        return BL_ERROR;
    }
    return BL_OK;
}
