"""Identity lifecycle on a running gateway (docs/IDENTITY.md): expiry,
revocation, rotation, last-used times and shared-credential detection.

A second byline (DIR idgw, its own ledger and /metrics) shares the env's
stand-in cluster. Nothing here restarts it until the end: every change to
the identities file (a hand edit, `byline identity revoke`, `rotate`) must
take effect on the running gateway within a few seconds, and a broken file
must leave the identities in force. Requests come from real kubectl and,
where the source address or the connection matters, from raw TLS sockets
bound to 127.0.0.1 and 127.0.0.2 (Linux routes all of 127/8 to lo)."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import check_kubectl as ck
from env import allow_all, free_port, join_requests, ledger_entries, run, wait_port
from wire import read_response

TARGET = "/api/v1/namespaces/web/configmaps/settings"


class IdGateway:
    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.dir, "idgw")
        self.port = free_port()
        self.metrics_port = free_port()
        env.other_gateways.append(self.dir)
        p = run([env.byline, "init", "--dir", self.dir, "--upstream", "https://127.0.0.1:%d" % env.cluster_port,
                 "--upstream-ca", env.ca, "--upstream-token-file", env.shared_token_file,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("init: " + p.stderr)
        with open(os.path.join(self.dir, "byline.yaml"), "a") as f:
            f.write("\nmetrics:\n  listen: 127.0.0.1:%d\n" % self.metrics_port)
        allow_all(self.dir)
        self.tokens = {}

    def cli(self, *args):
        return run([self.env.byline] + list(args) + ["--dir", self.dir])

    def add(self, name, *extra):
        p = self.cli("identity", "add", name, *extra)
        if p.returncode != 0:
            raise RuntimeError("identity add %s: %s" % (name, p.stderr))
        if "--cert" not in extra:
            self.tokens[name] = p.stdout.strip()
        return p

    def start(self):
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "w")
        wrapper = [a if not a.startswith("--log-file=") else "--log-file=" + os.path.join(self.dir, "valgrind.log")
                   for a in self.env.wrapper]
        senv = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:log_path=" + os.path.join(self.dir, "asan"),
                    UBSAN_OPTIONS="print_stacktrace=1:log_path=" + os.path.join(self.dir, "ubsan"))
        self.proc = subprocess.Popen(wrapper + [self.env.byline, "serve", "--dir", self.dir],
                                     stdout=self.log, stderr=self.log, env=senv)
        self.env.procs.append(self.proc)
        if not wait_port(self.port, self.proc, timeout=60 if self.env.wrapper else 20):
            raise RuntimeError("idgw byline did not start: " + open(self.log_path).read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None

    def kubectl(self, name, version, token=None):
        kc = os.path.join(self.env.dir, "idgw-%s-%s.kubeconfig" % (name, version))
        user = {"token": token or self.tokens[name]} if (token or name in self.tokens) else {
            "client-certificate": os.path.join(self.dir, "identities", name + ".crt"),
            "client-key": os.path.join(self.dir, "identities", name + ".key")}
        with open(kc, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                       "clusters": [{"name": "b", "cluster": {
                           "server": "https://127.0.0.1:%d" % self.port,
                           "certificate-authority": os.path.join(self.dir, "tls", "ca.crt")}}],
                       "users": [{"name": name, "user": user}],
                       "contexts": [{"name": "c", "context": {"cluster": "b", "user": name}}]}, f)
        os.chmod(kc, 0o600)
        return ck.Kubectl(type("A", (), {"dir": self.env.dir, "kubeconfig": kc})(), version)

    def entries(self):
        return ledger_entries(os.path.join(self.dir, "audit"))

    def requests(self, mark):
        return join_requests(self.entries()[mark:])

    def log_text(self):
        return open(self.log_path, errors="replace").read()

    def metric(self, name):
        try:
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5).read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def tls(self, source="127.0.0.1", cert=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "ca.crt"))
        if cert:
            ctx.load_cert_chain(*cert)
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def get(self, s, token=None, session=None):
        """One keep-alive GET on socket s; returns (status, body)."""
        h = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kubectl/v1.33.0 (linux/amd64)\r\n" % TARGET
        if token:
            h += "Authorization: Bearer %s\r\n" % token
        if session:
            h += "Kubectl-Session: %s\r\nKubectl-Command: kubectl get\r\n" % session
        s.sendall((h + "\r\n").encode())
        reply = read_response(s)
        m = re.match(rb"HTTP/1.1 (\d+)", reply)
        return (int(m.group(1)) if m else 0), reply.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def until(fn, timeout=10):
    """Polls fn() until it returns something true (or the timeout)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.2)


def rewrite_identities(gw, edit):
    """Applies edit(text) to the identities file, replacing it atomically."""
    path = os.path.join(gw.dir, "identities.yaml")
    text = open(path).read()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(edit(text))
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
    return text


def refused_401(gw, result, label, k, reason_re, token=None):
    """kubectl is refused with byline's reason; the attempt is audited as
    unauthenticated naming the identity, without the token."""
    mark = len(gw.entries())
    rc, out, err = until(lambda: (lambda r: r if r[0] != 0 else None)(k.run(["get", "pods", "-n", "web"])),
                         timeout=15) or (0, "", "")
    time.sleep(0.3)
    recs = [r for r in gw.requests(mark) if r.get("result") == "unauthenticated"]
    why = []
    if rc == 0 or not re.search(r"You must be logged in to the server \(byline: " + reason_re, err):
        why.append("kubectl rc=%d err=%r" % (rc, err[-400:]))
    if not recs or not all(r.get("status") == 401 and r.get("actor") is None and
                           re.search(reason_re, r.get("reason", "")) for r in recs):
        why.append("records %r" % recs[:2])
    if token and any(token in json.dumps(e) for e in gw.entries()):
        why.append("the ledger quotes the token")
    result("identity lifecycle kubectl %s: %s" % (k.version, label), not why, "; ".join(why))


def expiry_checks(gw, result, versions):
    p = gw.cli("identity", "list", "--json")
    ids = {i["name"]: i for i in json.loads(p.stdout)} if p.returncode == 0 else {}
    life = ids.get("agent-life", {})
    want = time.time() + 90 * 86400
    exp = life.get("expires") or ""
    ok = exp and abs(time.mktime(time.strptime(exp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - want) < 120
    result("identity add --expires 90d: list --json shows the expiry, not revoked",
           bool(ok) and life.get("revoked") is None and life.get("expired") is False, repr(life))
    for v in versions:  # (and kubectl caches discovery, as an agent that worked before would have)
        ck.check(gw.kubectl("agent-life", v), "an unexpired token works", ["get", "pods", "-n", "web"])
        ck.check(gw.kubectl("agent-expired", v), "a token before its expiry works", ["get", "pods", "-n", "web"])
    # Expire agent-expired by hand (the registry may be edited): in the past now.
    rewrite_identities(gw, lambda t: re.sub(r"(- name: agent-expired\n(?:    .*\n)*?    created: .*\n)",
                                            r'\1    expires: "2020-01-01T00:00:00Z"\n', t))
    for v in versions:
        refused_401(gw, result, "an expired token is 401 saying so, audited",
                    gw.kubectl("agent-expired", v),
                    r"the token of agent-expired expired at 2020-01-01T00:00:00Z; ask an operator for a new one",
                    gw.tokens["agent-expired"])


def broken_file_check(gw, result, version):
    path = os.path.join(gw.dir, "identities.yaml")
    good = rewrite_identities(gw, lambda t: t.replace("token_sha256:", "token_sha256: [", 1))
    logged = until(lambda: re.search(r"does not load.*(identities|configuration) in force stay", gw.log_text()), 10)
    ck.check(gw.kubectl("agent-life", version), "a broken identities file keeps the identities in force",
             ["get", "pods", "-n", "web"])
    result("identity lifecycle: a broken identities file is refused with its errors in the log",
           logged and re.search(r"identities\.yaml:\d+:\d+: ", gw.log_text()), gw.log_text()[-800:])
    with open(path + ".tmp", "w") as f:
        f.write(good)
    os.chmod(path + ".tmp", 0o600)
    os.rename(path + ".tmp", path)


def revoke_checks(gw, result, versions):
    k = gw.kubectl("agent-revokee", versions[0])
    ck.check(k, "before revoke the identity works", ["get", "pods", "-n", "web"])
    # A client-certificate connection kept open across the revoke.
    cert = (os.path.join(gw.dir, "identities", "agent-certlife.crt"),
            os.path.join(gw.dir, "identities", "agent-certlife.key"))
    s = gw.tls(cert=cert)
    first, _ = gw.get(s)
    p = gw.cli("identity", "revoke", "agent-revokee", "--reason", "left the team")
    q = gw.cli("identity", "revoke", "agent-certlife")
    result("identity revoke: exit 0 and says the record stays",
           p.returncode == 0 and q.returncode == 0 and "record stays" in p.stderr, p.stderr + q.stderr)
    for v in versions:
        refused_401(gw, result, "a revoked token is 401 on the running gateway, audited",
                    gw.kubectl("agent-revokee", v),
                    r"the token of agent-revokee was revoked at \S+Z \(left the team\); ask an operator",
                    gw.tokens["agent-revokee"])
    second, body = until(lambda: (lambda r: r if r[0] == 401 else None)(gw.get(s)), 10) or (0, "")
    s.close()
    result("identity revoke: the next request on an open client-certificate connection is 401",
           first == 200 and second == 401 and "the client certificate of agent-certlife was revoked" in body,
           "first=%r second=%r body=%r" % (first, second, body[:300]))
    p = gw.cli("identity", "list", "--json")
    ids = {i["name"]: i for i in json.loads(p.stdout)} if p.returncode == 0 else {}
    r = ids.get("agent-revokee", {})
    result("identity list --json keeps a revoked identity with when and why",
           bool(r.get("revoked")) and r.get("revoked_reason") == "left the team", repr(r))


def rotate_checks(gw, result, version):
    old = gw.tokens["agent-life"]
    p = gw.cli("identity", "rotate", "agent-life")
    result("identity rotate refuses to drop an expiry silently",
           p.returncode != 0 and "--expires" in p.stderr, p.stderr)
    p = gw.cli("identity", "rotate", "agent-life", "--expires", "30d")
    new = p.stdout.strip()
    result("identity rotate prints a new token", p.returncode == 0 and new.startswith("byl_") and new != old,
           p.stderr)
    if p.returncode != 0:
        return
    gw.tokens["agent-life"] = new
    refused_401(gw, result, "after rotate the old token is refused", gw.kubectl("agent-life-old", version, old),
                r"unknown bearer token")
    ck.check(gw.kubectl("agent-life", version), "after rotate the new token works", ["get", "pods", "-n", "web"])


def shared_checks(gw, result, version):
    mark = len(gw.entries())
    tok = gw.tokens["agent-shared"]
    a, b = gw.tls("127.0.0.1"), gw.tls("127.0.0.2")
    statuses = []
    for i in range(3):  # two agents, interleaved: A, B, A, B, ...
        statuses.append(gw.get(a, tok, "aaaaaaaa-0000-4000-8000-00000000000a")[0])
        statuses.append(gw.get(b, tok, "bbbbbbbb-0000-4000-8000-00000000000b")[0])
    a.close()
    b.close()
    notes = until(lambda: [e for e in gw.entries()[mark:] if e.get("kind") == "notice" and
                           e.get("event") == "shared-credential"], 10) or []
    n = notes[0] if notes else {}
    ok = (statuses == [200] * 6 and len(notes) == 1 and n.get("identity") == "agent-shared" and
          set(n.get("addresses", [])) == {"127.0.0.1", "127.0.0.2"} and
          set(n.get("sessions", [])) == {"aaaaaaaa-0000-4000-8000-00000000000a",
                                         "bbbbbbbb-0000-4000-8000-00000000000b"} and
          "identity agent-shared appears to be shared" in n.get("detail", "") and tok not in json.dumps(notes))
    result("shared credential: two clients interleaving one token from 127.0.0.1 and 127.0.0.2 -> "
           "one shared-credential notice naming both", ok, "statuses=%r notes=%r" % (statuses, notes))
    result("shared credential: the warning is logged",
           "identity agent-shared appears to be shared" in gw.log_text(), gw.log_text()[-600:])
    result("shared credential: byline_shared_credential_warnings_total is 1",
           gw.metric("byline_shared_credential_warnings_total") == 1,
           repr(gw.metric("byline_shared_credential_warnings_total")))
    # One agent, several kubectl runs in sequence from one address: not shared.
    mark = len(gw.entries())
    k = gw.kubectl("agent-solo", version)
    for _ in range(3):
        ck.check(k, "sequential kubectl runs of one agent", ["get", "pods", "-n", "web"])
    p = k.popen(["get", "pods", "-n", "web", "-w", "--request-timeout=3s"])  # and one in parallel
    ck.check(k, "a kubectl run while a watch is open", ["get", "configmap", "settings", "-n", "web"])
    p.wait(30)
    time.sleep(0.5)
    notes = [e for e in gw.entries()[mark:] if e.get("kind") == "notice" and e.get("event") == "shared-credential"]
    result("shared credential: one agent's sequential and parallel kubectl runs from one address do not fire it",
           not notes and gw.metric("byline_shared_credential_warnings_total") == 1, repr(notes))


def last_used_checks(gw, result):
    rc = gw.stop()
    reports = [n for n in os.listdir(gw.dir) if n.startswith(("asan", "ubsan"))]
    result("identity lifecycle gateway stops cleanly (SIGTERM, sanitizers quiet)", rc == 0 and not reports,
           "rc=%r reports=%r" % (rc, reports))
    path = os.path.join(gw.dir, "state", "last-used.json")
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else None
    p = gw.cli("identity", "list", "--json")
    ids = {i["name"]: i for i in json.loads(p.stdout)} if p.returncode == 0 else {}

    def recent(name):
        t = ids.get(name, {}).get("last_used")
        return bool(t) and abs(time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - time.time()) < 600
    ok = (mode == 0o600 and recent("agent-life") and recent("agent-revokee") and recent("agent-shared") and
          recent("agent-certlife") and "agent-idle" in ids and
          ids["agent-idle"].get("last_used") is None)
    result("identity list shows last used (DIR/state/last-used.json, 0600) for identities that authenticated",
           ok, "mode=%r %r" % (mode, {n: i.get("last_used") for n, i in ids.items()}))
    p = gw.cli("identity", "list")
    line = [l for l in p.stdout.splitlines() if l.startswith("agent-revokee ")]
    result("identity list (table) has EXPIRES, REVOKED and LAST USED columns",
           p.returncode == 0 and "LAST USED" in p.stdout and line and
           len(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line[0])) == 3, p.stdout[-800:])


def run_all(env, result, versions):
    gw = IdGateway(env)
    gw.add("agent-life", "--expires", "90d")
    for name in ("agent-expired", "agent-revokee", "agent-shared", "agent-solo", "agent-idle"):
        gw.add(name)
    gw.add("agent-certlife", "--cert")
    gw.start()
    try:
        expiry_checks(gw, result, versions)
        broken_file_check(gw, result, versions[-1])
        revoke_checks(gw, result, versions)
        rotate_checks(gw, result, versions[-1])
        shared_checks(gw, result, versions[-1])
    finally:
        last_used_checks(gw, result)
