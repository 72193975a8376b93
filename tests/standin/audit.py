"""audit.k8s.io/v1 Event lines, field for field as kube-apiserver writes them.
Policy: RequestResponse for writes, Metadata otherwise."""

import ipaddress
import json
import threading

from kutil import now_micro

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def source_ips(req):
    """utilnet.SourceIPs: X-Forwarded-For entries, X-Real-Ip if new, then the
    TCP peer unless it equals the last entry."""
    ips = []
    xff = req.header("X-Forwarded-For")
    if xff:
        for part in xff.split(","):
            ip = _parse_ip(part.strip())
            if ip is not None:
                ips.append(ip)
    xri = req.header("X-Real-Ip")
    if xri:
        ip = _parse_ip(xri.strip())
        if ip is not None and ip not in ips:
            ips.append(ip)
    peer = _parse_ip(req.conn.peer[0])
    if peer is not None and (not ips or ips[-1] != peer):
        ips.append(peer)
    return [str(i) for i in ips]


def _parse_ip(s):
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


class AuditContext:
    def __init__(self, req, audit_id, info):
        self.audit_id = audit_id
        self.request_uri = req.target
        self.verb = info.verb
        self.level = "RequestResponse" if info.verb in WRITE_VERBS else "Metadata"
        self.user = {}
        self.impersonated = None
        self.source_ips = source_ips(req)
        self.user_agent = req.header("User-Agent")
        self.object_ref = info.object_ref() if info.is_resource else None
        self.response_status = None
        self.request_object = None
        self.response_object = None
        self.received = now_micro()
        self.annotations = None
        self.long_running = info.long_running()
        self.started_emitted = False

    def set_response(self, code, obj=None):
        """Records the response code, and the object when the level asks for it."""
        if isinstance(obj, dict) and obj.get("kind") == "Status":
            st = {"metadata": {}}
            for k in ("status", "message", "reason", "details", "code"):
                if k in obj:
                    st[k] = obj[k]
            st["code"] = code
            self.response_status = st
        else:
            self.response_status = {"metadata": {}, "code": code}
        if self.level == "RequestResponse" and obj is not None and isinstance(obj, dict):
            self.response_object = obj

    def set_request_object(self, obj):
        if self.level == "RequestResponse" and obj is not None:
            self.request_object = obj


class AuditLog:
    def __init__(self, path, omit_stages=()):
        self.path = path
        self.omit = set(omit_stages)
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else None

    def emit(self, ctx, stage):
        if self.f is None or stage in self.omit:
            return
        ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": ctx.level,
              "auditID": ctx.audit_id, "stage": stage, "requestURI": ctx.request_uri,
              "verb": ctx.verb, "user": ctx.user}
        if ctx.impersonated is not None and stage != "RequestReceived":
            ev["impersonatedUser"] = ctx.impersonated
        ev["sourceIPs"] = ctx.source_ips
        if ctx.user_agent:
            ev["userAgent"] = ctx.user_agent
        if ctx.object_ref:
            ev["objectRef"] = ctx.object_ref
        if stage != "RequestReceived":
            if ctx.response_status is not None:
                ev["responseStatus"] = ctx.response_status
            if ctx.request_object is not None:
                ev["requestObject"] = ctx.request_object
            if ctx.response_object is not None and stage == "ResponseComplete":
                ev["responseObject"] = ctx.response_object
        ev["requestReceivedTimestamp"] = ctx.received
        ev["stageTimestamp"] = ctx.received if stage == "RequestReceived" else now_micro()
        if ctx.annotations and stage != "RequestReceived":
            ev["annotations"] = ctx.annotations
        line = json.dumps(ev, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self.lock:
            self.f.write(line)
            self.f.flush()
