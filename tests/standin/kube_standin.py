#!/usr/bin/env python3
"""kube-standin: a stand-in Kubernetes API server for byline's tests.

Behaves like kube-apiserver (v1.30) on the wire for what kubectl 1.27..1.33
does in the tests: discovery, CRUD, watch, patch, scale, logs, exec/attach/
port-forward over WebSocket and SPDY/3.1, authentication, impersonation and
audit.k8s.io/v1 event logging. Standard library only. See README.md."""

import argparse
import fcntl
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import audit  # noqa: E402
import authn  # noqa: E402
import httpio  # noqa: E402
import objects  # noqa: E402
import registry  # noqa: E402
import rest  # noqa: E402
import store as storemod  # noqa: E402

SEED_LOG = [
    "2026-11-28T06:10:00.000Z INFO  starting api version=1.4.2",
    "2026-11-28T06:10:00.120Z INFO  loaded config from /app/config.yaml",
    "2026-11-28T06:10:00.300Z INFO  connected to database host=db.web.svc",
    "2026-11-28T06:10:00.310Z INFO  listening on :8080",
    "2026-11-28T06:11:12.004Z INFO  GET /healthz 200 0.4ms",
    "2026-11-28T06:12:40.918Z WARN  slow request GET /v1/orders 812ms",
    "2026-11-28T06:13:02.551Z INFO  GET /v1/orders 200 12.3ms",
    "2026-11-28T06:14:51.007Z INFO  GET /healthz 200 0.3ms",
]


def ensure_tls(d):
    """Creates DIR/ca.crt, server.crt, server.key (openssl) when missing: an
    existing ca.crt + ca.key signs the new server certificate, otherwise a new
    CA is made too. Safe against several stand-ins starting at once on DIR."""
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)
    with open(p(".standin-tls.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if all(os.path.exists(p(n)) for n in ("ca.crt", "server.crt", "server.key")):
            return
        with tempfile.TemporaryDirectory() as t:
            q = lambda n: os.path.join(t, n)
            with open(q("ext.cnf"), "w") as f:
                f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                        "extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n"
                        "keyUsage=critical,digitalSignature,keyEncipherment\n")
            ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

            def run(*a):
                subprocess.run(a, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

            outputs = ["server.key", "server.crt"]
            if os.path.exists(p("ca.crt")) and os.path.exists(p("ca.key")):
                ca_crt, ca_key = p("ca.crt"), p("ca.key")
            else:
                ca_crt, ca_key = q("ca.crt"), q("ca.key")
                run("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt,
                    "-days", "3650", "-subj", "/CN=kube-standin-ca",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
                outputs = ["ca.key", "ca.crt"] + outputs
            run("openssl", "req", *ec, "-keyout", q("server.key"), "-out", q("server.csr"),
                "-subj", "/CN=kube-apiserver")
            run("openssl", "x509", "-req", "-in", q("server.csr"), "-CA", ca_crt,
                "-CAkey", ca_key, "-CAcreateserial", "-out", q("server.crt"), "-days", "3650",
                "-extfile", q("ext.cnf"))
            for n in outputs:
                os.replace(q(n), p(n))


def seed_default(api):
    st = api.store
    for rname, group, obj in objects.seed_objects():
        res = registry.lookup(group, "v1", rname)
        objects.apply_defaults(res, obj, creating=True)
        objects.bump_generation(res, None, obj)
        obj = rest._order(obj)
        st.create(res, obj)
    for line in SEED_LOG:
        api.logs.add("web", "api-0", "app", (line + "\n").encode())
    api.logs.add("kube-system", "coredns-5d78c9869d-abcde", "coredns",
                 b"[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc\n"
                 b"CoreDNS-1.11.1\nlinux/amd64, go1.20.7, ae2bbc2\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--tls-dir", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--audit-log", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--ready-file")
    ap.add_argument("--impersonators", default="")
    ap.add_argument("--seed", choices=["default", "none"], default="none")
    ap.add_argument("--omit-stages", default="",
                    help="comma-separated audit stages not to write (like a policy's omitStages)")
    ap.add_argument("--eks-auth", help="also accept EKS (k8s-aws-v1.) tokens as configured "
                    "in this JSON file (see eks_auth.py)")
    args = ap.parse_args()

    host, _, port = args.listen.rpartition(":")
    ensure_tls(args.tls_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(args.tls_dir, "server.crt"),
                        os.path.join(args.tls_dir, "server.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL

    lsock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host.strip("[]"), int(port)))
    lsock.listen(256)
    real_port = lsock.getsockname()[1]

    st = storemod.Store()
    authenticator = authn.Authenticator(
        authn.load_tokens(args.tokens),
        [u.strip() for u in args.impersonators.split(",") if u.strip()])
    if args.eks_auth:
        import eks_auth
        authenticator = eks_auth.wrap(authenticator, args.eks_auth)
    alog = audit.AuditLog(args.audit_log, [s.strip() for s in args.omit_stages.split(",")
                                           if s.strip()])
    api = rest.ApiServer(st, authenticator, alog, "%s:%d" % (host.strip("[]"), real_port))
    if args.seed == "default":
        seed_default(api)

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % real_port)
        os.replace(tmp, args.ready_file)
    print("kube-standin: listening on https://%s:%d" % (host, real_port), file=sys.stderr,
          flush=True)

    def serve(sock, peer):
        try:
            sock.settimeout(10)
            tls = ctx.wrap_socket(sock, server_side=True)
            tls.settimeout(None)
            cert = tls.getpeercert() if args.client_ca else None
        except (OSError, ssl.SSLError):
            try:
                sock.close()
            except OSError:
                pass
            return
        api.serve_conn(httpio.Conn(tls, peer, cert))

    try:
        while True:
            try:
                sock, peer = lsock.accept()
            except InterruptedError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(sock, peer), daemon=True).start()
    except SystemExit:
        pass
    finally:
        lsock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
