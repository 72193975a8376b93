#!/usr/bin/env python3
"""agent_eks.py - kubectl -> gateway -> byline agent (type: kubernetes-eks)
-> stand-in cluster with its EKS authenticator check.

    python3 tests/integration/agent_eks.py [BYLINE]     (default build/byline)

The agent's AWS credentials come from the environment (the stand-in
account's user alice), its role is assumed at the STS stand-in
(AWS_ENDPOINT_URL_STS), and it mints k8s-aws-v1. tokens the stand-in cluster
verifies independently (tests/standin/eks_auth.py). Checks, with kubectl
1.27 and 1.33:
  - configured in the file: get, watch + scale, exec, port-forward work; the
    byline audit names the byline identity; the cluster's event with the
    same Audit-ID names the assumed role's session (byline:<session_name>);
  - configured by EKS_CLUSTER / EKS_AWS_REGION / EKS_ROLE_ARN /
    KUBERNETES_CLUSTER_URL with per_identity_sessions: each byline identity
    is its own session byline-<identity> in the cluster's log and at STS (one
    AssumeRole each, cached), and a client-sent Byline-Identity is dropped;
  - token refresh: the cluster accepts tokens for 5 s only and the agent
    re-mints every 2 s: a watch keeps streaming across several refreshes and
    requests keep succeeding throughout; with the default re-mint interval
    the same requests fail after 5 s (so the check can fail);
  - a bad kubernetes-eks config is refused with a clear message.
Ends with "N passed, N failed"."""

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "standin"))

import aws_test  # noqa: E402
import check_kubectl as ck  # noqa: E402
from env import allow_all, free_port, ledger_entries, run, wait_port  # noqa: E402

CONN = "prod-eks"
IDS = ("agent-deploybot", "agent-reporting")
PASSED = FAILED = 0


def check(cond, name, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("PASS %s" % name, flush=True)
    else:
        FAILED += 1
        print("FAIL %s %s" % (name, detail), flush=True)
    return cond


class Gw:
    """A gateway whose connection prod-eks is via: agent, two identities, an agent key."""

    def __init__(self, world):
        self.w, self.byline = world, world.byline
        self.dir = world.p("gw")
        self.port = free_port()
        tokf = world.p("admin.token")
        with open(tokf, "w") as f:
            f.write("static-admin-token\n")
        p = run([self.byline, "init", "--dir", self.dir, "--upstream", "https://127.0.0.1:%d" % world.kube_port,
                 "--upstream-ca", world.p("tls", "ca.crt"), "--upstream-token-file", tokf,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("init: " + p.stderr)
        cfg = os.path.join(self.dir, "byline.yaml")
        text = open(cfg).read().replace("\nconnections:\n", "\nconnections:\n  - name: %s\n    via: agent\n" % CONN, 1)
        with open(cfg, "w") as f:
            f.write(text)
        allow_all(self.dir)
        self.kubeconfigs, self.tokens = {}, {}
        for name in IDS:
            p = run([self.byline, "identity", "add", name, "--dir", self.dir])
            self.tokens[name] = p.stdout.strip()
            tf = os.path.join(self.dir, name + ".token")
            with open(tf, "w") as f:
                f.write(self.tokens[name])
            p = run([self.byline, "kubeconfig", name, "--dir", self.dir, "--connection", CONN, "--token-file", tf])
            if p.returncode != 0:
                raise RuntimeError("kubeconfig: " + p.stderr)
            self.kubeconfigs[name] = os.path.join(self.dir, name + ".kubeconfig")
            with open(self.kubeconfigs[name], "w") as f:
                f.write(p.stdout)
        p = run([self.byline, "agent-key", "add", "vpc", "--connection", CONN, "--dir", self.dir])
        if p.returncode != 0:
            raise RuntimeError("agent-key add: " + p.stderr)
        self.key = os.path.join(self.dir, "vpc.key")
        with open(self.key, "w") as f:
            f.write(p.stdout)
        os.chmod(self.key, 0o600)
        self.log_path = os.path.join(self.dir, "serve.log")
        self.proc = subprocess.Popen([self.byline, "serve", "--dir", self.dir], stdout=open(self.log_path, "a"),
                                     stderr=subprocess.STDOUT)
        world.procs.append(self.proc)
        if not wait_port(self.port, self.proc, timeout=30):
            raise RuntimeError("gateway did not start: " + open(self.log_path).read()[-2000:])
        self.agent = None

    def connected(self):
        return len(re.findall(r"agent vpc connected", open(self.log_path).read()))

    def start_agent(self, cfg_text, extra_env=None):
        """Starts an agent with cfg_text; returns (proc, log path) once it is connected."""
        self.stop_agent()
        n = len([x for x in os.listdir(self.dir) if x.startswith("agent-")])
        cfg = os.path.join(self.dir, "agent-%d.yaml" % n)
        with open(cfg, "w") as f:
            f.write(cfg_text)
        env = self.w.source_env("env")
        env.update(extra_env or {})
        log = cfg + ".log"
        before = self.connected()
        self.agent = subprocess.Popen([self.byline, "agent", "--gateway", "https://127.0.0.1:%d" % self.port,
                                       "--key-file", self.key, "--config", cfg, "--log-level", "debug",
                                       "--ca", os.path.join(self.dir, "tls", "ca.crt")],
                                      stdout=open(log, "a"), stderr=subprocess.STDOUT, env=env)
        self.w.procs.append(self.agent)
        deadline = time.time() + 20
        while time.time() < deadline and self.connected() <= before and self.agent.poll() is None:
            time.sleep(0.05)
        if self.connected() <= before:
            raise RuntimeError("agent did not connect: " + open(log).read()[-2000:])
        return self.agent, log

    def stop_agent(self):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGINT)
            self.agent.send_signal(signal.SIGINT)  # twice: stop now, no drain
            try:
                self.agent.wait(10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
        self.agent = None

    def kubectl(self, who, v):
        return ck.Kubectl(type("A", (), {"dir": self.w.dir, "kubeconfig": self.kubeconfigs[who]})(), v)

    def mark(self):
        return len(ledger_entries(os.path.join(self.dir, "audit")))

    def record(self, mark, action_re):
        """The last record (intent and outcome merged) whose action matches, or None."""
        time.sleep(0.2)
        merged, order = {}, []
        for rec in ledger_entries(os.path.join(self.dir, "audit"))[mark:]:
            if "id" in rec:
                if rec["id"] not in merged:
                    order.append(rec["id"])
                merged.setdefault(rec["id"], {}).update(rec)
        recs = [merged[i] for i in order if re.search(action_re, merged[i].get("action", ""))]
        return recs[-1] if recs else None

    def cluster_users(self, audit_id):
        return [e["user"].get("username") for e in self.w.audit_users(0) if e.get("auditID") == audit_id]


def attributed(gw, mark, action_re, actor, cluster_user, label, status=200):
    """The byline record names `actor`; the cluster's events with its Audit-ID name cluster_user."""
    rec = gw.record(mark, action_re)
    why = []
    if rec is None:
        why.append("no byline record for %r" % action_re)
    else:
        if rec.get("actor") != actor or rec.get("connection") != CONN or rec.get("status") != status:
            why.append("record %r" % {k: rec.get(k) for k in ("actor", "connection", "status", "result")})
        users = gw.cluster_users(rec.get("id"))
        if not users or any(u != cluster_user for u in users):
            why.append("cluster users %r, want %r" % (users, cluster_user))
    check(not why, label, "; ".join(why))


def basic(gw, v, session_user):
    """get, watch + scale, exec, port-forward through the agent."""
    rep, dep = gw.kubectl("agent-reporting", v), gw.kubectl("agent-deploybot", v)
    mark = gw.mark()
    rc, out, err = rep.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    check(rc == 0 and out == "configmap/settings\n", "kubectl %s: get through the EKS agent" % v, "rc=%d %r" % (rc, err))
    attributed(gw, mark, r"^kubectl get configmap/settings -n web$", "agent-reporting", session_user,
               "kubectl %s: get: byline names agent-reporting, the cluster names %s" % (v, session_user))
    replicas = 4 if v == "1.27" else 5
    marks = []
    rc, err, lines, _ = ck.watch_while_scaling(rep, dep, replicas, "5s", before=lambda: marks.append(gw.mark()))
    mark = marks[0]
    check(rc == 0 and any("%d/%d" % (replicas, replicas) in ln for ln in lines[1:]),
          "kubectl %s: a watch through the EKS agent sees a scale through it" % v, "rc=%d %r %r" % (rc, err, lines))
    attributed(gw, mark, r"^kubectl scale deployment/api --replicas=%d -n web$" % replicas, "agent-deploybot",
               session_user.replace("agent-reporting", "agent-deploybot"),
               "kubectl %s: scale: byline names agent-deploybot, the cluster the session" % v)
    mark = gw.mark()
    rc, out, err = dep.run(["exec", "-n", "web", "api-0", "-c", "app", "--", "ls", "-la", "/tmp"])
    check(rc == 0 and "total" in out, "kubectl %s: exec through the EKS agent" % v, "rc=%d %r" % (rc, err))
    attributed(gw, mark, r"^kubectl exec api-0 -n web -c app -- ls -la /tmp$", "agent-deploybot",
               session_user.replace("agent-reporting", "agent-deploybot"),
               "kubectl %s: exec audited (101) and joined to the session's event" % v, 101)
    port, bodies, _, _ = ck.port_forward_bodies(dep)
    check(bodies == ["hello from api-0:8080\n"] * 2, "kubectl %s: port-forward through the EKS agent" % v,
          "port=%r bodies=%r" % (port, bodies))


def sts_sessions(world):
    try:
        return [json.loads(ln) for ln in open(world.p("sts.log")) if '"AssumeRole"' in ln]
    except OSError:
        return []


def forged_identity(gw):
    """A client-sent Byline-Identity never reaches the agent: the session stays the caller's."""
    ctx = ssl.create_default_context(cafile=os.path.join(gw.dir, "tls", "ca.crt"))
    mark = gw.mark()
    req = urllib.request.Request("https://127.0.0.1:%d/k8s/%s/api/v1/namespaces/web/configmaps/settings" % (gw.port, CONN),
                                 headers={"Authorization": "Bearer " + gw.tokens["agent-reporting"],
                                          "Byline-Identity": "agent-deploybot"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    check(status == 200, "a request with a client-sent Byline-Identity is served", "status=%r" % status)
    attributed(gw, mark, r"configmap", "agent-reporting", "byline:byline-agent-reporting",
               "a client-sent Byline-Identity is dropped: the session is still the caller's")


def per_identity(gw, world):
    env = {"EKS_CLUSTER": aws_test.CLUSTER, "EKS_AWS_REGION": aws_test.REGION, "EKS_ROLE_ARN": aws_test.ROLE,
           "KUBERNETES_CLUSTER_URL": "https://127.0.0.1:%d" % world.kube_port}
    before = len(sts_sessions(world))
    gw.start_agent("connections:\n  - name: %s\n    type: kubernetes-eks\n    ca: %s\n    per_identity_sessions: true\n"
                   % (CONN, world.p("tls", "ca.crt")), env)
    for v in ("1.27", "1.33"):
        basic(gw, v, "byline:byline-agent-reporting")
    forged_identity(gw)
    sess = [s["session"] for s in sts_sessions(world)[before:]]
    check(sess.count("byline-agent-reporting") == 1 and sess.count("byline-agent-deploybot") == 1,
          "per-identity sessions: one AssumeRole per identity (cached), named byline-<identity>", repr(sess))


def shared_session(gw, world):
    gw.start_agent("connections:\n  - name: %s\n    type: kubernetes-eks\n    cluster_url: https://127.0.0.1:%d\n"
                   "    ca: %s\n    region: %s\n    cluster: %s\n    role_arn: %s\n    session_name: byline-vpc-agent\n"
                   % (CONN, world.kube_port, world.p("tls", "ca.crt"), aws_test.REGION, aws_test.CLUSTER, aws_test.ROLE),
                   # the file wins over the environment: a wrong EKS_CLUSTER here would fail every request
                   {"EKS_CLUSTER": "other-cluster", "KUBERNETES_CLUSTER_URL": "https://127.0.0.1:1"})
    for v in ("1.27", "1.33"):
        basic(gw, v, "byline:byline-vpc-agent")


def refresh(gw, world):
    """The cluster accepts tokens for 5 s; the agent re-mints every 2 s."""
    world.write_eks(window=5)
    cfg = ("connections:\n  - name: %s\n    type: kubernetes-eks\n    cluster_url: https://127.0.0.1:%d\n    ca: %s\n"
           "    region: %s\n    cluster: %s\n    role_arn: %s\n    per_identity_sessions: true\n"
           % (CONN, world.kube_port, world.p("tls", "ca.crt"), aws_test.REGION, aws_test.CLUSTER, aws_test.ROLE))
    _, log = gw.start_agent(cfg + "    token_refresh: 2s\n")
    rep, dep = gw.kubectl("agent-reporting", "1.33"), gw.kubectl("agent-deploybot", "1.33")
    w = rep.popen(["get", "configmaps", "-n", "web", "-w", "--output-watch-events", "-o", "name",
                   "--request-timeout=30s"])
    lines, stamps = [], []

    def reader():
        for ln in iter(w.stdout.readline, b""):
            lines.append(ln.decode(errors="replace").strip())
            stamps.append(time.time())
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(1)
    start, rcs = time.time(), []
    for i in range(14):  # 14 s: seven re-mints, nearly three times the tokens' life
        rc, out, err = dep.run(["create", "configmap", "refresh-%d" % i, "-n", "web"])
        rc2, out2, err2 = rep.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
        rcs.append((rc, rc2, (err + err2)[-200:]))
        time.sleep(max(0, start + i + 1 - time.time()))
    late = [ln for ln, ts in zip(lines, stamps) if ts > start + 11 and "refresh-" in ln]
    check(all(a == 0 and b == 0 for a, b, _ in rcs), "refresh: 28 requests over 14 s all succeed (tokens live 5 s)",
          repr([r for r in rcs if r[0] or r[1]][:3]))
    check(w.poll() is None and len([ln for ln in lines if "refresh-" in ln]) == 14 and late,
          "refresh: one watch streams all 14 creates across several token refreshes",
          "alive=%r lines=%r" % (w.poll() is None, lines[-5:]))
    w.kill()
    mints = len(re.findall(r"minted a token for identity agent-deploybot", open(log).read()))
    check(mints >= 5, "refresh: the agent re-minted the token at least 5 times", "mints=%d" % mints)
    # The control: the default interval (10 min) outlives the 5 s window, so requests fail.
    gw.start_agent(cfg)
    rc, _, _ = rep.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    time.sleep(6.5)
    rc2, _, err = rep.run(["get", "configmap", "settings", "-n", "web", "-o", "name"])
    check(rc == 0 and rc2 != 0 and "nauthorized" in err,
          "refresh control: without re-minting the 5 s token is refused after it expires", "rc=%d rc2=%d %r" % (rc, rc2, err))
    world.write_eks(window=900)


def bad_configs(gw, world):
    cases = [
        ("    type: kubernetes-eks\n    cluster_url: https://127.0.0.1:1\n    region: us-east-1\n",
         "kubernetes-eks needs cluster (or EKS_CLUSTER)"),
        ("    type: kubernetes-eks\n    cluster_url: https://127.0.0.1:1\n    region: us-east-1\n    cluster: c\n"
         "    per_identity_sessions: true\n", "per_identity_sessions needs role_arn (or EKS_ROLE_ARN)"),
        ("    type: kubernetes-eks\n    cluster_url: https://127.0.0.1:1\n    region: us-east-1\n    cluster: c\n"
         "    token: x\n", "type kubernetes-eks mints its own tokens"),
        ("    type: kubernetes-gke\n", "type must be kubernetes-eks"),
        ("    server: https://127.0.0.1:1\n    token: x\n    region: us-east-1\n", "go with type: kubernetes-eks"),
        ("    type: kubernetes-eks\n    cluster_url: https://127.0.0.1:1\n    region: us-east-1\n    cluster: bad.name\n",
         "cluster name must be"),
    ]
    for i, (body, want) in enumerate(cases):
        cfg = world.p("bad-%d.yaml" % i)
        with open(cfg, "w") as f:
            f.write("connections:\n  - name: %s\n%s" % (CONN, body))
        env = world.base_env()
        p = subprocess.run([gw.byline, "agent", "--gateway", "https://127.0.0.1:%d" % gw.port, "--key-file", gw.key,
                            "--config", cfg], capture_output=True, text=True, timeout=30, env=env)
        check(p.returncode != 0 and want in p.stderr, "config refused: %s" % want, "rc=%d %r" % (p.returncode, p.stderr[-300:]))


def main():
    byline = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "byline")
    world = aws_test.World(byline)
    os.environ["ASAN_OPTIONS"] = "detect_leaks=1:log_path=" + world.p("asan")
    os.environ["UBSAN_OPTIONS"] = "print_stacktrace=1:log_path=" + world.p("ubsan")
    gw = None
    try:
        world.setup()
        gw = Gw(world)
        bad_configs(gw, world)
        shared_session(gw, world)
        per_identity(gw, world)
        refresh(gw, world)
        gw.stop_agent()
        gw.proc.send_signal(signal.SIGTERM)
        gw.proc.wait(15)
        reports = [n for n in os.listdir(world.dir) if n.startswith(("asan.", "ubsan."))]
        check(not reports, "no sanitizer reports from the gateway or the agents",
              " ".join(open(world.p(n)).read()[:600] for n in reports[:2]))
    except Exception as e:  # a broken harness is a failure, not a pass
        check(False, "harness", repr(e))
    finally:
        if os.environ.get("KEEP"):
            print("kept %s" % world.dir)
            world.stop = lambda: [p.kill() for p in world.procs]
        world.stop()
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
