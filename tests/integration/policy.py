"""The policy through real kubectl (1.27 over SPDY, 1.33 over WebSocket): a
second byline on the shared stand-in runs the starter policy `byline init`
writes plus the demo's rules (scripts/demo-policy.yaml). agent-reporting may
read and exec `cat /var/log/*` only; agent-deploybot may scale deployments in
web but nothing in kube-system. Denials carry byline's message to kubectl,
are audited with the decision and the rule, and never reach the cluster."""

import os
import re
import subprocess
import time

import check_kubectl as ck
from env import ROOT, Gateway

DEMO_POLICY = os.path.join(ROOT, "scripts", "demo-policy.yaml")


class PolicyGateway(Gateway):
    """byline init + the demo policy + two agents, on the shared stand-in."""

    def __init__(self, env):
        super().__init__(env, "policy-gw")
        if "\n    - policy.yaml\n" not in open(self.config).read():
            raise RuntimeError("byline init wrote no policy include")
        # A copy only its owner may write: byline refuses rule files others may write.
        with open(DEMO_POLICY) as src, open(os.path.join(self.dir, "demo-policy.yaml"), "w") as dst:
            dst.write(src.read())
        os.chmod(os.path.join(self.dir, "demo-policy.yaml"), 0o600)
        self.edit_config(lambda t: t.replace("\n    - policy.yaml\n", "\n    - policy.yaml\n    - demo-policy.yaml\n"))
        for name, group in (("agent-deploybot", "deployers"), ("agent-reporting", "readers")):
            self.add_identity(name, [group])
        self.start()


def denied_never_forwarded(env, recs, label, result):
    """The cluster has no event for any of the denied records."""
    ids = {r["id"] for r in recs}
    seen = [e for e in env.cluster_events() if e["auditID"] in ids]
    result(label, ids and not seen, "ids=%r cluster events=%r" % (sorted(ids), seen[:2]))


def check_denied(env, gw, mark, action_re, actor, rule, label, result, want=1):
    """The denied attempts since `mark` whose action matches: `want` of
    them, each a refused request with decision and rule, none forwarded."""
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if re.search(action_re, r.get("action", ""))]
    ok = len(recs) == want and all(
        r.get("actor") == actor and r.get("result") == "denied" and r.get("status") == 403 and
        r.get("decision") == "denied" and r.get("rule") == rule and r.get("kind") == "result" for r in recs)
    result(label, ok, "want %d denied records by rule %s, got %r" % (want, rule, recs[-4:]))
    denied_never_forwarded(env, recs, label + " (and none reached the cluster)", result)
    return recs


def reporting_checks(env, gw, v, result):
    rep = gw.kubectl("agent-reporting", v)
    transport = "SPDY" if v < "1.30" else "WebSocket, then SPDY"
    mark = gw.mark()
    ck.check(rep, "policy: agent-reporting may read", ["get", "pods", "-n", "web"], contains=["api-0"])
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if r.get("action") == "kubectl get pods -n web"]
    result("kubectl %s: policy: the allowed read is audited with decision allowed and its rule" % v,
           len(recs) == 1 and recs[0].get("decision") == "allowed" and recs[0].get("rule") == "reporting-reads" and
           recs[0].get("status") == 200, repr(recs))
    disc = [r for r in gw.requests(mark) if r.get("request", {}).get("discovery")]
    result("kubectl %s: policy: discovery is evaluated and allowed by the starter rule" % v,
           all(r.get("rule") == "discovery" and r.get("decision") == "allowed" for r in disc), repr(disc[:2]))

    mark = gw.mark()
    ck.check(rep, "policy: agent-reporting may not delete", ["delete", "pod", "api-0", "-n", "web"], want_rc=1,
             stderr_has="byline: agent-reporting may not delete pods in namespace web (rule reporting-read-only)")
    check_denied(env, gw, mark, r"^kubectl delete pod/api-0 -n web$", "agent-reporting", "reporting-read-only",
                 "kubectl %s: policy: the denied delete is audited (decision denied, rule reporting-read-only)" % v,
                 result)

    mark = gw.mark()
    rc, out, err = rep.run(["exec", "-n", "web", "api-0", "--", "cat", "/var/log/byline-%s.log" % v])
    result("kubectl %s: policy: exec cat /var/log/x is allowed (%s) and reaches the pod" % (v, transport),
           rc == 1 and "No such file" in err and "byline:" not in err, "rc=%d err=%r" % (rc, err[-300:]))
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if r.get("action", "").startswith("kubectl exec api-0")]
    result("kubectl %s: policy: the allowed exec is one 101 with rule reporting-cat-logs" % v,
           len(recs) == 1 and recs[0].get("status") == 101 and recs[0].get("rule") == "reporting-cat-logs" and
           recs[0].get("decision") == "allowed", repr(recs))

    for argv in (["cat", "/etc/shadow"], ["cat", "/var/log/../../etc/shadow"], ["sh", "-c", "cat /var/log/x"],
                 ["cat", "/var/log/a", "/etc/passwd"]):
        mark = gw.mark()
        ck.check(rep, "policy: exec %s is denied" % " ".join(argv), ["exec", "-n", "web", "api-0", "--"] + argv,
                 want_rc=1, stderr_has="byline: agent-reporting may not exec %s" % argv[0])
        # 1.33 tries a WebSocket (GET) first and falls back to SPDY (POST): both refused, both audited.
        recs = check_denied(env, gw, mark, r"^kubectl exec api-0 -n web", "agent-reporting", "default-deny",
                            "kubectl %s: policy: denied exec %s is audited per attempt (%s)" % (v, " ".join(argv),
                                                                                              transport),
                            result, want=1 if v < "1.30" else 2)
        if v >= "1.30" and len(recs) == 2:
            result("kubectl %s: policy: the two denied attempts are a WebSocket GET and a SPDY POST" % v,
                   sorted(r.get("method") for r in recs) == ["GET", "POST"], repr([r.get("method") for r in recs]))


def deploybot_checks(env, gw, v, result):
    dep = gw.kubectl("agent-deploybot", v)
    replicas = 6 if v < "1.30" else 7
    mark = gw.mark()
    ck.check(dep, "policy: agent-deploybot may scale in web",
             ["scale", "deployment/api", "--replicas=%d" % replicas, "-n", "web"], exact="deployment.apps/api scaled\n")
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if r.get("action") == "kubectl scale deployment/api --replicas=%d -n web"
            % replicas]
    ok = len(recs) == 1 and recs[0].get("rule") == "deploybot-scale-web" and recs[0].get("decision") == "allowed"
    if ok:
        ok = any(e["auditID"] == recs[0]["id"] for e in env.cluster_events())
    result("kubectl %s: policy: the scale is allowed by deploybot-scale-web and reaches the cluster" % v, ok,
           repr(recs))

    msg = ("byline: agent-deploybot may not get deployments.apps in namespace kube-system "
           "(rule deploybot-hands-off-kube-system)")
    mark = gw.mark()
    # kubectl scale GETs the deployment first; 1.27 drops the server's 403
    # message there and says only that it found nothing to scale.
    ck.check(dep, "policy: agent-deploybot may not scale in kube-system",
             ["scale", "deployment/coredns", "--replicas=2", "-n", "kube-system"], want_rc=1,
             stderr_has=msg if v >= "1.30" else "error: no objects passed to scale")
    check_denied(env, gw, mark, r"-n kube-system", "agent-deploybot", "deploybot-hands-off-kube-system",
                 "kubectl %s: policy: the kube-system scale is denied and audited" % v, result)
    mark = gw.mark()
    ck.check(dep, "policy: agent-deploybot may not read kube-system, and kubectl shows why",
             ["get", "deployment", "coredns", "-n", "kube-system"], want_rc=1, stderr_has=msg)
    check_denied(env, gw, mark, r"-n kube-system", "agent-deploybot", "deploybot-hands-off-kube-system",
                 "kubectl %s: policy: the kube-system read is denied and audited" % v, result)

    mark = gw.mark()
    ck.check(dep, "policy: agent-deploybot may not read pods (no rule allows it)",
             ["get", "pods", "-n", "web"], want_rc=1,
             stderr_has="byline: agent-deploybot may not list pods in namespace web: no rule allows it")
    check_denied(env, gw, mark, r"^kubectl get pods -n web$", "agent-deploybot", "default-deny",
                 "kubectl %s: policy: the default deny is audited as rule default-deny" % v, result)


def run_all(env, result, versions):
    gw = PolicyGateway(env)
    try:
        for v in versions:
            reporting_checks(env, gw, v, result)
            deploybot_checks(env, gw, v, result)
    finally:
        if gw.proc.poll() is None:
            gw.proc.terminate()
            try:
                gw.proc.wait(10)
            except subprocess.TimeoutExpired:
                gw.proc.kill()
