//! Question 5: network receive and transmit rate per pod in the namespace.

use serde::Serialize;

use super::{Ctx, Keyed, to_series};
use crate::model::{Answer, Chart, Stats, Unit};

pub const QUESTION: &str = "Network receive/transmit per pod in the namespace";

const RX: &str = "container_network_receive_bytes_total";
const TX: &str = "container_network_transmit_bytes_total";
/// A host-network pod reports the node's interfaces; kube-state-metrics tells them apart.
const NOT_HOST_NETWORK: &str = r#" * on (namespace, pod) group_left () max by (namespace, pod) (kube_pod_info{host_network="false"})"#;

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
    let join = if ctx.catalogue.has("kube_pod_info") {
        NOT_HOST_NETWORK
    } else {
        answer.note("kube_pod_info (kube-state-metrics) is absent, so host-network pods are not excluded: their figures are the node's");
        ""
    };
    // No container filter: cAdvisor reports a pod's network on its sandbox (pause) container.
    let expr = |metric: &str| {
        format!(
            "sum by (pod) (rate({metric}{{namespace={}}}[{}]){join})",
            ctx.ns(),
            ctx.range.window()
        )
    };
    let rx_q = answer.uses("receive bytes/s per pod", expr(RX));
    let tx_q = answer.uses("transmit bytes/s per pod", expr(TX));
    let (rx, tx) = tokio::join!(ctx.range_by(&rx_q, "pod"), ctx.range_by(&tx_q, "pod"));
    let (rx, tx) = (answer.take(rx), answer.take(tx));
    if rx.is_empty() && tx.is_empty() {
        let scope = format!("namespace {}", ctx.namespace);
        // Network series never name a container (they belong to the pod's sandbox on every
        // runtime), so their labels say nothing about the runtime: only about the scope.
        ctx.explain_no_match(&mut answer, RX, &scope).await;
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
    for (id, title, rows) in [
        ("q5-receive", "receive", &rx),
        ("q5-transmit", "transmit", &tx),
    ] {
        if !rows.is_empty() {
            answer.charts.push(Chart {
                id: id.into(),
                title: format!("Network {title} per pod in {}", ctx.namespace),
                unit: Unit::BytesPerSecond,
                series: to_series(rows),
            });
        }
    }
    answer
}
