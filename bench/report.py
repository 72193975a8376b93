#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the report.

Reads OUT/raw/<setup>.<body>.json (one line each, from wrk-report.lua),
byline's /metrics before and after each run (<setup>.<body>.rN.metrics0/1.json,
from metrics.py) and OUT/raw/meta.json; prints the table on stdout and
writes it to OUT/latest.txt, with everything machine-readable in
OUT/latest.json. Exits non-zero when the audited byline made no group
commits or byline-noaudit made some (then the comparison is meaningless).
Usage: report.py OUT
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics  # noqa: E402

SETUPS = [("direct", "direct", "wrk straight to the upstream"),
          ("nginx", "nginx", "nginx TLS proxy, access_log off"),
          ("nginx+log", "nginx+log", "nginx TLS proxy, access_log to a file"),
          ("byline", "byline", "byline, audit ledger on (group commit, fdatasync)"),
          ("byline-noaudit", "byline-noaudit", "the same byline built with -DBL_BENCH_NO_AUDIT: "
           "audit batches acknowledged without writing"),
          ("byline+agent", "byline+agent", "a byline like \"byline\" whose connection is via: agent, one "
           "byline agent (HTTP/2 to the gateway) relaying to the same upstream; proxy CPU = gateway + agent")]
GOAL = 0.90  # issue 3: audited throughput within 10% of byline without the ledger
W = 14       # width of the setup column
BODIES = [("cm", "2 KB ConfigMapList", "GET /api/v1/namespaces/bench/configmaps?limit=10"),
          ("pods", "200 KB PodList", "GET /api/v1/namespaces/bench/pods")]


def ms(us):
    return f"{us / 1000:.2f} ms"


def proxy_cores(setup, cpu):
    """CPU cores the proxy used during a measurement; None for direct."""
    o = cpu["ours"]
    if setup == "byline+agent":
        return o.get("byline+agent", 0) + o.get("agent", 0)
    return {"byline": o.get("byline"), "byline-noaudit": o.get("byline-noaudit"), "nginx": o.get("nginx"),
            "nginx+log": o.get("nginx")}.get(setup)


def spread(r):
    return f"{100 * r['rps_spread']:.0f}%" if len(r["rounds"]) > 1 else "-"


def noisy(r):
    return r["other_cores_max"] >= 0.05


def cpu_cols(setup, r):
    o = r["cores"]
    per = "-" if r["proxy_cpu_us_per_request"] is None else f"{r['proxy_cpu_us_per_request']:.0f} us"
    proxy = o.get("proxy")
    return (f"{per:>9}   {'-' if proxy is None else f'{proxy:.2f}':>5} {o['upstream']:>5.2f} "
            f"{o['wrk']:>5.2f} {r['other_cores_max']:>5.2f}{'!' if noisy(r) else ''}")


def load_round(raw, setup, body, n):
    """One measured wrk run with its CPU accounting."""
    base = os.path.join(raw, f"{setup}.{body}.r{n}")
    with open(base + ".json") as f:
        r = json.load(f)
    r["cpu"] = json.load(open(base + ".cpu.json"))
    with open(base + ".txt.time") as f:
        r["cpu"]["ours"]["wrk"] = round(sum(float(x) for x in f.read().split()) / r["cpu"]["seconds"], 3)
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["mbps"] = r["bytes"] / (r["duration_us"] / 1e6) / 1e6
    cores = proxy_cores(setup, r["cpu"])
    r["proxy_cpu_us_per_request"] = None if cores is None else round(cores * 1e6 / r["rps"], 1)
    # byline's ledger writer thread on its own (cpu.py splits by thread name)
    ledger = r["cpu"].get("threads", {}).get(setup, {}).get("byline-ledger")
    r["ledger_cpu_us_per_request"] = None if ledger is None else round(ledger * 1e6 / r["rps"], 2)
    r["audit_delta"] = metrics_delta(base)
    return r


def metrics_delta(base):
    """byline's /metrics after a run minus before, or None without them."""
    if not os.path.exists(base + ".metrics0.json"):
        return None
    m0, m1 = (json.load(open(f"{base}.metrics{i}.json")) for i in (0, 1))
    return metrics.delta(m0, m1)


def commit_stats(d, seconds, requests):
    """Group commit figures from a /metrics delta over `seconds` of wrk."""
    c = d["counters"]
    commits, entries = c["byline_audit_commits_total"], c["byline_audit_entries_total"]
    q = {p: metrics.quantile(p / 100, d["buckets"]) for p in (50, 90, 99)}
    top = metrics.max_bucket(d["buckets"])
    return {
        "commits": commits, "entries": entries, "requests": requests,
        "commits_per_s": commits / seconds,
        "entries_per_commit": entries / commits if commits else None,
        "requests_per_commit": requests / commits if commits else None,
        "bytes_per_commit": c["byline_audit_bytes_total"] / commits if commits else None,
        "checkpoints": c["byline_audit_checkpoints_total"],
        "latency_ms": {f"p{p}": None if v is None else v * 1e3 for p, v in q.items()},
        "latency_mean_ms": d["sum"] / d["count"] * 1e3 if d["count"] else None,
        "latency_max_bucket_ms": None if top is None else [top[0] * 1e3, top[1] * 1e3],
        "failed": c["byline_audit_failed"],
    }


def commits_of(rounds):
    """commit_stats over every round of one measurement (their deltas summed)."""
    ds = [r["audit_delta"] for r in rounds]
    if any(d is None for d in ds):
        return None
    total = ds[0]
    for d in ds[1:]:
        total = metrics.add(total, d)
    return commit_stats(total, sum(r["duration_us"] for r in rounds) / 1e6, sum(r["requests"] for r in rounds))


def summarize(setup, rounds):
    """Medians over the rounds, each figure on its own, plus the spread."""
    med = lambda k: statistics.median(r[k] for r in rounds)  # noqa: E731
    cores = {"upstream": statistics.median(r["cpu"]["ours"].get("upstream", 0) for r in rounds),
             "wrk": statistics.median(r["cpu"]["ours"]["wrk"] for r in rounds)}
    if setup != "direct":
        cores["proxy"] = statistics.median(proxy_cores(setup, r["cpu"]) for r in rounds)
    if setup == "byline+agent":  # the agent's part of the proxy CPU
        cores["agent"] = statistics.median(r["cpu"]["ours"].get("agent", 0) for r in rounds)
    rps = [r["rps"] for r in rounds]
    return {
        "rps": med("rps"), "mbps": med("mbps"),
        "rps_spread": (max(rps) - min(rps)) / statistics.median(rps),
        "p50_us": med("p50_us"), "p90_us": med("p90_us"), "p99_us": med("p99_us"), "p999_us": med("p999_us"),
        "proxy_cpu_us_per_request": None if setup == "direct" else med("proxy_cpu_us_per_request"),
        "ledger_cpu_us_per_request": (None if any(r["ledger_cpu_us_per_request"] is None for r in rounds)
                                      else med("ledger_cpu_us_per_request")),
        "cores": cores,
        "other_cores_max": max(r["cpu"]["other_cores"] + r["cpu"]["steal_cores"] for r in rounds),
        # CPU 0's idle + iowait (the servers' CPU when pinned); None from older raw files
        "cpu0_idle": (statistics.median(r["cpu"]["idle_by_cpu"][0] for r in rounds)
                      if all(r["cpu"].get("idle_by_cpu") for r in rounds) else None),
        "requests": sum(r["requests"] for r in rounds),
        "commit": commits_of(rounds),
        "rounds": rounds,
    }


def load(out):
    raw = os.path.join(out, "raw")
    meta = json.load(open(os.path.join(raw, "meta.json")))
    res = {}
    for body, _, _ in BODIES:
        for setup, _, _ in SETUPS:
            rounds = [load_round(raw, setup, body, n) for n in range(1, meta["rounds"] + 1)]
            res.setdefault(body, {})[setup] = summarize(setup, rounds)
    return meta, res


PEERS = ("direct", "nginx", "nginx+log", "byline-noaudit")


def check_commits(res):
    """The audited byline committed; byline-noaudit never did."""
    for body, label, _ in BODIES:
        a, n = res[body]["byline"]["commit"], res[body]["byline-noaudit"]["commit"]
        if a is None or n is None:
            sys.exit("bench: FAIL: no /metrics scrapes for byline or byline-noaudit")
        if a["commits"] <= 0 or a["failed"]:
            sys.exit(f"bench: FAIL: {label}: the audited byline made {a['commits']:.0f} group commits"
                     f"{' and its ledger failed' if a['failed'] else ''}")
        if n["commits"] != 0:
            sys.exit(f"bench: FAIL: {label}: byline-noaudit made {n['commits']:.0f} group commits: "
                     "it is not a -DBL_BENCH_NO_AUDIT build")


def pair_ratios(out, body, n):
    """byline / byline-noaudit req/s of each interleaved goal pair."""
    ratios = []
    for k in range(1, n + 1):
        rps = {}
        for setup in ("byline", "byline-noaudit"):
            with open(os.path.join(out, "raw", f"pair.{setup}.{body}.{k}.json")) as f:
                r = json.load(f)
            rps[setup] = r["requests"] / (r["duration_us"] / 1e6)
        ratios.append(rps["byline"] / rps["byline-noaudit"])
    return ratios


def comparisons(res, out, meta):
    cmp = {}
    for body, _, _ in BODIES:
        r = res[body]
        b = r["byline"]
        cmp[body] = {
            f"byline/{peer}": {
                "throughput_ratio": b["rps"] / r[peer]["rps"],
                "p50_added_us": b["p50_us"] - r[peer]["p50_us"],
                "p99_added_us": b["p99_us"] - r[peer]["p99_us"],
                "cpu_per_request_ratio": (b["proxy_cpu_us_per_request"] / r[peer]["proxy_cpu_us_per_request"]
                                          if peer != "direct" else None),
            } for peer in PEERS
        }
        ratio = cmp[body]["byline/byline-noaudit"]["throughput_ratio"]
        # The same ratio per round (byline and byline-noaudit ran back to
        # back), to show how much of a miss or a pass is noise.
        per = [x["rps"] / y["rps"] for x, y in zip(b["rounds"], r["byline-noaudit"]["rounds"])]
        pairs = pair_ratios(out, body, meta.get("pairs", 0))
        # The verdict: the median of the interleaved pairs when there are
        # any (run.sh's goal_pairs), else the ratio of the rounds' medians.
        verdict = statistics.median(pairs) if pairs else ratio
        cmp[body]["goal"] = {"audited_over_noaudit": ratio, "goal": GOAL, "met": verdict >= GOAL,
                             "per_round": per, "pairs": pairs, "verdict_ratio": verdict}
        a = r["byline+agent"]
        for peer in AGENT_PEERS:  # issue 5: what the agent hop adds
            cmp[body][f"byline+agent/{peer}"] = {
                "throughput_ratio": a["rps"] / r[peer]["rps"],
                "p50_added_us": a["p50_us"] - r[peer]["p50_us"],
                "p99_added_us": a["p99_us"] - r[peer]["p99_us"],
                "cpu_per_request_ratio": (a["proxy_cpu_us_per_request"] / r[peer]["proxy_cpu_us_per_request"]
                                          if peer != "direct" else None),
                "per_round": [x["rps"] / y["rps"] for x, y in zip(a["rounds"], r[peer]["rounds"])],
            }
    return cmp


AGENT_PEERS = ("direct", "byline")


def agent_lines(cmp, res):
    """byline+agent against direct and against byline alone (gateway-only)."""
    out = [f"{'byline+agent vs':<19} {'peer':<{W}} {'throughput':>10} {'p50 added':>10} {'p99 added':>10}"
           f" {'CPU/request':>12}   per-round throughput"]
    for body, label, _ in BODIES:
        for i, peer in enumerate(AGENT_PEERS):
            c = cmp[body][f"byline+agent/{peer}"]
            cpu = "-" if c["cpu_per_request_ratio"] is None else f"{c['cpu_per_request_ratio']:.2f}x"
            rounds = ", ".join(f"{x:.2f}" for x in c["per_round"])
            out.append(f"{label if i == 0 else '':<19} {peer:<{W}} {c['throughput_ratio']:>9.2f}x "
                       f"{ms(c['p50_added_us']):>10} {ms(c['p99_added_us']):>10} {cpu:>12}   {rounds}")
    for body, label, _ in BODIES:
        a = res[body]["byline+agent"]
        per = a["proxy_cpu_us_per_request"]
        ag = a["cores"]["agent"] * 1e6 / a["rps"] if a["rps"] else 0
        out.append(f"  {label}: CPU per request {per:.0f} us, of which the agent {ag:.0f} us "
                   f"and the gateway {per - ag:.0f} us")
    return out


def table(meta, res, cmp, low_commit):
    pin = {"split": "servers pinned to CPU 0, wrk to CPU 1", "none": "no CPU pinning"}[meta["pin"]]
    lines = [
        f"byline bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  byline {meta['byline_commit']}  "
        f"nginx {meta['nginx']}  wrk {meta['wrk']}",
        f"{meta['cpus']} x {meta['cpu_model']}; {pin}",
        f"workers={meta['workers']} (nginx worker_processes = byline workers)  wrk: {meta['connections']} "
        f"connections, {meta['threads']} thread(s); {meta['rounds']} rounds of {meta['round_seconds']}s per "
        f"setup and body, taking turns, after a {meta['warmup']} warm-up; TLS + keep-alive everywhere",
        "  figures are medians over the rounds; spread = (max - min) / median of req/s",
        "  " + "; ".join(f"{name}: {desc}" for _, name, desc in SETUPS[:2]) + ";",
        "  " + "; ".join(f"{name}: {desc}" for _, name, desc in SETUPS[2:4]) + ";",
        "  " + "; ".join(f"{name}: {desc}" for _, name, desc in SETUPS[4:]),
        audit_fs_line(meta),
        "",
        f"{'':<19} {'':<{W}} {'req/s':>7} {'spread':>6} {'MB/s':>6} {'p50':>9} {'p99':>9} {'p99.9':>9} "
        f"{'proxy CPU':>9}   {'CPU cores used':^25}",
        f"{'body':<19} {'setup':<{W}} {'':>7} {'':>6} {'':>6} {'':>9} {'':>9} {'':>9} "
        f"{'/request':>9}   {'proxy':>5} {'upstr':>5} {'wrk':>5} {'other':>5}",
    ]
    any_noisy = False
    for body, label, _ in BODIES:
        for i, (setup, name, _) in enumerate(SETUPS):
            r = res[body][setup]
            lines.append(f"{label if i == 0 else '':<19} {name:<{W}} {r['rps']:>7.0f} "
                         f"{spread(r):>6} {r['mbps']:>6.1f} "
                         f"{ms(r['p50_us']):>9} {ms(r['p99_us']):>9} {ms(r['p999_us']):>9} {cpu_cols(setup, r)}")
            any_noisy |= noisy(r)
        lines.append("")
    lines.append(f"{'byline versus':<19} {'peer':<{W}} {'throughput':>10} {'p50 added':>10} {'p99 added':>10}"
                 f" {'CPU/request':>12}")
    for body, label, _ in BODIES:
        for i, peer in enumerate(PEERS):
            c = cmp[body][f"byline/{peer}"]
            cpu = "-" if c["cpu_per_request_ratio"] is None else f"{c['cpu_per_request_ratio']:.2f}x"
            lines.append(f"{label if i == 0 else '':<19} {peer:<{W}} {c['throughput_ratio']:>9.2f}x "
                         f"{ms(c['p50_added_us']):>10} {ms(c['p99_added_us']):>10} {cpu:>12}")
    lines += [""] + agent_lines(cmp, res)
    lines += [""] + goal_lines(cmp, res, meta) + [""] + commit_lines(res, meta, low_commit)
    if any_noisy:
        lines += ["", "WARNING: other processes used CPU during the marked (!) measurements; rerun on an "
                      "idle machine before trusting them."]
    a = meta["audit"]
    lines += ["", f"audit: {a['results']} result records ({a['allowed_200']} allowed, 200) for "
                  f"{a['wrk_requests']} requests wrk counted; no non-2xx, no socket errors"]
    w = meta.get("watch")
    if w:
        lines += ["", f"idle watches: {w['byline']['watches']} watch streams held open through the proxy "
                      f"(TLS on both sides), resident memory (VmRSS):"]
        for name in ("byline", "byline+agent", "nginx"):
            if name in w:
                lines += watch_lines(name, w[name])
        lines.append("  (nginx: master + workers; byline: its one process; byline+agent: the gateway and the "
                     "agent process apart. Memory that grows from round to round is retained or leaked.)")
    return "\n".join(lines) + "\n"


def watch_lines(name, x):
    """RSS lines of one watch setup; per watch over the watches that opened."""
    r1 = x["rounds"][0]
    n = r1.get("opened") or x["watches"]
    per = (r1["rss_during_kb"] - x["rss_before_kb"]) / n
    rounds = "; ".join(f"round {i + 1}: {r['rss_during_kb'] / 1024:.1f} MB open, "
                       f"{r['rss_after_kb'] / 1024:.1f} MB closed" for i, r in enumerate(x["rounds"]))
    who = "gateway" if "agent_rss_before_kb" in x else ""
    out = [f"  {name:<12} {who:<7} {x['rss_before_kb'] / 1024:6.1f} MB before; {rounds}",
           f"  {'':<12} {'':<7} = {per:.1f} KB per watch ({n} open); fds {x['fds_before']} -> {r1['fds_during']}"]
    if who:
        aper = (r1["agent_rss_during_kb"] - x["agent_rss_before_kb"]) / n
        rounds = "; ".join(f"round {i + 1}: {r['agent_rss_during_kb'] / 1024:.1f} MB open, "
                           f"{r['agent_rss_after_kb'] / 1024:.1f} MB closed" for i, r in enumerate(x["rounds"]))
        out += [f"  {'':<12} {'agent':<7} {x['agent_rss_before_kb'] / 1024:6.1f} MB before; {rounds}",
                f"  {'':<12} {'':<7} = {aper:.1f} KB per watch; fds {r1['agent_fds_during']} while open "
                f"(one HTTP/2 connection to the gateway, one upstream connection per watch)"]
        if n < x["watches"]:
            out.append(f"  {'':<12} only {n} of {x['watches']} watches opened through the agent; the rest were "
                       "refused (one agent session carries at most BL_MUX_MAX_STREAMS tunnels, src/net/h2mux.c)")
    return out


def audit_fs_line(meta):
    fs = meta["audit_fs"]
    line = f"  audited byline's ledger: {fs['dir']} on {fs['fstype']} ({fs['mount']})"
    if fs["ram"]:
        line += ("\n  WARNING: THE LEDGER IS ON A RAM FILE SYSTEM: fdatasync is free there and the audited "
                 "figures are flattered; set BENCH_AUDIT_DIR to a real disk")
    return line


def goal_lines(cmp, res, meta):
    out = [f"goal (issue 3): audited byline within {100 * (1 - GOAL):.0f}% of byline-noaudit's req/s, "
           "every record fdatasync'ed before its request is forwarded:"]
    for body, label, _ in BODIES:
        g = cmp[body]["goal"]
        rounds = ", ".join(f"{x:.2f}" for x in g["per_round"])
        busy = max(res[body][s]["other_cores_max"] for s in ("byline", "byline-noaudit"))
        if g["pairs"]:
            p = sorted(g["pairs"])
            how = (f"median of {len(p)} interleaved pairs of {meta['pair_seconds']}s, range "
                   f"{p[0]:.2f}-{p[-1]:.2f}; the rounds' medians: {g['audited_over_noaudit']:.2f}, per round {rounds}")
        else:
            how = f"the rounds' medians; per round: {rounds}"
        out.append(f"  {label:<19} audited/noaudit {g['verdict_ratio']:.2f}  "
                   f"{'met' if g['met'] else 'NOT MET'}   ({how})"
                   + (f"  ! other processes used up to {busy:.2f} cores" if busy >= 0.05 else "")
                   + ("  ! ledger on a RAM file system: not a verdict" if meta["audit_fs"]["ram"] else ""))
    return out


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f}"


def commit_row(label, c):
    lat = c["latency_ms"]
    top = c["latency_max_bucket_ms"]
    mx = "-" if top is None else f"<= {top[1]:g}" if top[1] != float("inf") else f"> {top[0]:g}"
    return (f"  {label:<19} {c['commits_per_s']:>8.0f} {fmt_ms(c['entries_per_commit']):>8} "
            f"{fmt_ms(c['requests_per_commit']):>8} {fmt_ms(lat['p50']):>7} {fmt_ms(lat['p90']):>7} "
            f"{fmt_ms(lat['p99']):>7} {fmt_ms(c['latency_mean_ms']):>7} {mx:>9}")


def commit_lines(res, meta, low=None):
    """Group commit as byline's /metrics saw it during the audited runs."""
    out = ["audited byline's group commits (byline_audit_* counters and the byline_audit_commit_seconds "
           "histogram, after minus before each measured run, summed over the rounds):",
           f"  {'':<19} {'commits':>8} {'entries':>8} {'requests':>8} {'commit latency, ms (write + fdatasync)':^41}",
           f"  {'':<19} {'/s':>8} {'/commit':>8} {'/commit':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'mean':>7} "
           f"{'max':>9}"]
    for body, label, _ in BODIES:
        out.append(commit_row(label, res[body]["byline"]["commit"]))
    for body, label, _ in BODIES:  # the gateway in front of the agent: its own ledger, same disk
        c = res[body]["byline+agent"]["commit"]
        if c is not None:
            out.append(commit_row(label.split()[0] + " KB, via agent" if "KB" in label else label, c))
    if low is not None:
        out.append(commit_row("2 KB, 1 connection", low))
    out += ["  p50/p90/p99 are bucket-interpolated (as Prometheus's histogram_quantile), mean is exact "
            "(sum / count), max is the bound of the highest non-empty bucket;",
            "  every request writes an intent entry (before it is forwarded) and a result entry, so "
            "entries/commit over 2 is requests per fdatasync."]
    return out + [""] + cost_lines(res, meta)


def probe_at(probes, nbytes):
    """The commit probe's CPU and p50 wall per commit at `nbytes`, linear
    between its two sizes (None without probes)."""
    if not probes or nbytes is None:
        return None
    a, b = sorted(probes, key=lambda p: p["bytes"])[0], sorted(probes, key=lambda p: p["bytes"])[-1]
    f = 0.0 if b["bytes"] == a["bytes"] else (nbytes - a["bytes"]) / (b["bytes"] - a["bytes"])
    lerp = lambda x, y: x + (y - x) * f  # noqa: E731
    return {"cpu_us": lerp(a["cpu_us"], b["cpu_us"]), "p50_us": lerp(a["wall_us"]["p50"], b["wall_us"]["p50"])}


def cost_lines(res, meta):
    """Where the audited byline's extra CPU per request goes: its ledger
    thread (per commit, against what the disk alone costs per commit) and
    the rest (the worker: hand-offs, wake-ups, a cache shared with the
    writer on one core)."""
    probes = meta.get("commit_probe")
    out = []
    if probes:
        out.append("the ledger's disk without byline (bench/commit_probe.c, append + fdatasync, pinned like "
                   "the servers):")
        for p in probes:
            w = p["wall_us"]
            out.append(f"  {p['bytes'] / 1024:5.0f} KB per commit: {p['cpu_us']:6.1f} us CPU, wall p50 "
                       f"{w['p50'] / 1000:.3f} ms, p99 {w['p99'] / 1000:.3f} ms")
    out.append("audited byline's CPU per request against byline-noaudit's (medians over the rounds):")
    for body, label, _ in BODIES:
        a, n, c = res[body]["byline"], res[body]["byline-noaudit"], res[body]["byline"]["commit"]
        led = a["ledger_cpu_us_per_request"]
        if led is None or c is None or not c["requests_per_commit"]:
            out.append(f"  {label:<19} {a['proxy_cpu_us_per_request']:.1f} us against "
                       f"{n['proxy_cpu_us_per_request']:.1f} us (threads not named: no split)")
            continue
        worker = a["proxy_cpu_us_per_request"] - led
        per_commit = led * c["requests_per_commit"]
        disk = probe_at(probes, c["bytes_per_commit"])
        line = (f"  {label:<19} {a['proxy_cpu_us_per_request']:.1f} us against {n['proxy_cpu_us_per_request']:.1f}"
                f" us: ledger thread {led:.1f} us ({per_commit:.0f} us per commit of "
                f"{c['requests_per_commit']:.1f} requests, {c['bytes_per_commit'] / 1024:.1f} KB")
        if disk:
            line += f"; the disk alone {disk['cpu_us']:.0f} us of it"
        out.append(line + f"), the rest {worker:.1f} us ({worker - n['proxy_cpu_us_per_request']:+.1f} us)")
    out += idle_lines(res, meta)
    return out


def idle_lines(res, meta):
    """How long the servers' CPU sat idle: CPU a request could not use
    because it was waiting for the ledger's disk (latency-bound), as
    against CPU spent (CPU-bound). Only when the servers are pinned."""
    if meta["pin"] != "split" or any(res[b][s]["cpu0_idle"] is None for b, _, _ in BODIES
                                     for s in ("byline", "byline-noaudit")):
        return []
    out = ["the servers' CPU (CPU 0) idle or waiting for I/O while measured (medians over the rounds):"]
    for body, label, _ in BODIES:
        a, n = res[body]["byline"]["cpu0_idle"], res[body]["byline-noaudit"]["cpu0_idle"]
        out.append(f"  {label:<19} audited {100 * a:4.1f}%, noaudit {100 * n:4.1f}%"
                   + ("  (the audited gateway waits for the disk with nothing else to run)" if a - n >= 0.02 else ""))
    return out


def low_load(out):
    """Returns (text, data) for the one-connection latency runs, if present."""
    raw = os.path.join(out, "raw")
    data = {}
    for setup, _, _ in SETUPS:
        path = os.path.join(raw, setup + ".low.json")
        if os.path.exists(path):
            data[setup] = json.loads(open(path).read())
            d = metrics_delta(os.path.join(raw, setup + ".low"))
            if d is not None:
                r = data[setup]
                data[setup]["commit"] = commit_stats(d, r["duration_us"] / 1e6, r["requests"])
    if "direct" not in data:
        return "", data
    d = data["direct"]
    lines = ["", "unloaded latency (2 KB list, 1 connection: no request waits behind another):",
             f"  {'setup':<{W}} {'req/s':>7} {'p50':>9} {'p99':>9}   added vs direct: p50, p99"]
    for setup, _, _ in SETUPS:
        r = data.get(setup)
        if r is None:
            continue
        rps = r["requests"] * 1e6 / r["duration_us"]
        added = "" if setup == "direct" else \
            f"   {(r['p50_us'] - d['p50_us']) / 1000:+.3f} ms, {(r['p99_us'] - d['p99_us']) / 1000:+.3f} ms"
        b = data.get("byline")
        if setup == "byline+agent" and b is not None:
            added += (f"; vs byline (the agent hop): {(r['p50_us'] - b['p50_us']) / 1000:+.3f} ms, "
                      f"{(r['p99_us'] - b['p99_us']) / 1000:+.3f} ms")
        lines.append(f"  {setup:<{W}} {rps:7.0f} {ms(r['p50_us']):>9} {ms(r['p99_us']):>9}{added}")
    return "\n".join(lines) + "\n", data


def policy_lines(out):
    """The policy benchmark's lines (run.sh's policy_bench), without their prefix."""
    path = os.path.join(out, "raw", "policy.txt")
    if not os.path.exists(path):
        return []
    return [line.strip().removeprefix("policy_eval: ") for line in open(path) if line.strip()]


def main():
    out = sys.argv[1]
    meta, res = load(out)
    check_commits(res)
    cmp = comparisons(res, out, meta)
    low_text, low = low_load(out)
    text = table(meta, res, cmp, low.get("byline", {}).get("commit")) + low_text
    policy = policy_lines(out)
    if policy:
        text += "\npolicy evaluation per request (bench/policy_eval.c: 1,000 rules, 1,000 identities):\n" + \
            "".join("  " + line + "\n" for line in policy)
    sys.stdout.write(text)
    with open(os.path.join(out, "latest.txt"), "w") as f:
        f.write(text)
    doc = {"meta": meta, "bodies": {b: {"label": l, "request": q} for b, l, q in BODIES},
           "results": res, "byline_versus": cmp, "unloaded": low, "policy": policy}
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
