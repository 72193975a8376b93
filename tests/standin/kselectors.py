"""Label and field selectors (the subset kube-apiserver's parsers accept that
kubectl uses)."""

import re

from kutil import ApiError


def _split_top(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [x.strip() for x in out if x.strip()]


_SET = re.compile(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)$")


def parse_labels(s):
    """Returns a predicate over a labels dict; raises ApiError 400."""
    reqs = []
    for term in _split_top(s or ""):
        m = _SET.match(term)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            reqs.append(lambda l, k=key, o=op, vs=vals:
                        (l.get(k) in vs) if o == "in" else (l.get(k) not in vs))
            continue
        for op in ("!=", "==", "="):
            if op in term:
                k, v = [x.strip() for x in term.split(op, 1)]
                if op == "!=":
                    reqs.append(lambda l, k=k, v=v: l.get(k) != v)
                else:
                    reqs.append(lambda l, k=k, v=v: l.get(k) == v)
                break
        else:
            if term.startswith("!"):
                reqs.append(lambda l, k=term[1:].strip(): k not in l)
            elif re.match(r"^[A-Za-z0-9./_-]+$", term):
                reqs.append(lambda l, k=term: k in l)
            else:
                raise ApiError(400, "BadRequest",
                               "unable to parse requirement: found '%s', expected: identifier"
                               % term)
    return lambda labels: all(r(labels or {}) for r in reqs)


FIELDS = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
}
POD_FIELDS = {
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
    "spec.restartPolicy": lambda o: (o.get("spec") or {}).get("restartPolicy", ""),
    "spec.schedulerName": lambda o: (o.get("spec") or {}).get("schedulerName", ""),
    "spec.serviceAccountName": lambda o: (o.get("spec") or {}).get("serviceAccountName", ""),
    "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
    "status.podIP": lambda o: (o.get("status") or {}).get("podIP", ""),
}
SECRET_FIELDS = {"type": lambda o: o.get("type", "")}
EVENT_FIELDS = {
    "involvedObject.kind": lambda o: (o.get("involvedObject") or {}).get("kind", ""),
    "involvedObject.name": lambda o: (o.get("involvedObject") or {}).get("name", ""),
    "involvedObject.namespace": lambda o: (o.get("involvedObject") or {}).get("namespace", ""),
    "involvedObject.uid": lambda o: (o.get("involvedObject") or {}).get("uid", ""),
    "reason": lambda o: o.get("reason", ""), "type": lambda o: o.get("type", ""),
}


def parse_fields(s, resource):
    extra = {"pods": POD_FIELDS, "secrets": SECRET_FIELDS, "events": EVENT_FIELDS}.get(resource, {})
    reqs = []
    for term in _split_top(s or ""):
        for op in ("!=", "==", "="):
            if op in term:
                k, v = [x.strip() for x in term.split(op, 1)]
                break
        else:
            raise ApiError(400, "BadRequest", 'invalid selector: \'%s\'; can\'t understand '
                           '\'%s\'' % (s, term))
        fn = FIELDS.get(k) or extra.get(k)
        if fn is None:
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % k)
        if op == "!=":
            reqs.append(lambda o, f=fn, v=v: f(o) != v)
        else:
            reqs.append(lambda o, f=fn, v=v: f(o) == v)
    return lambda o: all(r(o) for r in reqs)
