//! Question 4: how many pods and containers each kubelet runs — from the kubelet's own gauges,
//! their pre-1.19 names, or kube-state-metrics when the kubelet is not scraped.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Ctx, by_label};
use crate::{catalogue::Source, model::Answer, prom_client::Sample};

pub const QUESTION: &str = "Pods and containers managed by each kubelet";

#[derive(Debug, Clone, Default, Serialize)]
pub struct KubeletLoad {
    pub node: String,
    pub pods: Option<f64>,
    pub containers: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Kubelets {
    /// `kubelet` or `kube-state-metrics`: where the numbers come from.
    pub source: Option<String>,
    pub nodes: Vec<KubeletLoad>,
}

/// The kubelet's gauges, newest names first (renamed in Kubernetes 1.19).
const PODS: [&str; 2] = ["kubelet_running_pods", "kubelet_running_pod_count"];
const CONTAINERS: [&str; 2] = [
    "kubelet_running_containers",
    "kubelet_running_container_count",
];

/// kube-state-metrics' view: pods and running containers per `node` of `kube_pod_info`.
/// Each object is reduced to one series by its identity labels before counting, because
/// unsharded replicas export every series once each (differing only in `instance`).
const KSM_PODS: &str = "count by (node) (group by (namespace, pod, node) (kube_pod_info))";
const KSM_CONTAINERS: &str = "count by (node) ((max by (namespace, pod, container) (kube_pod_container_status_running) == 1) * on (namespace, pod) group_left (node) group by (namespace, pod, node) (kube_pod_info))";

/// kube-prometheus-stack labels kubelet targets with `node`; without it the target address
/// (`instance`) names the node.
fn node_of(s: &Sample) -> String {
    s.labels
        .get("node")
        .filter(|n| !n.is_empty())
        .or_else(|| s.labels.get("instance"))
        .cloned()
        .unwrap_or_default()
}

pub async fn answer(ctx: &Ctx) -> Answer<Kubelets> {
    let mut answer = Answer::new(QUESTION, Kubelets::default());
    let pods_metric = ctx.catalogue.first_present(&PODS);
    let containers_metric = ctx.catalogue.first_present(&CONTAINERS);
    if let Some(pods_metric) = pods_metric {
        let pods_q = answer.uses(
            "running pods",
            format!("sum by (node, instance) ({pods_metric})"),
        );
        let containers_q = containers_metric.map(|m| {
            // The new gauge counts every state; only running ones answer the question.
            let filter = if m == CONTAINERS[0] {
                r#"{container_state="running"}"#
            } else {
                ""
            };
            answer.uses(
                "running containers",
                format!("sum by (node, instance) ({m}{filter})"),
            )
        });
        let (pods, containers) = tokio::join!(ctx.instant(&pods_q), async {
            match &containers_q {
                Some(q) => Some(ctx.instant(q).await),
                None => None,
            }
        });
        let pods = answer.take(pods);
        let containers = containers.map(|c| answer.take(c)).unwrap_or_default();
        if containers_metric.is_none() {
            answer.note(ctx.catalogue.explain_absent(CONTAINERS[0], Source::Kubelet));
        }
        let nodes: BTreeSet<String> = pods.iter().chain(&containers).map(node_of).collect();
        answer.data.source = Some("kubelet".into());
        answer.data.nodes = nodes
            .into_iter()
            .map(|node| KubeletLoad {
                pods: pods.iter().find(|s| node_of(s) == node).map(|s| s.value),
                containers: containers
                    .iter()
                    .find(|s| node_of(s) == node)
                    .map(|s| s.value),
                node,
            })
            .collect();
        return answer;
    }

    answer.note(ctx.catalogue.explain_absent(PODS[0], Source::Kubelet));
    if !ctx.catalogue.has("kube_pod_info") {
        answer.note(
            ctx.catalogue
                .explain_absent("kube_pod_info", Source::KubeStateMetrics),
        );
        return answer;
    }
    answer.note(
        "falling back to kube-state-metrics: pods scheduled per node and their running containers",
    );
    let pods_q = answer.uses("pods per node (kube-state-metrics)", KSM_PODS);
    let containers_q = answer.uses(
        "running containers per node (kube-state-metrics)",
        KSM_CONTAINERS,
    );
    let (pods, containers) = tokio::join!(ctx.instant(&pods_q), ctx.instant(&containers_q));
    let pods = by_label(&answer.take(pods), "node");
    let containers = by_label(&answer.take(containers), "node");
    answer.data.source = Some("kube-state-metrics".into());
    answer.data.nodes = pods
        .keys()
        .chain(containers.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|node| KubeletLoad {
            node: node.clone(),
            pods: pods.get(node).copied(),
            containers: containers.get(node).copied(),
        })
        .collect();
    answer
}
