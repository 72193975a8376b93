"""Defaulting as the apiserver does it for the served kinds, the tiny
"controllers" (deployment status follows spec.replicas, pods run at once),
and the --seed default objects."""

import base64
import copy
import itertools

from kutil import now_rfc3339

_ips = itertools.count(10)


def _image_pull_policy(image):
    tag = image.rsplit("/", 1)[-1]
    if "@" in tag:
        return "IfNotPresent"
    if ":" not in tag or tag.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec):
    for c in spec.get("containers") or []:
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", _image_pull_policy(c.get("image", "")))
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")


def apply_defaults(res, obj, creating):
    md = obj.setdefault("metadata", {})
    k = res.name
    if k == "namespaces":
        if md.get("name"):
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        spec = obj.setdefault("spec", {})
        if creating:
            spec.setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif k == "pods":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        spec.setdefault("nodeName", "node-1")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        if creating:
            start = now_rfc3339()
            n = next(_ips)
            obj["status"] = {
                "phase": "Running",
                "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                                "lastTransitionTime": start}
                               for t in ("Initialized", "Ready", "ContainersReady",
                                         "PodScheduled")],
                "hostIP": "172.18.0.2", "podIP": "10.244.0.%d" % n,
                "podIPs": [{"ip": "10.244.0.%d" % n}], "startTime": start,
                "containerStatuses": [
                    {"name": c.get("name"), "state": {"running": {"startedAt": start}},
                     "lastState": {}, "ready": True, "restartCount": 0,
                     "image": c.get("image", ""), "imageID": "", "containerID":
                     "containerd://" + ("%064x" % (hash((md.get("name"), c.get("name"))) & (2**256 - 1)))[:64],
                     "started": True} for c in spec.get("containers") or []],
                "qosClass": "BestEffort"}
    elif k == "secrets":
        obj.setdefault("type", "Opaque")
        sd = obj.pop("stringData", None)
        if sd:
            data = obj.setdefault("data", {})
            for key, v in sd.items():
                data[key] = base64.b64encode(v.encode()).decode()
    elif k == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if creating and "clusterIP" not in spec:
            spec["clusterIP"] = "10.96.%d.%d" % divmod(next(_ips), 250)
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif k in ("deployments", "replicasets"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        if k == "deployments":
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": "25%",
                                                           "maxSurge": "25%"}})
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        tmpl = spec.setdefault("template", {})
        tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        default_pod_spec(tmpl.setdefault("spec", {}))
        obj.setdefault("status", {})


def bump_generation(res, old, new):
    """metadata.generation increases when the spec changes (apps kinds)."""
    if res.name not in ("deployments", "replicasets"):
        return
    g = (old or {}).get("metadata", {}).get("generation", 0) if old else 0
    if old is None:
        new["metadata"]["generation"] = 1
    elif old.get("spec") != new.get("spec"):
        new["metadata"]["generation"] = g + 1
    else:
        new["metadata"]["generation"] = g


def deployment_status(obj):
    """What the deployment controller would report once pods are ready."""
    n = obj.get("spec", {}).get("replicas", 1)
    st = {"observedGeneration": obj["metadata"].get("generation", 1)}
    if n:
        st.update({"replicas": n, "updatedReplicas": n, "readyReplicas": n,
                   "availableReplicas": n})
    now = (obj.get("status") or {}).get("conditions") and obj["status"]["conditions"][0].get(
        "lastTransitionTime") or now_rfc3339()
    st["conditions"] = [
        {"type": "Available", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
         "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": now,
         "lastTransitionTime": now, "reason": "NewReplicaSetAvailable",
         "message": 'ReplicaSet "%s-7c5ddbdf54" has successfully progressed.'
                    % obj["metadata"]["name"]}]
    return st


def deployment_controller(store, etype, res, obj):
    """Store hook: after a deployment's spec changes, update its status in a
    second write (a separate watch event, as the real controller does)."""
    if res.name != "deployments" or etype == "DELETED":
        return
    cur = store.get(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
    want = deployment_status(cur)
    if cur.get("status") == want:
        return
    cur["status"] = want
    try:
        store.update(res, cur, check_rv=False)
    except Exception:  # deleted concurrently
        pass


def seed_objects():
    """[(resource name, group, object)] for --seed default."""
    out = []

    def ns(name):
        out.append(("namespaces", "", {"kind": "Namespace", "apiVersion": "v1",
                                       "metadata": {"name": name}}))

    for n in ("default", "kube-system", "kube-public", "web"):
        ns(n)
    labels = {"app": "api"}
    container = {"name": "app", "image": "registry.example/api:1.4.2",
                 "ports": [{"containerPort": 8080, "name": "http"}],
                 "env": [{"name": "MODE", "value": "production"}]}
    out.append(("deployments", "apps", {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "api", "namespace": "web", "labels": dict(labels)},
        "spec": {"replicas": 2, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"containers": [copy.deepcopy(container)]}}}}))
    out.append(("pods", "", {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "api-0", "namespace": "web",
                     "labels": dict(labels, **{"pod-template-hash": "7c5ddbdf54"})},
        "spec": {"containers": [copy.deepcopy(container)]}}))
    out.append(("configmaps", "", {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "settings", "namespace": "web"},
        "data": {"LOG_LEVEL": "info", "FEATURE_X": "on"}}))
    out.append(("secrets", "", {
        "kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db", "namespace": "web"},
        "type": "Opaque", "data": {"username": base64.b64encode(b"api").decode(),
                                   "password": base64.b64encode(b"s3cr3t-pw").decode()}}))
    out.append(("services", "", {
        "kind": "Service", "apiVersion": "v1", "metadata": {"name": "api", "namespace": "web"},
        "spec": {"selector": dict(labels), "ports": [{"name": "http", "port": 80,
                                                       "targetPort": 8080}]}}))
    for n in ("default", "web"):
        out.append(("serviceaccounts", "", {
            "kind": "ServiceAccount", "apiVersion": "v1",
            "metadata": {"name": "default", "namespace": n}}))
    out.append(("pods", "", {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "coredns-5d78c9869d-abcde", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns",
                                 "image": "registry.k8s.io/coredns/coredns:v1.11.1"}]}}))
    return out
