//! `beacon init fetch` and `wait` over https against a real TLS server (`openssl s_server`)
//! on 127.0.0.1, with a certificate from a throwaway CA: trusted through `SSL_CERT_FILE`
//! the fetch succeeds; untrusted it fails with the reason and leaves nothing behind.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::helpers::{Run, Watcher, beacon, finish, leftovers};
use beacon_testkit::tls_fixture::{LOOPBACK_NAMES, make_ca_and_server_certificate};

const PAGE: &str = "<html><body>served over TLS</body></html>\n";

/// A CA, a server certificate for 127.0.0.1 and localhost signed by it, and
/// `openssl s_server -WWW` serving `www/` with it.
struct TlsServer {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl TlsServer {
    /// `san` is the certificate's subjectAltName list, e.g. `IP:127.0.0.1,DNS:localhost`.
    fn start(san: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_ca_and_server_certificate(d, san);
        let www = d.join("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("index.html"), PAGE).unwrap();

        // -WWW serves files relative to its working directory; port 0 is reported on stdout.
        let mut child = Command::new("openssl")
            .current_dir(&www)
            .args(["s_server", "-accept", "127.0.0.1:0", "-WWW"])
            .args(["-cert", "../server.pem", "-key", "../server.key"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is missing: install the Debian package openssl");
        // Read the port on a thread, so a server that never reports one fails the test
        // instead of hanging it; the thread then drains stdout so s_server never blocks.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("ACCEPT ") {
                    let _ = tx.send(addr.rsplit(':').next().unwrap().parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("openssl s_server did not report its port within 10 s");
        Self { dir, child, port }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `beacon init …` (arguments split on whitespace) trusting `ca`, or only the system
/// and built-in roots when `None`.
fn run_trusting(ca: Option<&Path>, args: &str) -> Run {
    let args: Vec<&str> = args.split_whitespace().collect();
    let mut cmd = beacon(&args);
    match ca {
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    finish(cmd.spawn().expect("spawn beacon"), Instant::now())
}

/// Without the CA, `wait` times out with the certificate problem as its last reason: the TLS
/// path was taken and the certificate checked.
fn wait_untrusted_fails_on_the_certificate(url: &str) {
    let untrusted = run_trusting(
        None,
        &format!("init wait {url} --timeout 1s --interval 200ms"),
    );
    untrusted.expect_code(1);
    assert!(
        untrusted
            .last_line()
            .to_ascii_lowercase()
            .contains("certificate"),
        "the timeout should give the certificate problem as the last reason; stderr:\n{}",
        untrusted.stderr
    );
}

#[test]
fn fetch_over_https_trusts_the_bundle_named_by_ssl_cert_file() {
    let server = TlsServer::start(LOOPBACK_NAMES);
    let dir = tempfile::tempdir().unwrap();
    let by_ip = dir.path().join("index.html");
    let by_name = dir.path().join("by-name.html");
    let pairs = [
        format!(
            "{}={}",
            server.url("127.0.0.1", "/index.html"),
            by_ip.display()
        ),
        format!(
            "{}={}",
            server.url("localhost", "/index.html"),
            by_name.display()
        ),
    ];
    let out = run_trusting(
        Some(&server.ca()),
        &format!("init fetch {} {} --timeout 10s", pairs[0], pairs[1]),
    );
    out.expect_code(0);
    assert_eq!(std::fs::read_to_string(&by_ip).unwrap(), PAGE);
    assert_eq!(std::fs::read_to_string(&by_name).unwrap(), PAGE);
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn an_untrusted_certificate_fails_without_retrying_or_leaving_a_file() {
    let server = TlsServer::start(LOOPBACK_NAMES);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let watcher = Watcher::start(&target, vec![]);
    let url = server.url("127.0.0.1", "/index.html");
    let out = run_trusting(
        None,
        &format!(
            "init fetch {url} --to {} --timeout 10s --retry-delay 20ms --retry-max-delay 100ms",
            target.display()
        ),
    );
    watcher.finish();
    out.expect_code(1);
    let reason = out.last_line().to_ascii_lowercase();
    assert!(
        reason.starts_with("beacon: error: ") && reason.contains("certificate"),
        "the reason should name the certificate problem; stderr:\n{}",
        out.stderr
    );
    // Retrying cannot fix a certificate; the kubelet's restart with a log line is the remedy.
    assert_eq!(out.log_lines_with("retrying"), 0, "{}", out.stderr);
    assert!(!target.exists(), "a failed fetch left a file at the target");
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_certificate_for_another_name_is_rejected() {
    // Signed by the trusted CA, but for a name this URL does not use.
    let server = TlsServer::start("DNS:beacon.example");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let url = server.url("127.0.0.1", "/index.html");
    let out = run_trusting(
        Some(&server.ca()),
        &format!("init fetch {url} --to {} --timeout 5s", target.display()),
    );
    out.expect_code(1);
    assert!(
        out.last_line().to_ascii_lowercase().contains("certificate"),
        "stderr:\n{}",
        out.stderr
    );
    assert!(!target.exists(), "a failed fetch left a file at the target");
}

#[test]
fn wait_on_an_https_url_is_ready_once_the_certificate_is_trusted() {
    let server = TlsServer::start(LOOPBACK_NAMES);
    let url = server.url("localhost", "/index.html");
    let ok = run_trusting(
        Some(&server.ca()),
        &format!("init wait {url} --timeout 10s --interval 100ms"),
    );
    ok.expect_code(0);

    wait_untrusted_fails_on_the_certificate(&url);
}

#[test]
fn an_uppercase_https_scheme_goes_over_tls() {
    // RFC 3986 §3.1: `HTTPS://` is `https://`, with TLS and certificate checks, not plain http.
    let server = TlsServer::start(LOOPBACK_NAMES);
    let url = server
        .url("localhost", "/index.html")
        .replacen("https", "HTTPS", 1);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let fetched = run_trusting(
        Some(&server.ca()),
        &format!("init fetch {url} --to {} --timeout 10s", target.display()),
    );
    fetched.expect_code(0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), PAGE);
    run_trusting(
        Some(&server.ca()),
        &format!("init wait {url} --timeout 10s --interval 100ms"),
    )
    .expect_code(0);
    wait_untrusted_fails_on_the_certificate(&url);
}
