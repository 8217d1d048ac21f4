//! The one-line reasons `beacon init` ends with, asserted exactly: what `kubectl logs -c`
//! and the pod's termination message show an operator.

use std::{net::TcpListener, path::Path};

use crate::helpers::run;
use beacon_testkit::fixture_http::{FixtureHttp, Route};
use beacon_testkit::free_port;

/// Runs `beacon ARGS`, which must fail (exit 1) with exactly `reason` as its last line.
fn fails_with(args: &[&str], reason: &str) {
    let out = run(args);
    out.expect_code(1);
    assert_eq!(out.last_line(), reason, "stderr:\n{}", out.stderr);
}

/// `init fetch URL --to DIR/x EXTRA…`, which must fail with exactly `reason`.
fn fetch_fails_with(url: &str, dir: &Path, extra: &[&str], reason: &str) {
    let to = dir.join("x");
    let mut args = vec!["init", "fetch", url, "--to", to.to_str().unwrap()];
    args.extend_from_slice(extra);
    fails_with(&args, reason);
}

#[test]
fn an_io_error_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    fails_with(
        &[
            "init",
            "write",
            blocker.join("x.txt").to_str().unwrap(),
            "--line",
            "a",
        ],
        &format!(
            "beacon: error: cannot create directory {}: File exists (os error 17)",
            blocker.display()
        ),
    );
}

#[test]
fn a_refused_connection_says_so_without_wrapper_noise() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/x", free_port());
    fetch_fails_with(
        &url,
        dir.path(),
        &["--retries", "0"],
        &format!(
            "beacon: error: {url}: gave up after 1 attempt(s): cannot connect: Connection refused (os error 111)"
        ),
    );
}

#[test]
fn a_redirect_to_a_file_url_is_called_what_it_is() {
    let server = FixtureHttp::start(vec![("/x", Route::Redirect("file:///etc/passwd"))]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/x");
    fetch_fails_with(
        &url,
        dir.path(),
        &[],
        &format!(
            "beacon: error: {url}: HTTP 302 Found: redirect to file:///etc/passwd not followed (only http and https are)"
        ),
    );
    assert_eq!(
        server.hits("/x"),
        1,
        "a redirect that cannot be followed is not retried"
    );
    assert!(!dir.path().join("x").exists());

    fails_with(
        &["init", "wait", &url, "--timeout", "1s"],
        &format!(
            "beacon: error: timed out after 1s waiting for {url}: HTTP 302 Found: redirect to file:///etc/passwd not followed (only http and https are)"
        ),
    );
}

#[test]
fn a_client_error_is_still_called_one() {
    let server = FixtureHttp::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/missing");
    fetch_fails_with(
        &url,
        dir.path(),
        &[],
        &format!(
            "beacon: error: {url}: HTTP 404 Not Found (not retried: a client error will not fix itself)"
        ),
    );
}

#[test]
fn main_prints_each_cause_once_for_every_command() {
    // main's printer is shared: a library error that both shows its cause and returns it as
    // its `source()` (here beacon-serve's bind error) must not print it twice.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "serve",
        "--listen",
        &addr.to_string(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    out.expect_code(1);
    assert_eq!(
        out.last_line().matches("Address already in use").count(),
        1,
        "stderr:\n{}",
        out.stderr
    );
    assert!(
        out.last_line().starts_with("beacon: error: ")
            && out.last_line().ends_with(&format!(
                "cannot listen on {addr}: Address already in use (os error 98)"
            )),
        "{}",
        out.last_line()
    );
}

#[test]
fn a_redirect_to_any_other_scheme_is_reported_like_one_to_file() {
    // ftp: and gopher: used to end in reqwest's "request failed: URL scheme is not allowed",
    // which named neither the redirect nor where it pointed.
    for location in ["ftp://127.0.0.1/x", "gopher://127.0.0.1:1/"] {
        let server = FixtureHttp::start(vec![("/x", Route::Redirect(location))]);
        let dir = tempfile::tempdir().unwrap();
        let url = server.url("/x");
        fetch_fails_with(
            &url,
            dir.path(),
            &[],
            &format!(
                "beacon: error: {url}: HTTP 302 Found: redirect to {location} not followed (only http and https are)"
            ),
        );
        assert_eq!(server.hits("/x"), 1, "{location}: not retried");
        fails_with(
            &["init", "wait", &url, "--timeout", "1s"],
            &format!(
                "beacon: error: timed out after 1s waiting for {url}: HTTP 302 Found: redirect to {location} not followed (only http and https are)"
            ),
        );
    }
}

#[test]
fn a_password_in_a_url_is_masked_in_every_message() {
    let server = FixtureHttp::start(vec![(
        "/",
        Route::Status {
            code: 503,
            retry_after: None,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/").replace("http://", "http://user:s3cret@");
    let masked = server.url("/").replace("http://", "http://user:***@");
    let to = dir.path().join("f");
    let fetch = run(&[
        "init",
        "fetch",
        &url,
        "--to",
        to.to_str().unwrap(),
        "--retries",
        "1",
        "--retry-delay",
        "10ms",
    ]);
    fetch.expect_code(1).expect_last_line(&format!(
        "beacon: error: {masked}: gave up after 2 attempt(s): HTTP 503 Service Unavailable"
    ));
    // Still sent, as Basic auth: masking is for the logs only.
    assert!(
        server
            .last_request_head()
            .to_ascii_lowercase()
            .contains("authorization: basic "),
        "{}",
        server.last_request_head()
    );
    let wait = run(&[
        "init",
        "wait",
        &url,
        "--timeout",
        "1s",
        "--interval",
        "100ms",
    ]);
    wait.expect_code(1).expect_last_line(&format!(
        "beacon: error: timed out after 1s waiting for {masked}: HTTP 503 Service Unavailable"
    ));
    for out in [&fetch, &wait] {
        assert!(
            !out.stderr.contains("s3cret"),
            "password shown:\n{}",
            out.stderr
        );
    }
}
