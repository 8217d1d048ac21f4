//! Probes as the kubelet sends them: overlapping, frequent, and while the service is busy.

use std::{
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use beacon_serve::Settings;

use crate::helpers::*;

/// Overlapping readiness probes of a healthy pod must all answer 200 (each probe used to
/// write and delete the same file, so concurrent ones failed each other).
#[test]
fn concurrent_readyz_probes_of_a_healthy_pod_all_answer_200() {
    let server = TestApp::start();
    let failures = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let url = server.url("/readyz");
            let failures = failures.clone();
            std::thread::spawn(move || {
                let http = blocking_client();
                for _ in 0..50 {
                    let resp = http.get(&url).send().unwrap();
                    if resp.status() != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "of 800 overlapping probes of a healthy pod, some answered 503"
    );
}

/// A kubelet-style probe: a fresh connection, one request, a short deadline.
fn probe(url: &str) -> Result<u16, String> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(url)
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// One client holding more connections than --max-connections starves the service port;
/// the admin port, where the chart points the probes and the ServiceMonitor, keeps answering.
#[test]
fn probes_on_the_admin_port_survive_a_saturated_service_port() {
    let server = TestApp::start_with(|s: &mut Settings| {
        s.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        s.limits.max_connections = 4;
        s.limits.header_read_timeout = Duration::from_secs(60);
    });
    // Idle connections that never send a request hold every slot of the service port.
    let hogs: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    eventually(
        Duration::from_secs(10),
        "the service port is saturated",
        || probe(&server.url("/healthz")).is_err(),
    );
    for n in 0..50 {
        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                probe(&server.admin_url(path)),
                Ok(200),
                "probe {n} of {path} on the admin port"
            );
        }
    }
    let metrics = get_text_blocking(&server.admin_url("/metrics"));
    assert!(metrics.contains("beacon_visits_total"), "{metrics}");
    // Only probes and metrics live there.
    for path in ["/", "/visits", "/config", "/init-data/"] {
        assert_eq!(probe(&server.admin_url(path)), Ok(404), "{path}");
    }
    drop(hogs);
    eventually(Duration::from_secs(10), "the service port recovers", || {
        probe(&server.url("/healthz")) == Ok(200)
    });
}

/// The admin port has a small cap (64), so one client holding that many idle connections, and
/// reopening them as they are closed, used to fail every probe: the kubelet would restart a
/// healthy pod. Probes open a fresh connection and finish in milliseconds, so at the cap the
/// oldest connection makes room for the new one.
#[test]
fn probes_on_the_admin_port_survive_a_client_filling_it() {
    let server = TestApp::start_with(|s: &mut Settings| {
        s.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        s.limits.header_read_timeout = Duration::from_secs(60);
    });
    let admin = server.admin_addr.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let hog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = TcpStream::connect(admin) {
                    held.push_back(s);
                }
                if held.len() > 100 {
                    held.pop_front();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    let mut failed = Vec::new();
    for n in 0..20 {
        for path in ["/healthz", "/readyz"] {
            match probe(&server.admin_url(path)) {
                Ok(200) => {}
                other => failed.push(format!("probe {n} of {path}: {other:?}")),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    hog.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of 40 failed: {failed:#?}",
        failed.len()
    );
    assert!(
        server.logs().contains("closing the oldest"),
        "the port was never full:\n{}",
        server.logs()
    );
}

/// The admin port answers during the shutdown delay (readiness false), like the service port.
#[test]
fn admin_readyz_turns_503_on_sigterm_while_healthz_stays_200() {
    let mut server = TestServer::start_with(Options {
        extra_args: vec![
            "--admin-listen".into(),
            "127.0.0.1:0".into(),
            "--shutdown-delay".into(),
            "3s".into(),
        ],
        ..Options::default()
    });
    assert_eq!(probe(&server.admin_url("/readyz")), Ok(200));
    server.signal(libc::SIGTERM);
    eventually(Duration::from_secs(5), "admin readyz turns 503", || {
        probe(&server.admin_url("/readyz")) == Ok(503)
    });
    assert_eq!(probe(&server.admin_url("/healthz")), Ok(200));
    assert!(
        server.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        server.logs()
    );
    assert!(TcpStream::connect(server.admin_addr.unwrap()).is_err());
}
