"""The EKS authenticator check of the stand-in cluster (kube_standin.py
--eks-auth FILE), behaving like aws-iam-authenticator's token verifier.

A bearer token "k8s-aws-v1.<base64url, no padding>" is accepted only when:
  - it is at most 4096 bytes and decodes to an https URL on one of the
    configured STS hosts, path "/";
  - its query holds only Action, Version and X-Amz-* parameters, once each,
    Action=GetCallerIdentity, X-Amz-Expires within 0..900;
  - x-k8s-aws-id is among X-Amz-SignedHeaders, and the signature verifies
    with x-k8s-aws-id set to THIS cluster's name (so a token for another
    cluster fails), recomputed here in Python (aws_sigv4.py) with the stand-in
    account's keys (aws_account.py), standing in for the STS call;
  - now is before X-Amz-Date + 15 minutes, and the signing credentials are
    still valid (STS refuses expired session tokens).
The identity maps as aws-iam-authenticator's mapRoles / mapUsers do: an
assumed role arn:aws:sts::ACCT:assumed-role/ROLE/SESSION matches rolearn
arn:aws:iam::ACCT:role/ROLE; username and groups are templates with
{{AccountID}}, {{SessionName}} ('@' becomes '-'), {{SessionNameRaw}},
{{AccessKeyID}}. An unmapped identity is refused (401).

Config (JSON, re-read on every token): {"cluster": NAME, "account": ACCOUNT_FILE,
  "sts_hosts": [HOST:PORT...], "window": 900 (seconds after X-Amz-Date; tests shorten it),
  "mapRoles": [{"rolearn", "username", "groups"}], "mapUsers": [{"userarn", "username", "groups"}]}
Rejections are logged to stderr with the reason (never the token)."""

import base64
import json
import sys
import time
import urllib.parse

import aws_account
import aws_sigv4
from aws_sigv4 import SigError
from kutil import UNAUTHORIZED

PREFIX = "k8s-aws-v1."
ALLOWED = {"action", "version", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
           "x-amz-expires", "x-amz-security-token", "x-amz-signature", "x-amz-signedheaders"}
WINDOW = 15 * 60


class TokenError(Exception):
    pass


def canonical_arn(arn):
    """arn:aws:sts::A:assumed-role/R/S -> arn:aws:iam::A:role/R; others unchanged."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return "arn:%s:iam::%s:role/%s" % (parts[1], parts[4], role)
    return arn


class EksAuth:
    def __init__(self, path):
        self.path = path
        self.reload()
        self.account = aws_account.Account(self.cfg["account"])

    def reload(self):
        """Re-reads the config, so a test may change it while the server runs."""
        with open(self.path) as f:
            self.cfg = json.load(f)
        self.cluster = self.cfg["cluster"]
        self.hosts = set(self.cfg.get("sts_hosts", []))
        self.window = int(self.cfg.get("window", WINDOW))

    def verify(self, token, now=None):
        """Returns the identity dict, or raises TokenError(reason)."""
        now = time.time() if now is None else now
        if len(token) > 4096:
            raise TokenError("token is too large")
        if not token.startswith(PREFIX):
            raise TokenError("missing k8s-aws-v1. prefix")
        body = token[len(PREFIX):]
        if "=" in body:
            raise TokenError("padding in base64url")
        try:
            url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise TokenError("not base64url")
        u = urllib.parse.urlsplit(url)
        if u.scheme != "https":
            raise TokenError("unexpected scheme %r" % u.scheme)
        if u.netloc not in self.hosts:
            raise TokenError("unexpected hostname %r" % u.netloc)
        if u.path != "/":
            raise TokenError("unexpected path")
        seen = {}
        for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
            if k.lower() not in ALLOWED:
                raise TokenError("non-whitelisted query parameter %r" % k)
            if k.lower() in seen:
                raise TokenError("query parameter with multiple values")
            seen[k.lower()] = v
        if seen.get("action") != "GetCallerIdentity":
            raise TokenError("unexpected action")
        if "x-k8s-aws-id" not in seen.get("x-amz-signedheaders", "").lower().split(";"):
            raise TokenError("x-k8s-aws-id is not signed")
        try:
            exp = int(seen.get("x-amz-expires", ""))
        except ValueError:
            exp = -1
        if exp < 0 or exp > 900:
            raise TokenError("invalid X-Amz-Expires")
        self.reload()
        self.account.reload()
        headers = [("host", u.netloc), ("x-k8s-aws-id", self.cluster)]
        try:
            ident, _ = aws_sigv4.verify_presigned("GET", u.path, u.query, headers,
                                                  lambda a, t: self.account.lookup(a, t, now),
                                                  "sts", now, max_age=self.window)
        except SigError as e:
            raise TokenError("%s: %s" % (e.code, e.message))
        return ident

    def map_user(self, ident):
        arn = ident["arn"]
        canon = canonical_arn(arn)
        entry = None
        for m in self.cfg.get("mapRoles", []):
            if m.get("rolearn") == canon:
                entry = m
        for m in self.cfg.get("mapUsers", []):
            if m.get("userarn") == arn:
                entry = m
        if entry is None:
            raise TokenError("ARN is not mapped: %s" % canon)
        sess = ident.get("session", "")

        def fill(s):
            return (s.replace("{{AccountID}}", ident["account"])
                    .replace("{{SessionNameRaw}}", sess)
                    .replace("{{SessionName}}", sess.replace("@", "-"))
                    .replace("{{AccessKeyID}}", ident["akid"]))
        groups = [fill(g) for g in entry.get("groups", [])]
        if "system:authenticated" not in groups:
            groups.append("system:authenticated")
        return {"username": fill(entry["username"]),
                "uid": "aws-iam-authenticator:%s:%s" % (ident["account"],
                                                        ident["userid"].split(":")[0]),
                "groups": groups,
                "extra": {"accessKeyId": [ident["akid"]], "arn": [arn],
                          "canonicalArn": [canon], "principalId": [ident["userid"].split(":")[0]],
                          "sessionName": [sess]}}


class Wrapped:
    """An authenticator that checks EKS tokens first, then defers to the inner one."""

    def __init__(self, inner, eks):
        self.inner = inner
        self.eks = eks

    def authenticate(self, req):
        auth = (req.header("Authorization") or "").strip()
        parts = auth.split(" ")
        if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1].startswith(PREFIX):
            try:
                return self.eks.map_user(self.eks.verify(parts[1]))
            except TokenError as e:
                print("kube-standin: EKS token refused: %s" % e, file=sys.stderr, flush=True)
                raise UNAUTHORIZED
        return self.inner.authenticate(req)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def wrap(inner, config_path):
    """Returns inner wrapped with the EKS check configured by config_path."""
    return Wrapped(inner, EksAuth(config_path))
