#!/usr/bin/env python3
"""CPU accounting for `make bench`: how much CPU did processes that are not
part of the benchmark use while it measured? On a 2-core machine a busy
neighbour (a fuzzer, a compiler) halves a number, so every measurement
records this and the report flags it.

  cpu.py snap FILE                 save /proc/stat and every process's CPU time
  cpu.py diff BEFORE AFTER --root PID [--ours-cpu SECONDS] [--label PID=NAME]...
      prints JSON: {"seconds", "other_cores", "steal_cores", "top": [[name, cores]...],
                    "ours": {NAME: cores}, "threads": {NAME: {THREAD: cores}},
                    "idle_by_cpu": [cores idle or waiting for I/O, per CPU]}
      other = all busy CPU - the CPU of PID's descendants that lived through
      the interval - SECONDS (CPU of our descendants that exited, e.g. wrk);
      "ours" splits our descendants' CPU by the --label ancestor they have;
      "threads" splits each labelled byline process by thread name
      (byline-w0, byline-ledger, ...: byline names its threads).
"""
import argparse
import json
import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def snap():
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    cpu = [int(x) for x in lines[0].split()[1:]]
    # user nice system idle iowait irq softirq steal
    busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6]
    # each CPU's idle + iowait: was the CPU the servers are pinned to saturated?
    idle = [int(f[4]) + int(f[5]) for f in (ln.split() for ln in lines[1:])
            if f and f[0].startswith("cpu")]
    procs = {}
    for pid in os.listdir("/proc"):
        st = pid.isdigit() and read_stat(f"/proc/{pid}/stat")
        if not st:
            continue
        comm, rest = st
        # fields after comm: state ppid ... utime(12) stime(13) ... num_threads(18) starttime(20)
        procs[pid] = {"comm": comm, "ppid": rest[1], "cpu": int(rest[11]) + int(rest[12]), "start": rest[19]}
        if int(rest[17]) > 1:  # byline names its threads (whatever the binary is called)
            procs[pid]["threads"] = threads(pid)
    return {"t": time.monotonic(), "busy": busy, "steal": cpu[7], "idle": idle, "procs": procs}


def threads(pid):
    """CPU ticks of one process by thread name."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        st = read_stat(f"/proc/{pid}/task/{tid}/stat")
        if st:
            out[st[0]] = out.get(st[0], 0) + int(st[1][11]) + int(st[1][12])
    return out


def read_stat(path):
    """(comm, the fields after it) of a /proc stat file, or None if it is gone."""
    try:
        with open(path) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.index("(") + 1:s.rindex(")")], s[s.rindex(")") + 2:].split()


def ancestors(procs, pid):
    for _ in range(64):
        yield pid
        p = procs.get(pid)
        if p is None or pid in ("0", "1"):
            return
        pid = p["ppid"]


def diff(a, b, root, ours_cpu, labels):
    secs = b["t"] - a["t"]
    ours = 0
    other = {}
    mine = {}
    for pid, p in b["procs"].items():
        q = a["procs"].get(pid)
        if q is None or q["start"] != p["start"]:
            continue
        d = p["cpu"] - q["cpu"]
        up = list(ancestors(b["procs"], pid))
        if root in up:
            ours += d
            name = next((labels[x] for x in up if x in labels), None)
            if name:
                mine[name] = mine.get(name, 0) + d
        elif d:
            other[p["comm"]] = other.get(p["comm"], 0) + d
    split = {}
    for pid, name in labels.items():
        p, q = b["procs"].get(pid), a["procs"].get(pid)
        if p and q and p["start"] == q["start"] and "threads" in p:
            split[name] = {t: round((c - q.get("threads", {}).get(t, 0)) / HZ / secs, 3)
                           for t, c in sorted(p["threads"].items())}
    busy = (b["busy"] - a["busy"] - ours) / HZ - ours_cpu
    top = sorted(other.items(), key=lambda kv: -kv[1])[:3]
    return {"seconds": round(secs, 2), "other_cores": round(max(busy, 0) / secs, 3),
            "steal_cores": round((b["steal"] - a["steal"]) / HZ / secs, 3),
            "top": [[k, round(v / HZ / secs, 3)] for k, v in top if v / HZ / secs >= 0.01],
            "ours": {k: round(v / HZ / secs, 3) for k, v in sorted(mine.items())},
            "threads": split,
            "idle_by_cpu": [round((y - x) / HZ / secs, 3) for x, y in zip(a.get("idle", []), b.get("idle", []))]}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "snap":
        with open(sys.argv[2], "w") as f:
            json.dump(snap(), f)
        return
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("cmd", choices=["diff"])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--root", required=True)
    ap.add_argument("--ours-cpu", type=float, default=0.0)
    ap.add_argument("--label", action="append", default=[])
    a = ap.parse_args()
    before, after = (json.load(open(p)) for p in (a.before, a.after))
    labels = dict(x.split("=", 1) for x in a.label)
    print(json.dumps(diff(before, after, a.root, a.ours_cpu, labels)))


if __name__ == "__main__":
    main()
