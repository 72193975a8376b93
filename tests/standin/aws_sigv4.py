"""AWS Signature Version 4 verification for the AWS stand-ins, written
independently of byline's C code (hashlib + hmac only), from the published
algorithm: canonical request, string to sign, signing key, signature.

`python3 aws_sigv4.py [SUITE_DIR]` checks this module itself against the
shared SigV4 suite (header and query form), so the stand-ins' verdicts rest on
a verifier that is known to agree with AWS's own test cases."""

import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.parse

ALGO = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def uri_encode(s, keep_slash=False):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return urllib.parse.quote(s, safe="/-_.~" if keep_slash else "-_.~")


def canonical_uri(path, normalize=True):
    if not path:
        return "/"
    if normalize:
        out = []
        for seg in path.split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if out:
                    out.pop()
                continue
            out.append(seg)
        last = path.split("/")[-1]
        trail = path.endswith("/") or last in (".", "..")
        path = "/" + "/".join(out) + ("/" if trail and out else "")
    return uri_encode(path, keep_slash=True)


def parse_query(raw):
    """Raw query string -> list of (key, value), percent-decoded, '+' literal."""
    out = []
    for part in raw.split("&") if raw else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        out.append((urllib.parse.unquote_to_bytes(k), urllib.parse.unquote_to_bytes(v)))
    return out


def canonical_query(params):
    enc = sorted((uri_encode(k), uri_encode(v)) for k, v in params)
    return "&".join("%s=%s" % kv for kv in enc)


def canonical_headers(headers, signed):
    """headers: list of (name, value) as received; signed: lower-case names."""
    vals = {}
    for name, value in headers:
        n = name.strip().lower()
        if n in signed:
            vals.setdefault(n, []).append(" ".join(value.split()))
    missing = [n for n in signed if n not in vals]
    if missing:
        raise ValueError("signed header(s) missing: %s" % ",".join(missing))
    return "".join("%s:%s\n" % (n, ",".join(vals[n])) for n in signed)


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def sign(secret, amz_date, scope, canonical_request):
    """Returns (string_to_sign, hex signature)."""
    sts = "\n".join([ALGO, amz_date, scope,
                     hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    date, region, service, _ = scope.split("/")
    sig = hmac.new(signing_key(secret, date, region, service), sts.encode(),
                   hashlib.sha256).hexdigest()
    return sts, sig


def build_canonical(method, path, params, headers, signed, payload_hash, normalize=True):
    return "\n".join([method, canonical_uri(path, normalize), canonical_query(params),
                      canonical_headers(headers, signed), ";".join(signed), payload_hash])


class SigError(Exception):
    """code: the STS error code to answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_amz_date(s):
    try:
        return datetime.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        raise SigError("IncompleteSignature", "bad or missing X-Amz-Date")


def _check_scope(credential, amz_date, service):
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or parts[3] != service:
        raise SigError("IncompleteSignature", "credential scope is malformed")
    if parts[1] != amz_date[:8]:
        raise SigError("SignatureDoesNotMatch", "credential date does not match X-Amz-Date")
    return parts[0], "/".join(parts[1:])


def verify_header_signed(method, path, raw_query, headers, body, lookup, service, now):
    """Verifies an Authorization-header signature. lookup(akid, token) returns
    (secret, identity) or raises SigError. Returns identity."""
    auth = next((v for k, v in headers if k.lower() == "authorization"), "")
    if not auth.startswith(ALGO + " "):
        raise SigError("MissingAuthenticationToken", "Request is missing Authentication Token")
    fields = {}
    for item in auth[len(ALGO) + 1:].split(","):
        k, _, v = item.strip().partition("=")
        fields[k] = v
    amz_date = next((v for k, v in headers if k.lower() == "x-amz-date"), None)
    t = parse_amz_date(amz_date)
    if abs(now - t) > 300:
        raise SigError("SignatureDoesNotMatch", "Signature expired or not yet current")
    akid, scope = _check_scope(fields.get("Credential", ""), amz_date, service)
    signed = fields.get("SignedHeaders", "").split(";")
    if "host" not in signed or signed != sorted(signed):
        raise SigError("SignatureDoesNotMatch", "SignedHeaders must be sorted and include host")
    token = next((v for k, v in headers if k.lower() == "x-amz-security-token"), None)
    secret, ident = lookup(akid, token)
    try:
        creq = build_canonical(method, path, parse_query(raw_query), headers, signed,
                               hashlib.sha256(body).hexdigest())
    except ValueError as e:
        raise SigError("SignatureDoesNotMatch", str(e))
    _, sig = sign(secret, amz_date, scope, creq)
    if not hmac.compare_digest(sig, fields.get("Signature", "")):
        raise SigError("SignatureDoesNotMatch", "The request signature we calculated does not "
                       "match the signature you provided.")
    return ident


def verify_presigned(method, path, raw_query, headers, lookup, service, now, max_age=None):
    """Verifies a presigned (query) signature. max_age: seconds after X-Amz-Date
    the URL stays valid (None: X-Amz-Expires). Returns (identity, params dict)."""
    params = parse_query(raw_query)
    d = {}
    for k, v in params:
        d.setdefault(k.decode("utf-8", "replace"), v.decode("utf-8", "replace"))
    if d.get("X-Amz-Algorithm") != ALGO:
        raise SigError("AuthFailure", "X-Amz-Algorithm must be " + ALGO)
    amz_date = d.get("X-Amz-Date", "")
    t = parse_amz_date(amz_date)
    try:
        expires = int(d.get("X-Amz-Expires", ""))
    except ValueError:
        raise SigError("AuthFailure", "X-Amz-Expires is missing or not a number")
    life = max_age if max_age is not None else expires
    if now > t + life:
        raise SigError("ExpiredToken", "Request has expired")
    if t > now + 300:
        raise SigError("SignatureDoesNotMatch", "Signature not yet current")
    akid, scope = _check_scope(d.get("X-Amz-Credential", ""), amz_date, service)
    signed = d.get("X-Amz-SignedHeaders", "").split(";")
    if "host" not in signed or signed != sorted(signed):
        raise SigError("SignatureDoesNotMatch", "SignedHeaders must be sorted and include host")
    secret, ident = lookup(akid, d.get("X-Amz-Security-Token"))
    rest = [(k, v) for k, v in params if k != b"X-Amz-Signature"]
    try:
        creq = build_canonical(method, path, rest, headers, signed, EMPTY_SHA256)
    except ValueError as e:
        raise SigError("SignatureDoesNotMatch", str(e))
    _, sig = sign(secret, amz_date, scope, creq)
    if not hmac.compare_digest(sig, d.get("X-Amz-Signature", "")):
        raise SigError("SignatureDoesNotMatch", "The request signature we calculated does not "
                       "match the signature you provided.")
    return ident, d


# ---- self-check against the shared suite ----

def _suite_case(d, form):
    ctx = json.load(open(os.path.join(d, "context.json")))
    raw = open(os.path.join(d, "request.txt"), "rb").read().decode("utf-8")
    head, _, body = raw.partition("\n\n")
    lines = head.split("\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ln.startswith(" ") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "\n" + ln)
        else:
            k, _, v = ln.partition(":")
            headers.append((k, v))
    cr = ctx["credentials"]
    ts = datetime.datetime.strptime(ctx["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    amz = ts.strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/%s/%s/aws4_request" % (amz[:8], ctx["region"], ctx["service"])
    token = cr.get("token") if not ctx.get("omit_session_token") else None
    payload = hashlib.sha256(body.encode()).hexdigest()
    params = parse_query(query)
    if form == "header":
        headers.append(("x-amz-date", amz))
        if token:
            headers.append(("x-amz-security-token", token))
        if ctx.get("sign_body"):
            headers.append(("x-amz-content-sha256", payload))
    signed = sorted(set(h[0].lower() for h in headers))
    if form == "query":
        for k, v in [("X-Amz-Algorithm", ALGO), ("X-Amz-Credential", cr["access_key_id"] + "/" + scope),
                     ("X-Amz-Date", amz), ("X-Amz-Expires", str(ctx["expiration_in_seconds"])),
                     ("X-Amz-SignedHeaders", ";".join(signed))] + (
                         [("X-Amz-Security-Token", token)] if token else []):
            params.append((k.encode(), v.encode()))
    creq = build_canonical(method, path, params, headers, signed, payload, ctx["normalize"])
    sts, sig = sign(cr["secret_access_key"], amz, scope, creq)
    ok = (creq == open(os.path.join(d, form + "-canonical-request.txt")).read() and
          sts == open(os.path.join(d, form + "-string-to-sign.txt")).read() and
          sig == open(os.path.join(d, form + "-signature.txt")).read().strip())
    return ok


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/vectors/aws-sigv4"
    passed = failed = 0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.isfile(os.path.join(d, "context.json")):
            continue
        for form in ("header", "query"):
            if _suite_case(d, form):
                passed += 1
            else:
                failed += 1
                print("FAIL %s %s" % (form, name))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
