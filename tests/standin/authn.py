"""Authentication (static token file, x509 client certificates) and the
impersonation filter, with kube-apiserver's messages."""

import csv
import hmac
import urllib.parse

from kutil import ApiError, UNAUTHORIZED, forbidden_msg

AUTHENTICATED = "system:authenticated"


def load_tokens(path):
    """kube-apiserver --token-auth-file: token,user,uid[,"g1,g2"]."""
    tokens = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip() or row[0].startswith("#"):
                continue
            if len(row) < 3:
                raise ValueError("token file: need token,user,uid: %r" % row)
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            tokens.append((row[0].strip(), {"username": row[1].strip(), "uid": row[2].strip(),
                                            "groups": groups}))
    return tokens


class Authenticator:
    def __init__(self, tokens, impersonators):
        self.tokens = tokens
        self.imp_users = set(u for u in impersonators if not u.startswith("group:"))
        self.imp_groups = set(u[6:] for u in impersonators if u.startswith("group:"))

    def authenticate(self, req):
        """Returns the user dict or raises UNAUTHORIZED (401)."""
        auth = (req.header("Authorization") or "").strip()
        parts = auth.split(" ")
        if len(parts) > 1 and parts[0].lower() == "bearer":
            tok = parts[-1].strip()
            for t, u in self.tokens:
                if hmac.compare_digest(t.encode(), tok.encode()):
                    return _with_authenticated(u)
            raise UNAUTHORIZED
        cert = req.conn.peer_cert
        if cert:
            cn, orgs = None, []
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
                    elif k == "organizationName":
                        orgs.append(v)
            if cn:
                return _with_authenticated({"username": cn, "groups": orgs})
        raise UNAUTHORIZED

    def may_impersonate(self, user):
        return user["username"] in self.imp_users or any(
            g in self.imp_groups for g in user.get("groups", []))

    def impersonate(self, req, user):
        """Applies Impersonate-* headers. Returns the impersonated user dict, or
        None when the request does not impersonate. Raises ApiError 403/500."""
        target = req.header("Impersonate-User")
        groups = req.header_all("Impersonate-Group")
        uid = req.header("Impersonate-Uid")
        extra = {}
        for k, v in req.headers:
            if k.lower().startswith("impersonate-extra-"):
                key = urllib.parse.unquote(k[len("impersonate-extra-"):].lower())
                extra.setdefault(key, []).append(v)
        if target is None and not groups and not extra and uid is None:
            return None
        if target is None:
            reqs = ["{%s}" % g for g in groups] or ["extra"]
            raise ApiError(500, "InternalError",
                           "Internal error occurred: requested [%s] without impersonating a user"
                           % " ".join(reqs), {"causes": [{"message": "requested [%s] without "
                                                          "impersonating a user" % " ".join(reqs)}]})
        checks = []
        sa = target.split(":")
        if target.startswith("system:serviceaccount:") and len(sa) == 4:
            checks.append(("serviceaccounts", "", sa[2], sa[3], ""))
        else:
            checks.append(("users", "", "", target, ""))
        for g in groups:
            checks.append(("groups", "", "", g, ""))
        for k, vs in extra.items():
            for v in vs:
                checks.append(("userextras", "authentication.k8s.io", "", v, k))
        if uid is not None:
            checks.append(("uids", "authentication.k8s.io", "", uid, ""))
        if not self.may_impersonate(user):
            res, grp, ns, name, sub = checks[0]
            msg = forbidden_msg(user["username"], "impersonate", res, grp, ns, name, sub)
            q = res + ("." + grp if grp else "")
            d = {"name": name}
            if grp:
                d["group"] = grp
            d["kind"] = res
            raise ApiError(403, "Forbidden", '%s "%s" is forbidden: %s' % (q, name, msg), d)
        out_groups = list(groups)
        if not groups and len(sa) == 4 and target.startswith("system:serviceaccount:"):
            out_groups = ["system:serviceaccounts", "system:serviceaccounts:" + sa[2]]
        if target != "system:anonymous" and AUTHENTICATED not in out_groups \
                and "system:unauthenticated" not in out_groups:
            out_groups.append(AUTHENTICATED)
        imp = {"username": target}
        if uid is not None:
            imp["uid"] = uid
        imp["groups"] = out_groups
        if extra:
            imp["extra"] = extra
        return imp


def _with_authenticated(u):
    out = {"username": u["username"]}
    if u.get("uid"):
        out["uid"] = u["uid"]
    g = list(u.get("groups", []))
    if AUTHENTICATED not in g:
        g.append(AUTHENTICATED)
    out["groups"] = g
    return out
