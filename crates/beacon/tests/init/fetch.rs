//! `beacon init fetch` against a misbehaving local server: exit status, the one-line reason,
//! and that the target never holds anything but the complete body.

use std::{
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use crate::helpers::{
    self, Watcher, assert_no_leftovers, leftovers, mkfifo, payload, run, sha256_hex,
};
use beacon_testkit::fixture_http::{FixtureHttp, Route};

/// Fast retries so fault tests take well under a second each.
const FAST: &[&str] = &["--retry-delay", "20ms", "--retry-max-delay", "100ms"];

fn fetch(url: &str, to: &Path, extra: &[&str]) -> helpers::Run {
    let mut args = vec!["init", "fetch", url, "--to", to.to_str().unwrap()];
    args.extend_from_slice(FAST);
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "2s"]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// Serves `body` at `/` in `chunk`-byte pieces with `pause` after each.
fn slow_server(body: Vec<u8>, chunk: usize, pause: Duration) -> FixtureHttp {
    FixtureHttp::start(vec![("/", Route::Body { body, chunk, pause })])
}

/// Starts `init fetch URL --to TO` (with the default retries and timeouts) without waiting.
fn spawn_fetch(url: &str, to: &Path) -> Child {
    helpers::beacon(&["init", "fetch", url, "--to", to.to_str().unwrap()])
        .spawn()
        .unwrap()
}

/// Waits until a running download has created its temp file in `dir`: at most 10 s after
/// `started`.
fn wait_for_temp_file(dir: &Path, started: Instant) {
    while leftovers(dir).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no temp file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a fetch that must fail, with a watcher on the target, and checks the aftermath.
fn failing_fetch(
    server: &FixtureHttp,
    path: &str,
    extra: &[&str],
    allowed: Vec<Vec<u8>>,
) -> helpers::Run {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let watcher = Watcher::start(&target, allowed);
    let out = fetch(&server.url(path), &target, extra);
    watcher.finish();
    out.expect_code(1);
    assert!(
        out.last_line().starts_with("beacon: error: "),
        "{}",
        out.stderr
    );
    assert!(!target.exists(), "a failed fetch left a file at the target");
    assert_eq!(leftovers(dir.path()), Vec::<std::path::PathBuf>::new());
    out
}

#[test]
fn slow_download_is_atomic_with_progress_and_a_summary() {
    let body = payload(64 * 1024);
    let server = slow_server(body.clone(), 4096, Duration::from_millis(40));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let watcher = Watcher::start(&target, vec![body.clone()]);
    let out = fetch(&server.url("/"), &target, &["--progress-interval", "100ms"]);
    let reads = watcher.finish();
    out.expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert!(reads > 0, "the watcher never saw the finished file");
    assert!(
        out.log_lines_with("downloading: ") >= 2,
        "no progress lines:\n{}",
        out.stderr
    );
    out.expect_stderr("\"rate\":");
    assert_eq!(
        out.log_lines_with("\"message\":\"fetched 64.0 KiB to "),
        1,
        "{}",
        out.stderr
    );
    assert_no_leftovers(dir.path());
    // The result is readable by a main container running as another user.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn server_errors_then_success_are_retried() {
    let body = payload(5000);
    let flaky = Route::first_then(
        2,
        Route::Status {
            code: 500,
            retry_after: None,
        },
        Route::ok(body.clone()),
    );
    let server = FixtureHttp::start(vec![("/", flaky)]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let watcher = Watcher::start(&target, vec![body.clone()]);
    let out = fetch(&server.url("/"), &target, &[]);
    watcher.finish();
    out.expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert_eq!(server.hits("/"), 3);
    assert_eq!(
        out.log_lines_with("attempt failed; retrying"),
        2,
        "{}",
        out.stderr
    );
    out.expect_stderr("HTTP 500 Internal Server Error");
}

#[test]
fn retry_after_is_honoured() {
    let busy = Route::first_then(
        1,
        Route::Status {
            code: 429,
            retry_after: Some("1"),
        },
        Route::ok("fine"),
    );
    let server = FixtureHttp::start(vec![("/", busy)]);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch(&server.url("/"), &dir.path().join("f"), &[]);
    out.expect_code(0);
    assert!(
        out.elapsed >= Duration::from_secs(1),
        "retried after {:?}",
        out.elapsed
    );
    assert_eq!(server.hits("/"), 2);
}

#[test]
fn persistent_server_errors_give_up_after_the_retries() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::Status {
            code: 503,
            retry_after: None,
        },
    )]);
    let out = failing_fetch(&server, "/", &["--retries", "2"], vec![]);
    out.expect_last_line("gave up after 3 attempt(s): HTTP 503 Service Unavailable");
    assert_eq!(server.hits("/"), 3);
}

#[test]
fn client_errors_are_not_retried() {
    let server = FixtureHttp::start(vec![]);
    let out = failing_fetch(&server, "/missing", &[], vec![]);
    out.expect_last_line("HTTP 404 Not Found (not retried");
    assert_eq!(server.hits("/missing"), 1);
}

#[test]
fn connection_reset_mid_body_is_retried_then_reported() {
    let body = payload(100_000);
    let server = FixtureHttp::start(vec![("/", Route::ResetAfter { body, sent: 30_000 })]);
    let out = failing_fetch(&server, "/", &["--retries", "1"], vec![]);
    out.expect_last_line("gave up after 2 attempt(s): body interrupted");
    assert!(
        out.last_line().to_lowercase().contains("reset"),
        "{}",
        out.last_line()
    );
    assert_eq!(server.hits("/"), 2);
}

#[test]
fn a_reset_once_then_success_downloads_the_whole_body() {
    let body = payload(100_000);
    let flaky = Route::first_then(
        1,
        Route::ResetAfter {
            body: body.clone(),
            sent: 50_000,
        },
        Route::ok(body.clone()),
    );
    let server = FixtureHttp::start(vec![("/", flaky)]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let watcher = Watcher::start(&target, vec![body.clone()]);
    let out = fetch(&server.url("/"), &target, &[]);
    watcher.finish();
    out.expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert_no_leftovers(dir.path());
}

#[test]
fn a_stalled_body_times_out_per_attempt() {
    let body = payload(10_000);
    let stalled = Route::StallAfter {
        body,
        sent: 1_000,
        stall: Duration::from_secs(30),
    };
    let server = FixtureHttp::start(vec![("/", stalled)]);
    let out = failing_fetch(
        &server,
        "/",
        &["--timeout", "300ms", "--retries", "1"],
        vec![],
    );
    out.expect_last_line("gave up after 2 attempt(s): timed out waiting for the body");
    out.expect_within(Duration::from_secs(10));
    assert_eq!(server.hits("/"), 2);
}

#[test]
fn a_body_shorter_than_its_content_length_is_rejected() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::LyingLength {
            body: payload(1_000),
            claimed: 5_000,
        },
    )]);
    let out = failing_fetch(&server, "/", &["--retries", "1"], vec![]);
    out.expect_last_line("gave up after 2 attempt(s): body interrupted");
    assert_eq!(server.hits("/"), 2);
}

#[test]
fn redirects_are_followed_but_loops_fail_at_once() {
    let body = payload(300);
    let server = FixtureHttp::start(vec![
        ("/old", Route::Redirect("/new")),
        ("/new", Route::ok(body.clone())),
        ("/loop", Route::Redirect("/loop")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    fetch(&server.url("/old"), &dir.path().join("f"), &[]).expect_code(0);
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), body);

    let out = failing_fetch(&server, "/loop", &["--max-redirects", "5"], vec![]);
    assert_eq!(
        out.last_line(),
        format!(
            "beacon: error: {}: too many redirects (more than 5)",
            server.url("/loop")
        )
    );
    assert_eq!(
        server.hits("/loop"),
        6,
        "a redirect loop must not be retried"
    );
}

#[test]
fn oversized_bodies_are_refused_by_content_length_and_by_counting() {
    let server = FixtureHttp::start(vec![
        ("/sized", Route::ok(payload(5_000))),
        ("/unsized", Route::Unsized(payload(5_000))),
    ]);
    let out = failing_fetch(&server, "/sized", &["--max-bytes", "1000"], vec![]);
    out.expect_last_line("response exceeds the limit of 1000 bytes (Content-Length is 5000)");
    assert_eq!(server.hits("/sized"), 1);

    let out = failing_fetch(&server, "/unsized", &["--max-bytes", "1000"], vec![]);
    out.expect_last_line("response exceeds the limit of 1000 bytes (streamed body kept going)");
    assert_eq!(server.hits("/unsized"), 1);
}

#[test]
fn a_wrong_checksum_is_a_hard_error() {
    let body = payload(2_000);
    let server = FixtureHttp::start(vec![("/", Route::ok(body.clone()))]);
    let wrong = sha256_hex(b"something else");
    let out = failing_fetch(&server, "/", &["--sha256", &wrong], vec![]);
    out.expect_last_line(&format!(
        "sha256 mismatch: expected {wrong}, got {}",
        sha256_hex(&body)
    ));
    assert_eq!(server.hits("/"), 1);
}

#[test]
fn a_matching_checksum_skips_the_download_on_rerun() {
    let body = payload(2_000);
    let server = FixtureHttp::start(vec![("/", Route::ok(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("f");
    let sum = sha256_hex(&body).to_uppercase();
    fetch(&server.url("/"), &target, &["--sha256", &sum]).expect_code(0);
    fetch(&server.url("/"), &target, &["--sha256", &sum]).expect_code(0);
    assert_eq!(server.hits("/"), 1);
    assert_eq!(std::fs::read(&target).unwrap(), body);
}

#[test]
fn a_failed_refetch_keeps_the_previous_file() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::ResetAfter {
            body: payload(50_000),
            sent: 10_000,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    std::fs::write(&target, "previous\n").unwrap();
    let watcher = Watcher::start(&target, vec![b"previous\n".to_vec()]);
    fetch(&server.url("/"), &target, &["--retries", "1"]).expect_code(1);
    watcher.finish();
    assert_eq!(std::fs::read(&target).unwrap(), b"previous\n");
    assert_no_leftovers(dir.path());
}

#[test]
fn several_pairs_in_one_call() {
    let server = FixtureHttp::start(vec![
        ("/a", Route::ok("alpha")),
        ("/b?x=1", Route::ok("beta")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let a = format!(
        "{}={}",
        server.url("/a"),
        dir.path().join("a.txt").display()
    );
    let b = format!(
        "{}={}",
        server.url("/b?x=1"),
        dir.path().join("sub/b.txt").display()
    );
    run(&["init", "fetch", &a, &b]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sub/b.txt")).unwrap(),
        "beta"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    run(&[
        "init",
        "fetch",
        "http://127.0.0.1:9/a",
        "http://127.0.0.1:9/b",
        "--to",
        "x",
    ])
    .expect_code(2)
    .expect_last_line("--to takes exactly one URL");
    run(&["init", "fetch", "ftp://127.0.0.1/x", "--to", "x"])
        .expect_code(2)
        .expect_last_line("only http and https");
    run(&["init", "fetch", "http://127.0.0.1:9/x"])
        .expect_code(2)
        .expect_last_line("expected URL=PATH");
    run(&[
        "init",
        "fetch",
        "http://127.0.0.1:9/x",
        "--to",
        "x",
        "--sha256",
        "abc",
    ])
    .expect_code(2)
    .expect_last_line("expected 64 hex digits");
}

#[test]
fn sigterm_mid_download_leaves_nothing_behind() {
    let server = slow_server(payload(200_000), 1_000, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let started = Instant::now();
    let child = spawn_fetch(&server.url("/"), &target);
    // Signal only once the temp file exists, so the cleanup path is really exercised.
    wait_for_temp_file(dir.path(), started);
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = helpers::finish(child, started);
    out.expect_code(143)
        .expect_last_line("interrupted by SIGTERM");
    assert!(!target.exists());
    assert_no_leftovers(dir.path());
}

#[test]
fn a_temp_file_left_by_a_killed_run_is_swept() {
    let server = FixtureHttp::start(vec![("/", Route::ok("x"))]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".index.html.AbC123.part"), "half").unwrap();
    fetch(&server.url("/"), &dir.path().join("index.html"), &[]).expect_code(0);
    assert_no_leftovers(dir.path());
}

#[test]
fn two_concurrent_fetches_to_one_target_both_succeed() {
    // The second run's sweep of stale temp files used to delete the first's live one.
    let body = payload(60_000);
    let server = slow_server(body.clone(), 2_000, Duration::from_millis(30));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let watcher = Watcher::start(&target, vec![body.clone()]);
    let started = Instant::now();
    let first = spawn_fetch(&server.url("/"), &target);
    wait_for_temp_file(dir.path(), started);
    let second = spawn_fetch(&server.url("/"), &target);
    let (first, second) = (
        helpers::finish(first, started),
        helpers::finish(second, started),
    );
    watcher.finish();
    first.expect_code(0);
    second.expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert_no_leftovers(dir.path());
}

#[test]
fn a_body_over_the_default_limit_is_refused() {
    // No --max-bytes: the default bound (100 MiB) applies, checked against Content-Length.
    let server = FixtureHttp::start(vec![(
        "/",
        Route::LyingLength {
            body: payload(1_000),
            claimed: 3_000_000_000,
        },
    )]);
    let out = failing_fetch(&server, "/", &[], vec![]);
    out.expect_last_line(
        "response exceeds the limit of 104857600 bytes (Content-Length is 3000000000)",
    );
}

#[test]
fn the_help_states_the_default_limits() {
    let out = helpers::beacon(&["init", "fetch", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 100MiB]"), "{help}");
    assert!(help.contains("[default: 10m]"), "{help}");
}

#[test]
fn max_bytes_takes_units() {
    let server = FixtureHttp::start(vec![("/", Route::Unsized(payload(5_000)))]);
    let out = failing_fetch(&server, "/", &["--max-bytes", "2KiB"], vec![]);
    out.expect_last_line("response exceeds the limit of 2048 bytes (streamed body kept going)");
    run(&[
        "init",
        "fetch",
        "http://127.0.0.1:9/x",
        "--to",
        "x",
        "--max-bytes",
        "lots",
    ])
    .expect_code(2);
}

#[test]
fn a_trickle_is_cut_at_the_deadline() {
    // One byte a second never trips --timeout (no silence lasts that long).
    let server = slow_server(payload(100), 1, Duration::from_millis(500));
    let out = failing_fetch(
        &server,
        "/",
        &["--timeout", "5s", "--deadline", "2s"],
        vec![],
    );
    let url = server.url("/");
    assert_eq!(
        out.last_line(),
        format!("beacon: error: {url}: not finished within the deadline of 2s"),
        "{}",
        out.stderr
    );
    out.expect_within(Duration::from_millis(3500));
}

#[test]
fn the_deadline_also_bounds_retries() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::Status {
            code: 503,
            retry_after: Some("60"),
        },
    )]);
    let out = failing_fetch(&server, "/", &["--deadline", "1500ms"], vec![]);
    out.expect_last_line("not finished within the deadline of 1s 500ms");
    out.expect_within(Duration::from_secs(3));
}

/// `gzip -c -n`: the encoding a real server applies to a pre-compressed file.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn a_gzip_encoded_body_is_saved_decoded_and_checked_decoded() {
    let body = payload(50_000);
    let server = FixtureHttp::start(vec![(
        "/",
        Route::Encoded {
            body: gzip(&body),
            encoding: "gzip",
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let out = fetch(&server.url("/"), &target, &["--sha256", &sha256_hex(&body)]);
    out.expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), body);
    let head = server.last_request_head().to_ascii_lowercase();
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    assert_no_leftovers(dir.path());
}

/// Content codings are case-insensitive (RFC 9110 §8.4.1): `GZIP`, `Gzip` and the old
/// `x-gzip` alias are gzip, saved decoded like `gzip`.
#[test]
fn a_gzip_encoding_in_any_case_is_decoded() {
    let body = payload(20_000);
    for encoding in ["GZIP", "Gzip", "x-gzip"] {
        let server = FixtureHttp::start(vec![(
            "/",
            Route::Encoded {
                body: gzip(&body),
                encoding,
            },
        )]);
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("index.html");
        let out = fetch(&server.url("/"), &target, &["--sha256", &sha256_hex(&body)]);
        out.expect_code(0);
        assert_eq!(std::fs::read(&target).unwrap(), body, "{encoding}");
        assert_no_leftovers(dir.path());
    }
}

#[test]
fn a_gzip_bomb_is_cut_by_the_decoded_size() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::Encoded {
            body: gzip(&vec![0u8; 5_000_000]),
            encoding: "gzip",
        },
    )]);
    let out = failing_fetch(&server, "/", &["--max-bytes", "1MiB"], vec![]);
    out.expect_last_line("response exceeds the limit of 1048576 bytes (streamed body kept going)");
}

#[test]
fn an_encoding_we_cannot_decode_is_refused_not_saved() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::Encoded {
            body: b"not really brotli".to_vec(),
            encoding: "br",
        },
    )]);
    let out = failing_fetch(&server, "/", &[], vec![]);
    let url = server.url("/");
    assert_eq!(
        out.last_line(),
        format!(
            "beacon: error: {url}: the body is encoded as \"br\", which beacon cannot decode (it asks for gzip or none)"
        ),
    );
    assert_eq!(server.hits("/"), 1);
}

#[test]
fn port_zero_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    fetch("http://127.0.0.1:0/x", &dir.path().join("x"), &[])
        .expect_code(2)
        .expect_last_line("port 0 cannot be connected to");
}

#[test]
fn a_fifo_named_like_a_temp_file_does_not_hang_the_sweep() {
    // The sweep opened it to take its lock, which blocks until a writer appears: the step
    // hung on the runtime's thread, past --deadline and deaf to SIGTERM.
    let server = FixtureHttp::start(vec![("/", Route::ok("x"))]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(".index.html.AbC123.part");
    mkfifo(&fifo);
    let mut child = helpers::beacon(&[
        "init",
        "fetch",
        &server.url("/"),
        "--to",
        dir.path().join("index.html").to_str().unwrap(),
        "--deadline",
        "3s",
    ])
    .spawn()
    .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("fetch still running 10 s after a --deadline of 3s");
    }
    helpers::finish(child, started).expect_code(0);
    assert_eq!(std::fs::read(dir.path().join("index.html")).unwrap(), b"x");
    assert!(fifo.exists(), "not ours: left alone");
}

#[test]
fn an_uppercase_url_scheme_is_accepted() {
    // RFC 3986 §3.1: schemes are case-insensitive.
    let server = FixtureHttp::start(vec![("/x", Route::ok("x"))]);
    let rest = server.url("/x").strip_prefix("http://").unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fetch(&format!("HTTP://{rest}"), &a, &[]).expect_code(0);
    let pair = format!("Http://{rest}={}", b.display());
    run(&["init", "fetch", &pair]).expect_code(0);
    assert_eq!(std::fs::read(&a).unwrap(), b"x");
    assert_eq!(std::fs::read(&b).unwrap(), b"x");
    assert_eq!(server.hits("/x"), 2);
}

/// Everything in `dir`, recursively, as sorted relative paths: what a refused fetch must not
/// have changed.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                todo.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_directory_at_the_target_is_refused_before_any_request() {
    // It used to download the whole body and fail only at the rename.
    let server = FixtureHttp::start(vec![("/x.json", Route::ok("{}"))]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("init_data");
    std::fs::create_dir(&data).unwrap();
    let out = fetch(&server.url("/x.json"), &data, &[]);
    out.expect_code(1);
    let shown = data.display();
    assert_eq!(
        out.last_line(),
        format!("beacon: error: {shown} is a directory; give the file's path, e.g. {shown}/x.json"),
        "stderr:\n{}",
        out.stderr
    );
    assert_eq!(server.hits("/x.json"), 0, "a request reached the server");
    assert_eq!(tree(dir.path()), ["init_data"]);
}

#[test]
fn a_symlink_to_a_directory_at_the_target_is_refused_before_any_request() {
    // The rename replaced the link itself with the file (a ConfigMap-style `..data` link, say).
    let server = FixtureHttp::start(vec![("/", Route::ok("x"))]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("real", &link).unwrap();
    let out = fetch(&server.url("/"), &link, &[]);
    out.expect_code(1);
    let shown = link.display();
    assert_eq!(
        out.last_line(),
        format!(
            "beacon: error: {shown} is a symlink to a directory; give the file's path, e.g. {shown}/index.html"
        ),
        "stderr:\n{}",
        out.stderr
    );
    assert_eq!(server.hits("/"), 0, "a request reached the server");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(tree(dir.path()), ["link", "real"]);
}

#[test]
fn a_path_that_names_a_directory_is_a_usage_error() {
    // `dir/new/` (a directory that does not exist yet) failed at the rename after the download.
    let server = FixtureHttp::start(vec![("/x", Route::ok("x"))]);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().display().to_string();
    for to in [
        format!("{base}/new/"),
        format!("{base}/."),
        format!("{base}/.."),
    ] {
        let out = fetch(&server.url("/x"), Path::new(&to), &[]);
        out.expect_code(2);
        let example = Path::new(&to).join("x");
        assert_eq!(
            out.last_line(),
            format!(
                "beacon: error: invalid target path {to:?}: it names a directory; give the file's path, e.g. {}",
                example.display()
            ),
            "stderr:\n{}",
            out.stderr
        );
    }
    let pair = format!("{}={base}/new/", server.url("/x"));
    run(&["init", "fetch", &pair])
        .expect_code(2)
        .expect_last_line("it names a directory");
    // clap refuses an empty --to itself (and a pair with nothing after its `=` is no pair).
    run(&["init", "fetch", &server.url("/x"), "--to", ""]).expect_code(2);
    assert_eq!(server.hits("/x"), 0, "a request reached the server");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
}

#[test]
fn missing_parent_directories_are_created() {
    let server = FixtureHttp::start(vec![("/x", Route::ok("x"))]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b/x");
    fetch(&server.url("/x"), &target, &[]).expect_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), b"x");
}

#[test]
fn a_file_in_place_of_a_parent_directory_is_refused_before_any_request() {
    // It failed after the download with `cannot create directory …/f/sub: File exists`.
    let server = FixtureHttp::start(vec![("/x", Route::ok("x"))]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "a file").unwrap();
    let target = file.join("sub/x");
    let out = fetch(&server.url("/x"), &target, &[]);
    out.expect_code(1);
    assert_eq!(
        out.last_line(),
        format!(
            "beacon: error: cannot create {}: {} is not a directory",
            target.display(),
            file.display()
        ),
        "stderr:\n{}",
        out.stderr
    );
    assert_eq!(server.hits("/x"), 0, "a request reached the server");
    assert_eq!(tree(dir.path()), ["f"]);
}

#[test]
fn one_unusable_target_among_pairs_stops_every_download_before_it_starts() {
    let server = FixtureHttp::start(vec![("/a", Route::ok("a")), ("/b", Route::ok("b"))]);
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    let pairs = [
        format!("{}={}", server.url("/a"), dir.path().join("a").display()),
        format!("{}={}", server.url("/b"), taken.display()),
    ];
    run(&["init", "fetch", &pairs[0], &pairs[1]])
        .expect_code(1)
        .expect_last_line("is a directory; give the file's path");
    assert_eq!((server.hits("/a"), server.hits("/b")), (0, 0));
    assert_eq!(tree(dir.path()), ["taken"]);
}
