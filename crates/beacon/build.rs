//! Records the git revision for `beacon_build_info` and `--version`.
//! `BEACON_REVISION` wins (container builds have no `.git`); otherwise ask git; else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BEACON_REVISION");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let revision = std::env::var("BEACON_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
        });
    println!(
        "cargo:rustc-env=BEACON_REVISION={}",
        revision.unwrap_or_else(|| "unknown".into())
    );
}
