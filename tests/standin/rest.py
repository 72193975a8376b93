"""The API server proper: per-connection request loop, authentication,
impersonation, audit, discovery, and the REST verbs on the stored resources."""

import base64
import copy
import json
import select
import threading
import time
import traceback
import uuid

import audit as auditmod
import httpio
import kproto
import objects
import openapi
import patching
import registry
import reqinfo
import kselectors
import streams
import tables
from kutil import (ApiError, bad_request, dumps, invalid, not_found, now_rfc3339)
from kutil import order_object as _order

JSON = "application/json"
PF_FLOWSCHEMA = str(uuid.uuid5(uuid.NAMESPACE_DNS, "flowschema.standin"))
PF_PRIORITY = str(uuid.uuid5(uuid.NAMESPACE_DNS, "prioritylevel.standin"))
NOT_FOUND_MSG = "the server could not find the requested resource"


def _media_types(accept):
    out = []
    for part in (accept or "").split(","):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        params = {}
        for b in bits[1:]:
            k, _, v = b.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append((bits[0].lower(), params))
    return out or [("*/*", {})]


def negotiate(accept):
    """Returns ('object'|'table'|'partial'|'partiallist', media type string) or
    None when nothing acceptable is JSON."""
    for mt, p in _media_types(accept):
        if mt not in (JSON, "*/*", "application/*", "application/yaml"):
            continue
        as_ = p.get("as")
        if not as_:
            return "object", JSON
        if p.get("g") == "meta.k8s.io" and p.get("v") in ("v1", "v1beta1"):
            if as_ == "Table":
                return "table", "application/json;as=Table;v=%s;g=meta.k8s.io" % p["v"]
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "partial", "application/json;as=%s;v=%s;g=meta.k8s.io" % (as_, p["v"])
    return None


class Ctx:
    """Per-request state handed to the handlers."""

    def __init__(self, server, req, info, actx, user):
        self.server = server
        self.req = req
        self.info = info
        self.actx = actx
        self.user = user
        self.keep_alive = not req.wants_close()

    def headers(self, ctype=JSON):
        hs = [("Audit-Id", self.actx.audit_id), ("Cache-Control", "no-cache, private")]
        if ctype:
            hs.append(("Content-Type", ctype))
        if self.user is not None:  # priority and fairness runs after authentication
            hs += [("X-Kubernetes-Pf-Flowschema-Uid", PF_FLOWSCHEMA),
                   ("X-Kubernetes-Pf-Prioritylevel-Uid", PF_PRIORITY)]
        return hs

    def reply(self, code, obj, ctype=JSON, extra=()):
        if isinstance(obj, (bytes, bytearray)):
            body = bytes(obj)
            self.actx.set_response(code)
        else:
            body = dumps(obj)
            self.actx.set_response(code, obj)
        httpio.write_response(self.req.conn, code, self.headers(ctype) + list(extra), body,
                              close=not self.keep_alive, head_only=self.req.method == "HEAD")

    def error(self, e):
        self.reply(e.code, e.status())


class ApiServer:
    def __init__(self, store, authn, audit_log, address):
        self.store = store
        self.authn = authn
        self.audit = audit_log
        self.address = address
        self.containers = {}  # (ns, pod) -> fakepod.Container
        self.logs = streams.LogBook()
        self.clock_lock = threading.Lock()
        store.hooks.append(objects.deployment_controller)
        store.hooks.append(self._pod_hook)

    # --- connection loop ------------------------------------------------
    def serve_conn(self, conn):
        try:
            while True:
                try:
                    req = httpio.read_request(conn)
                except httpio.HttpError as e:
                    httpio.write_response(conn, 400, [("Content-Type", "text/plain; charset=utf-8")],
                                          ("400 Bad Request: %s" % e).encode(), close=True)
                    break
                if req is None:
                    break
                if not self.handle(req):
                    break
        except (OSError, EOFError, ValueError):
            pass
        finally:
            conn.close()

    def handle(self, req):
        """Serves one request. Returns True to keep the connection open."""
        audit_id = (req.header("Audit-ID") or "").strip() or str(uuid.uuid4())
        info = reqinfo.parse(req)
        actx = auditmod.AuditContext(req, audit_id, info)
        ctx = Ctx(self, req, info, actx, None)
        try:
            user = self.authn.authenticate(req)
        except ApiError as e:
            ctx.reply(e.code, e.status())
            self.audit.emit(actx, "ResponseStarted")
            return ctx.keep_alive
        actx.user = user
        ctx.user = user
        self.audit.emit(actx, "RequestReceived")
        try:
            try:
                imp = self.authn.impersonate(req, user)
                if imp is not None:
                    actx.impersonated = imp
                    ctx.user = imp
                actx.annotations = {"authorization.k8s.io/decision": "allow",
                                    "authorization.k8s.io/reason": ""}
                self.route(ctx)
            except ApiError as e:
                ctx.error(e)
            except (OSError, EOFError):
                ctx.keep_alive = False
            except Exception as e:  # a bug in the stand-in: answer like the server would
                traceback.print_exc()
                err = ApiError(500, "InternalError", "Internal error occurred: %s" % e,
                               {"causes": [{"message": str(e)}]})
                try:
                    ctx.error(err)
                except OSError:
                    ctx.keep_alive = False
        finally:
            if actx.long_running and not actx.started_emitted and actx.response_status:
                self.audit.emit(actx, "ResponseStarted")
            self.audit.emit(actx, "ResponseComplete")
        return ctx.keep_alive

    # --- routing --------------------------------------------------------
    def route(self, ctx):
        info = ctx.info
        if not info.is_resource:
            return self.non_resource(ctx)
        res = registry.lookup(info.group, info.version, info.resource)
        if res is None or (info.subresource and not res.sub(info.subresource)):
            raise ApiError(404, "NotFound", NOT_FOUND_MSG, {})
        if info.namespace and not res.namespaced and res.name != "namespaces":
            raise ApiError(404, "NotFound", NOT_FOUND_MSG, {})
        v, sub = info.verb, info.subresource
        if sub in ("exec", "attach", "portforward"):
            if v not in ("get", "create"):
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource", {})
            return streams.serve(ctx, res, self.store.get(res, info.namespace, info.name))
        if sub == "log":
            if v != "get":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource", {})
            return streams.serve_log(ctx, self.store.get(res, info.namespace, info.name))
        if sub == "scale":
            return self.scale(ctx, res)
        if res.group in ("authentication.k8s.io", "authorization.k8s.io"):
            if v != "create" or info.name:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource", {})
            return self.review(ctx, res)
        handler = {"get": self.get, "list": self.list, "watch": self.watch, "create": self.create,
                   "update": self.update, "patch": self.patch, "delete": self.delete,
                   "deletecollection": self.deletecollection}.get(v)
        if handler is None or (sub and v not in ("get", "update", "patch")):
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", {})
        if v == "create" and info.name and res.name != "namespaces":
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", {})
        return handler(ctx, res)

    def non_resource(self, ctx):
        req = ctx.req
        p = req.path.rstrip("/") or "/"
        if req.method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", {})
        if p == "/version":
            return ctx.reply(200, registry.SERVER_VERSION)
        if p in ("/healthz", "/livez", "/readyz"):
            return ctx.reply(200, b"ok", "text/plain; charset=utf-8")
        if p in ("/api", "/apis"):
            for mt, prm in _media_types(req.header("Accept")):
                if prm.get("as") == "APIGroupDiscoveryList" and \
                        prm.get("g") == "apidiscovery.k8s.io" and prm.get("v") in ("v2", "v2beta1"):
                    doc = registry.aggregated(p == "/api", "apidiscovery.k8s.io/" + prm["v"])
                    ctype = "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList" \
                            % prm["v"]
                    return ctx.reply(200, doc, ctype, [("Vary", "Accept")])
            if p == "/api":
                return ctx.reply(200, registry.api_versions(self.address), JSON,
                                 [("Vary", "Accept")])
            return ctx.reply(200, registry.api_group_list(), JSON, [("Vary", "Accept")])
        parts = p.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = registry.resource_list("", parts[1])
            if doc:
                return ctx.reply(200, doc)
        if parts[0] == "apis" and len(parts) == 2:
            doc = registry.api_group(parts[1])
            if doc:
                return ctx.reply(200, doc)
        if parts[0] == "apis" and len(parts) == 3:
            doc = registry.resource_list(parts[1], parts[2])
            if doc:
                return ctx.reply(200, doc)
        if parts[0] == "openapi":
            return openapi.serve(ctx, parts[1:])
        raise ApiError(404, "NotFound", NOT_FOUND_MSG, {})

    # --- helpers --------------------------------------------------------
    def _mode(self, ctx):
        m = negotiate(ctx.req.header("Accept"))
        if m is None:
            raise ApiError(406, "NotAcceptable", "only the following media types are accepted: "
                           "application/json, application/yaml, application/vnd.kubernetes.protobuf",
                           {})
        return m

    def _render(self, ctx, res, obj, mode):
        kind, ctype = mode
        if kind == "table":
            t = tables.table(res, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                             ctx.req.q("includeObject", "Metadata"))
            return t, ctype
        if kind == "partial":
            return tables.partial(obj), ctype
        return obj, ctype

    def _decode_body(self, ctx):
        req = ctx.req
        ctype = (req.header("Content-Type") or JSON).split(";")[0].strip().lower()
        if ctype == "application/vnd.kubernetes.protobuf":
            return kproto.decode(req.body)
        if ctype not in (JSON, "application/yaml", "*/*", ""):
            raise ApiError(415, "UnsupportedMediaType",
                           'the body of the request was in an unknown format - accepted media '
                           'types include: application/json, application/yaml, '
                           'application/vnd.kubernetes.protobuf', {})
        try:
            obj = json.loads(req.body or b"null")
        except ValueError as e:
            raise bad_request("json: cannot unmarshal request body: %s" % e)
        if not isinstance(obj, dict):
            raise bad_request("Object 'Kind' is missing in '%s'" % req.body[:200].decode(
                errors="replace"))
        return obj

    def _check_kind(self, res, obj):
        kind = obj.get("kind")
        av = obj.get("apiVersion")
        if not kind:
            raise bad_request("Object 'Kind' is missing in '%s'" % json.dumps(obj)[:200])
        if av and av != res.gv:
            raise bad_request("the API version in the data (%s) does not match the expected API "
                              "version (%s)" % (av, res.gv))
        if kind != res.kind:
            raise bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                              % (kind, res.kind))

    def _log_request_object(self, ctx, res, obj):
        """The audit requestObject is the decoded body after versioned
        defaulting (no server-set fields), as the real decoder produces it."""
        if ctx.actx.level != "RequestResponse":
            return
        logged = copy.deepcopy(obj)
        logged.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        if res.namespaced and ctx.info.namespace and res.name != "namespaces":
            logged["metadata"].setdefault("namespace", ctx.info.namespace)
        objects.apply_defaults(res, logged, creating=False)
        if res.name == "pods":
            logged.setdefault("status", {})
        ctx.actx.set_request_object(_order(logged))

    def _ensure_namespace(self, res, ns):
        if res.namespaced and ns:
            ns_res = registry.lookup("", "v1", "namespaces")
            if not self.store.exists(ns_res, "", ns):
                raise not_found("namespaces", "", ns)

    def _manager(self, ctx):
        m = ctx.req.q("fieldManager")
        if m:
            return m
        ua = ctx.req.header("User-Agent") or "unknown"
        return ua.split("/")[0]

    def _managed(self, ctx, res, obj, manager, operation, prev=None):
        md = obj["metadata"]
        entries = [e for e in (prev or {}).get("metadata", {}).get("managedFields", [])
                   if not (e.get("manager") == manager and e.get("operation") == operation)]
        fields = _fieldset(obj)
        if fields:
            entries.append({"manager": manager, "operation": operation, "apiVersion": res.gv,
                            "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields})
        if entries:
            md["managedFields"] = entries
        else:
            md.pop("managedFields", None)

    def _dry_run(self, ctx):
        vals = ctx.req.query.get("dryRun") or []
        for v in vals:
            if v != "All":
                raise bad_request('Invalid dryRun value: "%s". Supported values are "All"' % v)
        return bool(vals)

    def _finish_object(self, res, obj):
        obj["kind"] = res.kind
        obj["apiVersion"] = res.gv
        return _order(obj)

    # --- verbs ------------------------------------------------------------
    def get(self, ctx, res):
        info = ctx.info
        obj = self.store.get(res, info.namespace if res.namespaced else "", info.name)
        if info.subresource == "status" and res.name == "namespaces":
            pass
        mode = self._mode(ctx)
        body, ctype = self._render(ctx, res, obj, mode)
        ctx.reply(200, body, ctype)

    def _filter(self, ctx, res):
        lp = kselectors.parse_labels(ctx.req.q("labelSelector"))
        fp = kselectors.parse_fields(ctx.req.q("fieldSelector"), res.name)
        return lambda o: lp(o["metadata"].get("labels")) and fp(o)

    def list(self, ctx, res):
        info = ctx.info
        mode = self._mode(ctx)
        match = self._filter(ctx, res)
        items, rv = self.store.list(res, info.namespace if res.namespaced else None)
        items = [o for o in items if match(o)]
        start = 0
        cont = ctx.req.q("continue")
        if cont:
            try:
                tok = json.loads(base64.b64decode(cont + "=" * (-len(cont) % 4)))
                start = int(tok["start"])
                rv = str(tok["rv"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid: %s" % cont)
        limit = int(ctx.req.q("limit") or 0)
        meta = {"resourceVersion": rv}
        page = items[start:]
        if limit > 0 and len(page) > limit:
            page = page[:limit]
            tok = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": start + limit}
            meta["continue"] = base64.b64encode(json.dumps(tok).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = len(items) - start - limit
        kind, ctype = mode
        if kind == "table":
            return ctx.reply(200, tables.table(res, page, meta,
                                               ctx.req.q("includeObject", "Metadata")), ctype)
        if kind == "partial":
            return ctx.reply(200, {"kind": "PartialObjectMetadataList",
                                   "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                                   "items": [tables.partial(o) for o in page]}, ctype)
        for o in page:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        ctx.reply(200, {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": meta,
                        "items": page})

    def watch(self, ctx, res):
        info = ctx.info
        mode = self._mode(ctx)
        match = self._filter(ctx, res)
        try:
            timeout = int(ctx.req.q("timeoutSeconds") or 1800)
        except ValueError:
            timeout = 1800
        w = self.store.watch(res, info.namespace if res.namespaced else None, info.name,
                             ctx.req.q("resourceVersion"))
        kind, ctype = mode
        ctx.actx.set_response(200)
        self.audit.emit(ctx.actx, "ResponseStarted")
        ctx.actx.started_emitted = True
        cw = httpio.ChunkedWriter(ctx.req.conn, 200, ctx.headers(ctype),
                                  close=not ctx.keep_alive)
        deadline = time.monotonic() + timeout
        sent = set()
        first = True
        try:
            while time.monotonic() < deadline:
                try:
                    etype, obj = w.q.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
                except Exception:
                    if _peer_gone(ctx.req.conn):
                        ctx.keep_alive = False
                        return
                    continue
                key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
                ok = match(obj)
                if etype == "DELETED":
                    if key not in sent and not ok:
                        continue
                    sent.discard(key)
                elif ok:
                    if etype == "MODIFIED" and key not in sent:
                        etype = "ADDED"
                    sent.add(key)
                else:
                    if key not in sent:
                        continue
                    sent.discard(key)
                    etype = "DELETED"
                if kind == "table":
                    out = tables.table(res, [obj], {"resourceVersion":
                                                    obj["metadata"]["resourceVersion"]},
                                       ctx.req.q("includeObject", "Metadata"), headers=first)
                elif kind == "partial":
                    out = tables.partial(obj)
                else:
                    out = obj
                first = False
                cw.write(dumps({"type": etype, "object": out}))
            cw.end()
        except OSError:
            ctx.keep_alive = False
        finally:
            self.store.unwatch(w)

    def create(self, ctx, res):
        info = ctx.info
        obj = self._decode_body(ctx)
        self._check_kind(res, obj)
        self._log_request_object(ctx, res, obj)
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != info.namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = info.namespace
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise invalid(res.kind, res.group, "", [("metadata.name", "Required value: name or "
                                                         "generateName is required")])
        ctx.actx.object_ref = dict(ctx.actx.object_ref or {}, name=md["name"])
        ctx.actx.object_ref = _ref_order(ctx.actx.object_ref)
        self._ensure_namespace(res, info.namespace)
        for k in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink",
                  "deletionTimestamp"):
            md.pop(k, None)
        objects.apply_defaults(res, obj, creating=True)
        objects.bump_generation(res, None, obj)
        self._managed(ctx, res, obj, self._manager(ctx), "Update")
        obj = self._finish_object(res, obj)
        if self._dry_run(ctx):
            if self.store.exists(res, md.get("namespace"), md["name"]):
                from kutil import already_exists
                raise already_exists(res.name, res.group, md["name"])
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            return ctx.reply(201, obj)
        created = self.store.create(res, obj)
        mode = self._mode(ctx)
        body, ctype = self._render(ctx, res, created, mode)
        ctx.reply(201, body, ctype)

    def _prepare_write(self, ctx, res, new, cur):
        """Common checks and defaulting for update and patch."""
        info = ctx.info
        md = new.setdefault("metadata", {})
        if md.get("name") and md["name"] != info.name:
            raise bad_request("the name of the object (%s) does not match the name on the URL "
                              "(%s)" % (md["name"], info.name))
        md["name"] = info.name
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != info.namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = info.namespace
        if info.subresource == "status":
            keep = copy.deepcopy(cur)
            keep["status"] = new.get("status", {})
            keep["metadata"]["resourceVersion"] = md.get("resourceVersion") or \
                cur["metadata"]["resourceVersion"]
            new = keep
        elif "status" in cur and res.name not in ("configmaps", "secrets"):
            new["status"] = copy.deepcopy(cur["status"])
        objects.apply_defaults(res, new, creating=False)
        objects.bump_generation(res, cur, new)
        new["metadata"]["uid"] = cur["metadata"]["uid"]
        return self._finish_object(res, new)

    def update(self, ctx, res):
        info = ctx.info
        obj = self._decode_body(ctx)
        self._check_kind(res, obj)
        self._log_request_object(ctx, res, obj)
        cur = self.store.get(res, info.namespace, info.name)
        new = self._prepare_write(ctx, res, obj, cur)
        self._managed(ctx, res, new, self._manager(ctx), "Update", cur)
        if self._dry_run(ctx):
            return ctx.reply(200, new)
        out = self.store.update(res, new)
        out = self.store.get(res, info.namespace, info.name)
        body, ctype = self._render(ctx, res, out, self._mode(ctx))
        ctx.reply(200, body, ctype)

    def patch(self, ctx, res):
        info = ctx.info
        ptype = (ctx.req.header("Content-Type") or "").split(";")[0].strip().lower()
        try:
            patch = json.loads(ctx.req.body or b"null")
        except ValueError as e:
            if ptype == "application/apply-patch+yaml":
                raise bad_request("error decoding YAML: the stand-in accepts apply patches in "
                                  "JSON form only: %s" % e)
            raise bad_request("error decoding patch: %s" % e)
        ctx.actx.set_request_object(patch)
        creating = False
        try:
            cur = self.store.get(res, info.namespace, info.name)
        except ApiError as e:
            if e.code != 404 or ptype != "application/apply-patch+yaml" or info.subresource:
                raise
            creating = True
            cur = None
        if ptype == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal into Go value of type map[string]interface {}")
            new = patching.merge_patch(cur, patch)
        elif ptype == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal array into Go value of type "
                                  "map[string]interface {}")
            new = patching.strategic_merge(cur, patch)
        elif ptype == "application/json-patch+json":
            new = patching.json_patch(cur, patch)
        elif ptype == "application/apply-patch+yaml":
            if not isinstance(patch, dict):
                raise bad_request("error decoding YAML: expected an object")
            self._check_kind(res, patch)
            if ctx.req.q("fieldManager") is None:
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                               "fieldManager: Required value: is required for apply patch",
                               {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                                   {"reason": "FieldValueRequired",
                                    "message": "Required value: is required for apply patch",
                                    "field": "fieldManager"}]})
            if creating:
                new = copy.deepcopy(patch)
            else:
                new = patching.strategic_merge(cur, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown '
                           'format - accepted media types include: application/json-patch+json, '
                           'application/merge-patch+json, application/apply-patch+yaml, '
                           'application/strategic-merge-patch+json', {})
        if not isinstance(new, dict):
            raise bad_request("patched object is not a JSON object")
        manager = self._manager(ctx)
        op = "Apply" if ptype == "application/apply-patch+yaml" else "Update"
        if creating:
            md = new.setdefault("metadata", {})
            md["name"] = info.name
            if res.namespaced:
                md["namespace"] = info.namespace
            self._ensure_namespace(res, info.namespace)
            objects.apply_defaults(res, new, creating=True)
            objects.bump_generation(res, None, new)
            self._managed(ctx, res, new, manager, op)
            new = self._finish_object(res, new)
            if self._dry_run(ctx):
                return ctx.reply(201, new)
            self.store.create(res, new)
            out = self.store.get(res, info.namespace, info.name)
            body, ctype = self._render(ctx, res, out, self._mode(ctx))
            return ctx.reply(201, body, ctype)
        check_rv = bool((patch.get("metadata") or {}).get("resourceVersion")
                        if isinstance(patch, dict) else False)
        if not check_rv:
            new.setdefault("metadata", {})["resourceVersion"] = cur["metadata"]["resourceVersion"]
        new = self._prepare_write(ctx, res, new, cur)
        self._managed(ctx, res, new, manager, op, cur)
        if self._dry_run(ctx):
            return ctx.reply(200, new)
        self.store.update(res, new, check_rv=True)
        out = self.store.get(res, info.namespace, info.name)
        body, ctype = self._render(ctx, res, out, self._mode(ctx))
        ctx.reply(200, body, ctype)

    def _delete_options(self, ctx):
        body = ctx.req.body
        opts = {}
        if body and body.strip():
            try:
                opts = json.loads(body)
            except ValueError as e:
                raise bad_request("error decoding DeleteOptions: %s" % e)
            if not isinstance(opts, dict):
                raise bad_request("error decoding DeleteOptions")
            ro = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
            ro.update({k: v for k, v in opts.items() if k not in ("kind", "apiVersion")})
            ctx.actx.set_request_object(ro)
        return opts

    def _delete_one(self, ctx, res, ns, name, opts, dry):
        pre = opts.get("preconditions") or {}
        if dry:
            cur = self.store.get(res, ns, name)
        else:
            cur = self.store.delete(res, ns, name, pre.get("uid"), pre.get("resourceVersion"))
            if res.name == "namespaces":
                self._purge_namespace(name)
        return cur

    def delete(self, ctx, res):
        info = ctx.info
        opts = self._delete_options(ctx)
        dry = self._dry_run(ctx) or opts.get("dryRun") == ["All"]
        ns = info.namespace if res.namespaced else ""
        cur = self._delete_one(ctx, res, ns, info.name, opts, dry)
        if res.name in ("pods", "namespaces"):
            # graceful deletion: the server answers with the object being deleted
            cur["metadata"]["deletionTimestamp"] = now_rfc3339()
            if res.name == "pods":
                cur["metadata"]["deletionGracePeriodSeconds"] = opts.get(
                    "gracePeriodSeconds", cur.get("spec", {}).get("terminationGracePeriodSeconds", 30))
            else:
                cur["status"] = {"phase": "Terminating"}
            return ctx.reply(200, self._finish_object(res, cur))
        details = {"name": info.name}
        if res.group:
            details["group"] = res.group
        details["kind"] = res.name
        details["uid"] = cur["metadata"]["uid"]
        ctx.reply(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success", "details": details})

    def deletecollection(self, ctx, res):
        info = ctx.info
        opts = self._delete_options(ctx)
        dry = self._dry_run(ctx)
        match = self._filter(ctx, res)
        items, rv = self.store.list(res, info.namespace if res.namespaced else None)
        deleted = []
        for o in items:
            if match(o):
                try:
                    d = self._delete_one(ctx, res, o["metadata"].get("namespace", ""),
                                         o["metadata"]["name"], opts, dry)
                    d.pop("kind", None)
                    d.pop("apiVersion", None)
                    deleted.append(d)
                except ApiError:
                    pass
        ctx.reply(200, {"kind": res.kind + "List", "apiVersion": res.gv,
                        "metadata": {"resourceVersion": self.store.current_rv()},
                        "items": deleted})

    def _purge_namespace(self, ns):
        for r in registry.RESOURCES:
            if not r.namespaced:
                continue
            items, _ = self.store.list(r, ns)
            for o in items:
                try:
                    self.store.delete(r, ns, o["metadata"]["name"])
                except ApiError:
                    pass

    # --- self reviews (kubectl auth whoami / can-i) ----------------------------
    def review(self, ctx, res):
        obj = self._decode_body(ctx)
        self._check_kind(res, obj)
        self._log_request_object(ctx, res, obj)
        user = ctx.user
        out = {"kind": res.kind, "apiVersion": res.gv, "metadata": {"creationTimestamp": None}}
        if res.name == "selfsubjectreviews":
            out["status"] = {"userInfo": user}
        elif res.name == "selfsubjectaccessreviews":
            out["spec"] = obj.get("spec") or {}
            attrs = out["spec"].get("resourceAttributes") or {}
            allowed = attrs.get("verb") != "impersonate" or self.authn.may_impersonate(user)
            out["status"] = {"allowed": allowed}
            if not allowed:
                out["status"]["reason"] = ""
        else:
            out["spec"] = obj.get("spec") or {}
            out["status"] = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False}
        ctx.reply(201, out)

    # --- deployments/scale --------------------------------------------------
    def _to_scale(self, obj):
        sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        md = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": md["name"], "namespace": md.get("namespace"),
                             "uid": md["uid"], "resourceVersion": md["resourceVersion"],
                             "creationTimestamp": md["creationTimestamp"]},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": ",".join("%s=%s" % kv for kv in sorted(sel.items()))}}

    def scale(self, ctx, res):
        info = ctx.info
        cur = self.store.get(res, info.namespace, info.name)
        v = info.verb
        if v == "get":
            return ctx.reply(200, self._to_scale(cur))
        if v not in ("update", "patch"):
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", {})
        scale = self._to_scale(cur)
        try:
            body = json.loads(ctx.req.body or b"null")
        except ValueError as e:
            raise bad_request("error decoding body: %s" % e)
        ctx.actx.set_request_object(body)
        if v == "update":
            if not isinstance(body, dict):
                raise bad_request("expected a Scale object")
            want_rv = (body.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                from kutil import conflict
                raise conflict(res.name, res.group, info.name,
                               "the object has been modified; please apply your changes to "
                               "the latest version and try again")
            new_scale = body
        else:
            ptype = (ctx.req.header("Content-Type") or "").split(";")[0].strip().lower()
            if ptype == "application/json-patch+json":
                new_scale = patching.json_patch(scale, body)
            elif ptype == "application/strategic-merge-patch+json":
                new_scale = patching.strategic_merge(scale, body)
            else:
                new_scale = patching.merge_patch(scale, body)
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid("Scale", "autoscaling", info.name,
                          [("spec.replicas", "Invalid value: %r: must be greater than or equal "
                            "to 0" % (replicas,))])
        new = copy.deepcopy(cur)
        new["spec"]["replicas"] = replicas
        objects.bump_generation(res, cur, new)
        self._managed(ctx, res, new, self._manager(ctx), "Update", cur)
        if self._dry_run(ctx):
            return ctx.reply(200, self._to_scale(new))
        updated = self.store.update(res, new, check_rv=False)
        ctx.reply(200, self._to_scale(updated))

    # --- pod bookkeeping ------------------------------------------------
    def container(self, pod):
        import fakepod
        md = pod["metadata"]
        key = (md.get("namespace"), md["name"])
        with self.clock_lock:
            c = self.containers.get(key)
            if c is None or c.uid != md["uid"]:
                env = []
                for ct in (pod.get("spec") or {}).get("containers") or []:
                    for e in ct.get("env") or []:
                        if "value" in e:
                            env.append((e["name"], e["value"]))
                c = fakepod.Container(md["name"], md.get("namespace"), env)
                c.uid = md["uid"]
                self.containers[key] = c
            return c

    def _pod_hook(self, store, etype, res, obj):
        if res.name != "pods":
            return
        md = obj["metadata"]
        if etype == "DELETED":
            with self.clock_lock:
                self.containers.pop((md.get("namespace"), md["name"]), None)
            self.logs.close_pod(md.get("namespace"), md["name"])


def _fieldset(obj):
    """A FieldsV1-like set of the fields set in obj (for managedFields)."""
    skip_md = {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation",
               "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}
    out = {}
    for k, v in obj.items():
        if k in ("kind", "apiVersion", "status"):
            continue
        if k == "metadata":
            sub = {kk: vv for kk, vv in v.items() if kk not in skip_md}
            if sub:
                out["f:metadata"] = _fields_of(sub, 1)
            continue
        out["f:" + k] = _fields_of(v, 1) if isinstance(v, (dict, list)) else {}
    return out


def _fields_of(v, depth):
    if isinstance(v, dict):
        d = {}
        if depth > 1 and v and all(not isinstance(x, (dict, list)) for x in v.values()):
            d["."] = {}
        for k, x in v.items():
            d["f:" + k] = _fields_of(x, depth + 1) if isinstance(x, (dict, list)) else {}
        return d
    if isinstance(v, list):
        d = {}
        for it in v:
            if isinstance(it, dict) and "name" in it:
                inner = {".": {}}
                inner.update(_fields_of(it, depth + 1))
                d['k:{"name":"%s"}' % it["name"]] = inner
        return d
    return {}


def _ref_order(ref):
    out = {}
    for k in ("resource", "namespace", "name", "apiGroup", "apiVersion", "subresource"):
        if k in ref:
            out[k] = ref[k]
    return out


def _peer_gone(conn):
    """True when the client closed its side (used while a stream is idle)."""
    try:
        if conn.sock.pending():
            return False
        r, _, _ = select.select([conn.sock], [], [], 0)
        if not r:
            return False
        data = conn.read_some(1)
        return not data
    except (OSError, ValueError):
        return True
