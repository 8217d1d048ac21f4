//! A fixture cluster for `beacon report` tests and the benchmark: pods with CPU, memory and
//! network that follow known functions of time, exported in the shape of the real components
//! (cAdvisor via the kubelet, kube-state-metrics, the kubelet's own gauges, node-exporter).
//! The expected answers are computed here from those functions, independently of beacon.

use crate::stack::{OpenMetrics, grid};

pub const STEP: f64 = 15.0;
pub const WINDOW: f64 = 300.0;
pub const MIB: f64 = 1024.0 * 1024.0;
pub const GIB: f64 = 1024.0 * MIB;

/// A rate or level that changes once, at `Cluster::switch`.
#[derive(Clone, Copy)]
pub struct Piecewise {
    pub before: f64,
    pub after: f64,
}

impl Piecewise {
    pub const fn flat(v: f64) -> Self {
        Self {
            before: v,
            after: v,
        }
    }
}

pub struct Container {
    pub name: String,
    pub image: String,
    /// Cores.
    pub cpu: Piecewise,
    pub request: Option<Resources>,
    pub limit: Option<Resources>,
}

/// A container's requests or limits, as `kube_pod_container_resource_requests` /
/// `_limits` export them (`resource="cpu"`, `unit="core"`; `resource="memory"`, `unit="byte"`).
#[derive(Clone, Copy)]
pub struct Resources {
    pub cpu: f64,
    pub memory: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl WorkloadKind {
    /// As kube-state-metrics' `owner_kind` and kube-prometheus-stack's `workload_type` spell it.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::DaemonSet => "DaemonSet",
            Self::StatefulSet => "StatefulSet",
        }
    }
    pub fn workload_type(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::DaemonSet => "daemonset",
            Self::StatefulSet => "statefulset",
        }
    }
}

/// A controller of pods; a Deployment's pods are owned by its one current ReplicaSet.
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub replicas: usize,
    /// The ReplicaSet (`<deployment>-<pod-template-hash>`) of a Deployment.
    pub replicaset: Option<String>,
}

/// Which workload (an index into `Cluster::workloads`) a pod belongs to.
#[derive(Clone, Copy)]
pub struct PodOwner {
    pub workload: usize,
}

pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub node: usize,
    pub containers: Vec<Container>,
    /// Working set bytes of the whole pod, split evenly over its containers.
    pub memory: Piecewise,
    /// Bytes per second.
    pub rx: f64,
    pub tx: f64,
    pub host_network: bool,
    pub restarts: u32,
    pub labels: Vec<(String, String)>,
    pub owner: Option<PodOwner>,
}

pub struct Node {
    pub name: String,
    pub ip: String,
    pub cores: usize,
    pub memory_total: f64,
    /// The kernel's MemAvailable estimate. Free, buffers, cached and reclaimable slab are
    /// fixed shares of it ([`Node::mem_free`] …) that do not add up to it, as on a real node.
    pub memory_available: Piecewise,
    /// Linux before 3.14: node-exporter exports no `node_memory_MemAvailable_bytes`.
    pub old_kernel: bool,
    /// Busy share of each core, 0..1.
    pub busy: f64,
    /// When node-exporter's DaemonSet pod on this node was replaced: the old pod's series stop
    /// here and the new pod's start two scrapes later (the target's `pod` label changes).
    pub exporter_restart: Option<f64>,
    /// When the node joined (its kubelet and node-exporter series start): young series.
    pub joined: Option<f64>,
}

impl Node {
    pub fn mem_free(&self, available: f64) -> f64 {
        0.4 * available
    }
    pub fn mem_buffers(&self, available: f64) -> f64 {
        0.1 * available
    }
    pub fn mem_cached(&self, available: f64) -> f64 {
        0.3 * available
    }
    pub fn mem_sreclaimable(&self, available: f64) -> f64 {
        0.05 * available
    }
}

/// The pod sandbox ("pause") container: cAdvisor reports it with an empty `container` label and
/// the pause image (containerd, CRI-O); it carries the pod's network counters.
pub const PAUSE_CPU: f64 = 0.002;
pub const PAUSE_MEMORY: f64 = 0.5 * MIB;
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.9";
/// Node-level traffic on the root cgroup (`id="/"`), which has no namespace or pod.
pub const NODE_RX: f64 = 5e7;

pub struct Cluster {
    /// First sample: an extra rate window before `start`, so every rate() window is full.
    pub t0: f64,
    pub start: f64,
    pub end: f64,
    /// When piecewise values change.
    pub switch: f64,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    /// Docker runtime (cri-dockerd, minikube): cAdvisor leaves container and image empty on
    /// every per-container series; the pod-level cgroup series keep pod and namespace.
    pub docker_runtime: bool,
    /// kube-state-metrics replicas without sharding: each exports every series.
    pub ksm_replicas: usize,
    /// Whether the kubelet's own /metrics (kubelet_running_pods …) is scraped.
    pub kubelet_metrics: bool,
    /// Seconds between samples.
    pub step: f64,
    /// Set on generated wide clusters (see `wide_cluster.rs`): their workloads replace the
    /// hand-made objects of `default`, and node-exporter exports all eight CPU modes.
    pub wide: Option<Width>,
    pub workloads: Vec<Workload>,
}

/// The size of a generated cluster (`wide_cluster.rs`).
#[derive(Clone, Copy, Debug)]
pub struct Width {
    pub nodes: usize,
    pub cores_per_node: usize,
    /// All pods, the DaemonSets' included.
    pub pods: usize,
    pub namespaces: usize,
    /// Pods of the one big namespace (`Cluster::BIG_NAMESPACE`).
    pub big_namespace_pods: usize,
    /// Seconds of history before the end (plus a rate window before it).
    pub range: f64,
    /// Seconds between samples.
    pub step: f64,
    /// Also the kube-prometheus-stack recorded series, computed from the same model.
    pub recording_rules: bool,
}

fn pod(
    name: &str,
    ns: &str,
    node: usize,
    cpus: &[(&str, Piecewise)],
    mem: Piecewise,
    rx: f64,
    tx: f64,
) -> Pod {
    Pod {
        name: name.into(),
        namespace: ns.into(),
        node,
        containers: cpus
            .iter()
            .map(|(c, cpu)| Container {
                name: (*c).into(),
                image: format!("registry.example/{c}:1.0"),
                cpu: *cpu,
                request: None,
                limit: None,
            })
            .collect(),
        memory: mem,
        rx,
        tx,
        host_network: false,
        restarts: 0,
        labels: Vec::new(),
        owner: None,
    }
}

impl Cluster {
    /// The range ends on a 15 s boundary 30 s ago, so evaluation times hit samples exactly.
    fn times(now: f64) -> (f64, f64, f64, f64) {
        let end = ((now - 30.0) / STEP).floor() * STEP;
        let start = end - 3600.0;
        (start - WINDOW - 300.0, start, end, start + 1800.0)
    }

    /// The hand-made cluster the functional tests check: a 3-replica StatefulSet `beacon`
    /// among other pods of clearly different CPU use, one host-network pod and a busier pod in
    /// another namespace that must not leak into `default`.
    pub fn realistic(now: f64) -> Self {
        let (t0, start, end, switch) = Self::times(now);
        let flat = Piecewise::flat;
        let beacon = |i: usize, cpu: Piecewise, mem: Piecewise, rx, tx| {
            let mut p = pod(
                &format!("beacon-{i}"),
                "default",
                i % 2,
                &[("beacon", cpu)],
                mem,
                rx,
                tx,
            );
            p.labels = vec![("app".into(), "beacon".into())];
            p
        };
        let mut pods = vec![
            beacon(
                0,
                flat(0.25),
                Piecewise {
                    before: 100.0 * MIB,
                    after: 150.0 * MIB,
                },
                1000.0,
                500.0,
            ),
            beacon(
                1,
                Piecewise {
                    before: 0.10,
                    after: 0.40,
                },
                flat(120.0 * MIB),
                2000.0,
                800.0,
            ),
            beacon(2, flat(0.05), flat(80.0 * MIB), 300.0, 100.0),
            pod(
                "web-7d9f8-abcde",
                "default",
                0,
                &[("app", flat(1.0)), ("istio-proxy", flat(0.2))],
                flat(300.0 * MIB),
                50_000.0,
                120_000.0,
            ),
            pod(
                "worker-5c4b7-xk2lp",
                "default",
                1,
                &[("worker", flat(0.6))],
                flat(200.0 * MIB),
                4000.0,
                4000.0,
            ),
            pod(
                "idle-cron-28374-q9z",
                "default",
                1,
                &[("job", flat(0.01))],
                flat(10.0 * MIB),
                10.0,
                20.0,
            ),
            pod(
                "node-exporter-8x7f2",
                "kube-system",
                0,
                &[("node-exporter", flat(2.0))],
                flat(40.0 * MIB),
                1e6,
                1e6,
            ),
        ];
        pods[1].restarts = 2;
        pods[1].labels.push(("tier".into(), "canary".into()));
        let mut agent = pod(
            "hostnet-agent-zz1",
            "default",
            0,
            &[("agent", flat(0.02))],
            flat(30.0 * MIB),
            9e6,
            9e6,
        );
        agent.host_network = true;
        pods.push(agent);
        Self {
            t0,
            start,
            end,
            switch,
            pods,
            nodes: vec![
                Node {
                    name: "node-a".into(),
                    ip: "10.0.0.1".into(),
                    cores: 4,
                    memory_total: 8.0 * GIB,
                    memory_available: Piecewise {
                        before: 6.0 * GIB,
                        after: 4.0 * GIB,
                    },
                    old_kernel: false,
                    busy: 0.25,
                    exporter_restart: None,
                    joined: None,
                },
                // An old-kernel node whose node-exporter pod is replaced 40 minutes in.
                Node {
                    name: "node-b".into(),
                    ip: "10.0.0.2".into(),
                    cores: 2,
                    memory_total: 4.0 * GIB,
                    memory_available: Piecewise::flat(3.0 * GIB),
                    old_kernel: true,
                    busy: 0.5,
                    exporter_restart: Some(start + 2400.0),
                    joined: None,
                },
                // A node that joined 50 minutes in: all its series are young.
                Node {
                    name: "node-c".into(),
                    ip: "10.0.0.3".into(),
                    cores: 2,
                    memory_total: 2.0 * GIB,
                    memory_available: Piecewise::flat(1.5 * GIB),
                    old_kernel: false,
                    busy: 0.1,
                    exporter_restart: None,
                    joined: Some(start + 3000.0),
                },
            ],
            docker_runtime: false,
            ksm_replicas: 2,
            kubelet_metrics: true,
            step: STEP,
            wide: None,
            workloads: Vec::new(),
        }
    }

    /// A minikube-like cluster of older parts: the Docker runtime (cri-dockerd), old kernels
    /// on every node, the kubelet's own /metrics not scraped, two kube-state-metrics replicas.
    pub fn legacy(now: f64) -> Self {
        let mut c = Self::realistic(now);
        c.docker_runtime = true;
        c.kubelet_metrics = false;
        c.nodes.truncate(2);
        for n in &mut c.nodes {
            n.old_kernel = true;
            n.exporter_restart = None;
        }
        c
    }

    /// `n` pods of a StatefulSet `load` over three nodes, CPU spread from 0.01 to 0.5 cores.
    pub fn many(now: f64, n: usize) -> Self {
        let (t0, start, end, switch) = Self::times(now);
        let pods = (0..n)
            .map(|i| {
                let cpu = 0.01 + 0.49 * i as f64 / n as f64;
                pod(
                    &format!("load-{i}"),
                    "default",
                    i % 3,
                    &[
                        (
                            "app",
                            Piecewise {
                                before: cpu,
                                after: cpu * 1.5,
                            },
                        ),
                        ("sidecar", Piecewise::flat(0.01)),
                    ],
                    Piecewise::flat((50 + i) as f64 * MIB),
                    1000.0 * i as f64,
                    500.0 * i as f64,
                )
            })
            .collect();
        let nodes = (0..3)
            .map(|i| Node {
                name: format!("node-{i}"),
                ip: format!("10.0.0.{}", i + 1),
                cores: 8,
                memory_total: 32.0 * GIB,
                memory_available: Piecewise::flat(20.0 * GIB),
                old_kernel: false,
                busy: 0.3,
                exporter_restart: None,
                joined: None,
            })
            .collect();
        Self {
            t0,
            start,
            end,
            switch,
            pods,
            nodes,
            docker_runtime: false,
            ksm_replicas: 1,
            kubelet_metrics: true,
            step: STEP,
            wide: None,
            workloads: Vec::new(),
        }
    }

    pub fn at(&self, p: Piecewise, t: f64) -> f64 {
        if t < self.switch { p.before } else { p.after }
    }

    /// A counter growing at a piecewise rate, from a large offset (a long-running container).
    pub fn counter(&self, rate: Piecewise, t: f64) -> f64 {
        let before = (t.min(self.switch) - self.t0).max(0.0);
        let after = (t - self.switch).max(0.0);
        1000.0 + rate.before * before + rate.after * after
    }

    /// Prometheus 2.x `rate(x[5m])` at `t` when samples sit exactly on the window's ends:
    /// the counter's increase over the window divided by its length.
    pub fn rate(&self, rate: Piecewise, t: f64) -> f64 {
        (self.counter(rate, t) - self.counter(rate, t - WINDOW)) / WINDOW
    }

    /// The range query's evaluation times.
    pub fn evals(&self) -> Vec<f64> {
        grid(self.start, self.end, self.step)
    }

    /// (current, avg, max) of `f` over the evaluation times.
    pub fn stats(&self, f: impl Fn(f64) -> f64) -> (f64, f64, f64) {
        let values: Vec<f64> = self.evals().into_iter().map(f).collect();
        let avg = values.iter().sum::<f64>() / values.len() as f64;
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        (*values.last().unwrap(), avg, max)
    }

    /// What the pod's containers use (the sandbox excluded): `kubectl top pod`'s figure.
    pub fn pod_cpu(&self, pod: &Pod, t: f64) -> f64 {
        pod.containers.iter().map(|c| self.rate(c.cpu, t)).sum()
    }

    /// The pod-level cgroup's CPU: its containers and the sandbox.
    pub fn pod_cgroup_cpu(&self, pod: &Pod, t: f64) -> f64 {
        self.pod_cpu(pod, t) + PAUSE_CPU
    }

    /// The pod-level cgroup's working set: its containers and the sandbox.
    pub fn pod_cgroup_memory(&self, pod: &Pod, t: f64) -> f64 {
        self.at(pod.memory, t) + PAUSE_MEMORY
    }

    pub fn openmetrics(&self) -> OpenMetrics {
        let mut om = OpenMetrics::default();
        self.emit(&mut om);
        om
    }

    /// Every sample time, the rate window before `start` included.
    pub fn sample_times(&self) -> Vec<f64> {
        grid(self.t0, self.end, self.step)
    }

    /// Writes every exporter's series into `om`.
    pub fn emit(&self, om: &mut OpenMetrics) {
        self.emit_pods(om);
        self.emit_objects(om);
        self.emit_nodes(om);
    }

    fn emit_pods(&self, om: &mut OpenMetrics) {
        let times = self.sample_times();
        let created = (self.t0 - 86_400.0 * 3.0).to_string();
        for (index, pod) in self.pods.iter().enumerate() {
            let node = &self.nodes[pod.node];
            let kubelet = format!("{}:10250", node.ip);
            let uid = format!("5f1c{index:04x}-7a2b-4c3d-9e8f-{index:012x}");
            // The kubelet's cgroup layout: cgroupfs on node-a (`/kubepods/burstable/pod<uid>`),
            // the systemd driver elsewhere (`…/kubepods-burstable-pod<uid with _>.slice`).
            let systemd = pod.node != 0;
            let cgroup = if systemd {
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
                    uid.replace('-', "_")
                )
            } else {
                format!("/kubepods/burstable/pod{uid}")
            };
            let child_cgroup = |cid: &str| {
                if systemd {
                    format!("{cgroup}/cri-containerd-{cid}.scope")
                } else {
                    format!("{cgroup}/{cid}")
                }
            };
            // cAdvisor's label set through the kubelet (kube-prometheus-stack's ServiceMonitor
            // honours the exported labels): `name` is the runtime's id, absent on cgroups that
            // are not containers.
            let cadvisor = |container: &str,
                            image: &str,
                            id: &str,
                            name: Option<&str>|
             -> Vec<(String, String)> {
                let (container, image) = if self.docker_runtime {
                    ("", "")
                } else {
                    (container, image)
                };
                let mut v: Vec<(String, String)> = [
                    ("job", "kubelet"),
                    ("metrics_path", "/metrics/cadvisor"),
                    ("endpoint", "https-metrics"),
                    ("service", "kps-kubelet"),
                    ("instance", kubelet.as_str()),
                    ("node", node.name.as_str()),
                    ("namespace", pod.namespace.as_str()),
                    ("pod", pod.name.as_str()),
                    ("container", container),
                    ("image", image),
                    ("id", id),
                ]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
                if let Some(name) = name {
                    v.push(("name".into(), name.into()));
                }
                v
            };
            let share = pod.containers.len() as f64;
            for (i, c) in pod.containers.iter().enumerate() {
                let cid = format!("{:0>64}", format!("{index:x}c{i}"));
                let labels = cadvisor(&c.name, &c.image, &child_cgroup(&cid), Some(&cid));
                om.series(
                    "container_cpu_usage_seconds_total",
                    &as_refs(&labels),
                    &times,
                    |t| self.counter(c.cpu, t),
                );
                om.series(
                    "container_memory_working_set_bytes",
                    &as_refs(&labels),
                    &times,
                    |t| self.at(pod.memory, t) / share,
                );
            }
            // The sandbox: no container name, the pause image; it owns the pod's network
            // namespace, so the network counters are its (never an app container's).
            let sandbox = format!("{:0>64}", format!("{index:x}5a"));
            let labels = cadvisor("", PAUSE_IMAGE, &child_cgroup(&sandbox), Some(&sandbox));
            om.series(
                "container_cpu_usage_seconds_total",
                &as_refs(&labels),
                &times,
                |t| self.counter(Piecewise::flat(PAUSE_CPU), t),
            );
            om.series(
                "container_memory_working_set_bytes",
                &as_refs(&labels),
                &times,
                |_| PAUSE_MEMORY,
            );
            let mut net = labels.clone();
            net.push(("interface".into(), "eth0".into()));
            om.series(
                "container_network_receive_bytes_total",
                &as_refs(&net),
                &times,
                |t| pod.rx * (t - self.t0),
            );
            om.series(
                "container_network_transmit_bytes_total",
                &as_refs(&net),
                &times,
                |t| pod.tx * (t - self.t0),
            );
            // The pod cgroup's own series (empty container and image): its containers and the
            // sandbox again, which a query without filters would count twice.
            let labels = cadvisor("", "", &cgroup, None);
            om.series(
                "container_cpu_usage_seconds_total",
                &as_refs(&labels),
                &times,
                |t| {
                    pod.containers
                        .iter()
                        .map(|c| self.counter(c.cpu, t))
                        .sum::<f64>()
                        + self.counter(Piecewise::flat(PAUSE_CPU), t)
                },
            );
            om.series(
                "container_memory_working_set_bytes",
                &as_refs(&labels),
                &times,
                |t| self.pod_cgroup_memory(pod, t),
            );

            // kube-state-metrics, every series once per replica.
            let created_by = self.created_by(pod);
            for target in self.ksm_targets() {
                let ksm = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
                    let object: Vec<(&str, &str)> = [
                        ("namespace", pod.namespace.as_str()),
                        ("pod", pod.name.as_str()),
                        ("uid", uid.as_str()),
                    ]
                    .iter()
                    .chain(extra)
                    .copied()
                    .collect();
                    ksm_labels(&target, &object)
                };
                let ip = format!("10.244.{}.{}", pod.node, pod.name.len());
                let info = ksm(&[
                    ("node", node.name.as_str()),
                    (
                        "pod_ip",
                        if pod.host_network {
                            node.ip.as_str()
                        } else {
                            ip.as_str()
                        },
                    ),
                    ("host_ip", node.ip.as_str()),
                    (
                        "host_network",
                        if pod.host_network { "true" } else { "false" },
                    ),
                    ("created_by_kind", created_by.0),
                    ("created_by_name", created_by.1),
                ]);
                om.series("kube_pod_info", &as_refs(&info), &times, |_| 1.0);
                if pod.owner.is_some() {
                    let l = ksm(&[
                        ("owner_kind", created_by.0),
                        ("owner_name", created_by.1),
                        ("owner_is_controller", "true"),
                    ]);
                    om.series("kube_pod_owner", &as_refs(&l), &times, |_| 1.0);
                }
                for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
                    let l = ksm(&[("phase", phase)]);
                    om.series("kube_pod_status_phase", &as_refs(&l), &times, |_| {
                        f64::from(u8::from(phase == "Running"))
                    });
                }
                om.series("kube_pod_created", &as_refs(&ksm(&[])), &times, |_| {
                    created.parse().unwrap()
                });
                let mut pod_labels: Vec<(String, String)> = ksm(&[]);
                for (k, v) in &pod.labels {
                    pod_labels.push((format!("label_{k}"), v.clone()));
                }
                om.series("kube_pod_labels", &as_refs(&pod_labels), &times, |_| 1.0);
                for c in &pod.containers {
                    let l = ksm(&[("container", c.name.as_str())]);
                    om.series(
                        "kube_pod_container_status_ready",
                        &as_refs(&l),
                        &times,
                        |_| 1.0,
                    );
                    om.series(
                        "kube_pod_container_status_running",
                        &as_refs(&l),
                        &times,
                        |_| 1.0,
                    );
                    om.series(
                        "kube_pod_container_status_restarts_total",
                        &as_refs(&l),
                        &times,
                        |_| {
                            if c.name == pod.containers[0].name {
                                f64::from(pod.restarts)
                            } else {
                                0.0
                            }
                        },
                    );
                    let l = ksm(&[("container", c.name.as_str()), ("image", c.image.as_str())]);
                    om.series("kube_pod_container_info", &as_refs(&l), &times, |_| 1.0);
                    for (metric, resources) in [
                        ("kube_pod_container_resource_requests", c.request),
                        ("kube_pod_container_resource_limits", c.limit),
                    ] {
                        let Some(r) = resources else { continue };
                        for (resource, unit, value) in
                            [("cpu", "core", r.cpu), ("memory", "byte", r.memory)]
                        {
                            let l = ksm(&[
                                ("container", c.name.as_str()),
                                ("node", node.name.as_str()),
                                ("resource", resource),
                                ("unit", unit),
                            ]);
                            om.series(metric, &as_refs(&l), &times, |_| value);
                        }
                    }
                }
            }
        }
    }

    /// kube-state-metrics' `(created_by_kind, created_by_name)` of a pod: a Deployment's pods
    /// are created by its ReplicaSet. Hand-made pods all say StatefulSet `beacon`.
    fn created_by(&self, pod: &Pod) -> (&str, &str) {
        match pod.owner.map(|o| &self.workloads[o.workload]) {
            None => ("StatefulSet", "beacon"),
            Some(w) => match &w.replicaset {
                Some(rs) => ("ReplicaSet", rs.as_str()),
                None => (w.kind.kind(), w.name.as_str()),
            },
        }
    }

    fn emit_objects(&self, om: &mut OpenMetrics) {
        let times = self.sample_times();
        let created = (self.t0 - 86_400.0 * 3.0).to_string();
        if self.wide.is_some() {
            self.emit_workloads(om, &times, created.parse().unwrap());
            return;
        }
        // StatefulSets, services, PVCs and ConfigMaps of `default`, once per replica.
        for target in self.ksm_targets() {
            let ksm_obj =
                |kind: &str, name: &str, extra: &[(&str, &str)]| -> Vec<(String, String)> {
                    let object: Vec<(&str, &str)> = [("namespace", "default"), (kind, name)]
                        .iter()
                        .chain(extra)
                        .copied()
                        .collect();
                    ksm_labels(&target, &object)
                };
            let obj =
                |om: &mut OpenMetrics, metric: &str, labels: Vec<(String, String)>, value: f64| {
                    let pairs: Vec<(&str, &str)> = labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    om.series(metric, &pairs, &times, |_| value);
                };
            let c: f64 = created.parse().unwrap();
            obj(
                om,
                "kube_statefulset_replicas",
                ksm_obj("statefulset", "beacon", &[]),
                3.0,
            );
            obj(
                om,
                "kube_statefulset_status_replicas_ready",
                ksm_obj("statefulset", "beacon", &[]),
                3.0,
            );
            obj(
                om,
                "kube_statefulset_created",
                ksm_obj("statefulset", "beacon", &[]),
                c,
            );
            for (svc, ip, kind) in [
                ("beacon", "10.96.12.34", "ClusterIP"),
                ("beacon-headless", "None", "ClusterIP"),
            ] {
                obj(
                    om,
                    "kube_service_info",
                    ksm_obj(
                        "service",
                        svc,
                        &[
                            ("cluster_ip", ip),
                            ("external_name", ""),
                            ("load_balancer_ip", ""),
                        ],
                    ),
                    1.0,
                );
                obj(
                    om,
                    "kube_service_spec_type",
                    ksm_obj("service", svc, &[("type", kind)]),
                    1.0,
                );
                obj(om, "kube_service_created", ksm_obj("service", svc, &[]), c);
            }
            for i in 0..3 {
                let pvc = format!("data-beacon-{i}");
                let vol = format!("pvc-0000-{i}");
                obj(
                    om,
                    "kube_persistentvolumeclaim_info",
                    ksm_obj(
                        "persistentvolumeclaim",
                        &pvc,
                        &[("storageclass", "standard"), ("volumename", vol.as_str())],
                    ),
                    1.0,
                );
                for phase in ["Bound", "Lost", "Pending"] {
                    obj(
                        om,
                        "kube_persistentvolumeclaim_status_phase",
                        ksm_obj("persistentvolumeclaim", &pvc, &[("phase", phase)]),
                        f64::from(u8::from(phase == "Bound")),
                    );
                }
                obj(
                    om,
                    "kube_persistentvolumeclaim_resource_requests_storage_bytes",
                    ksm_obj("persistentvolumeclaim", &pvc, &[]),
                    GIB,
                );
                obj(
                    om,
                    "kube_persistentvolumeclaim_access_mode",
                    ksm_obj(
                        "persistentvolumeclaim",
                        &pvc,
                        &[("access_mode", "ReadWriteOnce")],
                    ),
                    1.0,
                );
                obj(
                    om,
                    "kube_persistentvolumeclaim_created",
                    ksm_obj("persistentvolumeclaim", &pvc, &[]),
                    c,
                );
            }
            for cm in ["beacon-config", "kube-root-ca.crt"] {
                obj(
                    om,
                    "kube_configmap_info",
                    ksm_obj("configmap", cm, &[]),
                    1.0,
                );
                obj(
                    om,
                    "kube_configmap_created",
                    ksm_obj("configmap", cm, &[]),
                    c,
                );
            }
        }
    }

    /// The generated workloads' objects, once per kube-state-metrics replica.
    fn emit_workloads(&self, om: &mut OpenMetrics, times: &[f64], created: f64) {
        for target in self.ksm_targets() {
            for w in &self.workloads {
                let ns = w.namespace.as_str();
                let mut series = |metric: &str, object: &[(&str, &str)], value: f64| {
                    let mut labels = vec![("namespace", ns)];
                    labels.extend_from_slice(object);
                    let labels = ksm_labels(&target, &labels);
                    om.series(metric, &as_refs(&labels), times, |_| value);
                };
                let n = w.replicas as f64;
                let name = w.name.as_str();
                match w.kind {
                    WorkloadKind::StatefulSet => {
                        let o = [("statefulset", name)];
                        series("kube_statefulset_replicas", &o, n);
                        series("kube_statefulset_status_replicas_ready", &o, n);
                        series("kube_statefulset_created", &o, created);
                    }
                    WorkloadKind::DaemonSet => {
                        let o = [("daemonset", name)];
                        series("kube_daemonset_status_desired_number_scheduled", &o, n);
                        series("kube_daemonset_status_number_ready", &o, n);
                        series("kube_daemonset_created", &o, created);
                    }
                    WorkloadKind::Deployment => {
                        let o = [("deployment", name)];
                        series("kube_deployment_spec_replicas", &o, n);
                        series("kube_deployment_status_replicas_available", &o, n);
                        series("kube_deployment_created", &o, created);
                        let rs = w.replicaset.as_deref().unwrap();
                        let owner = [
                            ("replicaset", rs),
                            ("owner_kind", "Deployment"),
                            ("owner_name", name),
                            ("owner_is_controller", "true"),
                        ];
                        series("kube_replicaset_owner", &owner, 1.0);
                        series("kube_replicaset_spec_replicas", &[("replicaset", rs)], n);
                    }
                }
            }
        }
    }

    fn emit_nodes(&self, om: &mut OpenMetrics) {
        // Per node: the kubelet's gauges and node-exporter.
        let all_times = self.sample_times();
        for (i, node) in self.nodes.iter().enumerate() {
            let times: Vec<f64> = all_times
                .iter()
                .copied()
                .filter(|t| node.joined.is_none_or(|j| *t >= j))
                .collect();
            let pods: Vec<&Pod> = self.pods.iter().filter(|p| p.node == i).collect();
            let containers: usize = pods.iter().map(|p| p.containers.len()).sum();
            let kubelet = format!("{}:10250", node.ip);
            let base = [
                ("job", "kubelet"),
                ("metrics_path", "/metrics"),
                ("instance", kubelet.as_str()),
                ("node", node.name.as_str()),
            ];
            if self.kubelet_metrics {
                om.series("kubelet_running_pods", &base, &times, |_| pods.len() as f64);
                for (state, n) in [("running", containers), ("exited", 1), ("created", 0)] {
                    let mut l = base.to_vec();
                    l.push(("container_state", state));
                    om.series("kubelet_running_containers", &l, &times, |_| n as f64);
                }
                om.series("up", &base, &times, |_| 1.0);
            }

            // cAdvisor's cgroups that are not pods: no namespace, pod, container or image.
            let cad = [
                ("job", "kubelet"),
                ("metrics_path", "/metrics/cadvisor"),
                ("endpoint", "https-metrics"),
                ("service", "kps-kubelet"),
                ("instance", kubelet.as_str()),
                ("node", node.name.as_str()),
            ];
            om.series("up", &cad, &times, |_| 1.0);
            let slices: &[&str] = if i == 0 {
                &[
                    "/",
                    "/kubepods",
                    "/kubepods/burstable",
                    "/system.slice/kubelet.service",
                ]
            } else {
                &[
                    "/",
                    "/kubepods.slice",
                    "/kubepods.slice/kubepods-burstable.slice",
                    "/system.slice/kubelet.service",
                ]
            };
            for id in slices {
                let mut l = cad.to_vec();
                l.push(("id", id));
                let busy = Piecewise::flat(node.busy * node.cores as f64);
                om.series("container_cpu_usage_seconds_total", &l, &times, |t| {
                    self.counter(busy, t)
                });
                om.series("container_memory_working_set_bytes", &l, &times, |_| {
                    node.memory_total / 2.0
                });
                if *id == "/" {
                    l.push(("interface", "eth0"));
                    for metric in [
                        "container_network_receive_bytes_total",
                        "container_network_transmit_bytes_total",
                    ] {
                        om.series(metric, &l, &times, |t| NODE_RX * (t - self.t0));
                    }
                }
            }

            // node-exporter as kube-prometheus-stack scrapes it: the target's pod, service and
            // container are labels too, so a replaced DaemonSet pod starts new series.
            let exporter = format!("{}:9100", node.ip);
            let pods_of_exporter: Vec<(String, Vec<f64>)> = match node.exporter_restart {
                None => vec![(
                    format!("kps-prometheus-node-exporter-{i}ab3c"),
                    times.clone(),
                )],
                Some(at) => vec![
                    (
                        format!("kps-prometheus-node-exporter-{i}ab3c"),
                        times.iter().copied().filter(|t| *t <= at).collect(),
                    ),
                    (
                        format!("kps-prometheus-node-exporter-{i}zq7m"),
                        times
                            .iter()
                            .copied()
                            .filter(|t| *t >= at + 2.0 * STEP)
                            .collect(),
                    ),
                ],
            };
            for (exporter_pod, times) in &pods_of_exporter {
                let ne = [
                    ("job", "node-exporter"),
                    ("instance", exporter.as_str()),
                    ("namespace", "monitoring"),
                    ("pod", exporter_pod.as_str()),
                    ("container", "node-exporter"),
                    ("service", "kps-prometheus-node-exporter"),
                    ("endpoint", "http-metrics"),
                ];
                let avail = |t| self.at(node.memory_available, t);
                om.series("node_memory_MemTotal_bytes", &ne, times, |_| {
                    node.memory_total
                });
                if !node.old_kernel {
                    om.series("node_memory_MemAvailable_bytes", &ne, times, avail);
                }
                om.series("node_memory_MemFree_bytes", &ne, times, |t| {
                    node.mem_free(avail(t))
                });
                om.series("node_memory_Buffers_bytes", &ne, times, |t| {
                    node.mem_buffers(avail(t))
                });
                om.series("node_memory_Cached_bytes", &ne, times, |t| {
                    node.mem_cached(avail(t))
                });
                om.series("node_memory_SReclaimable_bytes", &ne, times, |t| {
                    node.mem_sreclaimable(avail(t))
                });
                let mut uname = ne.to_vec();
                uname.push(("nodename", node.name.as_str()));
                om.series("node_uname_info", &uname, times, |_| 1.0);
                for cpu in 0..node.cores {
                    let cpu = cpu.to_string();
                    for &(mode, share) in &self.cpu_modes(node) {
                        let mut l = ne.to_vec();
                        l.push(("cpu", cpu.as_str()));
                        l.push(("mode", mode));
                        // The host's counters: they go on across the exporter's restart.
                        om.series("node_cpu_seconds_total", &l, times, |t| {
                            5000.0 + share * (t - self.t0)
                        });
                    }
                }
                om.series("up", &ne, times, |_| 1.0);
            }
        }
        for target in self.ksm_targets() {
            let up = ksm_labels(&target, &[]);
            om.series("up", &as_refs(&up), &all_times, |_| 1.0);
        }
    }

    /// node-exporter's `mode`s with each one's share of a core. Generated clusters have all
    /// eight, as node-exporter exports them, with iowait and steal at zero: kube-prometheus-
    /// stack's `instance:node_cpu_utilisation:rate5m` counts those as idle, so the busy share is
    /// the same whichever way it is read.
    pub fn cpu_modes(&self, node: &Node) -> Vec<(&'static str, f64)> {
        let b = node.busy;
        if self.wide.is_none() {
            return vec![("idle", 1.0 - b), ("user", b * 0.7), ("system", b * 0.3)];
        }
        vec![
            ("idle", 1.0 - b),
            ("iowait", 0.0),
            ("irq", b * 0.03),
            ("nice", b * 0.02),
            ("softirq", b * 0.05),
            ("steal", 0.0),
            ("system", b * 0.25),
            ("user", b * 0.65),
        ]
    }

    /// kube-state-metrics' scrape targets: (instance, the replica's own pod name).
    pub fn ksm_targets(&self) -> Vec<(String, String)> {
        (0..self.ksm_replicas)
            .map(|i| {
                (
                    format!("10.0.1.{}:8080", 5 + i),
                    format!(
                        "kps-kube-state-metrics-6c9d8b7f5-{}",
                        ["x2k4p", "q8w3n"][i % 2]
                    ),
                )
            })
            .collect()
    }
}

pub fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, s)| (k.as_str(), s.as_str())).collect()
}

/// A kube-state-metrics series as kube-prometheus-stack stores it: the target's labels
/// (`pod`/`container` of kube-state-metrics itself, `instance` of the replica) unless the
/// series exports its own (`honorLabels: true`), so replicas differ by `instance` (and by `pod`
/// on series that are not about a pod).
pub fn ksm_labels(target: &(String, String), object: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: std::collections::BTreeMap<String, String> = [
        ("job", "kube-state-metrics"),
        ("instance", target.0.as_str()),
        ("pod", target.1.as_str()),
        ("container", "kube-state-metrics"),
        ("endpoint", "http"),
        ("service", "kps-kube-state-metrics"),
        ("namespace", "monitoring"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in object {
        labels.insert((*k).to_owned(), (*v).to_owned());
    }
    labels.into_iter().collect()
}
