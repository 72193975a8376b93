#!/usr/bin/env python3
"""byline's integration tests: the real kubectl (1.27 and 1.33) through byline
to the stand-in kube-apiserver, plus wire-level checks of what byline refuses.

    python3 tests/integration/run.py [--byline build/asan/byline] [-k SUBSTRING] [--keep]

Prints one PASS/FAIL line per check, then "N passed, N failed", and writes the
two counts to build/integration-summary for tests/run.sh."""

import argparse
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "standin"))

import check_kubectl as ck  # noqa: E402  (the stand-in's kubectl driver: Kubectl, check, result)
from env import ROOT, SHARED_USER, Env  # noqa: E402

import agent  # noqa: E402
import capture  # noqa: E402
import guardrails  # noqa: E402
import identity_lifecycle  # noqa: E402
import jwt_identity  # noqa: E402
import ledger  # noqa: E402
import limits  # noqa: E402
import policy  # noqa: E402
import reload  # noqa: E402
import review  # noqa: E402
import wire  # noqa: E402

result = ck.result
VERSIONS = os.environ.get("KUBECTL_VERSIONS", "1.27 1.33").split()


class Agent:
    """What ck.Kubectl needs: a working directory and a kubeconfig."""

    def __init__(self, env, name):
        self.dir = env.dir
        self.kubeconfig = env.kubeconfigs[name]
        self.name = name


def kubectl(env, agent, version):
    return ck.Kubectl(Agent(env, agent), version)


def one_record(env, mark, action_re, label):
    """Returns the single byline request since `mark` whose action matches."""
    recs = [r for r in env.byline_requests(mark) if re.search(action_re, r.get("action", ""))]
    if len(recs) != 1:
        result(label, False, "want 1 record matching %r, got %d: %r" % (
            action_re, len(recs), [r.get("action") for r in env.byline_requests(mark)][-8:]))
        return None
    return recs[0]


def attributed(env, mark, action_re, actor, label, status=None, result_="allowed"):
    """Checks byline's record for an action and the cluster's event joined on its id."""
    time.sleep(0.1)  # the result line follows the response by a moment
    rec = one_record(env, mark, action_re, label)
    if rec is None:
        return None
    why = []
    if rec.get("actor") != actor:
        why.append("actor %r" % rec.get("actor"))
    if rec.get("result") != result_:
        why.append("result %r (reason %r)" % (rec.get("result"), rec.get("reason")))
    if status is not None and rec.get("status") != status:
        why.append("status %r" % rec.get("status"))
    if result_ == "allowed":
        evs = [e for e in env.cluster_events() if e["auditID"] == rec["id"]]
        if not evs:
            why.append("no cluster audit event with auditID %s" % rec["id"])
        elif any(e["user"].get("username") != SHARED_USER for e in evs):
            why.append("cluster event user %r" % evs[0]["user"])
    result(label, not why, "; ".join(why) + " record=%r" % rec)
    return rec


def watch_during_scale(env, v):
    label = "kubectl %s: get -w through byline sees another agent's scale" % v
    reader = kubectl(env, "agent-reporting", v)
    writer = kubectl(env, "agent-deploybot", v)
    replicas = 3 if v == "1.27" else 4
    marks = []
    rc, err, lines, werr = ck.watch_while_scaling(reader, writer, replicas, before=lambda: marks.append(env.mark()))
    mark = marks[0]
    want = "%d/%d" % (replicas, replicas)
    ok = rc == 0 and any(want in ln for ln in lines[1:]) and not ck.unexpected_stderr(werr)
    result(label, ok, "scale rc=%d, watch lines=%r stderr=%r" % (rc, lines, werr))
    attributed(env, mark, r"^kubectl scale deployment/api --replicas=%d -n web$" % replicas,
               "agent-deploybot", "kubectl %s: scale is audited as agent-deploybot" % v, 200)
    time.sleep(0.2)
    watches = [r for r in env.byline_requests() if r.get("action") ==
               "kubectl get deployment/api -n web --watch" and r.get("actor") == "agent-reporting"]
    result("kubectl %s: the watch is audited as agent-reporting" % v,
           bool(watches) and watches[-1].get("status") == 200 and watches[-1].get("bytes_out", 0) > 0,
           repr(watches[-1:]))


def port_forward(env, k, v):
    label = "kubectl %s: port-forward through byline" % v
    mark = env.mark()
    port, bodies, perr, _ = ck.port_forward_bodies(k)
    result(label, port is not None and bodies == ["hello from api-0:8080\n"] * 2,
           "port=%r bodies=%r err=%r" % (port, bodies, perr))
    time.sleep(0.3)
    attributed(env, mark, r"^kubectl port-forward pod/api-0 -n web", "agent-deploybot",
               "kubectl %s: port-forward is audited as a 101 upgrade" % v, 101)


def copy_both_ways(env, k, v):
    tag = v.replace(".", "")
    src = os.path.join(env.dir, "cp-src-%s.txt" % tag)
    back = os.path.join(env.dir, "cp-back-%s.txt" % tag)
    payload = ("copied through byline by kubectl %s\n" % v) * 200
    with open(src, "w") as f:
        f.write(payload)
    mark = env.mark()
    ck.check(k, "cp to pod", ["cp", src, "web/api-0:/tmp/cp-%s.txt" % tag])
    attributed(env, mark, r"^kubectl exec api-0 -n web -c app -i -- tar -xmf - -C /tmp", "agent-deploybot",
               "kubectl %s: cp to pod is audited as the tar it runs" % v, 101)
    mark = env.mark()
    ck.check(k, "cp from pod", ["cp", "web/api-0:/tmp/cp-%s.txt" % tag, back])
    attributed(env, mark, r"^kubectl exec api-0 -n web -c app -- tar cf - /tmp/cp-%s.txt" % tag,
               "agent-deploybot", "kubectl %s: cp from pod is audited as the tar it runs" % v, 101)
    result("kubectl %s: cp round-trips content through byline" % v,
           os.path.exists(back) and open(back).read() == payload, "content differs")


def version_suite(env, v):
    dep = kubectl(env, "agent-deploybot", v)
    rep = kubectl(env, "agent-reporting", v)
    tag = v.replace(".", "")

    mark = env.mark()
    ck.check(rep, "get pods", ["get", "pods", "-n", "web"], contains=["api-0", "Running"])
    attributed(env, mark, r"^kubectl get pods -n web$", "agent-reporting",
               "kubectl %s: get pods is audited as agent-reporting" % v, 200)
    mark = env.mark()
    ck.check(rep, "list across namespaces", ["get", "pods", "-A"], contains=["coredns", "api-0"])
    attributed(env, mark, r"^kubectl get pods -A$", "agent-reporting",
               "kubectl %s: get pods -A is audited" % v, 200)
    discovery = [r for r in env.byline_requests(mark) if r.get("request", {}).get("discovery")]
    result("kubectl %s: discovery requests are marked as discovery" % v,
           all(r.get("actor") == "agent-reporting" for r in discovery), repr(discovery[:2]))

    watch_during_scale(env, v)

    mark = env.mark()
    ck.check(dep, "scale", ["scale", "deployment/api", "--replicas=5", "-n", "web"],
             exact="deployment.apps/api scaled\n")
    attributed(env, mark, r"^kubectl scale deployment/api --replicas=5 -n web$", "agent-deploybot",
               "kubectl %s: scale --replicas=5 audited with the replica count" % v, 200)

    dname = "web-" + tag
    path = os.path.join(env.dir, "deploy-%s.yaml" % tag)
    with open(path, "w") as f:
        f.write(ck.DEPLOY % {"name": dname, "replicas": 1, "mode": "blue"})
    mark = env.mark()
    ck.check(dep, "apply (client-side) create", ["apply", "-f", path],
             exact="deployment.apps/%s created\n" % dname)
    attributed(env, mark, r"^kubectl apply deployment/%s -n web" % dname, "agent-deploybot",
               "kubectl %s: client-side apply create is audited as kubectl apply" % v, 201)
    with open(path, "w") as f:
        f.write(ck.DEPLOY % {"name": dname, "replicas": 2, "mode": "green"})
    ck.check(dep, "apply (client-side) update", ["apply", "-f", path],
             exact="deployment.apps/%s configured\n" % dname)

    cpath = os.path.join(env.dir, "cm-%s.yaml" % tag)
    cname = "ssa-" + tag
    with open(cpath, "w") as f:
        f.write(ck.CONFIGMAP % {"name": cname, "color": "red"})
    mark = env.mark()
    ck.check(dep, "apply --server-side", ["apply", "--server-side", "-f", cpath],
             exact="configmap/%s serverside-applied\n" % cname)
    attributed(env, mark, r"^kubectl apply --server-side configmap/%s -n web" % cname,
               "agent-deploybot", "kubectl %s: server-side apply is audited" % v, 201)

    xname = "x-" + tag
    mark = env.mark()
    ck.check(dep, "create configmap (protobuf body)",
             ["create", "configmap", xname, "--from-literal=a=b", "-n", "web"],
             exact="configmap/%s created\n" % xname)
    attributed(env, mark, r"^kubectl create configmap/%s -n web$" % xname, "agent-deploybot",
               "kubectl %s: create names the object from the body" % v, 201)
    ck.check(rep, "created configmap visible", ["get", "cm", xname, "-n", "web", "-o",
                                                "jsonpath={.data.a}"], exact="b")
    mark = env.mark()
    ck.check(dep, "delete configmap", ["delete", "configmap", xname, "-n", "web"],
             exact='configmap "%s" deleted\n' % xname)
    attributed(env, mark, r"^kubectl delete configmap/%s -n web$" % xname, "agent-deploybot",
               "kubectl %s: delete is audited" % v, 200)
    ck.check(dep, "delete -f", ["delete", "-f", path], exact='deployment.apps "%s" deleted\n' % dname)

    mark = env.mark()
    ck.check(rep, "logs --tail", ["logs", "api-0", "-n", "web", "-c", "app", "--tail=2"],
             contains=["GET /healthz 200"])
    attributed(env, mark, r"^kubectl logs api-0 -n web -c app --tail=2$", "agent-reporting",
               "kubectl %s: logs is audited" % v, 200)

    mark = env.mark()
    ck.check(dep, "exec ls -la /tmp", ["exec", "-n", "web", "api-0", "-c", "app", "--",
                                       "ls", "-la", "/tmp"], contains=["total ", " hello.txt\n"])
    rec = attributed(env, mark, r"^kubectl exec api-0 -n web -c app -- ls -la /tmp$", "agent-deploybot",
                     "kubectl %s: exec is audited with its argv" % v, 101)
    if rec:
        result("kubectl %s: exec record keeps the structured argv and exit code 0" % v,
               rec.get("request", {}).get("command") == ["ls", "-la", "/tmp"] and rec.get("upgraded") is True and
               rec.get("exec", {}).get("exit_code") == 0, repr((rec.get("request"), rec.get("exec"))))
    mark = env.mark()
    ck.check(dep, "exec -i cat (stdin)", ["exec", "-i", "-n", "web", "api-0", "--", "cat"],
             stdin=b"stdin through byline %s\n" % tag.encode(), exact="stdin through byline %s\n" % tag)
    attributed(env, mark, r"^kubectl exec api-0 -n web -c app -i -- cat$", "agent-deploybot",
               "kubectl %s: exec -i is audited with -i" % v, 101)
    mark = env.mark()
    marker = "attached through byline %s" % tag
    ck.check(dep, "attach -i", ["attach", "-i", "coredns-5d78c9869d-abcde", "-n", "kube-system"],
             stdin=(marker + "\n").encode(), contains=[marker])
    attributed(env, mark, r"^kubectl attach coredns-5d78c9869d-abcde -n kube-system", "agent-deploybot",
               "kubectl %s: attach is audited as a 101 upgrade" % v, 101)
    mark = env.mark()
    ck.check(dep, "exec exit code 3 travels back", ["exec", "-n", "web", "api-0", "--", "sh", "-c", "exit 3"],
             want_rc=3, stderr_has="command terminated with exit code 3")
    time.sleep(0.2)
    rec = one_record(env, mark, r"^kubectl exec api-0 -n web -c app -- sh -c 'exit 3'$",
                     "kubectl %s: exit-3 exec is audited" % v)
    if rec:
        result("kubectl %s: the exec's exit code (3) is in its record (%s)" % (v, "SPDY" if v < "1.30" else "WebSocket"),
               rec.get("exec", {}).get("exit_code") == 3, repr(rec.get("exec")))
    mark = env.mark()
    ck.check(dep, "exec of an unknown command fails", ["exec", "-n", "web", "api-0", "--", "nosuchcmd"], want_rc=1,
             stderr_has="executable file not found")
    time.sleep(0.2)
    rec = one_record(env, mark, r"^kubectl exec api-0 -n web -c app -- nosuchcmd$", "kubectl %s: failed exec is audited" % v)
    if rec:
        ex = rec.get("exec", {})
        result("kubectl %s: a failed exec's Status is in its record" % v,
               ex.get("reason") == "InternalError" and "exec failed" in ex.get("message", "") and
               ex.get("exit_code") != 0, repr(ex))

    copy_both_ways(env, dep, v)
    port_forward(env, dep, v)

    mark = env.mark()
    ck.check(rep, "--as impersonation is refused by byline", ["--as=alice", "get", "pods", "-n", "web"],
             want_rc=1, stderr_has="byline: agent-reporting may not impersonate")
    attributed(env, mark, r"^kubectl get pods -n web$", "agent-reporting",
               "kubectl %s: refused impersonation is audited as denied" % v, 403, "denied")


def identity_checks(env, v):
    cert = kubectl(env, "agent-certbot", v)
    mark = env.mark()
    ck.check(cert, "client certificate identity", ["get", "configmap", "settings", "-n", "web", "-o", "name"],
             exact="configmap/settings\n")
    rec = attributed(env, mark, r"^kubectl get configmap/settings -n web$", "agent-certbot",
                     "kubectl %s: a client-certificate agent is attributed" % v, 200)
    if rec:
        result("client-certificate record says credential=cert", rec.get("credential") == "cert", repr(rec))

    bad = os.path.join(env.dir, "bad.kubeconfig")
    text = open(env.kubeconfigs["agent-reporting"]).read()
    with open(bad, "w") as f:
        f.write(re.sub(r"token: .*", "token: byl_not-a-real-token", text))
    k = ck.Kubectl(type("A", (), {"dir": env.dir, "kubeconfig": bad})(), v)
    mark = env.mark()
    ck.check(k, "unknown token gets 401 with byline's reason", ["get", "pods", "-n", "web"], want_rc=1,
             stderr_has="You must be logged in to the server (byline: unknown bearer token)")
    time.sleep(0.1)
    recs = [r for r in env.byline_requests(mark) if r.get("result") == "unauthenticated"]
    ok = bool(recs) and all(r.get("actor") is None and r.get("status") == 401 and
                            r.get("reason") == "unknown bearer token" for r in recs)
    result("kubectl %s: bad token attempts are audited as unauthenticated with the reason" % v, ok,
           repr(recs[:2]))
    ids = {r["id"] for r in recs}
    result("kubectl %s: unauthenticated requests never reach the cluster" % v,
           not [e for e in env.cluster_events() if e["auditID"] in ids], "")


def join_checks(env):
    """Every forwarded request has a cluster event with byline's id, by the shared user."""
    time.sleep(0.3)
    events = {}
    for e in env.cluster_events():
        events.setdefault(e["auditID"], []).append(e)
    fwd = [r for r in env.byline_requests() if r.get("kind") in ("intent", "result") and
           r.get("result") == "allowed" and r.get("connection") == "default" and "status" in r]
    missing = [r["id"] for r in fwd if r["id"] not in events]
    result("join: each of %d forwarded requests has a cluster event with its Audit-ID" % len(fwd),
           fwd and not missing, "missing: %r" % missing[:5])
    ours = {r["id"] for r in env.byline_records(all_gateways=True) if "id" in r}
    stray = [i for i, evs in events.items() if evs[0]["user"].get("username") == SHARED_USER and i not in ours]
    result("join: every cluster event by the shared credential has a byline record", not stray,
           "stray: %r" % stray[:5])
    actors = {r.get("actor") for r in fwd}
    result("attribution: the cluster saw one user, byline names the agents",
           {"agent-deploybot", "agent-reporting", "agent-certbot"} <= actors, repr(actors))


def audit_tail_check(env):
    p = ck.subprocess.run([env.byline, "audit", "tail", "--dir", env.gw, "-n", "3"],
                          capture_output=True, text=True, timeout=30)
    lines = p.stdout.splitlines()
    pat = re.compile(r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ actor=\S+ action="[^"]*" connection=\S+ result=\w+')
    result("byline audit tail prints the ts= actor= action= connection= result= form",
           p.returncode == 0 and len(lines) == 3 and all(pat.match(l) for l in lines), p.stdout + p.stderr)


def drain_check(env):
    """SIGTERM with a watch open: the gateway stops accepting, lets the watch
    run until drain_timeout (3s here), then closes it and exits 0."""
    k = kubectl(env, "agent-reporting", VERSIONS[-1])
    mark = env.mark()
    w = k.popen(["get", "pods", "-n", "web", "-w", "--request-timeout=60s"])
    # Stop only once the watch is in flight (its intent is durable): a cold
    # kubectl runs discovery first, and valgrind slows byline down.
    deadline = time.time() + 30
    while time.time() < deadline and not any(
            "--watch" in r.get("action", "") for r in env.byline_requests(since=mark)):
        time.sleep(0.1)
    time.sleep(0.3)
    rc, took = env.stop_byline(timeout=60 if env.wrapper else 10)
    w.kill()
    if env.wrapper:
        log = os.path.join(ROOT, "build", "valgrind-serve.log")
        result("valgrind: no errors or leaks in byline serve", rc == 0,
               "rc=%r\n%s" % (rc, open(log).read()[-4000:] if os.path.exists(log) else ""))
    else:
        result("SIGTERM drains and exits 0 within drain_timeout", rc == 0 and 2.5 <= took < 8,
               "rc=%r took %.1fs" % (rc, took))
    recs = [r for r in env.byline_requests() if "--watch" in r.get("action", "") and
            r.get("kind") == "result" and r.get("actor") == "agent-reporting"]
    result("the drained watch has its result record", bool(recs), "")
    reports = env.sanitizer_reports()
    result("no AddressSanitizer/UBSan reports from byline", not reports, "\n".join(reports)[:3000])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--byline", default=os.path.join(ROOT, "build", "asan", "byline"))
    ap.add_argument("-k", default="", help="only suites whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--valgrind", action="store_true",
                    help="run `byline serve` under valgrind (use a non-ASan build) and fail on any error or leak")
    args = ap.parse_args()
    t0 = time.time()
    wrapper = None
    if args.valgrind:
        wrapper = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
                   "--track-fds=no", "--log-file=%s" % os.path.join(ROOT, "build", "valgrind-serve.log")]
    env = Env(args.byline, wrapper=wrapper)
    suites = [("kubectl-" + v, lambda v=v: version_suite(env, v)) for v in VERSIONS]
    suites += [("identity-" + v, lambda v=v: identity_checks(env, v)) for v in VERSIONS]
    suites += [("wire", lambda: wire.run_all(env, result)),
               ("streaming", lambda: wire.run_streaming(env, result)),
               ("limits", lambda: limits.run_all(env, result)), ("ledger", lambda: ledger.run_all(env, result)),
               ("policy", lambda: policy.run_all(env, result, VERSIONS)),
               ("review", lambda: review.run_all(env, result, VERSIONS)),
               ("guardrails", lambda: guardrails.run_all(env, result, VERSIONS)),
               ("agent", lambda: agent.run_all(env, result, VERSIONS)),
               ("jwt", lambda: jwt_identity.run_all(env, result, tuple(reversed(VERSIONS)))),
               ("identity-lifecycle", lambda: identity_lifecycle.run_all(env, result, VERSIONS)),
               ("reload", lambda: reload.run_all(env, result, VERSIONS)),
               ("join", lambda: join_checks(env)),
               ("capture", lambda: capture.run_all(env, result, VERSIONS)),
               ("tail", lambda: audit_tail_check(env)), ("metrics", lambda: wire.metrics_check(env, result))]
    try:
        env.start()
        for name, fn in suites:
            if args.k in name:
                print("--- %s" % name, flush=True)
                fn()
        drain_check(env)
    except Exception as e:  # a broken setup is a failure, not a crash of the runner
        import traceback
        traceback.print_exc()
        result("integration environment", False, repr(e))
    finally:
        env.stop()
    failed = len(ck.FAILED)
    if failed or args.keep:
        print("work directory kept: %s (byline log: %s)" % (env.dir, os.path.join(env.dir, "byline.log")))
    else:
        shutil.rmtree(env.dir, ignore_errors=True)
    print("integration run time %.1fs" % (time.time() - t0))
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "integration-summary"), "w") as f:
        f.write("%d %d\n" % (len(ck.PASSED), failed))
    print("%d passed, %d failed" % (len(ck.PASSED), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
