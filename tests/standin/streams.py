"""Long-running pod subresources: log (plain and follow), exec and attach over
WebSocket (v5/v4/v3/v2/v1 channel protocols, base64 variants) and SPDY/3.1
(remotecommand v5..v1), and port-forward over SPDY and over the WebSocket
tunnel (SPDY/3.1+portforward.k8s.io)."""

import base64
import json
import queue
import threading
import time

import fakepod
import httpio
import spdy
import websocket
from kutil import ApiError, bad_request

# --- logs -------------------------------------------------------------------


class LogBook:
    """Each container's stdout/stderr history, as the kubelet keeps it."""

    MAX_LINES = 5000

    def __init__(self):
        self.cond = threading.Condition()
        self.lines = {}  # (ns, pod, container) -> [(timestamp, bytes line)]
        self.gen = {}  # (ns, pod) -> generation, bumped on pod deletion

    def add(self, ns, pod, container, data):
        with self.cond:
            lst = self.lines.setdefault((ns, pod, container), [])
            for line in data.splitlines(True):
                lst.append((time.time(), line))
            del lst[:-self.MAX_LINES]
            self.cond.notify_all()

    def snapshot(self, ns, pod, container):
        with self.cond:
            return list(self.lines.get((ns, pod, container), []))

    def close_pod(self, ns, pod):
        with self.cond:
            for k in [k for k in self.lines if k[0] == ns and k[1] == pod]:
                del self.lines[k]
            self.gen[(ns, pod)] = self.gen.get((ns, pod), 0) + 1
            self.cond.notify_all()


def _containers(pod):
    return [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]


def _pick_container(ctx, pod, verb_msg):
    names = _containers(pod)
    name = ctx.req.q("container")
    pname = pod["metadata"]["name"]
    if not name:
        if len(names) == 1:
            return names[0]
        raise bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                          % (pname, " ".join(names)))
    if name not in names:
        raise bad_request("container %s is not valid for pod %s" % (name, pname))
    return name


def _fmt_ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%09dZ" % int((t % 1) * 1e9))


def serve_log(ctx, pod):
    req = ctx.req
    container = _pick_container(ctx, pod, "log")
    ns, name = pod["metadata"].get("namespace"), pod["metadata"]["name"]
    book = ctx.server.logs
    lines = book.snapshot(ns, name, container)
    since = req.q("sinceSeconds")
    if since:
        cutoff = time.time() - int(since)
        lines = [ln for ln in lines if ln[0] >= cutoff]
    tail = req.q("tailLines")
    if tail is not None and tail != "":
        n = int(tail)
        lines = lines[-n:] if n > 0 else []
    stamps = req.q("timestamps") in ("true", "1")
    limit = int(req.q("limitBytes") or 0)

    def render(items):
        return b"".join((_fmt_ts(t).encode() + b" " if stamps else b"") + ln for t, ln in items)

    body = render(lines)
    if limit > 0:
        body = body[:limit]
    follow = req.q("follow") in ("true", "1")
    if not follow:
        return ctx.reply(200, body, "text/plain")
    ctx.actx.set_response(200)
    ctx.server.audit.emit(ctx.actx, "ResponseStarted")
    ctx.actx.started_emitted = True
    cw = httpio.ChunkedWriter(req.conn, 200, ctx.headers("text/plain"), close=not ctx.keep_alive)
    sent = len(book.snapshot(ns, name, container))
    gen = book.gen.get((ns, name), 0)
    total = len(body)
    cw.write(body)
    import rest
    try:
        while True:
            with book.cond:
                book.cond.wait(0.5)
                cur = list(book.lines.get((ns, name, container), []))
                gone = book.gen.get((ns, name), 0) != gen
            if len(cur) > sent:
                chunk = render(cur[sent:])
                sent = len(cur)
                if limit > 0:
                    chunk = chunk[:max(0, limit - total)]
                total += len(chunk)
                cw.write(chunk)
            if gone or (limit > 0 and total >= limit):
                break
            if rest._peer_gone(req.conn):
                ctx.keep_alive = False
                return
        cw.end()
    except OSError:
        ctx.keep_alive = False


# --- exec / attach / portforward -----------------------------------------------

WS_EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                     "v2.channel.k8s.io", "channel.k8s.io", "v4.base64.channel.k8s.io",
                     "base64.channel.k8s.io"]
SPDY_EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                       "v2.channel.k8s.io", "channel.k8s.io"]
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
WS_PF_PROTOCOLS = ["v4.channel.k8s.io", "portforward.k8s.io"]


def _qbool(req, name):
    v = req.q(name)
    return v is not None and v.lower() in ("1", "true", "t")


def _success():
    return {"metadata": {}, "status": "Success"}


def _exit_status(argv, rc):
    return {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: command '%s' exited with "
                       "%d: " % ("[" + " ".join(argv) + "]", rc),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}


def _notfound_status(argv0):
    import hashlib
    execid = hashlib.sha256(("%s%f" % (argv0, time.time())).encode()).hexdigest()
    err = ('error executing command in container: failed to exec in container: failed to start '
           'exec "%s": OCI runtime exec failed: exec failed: unable to start container process: '
           'exec: "%s": executable file not found in $PATH: unknown' % (execid, argv0))
    return {"metadata": {}, "status": "Failure", "message": "Internal error occurred: " + err,
            "reason": "InternalError", "details": {"causes": [{"message": err}]}, "code": 500}


def serve(ctx, res, pod):
    req = ctx.req
    sub = ctx.info.subresource
    if sub in ("exec", "attach"):
        container = _pick_container(ctx, pod, sub)
        argv = req.query.get("command") or []
        if sub == "exec" and not argv:
            raise bad_request("you must specify at least 1 command")
        opts = {"stdin": _qbool(req, "stdin"), "stdout": _qbool(req, "stdout"),
                "stderr": _qbool(req, "stderr"), "tty": _qbool(req, "tty")}
        if not (opts["stdin"] or opts["stdout"] or opts["stderr"]):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    else:
        container, argv, opts = None, None, None
    if websocket.is_upgrade(req):
        offered = websocket.offered_protocols(req)
        supported = [TUNNEL_PROTOCOL] + WS_PF_PROTOCOLS if sub == "portforward" else \
            WS_EXEC_PROTOCOLS
        proto = next((p for p in offered if p in supported), None)
        if proto is None:
            raise bad_request("unable to upgrade connection: no supported WebSocket subprotocol "
                              "offered (want one of %s)" % ", ".join(supported))
        key = req.header("Sec-WebSocket-Key") or ""
        _upgrade(ctx, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                       ("Sec-WebSocket-Accept", websocket.accept_key(key)),
                       ("Sec-WebSocket-Protocol", proto)])
        ws = websocket.WebSocket(req.conn)
        if sub == "portforward":
            if proto == TUNNEL_PROTOCOL:
                return _portforward_spdy(ctx, pod, websocket.ByteStream(ws))
            return _portforward_ws(ctx, pod, ws)
        return _run_session(ctx, pod, container, argv, opts, WSChannels(ws, proto, opts))
    if (req.header("Upgrade") or "").lower().startswith("spdy/3.1"):
        offered = []
        for v in req.header_all("X-Stream-Protocol-Version"):
            offered += [p.strip() for p in v.split(",") if p.strip()]
        supported = ["portforward.k8s.io"] if sub == "portforward" else SPDY_EXEC_PROTOCOLS
        proto = next((p for p in offered if p in supported), None)
        if offered and proto is None:
            raise ApiError(403, "Forbidden", "unable to upgrade: unable to negotiate protocol: "
                           "client supports %s, server supports %s" % (offered, supported))
        hs = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        if proto:
            hs.append(("X-Stream-Protocol-Version", proto))
        _upgrade(ctx, hs)
        io = _RawIO(req.conn)
        if sub == "portforward":
            return _portforward_spdy(ctx, pod, io)
        return _run_session(ctx, pod, container, argv, opts,
                            SpdyChannels(io, proto or "channel.k8s.io", opts))
    raise bad_request("Upgrade request required")


def _upgrade(ctx, headers):
    ctx.keep_alive = False
    hs = [("Audit-Id", ctx.actx.audit_id)] + headers
    ctx.req.conn.send(httpio.head_bytes(101, hs))
    ctx.actx.set_response(101)
    ctx.server.audit.emit(ctx.actx, "ResponseStarted")
    ctx.actx.started_emitted = True


class _RawIO:
    def __init__(self, conn):
        self.conn = conn

    def read_exact(self, n):
        return self.conn.read_exact(n)

    def write(self, data):
        self.conn.send(data)

    def close(self):
        self.conn.close()


class WSChannels:
    """remotecommand over WebSocket: a channel byte before each message."""

    def __init__(self, ws, proto, opts):
        self.ws = ws
        self.proto = proto
        self.b64 = "base64" in proto
        self.version = 5 if proto.startswith("v5") else 4 if proto.startswith("v4") else \
            3 if proto.startswith("v3") else 2 if proto.startswith("v2") else 1
        self.stdin_q = queue.Queue()
        self.gone = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            m = self.ws.recv()
            if m is None:
                break
            op, data = m
            if self.b64 and op == websocket.OP_TEXT and data:
                ch = data[0] - 0x30
                try:
                    data = bytes([ch]) + base64.b64decode(data[1:])
                except ValueError:
                    continue
            if not data:
                continue
            ch, payload = data[0], data[1:]
            if ch == 0:
                if payload:
                    self.stdin_q.put(payload)
            elif ch == 255 and self.version >= 5:
                if payload[:1] == b"\x00":
                    self.stdin_q.put(None)
        self.gone.set()
        self.stdin_q.put(None)

    def wait_ready(self):
        return True

    def stdin(self):
        item = self.stdin_q.get()
        if item is None:
            self.stdin_q.put(None)
            return b""
        return item

    def _send(self, ch, data):
        if self.b64:
            self.ws.send(websocket.OP_TEXT, bytes([0x30 + ch]) + base64.b64encode(data))
        else:
            self.ws.send_binary(bytes([ch]) + data)

    def out(self, data):
        if data:
            self._send(1, data)

    def err(self, data):
        if data:
            self._send(2, data)

    def finish(self, status):
        """status: metav1.Status dict (v4+) or None for success."""
        try:
            if self.version >= 4:
                self._send(3, json.dumps(status, separators=(",", ":")).encode())
            elif status.get("status") != "Success":
                self._send(3, status.get("message", "").encode())
            self.ws.close(1000)
        except OSError:
            pass
        self.gone.wait(2)

    def closed(self):
        return self.gone.is_set()


class SpdyChannels:
    """remotecommand over SPDY: one stream per channel, named by streamtype."""

    def __init__(self, io, proto, opts):
        self.io = io
        self.proto = proto
        self.version = 5 if proto.startswith("v5") else 4 if proto.startswith("v4") else \
            3 if proto.startswith("v3") else 2 if proto.startswith("v2") else 1
        self.streams = {}
        self.ready = threading.Event()
        want = {"error"}
        if opts["stdin"]:
            want.add("stdin")
        if opts["stdout"]:
            want.add("stdout")
        if opts["stderr"] and not opts["tty"]:
            want.add("stderr")
        if opts["tty"] and self.version >= 3:
            want.add("resize")
        self.want = want
        self.session = spdy.Session(io, self._on_stream)
        self.reader = threading.Thread(target=self.session.run, daemon=True)
        self.reader.start()

    def _on_stream(self, s):
        self.streams[s.header("streamtype")] = s
        if s.header("streamtype") == "resize":
            threading.Thread(target=self._drain, args=(s,), daemon=True).start()
        if self.want.issubset(self.streams):
            self.ready.set()

    @staticmethod
    def _drain(s):
        while s.read():
            pass

    def wait_ready(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.ready.wait(0.2):
                return True
            if self.session.closed.is_set():
                return False
        return False

    def stdin(self):
        s = self.streams.get("stdin")
        if s is None:
            return b""
        return s.read()

    def out(self, data):
        s = self.streams.get("stdout")
        if s is not None and data:
            s.write(data)

    def err(self, data):
        s = self.streams.get("stderr")
        if s is not None and data:
            s.write(data)

    def finish(self, status):
        for t in ("stdout", "stderr"):
            s = self.streams.get(t)
            if s is not None:
                s.close()
        e = self.streams.get("error")
        if e is not None:
            if self.version >= 4:
                e.write(json.dumps(status, separators=(",", ":")).encode())
            elif status.get("status") != "Success":
                e.write(status.get("message", "").encode())
            e.close()
        self.session.closed.wait(2)
        self.session.goaway()
        self.io.close()

    def closed(self):
        return self.session.closed.is_set()


def _run_session(ctx, pod, container, argv, opts, ch):
    server = ctx.server
    ns, name = pod["metadata"].get("namespace"), pod["metadata"]["name"]
    try:
        if not ch.wait_ready():
            return
        proc = server.container(pod)
        out, err = ch.out, ch.err
        if opts["tty"]:
            err = ch.out
        stdin = ch.stdin if opts["stdin"] else (lambda: b"")
        if ctx.info.subresource == "attach":
            status = _attach(server, ns, name, container, opts, stdin, out, ch)
        else:
            try:
                rc = proc.run(argv, stdin, out, err)
                status = _success() if rc == 0 else _exit_status(argv, rc)
            except fakepod.ExecNotFound:
                status = _notfound_status(argv[0])
        ch.finish(status)
    except OSError:
        pass
    finally:
        ctx.req.conn.close()


def _attach(server, ns, name, container, opts, stdin, out, ch):
    """The container's main process echoes its stdin to stdout (and so to its
    log); attach streams whatever it prints."""
    book = server.logs
    if opts["stdin"]:
        while True:
            data = stdin()
            if not data:
                return _success()
            book.add(ns, name, container, data)
            if opts["stdout"]:
                out(data)
    sent = len(book.snapshot(ns, name, container))
    while not ch.closed():
        with book.cond:
            book.cond.wait(0.5)
            cur = list(book.lines.get((ns, name, container), []))
        if len(cur) > sent:
            out(b"".join(ln for _, ln in cur[sent:]))
            sent = len(cur)
    return _success()


# --- port-forward ---------------------------------------------------------------

def _pf_error(pod, port):
    return ("error forwarding port %s to pod %s, uid : failed to execute portforward in network "
            "namespace \"/var/run/netns/cni-standin\": failed to connect to localhost:%s inside "
            "namespace \"%s\", IPv4: dial tcp4 127.0.0.1:%s: connect: connection refused IPv6 "
            "dial tcp6 [::1]:%s: connect: connection refused "
            % (port, pod["metadata"]["uid"], port, pod["metadata"]["uid"], port, port))


def _pod_ports(pod):
    ports = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("containerPort"):
                ports.add(int(p["containerPort"]))
    return ports


def port_service(pod, port, read, write):
    """The pod's listeners: an HTTP responder on its declared ports (and 80),
    an echo server on 7 (and 9000). Returns False when nothing listens."""
    name = pod["metadata"]["name"]
    if port in (7, 9000):
        while True:
            data = read()
            if not data:
                return True
            write(data)
    if port not in _pod_ports(pod) | {80}:
        return False
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = read()
            if not data:
                return True
            buf += data
            if len(buf) > 1 << 20:
                return True
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0") or 0)
        while len(rest) < n:
            data = read()
            if not data:
                break
            rest += data
        buf = rest[n:]
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        body = ("hello from %s:%d\n" % (name, port)).encode()
        close = hdrs.get("connection", "").lower() == "close"
        resp = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %d\r\nX-Request-Path: %s\r\n%s\r\n"
                % (len(body), path, "Connection: close\r\n" if close else "")).encode()
        write(resp + (b"" if method == "HEAD" else body))
        if close:
            return True


def _portforward_spdy(ctx, pod, io):
    pairs = {}
    lock = threading.Lock()

    def on_stream(s):
        rid = s.header("requestid") or ("port-" + s.header("port"))
        with lock:
            p = pairs.setdefault(rid, {})
            p[s.header("streamtype")] = s
            ready = "data" in p and "error" in p and not p.get("started")
            if ready:
                p["started"] = True
        if ready:
            threading.Thread(target=_pf_pair, args=(pod, p["data"], p["error"]),
                             daemon=True).start()

    session = spdy.Session(io, on_stream)
    try:
        session.run()
    finally:
        try:
            io.close()
        except OSError:
            pass
        ctx.req.conn.close()


def _pf_pair(pod, data, error):
    try:
        port = int(data.header("port"))
    except ValueError:
        error.write(('invalid port header "%s"' % data.header("port")).encode())
        error.close()
        data.close()
        return
    ok = port_service(pod, port, data.read, data.write)
    if not ok:
        error.write(_pf_error(pod, port).encode())
    error.close()
    data.close()


def _portforward_ws(ctx, pod, ws):
    """kubelet's WebSocket port-forward protocol: ?ports=P1,P2; channel 2i is
    data and 2i+1 errors for port i; each channel first carries its port as a
    little-endian uint16."""
    ports = []
    for v in ctx.req.query.get("ports") or []:
        for p in v.split(","):
            try:
                ports.append(int(p))
            except ValueError:
                pass
    try:
        for i, p in enumerate(ports):
            for ch in (2 * i, 2 * i + 1):
                ws.send_binary(bytes([ch]) + p.to_bytes(2, "little"))
        queues = [queue.Queue() for _ in ports]

        def reader():
            while True:
                m = ws.recv()
                if m is None:
                    break
                data = m[1]
                if data and data[0] % 2 == 0 and data[0] // 2 < len(queues):
                    queues[data[0] // 2].put(data[1:])
            for q in queues:
                q.put(None)

        threading.Thread(target=reader, daemon=True).start()
        threads = []
        for i, p in enumerate(ports):
            def run(i=i, p=p):
                def rd():
                    item = queues[i].get()
                    if item is None:
                        queues[i].put(None)
                        return b""
                    return item
                if not port_service(pod, p, rd, lambda d: ws.send_binary(bytes([2 * i]) + d)):
                    ws.send_binary(bytes([2 * i + 1]) + _pf_error(pod, p).encode())
            t = threading.Thread(target=run, daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        ws.close(1000)
    except OSError:
        pass
    finally:
        ctx.req.conn.close()
