"""The audit ledger under stress: kill -9 under load and restart (verify
passes, every request the cluster saw has an intent), a full disk and an
audit directory that cannot be written (503, nothing reaches the cluster,
service resumes after space returns and a restart), exec exit codes in the
records for both exec transports."""

import collections
import os
import random
import signal
import socket
import subprocess
import threading
import time

from env import SHARED_USER, allow_all, free_port, ledger_entries, run, wait_port


class Gateway:
    """A second byline on the shared stand-in, with its own config and audit directory."""

    def __init__(self, env, name, audit_dir=None, audit_keys=None):
        self.env = env
        self.dir = os.path.join(env.dir, name)
        self.port = free_port()
        p = run([env.byline, "init", "--dir", self.dir, "--upstream", "https://127.0.0.1:%d" % env.cluster_port,
                 "--upstream-ca", env.ca, "--upstream-token-file", env.shared_token_file,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("init: " + p.stderr)
        cfg = os.path.join(self.dir, "byline.yaml")
        text = open(cfg).read()
        lines = "".join("  %s: %s\n" % kv for kv in (audit_keys or {}).items())
        text = text.replace("  dir: audit\n", "  dir: \"%s\"\n%s" % (audit_dir, lines) if audit_dir else
                            "  dir: audit\n" + lines)
        with open(cfg, "w") as f:
            f.write(text)
        allow_all(self.dir)
        self.audit = audit_dir or os.path.join(self.dir, "audit")
        self.token = run([env.byline, "identity", "add", "agent-" + name, "--dir", self.dir]).stdout.strip()
        tf = os.path.join(self.dir, "agent.token")
        with open(tf, "w") as f:
            f.write(self.token)
        self.kubeconfig = os.path.join(self.dir, "agent.kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(run([env.byline, "kubeconfig", "agent-" + name, "--dir", self.dir, "--token-file", tf]).stdout)
        env.other_gateways.append(self.dir)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "serve.log"), "a")
        self.proc = subprocess.Popen(self.env.wrapper + [self.env.byline, "serve", "--dir", self.dir],
                                     stdout=self.log, stderr=self.log)
        self.env.procs.append(self.proc)
        return wait_port(self.port, self.proc, timeout=60 if self.env.wrapper else 20)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return None

    def get(self, path="/api/v1/namespaces/web/configmaps/settings", timeout=5):
        """One request on a fresh TLS connection; returns (status or None, body)."""
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "ca.crt"))
        try:
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=timeout),
                                server_hostname="127.0.0.1")
            s.sendall(("GET %s HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
                       % (path, self.token)).encode())
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            s.close()
            return int(data.split(b" ", 2)[1]), data
        except (OSError, ValueError, IndexError):
            return None, b""

    def verify(self, *args):
        return run([self.env.byline, "audit", "verify", "--dir", self.dir] + list(args))


def uuid7_ids(events):
    return {e["auditID"] for e in events if e["user"].get("username") == SHARED_USER and e["auditID"][14:15] == "7"}


def crash_checks(env, result):
    g = Gateway(env, "crashy")
    before = uuid7_ids(env.cluster_events())
    kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
    stop = threading.Event()

    def load(i):
        while not stop.is_set():
            subprocess.run([kubectl, "--kubeconfig", g.kubeconfig, "get", "configmap", "settings", "-n", "web"],
                           capture_output=True, timeout=30)

    rounds = 3
    for n in range(rounds):
        if not g.start():
            result("crash: byline restarts after kill -9 (round %d)" % (n + 1), False, open(g.log.name).read()[-2000:])
            return
        stop.clear()
        workers = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
        for w in workers:
            w.start()
        # Kill only once requests are flowing (valgrind makes start-up slow),
        # then at a random moment while they are.
        base = len(uuid7_ids(env.cluster_events()))
        deadline = time.time() + 30
        while time.time() < deadline and len(uuid7_ids(env.cluster_events())) < base + 3:
            time.sleep(0.1)
        time.sleep(0.2 + random.random())
        g.kill9()
        stop.set()
        for w in workers:
            w.join(30)
    ok = g.start()
    time.sleep(0.3)
    rc = g.stop()
    result("crash: after %d kill -9 under load, byline restarts and stops cleanly" % rounds, ok and rc == 0,
           "rc=%r %s" % (rc, open(g.log.name).read()[-1500:]))
    p = g.verify()
    result("crash: `byline audit verify` passes after the crashes", p.returncode == 0, p.stdout[-2000:] + p.stderr[-1000:])
    entries = ledger_entries(g.audit)
    intents = {e["id"] for e in entries if e.get("kind") == "intent"}
    closed = {e["id"] for e in entries if e.get("kind") in ("result", "aborted")}
    seen = uuid7_ids(env.cluster_events()) - before  # only this gateway was in use meanwhile
    missing = sorted(seen - intents)
    result("crash: every request the cluster received with a byline Audit-ID has an intent (%d requests)" %
           len(seen), seen and not missing, "no intent for %r" % missing[:5])
    result("crash: every intent has a result or an aborted entry", intents <= closed,
           "open: %r" % sorted(intents - closed)[:5])
    # An aborted entry closes an intent written before it, and recovery
    # writes its aborted entries as one block followed by the start notice
    # of the new run; nothing closes an id twice.
    bad, intents_seen = [], set()
    for i, e in enumerate(entries):
        if e.get("kind") == "intent":
            intents_seen.add(e["id"])
        elif e.get("kind") == "aborted":
            j = i
            while j < len(entries) and entries[j].get("kind") == "aborted":
                j += 1
            after = entries[j] if j < len(entries) else {}
            if e["id"] not in intents_seen or after.get("event") != "start":
                bad.append(e["id"])
    closes = collections.Counter(e["id"] for e in entries if e.get("kind") in ("result", "aborted"))
    dup = sorted(i for i, n in closes.items() if n > 1)
    result("crash: each aborted entry closes an intent of an earlier run, and no intent is closed twice",
           not bad and not dup, "bad: %r dup: %r" % (bad[:5], dup[:5]))


def full_disk_checks(env, result):
    """A small tmpfs as the audit directory: a full disk latches the ledger
    (503, nothing reaches the cluster); after space returns and a restart,
    service resumes."""
    mnt = os.path.join(env.dir, "small-fs")
    os.makedirs(mnt, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        result("fail-closed: a small file system can be mounted for the test (needs root)", False,
               "mount -t tmpfs failed")
        return
    try:
        g = Gateway(env, "fulldisk", audit_dir=os.path.join(mnt, "audit"),
                    audit_keys={"space_refuse": "0%", "space_warn": "0%"})
        if not g.start():
            result("fail-closed: byline starts on the small file system", False, open(g.log.name).read()[-2000:])
            return
        st, _ = g.get()
        result("fail-closed: requests pass while there is space", st == 200, "status %r" % st)
        filler = os.path.join(mnt, "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=64k", "count=64"], capture_output=True)
        # The segment's last page may still hold a few entries; then every
        # request is refused, from the first one that did not fit.
        codes, refused_ids, body = [], [], b""
        for _ in range(40):
            st, data = g.get()
            codes.append(st)
            if st == 503:
                body = data
                refused_ids.append(data.split(b"Audit-Id: ", 1)[1].split(b"\r\n", 1)[0].decode()
                                   if b"Audit-Id: " in data else "")
        first = codes.index(503) if 503 in codes else len(codes)
        time.sleep(0.3)
        seen = {e["auditID"] for e in env.cluster_events()}
        result("fail-closed: with the disk full, requests get 503 and say why, every one after the first",
               first < 10 and all(c == 503 for c in codes[first:]) and b"audit ledger cannot be written" in body,
               "codes %r body %r" % (codes, body[-300:]))
        result("fail-closed: none of the refused requests reached the cluster (%d refused)" % len(refused_ids),
               refused_ids and all(i and i not in seen for i in refused_ids), "refused ids seen upstream")
        status = run([env.byline, "audit", "status", "--dir", g.dir])
        result("fail-closed: `byline audit status` says the ledger failed and why",
               status.returncode != 0 and "failed" in status.stdout + status.stderr,
               status.stdout + status.stderr)
        os.unlink(filler)
        time.sleep(0.2)
        codes = [g.get()[0] for _ in range(2)]
        result("fail-closed: the latch holds until restart, even after space returns", all(c == 503 for c in codes),
               "codes %r" % codes)
        g.stop()
        ok = g.start()
        st, _ = g.get()
        result("fail-closed: after space returns and a restart, service resumes", ok and st == 200, "status %r" % st)
        g.stop()
        p = g.verify()
        result("fail-closed: the ledger verifies after the failure", p.returncode == 0, p.stdout[-1500:] + p.stderr[-500:])
    finally:
        keep_ledger(env, mnt, "fulldisk")
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def keep_ledger(env, mnt, name):
    """Copies a gateway's ledger off the test file system before it goes, so
    the join check still finds its records."""
    import shutil
    src = os.path.join(mnt, "audit")
    if os.path.isdir(src):
        shutil.copytree(src, os.path.join(env.dir, name, "audit"), dirs_exist_ok=True)


def refuse_threshold_checks(env, result):
    """Free space below audit.space_refuse refuses new requests (503) without
    latching; they pass again once space returns, without a restart."""
    mnt = os.path.join(env.dir, "small-fs2")
    os.makedirs(mnt, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        result("space thresholds: a small file system can be mounted (needs root)", False, "mount failed")
        return
    try:
        g = Gateway(env, "lowspace", audit_dir=os.path.join(mnt, "audit"),
                    audit_keys={"space_refuse": "25%", "space_warn": "50%"})
        g.start()
        st1, _ = g.get()
        filler = os.path.join(mnt, "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=64k", "count=52"], capture_output=True)
        time.sleep(1.2)  # the ledger looks at free space at most once a second
        g.get()
        time.sleep(0.2)
        st2, body = g.get()
        os.unlink(filler)
        time.sleep(1.2)
        g.get()
        time.sleep(0.2)
        st3, _ = g.get()
        g.stop()
        result("space thresholds: below audit.space_refuse requests get 503; above it they pass again",
               st1 == 200 and st2 == 503 and b"free-space" in body and st3 == 200,
               "statuses %r %r %r body %r" % (st1, st2, st3, body[-200:]))
        notices = [e for e in ledger_entries(g.audit) if e.get("kind") == "notice" and e.get("event") == "space"]
        result("space thresholds: crossing them is recorded in the ledger", len(notices) >= 2, repr(notices[:3]))
    finally:
        keep_ledger(env, mnt, "lowspace")
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def body_level_checks(env, result):
    """audit.level RequestResponse: bodies are in the entries, except
    Secret and ConfigMap bodies, never kept."""
    import json as _json
    g = Gateway(env, "bodies", audit_keys={"level": "RequestResponse", "body_max": "64KiB"})
    if not g.start():
        result("bodies: a RequestResponse gateway starts", False, open(g.log.name).read()[-1500:])
        return
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(g.dir, "tls", "ca.crt"))

    def req(method, path, body=None):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", g.port), timeout=5), server_hostname="127.0.0.1")
        b = _json.dumps(body).encode() if body is not None else b""
        s.sendall(("%s %s HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % (method, path, g.token, len(b))).encode() + b)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        return int(data.split(b" ", 2)[1])

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bodies-cm"}, "data": {"password": "hunter2"}}
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bodies-s"}, "data": {"token": "c2VjcmV0"}}
    codes = [req("POST", "/api/v1/namespaces/web/configmaps", cm), req("POST", "/api/v1/namespaces/web/secrets", sec),
             req("GET", "/api/v1/namespaces/web/secrets/db"), req("GET", "/api/v1/namespaces/web/pods/api-0")]
    g.stop()
    text = open(sorted(os.path.join(g.audit, n) for n in os.listdir(g.audit) if n.startswith("ledger-"))[-1]).read()
    entries = ledger_entries(g.audit)
    by_action = {}
    for e in entries:
        if e.get("kind") in ("intent", "result"):
            by_action.setdefault(e.get("action", ""), {})[e["kind"]] = e
    pod = by_action.get("kubectl get pod/api-0 -n web", {}).get("result", {}).get("response_body", {})
    cmi = by_action.get("kubectl create configmap/bodies-cm -n web", {}).get("intent", {}).get("request_body")
    sec_in = by_action.get("kubectl create secret/bodies-s -n web", {}).get("intent", {}).get("request_body")
    sec_out = by_action.get("kubectl get secret/db -n web", {}).get("result", {}).get("response_body")
    ok = codes == [201, 201, 200, 200] and pod.get("kind") == "Pod" and cmi == {"bytes": len(_json.dumps(cm)), "omitted": "configmap"} \
        and sec_in.get("omitted") == "secret" and sec_out.get("omitted") == "secret" and \
        "hunter2" not in text and "c2VjcmV0" not in text
    result("bodies: kept at RequestResponse, never for Secrets and ConfigMaps, and no secret value in the ledger",
           ok, "codes=%r pod=%r cm=%r secin=%r secout=%r" % (codes, str(pod)[:80], cmi, sec_in, sec_out))


def run_all(env, result):
    body_level_checks(env, result)
    crash_checks(env, result)
    full_disk_checks(env, result)
    refuse_threshold_checks(env, result)
