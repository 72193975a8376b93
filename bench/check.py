#!/usr/bin/env python3
"""Pre-flight check for `make bench`: one GET per body through an endpoint,
verifying its certificate against the bench CA, that the answer is 200
application/json, and that the body is byte-identical to what the upstream
serves (so a proxy that mangles or truncates bodies cannot post a number).

Usage: check.py --port P --ca CA [--token-file F] PATH=FILE...
Exits 1 with the reason on stderr on any mismatch.
"""
import argparse
import http.client
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("--name", default="endpoint")
    ap.add_argument("pairs", nargs="+", metavar="PATH=FILE")
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    headers = {"Accept": "application/json", "User-Agent": "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"}
    if a.token_file:
        headers["Authorization"] = "Bearer " + open(a.token_file).read().strip()
    conn = http.client.HTTPSConnection("127.0.0.1", a.port, context=ctx, timeout=10)
    for pair in a.pairs:
        path, _, file = pair.rpartition("=")
        want = open(file, "rb").read()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        ctype = resp.getheader("Content-Type", "")
        if resp.status != 200:
            sys.exit(f"check: {a.name} GET {path}: status {resp.status}: {body[:300]!r}")
        if not ctype.startswith("application/json"):
            sys.exit(f"check: {a.name} GET {path}: Content-Type {ctype!r}")
        if body != want:
            sys.exit(f"check: {a.name} GET {path}: body differs ({len(body)} bytes, want {len(want)})")
    conn.close()


if __name__ == "__main__":
    main()
