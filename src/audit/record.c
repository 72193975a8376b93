/* record.c - serialise audit records as single JSON lines. */
#include <stdarg.h>
#include <stdio.h>
#include "audit/record.h"

static uint64_t bl_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int bl_rec_begin(bl_audit_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    clock_gettime(CLOCK_REALTIME, &r->ts);
    r->start_us = bl_mono_us();
    r->credential = "none";
    return bl_uuid7(r->id, &r->ts);
}

void bl_rec_copy(char *dst, size_t cap, bl_str_t src)
{
    size_t n = BL_MIN(src.len, cap - 1);
    if (n)
        memcpy(dst, src.p, n);
    dst[n] = '\0';
}

void bl_rec_reason(bl_audit_rec_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

const char *bl_result_name(bl_result_t res)
{
    static const char *names[] = { "allowed", "denied", "unauthenticated", "error" };
    return (unsigned)res < BL_ARRAY_LEN(names) ? names[res] : "error";
}

/* Appends "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" in quotes. The date part is
 * formatted once per second per thread. */
static int bl_rec_time(bl_buf_t *out, const struct timespec *ts)
{
    static _Thread_local time_t cached = -1;
    static _Thread_local char date[24];
    char frac[8];
    if (ts->tv_sec != cached) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        cached = ts->tv_sec;
    }
    long us = ts->tv_nsec / 1000;
    frac[0] = '.';
    for (int i = 6; i >= 1; i--, us /= 10)
        frac[i] = (char)('0' + us % 10);
    frac[7] = 'Z';
    int rc = bl_buf_puts(out, "\"");
    rc |= bl_buf_puts(out, date);
    rc |= bl_buf_append(out, frac, sizeof(frac));
    rc |= bl_buf_puts(out, "\"");
    return rc ? BL_ERROR : BL_OK;
}

/* Appends ,"key":"value" (JSON-escaped) unless value is NULL or empty. */
static int bl_rec_str(bl_buf_t *out, const char *key, const char *v)
{
    if (v == NULL || *v == '\0')
        return BL_OK;
    int rc = bl_buf_puts(out, ",\"");
    rc |= bl_buf_puts(out, key);
    rc |= bl_buf_puts(out, "\":");
    rc |= bl_buf_json_str(out, v, strlen(v));
    return rc ? BL_ERROR : BL_OK;
}

static int bl_rec_head(const bl_audit_rec_t *r, const char *kind, bl_buf_t *out)
{
    int rc = bl_buf_puts(out, "{\"kind\":\"");
    rc |= bl_buf_puts(out, kind);
    rc |= bl_buf_puts(out, "\",\"id\":\"");
    rc |= bl_buf_puts(out, r->id);
    rc |= bl_buf_puts(out, "\",\"ts\":");
    rc |= bl_rec_time(out, &r->ts);
    rc |= bl_buf_puts(out, ",\"actor\":");
    rc |= r->actor ? bl_buf_json_str(out, r->actor, strlen(r->actor)) : bl_buf_puts(out, "null");
    rc |= bl_rec_str(out, "connection", r->connection);
    rc |= bl_rec_str(out, "action", r->action);
    return rc ? BL_ERROR : BL_OK;
}

static int bl_rec_request(const bl_audit_rec_t *r, bl_buf_t *out)
{
    int rc = bl_buf_puts(out, ",\"groups\":[");
    for (size_t i = 0; i < r->ngroups; i++) {
        rc |= i ? bl_buf_puts(out, ",") : BL_OK;
        rc |= bl_buf_json_str(out, r->groups[i], strlen(r->groups[i]));
    }
    rc |= bl_buf_puts(out, "]");
    rc |= bl_rec_str(out, "credential", r->credential);
    rc |= bl_rec_str(out, "source_ip", r->source_ip);
    rc |= bl_rec_str(out, "user_agent", r->user_agent);
    rc |= bl_rec_str(out, "kubectl_session", r->kubectl_session);
    rc |= bl_rec_str(out, "kubectl_command", r->kubectl_command);
    rc |= bl_rec_str(out, "method", r->method);
    rc |= bl_rec_str(out, "uri", r->uri);
    if (r->kreq) {
        rc |= bl_buf_puts(out, ",\"request\":{");
        rc |= bl_kreq_json(r->kreq, out);
        rc |= bl_buf_puts(out, "}");
    }
    return rc ? BL_ERROR : BL_OK;
}

int bl_rec_intent_json(const bl_audit_rec_t *r, bl_buf_t *out)
{
    int rc = bl_rec_head(r, "intent", out);
    rc |= bl_rec_request(r, out);
    rc |= bl_buf_puts(out, "}\n");
    return rc ? BL_ERROR : BL_OK;
}

int bl_rec_result_json(const bl_audit_rec_t *r, int full, bl_buf_t *out)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u - r->start_us;
    int rc = bl_rec_head(r, "result", out);
    if (full)
        rc |= bl_rec_request(r, out);
    rc |= bl_rec_str(out, "result", bl_result_name(r->result));
    rc |= bl_rec_str(out, "reason", r->reason);
    if (r->status) {
        rc |= bl_buf_puts(out, ",\"status\":");
        rc |= bl_buf_putu64(out, (uint64_t)r->status);
    }
    if (r->upgraded)
        rc |= bl_buf_puts(out, ",\"upgraded\":true");
    char frac[4] = { '.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10) };
    rc |= bl_buf_puts(out, ",\"duration_ms\":");
    rc |= bl_buf_putu64(out, us / 1000);
    rc |= bl_buf_append(out, frac, sizeof(frac));
    rc |= bl_buf_puts(out, ",\"bytes_in\":");
    rc |= bl_buf_putu64(out, r->bytes_in);
    rc |= bl_buf_puts(out, ",\"bytes_out\":");
    rc |= bl_buf_putu64(out, r->bytes_out);
    rc |= bl_buf_puts(out, "}\n");
    return rc ? BL_ERROR : BL_OK;
}
