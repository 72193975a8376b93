"""SPDY/3.1 server-side session (what moby/spdystream speaks for kubectl):
control frames SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY,
HEADERS, WINDOW_UPDATE; DATA frames with FIN half-close; header blocks
compressed with one zlib stream per direction and the SPDY/3 dictionary.
Like spdystream, flow control windows are not enforced."""

import queue
import struct
import threading
import zlib

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_REFUSED, RST_CANCEL = 1, 2, 3, 5
MAX_FRAME = 16 * 1024 * 1024
DATA_CHUNK = 32 * 1024


def _dictionary():
    """The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1):
    length-prefixed common header names and values, then a run of common
    value fragments. 1423 bytes."""
    words = [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
        "cache-control", "connection", "content-base", "content-encoding", "content-language",
        "content-length", "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
        "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
        "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
        "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    out = b"".join(struct.pack("!I", len(w)) + w.encode() for w in words)
    out += (b"100101201202205206300302303304305306307402405406407408409410411412413414415416"
            b"417502504505203 Non-Authoritative Information204 No Content301 Moved "
            b"Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal "
            b"Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul "
            b"Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,"
            b"text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
            b"text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
            b"charset=iso-8859-1,utf-,*,enq=0.")
    return out


DICTIONARY = _dictionary()
assert len(DICTIONARY) == 1423, len(DICTIONARY)


def encode_headers(headers):
    """headers: list of (name, value); repeated names are joined with NUL."""
    merged = {}
    for k, v in headers:
        merged.setdefault(k.lower(), []).append(v)
    out = struct.pack("!I", len(merged))
    for k, vs in merged.items():
        kb, vb = k.encode(), "\x00".join(vs).encode()
        out += struct.pack("!I", len(kb)) + kb + struct.pack("!I", len(vb)) + vb
    return out


def decode_headers(block):
    n = struct.unpack("!I", block[:4])[0]
    i = 4
    out = {}
    for _ in range(n):
        ln = struct.unpack("!I", block[i:i + 4])[0]
        name = block[i + 4:i + 4 + ln].decode("latin-1").lower()
        i += 4 + ln
        lv = struct.unpack("!I", block[i:i + 4])[0]
        val = block[i + 4:i + 4 + lv].decode("latin-1")
        i += 4 + lv
        out[name] = val.split("\x00")
    return out


class Stream:
    def __init__(self, session, sid, headers):
        self.session = session
        self.id = sid
        self.headers = headers
        self.q = queue.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.reset = False
        self.buf = b""

    def header(self, name, default=""):
        v = self.headers.get(name.lower())
        return v[0] if v else default

    def read(self, timeout=None):
        """Next chunk of data, b'' once the peer half-closed (FIN) or reset."""
        if self.buf:
            out, self.buf = self.buf, b""
            return out
        try:
            item = self.q.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            self.q.put(None)  # stay at EOF
            return b""
        return item

    def write(self, data):
        if self.local_closed or self.reset:
            return
        for i in range(0, len(data), DATA_CHUNK):
            self.session.send_data(self.id, data[i:i + DATA_CHUNK], 0)

    def close(self):
        """Half-close our side: an empty DATA frame with FLAG_FIN."""
        if not self.local_closed and not self.reset:
            self.local_closed = True
            self.session.send_data(self.id, b"", FLAG_FIN)

    def _remote_fin(self):
        if not self.remote_closed:
            self.remote_closed = True
            self.q.put(None)


class Session:
    """io must offer read_exact(n) (raises EOFError) and write(bytes)."""

    def __init__(self, io, on_stream):
        self.io = io
        self.on_stream = on_stream
        self.wlock = threading.Lock()
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                        zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.streams = {}
        self.closed = threading.Event()
        self.goaway_sent = False

    # --- writing -----------------------------------------------------------
    def _send(self, data):
        with self.wlock:
            self.io.write(data)

    def _control(self, ftype, flags, payload):
        return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def send_data(self, sid, data, flags):
        frame = struct.pack("!II", sid & 0x7FFFFFFF, (flags << 24) | len(data)) + data
        try:
            self._send(frame)
        except (OSError, EOFError):
            self.closed.set()

    def send_reply(self, sid, headers=(), fin=False):
        with self.wlock:
            block = self.deflate.compress(encode_headers(headers)) + \
                self.deflate.flush(zlib.Z_SYNC_FLUSH)
            payload = struct.pack("!I", sid & 0x7FFFFFFF) + block
            self.io.write(self._control(SYN_REPLY, FLAG_FIN if fin else 0, payload))

    def send_rst(self, sid, status=RST_CANCEL):
        try:
            self._send(self._control(RST_STREAM, 0, struct.pack("!II", sid, status)))
        except (OSError, EOFError):
            pass

    def goaway(self):
        if self.goaway_sent:
            return
        self.goaway_sent = True
        last = max([s for s in self.streams] or [0])
        try:
            self._send(self._control(GOAWAY, 0, struct.pack("!II", last, 0)))
        except (OSError, EOFError):
            pass

    # --- reading -----------------------------------------------------------
    def run(self):
        """Reads frames until the peer goes away; returns then."""
        try:
            while True:
                head = self.io.read_exact(8)
                w1, w2 = struct.unpack("!II", head)
                flags, length = w2 >> 24, w2 & 0xFFFFFF
                if length > MAX_FRAME:
                    raise EOFError("frame too large")
                payload = self.io.read_exact(length) if length else b""
                if w1 & 0x80000000:
                    self._on_control((w1 >> 16) & 0x7FFF, w1 & 0xFFFF, flags, payload)
                else:
                    self._on_data(w1 & 0x7FFFFFFF, flags, payload)
        except (EOFError, OSError, ValueError, struct.error, zlib.error):
            pass
        finally:
            self.closed.set()
            for s in list(self.streams.values()):
                s._remote_fin()

    def _on_data(self, sid, flags, payload):
        s = self.streams.get(sid)
        if s is None:
            self.send_rst(sid, RST_INVALID_STREAM)
            return
        if payload:
            s.q.put(payload)
        if flags & FLAG_FIN:
            s._remote_fin()

    def _on_control(self, version, ftype, flags, payload):
        if ftype == SYN_STREAM:
            sid = struct.unpack("!I", payload[:4])[0] & 0x7FFFFFFF
            block = self.inflate.decompress(payload[10:])
            headers = decode_headers(block)
            s = Stream(self, sid, headers)
            self.streams[sid] = s
            self.send_reply(sid)
            if flags & FLAG_FIN:
                s._remote_fin()
            self.on_stream(s)
        elif ftype == SYN_REPLY or ftype == HEADERS:
            self.inflate.decompress(payload[4:])  # keep the zlib context in step
        elif ftype == RST_STREAM:
            sid = struct.unpack("!I", payload[:4])[0] & 0x7FFFFFFF
            s = self.streams.get(sid)
            if s is not None:
                s.reset = True
                s._remote_fin()
        elif ftype == PING:
            self._send(self._control(PING, 0, payload[:4]))
        elif ftype == GOAWAY:
            raise EOFError("goaway")
        # SETTINGS and WINDOW_UPDATE: accepted and ignored, as spdystream does
