"""OpenAPI documents, as far as kubectl needs them:
- /openapi/v3 (index) and /openapi/v3/<gv> (JSON): kubectl >= 1.28 looks up
  PATCH operations (fieldValidation support, strategic-merge support) and
  component schemas (patch merge keys for client-side apply);
- /openapi/v2 in gnostic protobuf (application/com.github.proto-openapi.spec.v2@v1.0+protobuf),
  or JSON: kubectl 1.27 uses it for the same two purposes.
Schemas cover the common fields of the served kinds; rarely used subtrees are
left untyped (arbitrary), which kubectl's patch code accepts."""

import hashlib
import json

import registry
from kutil import ApiError, dumps

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
AUTOSCALING = "io.k8s.api.autoscaling.v1."
VERSION = registry.SERVER_VERSION["gitVersion"]

S, I, B, MAP, ANY, SLIST = "string", "integer", "boolean", "map", "any", "slist"
TIME, IOS, QTY = "time", "intorstring", "quantity"


def ref(name):
    return ("ref", name)


def lst(name, key=None, strategy=None, map_keys=None):
    return ("list", name, key, strategy, map_keys)


def retain(name):
    return ("ref", name, "retainKeys")


TYPE_META = {"apiVersion": S, "kind": S}
OBJ = dict(TYPE_META, metadata=ref(META + "ObjectMeta"))

DEFS = {
    META + "ObjectMeta": {
        "annotations": MAP, "creationTimestamp": TIME, "deletionGracePeriodSeconds": I,
        "deletionTimestamp": TIME, "finalizers": ("slist", "merge"), "generateName": S,
        "generation": I, "labels": MAP,
        "managedFields": lst(META + "ManagedFieldsEntry"), "name": S, "namespace": S,
        "ownerReferences": lst(META + "OwnerReference", "uid", "merge", ["uid"]),
        "resourceVersion": S, "selfLink": S, "uid": S},
    META + "OwnerReference": {"apiVersion": S, "blockOwnerDeletion": B, "controller": B,
                              "kind": S, "name": S, "uid": S},
    META + "ManagedFieldsEntry": {"apiVersion": S, "fieldsType": S, "fieldsV1": ANY,
                                  "manager": S, "operation": S, "subresource": S, "time": TIME},
    META + "LabelSelector": {"matchExpressions": lst(META + "LabelSelectorRequirement"),
                             "matchLabels": MAP},
    META + "LabelSelectorRequirement": {"key": S, "operator": S, "values": SLIST},
    CORE + "Namespace": dict(OBJ, spec=ref(CORE + "NamespaceSpec"), status=ANY),
    CORE + "NamespaceSpec": {"finalizers": SLIST},
    CORE + "ConfigMap": dict(OBJ, binaryData=MAP, data=MAP, immutable=B),
    CORE + "Secret": dict(OBJ, data=MAP, immutable=B, stringData=MAP, type=S),
    CORE + "ServiceAccount": dict(OBJ, automountServiceAccountToken=B, imagePullSecrets=ANY,
                                  secrets=ANY),
    CORE + "Event": dict(OBJ, action=S, count=I, eventTime=ANY, firstTimestamp=TIME,
                         involvedObject=ANY, lastTimestamp=TIME, message=S, reason=S,
                         related=ANY, reportingComponent=S, reportingInstance=S, series=ANY,
                         source=ANY, type=S),
    CORE + "Service": dict(OBJ, spec=ref(CORE + "ServiceSpec"), status=ANY),
    CORE + "ServiceSpec": {
        "allocateLoadBalancerNodePorts": B, "clusterIP": S, "clusterIPs": SLIST,
        "externalIPs": SLIST, "externalName": S, "externalTrafficPolicy": S,
        "healthCheckNodePort": I, "internalTrafficPolicy": S, "ipFamilies": SLIST,
        "ipFamilyPolicy": S, "loadBalancerClass": S, "loadBalancerIP": S,
        "loadBalancerSourceRanges": SLIST,
        "ports": lst(CORE + "ServicePort", "port", "merge", ["port", "protocol"]),
        "publishNotReadyAddresses": B, "selector": MAP, "sessionAffinity": S,
        "sessionAffinityConfig": ANY, "trafficDistribution": S, "type": S},
    CORE + "ServicePort": {"appProtocol": S, "name": S, "nodePort": I, "port": I, "protocol": S,
                           "targetPort": IOS},
    CORE + "Pod": dict(OBJ, spec=ref(CORE + "PodSpec"), status=ANY),
    CORE + "PodTemplateSpec": {"metadata": ref(META + "ObjectMeta"),
                               "spec": ref(CORE + "PodSpec")},
    CORE + "PodSpec": {
        "activeDeadlineSeconds": I, "affinity": ANY, "automountServiceAccountToken": B,
        "containers": lst(CORE + "Container", "name", "merge", ["name"]),
        "dnsConfig": ANY, "dnsPolicy": S, "enableServiceLinks": B, "ephemeralContainers": ANY,
        "hostAliases": ANY, "hostIPC": B, "hostNetwork": B, "hostPID": B, "hostUsers": B,
        "hostname": S, "imagePullSecrets": lst(CORE + "LocalObjectReference", "name", "merge",
                                               ["name"]),
        "initContainers": lst(CORE + "Container", "name", "merge", ["name"]),
        "nodeName": S, "nodeSelector": MAP, "os": ANY, "overhead": MAP, "preemptionPolicy": S,
        "priority": I, "priorityClassName": S, "readinessGates": ANY, "resourceClaims": ANY,
        "resources": ANY, "restartPolicy": S, "runtimeClassName": S, "schedulerName": S,
        "schedulingGates": ANY, "securityContext": ANY, "serviceAccount": S,
        "serviceAccountName": S, "setHostnameAsFQDN": B, "shareProcessNamespace": B,
        "subdomain": S, "terminationGracePeriodSeconds": I, "tolerations": ANY,
        "topologySpreadConstraints": ANY,
        "volumes": lst(CORE + "Volume", "name", "merge,retainKeys", ["name"])},
    CORE + "Container": {
        "args": SLIST, "command": SLIST, "env": lst(CORE + "EnvVar", "name", "merge", ["name"]),
        "envFrom": ANY, "image": S, "imagePullPolicy": S, "lifecycle": ANY, "livenessProbe": ANY,
        "name": S, "ports": lst(CORE + "ContainerPort", "containerPort", "merge",
                                ["containerPort", "protocol"]),
        "readinessProbe": ANY, "resizePolicy": ANY,
        "resources": ref(CORE + "ResourceRequirements"), "restartPolicy": S,
        "securityContext": ANY, "startupProbe": ANY, "stdin": B, "stdinOnce": B,
        "terminationMessagePath": S, "terminationMessagePolicy": S, "tty": B,
        "volumeDevices": ANY,
        "volumeMounts": lst(CORE + "VolumeMount", "mountPath", "merge", ["mountPath"]),
        "workingDir": S},
    CORE + "ContainerPort": {"containerPort": I, "hostIP": S, "hostPort": I, "name": S,
                             "protocol": S},
    CORE + "EnvVar": {"name": S, "value": S, "valueFrom": ANY},
    CORE + "VolumeMount": {"mountPath": S, "mountPropagation": S, "name": S, "readOnly": B,
                           "recursiveReadOnly": S, "subPath": S, "subPathExpr": S},
    CORE + "Volume": {"name": S, "configMap": ANY, "csi": ANY, "downwardAPI": ANY,
                      "emptyDir": ANY, "ephemeral": ANY, "hostPath": ANY, "nfs": ANY,
                      "persistentVolumeClaim": ANY, "projected": ANY, "secret": ANY,
                      "image": ANY},
    CORE + "ResourceRequirements": {"claims": ANY, "limits": MAP, "requests": MAP},
    CORE + "LocalObjectReference": {"name": S},
    APPS + "Deployment": dict(OBJ, spec=ref(APPS + "DeploymentSpec"), status=ANY),
    APPS + "DeploymentSpec": {
        "minReadySeconds": I, "paused": B, "progressDeadlineSeconds": I, "replicas": I,
        "revisionHistoryLimit": I, "selector": ref(META + "LabelSelector"),
        "strategy": retain(APPS + "DeploymentStrategy"),
        "template": ref(CORE + "PodTemplateSpec")},
    APPS + "DeploymentStrategy": {"rollingUpdate": ref(APPS + "RollingUpdateDeployment"),
                                  "type": S},
    APPS + "RollingUpdateDeployment": {"maxSurge": IOS, "maxUnavailable": IOS},
    APPS + "ReplicaSet": dict(OBJ, spec=ANY, status=ANY),
    AUTOSCALING + "Scale": dict(OBJ, spec=ANY, status=ANY),
    AUTOSCALING + "HorizontalPodAutoscaler": dict(OBJ, spec=ANY, status=ANY),
}

KIND_DEFS = {("", "Namespace"): CORE + "Namespace", ("", "ConfigMap"): CORE + "ConfigMap",
             ("", "Secret"): CORE + "Secret", ("", "Service"): CORE + "Service",
             ("", "Pod"): CORE + "Pod", ("", "Event"): CORE + "Event",
             ("", "ServiceAccount"): CORE + "ServiceAccount",
             ("apps", "Deployment"): APPS + "Deployment",
             ("apps", "ReplicaSet"): APPS + "ReplicaSet",
             ("autoscaling", "HorizontalPodAutoscaler"): AUTOSCALING + "HorizontalPodAutoscaler",
             ("autoscaling", "Scale"): AUTOSCALING + "Scale"}


def _gvk(group, version, kind):
    return [{"group": group, "kind": kind, "version": version}]


def _def_gvk(name):
    for (g, k), n in KIND_DEFS.items():
        if n == name:
            v = "v1"
            return _gvk(g, v, k)
    return None


# --- JSON schema rendering (v2 uses #/definitions, v3 #/components/schemas) ------

def _prop(spec, v3):
    prefix = "#/components/schemas/" if v3 else "#/definitions/"
    if spec == S:
        return {"type": "string"}
    if spec == I:
        return {"type": "integer", "format": "int64"}
    if spec == B:
        return {"type": "boolean"}
    if spec == MAP:
        return {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
    if spec == SLIST:
        return {"type": "array", "items": {"type": "string", "default": ""}}
    if spec == TIME:
        return {"type": "string", "format": "date-time"}
    if spec == IOS:
        return {"type": "string", "format": "int-or-string"}
    if spec == ANY:
        return {"description": "(not described by the stand-in)"}
    if spec[0] == "slist":
        return {"type": "array", "items": {"type": "string", "default": ""},
                "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": spec[1]}
    if spec[0] == "ref":
        r = {"$ref": prefix + spec[1]}
        p = {"allOf": [r], "default": {}} if v3 else dict(r)
        if len(spec) > 2:
            p["x-kubernetes-patch-strategy"] = spec[2]
        return p
    if spec[0] == "list":
        _, name, key, strategy, map_keys = spec
        r = {"$ref": prefix + name}
        p = {"type": "array", "items": {"allOf": [r], "default": {}} if v3 else r}
        if map_keys:
            p["x-kubernetes-list-map-keys"] = map_keys
            p["x-kubernetes-list-type"] = "map"
        elif not key:
            p["x-kubernetes-list-type"] = "atomic"
        if key:
            p["x-kubernetes-patch-merge-key"] = key
        if strategy:
            p["x-kubernetes-patch-strategy"] = strategy
        return p
    raise ValueError(spec)


def schemas(v3):
    out = {}
    for name, fields in sorted(DEFS.items()):
        d = {"type": "object", "properties": {k: _prop(v, v3) for k, v in sorted(fields.items())}}
        gvk = _def_gvk(name)
        if gvk:
            d["x-kubernetes-group-version-kind"] = gvk
        out[name] = d
    out[META + "Time"] = {"type": "string", "format": "date-time"}
    return out


# --- paths ------------------------------------------------------------------------

PATCH_TYPES = ["application/apply-patch+yaml", "application/json-patch+json",
               "application/merge-patch+json", "application/strategic-merge-patch+json"]


def _query_params(names):
    return [{"name": n, "in": "query", "uniqueItems": True, "schema": {"type": "string"}}
            for n in names]


def _paths(group, version, v3):
    paths = {}
    base = "/api/v1" if not group else "/apis/%s/%s" % (group, version)
    prefix = "#/components/schemas/" if v3 else "#/definitions/"
    for r in registry.RESOURCES:
        if r.group != group or r.version != version:
            continue
        dname = KIND_DEFS.get((r.group, r.kind))
        if not dname:
            continue
        coll = base + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.name
        item = coll + "/{name}"
        gvk = {"group": r.group, "kind": r.kind, "version": r.version}
        ok = {"200": {"description": "OK", "content" if v3 else "schema": (
            {"application/json": {"schema": {"$ref": prefix + dname}}} if v3
            else {"$ref": prefix + dname})}}
        ops = {}
        for verb, method, params in (
                ("get", "get", ["pretty"]),
                ("replace", "put", ["dryRun", "fieldManager", "fieldValidation"]),
                ("delete", "delete", ["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
                ("patch", "patch", ["dryRun", "fieldManager", "fieldValidation", "force"])):
            op = {"description": "%s the specified %s" % (verb, r.kind),
                  "operationId": "%s%s%s" % (verb, "Namespaced" if r.namespaced else "", r.kind),
                  "responses": ok, "x-kubernetes-action": verb,
                  "x-kubernetes-group-version-kind": gvk}
            qp = _query_params(params)
            if v3:
                op["parameters"] = qp
                if method == "patch":
                    op["requestBody"] = {"content": {t: {"schema": {
                        "$ref": "#/components/schemas/" + META + "Patch"}} for t in PATCH_TYPES},
                        "required": True}
            else:
                op["parameters"] = [{"name": p["name"], "in": "query", "type": "string",
                                     "uniqueItems": True} for p in qp]
                if method == "patch":
                    op["consumes"] = PATCH_TYPES
            ops[method] = op
        paths[item] = ops
        post = {"description": "create a %s" % r.kind,
                "operationId": "create%s%s" % ("Namespaced" if r.namespaced else "", r.kind),
                "responses": ok, "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk}
        plist = _query_params(["dryRun", "fieldManager", "fieldValidation"])
        post["parameters"] = plist if v3 else [{"name": p["name"], "in": "query",
                                                "type": "string", "uniqueItems": True}
                                               for p in plist]
        paths[coll] = {"post": post}
    return paths


def v3_doc(group, version):
    sch = schemas(True)
    sch[META + "Patch"] = {"type": "object", "description": "Patch is provided to give a "
                           "concrete name and type to the Kubernetes PATCH request body."}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION},
            "paths": _paths(group, version, True), "components": {"schemas": sch}}


def v2_doc():
    paths = {}
    for g, v in registry.GROUPS:
        paths.update(_paths(g, v, False))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": VERSION},
            "paths": paths, "definitions": schemas(False)}


def _gv_key(group, version):
    return "api/" + version if not group else "apis/%s/%s" % (group, version)


_CACHE = {}


def _cached(key, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


def v3_index():
    paths = {}
    for g, v in registry.GROUPS:
        key = _gv_key(g, v)
        body = _cached(("v3", key), lambda g=g, v=v: dumps(v3_doc(g, v)))
        h = hashlib.sha512(body).hexdigest()[:128].upper()
        paths[key] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (key, h)}
    return {"paths": paths}


def serve(ctx, parts):
    accept = ctx.req.header("Accept") or ""
    if parts == ["v2"]:
        if "protobuf" in accept and "application/json" not in accept.split("protobuf")[0]:
            body = _cached("v2pb", lambda: encode_v2(v2_doc()))
            return ctx.reply(200, body, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                             [("Vary", "Accept"), ("Etag", '"%s"' % hashlib.sha256(body).hexdigest()[:32].upper())])
        body = _cached("v2json", lambda: dumps(v2_doc()))
        return ctx.reply(200, body, "application/json", [("Vary", "Accept")])
    if parts == ["v3"]:
        return ctx.reply(200, v3_index())
    if len(parts) >= 3 and parts[0] == "v3":
        key = "/".join(parts[1:])
        for g, v in registry.GROUPS:
            if _gv_key(g, v) == key:
                body = _cached(("v3", key), lambda g=g, v=v: dumps(v3_doc(g, v)))
                return ctx.reply(200, body, "application/json",
                                 [("Vary", "Accept"),
                                  ("Etag", '"%s"' % hashlib.sha512(body).hexdigest()[:128].upper())])
    raise ApiError(404, "NotFound", "the server could not find the requested resource", {})


# --- gnostic openapi_v2.Document protobuf encoding ------------------------------

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f(num, payload):
    """Length-delimited field."""
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _fb(num, val):
    return _varint(num << 3) + _varint(1 if val else 0) if val else b""


def _ext(num, name, value):
    """NamedAny vendor extension: value carried as YAML text (JSON is YAML)."""
    return _f(num, _f(1, name) + _f(2, _f(2, json.dumps(value))))


def _schema(s):
    out = b""
    if "$ref" in s:
        out += _f(1, s["$ref"])
    if "format" in s:
        out += _f(2, s["format"])
    if "description" in s:
        out += _f(4, s["description"])
    if isinstance(s.get("additionalProperties"), dict):
        out += _f(21, _f(1, _schema(s["additionalProperties"])))
    if "type" in s:
        out += _f(22, _f(1, s["type"]))
    if "items" in s:
        out += _f(23, _f(1, _schema(s["items"])))
    if "properties" in s:
        out += _f(25, b"".join(_f(1, _f(1, k) + _f(2, _schema(v)))
                               for k, v in s["properties"].items()))
    for k, v in s.items():
        if k.startswith("x-"):
            out += _ext(31, k, v)
    return out


def _operation(op):
    out = _f(3, op.get("description", "")) + _f(5, op.get("operationId", ""))
    for c in op.get("consumes", []):
        out += _f(7, c)
    for p in op.get("parameters", []):
        q = _fb(1, p.get("required")) + _f(2, p["in"]) + _f(4, p["name"]) + _f(6, p["type"]) + \
            _fb(20, p.get("uniqueItems"))
        out += _f(8, _f(1, _f(2, _f(3, q))))
    resp = b""
    for code, r in op.get("responses", {}).items():
        body = _f(1, r.get("description", ""))
        if "schema" in r:
            body += _f(2, _f(1, _schema(r["schema"])))
        resp += _f(1, _f(1, code) + _f(2, _f(1, body)))
    out += _f(9, resp)
    for k, v in op.items():
        if k.startswith("x-"):
            out += _ext(13, k, v)
    return out


_METHOD_FIELD = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def encode_v2(doc):
    out = _f(1, doc["swagger"]) + _f(2, _f(1, doc["info"]["title"]) +
                                     _f(2, doc["info"]["version"]))
    paths = b""
    for p, item in doc["paths"].items():
        pi = b"".join(_f(_METHOD_FIELD[m], _operation(op)) for m, op in item.items())
        paths += _f(2, _f(1, p) + _f(2, pi))
    out += _f(8, paths)
    out += _f(9, b"".join(_f(1, _f(1, name) + _f(2, _schema(s)))
                          for name, s in doc["definitions"].items()))
    return out
