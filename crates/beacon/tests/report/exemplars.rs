//! From a latency panel to one request: a request to a real `beacon serve` carrying a known
//! W3C trace id is found through a real Prometheus' `/api/v1/query_exemplars` (exemplar storage
//! on, as the local stack and the docs' kube-prometheus-stack setting run it) and in beacon's
//! access log under the same id.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stack::{Prometheus, PrometheusConfig, Workdir, free_port, now, spawn};

const BEACON: &str = env!("CARGO_BIN_EXE_beacon");

/// A trace id no other run shares: the nanoseconds since the epoch, as 32 hex digits.
fn fresh_trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:032x}", nanos | 1 << 100)
}

/// The exemplars Prometheus holds for the `/` latency buckets of job `beacon`.
fn exemplars(prom: &Prometheus) -> Vec<(Value, Value)> {
    let now = now();
    let body: Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/query_exemplars", prom.url))
        .query(&[
            (
                "query",
                r#"http_request_duration_seconds_bucket{job="beacon",route="/"}"#.to_owned(),
            ),
            ("start", format!("{}", now - 600.0)),
            ("end", format!("{}", now + 60.0)),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    let mut found = Vec::new();
    for series in body["data"].as_array().unwrap() {
        for exemplar in series["exemplars"].as_array().unwrap() {
            found.push((series["seriesLabels"].clone(), exemplar.clone()));
        }
    }
    found
}

#[test]
fn a_trace_id_is_found_through_prometheus_exemplars_and_in_the_access_log() {
    let work = Workdir::new();
    let port = free_port();
    let mut beacon = spawn(
        "beacon",
        BEACON,
        &[
            "--log-format=json".into(),
            "serve".into(),
            format!("--listen=127.0.0.1:{port}"),
            format!("--data-dir={}", work.path().join("data").display()),
            format!("--config={}", work.path().join("config.json").display()),
            format!(
                "--init-data-dir={}",
                work.path().join("init_data").display()
            ),
        ],
        work.path(),
    );
    beacon.wait_until("listening", |log| log.contains(r#""message":"listening""#));
    let prom = Prometheus::start(
        work.path(),
        &work.path().join("tsdb"),
        PrometheusConfig {
            scrape_configs: format!(
                "  - job_name: beacon\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            ),
            args: vec!["--enable-feature=exemplar-storage".into()],
            ..Default::default()
        },
    );

    let trace_id = fresh_trace_id();
    let sent = now();
    let resp = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answered = now();

    // Scraped every second; a minute covers a slow start of the scrape loop.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (series, exemplar) = loop {
        let all = exemplars(&prom);
        if let Some(hit) = all
            .iter()
            .find(|(_, e)| e["labels"]["trace_id"] == trace_id.as_str())
        {
            break hit.clone();
        }
        assert!(
            Instant::now() < deadline,
            "trace id {trace_id} not among Prometheus' exemplars within 60 s: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(series["__name__"], "http_request_duration_seconds_bucket");
    assert_eq!(series["method"], "GET");
    assert_eq!(series["route"], "/");
    // Stamped with the request's own time (when it was answered), not the scrape's, which comes
    // up to a scrape interval later: a panel shows the point where the request was.
    let at = exemplar["timestamp"].as_f64().unwrap();
    assert!(
        sent - 0.01 <= at && at <= answered + 0.01,
        "exemplar time {at} outside the request's [{sent}, {answered}]"
    );

    let access: Vec<Value> = beacon
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "beacon::access" && v["trace_id"] == trace_id.as_str())
        .collect();
    assert_eq!(
        access.len(),
        1,
        "access lines with {trace_id}:\n{}",
        beacon.log()
    );
    assert_eq!(access[0]["path"], "/");
    assert_eq!(access[0]["status"], 200);
    // The exemplar's value is that request's duration, as its log line gives it (ms, rounded).
    let value: f64 = exemplar["value"].as_str().unwrap().parse().unwrap();
    let logged = access[0]["duration_ms"].as_f64().unwrap() / 1e3;
    assert!(
        (value - logged).abs() < 1e-6,
        "exemplar {value} s, logged {logged} s"
    );
}
