/*
 * names.c - the built-in resources kubectl knows by a singular name.
 *
 * The table keys on (group, plural) so that a custom resource that happens
 * to be called "deployments" in group example.com is never shown as if it
 * were an apps/v1 Deployment. Versions do not matter for the words kubectl
 * accepts, so they are not part of the key.
 */
#include "kube/names.h"

#define C BL_KRES_CLUSTER
#define Q BL_KRES_QUALIFY

static const bl_kres_t bl_kres_table[] = {
    /* core ("" group) */
    { "", "pods", "pod", 0 },
    { "", "services", "service", 0 },
    { "", "configmaps", "configmap", 0 },
    { "", "secrets", "secret", 0 },
    { "", "serviceaccounts", "serviceaccount", 0 },
    { "", "endpoints", "endpoints", 0 },
    { "", "events", "event", 0 },
    { "", "limitranges", "limitrange", 0 },
    { "", "resourcequotas", "resourcequota", 0 },
    { "", "persistentvolumeclaims", "persistentvolumeclaim", 0 },
    { "", "replicationcontrollers", "replicationcontroller", 0 },
    { "", "podtemplates", "podtemplate", 0 },
    { "", "bindings", "binding", 0 },
    { "", "nodes", "node", C },
    { "", "namespaces", "namespace", C },
    { "", "persistentvolumes", "persistentvolume", C },
    { "", "componentstatuses", "componentstatus", C },
    /* apps, batch, autoscaling, policy */
    { "apps", "deployments", "deployment", 0 },
    { "apps", "statefulsets", "statefulset", 0 },
    { "apps", "daemonsets", "daemonset", 0 },
    { "apps", "replicasets", "replicaset", 0 },
    { "apps", "controllerrevisions", "controllerrevision", 0 },
    { "batch", "jobs", "job", 0 },
    { "batch", "cronjobs", "cronjob", 0 },
    { "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscaler", 0 },
    { "policy", "poddisruptionbudgets", "poddisruptionbudget", 0 },
    /* networking */
    { "networking.k8s.io", "networkpolicies", "networkpolicy", 0 },
    { "networking.k8s.io", "ingresses", "ingress", 0 },
    { "networking.k8s.io", "ingressclasses", "ingressclass", C },
    { "networking.k8s.io", "ipaddresses", "ipaddress", C },
    { "networking.k8s.io", "servicecidrs", "servicecidr", C },
    { "discovery.k8s.io", "endpointslices", "endpointslice", 0 },
    /* RBAC and authn/authz */
    { "rbac.authorization.k8s.io", "roles", "role", 0 },
    { "rbac.authorization.k8s.io", "rolebindings", "rolebinding", 0 },
    { "rbac.authorization.k8s.io", "clusterroles", "clusterrole", C },
    { "rbac.authorization.k8s.io", "clusterrolebindings", "clusterrolebinding", C },
    { "authentication.k8s.io", "tokenreviews", "tokenreview", C },
    { "authentication.k8s.io", "selfsubjectreviews", "selfsubjectreview", C },
    { "authorization.k8s.io", "subjectaccessreviews", "subjectaccessreview", C },
    { "authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectaccessreview", C },
    { "authorization.k8s.io", "selfsubjectrulesreviews", "selfsubjectrulesreview", C },
    { "authorization.k8s.io", "localsubjectaccessreviews", "localsubjectaccessreview", 0 },
    { "certificates.k8s.io", "certificatesigningrequests", "certificatesigningrequest", C },
    /* storage */
    { "storage.k8s.io", "storageclasses", "storageclass", C },
    { "storage.k8s.io", "volumeattachments", "volumeattachment", C },
    { "storage.k8s.io", "csidrivers", "csidriver", C },
    { "storage.k8s.io", "csinodes", "csinode", C },
    { "storage.k8s.io", "csistoragecapacities", "csistoragecapacity", 0 },
    /* API machinery and cluster configuration */
    { "apiextensions.k8s.io", "customresourcedefinitions", "customresourcedefinition", C },
    { "apiregistration.k8s.io", "apiservices", "apiservice", C },
    { "admissionregistration.k8s.io", "mutatingwebhookconfigurations",
      "mutatingwebhookconfiguration", C },
    { "admissionregistration.k8s.io", "validatingwebhookconfigurations",
      "validatingwebhookconfiguration", C },
    { "admissionregistration.k8s.io", "validatingadmissionpolicies",
      "validatingadmissionpolicy", C },
    { "admissionregistration.k8s.io", "validatingadmissionpolicybindings",
      "validatingadmissionpolicybinding", C },
    { "coordination.k8s.io", "leases", "lease", 0 },
    { "node.k8s.io", "runtimeclasses", "runtimeclass", C },
    { "scheduling.k8s.io", "priorityclasses", "priorityclass", C },
    { "flowcontrol.apiserver.k8s.io", "flowschemas", "flowschema", C },
    { "flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations",
      "prioritylevelconfiguration", C },
    /* same plural as a core resource: kubectl's bare "events" means core */
    { "events.k8s.io", "events", "event", Q },
    { "metrics.k8s.io", "pods", "pod", Q },
    { "metrics.k8s.io", "nodes", "node", C | Q },
};

#undef C
#undef Q

const bl_kres_t *bl_kres_find(const char *group, const char *plural)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(bl_kres_table); i++) {
        const bl_kres_t *e = &bl_kres_table[i];
        if (strcmp(e->plural, plural) == 0 && strcmp(e->group, group) == 0)
            return e;
    }
    return NULL;
}

/* Appends s to out[*len..cap-1], keeping a NUL; sets *trunc on overflow. */
static void bl_kres_cat(char *out, size_t cap, size_t *len, const char *s, int *trunc)
{
    size_t n = strlen(s);
    size_t room = cap - 1 - *len;
    if (n > room) {
        n = room;
        *trunc = 1;
    }
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

size_t bl_kres_word(const char *group, const char *plural, int singular,
                    char *out, size_t cap, int *trunc)
{
    size_t len = 0;
    if (cap == 0) {
        *trunc = 1;
        return 0;
    }
    out[0] = '\0';
    const bl_kres_t *e = bl_kres_find(group, plural);
    bl_kres_cat(out, cap, &len, e != NULL && singular ? e->singular : plural, trunc);
    if (group[0] != '\0' && (e == NULL || (e->flags & BL_KRES_QUALIFY))) {
        bl_kres_cat(out, cap, &len, ".", trunc);
        bl_kres_cat(out, cap, &len, group, trunc);
    }
    return len;
}
