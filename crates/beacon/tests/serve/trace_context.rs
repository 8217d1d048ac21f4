//! W3C `traceparent` in, the trace id out in the access log and as an OpenMetrics exemplar on
//! `http_request_duration_seconds`. The way through a real Prometheus is in the report test
//! binary (`cargo test -p beacon --test report -- exemplar`).

use std::time::Duration;

use crate::helpers::{Served, TestApp, blocking_client, eventually};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

/// The access lines of `path`, in order, once `count` of them are logged.
fn access_lines(server: &TestApp, path: &str, count: usize) -> Vec<serde_json::Value> {
    let lines = || -> Vec<serde_json::Value> {
        server
            .logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "beacon::access" && v["path"] == path)
            .collect()
    };
    eventually(Duration::from_secs(5), "access lines logged", || {
        lines().len() >= count
    });
    lines()
}

fn is_trace_id(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 32
            && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            && s.bytes().any(|c| c != b'0')
    })
}

#[test]
fn the_trace_id_of_a_traceparent_is_logged_and_attached_as_an_exemplar() {
    let server = TestApp::start();
    let http = blocking_client();
    let resp = http
        .get(server.url("/"))
        .header("traceparent", traceparent(TRACE_ID))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let line = &access_lines(&server, "/", 1)[0];
    assert_eq!(line["trace_id"], TRACE_ID, "{line}");

    let metrics = server.metrics();
    // `…_bucket{labels} count # {trace_id="…"} value timestamp`: the OpenMetrics exemplar,
    // on the bucket the request's duration fell into, and on no other series.
    let with_exemplar: Vec<&str> = metrics.lines().filter(|l| l.contains(TRACE_ID)).collect();
    assert_eq!(with_exemplar.len(), 1, "{metrics}");
    let exemplar_line = with_exemplar[0];
    let (sample, exemplar) = exemplar_line.split_once(" # ").unwrap();
    assert!(
        sample.starts_with(r#"http_request_duration_seconds_bucket{method="GET",route="/",le=""#)
            || sample.starts_with(r#"http_request_duration_seconds_bucket{le=""#),
        "{exemplar_line}"
    );
    let le: f64 = sample
        .split("le=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|s| {
            if s == "+Inf" {
                f64::INFINITY
            } else {
                s.parse().unwrap()
            }
        })
        .unwrap();
    let fields: Vec<&str> = exemplar
        .strip_prefix(&format!("{{trace_id=\"{TRACE_ID}\"}} "))
        .unwrap_or_else(|| panic!("{exemplar_line}"))
        .split(' ')
        .collect();
    assert_eq!(fields.len(), 2, "value and timestamp: {exemplar_line}");
    let value: f64 = fields[0].parse().unwrap();
    let logged_seconds = line["duration_ms"].as_f64().unwrap() / 1e3;
    assert!(value <= le, "{value} above its bucket's bound {le}");
    assert!(
        (value - logged_seconds).abs() < 1e-6,
        "exemplar {value} s, logged {logged_seconds} s"
    );
    let timestamp: f64 = fields[1].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        timestamp <= now && now - timestamp < 60.0,
        "{timestamp} vs now {now}"
    );
}

#[test]
fn without_a_valid_traceparent_each_request_starts_its_own_trace() {
    let server = TestApp::start();
    let http = blocking_client();
    let invalid = [
        // Uppercase hex, an all-zero trace id, an all-zero parent id, version ff, garbage.
        traceparent(&TRACE_ID.to_uppercase()),
        traceparent(&"0".repeat(32)),
        format!("00-{TRACE_ID}-0000000000000000-01"),
        format!("ff-{TRACE_ID}-00f067aa0ba902b7-01"),
        "not a traceparent".to_owned(),
    ];
    for header in &invalid {
        let resp = http
            .get(server.url("/visits"))
            .header("traceparent", header)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{header}: never an error to the client");
    }
    assert_eq!(
        http.get(server.url("/visits")).send().unwrap().status(),
        200
    );
    let lines = access_lines(&server, "/visits", invalid.len() + 1);
    let mut ids: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert!(is_trace_id(&l["trace_id"]), "{l}");
            l["trace_id"].as_str().unwrap()
        })
        .collect();
    assert!(
        !ids.iter().any(|id| id.eq_ignore_ascii_case(TRACE_ID)),
        "an invalid header's trace id was used: {ids:?}"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), invalid.len() + 1, "trace ids repeat: {ids:?}");
}
