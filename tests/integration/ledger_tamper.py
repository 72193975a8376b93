#!/usr/bin/env python3
"""ledger_tamper.py - `byline audit verify` and `prove` against tampered ledgers.

Writes a small valid ledger by itself, from docs/AUDIT-FORMAT.md alone (RFC
8785 lines, RFC 6962 tree, C2SP checkpoints signed with `openssl pkeyutl
-rawin` on a key from `openssl genpkey -algorithm ED25519`), so the test is
an independent implementation of the format checking byline's. Then applies
each tampering and asserts that verify names the right kind and place:
flipped bytes, a deleted line, two swapped lines, a truncated tail against
a trusted checkpoint, history rewritten and re-signed with another key,
history rewritten and re-signed with the right key against a trusted
checkpoint (a fork), an intent left without a result, a missing segment.
The untouched ledger, a torn last line and --live pass. Session captures
(sections 6 and 8): a capture file modified, grown, deleted or replaced by
a symlink, sessions/ gone, a result naming a file outside sessions/, and a
result entry whose recorded hash was edited; --no-captures, and files no
result names (warnings, not failures).

    tests/integration/ledger_tamper.py [BYLINE]      (default build/byline)

Prints PASS/FAIL lines and ends with "N passed, N failed".
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BYLINE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/byline"))
ORIGIN = "byline/tamper.test"
PASSED, FAILED = 0, 0


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("PASS " + name)
    else:
        FAILED += 1
        print("FAIL " + name)
        for line in str(detail).splitlines()[:30]:
            print("     " + line)


# ---- the format, from docs/AUDIT-FORMAT.md ----

def jcs(value):
    """RFC 8785 for the integer-only, ASCII-keyed JSON byline writes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(line):
    return sha256(b"\x00" + line)


def mth(hashes):
    if not hashes:
        return sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:]))


def b64(b):
    return base64.b64encode(b).decode()


class Key:
    def __init__(self, workdir, name):
        self.path = os.path.join(workdir, name + ".key")
        self.pub = os.path.join(workdir, name + ".pub")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", self.path], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout", "-out", self.pub], check=True,
                       capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout", "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.raw = der[-32:]  # SubjectPublicKeyInfo: 12 bytes of header, then the key
        self.keyid = sha256(ORIGIN.encode() + b"\n" + b"\x01" + self.raw)[:4]
        self.workdir = workdir

    def sign(self, body):
        src = os.path.join(self.workdir, "body")
        with open(src, "wb") as f:
            f.write(body)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", self.path, "-rawin", "-in", src],
                             check=True, capture_output=True).stdout
        assert len(sig) == 64
        return sig


def checkpoint(key, size, root):
    body = "%s\n%d\n%s\n" % (ORIGIN, size, b64(root))
    sig = key.sign(body.encode())
    return body + "\n\u2014 %s %s\n" % (ORIGIN, b64(key.keyid + sig))


def entries(n=22, drop_result=None, rewrite=None):
    """n entries: a start notice, then intent/result pairs (one aborted, one
    refused request with a result only). drop_result: leave that intent's
    result out (a notice takes its place); rewrite: change the action of
    entry `rewrite`."""
    out = [{"kind": "notice", "event": "start", "detail": "tamper test", "version": "0.test",
            "ts": "2026-06-15T12:00:00.000000Z"}]
    i = 0
    while len(out) < n:
        rid = "0190a5b2-0000-7000-8000-%012d" % i
        ts = "2026-06-15T12:04:%02d.%06dZ" % (i % 60, i)
        action = "kubectl get pods -n web # %d \u00e9\t\"q\"" % i
        intent = {"kind": "intent", "id": rid, "actor": "agent-%d" % (i % 3), "groups": ["deployers"],
                  "credential": "token", "source_ip": "10.0.0.%d" % i, "connection": "prod", "method": "GET",
                  "uri": "/api/v1/namespaces/web/pods", "action": action, "ts": ts,
                  "request": {"verb": "list", "resource": "pods", "namespace": "web", "apiVersion": "v1"}}
        if i == 4:  # refused by byline: a result only
            out.append({"kind": "result", "id": rid, "actor": None, "result": "unauthenticated", "status": 401,
                        "ts": ts, "action": action, "duration_us": 12})
        else:
            out.append(intent)
            if i == 6:
                out.append({"kind": "aborted", "id": rid, "reason": "restart", "ts": ts})
            elif i == drop_result:
                out.append({"kind": "notice", "event": "space", "detail": "stand-in", "ts": ts})
            else:
                out.append({"kind": "result", "id": rid, "actor": intent["actor"], "result": "allowed",
                            "status": 200, "ts": ts, "action": action, "duration_us": 1000 + i,
                            "bytes_in": 0, "bytes_out": 2048 * i, "upgraded": False})
        i += 1
    out = out[:n]
    if rewrite is not None:
        out[rewrite] = dict(out[rewrite], action="kubectl delete namespace web")
    return out


CK_AFTER = (3, 8, 14, 21)  # a checkpoint after these leaves
SEGMENT_BREAK = 9          # segment 2 starts with this leaf


def write_ledger(cfgdir, key, ents):
    """Writes DIR/audit/ledger-00000N.jsonl and DIR/audit/checkpoint; returns
    (segments as lists of lines, {size: checkpoint text})."""
    audit = os.path.join(cfgdir, "audit")
    os.makedirs(audit, exist_ok=True)
    for f in os.listdir(audit):
        if not os.path.isdir(os.path.join(audit, f)):  # sessions/ is the capture tests' own
            os.unlink(os.path.join(audit, f))
    segs, cks, hashes, prev = [[], []], {}, [], bytes(32)
    for seq, e in enumerate(ents):
        line = jcs({"entry": e, "prev": b64(prev), "seq": seq})
        segs[0 if seq < SEGMENT_BREAK else 1].append(line)
        prev = leaf_hash(line)
        hashes.append(prev)
        if seq in CK_AFTER:
            text = checkpoint(key, len(hashes), mth(hashes))
            cks[len(hashes)] = text
            segs[0 if seq < SEGMENT_BREAK else 1].append(jcs({"checkpoint": text}))
    save(cfgdir, segs)
    with open(os.path.join(audit, "checkpoint"), "w") as f:
        f.write(cks[max(cks)])
    return segs, cks


def save(cfgdir, segs, names=None):
    audit = os.path.join(cfgdir, "audit")
    for f in os.listdir(audit):
        if f.startswith("ledger-"):
            os.unlink(os.path.join(audit, f))
    for i, lines in enumerate(segs):
        name = names[i] if names else "ledger-%06d.jsonl" % (i + 1)
        with open(os.path.join(audit, name), "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines))


def verify(cfgdir, *extra):
    p = subprocess.run([BYLINE, "audit", "verify", "--dir", cfgdir, "--json"] + list(extra), capture_output=True,
                       text=True, timeout=120)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = {}
    return p.returncode, out, p.stdout + p.stderr


def failures(out):
    return [f["failure"] for f in out.get("failures", [])]


def expect(name, cfgdir, want, *extra, exact=True):
    """want: the failures verify must report (exact: nothing else)."""
    rc, out, raw = verify(cfgdir, *extra)
    got = failures(out)
    ok = rc == (1 if want else 0) and out.get("verdict") == ("invalid" if want else "valid")
    ok = ok and (got == want if exact else all(w in got for w in want))
    check(name, ok, "exit %d, failures %s, want %s\n%s" % (rc, got, want, raw))
    return out


def find(segs, seq):
    """(segment index, line index) of leaf seq."""
    for si, lines in enumerate(segs):
        for li, l in enumerate(lines):
            if l.startswith(b'{"entry"') and json.loads(l)["seq"] == seq:
                return si, li
    raise KeyError(seq)


def main():
    if not os.access(BYLINE, os.X_OK):
        print("FAIL no byline binary at %s" % BYLINE)
        print("0 passed, 1 failed")
        return 1
    work = tempfile.mkdtemp(prefix="byline-tamper-")
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


def run(work):
    cfg = os.path.join(work, "cfg")
    os.makedirs(cfg)
    key = Key(work, "right")
    other = Key(work, "other")
    shutil.copy(key.pub, os.path.join(cfg, "audit-signing.pub"))
    ents = entries()
    segs, cks = write_ledger(cfg, key, ents)
    original = [list(s) for s in segs]

    out = expect("untouched ledger verifies", cfg, [])
    check("summary counts", out.get("entries") == 22 and out.get("entries_valid") == 22 and
          out.get("checkpoints") == 4 and out.get("checkpoints_valid") == 4 and out.get("segments") == 2 and
          out.get("intents") == 10 and out.get("results") == 10 and out.get("aborted") == 1 and
          out.get("notices") == 1 and out.get("origin") == ORIGIN, out)
    p = subprocess.run([BYLINE, "audit", "verify", "--dir", cfg], capture_output=True, text=True)
    check("text summary in validate-logs style", p.returncode == 0 and "Results requested for" in p.stdout and
          "22/22 entries valid" in p.stdout and "4/4 checkpoints valid" in p.stdout and
          "Verdict: VALID" in p.stdout, p.stdout + p.stderr)

    # an inclusion proof, checked here independently of byline
    p = subprocess.run([BYLINE, "audit", "prove", "5", "--dir", cfg, "--json"], capture_output=True, text=True)
    try:
        pr = json.loads(p.stdout)
        h = leaf_hash(pr["line"].encode())
        idx, size = pr["leaf_index"], pr["tree_size"]
        fn, sn, r = idx, size - 1, h
        for s in pr["audit_path"]:
            s = base64.b64decode(s)
            if fn & 1 or fn == sn:
                r = sha256(b"\x01" + s + r)
                while not fn & 1 and fn:
                    fn, sn = fn >> 1, sn >> 1
            else:
                r = sha256(b"\x01" + r + s)
            fn, sn = fn >> 1, sn >> 1
        root = base64.b64decode(pr["checkpoint"].split("\n")[2])
        ok = (p.returncode == 0 and idx == 5 and size == 22 and sn == 0 and r == root and
              pr["leaf_hash"] == b64(h) and pr["checkpoint"] == cks[22] and pr["entry"] == ents[5])
    except (ValueError, KeyError, IndexError, TypeError) as e:
        ok, pr = False, e
    check("prove 5: the path leads to the signed root", ok, "%s\n%s" % (pr, p.stderr))
    p = subprocess.run([BYLINE, "audit", "prove", "99", "--dir", cfg], capture_output=True, text=True)
    check("prove of an entry not in the ledger fails", p.returncode == 1 and "not in the ledger" in p.stderr,
          p.stderr)

    # 1. a flipped byte inside entry 5's action: still canonical JSON, so the
    #    next entry's prev gives it away
    si, li = find(segs, 5)
    line = bytearray(segs[si][li])
    line[line.index(b"get pods") + 1] ^= 0x01
    segs[si][li] = bytes(line)
    save(cfg, segs)
    expect("flipped byte in an entry -> modified@5", cfg, ["modified@5"])
    # 2. a flipped byte that breaks the JSON
    segs = [list(s) for s in original]
    si, li = find(segs, 11)
    segs[si][li] = segs[si][li].replace(b'"seq":11', b'"seq":11 ', 1)
    save(cfg, segs)
    expect("non-canonical line -> modified@11", cfg, ["modified@11"])
    # 3. a deleted line
    segs = [list(s) for s in original]
    si, li = find(segs, 7)
    del segs[si][li]
    save(cfg, segs)
    expect("deleted line -> missing@7", cfg, ["missing@7"], exact=False)
    rc, out, raw = verify(cfg)
    check("deleted line: nothing else is blamed (the checkpoints' mismatch follows from it)",
          failures(out) == ["missing@7"], raw)
    # 3b. a request's intent and result both deleted: one range missing
    segs = [list(s) for s in original]
    for seq in (8, 7):
        si, li = find(segs, seq)
        del segs[si][li]
    save(cfg, segs)
    expect("two deleted lines -> missing@7", cfg, ["missing@7"])
    # 4. two lines swapped
    segs = [list(s) for s in original]
    si, li = find(segs, 15)
    sj, lj = find(segs, 16)
    segs[si][li], segs[sj][lj] = segs[sj][lj], segs[si][li]
    save(cfg, segs)
    expect("swapped lines -> reordered@15", cfg, ["reordered@15"])
    # 5. the tail cut off, the checkpoint file rolled back with it: only a
    #    checkpoint kept elsewhere can tell
    segs = [list(s) for s in original]
    trusted = os.path.join(work, "trusted-checkpoint")
    with open(trusted, "w") as f:
        f.write(cks[22])
    i = segs[1].index(jcs({"checkpoint": cks[15]}))
    segs[1] = segs[1][:i + 1]
    save(cfg, segs)
    with open(os.path.join(cfg, "audit", "checkpoint"), "w") as f:
        f.write(cks[15])
    expect("truncated tail, trusted checkpoint kept aside -> truncated", cfg, ["truncated"],
           "--trusted-checkpoint", trusted)
    expect("truncated tail without the trusted checkpoint: only the cut-off result shows", cfg, ["unclosed@14"])
    # 6. history rewritten, re-signed with another key
    write_ledger(cfg, other, entries(rewrite=3))
    out = expect("rewritten and re-signed with another key -> bad-signature", cfg, ["bad-signature"], exact=False)
    check("another key: only bad-signature failures",
          set(f.split("@")[0] for f in failures(out)) == {"bad-signature"} and out.get("checkpoints_valid") == 0,
          out)
    # 7. history rewritten, re-signed with the right key: a fork of the trusted checkpoint
    with open(trusted, "w") as f:
        f.write(cks[9])
    write_ledger(cfg, key, entries(rewrite=3))
    expect("rewritten and re-signed with the right key -> fork@9", cfg, ["fork@9"], "--trusted-checkpoint", trusted)
    expect("the rewritten ledger alone is consistent", cfg, [])
    # 8. an intent without a result; --live calls it in flight
    write_ledger(cfg, key, entries(drop_result=9))
    out = expect("intent without a result -> unclosed@18", cfg, ["unclosed@%d" % find_intent(9)])
    out = expect("--live: the open intent is in flight", cfg, [], "--live")
    check("--live counts it", out.get("in_flight") == 1, out)
    # 9. a torn last line
    segs, cks = write_ledger(cfg, key, ents)
    with open(os.path.join(cfg, "audit", "ledger-000002.jsonl"), "ab") as f:
        f.write(b'{"entry":{"kind":"inte')
    out = expect("torn last line is not a failure", cfg, [])
    check("torn last line is reported", out.get("torn", {}) and out["torn"].get("bytes") == 22, out)
    # 10. a missing segment
    segs, cks = write_ledger(cfg, key, ents)
    save(cfg, [segs[0], [], segs[1]])
    os.unlink(os.path.join(cfg, "audit", "ledger-000002.jsonl"))
    rc, out, raw = verify(cfg)
    check("a missing segment file -> missing@9", rc == 1 and "missing@9" in failures(out), raw)
    # 11. a checkpoint line whose signature was altered
    segs, cks = write_ledger(cfg, key, ents)
    i = segs[0].index(jcs({"checkpoint": cks[4]}))
    bad = cks[4][:-6] + ("A" if cks[4][-6] != "A" else "B") + cks[4][-5:]
    segs[0][i] = jcs({"checkpoint": bad})
    save(cfg, segs)
    out = expect("altered signature -> bad-signature", cfg, ["bad-signature"])
    check("3/4 checkpoints valid", out.get("checkpoints_valid") == 3, out)
    # 12. the last entry altered: no later prev covers it, only the checkpoints can tell
    segs, cks = write_ledger(cfg, key, ents)
    si, li = find(segs, 21)
    e = json.loads(segs[si][li])
    e["entry"]["action"] = "kubectl get secrets"
    segs[si][li] = jcs(e)
    save(cfg, segs)
    expect("last entry altered -> fork@22 (its checkpoint no longer matches)", cfg, ["fork@22"])
    capture_checks(work, key)


# ---- session captures (docs/AUDIT-FORMAT.md sections 6 and 8) ----

CAPTURED = (1, 2, 3)  # requests whose result names a capture
UNWRITTEN = 5         # a result whose capture could not be written


def rid_of(i):
    return "0190a5b2-0000-7000-8000-%012d" % i


def capture_bytes(i):
    text = "out %d\n\u00e9" % i
    header = {"action": "kubectl exec api-0 -- sh", "actor": "agent-1", "bytes": len(text.encode()),
              "connection": "prod", "format": "byline-capture", "id": rid_of(i),
              "started": "2026-06-15T12:04:01.000000Z", "truncated": False, "version": 1}
    return jcs(header) + b"\n" + jcs([1500, "o", text]) + b"\n"


def captured_entries(member=None):
    """entries() whose results of CAPTURED name capture files (member(i, data)
    overrides the capture member) and whose result UNWRITTEN says the capture
    was not written."""
    ents = entries()
    for e in ents:
        if e["kind"] != "result" or "id" not in e:
            continue
        i = int(e["id"][-12:])
        if i in CAPTURED:
            data = capture_bytes(i)
            e["capture"] = member(i, data) if member else {
                "bytes": len(data), "file": "sessions/%s.cap" % rid_of(i),
                "sha256": hashlib.sha256(data).hexdigest(), "truncated": False}
        elif i == UNWRITTEN:
            e["capture"] = {"error": "writing the capture file: No space left on device"}
    return ents


def write_sessions(cfgdir):
    sessions = os.path.join(cfgdir, "audit", "sessions")
    shutil.rmtree(sessions, ignore_errors=True)
    os.makedirs(sessions, mode=0o700)
    for i in CAPTURED:
        with open(os.path.join(sessions, rid_of(i) + ".cap"), "wb") as f:
            f.write(capture_bytes(i))
    return sessions


def result_seq(ents, i):
    for seq, e in enumerate(ents):
        if e["kind"] == "result" and e.get("id") == rid_of(i):
            return seq
    raise KeyError(i)


def capture_checks(work, key):
    cfg = os.path.join(work, "cfg-captures")
    os.makedirs(cfg)
    shutil.copy(key.pub, os.path.join(cfg, "audit-signing.pub"))
    ents = captured_entries()
    segs, _ = write_ledger(cfg, key, ents)
    sessions = write_sessions(cfg)
    s1, s2, s3 = (result_seq(ents, i) for i in CAPTURED)
    cap1 = os.path.join(sessions, rid_of(1) + ".cap")

    out = expect("captures: untouched ledger and captures verify", cfg, [])
    check("captures: every capture named is checked and counted",
          out.get("captures") == 3 and out.get("captures_checked") == 3 and out.get("captures_valid") == 3 and
          out.get("captures_not_written") == 1 and out.get("captures_skipped") is False and
          out.get("warnings") == [], out)
    p = subprocess.run([BYLINE, "audit", "verify", "--dir", cfg], capture_output=True, text=True)
    check("captures: the text summary counts them", p.returncode == 0 and
          "3/3 captures valid (3 checked; 1 not written at the time)" in p.stdout and "Verdict: VALID\n" in p.stdout,
          p.stdout + p.stderr)

    data = bytearray(capture_bytes(1))
    data[data.index(b"out")] = ord("O")  # same size, one byte
    with open(cap1, "wb") as f:
        f.write(data)
    out = expect("captures: a byte changed -> capture-modified@%d" % s1, cfg, ["capture-modified@%d" % s1])
    f0 = (out.get("failures") or [{}])[0]
    check("captures: the failure names the result's place and the file", f0.get("seq") == s1 and
          f0.get("segment") == 1 and "sessions/%s.cap" % rid_of(1) in f0.get("detail", "") and
          "SHA-256" in f0.get("detail", "") and out.get("captures_valid") == 2, f0)
    p = subprocess.run([BYLINE, "audit", "verify", "--dir", cfg], capture_output=True, text=True)
    check("captures: the text summary names it", p.returncode == 1 and "2/3 captures valid" in p.stdout and
          "INVALID capture-modified@%d: ledger-000001.jsonl line" % s1 in p.stdout, p.stdout)
    with open(cap1, "ab") as f:
        f.write(b"[2000,\"o\",\"more\"]\n")
    expect("captures: a capture grown -> capture-modified@%d" % s1, cfg, ["capture-modified@%d" % s1])
    os.unlink(cap1)
    out = expect("captures: a capture deleted -> capture-missing@%d" % s1, cfg, ["capture-missing@%d" % s1])
    out = expect("captures: --no-captures passes without the file", cfg, [], "--no-captures")
    check("captures: --no-captures says they were skipped", out.get("captures_skipped") is True and
          out.get("captures") == 3 and out.get("captures_checked") == 0, out)
    p = subprocess.run([BYLINE, "audit", "verify", "--dir", cfg, "--no-captures"], capture_output=True, text=True)
    check("captures: the text summary says they were not checked", p.returncode == 0 and
          "captures not checked (--no-captures): 3 named by the ledger" in p.stdout and
          "Verdict: VALID; captures not checked" in p.stdout, p.stdout)
    os.symlink(os.path.join(sessions, rid_of(2) + ".cap"), cap1)
    expect("captures: a symlink in the capture's place -> capture-modified@%d" % s1, cfg,
           ["capture-modified@%d" % s1])
    shutil.rmtree(sessions)
    expect("captures: sessions/ gone -> capture-missing for each", cfg,
           ["capture-missing@%d" % s for s in (s1, s2, s3)])
    expect("captures: sessions/ gone, --no-captures passes", cfg, [], "--no-captures")

    # files no result names: warnings
    sessions = write_sessions(cfg)
    stray = "0190ffff-0000-7000-8000-000000000000"
    for name in (stray + ".cap", rid_of(6) + ".cap", "notes.txt"):  # request 6 was aborted
        with open(os.path.join(sessions, name), "wb") as f:
            f.write(b"x\n")
    out = expect("captures: files no result names are not failures", cfg, [])
    warns = {w.get("file"): w for w in out.get("warnings", [])}
    check("captures: ... but warnings, each saying what the ledger knows of it",
          set(warns) == {"sessions/%s.cap" % stray, "sessions/%s.cap" % rid_of(6), "sessions/notes.txt"} and
          all(w.get("warning") == "capture-unreferenced" for w in warns.values()) and
          "aborted at entry" in warns["sessions/%s.cap" % rid_of(6)].get("detail", "") and
          "no entry in the ledger" in warns["sessions/%s.cap" % stray].get("detail", ""), out.get("warnings"))
    p = subprocess.run([BYLINE, "audit", "verify", "--dir", cfg], capture_output=True, text=True)
    check("captures: the text summary lists the warnings", p.returncode == 0 and
          "WARNING capture-unreferenced: sessions/%s.cap" % stray in p.stdout and
          "Verdict: VALID, with 3 warning(s)" in p.stdout, p.stdout)
    write_sessions(cfg)

    # the result entry's recorded hash edited: the entry is modified, not the capture
    si, li = find(segs, s2)
    line = segs[si][li]
    h = hashlib.sha256(capture_bytes(2)).hexdigest()
    segs[si][li] = line.replace(h.encode(), (("0" if h[0] != "0" else "1") + h[1:]).encode())
    save(cfg, segs)
    out = expect("captures: the hash in the result entry edited -> modified@%d only" % s2, cfg, ["modified@%d" % s2])
    check("captures: that capture is counted not trusted, not checked", out.get("captures_not_trusted") == 1 and
          out.get("captures_checked") == 2, out)

    # results naming files outside sessions/<id>.cap: never opened
    outside = os.path.join(work, "outside.cap")
    with open(outside, "wb") as f:
        f.write(capture_bytes(1))
    for label, name in (("an absolute path", outside), ("'..'", "sessions/../../outside.cap"),
                        ("another session's file", "sessions/%s.cap" % rid_of(2))):
        def member(i, data, name=name):
            return {"bytes": len(data), "file": name if i == 1 else "sessions/%s.cap" % rid_of(i),
                    "sha256": hashlib.sha256(data).hexdigest(), "truncated": False}
        write_ledger(cfg, key, captured_entries(member))
        out = expect("captures: a result naming %s -> capture-invalid@%d" % (label, s1), cfg,
                     ["capture-invalid@%d" % s1])
        check("captures: %s is not opened" % label, out.get("captures_checked") == 2, out)


def find_intent(i):
    """The seq of the i-th request's intent in entries()."""
    for seq, e in enumerate(entries()):
        if e["kind"] == "intent" and e["id"].endswith("%012d" % i):
            return seq
    raise KeyError(i)


if __name__ == "__main__":
    sys.exit(main())
