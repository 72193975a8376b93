"""meta.k8s.io/v1 Table rendering with the server's column definitions
(pkg/printers/internalversion) for the served kinds."""

from kutil import age

NAME_DESC = ("Name must be unique within a namespace. Is required when creating resources, "
             "although some resources may allow a client to request the generation of an "
             "appropriate name automatically. Name is primarily intended for creation "
             "idempotence and configuration definition. Cannot be updated. More info: "
             "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
AGE_DESC = ("CreationTimestamp is a timestamp representing the server time when this object "
            "was created. It is not guaranteed to be set in happens-before order across "
            "separate operations. Clients may not set this value. It is represented in RFC3339 "
            "form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More "
            "info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
            "api-conventions.md#metadata")


def col(name, typ="string", desc="", priority=0, fmt=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME = col("Name", fmt="name", desc=NAME_DESC)
AGE = col("Age", desc=AGE_DESC)


def _none(v):
    return v if v else "<none>"


def _selector(sel):
    if not sel:
        return "<none>"
    return ",".join("%s=%s" % kv for kv in sorted(sel.items()))


def _pod_row(o):
    st = o.get("status") or {}
    spec = o.get("spec") or {}
    cs = st.get("containerStatuses") or []
    ready = sum(1 for c in cs if c.get("ready"))
    total = len(spec.get("containers") or [])
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    reason = st.get("reason") or st.get("phase") or "Unknown"
    if (o.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    gates = spec.get("readinessGates") or []
    return [o["metadata"]["name"], "%d/%d" % (ready, total), reason, str(restarts), age(o),
            _none(st.get("podIP")), _none(spec.get("nodeName")),
            _none(st.get("nominatedNodeName")), "<none>" if not gates else "%d/%d" % (0, len(gates))]


POD_COLS = [NAME,
            col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
            col("Status", desc="The aggregate status of the containers in this pod."),
            col("Restarts", desc="The number of times the containers in this pod have been "
                "restarted and when the last container in this pod has restarted."),
            AGE,
            col("IP", desc="IP address allocated to the pod. Routable at least within the "
                "cluster. Empty if not yet allocated.", priority=1),
            col("Node", desc="NodeName indicates in which node this pod is scheduled.",
                priority=1),
            col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts "
                "other pods on the node, but it cannot be scheduled right away as preemption "
                "victims receive their graceful termination periods.", priority=1),
            col("Readiness Gates", desc="If specified, all readiness gates will be evaluated "
                "for pod readiness.", priority=1)]


def _deploy_row(o):
    st = o.get("status") or {}
    spec = o.get("spec") or {}
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    return [o["metadata"]["name"], "%d/%d" % (st.get("readyReplicas", 0), spec.get("replicas", 1)),
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age(o),
            ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs),
            _selector(sel)]


DEPLOY_COLS = [NAME,
               col("Ready", desc="Number of the pod with ready state"),
               col("Up-to-date", "integer", "Total number of non-terminated pods targeted by "
                   "this deployment that have the desired template spec."),
               col("Available", "integer", "Total number of available pods (ready for at least "
                   "minReadySeconds) targeted by this deployment."),
               AGE,
               col("Containers", desc="Names of each container in the template.", priority=1),
               col("Images", desc="Images referenced by each container in the template.",
                   priority=1),
               col("Selector", desc="Label selector for pods. Existing ReplicaSets whose pods "
                   "are selected by this will be the ones affected by this deployment.",
                   priority=1)]


def _rs_row(o):
    st = o.get("status") or {}
    spec = o.get("spec") or {}
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [o["metadata"]["name"], spec.get("replicas", 1), st.get("replicas", 0),
            st.get("readyReplicas", 0), age(o), ",".join(c.get("name", "") for c in cs),
            ",".join(c.get("image", "") for c in cs),
            _selector((spec.get("selector") or {}).get("matchLabels"))]


RS_COLS = [NAME, col("Desired", "integer", "Replicas is the number of desired replicas."),
           col("Current", "integer", "Replicas is the most recently observed number of "
               "replicas."),
           col("Ready", "integer", "The number of ready replicas for this replica set."), AGE,
           col("Containers", desc="Names of each container in the template.", priority=1),
           col("Images", desc="Images referenced by each container in the template.",
               priority=1),
           col("Selector", desc="Selector is a label query over pods that should match the "
               "replica count.", priority=1)]


def _svc_row(o):
    spec = o.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        s = "%s/%s" % (p.get("port"), p.get("protocol", "TCP"))
        if p.get("nodePort"):
            s = "%s:%s/%s" % (p.get("port"), p.get("nodePort"), p.get("protocol", "TCP"))
        ports.append(s)
    ext = ",".join(spec.get("externalIPs") or []) or "<none>"
    return [o["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"),
            ext, ",".join(ports) or "<none>", age(o), _selector(spec.get("selector"))]


SVC_COLS = [NAME, col("Type", desc="type determines how the Service is exposed."),
            col("Cluster-IP", desc="clusterIP is the IP address of the service."),
            col("External-IP", desc="externalIPs is a list of IP addresses for which nodes in "
                "the cluster will also accept traffic for this service."),
            col("Port(s)", desc="The list of ports that are exposed by this service."), AGE,
            col("Selector", desc="Route service traffic to pods with label keys and values "
                "matching this selector.", priority=1)]


def _ns_row(o):
    return [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"), age(o)]


NS_COLS = [NAME, col("Status", desc="The status of the namespace"), AGE]


def _cm_row(o):
    return [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(o)]


CM_COLS = [NAME, col("Data", "integer", "Data contains the configuration data."), AGE]


def _secret_row(o):
    return [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}), age(o)]


SECRET_COLS = [NAME, col("Type", desc="The type of the secret"),
               col("Data", "integer", "The number of data entries in the secret"), AGE]


def _sa_row(o):
    return [o["metadata"]["name"], len(o.get("secrets") or []), age(o)]


SA_COLS = [NAME, col("Secrets", "integer", "Secrets is a list of the secrets in the same "
                     "namespace that pods running using this ServiceAccount are allowed to use."),
           AGE]


def _event_row(o):
    inv = o.get("involvedObject") or {}
    last = o.get("lastTimestamp") or o.get("eventTime")
    src = o.get("source") or {}
    return [_ts_age(last), o.get("type", ""), o.get("reason", ""),
            "%s/%s" % ((inv.get("kind") or "").lower(), inv.get("name", "")),
            inv.get("fieldPath", ""), src.get("component", ""), o.get("message", ""),
            _ts_age(o.get("firstTimestamp")), o.get("count", 1), o["metadata"]["name"]]


def _ts_age(ts):
    return age({"metadata": {"creationTimestamp": ts}}) if ts else "<unknown>"


EVENT_COLS = [col("Last Seen", desc="Time of the most recent occurrence of this event."),
              col("Type", desc="Type of this event (Normal, Warning)"),
              col("Reason", desc="This should be a short, machine understandable string that "
                  "gives the reason for the transition into the object's current status."),
              col("Object", desc="The object that this event is about."),
              col("Subobject", desc="The subobject that this event is about.", priority=1),
              col("Source", desc="The component reporting this event.", priority=1),
              col("Message", desc="A human-readable description of the status of this "
                  "operation."),
              col("First Seen", desc="The time at which the event was first recorded.",
                  priority=1),
              col("Count", "integer", "The number of times this event has occurred.",
                  priority=1),
              col("Name", fmt="name", desc=NAME_DESC, priority=1)]


def _hpa_row(o):
    spec = o.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [o["metadata"]["name"], "%s/%s" % (ref.get("kind", ""), ref.get("name", "")),
            "<unknown>", spec.get("minReplicas", 1), spec.get("maxReplicas", 0),
            (o.get("status") or {}).get("currentReplicas", 0), age(o)]


HPA_COLS = [NAME, col("Reference"), col("Targets"), col("MinPods", "integer"),
            col("MaxPods", "integer"), col("Replicas", "integer"), AGE]

DEFAULT_COLS = [NAME, col("Created At", "date", "CreationTimestamp is a timestamp "
                          "representing the server time when this object was created.")]

TABLES = {"pods": (POD_COLS, _pod_row), "deployments": (DEPLOY_COLS, _deploy_row),
          "replicasets": (RS_COLS, _rs_row), "services": (SVC_COLS, _svc_row),
          "namespaces": (NS_COLS, _ns_row), "configmaps": (CM_COLS, _cm_row),
          "secrets": (SECRET_COLS, _secret_row), "events": (EVENT_COLS, _event_row),
          "serviceaccounts": (SA_COLS, _sa_row), "horizontalpodautoscalers": (HPA_COLS, _hpa_row)}


def partial(o):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata", {})}


def table(res, objs, list_meta, include_object="Metadata", headers=True):
    cols, rowfn = TABLES.get(res.name, (DEFAULT_COLS, lambda o: [
        o["metadata"]["name"], o["metadata"].get("creationTimestamp")]))
    rows = []
    for o in objs:
        r = {"cells": rowfn(o)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = partial(o)
        rows.append(r)
    t = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta}
    if headers:
        t["columnDefinitions"] = cols
    t["rows"] = rows
    return t
