//! The page as a person sees it: rendered by a real headless Chromium.

use std::process::Command;

use crate::helpers::*;

fn chromium() -> &'static str {
    let path = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: install Debian's chromium (scripts/install-test-deps does)"
    );
    path
}

fn headless(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=900,700",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn page_renders_in_chromium_with_time_count_and_pod() {
    let server = TestApp::start_with(|s| s.identity = pod("beacon-1"));
    let out = headless(&["--dump-dom", &server.url("/")]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("<td>beacon-1</td>"), "{dom}");
    assert!(dom.contains("<strong id=\"visits\">1</strong>"), "{dom}");
    let year = &dom.split("id=\"time\"").nth(1).expect("time element")[..60];
    assert!(year.contains("MSK (UTC+03:00)"), "{year}");

    let shot_dir = tempfile::tempdir().unwrap();
    let shot = shot_dir.path().join("page.png");
    let out = headless(&[
        &format!("--screenshot={}", shot.display()),
        &server.url("/"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "screenshot is empty ({} bytes)",
        png.len()
    );
    if let Ok(keep) = std::env::var("BEACON_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    // Each render was a GET /: two visits.
    assert_eq!(server.visits(), 2);
}
