use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use beacon_serve::Settings;

use crate::helpers::*;

#[test]
fn oversized_headers_are_rejected() {
    let server = TestApp::start();
    let big = "x".repeat(64 * 1024);
    let resp = raw_http(
        server.addr,
        &format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    );
    assert!(
        resp.starts_with("HTTP/1.1 431"),
        "{}",
        &resp[..resp.len().min(200)]
    );
    assert_eq!(
        server.visits(),
        0,
        "a rejected request must not count as a visit"
    );
}

#[test]
fn oversized_bodies_are_rejected() {
    let server = TestApp::start();
    let resp = blocking_client()
        .get(server.url("/healthz"))
        .body(vec![b'a'; 1024 * 1024])
        .send();
    // The server may answer 413 or close the connection while the client still sends.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 413);
    }
}

/// A client that sends half a request and stalls is cut off, and does not stop others.
#[test]
fn slow_clients_are_timed_out_and_cannot_pin_the_server() {
    let opts = |s: &mut Settings| {
        s.limits.header_read_timeout = Duration::from_secs(1);
        s.limits.max_connections = 8;
    };
    let server = TestApp::start_with(opts);
    let mut slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // While they stall, others are served.
    assert_eq!(get_status_blocking(&server.url("/healthz")), 200);
    let started = Instant::now();
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            buf.is_empty() || text.starts_with("HTTP/1.1 408"),
            "unexpected answer to a stalled request: {text}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "stalled connections were not closed by the header timeout"
    );
    assert_eq!(server.visits(), 0);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let opts = |s: &mut Settings| {
        s.limits.header_read_timeout = Duration::from_secs(1);
    };
    let server = TestApp::start_with(opts);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "an idle keep-alive connection stayed open"
    );
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let opts = |s: &mut Settings| {
        s.limits.max_connections = 2;
        s.limits.header_read_timeout = Duration::from_secs(30);
    };
    let server = TestApp::start_with(opts);
    let _a = TcpStream::connect(server.addr).unwrap();
    let _b = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "the third connection was served: {}",
        String::from_utf8_lossy(&buf[..n])
    );
    drop((_a, _b));
    eventually(Duration::from_secs(5), "a slot frees up", || {
        blocking_client()
            .get(server.url("/healthz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
}

/// A client opening connections as fast as it can past the cap used to write one warning per
/// connection (thousands a second, pushing everything useful out of the rotated log); the
/// warning comes at most once a second and says how many it stands for.
#[test]
fn refused_connections_do_not_flood_the_log() {
    let server = TestApp::start_with(|s: &mut Settings| {
        s.limits.max_connections = 1;
    });
    let _holder = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..300 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Closed by the server: read returns 0 or a reset.
        let _ = s.read(&mut [0u8; 1]);
    }
    let logs = server.logs();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("connection limit reached"))
        .collect();
    assert!(
        !warnings.is_empty() && warnings.len() < 30,
        "{} warnings for 300 refused connections",
        warnings.len()
    );
}

/// A client that stops reading a large response is cut off after the write timeout, so it
/// cannot hold one of the (here: only) connection slots forever.
#[test]
fn a_client_that_stops_reading_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("init_data")).unwrap();
    let size = 64 * 1024 * 1024;
    std::fs::write(tmp.path().join("init_data/big.bin"), vec![1u8; size]).unwrap();
    let opts = |s: &mut Settings| {
        s.limits.write_timeout = Duration::from_secs(1);
        s.limits.max_connections = 1;
    };
    let server = TestApp::start_in(tmp.path(), opts).unwrap();
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled
        .write_all(b"GET /init-data/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 1024];
    let n = stalled.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    // Stop reading. The only slot is taken until the server gives up on the write.
    let started = Instant::now();
    eventually(
        Duration::from_secs(15),
        "the stalled connection is cut off",
        || {
            blocking_client()
                .get(server.url("/healthz"))
                .send()
                .is_ok_and(|r| r.status() == 200)
        },
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "served before the write timeout"
    );
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(
        n + rest.len() < size,
        "the stalled download should have been cut short"
    );
}

#[test]
fn max_in_flight_bounds_requests_across_routes() {
    // One slot, held for 3 s by a `/` with injected latency: a request to any other route
    // must wait for it. A limit per route (axum applies a router's layers to each route)
    // would answer at once. (`/delay` has its own bound and takes no slot.)
    let (tmp, _) = root_with_config(r#"{"faults": {"latency": "3s"}}"#);
    let server = TestApp::start_in(tmp.path(), |s: &mut Settings| {
        s.limits.max_in_flight = 1;
        s.limits.request_timeout = Duration::from_secs(5);
    })
    .unwrap();
    let addr = server.addr;
    let holder = std::thread::spawn(move || raw_get(addr, "/"));
    // Nothing on the service port can show the slot is taken without itself waiting for it;
    // a connection on loopback is served well within this.
    std::thread::sleep(Duration::from_millis(800));
    let t = Instant::now();
    assert!(raw_get(addr, "/version").starts_with("HTTP/1.1 200"));
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "/version was answered in {:?} while the only in-flight slot was held",
        t.elapsed()
    );
    assert!(holder.join().unwrap().starts_with("HTTP/1.1 200"));
}
