/*
 * request.c - admitting one request: route it to a connection, learn who
 * sent it, refuse what must not pass, understand it, write the intent
 * record, and prepare the head the upstream will see.
 *
 * Order matters: the action is rendered before authentication so that
 * even a refused, unauthenticated attempt is audited as what it tried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "audit/body.h"
#include "audit/capsync.h"
#include "audit/capture.h"
#include "auth/identity.h"
#include "auth/lifetime.h"
#include "core/base64.h"
#include "core/metrics.h"
#include "kube/tap.h"
#include "core/log.h"
#include "policy/policy.h"
#include "proxy/guard.h"
#include "review/store.h"
#include "proxy/proxy.h"

#define BL_ROUTE_PREFIX "/k8s/"
/* kube-apiserver also takes a bearer token from a WebSocket subprotocol
 * (browsers cannot set Authorization on a WebSocket); so does byline. */
#define BL_WS_TOKEN_PROTO "base64url.bearer.authorization.k8s.io."
#define BL_WS_TOKEN_MAX 4096

/* Returns 1 if the target names a connection ("/k8s/<name>..."). */
static int bl_req_prefixed(bl_str_t target)
{
    const size_t plen = sizeof(BL_ROUTE_PREFIX) - 1;
    return target.len > plen && memcmp(target.p, BL_ROUTE_PREFIX, plen) == 0;
}

/* Picks the connection: "/k8s/<name>/..." names one; anything else goes to
 * the first configured. Sets *rest to the target without the prefix.
 * Returns BL_OK, or BL_DECLINED if the named connection does not exist. */
static int bl_req_route(bl_req_t *r, bl_str_t target, bl_str_t *rest)
{
    const bl_config_t *cfg = r->conn->w->srv->cfg;
    const size_t plen = sizeof(BL_ROUTE_PREFIX) - 1;
    *rest = target;
    r->connection = NULL;
    if (!bl_req_prefixed(target)) {
        /* With several clusters behind byline, guessing would send a
         * request meant for one to another (client-go drops the prefix for
         * `kubectl get --raw`): refuse instead. */
        if (cfg->nconns > 1)
            return BL_DECLINED;
        r->connection = &cfg->conns[0];
        return BL_OK;
    }
    size_t end = plen;
    while (end < target.len && target.p[end] != '/' && target.p[end] != '?')
        end++;
    r->connection = bl_config_connection(cfg, target.p + plen, end - plen);
    if (r->connection == NULL)
        return BL_DECLINED;
    rest->p = target.p + end;
    rest->len = target.len - end;
    if (rest->len == 0)
        *rest = BL_STR("/");
    return BL_OK;
}

/* Finds a bearer token carried as a WebSocket subprotocol. Returns its
 * decoded length (> 0) in tok, 0 if none, BL_ERROR if malformed. */
static long bl_req_ws_token(const bl_http_request_t *hr, unsigned char *tok, size_t cap)
{
    size_t pos = 0;
    const bl_http_header_t *h;
    const size_t plen = sizeof(BL_WS_TOKEN_PROTO) - 1;
    while ((h = bl_http_find(hr->headers, hr->num_headers, "sec-websocket-protocol", &pos)) != NULL) {
        const char *p = h->value.p, *end = p + h->value.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            bl_str_t el = bl_str_trim((bl_str_t){ p, (size_t)((comma ? comma : end) - p) });
            if (el.len > plen && memcmp(el.p, BL_WS_TOKEN_PROTO, plen) == 0) {
                long n = bl_b64url_decode((bl_str_t){ el.p + plen, el.len - plen }, tok, cap);
                return n > 0 ? n : BL_ERROR;
            }
            p = comma ? comma + 1 : end;
        }
    }
    return 0;
}

/* Maps a bearer token to an identity: a registered byline token, else a
 * JWT from a configured issuer (auth/identity.h). Returns BL_OK with *id
 * and rec.credential set; BL_AGAIN when the JWT's issuer is refreshing
 * its keys (the connection parks until then; c->auth_wait is registered);
 * or BL_DECLINED with rec.reason (`via` is appended to it). */
static int bl_req_token(bl_req_t *r, const char *tok, size_t len, const char *via,
                        const bl_identity_t **id)
{
    bl_conn_t *c = r->conn;
    const bl_config_t *cfg = c->w->srv->cfg;
    char why[BL_REC_REASON_MAX - 64] = "";
    *id = bl_identity_by_token(bl_idtable_cfg(r->ids), tok, len);
    if (*id != NULL) {
        r->rec.credential = "token";
        return BL_OK;
    }
    int rc = cfg->nissuers == 0 || memchr(tok, '.', len) == NULL ? BL_DECLINED
             : bl_identity_by_jwt(cfg, c->w->srv->jwks, tok, len, (int64_t)time(NULL),
                                  c->auth_waited ? NULL : &c->auth_wait, &r->jwt_id, why, sizeof(why));
    if (rc == BL_OK) {
        *id = r->jwt_id;
        r->rec.credential = "jwt";
        return BL_OK;
    }
    if (rc == BL_AGAIN)
        return BL_AGAIN;
    if (rc == BL_DECLINED)
        bl_rec_reason(&r->rec, "unknown bearer token%s%s%s%s", why[0] ? " (" : "", why, why[0] ? ")" : "", via);
    else
        bl_rec_reason(&r->rec, "%s%s", why, via);
    return BL_DECLINED;
}

/* Refuses an expired or revoked identity (the reason names it, never the
 * credential); else records the use: last used, and a shared-credential
 * notice for the ledger when the identity appears to be shared. */
static int bl_req_lifetime(bl_req_t *r, const bl_identity_t *id)
{
    struct timespec now;
    char why[BL_REC_REASON_MAX];
    clock_gettime(CLOCK_REALTIME, &now);
    if (bl_lifetime_check(id, r->rec.credential, (int64_t)now.tv_sec, why, sizeof(why)) != BL_OK) {
        bl_rec_reason(&r->rec, "%s", why);
        return BL_DECLINED;
    }
    bl_buf_t notice;
    bl_buf_init(&notice, 8192);
    if (bl_idtable_used(r->ids, id, r->rec.source_ip, r->rec.kubectl_session,
                        (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &notice) == 1 &&
        bl_audit_batch_add(&r->conn->w->audit, BL_ENT_OTHER, NULL, bl_buf_data(&notice),
                           bl_buf_size(&notice), NULL) != BL_OK)
        bl_warn("audit: the shared-credential notice for %s did not fit in the batch", id->name);
    bl_buf_free(&notice);
    return BL_OK;
}

/* Finds the identity behind the request. Returns BL_OK with rec.actor set,
 * BL_AGAIN when a JWT waits for its issuer's keys, or BL_DECLINED with
 * rec.reason saying why not (the caller answers 401). */
static int bl_req_authenticate(bl_req_t *r, const bl_http_request_t *hr)
{
    const bl_identity_t *id = NULL;
    unsigned char wstok[BL_WS_TOKEN_MAX];
    long wsn;
    size_t pos = 0;
    bl_worker_t *w = r->conn->w;
    if (r->ids == NULL) /* the table this request authenticates in, for its whole life */
        r->ids = bl_idtable_ref(bl_idcache_get(w->srv->idreg, &w->ids));
    bl_conn_client_cert(r->conn, r->ids); /* again only when the table was reloaded */
    const bl_http_header_t *h = bl_http_find(hr->headers, hr->num_headers, "authorization", &pos);
    if (h && bl_http_find(hr->headers, hr->num_headers, "authorization", &pos)) {
        bl_rec_reason(&r->rec, "more than one Authorization header");
        return BL_DECLINED;
    }
    if (h) {
        bl_str_t v = h->value;
        if (!bl_str_prefix_nocase(v, "bearer ") || bl_str_trim((bl_str_t){ v.p + 7, v.len - 7 }).len == 0) {
            bl_rec_reason(&r->rec, "only bearer tokens and client certificates are accepted");
            return BL_DECLINED;
        }
        bl_str_t tok = bl_str_trim((bl_str_t){ v.p + 7, v.len - 7 });
        int rc = bl_req_token(r, tok.p, tok.len, "", &id);
        if (rc != BL_OK)
            return rc;
        if (r->conn->cert_id && r->conn->cert_id != id) {
            bl_rec_reason(&r->rec, "client certificate and bearer token name different identities");
            return BL_DECLINED;
        }
    } else if ((wsn = bl_req_ws_token(hr, wstok, sizeof(wstok))) != 0) {
        int rc = wsn > 0 ? bl_req_token(r, (const char *)wstok, (size_t)wsn, " (WebSocket subprotocol)", &id)
                         : BL_DECLINED;
        OPENSSL_cleanse(wstok, sizeof(wstok));
        if (wsn < 0)
            bl_rec_reason(&r->rec, "unknown bearer token (WebSocket subprotocol)");
        if (rc != BL_OK)
            return rc;
    } else if (r->conn->cert_id) {
        id = r->conn->cert_id;
        r->rec.credential = "cert";
    } else {
        bl_rec_reason(&r->rec, "%s", r->conn->cert_err[0] ? r->conn->cert_err : "no credentials presented");
        return BL_DECLINED;
    }
    if (id != r->jwt_id && bl_req_lifetime(r, id) != BL_OK)
        return BL_DECLINED;
    r->rec.actor = id->name;
    r->rec.groups = id->groups;
    r->rec.ngroups = id->ngroups;
    return BL_OK;
}

/* Returns 1 if the header must not travel upstream as the client sent it. */
static int bl_req_header_dropped(bl_str_t name, const bl_http_request_t *hr)
{
    static const char *const drop[] = {
        "host", "authorization", "proxy-authorization", "proxy-connection", "connection",
        "keep-alive", "te", "trailer", "transfer-encoding", "content-length", "upgrade",
        "audit-id", "forwarded", "x-real-ip", "expect",
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(drop); i++)
        if (bl_str_eq_nocase(name, drop[i]))
            return 1;
    /* Byline-*: byline's own fields (Byline-Identity names the identity to
     * an agent, docs/AGENT.md); a client must not set them. */
    if (bl_str_prefix_nocase(name, "x-forwarded-") || bl_str_prefix_nocase(name, "x-remote-") ||
        bl_str_prefix_nocase(name, "impersonate-") || bl_str_prefix_nocase(name, "byline-"))
        return 1;
    /* Some servers and proxies read '_' as '-' (CGI, nginx's
     * underscores_in_headers): Impersonate_User or X_Remote_User must not
     * become an identity upstream. nginx drops such names by default too. */
    if (memchr(name.p, '_', name.len))
        return 1;
    /* Hop-by-hop fields the client named in Connection. */
    size_t pos = 0;
    const bl_http_header_t *c;
    while ((c = bl_http_find(hr->headers, hr->num_headers, "connection", &pos)) != NULL) {
        char tok[64];
        if (name.len < sizeof(tok)) {
            memcpy(tok, name.p, name.len);
            tok[name.len] = '\0';
            if (bl_http_has_token(c->value, tok))
                return 1;
        }
    }
    return 0;
}

/* Returns the upgrade protocol byline relays ("websocket", "SPDY/3.1"), or
 * an empty view. Other upgrades (h2c above all, which would hide requests
 * from the audit) are ignored: the request proceeds as plain HTTP. */
static bl_str_t bl_req_upgrade(const bl_http_request_t *hr)
{
    size_t pos = 0, cpos = 0;
    const bl_http_header_t *u = bl_http_find(hr->headers, hr->num_headers, "upgrade", &pos);
    int conn_upgrade = 0;
    const bl_http_header_t *c;
    while ((c = bl_http_find(hr->headers, hr->num_headers, "connection", &cpos)) != NULL)
        conn_upgrade |= bl_http_has_token(c->value, "upgrade");
    if (u == NULL || !conn_upgrade || bl_http_find(hr->headers, hr->num_headers, "upgrade", &pos))
        return BL_STR_NULL;
    if (bl_str_eq_nocase(u->value, "websocket") || bl_str_eq_nocase(u->value, "SPDY/3.1"))
        return u->value;
    return BL_STR_NULL;
}

/* Forwards a Sec-WebSocket-Protocol list without any bearer-token element:
 * the client's credential never travels upstream. BL_OK or BL_ERROR. */
static int bl_req_ws_protocols(bl_buf_t *b, const bl_http_header_t *h)
{
    const char *p = h->value.p, *end = p + h->value.len;
    size_t start = b->len;
    int rc = BL_OK, n = 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        bl_str_t el = bl_str_trim((bl_str_t){ p, (size_t)((comma ? comma : end) - p) });
        p = comma ? comma + 1 : end;
        if (el.len == 0 || bl_str_prefix_nocase(el, BL_WS_TOKEN_PROTO))
            continue;
        rc |= bl_buf_puts(b, n++ ? ", " : "Sec-WebSocket-Protocol: ");
        rc |= bl_buf_putstr(b, el);
    }
    if (n)
        rc |= bl_buf_puts(b, "\r\n");
    else
        b->len = start;
    return rc ? BL_ERROR : BL_OK;
}

/* Appends Impersonate-* lines naming the identity, when the connection
 * asks for it: the cluster's own audit log then shows the agent as
 * impersonatedUser, and cluster RBAC can scope each agent. BL_OK/BL_ERROR. */
static int bl_req_impersonate(bl_req_t *r, bl_buf_t *b)
{
    const bl_connection_t *c = r->connection;
    if (!c->impersonate || r->rec.actor == NULL)
        return BL_OK;
    const char *tpl = c->impersonate_user ? c->impersonate_user : "byline:{name}", *at;
    int rc = bl_buf_puts(b, "Impersonate-User: ");
    while ((at = strstr(tpl, "{name}")) != NULL) { /* every {name}; the loader bounds the template */
        rc |= bl_buf_append(b, tpl, (size_t)(at - tpl));
        rc |= bl_buf_puts(b, r->rec.actor);
        tpl = at + 6;
    }
    rc |= bl_buf_puts(b, tpl);
    rc |= bl_buf_puts(b, "\r\n");
    for (size_t i = 0; i < r->rec.ngroups; i++)
        rc |= bl_buf_field(b, BL_STR("Impersonate-Group"), (bl_str_t){ r->rec.groups[i], strlen(r->rec.groups[i]) });
    /* Extra keys are percent-encoded in the header name ("/" is %2F). */
    rc |= bl_buf_field(b, BL_STR("Impersonate-Extra-byline.dev%2Fconnection"), (bl_str_t){ c->name, strlen(c->name) });
    if (r->rec.kubectl_session[0])
        rc |= bl_buf_field(b, BL_STR("Impersonate-Extra-byline.dev%2Fsession"),
                           (bl_str_t){ r->rec.kubectl_session, strlen(r->rec.kubectl_session) });
    return rc ? BL_ERROR : BL_OK;
}

/* Writes the head the API server will see into r->uhead. BL_OK or BL_ERROR. */
static int bl_req_build_head(bl_req_t *r, const bl_http_request_t *hr, bl_str_t rest)
{
    bl_buf_t *b = &r->uhead;
    bl_buf_reserve(b, 2048); /* one allocation for a typical head */
    int rc = bl_buf_putstr(b, hr->method);
    rc |= bl_buf_puts(b, " ");
    rc |= bl_buf_puts(b, r->up->ops->prefix(r->up));
    rc |= bl_buf_putstr(b, rest);
    rc |= bl_buf_puts(b, " HTTP/1.1\r\n");
    rc |= r->up->ops->head(r->up, b);
    rc |= bl_req_impersonate(r, b);
    if (r->connection->via_agent && r->rec.actor) /* the agent's per-identity credential; it never forwards it */
        rc |= bl_buf_field(b, BL_STR("Byline-Identity"), (bl_str_t){ r->rec.actor, strlen(r->rec.actor) });
    for (size_t i = 0; i < hr->num_headers; i++) {
        const bl_http_header_t *h = &hr->headers[i];
        if (bl_req_header_dropped(h->name, hr))
            continue;
        if (bl_str_eq_nocase(h->name, "sec-websocket-protocol"))
            rc |= bl_req_ws_protocols(b, h);
        else
            rc |= bl_buf_field(b, h->name, h->value);
    }
    rc |= bl_buf_field(b, BL_STR("Audit-ID"), (bl_str_t){ r->rec.id, BL_UUID_LEN });
    rc |= bl_buf_field(b, BL_STR("X-Forwarded-For"), (bl_str_t){ r->rec.source_ip, strlen(r->rec.source_ip) });
    if (r->qbody.kind == BL_BODY_LENGTH) {
        rc |= bl_buf_puts(b, "Content-Length: ");
        rc |= bl_buf_putu64(b, r->qbody.length);
        rc |= bl_buf_puts(b, "\r\n");
    }
    else if (r->qbody.kind == BL_BODY_CHUNKED)
        rc |= bl_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    bl_str_t up = bl_req_upgrade(hr);
    if (up.len) {
        r->upgrade = 1;
        rc |= bl_buf_printf(b, "Connection: Upgrade\r\nUpgrade: %.*s\r\n", (int)up.len, up.p);
    }
    rc |= bl_buf_puts(b, "\r\n");
    return rc ? BL_ERROR : BL_OK;
}

/* Copies the request facts the audit record keeps beyond the head's life. */
static void bl_req_note(bl_req_t *r, const bl_http_request_t *hr)
{
    static const struct { const char *name; size_t off, cap; } fields[] = {
        { "user-agent", offsetof(bl_audit_rec_t, user_agent), BL_REC_UA_MAX },
        { "kubectl-session", offsetof(bl_audit_rec_t, kubectl_session), BL_REC_SESSION_MAX },
        { "kubectl-command", offsetof(bl_audit_rec_t, kubectl_command), BL_REC_COMMAND_MAX },
    };
    for (size_t i = 0; i < BL_ARRAY_LEN(fields); i++) {
        size_t pos = 0;
        const bl_http_header_t *h = bl_http_find(hr->headers, hr->num_headers, fields[i].name, &pos);
        if (h)
            bl_rec_copy((char *)&r->rec + fields[i].off, fields[i].cap, h->value);
    }
    bl_rec_copy(r->rec.method, sizeof(r->rec.method), hr->method);
    bl_rec_copy(r->rec.uri, sizeof(r->rec.uri), hr->target);
    bl_rec_copy(r->method_buf, sizeof(r->method_buf), hr->method);
    r->method = (bl_str_t){ r->method_buf, strlen(r->method_buf) };
    snprintf(r->rec.source_ip, sizeof(r->rec.source_ip), "%s", r->conn->sock->peer_ip);
    r->minor = hr->minor_version;
    r->is_head = bl_str_eq(hr->method, "HEAD");
    size_t pos = 0;
    const bl_http_header_t *ct = bl_http_find(hr->headers, hr->num_headers, "content-type", &pos);
    if (ct)
        bl_rec_copy(r->ctype, sizeof(r->ctype), ct->value);
    pos = 0;
    const bl_http_header_t *ex = bl_http_find(hr->headers, hr->num_headers, "expect", &pos);
    r->expect_continue = ex && bl_str_eq_nocase(ex->value, "100-continue");
    pos = 0;
    const bl_http_header_t *cn;
    while ((cn = bl_http_find(hr->headers, hr->num_headers, "connection", &pos)) != NULL)
        if (bl_http_has_token(cn->value, "close"))
            r->close_requested = 1;
    if (hr->minor_version == 0)
        r->close_requested = 1; /* HTTP/1.0: byline does not do 1.0 keep-alive */
    r->conn->close_after = r->close_requested;
}

/* Returns 1 if the client's body, unread, would desynchronise the
 * connection if it stayed open after byline's own reply. */
static int bl_req_body_pending(const bl_req_t *r)
{
    return r->qbody.kind == BL_BODY_CHUNKED || (r->qbody.kind == BL_BODY_LENGTH && r->qbody.length > 0);
}

/* Returns 1 if deciding needs the start of the body: the object name of a
 * create, the replicas of a scale, a patch's type, DeleteOptions' dryRun. */
static int bl_req_wants_body(const bl_req_t *r)
{
    const char *v = r->kreq->verb;
    if (!bl_req_body_pending(r))
        return 0;
    return r->kreq->is_resource && (!strcmp(v, "create") || !strcmp(v, "update") || !strcmp(v, "patch") ||
                                   !strcmp(v, "delete") || !strcmp(v, "deletecollection"));
}


/* Returns the name of the first Impersonate-* header, or an empty view. */
static bl_str_t bl_req_impersonation(const bl_http_request_t *hr)
{
    for (size_t i = 0; i < hr->num_headers; i++)
        if (bl_str_prefix_nocase(hr->headers[i].name, "impersonate-"))
            return hr->headers[i].name;
    return BL_STR_NULL;
}

/* Runs the checks in order. Returns BL_OK when the request may proceed,
 * BL_AGAIN when authentication waits for a JWT issuer's keys (nothing
 * replied or recorded), or BL_DECLINED after queueing byline's own Status
 * reply. */
static int bl_req_check(bl_req_t *r, const bl_http_request_t *hr, int routed, const char *kerr)
{
    bl_conn_t *c = r->conn;
    bl_http_err_t herr = { 0, NULL };
    int framed = bl_http1_request_body(hr, &r->qbody, &herr) == BL_OK;
    bl_str_t imp = bl_req_impersonation(hr);
    if (!framed || bl_req_body_pending(r))
        c->close_after = 1; /* replies below leave the body unread */
    int auth = bl_req_authenticate(r, hr);
    if (auth == BL_AGAIN)
        return BL_AGAIN;
    c->auth_waited = 0;
    if (auth != BL_OK) {
        r->rec.result = BL_RESULT_UNAUTHENTICATED;
        bl_reply_status(r, 401, "Unauthorized", "byline: %s", r->rec.reason);
    } else if (!framed) {
        r->rec.result = BL_RESULT_ERROR;
        bl_reply_status(r, herr.status, herr.status == 501 ? "NotImplemented" : "BadRequest", "byline: malformed request: %s", herr.reason);
    } else if (!routed) {
        r->rec.result = BL_RESULT_ERROR;
        if (!bl_req_prefixed(hr->target))
            bl_reply_status(r, 404, "NotFound", "byline: several connections are configured; the path must start with /k8s/<connection>/ (kubectl get --raw drops the kubeconfig's prefix: add it to the path)");
        else
            bl_reply_status(r, 404, "NotFound", "byline: no connection named in %.*s", (int)BL_MIN(hr->target.len, 128u), hr->target.p);
    } else if (imp.len) {
        r->rec.result = BL_RESULT_DENIED;
        bl_reply_status(r, 403, "Forbidden", "byline: %s may not impersonate (header %.*s): requests go upstream as the identity that authenticated",
                        r->rec.actor, (int)BL_MIN(imp.len, 64u), imp.p);
    } else if (kerr) {
        r->rec.result = BL_RESULT_ERROR;
        bl_reply_status(r, 400, "BadRequest", "byline: malformed request path: %s", kerr);
    } else {
        c->close_after = r->close_requested; /* the body will be forwarded */
        return BL_OK;
    }
    return BL_DECLINED;
}

/* Renders the action into r->action (NULL if the target was not understood).
 * The render happens in the worker's scratch buffer; the request keeps an
 * exact-size copy (it may be rendered again once the body's start is read). */
static void bl_req_render(bl_req_t *r)
{
    bl_buf_t *b = &r->conn->w->scratch;
    bl_buf_reset(b);
    free(r->action);
    r->action = NULL;
    if (r->rec.kreq && bl_kreq_render(r->kreq, (bl_str_t){ r->rec.kubectl_command, strlen(r->rec.kubectl_command) }, b) == BL_OK &&
        (r->action = malloc(bl_buf_size(b) + 1)) != NULL) {
        memcpy(r->action, bl_buf_data(b), bl_buf_size(b));
        r->action[bl_buf_size(b)] = '\0';
    }
    r->rec.action = r->action;
}

/* The intent line is in the log (ok) or could not be written. */
static void bl_req_intent_done(bl_audit_waiter_t *w, int ok)
{
    bl_req_t *r = (bl_req_t *)((char *)w - offsetof(bl_req_t, audit_wait));
    bl_conn_t *c = r->conn;
    if (!ok) {
        r->rec.result = BL_RESULT_ERROR;
        c->close_after = c->close_after || bl_req_body_pending(r);
        bl_reply_status(r, 503, "ServiceUnavailable", "byline: the audit log cannot be written, so the request was refused (no record, no request)");
    } else {
        r->has_intent = 1;
        r->portforward = !strcmp(r->kreq->subresource, "portforward");
        r->watch = !strcmp(r->kreq->verb, "watch");
        snprintf(r->resource, sizeof(r->resource), "%s", r->kreq->resource);
        bl_buf_free(&r->reqbody); /* it is in the intent now */
        r->rec.request_body = BL_STR_NULL;
        /* The request's structure is in the intent line now; a long watch or
         * exec need not carry its 6 KiB for hours. */
        r->rec.kreq = NULL;
        free(r->kreq);
        r->kreq = NULL;
        bl_exchange_connect(r);
    }
    bl_conn_process(c);
}

/* Returns the wall clock in epoch milliseconds. */
static int64_t bl_req_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Writes the review outcomes decided since anyone last looked (approved,
 * denied, expired) into the ledger as notices, ahead of this worker's next
 * records: `byline review` records decisions in the store only, since the
 * gateway is the ledger's one writer. Blocking store I/O (one indexed
 * query, normally no row): called for requests a review rule matched, and
 * every BL_REVIEW_POLL_MS on worker 0. */
static void bl_req_review_outcomes(bl_worker_t *w)
{
    bl_review_t got[4];
    bl_buf_t err, line;
    int64_t now = bl_req_now_ms();
    long n = BL_ARRAY_LEN(got);
    bl_buf_init(&err, 512);
    bl_buf_init(&line, 16384);
    for (int round = 0; round < 16 && n == (long)BL_ARRAY_LEN(got); round++) {
        n = bl_review_take_outcomes(w->srv->reviews, now, w->srv->cfg->review_expire_ms, got, BL_ARRAY_LEN(got), &err);
        if (n < 0)
            bl_warn("%s", bl_buf_cstr(&err));
        for (long i = 0; i < n; i++) {
            bl_buf_reset(&line);
            if (bl_review_notice_json(&got[i], now, &line) != BL_OK ||
                bl_audit_batch_add(&w->audit, BL_ENT_OTHER, NULL, bl_buf_data(&line), bl_buf_size(&line), NULL) != BL_OK)
                bl_warn("audit: the notice for review %s could not be written", got[i].id);
        }
    }
    bl_buf_free(&err);
    bl_buf_free(&line);
}

void bl_req_review_poll(bl_timer_t *t)
{
    bl_worker_t *w = t->data;
    if (w->draining || w->srv->reviews == NULL)
        return;
    bl_req_review_outcomes(w);
    bl_timer_set(w->loop, t, BL_REVIEW_POLL_MS);
}

/* Fills the review the store would open for this request, with its
 * command key in `key`. BL_OK, or BL_ERROR (err says) when the request
 * cannot be reviewed exactly (a truncated field). */
static int bl_req_review_want(bl_req_t *r, const bl_decision_t *d, bl_review_t *want, bl_buf_t *key, bl_buf_t *err)
{
    snprintf(want->identity, sizeof(want->identity), "%s", r->rec.actor);
    snprintf(want->connection, sizeof(want->connection), "%s", r->connection->name);
    snprintf(want->rule, sizeof(want->rule), "%s", d->name);
    snprintf(want->action, sizeof(want->action), "%s", r->action ? r->action : "");
    snprintf(want->record, sizeof(want->record), "%s", r->rec.id);
    /* A request with a body is approved with exactly that body: a body
     * longer than the peek cannot be reviewed exactly. */
    int has_body = r->qbody.kind != BL_BODY_NONE && !(r->qbody.kind == BL_BODY_LENGTH && r->qbody.length == 0);
    if (r->kreq == NULL || bl_review_key(r->kreq, r->connection->name, key) != BL_OK ||
        (has_body && (r->body_sha256[0] == '\0' || bl_buf_printf(key, "\nbodySha256=%s", r->body_sha256) != BL_OK)) ||
        bl_buf_cstr(key) == NULL) {
        bl_buf_puts(err, "the request is too long to be reviewed exactly");
        return BL_ERROR;
    }
    bl_review_key_hash(bl_buf_data(key), bl_buf_size(key), want->key_sha256);
    return BL_OK;
}

/* THE REVIEW HOOK. A request a `review` rule matched; `msg` (room for
 * `cap` bytes) holds the policy's message naming the rule. Returns BL_OK
 * when an approval of exactly this command for this identity is active:
 * the records carry the review id and the approver, and the request goes
 * on. Else BL_DECLINED with rec.review naming the pending review (reused
 * or opened now) and `msg` extended with how to approve it; BL_AGAIN
 * instead when policy.review_hold asks to hold the request. */
static int bl_req_review(bl_req_t *r, const bl_decision_t *d, char *msg, size_t cap)
{
    bl_worker_t *w = r->conn->w;
    const bl_config_t *cfg = w->srv->cfg;
    bl_review_limits_t lim = { cfg->review_expire_ms, cfg->review_max_pending };
    bl_review_t want = { .state = BL_REVIEW_PENDING }, got;
    bl_buf_t key, err;
    size_t used = strlen(msg);
    int rc = BL_ERROR;
    if (w->srv->reviews == NULL) { /* review rules came with a reload: the store opens at start-up */
        snprintf(msg + used, cap - used, "; no review could be opened: restart byline serve to open the review store");
        return BL_DECLINED;
    }
    bl_req_review_outcomes(w);
    bl_buf_init(&key, BL_REVIEW_KEY_MAX);
    bl_buf_init(&err, 512);
    if (bl_req_review_want(r, d, &want, &key, &err) == BL_OK)
        rc = bl_review_request(w->srv->reviews, &want, bl_buf_cstr(&key), bl_req_now_ms(), &lim, &got, &err);
    if (rc == BL_OK) {
        snprintf(r->rec.review, sizeof(r->rec.review), "%s", got.id);
        snprintf(r->rec.approved_by, sizeof(r->rec.approved_by), "%s", got.reviewer);
        r->rec.decision = bl_effect_word(BL_EFFECT_ALLOW);
    } else if (rc == BL_DECLINED) {
        snprintf(r->rec.review, sizeof(r->rec.review), "%s", got.id);
        snprintf(msg + used, cap - used, "; review %s is pending: an operator runs byline review approve %s",
                 got.id, got.id);
        if (cfg->review_hold_ms > 0)
            rc = BL_AGAIN; /* the caller may hold the request for the decision */
    } else {
        bl_warn("review: %s", bl_buf_cstr(&err));
        snprintf(msg + used, cap - used, "; no review could be opened: %s", bl_buf_cstr(&err));
    }
    bl_buf_free(&key);
    bl_buf_free(&err);
    return rc == BL_OK || rc == BL_AGAIN ? rc : BL_DECLINED;
}

static void bl_req_admit(bl_req_t *r);

/* A held request's timer: the decision arrived, or the hold is over.
 * Approved: decides again (the approval is found and recorded before the
 * intent). Denied, expired, or still pending at the end: 403. */
static void bl_req_hold_tick(bl_timer_t *t)
{
    bl_req_t *r = t->data;
    bl_conn_t *c = r->conn;
    bl_review_t rv;
    int got = bl_review_get(c->w->srv->reviews, r->rec.review, &rv, NULL);
    if (got == BL_OK && rv.state == BL_REVIEW_PENDING && bl_loop_now(c->w->loop) < r->hold_until && !c->w->draining) {
        bl_timer_set(c->w->loop, t, BL_REVIEW_HOLD_POLL_MS);
        return;
    }
    if (got == BL_OK && rv.state == BL_REVIEW_APPROVED) {
        bl_req_admit(r);
    } else {
        r->rec.result = BL_RESULT_DENIED;
        c->close_after = c->close_after || bl_req_body_pending(r);
        if (got == BL_OK && rv.state == BL_REVIEW_DENIED)
            bl_reply_status(r, 403, "Forbidden", "byline: review %s was denied by %.64s: %.128s", rv.id, rv.reviewer,
                            rv.reason);
        else
            bl_reply_status(r, 403, "Forbidden", "%s", r->hold_msg ? r->hold_msg : "byline: the review is pending");
    }
    bl_conn_process(c);
}

/* policy.review_hold: keeps a request whose review is pending open and
 * polls the store (no worker blocks meanwhile; the client's leaving is
 * noticed when the hold ends). Returns BL_OK when held (the timer answers
 * later), or BL_DECLINED when the hold is over or the worker drains.
 * Keeps a copy of `msg` for the 403 a hold may end with. */
static int bl_req_hold(bl_req_t *r, const char *msg)
{
    bl_worker_t *w = r->conn->w;
    uint64_t now = bl_loop_now(w->loop);
    if (r->hold_until == 0) {
        r->hold_until = now + w->srv->cfg->review_hold_ms;
        free(r->hold_msg);
        r->hold_msg = strdup(msg);
    }
    if (now >= r->hold_until || w->draining)
        return BL_DECLINED;
    r->hold.cb = bl_req_hold_tick;
    r->hold.data = r;
    bl_timer_set(w->loop, &r->hold, BL_REVIEW_HOLD_POLL_MS);
    return BL_OK;
}

/* Asks the policy about the authenticated, parsed request (after the body's
 * start was read: a create's name is in it). Returns BL_OK to go on,
 * BL_AGAIN while a review holds it (policy.review_hold; its timer goes on),
 * or BL_DECLINED after a 403 reply and the record (no intent: nothing was
 * forwarded). The decision and its rule go in both records. */
static int bl_req_decide(bl_req_t *r)
{
    const bl_config_t *cfg = r->conn->w->srv->cfg;
    /* The rules of the snapshot this request authenticated in (proxy/reload.h):
     * a reload mid-request does not change its decision. Connections keep
     * their positions across reloads, so the index holds in either config. */
    const bl_config_t *snap = r->ids ? bl_idtable_cfg(r->ids) : cfg;
    bl_policy_req_t q = { r->rec.actor, r->rec.groups, r->rec.ngroups,
                          (int)(r->connection - cfg->conns), r->kreq };
    bl_decision_t d = bl_policy_decide(snap->policy, &q, r->rec.kubectl_command);
    char msg[BL_REC_REASON_MAX + 256]; /* the policy's message and a review's hint */
    bl_buf_t m = { .base = msg, .cap = BL_REC_REASON_MAX + 63, .max = BL_REC_REASON_MAX + 63 };
    r->rec.decision = bl_effect_word(d.effect);
    snprintf(r->rec.rule, sizeof(r->rec.rule), "%s", d.name);
    if (d.effect == BL_EFFECT_ALLOW)
        return bl_req_guard(r, &q);
    bl_policy_message(&d, &q, &m);
    msg[m.len] = '\0';
    int rv = d.effect == BL_EFFECT_REVIEW ? bl_req_review(r, &d, msg, sizeof(msg)) : BL_DECLINED;
    if (rv == BL_OK)
        return bl_req_guard(r, &q); /* approved: exactly this command, for this identity, for now */
    if (rv == BL_AGAIN && bl_req_hold(r, msg) == BL_OK)
        return BL_AGAIN; /* policy.review_hold: the timer goes on from here */
    r->rec.result = BL_RESULT_DENIED;
    r->conn->close_after = r->conn->close_after || bl_req_body_pending(r);
    bl_reply_status(r, 403, "Forbidden", "%s", msg);
    return BL_DECLINED;
}

/* Decides, then queues the intent record; the request goes upstream once
 * it is written. */
static void bl_req_admit(bl_req_t *r)
{
    bl_worker_t *w = r->conn->w;
    bl_buf_t *line = &w->scratch;
    bl_req_render(r);
    if (bl_req_decide(r) != BL_OK)
        return;
    bl_buf_reset(line);
    r->rec.result = BL_RESULT_ALLOWED;
    r->phase = BL_REQ_AUDIT;
    r->audit_wait.done = bl_req_intent_done;
    const char *failed = bl_ledger_failed(w->srv->ledger);
    int refusing = bl_ledger_refusing(w->srv->ledger);
    if (!failed && !refusing && bl_rec_intent_json(&r->rec, line) == BL_OK &&
        bl_audit_batch_add(&w->audit, BL_ENT_INTENT, r->rec.id, bl_buf_data(line), bl_buf_size(line),
                           &r->audit_wait) == BL_OK)
        return;
    r->rec.result = BL_RESULT_ERROR;
    r->conn->close_after = r->conn->close_after || bl_req_body_pending(r);
    if (refusing)
        bl_reply_status(r, 503, "ServiceUnavailable", "byline: the audit directory is below its free-space threshold (audit.space_refuse), so the request was refused (no record, no request)");
    else
        bl_reply_status(r, 503, "ServiceUnavailable", "byline: the audit ledger cannot be written (%s), so the request was refused (no record, no request)",
                        failed ? failed : "entry too large");
}

/* Decodes the chunked body buffered so far into the worker's scratch
 * buffer (a private decoder: c->in is left for the exchange to frame).
 * Returns 1 when there is enough to decide (the body ended, 64 KiB, or no
 * more will come), else 0. *total is the body's length when it ended. */
static int bl_req_peek_chunked(bl_req_t *r, bl_buf_t *out, uint64_t *total)
{
    bl_conn_t *c = r->conn;
    bl_chunked_t ch;
    bl_http_err_t err;
    const char *p = bl_buf_data(&c->in);
    size_t left = bl_buf_size(&c->in);
    bl_chunked_init(&ch);
    bl_buf_reset(out);
    *total = UINT64_MAX;
    while (left > 0 && !ch.done && bl_buf_size(out) < BL_PEEK_MAX) {
        bl_str_t span;
        long k = bl_chunked_decode(&ch, p, left, &span, &err);
        if (k <= 0)
            return 1; /* malformed: the exchange refuses it with the reason */
        bl_buf_append(out, span.p, BL_MIN(span.len, BL_PEEK_MAX - bl_buf_size(out)));
        p += k;
        left -= (size_t)k;
    }
    if (ch.done)
        *total = bl_buf_size(out);
    return ch.done || bl_buf_size(out) >= BL_PEEK_MAX || c->client_eof || bl_buf_size(&c->in) >= c->in.max;
}

/* Notes the SHA-256 of the request body when [p, p+n) is all of it
 * (total known and equal to n): an approval covers exactly that body. */
static void bl_req_body_digest(bl_req_t *r, const char *p, size_t n, uint64_t total)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char digits[] = "0123456789abcdef";
    r->body_sha256[0] = '\0';
    if (total != (uint64_t)n || EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    for (size_t i = 0; i < 32; i++) {
        r->body_sha256[2 * i] = digits[md[i] >> 4];
        r->body_sha256[2 * i + 1] = digits[md[i] & 15];
    }
    r->body_sha256[64] = '\0';
}

/* At audit.level Request and above, keeps the request body for the intent:
 * whole and redacted, or a marker saying why not. */
static void bl_req_keep_body(bl_req_t *r, const char *p, size_t n, uint64_t total)
{
    const bl_config_t *cfg = r->conn->w->srv->cfg;
    if (cfg->audit_level < BL_LEVEL_REQUEST)
        return;
    int complete = total != UINT64_MAX && n == total && total <= cfg->audit_body_max;
    bl_buf_init(&r->reqbody, 2 * cfg->audit_body_max + 4096);
    if (bl_body_json(&r->reqbody, p, n, complete, total == UINT64_MAX ? n : total, r->kreq->resource) == BL_OK)
        r->rec.request_body = (bl_str_t){ bl_buf_data(&r->reqbody), bl_buf_size(&r->reqbody) };
}

void bl_req_peek(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    bl_str_t ctype = { r->ctype, strlen(r->ctype) };
    if (r->qbody.kind == BL_BODY_CHUNKED) {
        bl_buf_t *scratch = &c->w->scratch;
        uint64_t total;
        if (!bl_req_peek_chunked(r, scratch, &total))
            return; /* conn.c reads more and calls again */
        bl_kreq_body_total(r->kreq, ctype, bl_buf_data(scratch), bl_buf_size(scratch), total);
        bl_req_keep_body(r, bl_buf_data(scratch), bl_buf_size(scratch), total);
        bl_req_body_digest(r, bl_buf_data(scratch), bl_buf_size(scratch), total);
    } else {
        size_t want = (size_t)BL_MIN(r->qleft, (uint64_t)BL_PEEK_MAX);
        if (bl_buf_size(&c->in) < want && !c->client_eof)
            return;
        /* The total length lets protobuf be read only when it is all here: it
         * has no end marker, and a later field may override an earlier one. */
        size_t n = BL_MIN(bl_buf_size(&c->in), want);
        bl_kreq_body_total(r->kreq, ctype, bl_buf_data(&c->in), n, r->qbody.length);
        bl_req_keep_body(r, bl_buf_data(&c->in), n, r->qbody.length);
        bl_req_body_digest(r, bl_buf_data(&c->in), n, r->qbody.length);
    }
    bl_timer_cancel(c->w->loop, &c->timer);
    r->phase = BL_REQ_CONNECT;
    bl_req_admit(r);
}

void bl_req_start(bl_conn_t *c, const bl_http_request_t *hr, size_t head_len)
{
    if (bl_agent_accept_wants(hr)) { /* an agent dialling in, not a kubectl request */
        bl_agent_accept(c, hr, head_len);
        return;
    }
    bl_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL || bl_rec_begin(&r->rec) != BL_OK) {
        free(r);
        bl_conn_reply_raw(c, 503, "ServiceUnavailable", "byline: out of resources; request refused");
        return;
    }
    r->conn = c;
    c->req = r;
    c->state = BL_CONN_BUSY;
    bl_buf_init(&r->uhead, BL_UHEAD_MAX);
    bl_buf_init(&r->uin, BL_IO_BUF_MAX);
    bl_buf_init(&r->qout, BL_IO_BUF_MAX + 64);
    bl_req_note(r, hr);
    bl_str_t rest;
    int routed = bl_req_route(r, hr->target, &rest) == BL_OK;
    r->rec.connection = r->connection ? r->connection->name : NULL;
    if (routed)
        r->up = c->w->upstreams[r->connection - c->w->srv->cfg->conns];
    const char *kerr = "out of memory";
    r->kreq = malloc(sizeof(*r->kreq));
    if (r->kreq && bl_kreq_parse(r->kreq, hr->method, rest, &kerr) == BL_OK)
        r->rec.kreq = r->kreq;
    bl_req_render(r);
    int ck = bl_req_check(r, hr, routed, kerr);
    if (ck == BL_AGAIN) { /* forgotten, unrecorded; the head is parsed again when the keys come */
        c->req = NULL;
        bl_req_free(r);
        bl_conn_auth_park(c);
        return;
    }
    if (ck != BL_OK) {
        bl_buf_consume(&c->in, head_len);
        return;
    }
    if (bl_req_build_head(r, hr, rest) != BL_OK) {
        r->rec.result = BL_RESULT_ERROR;
        c->close_after = 1;
        bl_buf_consume(&c->in, head_len);
        bl_reply_status(r, 431, "RequestHeaderFieldsTooLarge", "byline: request head too large to forward");
        return;
    }
    bl_buf_consume(&c->in, head_len); /* `hr` points into c->in: unusable from here */
    r->qleft = r->qbody.kind == BL_BODY_LENGTH ? r->qbody.length : 0;
    /* byline answers Expect: 100-continue itself (and does not pass it on):
     * it reads the body's start before deciding, as nginx does. */
    if (r->expect_continue && bl_req_body_pending(r) && r->minor == 1)
        bl_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    if (bl_req_wants_body(r)) {
        r->phase = BL_REQ_PEEK;
        bl_timer_set(c->w->loop, &c->timer, c->w->srv->cfg->header_timeout_ms);
        bl_req_peek(r);
        return;
    }
    if (r->rec.kreq) /* no body to read, but a PATCH's type is in its Content-Type */
        bl_kreq_body_total(r->kreq, (bl_str_t){ r->ctype, strlen(r->ctype) }, NULL, 0, UINT64_MAX);
    r->phase = BL_REQ_CONNECT;
    bl_req_admit(r);
}

void bl_req_free(bl_req_t *r)
{
    bl_audit_batch_forget(&r->conn->w->audit, &r->audit_wait);
    if (r->wait.pending)
        r->up->ops->cancel(r->up, &r->wait);
    if (r->us)
        bl_stream_release(r->us, 0);
    bl_buf_free(&r->uhead);
    bl_buf_free(&r->uin);
    bl_buf_free(&r->qout);
    free(r->action);
    free(r->kreq);
    bl_identity_free(r->jwt_id);
    bl_idtable_unref(r->ids);
    bl_timer_cancel(r->conn->w->loop, &r->hold);
    free(r->hold_msg);
    bl_tap_free(r->tap);
    bl_buf_free(&r->reqbody);
    bl_buf_free(&r->respcap);
    bl_buf_free(&r->respbody);
    free(r);
}

/* At audit.level RequestResponse, the response body for the result entry. */
static void bl_req_response_body(bl_req_t *r)
{
    const bl_config_t *cfg = r->conn->w->srv->cfg;
    if (cfg->audit_level < BL_LEVEL_REQUEST_RESPONSE || !r->rhead_done || r->rec.upgraded)
        return;
    int complete = r->rdone && bl_buf_size(&r->respcap) == r->rec.bytes_out && r->rec.bytes_out <= cfg->audit_body_max;
    bl_buf_init(&r->respbody, 2 * cfg->audit_body_max + 4096);
    if (bl_body_json(&r->respbody, bl_buf_data(&r->respcap), bl_buf_size(&r->respcap), complete, r->rec.bytes_out,
                     r->resource[0] ? r->resource : (r->kreq ? r->kreq->resource : NULL)) == BL_OK)
        r->rec.response_body = (bl_str_t){ bl_buf_data(&r->respbody), bl_buf_size(&r->respbody) };
}

/* With capture on (the tap was made with a capture_max), an exec/attach
 * session's capture is written to AUDIT_DIR/sessions/<id>.cap here, on the
 * worker (page cache only: bounded by capture_max), and `json` gets the
 * "capture" member. Returns the sealed writer whose fsyncs are still due,
 * or NULL when the capture failed (`json` then says {"error":...}): a
 * failure costs the capture, not the record. */
static bl_capture_writer_t *bl_req_capture(bl_req_t *r, bl_buf_t *json)
{
    const bl_capture_meta_t m = { .id = r->rec.id, .actor = r->rec.actor, .connection = r->rec.connection,
                                  .action = r->rec.action, .started = r->rec.ts };
    bl_capture_writer_t *sealed;
    if (bl_capture_prepare(r->conn->w->srv->cfg->audit_dir, &m, r->tap, json, &sealed) != BL_OK)
        bl_warn("audit: the session capture of %s was not written: %.*s", r->rec.id, (int)bl_buf_size(json),
                bl_buf_data(json));
    r->rec.capture = (bl_str_t){ bl_buf_data(json), bl_buf_size(json) };
    return sealed;
}

static const char bl_capture_failed_json[] =
    "{\"error\":\"the capture file could not be made durable (see byline's log)\"}";

/* The result line `line` names a sealed capture: the syncer fsyncs it and
 * only then queues `line`, or if that fails the same record rendered with
 * {"error":...} instead (rendered here, while the record is at hand). The
 * ledger never names a capture that is not on stable storage, and the
 * worker never waits for the fsyncs. BL_OK, or BL_ERROR: nothing queued,
 * `sealed` still the caller's. */
static int bl_req_capture_queue(bl_req_t *r, bl_capture_writer_t *sealed, const bl_buf_t *line)
{
    bl_worker_t *w = r->conn->w;
    bl_buf_t failed;
    bl_buf_init(&failed, w->scratch.max);
    r->rec.capture = (bl_str_t){ bl_capture_failed_json, sizeof(bl_capture_failed_json) - 1 };
    int rc = bl_rec_result_json(&r->rec, !r->has_intent, &failed);
    if (rc == BL_OK)
        rc = bl_capsync_push(w->srv->capsync, sealed, r->rec.id, bl_buf_data(line), bl_buf_size(line),
                             bl_buf_data(&failed), bl_buf_size(&failed));
    bl_buf_free(&failed);
    return rc;
}

/* When the hand-off failed (the syncer's queue is full, or no memory): the
 * fsyncs on the worker, which slows its intake to the disk's pace; if they
 * fail, `line` is rendered again saying so.
 * Takes `sealed`. Returns BL_OK with `line` ready to queue, or BL_ERROR. */
static int bl_req_capture_sync_here(bl_req_t *r, bl_capture_writer_t *sealed, bl_buf_t *line)
{
    bl_buf_t err;
    bl_buf_init(&err, 256);
    int rc = BL_OK;
    if (bl_capture_sync(sealed, &err) != BL_OK) {
        bl_warn("audit: the session capture of %s was not written: %s", r->rec.id, bl_buf_cstr(&err));
        r->rec.capture = (bl_str_t){ bl_capture_failed_json, sizeof(bl_capture_failed_json) - 1 };
        bl_buf_reset(line);
        rc = bl_rec_result_json(&r->rec, !r->has_intent, line);
    }
    bl_buf_free(&err);
    return rc;
}

void bl_req_record(bl_req_t *r)
{
    if (r->recorded)
        return;
    r->recorded = 1;
    static const bl_metric_t by_result[] = { BL_M_REQUESTS_ALLOWED, BL_M_REQUESTS_DENIED,
                                             BL_M_REQUESTS_UNAUTHENTICATED, BL_M_REQUESTS_ERROR,
                                             BL_M_REQUESTS_LIMITED };
    bl_metric_add(by_result[r->rec.result], 1);
    bl_worker_t *w = r->conn->w;
    /* The outcome is known: stop waiting for the intent (a flush forced by
     * this very line must not send the request upstream). */
    bl_audit_batch_forget(&w->audit, &r->audit_wait);
    if (r->tap) {
        bl_buf_t ej = { .base = r->exec_json, .cap = sizeof(r->exec_json), .max = sizeof(r->exec_json) };
        if (bl_tap_json(r->tap, &ej) == BL_OK)
            r->rec.exec = (bl_str_t){ r->exec_json, ej.len };
    }
    char capjson[BL_CAPTURE_JSON_MAX]; /* lives until the result line is rendered below */
    bl_buf_t cj = { .base = capjson, .cap = sizeof(capjson), .max = sizeof(capjson) };
    bl_capture_writer_t *sealed = NULL;
    if (r->tap && bl_tap_capturing(r->tap) && !r->portforward)
        sealed = bl_req_capture(r, &cj);
    bl_req_response_body(r);
    bl_buf_t *line = &w->scratch;
    bl_buf_reset(line);
    int rc = bl_rec_result_json(&r->rec, !r->has_intent, line);
    if (rc == BL_OK && sealed != NULL && bl_req_capture_queue(r, sealed, line) == BL_OK)
        goto out; /* the syncer queues the line once the capture is durable */
    if (rc == BL_OK && sealed != NULL)
        rc = bl_req_capture_sync_here(r, sealed, line);
    else if (sealed != NULL)
        bl_capture_discard(sealed);
    if (rc != BL_OK ||
        bl_audit_batch_add(&w->audit, BL_ENT_RESULT, r->rec.id, bl_buf_data(line), bl_buf_size(line), NULL) != BL_OK)
        bl_error("audit: result record for %s not written", r->rec.id);
out:
    r->rec.capture = BL_STR_NULL; /* it pointed at capjson, gone now */
}

void bl_req_finish(bl_req_t *r)
{
    bl_conn_t *c = r->conn;
    bl_req_record(r);
    c->req = NULL;
    bl_req_free(r);
    bl_conn_request_done(c);
}

void bl_req_reject(bl_conn_t *c, int code, const char *why)
{
    bl_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL || bl_rec_begin(&r->rec) != BL_OK) {
        free(r);
        bl_conn_reply_raw(c, code, "BadRequest", why);
        return;
    }
    r->conn = c;
    c->req = r;
    c->state = BL_CONN_BUSY;
    c->close_after = 1; /* the stream cannot be trusted to frame another request */
    bl_buf_init(&r->uhead, 0);
    bl_buf_init(&r->uin, 0);
    bl_buf_init(&r->qout, 0);
    snprintf(r->rec.source_ip, sizeof(r->rec.source_ip), "%s", c->sock->peer_ip);
    if (c->cert_id) {
        r->rec.actor = c->cert_id->name;
        r->rec.groups = c->cert_id->groups;
        r->rec.ngroups = c->cert_id->ngroups;
        r->rec.credential = "cert";
    }
    r->rec.result = BL_RESULT_ERROR;
    bl_reply_status(r, code, code == 414 ? "RequestURITooLong" : code == 431 ? "RequestHeaderFieldsTooLarge" : "BadRequest",
                    "byline: malformed request: %s", why);
}
