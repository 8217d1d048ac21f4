//! `beacon report` against a real Prometheus holding backfilled fixture series with known
//! values: every answer's numbers are checked against values computed here from the
//! fixture's functions, the CPU ranking in full, and the rendered formats.

#[path = "support/report_fixture.rs"]
mod report_fixture;
#[path = "support/report_stack.rs"]
mod report_stack;

use report_fixture::{Cluster, GIB, Pod};
use report_stack::{Prometheus, PrometheusConfig, Workdir, assert_close, backfill, now, report, report_json};
use serde_json::Value;

struct Stack {
    cluster: Cluster,
    prom: Prometheus,
    _work: Workdir,
}

impl Stack {
    fn start(cluster: Cluster) -> Self {
        let work = Workdir::new();
        let tsdb = work.path().join("tsdb");
        backfill(work.path(), &tsdb, &cluster.openmetrics());
        let prom = Prometheus::start(work.path(), &tsdb, PrometheusConfig::default());
        Self { cluster, prom, _work: work }
    }

    /// The fixture's exact range, so evaluation times fall on samples.
    fn args<'a>(&'a self, start: &'a str, end: &'a str) -> Vec<&'a str> {
        vec!["--prometheus", &self.prom.url, "--start", start, "--end", end]
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

#[test]
fn every_answer_matches_the_backfilled_values() {
    let stack = Stack::start(Cluster::realistic(now()));
    let c = &stack.cluster;
    let (start, end) = (c.start.to_string(), c.end.to_string());
    let r = report_json(&stack.args(&start, &end));

    // Q1: the StatefulSet's pods, per pod and total.
    let q1 = &r["workload"]["data"];
    let sts: Vec<&Pod> = c.pods.iter().filter(|p| p.name.starts_with("beacon-")).collect();
    assert_eq!(q1["pods"].as_array().unwrap().len(), 3, "{q1}");
    for pod in &sts {
        let row = by_key(&q1["pods"], "pod", &pod.name);
        check_stats(&row["cpu"], c.stats(|t| c.pod_cpu(pod, t)), &format!("{} cpu", pod.name));
        check_stats(&row["memory"], c.stats(|t| c.at(pod.memory, t)), &format!("{} memory", pod.name));
    }
    check_stats(&q1["total_cpu"], c.stats(|t| sts.iter().map(|p| c.pod_cpu(p, t)).sum()), "total cpu");
    check_stats(&q1["total_memory"], c.stats(|t| sts.iter().map(|p| c.at(p.memory, t)).sum()), "total memory");
    assert!(r["workload"]["queries"][0]["promql"].as_str().unwrap().contains(r#"pod=~"beacon-[0-9]+""#));

    // Q2: the full ranking of `default`, busiest first, nothing from kube-system.
    let mut expected: Vec<(String, f64)> = pods_in(c, "default")
        .map(|p| (p.name.clone(), c.stats(|t| c.pod_cpu(p, t)).1))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let ranking = r["pod_cpu"]["data"]["ranking"].as_array().unwrap();
    let names: Vec<&str> = ranking.iter().map(|p| p["pod"].as_str().unwrap()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, expected_names);
    for (row, (name, avg)) in ranking.iter().zip(&expected) {
        assert_close(&row["cpu"]["avg"], *avg, &format!("{name} avg cpu"));
    }
    assert_eq!(r["pod_cpu"]["data"]["most"], "web-7d9f8-abcde");
    assert_eq!(r["pod_cpu"]["data"]["least"], "idle-cron-28374-q9z");

    // Q3: node memory and cores.
    for (i, node) in c.nodes.iter().enumerate() {
        let row = by_key(&r["nodes"]["data"], "nodename", &node.name);
        assert_eq!(row["instance"], format!("10.0.0.{}:9100", i + 1));
        assert_close(&row["cores"], node.cores as f64, "cores");
        assert_close(&row["memory_total_bytes"], node.memory_total, "memory total");
        let used = |t| node.memory_total - c.at(node.memory_available, t);
        check_stats(&row["memory_used_bytes"], c.stats(used), "memory used");
        check_stats(&row["memory_used_percent"], c.stats(|t| 100.0 * used(t) / node.memory_total), "memory %");
        check_stats(&row["cpu_used_percent"], (100.0 * node.busy, 100.0 * node.busy, 100.0 * node.busy), "cpu %");
    }
    assert_close(&by_key(&r["nodes"]["data"], "nodename", "node-a")["memory_used_percent"]["current"], 50.0, "node-a now");

    // Q4: the kubelet's own gauges.
    assert_eq!(r["kubelets"]["data"]["source"], "kubelet");
    for (i, node) in c.nodes.iter().enumerate() {
        let row = by_key(&r["kubelets"]["data"]["nodes"], "node", &node.name);
        let pods: Vec<&Pod> = c.pods.iter().filter(|p| p.node == i).collect();
        assert_close(&row["pods"], pods.len() as f64, "pods");
        let containers: usize = pods.iter().map(|p| p.containers.len()).sum();
        assert_close(&row["containers"], containers as f64, "running containers");
    }

    // Q5: network per pod, host-network pods left out.
    let net = r["network"]["data"].as_array().unwrap();
    let expected: Vec<&Pod> = pods_in(c, "default").filter(|p| !p.host_network).collect();
    assert_eq!(net.len(), expected.len(), "{net:?}");
    for pod in expected {
        let row = by_key(&r["network"]["data"], "pod", &pod.name);
        check_stats(&row["receive"], (pod.rx, pod.rx, pod.rx), &format!("{} rx", pod.name));
        check_stats(&row["transmit"], (pod.tx, pod.tx, pod.tx), &format!("{} tx", pod.name));
    }

    // Inventory.
    let inv = &r["inventory"]["data"];
    assert_eq!(inv["pods"].as_array().unwrap().len(), pods_in(c, "default").count());
    let b1 = by_key(&inv["pods"], "name", "beacon-1");
    assert_eq!((b1["phase"].as_str(), b1["restarts"].as_f64(), b1["node"].as_str()), (Some("Running"), Some(2.0), Some("node-b")));
    let web = by_key(&inv["pods"], "name", "web-7d9f8-abcde");
    assert_eq!((web["ready_containers"].as_f64(), web["containers"].as_f64()), (Some(2.0), Some(2.0)));
    let sts_row = by_key(&inv["statefulsets"], "name", "beacon");
    assert_eq!((sts_row["ready"].as_f64(), sts_row["replicas"].as_f64()), (Some(3.0), Some(3.0)));
    assert_eq!(by_key(&inv["services"], "name", "beacon")["cluster_ip"], "10.96.12.34");
    let pvc = by_key(&inv["persistentvolumeclaims"], "name", "data-beacon-0");
    assert_eq!(pvc["phase"], "Bound");
    assert_close(&pvc["capacity_bytes"], GIB, "pvc size");
    assert_eq!(pvc["access_modes"][0], "ReadWriteOnce");
    assert_eq!(inv["configmaps"].as_array().unwrap().len(), 2);

    // Nothing was missing, so no answer explains anything away.
    for q in ["workload", "pod_cpu", "nodes", "kubelets", "network", "inventory"] {
        assert_eq!(r[q]["notes"], Value::Array(vec![]), "{q} notes");
        assert!(!r[q]["queries"].as_array().unwrap().is_empty(), "{q} states its PromQL");
    }

    // A label selector picks pods through kube_pod_labels.
    let mut args = stack.args(&start, &end);
    args.extend(["--selector", "app=beacon,tier=canary"]);
    let r = report_json(&args);
    let pods = r["workload"]["data"]["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["pod"], "beacon-1");

    // The default text format: aligned tables, every answer's PromQL.
    let run = report(&stack.args(&start, &end));
    assert!(run.ok, "{}", run.stderr);
    let text = run.stdout;
    for needle in ["1. CPU and memory of StatefulSet beacon", "Most CPU: web-7d9f8-abcde", "PromQL:", "container_cpu_usage_seconds_total", "beacon-headless", "ReadWriteOnce"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let header = text.lines().find(|l| l.contains("POD") && l.contains("CPU NOW")).unwrap();
    let row = text.lines().find(|l| l.trim_start().starts_with("beacon-0 ")).unwrap();
    // Right-aligned numbers end where their header ends.
    assert_eq!(header.find("CPU NOW").map(|i| i + "CPU NOW".len()), row.find("0.250").map(|i| i + 5), "{header}\n{row}");
}
