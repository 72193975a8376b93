/*
 * status.c - byline's own answers, as Kubernetes Status objects, so
 * kubectl prints "Error from server (Forbidden): byline: ..." instead of
 * an opaque failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include "core/log.h"
#include "proxy/proxy.h"

static const char *bl_status_phrase(int code)
{
    switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* Appends a complete HTTP response carrying a Status body to `out`.
 * Returns BL_OK or BL_ERROR if `out` is full. */
static int bl_status_build(bl_buf_t *out, int code, const char *reason, const char *message,
                           const char *audit_id, int close, uint64_t retry_after)
{
    /* A fixed buffer dressed as a bl_buf_t: max == cap, so it never reallocs. */
    char body[2048];
    bl_buf_t b = { .base = body, .cap = sizeof(body), .max = sizeof(body) };
    int rc = bl_buf_puts(&b, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                             "\"status\":\"Failure\",\"message\":");
    rc |= bl_buf_json_str(&b, message, strlen(message));
    if (retry_after) /* as kube-apiserver's own 429s carry it */
        rc |= bl_buf_printf(&b, ",\"details\":{\"retryAfterSeconds\":%llu}", (unsigned long long)retry_after);
    rc |= bl_buf_printf(&b, ",\"reason\":\"%s\",\"code\":%d}\n", reason, code);
    if (rc != BL_OK)
        return BL_ERROR;
    rc = bl_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Cache-Control: no-cache, private\r\nX-Content-Type-Options: nosniff\r\n"
                            "Content-Length: %zu\r\n",
                       code, bl_status_phrase(code), b.len);
    if (audit_id && *audit_id)
        rc |= bl_buf_printf(out, "Audit-Id: %s\r\n", audit_id);
    if (close)
        rc |= bl_buf_puts(out, "Connection: close\r\n");
    if (retry_after)
        rc |= bl_buf_printf(out, "Retry-After: %llu\r\n", (unsigned long long)retry_after);
    rc |= bl_buf_puts(out, "\r\n");
    rc |= bl_buf_append(out, b.base, b.len);
    return rc ? BL_ERROR : BL_OK;
}

void bl_reply_status(bl_req_t *r, int code, const char *reason, const char *fmt, ...)
{
    bl_conn_t *c = r->conn;
    char msg[BL_REC_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->rec.reason[0] == '\0') /* the record says why without the "byline: " prefix */
        bl_rec_reason(&r->rec, "%s", strncmp(msg, "byline: ", 8) ? msg : msg + 8);
    r->rec.status = code;
    if (bl_status_build(&c->out, code, reason, msg, r->rec.id, c->close_after, r->retry_after) != BL_OK)
        c->close_after = 1; /* no room for a reply: the close says it */
    bl_req_record(r);
    r->phase = BL_REQ_REPLY;
    /* A client that never reads the reply must not hold the slot forever. */
    bl_timer_set(c->w->loop, &c->timer, c->w->srv->cfg->header_timeout_ms);
    c->again = 1;
}

void bl_conn_reply_raw(bl_conn_t *c, int code, const char *reason, const char *message)
{
    /* Out of memory (no record could be made): say why if the socket takes
     * it at once, and close. The unread input goes with the connection. */
    c->close_after = 1;
    if (bl_status_build(&c->out, code, reason, message, NULL, 1, 0) == BL_OK)
        bl_conn_flush(c);
    bl_error("refused a request from %s without an audit record: %s", c->sock->peer_ip, message);
    bl_conn_close(c);
}
