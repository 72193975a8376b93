"""Workload identity end to end: real kubectl (1.33 and 1.27) carrying a
JWT as its kubeconfig token, through a second byline that trusts two
issuers, to the stand-in cluster.

  - "k8s": a Kubernetes ServiceAccount-style issuer whose JWKS is a file;
  - "web": an issuer whose JWKS is served over HTTPS by this test (checked
    against the stand-in's CA), which rotates its key mid-test;
  - the same server as an OIDC issuer whose jwks_uri byline discovers;
  - an issuer on that server configured without its CA (untrusted).

Tokens are signed here with the openssl command line (RS256 is PKCS#1 v1.5
over SHA-256; ES256 is converted from DER to r||s here), never with byline.
Checks: the mapped identity is the audit record's actor (credential jwt)
and the request reaches the cluster; expired, wrong-audience, wrong-issuer
and alg-none tokens get kubectl's "You must be logged in" error with
byline's reason and an unauthenticated record that never quotes the token;
a token signed with a key the issuer published after byline fetched its
JWKS goes through on the first try (unknown kid -> refresh), and one whose
kid the issuer never published is refused after the bounded wait."""

import base64
import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time

import check_kubectl as ck
from env import allow_all, free_port, join_requests, ledger_entries, run, wait_port

K8S_ISS = "https://kubernetes.default.svc.cluster.local"
WEB_ISS = "https://issuer.test.byline"
UNTRUSTED_ISS = "https://untrusted.test.byline"  # same JWKS server, but no `ca`: its certificate is not trusted


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_ints(der):
    """(r, s) from a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs)."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = []
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out.append(int.from_bytes(der[i + 2:i + 2 + n], "big"))
        i += 2 + n
    return out


class Key:
    """A key pair made with openssl; .jwk() is its public JWK."""

    def __init__(self, d, name, kind="rsa"):
        self.kind = kind
        self.path = os.path.join(d, name + ".pem")
        alg = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa" else \
            ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run(["openssl", "genpkey", *alg, "-out", self.path]).check_returncode()

    def jwk(self, kid):
        if self.kind == "rsa":
            mod = run(["openssl", "rsa", "-in", self.path, "-noout", "-modulus"]).stdout.strip()
            n = bytes.fromhex(mod.split("=", 1)[1])
            return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(n), "e": "AQAB"}
        der = subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout", "-outform", "DER"],
                             capture_output=True, check=True).stdout
        pt = der[-65:]  # the uncompressed point ends the SubjectPublicKeyInfo
        return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(pt[1:33]), "y": b64u(pt[33:])}

    def sign(self, data):
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path], input=data,
                             capture_output=True, check=True).stdout
        if self.kind == "rsa":
            return sig
        r, s = der_ints(sig)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def token(key, kid, claims, alg=None):
    hdr = {"alg": alg or ("RS256" if key.kind == "rsa" else "ES256"), "typ": "JWT"}
    if kid:
        hdr["kid"] = kid
    si = b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())
    if alg == "none":
        return si + "."
    return si + "." + b64u(key.sign(si.encode()))


class JwksServer(threading.Thread):
    """HTTPS JWKS endpoint; `keys` can be replaced to rotate."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.keys = []
        self.gets = 0
        self.discoveries = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.gets += 1
                body = json.dumps({"keys": outer.keys}).encode()
                if self.path == "/.well-known/openid-configuration":  # OIDC discovery
                    outer.discoveries += 1
                    body = json.dumps({"issuer": outer.url, "jwks_uri": outer.url + "/jwks"}).encode()
                self.send_response(200 if self.path in ("/jwks", "/.well-known/openid-configuration") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(env.tls, "server.crt"), os.path.join(env.tls, "server.key"))

        class S(http.server.ThreadingHTTPServer):
            request_queue_size = 64

            def finish_request(self, request, client_address):
                # The TLS handshake in the connection's own thread, so a
                # client that fails it (the untrusted issuer) stalls no one.
                try:
                    request = ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                super().finish_request(request, client_address)

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = "https://127.0.0.1:%d" % self.port  # also an issuer found by discovery

    def run(self):
        self.httpd.serve_forever()


class Gateway:
    """A byline trusting the two issuers, sharing the env's stand-in."""

    def __init__(self, env, web):
        self.env = env
        self.dir = os.path.join(env.dir, "jwtgw")
        self.port = free_port()
        env.other_gateways.append(self.dir)
        self.k8s_key = Key(env.dir, "sa-signer")
        self.jwks_file = os.path.join(env.dir, "sa-jwks.json")
        with open(self.jwks_file, "w") as f:
            json.dump({"keys": [self.k8s_key.jwk("sa-1")]}, f)
        p = run([env.byline, "init", "--dir", self.dir, "--upstream", "https://127.0.0.1:%d" % env.cluster_port,
                 "--upstream-ca", env.ca, "--upstream-token-file", env.shared_token_file,
                 "--listen", "127.0.0.1:%d" % self.port])
        if p.returncode != 0:
            raise RuntimeError("init: " + p.stderr)
        with open(os.path.join(self.dir, "byline.yaml"), "a") as f:
            f.write("\nissuers:\n"
                    "  - issuer: %s\n    audience: byline\n    jwks_file: \"%s\"\n"
                    "    username_prefix: \"jwt:\"\n    clock_skew: 30s\n"
                    "  - issuer: %s\n    audience: byline\n    jwks_url: https://127.0.0.1:%d/jwks\n"
                    "    ca: \"%s\"\n    username_prefix: \"web:\"\n    groups_claim: groups\n"
                    "    groups_prefix: \"web:\"\n    claims:\n      repository: acme/deploy\n"
                    "  - issuer: %s\n    audience: byline\n    jwks_url: https://127.0.0.1:%d/jwks\n"
                    "    username_prefix: \"u:\"\n"
                    "  - issuer: %s\n    audience: byline\n    ca: \"%s\"\n    username_prefix: \"oidc:\"\n"
                    % (K8S_ISS, self.jwks_file, WEB_ISS, web.port, env.ca, UNTRUSTED_ISS, web.port, web.url, env.ca))
        allow_all(self.dir)
        p = run([env.byline, "identity", "add", "agent-static", "--dir", self.dir])
        if p.returncode != 0:
            raise RuntimeError("identity add: " + p.stderr)
        self.static_token = p.stdout.strip()
        self.log_path = os.path.join(self.dir, "serve.log")
        self.log = open(self.log_path, "w")
        # Under --valgrind, this byline gets its own log (its exit code says if it was clean).
        self.wrapper = [a if not a.startswith("--log-file=") else "--log-file=" + os.path.join(self.dir, "valgrind.log")
                        for a in env.wrapper]
        self.proc = subprocess.Popen(self.wrapper + [env.byline, "serve", "--dir", self.dir],
                                     stdout=self.log, stderr=self.log)
        env.procs.append(self.proc)
        if not wait_port(self.port, self.proc, timeout=60 if env.wrapper else 20):
            raise RuntimeError("jwt byline did not start: " + open(self.log_path).read())

    def kubectl(self, name, tok, version):
        kc = os.path.join(self.env.dir, "jwt-%s.kubeconfig" % name)
        with open(kc, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                       "clusters": [{"name": "b", "cluster": {
                           "server": "https://127.0.0.1:%d" % self.port,
                           "certificate-authority": os.path.join(self.dir, "tls", "ca.crt")}}],
                       "users": [{"name": name, "user": {"token": tok}}],
                       "contexts": [{"name": "c", "context": {"cluster": "b", "user": name}}]}, f)
        os.chmod(kc, 0o600)
        return ck.Kubectl(type("A", (), {"dir": self.env.dir, "kubeconfig": kc})(), version)

    def mark(self):
        return len(ledger_entries(os.path.join(self.dir, "audit")))

    def requests_after(self, mark, want):
        """Waits (up to 30 s: valgrind is slow) until want(records) holds."""
        deadline = time.time() + 30
        while True:
            recs = self.requests(mark)
            if want(recs) or time.time() > deadline:
                return recs
            time.sleep(0.1)

    def requests(self, mark):
        return join_requests(ledger_entries(os.path.join(self.dir, "audit"))[mark:])


def sa_claims(sub="system:serviceaccount:agents:deploybot", aud=("byline",), exp=600, iss=K8S_ISS):
    now = int(time.time())
    return {"iss": iss, "sub": sub, "aud": list(aud), "exp": now + exp, "iat": now - 5, "nbf": now - 5,
            "kubernetes.io": {"namespace": "agents", "serviceaccount": {"name": "deploybot"}}}


def accepted(gw, env, result, v, label, tok, actor, groups=None, slow_retry=False):
    k = gw.kubectl("ok", tok, v)
    mark = gw.mark()
    rc, out, err = k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"], timeout=120)
    if rc != 0 and slow_retry and gw.wrapper:
        # Under valgrind a JWKS fetch can outlast the 3 s a request waits
        # for it; the refresh still lands, so the next attempt must pass.
        time.sleep(10)
        mark = gw.mark()
        rc, out, err = k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"], timeout=120)
    sel = lambda rs: [r for r in rs if "configmap/settings" in r.get("action", "") and "result" in r]
    recs = sel(gw.requests_after(mark, sel))
    rec = recs[-1] if recs else {}
    why = []
    if rc != 0 or out != "configmap/settings\n":
        why.append("kubectl rc=%d out=%r err=%r" % (rc, out, err[-300:]))
    if rec.get("actor") != actor or rec.get("credential") != "jwt" or rec.get("result") != "allowed":
        why.append("record %r" % rec)
    if groups is not None and rec.get("groups") != groups:
        why.append("groups %r" % rec.get("groups"))
    if rec and not [e for e in env.cluster_events() if e["auditID"] == rec.get("id")]:
        why.append("no cluster event for %s" % rec.get("id"))
    result("jwt kubectl %s: %s" % (v, label), not why, "; ".join(why))


def refused(gw, result, v, label, tok, reason_re):
    k = gw.kubectl("bad", tok, v)
    mark = gw.mark()
    rc, out, err = k.run(["get", "pods", "-n", "web"], timeout=120)
    sel = lambda rs: [r for r in rs if r.get("result") == "unauthenticated"]
    recs = sel(gw.requests_after(mark, sel))
    why = []
    if rc == 0 or "You must be logged in to the server (byline: " not in err or not re.search(reason_re, err):
        why.append("kubectl rc=%d err=%r" % (rc, err[-300:]))
    if not recs or not all(r.get("status") == 401 and r.get("actor") is None and
                           re.search(reason_re, r.get("reason", "")) for r in recs):
        why.append("records %r" % recs[:2])
    sig = tok.rsplit(".", 1)[1]
    if any(tok.split(".")[1] in json.dumps(r) or (sig and sig in json.dumps(r)) for r in recs):
        why.append("a record quotes the token")
    result("jwt kubectl %s: %s" % (v, label), not why, "; ".join(why))


def run_all(env, result, versions=("1.33", "1.27")):
    web = JwksServer(env)
    web_key, web_key2 = Key(env.dir, "web-1", "ec"), Key(env.dir, "web-2", "rsa")
    web.keys = [web_key.jwk("w1")]
    web.start()
    gw = Gateway(env, web)
    for v in versions:
        accepted(gw, env, result, v, "ServiceAccount JWT (file JWKS) maps to jwt:<sub>",
                 token(gw.k8s_key, "sa-1", sa_claims()), "jwt:system:serviceaccount:agents:deploybot")
        web_claims = dict(sa_claims(sub="repo:acme/deploy:ref:refs/heads/main", iss=WEB_ISS),
                          repository="acme/deploy", groups=["deployers"])
        accepted(gw, env, result, v, "ES256 JWT (HTTPS JWKS) with groups",
                 token(web_key, "w1", web_claims), "web:repo:acme/deploy:ref:refs/heads/main", ["web:deployers"])
        accepted(gw, env, result, v, "JWT from an issuer whose keys OIDC discovery found",
                 token(web_key, "w1", sa_claims(sub="discovered", iss=web.url)), "oidc:discovered")
        refused(gw, result, v, "expired JWT is 401 with the reason",
                token(gw.k8s_key, "sa-1", sa_claims(exp=-120)), r"JWT expired \d+ s ago")
        refused(gw, result, v, "wrong-audience JWT is 401 with the reason",
                token(gw.k8s_key, "sa-1", sa_claims(aud=("kubernetes",))), r"JWT aud does not include byline")
        refused(gw, result, v, "JWT from an unconfigured issuer is 401",
                token(gw.k8s_key, "sa-1", sa_claims(iss="https://evil.example")),
                r"unknown bearer token \(JWT issuer \"https://evil.example\" is not configured\)")
        refused(gw, result, v, "alg none is 401", token(gw.k8s_key, "sa-1", sa_claims(), alg="none"),
                r"JWT alg none is refused")
        refused(gw, result, v, "a required claim that differs is 401",
                token(web_key, "w1", dict(web_claims, repository="acme/other")),
                r"JWT claim repository does not have the value")
    refused(gw, result, versions[0], "JWKS from a server whose certificate is not trusted: 401 saying so",
            token(web_key, "w1", sa_claims(iss=UNTRUSTED_ISS)),
            r"no keys for this JWT issuer yet: GET https://127.0.0.1:\d+/jwks: TLS handshake with 127.0.0.1 failed")
    # Rotation: the issuer publishes a new key; byline's cached set lacks it.
    v = versions[0]
    gets = web.gets
    web.keys = [web_key.jwk("w1"), web_key2.jwk("w2")]
    web_claims = dict(sa_claims(sub="rotated", iss=WEB_ISS), repository="acme/deploy")
    accepted(gw, env, result, v, "a key published after the last fetch works at once (unknown kid refresh)",
             token(web_key2, "w2", web_claims), "web:rotated", slow_retry=True)
    result("jwt: byline read the discovery document", web.discoveries >= 1, "%d" % web.discoveries)
    result("jwt: the unknown kid made byline fetch the JWKS again", web.gets > gets, "gets %d -> %d" % (gets, web.gets))
    t0 = time.time()
    refused(gw, result, v, "a kid the issuer never published is 401 after the bounded wait",
            token(web_key2, "nope", web_claims), r"JWT kid nope is not in the issuer's JWKS")
    result("jwt: the refused unknown kid waited no more than the bound", time.time() - t0 < 15,
           "%.1fs" % (time.time() - t0))
    # Static tokens keep working on the same gateway.
    k = gw.kubectl("static", gw.static_token, v)
    mark = gw.mark()
    rc, out, err = k.run(["get", "configmap", "settings", "-n", "web", "-o", "name"], timeout=120)
    sel = lambda rs: [r for r in rs if "configmap/settings" in r.get("action", "") and "result" in r]
    recs = sel(gw.requests_after(mark, sel))
    result("jwt: a static token beside issuers still works (credential token)",
           rc == 0 and recs and recs[-1].get("actor") == "agent-static" and recs[-1].get("credential") == "token",
           "rc=%d err=%r recs=%r" % (rc, err[-200:], recs[-1:]))
    gw.proc.send_signal(signal.SIGTERM)
    try:
        rc = gw.proc.wait(60)
    except subprocess.TimeoutExpired:
        gw.proc.kill()
        rc = None
    result("jwt: the JWT gateway stops cleanly on SIGTERM%s" % (" (valgrind: no errors or leaks)" if gw.wrapper else ""),
           rc == 0, "exit %r; see %s" % (rc, os.path.join(gw.dir, "valgrind.log") if gw.wrapper else gw.log_path))
    web.httpd.shutdown()
