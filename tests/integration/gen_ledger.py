#!/usr/bin/env python3
"""Writes a large, realistic audit ledger (docs/AUDIT-FORMAT.md) for measuring
and testing the ledger's readers (audit tail, query, join) at scale.

    python3 tests/integration/gen_ledger.py DIR [--entries 400000] [--segment-bytes 67108864] [--seed 1]

Leaves are canonical JSON (keys sorted, no spaces, ASCII only), chained by
seq and prev; a checkpoint line (unsigned: readers other than verify do not
judge it) every 1000 leaves; segments rotate before --segment-bytes. The mix:
requests in flight at once (results out of order), watches whose result
comes much later (often in a later segment), requests refused without an
intent (their result carries the request's fields), a restart with aborted
entries, and notices. --torn leaves half a line after the last '\\n'.
Returns 0; prints what it wrote."""

import argparse
import base64
import hashlib
import json
import os
import random
import sys

ACTORS = ["agent-deploybot", "agent-reporting", "agent-oncall", "alice", "bob"]
VERBS = [("get", "GET"), ("list", "GET"), ("create", "POST"), ("patch", "PATCH"), ("delete", "DELETE")]
RESOURCES = ["pods", "deployments", "configmaps", "services", "jobs"]
NAMESPACES = ["web", "batch", "kube-system", "payments"]


def jcs(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Writer:
    def __init__(self, d, segment_bytes):
        self.dir, self.max = d, segment_bytes
        self.seg, self.size, self.f = 0, 0, None
        self.seq, self.prev = 0, b"\0" * 32
        self.lines = 0
        self.rotate()

    def rotate(self):
        if self.f:
            self.f.close()
        self.seg += 1
        self.f = open(os.path.join(self.dir, "ledger-%06u.jsonl" % self.seg), "wb")
        self.size = 0

    def raw(self, line):
        b = line.encode() + b"\n"
        if self.size and self.size + len(b) > self.max:
            self.rotate()
        self.f.write(b)
        self.size += len(b)
        self.lines += 1

    def leaf(self, entry):
        line = jcs({"entry": entry, "prev": base64.b64encode(self.prev).decode(), "seq": self.seq})
        self.prev = hashlib.sha256(b"\0" + line.encode()).digest()
        self.seq += 1
        self.raw(line)
        if self.seq % 1000 == 0:
            self.raw(jcs({"checkpoint": "byline/gen\n%d\n%s\n\n\u2014 byline/gen AAAA\n" %
                                        (self.seq, base64.b64encode(self.prev).decode())}))


def ts(us):
    s, frac = divmod(us, 1000000)
    d, rem = divmod(s, 86400)
    import datetime
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(days=d, seconds=rem)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % frac


def uuid7(rng, us):
    ms = us // 1000
    r = rng.getrandbits(74)
    h = "%012x" % ms + "7" + "%03x" % (r >> 62) + "%04x" % (0x8000 | ((r >> 48) & 0x3fff)) + "%012x" % (r & (2**48 - 1))
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


def request_fields(rng, actor, i):
    verb, method = rng.choice(VERBS)
    res, ns = rng.choice(RESOURCES), rng.choice(NAMESPACES)
    name = "%s-%d" % (res[:-1], i % 97)
    named = verb not in ("list", "create")
    uri = "/api/v1/namespaces/%s/%s%s" % (ns, res, "/" + name if named else "")
    req = {"apiGroup": "", "apiVersion": "v1", "namespace": ns, "resource": res, "verb": verb}
    if named:
        req["name"] = name
    action = "kubectl %s %s%s -n %s" % (verb, res, "/" + name if named else "", ns)
    return {"actor": actor, "groups": ["agents"], "credential": "token", "source_ip": "10.0.%d.%d" % (i % 7, i % 251),
            "user_agent": "kubectl/v1.32.0 (linux/amd64) kubernetes/abc", "kubectl_session": "s-%d" % (i % 50),
            "kubectl_command": "kubectl %s" % verb, "connection": "prod-eks", "method": method, "uri": uri,
            "request": req, "action": action}


def generate(d, entries, segment_bytes, seed, torn=False):
    rng = random.Random(seed)
    w = Writer(d, segment_bytes)
    now = 1781524800 * 1000000  # 2026-06-15T12:00:00Z
    pending = []   # (id, intent fields, due leaf count)
    i = 0
    w.leaf({"kind": "notice", "event": "start", "detail": "byline started", "ts": ts(now), "version": "0.2.0"})
    while w.seq < entries:
        now += rng.randint(50, 4000)
        i += 1
        roll = rng.random()
        due = [p for p in pending if p[2] <= w.seq]
        if due and roll < 0.5:
            p = due[0]
            pending.remove(p)
            f = p[1]
            w.leaf({"kind": "result", "id": p[0], "actor": f["actor"], "action": f["action"],
                    "connection": f["connection"], "decision": "allowed", "rule": "agents", "result": "allowed",
                    "status": 200, "duration_us": rng.randint(900, 90000), "bytes_in": 0,
                    "bytes_out": rng.randint(200, 40000), "ts": ts(now)})
        elif roll < 0.53:  # refused by the policy: a result only, with the request's fields
            f = request_fields(rng, rng.choice(ACTORS), i)
            e = dict(f, kind="result", id=uuid7(rng, now), ts=ts(now), decision="denied", rule="default-deny",
                     result="denied", status=403, reason="no rule allows it", duration_us=120, bytes_in=0,
                     bytes_out=250)
            w.leaf(e)
        elif roll < 0.5302 and pending:  # a restart: what was in flight is aborted
            w.leaf({"kind": "notice", "event": "stop", "detail": "byline stopping", "ts": ts(now),
                    "version": "0.2.0"})
            for p in pending:
                w.leaf({"kind": "aborted", "id": p[0], "reason": "byline stopped", "ts": ts(now)})
            pending = []
            w.leaf({"kind": "notice", "event": "start", "detail": "byline started", "ts": ts(now),
                    "version": "0.2.0"})
        elif len(pending) < 64:
            f = request_fields(rng, rng.choice(ACTORS), i)
            rid = uuid7(rng, now)
            w.leaf(dict(f, kind="intent", id=rid, ts=ts(now), decision="allowed", rule="agents"))
            later = rng.randint(20000, 120000) if rng.random() < 0.01 else rng.randint(1, 40)  # watches
            pending.append((rid, f, w.seq + later))
    if torn:
        w.f.write(b'{"entry":{"action":"kubectl get pods","actor":"agent-x","conn')
    w.f.close()
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--entries", type=int, default=400000)
    ap.add_argument("--segment-bytes", type=int, default=64 << 20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--torn", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.dir, mode=0o700, exist_ok=True)
    if any(n.startswith("ledger-") for n in os.listdir(a.dir)):
        sys.exit("gen_ledger: %s already holds a ledger" % a.dir)
    w = generate(a.dir, a.entries, a.segment_bytes, a.seed, a.torn)
    print("wrote %d entries, %d lines in %d segments to %s" % (w.seq, w.lines, w.seg, a.dir))


if __name__ == "__main__":
    main()
