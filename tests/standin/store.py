"""Object storage with one global resourceVersion counter (like etcd's revision)
and watch fan-out: every write is recorded in a bounded history so a watch that
starts at resourceVersion N first replays what happened after N."""

import copy
import queue
import threading

from kutil import (already_exists, conflict, not_found, now_rfc3339, new_uid, ApiError,
                   order_object)

HISTORY_MAX = 20000


class Watcher:
    def __init__(self, res, namespace, name):
        self.res = res
        self.namespace = namespace
        self.name = name
        self.q = queue.Queue()

    def matches(self, res, ns, name):
        if res is not self.res:
            return False
        if self.namespace and ns != self.namespace:
            return False
        return not self.name or name == self.name


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.rv = 1000
        self.objs = {}  # Resource -> {(ns, name): obj}
        self.history = []  # (rv, res, ns, name, type, obj)
        self.watchers = []
        self.hooks = []  # called after each write: fn(store, type, res, obj)

    def _bucket(self, res):
        return self.objs.setdefault(res, {})

    def _record(self, res, etype, obj):
        md = obj["metadata"]
        ns, name = md.get("namespace", ""), md["name"]
        ev = (int(md["resourceVersion"]), res, ns, name, etype, copy.deepcopy(obj))
        self.history.append(ev)
        if len(self.history) > HISTORY_MAX:
            del self.history[:len(self.history) - HISTORY_MAX]
        for w in list(self.watchers):
            if w.matches(res, ns, name):
                w.q.put((etype, ev[5]))

    def _bump(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def current_rv(self):
        with self.lock:
            return str(self.rv)

    def get(self, res, ns, name):
        ns = ns if res.namespaced else ""
        with self.lock:
            o = self._bucket(res).get((ns or "", name))
            if o is None:
                raise not_found(res.name, res.group, name)
            return copy.deepcopy(o)

    def exists(self, res, ns, name):
        ns = ns if res.namespaced else ""
        with self.lock:
            return (ns or "", name) in self._bucket(res)

    def list(self, res, ns=None):
        ns = ns if res.namespaced else None
        with self.lock:
            items = [copy.deepcopy(o) for (ons, _), o in sorted(self._bucket(res).items())
                     if not ns or ons == ns]
            return items, str(self.rv)

    def create(self, res, obj):
        with self.lock:
            md = obj.setdefault("metadata", {})
            key = (md.get("namespace", ""), md["name"])
            b = self._bucket(res)
            if key in b:
                raise already_exists(res.name, res.group, md["name"])
            md.setdefault("uid", new_uid())
            md["creationTimestamp"] = md.get("creationTimestamp") or now_rfc3339()
            self._bump(obj)
            obj = order_object(obj)
            b[key] = copy.deepcopy(obj)
            self._record(res, "ADDED", obj)
        self._run_hooks("ADDED", res, obj)
        return copy.deepcopy(obj)

    def update(self, res, obj, check_rv=True):
        """Replaces the stored object; a non-empty metadata.resourceVersion must
        match (optimistic concurrency) when check_rv."""
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            b = self._bucket(res)
            cur = b.get(key)
            if cur is None:
                raise not_found(res.name, res.group, md["name"])
            want = md.get("resourceVersion")
            if check_rv and want and want != cur["metadata"]["resourceVersion"]:
                raise conflict(res.name, res.group, md["name"],
                               "the object has been modified; please apply your changes "
                               "to the latest version and try again")
            md["uid"] = cur["metadata"]["uid"]
            md["creationTimestamp"] = cur["metadata"]["creationTimestamp"]
            if cur == obj or _same_but_rv(cur, obj):
                return copy.deepcopy(cur)  # no-op writes keep the resourceVersion
            self._bump(obj)
            obj = order_object(obj)
            b[key] = copy.deepcopy(obj)
            self._record(res, "MODIFIED", obj)
        self._run_hooks("MODIFIED", res, obj)
        return copy.deepcopy(obj)

    def delete(self, res, ns, name, precondition_uid=None, precondition_rv=None):
        ns = ns if res.namespaced else ""
        with self.lock:
            b = self._bucket(res)
            key = (ns or "", name)
            cur = b.get(key)
            if cur is None:
                raise not_found(res.name, res.group, name)
            if precondition_uid and precondition_uid != cur["metadata"]["uid"]:
                raise conflict(res.name, res.group, name,
                               "Precondition failed: UID in precondition: %s, UID in object "
                               "meta: %s" % (precondition_uid, cur["metadata"]["uid"]))
            if precondition_rv and precondition_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res.name, res.group, name,
                               "Precondition failed: ResourceVersion in precondition: %s, "
                               "ResourceVersion in object meta: %s"
                               % (precondition_rv, cur["metadata"]["resourceVersion"]))
            del b[key]
            self._bump(cur)
            self._record(res, "DELETED", cur)
        self._run_hooks("DELETED", res, cur)
        return copy.deepcopy(cur)

    def watch(self, res, ns, name, since_rv):
        """Registers a watcher. since_rv None/'0'/'': the current state is sent
        as ADDED events first; otherwise history after since_rv is replayed.
        Returns the Watcher (caller must unwatch)."""
        w = Watcher(res, ns if res.namespaced else None, name)
        with self.lock:
            if since_rv in (None, "", "0"):
                for (ons, oname), o in sorted(self._bucket(res).items()):
                    if w.matches(res, ons, oname):
                        w.q.put(("ADDED", copy.deepcopy(o)))
            else:
                try:
                    n = int(since_rv)
                except ValueError:
                    raise ApiError(400, "BadRequest",
                                   'invalid resource version: "%s"' % since_rv)
                if self.history and n < self.history[0][0] - 1 and n < self.rv - len(self.history):
                    raise ApiError(410, "Expired", "too old resource version: %d (%d)"
                                   % (n, self.history[0][0]))
                for (erv, eres, ens, ename, etype, eobj) in self.history:
                    if erv > n and w.matches(eres, ens, ename):
                        w.q.put((etype, copy.deepcopy(eobj)))
            self.watchers.append(w)
        return w

    def unwatch(self, w):
        with self.lock:
            if w in self.watchers:
                self.watchers.remove(w)

    def _run_hooks(self, etype, res, obj):
        for h in self.hooks:
            h(self, etype, res, obj)


def _same_but_rv(a, b):
    a = copy.deepcopy(a)
    b = copy.deepcopy(b)
    a["metadata"].pop("resourceVersion", None)
    b["metadata"].pop("resourceVersion", None)
    # managedFields timestamps change on every write; ignore them for no-op detection
    a["metadata"].pop("managedFields", None)
    b["metadata"].pop("managedFields", None)
    return a == b
