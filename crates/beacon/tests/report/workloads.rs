//! What the fixture cluster's pods belong to and what they request, as kube-state-metrics
//! exports it (`kube_pod_owner`, `kube_replicaset_owner`, `kube_pod_container_resource_*`),
//! added to the fixture's series. The expected answers are computed here from these tables.

use crate::{
    fixture::{Cluster, MIB, Pod, ksm_labels},
    stack::{OpenMetrics, grid},
};

/// A pod's owner as `kube_pod_owner` names it, and the Deployment above a ReplicaSet.
pub struct Owner {
    pub kind: &'static str,
    pub name: String,
    pub deployment: Option<String>,
}

/// The realistic cluster's owners, by the pod names Kubernetes gives them: `web-7d9f8-abcde`
/// is ReplicaSet `web-7d9f8` of Deployment `web`; DaemonSet and Job pods end in one suffix.
pub fn owner(pod: &Pod) -> Owner {
    let name = pod.name.as_str();
    let parts: Vec<&str> = name.rsplitn(2, '-').collect();
    let base = parts.get(1).copied().unwrap_or(name).to_owned();
    let (kind, deployment) = match name {
        n if n.starts_with("beacon-") => ("StatefulSet", None),
        n if n.starts_with("web-") || n.starts_with("worker-") => (
            "ReplicaSet",
            Some(base.rsplit_once('-').unwrap().0.to_owned()),
        ),
        n if n.starts_with("node-exporter-") || n.starts_with("hostnet-agent-") => {
            ("DaemonSet", None)
        }
        _ => ("Job", None),
    };
    let name = if kind == "StatefulSet" {
        "beacon".to_owned()
    } else {
        base
    };
    Owner {
        kind,
        name,
        deployment,
    }
}

/// Per container: (cpu request, cpu limit, memory request, memory limit); `None` for a
/// container that sets none (the cron job: BestEffort).
pub fn resources(pod: &Pod, container: &str) -> Option<(f64, f64, f64, f64)> {
    match (pod.name.as_str(), container) {
        (n, _) if n.starts_with("beacon-") => Some((0.3, 1.0, 100.0 * MIB, 256.0 * MIB)),
        (_, "app") => Some((2.0, 4.0, 256.0 * MIB, 512.0 * MIB)),
        (_, "istio-proxy") => Some((0.1, 2.0, 64.0 * MIB, 128.0 * MIB)),
        (_, "job") => None,
        _ => Some((0.5, 1.0, 64.0 * MIB, 128.0 * MIB)),
    }
}

/// The pod's requests and limits summed over its containers, as question 1 shows them.
pub fn pod_resources(pod: &Pod) -> Option<(f64, f64, f64, f64)> {
    let each: Vec<_> = pod
        .containers
        .iter()
        .filter_map(|c| resources(pod, &c.name))
        .collect();
    (!each.is_empty()).then(|| {
        each.iter().fold((0.0, 0.0, 0.0, 0.0), |a, r| {
            (a.0 + r.0, a.1 + r.1, a.2 + r.2, a.3 + r.3)
        })
    })
}

/// Adds the owner and resource series, from every kube-state-metrics replica, plus an old,
/// scaled-down ReplicaSet of `web` and a Deployment `web` in another namespace whose
/// ReplicaSet has the same name (a join without the namespace would take its pods).
pub fn add(cluster: &Cluster, om: &mut OpenMetrics) {
    let times = grid(cluster.t0, cluster.end, crate::fixture::STEP);
    let series = |om: &mut OpenMetrics, metric: &str, l: Vec<(String, String)>, v: f64| {
        let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        om.series(metric, &pairs, &times, |_| v);
    };
    for target in cluster.ksm_targets() {
        for pod in &cluster.pods {
            let o = owner(pod);
            let object = [
                ("namespace", pod.namespace.as_str()),
                ("pod", pod.name.as_str()),
                ("owner_kind", o.kind),
                ("owner_name", o.name.as_str()),
                ("owner_is_controller", "true"),
            ];
            series(om, "kube_pod_owner", ksm_labels(&target, &object), 1.0);
            for c in &pod.containers {
                let Some((cpu_req, cpu_lim, mem_req, mem_lim)) = resources(pod, &c.name) else {
                    continue;
                };
                let node = cluster.nodes[pod.node].name.as_str();
                for (metric, resource, unit, value) in [
                    (
                        "kube_pod_container_resource_requests",
                        "cpu",
                        "core",
                        cpu_req,
                    ),
                    ("kube_pod_container_resource_limits", "cpu", "core", cpu_lim),
                    (
                        "kube_pod_container_resource_requests",
                        "memory",
                        "byte",
                        mem_req,
                    ),
                    (
                        "kube_pod_container_resource_limits",
                        "memory",
                        "byte",
                        mem_lim,
                    ),
                ] {
                    let object = [
                        ("namespace", pod.namespace.as_str()),
                        ("pod", pod.name.as_str()),
                        ("container", c.name.as_str()),
                        ("node", node),
                        ("resource", resource),
                        ("unit", unit),
                    ];
                    series(om, metric, ksm_labels(&target, &object), value);
                }
            }
            if let Some(deployment) = &o.deployment {
                let object = [
                    ("namespace", pod.namespace.as_str()),
                    ("replicaset", o.name.as_str()),
                    ("owner_kind", "Deployment"),
                    ("owner_name", deployment.as_str()),
                    ("owner_is_controller", "true"),
                ];
                series(
                    om,
                    "kube_replicaset_owner",
                    ksm_labels(&target, &object),
                    1.0,
                );
            }
        }
        for (ns, rs) in [("default", "web-6c5d4"), ("kube-system", "worker-5c4b7")] {
            let deployment = rs.rsplit_once('-').unwrap().0;
            let object = [
                ("namespace", ns),
                ("replicaset", rs),
                ("owner_kind", "Deployment"),
                ("owner_name", deployment),
                ("owner_is_controller", "true"),
            ];
            series(
                om,
                "kube_replicaset_owner",
                ksm_labels(&target, &object),
                1.0,
            );
        }
    }
}
