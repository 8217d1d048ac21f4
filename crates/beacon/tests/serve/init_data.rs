use std::{
    ffi::CString,
    net::TcpStream,
    os::unix::{ffi::OsStrExt, fs::symlink},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::helpers::*;

const SECRET: &str = "TOP-SECRET-MARKER-7f3a";

fn server_with_files() -> TestApp {
    let server = TestApp::start();
    let dir = server.init_data_dir();
    std::fs::write(dir.join("index.html"), "<html><body>CERN</body></html>").unwrap();
    std::fs::write(
        dir.join("example.txt"),
        "bla-bla\nwhoa\nthis is the 14th lab\n",
    )
    .unwrap();
    std::fs::write(dir.join(".example.txt.steps"), "bookkeeping").unwrap();
    std::fs::write(server.root.join("secret.txt"), SECRET).unwrap();
    symlink(server.root.join("secret.txt"), dir.join("escape.txt")).unwrap();
    symlink("/etc/passwd", dir.join("passwd")).unwrap();
    // A visible name for a hidden file is as hidden as the file.
    symlink(".example.txt.steps", dir.join("steps.txt")).unwrap();
    server
}

#[test]
fn files_are_served_read_only_with_their_content_type() {
    let server = server_with_files();
    let http = blocking_client();
    let html = http
        .get(server.url("/init-data/index.html"))
        .send()
        .unwrap();
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-type"], "text/html");
    assert_eq!(html.headers()["x-content-type-options"], "nosniff");
    assert_eq!(html.text().unwrap(), "<html><body>CERN</body></html>");
    let txt = http
        .get(server.url("/init-data/example.txt"))
        .send()
        .unwrap();
    assert_eq!(txt.headers()["content-type"], "text/plain");
    assert_eq!(txt.text().unwrap(), "bla-bla\nwhoa\nthis is the 14th lab\n");
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let resp = http
            .request(method.clone(), server.url("/init-data/example.txt"))
            .body("x")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
    }
    assert_eq!(
        std::fs::read_to_string(server.init_data_dir().join("example.txt")).unwrap(),
        "bla-bla\nwhoa\nthis is the 14th lab\n"
    );
}

#[test]
fn listing_shows_only_servable_files() {
    let server = server_with_files();
    let http = blocking_client();
    let json: serde_json::Value = http
        .get(server.url("/init-data/"))
        .header("accept", "application/json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.txt", "index.html"]);
    let html = http
        .get(server.url("/init-data/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        html.contains("<a href=\"/init-data/index.html\">index.html</a>"),
        "{html}"
    );
    assert!(
        !html.contains("escape.txt")
            && !html.contains("passwd")
            && !html.contains(".example.txt.steps")
            && !html.contains("steps.txt"),
        "{html}"
    );
    let redirect = raw_get(server.addr, "/init-data");
    assert!(
        redirect.starts_with("HTTP/1.1 308") && redirect.contains("location: /init-data/"),
        "{redirect}"
    );
}

#[test]
fn traversal_payloads_are_all_refused() {
    let server = server_with_files();
    let payloads = [
        "/init-data/../secret.txt",
        "/init-data/../../../../etc/passwd",
        "/init-data/%2e%2e/secret.txt",
        "/init-data/%2E%2E%2Fsecret.txt",
        "/init-data/..%2fsecret.txt",
        "/init-data/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/init-data//etc/passwd",
        "/init-data/%2fetc%2fpasswd",
        "/init-data/escape.txt",
        "/init-data/passwd",
        "/init-data/.example.txt.steps",
        "/init-data/steps.txt",
        "/init-data/index.html%00.txt",
        "/init-data/./index.html/..",
        "/init-data/..\\secret.txt",
    ];
    // Names the kernel refuses as too long are the client's mistake too, not a server error.
    let long_name = format!("/init-data/{}", "a".repeat(300));
    let long_path = format!("/init-data/{}b", "a/".repeat(3000));
    for payload in payloads.iter().copied().chain([&*long_name, &*long_path]) {
        let resp = raw_get(server.addr, payload);
        let status: u16 = resp[9..12].parse().unwrap();
        assert!(
            status == 400 || status == 404,
            "{payload} answered {status}:\n{resp}"
        );
        assert!(
            !resp.contains(SECRET) && !resp.contains("root:x:0:0"),
            "{payload} leaked:\n{resp}"
        );
    }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Atomically swaps two names (renameat2 RENAME_EXCHANGE), e.g. a directory and a symlink.
fn exchange(a: &Path, b: &Path) {
    let (a, b) = (
        CString::new(a.as_os_str().as_bytes()).unwrap(),
        CString::new(b.as_os_str().as_bytes()).unwrap(),
    );
    // SAFETY: valid NUL-terminated paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
}

/// Swaps a served file with an outside symlink, a FIFO and a socket, and a served directory with a
/// symlink to an outside directory, as fast as possible while clients request them. Nothing
/// outside may ever be served and no request may hang (a FIFO has no writer).
#[test]
fn racing_swaps_never_serve_outside_files_and_never_hang() {
    let server = TestApp::start();
    let dir = server.init_data_dir();
    let outside = server.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::write(outside.join("f.txt"), SECRET).unwrap();
    std::fs::write(dir.join("race.txt"), "inside").unwrap();
    symlink(outside.join("secret.txt"), dir.join(".alt-link")).unwrap();
    mkfifo(&dir.join(".alt-fifo"));
    let _socket = std::os::unix::net::UnixListener::bind(dir.join(".alt-sock")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f.txt"), "inside").unwrap();
    symlink(&outside, dir.join(".alt-sub")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (dir, stop, swaps) = (dir.clone(), stop.clone(), swaps.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for alt in [".alt-link", ".alt-fifo", ".alt-sock"] {
                    exchange(&dir.join("race.txt"), &dir.join(alt));
                    exchange(&dir.join("sub"), &dir.join(".alt-sub"));
                    std::thread::yield_now();
                    exchange(&dir.join("race.txt"), &dir.join(alt));
                    exchange(&dir.join("sub"), &dir.join(".alt-sub"));
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let (served, leaked, hung) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (served, leaked, hung) = (served.clone(), leaked.clone(), hung.clone());
            let urls = [
                server.url("/init-data/race.txt"),
                server.url("/init-data/sub/f.txt"),
            ];
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                for n in 0..300 {
                    match http.get(&urls[(i + n) % 2]).send().and_then(|r| {
                        let status = r.status();
                        r.text().map(|body| (status, body))
                    }) {
                        Ok((status, body)) => {
                            if body.contains(SECRET) {
                                leaked.fetch_add(1, Ordering::Relaxed);
                            } else if status == 200 {
                                assert_eq!(body, "inside");
                                served.fetch_add(1, Ordering::Relaxed);
                            } else {
                                assert_eq!(status, 404, "{body}");
                            }
                        }
                        Err(e) if e.is_timeout() => {
                            hung.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("request failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let (served, leaked, hung) = (
        served.load(Ordering::Relaxed),
        leaked.load(Ordering::Relaxed),
        hung.load(Ordering::Relaxed),
    );
    assert!(
        swaps.load(Ordering::Relaxed) > 100 && served > 0,
        "the race did not run: {} swaps, {served} served",
        swaps.load(Ordering::Relaxed)
    );
    assert_eq!(
        (leaked, hung),
        (0, 0),
        "of 2400 requests {leaked} leaked the outside file and {hung} hung"
    );
}

/// Names with characters that mean something in a URL still give working links.
#[test]
fn listing_links_work_for_names_with_url_special_characters() {
    let server = TestApp::start();
    let dir = server.init_data_dir();
    let names = [
        "a#b.txt",
        "why?.txt",
        "new\nline.txt",
        "tab\there.txt",
        "100%.txt",
        "sp ace.txt",
        "ü.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(dir.join(name), format!("file {i}")).unwrap();
    }
    let html = get_text_blocking(&server.url("/init-data/"));
    let hrefs: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(hrefs.len(), names.len(), "{html}");
    for href in hrefs {
        assert!(
            href.bytes()
                .all(|b| b.is_ascii_graphic() && !b"#?\"<>\\\\ ".contains(&b)),
            "{href:?} is not a clean path"
        );
        let resp = raw_get(server.addr, href);
        assert!(resp.starts_with("HTTP/1.1 200"), "{href}: {resp}");
        assert!(resp.contains("\r\n\r\nfile "), "{href}: {resp}");
    }
}

fn get_with_range(server: &TestApp, range: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = blocking_client()
        .get(server.url("/init-data/digits.txt"))
        .header("range", range)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().unwrap())
}

/// RFC 9110 §14.2: a server may ignore a Range it cannot or will not satisfy as asked;
/// only a well-formed range that starts past the end is 416.
#[test]
fn ranges_single_multiple_and_garbage() {
    let server = TestApp::start();
    std::fs::write(server.init_data_dir().join("digits.txt"), "0123456789").unwrap();

    let (status, headers, body) = get_with_range(&server, "bytes=2-4");
    assert_eq!((status, body.as_str()), (206, "234"));
    assert_eq!(headers["content-range"], "bytes 2-4/10");
    let (status, _, body) = get_with_range(&server, "bytes=-3");
    assert_eq!((status, body.as_str()), (206, "789"));
    let (status, _, body) = get_with_range(&server, "bytes=7-");
    assert_eq!((status, body.as_str()), (206, "789"));
    let (status, _, body) = get_with_range(&server, "bytes=8-100");
    assert_eq!((status, body.as_str()), (206, "89"));

    // Several ranges: served whole (a 206 multipart answer would be allowed too).
    for multi in ["bytes=0-1,4-5", "bytes=0-0, -1"] {
        let (status, _, body) = get_with_range(&server, multi);
        assert_eq!((status, body.as_str()), (200, "0123456789"), "{multi}");
    }
    for garbage in [
        "bytes=abc",
        "bytes=5-2",
        "items=0-3",
        "bytes=",
        "bytes=--1",
        "0-3",
        "bytes=1-2-3",
    ] {
        let (status, headers, body) = get_with_range(&server, garbage);
        assert_eq!((status, body.as_str()), (200, "0123456789"), "{garbage}");
        assert!(headers.get("content-range").is_none(), "{garbage}");
    }
    let (status, headers, _) = get_with_range(&server, "bytes=10-");
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */10");
    let full = blocking_client()
        .get(server.url("/init-data/digits.txt"))
        .send()
        .unwrap();
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()["content-length"], "10");
}

/// The resident memory of a running server, from /proc.
fn rss_bytes(server: &TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Every download that a client stops reading holds a read buffer and a chunk in flight
/// (~140 KiB): 1,000 of them took a server from 7 MiB to 150 MiB, past the chart's 128 MiB
/// limit. Downloads in flight are bounded; the rest are answered 503 with Retry-After. (The
/// memory bound below is a generous sanity check; the count of 200s is what tells. A process of
/// its own, so the memory measured is the server's alone.)
#[test]
fn stalled_downloads_cannot_grow_the_server_without_bound() {
    let server = TestServer::start();
    std::fs::write(server.init_data_dir().join("big.bin"), vec![7u8; 8 << 20]).unwrap();
    let request = b"GET /init-data/big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    let stalled: Vec<TcpStream> = (0..300)
        .map(|_| {
            let s = TcpStream::connect(server.addr).unwrap();
            std::io::Write::write_all(&mut &s, request).unwrap();
            s
        })
        .collect();
    // Each connection has its answer (200 and a stalled body, or 503) once its first bytes
    // arrive; read just the status line.
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for s in &stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut line = [0u8; 12];
        std::io::Read::read_exact(&mut &*s, &mut line).unwrap();
        *statuses
            .entry(String::from_utf8_lossy(&line[9..12]).into_owned())
            .or_default() += 1;
    }
    let rss = rss_bytes(&server);
    assert!(
        statuses.get("200").is_some_and(|n| *n <= 64) && statuses.contains_key("503"),
        "{statuses:?}"
    );
    assert!(
        rss < 64 << 20,
        "300 stalled downloads grew the server to {} MiB",
        rss >> 20
    );
    drop(stalled);
    eventually(Duration::from_secs(10), "downloads work again", || {
        blocking_client()
            .get(server.url("/init-data/big.bin"))
            .send()
            .is_ok_and(|r| r.status() == 200 && r.bytes().is_ok_and(|b| b.len() == 8 << 20))
    });
}
