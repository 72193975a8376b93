"""The integration tests' world: a stand-in kube-apiserver, byline in front
of it (built with ASan+UBSan by default), two agents with bearer tokens, one
with a client certificate, and two extra upstreams for wire-level checks: an
echo server that reports the head byline forwarded, and a hostile server that
answers with smuggling-shaped responses."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STANDIN = os.path.join(ROOT, "tests", "standin", "kube_standin.py")
SHARED_USER = "system:serviceaccount:byline:gateway"
CERT_USER = "byline-gateway-cert"


def ledger_entries(audit_dir):
    """Reads ledger-NNNNNN.jsonl segments in order; returns the entries."""
    if not os.path.isdir(audit_dir):
        return []
    segs = sorted((int(n[7:-6]), n) for n in os.listdir(audit_dir)
                  if n.startswith("ledger-") and n.endswith(".jsonl"))
    out = []
    for _, name in segs:
        with open(os.path.join(audit_dir, name)) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a line still being written
                rec = json.loads(line)
                if "entry" in rec:
                    out.append(rec["entry"])
    return out


# Suites that are not about policy run with this rule appended to the
# gateway's policy.yaml (byline denies by default): every identity may do
# anything. tests/integration/policy.py tests the rules themselves.
ALLOW_ALL = ("\n  # Integration tests that are not about policy: allow everything.\n"
             "  - name: test-allow-all\n    effect: allow\n")


def allow_all(gateway_dir):
    """Appends ALLOW_ALL to the rules `byline init` wrote to DIR/policy.yaml."""
    with open(os.path.join(gateway_dir, "policy.yaml"), "a") as f:
        f.write(ALLOW_ALL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc=None, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def join_requests(entries):
    """Joins intent and result entries into one dict per request id, in
    order; entries without an id (notices) are left out."""
    merged, order = {}, []
    for rec in entries:
        if "id" not in rec:
            continue
        if rec["id"] not in merged:
            merged[rec["id"]] = {}
            order.append(rec["id"])
        merged[rec["id"]].update(rec)
    return [merged[i] for i in order]


class Gateway:
    """One more byline in front of the shared stand-in, made the way an
    operator would: `byline init` in DIR/NAME (a subclass edits byline.yaml
    between __init__ and start()), identities with their token files and
    kubeconfigs, `byline serve` under the suite's wrapper (valgrind)."""

    def __init__(self, env, name):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.dir, name)
        self.port = free_port()
        self.tokens, self.kubeconfigs = {}, {}
        self.proc = None
        p = run([env.byline, "init", "--dir", self.dir, "--upstream", "https://127.0.0.1:%d" % env.cluster_port,
                 "--upstream-ca", env.ca, "--upstream-token-file", env.shared_token_file,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("init: " + p.stderr)
        env.other_gateways.append(self.dir)
        self.config = os.path.join(self.dir, "byline.yaml")

    def edit_config(self, edit):
        """Rewrites byline.yaml as edit(text) returns it."""
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(edit(text))

    def add_identity(self, name, groups=(), kubeconfig=True, connection=None):
        """`byline identity add`; with `kubeconfig`, writes NAME.token and
        NAME.kubeconfig in the gateway's directory. Returns the token."""
        argv = [self.env.byline, "identity", "add", name, "--dir", self.dir]
        for g in groups:
            argv += ["--group", g]
        p = run(argv)
        if p.returncode != 0:
            raise RuntimeError("identity add %s: %s" % (name, p.stderr))
        self.tokens[name] = p.stdout.strip()
        if kubeconfig:
            tf = os.path.join(self.dir, name + ".token")
            with open(tf, "w") as f:
                f.write(self.tokens[name])
            argv = [self.env.byline, "kubeconfig", name, "--dir", self.dir, "--token-file", tf]
            p = run(argv + (["--connection", connection] if connection else []))
            if p.returncode != 0:
                raise RuntimeError("kubeconfig %s: %s" % (name, p.stderr))
            kc = os.path.join(self.dir, name + ".kubeconfig")
            with open(kc, "w") as f:
                f.write(p.stdout)
            os.chmod(kc, 0o600)
            self.kubeconfigs[name] = kc
        return self.tokens[name]

    def start(self, proc_env=None):
        """Starts `byline serve` and waits for its port; raises with its log if it does not come up."""
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.env.wrapper + [self.env.byline, "serve", "--dir", self.dir],
                                     stdout=self.log, stderr=self.log, env=proc_env)
        self.env.procs.append(self.proc)
        if not wait_port(self.port, self.proc, timeout=60 if self.env.wrapper else 20):
            raise RuntimeError("%s: byline did not start: %s" % (self.name, open(self.log_path).read()[-2000:]))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def enable_metrics(self):
        """Adds metrics.listen on a free port (before start)."""
        self.metrics_port = free_port()
        self.edit_config(lambda t: t + "\nmetrics:\n  listen: 127.0.0.1:%d\n" % self.metrics_port)

    def metric(self, name):
        """One series from /metrics as a number, or None. `name` as rendered,
        labels included: 'byline_requests_limited_total{class="writes"}'."""
        import urllib.request
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def kubectl(self, ident, version):
        import check_kubectl as ck
        return ck.Kubectl(type("A", (), {"dir": self.env.dir, "kubeconfig": self.kubeconfigs[ident]})(), version)

    def entries(self, since=0):
        return ledger_entries(os.path.join(self.dir, "audit"))[since:]

    def requests(self, since=0):
        """Intent and result entries joined per id, in order (from entry `since`)."""
        return join_requests(self.entries(since))

    def mark(self):
        return len(self.entries())


class Upstream(threading.Thread):
    """A tiny TLS HTTP/1.1 server; `respond(head_bytes, body) -> bytes`
    returns the raw reply, so tests control every byte on the wire."""

    def __init__(self, certfile, keyfile, respond):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.respond = respond
        self.heads = []          # every request head received, in order
        self.connections = 0

    def run(self):
        while True:
            try:
                raw, _ = self.sock.accept()
                conn = self.ctx.wrap_socket(raw, server_side=True)
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = conn.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                length, chunked = 0, False
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                    if k.strip().lower() == b"transfer-encoding":
                        chunked = v.strip().lower() == b"chunked"
                if chunked:
                    body, buf = self.read_chunked(conn, buf)
                else:
                    while len(buf) < length:
                        d = conn.recv(65536)
                        if not d:
                            return
                        buf += d
                    body, buf = buf[:length], buf[length:]
                reply = self.respond(head, body)
                if reply is None:
                    conn.close()
                    return
                if isinstance(reply, (bytes, bytearray)):
                    conn.sendall(reply)
                    continue
                for part in reply:  # a streamed reply: bytes to send, or seconds to wait
                    if part == "close":
                        conn.close()
                        return
                    if part == "tunnel":
                        self.echo_upper(conn, buf)
                        return
                    if isinstance(part, float):
                        time.sleep(part)
                    else:
                        conn.sendall(part)
        except (OSError, ValueError):
            return

    @staticmethod
    def echo_upper(conn, buf):
        """After a 101: echo upper-cased until EOF, then say goodbye and
        half-close (our FIN), as an exec stream ends."""
        if buf:
            conn.sendall(buf.upper())
        while True:
            d = conn.recv(65536)
            if not d:
                break
            conn.sendall(d.upper())
        conn.sendall(b"BYE")
        conn.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        conn.close()

    @staticmethod
    def read_chunked(conn, buf):
        """Decodes a chunked body (no extensions expected: byline re-encodes)."""
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += conn.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line, 16)
            while len(buf) < size + 2:
                buf += conn.recv(65536)
            if size == 0:
                return body, buf[2:]
            body, buf = body + buf[:size], buf[size + 2:]


def echo_reply(head, body):
    """Answers with the request head it received, as JSON."""
    lines = head.decode("latin-1").split("\r\n")
    data = json.dumps({"request_line": lines[0],
                       "headers": [l.split(":", 1)[0] + ":" + l.split(":", 1)[1].strip()
                                   for l in lines[1:]],
                       "body": body.decode("latin-1")}).encode()
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
             % len(data)) + data
    if b"pause=" in lines[0].encode("latin-1"):  # ?pause=SECONDS: answer late (requests pile up)
        return [float(lines[0].split("pause=")[1].split("&")[0].split(" ")[0]), reply]
    return reply


HOSTILE = {
    "/api/v1/namespaces/evil/configmaps/cl-te":
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
    "/api/v1/namespaces/evil/configmaps/double-cl":
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\nok",
    "/api/v1/namespaces/evil/configmaps/extra":
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
    "/api/v1/namespaces/evil/configmaps/bad-chunk":
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n",
    "/api/v1/namespaces/evil/configmaps/bare-lf":
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
}


BIG = 200 * 1024 * 1024
BLOCK = bytes(range(256)) * 256  # 64 KiB, a known pattern


def big_reply(chunked):
    yield (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
           (b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % BIG))
    for _ in range(BIG // len(BLOCK)):
        yield (b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n") if chunked else BLOCK
    if chunked:
        yield b"0\r\n\r\n"


def slow_chunks():
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(3):
        ev = b'{"type":"MODIFIED","n":%d}\n' % i
        yield b"%x\r\n%s\r\n" % (len(ev), ev)
        yield 1.0
    yield b"0\r\n\r\n"


SEEN = {}  # path -> times requested (for the retry checks)


def hostile_reply(head, body):
    path = head.split(b" ")[1].decode().split("?")[0]
    SEEN[path] = SEEN.get(path, 0) + 1
    if path.endswith("/close-first") and SEEN[path] == 1:
        return None  # read the request, then hang up without a word
    if path.endswith("/two-records"):  # a response, then a planted one in its own TLS record
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-Injected: yes\r\n\r\nPLANTED"]
    if path.endswith("/big-length"):
        return big_reply(False)
    if path.endswith("/big-chunked"):
        return big_reply(True)
    if path.endswith("/slow-watch"):
        return slow_chunks()
    if path.endswith("/exec"):  # an upgrade that echoes upper-cased until the client's FIN
        return [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n", "tunnel"]
    return HOSTILE.get(path, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")


class Env:
    def __init__(self, byline, keep=False, wrapper=None):
        self.byline = os.path.abspath(byline)
        self.wrapper = wrapper or []    # e.g. valgrind, for `serve` only
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="byline-it-")
        self.procs = []
        self.cluster_audit = os.path.join(self.dir, "cluster-audit.jsonl")
        self.gw = os.path.join(self.dir, "gateway")
        self.tls = os.path.join(self.dir, "cluster-tls")
        self.tokens = {}
        self.kubeconfigs = {}
        self.other_gateways = []

    # --- setup ---

    def start(self):
        self.shared_token = "shared-" + os.urandom(12).hex()
        self.admin_token = "admin-" + os.urandom(12).hex()
        tokens = os.path.join(self.dir, "tokens.csv")
        with open(tokens, "w") as f:
            f.write('%s,%s,uid-gw,"system:serviceaccounts,system:masters"\n'
                    % (self.shared_token, SHARED_USER))
            f.write('%s,admin,uid-admin,"system:masters"\n' % self.admin_token)
        self.shared_token_file = os.path.join(self.dir, "shared.token")
        with open(self.shared_token_file, "w") as f:
            f.write(self.shared_token + "\n")
        os.chmod(self.shared_token_file, 0o600)
        self.make_upstream_client_cert()
        ready = os.path.join(self.dir, "standin.ready")
        self.standin_log = open(os.path.join(self.dir, "standin.log"), "w")
        self.standin = subprocess.Popen(
            [sys.executable, STANDIN, "--listen", "127.0.0.1:0", "--tls-dir", self.tls,
             "--tokens", tokens, "--audit-log", self.cluster_audit, "--ready-file", ready,
             "--seed", "default", "--client-ca", self.up_client_ca, "--impersonators", SHARED_USER],
            stdout=self.standin_log, stderr=self.standin_log)
        self.procs.append(self.standin)
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if time.time() > deadline or self.standin.poll() is not None:
                raise RuntimeError("stand-in did not start: see %s" % self.standin_log.name)
            time.sleep(0.05)
        self.cluster_port = int(open(ready).read())
        self.ca = os.path.join(self.tls, "ca.crt")
        crt, key = os.path.join(self.tls, "server.crt"), os.path.join(self.tls, "server.key")
        self.echo = Upstream(crt, key, echo_reply)
        self.hostile = Upstream(crt, key, hostile_reply)
        self.echo.start()
        self.hostile.start()
        self.port = free_port()
        self.init_gateway()
        self.start_byline()

    def make_upstream_client_cert(self):
        """A client CA the stand-in trusts, and a certificate byline presents
        upstream on the `viacert` connection (CN = the shared user)."""
        d = self.dir
        self.up_client_ca = os.path.join(d, "up-client-ca.crt")
        cakey = os.path.join(d, "up-client-ca.key")
        self.up_client_crt = os.path.join(d, "up-client.crt")
        self.up_client_key = os.path.join(d, "up-client.key")
        csr, ext = os.path.join(d, "up-client.csr"), os.path.join(d, "up-client.ext")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for argv in (["openssl", "req", "-x509", *ec, "-keyout", cakey, "-out", self.up_client_ca, "-days", "2",
                      "-subj", "/CN=cluster-client-ca"],
                     ["openssl", "req", *ec, "-keyout", self.up_client_key, "-out", csr,
                      "-subj", "/O=system:masters/CN=" + CERT_USER]):
            run(argv).check_returncode()
        with open(ext, "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.up_client_ca, "-CAkey", cakey, "-CAcreateserial",
             "-out", self.up_client_crt, "-days", "2", "-extfile", ext]).check_returncode()
        os.chmod(self.up_client_key, 0o600)

    def init_gateway(self):
        p = run([self.byline, "init", "--dir", self.gw, "--upstream",
                 "https://127.0.0.1:%d" % self.cluster_port, "--upstream-ca", self.ca,
                 "--upstream-token-file", self.shared_token_file,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("byline init failed: " + p.stderr)
        cfg = os.path.join(self.gw, "byline.yaml")
        text = open(cfg).read()
        extra = "".join(
            "  - name: %s\n    server: \"https://127.0.0.1:%d\"\n    ca: \"%s\"\n"
            "    token_file: \"%s\"\n" % (name, port, self.ca, self.shared_token_file)
            for name, port in (("echo", self.echo.port), ("hostile", self.hostile.port)))
        extra += ("  - name: impersonating\n    server: \"https://127.0.0.1:%d\"\n    ca: \"%s\"\n"
                  "    token_file: \"%s\"\n    impersonate: true\n" % (self.cluster_port, self.ca, self.shared_token_file))
        extra += ("  - name: viacert\n    server: \"https://127.0.0.1:%d\"\n    ca: \"%s\"\n"
                  "    client_cert: \"%s\"\n    client_key: \"%s\"\n"
                  % (self.cluster_port, self.ca, self.up_client_crt, self.up_client_key))
        text = text.replace("\n# Agent identities", "\n" + extra + "\n# Agent identities")
        text = text.replace("drain_timeout: 30s", "drain_timeout: 3s")
        allow_all(self.gw)
        self.metrics_port = free_port()
        text += "\nmetrics:\n  listen: 127.0.0.1:%d\n" % self.metrics_port
        with open(cfg, "w") as f:
            f.write(text)
        for name, group in (("agent-deploybot", "deployers"), ("agent-reporting", "readers")):
            p = run([self.byline, "identity", "add", name, "--group", group, "--dir", self.gw])
            if p.returncode != 0:
                raise RuntimeError("identity add failed: " + p.stderr)
            self.tokens[name] = p.stdout.strip()
            tf = os.path.join(self.dir, name + ".token")
            with open(tf, "w") as f:
                f.write(self.tokens[name])
            self.kubeconfig(name, ["--token-file", tf])
        p = run([self.byline, "identity", "add", "agent-certbot", "--group", "certs", "--cert",
                 "--dir", self.gw])
        if p.returncode != 0:
            raise RuntimeError("identity add --cert failed: " + p.stderr)
        self.kubeconfig("agent-certbot", [])

    def kubeconfig(self, name, extra):
        # Several connections: kubeconfig names one; the default is the stand-in.
        p = run([self.byline, "kubeconfig", name, "--dir", self.gw, "--connection", "default"] + extra)
        if p.returncode != 0:
            raise RuntimeError("byline kubeconfig failed: " + p.stderr)
        path = os.path.join(self.dir, name + ".kubeconfig")
        with open(path, "w") as f:
            f.write(p.stdout)
        os.chmod(path, 0o600)
        self.kubeconfigs[name] = path

    def start_byline(self):
        self.byline_log_path = os.path.join(self.dir, "byline.log")
        self.byline_log = open(self.byline_log_path, "a")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:quarantine_size_mb=8:log_path=" +
                   os.path.join(self.dir, "asan"), UBSAN_OPTIONS="print_stacktrace=1:log_path=" +
                   os.path.join(self.dir, "ubsan"))
        self.gateway = subprocess.Popen(self.wrapper + [self.byline, "serve", "--dir", self.gw],
                                        stdout=self.byline_log, stderr=self.byline_log, env=env)
        self.procs.append(self.gateway)
        if not wait_port(self.port, self.gateway, timeout=60 if self.wrapper else 20):
            raise RuntimeError("byline serve did not start: " + open(self.byline_log_path).read())

    def stop_byline(self, timeout=10):
        """SIGTERM; returns (exit code or None if it hung, seconds taken)."""
        t0 = time.time()
        self.gateway.send_signal(signal.SIGTERM)
        try:
            rc = self.gateway.wait(timeout)
        except subprocess.TimeoutExpired:
            self.gateway.kill()
            rc = None
        return rc, time.time() - t0

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()

    def sanitizer_reports(self):
        out = []
        for name in os.listdir(self.dir):
            if name.startswith("asan") or name.startswith("ubsan"):
                out.append(open(os.path.join(self.dir, name), errors="replace").read())
        return out

    # --- reading the two audit trails ---

    def byline_records(self, all_gateways=False):
        """The entries of the main gateway's audit ledger, in order (and with
        all_gateways, those of the other bylines a test started with the
        same shared credential). Checkpoint lines are skipped."""
        out = []
        for d in [self.gw] + (self.other_gateways if all_gateways else []):
            out += ledger_entries(os.path.join(d, "audit"))
        return out

    def byline_requests(self, since=0):
        """Joins intent and result lines into one dict per request id;
        `since` skips the first N lines (a mark taken before an action)."""
        return join_requests(self.byline_records()[since:])

    def mark(self):
        return len(self.byline_records())

    def cluster_events(self):
        if not os.path.exists(self.cluster_audit):
            return []
        with open(self.cluster_audit) as f:
            return [json.loads(l) for l in f if l.strip()]

    # --- raw wire access ---

    def tls_socket(self, port=None, cert=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.gw, "tls", "ca.crt"))
        if cert:
            ctx.load_cert_chain(*cert)
        raw = socket.create_connection(("127.0.0.1", port or self.port), timeout=10)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
