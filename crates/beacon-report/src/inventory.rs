//! An inventory like `kubectl get po,sts,svc,pvc,cm`, read from kube-state-metrics series so
//! no cluster credentials are needed. Values are as of the range's end.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{catalogue::Source, model::Answer, prom_client::Sample, questions::Ctx};

pub const QUESTION: &str = "Inventory (kubectl get po,sts,svc,pvc,cm) from kube-state-metrics";

#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    pub pods: Vec<PodRow>,
    pub statefulsets: Vec<StatefulSetRow>,
    pub services: Vec<ServiceRow>,
    pub persistentvolumeclaims: Vec<PvcRow>,
    pub configmaps: Vec<ConfigMapRow>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PodRow {
    pub name: String,
    pub ready_containers: Option<f64>,
    pub containers: Option<f64>,
    pub phase: Option<String>,
    pub restarts: Option<f64>,
    pub node: Option<String>,
    pub ip: Option<String>,
    /// Unix seconds.
    pub created: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatefulSetRow {
    pub name: String,
    pub ready: Option<f64>,
    pub replicas: Option<f64>,
    pub created: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceRow {
    pub name: String,
    pub kind: Option<String>,
    pub cluster_ip: Option<String>,
    pub external: Option<String>,
    pub created: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PvcRow {
    pub name: String,
    pub phase: Option<String>,
    pub volume: Option<String>,
    pub capacity_bytes: Option<f64>,
    pub access_modes: Vec<String>,
    pub storage_class: Option<String>,
    pub created: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigMapRow {
    pub name: String,
    pub created: Option<f64>,
}

/// Samples keyed by the object-name label. Several kube-state-metrics replicas (unsharded)
/// export the same series, differing only in `instance` (and `pod` on series not about a pod):
/// single values take the first, and every count or sum above is taken per object identity
/// (`max by (namespace, pod, container)`, `group by`) before it adds anything up.
struct Keyed(BTreeMap<String, Vec<Sample>>);

impl Keyed {
    fn new(samples: Vec<Sample>, name_label: &str) -> Self {
        let mut map: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for s in samples {
            let name = s.labels.get(name_label).cloned().unwrap_or_default();
            map.entry(name).or_default().push(s);
        }
        Self(map)
    }
    fn value(&self, name: &str) -> Option<f64> {
        self.0.get(name).and_then(|v| v.first()).map(|s| s.value)
    }
    fn label(&self, name: &str, label: &str) -> Option<String> {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .and_then(|s| s.labels.get(label))
            .filter(|v| !v.is_empty())
            .cloned()
    }
    /// The distinct values of `label` over the object's samples, sorted.
    fn labels(&self, name: &str, label: &str) -> Vec<String> {
        let values: std::collections::BTreeSet<String> = self
            .0
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.into_iter().collect()
    }
    fn names(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

pub async fn answer(ctx: &Ctx) -> Answer<Inventory> {
    let mut answer = Answer::new(QUESTION, Inventory::default());
    let ns = ctx.ns();
    let q = |answer: &mut Answer<Inventory>, what: &str, expr: String| answer.uses(what, expr);
    let pod_info = q(
        &mut answer,
        "pods",
        format!("kube_pod_info{{namespace={ns}}}"),
    );
    let pod_phase = q(
        &mut answer,
        "pod phase",
        format!("max by (namespace, pod, phase) (kube_pod_status_phase{{namespace={ns}}}) == 1"),
    );
    let pod_ready = q(
        &mut answer,
        "ready containers",
        format!(
            "sum by (pod) (max by (namespace, pod, container) (kube_pod_container_status_ready{{namespace={ns}}}))"
        ),
    );
    let pod_containers = q(
        &mut answer,
        "containers",
        format!(
            "count by (pod) (group by (namespace, pod, container) (kube_pod_container_info{{namespace={ns}}}))"
        ),
    );
    let pod_restarts = q(
        &mut answer,
        "restarts",
        format!(
            "sum by (pod) (max by (namespace, pod, container) (kube_pod_container_status_restarts_total{{namespace={ns}}}))"
        ),
    );
    let pod_created = q(
        &mut answer,
        "pod created",
        format!("kube_pod_created{{namespace={ns}}}"),
    );
    let sts_replicas = q(
        &mut answer,
        "StatefulSet replicas",
        format!("kube_statefulset_replicas{{namespace={ns}}}"),
    );
    let sts_ready = q(
        &mut answer,
        "StatefulSet ready replicas",
        format!("kube_statefulset_status_replicas_ready{{namespace={ns}}}"),
    );
    let sts_created = q(
        &mut answer,
        "StatefulSet created",
        format!("kube_statefulset_created{{namespace={ns}}}"),
    );
    let svc_info = q(
        &mut answer,
        "services",
        format!("kube_service_info{{namespace={ns}}}"),
    );
    let svc_type = q(
        &mut answer,
        "service type",
        format!("kube_service_spec_type{{namespace={ns}}}"),
    );
    let svc_created = q(
        &mut answer,
        "service created",
        format!("kube_service_created{{namespace={ns}}}"),
    );
    let pvc_info = q(
        &mut answer,
        "PVCs",
        format!("kube_persistentvolumeclaim_info{{namespace={ns}}}"),
    );
    let pvc_phase = q(
        &mut answer,
        "PVC phase",
        format!(
            "max by (namespace, persistentvolumeclaim, phase) (kube_persistentvolumeclaim_status_phase{{namespace={ns}}}) == 1"
        ),
    );
    let pvc_size = q(
        &mut answer,
        "PVC requested size",
        format!("kube_persistentvolumeclaim_resource_requests_storage_bytes{{namespace={ns}}}"),
    );
    let pvc_modes = q(
        &mut answer,
        "PVC access modes",
        format!(
            "group by (namespace, persistentvolumeclaim, access_mode) (kube_persistentvolumeclaim_access_mode{{namespace={ns}}})"
        ),
    );
    let pvc_created = q(
        &mut answer,
        "PVC created",
        format!("kube_persistentvolumeclaim_created{{namespace={ns}}}"),
    );
    let cm_info = q(
        &mut answer,
        "ConfigMaps",
        format!("kube_configmap_info{{namespace={ns}}}"),
    );
    let cm_created = q(
        &mut answer,
        "ConfigMap created",
        format!("kube_configmap_created{{namespace={ns}}}"),
    );

    if !ctx.catalogue.has("kube_pod_info") && !ctx.catalogue.has("kube_service_info") {
        answer.note(
            ctx.catalogue
                .explain_absent("kube_pod_info", Source::KubeStateMetrics),
        );
        return answer;
    }
    let exprs = [
        &pod_info,
        &pod_phase,
        &pod_ready,
        &pod_containers,
        &pod_restarts,
        &pod_created,
        &sts_replicas,
        &sts_ready,
        &sts_created,
        &svc_info,
        &svc_type,
        &svc_created,
        &pvc_info,
        &pvc_phase,
        &pvc_size,
        &pvc_modes,
        &pvc_created,
        &cm_info,
        &cm_created,
    ];
    let results = futures_util::future::join_all(exprs.iter().map(|e| ctx.instant(e))).await;
    let mut it = results.into_iter().map(|r| answer.take(r));
    let mut next = |label: &str| Keyed::new(it.next().unwrap_or_default(), label);
    let (pod_info, pod_phase, pod_ready, pod_containers, pod_restarts, pod_created) = (
        next("pod"),
        next("pod"),
        next("pod"),
        next("pod"),
        next("pod"),
        next("pod"),
    );
    let (sts_replicas, sts_ready, sts_created) = (
        next("statefulset"),
        next("statefulset"),
        next("statefulset"),
    );
    let (svc_info, svc_type, svc_created) = (next("service"), next("service"), next("service"));
    let (pvc_info, pvc_phase, pvc_size, pvc_modes, pvc_created) = (
        next("persistentvolumeclaim"),
        next("persistentvolumeclaim"),
        next("persistentvolumeclaim"),
        next("persistentvolumeclaim"),
        next("persistentvolumeclaim"),
    );
    let (cm_info, cm_created) = (next("configmap"), next("configmap"));

    let inv = &mut answer.data;
    inv.pods = pod_info
        .names()
        .map(|name| PodRow {
            name: name.clone(),
            ready_containers: pod_ready.value(name),
            containers: pod_containers.value(name),
            phase: pod_phase.label(name, "phase"),
            restarts: pod_restarts.value(name),
            node: pod_info.label(name, "node"),
            ip: pod_info.label(name, "pod_ip"),
            created: pod_created.value(name),
        })
        .collect();
    inv.statefulsets = sts_replicas
        .names()
        .map(|name| StatefulSetRow {
            name: name.clone(),
            ready: sts_ready.value(name),
            replicas: sts_replicas.value(name),
            created: sts_created.value(name),
        })
        .collect();
    inv.services = svc_info
        .names()
        .map(|name| ServiceRow {
            name: name.clone(),
            kind: svc_type.label(name, "type"),
            cluster_ip: svc_info.label(name, "cluster_ip"),
            external: svc_info
                .label(name, "external_name")
                .or_else(|| svc_info.label(name, "load_balancer_ip")),
            created: svc_created.value(name),
        })
        .collect();
    inv.persistentvolumeclaims = pvc_info
        .names()
        .map(|name| PvcRow {
            name: name.clone(),
            phase: pvc_phase.label(name, "phase"),
            volume: pvc_info.label(name, "volumename"),
            capacity_bytes: pvc_size.value(name),
            access_modes: pvc_modes.labels(name, "access_mode"),
            storage_class: pvc_info.label(name, "storageclass"),
            created: pvc_created.value(name),
        })
        .collect();
    inv.configmaps = cm_info
        .names()
        .map(|name| ConfigMapRow {
            name: name.clone(),
            created: cm_created.value(name),
        })
        .collect();
    if inv.pods.is_empty() && inv.statefulsets.is_empty() && inv.services.is_empty() {
        answer.note(format!(
            "kube-state-metrics has no objects in namespace {} at the range's end",
            ctx.namespace
        ));
    }
    answer
}
