#!/usr/bin/env python3
"""join_test.py - `byline audit join` end to end.

Starts the stand-in kube-apiserver with its audit log and byline in front of
it (tests/integration/env.py), runs the real kubectl 1.27 and 1.33 through
byline (a plain connection and an impersonating one), then:

- the clean cluster log joins with nothing flagged (exit 0), also fed as
  EventList batches, one pretty-printed EventList document, CloudWatch
  export lines, filter-log-events JSON, gzip and stdin;
- a request sent straight to the stand-in with byline's shared token is
  found as `bypass`; one carrying a made-up UUIDv7 Audit-ID and one reusing
  a real byline id as `forged` (exit 1);
- a forwarded request whose events are dropped from a copy of the cluster
  log is `lost`; an event whose verb or code was changed is `mismatch`;
- a second stand-in that logs only ResponseComplete is killed -9 during a
  watch through a second byline: that watch is `lost`, for real;
- --since/--until narrow the window; bad usage and unreadable input exit 2.

    tests/integration/join_test.py [BYLINE]      (default build/byline)

Prints PASS/FAIL lines and ends with "N passed, N failed".
"""
import gzip
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from env import ROOT, SHARED_USER, STANDIN, Env, allow_all, free_port, wait_port  # noqa: E402

BYLINE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/byline"))
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.%s"
FAKE_V7 = "01a2ffff-0000-7abc-8def-0123456789ab"
PASSED, FAILED = 0, 0


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("PASS " + name)
    else:
        FAILED += 1
        print("FAIL " + name)
        for line in str(detail).splitlines()[:40]:
            print("     " + line)


def kubectl(env, kubeconfig, version, *args):
    return subprocess.run([KUBECTL % version, "--kubeconfig", kubeconfig] + list(args),
                          capture_output=True, text=True, timeout=60)


def join(env, log, *extra, stdin=None):
    """Runs join --json; returns (exit code, rows, summary, raw output)."""
    p = subprocess.run([BYLINE, "audit", "join", "--dir", env.gw, "--cluster-log", log, "--json"] + list(extra),
                       capture_output=True, text=True, timeout=120, input=stdin)
    rows, summary = [], {}
    for line in p.stdout.splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("type") == "row":
            rows.append(o)
        elif o.get("type") == "summary":
            summary = o
    return p.returncode, rows, summary, p.stdout[-3000:] + p.stderr[-2000:]


def flagged(rows):
    """{kind: [id, ...]} of the flagged rows."""
    out = {}
    for r in rows:
        if r["flagged"]:
            rid = (r.get("byline") or {}).get("id") or r["cluster"]["auditID"]
            out.setdefault(r["kind"], []).append(rid)
    return out


def direct(env, path, audit_id=None):
    """A GET straight to the stand-in with byline's shared token (no byline);
    returns the Audit-Id the stand-in answered with."""
    ctx = ssl.create_default_context(cafile=env.ca)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", env.cluster_port), timeout=10),
                        server_hostname="127.0.0.1")
    head = "GET %s HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer %s\r\nConnection: close\r\n" % (path, env.shared_token)
    if audit_id:
        head += "Audit-ID: %s\r\n" % audit_id
    s.sendall((head + "\r\n").encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"audit-id":
            return v.strip().decode()
    return None


def agent_traffic(env):
    """Real kubectl through byline; returns the byline ids forwarded."""
    tf = os.path.join(env.dir, "agent-deploybot.token")
    p = subprocess.run([BYLINE, "kubeconfig", "agent-deploybot", "--dir", env.gw, "--connection", "impersonating",
                        "--token-file", tf], capture_output=True, text=True, timeout=30)
    imp = os.path.join(env.dir, "imp.kubeconfig")
    with open(imp, "w") as f:
        f.write(p.stdout)
    kc = env.kubeconfigs["agent-deploybot"]
    runs = [(kc, "1.33", "get", "pods", "-n", "web"),
            (kc, "1.33", "scale", "deployment/api", "--replicas=3", "-n", "web"),
            (kc, "1.33", "exec", "api-0", "-n", "web", "--", "true"),
            (kc, "1.27", "exec", "api-0", "-n", "web", "--", "sh", "-c", "exit 3"),
            (kc, "1.27", "create", "configmap", "joined", "-n", "web", "--from-literal=a=b"),
            (kc, "1.27", "delete", "configmap", "joined", "-n", "web"),
            (kc, "1.33", "get", "secret", "nope", "-n", "web"),
            (kc, "1.33", "get", "pods", "-n", "web", "-w", "--request-timeout=1s"),
            (imp, "1.33", "get", "configmap", "settings", "-n", "web")]
    for kubeconfig, v, *args in runs:
        kubectl(env, kubeconfig, v, *args)
    # a request byline refuses itself: no cluster event expected
    bad = os.path.join(env.dir, "bad.kubeconfig")
    with open(bad, "w") as f:
        f.write(open(kc).read().replace(env.tokens["agent-deploybot"], "not-a-token"))
    kubectl(env, bad, "1.33", "get", "pods", "-n", "web")
    time.sleep(1.0)  # results and the stand-in's ResponseComplete lines follow the responses


def read_events(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def write_lines(path, lines):
    with open(path, "w") as f:
        for l in lines:
            f.write(l + "\n")


def clean_checks(env, clean):
    rc, rows, s, raw = join(env, clean)
    reqs = env.byline_requests()
    allowed = [r for r in reqs if r.get("result") == "allowed"]
    refused = [r for r in reqs if r.get("result") == "unauthenticated"]
    check("clean log: exit 0, nothing flagged", rc == 0 and s.get("flagged") == 0 and not flagged(rows), raw)
    check("clean log: every forwarded request matched", s.get("matched") == len(allowed) and len(allowed) >= 15,
          "matched %s, allowed %d\n%s" % (s.get("matched"), len(allowed), raw))
    check("clean log: the refused request is not flagged", s.get("refused") == len(refused) == 1, raw)
    check("clean log: byline's cluster user learned", s.get("shared_users") == [SHARED_USER], s)
    imp = [r for r in rows if (r.get("cluster") or {}).get("impersonatedUser")]
    check("impersonated requests show the agent as impersonatedUser",
          imp and all(r["cluster"]["impersonatedUser"] == "byline:agent-deploybot" and
                      r["cluster"]["user"] == SHARED_USER and r["kind"] == "matched" for r in imp), imp[:2])
    execs = [r for r in rows if "exec" in ((r.get("byline") or {}).get("action") or "")]
    check("exec (SPDY and WebSocket) matched with code 101 on both sides",
          len(execs) == 2 and all(r["kind"] == "matched" and r["byline"]["status"] == 101 and
                                  r["cluster"]["code"] == 101 for r in execs), execs)
    watch = [r for r in rows if (r.get("byline") or {}).get("verb") == "watch"]
    check("the watch matched", len(watch) == 1 and watch[0]["kind"] == "matched", watch)
    nope = [r for r in rows if "secret/nope" in ((r.get("byline") or {}).get("action") or "")]
    check("a 404 is the same code on both sides", len(nope) == 1 and nope[0]["byline"]["status"] == 404 and
          nope[0]["cluster"]["code"] == 404 and nope[0]["kind"] == "matched", nope)
    p = subprocess.run([BYLINE, "audit", "join", "--dir", env.gw, "--cluster-log", clean],
                       capture_output=True, text=True, timeout=60)
    last = [l for l in p.stdout.splitlines() if l.startswith("joined ")]
    want = "joined %d byline records with %d cluster events: %d matched, 0 lost, 0 bypass, 0 forged, 0 mismatch" % (
        s.get("records", -1), s.get("events", -1), s.get("matched", -1))
    check("text output: a timeline and the summary line", p.returncode == 0 and last == [want] and
          "kubectl scale deployment/api --replicas=3 -n web" in p.stdout and
          "byline:agent-deploybot " in p.stdout, p.stdout[-3000:] + p.stderr)
    return s


def shapes_checks(env, clean, base):
    """The same events in every other shape give the same join."""
    evs = read_events(clean)
    d = env.dir
    shapes = {}
    shapes["EventList batches"] = os.path.join(d, "batches.jsonl")
    write_lines(shapes["EventList batches"], [json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                                                          "metadata": {}, "items": evs[i:i + 7]})
                                              for i in range(0, len(evs), 7)])
    shapes["one EventList document"] = os.path.join(d, "eventlist.json")
    with open(shapes["one EventList document"], "w") as f:
        json.dump({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": evs}, f, indent=2)
    shapes["CloudWatch export lines"] = os.path.join(d, "cloudwatch.log")
    write_lines(shapes["CloudWatch export lines"], ["%s %s" % (e["stageTimestamp"], json.dumps(e)) for e in evs])
    shapes["filter-log-events JSON lines"] = os.path.join(d, "filter.jsonl")
    write_lines(shapes["filter-log-events JSON lines"],
                [json.dumps({"logStreamName": "kube-apiserver-audit-1", "timestamp": 1795859667000 + i,
                             "message": json.dumps(e), "ingestionTime": 1795859668000, "eventId": str(i)})
                 for i, e in enumerate(evs)])
    shapes["filter-log-events document"] = os.path.join(d, "filter.json")
    with open(shapes["filter-log-events document"], "w") as f:
        json.dump({"events": [{"timestamp": 1795859667000, "message": json.dumps(e)} for e in evs],
                   "searchedLogStreams": []}, f, indent=4)
    shapes["gzip"] = os.path.join(d, "cluster.jsonl.gz")
    with open(clean, "rb") as src, gzip.open(shapes["gzip"], "wb") as dst:
        dst.write(src.read())
    keys = ("records", "events", "matched", "flagged", "bad_lines")
    for name, path in shapes.items():
        rc, rows, s, raw = join(env, path)
        check("%s: the same join" % name, rc == 0 and all(s.get(k) == base.get(k) for k in keys),
              "%s vs %s\n%s" % ({k: s.get(k) for k in keys}, {k: base.get(k) for k in keys}, raw))
    with open(clean) as f:
        rc, rows, s, raw = join(env, "-", stdin=f.read())
    check("stdin: the same join", rc == 0 and s.get("matched") == base.get("matched"), raw)


def bypass_checks(env, reqs):
    bypass_id = direct(env, "/api/v1/namespaces/web/secrets/db")
    forged_id = direct(env, "/api/v1/namespaces/web/configmaps/settings", FAKE_V7)
    scale = [r for r in reqs if "kubectl scale" in (r.get("action") or "")][0]
    reuse_id = direct(env, "/api/v1/namespaces/kube-system/secrets", scale["id"])
    time.sleep(0.5)
    rc, rows, s, raw = join(env, env.cluster_audit)
    f = flagged(rows)
    check("bypass: the direct request with the shared token", f.get("bypass") == [bypass_id] and bypass_id, raw)
    check("forged: a made-up UUIDv7 Audit-ID and a reused byline id",
          sorted(f.get("forged", [])) == sorted([FAKE_V7, scale["id"]]) and reuse_id == scale["id"], raw)
    check("nothing else flagged, exit 1", rc == 1 and set(f) == {"bypass", "forged"} and s.get("flagged") == 3, raw)
    scale_rows = [r for r in rows if (r.get("byline") or {}).get("id") == scale["id"]]
    check("the real scale request still matches its own event",
          len(scale_rows) == 1 and scale_rows[0]["kind"] == "matched" and scale_rows[0]["cluster"]["verb"] == "patch",
          scale_rows)
    p = subprocess.run([BYLINE, "audit", "join", "--dir", env.gw, "--cluster-log", env.cluster_audit, "--flagged"],
                       capture_output=True, text=True, timeout=60)
    body = [l for l in p.stdout.splitlines()[1:] if l[:4].isdigit()]
    check("--flagged prints only the flagged rows", p.returncode == 1 and len(body) == 3 and
          all(" BYPASS " in l or " FORGED " in l for l in body) and "^ bypass: made with byline's credential" in p.stdout,
          p.stdout[-3000:])
    return bypass_id


def lost_and_mismatch_checks(env, clean, reqs):
    evs = read_events(clean)
    create = [r for r in reqs if "kubectl create configmap" in (r.get("action") or "")][0]
    get = [r for r in reqs if "kubectl get pods -n web" == r.get("action")][0]
    nope = [r for r in reqs if "secret/nope" in (r.get("action") or "")][0]
    copy = os.path.join(env.dir, "lost.jsonl")
    out = []
    for e in evs:
        if e["auditID"] == create["id"]:
            continue  # the cluster "lost" it
        if e["auditID"] == get["id"]:
            e = dict(e, verb="deletecollection")
        if e["auditID"] == nope["id"] and "responseStatus" in e:
            e = dict(e, responseStatus={"metadata": {}, "code": 200})
        out.append(json.dumps(e))
    write_lines(copy, out)
    rc, rows, s, raw = join(env, copy)
    f = flagged(rows)
    check("lost: the forwarded create the cluster log lacks", f.get("lost") == [create["id"]], raw)
    check("mismatch: a changed verb and a changed code",
          sorted(f.get("mismatch", [])) == sorted([get["id"], nope["id"]]), raw)
    details = {(r.get("byline") or {}).get("id"): r.get("detail", "") for r in rows}
    check("mismatch details name the field", details.get(get["id"]) == "verb: byline list, cluster deletecollection"
          and details.get(nope["id"]) == "code: byline 404, cluster 200", details)
    check("exit 1 with exactly those three", rc == 1 and s.get("flagged") == 3 and set(f) == {"lost", "mismatch"}, raw)


def window_checks(env, bypass_id):
    evs = read_events(env.cluster_audit)
    t = [e["requestReceivedTimestamp"] for e in evs if e["auditID"] == bypass_id][0]
    rc, rows, s, raw = join(env, env.cluster_audit, "--until", "2000-01-01T00:00:00Z", "--since", "1999-01-01")
    check("a window with nothing in it: nothing judged, exit 0", rc == 0 and s.get("records") == 0 and
          s.get("events") == 0, raw)
    # nothing before --since is read, so no event matches: byline's user must be named
    rc, rows, s, raw = join(env, env.cluster_audit, "--since", t, "--grace", "0", "--shared-user", SHARED_USER)
    check("--since at the bypass: only what came after is judged",
          flagged(rows).get("bypass") == [bypass_id] and s.get("records") == 0 and s.get("records_outside", 0) > 0, raw)
    first = min(e["requestReceivedTimestamp"] for e in evs)
    rc, rows, s, raw = join(env, env.cluster_audit, "--since", "1h", "--until", first)
    check("--until before the bypass: exit 0", rc == 0 and not flagged(rows).get("bypass"), raw)


def crash_checks(env):
    """A cluster that dies before it logs: a stand-in writing only
    ResponseComplete (like a policy's omitStages) is killed -9 while a watch
    through byline is open. The watch was forwarded and never logged."""
    d = os.path.join(env.dir, "crash")
    os.makedirs(d)
    log, ready = os.path.join(d, "cluster-audit.jsonl"), os.path.join(d, "standin.ready")
    standin = subprocess.Popen([sys.executable, STANDIN, "--listen", "127.0.0.1:0", "--tls-dir", env.tls,
                                "--tokens", os.path.join(env.dir, "tokens.csv"), "--audit-log", log,
                                "--ready-file", ready, "--seed", "default",
                                "--omit-stages", "RequestReceived,ResponseStarted"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.procs.append(standin)
    deadline = time.time() + 30
    while not os.path.exists(ready) and time.time() < deadline and standin.poll() is None:
        time.sleep(0.05)
    port, gw = free_port(), os.path.join(d, "gw")
    steps = [[BYLINE, "init", "--dir", gw, "--upstream", "https://127.0.0.1:%s" % open(ready).read().strip(),
              "--upstream-ca", env.ca, "--upstream-token-file", env.shared_token_file,
              "--listen", "127.0.0.1:%d" % port],
             [BYLINE, "identity", "add", "agent-crash", "--dir", gw]]
    outs = [subprocess.run(a, capture_output=True, text=True, timeout=60) for a in steps]
    allow_all(gw)
    tf, kc = os.path.join(d, "agent.token"), os.path.join(d, "agent.kubeconfig")
    with open(tf, "w") as f:
        f.write(outs[1].stdout.strip())
    with open(kc, "w") as f:
        f.write(subprocess.run([BYLINE, "kubeconfig", "agent-crash", "--dir", gw, "--token-file", tf],
                               capture_output=True, text=True, timeout=60).stdout)
    serve = subprocess.Popen([BYLINE, "serve", "--dir", gw], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.procs.append(serve)
    if not wait_port(port, serve):
        check("crash: second byline starts", False, [o.stderr for o in outs])
        return
    kubectl(env, kc, "1.33", "get", "configmap", "settings", "-n", "web")
    watch = subprocess.Popen([KUBECTL % "1.33", "--kubeconfig", kc, "get", "pods", "-n", "web", "-w"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    standin.kill()
    standin.wait()
    watch.wait(30)
    time.sleep(0.5)
    serve.terminate()
    serve.wait(30)
    # the watch came after the cluster's last event: --until (now) is what judges it
    p = subprocess.run([BYLINE, "audit", "join", "--dir", gw, "--cluster-log", log, "--json",
                        "--since", "10m", "--until", "0s"], capture_output=True, text=True, timeout=60)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    lost = [r for r in rows if r.get("kind") == "lost"]
    watch_rows = [r for r in rows if (r.get("byline") or {}).get("verb") == "watch"]
    check("crash: the watch the dead cluster never logged is lost, and nothing else",
          p.returncode == 1 and len(lost) == 1 and lost == watch_rows and
          [r["kind"] for r in rows if r.get("type") == "row" and r not in lost] == ["matched"] * (len(rows) - 2),
          p.stdout[-3000:] + p.stderr)


def usage_checks(env):
    d = env.dir
    junk = os.path.join(d, "junk.log")
    with open(junk, "w") as f:
        f.write("not an audit log\n\x00\x01binary\n")
    cases = [("no --cluster-log", ["--dir", env.gw], "--cluster-log is required"),
             ("no such file", ["--dir", env.gw, "--cluster-log", os.path.join(d, "nope")], "No such file"),
             ("bad --since", ["--dir", env.gw, "--cluster-log", env.cluster_audit, "--since", "yesterday"], "--since"),
             ("--since after --until", ["--dir", env.gw, "--cluster-log", env.cluster_audit, "--since", "1h",
                                        "--until", "2h"], "after --until"),
             ("a log with no events", ["--dir", env.gw, "--cluster-log", junk], "no audit events"),
             ("no ledger", ["--dir", d, "--cluster-log", env.cluster_audit], "ledger")]
    for name, args, err in cases:
        p = subprocess.run([BYLINE, "audit", "join"] + args, capture_output=True, text=True, timeout=60)
        check("exit 2: " + name, p.returncode == 2 and err in p.stderr, "rc %d\n%s" % (p.returncode, p.stderr))
    p = subprocess.run([BYLINE, "audit", "join", "--help"], capture_output=True, text=True, timeout=60)
    check("--help", p.returncode == 0 and "bypass" in p.stdout and "--cluster-log" in p.stdout, p.stdout)


def main():
    env = Env(BYLINE)
    try:
        env.start()
        agent_traffic(env)
        env.stop_byline()  # every result is in the ledger
        reqs = env.byline_requests()
        clean = os.path.join(env.dir, "clean.jsonl")
        shutil.copy(env.cluster_audit, clean)
        base = clean_checks(env, clean)
        shapes_checks(env, clean, base)
        lost_and_mismatch_checks(env, clean, reqs)
        bypass_id = bypass_checks(env, reqs)
        window_checks(env, bypass_id)
        crash_checks(env)
        usage_checks(env)
    except Exception as e:  # a broken setup is a failure, not a crash
        import traceback
        check("setup", False, traceback.format_exc() + str(e))
    finally:
        env.stop()
    if FAILED == 0:
        shutil.rmtree(env.dir, ignore_errors=True)
    else:
        print("artifacts kept in " + env.dir)
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
