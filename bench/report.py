#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the report.

Reads OUT/raw/<setup>.<body>.json (one line each, from wrk-report.lua) and
OUT/raw/meta.json; prints the table on stdout and writes it to
OUT/latest.txt, with everything machine-readable in OUT/latest.json.
Usage: report.py OUT
"""
import json
import os
import statistics
import sys
import time

SETUPS = [("direct", "direct", "wrk straight to the upstream"),
          ("nginx", "nginx", "nginx TLS proxy, access_log off"),
          ("nginx+log", "nginx+log", "nginx TLS proxy, access_log to a file"),
          ("byline", "byline", "byline, audit records on")]
BODIES = [("cm", "2 KB ConfigMapList", "GET /api/v1/namespaces/bench/configmaps?limit=10"),
          ("pods", "200 KB PodList", "GET /api/v1/namespaces/bench/pods")]


def ms(us):
    return f"{us / 1000:.2f} ms"


def proxy_cores(setup, cpu):
    """CPU cores the proxy used during a measurement; None for direct."""
    o = cpu["ours"]
    return {"byline": o.get("byline"), "nginx": o.get("nginx"), "nginx+log": o.get("nginx")}.get(setup)


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
    return r


def summarize(setup, rounds):
    """Medians over the rounds, each figure on its own, plus the spread."""
    med = lambda k: statistics.median(r[k] for r in rounds)  # noqa: E731
    cores = {"upstream": statistics.median(r["cpu"]["ours"].get("upstream", 0) for r in rounds),
             "wrk": statistics.median(r["cpu"]["ours"]["wrk"] for r in rounds)}
    if setup != "direct":
        cores["proxy"] = statistics.median(proxy_cores(setup, r["cpu"]) for r in rounds)
    rps = [r["rps"] for r in rounds]
    return {
        "rps": med("rps"), "mbps": med("mbps"),
        "rps_spread": (max(rps) - min(rps)) / statistics.median(rps),
        "p50_us": med("p50_us"), "p90_us": med("p90_us"), "p99_us": med("p99_us"), "p999_us": med("p999_us"),
        "proxy_cpu_us_per_request": None if setup == "direct" else med("proxy_cpu_us_per_request"),
        "cores": cores,
        "other_cores_max": max(r["cpu"]["other_cores"] + r["cpu"]["steal_cores"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
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
                "cpu_per_request_ratio": (b["proxy_cpu_us_per_request"] / r[peer]["proxy_cpu_us_per_request"]
                                          if peer != "direct" else None),
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
        f"connections, {meta['threads']} thread(s); {meta['rounds']} rounds of {meta['round_seconds']}s per "
        f"setup and body, taking turns, after a {meta['warmup']} warm-up; TLS + keep-alive everywhere",
        "  figures are medians over the rounds; spread = (max - min) / median of req/s",
        "  " + "; ".join(f"{name}: {desc}" for _, name, desc in SETUPS[:2]) + ";",
        "  " + "; ".join(f"{name}: {desc}" for _, name, desc in SETUPS[2:]),
        "",
        f"{'':<19} {'':<10} {'req/s':>7} {'spread':>6} {'MB/s':>6} {'p50':>9} {'p99':>9} {'p99.9':>9} "
        f"{'proxy CPU':>9}   {'CPU cores used':^25}",
        f"{'body':<19} {'setup':<10} {'':>7} {'':>6} {'':>6} {'':>9} {'':>9} {'':>9} "
        f"{'/request':>9}   {'proxy':>5} {'upstr':>5} {'wrk':>5} {'other':>5}",
    ]
    any_noisy = False
    for body, label, _ in BODIES:
        for i, (setup, name, _) in enumerate(SETUPS):
            r = res[body][setup]
            lines.append(f"{label if i == 0 else '':<19} {name:<10} {r['rps']:>7.0f} "
                         f"{spread(r):>6} {r['mbps']:>6.1f} "
                         f"{ms(r['p50_us']):>9} {ms(r['p99_us']):>9} {ms(r['p999_us']):>9} {cpu_cols(setup, r)}")
            any_noisy |= noisy(r)
        lines.append("")
    lines.append(f"{'byline versus':<19} {'peer':<10} {'throughput':>10} {'p50 added':>10} {'p99 added':>10}"
                 f" {'CPU/request':>12}")
    for body, label, _ in BODIES:
        for i, peer in enumerate(("direct", "nginx", "nginx+log")):
            c = cmp[body][f"byline/{peer}"]
            cpu = "-" if c["cpu_per_request_ratio"] is None else f"{c['cpu_per_request_ratio']:.2f}x"
            lines.append(f"{label if i == 0 else '':<19} {peer:<10} {c['throughput_ratio']:>9.2f}x "
                         f"{ms(c['p50_added_us']):>10} {ms(c['p99_added_us']):>10} {cpu:>12}")
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


def low_load(out):
    """Returns (text, data) for the one-connection latency runs, if present."""
    raw = os.path.join(out, "raw")
    data = {}
    for setup, _, _ in SETUPS:
        path = os.path.join(raw, setup + ".low.json")
        if os.path.exists(path):
            data[setup] = json.loads(open(path).read())
    if "direct" not in data:
        return "", data
    d = data["direct"]
    lines = ["", "unloaded latency (2 KB list, 1 connection: no request waits behind another):",
             f"  {'setup':<10} {'req/s':>7} {'p50':>9} {'p99':>9}   added vs direct: p50, p99"]
    for setup, _, _ in SETUPS:
        r = data.get(setup)
        if r is None:
            continue
        rps = r["requests"] * 1e6 / r["duration_us"]
        added = "" if setup == "direct" else \
            f"   +{(r['p50_us'] - d['p50_us']) / 1000:.3f} ms, +{(r['p99_us'] - d['p99_us']) / 1000:.3f} ms"
        lines.append(f"  {setup:<10} {rps:7.0f} {ms(r['p50_us']):>9} {ms(r['p99_us']):>9}{added}")
    return "\n".join(lines) + "\n", data


def main():
    out = sys.argv[1]
    meta, res = load(out)
    cmp = comparisons(res)
    text = table(meta, res, cmp)
    low_text, low = low_load(out)
    text += low_text
    sys.stdout.write(text)
    with open(os.path.join(out, "latest.txt"), "w") as f:
        f.write(text)
    doc = {"meta": meta, "bodies": {b: {"label": l, "request": q} for b, l, q in BODIES},
           "results": res, "byline_versus": cmp, "unloaded": low}
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
