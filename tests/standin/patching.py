"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch
(list merge by key, $patch / $retainKeys / $setElementOrder /
$deleteFromPrimitiveList directives) as the apiserver applies them."""

import copy

from kutil import ApiError

# field name -> merge key for lists merged by key (strategic merge patch)
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "imagePullSecrets": "name", "hostAliases": "ip",
    "conditions": "type", "ownerReferences": "uid", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "secrets": "name", "envFrom": None,
}
# primitive lists merged as sets
MERGE_PRIMITIVE = {"finalizers"}


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _ports_key(items):
    for it in items:
        if isinstance(it, dict):
            if "containerPort" in it:
                return "containerPort"
            if "port" in it:
                return "port"
    return "containerPort"


def _merge_key(field, items):
    if field == "ports":
        return _ports_key(items)
    return MERGE_KEYS.get(field)


def strategic_merge(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    if patch.get("$patch") == "replace":
        p = {k: v for k, v in patch.items() if k != "$patch"}
        return strategic_merge({}, p)
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target)
    retain = patch.get("$retainKeys")
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k[len("$setElementOrder/"):]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k[len("$deleteFromPrimitiveList/"):]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        if isinstance(v, dict):
            merged = strategic_merge(cur, v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _merge_list(k, cur if isinstance(cur, list) else [], v)
        else:
            out[k] = copy.deepcopy(v)
    if retain is not None:
        for k in list(out.keys()):
            if k not in retain:
                del out[k]
    for f, order in orders.items():
        if isinstance(out.get(f), list):
            out[f] = _apply_order(f, out[f], order)
    return out


def _merge_list(field, cur, patch):
    if field in MERGE_PRIMITIVE:
        out = list(cur)
        for x in patch:
            if x not in out:
                out.append(copy.deepcopy(x))
        return out
    key = _merge_key(field, cur + patch)
    if key is None or not all(isinstance(x, dict) for x in patch):
        return [x for x in copy.deepcopy(patch) if not (isinstance(x, dict) and x.get("$patch"))]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [x for x in copy.deepcopy(patch) if x.get("$patch") != "replace"]
    out = copy.deepcopy(cur)
    for item in patch:
        idx = next((i for i, c in enumerate(out)
                    if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(strategic_merge({}, item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def _apply_order(field, items, order):
    key = _merge_key(field, items + [o for o in order if isinstance(o, dict)])
    if key is None:
        pos = {json_key(o): i for i, o in enumerate(order)}
        return sorted(items, key=lambda x: pos.get(json_key(x), len(pos)))
    pos = {o.get(key): i for i, o in enumerate(order) if isinstance(o, dict)}
    return sorted(items, key=lambda x: pos.get(x.get(key) if isinstance(x, dict) else None,
                                                len(pos)))


def json_key(x):
    return repr(x)


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", 'the server rejected our request due to an error in our '
                       'request: invalid JSON pointer "%s"' % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc, parts):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        else:
            cur = cur[p]
    return cur


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type "
                       "jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        try:
            doc = _apply_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in "
                           "our request: %s" % _op_err(op, e))
    return doc


def _op_err(op, e):
    return "doc is missing path: \"%s\": missing value" % op.get("path", "")


def _apply_op(doc, op):
    kind = op.get("op")
    parts = _ptr(op.get("path", ""))
    if kind == "test":
        if _get(doc, parts) != op.get("value"):
            raise ApiError(422, "Invalid", "the server rejected our request due to an error in "
                           "our request: testing value %s failed: test failed" % op.get("path"))
        return doc
    if kind in ("move", "copy"):
        src = _ptr(op.get("from", ""))
        val = copy.deepcopy(_get(doc, src))
        if kind == "move":
            doc = _remove(doc, src)
        return _add(doc, parts, val)
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op.get("value")))
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "replace":
        _get(doc, parts)
        if not parts:
            return copy.deepcopy(op.get("value"))
        par = _parent(doc, parts)
        if isinstance(par, list):
            par[int(parts[-1])] = copy.deepcopy(op.get("value"))
        else:
            par[parts[-1]] = copy.deepcopy(op.get("value"))
        return doc
    raise ValueError("unexpected op %r" % kind)


def _get(doc, parts):
    cur = doc
    for p in parts:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur


def _add(doc, parts, val):
    if not parts:
        return val
    par = _parent(doc, parts)
    last = parts[-1]
    if isinstance(par, list):
        if last == "-":
            par.append(val)
        else:
            i = int(last)
            if i < 0 or i > len(par):
                raise IndexError(i)
            par.insert(i, val)
    elif isinstance(par, dict):
        par[last] = val
    else:
        raise TypeError("not a container")
    return doc


def _remove(doc, parts):
    par = _parent(doc, parts)
    if isinstance(par, list):
        del par[int(parts[-1])]
    else:
        del par[parts[-1]]
    return doc
