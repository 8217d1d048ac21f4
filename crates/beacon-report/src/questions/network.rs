//! Question 5: network receive and transmit rate per pod in the namespace (or, with
//! `--all-namespaces`, the cluster).

use serde::Serialize;

use super::{Ctx, Keyed, to_series};
use crate::model::{Answer, Chart, Stats, Unit};

pub const QUESTION: &str = "Network receive/transmit per pod in the namespace";

const RX: &str = "container_network_receive_bytes_total";
const TX: &str = "container_network_transmit_bytes_total";

/// A host-network pod reports the node's interfaces; kube-state-metrics tells them apart. The
/// join names the namespace: without it, Prometheus reads every pod of the cluster (2.2 M
/// samples instead of 2,175 for a 3-pod namespace on a 5,000-pod cluster).
fn not_host_network(scope: &str) -> String {
    format!(
        r#" * on (namespace, pod) group_left () max by (namespace, pod) (kube_pod_info{{{scope},host_network="false"}})"#
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct PodNetwork {
    pub pod: String,
    /// Bytes per second.
    pub receive: Stats,
    /// Bytes per second.
    pub transmit: Stats,
}

pub async fn answer(ctx: &Ctx) -> Answer<Vec<PodNetwork>> {
    let mut answer = Answer::new(QUESTION, Vec::new());
    let scope = ctx.pod_scope();
    let join = if ctx.catalogue.has("kube_pod_info") {
        not_host_network(&scope.matcher)
    } else {
        answer.note("kube_pod_info (kube-state-metrics) is absent, so host-network pods are not excluded: their figures are the node's");
        String::new()
    };
    // No container filter: cAdvisor reports a pod's network on its sandbox (pause) container.
    let expr = |metric: &str| {
        format!(
            "sum by ({}) (rate({metric}{{{}}}[{}]){join})",
            scope.by,
            scope.matcher,
            ctx.range.window()
        )
    };
    let rx_q = answer.uses("receive bytes/s per pod", expr(RX));
    let tx_q = answer.uses("transmit bytes/s per pod", expr(TX));
    let (rx, tx) = tokio::join!(ctx.range_by(&rx_q, "pod"), ctx.range_by(&tx_q, "pod"));
    let (rx, tx) = (answer.take(rx), answer.take(tx));
    if rx.is_empty() && tx.is_empty() {
        // A failed query is already named; an empty answer is explained.
        if answer.failed.is_empty() {
            explain_no_pod_network(ctx, &mut answer, &scope.describe).await;
        }
        return answer;
    }
    let mut pods: Vec<&String> = rx.iter().chain(&tx).map(|r| &r.key).collect();
    pods.sort();
    pods.dedup();
    let stats = |rows: &[Keyed], pod: &str| {
        rows.iter()
            .find(|r| r.key == pod)
            .map(|r| r.stats)
            .unwrap_or_default()
    };
    answer.data = pods
        .into_iter()
        .map(|pod| PodNetwork {
            pod: pod.clone(),
            receive: stats(&rx, pod),
            transmit: stats(&tx, pod),
        })
        .collect();
    chart(ctx, &mut answer, &rx, &tx);
    answer
}

/// Why no pod has network figures: on a runtime whose pod sandboxes cAdvisor cannot read
/// (the Docker runtime through cri-dockerd), the only network series are the nodes' root
/// cgroup's (`id="/"`), with no namespace or pod at all; otherwise it is the scope.
async fn explain_no_pod_network(ctx: &Ctx, answer: &mut Answer<Vec<PodNetwork>>, scope: &str) {
    if ctx.catalogue.has(RX) {
        let span = ctx.span_window();
        let per_pod = format!(r#"count(last_over_time({RX}{{pod!=""}}[{span}]))"#);
        let unattributed = format!(r#"count(last_over_time({RX}{{pod=""}}[{span}]))"#);
        let (per_pod, unattributed) =
            tokio::join!(ctx.instant(&per_pod), ctx.instant(&unattributed));
        let count = |r: &crate::Result<Vec<crate::prom_client::Sample>>| {
            r.as_ref()
                .ok()
                .and_then(|v| v.first())
                .map_or(0.0, |s| s.value)
        };
        if per_pod.is_ok() && count(&per_pod) == 0.0 && count(&unattributed) > 0.0 {
            answer.note(format!(
                "per-pod network is not available on this cluster: {RX} has series only without namespace and pod labels (the nodes' own cgroups, e.g. id=\"/\"), so cAdvisor cannot attribute traffic to pods. The Docker runtime (cri-dockerd, minikube's default) is the usual cause: each pod's network belongs to its sandbox container, which cAdvisor cannot read there. A runtime cAdvisor reads, containerd or CRI-O (minikube start --container-runtime=containerd), gives each pod's sandbox series with namespace and pod; node-level traffic is in node-exporter's node_network_receive_bytes_total meanwhile"
            ));
            return;
        }
    }
    // Otherwise the series exist per pod and it is the scope that has none.
    ctx.explain_no_match(answer, RX, scope).await;
}

fn chart(ctx: &Ctx, answer: &mut Answer<Vec<PodNetwork>>, rx: &[Keyed], tx: &[Keyed]) {
    let place = if ctx.all_namespaces {
        "all namespaces".to_owned()
    } else {
        ctx.namespace.clone()
    };
    for (id, title, rows) in [
        ("q5-receive", "receive", rx),
        ("q5-transmit", "transmit", tx),
    ] {
        if !rows.is_empty() {
            answer.charts.push(Chart {
                id: id.into(),
                title: format!("Network {title} per pod in {place}"),
                unit: Unit::BytesPerSecond,
                series: to_series(rows),
            });
        }
    }
}
