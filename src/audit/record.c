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
    static const char *names[] = { "allowed", "denied", "unauthenticated", "error", "limited" };
    return (unsigned)res < BL_ARRAY_LEN(names) ? names[res] : "error";
}

/* Appends "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" in quotes. The date part is
 * formatted once per second per thread. */
int bl_rec_ts(bl_buf_t *out, const struct timespec *ts)
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

/* A JSON object writer that tracks the comma. Members must be added in
 * byte order of their keys (RFC 8785): each function below is called in
 * that order by bl_rec_entry(). */
typedef struct {
    bl_buf_t *out;
    int first, err;
} bl_obj_t;

static void bl_obj_key(bl_obj_t *o, const char *key)
{
    o->err |= bl_buf_puts(o->out, o->first ? "\"" : ",\"");
    o->err |= bl_buf_puts(o->out, key);
    o->err |= bl_buf_puts(o->out, "\":");
    o->first = 0;
}

/* "key":"value", omitted when the value is NULL or empty. */
static void bl_obj_str(bl_obj_t *o, int when, const char *key, const char *v)
{
    if (!when || v == NULL || *v == '\0')
        return;
    bl_obj_key(o, key);
    o->err |= bl_buf_json_str(o->out, v, strlen(v));
}

static void bl_obj_u64(bl_obj_t *o, int when, const char *key, uint64_t v)
{
    if (!when)
        return;
    bl_obj_key(o, key);
    o->err |= bl_buf_putu64(o->out, v);
}

static void bl_obj_raw(bl_obj_t *o, int when, const char *key, const char *json, size_t n)
{
    if (!when || n == 0)
        return;
    bl_obj_key(o, key);
    o->err |= bl_buf_append(o->out, json, n);
}

static void bl_obj_groups(bl_obj_t *o, int when, const bl_audit_rec_t *r)
{
    if (!when)
        return;
    bl_obj_key(o, "groups");
    o->err |= bl_buf_puts(o->out, "[");
    for (size_t i = 0; i < r->ngroups; i++) {
        o->err |= i ? bl_buf_puts(o->out, ",") : BL_OK;
        o->err |= bl_buf_json_str(o->out, r->groups[i], strlen(r->groups[i]));
    }
    o->err |= bl_buf_puts(o->out, "]");
}

static void bl_obj_request(bl_obj_t *o, int when, const bl_audit_rec_t *r)
{
    if (!when || r->kreq == NULL)
        return;
    bl_obj_key(o, "request");
    o->err |= bl_buf_puts(o->out, "{");
    o->err |= bl_kreq_json(r->kreq, o->out);
    o->err |= bl_buf_puts(o->out, "}");
}

static uint64_t bl_rec_duration_us(const bl_audit_rec_t *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u - r->start_us;
}

/* One entry, members in key order. `res`: a result; `req`: carry the
 * request's fields (an intent, or a result without one). */
static int bl_rec_entry(const bl_audit_rec_t *r, int res, int req, bl_buf_t *out)
{
    bl_obj_t o = { out, 1, 0 };
    size_t mark = out->len;
    o.err |= bl_buf_puts(out, "{");
    bl_obj_str(&o, 1, "action", r->action);
    bl_obj_key(&o, "actor");
    o.err |= r->actor ? bl_buf_json_str(out, r->actor, strlen(r->actor)) : bl_buf_puts(out, "null");
    bl_obj_str(&o, 1, "approved_by", r->approved_by);
    bl_obj_u64(&o, res, "bytes_in", r->bytes_in);
    bl_obj_u64(&o, res, "bytes_out", r->bytes_out);
    bl_obj_raw(&o, res, "capture", r->capture.p, r->capture.len);
    bl_obj_str(&o, 1, "connection", r->connection);
    bl_obj_str(&o, req, "credential", r->credential);
    bl_obj_str(&o, 1, "decision", r->decision);
    bl_obj_u64(&o, res, "duration_us", res ? bl_rec_duration_us(r) : 0);
    bl_obj_raw(&o, res, "exec", r->exec.p, r->exec.len);
    bl_obj_groups(&o, req, r);
    bl_obj_str(&o, 1, "id", r->id);
    bl_obj_str(&o, 1, "kind", res ? "result" : "intent");
    bl_obj_str(&o, req, "kubectl_command", r->kubectl_command);
    bl_obj_str(&o, req, "kubectl_session", r->kubectl_session);
    bl_obj_str(&o, req, "method", r->method);
    bl_obj_str(&o, res, "reason", r->reason);
    bl_obj_request(&o, req, r);
    bl_obj_raw(&o, req, "request_body", r->request_body.p, r->request_body.len);
    bl_obj_raw(&o, res, "response_body", r->response_body.p, r->response_body.len);
    bl_obj_str(&o, res, "result", bl_result_name(r->result));
    bl_obj_str(&o, 1, "review", r->review);
    bl_obj_str(&o, 1, "rule", r->rule);
    bl_obj_str(&o, req, "source_ip", r->source_ip);
    bl_obj_u64(&o, res && r->status, "status", (uint64_t)r->status);
    bl_obj_key(&o, "ts");
    o.err |= bl_rec_ts(out, &r->ts);
    if (res && r->upgraded) {
        bl_obj_key(&o, "upgraded");
        o.err |= bl_buf_puts(out, "true");
    }
    bl_obj_str(&o, req, "uri", r->uri);
    bl_obj_str(&o, req, "user_agent", r->user_agent);
    o.err |= bl_buf_puts(out, "}");
    if (o.err) {
        out->len = mark;
        return BL_ERROR;
    }
    return BL_OK;
}

int bl_rec_intent_json(const bl_audit_rec_t *r, bl_buf_t *out)
{
    return bl_rec_entry(r, 0, 1, out);
}

int bl_rec_result_json(const bl_audit_rec_t *r, int full, bl_buf_t *out)
{
    return bl_rec_entry(r, 1, full, out);
}
