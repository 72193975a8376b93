#!/usr/bin/env python3
"""aws-metadata-standin: stand-ins for the two plain-HTTP credential
endpoints an AWS workload reads, for byline's tests.

Container credentials (EKS Pod Identity / ECS), GET --container-path:
  requires "Authorization: <container_token>" (from the account file);
  401 without it, 403 with a wrong one (as the Pod Identity agent does);
  answers {"AccessKeyId","SecretAccessKey","Token","AccountId","Expiration"}
  for container_role, session "eks-standin-pod".
EC2 instance metadata, IMDSv2 only:
  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1..21600)
    -> a session token (400 without the TTL header);
  GET /latest/meta-data/iam/security-credentials/ -> the role name;
  GET /latest/meta-data/iam/security-credentials/ROLE ->
    {"Code":"Success","LastUpdated","Type":"AWS-HMAC","AccessKeyId",
     "SecretAccessKey","Token","Expiration"} for imds_role, session i-0standin...;
  every GET needs X-aws-ec2-metadata-token (401 without or with a bad one),
  and a request carrying X-Forwarded-For is refused (403), as IMDSv2 does.

  aws_metadata_standin.py --account FILE [--listen 127.0.0.1:0]
      [--container-path /v1/credentials] [--ready-file F] [--log F]"""

import argparse
import hmac
import http.server
import json
import os
import secrets
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aws_account  # noqa: E402

INSTANCE_ID = "i-0standin0000000001"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aws-metadata-standin"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_call(self, **kv):
        s = self.server
        if s.log_path:
            with s.lock, open(s.log_path, "a") as f:
                f.write(json.dumps(kv, sort_keys=True) + "\n")

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path != "/latest/api/token":
            return self.reply(404, "Not Found")
        if self.headers.get("X-Forwarded-For"):
            return self.reply(403, "Forbidden")
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return self.reply(400, "Bad Request")
        if ttl < 1 or ttl > 21600:
            return self.reply(400, "Bad Request")
        tok = "AQAEA" + secrets.token_urlsafe(40)
        with self.server.lock:
            self.server.imds_tokens[tok] = time.time() + ttl
        self.log_call(endpoint="imds", call="token", result="ok")
        self.reply(200, tok)

    def imds_ok(self):
        tok = self.headers.get("X-aws-ec2-metadata-token", "")
        with self.server.lock:
            exp = self.server.imds_tokens.get(tok)
        return exp is not None and time.time() < exp

    def do_GET(self):
        acct = self.server.account
        acct.reload()
        if self.path == self.server.container_path:
            return self.container(acct)
        prefix = "/latest/meta-data/iam/security-credentials/"
        if not self.path.startswith("/latest/"):
            return self.reply(404, "Not Found")
        if not self.imds_ok():
            self.log_call(endpoint="imds", call="get", result="401")
            return self.reply(401, "Unauthorized")
        role_arn = acct.cfg.get("imds_role", "")
        role_name = role_arn.split("/", 1)[-1]
        if self.path == prefix:
            return self.reply(200, role_name)
        if self.path == prefix + role_name:
            c = acct.mint_session(role_arn, INSTANCE_ID, 6 * 3600, "imds")
            doc = {"Code": "Success", "LastUpdated": aws_account.iso(time.time()),
                   "Type": "AWS-HMAC", "AccessKeyId": c["AccessKeyId"],
                   "SecretAccessKey": c["SecretAccessKey"], "Token": c["SessionToken"],
                   "Expiration": aws_account.iso(c["Expiration"])}
            self.log_call(endpoint="imds", call="credentials", result="ok", arn=c["Arn"])
            return self.reply(200, json.dumps(doc, indent=2))
        self.reply(404, "Not Found")

    def container(self, acct):
        want = acct.cfg.get("container_token", "")
        got = self.headers.get("Authorization")
        if got is None:
            self.log_call(endpoint="container", result="401")
            return self.reply(401, json.dumps({"message": "missing Authorization"}),
                              "application/json")
        if not want or not hmac.compare_digest(got.encode(), want.encode()):
            self.log_call(endpoint="container", result="403")
            return self.reply(403, json.dumps({"message": "invalid Authorization"}),
                              "application/json")
        c = acct.mint_session(acct.cfg["container_role"], "eks-standin-pod", 6 * 3600, "container")
        doc = {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
               "Token": c["SessionToken"], "AccountId": acct.id,
               "Expiration": aws_account.iso(c["Expiration"])}
        self.log_call(endpoint="container", result="ok", arn=c["Arn"])
        self.reply(200, json.dumps(doc), "application/json")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--account", required=True)
    ap.add_argument("--container-path", default="/v1/credentials")
    ap.add_argument("--ready-file")
    ap.add_argument("--log")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    srv = Server((host, int(port)), Handler)
    srv.account = aws_account.Account(args.account)
    srv.container_path = args.container_path
    srv.imds_tokens = {}
    srv.lock = threading.Lock()
    srv.log_path = args.log
    real = srv.server_address[1]
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % real)
        os.replace(args.ready_file + ".tmp", args.ready_file)
    print("aws-metadata-standin: listening on http://%s:%d" % (host, real), file=sys.stderr,
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sys.exit(main())
