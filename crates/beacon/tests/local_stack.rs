//! The whole monitored system on one machine (scripts/local-stack) with the real
//! Prometheus, Alertmanager and node-exporter: every monitoring claim, exercised.
//!
//! One test, because the stack takes a while to start and the alert checks share
//! its timeline: a replica is killed and another's config broken at the same time,
//! so the `for:` windows of both alerts elapse together.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const BEACON: &str = env!("CARGO_BIN_EXE_beacon");

struct Stack {
    child: Child,
    info: Value,
    _state: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn start_stack() -> Stack {
    for (tool, package) in [
        ("prometheus", "prometheus"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("prometheus-node-exporter", "prometheus-node-exporter"),
        ("helm", "helm (scripts/install-test-deps)"),
    ] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            found,
            "`{tool}` is missing: install {package} (scripts/install-test-deps does)"
        );
    }
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(repo_root().join("scripts/local-stack"))
        .arg("--state")
        .arg(state.path())
        .arg("--beacon")
        .arg(BEACON)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/local-stack");
    let stdout = child.stdout.take().unwrap();
    // The summary is printed once everything is up; keep draining so the pipe never fills.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[local-stack] {line}");
            if line.contains("local stack is up") {
                let _ = tx.send(());
            }
        }
    });
    let up = rx.recv_timeout(Duration::from_secs(180));
    if up.is_err() {
        let _ = child.kill();
        panic!(
            "the local stack did not come up within 180 s; logs in {}",
            state.path().join("logs").display()
        );
    }
    let info: Value =
        serde_json::from_slice(&std::fs::read(state.path().join("stack.json")).unwrap()).unwrap();
    Stack {
        child,
        info,
        _state: state,
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn query(stack: &Stack, promql: &str) -> Vec<Value> {
    let url = format!(
        "{}/api/v1/query",
        stack.info["prometheus"].as_str().unwrap()
    );
    let v: Value = http()
        .get(url)
        .query(&[("query", promql)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "success", "{promql}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn scalar(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

fn eventually<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn alert_state(stack: &Stack, name: &str, pod: &str) -> Option<String> {
    let url = format!(
        "{}/api/v1/alerts",
        stack.info["prometheus"].as_str().unwrap()
    );
    let v: Value = http().get(url).send().ok()?.json().ok()?;
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == name && a["labels"]["pod"] == pod)
        .map(|a| a["state"].as_str().unwrap().to_owned())
}

/// Notifications the webhook receiver recorded for `alertname`/`pod` with `status`.
fn delivered(stack: &Stack, name: &str, pod: &str, status: &str) -> Option<Value> {
    let log = std::fs::read_to_string(stack.info["webhook_log"].as_str().unwrap()).ok()?;
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|entry| {
            entry["payload"]["alerts"]
                .as_array()?
                .iter()
                .find(|a| {
                    a["labels"]["alertname"] == name
                        && a["labels"]["pod"] == pod
                        && a["status"] == status
                })
                .cloned()
        })
}

fn pod<'a>(stack: &'a Stack, name: &str) -> &'a Value {
    stack.info["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}

fn kubelet_publish(config_dir: &Path, generation: u32, content: &str) {
    let ts = format!("..2026_11_25_test.{generation}");
    std::fs::create_dir(config_dir.join(&ts)).unwrap();
    std::fs::write(config_dir.join(&ts).join("config.json"), content).unwrap();
    let tmp = config_dir.join("..data_tmp");
    symlink(&ts, &tmp).unwrap();
    std::fs::rename(&tmp, config_dir.join("..data")).unwrap();
}

#[test]
fn local_stack_monitors_beacon_end_to_end() {
    let stack = start_stack();
    let start = Instant::now();

    // All targets up within a bound.
    eventually(Duration::from_secs(60), "every target up", || {
        let ups = query(&stack, "up");
        (ups.len() == 6 && ups.iter().all(|s| scalar(s) == 1.0)).then_some(())
    });
    eprintln!(
        "all 6 targets up {:?} after the stack came up",
        start.elapsed()
    );

    // The app's metrics carry the labels a ServiceMonitor gives them.
    let build = query(
        &stack,
        r#"beacon_build_info{job="beacon",namespace="default",service="beacon",container="beacon",endpoint="admin"}"#,
    );
    let mut pods: Vec<&str> = build
        .iter()
        .map(|s| s["metric"]["pod"].as_str().unwrap())
        .collect();
    pods.sort();
    assert_eq!(pods, ["beacon-0", "beacon-1", "beacon-2"]);

    // The init steps ran as the chart declares them, and the files are served.
    let b0 = pod(&stack, "beacon-0")["url"].as_str().unwrap().to_owned();
    let page = http()
        .get(format!("{b0}/init-data/index.html"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("home of the first website"), "{page}");
    let example = http()
        .get(format!("{b0}/init-data/example.txt"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(example, "bla-bla\nwhoa\nthis is the 14th lab\n");

    // Visits made through the HTTP API appear in beacon_visits_total.
    let b2 = pod(&stack, "beacon-2").clone();
    for _ in 0..7 {
        assert_eq!(
            http()
                .get(format!("{}/", b2["url"].as_str().unwrap()))
                .send()
                .unwrap()
                .status(),
            200
        );
    }
    eventually(
        Duration::from_secs(30),
        "beacon_visits_total{pod=beacon-2} = 7",
        || {
            query(
                &stack,
                r#"beacon_visits_total{job="beacon",pod="beacon-2"}"#,
            )
            .first()
            .filter(|s| scalar(s) == 7.0)
            .map(|_| ())
        },
    );

    // Break beacon-1's config and kill beacon-2 at the same moment.
    let b1 = pod(&stack, "beacon-1").clone();
    let b1_config = PathBuf::from(b1["dirs"]["config"].as_str().unwrap());
    kubelet_publish(
        &b1_config,
        2,
        r#"{"title": "broken", "timezone": "Nowhere/Land"}"#,
    );
    let b2_pid = b2["pid"].as_i64().unwrap() as i32;
    // SAFETY: a process the stack started for this test.
    assert_eq!(unsafe { libc::kill(b2_pid, libc::SIGKILL) }, 0);
    let killed_at = Instant::now();

    // beacon-1 keeps serving with its last good config.
    let b1_url = b1["url"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(30),
        "beacon-1 counts the failed reload",
        || {
            let m = http()
                .get(format!("{b1_url}/metrics"))
                .send()
                .ok()?
                .text()
                .ok()?;
            m.contains("beacon_config_last_reload_successful 0")
                .then_some(())
        },
    );
    let cfg: Value = http()
        .get(format!("{b1_url}/config"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        cfg["title"], "beacon",
        "the last good config must stay in effect"
    );
    assert_eq!(
        http().get(format!("{b1_url}/")).send().unwrap().status(),
        200
    );

    // Pending, then firing, then delivered to the webhook with the labels a receiver needs.
    eventually(
        Duration::from_secs(60),
        "BeaconPodDown pending for beacon-2",
        || (alert_state(&stack, "BeaconPodDown", "beacon-2")? == "pending").then_some(()),
    );
    eventually(
        Duration::from_secs(240),
        "BeaconPodDown firing for beacon-2",
        || (alert_state(&stack, "BeaconPodDown", "beacon-2")? == "firing").then_some(()),
    );
    eprintln!(
        "BeaconPodDown firing {:?} after the kill",
        killed_at.elapsed()
    );
    let note = eventually(
        Duration::from_secs(60),
        "BeaconPodDown delivered to the webhook",
        || delivered(&stack, "BeaconPodDown", "beacon-2", "firing"),
    );
    for label in [
        "alertname",
        "severity",
        "namespace",
        "pod",
        "job",
        "instance",
    ] {
        assert!(
            note["labels"][label].is_string(),
            "delivered alert lacks `{label}`: {note}"
        );
    }
    assert_eq!(note["labels"]["severity"], "warning");
    assert!(
        note["annotations"]["summary"].is_string()
            && note["annotations"]["runbook_url"].is_string(),
        "{note}"
    );
    check_report_while_alerting(&stack);

    eventually(
        Duration::from_secs(120),
        "BeaconConfigReloadFailed firing for beacon-1",
        || (alert_state(&stack, "BeaconConfigReloadFailed", "beacon-1")? == "firing").then_some(()),
    );
    eventually(
        Duration::from_secs(60),
        "BeaconConfigReloadFailed delivered",
        || delivered(&stack, "BeaconConfigReloadFailed", "beacon-1", "firing"),
    );

    // Restart the replica exactly as the stack started it: the alert resolves, the
    // resolution is delivered, and the visits survived.
    let argv: Vec<String> = b2["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let env: Vec<(String, String)> = b2["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let mut restarted = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let b2_url = b2["url"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), "beacon-2 ready again", || {
        http()
            .get(format!("{b2_url}/readyz"))
            .send()
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    });
    let visits: Value = http()
        .get(format!("{b2_url}/visits"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        visits["visits"], 7,
        "the replica's visits must survive the restart"
    );
    eventually(
        Duration::from_secs(60),
        "BeaconPodDown resolved in Prometheus",
        || {
            alert_state(&stack, "BeaconPodDown", "beacon-2")
                .is_none()
                .then_some(())
        },
    );
    eventually(
        Duration::from_secs(60),
        "BeaconPodDown resolution delivered",
        || delivered(&stack, "BeaconPodDown", "beacon-2", "resolved"),
    );

    // Every rule executes against this Prometheus without error.
    let rules: Value = http()
        .get(format!(
            "{}/api/v1/rules",
            stack.info["prometheus"].as_str().unwrap()
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

    check_dashboards(&stack);

    let _ = restarted.kill();
    let _ = restarted.wait();
}

/// Every query of every shipped dashboard runs without error here; the app dashboard's
/// panels all return data (the cluster-questions panels need kubelet/cAdvisor series that
/// only a cluster has: they must run, and may be empty).
fn check_dashboards(stack: &Stack) {
    let vars = [
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "1h"),
        ("$namespace", "default"),
        ("$statefulset", "beacon"),
        ("$job", "beacon"),
        ("$pod", ".*"),
    ];
    let dir = repo_root().join("charts/beacon/files/dashboards");
    let mut checked = 0;
    for file in ["beacon.json", "cluster-questions.json"] {
        let dashboard: Value =
            serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let expr = vars
                    .iter()
                    .fold(expr.to_owned(), |e, (k, v)| e.replace(k, v));
                let result = query(stack, &expr);
                checked += 1;
                if file == "beacon.json" {
                    assert!(
                        !result.is_empty(),
                        "app panel {:?} returned no data: {expr}",
                        panel["title"]
                    );
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} dashboard queries found");
}

/// `beacon report` against this live stack, while BeaconPodDown fires: the alert is in both
/// Prometheus's and Alertmanager's lists, node-exporter's numbers match the machine, and the
/// questions that need cluster metrics say which ones are missing instead of going blank.
fn check_report_while_alerting(stack: &Stack) {
    let out = Command::new(BEACON)
        .args([
            "report",
            "--format",
            "json",
            "--namespace",
            "default",
            "--statefulset",
            "beacon",
            "--range",
            "5m",
        ])
        .arg("--prometheus")
        .arg(stack.info["prometheus"].as_str().unwrap())
        .arg("--alertmanager")
        .arg(stack.info["alertmanager"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "beacon report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    let alerts = &report["alerts"]["data"];
    assert!(
        alerts["firing_by_severity"]["warning"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{alerts}"
    );
    let in_prometheus = alerts["prometheus"].as_array().unwrap();
    assert!(
        in_prometheus
            .iter()
            .any(|a| a["alertname"] == "BeaconPodDown" && a["state"] == "firing"),
        "{alerts}"
    );
    let in_alertmanager = alerts["alertmanager"]["alerts"].as_array().unwrap();
    assert!(
        in_alertmanager
            .iter()
            .any(|a| a["alertname"] == "BeaconPodDown" && a["state"] == "active"),
        "{alerts}"
    );

    let nodes = report["nodes"]["data"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "one node-exporter: {nodes:?}");
    // node-exporter counts the CPUs listed in /proc/stat, whatever this process's affinity.
    let cores = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as f64;
    let node = &nodes[0];
    assert_eq!(node["cores"].as_f64(), Some(cores), "{node}");
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .unwrap()
        * 1024.0;
    assert_eq!(
        node["memory_total_bytes"].as_f64(),
        Some(mem_total),
        "{node}"
    );
    let used = node["memory_used_percent"]["current"].as_f64().unwrap();
    assert!(used > 0.0 && used < 100.0, "{node}");

    let cpu_notes = report["pod_cpu"]["notes"].to_string();
    assert!(
        cpu_notes.contains("container_cpu_usage_seconds_total"),
        "question 2 must name the missing metric: {cpu_notes}"
    );
}
