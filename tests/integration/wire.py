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


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def big_body_checks(env, result):
    """200 MB passes through in bounded memory, framed by length or chunked."""
    import hashlib
    from env import BIG, BLOCK
    want = hashlib.sha256(BLOCK * (BIG // len(BLOCK))).hexdigest()
    for kind in ("length", "chunked"):
        s = env.tls_socket()
        s.settimeout(30)
        s.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/big-" + kind))
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        hdr, rest = data.split(b"\r\n\r\n", 1)
        h = hashlib.sha256()
        got, peak, raw = 0, 0, rest
        chunked = b"transfer-encoding: chunked" in hdr.lower()
        t0 = time.time()
        while time.time() - t0 < 120:
            if chunked:
                # decode as we go (the client side of the re-encoded chunks)
                while True:
                    i = raw.find(b"\r\n")
                    if i < 0:
                        break
                    size = int(raw[:i], 16)
                    if len(raw) < i + 2 + size + 2:
                        break
                    if size == 0:
                        raw = b"DONE"
                        break
                    h.update(raw[i + 2:i + 2 + size])
                    got += size
                    raw = raw[i + 2 + size + 2:]
                if raw == b"DONE":
                    break
            else:
                h.update(raw)
                got += len(raw)
                raw = b""
                if got >= BIG:
                    break
            if got % (16 << 20) < 65536:
                peak = max(peak, rss_kb(env.gateway.pid))
            d = s.recv(1 << 20)
            if not d:
                break
            raw += d
        s.close()
        ok = got == BIG and h.hexdigest() == want
        result("200 MB %s-framed response arrives whole through byline" % kind, ok, "got %d bytes" % got)
        result("200 MB %s-framed response: byline's RSS stays under 64 MB (peak %d kB)" % (kind, peak),
               0 < peak < 64 * 1024, "peak RSS %d kB" % peak)


def watch_immediacy_check(env, result):
    """Each chunk of a watch reaches the client as it is sent, not batched."""
    s = env.tls_socket()
    s.settimeout(10)
    t0 = time.time()
    s.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/slow-watch?watch=true"))
    seen, buf = [], b""
    while len(seen) < 3 and time.time() - t0 < 8:
        d = s.recv(4096)
        if not d:
            break
        buf += d
        while b'"n":%d' % len(seen) in buf:
            seen.append(time.time() - t0)
    s.close()
    # The upstream sends event n at about n seconds; each must arrive before the next is sent.
    ok = len(seen) == 3 and all(seen[i] < i + 0.8 for i in range(3))
    result("watch events reach the client as each chunk is sent", ok, "arrival times %r" % seen)


def tunnel_half_close_check(env, result):
    """After a 101, bytes flow both ways and a half-close travels through:
    the client's FIN reaches the upstream, whose last words still come back."""
    mark = env.mark()
    s = env.tls_socket()
    s.settimeout(5)
    s.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/pods/p/exec?command=cat&stdin=true&stdout=true",
                   "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n"))
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head101, rest = data.split(b"\r\n\r\n", 1)
    s.sendall(b"hello tunnel")
    got = rest
    while b"HELLO TUNNEL" not in got:
        got += s.recv(4096)
    socket.socket.shutdown(s, socket.SHUT_WR)  # a TCP FIN under the TLS session, as a half-close
    tail = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            tail += d
    except (ssl.SSLError, OSError):
        pass
    s.close()
    time.sleep(0.2)
    ok = head101.startswith(b"HTTP/1.1 101") and b"Sec-WebSocket-Protocol: v5.channel.k8s.io" in head101 \
        and b"BYE" in tail
    result("tunnel: bytes both ways, the client's half-close reaches the upstream, its reply comes back",
           ok, "head=%r tail=%r" % (head101[:120], tail))
    recs = [r for r in env.byline_requests(mark) if r.get("upgraded")]
    result("tunnel: the record counts bytes each way", bool(recs) and recs[0].get("bytes_in") == 12 and
           recs[0].get("bytes_out") == 15 and recs[0].get("status") == 101, repr(recs[:1]))


def upstream_reuse_check(env, result):
    """Sequential requests on one client connection share one upstream connection."""
    before = env.echo.connections
    s = env.tls_socket()
    s.settimeout(5)
    codes = []
    for i in range(5):
        s.sendall(head(env, "GET", "/k8s/echo/api/v1/namespaces/web/configmaps/c%d" % i))
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            data += s.recv(65536)
        codes.append(status_of(data))
    s.close()
    result("upstream connections are reused (5 requests, %d new upstream connection(s))" %
           (env.echo.connections - before), codes == [200] * 5 and env.echo.connections - before <= 1, repr(codes))


def upstream_pool_check(env, result, clients=100):
    """More requests in flight than one worker's old pool (64): when they
    finish, every upstream connection is kept for the next wave, so a second
    wave opens none (a pool too small would close the surplus and pay a TLS
    handshake per request from then on)."""
    socks = [env.tls_socket() for _ in range(clients)]
    new = []
    try:
        for wave in range(2):
            before = env.echo.connections
            for i, s in enumerate(socks):
                s.settimeout(20)
                s.sendall(head(env, "GET", "/k8s/echo/api/v1/namespaces/web/configmaps/p%d?pause=0.5" % i))
            codes = [status_of(read_response(s, timeout=20)) for s in socks]
            new.append(env.echo.connections - before)
    except OSError as e:
        codes = [repr(e)]
    finally:
        for s in socks:
            s.close()
    result("%d requests in flight at once, twice: upstream connections opened per wave %s, the second "
           "wave reuses the first's" % (clients, new),
           codes == [200] * clients and len(new) == 2 and new[1] == 0, repr(codes[:3]))


def client_cert_upstream_check(env, result):
    """A connection whose shared credential is a client certificate."""
    mark = env.mark()
    reply, _ = exchange(env, head(env, "GET", "/k8s/viacert/api/v1/namespaces/web/configmaps/settings"))
    time.sleep(0.1)
    rec = [r for r in env.byline_requests(mark) if r.get("connection") == "viacert"]
    ev = [e for e in env.cluster_events() if rec and e["auditID"] == rec[0]["id"]]
    from env import CERT_USER
    result("upstream client-certificate credential: the cluster sees the certificate's user",
           status_of(reply) == 200 and ev and ev[-1]["user"]["username"] == CERT_USER,
           "reply=%r events=%r" % (reply[:100], ev[-1:]))


def run_streaming(env, result):
    run_more(env, result)
    if not env.wrapper:  # 200 MB under valgrind would take minutes
        big_body_checks(env, result)
    watch_immediacy_check(env, result)
    tunnel_half_close_check(env, result)
    upstream_reuse_check(env, result)
    upstream_pool_check(env, result)
    client_cert_upstream_check(env, result)


def read_response(s, timeout=5):
    """Reads one response with a Content-Length body from a TLS socket."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            return data
        data += d
    hdr, body = data.split(b"\r\n\r\n", 1)
    import re as _re
    m = _re.search(rb"(?i)content-length: (\d+)", hdr)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return hdr + b"\r\n\r\n" + body


def reuse_hygiene_checks(env, result):
    """A pooled upstream connection is never reused with bytes left in it,
    even bytes OpenSSL read ahead in a second TLS record."""
    from env import SEEN
    s = env.tls_socket()
    s.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/two-records"))
    first = read_response(s)
    s.close()
    time.sleep(0.2)
    t = env.tls_socket(); t.settimeout(5)
    t.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/after", token=env.tokens["agent-reporting"]))
    second = read_response(t)
    t.close()
    result("a planted response buffered in TLS read-ahead never answers another agent's request",
           first.endswith(b"first") and second.endswith(b"fine") and b"PLANTED" not in second,
           "first=%r second=%r" % (first[-40:], second[-80:]))
    # Retry rules: a GET whose pooled connection died unanswered is sent again;
    # a POST is not (the server may have acted on it).
    for method, path, want_status, want_seen in (("GET", "get/close-first", 200, 2), ("POST", "post/close-first", 502, 1)):
        mark = env.mark()
        s = env.tls_socket()
        s.sendall(head(env, "GET", "/k8s/hostile/api/v1/namespaces/evil/configmaps/warm"))
        read_response(s)  # leaves a pooled upstream connection behind
        s.sendall(head(env, method, "/k8s/hostile/api/v1/namespaces/evil/configmaps/" + path,
                       body=b"{}" if method == "POST" else b""))
        reply = read_response(s)
        s.close()
        key = "/api/v1/namespaces/evil/configmaps/" + path
        time.sleep(0.15)
        rec = [r for r in env.byline_requests(mark) if r.get("uri", "").endswith(path)]
        # the record tells the outcome: a GET sent again and answered carries
        # no leftover "closed before answering"; the POST says why it failed
        said = [r.get("reason", "") for r in rec]
        result("a %s whose pooled upstream died unanswered: %d, sent %d time(s), the record says %s"
               % (method, want_status, want_seen, "nothing of the dead connection" if method == "GET" else "why"),
               status_of(reply) == want_status and SEEN.get(key) == want_seen and len(rec) == 1 and
               rec[0].get("status") == want_status and
               (said == [""] if method == "GET" else "closed the connection before answering" in said[0]),
               "status=%r seen=%r records=%r reply=%r" % (status_of(reply), SEEN.get(key), rec, reply[:200]))


def http10_check(env, result):
    """An HTTP/1.0 client never gets chunked framing: the body comes plain and
    the connection closes at its end."""
    raw = ("GET /k8s/hostile/api/v1/namespaces/evil/configmaps/slow-watch?watch=true HTTP/1.0\r\n"
           "Authorization: Bearer %s\r\n\r\n" % env.tokens[AUTH]).encode()
    reply, closed = exchange(env, raw, wait=6)
    hdr, _, body = reply.partition(b"\r\n\r\n")
    result("HTTP/1.0 client: a chunked upstream body arrives de-chunked, then the connection closes",
           status_of(reply) == 200 and b"chunked" not in hdr.lower() and closed and
           body.count(b'"type":"MODIFIED"') == 3 and b"\r\n0\r\n" not in body, repr(reply[:400]))


def expect_and_chunked_body_checks(env, result):
    """Bodies byline cannot skip reading: Expect: 100-continue is answered by
    byline, and a chunked create still names its object."""
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"expect-x"},"data":{"a":"b"}}'
    mark = env.mark()
    s = env.tls_socket()
    s.settimeout(5)
    s.sendall(head(env, "POST", "/api/v1/namespaces/web/configmaps",
                   "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n" % len(body)))
    interim = s.recv(4096)
    s.sendall(body)
    final = read_response(s)
    s.close()
    time.sleep(0.1)
    rec = [r for r in env.byline_requests(mark) if r.get("result")]
    result("Expect: 100-continue: byline sends 100 Continue, reads the body, names the object",
           interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and status_of(final) == 201 and rec and
           rec[-1].get("action") == "kubectl create configmap/expect-x -n web",
           "interim=%r final=%r rec=%r" % (interim[:60], final[:100], [r.get("action") for r in rec]))
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"chunked-x"},"data":{"a":"b"}}'
    mark = env.mark()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 10]), body[i:i + 10]) for i in range(0, len(body), 10))
    reply, _ = exchange(env, head(env, "POST", "/api/v1/namespaces/web/configmaps",
                                  "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n") +
                        chunks + b"0\r\n\r\n")
    time.sleep(0.1)
    rec = [r for r in env.byline_requests(mark) if r.get("result")]
    result("a chunked create body still names its object in the action",
           status_of(reply) == 201 and rec and rec[-1].get("action") == "kubectl create configmap/chunked-x -n web",
           "reply=%r rec=%r" % (reply[:100], [r.get("action") for r in rec]))


def websocket_token_check(env, result):
    """A bearer token in a WebSocket subprotocol authenticates (as with
    kube-apiserver) and is stripped before the request goes upstream."""
    import base64
    tok = base64.urlsafe_b64encode(env.tokens["agent-reporting"].encode()).decode().rstrip("=")
    mark = env.mark()
    n = len(env.echo.heads)
    raw = ("GET /k8s/echo/api/v1/namespaces/web/pods/p/exec?command=ls HTTP/1.1\r\nHost: b\r\n"
           "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.%s, v5.channel.k8s.io\r\n\r\n" % tok)
    reply, _ = exchange(env, raw.encode(), wait=1)
    time.sleep(0.1)
    rec = [r for r in env.byline_requests(mark) if r.get("connection") == "echo"]
    got = env.echo.heads[n:]
    ok = status_of(reply) == 200 and rec and rec[-1].get("actor") == "agent-reporting" and len(got) == 1 and \
        b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n" in got[0] + b"\r\n" and tok.encode() not in got[0]
    result("a WebSocket-subprotocol bearer token authenticates and never goes upstream", ok,
           "reply=%r head=%r" % (reply[:80], got[:1]))


def impersonation_check(env, result):
    """With impersonate on, the cluster's own audit event names the agent as
    impersonatedUser (its groups, the connection and kubectl session as
    extras) while the user stays byline's shared credential."""
    mark = env.mark()
    reply, _ = exchange(env, head(env, "GET", "/k8s/impersonating/api/v1/namespaces/web/configmaps/settings",
                                  "Kubectl-Session: 11111111-2222-3333-4444-555555555555\r\n"))
    time.sleep(0.2)
    rec = [r for r in env.byline_requests(mark) if r.get("connection") == "impersonating"]
    ev = [e for e in env.cluster_events() if rec and e["auditID"] == rec[0]["id"]]
    imp = ev[-1].get("impersonatedUser", {}) if ev else {}
    from env import SHARED_USER
    ok = status_of(reply) == 200 and ev and ev[-1]["user"]["username"] == SHARED_USER and \
        imp.get("username") == "byline:" + AUTH and "deployers" in imp.get("groups", []) and \
        imp.get("extra", {}).get("byline.dev/connection") == ["impersonating"] and \
        imp.get("extra", {}).get("byline.dev/session") == ["11111111-2222-3333-4444-555555555555"]
    result("impersonation: the cluster's audit event shows the agent as impersonatedUser", ok,
           "reply=%r event=%r" % (reply[:80], ev[-1:]))


def metrics_check(env, result):
    """Prometheus /metrics: request counts by result, connections, the ledger."""
    import urllib.request
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % env.metrics_port, timeout=5).read().decode()
    except OSError as e:
        text = "error: %s" % e

    def value(name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None
    ok = (value('byline_requests_total{result="allowed"}') or 0) > 10 and \
        (value('byline_requests_total{result="unauthenticated"}') or 0) >= 1 and \
        value("byline_audit_failed") == 0 and (value("byline_audit_commit_seconds_count") or 0) > 0 and \
        "# TYPE byline_requests_total counter" in text
    result("metrics: /metrics counts requests by result and the ledger's commits", ok, text[:1500])


def run_more(env, result):
    impersonation_check(env, result)
    reuse_hygiene_checks(env, result)
    http10_check(env, result)
    expect_and_chunked_body_checks(env, result)
    websocket_token_check(env, result)
