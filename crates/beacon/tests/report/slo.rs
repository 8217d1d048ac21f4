//! The report's SLO section against a real Prometheus holding three days of beacon's request
//! counters and latency buckets (three pods, a 20-minute incident at the end), once from the
//! raw counters alone and once with the chart's recording rules evaluated over them by
//! `promtool tsdb create-blocks-from rules`. Every expected figure is computed here from the
//! model's counters, independently of beacon.

use std::sync::OnceLock;

use serde_json::Value;

use crate::stack::{
    OpenMetrics, Prometheus, PrometheusConfig, Workdir, assert_close, backfill, backfill_rules,
    grid, now, report, report_json,
};

/// The chart's SLO recording rules (`templates/_slo.tpl`) for a release in namespace `shop`
/// (job `beacon`), as `helm template` renders them with the default values: recording rules
/// only (promtool backfills no alerts, and this Prometheus should fire none).
fn chart_rules() -> String {
    use serde_yaml_ng::Value as Yaml;
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/beacon");
    let helm = crate::stack::require("helm", "helm v3/v4 (scripts/install-test-deps)");
    let out = std::process::Command::new(helm)
        .args(["template", "beacon"])
        .arg(&chart)
        .args(["--namespace", NS])
        .args(["--show-only", "templates/prometheusrule.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Yaml = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    let mut groups: Vec<Yaml> = Vec::new();
    for group in doc["spec"]["groups"].as_sequence().unwrap() {
        if !group["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("beacon.slo.")
        {
            continue;
        }
        let mut group = group.clone();
        let records: Vec<Yaml> = group["rules"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|r| r.get("record").is_some())
            .cloned()
            .collect();
        group["rules"] = Yaml::Sequence(records);
        groups.push(group);
    }
    assert_eq!(groups.len(), 2, "availability and latency groups");
    let mut file = serde_yaml_ng::Mapping::new();
    file.insert("groups".into(), Yaml::Sequence(groups));
    serde_yaml_ng::to_string(&file).unwrap()
}

const STEP: f64 = 60.0;
const NS: &str = "shop";
/// Seconds of each burn-rate window, as the chart's recording rules name them.
const WINDOWS: [(&str, f64); 7] = [
    ("5m", 300.0),
    ("30m", 1800.0),
    ("1h", 3600.0),
    ("2h", 7200.0),
    ("6h", 21600.0),
    ("1d", 86400.0),
    ("3d", 259_200.0),
];
/// The SRE workbook's alert pairs: (factor, long window, short window).
const PAIRS: [(f64, &str, &str); 4] = [
    (14.4, "1h", "5m"),
    (6.0, "6h", "30m"),
    (3.0, "1d", "2h"),
    (1.0, "3d", "6h"),
];

/// A share of requests that changes once, when the incident starts.
#[derive(Clone, Copy)]
struct Share {
    before: f64,
    during: f64,
}

/// One beacon pod: its request rate to `/`, the share answered 5xx, and the share answered
/// within 0.25 s and 0.5 s.
struct Pod {
    name: &'static str,
    rate: f64,
    errors: Share,
    within_250ms: Share,
    within_500ms: Share,
}

struct Model {
    t0: f64,
    incident: f64,
    end: f64,
    pods: Vec<Pod>,
}

impl Model {
    /// The model ending on the last whole minute before `now`, a minute in the past.
    fn new(now: f64) -> Self {
        Self::ending((now / STEP).floor() * STEP - STEP)
    }

    fn ending(end: f64) -> Self {
        let s = |before, during| Share { before, during };
        Self {
            // Three days and two hours: the 3d window is fully covered.
            t0: end - 3.0 * 86_400.0 - 7200.0,
            incident: end - 1200.0,
            end,
            pods: vec![
                Pod {
                    name: "beacon-0",
                    rate: 4.0,
                    errors: s(0.0004, 0.02),
                    within_250ms: s(0.97, 0.7),
                    within_500ms: s(0.996, 0.95),
                },
                Pod {
                    name: "beacon-1",
                    rate: 6.0,
                    errors: s(0.0005, 0.05),
                    within_250ms: s(0.96, 0.6),
                    within_500ms: s(0.995, 0.9),
                },
                Pod {
                    name: "beacon-2",
                    rate: 10.0,
                    errors: s(0.0006, 0.08),
                    within_250ms: s(0.95, 0.5),
                    within_500ms: s(0.994, 0.85),
                },
            ],
        }
    }

    /// A counter of `rate × share` requests per second since `t0`, at `t`. The last minute
    /// has no traffic: Prometheus evaluates each rule group at a phase of its own (a hash of
    /// its name and file), so the rules' last values fall somewhere in that minute, where the
    /// counters are the same as at the range's end.
    fn counter(&self, rate: f64, share: Share, t: f64) -> f64 {
        let t = t.min(self.end - STEP);
        let before = t.min(self.incident) - self.t0;
        let during = (t - self.incident).max(0.0);
        rate * (share.before * before + share.during * during)
    }

    /// Requests to `/` over `[a, b]` and the share of them that were bad: answered 5xx
    /// (availability), or not within `within(pod)` (latency).
    fn bad_ratio(&self, a: f64, b: f64, bad: impl Fn(&Pod) -> Share) -> (f64, f64) {
        let all = Share {
            before: 1.0,
            during: 1.0,
        };
        let delta = |rate, share| self.counter(rate, share, b) - self.counter(rate, share, a);
        let total: f64 = self.pods.iter().map(|p| delta(p.rate, all)).sum();
        let bad: f64 = self.pods.iter().map(|p| delta(p.rate, bad(p))).sum();
        (total, bad / total)
    }

    fn openmetrics(&self) -> OpenMetrics {
        let mut om = OpenMetrics::default();
        let times = grid(self.t0, self.end, STEP);
        let ok = |s: Share, minus: Share| Share {
            before: s.before - minus.before,
            during: s.during - minus.during,
        };
        let all = Share {
            before: 1.0,
            during: 1.0,
        };
        let not_found = Share {
            before: 0.01,
            during: 0.01,
        };
        for p in &self.pods {
            let base = [("job", "beacon"), ("namespace", NS), ("pod", p.name)];
            let third = |s: Share| Share {
                before: s.before / 3.0,
                during: s.during / 3.0,
            };
            // 5xx split over 500 (two thirds) and 503 (one third); 404 is not an error.
            let statuses = [
                ("200", ok(ok(all, p.errors), not_found)),
                ("404", not_found),
                ("500", ok(p.errors, third(p.errors))),
                ("503", third(p.errors)),
            ];
            for (status, share) in statuses {
                let mut labels = base.to_vec();
                labels.extend([("method", "GET"), ("route", "/"), ("status", status)]);
                om.series("http_requests_total", &labels, &times, |t| {
                    self.counter(p.rate, share, t)
                });
            }
            let mut route = base.to_vec();
            route.extend([("method", "GET"), ("route", "/")]);
            let half_slow = Share {
                before: p.within_500ms.before + (1.0 - p.within_500ms.before) / 2.0,
                during: p.within_500ms.during + (1.0 - p.within_500ms.during) / 2.0,
            };
            for (le, share) in [
                ("0.25", p.within_250ms),
                ("0.5", p.within_500ms),
                ("1.0", half_slow),
                ("+Inf", all),
            ] {
                let mut labels = route.clone();
                labels.push(("le", le));
                om.series(
                    "http_request_duration_seconds_bucket",
                    &labels,
                    &times,
                    |t| self.counter(p.rate, share, t),
                );
            }
            om.series("http_request_duration_seconds_count", &route, &times, |t| {
                self.counter(p.rate, all, t)
            });
        }
        self.decoys(&mut om, &times);
        for (ns, pod, app) in [
            (NS, "beacon-0", "beacon"),
            (NS, "beacon-1", "beacon"),
            (NS, "beacon-2", "beacon"),
            (NS, "other-0", "other"),
            ("staging", "beacon-0", "beacon"),
        ] {
            let labels = [
                ("job", "kube-state-metrics"),
                ("namespace", ns),
                ("pod", pod),
                ("label_app", app),
            ];
            om.series("kube_pod_labels", &labels, &times, |_| 1.0);
        }
        om
    }

    /// Failing requests the SLOs must not count: another route of the same pods, a pod of
    /// another workload in the namespace, the same workload in another namespace.
    fn decoys(&self, om: &mut OpenMetrics, times: &[f64]) {
        let all = Share {
            before: 1.0,
            during: 1.0,
        };
        for (ns, pod, job, route) in [
            (NS, "beacon-0", "beacon", "/healthz"),
            (NS, "other-0", "other", "/"),
            ("staging", "beacon-0", "beacon", "/"),
        ] {
            let labels = [
                ("job", job),
                ("namespace", ns),
                ("pod", pod),
                ("method", "GET"),
                ("route", route),
            ];
            let mut failing = labels.to_vec();
            failing.push(("status", "500"));
            om.series("http_requests_total", &failing, times, |t| {
                self.counter(5.0, all, t)
            });
            let mut slow = labels.to_vec();
            slow.push(("le", "0.5"));
            om.series("http_request_duration_seconds_bucket", &slow, times, |_| {
                0.0
            });
            let mut inf = labels.to_vec();
            inf.push(("le", "+Inf"));
            om.series("http_request_duration_seconds_bucket", &inf, times, |t| {
                self.counter(5.0, all, t)
            });
            om.series("http_request_duration_seconds_count", &labels, times, |t| {
                self.counter(5.0, all, t)
            });
        }
    }
}

struct Stack {
    model: Model,
    prom: Prometheus,
    json: OnceLock<Value>,
}

impl Stack {
    fn start(
        model: Model,
        config: PrometheusConfig,
        more_blocks: impl FnOnce(&std::path::Path, &std::path::Path),
    ) -> Self {
        let work = Workdir::new().0.keep();
        let tsdb = work.join("tsdb");
        backfill(&work, &tsdb, &model.openmetrics());
        more_blocks(&work, &tsdb);
        let prom = Prometheus::start_with_cleanup(&work, &tsdb, config, Some(&work));
        Self {
            model,
            prom,
            json: OnceLock::new(),
        }
    }

    /// The last hour of the model, namespace `shop`, the default workload (statefulset/beacon).
    fn args(&self) -> Vec<String> {
        vec![
            "--prometheus".into(),
            self.prom.url.clone(),
            "--namespace".into(),
            NS.into(),
            "--start".into(),
            (self.model.end - 3600.0).to_string(),
            "--end".into(),
            self.model.end.to_string(),
        ]
    }

    fn report(&self, extra: &[&str]) -> Value {
        let mut args = self.args();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        report_json(&args)
    }

    fn json(&self) -> &Value {
        self.json.get_or_init(|| self.report(&[]))
    }
}

static RAW: OnceLock<Stack> = OnceLock::new();
static RULES: OnceLock<Stack> = OnceLock::new();

/// Beacon's counters only: no recording rules.
fn raw() -> &'static Stack {
    RAW.get_or_init(|| Stack::start(Model::new(now()), PrometheusConfig::default(), |_, _| {}))
}

/// The same counters plus the chart's recording rules, evaluated by promtool against the raw
/// stack over the last ten minutes (the report reads them at its end only). This Prometheus
/// loads the rules too, as kube-prometheus-stack's would, so its rules API lists them; its own
/// evaluations land after the model's end.
fn with_rules() -> &'static Stack {
    RULES.get_or_init(|| {
        let base = raw();
        let rules_yaml = chart_rules();
        let config = PrometheusConfig {
            rules: Some(rules_yaml.clone()),
            ..PrometheusConfig::default()
        };
        Stack::start(Model::ending(base.model.end), config, |work, tsdb| {
            let rules = work.join("slo-rules.yml");
            std::fs::write(&rules, &rules_yaml).unwrap();
            // The end is exclusive: half a step more evaluates at the model's end too.
            backfill_rules(
                &base.prom.url,
                &rules,
                (base.model.end - 600.0, base.model.end + STEP / 2.0),
                "60s",
                tsdb,
            );
        })
    })
}

/// What the report should say about one SLO.
struct Expected {
    objective: f64,
    /// Requests over the report's range and the share of them that were bad.
    range: (f64, f64),
    /// Bad share over each window ending at the range's end.
    windows: Vec<f64>,
    /// Bad share over everything the period's window holds (the model's whole history).
    period: f64,
}

fn expected(m: &Model, objective: f64, bad: impl Fn(&Pod) -> Share + Copy) -> Expected {
    Expected {
        objective,
        range: m.bad_ratio(m.end - 3600.0, m.end, bad),
        windows: WINDOWS
            .iter()
            .map(|(_, w)| m.bad_ratio(m.end - w, m.end, bad).1)
            .collect(),
        period: m.bad_ratio(m.t0, m.end, bad).1,
    }
}

fn availability(m: &Model, objective: f64) -> Expected {
    expected(m, objective, |p| p.errors)
}

fn latency(m: &Model, objective: f64, within: fn(&Pod) -> Share) -> Expected {
    expected(m, objective, move |p| {
        let s = within(p);
        Share {
            before: 1.0 - s.before,
            during: 1.0 - s.during,
        }
    })
}

fn slo<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["slo"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no slo answer: {}", report["slo"]))
        .iter()
        .find(|s| s["slo"] == name)
        .unwrap_or_else(|| panic!("no {name} SLO: {}", report["slo"]))
}

/// Checks one SLO's figures; the budget over the period when `period` (recording rules),
/// else over the report's range.
fn check(report: &Value, name: &str, e: &Expected, period: bool) {
    let s = slo(report, name);
    let budget = 1.0 - e.objective;
    assert_close(&s["objective"], e.objective, &format!("{name} objective"));
    assert_close(
        &s["range"]["requests"],
        e.range.0,
        &format!("{name} requests"),
    );
    assert_close(&s["range"]["sli"], 1.0 - e.range.1, &format!("{name} SLI"));
    let consumed = if period { e.period } else { e.range.1 } / budget;
    assert_close(
        &s["budget"]["consumed"],
        consumed,
        &format!("{name} budget consumed"),
    );
    assert_eq!(
        s["budget"]["over"],
        if period { "period" } else { "range" },
        "{name}: {s}"
    );
    let burns = s["burn_rates"].as_array().unwrap();
    assert_eq!(burns.len(), WINDOWS.len(), "{name}: {s}");
    for ((window, _), (ratio, burn)) in WINDOWS.iter().zip(e.windows.iter().zip(burns)) {
        assert_eq!(burn["window"], *window, "{name}: {burn}");
        assert_close(&burn["error_ratio"], *ratio, &format!("{name} {window}"));
        assert_close(
            &burn["burn_rate"],
            ratio / budget,
            &format!("{name} {window} burn"),
        );
    }
    let by_window = |w: &str| {
        let i = WINDOWS.iter().position(|(n, _)| *n == w).unwrap();
        e.windows[i] / budget
    };
    let alerts = s["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), PAIRS.len(), "{name}: {s}");
    for ((factor, long, short), alert) in PAIRS.iter().zip(alerts) {
        assert_eq!(
            (alert["long"].as_str(), alert["short"].as_str()),
            (Some(*long), Some(*short)),
            "{alert}"
        );
        assert_close(&alert["factor"], *factor, "factor");
        let exceeded = by_window(long) > *factor && by_window(short) > *factor;
        assert_eq!(alert["exceeded"], exceeded, "{name} {long}&{short}: {s}");
    }
}

/// The model's incident makes the page-level pair (1h and 5m) exceed 14.4× for availability
/// and leaves the 3d/6h pair under 1×: both outcomes are checked, not just one.
#[test]
fn slo_from_raw_counters_matches_the_model() {
    let stack = raw();
    let r = stack.json();
    let m = &stack.model;
    let a = availability(m, 0.999);
    check(r, "availability", &a, false);
    check(r, "latency", &latency(m, 0.99, |p| p.within_500ms), false);
    assert!(a.windows[2] / 0.001 > 14.4 && a.windows[0] / 0.001 > 14.4);
    assert!(a.windows[6] / 0.001 < 1.0);
    let s = slo(r, "availability");
    assert_eq!(s["objective_from"], "default", "{s}");
    assert_eq!(s["budget"]["from"], "raw_counters", "{s}");
    assert_eq!(s["job"], "beacon", "{s}");
    let notes = r["slo"]["notes"].to_string();
    assert!(
        notes.contains("raw counters") && notes.contains("report's range"),
        "{notes}"
    );
    assert_eq!(r["partial"], false);
}

#[test]
fn slo_from_the_charts_recording_rules_gives_the_same_answers() {
    let stack = with_rules();
    let r = stack.json();
    let m = &stack.model;
    check(r, "availability", &availability(m, 0.999), true);
    check(r, "latency", &latency(m, 0.99, |p| p.within_500ms), true);
    for name in ["availability", "latency"] {
        let s = slo(r, name);
        assert_eq!(s["objective_from"], "recording_rule", "{s}");
        assert_eq!(s["period"], "30d", "{s}");
        assert_eq!(s["budget"]["from"], "recording_rules", "{s}");
        for burn in s["burn_rates"].as_array().unwrap() {
            assert_eq!(burn["from"], "recording_rules", "{burn}");
        }
    }
    let queries = r["slo"]["queries"].to_string();
    assert!(
        queries.contains(r#"beacon:slo_errors:ratio_rate5m{namespace=\"shop\",job=\"beacon\",slo=\"availability\"}"#),
        "{queries}"
    );
    assert_eq!(r["partial"], false);
}

/// The rules count the chart's threshold: a different flag does not make the SLI over the
/// range count other requests than the burn rates do.
#[test]
fn slo_latency_threshold_is_the_rules_when_they_are_loaded() {
    let stack = with_rules();
    let r = stack.report(&["--slo-latency-threshold", "250ms"]);
    check(
        &r,
        "latency",
        &latency(&stack.model, 0.99, |p| p.within_500ms),
        true,
    );
    assert_close(&slo(&r, "latency")["threshold_seconds"], 0.5, "threshold");
    let notes = r["slo"]["notes"].to_string();
    assert!(
        notes.contains(
            r#"the recording rules' 500ms (bucket 0.5), not the threshold asked for (250ms)"#
        ),
        "{notes}"
    );
}

#[test]
fn slo_flags_set_objectives_and_threshold_without_rules() {
    let stack = raw();
    let r = stack.report(&[
        "--slo-availability",
        "99.5",
        "--slo-latency",
        "95",
        "--slo-latency-threshold",
        "250ms",
    ]);
    let m = &stack.model;
    check(&r, "availability", &availability(m, 0.995), false);
    check(&r, "latency", &latency(m, 0.95, |p| p.within_250ms), false);
    let s = slo(&r, "latency");
    assert_eq!(s["objective_from"], "flag", "{s}");
    assert_close(&s["threshold_seconds"], 0.25, "threshold");
}

/// A label selector goes through kube-state-metrics' kube_pod_labels: the same pods, the
/// same figures, and every selector of a joined query keeps to the namespace.
#[test]
fn slo_of_a_label_selector_joins_within_the_namespace() {
    let stack = raw();
    let r = stack.report(&["--selector", "app=beacon"]);
    let m = &stack.model;
    check(&r, "availability", &availability(m, 0.999), false);
    check(&r, "latency", &latency(m, 0.99, |p| p.within_500ms), false);
    let mut joins = 0;
    for used in r["slo"]["queries"].as_array().unwrap() {
        let promql = used["promql"].as_str().unwrap();
        if !promql.contains(" on (") {
            continue;
        }
        joins += 1;
        for selector in promql.split('{').skip(1) {
            let body = selector.split('}').next().unwrap();
            assert!(body.contains(r#"namespace="shop""#), "{promql}");
        }
    }
    assert!(joins >= 16, "only {joins} joins");
}

/// A Prometheus that refuses the widest raw queries (the 3d window) answers the rest: the
/// failed windows are named under the SLO section and the report exits 3.
#[test]
fn slo_windows_refused_by_prometheus_are_named_and_the_report_is_partial() {
    let model = Model::new(now());
    let work = Workdir::new().0.keep();
    let tsdb = work.join("tsdb");
    backfill(&work, &tsdb, &model.openmetrics());
    // Prometheus loads a rate()'s range one series at a time: 4,321 samples for the 3d window,
    // 1,441 for the 1d window.
    let config = PrometheusConfig {
        args: vec!["--query.max-samples=3000".into()],
        ..PrometheusConfig::default()
    };
    let prom = Prometheus::start_with_cleanup(&work, &tsdb, config, Some(&work));
    let stack = Stack {
        model,
        prom,
        json: OnceLock::new(),
    };
    let mut args = stack.args();
    args.extend(["--format".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = report(&args);
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(run.code, Some(3), "{}: {}", run.stderr, r["cost"]);
    assert_eq!(r["partial"], true);
    let notes = r["slo"]["notes"].to_string();
    for name in ["availability", "latency"] {
        assert!(
            notes.contains(&format!(
                "SLOs: asking for {name}: bad share over 3d failed"
            )) && notes.contains("too many samples"),
            "{notes}"
        );
        let s = slo(&r, name);
        let burns = s["burn_rates"].as_array().unwrap();
        assert!(burns[6]["burn_rate"].is_null(), "{s}");
        assert!(burns[5]["burn_rate"].is_number(), "{s}");
    }
    let m = &stack.model;
    let a = availability(m, 0.999);
    assert_close(
        &slo(&r, "availability")["range"]["sli"],
        1.0 - a.range.1,
        "SLI",
    );
}

#[test]
fn slo_latency_threshold_must_be_a_bucket_boundary() {
    let dead = format!("http://127.0.0.1:{}", crate::stack::free_port());
    let run = report(&["--prometheus", &dead, "--slo-latency-threshold", "300ms"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--slo-latency-threshold")
            && run.stderr.contains("300ms")
            && run.stderr.contains("250ms, 500ms"),
        "{}",
        run.stderr
    );
    let run = report(&["--prometheus", &dead, "--slo-availability", "100"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--slo-availability"), "{}", run.stderr);
}

/// Text, Markdown and HTML show the objectives, the SLI, the budget and each burn rate with
/// the pair whose condition holds.
#[test]
fn slo_section_in_every_human_format() {
    let stack = with_rules();
    let m = &stack.model;
    let a = availability(m, 0.999);
    let burn_5m = format!("{:.2}×", a.windows[0] / 0.001);
    let sli = format!("{:.3}%", 100.0 * (1.0 - a.range.1));
    let mut base = stack.args();
    for format in ["text", "md", "html"] {
        base.extend(["--format".into(), format.into()]);
        let args: Vec<&str> = base.iter().map(String::as_str).collect();
        let run = report(&args);
        assert!(run.ok, "{format}: {}", run.stderr);
        let out = &run.stdout;
        for expected in [
            "Service-level objectives of /",
            "99.9%",
            burn_5m.as_str(),
            sli.as_str(),
            "14.4×",
            "page",
        ] {
            assert!(
                out.contains(expected),
                "{format}: no {expected:?} in\n{out}"
            );
        }
        if format == "text" {
            let section = out.split("7. Service-level").nth(1).unwrap_or_default();
            for line in section.lines() {
                assert!(line.chars().count() <= 100, "wider than 100: {line}");
            }
        }
        base.truncate(base.len() - 2);
    }
}
