"""Exec session capture (audit.capture_max) and `byline audit replay`, with
real kubectl 1.27 (SPDY) and 1.33 (WebSocket) through byline to the
stand-in: the capture file is durable, 0600 in a 0700 directory, and named
in the result entry with its SHA-256; replay plays it back and exports
valid asciicast v2; a modified capture is refused; with capture off (the
default, or a connection's capture_max: 0) no file is written. `audit verify`
checks the gateway's captures: it counts them, names a modified capture
capture-modified@seq and a deleted one capture-missing@seq, and passes with
--no-captures. A capture's fsyncs never hold up the worker's other
requests."""

import hashlib
import json
import os
import re
import stat
import subprocess
import time

from env import ledger_entries, run
from ledger import Gateway

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.%s"
SCRIPT = "echo out; sleep 0.3; echo err >&2; exit 3"


def kubectl(g, v, args, stdin=None):
    return subprocess.run([KUBECTL % v, "--kubeconfig", g.kubeconfig] + args, input=stdin,
                          capture_output=True, timeout=60)


def result_for(g, action_re, seen, timeout=10):
    """The first result entry whose action matches and whose id is not in `seen`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in ledger_entries(g.audit):
            if e.get("kind") == "result" and e.get("id") not in seen and re.search(action_re, e.get("action", "")):
                seen.add(e["id"])
                return e
        time.sleep(0.1)
    return None


def replay(g, rid, *args):
    return run([g.env.byline, "audit", "replay", rid, "--dir", g.dir] + list(args))


def replay_bytes(g, rid, *args):
    """replay, its output as bytes (a session may print anything)."""
    return subprocess.run([g.env.byline, "audit", "replay", rid, "--dir", g.dir] + list(args),
                          capture_output=True, timeout=60)


def asciicast_checks(text, label, result):
    """Parses asciicast v2 text; returns (header, events) or None after a FAIL."""
    why, header, events = [], None, []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        header = json.loads(lines[0])
        events = [json.loads(ln) for ln in lines[1:]]
    except (ValueError, IndexError) as e:
        result(label, False, "not JSON lines: %r (%r)" % (e, text[:300]))
        return None
    if header.get("version") != 2 or not isinstance(header.get("width"), int) or \
            not isinstance(header.get("height"), int) or not isinstance(header.get("timestamp"), int):
        why.append("header %r" % header)
    last = 0.0
    for ev in events:
        if not (isinstance(ev, list) and len(ev) == 3 and isinstance(ev[0], float) and ev[1] in ("o", "i")
                and isinstance(ev[2], str)):
            why.append("event %r" % ev)
            break
        if ev[0] < last:
            why.append("time goes backwards at %r" % ev)
        last = ev[0]
    result(label, not why, "; ".join(why)[:500])
    return header, events


def session_checks(g, v, seen, result):
    tag = "kubectl %s (%s)" % (v, "SPDY" if v < "1.30" else "WebSocket")
    p = kubectl(g, v, ["exec", "-n", "web", "api-0", "--", "sh", "-c", SCRIPT])
    result("capture %s: exec runs through a capturing byline (exit 3, out, err)" % tag,
           p.returncode == 3 and b"out" in p.stdout and b"err" in p.stderr,
           "rc=%d out=%r err=%r" % (p.returncode, p.stdout[-200:], p.stderr[-300:]))
    rec = result_for(g, r"^kubectl exec api-0 -n web .*-- sh -c ", seen)
    cap = (rec or {}).get("capture", {})
    result("capture %s: the result entry names the capture with its SHA-256, and the exit code" % tag,
           rec is not None and set(cap) == {"bytes", "file", "sha256", "truncated"} and
           cap.get("file") == "sessions/%s.cap" % rec["id"] and cap.get("truncated") is False and
           (rec.get("exec") or {}).get("exit_code") == 3, repr(rec)[:600])
    if rec is None or "file" not in cap:
        return None
    path = os.path.join(g.audit, cap["file"])
    data = open(path, "rb").read()
    mode, dmode = os.stat(path).st_mode, os.stat(os.path.dirname(path)).st_mode
    result("capture %s: the file is 0600 in a 0700 directory and matches the ledger" % tag,
           stat.S_IMODE(mode) == 0o600 and stat.S_IMODE(dmode) == 0o700 and len(data) == cap["bytes"] and
           hashlib.sha256(data).hexdigest() == cap["sha256"],
           "mode %o dir %o size %d/%d" % (stat.S_IMODE(mode), stat.S_IMODE(dmode), len(data), cap["bytes"]))
    lines = [json.loads(ln) for ln in data.decode().splitlines()]
    outs = [ln for ln in lines[1:] if ln[1] == "o" and "out" in ln[2]]
    errs = [ln for ln in lines[1:] if ln[1] == "e" and "err" in ln[2]]
    result("capture %s: the file keeps stdout and stderr apart, in order, with their timing" % tag,
           lines[0].get("id") == rec["id"] and lines[0].get("version") == 1 and outs and errs and
           errs[0][0] - outs[0][0] >= 200000, repr(lines)[:600])
    r = replay(g, rec["id"], "--no-wait")
    result("capture %s: replay --no-wait prints stdout and stderr" % tag,
           r.returncode == 0 and r.stdout == "out\n" and "err\n" in r.stderr,
           "rc=%d out=%r err=%r" % (r.returncode, r.stdout[:200], r.stderr[:300]))
    t0 = time.time()
    r = replay(g, rec["id"], "--speed", "2")
    took = time.time() - t0
    result("capture %s: replay keeps the pause, scaled by --speed (0.3 s at 2x)" % tag,
           r.returncode == 0 and 0.1 <= took < 5 and "err" in r.stderr, "took %.2fs rc=%d" % (took, r.returncode))
    r = replay(g, rec["id"], "--asciicast")
    parsed = asciicast_checks(r.stdout, "capture %s: --asciicast is valid asciicast v2" % tag, result)
    if parsed:
        header, events = parsed
        text = "".join(e[2] for e in events if e[1] == "o")
        result("capture %s: the asciicast holds the output, titled with actor and command" % tag,
               r.returncode == 0 and text == "out\nerr\n" and header.get("title", "").startswith("agent-capture: kubectl exec"),
               "title=%r text=%r" % (header.get("title"), text))
    return rec


def stdin_checks(g, v, seen, result):
    p = kubectl(g, v, ["exec", "-i", "-n", "web", "api-0", "--", "cat"], stdin=b"typed-in\n\xff\xfe\n")
    rec = result_for(g, r"^kubectl exec api-0 -n web .*-i -- cat$", seen)
    if p.returncode != 0 or rec is None or "sha256" not in rec.get("capture", {}):
        result("capture kubectl %s: exec -i is captured" % v, False, "rc=%d rec=%r" % (p.returncode, rec))
        return
    r = replay_bytes(g, rec["id"], "--no-wait", "--stdin")
    a = replay(g, rec["id"], "--asciicast")
    parsed = asciicast_checks(a.stdout, "capture kubectl %s: asciicast of exec -i is valid" % v, result)
    ins = "".join(e[2] for e in parsed[1] if e[1] == "i") if parsed else ""
    result("capture kubectl %s: stdin is captured (binary-safe), replayed with --stdin and an \"i\" event" % v,
           r.returncode == 0 and r.stdout == b"typed-in\n\xff\xfe\n" * 2 and ins.startswith("typed-in\n") and
           "\ufffd" in ins,
           "replay=%r ins=%r" % (r.stdout[:200], ins[:200]))


def verify_json(g, *args):
    p = g.verify("--json", *args)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        return p.returncode, {"raw": p.stdout + p.stderr}


def seq_of(g, rec):
    """The sequence number of the leaf holding entry rec."""
    for name in sorted(os.listdir(g.audit)):
        if name.startswith("ledger-"):
            for line in open(os.path.join(g.audit, name), encoding="utf-8"):
                o = json.loads(line)
                if o.get("entry") == rec:
                    return o["seq"]
    return None


def tamper_checks(g, rec, result, ncaptured):
    rc, out = verify_json(g)
    result("capture: audit verify checks every capture the gateway wrote",
           rc == 0 and out.get("captures") == ncaptured and out.get("captures_checked") == ncaptured and
           out.get("captures_valid") == ncaptured and out.get("warnings") == [], repr(out)[:800])
    seq = seq_of(g, rec)
    path = os.path.join(g.audit, rec["capture"]["file"])
    data = bytearray(open(path, "rb").read())
    i = data.index(b"out")
    data[i] = ord("O")
    with open(path, "wb") as f:
        f.write(data)
    r = replay(g, rec["id"], "--no-wait")
    a = replay(g, rec["id"], "--asciicast")
    rc, out = verify_json(g)
    fails = [f.get("failure") for f in out.get("failures", [])]
    result("capture: audit verify names the modified capture capture-modified@%s" % seq,
           seq is not None and rc == 1 and fails == ["capture-modified@%d" % seq] and
           out.get("captures_valid") == ncaptured - 1, repr(out)[:800])
    result("capture: a modified capture is refused by replay (exit 1, says it does not match the ledger)",
           r.returncode == 1 and "does not match the ledger" in r.stderr and "Out" not in r.stdout and
           a.returncode == 1 and a.stdout == "", "rc=%d out=%r err=%r" % (r.returncode, r.stdout[:100], r.stderr[:300]))
    os.unlink(path)
    r = replay(g, rec["id"], "--no-wait")
    result("capture: a deleted capture makes replay fail", r.returncode == 1 and r.stdout == "", r.stderr[:300])
    rc, out = verify_json(g)
    fails = [f.get("failure") for f in out.get("failures", [])]
    result("capture: audit verify names the deleted capture capture-missing@%s" % seq,
           rc == 1 and fails == ["capture-missing@%s" % seq], repr(out)[:800])
    rc, out = verify_json(g, "--no-captures")
    result("capture: audit verify --no-captures passes and says the captures were skipped",
           rc == 0 and out.get("captures_skipped") is True and out.get("captures") == ncaptured, repr(out)[:800])
    r = replay(g, "0190abcd-0000-7000-8000-000000000000", "--no-wait")
    result("capture: replay of an unknown id says so (exit 1)",
           r.returncode == 1 and "no result entry" in r.stderr, r.stderr[:300])
    r = replay(g, "../../etc/passwd", "--no-wait")
    result("capture: replay refuses an id that is not a UUID (exit 2)", r.returncode == 2, r.stderr[:300])


def capture_off_checks(env, result):
    """A connection with capture_max: 0 overrides audit.capture_max; the
    main gateway (no capture_max: the default) never made a sessions/."""
    g = Gateway(env, "nocapture", audit_keys={"capture_max": "1MiB"})
    cfg = os.path.join(g.dir, "byline.yaml")
    text = open(cfg).read()
    text2 = re.sub(r"(\n  - name: [^\n]+\n    server: [^\n]+\n)", r"\1    capture_max: 0\n", text, count=1)
    with open(cfg, "w") as f:
        f.write(text2)
    if text2 == text or not g.start():
        result("capture off: a gateway with a connection's capture_max: 0 starts", False, text[-800:])
        return
    try:
        p = kubectl(g, "1.33", ["exec", "-n", "web", "api-0", "--", "sh", "-c", SCRIPT])
        rec = result_for(g, r"^kubectl exec api-0 -n web ", set())
        result("capture off: a connection's capture_max: 0 writes no capture and no capture member",
               p.returncode == 3 and rec is not None and "capture" not in rec and
               not os.path.exists(os.path.join(g.audit, "sessions")), repr(rec)[:400])
    finally:
        g.stop()
    main_audit = os.path.join(env.gw, "audit")
    execs = [e for e in ledger_entries(main_audit) if e.get("kind") == "result" and "exec" in e]
    result("capture off: by default (no audit.capture_max) no session is captured",
           not os.path.exists(os.path.join(main_audit, "sessions")) and not any("capture" in e for e in execs),
           "%d exec results, sessions/ exists: %s" % (len(execs), os.path.exists(os.path.join(main_audit, "sessions"))))


def traced(pid, tids, timeout=5):
    """Waits until every thread in `tids` of `pid` has a tracer. Returns True if so."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        def tracer(t):
            try:
                with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                    return int(re.search(r"TracerPid:\s+(\d+)", f.read()).group(1))
            except (OSError, AttributeError):
                return 0
        if all(tracer(t) for t in tids):
            return True
        time.sleep(0.05)
    return False


def fsync_off_worker(env, result, v="1.33"):
    """A finished session's capture is made durable off the worker: with
    strace holding every fsync(2) of byline's threads but the ledger
    writer's for 2 s, a request sent once the capture file exists is
    answered at once (a worker doing the fsyncs itself would hold it about
    4 s), and the result entry naming the capture is not in the ledger
    while they are held, only after."""
    label = "capture: a request is answered at once while a session's capture is fsynced (each fsync held 2 s)"
    if env.wrapper:
        return  # strace on valgrind's threads: not meaningful; the ASan run covers it
    g = Gateway(env, "capture-sync", audit_keys={"capture_max": "1MiB"})
    if not g.start():
        result(label, False, open(g.log.name).read()[-1500:])
        return
    tracer, why = None, []
    try:
        pid = g.proc.pid
        tids = [t for t in os.listdir("/proc/%d/task" % pid)
                if open("/proc/%d/task/%s/comm" % (pid, t)).read().strip() != "byline-ledger"]
        argv = ["strace", "-qq", "-o", os.devnull, "-e", "trace=fsync", "-e", "inject=fsync:delay_enter=2000000"]
        for t in tids:
            argv += ["-p", t]
        tracer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not traced(pid, tids):
            why.append("strace did not attach: %r" % tracer.stderr.read(2000) if tracer.poll() is not None else "")
        else:
            sessions = os.path.join(g.audit, "sessions")
            ex = subprocess.Popen([KUBECTL % v, "--kubeconfig", g.kubeconfig, "exec", "-n", "web", "api-0", "--",
                                   "sh", "-c", "echo synced"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.time() + 20
            while time.time() < deadline and not (os.path.isdir(sessions) and os.listdir(sessions)):
                time.sleep(0.01)
            t0 = time.time()
            status, _ = g.get(timeout=15)
            took = time.time() - t0
            early = [e for e in ledger_entries(g.audit) if e.get("kind") == "result" and
                     re.search(r"-- sh -c .echo synced", e.get("action", ""))]
            ex.communicate(timeout=60)
            rec = result_for(g, r"^kubectl exec api-0 -n web .*-- sh -c .echo synced", set(), timeout=20)
            cap = (rec or {}).get("capture", {})
            if status != 200 or took > 1.5:
                why.append("the request took %.2f s (status %r)" % (took, status))
            if early:
                why.append("the result entry named the capture before its fsyncs were done: %r" % early)
            if ex.returncode != 0 or "sha256" not in cap:
                why.append("exec rc %r, record %r" % (ex.returncode, rec))
    finally:
        if tracer is not None:
            tracer.terminate()
            tracer.wait(10)
        rc = g.stop()
    result(label, not why and rc == 0, "; ".join(why) + ("; exit %r" % rc if rc else ""))


def run_all(env, result, versions=("1.27", "1.33")):
    g = Gateway(env, "capture", audit_keys={"capture_max": "1MiB"})
    if not g.start():
        result("capture: a gateway with audit.capture_max starts", False, open(g.log.name).read()[-1500:])
        return
    seen, recs = set(), []
    try:
        for v in versions:
            rec = session_checks(g, v, seen, result)
            if rec:
                recs.append(rec)
            stdin_checks(g, v, seen, result)
    finally:
        rc = g.stop()
    result("capture: the capturing gateway exits cleanly (no sanitizer or valgrind report)", rc == 0,
           "exit %r; %s" % (rc, open(g.log.name).read()[-1500:]))
    p = g.verify()
    result("capture: audit verify passes on the capturing gateway's ledger", p.returncode == 0,
           (p.stdout + p.stderr)[-800:])
    if recs:
        tamper_checks(g, recs[0], result, 2 * len(versions))
    capture_off_checks(env, result)
    fsync_off_worker(env, result)
