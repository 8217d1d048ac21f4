//! `beacon report` against a real Prometheus holding backfilled fixture series with known
//! values: every answer's numbers are checked against values computed here from the
//! fixture's functions, the CPU ranking in full, and the rendered formats.

use crate::wide_cluster;
use crate::{fixture as report_fixture, stack as report_stack, workloads as report_workloads};
use report_fixture::{Cluster, GIB, Pod, Width, WorkloadKind};
use report_stack::{
    OpenMetrics, Prometheus, PrometheusConfig, Workdir, assert_close, backfill, backfill_file, now,
    report, report_json, report_logging,
};
use serde_json::Value;
use std::sync::OnceLock;

/// A fixture cluster backfilled into its own Prometheus. Each kind is started once and shared
/// by every test that reads it (backfilling 70 minutes is the slow part); the process and its
/// directory go when the test binary exits (see `report_stack::spawn_tied`).
struct Stack {
    cluster: Cluster,
    prom: Prometheus,
    start: String,
    end: String,
    /// The JSON report over the fixture's range, run once.
    json: OnceLock<Value>,
    /// What the report is asked about beyond the range (namespace, workload).
    scope: Vec<&'static str>,
}

static GENERATED: OnceLock<Stack> = OnceLock::new();

/// A generated cluster of 1,000 pods on 50 nodes over 30 minutes at 30 s (`Width::suite`),
/// reported for its big namespace and that namespace's StatefulSet `postgres`.
fn generated() -> &'static Stack {
    GENERATED.get_or_init(|| {
        let mut stack = Stack::start(Cluster::wide(now(), Width::suite()));
        stack.scope = vec![
            "-n",
            wide_cluster::BIG_NAMESPACE,
            "--statefulset",
            wide_cluster::POSTGRES,
        ];
        stack
    })
}

static REALISTIC: OnceLock<Stack> = OnceLock::new();
static LIMITED: OnceLock<Stack> = OnceLock::new();

/// The realistic cluster on a Prometheus whose `--query.max-samples` the node CPU range query
/// exceeds (it holds about 6,200 samples at its peak: 8 CPUs × 3 modes over 3 nodes, twice on
/// node-b, × 241 points) but question 1's queries (under 1,500) do not.
fn limited() -> &'static Stack {
    LIMITED.get_or_init(|| {
        let config = PrometheusConfig {
            args: vec![format!("--query.max-samples={MAX_SAMPLES}")],
            ..PrometheusConfig::default()
        };
        Stack::start_full(Cluster::realistic(now()), |_| {}, config, |_, _| {})
    })
}

const MAX_SAMPLES: u64 = 5000;
static LEGACY: OnceLock<Stack> = OnceLock::new();

/// The healthy containerd cluster (with an old-kernel node, a node-exporter restart and two
/// kube-state-metrics replicas).
fn realistic() -> &'static Stack {
    REALISTIC.get_or_init(|| Stack::start(Cluster::realistic(now())))
}

/// The minikube-like one: Docker runtime, old kernels, no kubelet /metrics, two KSM replicas.
fn legacy() -> &'static Stack {
    LEGACY.get_or_init(|| Stack::start(Cluster::legacy(now())))
}

/// kube-prometheus-stack's per-container CPU rule as rendered by the chart (kubernetes-mixin's
/// `k8s.rules.container_cpu_usage_seconds_total`): note it filters only `image!=""`.
const KPS_CPU_RULE: &str = r#"groups:
  - name: k8s.rules.container_cpu_usage_seconds_total
    rules:
      - record: node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m
        expr: |-
          sum by (cluster, namespace, pod, container) (
            rate(container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}[5m])
          ) * on (cluster, namespace, pod) group_left(node) topk by (cluster, namespace, pod) (
            1, max by (cluster, namespace, pod, node) (kube_pod_info{node!=""})
          )
"#;

static WITH_RULE: OnceLock<Stack> = OnceLock::new();

/// The realistic cluster plus that rule's history: `promtool tsdb create-blocks-from rules`
/// evaluates the real rule against the realistic stack and its blocks join a second backfill.
fn with_recording_rule() -> &'static Stack {
    WITH_RULE.get_or_init(|| with_rules(KPS_CPU_RULE))
}

/// kube-prometheus-stack's node-exporter rules for question 3, as the chart renders them.
const KPS_NODE_RULES: &str = r#"groups:
  - name: node-exporter.rules
    rules:
      - record: instance:node_num_cpu:sum
        expr: |-
          count without (cpu, mode) (
            node_cpu_seconds_total{job="node-exporter",mode="idle"}
          )
      - record: instance:node_cpu_utilisation:rate5m
        expr: |-
          1 - avg without (cpu) (
            sum without (mode) (rate(node_cpu_seconds_total{job="node-exporter", mode=~"idle|iowait|steal"}[5m]))
          )
"#;

static WITH_NODE_RULES: OnceLock<Stack> = OnceLock::new();

fn with_node_rules() -> &'static Stack {
    WITH_NODE_RULES.get_or_init(|| with_rules(KPS_NODE_RULES))
}

/// The realistic cluster plus the history of `rules`, evaluated by promtool against the
/// realistic stack.
fn with_rules(rules_yaml: &str) -> Stack {
    let base = realistic();
    // The same `now` gives the same fixture (its range ends 30 s before `now`).
    let cluster = Cluster::realistic(base.cluster.end + 30.0);
    assert_eq!(cluster.end, base.cluster.end);
    Stack::start_with(cluster, |work, tsdb| {
        let rules = work.join("kps-rules.yml");
        std::fs::write(&rules, rules_yaml).unwrap();
        report_stack::backfill_rules(
            &base.prom.url,
            &rules,
            (base.cluster.start - 300.0, base.cluster.end),
            "15s",
            tsdb,
        );
    })
}

impl Stack {
    fn start(cluster: Cluster) -> Self {
        Self::start_with(cluster, |_, _| {})
    }

    /// `more_blocks(work, tsdb)` may add TSDB blocks before Prometheus starts.
    fn start_with(
        cluster: Cluster,
        more_blocks: impl FnOnce(&std::path::Path, &std::path::Path),
    ) -> Self {
        Self::start_full(cluster, |_| {}, PrometheusConfig::default(), more_blocks)
    }

    /// The cluster's series (with its owners and requests), changed by `edit`, in a
    /// Prometheus run with `config`.
    fn start_full(
        cluster: Cluster,
        edit: impl FnOnce(&mut OpenMetrics),
        config: PrometheusConfig,
        more_blocks: impl FnOnce(&std::path::Path, &std::path::Path),
    ) -> Self {
        let work = Workdir::new().0.keep();
        let tsdb = work.join("tsdb");
        if cluster.wide.is_some() {
            // Gigabytes of text: streamed through a file, not held (owners and requests are
            // in the generated model).
            let input = work.join("backfill.om");
            cluster.write_openmetrics(&input);
            backfill_file(&input, &tsdb);
            std::fs::remove_file(&input).unwrap();
        } else {
            let mut om = cluster.openmetrics();
            report_workloads::add(&cluster, &mut om);
            edit(&mut om);
            backfill(&work, &tsdb, &om);
        }
        more_blocks(&work, &tsdb);
        let prom = Prometheus::start_with_cleanup(&work, &tsdb, config, Some(&work));
        Self {
            start: cluster.start.to_string(),
            end: cluster.end.to_string(),
            cluster,
            prom,
            json: OnceLock::new(),
            scope: Vec::new(),
        }
    }

    /// The fixture's exact range, so evaluation times fall on samples.
    fn args(&self) -> Vec<&str> {
        let mut args = vec![
            "--prometheus",
            &self.prom.url,
            "--start",
            &self.start,
            "--end",
            &self.end,
        ];
        args.extend(&self.scope);
        args
    }

    fn report(&self) -> &Value {
        self.json.get_or_init(|| report_json(&self.args()))
    }
}

fn pods_in<'a>(c: &'a Cluster, ns: &str) -> impl Iterator<Item = &'a Pod> {
    let ns = ns.to_owned();
    c.pods.iter().filter(move |p| p.namespace == ns)
}

fn check_stats(actual: &Value, expected: (f64, f64, f64), what: &str) {
    assert_close(&actual["current"], expected.0, &format!("{what} current"));
    assert_close(&actual["avg"], expected.1, &format!("{what} avg"));
    assert_close(&actual["max"], expected.2, &format!("{what} max"));
}

fn by_key<'a>(rows: &'a Value, key: &str, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == name)
        .unwrap_or_else(|| panic!("no row {key}={name} in {rows}"))
}

/// The notes of one answer, joined.
fn notes_of(r: &Value, q: &str) -> String {
    r[q]["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("{q} has no notes array"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn pod<'a>(c: &'a Cluster, name: &str) -> &'a Pod {
    c.pods.iter().find(|p| p.name == name).unwrap()
}

fn statefulset_pods(c: &Cluster) -> Vec<&Pod> {
    c.pods
        .iter()
        .filter(|p| p.name.starts_with("beacon-"))
        .collect()
}

/// Question 1's rows for the StatefulSet's three pods, and its CPU total, against the
/// fixture's figures from `cpu` and `memory` (a pod's value at a time).
fn check_q1_pods(
    c: &Cluster,
    q1: &Value,
    cpu: impl Fn(&Pod, f64) -> f64,
    memory: impl Fn(&Pod, f64) -> f64,
) {
    let sts = statefulset_pods(c);
    assert_eq!(q1["pods"].as_array().unwrap().len(), 3, "{q1}");
    for pod in &sts {
        let row = by_key(&q1["pods"], "pod", &pod.name);
        check_stats(
            &row["cpu"],
            c.stats(|t| cpu(pod, t)),
            &format!("{} cpu", pod.name),
        );
        check_stats(
            &row["memory"],
            c.stats(|t| memory(pod, t)),
            &format!("{} memory", pod.name),
        );
    }
    check_stats(
        &q1["total_cpu"],
        c.stats(|t| sts.iter().map(|p| cpu(p, t)).sum()),
        "total cpu",
    );
}

/// Question 2's ranking: every pod of the namespace, busiest first by the average of `cpu`
/// (a pod's value at a time), with that average.
fn check_cpu_ranking(c: &Cluster, r: &Value, cpu: impl Fn(&Pod, f64) -> f64) {
    let mut expected: Vec<(String, f64)> = pods_in(c, "default")
        .map(|p| (p.name.clone(), c.stats(|t| cpu(p, t)).1))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ranking = r["pod_cpu"]["data"]["ranking"].as_array().unwrap();
    let names: Vec<&str> = ranking.iter().map(|p| p["pod"].as_str().unwrap()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, expected_names);
    for (row, (name, avg)) in ranking.iter().zip(&expected) {
        assert_close(&row["cpu"]["avg"], *avg, &format!("{name} avg cpu"));
    }
}

#[test]
fn workload_counts_its_containers_not_their_sandboxes() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    // Per pod and total: the containers' CPU and memory. The fixture's pause containers
    // (container="", image=pause) use PAUSE_CPU and PAUSE_MEMORY, which must not be counted.
    let q1 = &r["workload"]["data"];
    let sts = statefulset_pods(c);
    assert_eq!(
        (&q1["cpu_source"], &q1["memory_source"]),
        (&Value::from("containers"), &Value::from("containers"))
    );
    check_q1_pods(c, q1, |p, t| c.pod_cpu(p, t), |p, t| c.at(p.memory, t));
    check_stats(
        &q1["total_memory"],
        c.stats(|t| sts.iter().map(|p| c.at(p.memory, t)).sum()),
        "total memory",
    );
    assert!(
        r["workload"]["queries"][0]["promql"]
            .as_str()
            .unwrap()
            .contains(r#"pod=~"beacon-[0-9]+""#)
    );
    assert_eq!(notes_of(r, "workload"), "");

    // A label selector picks pods through kube_pod_labels (exported by both KSM replicas).
    let mut args = stack.args();
    args.extend(["--selector", "app=beacon,tier=canary"]);
    let r = report_json(&args);
    let pods = r["workload"]["data"]["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["pod"], "beacon-1");
    let b1 = pod(c, "beacon-1");
    check_stats(
        &pods[0]["cpu"],
        c.stats(|t| c.pod_cpu(b1, t)),
        "beacon-1 cpu",
    );
}

#[test]
fn pod_cpu_ranks_every_pod_of_the_namespace() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    check_cpu_ranking(c, r, |p, t| c.pod_cpu(p, t));
    assert_eq!(r["pod_cpu"]["data"]["most"], "web-7d9f8-abcde");
    assert_eq!(r["pod_cpu"]["data"]["least"], "idle-cron-28374-q9z");
    assert_eq!(r["pod_cpu"]["data"]["source"], "containers");
    assert_eq!(notes_of(r, "pod_cpu"), "");
}

/// node-b runs a kernel without MemAvailable: its memory comes from node-mixin's fallback
/// (MemFree + Buffers + Cached + SReclaimable), node-a's from MemAvailable, and the note says
/// so for node-b only, without blaming node-exporter (whose targets are up).
#[test]
fn node_memory_falls_back_per_node_without_memavailable() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    for (i, node) in c.nodes.iter().enumerate() {
        let row = by_key(&r["nodes"]["data"], "nodename", &node.name);
        assert_eq!(row["instance"], format!("10.0.0.{}:9100", i + 1));
        assert_close(
            &row["memory_total_bytes"],
            node.memory_total,
            "memory total",
        );
        let available = |t| {
            let a = c.at(node.memory_available, t);
            if node.old_kernel {
                node.mem_free(a)
                    + node.mem_buffers(a)
                    + node.mem_cached(a)
                    + node.mem_sreclaimable(a)
            } else {
                a
            }
        };
        let used = |t| node.memory_total - available(t);
        check_stats(
            &row["memory_used_bytes"],
            c.stats(used),
            &format!("{} memory used", node.name),
        );
        check_stats(
            &row["memory_used_percent"],
            c.stats(|t| 100.0 * used(t) / node.memory_total),
            &format!("{} memory %", node.name),
        );
        let source = if node.old_kernel {
            "MemFree + Buffers + Cached + SReclaimable"
        } else {
            "MemAvailable"
        };
        assert_eq!(row["memory_source"], source, "{}", node.name);
    }
    assert_close(
        &by_key(&r["nodes"]["data"], "nodename", "node-a")["memory_used_percent"]["current"],
        50.0,
        "node-a now",
    );
    let notes = notes_of(r, "nodes");
    assert_eq!(notes.lines().count(), 1, "{notes}");
    assert!(
        notes.contains("node-b")
            && !notes.contains("node-a")
            && notes.contains("3.14")
            && notes.contains("MemFree + Buffers + Cached + SReclaimable"),
        "{notes}"
    );
    assert!(!notes.contains("is node-exporter installed"), "{notes}");
}

/// node-b's node-exporter pod is replaced 40 minutes in: the host's counters go on under a new
/// `pod` label. Every evaluation point, before, around and after, shows the true busy share.
#[test]
fn node_cpu_is_right_through_a_node_exporter_restart() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    assert!(c.nodes[1].exporter_restart.is_some());
    for node in &c.nodes {
        let row = by_key(&r["nodes"]["data"], "nodename", &node.name);
        assert_close(&row["cores"], node.cores as f64, "cores");
        let busy = 100.0 * node.busy;
        check_stats(
            &row["cpu_used_percent"],
            (busy, busy, busy),
            &format!("{} cpu %", node.name),
        );
        assert_close(
            &row["cpu_used_percent"]["min"],
            busy,
            &format!("{} cpu % min", node.name),
        );
    }
}

#[test]
fn kubelets_count_running_pods_and_containers_per_node() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    assert_eq!(r["kubelets"]["data"]["source"], "kubelet");
    for (i, node) in c.nodes.iter().enumerate() {
        let row = by_key(&r["kubelets"]["data"]["nodes"], "node", &node.name);
        let pods: Vec<&Pod> = c.pods.iter().filter(|p| p.node == i).collect();
        assert_close(&row["pods"], pods.len() as f64, "pods");
        let containers: usize = pods.iter().map(|p| p.containers.len()).sum();
        assert_close(&row["containers"], containers as f64, "running containers");
    }
    assert_eq!(notes_of(r, "kubelets"), "");
}

#[test]
fn network_is_per_pod_without_host_network_pods() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    let net = r["network"]["data"].as_array().unwrap();
    let expected: Vec<&Pod> = pods_in(c, "default").filter(|p| !p.host_network).collect();
    assert_eq!(net.len(), expected.len(), "{net:?}");
    for pod in expected {
        let row = by_key(&r["network"]["data"], "pod", &pod.name);
        check_stats(
            &row["receive"],
            (pod.rx, pod.rx, pod.rx),
            &format!("{} rx", pod.name),
        );
        check_stats(
            &row["transmit"],
            (pod.tx, pod.tx, pod.tx),
            &format!("{} tx", pod.name),
        );
    }
    assert_eq!(notes_of(r, "network"), "");
}

/// A namespace without pods, on a containerd cluster and on a Docker-runtime one: every
/// cAdvisor answer says the namespace has no series; none blames the runtime.
#[test]
fn an_empty_namespace_is_not_blamed_on_the_runtime() {
    for stack in [realistic(), legacy()] {
        let mut args = stack.args();
        args.extend(["-n", "empty"]);
        let r = report_json(&args);
        for q in ["workload", "pod_cpu", "network"] {
            let notes = notes_of(&r, q);
            assert!(
                notes.contains("no series match")
                    && notes.contains("namespaces with data: default, kube-system"),
                "{q}: {notes}"
            );
            assert!(
                !notes.contains("Docker") && !notes.contains("container/image"),
                "{q}: {notes}"
            );
        }
    }
}

/// Two kube-state-metrics replicas export every series twice (differing by `instance`, and by
/// `pod` on series not about a pod): each object is counted once.
#[test]
fn inventory_counts_each_object_once_with_two_ksm_replicas() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    assert_eq!(c.ksm_replicas, 2);
    let inv = &r["inventory"]["data"];
    assert_eq!(
        inv["pods"].as_array().unwrap().len(),
        pods_in(c, "default").count()
    );
    for pod in pods_in(c, "default") {
        let row = by_key(&inv["pods"], "name", &pod.name);
        let n = pod.containers.len() as f64;
        assert_eq!(
            (
                row["ready_containers"].as_f64(),
                row["containers"].as_f64(),
                row["restarts"].as_f64(),
                row["phase"].as_str(),
            ),
            (
                Some(n),
                Some(n),
                Some(f64::from(pod.restarts)),
                Some("Running")
            ),
            "{}",
            pod.name
        );
    }
    let b1 = by_key(&inv["pods"], "name", "beacon-1");
    assert_eq!(
        (b1["restarts"].as_f64(), b1["node"].as_str()),
        (Some(2.0), Some("node-b"))
    );
    let sts_row = by_key(&inv["statefulsets"], "name", "beacon");
    assert_eq!(
        (sts_row["ready"].as_f64(), sts_row["replicas"].as_f64()),
        (Some(3.0), Some(3.0))
    );
    assert_eq!(inv["services"].as_array().unwrap().len(), 2);
    assert_eq!(
        by_key(&inv["services"], "name", "beacon")["cluster_ip"],
        "10.96.12.34"
    );
    let pvc = by_key(&inv["persistentvolumeclaims"], "name", "data-beacon-0");
    assert_eq!(pvc["phase"], "Bound");
    assert_close(&pvc["capacity_bytes"], GIB, "pvc size");
    assert_eq!(pvc["access_modes"], serde_json::json!(["ReadWriteOnce"]));
    assert_eq!(inv["configmaps"].as_array().unwrap().len(), 2);
    assert_eq!(notes_of(r, "inventory"), "");
}

#[test]
fn text_format_aligns_tables_and_shows_promql() {
    let stack = realistic();
    let run = report(&stack.args());
    assert!(run.ok, "{}", run.stderr);
    let text = run.stdout;
    for needle in [
        "1. CPU and memory of StatefulSet beacon",
        "Most CPU: web-7d9f8-abcde",
        "PromQL:",
        "container_cpu_usage_seconds_total",
        "beacon-headless",
        "ReadWriteOnce",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let header = text
        .lines()
        .find(|l| l.contains("POD") && l.contains("CPU NOW"))
        .unwrap();
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("beacon-0 "))
        .unwrap();
    // Right-aligned numbers end where their header ends.
    assert_eq!(
        header.find("CPU NOW").map(|i| i + "CPU NOW".len()),
        row.find("0.250").map(|i| i + 5),
        "{header}\n{row}"
    );
}

/// Docker runtime (cri-dockerd, minikube's default): per-container series have empty
/// `container`/`image`; questions 1 and 2 are answered from each pod's own cgroup series
/// (which include the sandbox), and the answer says so.
#[test]
fn docker_runtime_answers_from_the_pod_level_cgroups() {
    let stack = legacy();
    let (c, r) = (&stack.cluster, stack.report());
    let q1 = &r["workload"]["data"];
    assert_eq!(
        (&q1["cpu_source"], &q1["memory_source"]),
        (&Value::from("pod_cgroup"), &Value::from("pod_cgroup"))
    );
    check_q1_pods(
        c,
        q1,
        |p, t| c.pod_cgroup_cpu(p, t),
        |p, t| c.pod_cgroup_memory(p, t),
    );
    check_cpu_ranking(c, r, |p, t| c.pod_cgroup_cpu(p, t));
    assert_eq!(r["pod_cpu"]["data"]["source"], "pod_cgroup");
    for q in ["workload", "pod_cpu"] {
        let notes = notes_of(r, q);
        assert!(
            notes.contains("Docker runtime") && notes.contains("pod-level cgroup"),
            "{q}: {notes}"
        );
        assert!(!notes.contains("need containerd"), "{q}: {notes}");
    }
    // Network needs no container label on any runtime: answered, nothing to explain.
    for pod in pods_in(c, "default").filter(|p| !p.host_network) {
        let row = by_key(&r["network"]["data"], "pod", &pod.name);
        check_stats(&row["receive"], (pod.rx, pod.rx, pod.rx), &pod.name);
    }
    assert_eq!(notes_of(r, "network"), "");
    // The text says where the figures come from.
    let text = report(&stack.args()).stdout;
    assert!(text.contains("Source: pod-level cgroup"), "{text}");
}

/// Without the kubelet's gauges, question 4 counts kube-state-metrics' objects: once each,
/// although two replicas export them.
#[test]
fn kubelet_fallback_counts_each_pod_once_with_two_ksm_replicas() {
    let stack = legacy();
    let (c, r) = (&stack.cluster, stack.report());
    assert_eq!(r["kubelets"]["data"]["source"], "kube-state-metrics");
    let notes = notes_of(r, "kubelets");
    assert!(
        notes.contains("no series kubelet_running_pods")
            && notes.contains(r#"job="kubelet" is scraped"#)
            && notes.contains("falling back to kube-state-metrics"),
        "{notes}"
    );
    assert_eq!(notes_of(r, "inventory"), "");
    for (i, node) in c.nodes.iter().enumerate() {
        let row = by_key(&r["kubelets"]["data"]["nodes"], "node", &node.name);
        let pods: Vec<&Pod> = c.pods.iter().filter(|p| p.node == i).collect();
        let containers: usize = pods.iter().map(|p| p.containers.len()).sum();
        assert_eq!(
            (row["pods"].as_f64(), row["containers"].as_f64()),
            (Some(pods.len() as f64), Some(containers as f64)),
            "{}",
            node.name
        );
    }
}

/// Old kernels on every node: no MemAvailable anywhere, yet node-exporter is scraped and up.
#[test]
fn old_kernels_everywhere_fall_back_without_blaming_node_exporter() {
    let stack = legacy();
    let (c, r) = (&stack.cluster, stack.report());
    for node in &c.nodes {
        let row = by_key(&r["nodes"]["data"], "nodename", &node.name);
        let used = |t| {
            let a = c.at(node.memory_available, t);
            node.memory_total
                - (node.mem_free(a)
                    + node.mem_buffers(a)
                    + node.mem_cached(a)
                    + node.mem_sreclaimable(a))
        };
        check_stats(&row["memory_used_bytes"], c.stats(used), &node.name);
    }
    let notes = notes_of(r, "nodes");
    assert_eq!(notes.lines().count(), 1, "{notes}");
    assert!(
        notes.contains("node-a") && notes.contains("node-b") && notes.contains("3.14"),
        "{notes}"
    );
    assert!(
        !notes.contains("is node-exporter installed") && !notes.contains("no series"),
        "{notes}"
    );
}

/// The chart ids the HTML must carry for questions 1, 2, 3 and 5.
const CHARTS: [&str; 7] = [
    "q1-cpu",
    "q1-memory",
    "q2-pod-cpu",
    "q3-node-memory",
    "q3-node-cpu",
    "q5-receive",
    "q5-transmit",
];

/// Each chart's figure in a DOM dump holds an SVG with at least one data line (2 px wide)
/// that has points.
fn assert_charts_drawn(dom: &str) {
    for id in CHARTS {
        let open = format!(r#"id="{id}""#);
        let at = dom
            .find(&open)
            .unwrap_or_else(|| panic!("no chart {id} in the DOM"));
        let figure = &dom[at..at + dom[at..].find("</figure>").unwrap()];
        assert!(figure.contains("<svg"), "{id}: no svg");
        let lines: Vec<&str> = figure
            .split("<polyline")
            .skip(1)
            .filter(|p| p.contains(r#"stroke-width="2""#))
            .collect();
        assert!(!lines.is_empty(), "{id}: no data line");
        for line in lines {
            let points = line
                .split(r#"points=""#)
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(
                points.split_whitespace().count() >= 2,
                "{id}: a line without points"
            );
        }
    }
}

#[test]
fn html_renders_in_headless_chromium_and_markdown_links_its_svgs() {
    report_stack::require(report_stack::CHROMIUM, "chromium");
    let stack = realistic();
    let out = Workdir::new();

    let html = out.path().join("report.html");
    let mut args = stack.args();
    args.extend(["--format", "html", "--output", html.to_str().unwrap()]);
    let run = report_stack::report_logging(&args, "json", "info");
    assert!(run.ok, "{}", run.stderr);
    let source = std::fs::read_to_string(&html).unwrap();
    // The log line counts the charts the file holds (inline SVGs for HTML).
    let written: Value = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "report written")
        .unwrap_or_else(|| panic!("no 'report written' line in {}", run.stderr));
    assert_eq!(
        written["charts"].as_u64(),
        Some(source.matches(r#"<figure class="chart""#).count() as u64),
        "{written}"
    );
    assert_eq!(written["charts"].as_u64(), Some(CHARTS.len() as u64));
    assert!(
        !source.contains("<script") && !source.contains("src=\"http"),
        "self-contained"
    );

    let profile = Workdir::new();
    let chromium = |extra: &[&str]| {
        let output = std::process::Command::new(report_stack::CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1200,5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.contains("Pods using the most and the least CPU"),
        "{dom}"
    );
    assert_charts_drawn(&dom);
    let png = out.path().join("report.png");
    chromium(&[&format!("--screenshot={}", png.display())]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "the screenshot is nearly empty ({size} bytes)"
    );

    // Markdown writes the same charts as SVG files beside it and links them.
    let md = out.path().join("weekly.md");
    let mut args = stack.args();
    args.extend(["--format", "md", "--output", md.to_str().unwrap()]);
    let run = report(&args);
    assert!(run.ok, "{}", run.stderr);
    let text = std::fs::read_to_string(&md).unwrap();
    for id in CHARTS {
        let file = format!("weekly-{id}.svg");
        assert!(text.contains(&format!("]({file})")), "{file} not linked");
        let svg = std::fs::read_to_string(out.path().join(&file)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains(r#"stroke-width="2""#),
            "{file}"
        );
    }
    assert!(text.contains("```promql"), "PromQL blocks");
    // To look at the rendered reports: BEACON_REPORT_TEST_KEEP=/some/dir cargo test …
    if let Some(keep) = std::env::var_os("BEACON_REPORT_TEST_KEEP") {
        std::fs::write(out.path().join("report.txt"), report(&stack.args()).stdout).unwrap();
        for entry in std::fs::read_dir(out.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                std::path::Path::new(&keep).join(entry.file_name()),
            )
            .unwrap();
        }
    }
    assert!(text.contains("| web-7d9f8-abcde"), "Markdown table rows");
}

#[test]
fn alerts_come_from_prometheus_and_alertmanager() {
    let work = Workdir::new();
    let am = report_stack::Alertmanager::start(work.path());
    let rules = r#"
groups:
  - name: fixture
    interval: 1s
    rules:
      - alert: Watchdog
        expr: vector(1)
        labels: {severity: none}
      - alert: BeaconDown
        expr: vector(1)
        labels: {severity: critical, namespace: default}
        annotations: {summary: "No beacon replica is ready"}
      - alert: BeaconSlow
        expr: vector(1)
        labels: {severity: warning, namespace: default}
      - alert: BeaconDiskFilling
        expr: vector(1)
        for: 1h
        labels: {severity: warning}
"#;
    let prom = Prometheus::start(
        work.path(),
        &work.path().join("tsdb"),
        PrometheusConfig {
            rules: Some(rules.into()),
            ..Default::default()
        },
    );
    // Alertmanager gets its alerts straight from the test, so its list is known exactly.
    let client = reqwest::blocking::Client::new();
    let posted = serde_json::json!([
        {"labels": {"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "default"},
         "annotations": {"summary": "beacon-1 restarts"}},
        {"labels": {"alertname": "NodeDiskFull", "severity": "critical"}},
        {"labels": {"alertname": "Silenced", "severity": "critical"}},
    ]);
    let r = client
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&posted)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "Silenced", "isRegex": false}],
        "startsAt": "2000-01-01T00:00:00Z", "endsAt": "2100-01-01T00:00:00Z",
        "createdBy": "test", "comment": "test"
    });
    let r = client
        .post(format!("{}/api/v2/silences", am.url))
        .json(&silence)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());

    // Wait until the rules have been evaluated: 3 firing and 1 pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v: Value = client
            .get(format!("{}/api/v1/alerts", prom.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["data"]["alerts"].as_array().is_some_and(|a| a.len() == 4) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rules not evaluated: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let r = report_json(&["--prometheus", &prom.url, "--alertmanager", &am.url]);
    let alerts = &r["alerts"]["data"];
    assert_eq!(
        alerts["firing_by_severity"],
        serde_json::json!({"critical": 1, "none": 1, "warning": 1})
    );
    assert_eq!(alerts["pending"], 1);
    let names: Vec<&str> = alerts["prometheus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alertname"].as_str().unwrap())
        .collect();
    // Firing first, critical before warning; pending last.
    assert_eq!(
        names,
        ["BeaconDown", "BeaconSlow", "Watchdog", "BeaconDiskFilling"]
    );
    assert_eq!(
        alerts["prometheus"][0]["summary"],
        "No beacon replica is ready"
    );
    let am_data = &alerts["alertmanager"];
    assert_eq!(
        am_data["active_by_severity"],
        serde_json::json!({"critical": 1, "warning": 1})
    );
    let silenced = by_key(&am_data["alerts"], "alertname", "Silenced");
    assert_eq!(silenced["state"], "suppressed");
    assert_eq!(r["alerts"]["notes"], Value::Array(vec![]));

    let run = report(&["--prometheus", &prom.url, "--alertmanager", &am.url]);
    assert!(
        run.stdout.contains(
            "Prometheus firing by severity: critical: 1, none: 1, warning: 1; pending: 1"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("KubePodCrashLooping"), "{}", run.stdout);
}

#[test]
fn missing_data_is_explained_per_question() {
    // A Prometheus with one (dead) target: no cAdvisor, kubelet, kube-state-metrics or
    // node-exporter.
    let work = Workdir::new();
    let prom = Prometheus::start(
        work.path(),
        &work.path().join("tsdb"),
        PrometheusConfig {
            scrape_configs:
                "  - job_name: prometheus\n    static_configs: [{targets: ['127.0.0.1:1']}]\n"
                    .into(),
            ..Default::default()
        },
    );
    // Wait for the first scrape so `up` names the job.
    let client = reqwest::blocking::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client
        .get(format!("{}/api/v1/query?query=up", prom.url))
        .send()
        .and_then(|r| r.json::<Value>())
        .map(|v| v["data"]["result"].as_array().is_none_or(Vec::is_empty))
        .unwrap_or(true)
    {
        assert!(std::time::Instant::now() < deadline, "no scrape happened");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let run = report(&[
        "--prometheus",
        &prom.url,
        "--format",
        "json",
        "--range",
        "5m",
    ]);
    assert!(run.ok, "missing data is not an error: {}", run.stderr);
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    let notes = |q: &str| {
        r[q]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for q in ["workload", "pod_cpu"] {
        let n = notes(q);
        assert!(
            n.contains("no series container_cpu_usage_seconds_total"),
            "{q}: {n}"
        );
        assert!(
            n.contains(r#"job="kubelet" has 0"#)
                || n.contains(r#"no job="kubelet" targets are scraped (jobs: prometheus)"#),
            "{q}: {n}"
        );
        assert!(n.contains("/metrics/cadvisor"), "{q}: {n}");
    }
    assert!(
        notes("nodes").contains("node-exporter"),
        "{}",
        notes("nodes")
    );
    assert!(
        notes("kubelets").contains("kubelet_running_pods")
            && notes("kubelets").contains("kube_pod_info"),
        "{}",
        notes("kubelets")
    );
    assert!(
        notes("network").contains("container_network_receive_bytes_total"),
        "{}",
        notes("network")
    );
    assert!(
        notes("inventory").contains("kube-state-metrics"),
        "{}",
        notes("inventory")
    );
    assert!(notes("alerts").contains("Watchdog"), "{}", notes("alerts"));
    // The text format shows the same notes.
    let text = report(&["--prometheus", &prom.url, "--range", "5m"]).stdout;
    assert!(
        text.contains("note: no series container_cpu_usage_seconds_total"),
        "{text}"
    );
}

#[test]
fn unusable_prometheus_or_range_fails_on_one_line() {
    let not_prometheus = report_stack::TextServer::start(|path| match path {
        p if p.starts_with("/html/") => {
            (200, "text/html", "<html><body>Grafana</body></html>".into())
        }
        _ => (404, "text/plain", "404 page not found\n".into()),
    });
    let dead = format!("http://127.0.0.1:{}", report_stack::free_port());
    let html = format!("{}/html", not_prometheus.url);
    let cases: [(&[&str], &str); 6] = [
        (&["--prometheus", &dead], "cannot reach"),
        (&["--prometheus", &not_prometheus.url], "answered HTTP 404"),
        (&["--prometheus", &html], "not the Prometheus API"),
        (&["--prometheus", "ftp://x"], "only http and https"),
        (
            &["--prometheus", &dead, "--start", "2000", "--end", "1000"],
            "is not after the start",
        ),
        (
            &["--prometheus", &dead, "--range", "30d", "--step", "1s"],
            "raise the step",
        ),
    ];
    for (args, message) in cases {
        let run = report(args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", run.stderr);
        assert!(
            lines[0].starts_with("beacon: error:") && lines[0].contains(message),
            "{args:?}: {}",
            lines[0]
        );
    }
}

/// The live path: a fixture exporter (cAdvisor-shaped counters growing in real time) scraped
/// every second by a real Prometheus.
#[test]
fn live_scrapes_of_a_fixture_exporter_are_ranked() {
    const PODS: [(&str, f64); 3] = [("live-a", 0.2), ("live-b", 0.9), ("live-c", 0.5)];
    let born = std::time::Instant::now();
    let exporter = report_stack::TextServer::start(move |path| {
        if path != "/metrics/cadvisor" {
            return (404, "text/plain", "404 page not found\n".into());
        }
        let secs = born.elapsed().as_secs_f64();
        let mut body = String::from("# TYPE container_cpu_usage_seconds_total counter\n");
        for (pod, cores) in PODS {
            body.push_str(&format!(
                "container_cpu_usage_seconds_total{{namespace=\"live\",pod=\"{pod}\",container=\"app\",image=\"app:1\"}} {}\n",
                100.0 + cores * secs
            ));
        }
        (200, "text/plain; version=0.0.4", body)
    });
    let work = Workdir::new();
    let target = exporter.url.trim_start_matches("http://");
    let prom = Prometheus::start(
        work.path(),
        &work.path().join("tsdb"),
        PrometheusConfig {
            scrape_configs: format!(
                "  - job_name: kubelet\n    metrics_path: /metrics/cadvisor\n    static_configs: [{{targets: ['{target}']}}]\n"
            ),
            ..Default::default()
        },
    );
    // Wait for 8 scrapes, so every 5 s rate window at the range's end is full of samples.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let query = format!(
        "{}/api/v1/query?query=count_over_time(container_cpu_usage_seconds_total{{pod=%22live-b%22}}[1m])",
        prom.url
    );
    loop {
        let v: Value = reqwest::blocking::get(&query).unwrap().json().unwrap();
        let scrapes = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|n| n.parse::<u32>().ok());
        if scrapes.is_some_and(|n| n >= 8) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the exporter is not scraped: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let args = [
        "--prometheus",
        &prom.url,
        "-n",
        "live",
        "--statefulset",
        "live",
        "--range",
        "2m",
        "--step",
        "1s",
        "--rate-window",
        "5s",
    ];
    let r = report_json(&args);
    let ranking = r["pod_cpu"]["data"]["ranking"].as_array().unwrap();
    let names: Vec<&str> = ranking.iter().map(|p| p["pod"].as_str().unwrap()).collect();
    assert_eq!(names, ["live-b", "live-c", "live-a"], "{}", r["pod_cpu"]);
    for row in ranking {
        let cores = PODS.iter().find(|p| p.0 == row["pod"]).unwrap().1;
        let now = row["cpu"]["current"].as_f64().unwrap();
        assert!(
            (now - cores).abs() < 0.15 * cores,
            "{}: {now} vs {cores}",
            row["pod"]
        );
    }
    // The StatefulSet `live` has pods live-a.. only by prefix, not by ordinal: nothing matches,
    // and the answer says which namespaces do have data.
    let notes = r["workload"]["notes"].to_string();
    assert!(
        notes.contains("no series match StatefulSet live") && notes.contains("live"),
        "{notes}"
    );
}

/// A range after now has no data yet: one clear error about the range, not notes that blame
/// the scrape configuration.
#[test]
fn a_range_in_the_future_is_a_clear_error() {
    let stack = realistic();
    let (soon, later) = ((now() + 3600.0).to_string(), (now() + 7200.0).to_string());
    for range in [
        ["--start", &soon, "--end", &later],
        ["--range", "1h", "--end", &later],
    ] {
        let mut args = vec!["--prometheus", &stack.prom.url];
        args.extend(range);
        let run = report(&args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stdout);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", run.stderr);
        assert!(
            lines[0].starts_with("beacon: error:") && lines[0].contains("in the future"),
            "{}",
            lines[0]
        );
    }
}

/// The queries of a panel of the cluster-questions dashboard, in target order, with Grafana's
/// variables replaced by namespace `default`, StatefulSet `beacon` and a 5m rate window (the
/// fixture's, as in the report).
fn dashboard_exprs(title: &str) -> Vec<String> {
    let file =
        beacon_testkit::repo_root().join("charts/beacon/files/dashboards/cluster-questions.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let panel = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "5m")
                .replace("$namespace", "default")
                .replace("$statefulset", "beacon")
        })
        .collect()
}

/// The dashboard's panels for questions 1 and 2, run on both fixture clusters at the range's
/// end: per-container figures on containerd, the pod-level cgroups' on the Docker runtime.
#[test]
fn dashboard_cpu_and_memory_panels_answer_on_both_runtimes() {
    for (stack, docker) in [(realistic(), false), (legacy(), true)] {
        let c = &stack.cluster;
        let t = c.end;
        let cpu = |p: &Pod| {
            if docker {
                c.pod_cgroup_cpu(p, t)
            } else {
                c.pod_cpu(p, t)
            }
        };
        let memory = |p: &Pod| {
            if docker {
                c.pod_cgroup_memory(p, t)
            } else {
                c.at(p.memory, t)
            }
        };
        let query = |expr: &str| -> Vec<(String, f64)> {
            prometheus_api(stack, "query", &[("query", expr), ("time", &stack.end)])
                .iter()
                .map(|s| {
                    (
                        s["metric"]["pod"].as_str().unwrap_or("").to_owned(),
                        s["value"][1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect()
        };
        let what = if docker { "docker" } else { "containerd" };
        let sts = statefulset_pods(c);
        for (title, f) in [
            ("StatefulSet CPU by pod", &cpu as &dyn Fn(&Pod) -> f64),
            ("StatefulSet memory by pod", &memory),
        ] {
            let mut rows = query(&dashboard_exprs(title)[0]);
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            assert_eq!(
                names,
                ["beacon-0", "beacon-1", "beacon-2"],
                "{what} {title}"
            );
            for (name, value) in &rows {
                let expected = f(pod(c, name));
                assert_close(
                    &Value::from(*value),
                    expected,
                    &format!("{what} {title} {name}"),
                );
            }
        }
        let totals = dashboard_exprs("StatefulSet total");
        let total_cpu: f64 = sts.iter().map(|p| cpu(p)).sum();
        let total_mib: f64 = sts.iter().map(|p| memory(p)).sum::<f64>() / 1024.0 / 1024.0;
        assert_close(&Value::from(query(&totals[0])[0].1), total_cpu, "total cpu");
        assert_close(&Value::from(query(&totals[1])[0].1), total_mib, "total MiB");

        let mut ranked: Vec<(&str, f64)> = pods_in(c, "default")
            .map(|p| (p.name.as_str(), cpu(p)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (title, expected) in [
            ("Top 3 pods by CPU", &ranked[..3]),
            ("Bottom 3 pods by CPU", &ranked[ranked.len() - 3..]),
        ] {
            let mut rows = query(&dashboard_exprs(title)[0]);
            rows.sort_by(|a, b| b.1.total_cmp(&a.1));
            assert_eq!(rows.len(), 3, "{what} {title}: {rows:?}");
            for (row, (name, value)) in rows.iter().zip(expected) {
                assert_eq!(row.0, *name, "{what} {title}");
                assert_close(
                    &Value::from(row.1),
                    *value,
                    &format!("{what} {title} {name}"),
                );
            }
        }
    }
}

/// `GET /api/v1/<endpoint>` on the stack's Prometheus: the `data.result` of a successful answer.
fn prometheus_api(stack: &Stack, endpoint: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let url =
        reqwest::Url::parse_with_params(&format!("{}/api/v1/{endpoint}", stack.prom.url), params)
            .unwrap();
    let v: Value = reqwest::blocking::get(url).unwrap().json().unwrap();
    assert_eq!(v["status"], "success", "{params:?}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

/// One range query over the fixture's range at its 15 s step, as Grafana runs a timeseries
/// panel: (the series' labels, [(time, value)]) per series.
fn query_range(stack: &Stack, expr: &str) -> Vec<(Value, Vec<(f64, f64)>)> {
    let step = report_fixture::STEP.to_string();
    let params = [
        ("query", expr),
        ("start", &stack.start),
        ("end", &stack.end),
        ("step", &step),
    ];
    prometheus_api(stack, "query_range", &params)
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().unwrap(),
                        p[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            (s["metric"].clone(), points)
        })
        .collect()
}

/// The dashboard's node panels (question 3), run as range queries over the whole range on both
/// fixture clusters. Each panel target draws exactly one line per node, labelled by its
/// node-exporter `instance` alone, and every point is the fixture's value:
/// - memory from MemAvailable, or on old kernels (node-b; every node of the legacy cluster)
///   from MemFree + Buffers + Cached + SReclaimable;
/// - cores and busy cores right through node-b's node-exporter restart (its old pod's series
///   linger for the 5-minute lookback next to the new pod's) and on node-c's young series.
///
/// The cores panel is a stat (one instant query at the dashboard's end time, which may be any
/// time), so it is checked at every step as well.
#[test]
fn dashboard_node_panels_fall_back_without_memavailable_and_survive_an_exporter_restart() {
    for stack in [realistic(), legacy()] {
        let c = &stack.cluster;
        let what = if c.docker_runtime {
            "legacy"
        } else {
            "realistic"
        };
        // Expected values, from the fixture's node parameters only.
        let available = |n: &report_fixture::Node, t: f64| {
            let a = c.at(n.memory_available, t);
            if n.old_kernel {
                n.mem_free(a) + n.mem_buffers(a) + n.mem_cached(a) + n.mem_sreclaimable(a)
            } else {
                a
            }
        };
        let mib = report_fixture::MIB;
        type Expected<'a> = &'a dyn Fn(&report_fixture::Node, f64) -> f64;
        let used_percent = |n: &report_fixture::Node, t: f64| {
            100.0 * (n.memory_total - available(n, t)) / n.memory_total
        };
        let used_mib = |n: &report_fixture::Node, t: f64| (n.memory_total - available(n, t)) / mib;
        let total_mib = |n: &report_fixture::Node, _: f64| n.memory_total / mib;
        let cores = |n: &report_fixture::Node, _: f64| n.cores as f64;
        // node-exporter's user and system modes: the share of each core that is busy.
        let busy_cores = |n: &report_fixture::Node, _: f64| n.busy * n.cores as f64;
        // (panel, target, expected, whether it is a rate: a rate needs two samples, so a young
        // node's line starts one step after its first sample).
        let checks: [(&str, usize, Expected, bool); 5] = [
            ("Node memory used %", 0, &used_percent, false),
            ("Node memory used MB", 0, &used_mib, false),
            ("Node memory used MB", 1, &total_mib, false),
            ("Node CPU cores", 0, &cores, false),
            ("Node CPU used (cores)", 0, &busy_cores, true),
        ];
        for (title, target, expected, is_rate) in checks {
            let expr = &dashboard_exprs(title)[target];
            let lines = query_range(stack, expr);
            let instance = |n: &report_fixture::Node| format!("{}:9100", n.ip);
            let mut got: Vec<String> = lines.iter().map(|(l, _)| l.to_string()).collect();
            let mut wanted: Vec<String> = c
                .nodes
                .iter()
                .map(|n| serde_json::json!({ "instance": instance(n) }).to_string())
                .collect();
            got.sort();
            wanted.sort();
            assert_eq!(
                got, wanted,
                "{what} {title} [{target}]: one line per node\n{expr}"
            );
            for node in &c.nodes {
                let (_, points) = lines
                    .iter()
                    .find(|(l, _)| l["instance"] == instance(node))
                    .unwrap();
                let first = node.joined.map_or(c.start, |j| {
                    let at = (j / report_fixture::STEP).ceil() * report_fixture::STEP;
                    if is_rate {
                        at + report_fixture::STEP
                    } else {
                        at
                    }
                });
                let times: Vec<f64> = c.evals().into_iter().filter(|t| *t >= first).collect();
                let got_times: Vec<f64> = points.iter().map(|p| p.0).collect();
                assert_eq!(
                    got_times, times,
                    "{what} {title} [{target}] {}: a point at every step",
                    node.name
                );
                for (t, value) in points {
                    assert_close(
                        &Value::from(*value),
                        expected(node, *t),
                        &format!(
                            "{what} {title} [{target}] {} at start{:+}s",
                            node.name,
                            t - c.start
                        ),
                    );
                }
            }
        }
    }
}

/// kube-prometheus-stack's recording rule keeps the sandbox (pause) container as a row of its
/// own (`container=""`, it has an image); the raw path's filters drop it. Both paths must give
/// the containers' CPU: the same numbers, sandbox excluded.
#[test]
fn recording_rule_and_raw_paths_count_the_same_containers() {
    let stack = with_recording_rule();
    let (c, r) = (&stack.cluster, stack.report());
    let q1_cpu = r["workload"]["queries"][0]["promql"].as_str().unwrap();
    assert!(
        q1_cpu
            .contains("node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m"),
        "the rule is used when present: {q1_cpu}"
    );
    // The rule is evaluated at its group's own offset within each 15 s, so only pods whose
    // CPU is flat are compared over the whole range; every pod's current value is exact.
    let flat = |p: &Pod| p.containers.iter().all(|k| k.cpu.before == k.cpu.after);
    for pod in statefulset_pods(c) {
        let row = by_key(&r["workload"]["data"]["pods"], "pod", &pod.name);
        let expected = c.stats(|t| c.pod_cpu(pod, t));
        assert_close(
            &row["cpu"]["current"],
            expected.0,
            &format!("{} now", pod.name),
        );
        if flat(pod) {
            check_stats(&row["cpu"], expected, &format!("{} cpu", pod.name));
        }
    }
    let raw = realistic().report();
    let ranking = |r: &Value| -> Vec<(String, f64)> {
        r["pod_cpu"]["data"]["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["pod"].as_str().unwrap().to_owned(),
                    p["cpu"]["current"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (with_rule, without) = (ranking(r), ranking(raw));
    assert_eq!(with_rule.len(), without.len());
    for ((pod, rule_now), (raw_pod, raw_now)) in with_rule.iter().zip(&without) {
        assert_eq!(pod, raw_pod);
        assert_close(
            &Value::from(*rule_now),
            *raw_now,
            &format!("{pod}: rule vs raw"),
        );
        let expected = c.pod_cpu(self::pod(c, pod), c.end);
        assert_close(&Value::from(*rule_now), expected, &format!("{pod} now"));
    }
}

/// Every instant and range query asks for `stats=all`: the JSON's `cost` sums what Prometheus
/// reported, and `--log debug` shows each query. An instant selector of one sample per series
/// loads exactly its series: `kube_pod_info{namespace="default"}` is 7 pods × 2 replicas.
#[test]
fn cost_of_each_query_is_logged_and_summed_in_the_json() {
    let stack = realistic();
    let c = &stack.cluster;
    let mut args = vec!["--format", "json"];
    args.extend(stack.args());
    let run = report_logging(&args, "json", "debug");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    let logged: Vec<Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "query")
        .collect();
    let cost = &r["cost"];
    assert_eq!(
        cost["queries"].as_u64().unwrap() as usize,
        logged.len(),
        "{cost}"
    );
    let samples = |l: &Value| l["samples"].as_u64().unwrap();
    let total: u64 = logged.iter().map(samples).sum();
    assert_eq!(cost["total_samples"], total);
    assert_eq!(
        cost["largest_samples"],
        logged.iter().map(samples).max().unwrap()
    );
    assert_eq!(cost["failed_queries"], 0);
    assert_eq!(cost["max_concurrent_queries"], 4);
    assert_eq!(cost["sample_budget"], 500_000);
    assert_eq!(r["partial"], false);
    let pod_info = logged
        .iter()
        .find(|l| l["promql"] == r#"kube_pod_info{namespace="default"}"#)
        .expect("the inventory's pod query is logged");
    let default_pods = pods_in(c, "default").count() as u64;
    assert_eq!(samples(pod_info), default_pods * c.ksm_replicas as u64);
}

/// Prometheus started with a `--query.max-samples` that the node CPU range query exceeds:
/// that query's failure is a note naming question 3 and what it asked for, the other answers
/// are complete, and the exit status is 3 (partial report written).
#[test]
fn a_failed_query_is_named_and_the_report_exits_3() {
    let stack = limited();
    let c = &stack.cluster;
    let mut args = vec!["--format", "json"];
    args.extend(stack.args());
    let run = report(&args);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("partial"), "{}", run.stderr);
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r["partial"], true);
    let notes = notes_of(&r, "nodes");
    assert!(
        notes.contains("question 3 (node memory and CPU): asking for")
            && notes.contains("failed: Prometheus refused it")
            && notes.contains("too many samples"),
        "{notes}"
    );
    assert!(r["cost"]["failed_queries"].as_u64().unwrap() >= 1);
    // The rest is whole: question 1 as on an unlimited Prometheus.
    check_q1_pods(
        c,
        &r["workload"]["data"],
        |p, t| c.pod_cpu(p, t),
        |p, t| c.at(p.memory, t),
    );
    assert_eq!(notes_of(&r, "workload"), "");
    // The text says it too, where the question is.
    let text = report(&stack.args());
    assert_eq!(text.code, Some(3));
    assert!(
        text.stdout.contains("question 3 (node memory and CPU)"),
        "{}",
        text.stdout
    );
}

/// `--workload deployment/web` finds the pods of the Deployment's ReplicaSets through
/// kube_pod_owner and kube_replicaset_owner (both exported by two kube-state-metrics replicas),
/// `daemonset/…` through kube_pod_owner; `--statefulset` still works.
#[test]
fn q1_covers_deployments_daemonsets_and_statefulsets() {
    let stack = realistic();
    let c = &stack.cluster;
    let q1 = |extra: &[&str]| {
        let mut args = stack.args();
        args.extend(extra);
        report_json(&args)["workload"].clone()
    };
    let names = |q: &Value| -> Vec<String> {
        q["data"]["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pod"].as_str().unwrap().to_owned())
            .collect()
    };
    for (args, ns) in [
        (vec!["--workload", "deployment/web"], "default"),
        (vec!["--workload", "deploy/worker"], "default"),
        (
            vec!["-w", "daemonset/node-exporter", "-n", "kube-system"],
            "kube-system",
        ),
        (vec!["--workload", "statefulset/beacon"], "default"),
        (vec!["--statefulset", "beacon"], "default"),
    ] {
        let name = args[1].rsplit('/').next().unwrap();
        let expected: Vec<&Pod> = pods_in(c, ns)
            .filter(|p| {
                let o = report_workloads::owner(p);
                o.deployment.as_deref() == Some(name) || (o.deployment.is_none() && o.name == name)
            })
            .collect();
        let q = q1(&args);
        let mut want: Vec<String> = expected.iter().map(|p| p.name.clone()).collect();
        want.sort();
        assert_eq!(names(&q), want, "{args:?}");
        check_stats(
            &q["data"]["total_cpu"],
            c.stats(|t| expected.iter().map(|p| c.pod_cpu(p, t)).sum()),
            &format!("{args:?} total cpu"),
        );
    }
    // The Deployment's other ReplicaSet (scaled down) and a same-named one in kube-system
    // add nobody.
    assert!(
        names(&q1(&[
            "-n",
            "kube-system",
            "--workload",
            "deployment/worker"
        ]))
        .is_empty()
    );
    let run = report(&[&stack.args()[..], &["--workload", "cronjob/x"]].concat());
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("bad workload \"cronjob/x\""),
        "{}",
        run.stderr
    );
}

/// Question 1 shows each pod's requests and limits (summed over its containers, each counted
/// once although two kube-state-metrics replicas export it) and flags average use above the
/// request or under a quarter of it.
#[test]
fn q1_shows_requests_and_limits_and_flags_the_extremes() {
    let stack = realistic();
    let (c, r) = (&stack.cluster, stack.report());
    for pod in statefulset_pods(c) {
        let row = by_key(&r["workload"]["data"]["pods"], "pod", &pod.name);
        let (cpu_req, cpu_lim, mem_req, mem_lim) = report_workloads::pod_resources(pod).unwrap();
        let res = &row["resources"];
        assert_close(&res["cpu_request"], cpu_req, "cpu request");
        assert_close(&res["cpu_limit"], cpu_lim, "cpu limit");
        assert_close(&res["memory_request"], mem_req, "memory request");
        assert_close(&res["memory_limit"], mem_lim, "memory limit");
        let cpu_avg = c.stats(|t| c.pod_cpu(pod, t)).1;
        let mem_avg = c.stats(|t| c.at(pod.memory, t)).1;
        let mut flags = Vec::new();
        for (what, avg, req) in [("cpu", cpu_avg, cpu_req), ("memory", mem_avg, mem_req)] {
            if avg > req {
                flags.push(format!("{what} above request"));
            } else if avg < req / 4.0 {
                flags.push(format!("{what} under a quarter of request"));
            }
        }
        assert_eq!(row["flags"], serde_json::json!(flags), "{}", pod.name);
    }
    // beacon-2 uses 0.05 of its 0.3 cores; beacon-0 and -1 use more memory than 100 MiB.
    let flagged = |name: &str| by_key(&r["workload"]["data"]["pods"], "pod", name)["flags"].clone();
    assert!(
        flagged("beacon-2")
            .to_string()
            .contains("cpu under a quarter")
    );
    assert!(
        flagged("beacon-0")
            .to_string()
            .contains("memory above request")
    );
}

/// Every query of a namespaced question that joins on (namespace, pod) names the namespace on
/// both sides of the join, so Prometheus never reads the whole cluster's pods.
#[test]
fn every_join_names_the_namespace() {
    let stack = realistic();
    let mut args = stack.args();
    args.extend(["--selector", "app=beacon"]);
    let with_selector = report_json(&args);
    let mut args = stack.args();
    args.extend(["--workload", "deployment/web"]);
    let with_deployment = report_json(&args);
    let mut checked = 0;
    for r in [stack.report(), &with_selector, &with_deployment] {
        for q in ["workload", "pod_cpu", "network", "inventory"] {
            for used in r[q]["queries"].as_array().unwrap() {
                let promql = used["promql"].as_str().unwrap();
                if !promql.contains(" on (") {
                    continue;
                }
                checked += 1;
                // Every selector (`metric{…}`) in the query.
                for selector in promql.split('{').skip(1) {
                    let body = selector.split('}').next().unwrap();
                    assert!(body.contains("namespace=\"default\""), "{q}: {promql}");
                }
            }
        }
    }
    assert!(checked >= 6, "only {checked} joins checked");
}

/// `--all-namespaces` ranks every pod of the cluster (question 2) and its network (question
/// 5), keyed `namespace/pod`; question 1 stays in its namespace.
#[test]
fn all_namespaces_ranks_the_whole_cluster() {
    let stack = realistic();
    let c = &stack.cluster;
    let mut args = stack.args();
    args.push("--all-namespaces");
    let r = report_json(&args);
    let mut expected: Vec<(String, f64)> = c
        .pods
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.namespace, p.name),
                c.stats(|t| c.pod_cpu(p, t)).1,
            )
        })
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ranking = r["pod_cpu"]["data"]["ranking"].as_array().unwrap();
    let names: Vec<&str> = ranking.iter().map(|p| p["pod"].as_str().unwrap()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, want);
    assert_eq!(
        r["pod_cpu"]["data"]["most"],
        "kube-system/node-exporter-8x7f2"
    );
    let net = r["network"]["data"].as_array().unwrap();
    let no_host: Vec<&Pod> = c.pods.iter().filter(|p| !p.host_network).collect();
    assert_eq!(net.len(), no_host.len(), "{net:?}");
    for pod in no_host {
        let key = format!("{}/{}", pod.namespace, pod.name);
        let row = by_key(&r["network"]["data"], "pod", &key);
        check_stats(&row["receive"], (pod.rx, pod.rx, pod.rx), &key);
    }
    assert_eq!(r["workload"]["data"]["pods"].as_array().unwrap().len(), 3);
}

static DOCKER_NO_POD_NET: OnceLock<Stack> = OnceLock::new();

/// A Docker-runtime cluster where cAdvisor has network series only for the nodes' root
/// cgroups (no namespace or pod labels), as cri-dockerd leaves it on some versions.
fn docker_without_pod_network() -> &'static Stack {
    DOCKER_NO_POD_NET.get_or_init(|| {
        let edit = |om: &mut OpenMetrics| {
            for metric in [
                "container_network_receive_bytes_total",
                "container_network_transmit_bytes_total",
            ] {
                om.retain(metric, |line| !line.contains("pod=\""));
            }
        };
        Stack::start_full(
            Cluster::legacy(now()),
            edit,
            PrometheusConfig::default(),
            |_, _| {},
        )
    })
}

/// Question 5 on that cluster says why per-pod network is missing and what would give it,
/// not just "namespaces with data: none".
#[test]
fn q5_explains_network_on_the_root_cgroup_only() {
    let stack = docker_without_pod_network();
    let r = stack.report();
    assert!(r["network"]["data"].as_array().unwrap().is_empty());
    let notes = notes_of(r, "network");
    assert!(
        notes.contains("per-pod network is not available")
            && notes.contains("Docker runtime")
            && notes.contains("containerd")
            && !notes.contains("namespaces with data: none"),
        "{notes}"
    );
    // An empty namespace on the same cluster is still only that.
    let mut args = stack.args();
    args.extend(["-n", "empty"]);
    let notes = notes_of(&report_json(&args), "network");
    assert!(
        notes.contains("per-pod network is not available"),
        "{notes}"
    );
}

/// With `--sample-budget 100`, question 1's range queries (3 series each: one container per
/// StatefulSet pod) get the smallest multiple of the 15 s step whose points fit: their charts
/// and figures come from that coarser grid, and the answer says so.
#[test]
fn a_range_query_over_the_sample_budget_gets_a_coarser_step() {
    let stack = realistic();
    let c = &stack.cluster;
    let mut args = stack.args();
    args.extend(["--sample-budget", "100"]);
    let r = report_json(&args);
    let span = c.end - c.start;
    let step = (1..)
        .map(|k| f64::from(k) * 15.0)
        .find(|s| 3 * ((span / s).floor() as u64 + 1) <= 100)
        .unwrap();
    assert_eq!(step, 120.0);
    let times = report_stack::grid(c.start, c.end, step);
    let notes = notes_of(&r, "workload");
    assert!(
        notes.contains("coarsened from 15s to 2m") && notes.contains("31 points instead of 241"),
        "{notes}"
    );
    let chart = r["workload"]["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ch| ch["id"] == "q1-cpu")
        .unwrap();
    for series in chart["series"].as_array().unwrap() {
        let at: Vec<f64> = series["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_f64().unwrap())
            .collect();
        assert_eq!(at, times, "{}", series["name"]);
    }
    for pod in statefulset_pods(c) {
        let values: Vec<f64> = times.iter().map(|t| c.pod_cpu(pod, *t)).collect();
        let avg = values.iter().sum::<f64>() / values.len() as f64;
        let row = by_key(&r["workload"]["data"]["pods"], "pod", &pod.name);
        assert_close(&row["cpu"]["avg"], avg, &format!("{} coarse avg", pod.name));
        assert_close(&row["cpu"]["current"], *values.last().unwrap(), &pod.name);
    }
}

static WIDE: OnceLock<Stack> = OnceLock::new();

/// Twelve nodes with GKE-length names (52 characters), each fuller and busier than the last,
/// and 60 pods of distinct CPU: more than a chart may draw or a table may list.
fn wide_names() -> &'static Stack {
    WIDE.get_or_init(|| {
        let mut c = Cluster::many(now(), 60);
        c.nodes = (0..12)
            .map(|i| report_fixture::Node {
                name: format!("gke-production-europe-west4-default-pool-{i:02}-a1b2c3d4"),
                ip: format!("10.0.2.{}", i + 1),
                cores: 4,
                memory_total: 32.0 * GIB,
                memory_available: report_fixture::Piecewise::flat((30.0 - i as f64) * GIB),
                old_kernel: false,
                busy: 0.1 + 0.05 * i as f64,
                exporter_restart: None,
                joined: None,
            })
            .collect();
        for (i, p) in c.pods.iter_mut().enumerate() {
            p.node = i % 12;
        }
        Stack::start(c)
    })
}

/// The chart's figure in the HTML: its data lines and its legend's full names.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no chart {id}"));
    &html[at..at + html[at..].find("</figure>").unwrap()]
}

fn legend_names(figure: &str) -> Vec<String> {
    figure
        .split("<title>")
        .skip(1)
        .map(|t| t.split("</title>").next().unwrap().to_owned())
        .collect()
}

#[test]
fn wide_clusters_draw_ten_lines_by_the_questions_measure_and_fit_100_columns() {
    let stack = wide_names();
    let c = &stack.cluster;
    let out = Workdir::new();
    let html = out.path().join("wide.html");
    let mut args = stack.args();
    args.extend(["--statefulset", "load"]);
    args.extend(["--format", "html", "--output", html.to_str().unwrap()]);
    let run = report(&args);
    assert!(run.ok, "{}", run.stderr);
    let html = std::fs::read_to_string(&html).unwrap();

    for id in CHARTS {
        let f = figure(&html, id);
        let lines = f
            .split("<polyline")
            .filter(|p| p.contains(r#"stroke-width="2""#))
            .count();
        assert!((1..=12).contains(&lines), "{id}: {lines} lines");
    }

    // Question 2: the 7 busiest and 3 idlest by average CPU, as the fixture computes it.
    let mut by_cpu: Vec<(String, f64)> = c
        .pods
        .iter()
        .map(|p| (p.name.clone(), c.stats(|t| c.pod_cpu(p, t)).1))
        .collect();
    by_cpu.sort_by(|a, b| b.1.total_cmp(&a.1));
    let expected: Vec<String> = by_cpu[..7]
        .iter()
        .chain(&by_cpu[57..])
        .map(|p| p.0.clone())
        .collect();
    assert_eq!(legend_names(figure(&html, "q2-pod-cpu")), expected);
    let mut rest: Vec<f64> = by_cpu[7..57].iter().map(|p| p.1).collect();
    rest.sort_by(f64::total_cmp);
    let median = (rest[24] + rest[25]) / 2.0;
    let stated = format!("50 other pods: median average CPU {median:.3}");
    assert!(
        figure(&html, "q2-pod-cpu").contains(&stated),
        "{stated} not in the chart"
    );

    // Question 3: the ten fullest nodes (least available memory: the last ten), full names in
    // <title>, shortened in the legend's text.
    let memory = legend_names(figure(&html, "q3-node-memory"));
    let fullest: Vec<String> = c
        .nodes
        .iter()
        .rev()
        .take(10)
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(memory, fullest);
    let f = figure(&html, "q3-node-memory");
    assert!(
        !f.contains(&format!(">{}</text>", fullest[0])),
        "drawn in full"
    );
    assert!(f.contains("2 other nodes"), "remainder stated");
    let busiest = legend_names(figure(&html, "q3-node-cpu"));
    assert_eq!(
        busiest, fullest,
        "busy share grows with the node's number too"
    );

    // Text: every line fits 100 columns, tables say what they leave out, 3 and 4 summarise.
    let mut args = stack.args();
    args.extend(["--statefulset", "load"]);
    let text = report(&args);
    assert!(text.ok, "{}", text.stderr);
    for line in text.stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    // Question 1 (the 60-pod StatefulSet: usage, and requests and limits), 2 and 5 each
    // leave 50 pods out.
    assert_eq!(
        text.stdout.matches("50 more pods between them").count(),
        4,
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("Memory used across 12 nodes (average): min"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("Pods across 12 kubelets: min 5"),
        "{}",
        text.stdout
    );

    // Markdown's source too: prose and PromQL wrapped, table names shortened in the middle.
    let md = out.path().join("wide.md");
    let mut args = stack.args();
    args.extend(["--format", "md", "--output", md.to_str().unwrap()]);
    assert!(report(&args).ok);
    let markdown = std::fs::read_to_string(&md).unwrap();
    for line in markdown.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    // To look at them: BEACON_REPORT_TEST_KEEP=/some/dir cargo test … wide_clusters
    if let Some(keep) = std::env::var_os("BEACON_REPORT_TEST_KEEP") {
        let keep = std::path::Path::new(&keep);
        std::fs::write(keep.join("wide.txt"), &text.stdout).unwrap();
        std::fs::write(keep.join("wide.html"), &html).unwrap();
        std::fs::write(keep.join("wide.md"), &markdown).unwrap();
    }

    // --top changes the tables; the JSON keeps every row.
    let mut args = stack.args();
    args.extend(["--top", "2"]);
    let text = report(&args);
    assert!(
        text.stdout.contains("56 more pods between them"),
        "{}",
        text.stdout
    );
    let json = stack.report();
    assert_eq!(
        json["pod_cpu"]["data"]["ranking"].as_array().unwrap().len(),
        60
    );
    assert_eq!(json["nodes"]["data"].as_array().unwrap().len(), 12);
}

/// With kube-prometheus-stack's node rules, question 3 reads one series per node
/// (`instance:node_cpu_utilisation:rate5m`, `instance:node_num_cpu:sum`) instead of one per
/// CPU and mode, and gives the same busy share and cores.
#[test]
fn q3_uses_the_node_recording_rules_when_present() {
    let stack = with_node_rules();
    let (c, r) = (&stack.cluster, stack.report());
    let queries = r["nodes"]["queries"].to_string();
    assert!(
        queries.contains("100 * avg by (instance) (instance:node_cpu_utilisation:rate5m)")
            && queries.contains("max by (instance) (instance:node_num_cpu:sum)"),
        "{queries}"
    );
    assert!(
        !queries.contains("rate(node_cpu_seconds_total"),
        "{queries}"
    );
    for node in &c.nodes {
        let row = by_key(&r["nodes"]["data"], "nodename", &node.name);
        assert_close(&row["cores"], node.cores as f64, "cores");
        let busy = 100.0 * node.busy;
        assert_close(
            &row["cpu_used_percent"]["current"],
            busy,
            &format!("{} cpu % now", node.name),
        );
        // The rule averages per-CPU rates, so a young or restarted exporter's partial windows
        // read high for five minutes (the raw path's ratio of sums does not): whole-range
        // figures are compared on the node whose series are whole.
        if node.exporter_restart.is_none() && node.joined.is_none() {
            check_stats(
                &row["cpu_used_percent"],
                (busy, busy, busy),
                &format!("{} cpu %", node.name),
            );
        }
    }
}

/// At 1,000 pods the ranking of the 300-pod namespace still starts with the busiest pod and
/// ends with the idlest, as the model has them.
#[test]
fn wide_cluster_ranks_the_big_namespace_busiest_to_idlest() {
    let stack = generated();
    let (c, r) = (&stack.cluster, stack.report());
    let expected = c.cpu_ranking(wide_cluster::BIG_NAMESPACE);
    assert_eq!(expected.len(), c.wide.unwrap().big_namespace_pods);
    let (busiest, idlest) = (expected[0], expected[expected.len() - 1]);
    let data = &r["pod_cpu"]["data"];
    assert_eq!(data["most"], busiest.0.name.as_str());
    assert_eq!(data["least"], idlest.0.name.as_str());
    let top = &data["ranking"][0];
    assert_eq!(top["pod"], busiest.0.name.as_str());
    assert_close(&top["cpu"]["avg"], busiest.1, "busiest pod's avg cpu");
}

/// Question 3 has a row for each of the 50 nodes, with the busy share and memory in use
/// the model gives it.
#[test]
fn wide_cluster_q3_answers_for_every_node() {
    let stack = generated();
    let (c, r) = (&stack.cluster, stack.report());
    let rows = r["nodes"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), c.nodes.len());
    for node in &c.nodes {
        let row = by_key(&r["nodes"]["data"], "nodename", &node.name);
        assert_close(&row["cores"], node.cores as f64, "cores");
        let busy = 100.0 * node.busy;
        let used = 100.0 * c.node_memory_used_ratio(node);
        // Every node has its current and average; only the nodes shown were ranged for a max.
        for (stats, value) in [
            (&row["cpu_used_percent"], busy),
            (&row["memory_used_percent"], used),
        ] {
            assert_close(&stats["current"], value, &format!("{} current", node.name));
            assert_close(&stats["avg"], value, &format!("{} avg", node.name));
            if !stats["max"].is_null() {
                assert_close(&stats["max"], value, &format!("{} max", node.name));
            }
        }
    }
}

/// The kubelets' gauges, per node and in total: every pod and running container once.
#[test]
fn wide_cluster_kubelet_totals() {
    let stack = generated();
    let (c, r) = (&stack.cluster, stack.report());
    let rows = r["kubelets"]["data"]["nodes"].as_array().unwrap();
    assert_eq!(rows.len(), c.nodes.len());
    let (mut pods, mut containers) = (0.0, 0.0);
    for (i, node) in c.nodes.iter().enumerate() {
        let row = by_key(&r["kubelets"]["data"]["nodes"], "node", &node.name);
        let (p, n) = c.kubelet_counts(i);
        assert_close(&row["pods"], p as f64, &format!("{} pods", node.name));
        assert_close(
            &row["containers"],
            n as f64,
            &format!("{} containers", node.name),
        );
        pods += row["pods"].as_f64().unwrap();
        containers += row["containers"].as_f64().unwrap();
    }
    let expected: usize = c.pods.iter().map(|p| p.containers.len()).sum();
    assert_eq!((pods, containers), (c.pods.len() as f64, expected as f64));
}

/// Question 1 for the big namespace's StatefulSet sums its pods' containers, and the
/// inventory lists every StatefulSet of the namespace once (two kube-state-metrics replicas).
#[test]
fn wide_cluster_statefulset_totals() {
    let stack = generated();
    let (c, r) = (&stack.cluster, stack.report());
    let (sts, pods) = c.workload_pods(
        WorkloadKind::StatefulSet,
        wide_cluster::BIG_NAMESPACE,
        wide_cluster::POSTGRES,
    );
    let q1 = &r["workload"]["data"];
    assert_eq!(q1["pods"].as_array().unwrap().len(), sts.replicas, "{q1}");
    let cpu: f64 = pods.iter().map(|p| c.avg_pod_cpu(p)).sum();
    check_stats(&q1["total_cpu"], (cpu, cpu, cpu), "postgres total cpu");
    let memory: f64 = pods.iter().map(|p| c.at(p.memory, c.end)).sum();
    check_stats(
        &q1["total_memory"],
        (memory, memory, memory),
        "postgres total memory",
    );

    let inventory = &r["inventory"]["data"]["statefulsets"];
    let expected = c.workloads_of(WorkloadKind::StatefulSet, wide_cluster::BIG_NAMESPACE);
    assert_eq!(
        inventory.as_array().unwrap().len(),
        expected.len(),
        "{inventory}"
    );
    for w in expected {
        let row = by_key(inventory, "name", &w.name);
        let n = w.replicas as f64;
        assert_eq!(
            (row["ready"].as_f64(), row["replicas"].as_f64()),
            (Some(n), Some(n))
        );
    }
}

/// At 1,000 pods each chart draws what answers its question, as the model ranks it: question
/// 3's CPU chart the ten busiest of 50 nodes, question 5's the ten largest network users of the
/// 300-pod namespace.
#[test]
fn generated_cluster_charts_draw_the_busiest_nodes_and_largest_network_users() {
    let stack = generated();
    let (c, r) = (&stack.cluster, stack.report());
    let drawn = |section: &str, id: &str| -> Vec<String> {
        let chart = r[section]["charts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ch| ch["id"] == id)
            .unwrap_or_else(|| panic!("no chart {id}: {}", r[section]));
        let mut names: Vec<String> = chart["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let mut busiest: Vec<String> = c.nodes_by_cpu()[..10]
        .iter()
        .map(|(n, _)| n.name.clone())
        .collect();
    busiest.sort();
    assert_eq!(drawn("nodes", "q3-node-cpu"), busiest);
    let mut largest: Vec<String> = c.network_ranking(wide_cluster::BIG_NAMESPACE)[..10]
        .iter()
        .map(|p| p.name.clone())
        .collect();
    largest.sort();
    assert_eq!(drawn("network", "q5-receive"), largest);
}

/// The network range of the largest and smallest users (20 of the generated namespace's pods)
/// names those pods on both sides of its kube_pod_info join: without them the join reads every
/// pod of the namespace at every step (1,500 pods × 2 replicas × 241 points at 5,000 pods,
/// the report's largest peak).
#[test]
fn a_join_over_some_pods_names_them_on_both_sides() {
    let stack = generated();
    let r = stack.report();
    let mut checked = 0;
    for used in r["network"]["queries"].as_array().unwrap() {
        let promql = used["promql"].as_str().unwrap();
        let Some(pods) = promql.split("pod=~").nth(1) else {
            continue;
        };
        let pods = pods.split(['}', ',']).next().unwrap();
        checked += 1;
        for selector in promql.split('{').skip(1) {
            let body = selector.split('}').next().unwrap();
            assert!(body.contains(&format!("pod=~{pods}")), "{promql}");
        }
        assert!(promql.contains("kube_pod_info{"), "{promql}");
    }
    assert_eq!(
        checked, 2,
        "the receive and transmit ranges: {}",
        r["network"]
    );
}
