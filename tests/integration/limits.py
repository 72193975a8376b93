"""Bounds and timeouts, on a second byline with tight limits: connection
count, header and idle timeouts, the TLS handshake bound and the upstream
connect timeout. The assertions allow generous slack: they check that a
limit is enforced, not how fast."""

import os
import signal
import socket
import ssl
import subprocess
import time

from env import allow_all, free_port, run, wait_port

LIMITS = {"max_connections: 10000": "max_connections: 4",
          "header_timeout: 10s": "header_timeout: 1s",
          "idle_timeout: 120s": "idle_timeout: 1s",
          "connect_timeout: 5s": "connect_timeout: 1s"}


class Tight:
    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.dir, "tight")
        self.port = free_port()
        env.other_gateways.append(self.dir)
        # An "API server" that accepts TCP and then says nothing, not even TLS.
        self.stuck = socket.socket()
        self.stuck.bind(("127.0.0.1", 0))
        self.stuck.listen(16)
        p = run([env.byline, "init", "--dir", self.dir, "--upstream", "https://127.0.0.1:%d" % env.cluster_port,
                 "--upstream-ca", env.ca, "--upstream-token-file", env.shared_token_file,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("init: " + p.stderr)
        cfg = os.path.join(self.dir, "byline.yaml")
        text = open(cfg).read()
        for a, b in LIMITS.items():
            text = text.replace(a, b)
        text = text.replace("\n# Agent identities", "\n  - name: stuck\n    server: \"https://127.0.0.1:%d\"\n"
                            "    ca: \"%s\"\n    token_file: \"%s\"\n\n# Agent identities"
                            % (self.stuck.getsockname()[1], env.ca, env.shared_token_file))
        with open(cfg, "w") as f:
            f.write(text)
        allow_all(self.dir)
        p = run([env.byline, "identity", "add", "agent-tight", "--dir", self.dir])
        self.token = p.stdout.strip()
        self.log = open(os.path.join(self.dir, "serve.log"), "w")
        self.proc = subprocess.Popen(env.wrapper + [env.byline, "serve", "--dir", self.dir],
                                     stdout=self.log, stderr=self.log)
        env.procs.append(self.proc)
        if not wait_port(self.port, self.proc, timeout=60 if env.wrapper else 20):
            raise RuntimeError("tight byline did not start")

    def tls(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "ca.crt"))
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def get(self, s, path="/k8s/default/api/v1/namespaces/web/configmaps/settings"):
        s.sendall(("GET %s HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n\r\n" % (path, self.token)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
        return data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stuck.close()


def closed_within(s, seconds):
    """Returns the seconds until the peer closed `s`, or None if it stayed open."""
    s.settimeout(seconds)
    t0 = time.time()
    try:
        while True:
            if not s.recv(4096):
                return time.time() - t0
    except socket.timeout:
        return None
    except (ssl.SSLError, OSError):
        return time.time() - t0


def run_all(env, result):
    t = Tight(env)
    slack = 6.0 if env.wrapper else 3.0
    try:
        conns = [t.tls() for _ in range(4)]
        for c in conns:  # finish each handshake with a request, then keep the connection
            t.get(c)
        extra = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        gone = closed_within(extra, 2.0)
        result("max_connections: a connection past the bound is closed at once", gone is not None and gone < 1.5,
               "closed after %r" % gone)
        for c in conns:
            c.close()
        time.sleep(0.3)
        s = t.tls()
        ok = t.get(s).startswith(b"HTTP/1.1 200")
        s.close()
        result("max_connections: capacity returns when connections close", ok, "")

        s = t.tls()
        s.sendall(b"GET /k8s/default/api HTTP/1.1\r\nHost: b\r\n")
        gone = closed_within(s, slack)
        result("header_timeout: a head that never ends is cut off", gone is not None and gone >= 0.5,
               "closed after %r" % gone)

        s = t.tls()
        ok = t.get(s).startswith(b"HTTP/1.1 200")
        gone = closed_within(s, slack)
        result("idle_timeout: an idle keep-alive connection is closed", ok and gone is not None and gone >= 0.5,
               "closed after %r" % gone)

        raw = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        gone = closed_within(raw, slack)
        result("a TCP connection that never starts TLS is closed (header_timeout)", gone is not None, "")

        s = t.tls()
        t0 = time.time()
        reply = t.get(s, "/k8s/stuck/api/v1/namespaces/web/pods")
        took = time.time() - t0
        s.close()
        result("connect_timeout: an API server that never answers the TLS handshake gives a 502 in time",
               reply.startswith(b"HTTP/1.1 502") and b"timed out connecting" in reply and 0.8 <= took < slack,
               "took %.1fs reply=%r" % (took, reply[:200]))
        # SIGTERM drains (drain_timeout is 30s here) while a watch is open;
        # a second SIGTERM stops at once.
        w = t.tls()
        w.sendall(("GET /k8s/default/api/v1/namespaces/web/pods?watch=true HTTP/1.1\r\nHost: b\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % t.token).encode())
        w.settimeout(5)
        w.recv(4096)
        t.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        still = t.proc.poll() is None
        t0 = time.time()
        t.proc.send_signal(signal.SIGTERM)
        try:
            rc = t.proc.wait(slack)
        except subprocess.TimeoutExpired:
            rc = None
        w.close()
        result("SIGTERM drains with a watch open; a second SIGTERM stops at once",
               still and rc == 0 and time.time() - t0 < slack, "still=%r rc=%r" % (still, rc))
    finally:
        t.stop()
    log = open(os.path.join(t.dir, "serve.log"), errors="replace").read()
    result("the tight byline logged no sanitizer or valgrind errors",
           "Sanitizer" not in log and "runtime error" not in log and t.proc.returncode in (0, -15),
           "rc=%r %s" % (t.proc.returncode, log[-2000:]))
