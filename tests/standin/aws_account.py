"""The stand-in AWS account shared by the STS, metadata and EKS-authenticator
stand-ins: long-term IAM user keys from a JSON file, and temporary session
credentials that any of them can verify without shared mutable state.

Session credentials: AccessKeyId "ASIA" + 16 random characters; the session
token carries (as STS's opaque token does) who the session is and until when,
HMAC-sealed with the account's master secret; the secret key is derived from
the master secret and the key id. So a token minted by the metadata stand-in
verifies in the EKS check of the cluster stand-in.

Account file (JSON):
  {"account": "111122223333", "master": "<random hex>",
   "users": {"AKIA...": {"secret": "...", "arn": "arn:aws:iam::111122223333:user/alice"}},
   "roles": {"arn:aws:iam::111122223333:role/eks-admin": {"trust": ["*"]}},
   "web_identity_tokens": {"<token>": "system:serviceaccount:ns:sa"},
   "container_token": "...", "container_role": "<role arn>",
   "imds_role": "<role arn>", "session_seconds": null}
session_seconds, when set, caps every issued lifetime (to test expiry)."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

from aws_sigv4 import SigError


def _b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Account:
    def __init__(self, path):
        self.path = path
        self.reload()

    def reload(self):
        with open(self.path) as f:
            self.cfg = json.load(f)
        self.id = self.cfg["account"]
        self.master = bytes.fromhex(self.cfg["master"])

    def _secret_for(self, akid):
        mac = hmac.new(self.master, b"secret:" + akid.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()[:40]

    def _role_id(self, role_arn):
        h = hashlib.sha256(role_arn.encode()).hexdigest().upper()
        return "AROA" + h[:17]

    def mint_session(self, role_arn, session_name, duration, source):
        """Temporary credentials for role_arn/session_name. Returns a dict."""
        cap = self.cfg.get("session_seconds")
        life = min(int(duration), int(cap)) if cap else int(duration)
        exp = int(time.time()) + life
        akid = "ASIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
                                for _ in range(16))
        role_name = role_arn.split("/", 1)[1] if "/" in role_arn else role_arn
        arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (self.id, role_name, session_name)
        payload = json.dumps({"akid": akid, "arn": arn, "exp": exp, "source": source,
                              "uid": "%s:%s" % (self._role_id(role_arn), session_name)},
                             sort_keys=True).encode()
        seal = hmac.new(self.master, payload, hashlib.sha256).hexdigest()
        token = "FwoGZXIvYXdzE" + _b64u(payload) + "." + seal
        return {"AccessKeyId": akid, "SecretAccessKey": self._secret_for(akid),
                "SessionToken": token, "Expiration": exp, "Arn": arn,
                "AssumedRoleId": "%s:%s" % (self._role_id(role_arn), session_name)}

    def lookup(self, akid, token, now=None):
        """Returns (secret, identity dict) for a request signed with akid (and
        token for session credentials), or raises SigError like STS."""
        now = time.time() if now is None else now
        users = self.cfg.get("users", {})
        if akid in users:
            u = users[akid]
            return u["secret"], {"arn": u["arn"], "account": self.id,
                                 "userid": "AIDA" + hashlib.sha256(u["arn"].encode())
                                 .hexdigest().upper()[:17], "session": "", "akid": akid}
        if not akid.startswith("ASIA") or not token or not token.startswith("FwoGZXIvYXdzE"):
            raise SigError("InvalidClientTokenId",
                           "The security token included in the request is invalid.")
        try:
            body, _, seal = token[len("FwoGZXIvYXdzE"):].rpartition(".")
            payload = _unb64u(body)
            good = hmac.compare_digest(
                hmac.new(self.master, payload, hashlib.sha256).hexdigest(), seal)
            info = json.loads(payload) if good else None
        except (ValueError, TypeError):
            info = None
        if not info or info.get("akid") != akid:
            raise SigError("InvalidClientTokenId",
                           "The security token included in the request is invalid.")
        if now >= info["exp"]:
            raise SigError("ExpiredToken", "The security token included in the request is expired")
        return self._secret_for(akid), {"arn": info["arn"], "account": self.id,
                                        "userid": info["uid"],
                                        "session": info["uid"].split(":", 1)[1], "akid": akid}

    def may_assume(self, caller_arn, role_arn):
        role = self.cfg.get("roles", {}).get(role_arn)
        if role is None:
            return False
        trust = role.get("trust", ["*"])
        return "*" in trust or caller_arn in trust


def write_account(path, account="111122223333", **extra):
    """Test helper: writes an account file with a fresh master secret."""
    cfg = {"account": account, "master": os.urandom(32).hex(), "users": {}, "roles": {},
           "web_identity_tokens": {}}
    cfg.update(extra)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return cfg
