"""Minimal HTTP/1.1 server side: request parsing (Content-Length and chunked
bodies), keep-alive, fixed-length and chunked responses. Bounded everywhere."""

import socket
import threading
import urllib.parse

from kutil import http_date

MAX_LINE = 64 * 1024
MAX_HEADERS = 200
MAX_BODY = 32 * 1024 * 1024

REASONS = {
    101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
    413: "Request Entity Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


class HttpError(Exception):
    pass


class Conn:
    """One client connection (TLS socket). Writes are serialised by a lock so
    streaming code may write from several threads."""

    def __init__(self, sock, peer, peer_cert=None):
        self.sock = sock
        self.rfile = sock.makefile("rb", buffering=65536)
        self.peer = peer
        self.peer_cert = peer_cert
        self.wlock = threading.Lock()
        self.closed = False

    def send(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def read_exact(self, n):
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise EOFError("connection closed")
        return data

    def read_some(self, n=65536):
        """Whatever is available (at least 1 byte) or b'' on EOF."""
        try:
            return self.rfile.read1(n)
        except (OSError, ValueError):
            return b""

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class Request:
    def __init__(self, conn, method, target, version, headers):
        self.conn = conn
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), original case
        path, _, query = target.partition("?")
        self.raw_path = path
        self.path = urllib.parse.unquote(path)
        self.raw_query = query
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.body = b""

    def header(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[0] if v else default

    def wants_close(self):
        tokens = ",".join(self.header_all("Connection")).lower()
        if "close" in [t.strip() for t in tokens.split(",")]:
            return True
        return self.version == "HTTP/1.0" and "keep-alive" not in tokens


def _readline(conn):
    line = conn.rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise HttpError("line too long")
    return line


def read_request(conn):
    """Returns the next Request (body read) or None on clean EOF."""
    line = _readline(conn)
    while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between requests
        line = _readline(conn)
    if not line:
        return None
    try:
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
    except ValueError:
        raise HttpError("bad request line")
    if not version.startswith("HTTP/1."):
        raise HttpError("bad version")
    headers = []
    while True:
        h = _readline(conn)
        if not h:
            raise HttpError("eof in headers")
        if h in (b"\r\n", b"\n"):
            break
        if len(headers) >= MAX_HEADERS:
            raise HttpError("too many headers")
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError("bad header")
        headers.append((name, value.strip()))
    req = Request(conn, method, target, version, headers)
    if (req.header("Expect") or "").lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    te = (req.header("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        req.body = _read_chunked(conn)
    else:
        cl = req.header("Content-Length")
        if cl:
            try:
                n = int(cl)
            except ValueError:
                raise HttpError("bad content-length")
            if n < 0 or n > MAX_BODY:
                raise HttpError("body too large")
            req.body = conn.read_exact(n) if n else b""
    return req


def _read_chunked(conn):
    out = bytearray()
    while True:
        line = _readline(conn)
        if not line:
            raise HttpError("eof in chunked body")
        try:
            n = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise HttpError("bad chunk size")
        if n == 0:
            while True:  # trailers
                t = _readline(conn)
                if t in (b"\r\n", b"\n", b""):
                    return bytes(out)
        if len(out) + n > MAX_BODY:
            raise HttpError("body too large")
        out += conn.read_exact(n)
        conn.read_exact(2)


def head_bytes(code, headers):
    lines = ["HTTP/1.1 %d %s" % (code, REASONS.get(code, "Status"))]
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def write_response(conn, code, headers, body=b"", close=False, head_only=False):
    hs = list(headers)
    hs.append(("Date", http_date()))
    if code not in (101, 204, 304):
        hs.append(("Content-Length", str(len(body))))
    if close:
        hs.append(("Connection", "close"))
    conn.send(head_bytes(code, hs) + (b"" if head_only else body))


class ChunkedWriter:
    """Transfer-Encoding: chunked response body, each write flushed at once."""

    def __init__(self, conn, code, headers, close=False):
        self.conn = conn
        hs = list(headers)
        hs.append(("Date", http_date()))
        hs.append(("Transfer-Encoding", "chunked"))
        if close:
            hs.append(("Connection", "close"))
        conn.send(head_bytes(code, hs))
        self.done = False

    def write(self, data):
        if data:
            self.conn.send(b"%x\r\n" % len(data) + data + b"\r\n")

    def end(self):
        if not self.done:
            self.done = True
            self.conn.send(b"0\r\n\r\n")
