"""The byline agent: kubectl -> gateway -> agent -> stand-in cluster.

A second gateway whose connection `prod-eks` has `via: agent` (no API server
address or credential at the gateway), and `byline agent` processes that dial
it and hold the stand-in's shared token. Checks: no agent -> 503 audited;
get, watch, scale, exec, port-forward through the agent with the audit naming
the identity and the cluster's event joined on Audit-ID; killing the agent
mid-watch ends the client's watch with an error and the record says why; the
agent reconnects; two agents for one connection, one killed, no request lost;
a GET whose pooled API server connection died unanswered is sent again, a
POST is not."""

import os
import re
import signal
import subprocess
import time

import check_kubectl as ck
import env as envmod
import base64

from env import CERT_USER, SHARED_USER, Gateway, run, wait_port

CONN = "prod-eks"
HOSTILE = "edge"  # a connection via an agent whose API server is env.hostile


class AgentGw(Gateway):
    def __init__(self, env):
        super().__init__(env, "agentgw")
        self.agents = {}
        self.edit_config(lambda t: t.replace("\nconnections:\n", "\nconnections:\n  - name: %s\n    via: agent\n"
                                             "  - name: %s\n    via: agent\n" % (CONN, HOSTILE), 1))
        if os.path.exists(os.path.join(self.dir, "policy.yaml")) and hasattr(envmod, "allow_all"):
            envmod.allow_all(self.dir)  # byline denies by default; this suite is not about policy
        for name in ("agent-deploybot", "agent-reporting"):
            self.add_identity(name, connection=CONN)
        self.keys = {}
        for name, conn in (("vpc-a", CONN), ("vpc-b", CONN), ("vpc-h", HOSTILE)):
            p = run([env.byline, "agent-key", "add", name, "--connection", conn, "--dir", self.dir])
            if p.returncode != 0 or not p.stdout.startswith("bya_"):
                raise RuntimeError("agent-key add: %r %r" % (p.stdout, p.stderr))
            kf = os.path.join(self.dir, name + ".key")
            with open(kf, "w") as f:
                f.write(p.stdout)
            os.chmod(kf, 0o600)
            self.keys[name] = kf
        self.agent_cfg = os.path.join(self.dir, "agent.yaml")
        with open(self.agent_cfg, "w") as f:
            f.write("connections:\n  - name: %s\n    server: https://127.0.0.1:%d\n    ca: %s\n    token_file: %s\n"
                    % (CONN, env.cluster_port, env.ca, env.shared_token_file))
        self.hostile_cfg = os.path.join(self.dir, "agent-edge.yaml")
        with open(self.hostile_cfg, "w") as f:
            f.write("connections:\n  - name: %s\n    server: https://127.0.0.1:%d\n    ca: %s\n    token_file: %s\n"
                    % (HOSTILE, env.hostile.port, env.ca, env.shared_token_file))
        self.asan_env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=" +
                             os.path.join(env.dir, "asan-agentgw"),
                             UBSAN_OPTIONS="print_stacktrace=1:log_path=" + os.path.join(env.dir, "ubsan-agentgw"))
        self.enable_metrics()
        self.start(self.asan_env)

    def start_agent(self, name, wait=True):
        log = open(os.path.join(self.dir, "agent-%s.log" % name), "a")
        p = subprocess.Popen([self.env.byline, "agent", "--gateway", "https://127.0.0.1:%d" % self.port,
                              "--key-file", self.keys[name],
                              "--config", self.hostile_cfg if name == "vpc-h" else self.agent_cfg,
                              "--ca", os.path.join(self.dir, "tls", "ca.crt"), "--log-level", "debug"],
                             stdout=log, stderr=log, env=self.asan_env)
        self.env.procs.append(p)
        self.agents[name] = p
        if wait:
            self.wait_connected(name)
        return p

    def connected_count(self, name):
        return len(re.findall(r"agent %s connected" % re.escape(name), open(self.log_path).read()))

    def wait_connected(self, name, before=0, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.connected_count(name) > before:
                return True
            time.sleep(0.05)
        return False

    def record(self, mark, action_re):
        time.sleep(0.15)
        recs = [r for r in self.requests(mark) if re.search(action_re, r.get("action", ""))]
        return recs[-1] if recs else None


def attributed(gw, result, mark, action_re, actor, label, status):
    rec = gw.record(mark, action_re)
    why = []
    if rec is None:
        why.append("no record for %r" % action_re)
    else:
        if rec.get("actor") != actor or rec.get("result") != "allowed" or rec.get("connection") != CONN:
            why.append("record %r" % rec)
        if rec.get("status") != status:
            why.append("status %r" % rec.get("status"))
        evs = [e for e in gw.env.cluster_events() if e["auditID"] == rec.get("id")]
        if not evs or any(e["user"].get("username") != SHARED_USER for e in evs):
            why.append("cluster events %r" % evs[:1])
    result(label, not why, "; ".join(why))
    return rec


def no_agent(gw, result, v):
    k = gw.kubectl("agent-reporting", v)
    mark = gw.mark()
    rc, out, err = k.run(["get", "--raw", "/k8s/%s/api/v1/namespaces/web/configmaps/settings" % CONN])
    result("kubectl %s: no agent online -> 503 with byline's message" % v,
           rc == 1 and "byline: no agent online for connection prod-eks" in err, "rc=%d err=%r" % (rc, err))
    time.sleep(0.15)
    recs = [r for r in gw.requests(mark) if r.get("status") == 503]
    result("kubectl %s: the 503 is audited (result error, the reason, the identity)" % v,
           bool(recs) and all(r.get("result") == "error" and r.get("actor") == "agent-reporting" and
                              r.get("reason") == "no agent online for connection prod-eks" for r in recs),
           repr(recs[:2]))


def watch_scale(gw, result, v):
    reader, writer = gw.kubectl("agent-reporting", v), gw.kubectl("agent-deploybot", v)
    replicas = 6 if v == "1.27" else 7
    marks = []
    rc, err, lines, _ = ck.watch_while_scaling(reader, writer, replicas, "5s", before=lambda: marks.append(gw.mark()))
    mark = marks[0]
    want = "%d/%d" % (replicas, replicas)
    result("kubectl %s: watch through the agent sees a scale through the agent" % v,
           rc == 0 and any(want in ln for ln in lines[1:]), "rc=%d err=%r lines=%r" % (rc, err, lines))
    attributed(gw, result, mark, r"^kubectl scale deployment/api --replicas=%d -n web$" % replicas,
               "agent-deploybot", "kubectl %s: scale via agent audited as agent-deploybot, joined" % v, 200)


def exec_and_forward(gw, result, v):
    k = gw.kubectl("agent-deploybot", v)
    mark = gw.mark()
    ck.check(k, "exec through the agent", ["exec", "-n", "web", "api-0", "-c", "app", "--", "ls", "-la", "/tmp"],
             contains=["total"])
    rec = attributed(gw, result, mark, r"^kubectl exec api-0 -n web -c app -- ls -la /tmp$", "agent-deploybot",
                     "kubectl %s: exec via agent audited as a 101 with its argv" % v, 101)
    if rec:
        result("kubectl %s: exec via agent: exit code 0 in the record" % v,
               rec.get("exec", {}).get("exit_code") == 0, repr(rec.get("exec")))
    ck.check(k, "exec -i cat through the agent", ["exec", "-i", "-n", "web", "api-0", "--", "cat"],
             stdin=b"through the agent\n", exact="through the agent\n")
    mark = gw.mark()
    port, bodies, perr, _ = ck.port_forward_bodies(k)
    result("kubectl %s: port-forward through the agent" % v, bodies == ["hello from api-0:8080\n"] * 2,
           "port=%r bodies=%r err=%r" % (port, bodies, perr))
    time.sleep(0.3)
    attributed(gw, result, mark, r"^kubectl port-forward pod/api-0 -n web", "agent-deploybot",
               "kubectl %s: port-forward via agent audited as a 101" % v, 101)


def kill_mid_watch(gw, result, v):
    k = gw.kubectl("agent-reporting", v)
    mark = gw.mark()
    w = k.popen(["get", "pods", "-n", "web", "-w", "--request-timeout=60s"])
    time.sleep(1.5)
    before = gw.connected_count("vpc-a")
    gw.agents["vpc-a"].kill()
    gw.agents["vpc-a"].wait(5)
    t0 = time.time()
    try:
        w.wait(20)
    except subprocess.TimeoutExpired:
        w.kill()
    took = time.time() - t0
    out, err = w.stdout.read().decode(errors="replace"), w.stderr.read().decode(errors="replace")
    # The watch ends with an ERROR event, which kubectl prints as a Status row
    # (as for any watch the API server ends with an error) and exits.
    result("kubectl %s: the agent killed mid-watch ends the client's watch with a clear error" % v,
           took < 15 and re.search(r"Failure +ServiceUnavailable +byline: agent for prod-eks disconnected", out),
           "rc=%r took %.1fs out=%r err=%r" % (w.returncode, took, out[-400:], err[-400:]))
    rec = gw.record(mark, r"^kubectl get pods -n web --watch$")
    result("kubectl %s: the cut watch's record says its agent disconnected" % v,
           rec is not None and "agent for prod-eks disconnected" in rec.get("reason", ""), repr(rec))
    # Reconnects: a new agent process (the old one is dead) comes back.
    gw.start_agent("vpc-a", wait=False)
    ok = gw.wait_connected("vpc-a", before)
    rc, out, e2 = gw.kubectl("agent-reporting", v).run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    result("kubectl %s: service resumes once the agent is back" % v, ok and rc == 0 and out == "configmap/settings\n",
           "connected=%r rc=%d out=%r err=%r" % (ok, rc, out, e2))


def gateway_restart_reconnects(gw, result):
    """The gateway goes away; the agent retries with backoff and comes back by itself."""
    before = gw.connected_count("vpc-a")
    gw.proc.send_signal(signal.SIGTERM)
    gw.proc.wait(15)
    gw.proc = subprocess.Popen(gw.env.wrapper + [gw.env.byline, "serve", "--dir", gw.dir],
                               stdout=gw.log, stderr=gw.log, env=gw.asan_env)
    gw.env.procs.append(gw.proc)
    ok = wait_port(gw.port, gw.proc, timeout=20) and gw.wait_connected("vpc-a", before, timeout=40)
    rc, out, err = gw.kubectl("agent-reporting", "1.33").run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    result("agent: reconnects by itself after the gateway restarts", ok and rc == 0, "ok=%r rc=%d err=%r" % (ok, rc, err))


def two_agents(gw, result):
    gw.start_agent("vpc-b")
    k = gw.kubectl("agent-reporting", "1.33")
    # Both carry requests while both are up.
    for _ in range(4):
        k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    gw.agents["vpc-a"].kill()
    gw.agents["vpc-a"].wait(5)
    fails = []
    for i in range(10):
        rc, out, err = k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
        if rc != 0 or out != "configmap/settings\n":
            fails.append((i, rc, err))
    result("two agents: with one killed, no new request is lost", not fails, repr(fails[:3]))


def draining(gw, result):
    """SIGTERM with a watch open: the agent sends GOAWAY, the watch goes on,
    new requests are not sent to it (503 when it was the only agent), and it
    exits once the watch ends."""
    k = gw.kubectl("agent-reporting", "1.33")
    p = gw.agents["vpc-b"]
    w = k.popen(["get", "pods", "-n", "web", "-w", "--request-timeout=4s"])
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    rc, out, err = k.run(["get", "--raw", "/k8s/%s/api/v1/namespaces/web/configmaps/settings" % CONN])
    alive = p.poll() is None
    try:
        w.wait(15)
        prc = p.wait(15)
    except subprocess.TimeoutExpired:
        w.kill()
        p.kill()
        prc = None
    wout = w.stdout.read().decode(errors="replace")
    result("agent: draining (SIGTERM) keeps its open watch and takes no new request (503)",
           alive and rc == 1 and "no agent online for connection prod-eks" in err and "api-0" in wout and
           "disconnected" not in wout and prc == 0,
           "alive=%r rc=%d err=%r watch=%r agent rc=%r" % (alive, rc, err[-200:], wout[-300:], prc))


def refusals(gw, result):
    """Wrong keys and connections are refused at the upgrade."""
    bad = os.path.join(gw.dir, "bad.key")
    with open(bad, "w") as f:
        f.write("bya_" + "A" * 43 + "\n")
    log = os.path.join(gw.dir, "agent-bad.log")
    with open(log, "w") as lf:
        p = subprocess.Popen([gw.env.byline, "agent", "--gateway", "https://127.0.0.1:%d" % gw.port,
                              "--key-file", bad, "--config", gw.agent_cfg,
                              "--ca", os.path.join(gw.dir, "tls", "ca.crt")], stdout=lf, stderr=lf)
        time.sleep(1.5)
        p.terminate()
        p.wait(5)
    text = open(log).read()
    result("agent: an unknown key is refused with 401 and the agent says so",
           "refused the agent (401): unknown agent key" in text, text[-500:])
    other = os.path.join(gw.dir, "agent-other.yaml")
    with open(other, "w") as f:
        f.write(open(gw.agent_cfg).read().replace(CONN, "staging"))
    log = os.path.join(gw.dir, "agent-other.log")
    with open(log, "w") as lf:
        p = subprocess.Popen([gw.env.byline, "agent", "--gateway", "https://127.0.0.1:%d" % gw.port,
                              "--key-file", gw.keys["vpc-b"], "--config", other,
                              "--ca", os.path.join(gw.dir, "tls", "ca.crt")], stdout=lf, stderr=lf)
        time.sleep(1.5)
        p.terminate()
        p.wait(5)
    text = open(log).read()
    result("agent: announcing a connection it is not registered for is refused (403)",
           "(403)" in text and "staging" in text, text[-500:])


def served_as(gw, result, cfg_text, label, want_user, extra_env=None, before_check=None):
    """Runs one agent with `cfg_text` as its config; checks the cluster saw want_user."""
    cfg = os.path.join(gw.dir, "agent-%d.yaml" % int(time.time() * 1000))
    with open(cfg, "w") as f:
        f.write(cfg_text)
    log = open(cfg + ".log", "a")
    before = gw.connected_count("vpc-b")
    p = subprocess.Popen([gw.env.byline, "agent", "--gateway", "https://127.0.0.1:%d" % gw.port,
                          "--key-file", gw.keys["vpc-b"], "--config", cfg,
                          "--ca", os.path.join(gw.dir, "tls", "ca.crt")],
                         stdout=log, stderr=log, env=dict(gw.asan_env, **(extra_env or {})))
    gw.env.procs.append(p)
    users = []
    try:
        if not gw.wait_connected("vpc-b", before):
            result(label, False, "agent did not connect: " + open(cfg + ".log").read()[-800:])
            return
        for step in range(2 if before_check else 1):
            if step == 1:
                want = before_check()
            mark = gw.mark()
            rc, out, err = gw.kubectl("agent-reporting", "1.33").run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
            rec = gw.record(mark, r"^kubectl get configmap/settings -n web$")
            evs = [e for e in gw.env.cluster_events() if rec and e["auditID"] == rec["id"]]
            users.append((rc, evs[0]["user"].get("username") if evs else None))
        wants = [want_user] + ([want] if before_check else [])
        result(label, [u for _, u in users] == wants and all(rc == 0 for rc, _ in users), "users=%r want %r" % (users, wants))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def cred_sources(gw, result):
    env = gw.env
    # in_cluster: API server from KUBERNETES_SERVICE_*, CA and token from the
    # mounted ServiceAccount; a rotated token is picked up without a restart.
    sa = os.path.join(gw.dir, "sa")
    os.makedirs(sa, exist_ok=True)
    with open(os.path.join(sa, "ca.crt"), "w") as f:
        f.write(open(env.ca).read())
    tok = os.path.join(sa, "token")
    with open(tok, "w") as f:
        f.write(env.admin_token)

    def rotate():
        with open(tok + ".new", "w") as f:
            f.write(env.shared_token)
        os.replace(tok + ".new", tok)  # as the kubelet swaps the projected volume
        time.sleep(5.5)  # the agent looks at the file at most every 5 s
        return SHARED_USER

    served_as(gw, result, "connections:\n  - name: %s\n    in_cluster: true\n    service_account_dir: %s\n" % (CONN, sa),
              "agent: in_cluster mode uses the ServiceAccount token and re-reads it when rotated", "admin",
              {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(env.cluster_port)}, rotate)
    # A kubeconfig with certificate data (client certificate: the cluster names CERT_USER).
    b64 = lambda p: base64.b64encode(open(p, "rb").read()).decode()
    kc = os.path.join(gw.dir, "cluster.kubeconfig")
    with open(kc, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: c\n  cluster:\n"
                "    server: https://127.0.0.1:%d\n    certificate-authority-data: %s\nusers:\n- name: u\n  user:\n"
                "    client-certificate-data: %s\n    client-key-data: %s\ncontexts:\n- name: prod\n  context:\n"
                "    cluster: c\n    user: u\n" % (env.cluster_port, b64(env.ca), b64(env.up_client_crt), b64(env.up_client_key)))
    served_as(gw, result, "connections:\n  - name: %s\n    kubeconfig: %s\n" % (CONN, kc),
              "agent: a kubeconfig with certificate data (the cluster sees the certificate's user)", CERT_USER)
    # A kubeconfig naming a token file relative to itself.
    with open(os.path.join(gw.dir, "rel.token"), "w") as f:
        f.write(env.shared_token)
    kc2 = os.path.join(gw.dir, "token.kubeconfig")
    with open(kc2, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n"
                "    server: https://127.0.0.1:%d\n    certificate-authority: %s\nusers:\n- name: u\n  user:\n"
                "    tokenFile: rel.token\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
                % (env.cluster_port, env.ca))
    served_as(gw, result, "connections:\n  - name: %s\n    kubeconfig: %s\n" % (CONN, kc2),
              "agent: a kubeconfig with a relative tokenFile", SHARED_USER)


def cli_checks(gw, result):
    b = gw.env.byline
    cases = [
        ([b, "agent"], 2, "--gateway URL is required"),
        ([b, "agent", "--gateway", "https://x", "--key-file", gw.keys["vpc-a"]], 2, "--config FILE is required"),
        ([b, "agent", "--gateway", "http://x", "--key-file", gw.keys["vpc-a"], "--config", gw.agent_cfg], 1, "--gateway"),
        ([b, "agent-key", "add", "x", "--dir", gw.dir], 2, "--connection C is required"),
        ([b, "agent-key", "add", "x", "--connection", "default", "--dir", gw.dir], 1,
         'connection "default" is not configured in %s/byline.yaml with via: agent' % gw.dir),
        ([b, "agent-key", "add", "vpc-a", "--connection", CONN, "--dir", gw.dir], 1, 'agent "vpc-a" already has a key'),
        ([b, "agent-key", "remove", "nobody", "--dir", gw.dir], 1, 'no agent named "nobody"'),
        ([b, "agent-key", "frob"], 2, "unknown verb"),
    ]
    bad = os.path.join(gw.dir, "bad-agent.yaml")
    with open(bad, "w") as f:
        f.write("connections:\n  - name: x\n    server: https://a\n    token: t\n    in_cluster: true\n")
    cases.append(([b, "agent", "--gateway", "https://x", "--key-file", gw.keys["vpc-a"], "--config", bad], 1,
                  "bad-agent.yaml:2:5: connection \"x\": give exactly one of"))
    for argv, want_rc, want in cases:
        p = run(argv)
        result("cli: %s -> exit %d, %r" % (" ".join(argv[1:3]), want_rc, want[:40]),
               p.returncode == want_rc and want in p.stderr, "rc=%d stderr=%r" % (p.returncode, p.stderr[-300:]))
    p = run([b, "agent-key", "list", "--dir", gw.dir])
    result("cli: agent-key list shows the agents and their connection", p.returncode == 0 and
           re.search(r"vpc-a +prod-eks", p.stdout) and "bya_" not in p.stdout, p.stdout + p.stderr)
    for argv in ([b, "agent", "--help"], [b, "agent-key", "--help"]):
        p = run(argv)
        result("cli: %s --help" % argv[1], p.returncode == 0 and p.stdout.startswith("usage: byline " + argv[1]), p.stdout[:80])


def key_revoked(gw, result):
    """`agent-key remove` + SIGHUP cuts off an agent already connected with
    that key: new requests get the 503 at once, the gateway says why."""
    p = run([gw.env.byline, "agent-key", "add", "vpc-c", "--connection", CONN, "--dir", gw.dir])
    kf = os.path.join(gw.dir, "vpc-c.key")
    with open(kf, "w") as f:
        f.write(p.stdout)
    os.chmod(kf, 0o600)
    gw.keys["vpc-c"] = kf
    k = gw.kubectl("agent-reporting", "1.33")
    up = time.time() + 20  # the watched file brings the new key in within ~2 s
    while True:
        gw.start_agent("vpc-c", wait=False)
        if gw.wait_connected("vpc-c", timeout=4) or time.time() > up:
            break
        gw.agents.pop("vpc-c").kill()
    rc, out, err = k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    result("key revoked: before, the agent with key vpc-c serves requests", rc == 0, "rc=%d err=%r" % (rc, err[-300:]))
    since = len(open(gw.log_path).read())
    p = run([gw.env.byline, "agent-key", "remove", "vpc-c", "--dir", gw.dir])
    gw.proc.send_signal(signal.SIGHUP)
    deadline, got = time.time() + 5, None
    while time.time() < deadline:
        got = k.run(["get", "--raw", "/k8s/%s/api/v1/namespaces/web/configmaps/settings" % CONN])
        if got[0] == 1 and "no agent online for connection prod-eks" in got[2]:
            break
        time.sleep(0.2)
    log = open(gw.log_path).read()[since:]
    result("key revoked: agent-key remove + reload -> the connected agent gets no new request (503 within 5 s)",
           p.returncode == 0 and got and got[0] == 1 and "no agent online for connection prod-eks" in got[2],
           "remove rc=%d got=%r" % (p.returncode, got))
    result("key revoked: the gateway logs that agent vpc-c was cut off and why",
           re.search(r"agent vpc-c \(\S+\) cut off: its agent key was removed", log) is not None, log[-600:])
    a = gw.agents.pop("vpc-c")
    a.kill()
    a.wait(5)


def upstream_ports(pid, port):
    """Local ports of `pid`'s established TCP connections to 127.0.0.1:port."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = set()
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            x = line.split()
            local, remote, state, inode = x[1], x[2], x[3], x[9]
            if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
                out.add(int(local.split(":")[1], 16))
    return out


def pooled(gw, result, v):
    """Requests one after another through the agent share one API server
    connection: the agent follows each response to its end and keeps the
    connection (src/agent/pool.c) instead of a TCP + TLS handshake each."""
    k = gw.kubectl("agent-reporting", v)
    seen, rcs = [], []
    for _ in range(5):
        rc, _, _ = k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
        rcs.append(rc)
        seen.append(upstream_ports(gw.agents["vpc-a"].pid, gw.env.cluster_port))
    ports = set().union(*seen)
    result("kubectl %s: 5 requests through the agent, one API server connection kept for all of them" % v,
           rcs == [0] * 5 and len(ports) == 1 and all(seen), "rcs=%r ports after each: %r" % (rcs, seen))


def resend(gw, result):
    """A pooled API server connection that dies before answering (the
    server's idle timeout firing as the request arrives): the agent sends a
    GET again on a new connection, never a POST (the server may have acted
    on it). The `edge` connection's API server is env.hostile, which reads
    a `.../close-first` request the first time and hangs up without a word."""
    from env import SEEN
    gw.start_agent("vpc-h")
    k = gw.kubectl("agent-reporting", ck.VERSIONS[-1])
    base = "/k8s/%s/api/v1/namespaces/evil/configmaps/" % HOSTILE
    log = os.path.join(gw.dir, "agent-vpc-h.log")
    for method, name, want_rc, want_seen in (("GET", "agent-get/close-first", 0, 2),
                                             ("POST", "agent-post/close-first", 1, 1)):
        warm = k.run(["get", "--raw", base + "warm"])  # leaves a pooled connection in the agent
        mark = gw.mark()
        if method == "GET":
            rc, out, err = k.run(["get", "--raw", base + name])
        else:
            body = os.path.join(gw.dir, "resend-body.json")
            with open(body, "w") as f:
                f.write('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}')
            rc, out, err = k.run(["create", "--raw", base + name, "-f", body])
        time.sleep(0.15)
        recs = [r for r in gw.requests(mark) if r.get("connection") == HOSTILE]
        seen = SEEN.get("/api/v1/namespaces/evil/configmaps/" + name)
        said = "sending the %s again on a new one" % method in open(log).read()
        ok = (warm[0] == 0 and rc == want_rc and seen == want_seen and said == (method == "GET") and len(recs) == 1
              and recs[0].get("status") == (200 if method == "GET" else 502)
              and bool(recs[0].get("reason")) == (method == "POST"))
        result("agent: a %s whose pooled API server connection died unanswered is %s (rc %d, reached the server %d time(s))"
               % (method, "sent again" if method == "GET" else "not sent again", want_rc, want_seen), ok,
               "warm=%r rc=%d seen=%r logged=%r records=%r err=%r" % (warm[0], rc, seen, said, recs, err[-300:]))


def agent_metrics(gw, result, label, sessions, unserved, min_tunnels, min_failures):
    """/metrics: agent sessions taking requests, via: agent connections
    none serves, requests handed to agents and those none could take."""
    got = {n: gw.metric("byline_" + n) for n in ("agent_sessions", "agent_connections_unserved",
                                                  "agent_tunnels_total", "agent_tunnel_failures_total")}
    result("metrics, %s: byline_agent_sessions %d, byline_agent_connections_unserved %d, tunnels and failures counted"
           % (label, sessions, unserved),
           got["agent_sessions"] == sessions and got["agent_connections_unserved"] == unserved and
           (got["agent_tunnels_total"] or 0) >= min_tunnels and (got["agent_tunnel_failures_total"] or 0) >= min_failures,
           repr(got))
    return got


def run_all(env, result, versions):
    gw = AgentGw(env)
    cli_checks(gw, result)
    for v in versions:
        no_agent(gw, result, v)
    agent_metrics(gw, result, "no agent yet (the 503s count as failures)", 0, 2, 0, len(versions))
    gw.start_agent("vpc-a")
    refusals(gw, result)
    for v in versions:
        k = gw.kubectl("agent-reporting", v)
        mark = gw.mark()
        ck.check(k, "get through the agent", ["get", "configmap", "settings", "-n", "web", "-o", "name"],
                 exact="configmap/settings\n")
        attributed(gw, result, mark, r"^kubectl get configmap/settings -n web$", "agent-reporting",
                   "kubectl %s: get via agent audited as agent-reporting, joined by Audit-ID" % v, 200)
        pooled(gw, result, v)
        watch_scale(gw, result, v)
        exec_and_forward(gw, result, v)
        kill_mid_watch(gw, result, v)
    before = agent_metrics(gw, result, "one agent for prod-eks, none for edge", 1, 1, 2 * len(versions), 0)
    resend(gw, result)
    agent_metrics(gw, result, "both connections served", 2, 0, (before["agent_tunnels_total"] or 0) + 4, 0)
    gateway_restart_reconnects(gw, result)
    two_agents(gw, result)
    draining(gw, result)
    key_revoked(gw, result)
    for name, p in gw.agents.items():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = None
            result("agent %s: SIGTERM stops it cleanly (exit 0)" % name, rc == 0, "rc=%r" % rc)
    cred_sources(gw, result)
