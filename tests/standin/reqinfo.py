"""RequestInfo as kube-apiserver derives it from the URL (verb, group, version,
namespace, resource, subresource, name), used for routing and auditing."""

NAMESPACE_SUBRESOURCES = {"status", "finalize"}
LONG_RUNNING_SUBRESOURCES = {"attach", "exec", "proxy", "log", "portforward"}


def parse_bool(v):
    return v is not None and v.lower() in ("1", "t", "true")


class RequestInfo:
    def __init__(self):
        self.is_resource = False
        self.verb = ""
        self.prefix = ""
        self.group = ""
        self.version = ""
        self.namespace = ""
        self.resource = ""
        self.subresource = ""
        self.name = ""
        self.parts = []

    def object_ref(self):
        ref = {"resource": self.resource}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.name:
            ref["name"] = self.name
        if self.group:
            ref["apiGroup"] = self.group
        if self.version:
            ref["apiVersion"] = self.version
        if self.subresource:
            ref["subresource"] = self.subresource
        return ref

    def long_running(self):
        return self.verb in ("watch", "proxy") or (
            self.is_resource and self.subresource in LONG_RUNNING_SUBRESOURCES)


def parse(req):
    info = RequestInfo()
    method = req.method.upper()
    info.verb = method.lower()
    parts = [p for p in req.path.strip("/").split("/")] if req.path.strip("/") else []
    info.parts = parts
    if not parts or parts[0] not in ("api", "apis"):
        return info
    info.prefix = parts[0]
    cur = parts[1:]
    if info.prefix == "apis":
        if len(cur) < 3:
            return info
        info.group, cur = cur[0], cur[1:]
    elif len(cur) < 2:
        return info
    info.version, cur = cur[0], cur[1:]
    info.is_resource = True
    watch_prefix = False
    if cur and cur[0] == "watch":
        watch_prefix = True
        cur = cur[1:]
        if not cur:
            info.is_resource = False
            return info
    verb = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete"}.get(method, "")
    if watch_prefix:
        verb = "watch"
    if cur and cur[0] == "namespaces":
        if len(cur) > 1:
            info.namespace = cur[1]
            if len(cur) > 2 and cur[2] not in NAMESPACE_SUBRESOURCES:
                cur = cur[2:]
    if len(cur) >= 3:
        info.subresource = cur[2]
    if len(cur) >= 2:
        info.name = cur[1]
    if cur:
        info.resource = cur[0]
    if not info.name and verb == "get":
        verb = "list"
    if verb in ("list", "get") and parse_bool(req.q("watch")):
        verb = "watch"
    if verb in ("list", "watch"):
        fs = req.q("fieldSelector") or ""
        for term in fs.split(","):
            k, sep, v = term.partition("=")
            if sep and k.strip() == "metadata.name":
                info.name = v.lstrip("=").strip()
    if not info.name and verb == "delete":
        verb = "deletecollection"
    info.verb = verb
    return info
