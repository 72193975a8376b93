#!/usr/bin/env python3
"""An HTTPS server that records what each GET carried, one line per request:
   path=<path> authorization=<Authorization header> cn=<verified client cert CN>
appended to LOG and sent back as the body (for .../version, a version object
instead, so `kubectl version` succeeds). Used by test_cli.sh to check, with
the real kubectl, that a kubeconfig from `byline kubeconfig` verifies the
gateway's certificate chain, sends the identity's token or presents its
client certificate, and keeps the /k8s/<connection> prefix.
usage: echo_server.py PORT CERT KEY CLIENT_CA LOG"""
import http.server
import ssl
import sys

port, cert, key, ca, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
VERSION = b'{"major":"1","minor":"33","gitVersion":"v1.33.0-echo","platform":"linux/amd64"}\n'


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        cn = ""
        peer = self.connection.getpeercert()
        for rdn in (peer or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        line = "path=%s authorization=%s cn=%s\n" % (
            self.path, self.headers.get("Authorization", ""), cn)
        with open(log, "a") as f:
            f.write(line)
        is_version = self.path.split("?")[0].endswith("/version")
        data = VERSION if is_version else line.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if is_version else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_OPTIONAL
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
