#!/usr/bin/env python3
"""Opens N idle Kubernetes watches through a TLS endpoint (byline or nginx)
for the idle-watch memory test of `make bench`.

Each connection: TLS handshake (verifying the gateway against --ca), then
  GET /api/v1/namespaces/bench/configmaps?watch=true&... HTTP/1.1
  Authorization: Bearer TOKEN (if given)
and it waits for the 200 head and the first event (one chunk holding an
ADDED event). When all N are established it prints
  READY opened=N failed=0 seconds=S
on stdout, then holds every connection open, silent, until stdin reaches
EOF (run.sh closes it after sampling memory), and then closes them all.
Any failure is counted and the first few are reported on stderr.

Usage: watchers.py --port P --ca CA [--token-file F] [-n 5000] [--parallel 200]
"""
import argparse
import asyncio
import ssl
import sys
import time

UA = "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"


async def open_watch(i, a, ctx, token, sem, conns, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", a.port, ssl=ctx, server_hostname="127.0.0.1",
                                        limit=64 * 1024), a.timeout)
        except Exception as e:  # noqa: BLE001 - any failure is a counted, reported failure
            errors.append(f"watch {i}: connect: {e!r}")
            return
        try:
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            writer.write((f"GET /api/v1/namespaces/bench/configmaps?allowWatchBookmarks=true"
                          f"&resourceVersion=48213977&timeoutSeconds=3600&watch=true HTTP/1.1\r\n"
                          f"Host: 127.0.0.1:{a.port}\r\n{auth}User-Agent: {UA}\r\n"
                          f"Accept: application/json\r\n\r\n").encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), a.timeout)
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise RuntimeError(f"status {status.decode(errors='replace')!r}")
            if b"transfer-encoding: chunked" not in head.lower():
                raise RuntimeError("response is not chunked")
            size = await asyncio.wait_for(reader.readuntil(b"\r\n"), a.timeout)
            body = await asyncio.wait_for(reader.readexactly(int(size.strip().split(b";")[0], 16) + 2), a.timeout)
            if b'"type":"ADDED"' not in body:
                raise RuntimeError(f"first chunk is not an ADDED event: {body[:80]!r}")
            conns.append((reader, writer))
        except Exception as e:  # noqa: BLE001
            errors.append(f"watch {i}: {e!r}")
            writer.transport.abort()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--parallel", type=int, default=200, help="handshakes in flight at once")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    token = open(a.token_file).read().strip() if a.token_file else None
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    sem = asyncio.Semaphore(a.parallel)
    conns, errors = [], []
    t0 = time.monotonic()
    await asyncio.gather(*(open_watch(i, a, ctx, token, sem, conns, errors) for i in range(a.n)))
    for e in errors[:5]:
        print(f"watchers: {e}", file=sys.stderr)
    print(f"READY opened={len(conns)} failed={len(errors)} seconds={time.monotonic() - t0:.1f}", flush=True)
    # Hold until run.sh closes our stdin.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    # A stream that ended while idle means the gateway dropped a watch.
    dropped = sum(1 for r, _ in conns if r.at_eof())
    for _, w in conns:
        w.transport.abort()
    print(f"CLOSED dropped={dropped}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
