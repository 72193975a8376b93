#!/usr/bin/env python3
"""Proves the stand-in against the REAL kubectl (1.27 and 1.33), no gateway:
runs kube_standin.py on a free port and drives kubectl through get/list/watch,
scale, apply (client- and server-side), create, delete, logs, exec (SPDY for
1.27, WebSocket for 1.33), cp both ways, port-forward (SPDY / WebSocket
tunnel), impersonation, then checks Audit-ID handling and the audit log with a
raw HTTPS client. Ends with 'N passed, N failed'; exits non-zero on failure."""

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
KUBECTL_DIR = os.environ.get("KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin")
VERSIONS = os.environ.get("KUBECTL_VERSIONS", "1.27 1.33").split()
ADMIN_TOKEN = "standin-admin-" + uuid.uuid4().hex[:12]
ALICE_TOKEN = "standin-alice-" + uuid.uuid4().hex[:12]
# stderr lines kubectl legitimately prints against a real cluster too
EXPECTED_STDERR = [
    re.compile(r"^tar: Removing leading `/' from member names$"),  # GNU tar in the pod, kubectl cp
    re.compile(r"^If you don't see a command prompt, try pressing enter\.$"),  # kubectl attach
]

PASSED = []
FAILED = []


def result(name, ok, why=""):
    if ok:
        PASSED.append(name)
        print("PASS %s" % name, flush=True)
    else:
        FAILED.append(name)
        print("FAIL %s: %s" % (name, why), flush=True)


def unexpected_stderr(err):
    bad = []
    for line in err.splitlines():
        if line.strip() and not any(p.match(line) for p in EXPECTED_STDERR):
            bad.append(line)
    return bad


def make_client_cert(d):
    """A client CA and a certificate CN=carol, O=ops signed by it (openssl)."""
    ca, cakey = os.path.join(d, "client-ca.crt"), os.path.join(d, "client-ca.key")
    crt, key, csr = (os.path.join(d, "carol." + x) for x in ("crt", "key", "csr"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", cakey, "-out", ca, "-days", "2",
                    "-subj", "/CN=standin-client-ca"], **q)
    subprocess.run(["openssl", "req", *ec, "-keyout", key, "-out", csr,
                    "-subj", "/O=ops/CN=carol"], **q)
    ext = os.path.join(d, "client-ext.cnf")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext], **q)
    return ca, crt, key


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="standin-check-")
        self.audit = os.path.join(self.dir, "audit.jsonl")
        tokens = os.path.join(self.dir, "tokens.csv")
        with open(tokens, "w") as f:
            f.write('%s,admin,uid-admin,"system:masters"\n' % ADMIN_TOKEN)
            f.write('%s,alice@example.com,uid-alice,"devs"\n' % ALICE_TOKEN)
        ready = os.path.join(self.dir, "ready")
        self.tls = os.path.join(self.dir, "tls")
        self.client_ca, self.client_crt, self.client_key = make_client_cert(self.dir)
        self.log = open(os.path.join(self.dir, "standin.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "kube_standin.py"), "--listen", "127.0.0.1:0",
             "--tls-dir", self.tls, "--tokens", tokens, "--audit-log", self.audit,
             "--ready-file", ready, "--impersonators", "admin", "--seed", "default",
             "--client-ca", self.client_ca],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while not os.path.exists(ready):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("stand-in did not start; see %s" % self.log.name)
            time.sleep(0.05)
        self.port = int(open(ready).read())
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write("""apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
- name: carol
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: standin
  context: {cluster: standin, user: admin}
current-context: standin
""" % (self.port, os.path.join(self.tls, "ca.crt"), ADMIN_TOKEN, self.client_crt,
       self.client_key))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        self.log.close()
        return rc

    def events(self):
        with open(self.audit) as f:
            return [json.loads(line) for line in f if line.strip()]


class Kubectl:
    def __init__(self, env, version):
        self.env = env
        self.version = version
        self.bin = os.path.join(KUBECTL_DIR, "kubectl." + version)
        self.cache = os.path.join(env.dir, "cache-" + version)
        self.home = os.path.join(env.dir, "home-" + version)
        os.makedirs(self.home, exist_ok=True)

    def argv(self, args):
        return [self.bin, "--kubeconfig", self.env.kubeconfig, "--cache-dir", self.cache] + args

    def envvars(self):
        e = dict(os.environ)
        e["HOME"] = self.home
        e.pop("KUBECONFIG", None)
        return e

    def run(self, args, stdin=None, timeout=30):
        p = subprocess.run(self.argv(args), input=stdin, capture_output=True, timeout=timeout,
                           env=self.envvars(), cwd=self.env.dir)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def popen(self, args):
        return subprocess.Popen(self.argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.envvars(), cwd=self.env.dir)


def check(k, name, args, want_rc=0, contains=(), stdin=None, exact=None, stderr_has=None):
    """Runs kubectl; passes when rc, stdout and stderr are as expected."""
    label = "kubectl %s: %s" % (k.version, name)
    try:
        rc, out, err = k.run(args, stdin=stdin)
    except subprocess.TimeoutExpired:
        return result(label, False, "timed out"), ""
    why = []
    if rc != want_rc:
        why.append("rc=%d want %d" % (rc, want_rc))
    for c in contains:
        if c not in out:
            why.append("stdout lacks %r" % c)
    if exact is not None and out != exact:
        why.append("stdout %r != %r" % (out, exact))
    if stderr_has is not None:
        if stderr_has not in err:
            why.append("stderr lacks %r" % stderr_has)
    else:
        bad = unexpected_stderr(err)
        if bad:
            why.append("stderr: %r" % bad[:3])
    if why:
        why.append("stdout=%r stderr=%r" % (out[-300:], err[-300:]))
    result(label, not why, "; ".join(why))
    return out


DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %(name)s
  namespace: web
  labels: {app: %(name)s}
spec:
  replicas: %(replicas)d
  selector:
    matchLabels: {app: %(name)s}
  template:
    metadata:
      labels: {app: %(name)s}
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - name: MODE
          value: "%(mode)s"
"""

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: %(name)s
  namespace: web
data:
  color: %(color)s
"""


def watch_while_scaling(reader, writer, replicas, timeout="4s", settle=1.2, before=None):
    """Holds `kubectl get deployment api -n web -w --request-timeout=TIMEOUT`
    open with the Kubectl `reader`, scales deployment/api to `replicas` with
    `writer` meanwhile (calling `before()` just before, e.g. to mark an audit
    log) and waits for the watch to end. Returns (the scale's rc, its stderr,
    the watch's lines, the watch's stderr)."""
    w = reader.popen(["get", "deployment", "api", "-n", "web", "-w", "--request-timeout=" + timeout])
    lines = []
    t = threading.Thread(target=lambda: lines.extend(w.stdout.read().decode(errors="replace").splitlines()),
                         daemon=True)
    t.start()
    time.sleep(settle)
    if before:
        before()
    rc, _, err = writer.run(["scale", "deployment/api", "--replicas=%d" % replicas, "-n", "web"])
    try:
        w.wait(15)
    except subprocess.TimeoutExpired:
        w.kill()
    t.join(5)
    return rc, err, lines, w.stderr.read().decode(errors="replace")


def port_forward_bodies(k, path="p", n=2):
    """Runs `kubectl port-forward -n web pod/api-0 :8080` with the Kubectl
    `k`, fetches http://127.0.0.1:PORT/<path>0.. through it `n` times and
    stops it. Returns (local port or None, the bodies or "error: ...",
    kubectl's stderr, what it printed before the port)."""
    pf = k.popen(["port-forward", "-n", "web", "pod/api-0", ":8080"])
    port, first, bodies = None, b"", []
    deadline = time.time() + 15
    while time.time() < deadline and port is None:
        line = pf.stdout.readline()
        if not line:
            break
        first += line
        m = re.search(rb"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        port = int(m.group(1)) if m else None
    try:
        for i in range(n if port else 0):
            with urllib.request.urlopen("http://127.0.0.1:%d/%s%d" % (port, path, i), timeout=10) as r:
                bodies.append(r.read().decode())
    except OSError as e:
        bodies.append("error: %s" % e)
    pf.terminate()
    try:
        pf.wait(5)
    except subprocess.TimeoutExpired:
        pf.kill()
    return port, bodies, pf.stderr.read().decode(errors="replace"), first


def version_suite(env, k):
    v = k.version.replace(".", "")
    check(k, "get pods", ["get", "pods", "-n", "web"], contains=["api-0", "Running"])
    check(k, "get pods -A -o wide", ["get", "pods", "-A", "-o", "wide"],
          contains=["coredns", "NOMINATED NODE", "node-1", "api-0"])
    check(k, "list several kinds", ["get", "deploy,svc,cm,secret", "-n", "web"],
          contains=["deployment.apps/api", "service/api", "configmap/settings", "secret/db"])
    check(k, "get -o json", ["get", "configmap", "settings", "-n", "web", "-o", "json"],
          contains=['"LOG_LEVEL": "info"', '"resourceVersion"'])
    check(k, "get missing", ["get", "deployment", "nope", "-n", "web"], want_rc=1,
          stderr_has='Error from server (NotFound): deployments.apps "nope" not found')

    # watch must show a change made by another command while it is open
    label = "kubectl %s: get -w sees scale" % k.version
    replicas = 3 if v == "127" else 4
    rc, _, lines, werr = watch_while_scaling(k, k, replicas, "3s", settle=1.0)
    want = "%d/%d" % (replicas, replicas)
    ok = rc == 0 and any(want in ln for ln in lines[1:]) and not unexpected_stderr(werr)
    result(label, ok, "scale rc=%d, watch lines=%r stderr=%r" % (rc, lines, werr))

    check(k, "scale", ["scale", "deployment/api", "--replicas=5", "-n", "web"],
          exact="deployment.apps/api scaled\n")
    check(k, "scale took effect", ["get", "deployment", "api", "-n", "web", "-o",
                                   "jsonpath={.spec.replicas} {.status.readyReplicas}"],
          exact="5 5")

    dname = "web-" + v
    path = os.path.join(env.dir, "deploy-%s.yaml" % v)
    with open(path, "w") as f:
        f.write(DEPLOY % {"name": dname, "replicas": 1, "mode": "blue"})
    check(k, "apply (client-side) create", ["apply", "-f", path],
          exact="deployment.apps/%s created\n" % dname)
    with open(path, "w") as f:
        f.write(DEPLOY % {"name": dname, "replicas": 2, "mode": "green"})
    check(k, "apply (client-side) update", ["apply", "-f", path],
          exact="deployment.apps/%s configured\n" % dname)
    check(k, "apply result", ["get", "deployment", dname, "-n", "web", "-o",
                              "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].env[0].value}"],
          exact="2 green")
    check(k, "apply unchanged", ["apply", "-f", path],
          exact="deployment.apps/%s unchanged\n" % dname)

    cpath = os.path.join(env.dir, "cm-%s.yaml" % v)
    cname = "ssa-" + v
    with open(cpath, "w") as f:
        f.write(CONFIGMAP % {"name": cname, "color": "red"})
    check(k, "apply --server-side create", ["apply", "--server-side", "-f", cpath],
          exact="configmap/%s serverside-applied\n" % cname)
    with open(cpath, "w") as f:
        f.write(CONFIGMAP % {"name": cname, "color": "blue"})
    check(k, "apply --server-side update", ["apply", "--server-side", "-f", cpath],
          exact="configmap/%s serverside-applied\n" % cname)
    check(k, "server-side apply result", ["get", "cm", cname, "-n", "web", "-o",
                                          "jsonpath={.data.color}"], exact="blue")

    xname = "x-" + v
    check(k, "create configmap", ["create", "configmap", xname, "--from-literal=a=b", "-n", "web"],
          exact="configmap/%s created\n" % xname)
    check(k, "created configmap content", ["get", "cm", xname, "-n", "web", "-o",
                                           "jsonpath={.data.a}"], exact="b")
    check(k, "create duplicate", ["create", "configmap", xname, "--from-literal=a=b", "-n", "web"],
          want_rc=1, stderr_has='configmaps "%s" already exists' % xname)
    check(k, "delete configmap", ["delete", "configmap", xname, "-n", "web"],
          exact='configmap "%s" deleted\n' % xname)
    check(k, "deleted is gone", ["get", "configmap", xname, "-n", "web"], want_rc=1,
          stderr_has='configmaps "%s" not found' % xname)
    check(k, "delete -f", ["delete", "-f", path], exact='deployment.apps "%s" deleted\n' % dname)

    check(k, "logs --tail", ["logs", "api-0", "-n", "web", "-c", "app", "--tail=2"],
          exact="2026-11-28T06:13:02.551Z INFO  GET /v1/orders 200 12.3ms\n"
                "2026-11-28T06:14:51.007Z INFO  GET /healthz 200 0.3ms\n")

    # logs -f must stream a line the container prints later (attach feeds its main process)
    label = "kubectl %s: logs -f streams new output (written via attach -i)" % k.version
    dns = "coredns-5d78c9869d-abcde"
    lf = k.popen(["logs", "-f", dns, "-n", "kube-system", "--tail=1"])
    got = []
    rd = threading.Thread(target=lambda: [got.append(ln.decode(errors="replace"))
                                          for ln in iter(lf.stdout.readline, b"")], daemon=True)
    rd.start()
    marker = "followed line %s %s" % (v, uuid.uuid4().hex[:8])
    time.sleep(0.8)
    arc, aout, aerr = k.run(["attach", "-i", dns, "-n", "kube-system"],
                            stdin=(marker + "\n").encode())
    deadline = time.time() + 10
    while time.time() < deadline and not any(marker in g for g in got):
        time.sleep(0.1)
    lf.terminate()
    try:
        lf.wait(5)
    except subprocess.TimeoutExpired:
        lf.kill()
    ok = arc == 0 and marker in aout and len(got) >= 2 and marker in got[-1] and \
        marker not in got[0] and not unexpected_stderr(aerr)
    result(label, ok, "attach rc=%d out=%r err=%r; logs=%r" % (arc, aout, aerr, got))

    check(k, "exec ls -la /tmp", ["exec", "-n", "web", "api-0", "-c", "app", "--",
                                  "ls", "-la", "/tmp"], contains=["total ", " hello.txt\n", " .\n"])
    check(k, "exec -i cat", ["exec", "-i", "-n", "web", "api-0", "--", "cat"],
          stdin=b"stdin round trip %s\n" % v.encode(), exact="stdin round trip %s\n" % v)
    check(k, "exec exit 3", ["exec", "-n", "web", "api-0", "--", "sh", "-c", "exit 3"],
          want_rc=3, stderr_has="command terminated with exit code 3")
    check(k, "exec unknown command", ["exec", "-n", "web", "api-0", "--", "nosuchcmd"],
          want_rc=1, stderr_has='exec: "nosuchcmd": executable file not found in $PATH')

    src = os.path.join(env.dir, "cp-src-%s.txt" % v)
    back = os.path.join(env.dir, "cp-back-%s.txt" % v)
    payload = ("copied by kubectl %s %s\n" % (k.version, uuid.uuid4())) * 50
    with open(src, "w") as f:
        f.write(payload)
    check(k, "cp to pod", ["cp", src, "web/api-0:/tmp/cp-%s.txt" % v])
    check(k, "cp from pod", ["cp", "web/api-0:/tmp/cp-%s.txt" % v, back])
    ok = os.path.exists(back) and open(back).read() == payload
    result("kubectl %s: cp round-trips content" % k.version, ok, "content differs")

    label = "kubectl %s: port-forward" % k.version
    port, bodies, perr, first = port_forward_bodies(k, "ping")
    ok = port is not None and bodies == ["hello from api-0:8080\n"] * 2 and \
        not unexpected_stderr(perr)
    result(label, ok, "port=%r bodies=%r out=%r err=%r" % (port, bodies, first, perr))

    check(k, "client certificate user", ["--user=carol", "get", "configmap", "settings", "-n", "web",
                                         "-o", "name"], exact="configmap/settings\n")
    check(k, "--as impersonation allowed", ["--as=alice@example.com", "--as-group=devs",
                                            "get", "pods", "-n", "web"], contains=["api-0"])
    check(k, "auth whoami as the impersonated user",
          ["--as=alice@example.com", "--as-group=devs", "auth", "whoami"],
          contains=["alice@example.com", "[devs system:authenticated]"])
    check(k, "auth can-i impersonate (non-impersonator)",
          ["--token=" + ALICE_TOKEN, "auth", "can-i", "impersonate", "users"], want_rc=1,
          exact="no\n")
    check(k, "--as impersonation refused",
          ["--token=" + ALICE_TOKEN, "--as=bob", "get", "pods", "-n", "web"], want_rc=1,
          stderr_has='Error from server (Forbidden): users "bob" is forbidden: User '
                     '"alice@example.com" cannot impersonate resource "users" in API group "" '
                     'at the cluster scope')


def transport_checks(env):
    """Which wire protocol each version used, seen in the audit log."""
    evs = [e for e in env.events() if e["stage"] == "ResponseComplete"]

    def find(ua, sub):
        return [e for e in evs if e.get("userAgent", "").startswith("kubectl.%s/" % ua)
                and e.get("objectRef", {}).get("subresource") == sub]

    spdy, ws = ("create", "SPDY/3.1 POST"), ("get", "WebSocket GET")
    # kubectl's defaults: WebSocket exec/attach from 1.30, WebSocket-tunnelled port-forward from 1.31
    for ver in VERSIONS:
        minor = int(ver.split(".")[1])
        for sub in ("exec", "attach", "portforward"):
            verb, kind = ws if minor >= (31 if sub == "portforward" else 30) else spdy
            got = find(ver, sub)
            ok = bool(got) and all(e["verb"] == verb and e["responseStatus"]["code"] == 101
                                   for e in got)
            result("kubectl %s: %s used %s (audit verb %s, code 101)" % (ver, sub, kind, verb),
                   ok, "events: %r" % [(e["verb"], e["responseStatus"]) for e in got][:4])
    imp = [e for e in evs if e.get("impersonatedUser", {}).get("username") == "alice@example.com"]
    ok = bool(imp) and all(e["user"]["username"] == "admin" and
                           e["impersonatedUser"]["groups"] == ["devs", "system:authenticated"]
                           for e in imp)
    result("audit: impersonated requests name the real user and the target", ok, repr(imp[:1]))
    refused = [e for e in evs if e.get("user", {}).get("username") == "alice@example.com"
               and e["responseStatus"].get("code") == 403]
    ok = bool(refused) and all(e["responseStatus"].get("reason") == "Forbidden" and
                               "impersonatedUser" not in e for e in refused)
    result("audit: refused impersonation is a 403 by the real user", ok, repr(refused[:1]))


def https(env, method, path, headers, body=None, cert=False):
    ctx = ssl.create_default_context(cafile=os.path.join(env.tls, "ca.crt"))
    if cert:
        ctx.load_cert_chain(env.client_crt, env.client_key)
    c = http.client.HTTPSConnection("127.0.0.1", env.port, context=ctx, timeout=10)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    hs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hs, data


def audit_checks(env):
    aid = "0192f3a4-7b1c-7d2e-8f00-" + uuid.uuid4().hex[:12]
    auth = {"Authorization": "Bearer " + ADMIN_TOKEN, "User-Agent": "check-kubectl/1",
            "Accept": "application/json"}
    st, hs, body = https(env, "GET", "/api/v1/namespaces/web/pods/api-0",
                         dict(auth, **{"Audit-ID": aid}))
    result("Audit-ID echoed as Audit-Id on a GET", st == 200 and hs.get("audit-id") == aid,
           "status=%d headers=%r" % (st, hs))
    aid2 = "byline-" + uuid.uuid4().hex
    st2, hs2, body2 = https(env, "PATCH", "/apis/apps/v1/namespaces/web/deployments/api/scale",
                            dict(auth, **{"Audit-ID": aid2,
                                          "Content-Type": "application/merge-patch+json",
                                          "Impersonate-User": "byline:agent-deploybot",
                                          "Impersonate-Group": "system:masters",
                                          "Impersonate-Extra-byline.dev%2fconnection": "prod-eks",
                                          "X-Forwarded-For": "203.0.113.7, 10.1.2.3"}),
                            body=b'{"spec":{"replicas":3}}')
    result("Audit-ID echoed on an impersonated PATCH",
           st2 == 200 and hs2.get("audit-id") == aid2 and json.loads(body2)["spec"]["replicas"] == 3,
           "status=%d headers=%r body=%r" % (st2, hs2, body2[:200]))
    st3, hs3, body3 = https(env, "GET", "/api/v1/namespaces", {"Authorization": "Bearer wrong"})
    want401 = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    gen = hs3.get("audit-id", "")
    result("401 Status body and a generated Audit-Id",
           st3 == 401 and json.loads(body3) == want401 and re.match(
               r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", gen),
           "status=%d audit-id=%r body=%r" % (st3, gen, body3))
    st4, hs4, body4 = https(env, "GET", "/api/v1/namespaces/web/configmaps/settings",
                            {"Audit-ID": aid + "-x509"}, cert=True)
    result("client certificate authenticates", st4 == 200, "status=%d body=%r" % (st4, body4[:200]))
    time.sleep(0.2)
    evs = env.events()
    x509 = [e for e in evs if e["auditID"] == aid + "-x509"]
    result("audit: x509 user is CN with O as groups",
           bool(x509) and all(e["user"] == {"username": "carol",
                                            "groups": ["ops", "system:authenticated"]}
                              for e in x509), json.dumps(x509)[:300])
    mine = [e for e in evs if e["auditID"] == aid]
    stages = [e["stage"] for e in mine]
    ok = stages == ["RequestReceived", "ResponseComplete"] and all(
        e["verb"] == "get" and e["user"] == {"username": "admin", "uid": "uid-admin",
                                             "groups": ["system:masters", "system:authenticated"]}
        and e["objectRef"] == {"resource": "pods", "namespace": "web", "name": "api-0",
                               "apiVersion": "v1"} and e["level"] == "Metadata"
        for e in mine) and mine[-1]["responseStatus"] == {"metadata": {}, "code": 200} and \
        mine[-1]["annotations"] == {"authorization.k8s.io/decision": "allow",
                                    "authorization.k8s.io/reason": ""}
    result("audit: GET events carry the client Audit-ID", ok, json.dumps(mine)[:600])
    mine2 = [e for e in evs if e["auditID"] == aid2]
    last = mine2[-1] if mine2 else {}
    ok = [e["stage"] for e in mine2] == ["RequestReceived", "ResponseComplete"] and \
        last.get("verb") == "patch" and last.get("level") == "RequestResponse" and \
        last.get("impersonatedUser") == {"username": "byline:agent-deploybot",
                                         "groups": ["system:masters", "system:authenticated"],
                                         "extra": {"byline.dev/connection": ["prod-eks"]}} and \
        last.get("user", {}).get("username") == "admin" and \
        last.get("sourceIPs") == ["203.0.113.7", "10.1.2.3", "127.0.0.1"] and \
        last.get("objectRef", {}).get("subresource") == "scale" and \
        last.get("requestObject") == {"spec": {"replicas": 3}} and \
        last.get("responseObject", {}).get("kind") == "Scale" and \
        list(last.keys()) == ["kind", "apiVersion", "level", "auditID", "stage", "requestURI",
                              "verb", "user", "impersonatedUser", "sourceIPs", "userAgent",
                              "objectRef", "responseStatus", "requestObject", "responseObject",
                              "requestReceivedTimestamp", "stageTimestamp", "annotations"]
    result("audit: impersonated PATCH event matches the real server's shape", ok,
           json.dumps(mine2)[:800])
    bad = [e for e in evs if e["auditID"] == gen]
    ok = len(bad) == 1 and bad[0]["stage"] == "ResponseStarted" and bad[0]["user"] == {} and \
        bad[0]["responseStatus"]["code"] == 401
    result("audit: failed authentication is one ResponseStarted event", ok, json.dumps(bad)[:400])
    # every kubectl request of the run is audited with a well-formed event
    ids = {}
    for e in evs:
        ids.setdefault(e["auditID"], []).append(e["stage"])
    odd = {k: s for k, s in ids.items() if s[-1] not in ("ResponseComplete", "ResponseStarted")}
    result("audit: every request completes its stages", not odd, repr(list(odd.items())[:3]))


def connection_checks(env):
    """Keep-alive reuse, Connection: close, chunked request bodies, concurrency."""
    ctx = ssl.create_default_context(cafile=os.path.join(env.tls, "ca.crt"))
    auth = {"Authorization": "Bearer " + ADMIN_TOKEN, "Accept": "application/json"}
    c = http.client.HTTPSConnection("127.0.0.1", env.port, context=ctx, timeout=10)
    codes, socks = [], set()
    for path in ("/version", "/api/v1/namespaces/web/pods", "/apis/apps/v1/namespaces/web/deployments/api"):
        c.request("GET", path, headers=auth)
        r = c.getresponse()
        r.read()
        codes.append(r.status)
        socks.add(id(c.sock))
    body = iter([b'{"kind":"ConfigMap","apiVersion":"v1",', b'"metadata":{"name":"chunked"},',
                 b'"data":{"k":"v"}}'])
    c.request("POST", "/api/v1/namespaces/web/configmaps", body=body,
              headers=dict(auth, **{"Content-Type": "application/json"}), encode_chunked=True)
    r = c.getresponse()
    created = json.loads(r.read())
    codes.append(r.status)
    socks.add(id(c.sock))
    result("keep-alive: 4 requests (one chunked) on one connection",
           codes == [200, 200, 200, 201] and len(socks) == 1 and
           created.get("data") == {"k": "v"}, "codes=%r socks=%d" % (codes, len(socks)))
    c.request("GET", "/version", headers=dict(auth, Connection="close"))
    r = c.getresponse()
    r.read()
    closed = r.getheader("Connection") == "close"
    try:
        eof = c.sock is None or c.sock.recv(1) == b""
    except (OSError, AttributeError):
        eof = True
    c.close()
    result("Connection: close is honoured", r.status == 200 and closed and eof,
           "status=%d connection=%r" % (r.status, r.getheader("Connection")))
    errors = []

    def worker(i):
        try:
            cc = http.client.HTTPSConnection("127.0.0.1", env.port, context=ctx, timeout=20)
            for _ in range(5):
                cc.request("GET", "/api/v1/namespaces/web/configmaps/settings", headers=auth)
                rr = cc.getresponse()
                rr.read()
                if rr.status != 200:
                    errors.append(rr.status)
            cc.close()
        except OSError as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    result("40 concurrent keep-alive connections x 5 requests", not errors, repr(errors[:5]))


class RawWS:
    """A minimal masked WebSocket client for protocols kubectl does not use."""

    def __init__(self, env, path, protocol):
        import base64 as b64
        import socket
        ctx = ssl.create_default_context(cafile=os.path.join(env.tls, "ca.crt"))
        raw = socket.create_connection(("127.0.0.1", env.port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        key = b64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n"
                        % (path, ADMIN_TOKEN, key, protocol)).encode())
        self.f = self.s.makefile("rb")
        self.head = b""
        while not self.head.endswith(b"\r\n\r\n"):
            c = self.f.read(1)
            if not c:
                break
            self.head += c

    def send(self, payload, opcode=2):
        import struct
        mask = os.urandom(4)
        n = len(payload)
        h = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                      bytes([0x80 | 126]) + struct.pack("!H", n))
        self.s.sendall(h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        import struct
        h = self.f.read(2)
        if len(h) < 2:
            return None
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.f.read(8))[0]
        return h[0] & 0x0F, self.f.read(n)

    def close(self):
        self.s.close()


def raw_protocol_checks(env):
    """WebSocket protocols the gateway may carry that kubectl 1.27/1.33 do not pick."""
    ws = RawWS(env, "/api/v1/namespaces/web/pods/api-0/exec?command=sh&command=-c&command="
                    "echo%20out%3B%20echo%20err%20%3E%262%3B%20exit%205&stdout=1&stderr=1",
               "v4.channel.k8s.io")
    msgs = []
    while True:
        m = ws.recv()
        if m is None or m[0] == 8:
            break
        msgs.append(m[1])
    ws.close()
    status = [json.loads(m[1:]) for m in msgs if m[:1] == b"\x03"]
    ok = b"101 Switching Protocols" in ws.head and b"Sec-WebSocket-Protocol: v4.channel.k8s.io" \
        in ws.head and b"Audit-Id: " in ws.head and b"\x01out\n" in msgs and \
        b"\x02err\n" in msgs and status and status[0]["reason"] == "NonZeroExitCode" and \
        status[0]["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
    result("raw WebSocket v4.channel.k8s.io exec: channels and exit Status", bool(ok),
           "head=%r msgs=%r" % (ws.head[:200], msgs))
    ws = RawWS(env, "/api/v1/namespaces/web/pods/api-0/portforward?ports=8080",
               "v4.channel.k8s.io")
    first = [ws.recv(), ws.recv()]
    ws.send(b"\x00GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    m = ws.recv()
    ws.close()
    ok = first == [(2, b"\x00\x90\x1f"), (2, b"\x01\x90\x1f")] and m and \
        m[1].startswith(b"\x00HTTP/1.1 200 OK") and m[1].endswith(b"hello from api-0:8080\n")
    result("raw WebSocket port-forward channel protocol (?ports=8080)", bool(ok),
           "first=%r reply=%r" % (first, m))


def main():
    t0 = time.time()
    missing = [v for v in VERSIONS if not os.access(os.path.join(KUBECTL_DIR, "kubectl." + v),
                                                    os.X_OK)]
    for v in missing:
        result("kubectl %s present in %s" % (v, KUBECTL_DIR), False, "not installed")
    env = Env()
    try:
        for v in VERSIONS:
            if v not in missing:
                version_suite(env, Kubectl(env, v))
        if not missing:
            transport_checks(env)
        audit_checks(env)
        connection_checks(env)
        raw_protocol_checks(env)
    finally:
        rc = env.stop()
        result("stand-in exits cleanly on SIGTERM", rc == 0, "rc=%r" % rc)
        if not FAILED:
            shutil.rmtree(env.dir, ignore_errors=True)
        else:
            print("artifacts kept in %s" % env.dir)
    print("run time %.1fs" % (time.time() - t0))
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
