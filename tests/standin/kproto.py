"""Decoding of the Kubernetes protobuf envelope (application/vnd.kubernetes.protobuf):
magic 'k8s\\0' + runtime.Unknown{typeMeta{apiVersion,kind}, raw, contentEncoding,
contentType}. The raw message is decoded for ConfigMap, Secret, Namespace and the
self reviews kubectl auth sends (field numbers from k8s.io/api generated.proto)
into the JSON form."""

import base64
import datetime

from kutil import ApiError

MAGIC = b"k8s\x00"


def _varint(buf, i):
    shift = 0
    val = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """Yields (field number, wire type, value); value is int or bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            v = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            v = int.from_bytes(buf[i:i + 8], "little")
            i += 8
        elif wt == 5:
            v = int.from_bytes(buf[i:i + 4], "little")
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, wt, v


def _s(b):
    return b.decode("utf-8")


def _map_entry(b, bytes_value=False):
    k, v = "", b"" if bytes_value else ""
    for num, _, val in fields(b):
        if num == 1:
            k = _s(val)
        elif num == 2:
            v = val if bytes_value else _s(val)
    return k, v


def _time(b):
    secs = 0
    for num, _, val in fields(b):
        if num == 1:
            secs = val
    if secs == 0:
        return None
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _object_meta(b):
    md = {}
    labels, annotations, finalizers = {}, {}, []
    creation = None
    for num, _, v in fields(b):
        if num == 1 and v:
            md["name"] = _s(v)
        elif num == 2 and v:
            md["generateName"] = _s(v)
        elif num == 3 and v:
            md["namespace"] = _s(v)
        elif num == 5 and v:
            md["uid"] = _s(v)
        elif num == 6 and v:
            md["resourceVersion"] = _s(v)
        elif num == 7 and v:
            md["generation"] = v
        elif num == 8:
            creation = _time(v)
        elif num == 11:
            k, val = _map_entry(v)
            labels[k] = val
        elif num == 12:
            k, val = _map_entry(v)
            annotations[k] = val
        elif num == 14:
            finalizers.append(_s(v))
    md["creationTimestamp"] = creation
    if labels:
        md["labels"] = labels
    if annotations:
        md["annotations"] = annotations
    if finalizers:
        md["finalizers"] = finalizers
    return md


def _configmap(raw):
    obj = {"metadata": {"creationTimestamp": None}}
    data, binary = {}, {}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            k, val = _map_entry(v)
            data[k] = val
        elif num == 3:
            k, val = _map_entry(v, True)
            binary[k] = base64.b64encode(val).decode()
        elif num == 4:
            obj["immutable"] = bool(v)
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    return obj


def _secret(raw):
    obj = {"metadata": {"creationTimestamp": None}}
    data, sdata = {}, {}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            k, val = _map_entry(v, True)
            data[k] = base64.b64encode(val).decode()
        elif num == 3 and v:
            obj["type"] = _s(v)
        elif num == 4:
            k, val = _map_entry(v)
            sdata[k] = val
        elif num == 5:
            obj["immutable"] = bool(v)
    if data:
        obj["data"] = data
    if sdata:
        obj["stringData"] = sdata
    return obj


def _namespace(raw):
    obj = {"metadata": {"creationTimestamp": None}, "spec": {}, "status": {}}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            fin = [_s(x) for n, _, x in fields(v) if n == 1]
            if fin:
                obj["spec"]["finalizers"] = fin
        elif num == 3:
            for n, _, x in fields(v):
                if n == 1 and x:
                    obj["status"]["phase"] = _s(x)
    return obj


def _strings(b, names):
    """A message of string fields numbered 1..n -> dict with the non-empty ones."""
    out = {}
    for num, _, v in fields(b):
        if 1 <= num <= len(names) and v and isinstance(v, bytes):
            out[names[num - 1]] = _s(v)
    return out


def _self_subject_review(raw):
    obj = {"metadata": {"creationTimestamp": None}, "status": {}}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
    return obj


def _self_subject_access_review(raw):
    obj = {"metadata": {"creationTimestamp": None}, "spec": {}, "status": {"allowed": False}}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    obj["spec"]["resourceAttributes"] = _strings(
                        v2, ["namespace", "verb", "group", "version", "resource", "subresource",
                             "name"])
                elif n2 == 2:
                    obj["spec"]["nonResourceAttributes"] = _strings(v2, ["path", "verb"])
    return obj


def _self_subject_rules_review(raw):
    obj = {"metadata": {"creationTimestamp": None}, "spec": {}}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            obj["spec"] = _strings(v, ["namespace"])
    return obj


DECODERS = {
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _self_subject_review,
    ("authentication.k8s.io/v1beta1", "SelfSubjectReview"): _self_subject_review,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _self_subject_access_review,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): _self_subject_rules_review,
("v1", "ConfigMap"): _configmap, ("v1", "Secret"): _secret,
            ("v1", "Namespace"): _namespace}


def decode(body):
    """Returns the object as a JSON-shaped dict; raises ApiError 415/400."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "provided input did not match any known format "
                       "(expected protobuf envelope prefix)")
    api_version, kind, raw = "", "", b""
    try:
        for num, _, v in fields(body[4:]):
            if num == 1:
                for n2, _, v2 in fields(v):
                    if n2 == 1:
                        api_version = _s(v2)
                    elif n2 == 2:
                        kind = _s(v2)
            elif num == 2:
                raw = v
        dec = DECODERS.get((api_version, kind))
        if dec is None:
            raise ApiError(415, "UnsupportedMediaType",
                           'the body of the request was in an unknown format - accepted media '
                           'types include: application/json, application/yaml '
                           '(protobuf decoding of %s/%s is not supported by the stand-in)'
                           % (api_version, kind))
        obj = dec(raw)
    except ValueError as e:
        raise ApiError(400, "BadRequest", "unable to decode protobuf body: %s" % e)
    out = {"kind": kind, "apiVersion": api_version}
    out.update(obj)
    return out
