"""Small helpers shared by the stand-in modules: time formats, JSON encoding,
metav1.Status builders (the exact bodies kube-apiserver sends)."""

import datetime
import json
import time
import uuid


def now_rfc3339():
    """metav1.Time: second precision, UTC, 'Z'."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    """metav1.MicroTime as used by audit events (microseconds, 'Z')."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(s):
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def http_date():
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


def new_uid():
    return str(uuid.uuid4())


def dumps(obj):
    """Compact JSON plus the newline Go's json.Encoder appends, as the apiserver sends."""
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return "%dm" % minutes if sec == 0 else "%dm%ds" % (minutes, sec)
    if minutes < 180:
        return "%dm" % minutes
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return "%dh" % hours if m == 0 else "%dh%dm" % (hours, m)
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        h = hours % 24
        return "%dd" % (hours // 24) if h == 0 else "%dd%dh" % (hours // 24, h)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        y = hours // 24 // 365
        return "%dy" % y if dy == 0 else "%dy%dd" % (y, dy)
    return "%dy" % (hours // 24 // 365)


def age(obj):
    ts = parse_rfc3339((obj.get("metadata") or {}).get("creationTimestamp"))
    if ts is None:
        return "<unknown>"
    return human_duration(time.time() - ts)


class ApiError(Exception):
    """An error that becomes a metav1.Status response."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {},
              "status": "Failure", "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def qualified(resource, group):
    return resource + ("." + group if group else "")


def not_found(resource, group, name):
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = resource
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(resource, group), name), d)


def already_exists(resource, group, name):
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = resource
    return ApiError(409, "AlreadyExists",
                    '%s "%s" already exists' % (qualified(resource, group), name), d)


def conflict(resource, group, name, msg):
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = resource
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (qualified(resource, group), name, msg), d)


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(kind, group, name, causes):
    """422 Invalid, causes = [(field, message)]."""
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = kind
    d["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    msg = '%s "%s" is invalid: %s' % (qualified(kind, group), name,
                                       ", ".join("%s: %s" % (f, m) for f, m in causes))
    return ApiError(422, "Invalid", msg, d)


def forbidden_msg(user, verb, resource, group, namespace, name, subresource=""):
    res = resource + ("/" + subresource if subresource else "")
    where = 'in the namespace "%s"' % namespace if namespace else "at the cluster scope"
    return 'User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        user, verb, res, group, where)


def forbidden(user, verb, resource, group, namespace, name, subresource="", reason=""):
    msg = forbidden_msg(user, verb, resource, group, namespace, name, subresource)
    if reason:
        msg += ": " + reason
    q = qualified(resource, group)
    if name:
        full = '%s "%s" is forbidden: %s' % (q, name, msg)
    else:
        full = "%s is forbidden: %s" % (q, msg)
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = resource
    return ApiError(403, "Forbidden", full, d)


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")


_ORDER = ["kind", "apiVersion", "metadata", "spec", "data", "binaryData", "stringData", "type",
          "immutable", "status"]


def order_object(obj):
    """Field order of the Go structs (kind, apiVersion, metadata, spec, ...)."""
    out = {}
    for k in _ORDER:
        if k in obj:
            out[k] = obj[k]
    for k, v in obj.items():
        if k not in out:
            out[k] = v
    md = out.get("metadata") or {}
    mo = {}
    for k in ("name", "generateName", "namespace", "uid", "resourceVersion", "generation",
              "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
              "annotations", "ownerReferences", "finalizers", "managedFields"):
        if k in md:
            mo[k] = md[k]
    for k, v in md.items():
        if k not in mo:
            mo[k] = v
    out["metadata"] = mo
    return out
