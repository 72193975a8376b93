#!/usr/bin/env python3
"""aws_test.py - `byline eks-token` end to end against the AWS stand-ins.

    python3 tests/integration/aws_test.py [BYLINE]     (default build/byline)

Starts the STS stand-in (HTTPS, its own Python SigV4 check), the container
credentials + IMDSv2 stand-in and the stand-in cluster with its EKS
authenticator check, then for every credential source (environment, shared
file + profile, web identity, container credentials, IMDSv2), with and
without --role-arn:
  - runs real kubectl (1.33, and 1.27 once) with `byline eks-token` as its
    exec credential plugin against the stand-in cluster, and checks the
    cluster's audit log names the identity aws-iam-authenticator would map
    (the assumed role's session name when a role is assumed);
  - checks no secret shows on stdout or stderr except the token on stdout.
Then: expired tokens are refused (the authenticator's window, and expired
signing credentials), a token for another cluster is refused, a tampered one
too, and the CLI's errors are clear and secret-free.
Ends with "N passed, N failed"."""

import base64
import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STANDIN = os.path.join(ROOT, "tests", "standin")
sys.path.insert(0, STANDIN)

import aws_account  # noqa: E402

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.%d"
ACCT = "111122223333"
CLUSTER = "prod-eks"
REGION = "us-east-1"
ALICE_ID, ALICE_SECRET = "AKIAALICE0EXAMPLE001", "aliceS3cr3t/Zq8vXw2Kp7RtLm4Nb6Hd9Jf0Gc1Ey"
BOB_ID, BOB_SECRET = "AKIABOB00EXAMPLE0002", "bobS3cr3t/Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0U"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YnlsaW5lOmFnZW50In0.c2ln"
CONTAINER_TOKEN = "pod-identity-token-6f1c0a9d2b7e4c3f8a5d"
ROLE = "arn:aws:iam::%s:role/eks-admin" % ACCT

PASSED = 0
FAILED = 0


def check(cond, name, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("PASS %s" % name)
    else:
        FAILED += 1
        print("FAIL %s %s" % (name, detail))
    return cond


def wait_file(path, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return int(open(path).read().strip())
        if proc.poll() is not None:
            raise RuntimeError("%s exited early" % proc.args)
        time.sleep(0.05)
    raise RuntimeError("timeout waiting for %s" % path)


class World:
    def __init__(self, byline):
        self.byline = os.path.abspath(byline)
        self.dir = tempfile.mkdtemp(prefix="byline-aws-")
        self.procs = []
        self.p = lambda *n: os.path.join(self.dir, *n)
        os.makedirs(self.p("home"))

    def start(self, name, argv):
        errf = open(self.p(name + ".err"), "w")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errf)
        self.procs.append(proc)
        return wait_file(self.p(name + ".port"), proc)

    def setup(self):
        aws_account.write_account(
            self.p("account.json"), ACCT,
            users={ALICE_ID: {"secret": ALICE_SECRET, "arn": "arn:aws:iam::%s:user/alice" % ACCT},
                   BOB_ID: {"secret": BOB_SECRET, "arn": "arn:aws:iam::%s:user/bob" % ACCT}},
            roles={ROLE: {"trust": ["arn:aws:iam::%s:user/alice" % ACCT,
                                    "arn:aws:sts::%s:assumed-role/web-role/byline-irsa" % ACCT,
                                    "arn:aws:sts::%s:assumed-role/pod-role/eks-standin-pod" % ACCT,
                                    "arn:aws:sts::%s:assumed-role/node-role/i-0standin0000000001"
                                    % ACCT]},
                   "arn:aws:iam::%s:role/web-role" % ACCT: {"trust": ["*"]}},
            web_identity_tokens={WEB_TOKEN: "system:serviceaccount:byline:agent"},
            container_token=CONTAINER_TOKEN,
            container_role="arn:aws:iam::%s:role/pod-role" % ACCT,
            imds_role="arn:aws:iam::%s:role/node-role" % ACCT)
        tls = self.p("tls")
        self.sts_port = self.start("sts", [sys.executable, os.path.join(STANDIN, "aws_sts_standin.py"),
                                           "--account", self.p("account.json"), "--tls-dir", tls,
                                           "--ready-file", self.p("sts.port"), "--log", self.p("sts.log")])
        self.md_port = self.start("md", [sys.executable, os.path.join(STANDIN, "aws_metadata_standin.py"),
                                         "--account", self.p("account.json"),
                                         "--ready-file", self.p("md.port"), "--log", self.p("md.log")])
        self.eks_cfg = {"cluster": CLUSTER, "account": self.p("account.json"),
                        "sts_hosts": ["127.0.0.1:%d" % self.sts_port],
                        "mapRoles": [{"rolearn": ROLE, "username": "byline:{{SessionName}}",
                                      "groups": ["system:masters"]},
                                     {"rolearn": "arn:aws:iam::%s:role/web-role" % ACCT,
                                      "username": "irsa:{{SessionName}}"},
                                     {"rolearn": "arn:aws:iam::%s:role/pod-role" % ACCT,
                                      "username": "pod:{{SessionName}}"},
                                     {"rolearn": "arn:aws:iam::%s:role/node-role" % ACCT,
                                      "username": "node:{{SessionName}}"}],
                        "mapUsers": [{"userarn": "arn:aws:iam::%s:user/alice" % ACCT,
                                      "username": "alice"}]}
        self.write_eks()
        with open(self.p("tokens.csv"), "w") as f:
            f.write("static-admin-token,admin,1\n")
        self.kube_port = self.start("kube", [sys.executable, os.path.join(STANDIN, "kube_standin.py"),
                                             "--tls-dir", tls, "--tokens", self.p("tokens.csv"),
                                             "--audit-log", self.p("kube-audit.log"),
                                             "--ready-file", self.p("kube.port"), "--seed", "default",
                                             "--eks-auth", self.p("eks.json")])
        with open(self.p("web-token"), "w") as f:
            f.write(WEB_TOKEN + "\n")
        with open(self.p("container-token"), "w") as f:
            f.write(CONTAINER_TOKEN + "\n")

    def write_eks(self, **over):
        cfg = dict(self.eks_cfg, **over)
        with open(self.p("eks.json.tmp"), "w") as f:
            json.dump(cfg, f)
        os.replace(self.p("eks.json.tmp"), self.p("eks.json"))

    def set_account(self, **over):
        cfg = json.load(open(self.p("account.json")))
        cfg.update(over)
        with open(self.p("account.json.tmp"), "w") as f:
            json.dump(cfg, f)
        os.replace(self.p("account.json.tmp"), self.p("account.json"))

    def base_env(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.p("home"),
               "AWS_CA_BUNDLE": self.p("tls", "ca.crt"),
               "AWS_ENDPOINT_URL_STS": "https://127.0.0.1:%d" % self.sts_port,
               "AWS_EC2_METADATA_DISABLED": "true", "USER": "tester"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    def source_env(self, source):
        env = self.base_env()
        if source == "env":
            env.update(AWS_ACCESS_KEY_ID=ALICE_ID, AWS_SECRET_ACCESS_KEY=ALICE_SECRET)
        elif source == "shared-file":
            cred = self.p("credentials")
            with open(cred, "w") as f:
                f.write("# test profiles\r\n[default]\r\naws_access_key_id = %s\r\n"
                        "aws_secret_access_key = %s\r\n\r\n[ops]\naws_access_key_id=%s\n"
                        "aws_secret_access_key   =   %s\ns3 =\n  max_concurrent_requests = 4\n"
                        "; comment\n" % (BOB_ID, BOB_SECRET, ALICE_ID, ALICE_SECRET))
            env.update(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="ops")
        elif source == "web-identity":
            env.update(AWS_ROLE_ARN="arn:aws:iam::%s:role/web-role" % ACCT,
                       AWS_WEB_IDENTITY_TOKEN_FILE=self.p("web-token"),
                       AWS_ROLE_SESSION_NAME="byline-irsa")
        elif source == "container":
            env.update(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/v1/credentials"
                       % self.md_port, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=self.p("container-token"))
        elif source == "imds":
            del env["AWS_EC2_METADATA_DISABLED"]
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:%d/" % self.md_port
        return env

    def eks_token(self, env, *args):
        argv = [self.byline, "eks-token", "--cluster", CLUSTER, "--region", REGION] + list(args)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    def kubeconfig(self, name, env, args):
        path = self.p("kubeconfig-%s" % name)
        exec_env = [{"name": k, "value": v} for k, v in sorted(env.items()) if k != "PATH"]
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "eks",
               "clusters": [{"name": "eks", "cluster": {
                   "server": "https://127.0.0.1:%d" % self.kube_port,
                   "certificate-authority": self.p("tls", "ca.crt")}}],
               "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
               "users": [{"name": "eks", "user": {"exec": {
                   "apiVersion": "client.authentication.k8s.io/v1beta1",
                   "command": self.byline,
                   "args": ["eks-token", "--cluster", CLUSTER, "--region", REGION] + list(args),
                   "env": exec_env, "interactiveMode": "Never"}}}]}
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def kubectl(self, minor, kubeconfig, *args):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.p("home"),
               "KUBECONFIG": kubeconfig}
        return subprocess.run([KUBECTL % minor] + list(args), env=env, capture_output=True,
                              text=True, timeout=60)

    def audit_users(self, since):
        with open(self.p("kube-audit.log")) as f:
            f.seek(since)
            evs = [json.loads(ln) for ln in f if ln.strip()]
        return evs

    def audit_size(self):
        try:
            return os.path.getsize(self.p("kube-audit.log"))
        except OSError:
            return 0

    def stop(self):
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def token_url(tok):
    b = tok[len("k8s-aws-v1."):]
    return base64.urlsafe_b64decode(b + "=" * (-len(b) % 4)).decode()


def secrets_in(world, url):
    """The secrets the output must not show: the static keys, the web identity
    and container tokens, and the session secret behind the token's key id."""
    acct = aws_account.Account(world.p("account.json"))
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    akid = q.get("X-Amz-Credential", "/").split("/")[0]
    s = [ALICE_SECRET, BOB_SECRET, WEB_TOKEN, CONTAINER_TOKEN]
    if akid.startswith("ASIA"):
        s.append(acct._secret_for(akid))
    return s


def no_secrets(world, name, out, err, url):
    tok_free_out = out
    try:
        tok_free_out = out.replace(json.loads(out)["status"]["token"], "")
    except (ValueError, KeyError):
        pass
    leaked = [s[:6] + "..." for s in secrets_in(world, url) if s in tok_free_out or s in err or s in url]
    check(not leaked, "%s: no secret on stdout/stderr or in the token URL" % name, str(leaked))


def case(world, source, role, expect_user, minor=33):
    name = "%s%s" % (source, " + role" if role else "")
    env = world.source_env(source)
    args = ["--role-arn", ROLE, "--session-name", "byline-%s" % source] if role else []
    r = world.eks_token(env, *args)
    if not check(r.returncode == 0, "%s: eks-token exits 0" % name, r.stderr.strip()):
        return
    doc = json.loads(r.stdout)
    st = doc.get("status", {})
    tok = st.get("token", "")
    check(doc.get("kind") == "ExecCredential" and
          doc.get("apiVersion") == "client.authentication.k8s.io/v1beta1" and
          tok.startswith("k8s-aws-v1.") and "=" not in tok, "%s: ExecCredential shape" % name)
    exp = calendar.timegm(time.strptime(st.get("expirationTimestamp", ""), "%Y-%m-%dT%H:%M:%SZ"))
    check(13 * 60 <= exp - time.time() <= 14 * 60 + 5, "%s: expires in 14 minutes" % name,
          st.get("expirationTimestamp"))
    url = token_url(tok)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    check(q.get("Action") == "GetCallerIdentity" and q.get("X-Amz-Expires") == "60" and
          q.get("X-Amz-SignedHeaders") == "host;x-k8s-aws-id", "%s: presigned GetCallerIdentity"
          % name, str({k: v for k, v in q.items() if k != "X-Amz-Security-Token"}))
    no_secrets(world, name, r.stdout, r.stderr, url)
    kc = world.kubeconfig(source + ("-role" if role else ""), env, args)
    mark = world.audit_size()
    k = world.kubectl(minor, kc, "get", "configmap", "settings", "-n", "web", "-o", "name")
    check(k.returncode == 0 and "configmap/settings" in k.stdout,
          "%s: kubectl 1.%d with the exec plugin reaches the cluster" % (name, minor),
          (k.stdout + k.stderr).strip()[-300:])
    users = {e.get("user", {}).get("username") for e in world.audit_users(mark)
             if e.get("objectRef", {}).get("name") == "settings"}
    check(users == {expect_user}, "%s: the cluster audit names %s" % (name, expect_user), str(users))
    no_secrets(world, name + " (kubectl)", k.stdout, k.stderr, url)


def expect_fail(world, name, env, args, rc, needle):
    r = world.eks_token(env, *args)
    ok = r.returncode == rc and needle in r.stderr and r.stdout == ""
    check(ok, "%s: exit %d, says %r" % (name, rc, needle), "rc=%d %s" % (r.returncode, r.stderr.strip()))
    leaked = [s[:6] for s in (ALICE_SECRET, BOB_SECRET, WEB_TOKEN, CONTAINER_TOKEN) if s in r.stderr]
    check(not leaked, "%s: no secret in the error" % name, str(leaked))


def refused(world, name, tok):
    kc = world.p("kubeconfig-static-%s" % name.replace(" ", "-"))
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "eks",
           "clusters": [{"name": "eks", "cluster": {"server": "https://127.0.0.1:%d" % world.kube_port,
                                                    "certificate-authority": world.p("tls", "ca.crt")}}],
           "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
           "users": [{"name": "eks", "user": {"token": tok}}]}
    with open(kc, "w") as f:
        json.dump(cfg, f)
    k = world.kubectl(33, kc, "get", "ns", "-o", "name")
    return k.returncode != 0 and "Unauthorized" in k.stderr, k


def token_for(world, env, *args):
    r = world.eks_token(env, *args)
    if r.returncode != 0:
        return ""
    return json.loads(r.stdout)["status"]["token"]


def expiry_cases(world):
    env = world.source_env("env")
    tok = token_for(world, env, "--role-arn", ROLE, "--session-name", "byline-expiry")
    ok, _ = refused(world, "fresh", tok)
    check(tok and not ok, "a fresh token is accepted (control)")
    world.write_eks(window=2)
    time.sleep(3)
    ok, k = refused(world, "window", tok)
    check(ok, "a token past X-Amz-Date + window is refused (401)", k.stderr.strip()[-200:])
    world.write_eks()
    ok, _ = refused(world, "window-restored", tok)
    check(not ok, "the same token is accepted again within the 15-minute window (control)")
    world.set_account(session_seconds=2)
    tok2 = token_for(world, env, "--role-arn", ROLE, "--session-name", "byline-short")
    world.set_account(session_seconds=None)
    time.sleep(3)
    ok, k = refused(world, "creds-expired", tok2)
    check(tok2 and ok, "a token signed with expired role credentials is refused",
          k.stderr.strip()[-200:])
    other = token_for(world, env, "--role-arn", ROLE, "--session-name", "byline-other", "--cluster",
                      "other-eks")
    ok, _ = refused(world, "other-cluster", other)
    check(other and ok, "a token for another cluster is refused")
    url = token_url(tok)
    sig = url[-64:]
    bad = url[:-64] + ("0" if sig[0] != "0" else "1") + sig[1:]
    bad_tok = "k8s-aws-v1." + base64.urlsafe_b64encode(bad.encode()).decode().rstrip("=")
    ok, _ = refused(world, "tampered", bad_tok)
    check(ok, "a token with a tampered signature is refused")


def error_cases(world):
    env = world.base_env()
    r = subprocess.run([world.byline, "eks-token", "--cluster", CLUSTER], env=env,
                       capture_output=True, text=True)
    check(r.returncode == 2 and "region" in r.stderr, "no region: usage error", r.stderr)
    r = subprocess.run([world.byline, "eks-token", "--cluster", CLUSTER, "--region", REGION,
                        "--secret-access-key", "x"], env=env, capture_output=True, text=True)
    check(r.returncode == 2, "no option takes a secret (--secret-access-key refused)")
    r = subprocess.run([world.byline, "eks-token", "--help"], env=env, capture_output=True, text=True)
    check(r.returncode == 0 and "--cluster" in r.stdout and "secret" not in r.stdout.lower(),
          "--help lists no secret option")
    r = subprocess.run([world.byline, "eks-token", "--region", REGION], env=dict(env, EKS_CLUSTER=CLUSTER,
                       AWS_ACCESS_KEY_ID=ALICE_ID, AWS_SECRET_ACCESS_KEY=ALICE_SECRET,
                       EKS_ROLE_ARN=ROLE), capture_output=True, text=True)
    log = open(world.p("sts.log")).read().strip().split("\n")[-1]
    check(r.returncode == 0 and '"session": "byline-tester"' in log and ROLE in log,
          "EKS_CLUSTER and EKS_ROLE_ARN honoured; session defaults to byline-<login>", log)
    expect_fail(world, "bad cluster name", dict(env), ["--cluster", "-bad name"], 2, "cluster name")
    expect_fail(world, "no credentials", dict(env), [], 1, "no AWS credentials found")
    expect_fail(world, "wrong secret", dict(env, AWS_ACCESS_KEY_ID=ALICE_ID,
                AWS_SECRET_ACCESS_KEY=BOB_SECRET), ["--role-arn", ROLE], 1, "SignatureDoesNotMatch")
    expect_fail(world, "role not trusted", dict(env, AWS_ACCESS_KEY_ID=BOB_ID,
                AWS_SECRET_ACCESS_KEY=BOB_SECRET), ["--role-arn", ROLE], 1, "AccessDenied")
    expect_fail(world, "unknown profile", dict(env, AWS_SHARED_CREDENTIALS_FILE=world.p("credentials"),
                AWS_PROFILE="nope"), [], 1, "profile 'nope' not found")
    bad_tok = world.p("bad-container-token")
    with open(bad_tok, "w") as f:
        f.write("wrong-token\n")
    expect_fail(world, "wrong container token", dict(env, AWS_CONTAINER_CREDENTIALS_FULL_URI=
                "http://127.0.0.1:%d/v1/credentials" % world.md_port,
                AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=bad_tok), [], 1, "HTTP 403")
    expect_fail(world, "container over plain http to a remote host", dict(
        env, AWS_CONTAINER_CREDENTIALS_FULL_URI="http://192.0.2.1/creds"), [], 1, "plain http")
    expect_fail(world, "unknown web identity token", dict(
        env, AWS_ROLE_ARN="arn:aws:iam::%s:role/web-role" % ACCT,
        AWS_WEB_IDENTITY_TOKEN_FILE=bad_tok), [], 1, "InvalidIdentityToken")
    expect_fail(world, "STS unreachable", dict(env, AWS_ACCESS_KEY_ID=ALICE_ID,
                AWS_SECRET_ACCESS_KEY=ALICE_SECRET, AWS_ENDPOINT_URL_STS="https://127.0.0.1:1"),
                ["--role-arn", ROLE], 1, "cannot connect")
    expect_fail(world, "STS certificate not trusted", dict(env, AWS_ACCESS_KEY_ID=ALICE_ID,
                AWS_SECRET_ACCESS_KEY=ALICE_SECRET, AWS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"),
                ["--role-arn", ROLE], 1, "certificate")
    imds = world.source_env("imds")
    r = world.eks_token(dict(imds, AWS_EC2_METADATA_DISABLED="true"))
    check(r.returncode == 1 and "disabled" in r.stderr, "AWS_EC2_METADATA_DISABLED skips IMDS",
          r.stderr.strip())
    md = open(world.p("md.log")).read()
    check('"call": "token"' in md and '"result": "401"' not in md,
          "IMDS was used with a v2 session token only")


def main():
    byline = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "byline")
    world = World(byline)
    try:
        world.setup()
        case(world, "env", False, "alice")
        case(world, "env", True, "byline:byline-env")
        case(world, "shared-file", False, "alice")
        case(world, "shared-file", True, "byline:byline-shared-file", minor=27)
        case(world, "web-identity", False, "irsa:byline-irsa")
        case(world, "web-identity", True, "byline:byline-web-identity")
        case(world, "container", False, "pod:eks-standin-pod")
        case(world, "container", True, "byline:byline-container")
        case(world, "imds", False, "node:i-0standin0000000001")
        case(world, "imds", True, "byline:byline-imds")
        expiry_cases(world)
        error_cases(world)
    except Exception as e:  # a broken harness is a failure, not a pass
        check(False, "harness", repr(e))
    finally:
        world.stop()
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
