#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the report.

Reads OUT/raw/<setup>.<body>.json (one line each, from wrk-report.lua) and
OUT/raw/meta.json; prints the table on stdout and writes it to
OUT/latest.txt, with everything machine-readable in OUT/latest.json.
Usage: report.py OUT
"""
import json
import os
import sys
import time

SETUPS = [("direct", "direct to the upstream"),
          ("nginx", "nginx proxy, access_log off"),
          ("nginx+log", "nginx proxy, access_log to a file"),
          ("byline", "byline, audit on")]
BODIES = [("cm", "2 KB ConfigMapList", "GET /api/v1/namespaces/bench/configmaps?limit=10"),
          ("pods", "200 KB PodList", "GET /api/v1/namespaces/bench/pods")]


def ms(us):
    return f"{us / 1000:.2f} ms"


def cpu_cols(setup, c):
    o = c["ours"]
    proxy = {"byline": o.get("byline"), "nginx": o.get("nginx"), "nginx+log": o.get("nginx")}.get(setup)
    flag = " !" if c["other_cores"] >= 0.05 or c["steal_cores"] >= 0.05 else ""
    return (f"{'-' if proxy is None else f'{proxy:.2f}':>5} {o.get('upstream', 0):>5.2f} {o.get('wrk', 0):>5.2f} "
            f"{c['other_cores'] + c['steal_cores']:>5.2f}{flag}")


def load(out):
    raw = os.path.join(out, "raw")
    meta = json.load(open(os.path.join(raw, "meta.json")))
    res = {}
    for body, _, _ in BODIES:
        for setup, _ in SETUPS:
            with open(os.path.join(raw, f"{setup}.{body}.json")) as f:
                r = json.load(f)
            base = os.path.join(raw, f"{setup}.{body}")
            r["cpu"] = json.load(open(base + ".cpu.json"))
            with open(base + ".txt.time") as f:
                r["cpu"]["ours"]["wrk"] = round(sum(float(x) for x in f.read().split()) / r["cpu"]["seconds"], 3)
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["mbps"] = r["bytes"] / (r["duration_us"] / 1e6) / 1e6
            res.setdefault(body, {})[setup] = r
    return meta, res


def comparisons(res):
    cmp = {}
    for body, _, _ in BODIES:
        r = res[body]
        b = r["byline"]
        cmp[body] = {
            f"byline/{peer}": {
                "throughput_ratio": b["rps"] / r[peer]["rps"],
                "p50_added_us": b["p50_us"] - r[peer]["p50_us"],
                "p99_added_us": b["p99_us"] - r[peer]["p99_us"],
            } for peer in ("direct", "nginx", "nginx+log")
        }
    return cmp


def table(meta, res, cmp):
    pin = {"split": "servers pinned to CPU 0, wrk to CPU 1", "none": "no CPU pinning"}[meta["pin"]]
    lines = [
        f"byline bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  byline {meta['byline_commit']}  "
        f"nginx {meta['nginx']}  wrk {meta['wrk']}",
        f"{meta['cpus']} x {meta['cpu_model']}; {pin}",
        f"workers={meta['workers']} (nginx worker_processes = byline workers)  wrk: {meta['connections']} "
        f"connections, {meta['threads']} thread(s), {meta['duration']} after {meta['warmup']} warm-up; "
        f"TLS + keep-alive everywhere",
        "",
        f"{'body':<20} {'setup':<36} {'req/s':>9} {'MB/s':>8} {'p50':>10} {'p99':>10} {'p99.9':>10}"
        f"   CPU cores used: {'proxy':>5} {'upstr':>5} {'wrk':>5} {'other':>5}",
    ]
    noisy = False
    for body, label, _ in BODIES:
        for i, (setup, desc) in enumerate(SETUPS):
            r = res[body][setup]
            lines.append(f"{label if i == 0 else '':<20} {desc:<36} {r['rps']:>9.0f} {r['mbps']:>8.1f} "
                         f"{ms(r['p50_us']):>10} {ms(r['p99_us']):>10} {ms(r['p999_us']):>10}"
                         f"                   {cpu_cols(setup, r['cpu'])}")
            noisy |= r["cpu"]["other_cores"] >= 0.05 or r["cpu"]["steal_cores"] >= 0.05
        lines.append("")
    lines.append(f"{'byline versus':<20} {'peer':<20} {'throughput':>11} {'p50 added':>11} {'p99 added':>11}")
    for body, label, _ in BODIES:
        for i, peer in enumerate(("direct", "nginx", "nginx+log")):
            c = cmp[body][f"byline/{peer}"]
            lines.append(f"{label if i == 0 else '':<20} {peer:<20} {c['throughput_ratio']:>10.2f}x "
                         f"{ms(c['p50_added_us']):>11} {ms(c['p99_added_us']):>11}")
    if noisy:
        lines += ["", "WARNING: other processes used CPU during the marked (!) measurements; rerun on an "
                      "idle machine before trusting them."]
    a = meta["audit"]
    lines += [f"audit: {a['results']} result records ({a['allowed_200']} allowed, 200) for "
                  f"{a['wrk_requests']} requests wrk counted; no non-2xx, no socket errors"]
    w = meta.get("watch")
    if w:
        lines += ["", f"idle watches: {w['byline']['watches']} watch streams held open through the proxy "
                      f"(TLS on both sides), resident memory (VmRSS):"]
        for name in ("byline", "nginx"):
            x = w[name]
            r1 = x["rounds"][0]
            per = (r1["rss_during_kb"] - x["rss_before_kb"]) / x["watches"]
            rounds = "; ".join(f"round {i + 1}: {r['rss_during_kb'] / 1024:.1f} MB open, "
                               f"{r['rss_after_kb'] / 1024:.1f} MB closed" for i, r in enumerate(x["rounds"]))
            lines.append(f"  {name:<7} {x['rss_before_kb'] / 1024:6.1f} MB before; {rounds}")
            lines.append(f"  {'':<7} = {per:.1f} KB per watch; fds {x['fds_before']} -> {r1['fds_during']}")
        lines.append("  (nginx: master + workers; byline: its one process. Memory that grows from round to "
                     "round is retained or leaked.)")
    return "\n".join(lines) + "\n"


def main():
    out = sys.argv[1]
    meta, res = load(out)
    cmp = comparisons(res)
    text = table(meta, res, cmp)
    sys.stdout.write(text)
    with open(os.path.join(out, "latest.txt"), "w") as f:
        f.write(text)
    doc = {"meta": meta, "bodies": {b: {"label": l, "request": q} for b, l, q in BODIES},
           "results": res, "byline_versus": cmp}
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
