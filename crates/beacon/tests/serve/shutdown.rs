use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use crate::helpers::*;

/// SIGTERM while a large response is still being read: readiness drops at once, the
/// response completes, the store is flushed and the process exits 0.
#[test]
fn sigterm_fails_readiness_then_drains_in_flight_requests_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("init_data")).unwrap();
    let size = 32 * 1024 * 1024;
    std::fs::write(tmp.path().join("init_data/big.bin"), vec![7u8; size]).unwrap();
    let opts = Options {
        extra_args: vec![
            "--shutdown-delay".into(),
            "1s".into(),
            "--shutdown-grace".into(),
            "20s".into(),
        ],
        ..Options::default()
    };
    let mut server = TestServer::start_in(tmp.path(), opts).unwrap();
    for _ in 0..5 {
        assert_eq!(get_status_blocking(&server.url("/")), 200);
    }

    let mut download = TcpStream::connect(server.addr).unwrap();
    download
        .write_all(b"GET /init-data/big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 4096];
    let mut got = download.read(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));

    server.signal(libc::SIGTERM);
    // During the shutdown delay the server still answers, but is not ready.
    eventually(Duration::from_secs(5), "readyz turns 503", || {
        blocking_client()
            .get(server.url("/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 503)
    });
    assert_eq!(get_status_blocking(&server.url("/healthz")), 200);

    // Read the rest slowly at first: the server must wait for us.
    std::thread::sleep(Duration::from_millis(1500));
    let mut rest = Vec::new();
    download.read_to_end(&mut rest).unwrap();
    got += rest.len();
    let header_len = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        got - header_len,
        size,
        "the in-flight download was cut short"
    );

    let status = server.wait_exit(Duration::from_secs(25));
    assert!(
        status.success(),
        "exit status {status:?}; logs:\n{}",
        server.logs()
    );
    assert!(
        server.logs().contains("visits store flushed"),
        "{}",
        server.logs()
    );
    // New connections are refused once the listener is closed.
    assert!(TcpStream::connect(server.addr).is_err());

    drop(server);
    let restarted = TestServer::start_in(tmp.path(), Options::default()).unwrap();
    assert_eq!(restarted.visits(), 5);
}

#[test]
fn sigint_exits_zero_too() {
    let mut server = TestServer::start();
    server.signal(libc::SIGINT);
    assert!(
        server.wait_exit(Duration::from_secs(10)).success(),
        "{}",
        server.logs()
    );
}
