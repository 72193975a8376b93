"""Wire-level checks: what byline refuses, what it strips, and that neither a
client nor an upstream can smuggle a message through it."""

import json
import socket
import ssl
import time

AUTH = "agent-deploybot"


def exchange(env, raw, port=None, wait=3.0):
    """Sends raw bytes on a fresh TLS connection; returns (reply bytes, closed?)."""
    s = env.tls_socket(port)
    s.sendall(raw)
    s.settimeout(wait)
    data, closed = b"", False
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except (ssl.SSLError, OSError):
            closed = True
            break
        if not d:
            closed = True
            break
        data += d
    s.close()
    return data, closed


def status_of(reply):
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def head(env, method, target, extra="", token=None, body=b""):
    """A request to the default connection unless the target names one."""
    tok = token or env.tokens[AUTH]
    if not target.startswith("/k8s/"):
        target = "/k8s/default" + target
    h = "%s %s HTTP/1.1\r\nHost: byline\r\nAuthorization: Bearer %s\r\n%s" % (method, target, tok, extra)
    if body and "Content-Length" not in extra and "Transfer-Encoding" not in extra:
        h += "Content-Length: %d\r\n" % len(body)
    return h.encode() + b"\r\n" + body


MALFORMED = [
    ("Content-Length with Transfer-Encoding (CL.TE)", 400,
     "POST /k8s/default/api/v1/namespaces/web/configmaps HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"),
    ("two Content-Length fields", 400,
     "POST /k8s/default/api/v1/namespaces/web/configmaps HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc"),
    ("obfuscated Transfer-Encoding", 400,
     "POST /k8s/default/api/v1/namespaces/web/configmaps HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "Transfer-Encoding: xchunked\r\n\r\n"),
    ("Transfer-Encoding with whitespace before the colon", 400,
     "POST /k8s/default/api/v1/namespaces/web/configmaps HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("obs-fold header continuation", 400,
     "GET /k8s/default/api/v1/namespaces/web/pods HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "X-A: one\r\n two\r\n\r\n"),
    ("bare LF line endings", 400,
     "GET /k8s/default/api/v1/namespaces/web/pods HTTP/1.1\nHost: b\nAuthorization: Bearer {t}\n\n"),
    ("bare CR inside a header", 400,
     "GET /k8s/default/api/v1/namespaces/web/pods HTTP/1.1\r\nHost: b\rX: y\r\nAuthorization: Bearer {t}\r\n\r\n"),
    ("malformed chunk size", 400,
     "POST /k8s/default/api/v1/namespaces/web/configmaps HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1g\r\nx\r\n0\r\n\r\n"),
    ("chunk size overflow", 400,
     "POST /k8s/default/api/v1/namespaces/web/configmaps HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n"
     "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n"),
    ("absolute-form request target", 400,
     "GET https://evil.example/api/v1/pods HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n\r\n"),
    ("HTTP/2 preface on an HTTP/1.1 connection", 400, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("request line over 8 KiB", 414,
     "GET /k8s/default/api/v1/namespaces/web/pods?x=" + "a" * 9000 + " HTTP/1.1\r\nHost: b\r\n\r\n"),
    ("more than 100 header fields", 431,
     "GET /k8s/default/api/v1/namespaces/web/pods HTTP/1.1\r\nHost: b\r\n" +
     "".join("X-H%d: v\r\n" % i for i in range(120)) + "\r\n"),
    ("NUL byte in a header value", 400,
     "GET /k8s/default/api/v1/namespaces/web/pods HTTP/1.1\r\nHost: b\r\nX-A: a\x00b\r\n\r\n"),
    ("path with a dot-dot segment (the connection may stay open)", 400,
     "GET /k8s/default/api/v1/namespaces/web/../kube-system/secrets HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {t}\r\n\r\n"),
]


def malformed_checks(env, result):
    for name, want, raw in MALFORMED:
        mark = env.mark()
        before = len(env.cluster_events())
        reply, closed = exchange(env, raw.replace("{t}", env.tokens[AUTH]).encode("latin-1"))
        time.sleep(0.05)
        recs = [r for r in env.byline_requests(mark) if r.get("result") == "error"]
        must_close = "may stay open" not in name
        ok = status_of(reply) == want and (closed or not must_close) and b'"kind":"Status"' in reply and bool(recs)
        result("refused: %s -> %d, audited%s" % (name, want, ", connection closed" if must_close else ""), ok,
               "reply=%r closed=%r records=%r" % (reply[:300], closed, recs[:1]))
        result("refused: %s never reached the cluster" % name,
               len(env.cluster_events()) == before, "cluster events grew")
    reply, _ = exchange(env, head(env, "GET", "/api/v1/namespaces/web/pods/api-0"))
    result("the gateway keeps serving after every refusal", status_of(reply) == 200, repr(reply[:200]))
    raw = "GET /api/v1/namespaces/web/pods HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n\r\n" % env.tokens[AUTH]
    reply, _ = exchange(env, raw.encode())
    result("with several connections, a path without /k8s/<connection>/ is refused, not guessed",
           status_of(reply) == 404 and b"must start with /k8s/<connection>/" in reply, repr(reply[:300]))


def body_smuggling_check(env, result):
    """A request hidden in a body stays a body: the upstream sees one request."""
    hidden = b"GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: x\r\n\r\n"
    n = len(env.echo.heads)
    reply, _ = exchange(env, head(env, "POST", "/k8s/echo/api/v1/namespaces/web/configmaps",
                                  "Content-Type: text/plain\r\n", body=hidden))
    time.sleep(0.1)
    got = env.echo.heads[n:]
    ok = status_of(reply) == 200 and len(got) == 1 and json.loads(reply.split(b"\r\n\r\n", 1)[1])["body"] \
        == hidden.decode()
    result("a request inside a Content-Length body reaches the upstream as body only", ok,
           "heads=%r reply=%r" % (got, reply[:300]))
    # The same with chunked framing: byline decodes and re-encodes; the
    # upstream never sees the client's chunk boundaries or extensions.
    n = len(env.echo.heads)
    raw = (head(env, "POST", "/k8s/echo/api/v1/namespaces/web/configmaps",
                "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n") +
           b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    reply, _ = exchange(env, raw)
    time.sleep(0.1)
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1]) if status_of(reply) == 200 else {}
    result("chunked request bodies are re-encoded (extensions and trailers dropped)",
           status_of(reply) == 200 and len(env.echo.heads) == n + 1 and
           "Transfer-Encoding:chunked" in body.get("headers", []) and
           not any(h.lower().startswith("x-trailer") for h in body.get("headers", [])),
           repr(reply[:400]))


def pipelining_check(env, result):
    two = head(env, "GET", "/api/v1/namespaces/web/configmaps/settings") + \
        head(env, "GET", "/api/v1/namespaces/web/pods/api-0")
    mark = env.mark()
    reply, _ = exchange(env, two, wait=2)
    time.sleep(0.1)
    recs = env.byline_requests(mark)
    ok = reply.count(b"HTTP/1.1 200 OK") == 2 and reply.find(b'"kind":"ConfigMap"') < reply.find(b'"kind":"Pod"') \
        and [r.get("action") for r in recs] == ["kubectl get configmap/settings -n web", "kubectl get pod/api-0 -n web"]
    result("pipelined requests are answered in order and each is audited", ok,
           "records=%r reply=%r" % ([r.get("action") for r in recs], reply[:200]))


def hygiene_check(env, result):
    n = len(env.echo.heads)
    mark = env.mark()
    extra = ("Audit-ID: client-chosen-id\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\n"
             "X-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"
             "X-Remote-User: admin\r\nX-Remote-Group: system:masters\r\nX-Remote-Extra-Scopes: all\r\n"
             "Proxy-Authorization: Basic eDp5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
             "X_Remote_User: admin\r\nImpersonate_User: admin\r\n"
             "Kubectl-Command: kubectl get\r\n")
    reply, _ = exchange(env, head(env, "GET", "/k8s/echo/api/v1/namespaces/web/pods", extra), wait=1)
    time.sleep(0.1)
    rec = [r for r in env.byline_requests(mark) if r.get("connection") == "echo"]
    hs = json.loads(reply.split(b"\r\n\r\n", 1)[1])["headers"] if status_of(reply) == 200 else []
    names = [h.split(":", 1)[0].lower() for h in hs]
    value = {h.split(":", 1)[0].lower(): h.split(":", 1)[1] for h in hs}
    why = []
    if not rec:
        why.append("no record")
    else:
        if value.get("audit-id") != rec[0]["id"]:
            why.append("Audit-ID %r is not the record id %s" % (value.get("audit-id"), rec[0]["id"]))
    if value.get("authorization") != "Bearer " + env.shared_token:
        why.append("upstream Authorization %r" % value.get("authorization"))
    if value.get("x-forwarded-for") != "127.0.0.1":
        why.append("X-Forwarded-For %r" % value.get("x-forwarded-for"))
    for bad in ("x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip", "x-remote-user",
                "x-remote-group", "x-remote-extra-scopes", "proxy-authorization", "x-hop", "connection",
                "x_remote_user", "impersonate_user"):
        if bad in names:
            why.append("%s forwarded" % bad)
    if names.count("audit-id") != 1 or names.count("authorization") != 1 or names.count("x-forwarded-for") != 1:
        why.append("duplicated headers: %r" % names)
    if env.tokens[AUTH] in json.dumps(hs):
        why.append("the agent's token reached the upstream")
    if "kubectl-command" not in names:
        why.append("ordinary headers were dropped too")
    result("header hygiene: client Authorization, Audit-ID, X-Forwarded-*, X-Remote-*, hop-by-hop stripped; "
           "Audit-ID and X-Forwarded-For set by byline", not why, "; ".join(why) + " headers=%r" % hs)
    n2 = len(env.echo.heads)
    reply, _ = exchange(env, head(env, "GET", "/k8s/echo/api/v1/namespaces/web/pods",
                                  "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"),
                        wait=1)
    hs = json.loads(reply.split(b"\r\n\r\n", 1)[1])["headers"] if status_of(reply) == 200 else []
    result("an h2c upgrade is not passed on (requests could hide inside it)",
           status_of(reply) == 200 and not any(h.lower().startswith(("upgrade", "http2-settings")) for h in hs)
           and len(env.echo.heads) == n2 + 1, repr(hs))
    del n


def hostile_upstream_checks(env, result):
    for name in ("cl-te", "double-cl", "bad-chunk", "bare-lf"):
        mark = env.mark()
        reply, _ = exchange(env, head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/" + name), wait=2)
        time.sleep(0.05)
        recs = env.byline_requests(mark)
        ok = b"smuggled" not in reply and (status_of(reply) == 502 or (status_of(reply) == 200 and
                                                                       name == "bad-chunk"))
        result("hostile upstream (%s): the client never sees a smuggled response" % name, ok,
               "reply=%r records=%r" % (reply[:300], [(r.get("status"), r.get("reason")) for r in recs]))
    # A response followed by extra bytes: the client gets the first, and the
    # upstream connection is not reused, so the extra bytes never answer the next request.
    s = env.tls_socket()
    s.settimeout(3)
    replies = []
    for path in ("extra", "fine"):
        s.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/" + path))
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 2:
            d = s.recv(4096)
            if not d:
                break
            data += d
        replies.append(data)
    s.close()
    ok = replies[0].endswith(b"\r\n\r\nok") and replies[1].endswith(b"\r\n\r\nfine")
    result("bytes an upstream sends past its response never answer the next request", ok, repr(replies))


def tls_checks(env, result):
    raw = socket.create_connection(("127.0.0.1", env.port), timeout=3)
    raw.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = raw.recv(100)
    except OSError:
        data = b""
    raw.close()
    result("plaintext HTTP on the TLS port is refused", not data.startswith(b"HTTP/1.1 200"), repr(data))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", env.port), timeout=3)).close()
        refused = False
    except (ssl.SSLError, OSError):
        refused = True
    result("TLS 1.1 is refused", refused, "")
    ctx = ssl.create_default_context(cafile=env.gw + "/tls/ca.crt")
    ctx.set_alpn_protocols(["h2"])
    try:
        ctx.wrap_socket(socket.create_connection(("127.0.0.1", env.port), timeout=3),
                        server_hostname="127.0.0.1").close()
        refused = False
    except (ssl.SSLError, OSError):
        refused = True
    result("a client offering only h2 in ALPN is refused (no_application_protocol)", refused, "")
    reply, _ = exchange(env, head(env, "GET", "/api/v1/namespaces/web/pods/api-0"))
    result("the gateway keeps serving after TLS refusals", status_of(reply) == 200, repr(reply[:100]))


def run_all(env, result):
    malformed_checks(env, result)
    body_smuggling_check(env, result)
    pipelining_check(env, result)
    hygiene_check(env, result)
    hostile_upstream_checks(env, result)
    tls_checks(env, result)
