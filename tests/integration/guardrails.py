"""Guardrails for agents through real kubectl (docs/POLICY.md "Rate limits",
"Built-in rules", "Dry-run-only mode"), on two more bylines in front of the
shared stand-in:

- rate limits: an identity with `writes: 1/m` scales once; its second scale
  gets a 429 TooManyRequests with Retry-After (kubectl -v=8 shows both; client-go
  then sleeps for Retry-After and retries, so the test stops it), the record
  says result limited, status 429 and the limit's name, and the cluster never
  sees it; meanwhile another identity's scale goes through; /metrics counts
  the 429 under class writes;
- blast radius: `kubectl delete pods --all -n web` is held for review by the
  built-in rule (nothing is deleted), while on a gateway with
  `builtin: {blast_radius: false}` and a rule allowing it, `kubectl delete
  configmaps --all -n guard-blast` deletes;
- dry-run-only: the rookie's `kubectl scale --dry-run=server` passes, its
  plain scale is refused with a message naming --dry-run=server."""

import os
import re
import time

import check_kubectl as ck
from env import Gateway, run

RULES = """rules:
  - name: web-deployments
    effect: allow
    groups: [deployers]
    verbs: [get, list, watch, patch, update]
    apiGroups: [apps]
    resources: [deployments, deployments/scale]
    namespaces: [web]
  - name: cleaner-pods
    effect: allow
    identities: [agent-cleaner]
    verbs: [get, list, delete, deletecollection]
    resources: [pods, configmaps]
  - name: cleaner-setup
    effect: allow
    identities: [agent-cleaner]
    verbs: [get, create]
    resources: [namespaces, configmaps]
"""

GUARD = """  limits:
    - name: slow-writes
      identities: [%s]
      writes: 1/m
    - name: deployers-default
      groups: [deployers]
      reads: 100/s burst 200
      writes: 50/s
  dry_run_only:
    identities: [agent-rookie]
"""


class GuardGateway(Gateway):
    """byline init + RULES; `blast` False adds builtin: {blast_radius: false}."""

    def __init__(self, env, name, versions, blast=True):
        super().__init__(env, name)
        with open(os.path.join(self.dir, "guard-rules.yaml"), "w") as f:
            f.write(RULES)
        text = open(self.config).read()
        if "\npolicy:\n" not in text or "\n    - policy.yaml\n" not in text:
            raise RuntimeError("byline init wrote no policy include: " + text[-400:])
        slow = ", ".join("agent-slow-" + v.replace(".", "") for v in versions)
        extra = GUARD % slow + ("" if blast else "  builtin:\n    blast_radius: false\n")
        self.edit_config(lambda t: t.replace("\n    - policy.yaml\n", "\n    - policy.yaml\n    - guard-rules.yaml\n"
                                             + extra))
        self.enable_metrics()
        p = run([env.byline, "config", "check", "--dir", self.dir])
        if p.returncode != 0:
            raise RuntimeError("config check: " + p.stdout + p.stderr)
        names = ["agent-fast", "agent-rookie", "agent-cleaner"] + ["agent-slow-" + v.replace(".", "") for v in versions]
        for ident in names:
            self.add_identity(ident, ["deployers" if ident != "agent-cleaner" else "cleaners"])
        self.start()


def never_forwarded(env, recs):
    ids = {r["id"] for r in recs}
    return bool(ids) and not [e for e in env.cluster_events() if e["auditID"] in ids]


def replicas(k):
    rc, out, err = k.run(["get", "deployment", "api", "-n", "web", "-o", "jsonpath={.spec.replicas}"])
    return int(out) if rc == 0 and out.strip().isdigit() else 2


def wait_records(gw, mark, pred, timeout=8.0):
    deadline = time.time() + timeout
    while True:
        recs = [r for r in gw.requests(mark) if pred(r)]
        if recs or time.time() > deadline:
            return recs
        time.sleep(0.1)


def rate_checks(env, gw, v, result):
    slow_id = "agent-slow-" + v.replace(".", "")
    slow, fast = gw.kubectl(slow_id, v), gw.kubectl("agent-fast", v)
    n = replicas(fast)
    scale = ["scale", "deployment/api", "--replicas=%d" % n, "-n", "web"]
    ck.check(slow, "guard: the first write of a writes: 1/m identity passes", scale,
             exact="deployment.apps/api scaled\n")
    before = gw.metric('byline_requests_limited_total{class="writes"}') or 0
    mark = gw.mark()
    # client-go honours a 429's Retry-After: it sleeps that long and retries
    # (up to 10 times), so kubectl would succeed a minute later. Watch it get
    # the 429, let another identity write meanwhile, then stop it.
    p = slow.popen(["-v=8"] + scale)
    recs = wait_records(gw, mark, lambda r: r.get("actor") == slow_id and r.get("result") == "limited")
    rc, out, err = fast.run(scale)
    result("kubectl %s: guard: another identity's scale succeeds while agent-slow is limited" % v,
           rc == 0 and out == "deployment.apps/api scaled\n", "rc=%d out=%r err=%r" % (rc, out, err[-300:]))
    time.sleep(1.0)
    p.kill()
    _, perr = p.communicate()
    perr = perr.decode(errors="replace")
    ok = len(recs) >= 1 and all(r.get("status") == 429 and r.get("rule") == "slow-writes" and r.get("kind") == "result"
                                and r.get("action") == "kubectl scale deployment/api --replicas=%d -n web" % n and
                                "over its writes limit of 1/m (limit slow-writes)" in r.get("reason", "")
                                for r in recs)
    result("kubectl %s: guard: the second scale is audited as limited, status 429, limit slow-writes" % v, ok,
           repr(recs[:2]))
    result("kubectl %s: guard: the limited scale never reached the cluster" % v, never_forwarded(env, recs),
           repr([r.get("id") for r in recs]))
    m = re.search(r"Retry-After: (\d+)", perr)
    result("kubectl %s: guard: kubectl got 429 Too Many Requests with Retry-After (seconds, <= 60)" % v,
           "429 Too Many Requests" in perr and m is not None and 1 <= int(m.group(1)) <= 60,
           "stderr tail=%r" % perr[-1500:])
    after = gw.metric('byline_requests_limited_total{class="writes"}')
    result("kubectl %s: guard: byline_requests_limited_total{class=\"writes\"} counts it" % v,
           after is not None and after >= before + 1, "before=%r after=%r" % (before, after))
    fast_recs = [r for r in gw.requests(mark) if r.get("actor") == "agent-fast"]
    result("kubectl %s: guard: the other identity was never limited" % v,
           fast_recs and all(r.get("result") == "allowed" for r in fast_recs), repr(fast_recs[-2:]))


def dry_run_checks(env, gw, v, result):
    rookie = gw.kubectl("agent-rookie", v)
    n = replicas(gw.kubectl("agent-fast", v))
    scale = ["scale", "deployment/api", "--replicas=%d" % n, "-n", "web"]
    ck.check(rookie, "guard: a dry-run-only identity's scale --dry-run=server passes", scale + ["--dry-run=server"],
             contains=["deployment.apps/api scaled"])
    mark = gw.mark()
    ck.check(rookie, "guard: its plain scale is refused and told to use --dry-run=server", scale, want_rc=1,
             stderr_has="byline: agent-rookie is in dry-run-only mode: it may only rehearse writes; "
                        "run it again with --dry-run=server")
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if r.get("actor") == "agent-rookie" and r.get("result") == "denied"]
    ok = len(recs) == 1 and recs[0].get("status") == 403 and recs[0].get("rule") == "builtin-dry-run-only" and \
        recs[0].get("decision") == "denied"
    result("kubectl %s: guard: the refused write is audited (rule builtin-dry-run-only)" % v, ok, repr(recs))
    result("kubectl %s: guard: ...and never reached the cluster" % v, never_forwarded(env, recs), "")


def blast_checks(env, gw, v, result):
    cleaner = gw.kubectl("agent-cleaner", v)
    mark = gw.mark()
    ck.check(cleaner, "guard: kubectl delete pods --all -n web is held for review by default",
             ["delete", "pods", "--all", "-n", "web"], want_rc=1,
             stderr_has="byline: agent-cleaner needs human review to delete pods in bulk in namespace web "
                        "(rule builtin-blast-radius)")
    time.sleep(0.2)
    recs = gw.requests(mark)
    held = [r for r in recs if r.get("rule") == "builtin-blast-radius"]
    result("kubectl %s: guard: the held list is audited (decision review, rule builtin-blast-radius)" % v,
           len(held) == 1 and held[0].get("decision") == "review" and held[0].get("status") == 403,
           repr(recs[-3:]))
    deletes = [r for r in recs if r.get("request", {}).get("verb") in ("delete", "deletecollection")]
    result("kubectl %s: guard: nothing was deleted" % v, not deletes and never_forwarded(env, held), repr(deletes))


def blast_off_checks(env, gw, v, result):
    cleaner = gw.kubectl("agent-cleaner", v)
    ns = "guard-blast-" + v.replace(".", "")
    cleaner.run(["create", "namespace", ns])
    for cm in ("a", "b"):
        cleaner.run(["create", "configmap", cm, "-n", ns, "--from-literal=k=v"])
    rc, out, err = cleaner.run(["delete", "configmaps", "--all", "-n", ns])
    result("kubectl %s: guard: with blast_radius: false and a rule allowing it, delete --all goes through" % v,
           rc == 0 and 'configmap "a" deleted' in out and 'configmap "b" deleted' in out,
           "rc=%d out=%r err=%r" % (rc, out, err[-300:]))


def run_all(env, result, versions):
    gw = GuardGateway(env, "guard-gw", versions)
    off = None
    try:
        for v in versions:
            rate_checks(env, gw, v, result)
            dry_run_checks(env, gw, v, result)
            blast_checks(env, gw, v, result)
        off = GuardGateway(env, "guard-gw-off", versions, blast=False)
        for v in versions:
            blast_off_checks(env, off, v, result)
    finally:
        gw.stop()
        if off:
            off.stop()
