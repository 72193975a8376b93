#!/usr/bin/env python3
"""Stand-in API server for the idle-watch memory test of `make bench`.

Answers `GET ...?watch=true` (or watch=1) like kube-apiserver does: 200 with
Transfer-Encoding: chunked, one ADDED event as the first chunk, then holds
the stream open without sending anything more until the client goes away.
Any other request gets a small JSON 404 Status. TLS with the given
certificate; HTTP/1.1 keep-alive for non-watch requests.

Usage: watch_upstream.py --port P --cert C --key K
Prints "READY" on stdout once listening; SIGTERM/SIGINT stops it.
"""
import argparse
import asyncio
import json
import signal
import ssl
import sys

EVENT = {
    "type": "ADDED",
    "object": {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "app-config-0", "namespace": "bench",
                     "uid": "8f0b6a1e-6a1c-4c1e-9b7e-1d2c3b4a5f60", "resourceVersion": "48213977",
                     "creationTimestamp": "2026-05-01T00:00:00Z"},
        "data": {"LOG_LEVEL": "info"},
    },
}
NOT_FOUND = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "the server could not find the requested resource",
                        "reason": "NotFound", "code": 404}).encode()
MAX_HEAD = 64 * 1024


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def is_watch(target):
    _, _, query = target.partition("?")
    return any(p in ("watch=true", "watch=1") for p in query.split("&"))


async def serve(reader, writer, stats):
    stats["conns"] += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                return
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            if parts[0] == "GET" and is_watch(parts[1]):
                stats["watches"] += 1
                ev = json.dumps(EVENT, separators=(",", ":")).encode() + b"\n"
                writer.write(b"HTTP/1.1 200 OK\r\nCache-Control: no-cache, private\r\n"
                             b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(ev))
                await writer.drain()
                await reader.read(1)  # hold until the client (byline) closes
                return
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(NOT_FOUND), NOT_FOUND))
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        stats["conns"] -= 1
        writer.transport.abort()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    # kube-apiserver (Go crypto/tls) sends one TLS 1.3 session ticket per
    # connection; OpenSSL's default is two. A client that keeps tickets pays
    # for each, so send what the real server sends.
    ctx.num_tickets = 1
    stats = {"conns": 0, "watches": 0}
    server = await asyncio.start_server(lambda r, w: serve(r, w, stats), "127.0.0.1", a.port,
                                        ssl=ctx, backlog=4096, limit=MAX_HEAD, ssl_handshake_timeout=60)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    server.close()
    print(f"watch upstream: {stats['watches']} watches served, {stats['conns']} still open", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
