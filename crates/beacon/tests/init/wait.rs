//! `beacon init wait` for a dependency that comes up late, and one that never does.

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use crate::helpers::{self, run};
use beacon_testkit::fixture_http::{FixtureHttp, Route};
use beacon_testkit::free_port;

#[test]
fn succeeds_when_the_dependency_comes_up_after_a_delay() {
    let port = free_port();
    let target = format!("tcp:127.0.0.1:{port}");
    let started = Instant::now();
    let child = helpers::beacon(&[
        "init",
        "wait",
        &target,
        "--interval",
        "100ms",
        "--timeout",
        "20s",
    ])
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let out = helpers::finish(child, started);
    drop(listener);
    out.expect_code(0)
        .expect_last_line("ready: connected to 127.0.0.1");
    assert!(out.elapsed >= Duration::from_millis(800));
    out.expect_stderr("not ready: cannot connect: Connection refused");
}

#[test]
fn http_targets_need_a_2xx() {
    let server = FixtureHttp::start(vec![(
        "/healthz",
        Route::first_then(
            3,
            Route::Status {
                code: 503,
                retry_after: None,
            },
            Route::ok("ok"),
        ),
    )]);
    let out = run(&[
        "init",
        "wait",
        &server.url("/healthz"),
        "dns:localhost",
        "--interval",
        "50ms",
        "--timeout",
        "10s",
    ]);
    out.expect_code(0);
    assert_eq!(server.hits("/healthz"), 4);
    out.expect_stderr("not ready: HTTP 503 Service Unavailable");
    out.expect_stderr("ready: localhost resolves to");
}

#[test]
fn times_out_cleanly_with_the_last_reason_and_a_sane_log_rate() {
    let port = free_port();
    let target = format!("tcp:127.0.0.1:{port}");
    let out = run(&[
        "init",
        "wait",
        &target,
        "--interval",
        "20ms",
        "--timeout",
        "1500ms",
        "--log-every",
        "1s",
    ]);
    out.expect_code(1).expect_last_line(&format!(
        "beacon: error: timed out after 1s 500ms waiting for {target}: cannot connect: Connection refused"
    ));
    out.expect_within(Duration::from_secs(5));
    // ~50 attempts, but a repeated reason is logged at most once a second.
    let logged = out.log_lines_with("not ready:");
    assert!(
        (1..=3).contains(&logged),
        "{logged} failure lines:\n{}",
        out.stderr
    );
}

#[test]
fn bad_targets_exit_2() {
    run(&["init", "wait", "db:5432"])
        .expect_code(2)
        .expect_last_line("expected dns:NAME, tcp:HOST:PORT or an http(s):// URL");
    run(&["init", "wait", "tcp:db:http"])
        .expect_code(2)
        .expect_last_line("the port must be a number");
}

#[test]
fn malformed_hosts_are_usage_errors_at_once_not_polled() {
    // Each used to be polled until --timeout (5 minutes by default), failing every attempt.
    let cases = [
        (
            "tcp:[::1:80",
            r#"beacon: error: invalid wait target "tcp:[::1:80": an IPv6 address goes in brackets, e.g. tcp:[::1]:80"#,
        ),
        (
            "tcp:::1:80",
            r#"beacon: error: invalid wait target "tcp:::1:80": an IPv6 address goes in brackets, e.g. tcp:[::1]:80"#,
        ),
        (
            "tcp:[db]:80",
            r#"beacon: error: invalid wait target "tcp:[db]:80": "db" in brackets is not an IPv6 address"#,
        ),
        (
            "tcp:db name:80",
            r#"beacon: error: invalid wait target "tcp:db name:80": "db name" is not a host name (letters, digits, '-', '_' and '.')"#,
        ),
        (
            "dns:db/x",
            r#"beacon: error: invalid wait target "dns:db/x": "db/x" is not a host name (letters, digits, '-', '_' and '.')"#,
        ),
        (
            // hickory refuses the label, so every attempt failed ("Malformed label: -x").
            "dns:-x.default",
            r#"beacon: error: invalid wait target "dns:-x.default": "-x.default" is not a host name (letters, digits, '-', '_' and '.')"#,
        ),
        (
            "tcp:db-.default:80",
            r#"beacon: error: invalid wait target "tcp:db-.default:80": "db-.default" is not a host name (letters, digits, '-', '_' and '.')"#,
        ),
        (
            "dns:a..b",
            r#"beacon: error: invalid wait target "dns:a..b": "a..b" is not a host name (letters, digits, '-', '_' and '.')"#,
        ),
    ];
    for (target, message) in cases {
        // A regression polls until --timeout: keep that short.
        let out = run(&["init", "wait", target, "--timeout", "10s"]);
        out.expect_code(2);
        assert_eq!(out.last_line(), message, "stderr:\n{}", out.stderr);
        out.expect_within(Duration::from_secs(5));
    }
}

#[test]
fn port_zero_is_a_usage_error_not_polled() {
    // Nothing can be connected to on port 0: both used to be refused until --timeout.
    for target in ["tcp:127.0.0.1:0", "http://127.0.0.1:0/"] {
        let out = run(&["init", "wait", target, "--timeout", "20s"]);
        out.expect_code(2)
            .expect_last_line("the port must be a number from 1 to 65535");
        out.expect_within(Duration::from_secs(5));
    }
}

#[test]
fn target_prefixes_and_url_schemes_are_case_insensitive() {
    // RFC 3986 §3.1: a scheme is case-insensitive, and `HTTP://…` was a usage error.
    let server = FixtureHttp::start(vec![("/healthz", Route::ok("ok"))]);
    let url = server.url("/healthz");
    let rest = url.strip_prefix("http://").unwrap();
    let host_port = rest.split('/').next().unwrap();
    let out = run(&[
        "init",
        "wait",
        &format!("HTTP://{rest}"),
        &format!("Http://{rest}"),
        &format!("TCP:{host_port}"),
        "DNS:localhost",
        "--interval",
        "50ms",
        "--timeout",
        "10s",
    ]);
    out.expect_code(0);
    assert_eq!(server.hits("/healthz"), 2);
    // Shown as parsed: the scheme lowercased.
    out.expect_stderr(&format!("\"target\":\"{url}\""));
}
