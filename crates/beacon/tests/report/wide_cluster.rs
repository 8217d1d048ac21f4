//! Generated wide clusters for `beacon report` at scale: hundreds of nodes and thousands of
//! pods of Deployments, StatefulSets and DaemonSets, every value a seeded function of the
//! pod's or node's index (no randomness between runs), exported through the same code as the
//! hand-made fixture (`fixture.rs`). The expected answers (rankings, counts, totals)
//! are computed here from the model, independently of beacon.
//! Declared beside `fixture` and `stack`:
//! `mod wide_cluster;` in report/main.rs

use std::path::Path;

use crate::fixture::{
    Cluster, Container, GIB, MIB, Node, PAUSE_CPU, Piecewise, Pod, PodOwner, Resources, WINDOW,
    Width, Workload, WorkloadKind,
};
use crate::stack::OpenMetrics;

/// The one namespace holding `Width::big_namespace_pods` pods.
pub const BIG_NAMESPACE: &str = "shop";
/// Where the DaemonSets run (one pod of each per node).
pub const SYSTEM_NAMESPACE: &str = "kube-system";
/// The big namespace's first workload: a Deployment, for `--workload deployment/api`.
pub const API: &str = "api";
/// The big namespace's first StatefulSet.
pub const POSTGRES: &str = "postgres";

const DAEMONSETS: [&str; 2] = ["kube-proxy", "fluent-bit"];
const DEPLOYMENTS: [&str; 12] = [
    API, "web", "worker", "cache", "search", "ingest", "billing", "auth", "notify", "render",
    "export", "gateway",
];
const STATEFULSETS: [&str; 5] = [POSTGRES, "redis", "kafka", "zookeeper", "elasticsearch"];
/// The characters Kubernetes uses in generated names.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Width {
    /// The size the test suite uses: 1,000 pods on 50 eight-core nodes, 30 minutes at 30 s.
    pub fn suite() -> Self {
        Self {
            nodes: 50,
            cores_per_node: 8,
            pods: 1000,
            namespaces: 20,
            big_namespace_pods: 300,
            range: 1800.0,
            step: 30.0,
            recording_rules: false,
        }
    }

    /// The large cluster: 5,000 pods on 200 sixteen-core nodes in 50 namespaces, one
    /// of 1,500 pods; 1 h at 30 s.
    pub fn large() -> Self {
        Self {
            nodes: 200,
            cores_per_node: 16,
            pods: 5000,
            namespaces: 50,
            big_namespace_pods: 1500,
            range: 3600.0,
            step: 30.0,
            recording_rules: false,
        }
    }
}

/// splitmix64: a well-mixed 64-bit value for each input.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value in [0, 1) for (`what`, `i`).
fn unit(what: u64, i: usize) -> f64 {
    (mix(mix(what) ^ i as u64) >> 11) as f64 / (1u64 << 53) as f64
}

/// `len` characters of a generated name for (`what`, `i`).
fn suffix(what: u64, i: usize, len: usize) -> String {
    let mut h = mix(mix(what ^ 0x5eed) ^ i as u64);
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

struct Builder {
    width: Width,
    pods: Vec<Pod>,
    workloads: Vec<Workload>,
}

impl Builder {
    /// Adds a workload and its pods; `node` places pod `ordinal`.
    fn workload(&mut self, kind: WorkloadKind, ns: &str, name: String, replicas: usize) {
        let w = self.workloads.len();
        let replicaset = (kind == WorkloadKind::Deployment)
            .then(|| format!("{name}-{}", suffix(1, w, 9 + w % 2)));
        let sidecar = w % 3 == 2;
        let uw = unit(2, w);
        let request = Resources {
            cpu: (5.0 + 50.0 * uw).round() / 100.0,
            memory: 64.0 * MIB * (1.0 + (8.0 * uw).floor()),
        };
        let limited = w % 4 != 3;
        for ordinal in 0..replicas {
            let g = self.pods.len();
            let (pod_name, node) = match kind {
                WorkloadKind::Deployment => (
                    format!("{}-{}", replicaset.as_deref().unwrap(), suffix(3, g, 5)),
                    self.placement(g),
                ),
                WorkloadKind::StatefulSet => (format!("{name}-{ordinal}"), self.placement(g)),
                WorkloadKind::DaemonSet => (format!("{name}-{}", suffix(3, g, 5)), ordinal),
            };
            // A heavy tail, as real pods have; the index term keeps every pod's CPU distinct.
            let cpu = 0.002 + unit(4, g).powi(3) + 1e-6 * g as f64;
            let mut containers = vec![Container {
                name: name.clone(),
                image: format!("registry.example/{ns}/{name}:1.{}", w % 7),
                cpu: Piecewise::flat(if sidecar { cpu * 0.9 } else { cpu }),
                request: Some(request),
                limit: limited.then_some(Resources {
                    cpu: 2.0 * request.cpu,
                    memory: 2.0 * request.memory,
                }),
            }];
            if sidecar {
                containers.push(Container {
                    name: "istio-proxy".into(),
                    image: "docker.io/istio/proxyv2:1.22.3".into(),
                    cpu: Piecewise::flat(cpu * 0.1),
                    request: Some(Resources {
                        cpu: 0.01,
                        memory: 64.0 * MIB,
                    }),
                    limit: Some(Resources {
                        cpu: 0.5,
                        memory: 256.0 * MIB,
                    }),
                });
            }
            let rx = 1000.0 + 5e6 * unit(6, g).powi(4) + g as f64;
            self.pods.push(Pod {
                name: pod_name,
                namespace: ns.into(),
                node,
                containers,
                memory: Piecewise::flat(16.0 * MIB + 1.5 * GIB * unit(5, g).powi(2)),
                rx,
                tx: 0.6 * rx,
                host_network: name == "kube-proxy",
                restarts: if mix(g as u64).is_multiple_of(20) {
                    1 + (g % 3) as u32
                } else {
                    0
                },
                labels: vec![("app".into(), name.clone())],
                owner: Some(PodOwner { workload: w }),
            });
        }
        self.workloads.push(Workload {
            kind,
            namespace: ns.into(),
            name,
            replicas,
            replicaset,
        });
    }

    /// Scheduling: a seeded node for each pod, so nodes fill unevenly.
    fn placement(&self, g: usize) -> usize {
        (mix(0x90de ^ g as u64) % self.width.nodes as u64) as usize
    }

    /// Deployments with a StatefulSet every fifth workload until `n` pods are placed.
    fn namespace(&mut self, ns: &str, n: usize) {
        let mut left = n;
        let mut k = 0;
        while left > 0 {
            let h = mix(0xa11 ^ (k as u64) ^ mix(ns.len() as u64 + left as u64));
            let (kind, list): (_, &[&str]) = if k % 5 == 1 {
                (WorkloadKind::StatefulSet, &STATEFULSETS)
            } else {
                (WorkloadKind::Deployment, &DEPLOYMENTS)
            };
            let i = if kind == WorkloadKind::StatefulSet {
                k / 5
            } else {
                k - (k + 3) / 5
            };
            let name = match i / list.len() {
                0 => list[i % list.len()].to_owned(),
                round => format!("{}-{round}", list[i % list.len()]),
            };
            let replicas = match kind {
                WorkloadKind::StatefulSet => 1 + (h % 5) as usize,
                _ => 1 + (h % 40) as usize,
            }
            .min(left);
            self.workload(kind, ns, name, replicas);
            left -= replicas;
            k += 1;
        }
    }
}

impl Cluster {
    /// A generated cluster of `width`'s size whose range ends on a sample boundary 30 s
    /// before `now`: `kube-system` runs two DaemonSets (one pod per node; kube-proxy on the
    /// host network), [`BIG_NAMESPACE`] holds `big_namespace_pods` pods (its first workloads
    /// are the Deployment [`API`] and the StatefulSet [`POSTGRES`]), and the remaining pods
    /// are spread over `team-NN` namespaces. Each node's CPU and memory are its pods' plus a
    /// fixed system share.
    pub fn wide(now: f64, width: Width) -> Self {
        let step = width.step;
        let end = aligned_end(now, width.range + WINDOW + step, step);
        let start = end - width.range;
        let mut b = Builder {
            width,
            pods: Vec::new(),
            workloads: Vec::new(),
        };
        for ds in DAEMONSETS {
            b.workload(
                WorkloadKind::DaemonSet,
                SYSTEM_NAMESPACE,
                ds.into(),
                width.nodes,
            );
        }
        b.namespace(BIG_NAMESPACE, width.big_namespace_pods);
        let teams = width.namespaces.saturating_sub(2).max(1);
        let rest = width.pods.saturating_sub(b.pods.len());
        for t in 0..teams {
            let n = rest / teams + usize::from(t < rest % teams);
            b.namespace(&format!("team-{:02}", t + 1), n);
        }
        let nodes = (0..width.nodes).map(|i| node(i, width, &b.pods)).collect();
        Self {
            t0: start - WINDOW - step,
            start,
            end,
            switch: start,
            pods: b.pods,
            nodes,
            docker_runtime: false,
            ksm_replicas: 2,
            kubelet_metrics: true,
            step,
            wide: Some(width),
            workloads: b.workloads,
        }
    }

    /// Streams the whole exposition (the recorded series too, if the width asks for them) to
    /// `path`, through per-family spill files beside it. Returns (series, samples).
    pub fn write_openmetrics(&self, path: &Path) -> (usize, usize) {
        let spill = path.with_extension("families");
        let mut om = OpenMetrics::spilling(&spill);
        self.emit(&mut om);
        if self.wide.is_some_and(|w| w.recording_rules) {
            self.emit_recorded(&mut om);
        }
        let counts = (om.series, om.samples);
        om.write_to(path);
        let _ = std::fs::remove_dir(&spill);
        counts
    }

    /// kube-prometheus-stack's recorded series as its rules would compute them from the raw
    /// series above, with the labels those rules leave (kubernetes-mixin, node-mixin).
    fn emit_recorded(&self, om: &mut OpenMetrics) {
        let all = self.sample_times();
        // A rate needs a full window of samples before it.
        let rated: Vec<f64> = all
            .iter()
            .copied()
            .filter(|t| *t >= self.t0 + WINDOW)
            .collect();
        for (i, n) in self.nodes.iter().enumerate() {
            let exporter_pod = format!("kps-prometheus-node-exporter-{i}ab3c");
            let instance = format!("{}:9100", n.ip);
            let ne = [
                ("job", "node-exporter"),
                ("instance", instance.as_str()),
                ("namespace", "monitoring"),
                ("pod", exporter_pod.as_str()),
                ("container", "node-exporter"),
                ("service", "kps-prometheus-node-exporter"),
                ("endpoint", "http-metrics"),
            ];
            om.series("instance:node_num_cpu:sum", &ne, &all, |_| n.cores as f64);
            om.series("instance:node_cpu_utilisation:rate5m", &ne, &rated, |_| {
                n.busy
            });
            let used = self.node_memory_used_ratio(n);
            om.series("instance:node_memory_utilisation:ratio", &ne, &all, |_| {
                used
            });
        }
        for p in &self.pods {
            let node = self.nodes[p.node].name.as_str();
            let who = [
                ("namespace", p.namespace.as_str()),
                ("pod", p.name.as_str()),
            ];
            let mut l = who.to_vec();
            l.push(("node", node));
            om.series("node_namespace_pod:kube_pod_info:", &l, &all, |_| 1.0);
            // The rule keeps `image!=""`: the sandbox (container="", the pause image) too.
            let sandbox = ("", Piecewise::flat(PAUSE_CPU));
            let containers = p.containers.iter().map(|c| (c.name.as_str(), c.cpu));
            for (container, cpu) in containers.chain([sandbox]) {
                let mut l = who.to_vec();
                l.extend([("container", container), ("node", node)]);
                om.series(
                    "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m",
                    &l,
                    &rated,
                    |t| self.rate(cpu, t),
                );
            }
            if let Some(o) = p.owner {
                let w = &self.workloads[o.workload];
                let mut l = who.to_vec();
                l.extend([
                    ("workload", w.name.as_str()),
                    ("workload_type", w.kind.workload_type()),
                ]);
                om.series(
                    "namespace_workload_pod:kube_pod_owner:relabel",
                    &l,
                    &all,
                    |_| 1.0,
                );
            }
        }
    }

    // What the report should find, computed from the model.

    /// A pod's average CPU over the range (its containers, the sandbox excluded).
    pub fn avg_pod_cpu(&self, pod: &Pod) -> f64 {
        self.stats(|t| self.pod_cpu(pod, t)).1
    }

    /// The pods of `ns`, busiest first by average CPU, with that average.
    pub fn cpu_ranking(&self, ns: &str) -> Vec<(&Pod, f64)> {
        let mut v: Vec<(&Pod, f64)> = self
            .pods
            .iter()
            .filter(|p| p.namespace == ns)
            .map(|p| (p, self.avg_pod_cpu(p)))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// The pods the kubelet on node `i` runs.
    pub fn node_pods(&self, i: usize) -> Vec<&Pod> {
        self.pods.iter().filter(|p| p.node == i).collect()
    }

    /// `kubelet_running_pods` and `kubelet_running_containers{container_state="running"}` of
    /// node `i`.
    pub fn kubelet_counts(&self, i: usize) -> (usize, usize) {
        let pods = self.node_pods(i);
        let containers = pods.iter().map(|p| p.containers.len()).sum();
        (pods.len(), containers)
    }

    /// The workload of `kind` called `name` in `ns`, and its pods.
    pub fn workload_pods(
        &self,
        kind: WorkloadKind,
        ns: &str,
        name: &str,
    ) -> (&Workload, Vec<&Pod>) {
        let index = self
            .workloads
            .iter()
            .position(|w| w.kind == kind && w.namespace == ns && w.name == name)
            .unwrap_or_else(|| panic!("no {kind:?} {ns}/{name} in the fixture"));
        let pods = self
            .pods
            .iter()
            .filter(|p| p.owner.is_some_and(|o| o.workload == index))
            .collect();
        (&self.workloads[index], pods)
    }

    /// The workloads of `kind` in `ns`.
    pub fn workloads_of(&self, kind: WorkloadKind, ns: &str) -> Vec<&Workload> {
        self.workloads
            .iter()
            .filter(|w| w.kind == kind && w.namespace == ns)
            .collect()
    }

    /// A node's memory in use (total − MemAvailable) as a share of its total.
    pub fn node_memory_used_ratio(&self, n: &Node) -> f64 {
        1.0 - self.at(n.memory_available, self.end) / n.memory_total
    }

    /// Nodes, busiest CPU first, with their CPU used %.
    pub fn nodes_by_cpu(&self) -> Vec<(&Node, f64)> {
        let mut v: Vec<(&Node, f64)> = self.nodes.iter().map(|n| (n, 100.0 * n.busy)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// Non-host-network pods of `ns`, largest receive + transmit first.
    pub fn network_ranking(&self, ns: &str) -> Vec<&Pod> {
        let mut v: Vec<&Pod> = self
            .pods
            .iter()
            .filter(|p| p.namespace == ns && !p.host_network)
            .collect();
        v.sort_by(|a, b| (b.rx + b.tx).total_cmp(&(a.rx + a.tx)));
        v
    }
}

/// Prometheus' and promtool's block length.
const BLOCK: f64 = 7200.0;

/// The latest end on a `step` boundary 30 s or more before `now` such that the `span` of
/// samples ending there touches as few 2-hour TSDB blocks as it can: promtool reads its whole
/// input once per block, so a 70-minute span that straddles a boundary costs a third more.
fn aligned_end(now: f64, span: f64, step: f64) -> f64 {
    let latest = ((now - 30.0) / step).floor() * step;
    let into_block = (latest - span).rem_euclid(BLOCK);
    if span <= BLOCK {
        let block_start = (latest / BLOCK).floor() * BLOCK;
        if latest - span >= block_start {
            latest
        } else {
            block_start - step
        }
    } else {
        latest - into_block
    }
}

/// Node `i`: its CPU busy share and memory in use are those of its pods (their cgroups,
/// sandboxes included) plus the system's, capped below full.
fn node(i: usize, width: Width, pods: &[Pod]) -> Node {
    let ip = format!("10.{}.{}.{}", 20 + i / 200, i % 200, 10 + (i * 37) % 200);
    let cores = width.cores_per_node;
    let memory_total = 4.0 * GIB * cores as f64;
    let mine = pods.iter().filter(|p| p.node == i);
    let (cpu, memory) = mine.fold((0.5, 1.5 * GIB), |(c, m), p| {
        let cpu: f64 = p.containers.iter().map(|c| c.cpu.before).sum();
        (
            c + cpu + PAUSE_CPU,
            m + p.memory.before + crate::fixture::PAUSE_MEMORY,
        )
    });
    Node {
        name: format!("ip-{}.eu-west-1.compute.internal", ip.replace('.', "-")),
        ip,
        cores,
        memory_total,
        memory_available: Piecewise::flat((memory_total - memory).max(0.03 * memory_total)),
        old_kernel: false,
        busy: (cpu / cores as f64).min(0.97),
        exporter_restart: None,
        joined: None,
    }
}
