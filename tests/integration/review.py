"""The review flow through real kubectl (docs/POLICY.md "Review"): a second
byline on the shared stand-in has a `review` rule on deleting pods in web.
agent-deploybot's `kubectl delete pod` is refused with a review id in
kubectl's error; `byline review approve ID --as alice --for 3s` lets exactly
that command through (the stand-in receives it, the records carry the review
id and the approver); after the window the same command is held again under
a new review. Self-approval and a reviewer outside the reviewer group are
refused; deny works; the ledger links request, decision and execution, and
`byline audit verify` passes."""

import os
import re
import time

import check_kubectl as ck
from env import Gateway, run

RULES = """rules:
  - name: deploybot-pods-web
    effect: allow
    identities: [agent-deploybot]
    verbs: [get, list, watch, create, delete]
    resources: [pods]
    namespaces: [web]
  - name: prod-deletes
    effect: review
    identities: [agent-deploybot]
    verbs: [delete]
    resources: [pods]
    namespaces: [web]
  - name: deploybot-deploys-web
    effect: allow
    identities: [agent-deploybot]
    verbs: [get, list, patch]
    resources: [deployments]
    apiGroups: [apps]
    namespaces: [web]
  - name: deploy-patches
    effect: review
    identities: [agent-deploybot]
    verbs: [patch]
    resources: [deployments]
    apiGroups: [apps]
    namespaces: [web]
  - name: deploybot-exec-web
    effect: review
    identities: [agent-deploybot]
    resources: [pods/exec]
    namespaces: [web]
"""

EXEC_ID = re.compile(r"review (r-[0-9a-z]{10}) is pending")

REVIEW_ID = re.compile(r"review (r-[0-9a-z]{10}) is pending: an operator runs byline review approve (r-[0-9a-z]{10})")


class ReviewGateway(Gateway):
    """byline init + the rules above; identities agent-deploybot (deployers,
    reviewers: so that its self-approval reaches the self check), alice
    (reviewers) and bob (no reviewer)."""

    def __init__(self, env, name="review-gw", policy_extra=""):
        super().__init__(env, name)
        with open(os.path.join(self.dir, "review-rules.yaml"), "w") as f:
            f.write(RULES)
        text = open(self.config).read()
        if "\npolicy:\n" not in text or "\n    - policy.yaml\n" not in text:
            raise RuntimeError("byline init wrote no policy include: " + text[-400:])
        self.edit_config(lambda t: t.replace("\n    - policy.yaml\n", "\n    - policy.yaml\n    - review-rules.yaml\n")
                         .replace("\npolicy:\n", "\npolicy:\n  review_window: 10m\n  review_expire: 1h\n" + policy_extra))
        self.add_identity("agent-deploybot", ["deployers", "reviewers"])
        self.add_identity("alice", ["reviewers"], kubeconfig=False)
        self.add_identity("bob", ["ops"], kubeconfig=False)
        self.kubeconfig = self.kubeconfigs["agent-deploybot"]
        self.start()

    def kubectl(self, version):
        return Gateway.kubectl(self, "agent-deploybot", version)

    def review(self, *args):
        return run([self.env.byline, "review"] + list(args) + ["--dir", self.dir])


def held(gw, k, pod, label, result):
    """kubectl delete pod is refused with a review id; returns the id (or None)."""
    rc, out, err = k.run(["delete", "pod", pod, "-n", "web"])
    m = REVIEW_ID.search(err)
    result("kubectl %s: review: %s: the delete is refused with a review id and the approve hint" % (k.version, label),
           rc == 1 and m is not None and m.group(1) == m.group(2) and
           "byline: agent-deploybot needs human review to delete pods in namespace web (rule prod-deletes)" in err,
           "rc=%d err=%r" % (rc, err[-400:]))
    return m.group(1) if m else None


def held_record(env, gw, mark, rid, pod, label, result):
    """The refused delete's record: a 403 result with decision review and the review id, never forwarded."""
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if r.get("action") == "kubectl delete pod/%s -n web" % pod]
    ok = len(recs) >= 1 and all(r.get("kind") == "result" and r.get("status") == 403 and r.get("decision") == "review"
                                and r.get("rule") == "prod-deletes" and r.get("review") == rid for r in recs)
    result("review: %s: the refused delete's record has decision review, status 403 and review %s" % (label, rid),
           ok, repr(recs[-2:]))
    ids = {r["id"] for r in recs}
    seen = [e for e in env.cluster_events() if e["auditID"] in ids]
    result("review: %s: the refused delete never reached the cluster" % label, ids and not seen, repr(seen[:1]))


def flow(env, gw, v, result):
    k = gw.kubectl(v)
    pod = "rv-%s" % v.replace(".", "-")
    ck.check(k, "review: create a pod to delete", ["run", pod, "-n", "web", "--image=nginx", "--restart=Never"],
             contains=["created"])
    mark = len(gw.entries())
    rid = held(gw, k, pod, "first attempt", result)
    if rid is None:
        return
    held_record(env, gw, mark, rid, pod, "first attempt", result)
    rid2 = held(gw, k, pod, "second attempt before a decision", result)
    result("kubectl %s: review: a second identical request reuses the pending review" % v, rid2 == rid,
           "%r != %r" % (rid2, rid))

    p = gw.review("list")
    result("review: list shows the pending review", p.returncode == 0 and rid in p.stdout and "pending" in p.stdout,
           p.stdout + p.stderr)
    p = gw.review("approve", rid, "--as", "agent-deploybot")
    result("review: an identity cannot approve its own request", p.returncode == 1 and
           "agent-deploybot cannot decide review %s: it is that identity's own request" % rid in p.stderr, p.stderr)
    p = gw.review("approve", rid, "--as", "bob")
    result("review: an identity outside the reviewer group cannot approve", p.returncode == 1 and
           'bob cannot decide reviews: it is not in the reviewer group "reviewers"' in p.stderr, p.stderr)
    p = gw.review("approve", rid, "--as", "nobody")
    result("review: an unknown reviewer is refused", p.returncode == 1 and "is not an identity" in p.stderr, p.stderr)

    window = 4
    p = gw.review("approve", rid, "--as", "alice", "--for", "%ds" % window)
    approved_at = time.time()
    result("review: alice approves for %ds" % window, p.returncode == 0 and
           "review %s approved by alice" % rid in p.stdout, p.stdout + p.stderr)
    p = gw.review("approve", rid, "--as", "alice")
    result("review: a decided review cannot be decided again", p.returncode == 1 and "is approved already" in p.stderr,
           p.stderr)

    mark = len(gw.entries())
    ck.check(k, "review: the approved delete goes through", ["delete", "pod", pod, "-n", "web", "--wait=false"],
             contains=['pod "%s" deleted' % pod])
    time.sleep(0.3)
    ents = gw.entries(mark)
    notes = [e for e in ents if e.get("kind") == "notice" and e.get("review") == rid]
    result("review: the ledger has the approval as a notice (event review-approved, reviewer, window)",
           len(notes) == 1 and notes[0].get("event") == "review-approved" and notes[0].get("reviewer") == "alice" and
           notes[0].get("actor") == "agent-deploybot" and notes[0].get("rule") == "prod-deletes" and
           "until" in notes[0] and notes[0].get("action") == "kubectl delete pod/%s -n web" % pod, repr(notes))
    recs = [r for r in gw.requests(mark) if r.get("action") == "kubectl delete pod/%s -n web" % pod]
    ok = len(recs) == 1 and recs[0].get("review") == rid and recs[0].get("approved_by") == "alice" and \
        recs[0].get("decision") == "allowed" and recs[0].get("status") == 200 and recs[0].get("rule") == "prod-deletes"
    intents = [e for e in ents if e.get("kind") == "intent" and e.get("review") == rid]
    result("review: the execution's intent and result carry review %s and approved_by alice" % rid,
           ok and len(intents) == 1, repr(recs))
    order = [i for i, e in enumerate(ents) if (e.get("kind") == "notice" and e.get("review") == rid) or
             (e.get("kind") == "intent" and e.get("review") == rid)]
    result("review: the approval notice precedes the execution in the ledger",
           len(order) == 2 and ents[order[0]].get("kind") == "notice", repr(order))
    seen = [e for e in env.cluster_events() if recs and e["auditID"] == recs[0]["id"]]
    result("review: the stand-in cluster received the approved delete under its Audit-ID",
           len(seen) >= 1 and seen[0].get("verb") == "delete", repr(seen[:1]))

    # After the window, the same command is held again, under a new review.
    ck.check(k, "review: create the pod again", ["run", pod, "-n", "web", "--image=nginx", "--restart=Never"],
             contains=["created"])
    time.sleep(max(0.0, approved_at + window + 0.5 - time.time()))
    mark = len(gw.entries())
    rid3 = held(gw, k, pod, "after the window", result)
    result("kubectl %s: review: after the window the same command opens a new review" % v,
           rid3 is not None and rid3 != rid, "%r vs %r" % (rid3, rid))
    if rid3 is None:
        return
    held_record(env, gw, mark, rid3, pod, "after the window", result)

    p = gw.review("deny", rid3, "--as", "alice")
    result("review: deny needs --reason", p.returncode == 2 and "--reason" in p.stderr, p.stderr)
    p = gw.review("deny", rid3, "--as", "alice", "--reason", "not during the freeze")
    result("review: alice denies", p.returncode == 0 and "review %s denied by alice" % rid3 in p.stdout,
           p.stdout + p.stderr)
    # No request comes back: the gateway's poll (every 2 s) writes the denial into the ledger.
    notes = []
    for _ in range(50):
        notes = [e for e in gw.entries() if e.get("kind") == "notice" and e.get("review") == rid3]
        if notes:
            break
        time.sleep(0.1)
    result("review: the ledger has the denial as a notice with its reason, before any further request",
           len(notes) == 1 and notes[0].get("event") == "review-denied" and
           notes[0].get("reason") == "not during the freeze" and notes[0].get("reviewer") == "alice", repr(notes))
    p = gw.review("show", rid3, "--json")
    result("review: show --json says denied, by whom and why", p.returncode == 0 and
           '"state":"denied"' in p.stdout and '"reviewer":"alice"' in p.stdout and "freeze" in p.stdout,
           p.stdout + p.stderr)
    rid4 = held(gw, k, pod, "after a denial", result)
    result("kubectl %s: review: after a denial the command is held under a new review" % v,
           rid4 not in (None, rid3), "%r vs %r" % (rid4, rid3))
    time.sleep(0.2)
    notes = [e for e in gw.entries() if e.get("kind") == "notice" and e.get("review") == rid3]
    result("review: the denial is in the ledger once", len(notes) == 1, repr(notes))
    p = gw.review("list", "--all", "--json")
    states = {}
    for line in p.stdout.splitlines():
        m = re.search(r'"id":"(r-[0-9a-z]+)"', line)
        s = re.search(r'"state":"([a-z]+)"', line)
        if m and s:
            states[m.group(1)] = s.group(1)
    result("review: list --all --json has every review and its state",
           states.get(rid) == "approved" and states.get(rid3) == "denied" and states.get(rid4) == "pending", repr(states))


def exec_flow(env, gw, v, result):
    """An approval of one exec argv grants exactly that argv, over 1.33's
    WebSocket and 1.27's SPDY alike."""
    k = gw.kubectl(v)
    argv = ["exec", "api-0", "-n", "web", "--", "cat", "/etc/hostname-%s" % v]
    rc, out, err = k.run(argv)
    m = EXEC_ID.search(err)
    result("kubectl %s: review: an exec a review rule matches is held with a review id" % v,
           rc == 1 and m is not None and "(rule deploybot-exec-web)" in err, "rc=%d err=%r" % (rc, err[-400:]))
    if m is None:
        return
    rid = m.group(1)
    ids = set(EXEC_ID.findall(err))
    result("kubectl %s: review: one review however many transports kubectl tried" % v, ids == {rid}, repr(ids))
    p = gw.review("approve", rid, "--as", "alice", "--for", "5m")
    result("review: alice approves the exec", p.returncode == 0, p.stdout + p.stderr)
    mark = len(gw.entries())
    rc, out, err = k.run(argv)
    result("kubectl %s: review: the approved exec runs in the pod" % v,
           rc == 1 and "No such file" in err and "byline:" not in err, "rc=%d err=%r" % (rc, err[-300:]))
    time.sleep(0.2)
    recs = [r for r in gw.requests(mark) if r.get("action", "").startswith("kubectl exec api-0")]
    result("kubectl %s: review: the exec's records carry the review and approver, status 101" % v,
           len(recs) == 1 and recs[0].get("review") == rid and recs[0].get("approved_by") == "alice" and
           recs[0].get("status") == 101, repr(recs))
    rc, out, err = k.run(["exec", "api-0", "-n", "web", "--", "cat", "/etc/passwd"])
    m2 = EXEC_ID.search(err)
    result("kubectl %s: review: another argv is not covered by the approval" % v,
           rc == 1 and m2 is not None and m2.group(1) != rid, "rc=%d err=%r" % (rc, err[-300:]))


def patch_flow(env, gw, v, result):
    """An approval covers exactly the body it was asked for: the same patch
    goes through, another patch of the same object is held again."""
    k = gw.kubectl(v)
    argv = ["patch", "deployment", "api", "-n", "web", "--type", "merge", "-p"]
    rc, out, err = k.run(argv + ['{"metadata":{"labels":{"reviewed":"yes"}}}'])
    m = EXEC_ID.search(err)
    result("kubectl %s: review: a patch a review rule matches is held with a review id" % v,
           rc == 1 and m is not None and "(rule deploy-patches)" in err, "rc=%d err=%r" % (rc, err[-400:]))
    if m is None:
        return
    rid = m.group(1)
    p = gw.review("approve", rid, "--as", "alice", "--for", "5m")
    result("review: alice approves the patch", p.returncode == 0, p.stdout + p.stderr)
    rc, out, err = k.run(argv + ['{"metadata":{"labels":{"reviewed":"yes"}}}'])
    result("kubectl %s: review: the approved patch goes through" % v, rc == 0 and "patched" in out,
           "rc=%d out=%r err=%r" % (rc, out[-200:], err[-300:]))
    rc, out, err = k.run(argv + ['{"metadata":{"labels":{"reviewed":"no"}}}'])
    m2 = EXEC_ID.search(err)
    result("kubectl %s: review: a different body for the same object is not covered by the approval" % v,
           rc == 1 and m2 is not None and m2.group(1) != rid, "rc=%d err=%r" % (rc, err[-300:]))


def pending_for(gw, pod, timeout=10):
    """Waits until a pending review for deleting `pod` is listed; returns its id or None."""
    end = time.time() + timeout
    while time.time() < end:
        for line in gw.review("list", "--json").stdout.splitlines():
            if '"state":"pending"' in line and "pod/%s " % pod in line:
                return re.search(r'"id":"(r-[0-9a-z]{10})"', line).group(1)
        time.sleep(0.1)
    return None


def hold_flow(env, result, v="1.33"):
    """policy.review_hold: 6s keeps the request open for the decision."""
    gw = ReviewGateway(env, "review-hold-gw", "  review_hold: 6s\n")
    try:
        k = gw.kubectl(v)
        for pod, decide in (("hold-a", "approve"), ("hold-b", "deny"), ("hold-c", None)):
            ck.check(k, "review hold: create %s" % pod, ["run", pod, "-n", "web", "--image=nginx", "--restart=Never"],
                     contains=["created"])
            mark = len(gw.entries())
            t0 = time.time()
            proc = k.popen(["delete", "pod", pod, "-n", "web", "--wait=false"])
            rid = pending_for(gw, pod)
            result("review hold: %s: the delete waits, held under pending review %s" % (pod, rid),
                   rid is not None and proc.poll() is None, "rid=%r rc=%r" % (rid, proc.poll()))
            if decide == "approve":
                gw.review("approve", rid, "--as", "alice", "--for", "1m")
            elif decide == "deny":
                gw.review("deny", rid, "--as", "alice", "--reason", "hold denied")
            out, err = proc.communicate(timeout=30)
            out, err, took = out.decode(), err.decode(), time.time() - t0
            time.sleep(0.2)
            recs = [r for r in gw.requests(mark) if r.get("action") == "kubectl delete pod/%s -n web" % pod]
            if decide == "approve":
                result("review hold: the approved delete completes on the same request",
                       proc.returncode == 0 and 'pod "%s" deleted' % pod in out and took < 5,
                       "rc=%r took %.1fs out=%r err=%r" % (proc.returncode, took, out, err[-300:]))
                result("review hold: one record, allowed via the review", len(recs) == 1 and
                       recs[0].get("review") == rid and recs[0].get("approved_by") == "alice" and
                       recs[0].get("status") == 200, repr(recs))
            elif decide == "deny":
                result("review hold: the denied delete ends with the reviewer's reason",
                       proc.returncode == 1 and "byline: review %s was denied by alice: hold denied" % rid in err and
                       took < 5, "rc=%r took %.1fs err=%r" % (proc.returncode, took, err[-300:]))
                result("review hold: one 403 record with the review", len(recs) == 1 and recs[0].get("status") == 403
                       and recs[0].get("review") == rid, repr(recs))
            else:
                result("review hold: undecided, the hold ends after review_hold with the pending message",
                       proc.returncode == 1 and "review %s is pending" % rid in err and 5.5 < took < 12,
                       "rc=%r took %.1fs err=%r" % (proc.returncode, took, err[-300:]))
    finally:
        gw.stop()


def run_all(env, result, versions):
    gw = ReviewGateway(env)
    try:
        for v in versions:
            flow(env, gw, v, result)
            exec_flow(env, gw, v, result)
        patch_flow(env, gw, versions[-1], result)
        hold_flow(env, result)
        p = run([env.byline, "audit", "verify", "--dir", gw.dir])
        result("review: byline audit verify passes on the ledger with review notices", p.returncode == 0,
               p.stdout[-600:] + p.stderr[-600:])
    finally:
        gw.stop()
