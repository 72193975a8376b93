"""RFC 6455 WebSocket, server side: handshake, framing (client frames masked,
server frames not), fragmentation, ping/pong and the close handshake."""

import base64
import hashlib
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
MAX_MESSAGE = 64 * 1024 * 1024


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def is_upgrade(req):
    return "websocket" in (req.header("Upgrade") or "").lower() and \
        "upgrade" in (req.header("Connection") or "").lower()


def offered_protocols(req):
    out = []
    for v in req.header_all("Sec-WebSocket-Protocol"):
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


class WebSocket:
    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.Lock()
        self.closed = False
        self.close_sent = False

    def _frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        return head + payload

    def send(self, opcode, payload):
        with self.lock:
            if self.close_sent:
                raise OSError("websocket closed")
            if opcode == OP_CLOSE:
                self.close_sent = True
            self.conn.send(self._frame(opcode, payload))

    def send_binary(self, data):
        self.send(OP_BINARY, bytes(data))

    def close(self, code=1000, reason=b""):
        try:
            self.send(OP_CLOSE, struct.pack("!H", code) + reason)
        except OSError:
            pass

    def _read_frame(self):
        b1, b2 = self.conn.read_exact(2)
        fin, opcode = b1 & 0x80, b1 & 0x0F
        masked, n = b2 & 0x80, b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.conn.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.conn.read_exact(8))[0]
        if n > MAX_MESSAGE:
            raise EOFError("websocket frame too large")
        mask = self.conn.read_exact(4) if masked else None
        data = self.conn.read_exact(n) if n else b""
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if n < 4096 else \
                _unmask(data, mask)
        return bool(fin), opcode, data

    def recv(self):
        """Returns (opcode, payload) of the next data message, or None once the
        peer closed (a close frame is answered) or the connection dropped."""
        buf, first_op = b"", None
        try:
            while True:
                fin, op, data = self._read_frame()
                if op == OP_PING:
                    try:
                        self.send(OP_PONG, data)
                    except OSError:
                        pass
                    continue
                if op == OP_PONG:
                    continue
                if op == OP_CLOSE:
                    self.closed = True
                    if not self.close_sent:
                        code = data[:2] if len(data) >= 2 else struct.pack("!H", 1000)
                        try:
                            self.send(OP_CLOSE, code)
                        except OSError:
                            pass
                    return None
                if op != OP_CONT:
                    first_op = op
                buf += data
                if len(buf) > MAX_MESSAGE:
                    raise EOFError("websocket message too large")
                if fin:
                    return first_op, buf
        except (EOFError, OSError, ValueError):
            self.closed = True
            return None


def _unmask(data, mask):
    n = len(data)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


class ByteStream:
    """The WebSocket as a plain byte stream (binary messages concatenated), for
    the SPDY/3.1 tunnel of kubectl's port-forward over WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self.buf = b""
        self.eof = False

    def read(self, n):
        while not self.buf and not self.eof:
            m = self.ws.recv()
            if m is None:
                self.eof = True
                break
            self.buf += m[1]
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.read(n - len(out))
            if not chunk:
                raise EOFError("tunnel closed")
            out += chunk
        return out

    def write(self, data):
        self.ws.send_binary(data)

    def close(self):
        self.ws.close()
