#!/usr/bin/env python3
"""aws-sts-standin: a stand-in for AWS STS over HTTPS, for byline's tests.

Checks SigV4 with its own Python implementation (aws_sigv4.py, not byline's
code) and answers as STS does on the wire (Query API, XML, 2011-06-15):
  POST / Action=AssumeRole                 header-signed; caller must be trusted by the role
  POST / Action=AssumeRoleWithWebIdentity  unsigned; WebIdentityToken must be known
  POST / Action=GetCallerIdentity          header-signed
  GET  /?Action=GetCallerIdentity&...      presigned (as EKS tokens carry it); valid 15
                                           minutes after X-Amz-Date, like STS; JSON when
                                           the Accept header asks for it
Errors are ErrorResponse documents (SignatureDoesNotMatch, InvalidClientTokenId,
ExpiredToken, AccessDenied, InvalidIdentityToken, ValidationError, ...).

  aws_sts_standin.py --account FILE --tls-dir DIR [--listen 127.0.0.1:0]
                     [--ready-file F] [--log F]
The account file is described in aws_account.py (its session_seconds caps the
lifetime of issued credentials). --log appends one JSON line per call
(action, caller ARN, role, session, result), never a secret."""

import argparse
import http.server
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aws_account  # noqa: E402
import aws_sigv4  # noqa: E402
from aws_sigv4 import SigError  # noqa: E402

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
STATUS = {"SignatureDoesNotMatch": 403, "InvalidClientTokenId": 403, "AccessDenied": 403,
          "MissingAuthenticationToken": 403, "IncompleteSignature": 400, "ExpiredToken": 400,
          "InvalidIdentityToken": 400, "ValidationError": 400, "InvalidAction": 400,
          "AuthFailure": 403}
SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")


def xml_error(code, message):
    return ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>Sender</Type>\n    <Code>%s</Code>\n'
            '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n'
            '</ErrorResponse>\n' % (NS, escape(code), escape(message), uuid.uuid4()))


def xml_credentials(action, creds, extra_before="", extra_after=""):
    return ('<%sResponse xmlns="%s">\n  <%sResult>\n%s    <AssumedRoleUser>\n'
            '      <AssumedRoleId>%s</AssumedRoleId>\n      <Arn>%s</Arn>\n'
            '    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>%s</AccessKeyId>\n'
            '      <SecretAccessKey>%s</SecretAccessKey>\n      <SessionToken>%s</SessionToken>\n'
            '      <Expiration>%s</Expiration>\n    </Credentials>\n%s  </%sResult>\n'
            '  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
            '</%sResponse>\n' % (
                action, NS, action, extra_before, escape(creds["AssumedRoleId"]),
                escape(creds["Arn"]), creds["AccessKeyId"], escape(creds["SecretAccessKey"]),
                escape(creds["SessionToken"]), aws_account.iso(creds["Expiration"]), extra_after,
                action, uuid.uuid4(), action))


def xml_identity(ident):
    return ('<GetCallerIdentityResponse xmlns="%s">\n  <GetCallerIdentityResult>\n'
            '    <Arn>%s</Arn>\n    <UserId>%s</UserId>\n    <Account>%s</Account>\n'
            '  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n'
            '  </ResponseMetadata>\n</GetCallerIdentityResponse>\n' % (
                NS, escape(ident["arn"]), escape(ident["userid"]), ident["account"], uuid.uuid4()))


class Sts:
    def __init__(self, account, log_path):
        self.account = account
        self.log_path = log_path
        self.lock = threading.Lock()

    def log(self, **kv):
        if not self.log_path:
            return
        with self.lock, open(self.log_path, "a") as f:
            f.write(json.dumps(kv, sort_keys=True) + "\n")

    def duration(self, form):
        try:
            d = int(form.get("DurationSeconds", "3600"))
        except ValueError:
            raise SigError("ValidationError", "DurationSeconds must be a number")
        if d < 900 or d > 43200:
            raise SigError("ValidationError", "1 validation error detected: Value '%d' at "
                           "'durationSeconds' failed to satisfy constraint: Member must have "
                           "value greater than or equal to 900" % d)
        return d

    def role_and_session(self, form):
        role, sess = form.get("RoleArn", ""), form.get("RoleSessionName", "")
        if not SESSION_RE.match(sess):
            raise SigError("ValidationError", "1 validation error detected: Value at "
                           "'roleSessionName' failed to satisfy constraint: Member must satisfy "
                           "regular expression pattern: [\\w+=,.@-]*")
        if role not in self.account.cfg.get("roles", {}):
            raise SigError("AccessDenied", "Not authorized to perform sts:AssumeRole")
        return role, sess

    def assume_role(self, ident, form):
        role, sess = self.role_and_session(form)
        if not self.account.may_assume(ident["arn"], role):
            raise SigError("AccessDenied", "User: %s is not authorized to perform: "
                           "sts:AssumeRole on resource: %s" % (ident["arn"], role))
        creds = self.account.mint_session(role, sess, self.duration(form), "AssumeRole")
        self.log(action="AssumeRole", caller=ident["arn"], role=role, session=sess,
                 result="ok", expires=creds["Expiration"])
        return xml_credentials("AssumeRole", creds)

    def assume_role_web(self, form):
        tok = form.get("WebIdentityToken", "")
        subject = self.account.cfg.get("web_identity_tokens", {}).get(tok)
        if not subject:
            raise SigError("InvalidIdentityToken", "The web identity token that was passed "
                           "could not be validated by AWS.")
        role, sess = self.role_and_session(form)
        creds = self.account.mint_session(role, sess, self.duration(form),
                                          "AssumeRoleWithWebIdentity")
        self.log(action="AssumeRoleWithWebIdentity", caller=subject, role=role, session=sess,
                 result="ok", expires=creds["Expiration"])
        before = "    <Audience>sts.amazonaws.com</Audience>\n"
        after = ("    <SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>\n"
                 "    <Provider>arn:aws:iam::%s:oidc-provider/oidc.eks.standin/id/STANDIN</Provider>\n"
                 % (escape(subject), self.account.id))
        return xml_credentials("AssumeRoleWithWebIdentity", creds, before, after)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aws-sts-standin"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, e, action):
        self.server.sts.log(action=action, result=e.code, message=e.message)
        self.reply(STATUS.get(e.code, 400), xml_error(e.code, e.message))

    def headers_list(self):
        return [(k, v) for k, v in self.headers.items()]

    def do_POST(self):
        sts = self.server.sts
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path, _, query = self.path.partition("?")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                          keep_blank_values=True).items()}
        action = form.get("Action", "")
        try:
            if form.get("Version") != "2011-06-15":
                raise SigError("InvalidAction", "Could not find operation %s for version %s"
                               % (action, form.get("Version", "NO_VERSION_SPECIFIED")))
            if action == "AssumeRoleWithWebIdentity":
                return self.reply(200, sts.assume_role_web(form))
            sts.account.reload()
            ident = aws_sigv4.verify_header_signed("POST", path, query, self.headers_list(), body,
                                                   sts.account.lookup, "sts", time.time())
            if action == "AssumeRole":
                return self.reply(200, sts.assume_role(ident, form))
            if action == "GetCallerIdentity":
                sts.log(action=action, caller=ident["arn"], result="ok")
                return self.reply(200, xml_identity(ident))
            raise SigError("InvalidAction", "Could not find operation %s" % action)
        except SigError as e:
            self.fail(e, action)

    def do_GET(self):
        sts = self.server.sts
        path, _, query = self.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        action = params.get("Action", "")
        try:
            if action != "GetCallerIdentity" or params.get("Version") != "2011-06-15":
                raise SigError("InvalidAction", "Could not find operation %s" % action)
            sts.account.reload()
            ident, _ = aws_sigv4.verify_presigned("GET", path, query, self.headers_list(),
                                                  sts.account.lookup, "sts", time.time(),
                                                  max_age=900)
        except SigError as e:
            return self.fail(e, action)
        sts.log(action=action, caller=ident["arn"], result="ok")
        if "application/json" in (self.headers.get("Accept") or ""):
            doc = {"GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {"Account": ident["account"], "Arn": ident["arn"],
                                            "UserId": ident["userid"]},
                "ResponseMetadata": {"RequestId": str(uuid.uuid4())}}}
            return self.reply(200, json.dumps(doc), "application/json")
        self.reply(200, xml_identity(ident))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--account", required=True)
    ap.add_argument("--tls-dir", required=True)
    ap.add_argument("--ready-file")
    ap.add_argument("--log")
    args = ap.parse_args()
    from kube_standin import ensure_tls
    ensure_tls(args.tls_dir)
    host, _, port = args.listen.rpartition(":")
    srv = Server((host, int(port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(args.tls_dir, "server.crt"),
                        os.path.join(args.tls_dir, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.sts = Sts(aws_account.Account(args.account), args.log)
    real = srv.server_address[1]
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % real)
        os.replace(args.ready_file + ".tmp", args.ready_file)
    print("aws-sts-standin: listening on https://%s:%d" % (host, real), file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sys.exit(main())
