#!/usr/bin/env python3
"""query_test.py - `byline audit query` end to end.

Real kubectl (1.33 and 1.27) runs through byline (tests/integration/env.py:
the stand-in cluster, two token agents) to make a known mix of requests:
reads, a scale, a create and a delete, a 404 from the cluster, an
impersonation byline refuses (denied) and an unknown token
(unauthenticated). Then `byline audit query` is asked by actor, verb,
namespace, resource, result, id and time window, in each format, and every
answer is compared with the truth computed here from the ledger files
themselves (entries merged per id as docs/AUDIT-QUERY.md says: the
intent's ts, the result's outcome). More traffic follows and a second query
must see it without rebuilding; deleting or damaging index.sqlite rebuilds
it with the same answers; concurrent queries agree.

    tests/integration/query_test.py [BYLINE]      (default build/byline)

Prints PASS/FAIL lines and ends with "N passed, N failed".
"""
import datetime
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "standin"))

import check_kubectl as ck  # noqa: E402  (the stand-in's kubectl driver)
from env import ROOT, Env, ledger_entries  # noqa: E402

BYLINE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "byline"))
PASSED, FAILED = 0, 0


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("PASS " + name, flush=True)
    else:
        FAILED += 1
        print("FAIL " + name, flush=True)
        for line in str(detail).splitlines()[:30]:
            print("     " + line)


class Agent:
    def __init__(self, env, name, kubeconfig=None):
        self.dir = env.dir
        self.kubeconfig = kubeconfig or env.kubeconfigs[name]


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ts_us(s):
    """The ledger's "2026-06-15T12:04:01.123456Z" as epoch microseconds."""
    d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 1000000 + d.microsecond


# ---- the truth, from the ledger files ----

def truth(env):
    """Requests in ledger order, merged per id: the first entry's fields and
    ts, later entries' fields over them, "aborted" as a result."""
    recs, order = {}, []
    for e in ledger_entries(os.path.join(env.gw, "audit")):
        if e.get("kind") == "notice" or "id" not in e:
            continue
        r = recs.get(e["id"])
        if r is None:
            r = recs[e["id"]] = dict(e)
            order.append(e["id"])
        else:
            first_ts = r["ts"]
            for k, v in e.items():
                if e["kind"] != "intent" or k not in r:
                    r[k] = v
            r["ts"] = first_ts
        if e["kind"] == "aborted":
            r["result"] = "aborted"
        r["kind"] = "request"
    return [recs[i] for i in order]


def req(r, key):
    return (r.get("request") or {}).get(key)


def select(recs, actor=None, verb=None, namespace=None, resource=None, result=None, since=None, until=None,
           id_=None):
    out = []
    for r in recs:
        if actor is not None and r.get("actor") != actor:
            continue
        if verb is not None and req(r, "verb") != verb:
            continue
        if namespace is not None and req(r, "namespace") != namespace:
            continue
        if resource is not None and req(r, "resource") != resource:
            continue
        if result is not None and r.get("result", "pending") != result:
            continue
        if since is not None and ts_us(r["ts"]) < since:
            continue
        if until is not None and ts_us(r["ts"]) >= until:
            continue
        if id_ is not None and r.get("id") != id_:
            continue
        out.append(r)
    return out


# ---- byline audit query ----

def query(env, *args, fmt="json"):
    """Runs the query; returns (exit code, stdout lines, stderr)."""
    p = subprocess.run([BYLINE, "audit", "query", "--dir", env.gw, "--format", fmt] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, [l for l in p.stdout.split("\n") if l], p.stderr


def ids_of(lines):
    return [json.loads(l)["id"] for l in lines]


def same(env, label, want, *args):
    """The json answer has exactly the ids of `want`, in ledger order, and
    each record equals the merged truth."""
    rc, lines, err = query(env, "-n", "0", *args)
    got = [json.loads(l) for l in lines] if rc == 0 else []
    ok = rc == 0 and [g["id"] for g in got] == [w["id"] for w in want] and got == want
    check("%s: %d record(s), as in the ledger" % (label, len(want)), ok and len(want) > 0,
          "rc=%d err=%s\ngot  %r\nwant %r" % (rc, err.strip(), [g.get("id") for g in got][:6],
                                             [w["id"] for w in want][:6]))
    return got


def traffic(env, v, tag):
    """One round of kubectl through byline; returns the kubectl runs that failed."""
    dep = ck.Kubectl(Agent(env, "agent-deploybot"), v)
    rep = ck.Kubectl(Agent(env, "agent-reporting"), v)
    bad = []
    runs = [
        (rep, ["get", "pods", "-n", "web"], 0),
        (rep, ["get", "configmaps", "-A"], 0),
        (dep, ["scale", "deployment/api", "--replicas=3", "-n", "web"], 0),
        (dep, ["create", "configmap", "q-" + tag, "-n", "web", "--from-literal=k=v"], 0),
        (dep, ["delete", "configmap", "q-" + tag, "-n", "web"], 0),
        (dep, ["get", "pod", "nope-" + tag, "-n", "web"], 1),          # the cluster says 404
        (rep, ["--as=alice", "get", "secrets", "-n", "web"], 1),      # byline refuses: denied
    ]
    for k, args, want in runs:
        rc, out, err = k.run(args)
        if rc != want:
            bad.append((args, rc, err[-300:]))
    text = open(env.kubeconfigs["agent-reporting"]).read()
    badcfg = os.path.join(env.dir, "bad-%s.kubeconfig" % tag)
    with open(badcfg, "w") as f:
        f.write(re.sub(r"token: .*", "token: byl_not-a-real-token", text))
    rc, _, _ = ck.Kubectl(Agent(env, None, badcfg), v).run(["get", "pods", "-n", "web"])  # unauthenticated
    if rc != 1:
        bad.append(("bad token", rc, ""))
    time.sleep(0.3)  # the result entries follow the responses
    return bad


def filters(env, recs):
    same(env, "--actor agent-deploybot", select(recs, actor="agent-deploybot"), "--actor", "agent-deploybot")
    same(env, "--actor 'agent-*' (glob)", [r for r in recs if (r.get("actor") or "").startswith("agent-")],
         "--actor", "agent-*")
    same(env, "--verb patch (kubectl scale)", select(recs, verb="patch"), "--verb", "patch")
    same(env, "--verb delete", select(recs, verb="delete"), "--verb", "delete")
    same(env, "--namespace web", select(recs, namespace="web"), "--namespace", "web")
    same(env, "--resource configmaps", select(recs, resource="configmaps"), "--resource", "configmaps")
    same(env, "--result denied", select(recs, result="denied"), "--result", "denied")
    same(env, "--result unauthenticated", select(recs, result="unauthenticated"), "--result", "unauthenticated")
    same(env, "--actor agent-deploybot --verb get --namespace web (404 included)",
         select(recs, actor="agent-deploybot", verb="get", namespace="web"),
         "--actor", "agent-deploybot", "--verb", "get", "--namespace", "web")
    same(env, "--connection default", [r for r in recs if r.get("connection") == "default"],
         "--connection", "default")
    scale = [r for r in recs if r.get("action", "").startswith("kubectl scale deployment/api")]
    if scale:
        got = same(env, "--id of the scale", scale[-1:], "--id", scale[-1]["id"])
        events = [e for e in env.cluster_events() if e.get("auditID") == scale[-1]["id"]]
        check("the id query joins the cluster's audit event (auditID)", got and len(events) >= 1 and
              events[0].get("verb") == "patch", repr(events[:1]))
    nf = [r for r in recs if r.get("status") == 404]
    check("a 404 from the cluster is result=allowed status=404", nf and all(r["result"] == "allowed" for r in nf),
          repr(nf[:1]))


def formats(env, recs):
    want = select(recs, actor="agent-deploybot")
    rc, lines, _ = query(env, "--actor", "agent-deploybot", "-n", "0", fmt="logfmt")
    tail = subprocess.run([BYLINE, "audit", "tail", "--dir", env.gw, "-n", "100000"], capture_output=True,
                          text=True, timeout=60).stdout.split("\n")
    by_id = {m.group(1): l for l in tail for m in [re.search(r" id=(\S+)$", l)] if m}
    ok = rc == 0 and len(lines) == len(want) and all(
        l.startswith("ts=") and " actor=agent-deploybot " in l and " action=\"kubectl " in l and
        by_id.get(w["id"]) == l for l, w in zip(lines, want))
    check("--format logfmt: the same lines as `byline audit tail`", ok, "\n".join(lines[:3]))
    rc, lines, _ = query(env, "--actor", "agent-deploybot", "-n", "0", "--json", fmt="logfmt")
    check("--json is --format json", rc == 0 and [json.loads(l) for l in lines] == want, "")
    rc, lines, _ = query(env, "-n", "0", fmt="ocsf")
    evs = [json.loads(l) for l in lines] if rc == 0 else []
    acts = {"create": 1, "get": 2, "list": 2, "watch": 2, "update": 3, "patch": 3, "delete": 4,
            "deletecollection": 4}
    by = {r["id"]: r for r in recs}
    why = []
    if len(evs) != len(recs):
        why.append("%d events for %d records" % (len(evs), len(recs)))
    for ev in evs:
        r = by.get(ev.get("api", {}).get("request", {}).get("uid"))
        if r is None:
            why.append("unknown uid %r" % ev.get("api"))
            continue
        act = acts.get(req(r, "verb") or "", 99 if req(r, "verb") else 0)
        ok = (ev.get("class_uid") == 6003 and ev.get("category_uid") == 6 and ev.get("activity_id") == act and
              ev.get("type_uid") == 600300 + act and ev.get("time") == ts_us(r["ts"]) // 1000 and
              ev["actor"]["user"]["name"] == (r.get("actor") or "unauthenticated") and
              ev["api"]["operation"] == (req(r, "verb") or r.get("method")) and
              ev["metadata"]["product"]["name"] == "byline" and ev["metadata"]["version"] == "1.3.0" and
              ev["src_endpoint"].get("ip") == r.get("source_ip") and
              ev.get("status") == ("Success" if r.get("result") == "allowed" and r.get("status", 0) < 400
                                   else "Failure") and
              ev["unmapped"].get("action") == r.get("action") and ev.get("severity_id") in (1, 2, 3))
        if not ok:
            why.append("event %r for record %r" % (ev, r))
    check("--format ocsf: one API Activity event per record, mapped from it", evs and not why, "\n".join(why[:3]))
    denied = [e for e in evs if e.get("status_code") == "denied"]
    check("ocsf: a denied request is a Failure with severity Medium and its reason",
          denied and all(e["status_id"] == 2 and e["severity_id"] == 3 and e.get("status_detail") for e in denied),
          repr(denied[:1]))


def limits(env, recs):
    rc, lines, err = query(env, "-n", "3")
    check("-n 3: the newest three, oldest first", rc == 0 and ids_of(lines) == [r["id"] for r in recs[-3:]] and
          "showing the newest 3 of %d" % len(recs) in err, err)
    rc, lines, err = query(env)
    check("the default limit is 100", rc == 0 and len(lines) == min(100, len(recs)), "%d lines" % len(lines))
    for bad in (["--since", "yesterday"], ["--format", "xml"], ["-n", "-1"], ["--bogus"],
                ["--since", "1h", "--until", "2h"]):
        rc, _, err = query(env, *bad)
        check("bad usage %s exits 2 with a message" % " ".join(bad), rc == 2 and err.strip(), err)
    p = subprocess.run([BYLINE, "audit", "query", "--help"], capture_output=True, text=True)
    check("--help", p.returncode == 0 and "--since" in p.stdout and "ocsf" in p.stdout, p.stderr)


def index_file(env):
    return os.path.join(env.gw, "audit", "index.sqlite")


def run(env):
    v_first, v_second = "1.33", "1.27"
    bad = traffic(env, v_first, "a")
    check("kubectl %s round one ran as expected" % v_first, not bad, repr(bad))
    rc, _, err = query(env, "-n", "1")
    check("the first query builds the index from the start of the ledger",
          rc == 0 and "indexed" in err and "there was no index yet" in err, err)
    mode = stat.S_IMODE(os.stat(index_file(env)).st_mode)
    check("index.sqlite has mode 0600", mode == 0o600, oct(mode))
    recs = truth(env)
    filters(env, recs)
    formats(env, recs)
    limits(env, recs)

    time.sleep(0.01)
    mark = time.time()
    time.sleep(0.01)
    bad = traffic(env, v_second, "b")
    check("kubectl %s round two ran as expected" % v_second, not bad, repr(bad))
    rc, lines, err = query(env, "-n", "0")
    recs2 = truth(env)
    check("a second query sees the new records without rebuilding",
          rc == 0 and len(recs2) > len(recs) and ids_of(lines) == [r["id"] for r in recs2] and "indexed" not in err,
          "rc=%d %d vs %d records; %s" % (rc, len(lines), len(recs2), err))
    since = int(mark * 1000000)
    same(env, "--since (RFC 3339) between the rounds", select(recs2, since=since), "--since", rfc3339(mark))
    same(env, "--until (RFC 3339) between the rounds", select(recs2, until=since), "--until", rfc3339(mark))
    same(env, "--since 10m (relative)", recs2, "--since", "10m")
    rc, lines, _ = query(env, "--until", "1h")
    check("--until 1h: nothing that old", rc == 0 and lines == [], repr(lines[:2]))
    same(env, "--result denied after round two", select(recs2, result="denied"), "--result", "denied")

    os.unlink(index_file(env))
    rc, lines, err = query(env, "-n", "0")
    check("deleting index.sqlite: the next query rebuilds it with the same answer",
          rc == 0 and ids_of(lines) == [r["id"] for r in recs2] and "there was no index yet" in err and
          os.path.exists(index_file(env)), err)
    with open(index_file(env), "wb") as f:
        f.write(b"garbage " * 4096)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(index_file(env) + suffix):
            os.unlink(index_file(env) + suffix)
    rc, lines, err = query(env, "-n", "0", "--actor", "agent-reporting")
    check("a damaged index.sqlite is replaced, and stderr says so", rc == 0 and ids_of(lines) ==
          [r["id"] for r in select(recs2, actor="agent-reporting")] and "damaged" in err, err)
    rc, lines, err = query(env, "-n", "0", "--rebuild")
    check("--rebuild", rc == 0 and "--rebuild" in err and ids_of(lines) == [r["id"] for r in recs2], err)

    os.unlink(index_file(env))
    procs = [subprocess.Popen([BYLINE, "audit", "query", "--dir", env.gw, "--format", "json", "-n", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    want = [r["id"] for r in truth(env)]
    check("four concurrent queries on a fresh index agree with the ledger",
          all(p.returncode == 0 for p in procs) and
          all(ids_of([l for l in o[0].split("\n") if l]) == want for o in outs), [o[1] for o in outs])

    for name in os.listdir(os.path.join(env.gw, "audit")):
        if name.startswith("index.sqlite"):
            os.unlink(os.path.join(env.gw, "audit", name))
    os.mkdir(index_file(env))  # cannot be opened as a file: as for a reader who may not write the directory
    rc, lines, err = query(env, "-n", "0")
    check("an index that cannot be written: a temporary one in memory, the same answer",
          rc == 0 and ids_of(lines) == want and "temporary index in memory" in err, err)
    os.rmdir(index_file(env))
    elsewhere = os.path.join(env.dir, "auditor", "byline-index.sqlite")
    os.makedirs(os.path.dirname(elsewhere))
    rc, lines, err = query(env, "-n", "0", "--index", elsewhere)
    check("--index FILE keeps the index elsewhere (mode 0600), the same answer",
          rc == 0 and ids_of(lines) == want and stat.S_IMODE(os.stat(elsewhere).st_mode) == 0o600 and
          not os.path.exists(index_file(env)), err)


def main():
    if not os.access(BYLINE, os.X_OK):
        print("FAIL no byline binary at %s" % BYLINE)
        print("0 passed, 1 failed")
        return 1
    env = Env(BYLINE)
    try:
        env.start()
        run(env)
        check("byline serve logged no sanitizer reports", not env.sanitizer_reports(),
              "\n".join(env.sanitizer_reports())[:2000])
    except Exception as e:  # a broken setup is a failure, not a crash
        import traceback
        traceback.print_exc()
        check("query test environment", False, repr(e))
    finally:
        env.stop()
    if FAILED:
        print("work directory kept: %s" % env.dir)
    else:
        shutil.rmtree(env.dir, ignore_errors=True)
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
