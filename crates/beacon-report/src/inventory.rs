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

/// One kind of object: the label naming it and its queries, in the order its rows read them.
struct Kind {
    label: &'static str,
    queries: Vec<(&'static str, String)>,
}

fn pod_kind(ns: &str) -> Kind {
    Kind {
        label: "pod",
        queries: vec![
            ("pods", format!("kube_pod_info{{namespace={ns}}}")),
            (
                "pod phase",
                format!(
                    "max by (namespace, pod, phase) (kube_pod_status_phase{{namespace={ns}}}) == 1"
                ),
            ),
            (
                "ready containers",
                format!(
                    "sum by (pod) (max by (namespace, pod, container) (kube_pod_container_status_ready{{namespace={ns}}}))"
                ),
            ),
            (
                "containers",
                format!(
                    "count by (pod) (group by (namespace, pod, container) (kube_pod_container_info{{namespace={ns}}}))"
                ),
            ),
            (
                "restarts",
                format!(
                    "sum by (pod) (max by (namespace, pod, container) (kube_pod_container_status_restarts_total{{namespace={ns}}}))"
                ),
            ),
            ("pod created", format!("kube_pod_created{{namespace={ns}}}")),
        ],
    }
}

fn pod_rows(k: &[Keyed]) -> Vec<PodRow> {
    let [info, phase, ready, containers, restarts, created] = k else {
        return Vec::new();
    };
    info.names()
        .map(|name| PodRow {
            name: name.clone(),
            ready_containers: ready.value(name),
            containers: containers.value(name),
            phase: phase.label(name, "phase"),
            restarts: restarts.value(name),
            node: info.label(name, "node"),
            ip: info.label(name, "pod_ip"),
            created: created.value(name),
        })
        .collect()
}

fn statefulset_kind(ns: &str) -> Kind {
    Kind {
        label: "statefulset",
        queries: vec![
            (
                "StatefulSet replicas",
                format!("kube_statefulset_replicas{{namespace={ns}}}"),
            ),
            (
                "StatefulSet ready replicas",
                format!("kube_statefulset_status_replicas_ready{{namespace={ns}}}"),
            ),
            (
                "StatefulSet created",
                format!("kube_statefulset_created{{namespace={ns}}}"),
            ),
        ],
    }
}

fn statefulset_rows(k: &[Keyed]) -> Vec<StatefulSetRow> {
    let [replicas, ready, created] = k else {
        return Vec::new();
    };
    replicas
        .names()
        .map(|name| StatefulSetRow {
            name: name.clone(),
            ready: ready.value(name),
            replicas: replicas.value(name),
            created: created.value(name),
        })
        .collect()
}

fn service_kind(ns: &str) -> Kind {
    Kind {
        label: "service",
        queries: vec![
            ("services", format!("kube_service_info{{namespace={ns}}}")),
            (
                "service type",
                format!("kube_service_spec_type{{namespace={ns}}}"),
            ),
            (
                "service created",
                format!("kube_service_created{{namespace={ns}}}"),
            ),
        ],
    }
}

fn service_rows(k: &[Keyed]) -> Vec<ServiceRow> {
    let [info, kind, created] = k else {
        return Vec::new();
    };
    info.names()
        .map(|name| ServiceRow {
            name: name.clone(),
            kind: kind.label(name, "type"),
            cluster_ip: info.label(name, "cluster_ip"),
            external: info
                .label(name, "external_name")
                .or_else(|| info.label(name, "load_balancer_ip")),
            created: created.value(name),
        })
        .collect()
}

fn pvc_kind(ns: &str) -> Kind {
    Kind {
        label: "persistentvolumeclaim",
        queries: vec![
            (
                "PVCs",
                format!("kube_persistentvolumeclaim_info{{namespace={ns}}}"),
            ),
            (
                "PVC phase",
                format!(
                    "max by (namespace, persistentvolumeclaim, phase) (kube_persistentvolumeclaim_status_phase{{namespace={ns}}}) == 1"
                ),
            ),
            (
                "PVC requested size",
                format!(
                    "kube_persistentvolumeclaim_resource_requests_storage_bytes{{namespace={ns}}}"
                ),
            ),
            (
                "PVC access modes",
                format!(
                    "group by (namespace, persistentvolumeclaim, access_mode) (kube_persistentvolumeclaim_access_mode{{namespace={ns}}})"
                ),
            ),
            (
                "PVC created",
                format!("kube_persistentvolumeclaim_created{{namespace={ns}}}"),
            ),
        ],
    }
}

fn pvc_rows(k: &[Keyed]) -> Vec<PvcRow> {
    let [info, phase, size, modes, created] = k else {
        return Vec::new();
    };
    info.names()
        .map(|name| PvcRow {
            name: name.clone(),
            phase: phase.label(name, "phase"),
            volume: info.label(name, "volumename"),
            capacity_bytes: size.value(name),
            access_modes: modes.labels(name, "access_mode"),
            storage_class: info.label(name, "storageclass"),
            created: created.value(name),
        })
        .collect()
}

fn configmap_kind(ns: &str) -> Kind {
    Kind {
        label: "configmap",
        queries: vec![
            (
                "ConfigMaps",
                format!("kube_configmap_info{{namespace={ns}}}"),
            ),
            (
                "ConfigMap created",
                format!("kube_configmap_created{{namespace={ns}}}"),
            ),
        ],
    }
}

fn configmap_rows(k: &[Keyed]) -> Vec<ConfigMapRow> {
    let [info, created] = k else {
        return Vec::new();
    };
    info.names()
        .map(|name| ConfigMapRow {
            name: name.clone(),
            created: created.value(name),
        })
        .collect()
}

pub async fn answer(ctx: &Ctx) -> Answer<Inventory> {
    let mut answer = Answer::new(QUESTION, Inventory::default());
    let ns = ctx.ns();
    let kinds = [
        pod_kind(&ns),
        statefulset_kind(&ns),
        service_kind(&ns),
        pvc_kind(&ns),
        configmap_kind(&ns),
    ];
    // Recorded before anything runs, so the PromQL is shown even when the metrics are absent.
    let mut exprs = Vec::new();
    for kind in &kinds {
        for (what, expr) in &kind.queries {
            exprs.push(answer.uses(*what, expr.clone()));
        }
    }
    if !ctx.catalogue.has("kube_pod_info") && !ctx.catalogue.has("kube_service_info") {
        answer.note(
            ctx.catalogue
                .explain_absent("kube_pod_info", Source::KubeStateMetrics),
        );
        return answer;
    }
    let results = futures_util::future::join_all(exprs.iter().map(|e| ctx.instant(e))).await;
    let mut samples = results
        .into_iter()
        .map(|r| answer.take(r))
        .collect::<Vec<_>>()
        .into_iter();
    let keyed: Vec<Vec<Keyed>> = kinds
        .iter()
        .map(|kind| {
            kind.queries
                .iter()
                .map(|_| Keyed::new(samples.next().unwrap_or_default(), kind.label))
                .collect()
        })
        .collect();
    answer.data = Inventory {
        pods: pod_rows(&keyed[0]),
        statefulsets: statefulset_rows(&keyed[1]),
        services: service_rows(&keyed[2]),
        persistentvolumeclaims: pvc_rows(&keyed[3]),
        configmaps: configmap_rows(&keyed[4]),
    };
    let inv = &answer.data;
    if inv.pods.is_empty() && inv.statefulsets.is_empty() && inv.services.is_empty() {
        answer.note(format!(
            "kube-state-metrics has no objects in namespace {} at the range's end",
            ctx.namespace
        ));
    }
    answer
}
