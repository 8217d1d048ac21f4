//! kube-prometheus-stack runs Prometheus 3, these tests run Debian's 2.42. Prometheus 3 changed
//! a few PromQL semantics (docs/report.md, "Prometheus 3"); this test reads every query beacon
//! ships (the rendered alert and recording rules and their promtool tests, both dashboards, the report's source and the
//! docs that quote them) and fails on the constructs those changes break:
//!
//! - a matcher on `le` or `quantile` whose value is not in the float form Prometheus 3 stores
//!   (`le="1"` is `le="1.0"` after a v3 scrape: the matcher would find nothing);
//! - `holt_winters(` (renamed `double_exponential_smoothing`, and experimental, in v3);
//! - a literal range shorter than 2m in a rule or dashboard: ranges are left-open in v3, so a
//!   window holds window/interval samples, not one more; at kube-prometheus-stack's 30 s
//!   scrape interval 2m keeps 4, and `rate()` needs 2.
//!
//! And it scrapes a real `beacon serve`: its `/metrics` must be what Prometheus 3 reads as is
//! (a content type it negotiates without a fallback, `le` already in float form, names valid
//! without UTF-8 quoting), so upgrading the stack renames no series.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::chart_tools::*;
use beacon_testkit::{free_port, repo_root};
use serde_json::Value;

/// The shortest literal range a rule or dashboard may use, in seconds.
const MIN_RANGE: f64 = 120.0;

/// One query-bearing text and where it comes from.
struct Source {
    origin: String,
    text: String,
    /// Whether literal ranges are checked (rules and dashboards; the report computes its own
    /// windows, and tests and docs quote series at their own intervals).
    ranges: bool,
}

fn strings_under_keys(value: &Value, keys: &[&str], out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if keys.contains(&k.as_str()) => out.push(s.clone()),
                    _ => strings_under_keys(v, keys, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under_keys(v, keys, out)),
        _ => {}
    }
}

fn files_in(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_in(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn sources() -> Vec<Source> {
    let root = repo_root();
    let rel = |p: &Path| p.strip_prefix(&root).unwrap().display().to_string();
    let mut out = Vec::new();

    // The rules as the chart renders them (the file's alerts and the generated SLO rules).
    let mut exprs = Vec::new();
    strings_under_keys(&rendered_rules(&[]), &["expr"], &mut exprs);
    assert!(
        exprs.len() >= 8,
        "rules not found in the rendered PrometheusRule"
    );
    out.extend(exprs.into_iter().map(|text| Source {
        origin: "the chart's PrometheusRule".to_owned(),
        text,
        ranges: true,
    }));

    for file in files_in(&root.join("charts/beacon/files/dashboards"), "json") {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut queries = Vec::new();
        strings_under_keys(&dashboard, &["expr", "query", "definition"], &mut queries);
        assert!(!queries.is_empty(), "no queries in {}", rel(&file));
        out.extend(queries.into_iter().map(|text| Source {
            origin: rel(&file),
            text,
            ranges: true,
        }));
    }

    // Whole files: the rule tests' input series, the report's query builders, the docs.
    let whole = files_in(&root.join("charts/beacon/tests/rules"), "yaml")
        .into_iter()
        .chain(files_in(&root.join("crates/beacon-report/src"), "rs"))
        .chain(
            ["docs/report.md", "docs/dashboards.md", "docs/alerts.md"]
                .iter()
                .map(|p| root.join(p)),
        );
    for file in whole {
        out.push(Source {
            origin: rel(&file),
            text: std::fs::read_to_string(&file).unwrap(),
            ranges: false,
        });
    }
    out
}

/// Whether `v` is exactly the value form Prometheus 3 gives `le` and `quantile` (`1.0`, `0.005`,
/// `+Inf`, `5e-05`): Go's `strconv.FormatFloat(f, 'g', -1, 64)`, with `.0` appended when that has
/// neither `.` nor `e` (`FormatOpenMetricsFloat` in prometheus/model/labels). Any other spelling
/// of the same number (`0.00005`, `5e-5`, `1000000.0`) is rewritten by a v3 scrape.
fn normalised_float(v: &str) -> bool {
    if ["+Inf", "-Inf", "NaN"].contains(&v) {
        return true;
    }
    v.parse::<f64>()
        .is_ok_and(|f| f.is_finite() && prometheus3_float(f) == v)
}

/// `FormatOpenMetricsFloat` of a finite float. Go's shortest `%g` uses the exponent form when
/// the decimal exponent is below -4 or at least 6, with a sign and at least two digits.
fn prometheus3_float(f: f64) -> String {
    if f == 0.0 {
        return "0.0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap();
    let exponent: i32 = exponent.parse().unwrap();
    let s = if (-4..6).contains(&exponent) {
        f.to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    };
    if s.contains(['.', 'e']) { s } else { s + ".0" }
}

/// Problems of one text, each a line naming the construct and why.
fn problems(text: &str, ranges: bool) -> Vec<String> {
    let mut out = Vec::new();
    // Matchers on le / quantile. The text may be JSON or Rust source: quotes may be escaped.
    let unescaped = text.replace("\\\"", "\"");
    let bytes = unescaped.as_bytes();
    for label in ["le", "quantile"] {
        for (at, _) in unescaped.match_indices(label) {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let rest = unescaped[at + label.len()..].trim_start();
            let Some(op) = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| rest.starts_with(op))
            else {
                continue;
            };
            let rest = rest[op.len()..].trim_start();
            let Some(value) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else {
                continue;
            };
            if op.contains('~') {
                out.push(format!(
                    "{label}{op}\"{value}\": a regex on {label} must match both the 2.x and \
                     the Prometheus 3 (float) form; aggregate by {label} instead"
                ));
            } else if !normalised_float(value) {
                out.push(format!(
                    "{label}{op}\"{value}\": Prometheus 3 stores {label} values as floats \
                     (\"1\" becomes \"1.0\"): a matcher written so finds nothing there, and a \
                     test series written so is not what a v3 scrape produces"
                ));
            }
        }
    }
    if text.contains("holt_winters(") {
        out.push(
            "holt_winters(): renamed double_exponential_smoothing() and experimental in \
             Prometheus 3"
                .into(),
        );
    }
    if ranges {
        for piece in text.split('[').skip(1) {
            let Some(inner) = piece.split(']').next() else {
                continue;
            };
            if let Ok(d) = humantime::parse_duration(inner)
                && d.as_secs_f64() < MIN_RANGE
            {
                out.push(format!(
                    "[{inner}]: ranges are left-open in Prometheus 3; at a 30s scrape \
                     interval this window holds too few samples (use at least 2m or \
                     $__rate_interval)"
                ));
            }
        }
    }
    out
}

#[test]
fn no_shipped_query_depends_on_what_prometheus_3_changed() {
    let mut found = Vec::new();
    for source in sources() {
        for problem in problems(&source.text, source.ranges) {
            found.push(format!("{}: {problem}", source.origin));
        }
    }
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_each_construct() {
    let flagged = |text: &str, ranges: bool| problems(text, ranges).len();
    // le / quantile in the form a v3 scrape never produces.
    assert_eq!(flagged(r#"x_bucket{le="1"}"#, false), 1);
    assert_eq!(flagged(r#"x_bucket{job="a", le = "10"}"#, false), 1);
    assert_eq!(flagged(r#"x{quantile="1"}"#, false), 1);
    assert_eq!(flagged(r#"x_bucket{le=~"0.5|1"}"#, false), 1);
    assert_eq!(flagged(r#""expr": "x_bucket{le=\"2\"}""#, false), 1);
    // The same numbers, spelt otherwise than Go's shortest %g (v3 writes 5e-05 and 1e+06).
    assert_eq!(flagged(r#"x_bucket{le="0.00005"}"#, false), 1);
    assert_eq!(flagged(r#"x_bucket{le="5e-5"}"#, false), 1);
    assert_eq!(flagged(r#"x_bucket{le="1000000.0"}"#, false), 1);
    // The forms Prometheus 3 stores, and names that merely end in "le".
    for ok in [
        r#"x_bucket{le="1.0"}"#,
        r#"x_bucket{le="+Inf"}"#,
        r#"x_bucket{le="0.005"}"#,
        r#"x_bucket{le="1e-05"}"#,
        r#"x_bucket{le="0.0001"}"#,
        r#"x_bucket{le="3.2768"}"#,
        r#"x_bucket{le="123456.0"}"#,
        r#"x_bucket{le="1e+06"}"#,
        r#"x{quantile="0.99"}"#,
        r#"x{handle="1"}"#,
        r#"sum by (le) (rate(x_bucket[5m]))"#,
    ] {
        assert_eq!(flagged(ok, true), 0, "{ok}");
    }
    assert_eq!(flagged("holt_winters(x[10m], 0.5, 0.5)", false), 1);
    assert_eq!(flagged("rate(x[1m])", true), 1);
    assert_eq!(flagged("rate(x[1m])", false), 0);
    assert_eq!(flagged("rate(x[$__rate_interval]) + rate(y[2m])", true), 0);
}

/// Kills `beacon serve` on drop.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn legacy_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[test]
fn beacons_metrics_need_no_prometheus_3_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_beacon"))
            .arg("serve")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!(
                "--config={}",
                dir.path().join("config.json").display()
            ))
            .arg(format!("--init-data-dir={}", dir.path().display()))
            .env("BEACON_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    // One visit, so the request histogram has buckets.
    while http.get(format!("{base}/")).send().is_err() {
        assert!(Instant::now() < deadline, "beacon serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // What Prometheus 3 sends first: protobuf, then OpenMetrics, then text.
    let response = http
        .get(format!("{base}/metrics"))
        .header(
            "Accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
             encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;\
             escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
        )
        .send()
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "Prometheus 3 fails a scrape with an unknown content type: {content_type}"
    );
    let body = response.text().unwrap();
    slo_thresholds_are_the_buckets_of_slash(&body);
    let mut buckets = 0;
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        assert!(legacy_name(&line[..name_end]), "{line}");
        let Some(labels) = line[name_end..]
            .strip_prefix('{')
            .and_then(|l| l.split('}').next())
        else {
            continue;
        };
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once("=\"").unwrap();
            assert!(legacy_name(name), "{line}");
            if name == "le" || name == "quantile" {
                let value = value.trim_end_matches('"');
                assert!(normalised_float(value), "{name}=\"{value}\" in {line}");
                buckets += 1;
            }
        }
    }
    assert!(buckets >= 10, "no histogram buckets in:\n{body}");
}

/// The chart's schema lets the latency SLO's threshold be exactly a bucket boundary of `/`'s
/// request histogram, as a real `beacon serve` exposes it: every boundary, and nothing else.
fn slo_thresholds_are_the_buckets_of_slash(exposition: &str) {
    let mut exposed: Vec<f64> = exposition
        .lines()
        .filter(|l| {
            l.starts_with("http_request_duration_seconds_bucket{") && l.contains("route=\"/\"")
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
        .filter(|le: &f64| le.is_finite())
        .collect();
    exposed.dedup();
    assert!(exposed.len() >= 10, "no buckets of / in:\n{exposition}");
    let schema: Value =
        serde_json::from_str(&read_repo_file("charts/beacon/values.schema.json")).unwrap();
    let allowed: Vec<f64> = schema["properties"]["prometheusRule"]["properties"]["slo"]
        ["properties"]["latency"]["properties"]["threshold"]["enum"]
        .as_array()
        .expect("an enum of thresholds")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(allowed, exposed, "values.schema.json vs beacon's buckets");
}
