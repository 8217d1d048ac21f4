//! The whole monitored system on one machine (scripts/local-stack) with the real Prometheus,
//! Alertmanager and node-exporter, and the stand-ins for cAdvisor, the kubelet and
//! kube-state-metrics built from measurements of the replica processes.
//!
//! One test, because the stack takes a while to start and everything shares its timeline: it
//! runs the rehearsal (`scripts/local-stack --demo --hold`) once, then checks what the demo
//! wrote (report.json, demo.json, the webhook log) and runs every dashboard panel's queries
//! against the demo's still-running Prometheus, before stopping it.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use beacon_testkit::{repo_root, require};
use serde_json::Value;

const BEACON: &str = env!("CARGO_BIN_EXE_beacon");

/// The page-level SLO burn-rate alerts the demo's faults must fire (docs/alerts.md).
const PAGES: [&str; 2] = ["BeaconAvailabilityFastBurn", "BeaconLatencyFastBurn"];

struct Demo {
    child: Child,
    state: tempfile::TempDir,
    stack: Value,
    summary: Value,
    report: Value,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the demo and waits for its summary; the stack stays up (`--hold`) until dropped.
fn run_demo() -> Demo {
    for (tool, package) in [
        ("prometheus", "prometheus"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("prometheus-node-exporter", "prometheus-node-exporter"),
        ("helm", "helm (scripts/install-test-deps)"),
        ("ip", "iproute2"),
    ] {
        require(tool, package);
    }
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(repo_root().join("scripts/local-stack"))
        .args(["--demo", "--hold", "--netns", "--state"])
        .arg(state.path())
        .arg("--beacon")
        .arg(BEACON)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/local-stack --demo");
    let stdout = child.stdout.take().unwrap();
    // Progress is printed as it goes; keep draining so the pipe never fills.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[local-stack] {line}");
            if line == "demo finished" {
                let _ = tx.send(true);
            }
        }
        // The script exited before finishing (a missing tool, a failed start): fail now.
        let _ = tx.send(false);
    });
    // The demo bounds every wait itself (about 9 minutes at worst); this is the backstop.
    match rx.recv_timeout(Duration::from_secs(660)) {
        Ok(true) => {}
        Ok(false) => panic!(
            "scripts/local-stack --demo exited before finishing ({:?}); logs in {}",
            child.wait(),
            state.path().join("logs").display()
        ),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "the demo did not finish within 11 minutes; logs in {}",
                state.path().join("logs").display()
            );
        }
    }
    eprintln!("demo finished after {:?}", started.elapsed());
    let stack = read_json(&state.path().join("stack.json"));
    let summary = read_json(&state.path().join("demo.json"));
    let report = read_json(&state.path().join("report.json"));
    Demo {
        child,
        state,
        stack,
        summary,
        report,
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An instant query, at `time` (Unix seconds) when given.
fn query(demo: &Demo, promql: &str, time: Option<f64>) -> Vec<Value> {
    let url = format!(
        "{}/api/v1/query",
        demo.stack["prometheus"].as_str().unwrap()
    );
    let mut params = vec![("query", promql.to_owned())];
    if let Some(t) = time {
        params.push(("time", format!("{t:.3}")));
    }
    let v: Value = http()
        .get(url)
        .query(&params)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "success", "{promql}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn local_stack_demo_answers_all_six_questions_and_round_trips_the_alerts() {
    let demo = run_demo();
    let s = &demo.summary;
    let r = &demo.report;
    eprintln!("demo summary: {s:#}");

    // The demo's own verdict: every question had data and every alert round-tripped.
    for (question, answered) in s["questions"].as_object().unwrap() {
        assert_eq!(answered, true, "question {question} had no data: {s}");
    }
    assert_eq!(s["questions"].as_object().unwrap().len(), 6);
    assert_eq!(s["ok"], true, "{s}");
    assert!(
        f(&s["duration_seconds"]) < 600.0,
        "the rehearsal must stay under 10 minutes: {s}"
    );

    // Question 1: CPU and memory of each replica, from the cgroups of their containers.
    let pods = r["workload"]["data"]["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 3, "{pods:?}");
    for p in pods {
        assert!(f(&p["cpu"]["avg"]) > 0.0, "{p}");
        // A Rust server with a few MiB resident, never the whole machine's memory.
        let mem = f(&p["memory"]["avg"]);
        assert!(mem > 100_000.0 && mem < 500e6, "{p}");
    }

    // Question 2: the pod driven hardest is the busiest, the one left alone the idlest.
    let cpu = &r["pod_cpu"]["data"];
    assert_eq!(cpu["most"], s["driven_hardest"], "{cpu}");
    assert_eq!(cpu["least"], s["driven_least"], "{cpu}");
    let ranking: Vec<f64> = cpu["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| f(&p["cpu"]["avg"]))
        .collect();
    assert_eq!(ranking.len(), 3);
    assert!(
        ranking[0] > 2.0 * ranking[2],
        "the busiest pod must be clearly busier than the idlest: {ranking:?}"
    );

    // Question 3: node-exporter's numbers are this machine's.
    let nodes = r["nodes"]["data"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let cores = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as f64;
    assert_eq!(nodes[0]["cores"].as_f64(), Some(cores), "{}", nodes[0]);

    // Question 4: the kubelet counts the replicas' pods and running containers.
    let kubelets = &r["kubelets"]["data"];
    assert_eq!(kubelets["source"], "kubelet", "{kubelets}");
    let k = &kubelets["nodes"].as_array().unwrap()[0];
    let replicas = demo.stack["pods"].as_array().unwrap().len() as f64;
    assert_eq!(f(&k["pods"]), replicas, "{k}");
    assert_eq!(
        f(&k["containers"]),
        replicas,
        "one beacon container per pod: {k}"
    );

    // Question 5: each pod's own network namespace, so non-zero and different per pod.
    let net = r["network"]["data"].as_array().unwrap();
    assert_eq!(net.len(), 3, "{net:?}");
    let mut rx = Vec::new();
    for p in net {
        let (recv, sent) = (f(&p["receive"]["avg"]), f(&p["transmit"]["avg"]));
        assert!(recv > 0.0 && sent > 0.0, "{p}");
        rx.push((p["pod"].as_str().unwrap().to_owned(), recv));
    }
    rx.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert!(rx[0].1 > rx[1].1 && rx[1].1 > rx[2].1, "{rx:?}");
    assert_eq!(rx[0].0, s["driven_hardest"].as_str().unwrap(), "{rx:?}");

    // Question 6: the fault's page-level SLO alerts, firing when the report was written, in both
    // lists.
    let alerts = &r["alerts"]["data"];
    for name in PAGES {
        assert!(
            alerts["prometheus"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["alertname"] == name && a["state"] == "firing"),
            "{name} not firing in the report: {alerts}"
        );
        assert!(
            alerts["alertmanager"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["alertname"] == name && a["state"] == "active"),
            "{name} not active in Alertmanager: {alerts}"
        );
    }

    // Inventory: 3 pods, the StatefulSet 3/3, both Services, the PVCs and the ConfigMap.
    let inv = &r["inventory"]["data"];
    let pods = inv["pods"].as_array().unwrap();
    let names: Vec<&str> = pods.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["beacon-0", "beacon-1", "beacon-2"]);
    for p in pods {
        assert_eq!(p["phase"], "Running", "{p}");
        assert_eq!(
            (f(&p["ready_containers"]), f(&p["containers"])),
            (1.0, 1.0),
            "{p}"
        );
        let restarts = if p["name"] == s["crashing_pod"] {
            1.0
        } else {
            0.0
        };
        assert_eq!(
            f(&p["restarts"]),
            restarts,
            "the crash counts as a restart: {p}"
        );
    }
    let sts = &inv["statefulsets"].as_array().unwrap()[0];
    assert_eq!(
        (sts["name"].as_str(), f(&sts["ready"]), f(&sts["replicas"])),
        (Some("beacon"), 3.0, 3.0)
    );
    let services: BTreeSet<&str> = inv["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["beacon", "beacon-headless", "beacon-metrics"])
    );
    let pvcs = inv["persistentvolumeclaims"].as_array().unwrap();
    assert_eq!(pvcs.len(), 3, "{pvcs:?}");
    for (i, pvc) in pvcs.iter().enumerate() {
        assert_eq!(pvc["name"], format!("data-beacon-{i}"));
        assert_eq!(pvc["phase"], "Bound");
        assert_eq!(f(&pvc["capacity_bytes"]), 10.0 * 1024.0 * 1024.0, "{pvc}");
        assert_eq!(pvc["access_modes"], serde_json::json!(["ReadWriteOnce"]));
    }
    assert!(
        inv["configmaps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "beacon"),
        "{inv}"
    );

    // Every alert fired, was delivered, resolved, and the resolution was delivered, in order.
    let round_trips = s["alerts"].as_array().unwrap();
    let names: BTreeSet<&str> = round_trips
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from([PAGES[0], PAGES[1], "BeaconPodDown"]));
    for a in round_trips {
        let t = |k: &str| f(&a[k]);
        assert!(
            t("firing_delivered_at") <= t("resolved_delivered_at")
                && t("fired_at") <= t("resolved_at"),
            "{a}"
        );
    }
    check_webhook_deliveries(&demo);
    check_slo_burn(&demo, f(&s["report_time"]));

    // What the old local-stack test checked, still true: targets labelled like a
    // ServiceMonitor's, init steps from the chart, every rule healthy.
    let build = query(
        &demo,
        r#"beacon_build_info{job="beacon",namespace="default",service="beacon-metrics",container="beacon",endpoint="admin"}"#,
        None,
    );
    assert_eq!(build.len(), 3, "{build:?}");
    for job in ["kubelet", "kube-state-metrics", "node-exporter", "beacon"] {
        let up = query(&demo, &format!("min(up{{job=\"{job}\"}})"), None);
        assert_eq!(up[0]["value"][1], "1", "{job} is not up");
    }
    let b0 = demo.stack["pods"][0]["url"].as_str().unwrap();
    let page = http()
        .get(format!("{b0}/init-data/index.html"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("home of the first website"), "{page}");
    check_rules_healthy(&demo);
    check_selector_join(&demo, f(&s["report_time"]));

    check_dashboards(&demo, f(&s["report_time"]));

    // SIGTERM: the stack stops everything and exits 0 (the demo succeeded).
    let mut demo = demo;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(demo.child.id() as i32, libc::SIGTERM) };
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "local-stack --demo exited {status}");
    assert!(
        !Path::new("/run/netns")
            .join(demo.stack["pods"][0]["netns"].as_str().unwrap())
            .exists(),
        "the pods' network namespaces are removed on stop"
    );
    eprintln!("state kept in {}", demo.state.path().display());
}

/// Each alert reached the webhook firing and resolved, with the labels and annotations a
/// receiver needs.
fn check_webhook_deliveries(demo: &Demo) {
    let log = std::fs::read_to_string(demo.stack["webhook_log"].as_str().unwrap()).unwrap();
    let notes: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .flat_map(|e| {
            e["payload"]["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    for name in [PAGES[0], PAGES[1], "BeaconPodDown"] {
        for status in ["firing", "resolved"] {
            let note = notes
                .iter()
                .find(|a| a["labels"]["alertname"] == name && a["status"] == status)
                .unwrap_or_else(|| panic!("{name} {status} was not delivered"));
            if PAGES.contains(&name) {
                assert_eq!(note["labels"]["severity"], "critical", "a page: {note}");
                assert_eq!(
                    note["labels"]["slo"],
                    name[6..name.len() - 8].to_lowercase()
                );
            }
            for label in ["severity", "namespace", "job"] {
                assert!(
                    note["labels"][label].is_string(),
                    "{name} lacks {label}: {note}"
                );
            }
            assert!(
                note["annotations"]["summary"].is_string()
                    && note["annotations"]["runbook_url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with(&format!("#{}", name.to_lowercase()))),
                "{note}"
            );
        }
    }
}

/// The chart's SLO recording rules, as the demo rendered them (short windows): while the report
/// was written (the page-level alerts firing), both SLOs' recorded error ratios burned past the
/// factor of a page pair over its long and its short window — the numbers behind the page — and
/// more than the period's whole budget was spent.
fn check_slo_burn(demo: &Demo, at: f64) {
    let pairs = demo.summary["rule_values"]["prometheusRule.slo.fastBurn"]
        .as_array()
        .expect("the demo's page pairs");
    for (slo, budget) in [("availability", 0.001), ("latency", 0.01)] {
        let burn = |window: &str| {
            let rule = format!(
                "beacon:slo_errors:ratio_rate{window}{{namespace=\"default\", job=\"beacon\", slo=\"{slo}\"}}"
            );
            let result = query(demo, &rule, Some(at));
            assert_eq!(result.len(), 1, "{rule}: {result:?}");
            let ratio: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
            ratio / budget
        };
        let burns: Vec<(f64, f64, f64)> = pairs
            .iter()
            .map(|p| {
                let window = |k: &str| burn(p[k].as_str().unwrap());
                (f(&p["factor"]), window("long"), window("short"))
            })
            .collect();
        assert!(
            burns
                .iter()
                .any(|&(factor, long, short)| long > factor && short > factor),
            "{slo}: no page pair burning past its factor at the report (factor, long, short): {burns:?}"
        );
        let spent = query(
            demo,
            &format!(
                "beacon:slo_errors:ratio_period{{slo=\"{slo}\"}} / on (namespace, job, slo) group_left () (1 - beacon:slo_objective:ratio)"
            ),
            Some(at),
        );
        let spent: f64 = spent[0]["value"][1].as_str().unwrap().parse().unwrap();
        assert!(spent > 1.0, "{slo}: {spent} of the period's budget spent");
        // The report the demo wrote says so too, from the same rules.
        let section = demo.report["slo"]["data"]
            .as_array()
            .expect("the report's SLO section")
            .iter()
            .find(|s| s["slo"] == slo)
            .unwrap_or_else(|| panic!("no {slo} in the report's SLO section"));
        let budget = &section["budget"];
        assert!(
            f(&budget["consumed"]) > 1.0 && budget["over"] == "period",
            "{slo}: the report's budget: {section}"
        );
    }
}

/// `--selector` joins on kube-state-metrics' `kube_pod_labels` (allow-listed labels): the same
/// three pods as by StatefulSet name.
fn check_selector_join(demo: &Demo, at: f64) {
    let out = Command::new(BEACON)
        .args([
            "report",
            "--format",
            "json",
            "--namespace",
            "default",
            "--selector",
            "app.kubernetes.io/name=beacon,app.kubernetes.io/instance=beacon",
            "--range",
            "2m",
            "--rate-window",
            "1m",
            "--end",
        ])
        .arg(format!("{}", at as i64))
        .arg("--prometheus")
        .arg(demo.stack["prometheus"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut pods: Vec<&str> = report["workload"]["data"]["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pod"].as_str().unwrap())
        .collect();
    pods.sort();
    assert_eq!(
        pods,
        ["beacon-0", "beacon-1", "beacon-2"],
        "{}",
        report["workload"]
    );
}

fn check_rules_healthy(demo: &Demo) {
    let rules: Value = http()
        .get(format!(
            "{}/api/v1/rules",
            demo.stack["prometheus"].as_str().unwrap()
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut count = 0;
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            count += 1;
            assert_eq!(
                rule["health"], "ok",
                "rule {} failed: {}",
                rule["name"], rule["lastError"]
            );
        }
    }
    assert!(
        count >= 8,
        "expected the chart's rules to be loaded, found {count}"
    );
}

/// Every panel of both shipped dashboards returns data on the demo stack, queried at the
/// moment the report was written (while the fault's alerts were firing).
fn check_dashboards(demo: &Demo, at: f64) {
    let vars = [
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "5m"),
        ("$namespace", "default"),
        ("$statefulset", "beacon"),
        ("$job", "beacon"),
        ("$pod", ".*"),
    ];
    let dir = repo_root().join("charts/beacon/files/dashboards");
    let mut checked = 0;
    let mut empty = Vec::new();
    for file in ["beacon.json", "cluster-questions.json"] {
        let dashboard = read_json(&dir.join(file));
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let expr = vars
                    .iter()
                    .fold(expr.to_owned(), |e, (k, v)| e.replace(k, v));
                checked += 1;
                if query(demo, &expr, Some(at)).is_empty() {
                    empty.push(format!("{file}: {:?}: {expr}", panel["title"]));
                }
            }
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
    assert!(checked > 30, "only {checked} dashboard queries found");
}

/// The stand-ins' own unit tests (scripts/test_cluster_standins.py): the cgroup v2 reader
/// (this machine has only v1, which the demo exercises), the exposition format and the counts.
#[test]
fn cluster_standins_unit_tests_pass() {
    let out = Command::new("python3")
        .args(["-B", "test_cluster_standins.py"])
        .current_dir(repo_root().join("scripts"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
