//! Alert rules, their promtool unit tests and runbooks, the Grafana dashboards' queries, and the
//! kube-prometheus-stack values in deploy/monitoring — checked with the real tools: promtool,
//! a real Prometheus (Debian 2.42, on 127.0.0.1) and amtool. Missing tools fail the tests with
//! what to install (scripts/install-test-deps).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::chart_tools::*;
use beacon_testkit::{free_port, repo_root, require};
use serde_json::Value;

const RUNBOOK_BASE: &str = "https://github.com/beacon-k8s/beacon/blob/main/docs/alerts.md";

/// The chart's rules with its default values (the PrometheusRule's `.spec`), as a rule file in a
/// temporary directory: what a cluster's Prometheus loads, SLO rules included.
struct RuleFile {
    dir: tempfile::TempDir,
    spec: Value,
}

impl RuleFile {
    const NAME: &'static str = "beacon-rules.yaml";

    fn render(args: &[&str]) -> RuleFile {
        let dir = tempfile::tempdir().unwrap();
        let spec = rendered_rules(args);
        std::fs::write(
            dir.path().join(Self::NAME),
            serde_yaml_ng::to_string(&spec).unwrap(),
        )
        .unwrap();
        RuleFile { dir, spec }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join(Self::NAME)
    }
}

/// (alert name, rule) for every alerting rule the chart renders with its default values.
fn alerts() -> Vec<(String, Value)> {
    let spec = rendered_rules(&[]);
    let out: Vec<(String, Value)> = rules_of(&spec)
        .into_iter()
        .filter_map(|r| Some((r["alert"].as_str()?.to_string(), r.clone())))
        .collect();
    assert!(!out.is_empty());
    out
}

/// Each promtool test file, with the values file (`<name>.values.yaml` beside `<name>.test.yaml`)
/// the chart is rendered with for it, if any.
fn rule_test_files() -> Vec<(PathBuf, Option<PathBuf>)> {
    let dir = chart_dir().join("tests/rules");
    let mut files: Vec<(PathBuf, Option<PathBuf>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let stem = p
                .file_name()?
                .to_str()?
                .strip_suffix(".test.yaml")?
                .to_owned();
            let values = dir.join(format!("{stem}.values.yaml"));
            Some((p, values.exists().then_some(values)))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no promtool tests in {}", dir.display());
    files
}

/// `promtool test rules` on one test file, against the rules the chart renders with the file's
/// values: the test is copied next to the rendered `beacon-rules.yaml` it names.
fn promtool_test(test: &std::path::Path, values: Option<&std::path::Path>) -> std::process::Output {
    let values_arg = values.map(|v| format!("--values={}", v.display()));
    let rules = RuleFile::render(&values_arg.iter().map(String::as_str).collect::<Vec<_>>());
    let copy = rules.dir.path().join(test.file_name().unwrap());
    std::fs::copy(test, &copy).unwrap();
    output(promtool().args(["test", "rules"]).arg(&copy))
}

#[test]
fn rendered_rules_pass_promtool_check() {
    let rules = RuleFile::render(&[]);
    let out = run_ok(promtool().args(["check", "rules"]).arg(rules.path()));
    assert!(
        out.contains(&format!(
            "SUCCESS: {} rules found",
            rules_of(&rules.spec).len()
        )),
        "{out}"
    );
}

#[test]
fn promtool_unit_tests_pass_and_cover_every_alert_firing_and_quiet() {
    let files = rule_test_files();
    // One promtool per file, side by side: the SLO files evaluate days of rules minute by minute.
    let results: Vec<(PathBuf, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|(test, values)| {
                s.spawn(move || (test.clone(), promtool_test(test, values.as_deref())))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (test, out) in &results {
        assert!(
            out.status.success(),
            "promtool test rules {} failed:\n{}{}",
            test.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut firing: BTreeSet<String> = BTreeSet::new();
    let mut quiet: BTreeSet<String> = BTreeSet::new();
    for (file, _) in &files {
        let doc = yaml_file(file);
        assert_eq!(
            doc["rule_files"],
            serde_json::json!([RuleFile::NAME]),
            "{} tests the chart's rendered rules",
            file.display()
        );
        for test in arr_of(&doc["tests"], "tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = str_of(&case["alertname"], "alertname").to_string();
                match case["exp_alerts"].as_array() {
                    Some(a) if !a.is_empty() => firing.insert(name),
                    _ => quiet.insert(name),
                };
            }
        }
    }
    for (alert, _) in alerts() {
        assert!(
            firing.contains(&alert),
            "no promtool test where {alert} fires"
        );
        assert!(
            quiet.contains(&alert),
            "no promtool test where {alert} stays quiet"
        );
    }
}

#[test]
fn promtool_tests_can_fail() {
    // A broken expectation must make promtool fail: guards against tests that assert nothing.
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("broken.test.yaml");
    std::fs::write(
        &test,
        "rule_files: [beacon-rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'up{job=\"beacon\", namespace=\"web\", pod=\"beacon-0\"}'\n        values: '1x10'\n    alert_rule_test:\n      - eval_time: 10m\n        alertname: BeaconDown\n        exp_alerts: [{exp_labels: {severity: critical, namespace: web, job: beacon}}]\n",
    )
    .unwrap();
    assert!(!promtool_test(&test, None).status.success());
}

/// GitHub's anchor for a Markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_is_labelled_annotated_and_has_a_runbook() {
    let docs = std::fs::read_to_string(repo_root().join("docs/alerts.md")).expect("docs/alerts.md");
    let anchors: BTreeMap<String, usize> = docs
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("## ") || l.starts_with("### "))
        .map(|(i, l)| (slug(l.trim_start_matches('#')), i))
        .collect();
    for (alert, rule) in alerts() {
        let severity = str_of(&rule["labels"]["severity"], "severity");
        assert!(
            ["critical", "warning"].contains(&severity),
            "{alert}: severity {severity}"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| s.len() > 10),
                "{alert} lacks {key}"
            );
        }
        let anchor = alert.to_lowercase();
        assert_eq!(
            rule["annotations"]["runbook_url"],
            format!("{RUNBOOK_BASE}#{anchor}"),
            "{alert}"
        );
        assert!(
            anchors.contains_key(&anchor),
            "docs/alerts.md has no section `## {alert}`"
        );
        // The runbook section shows the expression's alert and says what to do.
        let start = anchors[&anchor];
        let section: String = docs
            .lines()
            .skip(start + 1)
            .take_while(|l| !l.starts_with("## "))
            .collect::<Vec<_>>()
            .join("\n");
        for word in ["Meaning", "Diagnosis", "Mitigation"] {
            assert!(section.contains(word), "runbook of {alert} lacks {word}");
        }
        // Selected by beacon's job label (rewritten by the chart for nameOverride).
        assert!(
            str_of(&rule["expr"], "expr").contains("job=\"beacon\""),
            "{alert} does not select job=\"beacon\""
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus on 127.0.0.1, loading the chart's rendered rules and the additional scrape config
// of deploy/monitoring, for the dashboards' queries.

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    rules: RuleFile,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The beacon scrape job of deploy/monitoring/additional-scrape-config.yaml, with kubernetes_sd
/// (not compiled into Debian's Prometheus) replaced by static targets carrying the same
/// `__meta_kubernetes_*` labels Kubernetes discovery would give the endpoints of the chart's three
/// Services: the client one (port `http`), the headless one (port `http`) and the ClusterIP
/// metrics one (port `admin`, label `beacon.dev/metrics: "true"`). An empty value is an absent label.
fn scrape_config_with_static_targets() -> Value {
    let values = yaml_file(&repo_root().join("deploy/monitoring/additional-scrape-config.yaml"));
    let mut job = values["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"][0].clone();
    assert_eq!(job["job_name"], "beacon");
    assert!(job["kubernetes_sd_configs"].is_array());
    job.as_object_mut().unwrap().remove("kubernetes_sd_configs");
    // Scrape at once rather than within the 30s interval.
    job["scrape_interval"] = "1s".into();
    job["scrape_timeout"] = "1s".into();
    let target = |service: &str, headless: &str, metrics: &str, port_name: &str, port: u16| {
        serde_json::json!({
            "targets": [format!("127.0.0.1:{port}")],
            "labels": {
                "__meta_kubernetes_namespace": "web",
                "__meta_kubernetes_pod_name": "beacon-0",
                "__meta_kubernetes_service_name": service,
                "__meta_kubernetes_service_label_app_kubernetes_io_name": "beacon",
                "__meta_kubernetes_service_label_beacon_dev_headless": headless,
                "__meta_kubernetes_service_label_beacon_dev_metrics": metrics,
                "__meta_kubernetes_pod_container_name": "beacon",
                "__meta_kubernetes_endpoint_port_name": port_name,
            }
        })
    };
    job["static_configs"] = serde_json::json!([
        target("beacon", "", "", "http", 9),
        target("beacon-headless", "true", "", "http", 10),
        target("beacon-metrics", "", "true", "admin", 11)
    ]);
    job
}

fn start_prometheus() -> Prometheus {
    let binary = require("prometheus", "Debian package `prometheus`");
    let dir = tempfile::tempdir().unwrap();
    let rules = RuleFile::render(&[]);
    let config = serde_json::json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [rules.path()],
        "scrape_configs": [scrape_config_with_static_targets()],
    });
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    run_ok(promtool().args(["check", "config"]).arg(&config_path));
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let prometheus = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        rules,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::blocking::get(format!("{}/-/ready", prometheus.url))
            .is_ok_and(|r| r.status().is_success())
        {
            return prometheus;
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn api(prometheus: &Prometheus, path: &str, query: &[(&str, &str)]) -> Value {
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", prometheus.url), query).unwrap();
    let resp = reqwest::blocking::get(url).expect("query prometheus");
    resp.json().expect("prometheus answers JSON")
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = chart_dir().join("files/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 2, "beacon.json and cluster-questions.json");
    out
}

/// Every PromQL expression of a dashboard: panel targets, and the series selectors of
/// `label_values(selector, label)` variable queries. (where, expression)
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = arr_of(&dashboard["panels"], "panels").iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {:?}", panel["title"]),
                str_of(&target["expr"], "expr").to_string(),
            ));
        }
    }
    for var in arr_of(&dashboard["templating"]["list"], "templating") {
        if var["type"] == "query" {
            let q = str_of(&var["query"]["query"], "variable query");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .expect("label_values(...)");
            let selector = inner
                .rsplit_once(',')
                .map(|(s, _)| s)
                .unwrap_or(inner)
                .trim();
            out.push((format!("variable {}", var["name"]), selector.to_string()));
        }
    }
    out
}

/// Replaces Grafana's variables with concrete values so that Prometheus can run the query.
fn substitute(expr: &str) -> String {
    let mut s = expr.to_string();
    for (var, value) in [
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
        ("${namespace}", "web"),
        ("$namespace", "web"),
        ("$statefulset", "beacon"),
        ("$job", "beacon"),
        ("$pod", ".*"),
    ] {
        s = s.replace(var, value);
    }
    // `$1` in label_replace is PromQL's capture group: Grafana leaves `$<digits>` alone.
    let unknown = s
        .match_indices('$')
        .any(|(i, _)| !s[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
    assert!(!unknown, "unknown Grafana variable left in {s}");
    s
}

#[test]
fn rules_and_dashboard_queries_run_on_a_real_prometheus() {
    let prometheus = start_prometheus();
    for (file, dashboard) in dashboards() {
        let queries = dashboard_queries(&dashboard);
        assert!(queries.len() > 10, "{file}: only {} queries", queries.len());
        for (place, expr) in queries {
            let query = substitute(&expr);
            let answer = api(&prometheus, "/api/v1/query", &[("query", &query)]);
            assert_eq!(
                answer["status"], "success",
                "{file} {place}: {query}\n{answer}"
            );
        }
    }
    // The rendered rules load, and every rule evaluates without error.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rules = api(&prometheus, "/api/v1/rules", &[]);
        let all: Vec<&Value> = arr_of(&rules["data"]["groups"], "groups")
            .iter()
            .flat_map(|g| arr_of(&g["rules"], "rules"))
            .collect();
        assert_eq!(all.len(), rules_of(&prometheus.rules.spec).len());
        if all.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(Instant::now() < deadline, "rules not healthy: {rules}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The additional scrape config keeps only the metrics Service's admin port (as the
    // ServiceMonitor does) and labels targets as the ServiceMonitor does, so the rules'
    // job="beacon" selector matches.
    // (Target discovery updates every 5s, so wait for the first one.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let targets = loop {
        let targets = api(&prometheus, "/api/v1/targets", &[]);
        let seen = targets["data"]["activeTargets"]
            .as_array()
            .map_or(0, Vec::len)
            + targets["data"]["droppedTargets"]
                .as_array()
                .map_or(0, Vec::len);
        if seen == 3 {
            break targets;
        }
        assert!(
            Instant::now() < deadline,
            "targets never discovered: {targets}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let active = arr_of(&targets["data"]["activeTargets"], "activeTargets");
    assert_eq!(active.len(), 1, "{targets}");
    let labels = &active[0]["labels"];
    for (k, v) in [
        ("job", "beacon"),
        ("namespace", "web"),
        ("pod", "beacon-0"),
        ("service", "beacon-metrics"),
        ("container", "beacon"),
        ("endpoint", "admin"),
    ] {
        assert_eq!(labels[k], v, "target label {k}: {labels}");
    }
    assert_eq!(
        arr_of(&targets["data"]["droppedTargets"], "droppedTargets").len(),
        2,
        "client and headless Services dropped"
    );
    // With that (unreachable) target, BeaconDown's expression selects it: up == 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = api(
            &prometheus,
            "/api/v1/query",
            &[("query", "sum by (namespace, job) (up{job=\"beacon\"}) == 0")],
        );
        if answer["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "up{{job=\"beacon\"}} never seen: {answer}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

const PROMQL_WORDS: &[&str] = &[
    // aggregations and keywords
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "group",
    "count_values",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    // functions
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "histogram_quantile",
    "label_replace",
    "label_join",
    "vector",
    "scalar",
    "time",
    "absent",
    "absent_over_time",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "clamp_min",
    "clamp_max",
    "round",
    "abs",
    "ceil",
    "floor",
    "sort",
    "sort_desc",
    "deriv",
    "predict_linear",
    "changes",
    "resets",
    "timestamp",
    "last_over_time",
];

/// Metric names used by a PromQL expression: identifiers outside label matchers, strings,
/// ranges and grouping clauses, that are neither keywords nor function calls.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false; // the next `( ... )` is a label list (by/without/on/ignoring/group_x)
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_group = false;
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let call = chars.get(j) == Some(&'(');
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&word.as_str())
                {
                    skip_group = true;
                } else if PROMQL_WORDS.contains(&word.as_str()) {
                    // keyword, aggregation or function
                } else {
                    assert!(!call, "unknown function {word} in {expr}");
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every metric the dashboards and rules may use, and who exports it.
const KNOWN_METRICS: &[(&str, &str)] = &[
    // beacon serve's /metrics (crates/beacon-serve)
    ("http_requests_total", "beacon"),
    ("http_request_duration_seconds_bucket", "beacon"),
    ("http_request_duration_seconds_sum", "beacon"),
    ("http_request_duration_seconds_count", "beacon"),
    ("beacon_visits_total", "beacon"),
    ("beacon_config_reloads_total", "beacon"),
    ("beacon_config_last_reload_successful", "beacon"),
    ("beacon_visits_store_errors_total", "beacon"),
    ("beacon_visits_sync_duration_seconds_bucket", "beacon"),
    ("beacon_visits_sync_duration_seconds_sum", "beacon"),
    ("beacon_visits_sync_duration_seconds_count", "beacon"),
    ("beacon_visits_commit_wait_seconds_bucket", "beacon"),
    ("beacon_visits_commit_wait_seconds_sum", "beacon"),
    ("beacon_visits_commit_wait_seconds_count", "beacon"),
    ("beacon_visits_sync_batch_size_bucket", "beacon"),
    ("beacon_visits_sync_batch_size_sum", "beacon"),
    ("beacon_visits_sync_batch_size_count", "beacon"),
    ("beacon_build_info", "beacon"),
    ("beacon_faults_injected_total", "beacon"),
    ("process_cpu_seconds_total", "beacon"),
    ("process_resident_memory_bytes", "beacon"),
    ("process_open_fds", "beacon"),
    ("process_start_time_seconds", "beacon"),
    // Prometheus itself
    ("up", "Prometheus (every scrape target)"),
    ("ALERTS", "Prometheus (alerting rule state)"),
    // kube-prometheus-stack: kubelet's cAdvisor endpoint (job=kubelet, metrics_path=/metrics/cadvisor)
    ("container_cpu_usage_seconds_total", "cAdvisor"),
    ("container_memory_working_set_bytes", "cAdvisor"),
    ("container_network_receive_bytes_total", "cAdvisor"),
    ("container_network_transmit_bytes_total", "cAdvisor"),
    // kubelet's own /metrics (job=kubelet, metrics_path=/metrics)
    ("kubelet_running_pods", "kubelet"),
    ("kubelet_running_containers", "kubelet"),
    ("kubelet_volume_stats_available_bytes", "kubelet"),
    ("kubelet_volume_stats_capacity_bytes", "kubelet"),
    // kube-state-metrics (job=kube-state-metrics)
    ("kube_pod_info", "kube-state-metrics"),
    ("kube_statefulset_replicas", "kube-state-metrics"),
    (
        "kube_statefulset_status_replicas_ready",
        "kube-state-metrics",
    ),
    // prometheus-node-exporter (job=node-exporter)
    ("node_memory_MemAvailable_bytes", "node-exporter"),
    ("node_memory_MemTotal_bytes", "node-exporter"),
    // meminfo's fields behind the node-memory panels' fallback for kernels before 3.14,
    // which have no MemAvailable (node-exporter's meminfo collector exports every field)
    ("node_memory_MemFree_bytes", "node-exporter"),
    ("node_memory_Buffers_bytes", "node-exporter"),
    ("node_memory_Cached_bytes", "node-exporter"),
    ("node_memory_SReclaimable_bytes", "node-exporter"),
    ("node_cpu_seconds_total", "node-exporter"),
    // Alertmanager's /metrics
    ("alertmanager_alerts", "Alertmanager"),
];

#[test]
fn metric_name_extraction_works() {
    assert_eq!(
        metric_names(
            "sum by (pod) (rate(foo_total{job=\"x\", a=~\"b|c\"}[5m])) / on (pod) group_left() bar and topk(3, baz:rule) > 0.5e3"
        ),
        BTreeSet::from(["foo_total".to_string(), "bar".into(), "baz:rule".into()])
    );
}

#[test]
fn dashboards_and_rules_use_only_known_metrics() {
    // Exported series, and the series the chart's own recording rules make of them.
    let spec = rendered_rules(&[]);
    let rules = rules_of(&spec);
    let mut known: BTreeSet<&str> = KNOWN_METRICS.iter().map(|(m, _)| *m).collect();
    known.extend(rules.iter().filter_map(|r| r["record"].as_str()));
    let mut used = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        for (place, expr) in dashboard_queries(&dashboard) {
            for name in metric_names(&substitute(&expr)) {
                assert!(
                    known.contains(name.as_str()),
                    "{file} {place} uses {name}, exported by neither beacon nor kube-prometheus-stack"
                );
                used.insert(name);
            }
        }
    }
    for rule in rules {
        let rule_name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
        for name in metric_names(str_of(&rule["expr"], "expr")) {
            assert!(
                known.contains(name.as_str()),
                "{rule_name} uses unknown metric {name}"
            );
            used.insert(name);
        }
    }
    // The app dashboard shows every beacon metric the issue asks for.
    for metric in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "beacon_visits_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "beacon_faults_injected_total",
    ] {
        assert!(used.contains(metric), "{metric} is not shown");
    }
}

#[test]
fn dashboards_have_datasource_and_namespace_variables() {
    let mut uids = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        assert!(
            uids.insert(dashboard["uid"].as_str().unwrap().to_string()),
            "{file}: duplicate uid"
        );
        let vars = arr_of(&dashboard["templating"]["list"], "templating");
        let var = |name: &str| {
            vars.iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("{file}: no ${name} variable"))
        };
        assert_eq!(var("datasource")["type"], "datasource");
        assert_eq!(var("datasource")["query"], "prometheus");
        assert_eq!(var("namespace")["type"], "query");
        let mut ids = BTreeSet::new();
        let mut panels: Vec<&Value> = arr_of(&dashboard["panels"], "panels").iter().collect();
        while let Some(panel) = panels.pop() {
            assert!(
                ids.insert(panel["id"].as_u64().expect("panel id")),
                "{file}: duplicate panel id {}",
                panel["id"]
            );
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file} {}",
                panel["title"]
            );
            assert!(
                panel["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{file} {} has no description",
                panel["title"]
            );
            for t in arr_of(&panel["targets"], "targets") {
                assert_eq!(t["datasource"]["uid"], "${datasource}");
                let expr = str_of(&t["expr"], "expr");
                if expr.contains("namespace=") {
                    assert!(expr.contains("namespace=\"$namespace\""), "{file}: {expr}");
                }
            }
        }
    }
    // Every panel's query is documented in docs/dashboards.md.
    let docs = std::fs::read_to_string(repo_root().join("docs/dashboards.md"))
        .expect("docs/dashboards.md");
    for (file, dashboard) in dashboards() {
        let mut panels: Vec<&Value> = arr_of(&dashboard["panels"], "panels").iter().collect();
        while let Some(panel) = panels.pop() {
            if panel["type"] != "row" {
                let title = str_of(&panel["title"], "title");
                assert!(
                    docs.contains(title),
                    "docs/dashboards.md lacks panel {title:?} of {file}"
                );
                for t in arr_of(&panel["targets"], "targets") {
                    let expr = str_of(&t["expr"], "expr");
                    assert!(
                        docs.contains(expr),
                        "docs/dashboards.md lacks the query of {title:?}: {expr}"
                    );
                }
            }
        }
    }
}

#[test]
fn alertmanager_example_config_is_valid_and_routes_beacon_alerts() {
    let amtool = require("amtool", "Debian package `prometheus-alertmanager`");
    let values = yaml_file(&repo_root().join("deploy/monitoring/values.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        serde_yaml_ng::to_string(&values["alertmanager"]["config"]).unwrap(),
    )
    .unwrap();
    run_ok(Command::new(&amtool).arg("check-config").arg(&config));
    let route = |labels: &[&str]| {
        run_ok(
            Command::new(&amtool)
                .args(["config", "routes", "test"])
                .arg(format!("--config.file={}", config.display()))
                .args(labels),
        )
        .trim()
        .to_string()
    };
    assert_eq!(
        route(&["alertname=BeaconDown", "severity=critical", "namespace=web"]),
        "beacon-webhook"
    );
    assert_eq!(
        route(&["alertname=BeaconLatencySlowBurn", "severity=warning"]),
        "beacon-webhook"
    );
    assert_eq!(route(&["alertname=Watchdog", "severity=none"]), "null");
    // The values turn on cross-release selection and take Grafana's password from a Secret.
    let spec = &values["prometheus"]["prometheusSpec"];
    for key in [
        "serviceMonitorSelectorNilUsesHelmValues",
        "ruleSelectorNilUsesHelmValues",
        "podMonitorSelectorNilUsesHelmValues",
    ] {
        assert_eq!(spec[key], false, "{key}");
    }
    assert!(values["grafana"]["admin"]["existingSecret"].is_string());
    assert!(values["grafana"].get("adminPassword").is_none());
    assert_eq!(
        values["grafana"]["sidecar"]["dashboards"]["label"],
        "grafana_dashboard"
    );
}
