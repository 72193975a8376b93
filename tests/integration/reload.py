"""Configuration reload on a running gateway (docs/OPERATIONS.md "Reloading").

A second byline (DIR rlgw, its own ledger and /metrics) shares the env's
stand-in cluster. While a kubectl watch, a kubectl exec session, a
keep-alive connection and a loop of requests run, a rule is changed and
SIGHUP sent: new requests follow the new rule, nothing open is dropped
(the load loop counts every error), and the ledger records the reload
with the config's SHA-256. A broken byline.yaml is refused with its
errors in the log, the rules in force stay, and metrics count it. A file
change without SIGHUP is picked up within about two seconds."""

import hashlib
import http.client
import os
import re
import signal
import ssl
import subprocess
import threading
import time

from identity_lifecycle import IdGateway

TARGET = "/api/v1/namespaces/web/configmaps/settings"
DENY_GET = ("rules:\n  - name: reporting-no-get\n    effect: deny\n    identities: [agent-reporting]\n"
            "    verbs: [get]\n")


def until(fn, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


class Load:
    """Requests in a loop: a new TLS connection each time, and one
    keep-alive connection used throughout. Any error or non-200 counts."""

    def __init__(self, gw, token):
        self.ctx = ssl.create_default_context(cafile=os.path.join(gw.dir, "tls", "ca.crt"))
        self.port, self.token = gw.port, token
        self.ok = self.errors = 0
        self.why = []
        self.stop = threading.Event()
        self.keep = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def one(self, conn):
        conn.request("GET", TARGET, headers={"Authorization": "Bearer " + self.token})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError("status %d: %r" % (resp.status, body[:200]))

    def loop(self):
        while not self.stop.is_set():
            for conn in (None, self.keep):
                try:
                    c = conn or http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
                    self.one(c)
                    if conn is None:
                        c.close()
                    self.ok += 1
                except Exception as e:  # counted: the point of the test
                    self.errors += 1
                    self.why.append(repr(e))
            self.stop.wait(0.02)  # steady load that a gateway under valgrind still serves

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        self.keep.close()


def reload_log(gw, since):
    return gw.log_text()[since:]


def reporting_get(gw, v):
    return gw.kubectl("agent-reporting", v).run(["get", "configmap", "settings", "-n", "web", "-o", "name"])


def reload_notices(gw):
    return [e for e in gw.entries() if e.get("kind") == "notice" and e.get("event") == "reload"]


def sighup_applies(gw, result, v, policy):
    """A rule change and SIGHUP, with a watch, an exec and load running."""
    rc, out, err = reporting_get(gw, v)
    result("reload kubectl %s: before: agent-reporting may get the configmap" % v, rc == 0, err[-300:])
    dep = gw.kubectl("agent-deploybot", v)
    watch = gw.kubectl("agent-reporting", v).popen(["get", "configmaps", "-n", "web", "-w", "-o", "name",
                                                    "--request-timeout=60s"])
    ex = subprocess.Popen(dep.argv(["exec", "-i", "api-0", "-n", "web", "--", "cat"]), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dep.envvars(), cwd=dep.env.dir)
    time.sleep(1.5)
    orig = open(policy).read()
    with open(policy, "w") as f:
        f.write(orig.replace("rules:\n", DENY_GET, 1))
    since = len(gw.log_text())
    gw.proc.send_signal(signal.SIGHUP)
    applied = until(lambda: "reload: applied" in reload_log(gw, since), 5)
    result("reload kubectl %s: SIGHUP applies the new rule (logged)" % v, applied, reload_log(gw, since)[-600:])
    rc, out, err = reporting_get(gw, v)
    result("reload kubectl %s: after SIGHUP, agent-reporting's get is denied by the new rule" % v,
           rc != 0 and "reporting-no-get" in err, "rc=%d err=%r" % (rc, err[-300:]))
    name = "reload-%s" % v.replace(".", "-")
    crc, _, cerr = dep.run(["create", "configmap", name, "-n", "web", "--from-literal=k=v"])
    time.sleep(1.0)
    seen = watch.poll() is None  # still open
    watch.send_signal(signal.SIGTERM)
    wout = watch.communicate(timeout=10)[0].decode(errors="replace")
    result("reload kubectl %s: the watch opened before the reload keeps streaming (sees %s)" % (v, name),
           crc == 0 and seen and "configmap/%s" % name in wout, "create rc=%d %r; watch out=%r" % (crc, cerr[-200:], wout[-400:]))
    return orig, ex


def check_notice(gw, result, v, cfg_path, before):
    """The reload that brought the rule is in the ledger (the file watch may
    have applied it just before SIGHUP did: then the later one changed nothing)."""
    notes = [n for n in reload_notices(gw)[before:] if "policy.yaml" in n.get("changed", "")]
    want = hashlib.sha256(open(cfg_path, "rb").read()).hexdigest()
    n = notes[-1] if notes else {}
    result("reload kubectl %s: the ledger has a reload notice with byline.yaml's SHA-256 and what changed" % v,
           n.get("config_sha256") == want and "policy.yaml" in n.get("changed", "") and
           n.get("files", {}).get(cfg_path) == want, repr(n)[:600])


def broken_refused(gw, result, v, cfg_path):
    good = open(cfg_path).read()
    failures = gw.metric("byline_config_reload_failures_total") or 0
    with open(cfg_path, "a") as f:
        f.write("\nlisten: [this is not, an address\n")
    since = len(gw.log_text())
    gw.proc.send_signal(signal.SIGHUP)
    refused = until(lambda: "was not applied" in reload_log(gw, since), 5)
    log = reload_log(gw, since)
    result("reload kubectl %s: a broken byline.yaml is refused with file:line:col errors in the log" % v,
           refused and re.search(r"reload: .*byline\.yaml:\d+:\d+: ", log) is not None, log[-600:])
    rc, _, err = reporting_get(gw, v)
    rc2, out2, err2 = gw.kubectl("agent-deploybot", v).run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    result("reload kubectl %s: the rules in force stay after the refused reload" % v,
           rc != 0 and "reporting-no-get" in err and rc2 == 0, "rc=%d err=%r; deploybot rc=%d %r" % (rc, err[-200:], rc2, err2[-200:]))
    result("reload kubectl %s: metrics count the refused reload" % v,
           gw.metric("byline_config_reload_failures_total") == failures + 1 and
           gw.metric("byline_config_last_reload_successful") == 0,
           "failures %r -> %r, successful %r" % (failures, gw.metric("byline_config_reload_failures_total"),
                                                gw.metric("byline_config_last_reload_successful")))
    with open(cfg_path, "w") as f:
        f.write(good)


def file_change_applies(gw, result, v, policy, orig):
    """No SIGHUP: the changed policy file is seen within ~2 s."""
    time.sleep(1.1)  # the restored byline.yaml is checked (and reloaded) first
    reloads = gw.metric("byline_config_reloads_total") or 0
    with open(policy, "w") as f:
        f.write(orig)
    t0 = time.time()
    ok = until(lambda: reporting_get(gw, v)[0] == 0, 4)
    took = time.time() - t0
    result("reload kubectl %s: a policy file change without SIGHUP applies within ~2 s (%.1fs)" % (v, took),
           ok and took < 3.0, "took %.1fs" % took)
    result("reload kubectl %s: metrics count the applied reloads" % v,
           (gw.metric("byline_config_reloads_total") or 0) > reloads and
           gw.metric("byline_config_last_reload_successful") == 1 and
           (gw.metric("byline_config_last_reload_success_timestamp_seconds") or 0) > time.time() - 30,
           "reloads %r -> %r" % (reloads, gw.metric("byline_config_reloads_total")))


def restart_needed(gw, result, v, cfg_path):
    """A restart-only setting is reported; a moved connection is refused."""
    good = open(cfg_path).read()
    since = len(gw.log_text())
    with open(cfg_path, "w") as f:
        f.write(good.replace("drain_timeout: 30s", "drain_timeout: 5s"))
    gw.proc.send_signal(signal.SIGHUP)
    ok = until(lambda: "needs a restart: workers, limits or timeouts" in reload_log(gw, since), 5)
    result("reload kubectl %s: a restart-only setting is applied later, reported as needing a restart" % v,
           ok and "reload: applied" in reload_log(gw, since), reload_log(gw, since)[-500:])
    with open(cfg_path, "w") as f:
        f.write(good)
    time.sleep(1.2)


def check_exec(result, v, ex):
    try:
        out, err = ex.communicate(input=b"before and after the reload\n", timeout=15)
    except Exception as e:
        ex.kill()
        out, err = b"", repr(e).encode()
    result("reload kubectl %s: the exec session opened before the reload still works after it" % v,
           ex.returncode == 0 and b"before and after the reload" in out,
           "rc=%r out=%r err=%r" % (ex.returncode, out[-200:], err[-300:]))


class SubEnv:
    """The env as IdGateway sees it, but rooted in DIR/NAME so this
    gateway (DIR/NAME/idgw) does not meet identity_lifecycle's."""

    def __init__(self, env, name="reload"):
        self.__dict__.update(env.__dict__)
        self.dir = os.path.join(env.dir, name)
        os.makedirs(self.dir, exist_ok=True)


def agent_connect(gw, key):
    """An agent dialling in with `key` for connection vpc: the status code."""
    s = gw.tls()
    try:
        s.sendall(("POST /byline/agent/v1/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                   "Upgrade: byline-agent/1\r\nConnection: Upgrade\r\nByline-Agent-Connections: vpc\r\n\r\n"
                   % key).encode())
        head = b""
        while b"\r\n" not in head:
            got = s.recv(4096)
            if not got:
                break
            head += got
        m = re.match(rb"HTTP/1.1 (\d+)", head)
        return int(m.group(1)) if m else None
    finally:
        s.close()


def agent_keys(env, result):
    """DIR/agent-keys.yaml reloads with the rest: a key added on a running
    gateway lets its agent in without SIGHUP; a broken file is refused."""
    gw = IdGateway(SubEnv(env, "reload-agent"))
    cfg_path = os.path.join(gw.dir, "byline.yaml")
    text = open(cfg_path).read()
    with open(cfg_path, "w") as f:
        f.write(text.replace("\nconnections:\n", "\nconnections:\n  - name: vpc\n    via: agent\n", 1))
    gw.start()
    try:
        p = gw.cli("agent-key", "add", "a0", "--connection", "vpc")
        early = agent_connect(gw, p.stdout.strip())  # the started gateway may not have seen it yet
        key_path = os.path.join(gw.dir, "agent-keys.yaml")
        ok = until(lambda: agent_connect(gw, p.stdout.strip()) == 101, 4)
        result("reload: an agent key added on the running gateway lets its agent in without SIGHUP",
               p.returncode == 0 and ok, "add rc=%d %r; first try %r" % (p.returncode, p.stderr[-200:], early))
        good = open(key_path).read()
        with open(key_path, "a") as f:
            f.write("keys: [broken\n")
        since = len(gw.log_text())
        gw.proc.send_signal(signal.SIGHUP)
        refused = until(lambda: "the agent keys do not load" in reload_log(gw, since), 5)
        result("reload: a broken agent-keys.yaml is refused with its errors; the keys in force stay",
               refused and re.search(r"reload: .*agent-keys\.yaml:\d+:\d+: ", reload_log(gw, since)) and
               agent_connect(gw, p.stdout.strip()) == 101 and agent_connect(gw, "bya_" + "A" * 43) == 401,
               reload_log(gw, since)[-500:])
        with open(key_path, "w") as f:
            f.write(good)
    finally:
        rc = gw.stop()
    result("reload: the agent gateway stops cleanly", rc == 0, "rc=%r" % rc)


def run_all(env, result, versions):
    gw = IdGateway(SubEnv(env))
    gw.add("agent-reporting", "--group", "readers")
    gw.add("agent-deploybot", "--group", "deployers")
    gw.start()
    policy = os.path.join(gw.dir, "policy.yaml")
    cfg_path = os.path.join(gw.dir, "byline.yaml")
    load = Load(gw, gw.tokens["agent-deploybot"])
    load.thread.start()
    try:
        for v in versions:
            before = len(reload_notices(gw))
            orig, ex = sighup_applies(gw, result, v, policy)
            check_notice(gw, result, v, cfg_path, before)
            broken_refused(gw, result, v, cfg_path)
            file_change_applies(gw, result, v, policy, orig)
            check_exec(result, v, ex)
        restart_needed(gw, result, versions[-1], cfg_path)
    finally:
        load.finish()
    result("reload: no request of the load loop failed across every reload (%d ok, keep-alive included)" % load.ok,
           load.errors == 0 and load.ok > 20, "%d errors: %r" % (load.errors, load.why[:3]))
    rc = gw.stop()
    result("reload: the gateway stops cleanly after the reloads", rc == 0, "rc=%r %s" % (rc, gw.log_text()[-400:]))
    reports = [open(os.path.join(gw.dir, n), errors="replace").read()[:600] for n in os.listdir(gw.dir)
               if n.startswith("asan") or n.startswith("ubsan")]
    result("reload: no AddressSanitizer/UBSan reports from the reloading gateway", not reports, repr(reports))
    agent_keys(env, result)  # after the loaded gateway is gone (under valgrind both at once are slow)
