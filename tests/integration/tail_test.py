#!/usr/bin/env python3
"""`byline audit tail` on a generated ledger of many segments, against a
model written here: the newest N requests ordered by where each started
(its intent, a result refused without one, a notice), each merged with its
outcome as docs/AUDIT-FORMAT.md and src/audit/merge.h say. The ledger
(gen_ledger.py) has results out of order, watches whose result comes
segments later, refused requests, restarts with aborted entries, and a
torn last line.

    python3 tests/integration/tail_test.py build/asan/byline

Ends with "N passed, N failed"; exit 1 on a failure."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_ledger  # noqa: E402

RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print("%s %s" % ("PASS" if ok else "FAIL", name))
    if not ok and detail:
        print("     " + detail[:2000].replace("\n", "\n     "))


def mark(rec, kind):
    if kind == "aborted":
        rec["result"] = "aborted"
    if kind != "notice":
        rec["kind"] = "request"


def merge_add(rec, e):
    ts = rec.get("ts")
    for k, v in e.items():
        rec.setdefault(k, v)
    if e["kind"] != "intent":
        rec.update(e)
    if ts is not None:
        rec["ts"] = ts
    mark(rec, e["kind"])


def model(audit):
    """Every request of the ledger in the order it started, merged; and for
    each, the segments of its first and of its last entry."""
    rows, by_id, spans = [], {}, []
    names = sorted(n for n in os.listdir(audit) if n.startswith("ledger-"))
    for seg, name in enumerate(names, 1):
        with open(os.path.join(audit, name), "rb") as f:
            data = f.read()
        for raw in data.split(b"\n")[:-1]:  # the bytes after the last '\n' are torn
            line = json.loads(raw)
            e = line.get("entry")
            if e is None:
                continue
            rid = e.get("id") if e["kind"] != "notice" else None
            if rid is not None and rid in by_id:
                merge_add(rows[by_id[rid]], e)
                spans[by_id[rid]] = (spans[by_id[rid]][0], seg)
                continue
            rec = dict(e)
            mark(rec, e["kind"])
            if rid is not None:
                by_id[rid] = len(rows)
            rows.append(rec)
            spans.append((seg, seg))
    return rows, spans


def tail(byline, cfg, n):
    p = subprocess.run([byline, "audit", "tail", "--dir", cfg, "-n", str(n), "--json"], capture_output=True,
                       text=True, timeout=600)
    return p.returncode, [json.loads(l) for l in p.stdout.splitlines()], p.stderr


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tail_test.py BYLINE")
    byline = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="byline-tail-")
    try:
        cfg = os.path.join(work, "cfg")
        audit = os.path.join(cfg, "audit")
        os.makedirs(audit)
        w = gen_ledger.generate(audit, 30000, 1 << 20, seed=7, torn=True)
        check("the generated ledger has many segments", w.seg >= 8, "%d segments" % w.seg)
        want, spans = model(audit)
        for n in (1, 10, 100, 1000, 7000, len(want), len(want) + 10):
            rc, got, err = tail(byline, cfg, n)
            exp = want[-n:]
            first_diff = next((i for i, (a, b) in enumerate(zip(got, exp)) if a != b), None)
            check("tail -n %d: the newest %d requests, whole, in the order they started" % (n, len(exp)),
                  rc == 0 and got == exp,
                  "rc %d, %d rows (want %d), first difference at %s: %s\nwant %s\n%s" %
                  (rc, len(got), len(exp), first_diff, got[first_diff] if first_diff is not None else "",
                   exp[first_diff] if first_diff is not None else "", err[-500:]))
            check("tail -n %d: the torn last line is reported as skipped" % n,
                  "1 line(s) were not audit records" in err, err[-500:])
        # the comparisons above held requests whose result is segments after their intent
        split = [i for i in range(len(want) - 1000, len(want)) if spans[i][0] < spans[i][1]]
        check("the newest 1000 hold requests whose outcome is in a later segment than their start",
              len(split) >= 5, "%d" % len(split))
        # a missing segment in the way is an error, named
        os.rename(os.path.join(audit, "ledger-000003.jsonl"), os.path.join(work, "moved.jsonl"))
        rc, got, err = tail(byline, cfg, len(want))
        check("a missing segment on the way back is an error that names it",
              rc == 1 and "ledger-000003.jsonl is missing" in err, "rc %d %s" % (rc, err[-500:]))
        rc, got, err = tail(byline, cfg, 100)
        check("...but not when the rows asked for are after it", rc == 0 and got == want[-100:], err[-500:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
