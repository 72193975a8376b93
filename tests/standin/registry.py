"""The resources the stand-in serves, and the discovery documents built from
them: legacy (/api, /apis, /api/v1, /apis/G/V) and aggregated discovery
(apidiscovery.k8s.io v2 and v2beta1, as a 1.30 server offers both)."""

import base64
import hashlib

SERVER_VERSION = {
    "major": "1", "minor": "30", "gitVersion": "v1.30.4",
    "gitCommit": "a51b3b711150f57ffc1f526a640ec058514ed596", "gitTreeState": "clean",
    "buildDate": "2024-08-14T19:04:41Z", "goVersion": "go1.22.5", "compiler": "gc",
    "platform": "linux/amd64",
}

RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Resource:
    def __init__(self, group, version, name, singular, kind, namespaced, verbs=RW,
                 short=(), categories=(), subresources=()):
        self.group = group
        self.version = version
        self.name = name
        self.singular = singular
        self.kind = kind
        self.namespaced = namespaced
        self.verbs = list(verbs)
        self.short = list(short)
        self.categories = list(categories)
        # (name, group, version, kind, verbs)
        self.subresources = list(subresources)

    @property
    def gv(self):
        return self.group + "/" + self.version if self.group else self.version

    def svh(self):
        h = hashlib.sha256(("%s/%s" % (self.gv, self.name)).encode()).digest()[:8]
        return base64.b64encode(h).decode()

    def sub(self, name):
        for s in self.subresources:
            if s[0] == name:
                return s
        return None


def _sub(name, kind, verbs, group="", version="v1"):
    return (name, group, version, kind, verbs)


RESOURCES = [
    Resource("", "v1", "namespaces", "namespace", "Namespace", False,
             ["create", "delete", "get", "list", "patch", "update", "watch"], short=["ns"],
             subresources=[_sub("finalize", "Namespace", ["update"]),
                           _sub("status", "Namespace", ["get", "patch", "update"])]),
    Resource("", "v1", "pods", "pod", "Pod", True, short=["po"], categories=["all"],
             subresources=[_sub("attach", "PodAttachOptions", ["create", "get"]),
                           _sub("exec", "PodExecOptions", ["create", "get"]),
                           _sub("log", "Pod", ["get"]),
                           _sub("portforward", "PodPortForwardOptions", ["create", "get"]),
                           _sub("status", "Pod", ["get", "patch", "update"])]),
    Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, short=["cm"]),
    Resource("", "v1", "secrets", "secret", "Secret", True),
    Resource("", "v1", "services", "service", "Service", True, short=["svc"], categories=["all"],
             subresources=[_sub("status", "Service", ["get", "patch", "update"])]),
    Resource("", "v1", "events", "event", "Event", True, short=["ev"]),
    Resource("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, short=["sa"]),
    Resource("apps", "v1", "deployments", "deployment", "Deployment", True, short=["deploy"],
             categories=["all"],
             subresources=[_sub("scale", "Scale", ["get", "patch", "update"], "autoscaling", "v1"),
                           _sub("status", "Deployment", ["get", "patch", "update"], "apps")]),
    Resource("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, short=["rs"],
             categories=["all"],
             subresources=[_sub("scale", "Scale", ["get", "patch", "update"], "autoscaling", "v1"),
                           _sub("status", "ReplicaSet", ["get", "patch", "update"], "apps")]),
    Resource("autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler",
             "HorizontalPodAutoscaler", True, short=["hpa"], categories=["all"],
             subresources=[_sub("status", "HorizontalPodAutoscaler", ["get", "patch", "update"],
                                "autoscaling")]),
]

for _v in ("v1", "v1beta1"):
    RESOURCES.append(Resource("authentication.k8s.io", _v, "selfsubjectreviews", "",
                              "SelfSubjectReview", False, ["create"]))
RESOURCES += [
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "",
             "SelfSubjectAccessReview", False, ["create"]),
    Resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "",
             "SelfSubjectRulesReview", False, ["create"]),
]

# (group, version), preferred version first within a group
GROUPS = [("", "v1"), ("apps", "v1"), ("authentication.k8s.io", "v1"),
          ("authentication.k8s.io", "v1beta1"), ("authorization.k8s.io", "v1"),
          ("autoscaling", "v1")]


def _versions(group):
    return [v for g, v in GROUPS if g == group]


def _group_names():
    out = []
    for g, _ in GROUPS:
        if g and g not in out:
            out.append(g)
    return out


def lookup(group, version, name):
    for r in RESOURCES:
        if r.group == group and r.version == version and r.name == name:
            return r
    return None


def by_kind(group, kind):
    for r in RESOURCES:
        if r.group == group and r.kind == kind:
            return r
    return None


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group_entry(group):
    gvs = [{"groupVersion": group + "/" + v, "version": v} for v in _versions(group)]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list():
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_entry(g) for g in _group_names()]}


def api_group(group):
    if group in _group_names():
        e = _group_entry(group)
        return dict([("kind", "APIGroup"), ("apiVersion", "v1")] + list(e.items()))
    return None


def resource_list(group, version):
    res = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        e = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced,
             "kind": r.kind, "verbs": r.verbs}
        if r.short:
            e["shortNames"] = r.short
        if r.categories:
            e["categories"] = r.categories
        e["storageVersionHash"] = r.svh()
        res.append(e)
        for (sn, sg, sv, sk, sverbs) in r.subresources:
            s = {"name": r.name + "/" + sn, "singularName": "", "namespaced": r.namespaced}
            if sg != r.group or sv != r.version:
                s["group"] = sg
                s["version"] = sv
            s["kind"] = sk
            s["verbs"] = sverbs
            res.append(s)
    if not res:
        return None
    out = {"kind": "APIResourceList"}
    if group:
        out["apiVersion"] = "v1"
    out["groupVersion"] = group + "/" + version if group else version
    out["resources"] = res
    return out


def _agg_resource(r):
    e = {"resource": r.name,
         "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
         "scope": "Namespaced" if r.namespaced else "Cluster",
         "singularResource": r.singular, "verbs": r.verbs}
    if r.short:
        e["shortNames"] = r.short
    if r.categories:
        e["categories"] = r.categories
    if r.subresources:
        e["subresources"] = [
            {"subresource": sn, "responseKind": {"group": sg, "version": sv, "kind": sk},
             "verbs": sverbs} for (sn, sg, sv, sk, sverbs) in r.subresources]
    return e


def aggregated(core, api_version):
    """APIGroupDiscoveryList for /api (core=True) or /apis."""
    items = []
    for g in ([""] if core else _group_names()):
        md = {"creationTimestamp": None} if not g else {"name": g, "creationTimestamp": None}
        items.append({"metadata": md, "versions": [{
            "version": v,
            "resources": [_agg_resource(r) for r in RESOURCES if r.group == g and r.version == v],
            "freshness": "Current"} for v in _versions(g)]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {},
            "items": items}
