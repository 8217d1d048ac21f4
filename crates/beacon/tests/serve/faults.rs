//! Fault injection: the config's `faults` section (per-pod overrides by ordinal, hot-reloaded),
//! `beacon_faults_injected_total`, the page's banner, and podinfo-style `/status` and `/delay`.

use std::time::{Duration, Instant};

use beacon_serve::Settings;

use crate::helpers::*;

fn injected(server: &TestApp, kind: &str) -> f64 {
    metric_value(
        &server.metrics(),
        &format!("beacon_faults_injected_total{{kind=\"{kind}\"}}"),
    )
    .unwrap_or_else(|| panic!("no beacon_faults_injected_total{{kind={kind}}}"))
}

/// Only the pod whose ordinal is overridden misbehaves; turning the faults off is a hot reload.
#[test]
fn per_pod_faults_fail_delay_and_show_until_reloaded_off() {
    let (tmp, config_dir) = root_with_config(
        r#"{"faults": {"pods": {"1": {"errorRatio": 0.5, "errorStatus": 503, "latency": "50ms"},
                                 "2": {"errorRatio": 1.0}}}}"#,
    );
    let server =
        TestApp::start_in(tmp.path(), |s: &mut Settings| s.identity = pod("beacon-1")).unwrap();
    for kind in ["error", "latency", "cpu"] {
        assert_eq!(injected(&server, kind), 0.0, "{kind} starts at zero");
    }

    let http = blocking_client();
    let mut statuses = Vec::new();
    let started = Instant::now();
    for _ in 0..10 {
        let r = http.get(server.url("/")).send().unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        if status == 200 {
            assert!(
                body.contains(
                    "Fault injection is on for this pod: 50% of requests answered 503; latency 50ms"
                ),
                "{body}"
            );
        }
        statuses.push(status);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "every request was delayed"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(server.visits(), 5, "failed requests count no visit");
    assert_eq!(injected(&server, "error"), 5.0);
    assert_eq!(injected(&server, "latency"), 10.0);
    assert_eq!(injected(&server, "cpu"), 0.0);
    let m = server.metrics();
    assert_eq!(
        metric_value(
            &m,
            r#"http_requests_total{method="GET",route="/",status="503"}"#
        ),
        Some(5.0),
        "injected errors are what the error-ratio alert counts"
    );

    // Faults off for every pod: no banner, no errors, no delay.
    kubelet_publish(&config_dir, 2, r#"{"faults": {}}"#);
    eventually(Duration::from_secs(10), "faults reloaded off", || {
        let response = http.get(server.url("/")).send().unwrap();
        response.status() == 200 && !response.text().unwrap().contains("Fault injection")
    });
    // A probe that met the faults before the reload may have been failed on purpose; from
    // here on none is.
    let errors = injected(&server, "error");
    for _ in 0..6 {
        assert_eq!(http.get(server.url("/")).send().unwrap().status(), 200);
    }
    assert_eq!(injected(&server, "error"), errors);
}

/// CPU work is real CPU time of the process, visible in its /proc/self/stat-based metric: a
/// process of its own, so that no other test's CPU counts.
#[test]
fn cpu_fault_burns_cpu_per_request() {
    let (tmp, _) = root_with_config(r#"{"faults": {"cpuPerRequest": "40ms"}}"#);
    let server = TestServer::start_in(tmp.path(), Options::default()).unwrap();
    let cpu = || metric_value(&server.metrics(), "process_cpu_seconds_total").unwrap();
    let before = cpu();
    for _ in 0..10 {
        assert_eq!(get_status_blocking(&server.url("/")), 200);
    }
    let used = cpu() - before;
    assert!(used >= 0.39, "10 requests × 40ms of CPU, used {used}s");
    assert_eq!(
        metric_value(
            &server.metrics(),
            r#"beacon_faults_injected_total{kind="cpu"}"#
        ),
        Some(10.0)
    );
}

/// A fault outside its bounds is rejected with the position, and the last good config stays.
#[test]
fn an_invalid_fault_update_is_rejected_and_the_previous_faults_stay() {
    let (tmp, config_dir) = root_with_config(r#"{"faults": {"errorRatio": 1}}"#);
    let server = TestApp::start_in(tmp.path(), |_| {}).unwrap();
    kubelet_publish(&config_dir, 2, "{\"faults\": {\"latency\": \"1h\"}}");
    eventually(Duration::from_secs(10), "the reload is rejected", || {
        metric_value(&server.metrics(), "beacon_config_last_reload_successful") == Some(0.0)
    });
    assert!(
        server.logs().contains(
            "line 1, column 27, at `faults.latency`: latency \\\"1h\\\" is above the maximum of 10s"
        ),
        "{}",
        server.logs()
    );
    assert_eq!(get_status_blocking(&server.url("/")), 500);
}

#[test]
fn status_and_delay_endpoints_are_bounded() {
    let server = TestApp::start();
    let http = blocking_client();
    let get = |path: &str| http.get(server.url(path)).send().unwrap();
    assert_eq!(get("/status/418").status(), 418);
    assert_eq!(get("/status/503").status(), 503);
    assert_eq!(get("/status/200").status(), 200);
    // Written as a status is written: `+503` and `0503` are not statuses (issue 20, item 7).
    for bad in [
        "/status/42",
        "/status/600",
        "/status/abc",
        "/status/+503",
        "/status/0503",
        "/status/%2B503",
        "/status/ 503",
    ] {
        assert_eq!(get(bad).status(), 400, "{bad}");
    }
    let t = Instant::now();
    let r = get("/delay/300ms");
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(get("/delay/0.1").status(), 200);
    for bad in ["/delay/11s", "/delay/soon", "/delay/-1"] {
        assert_eq!(get(bad).status(), 400, "{bad}");
    }
    let m = server.metrics();
    assert!(
        m.contains(r#"route="/delay/{duration}""#)
            && m.contains(r#"route="/status/{code}",status="418""#),
        "the routes are labelled by pattern, not by raw path"
    );

    // At most 64 delays wait at once: of 70 sent together, 64 wait and 6 are refused straight
    // away (no slot frees before the first delay ends, 6 s on), and / still answers meanwhile.
    let handles: Vec<_> = (0..70)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || raw_get(addr, "/delay/6s")[9..12].parse::<u16>().unwrap())
        })
        .collect();
    eventually(Duration::from_secs(5), "a delay is refused", || {
        server
            .metrics()
            .contains(r#"route="/delay/{duration}",status="429""#)
    });
    // Were / starved by the waiting delays, it would answer only when they end.
    let t = Instant::now();
    assert_eq!(get("/").status(), 200);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "/ is not starved by waiting delays"
    );
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let waited = codes.iter().filter(|c| **c == 200).count();
    let refused = codes.iter().filter(|c| **c == 429).count();
    assert_eq!((waited, refused), (64, 6), "{codes:?}");
}

/// Waiting delays have their own bound (64) and never take the `--max-in-flight` slots `/`
/// needs: with 8 slots, of 65 delays sent together 64 wait (one is refused) and `/` is still
/// answered while every one of them waits.
#[test]
fn delays_do_not_take_the_in_flight_slots() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let server = TestApp::start_with(|s: &mut Settings| {
        s.limits.max_in_flight = 8;
    });
    let waited = Arc::new(AtomicUsize::new(0));
    let _delays: Vec<_> = (0..65)
        .map(|_| {
            let (addr, waited) = (server.addr, waited.clone());
            std::thread::spawn(move || {
                if raw_get(addr, "/delay/9s").starts_with("HTTP/1.1 200") {
                    waited.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Counted against --max-in-flight, only 8 delays would wait and none would be refused.
    eventually(Duration::from_secs(8), "a delay is refused", || {
        server
            .metrics()
            .contains(r#"route="/delay/{duration}",status="429""#)
    });
    assert!(raw_get(server.addr, "/").starts_with("HTTP/1.1 200"));
    assert_eq!(
        waited.load(Ordering::SeqCst),
        0,
        "/ was answered only after delays ended"
    );
}
