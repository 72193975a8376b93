#!/usr/bin/env python3
"""Writes the two Kubernetes List bodies the throughput benchmark serves.

  configmaps.json  ~2 KB   GET /api/v1/namespaces/bench/configmaps?limit=10
  pods.json        ~200 KB GET /api/v1/namespaces/bench/pods

The objects are shaped like what kube-apiserver 1.2x returns (metadata with
uid, resourceVersion, managedFields; a pod spec/status as a Deployment
creates it), generated deterministically so that runs are comparable.
Usage: bodies.py OUTDIR
"""
import json
import os
import sys
import uuid

NS = "bench"
RV0 = 48213977


def uid(kind, i):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"byline-bench/{kind}/{i}"))


def ts(i):
    return f"2026-05-{1 + i % 28:02d}T{i % 24:02d}:{(7 * i) % 60:02d}:{(13 * i) % 60:02d}Z"


def configmap(i):
    return {
        "metadata": {
            "name": f"app-config-{i}",
            "namespace": NS,
            "uid": uid("cm", i),
            "resourceVersion": str(RV0 + i),
            "creationTimestamp": ts(i),
        },
        "data": {"LOG_LEVEL": "info"},
    }


def configmap_list(n=10):
    return {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {
            "resourceVersion": str(RV0 + 1000),
            "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTQ5NzcsInN0YXJ0IjoiYXBwLWNvbmZpZy05XHUwMDAwIn0",
            "remainingItemCount": 31,
        },
        "items": [configmap(i) for i in range(n)],
    }


def pod(i):
    app = f"api-{i % 7}"
    rs = f"{app}-7f9c{i % 7:02d}d5b"
    name = f"{rs}-{uid('suffix', i)[:5]}"
    node = f"ip-10-0-{i % 5}-{17 + i % 11}.eu-west-1.compute.internal"
    ip = f"10.0.{i % 5}.{20 + i}"
    start = ts(i)
    fields = {
        "f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                       "f:ownerReferences": {".": {}, f"k:{{\"uid\":\"{uid('rs', i % 7)}\"}}": {}}},
        "f:spec": {"f:containers": {f"k:{{\"name\":\"{app}\"}}": {
            ".": {}, "f:env": {".": {}, "k:{\"name\":\"LOG_LEVEL\"}": {".": {}, "f:name": {}, "f:value": {}}},
            "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
            "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
                ".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}},
            "f:readinessProbe": {".": {}, "f:httpGet": {".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}}},
            "f:resources": {".": {}, "f:limits": {".": {}, "f:memory": {}}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
            "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
            "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {},
            "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}},
    }
    status_fields = {"f:status": {"f:conditions": {
        f"k:{{\"type\":\"{t}\"}}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}
        for t in ("ContainersReady", "Initialized", "PodScheduled", "Ready")},
        "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {".": {}, f"k:{{\"ip\":\"{ip}\"}}": {".": {}, "f:ip": {}}},
        "f:startTime": {}}}
    return {
        "metadata": {
            "name": name,
            "generateName": f"{rs}-",
            "namespace": NS,
            "uid": uid("pod", i),
            "resourceVersion": str(RV0 + 2000 + i),
            "creationTimestamp": start,
            "labels": {"app": app, "pod-template-hash": rs.rsplit("-", 1)[1]},
            "annotations": {"kubectl.kubernetes.io/restartedAt": start},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid("rs", i % 7),
                                 "controller": True, "blockOwnerDeletion": True}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": start,
                 "fieldsType": "FieldsV1", "fieldsV1": fields},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": start,
                 "fieldsType": "FieldsV1", "fieldsV1": status_fields, "subresource": "status"},
            ],
        },
        "spec": {
            "volumes": [{"name": f"kube-api-access-{uid('vol', i)[:5]}", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ], "defaultMode": 420}}],
            "containers": [{
                "name": app,
                "image": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{app}:v1.{i % 9}.{i % 4}",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}],
                "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
                "volumeMounts": [{"name": f"kube-api-access-{uid('vol', i)[:5]}", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": node,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": start}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "hostIP": f"10.0.{i % 5}.{17 + i % 11}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": start,
            "containerStatuses": [{
                "name": app,
                "state": {"running": {"startedAt": start}},
                "lastState": {},
                "ready": True,
                "restartCount": i % 3,
                "image": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{app}:v1.{i % 9}.{i % 4}",
                "imageID": f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{app}@sha256:{uuid.uuid5(uuid.NAMESPACE_URL, str(i)).hex * 2}",
                "containerID": f"containerd://{uuid.uuid5(uuid.NAMESPACE_DNS, str(i)).hex * 2}",
                "started": True,
            }],
            "qosClass": "Burstable",
        },
    }


def pod_list(target):
    items = []
    doc = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(RV0 + 5000)}, "items": items}
    while len(json.dumps(doc, separators=(",", ":"))) < target:
        items.append(pod(len(items)))
    return doc


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bodies.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, doc in (("configmaps.json", configmap_list()), ("pods.json", pod_list(200 * 1024))):
        data = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{name} {len(data)} {len(doc['items'])}")


if __name__ == "__main__":
    main()
