#!/usr/bin/env python3
"""byline's /metrics for `make bench`: scrape, and the arithmetic on scrapes.

  metrics.py scrape PORT FILE   GET http://127.0.0.1:PORT/metrics, write the
                                audit counters and the commit latency
                                histogram (byline_audit_commit_seconds) to
                                FILE as JSON

report.py imports delta() and quantile(). Percentiles of the commit latency
come from the histogram's buckets, so they are bucket-interpolated estimates
computed as Prometheus's histogram_quantile() does: linear within the bucket
the rank falls in, the first bucket starting at 0, and a rank in the +Inf
bucket answered with the highest finite bound. The mean (sum / count) is
exact; the maximum is only known to lie in the highest non-empty bucket.
"""
import json
import math
import sys
import urllib.request

HIST = "byline_audit_commit_seconds"
COUNTERS = ("byline_audit_entries_total", "byline_audit_commits_total", "byline_audit_bytes_total",
            "byline_audit_checkpoints_total", "byline_audit_failed")


def parse(text):
    """The audit counters and the commit histogram from a text exposition."""
    out = {"counters": {}, "buckets": [], "sum": None, "count": None}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name in COUNTERS:
            out["counters"][name] = float(value)
        elif name.startswith(HIST + "_bucket{le=\""):
            le = name[len(HIST + "_bucket{le=\""):-2]
            out["buckets"].append([math.inf if le == "+Inf" else float(le), float(value)])
        elif name == HIST + "_sum":
            out["sum"] = float(value)
        elif name == HIST + "_count":
            out["count"] = float(value)
    missing = [c for c in COUNTERS if c not in out["counters"]]
    if missing or not out["buckets"] or out["count"] is None or out["buckets"][-1][0] != math.inf:
        raise ValueError(f"byline's /metrics lacks {', '.join(missing) or HIST}")
    return out


def delta(before, after):
    """after - before: counters, the buckets (cumulative counts), sum and count."""
    if [b[0] for b in before["buckets"]] != [b[0] for b in after["buckets"]]:
        raise ValueError("the histogram's buckets changed between two scrapes")
    return {"counters": {k: v - before["counters"][k] for k, v in after["counters"].items()},
            "buckets": [[a[0], a[1] - b[1]] for a, b in zip(after["buckets"], before["buckets"])],
            "sum": after["sum"] - before["sum"], "count": after["count"] - before["count"]}


def add(x, y):
    """Sum of two deltas (e.g. the rounds of one measurement)."""
    return {"counters": {k: v + y["counters"][k] for k, v in x["counters"].items()},
            "buckets": [[a[0], a[1] + b[1]] for a, b in zip(x["buckets"], y["buckets"])],
            "sum": x["sum"] + y["sum"], "count": x["count"] + y["count"]}


def quantile(q, buckets):
    """histogram_quantile(q) over cumulative [le, count] buckets; None if empty."""
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if le == math.inf:
                return buckets[-2][0] if len(buckets) > 1 else None
            if cum == below:
                return le
            return lower + (le - lower) * (rank - below) / (cum - below)
        lower, below = le, cum
    return buckets[-2][0]


def max_bucket(buckets):
    """(lower, upper) bounds of the highest non-empty bucket, or None."""
    prev_le, prev_cum, found = 0.0, 0.0, None
    for le, cum in buckets:
        if cum > prev_cum:
            found = (prev_le, le)
        prev_le, prev_cum = le, cum
    return found


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return parse(r.read().decode())


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "scrape":
        sys.exit(__doc__)
    try:
        m = scrape(int(sys.argv[2]))
    except (OSError, ValueError) as e:
        sys.exit(f"bench: FAIL: scraping byline's /metrics on port {sys.argv[2]}: {e}")
    with open(sys.argv[3], "w") as f:
        json.dump(m, f, default=lambda x: x)
        f.write("\n")


if __name__ == "__main__":
    main()
