//! Records the git revision for `beacon_build_info` and `--version`.
//! `BEACON_REVISION` wins (container builds have no `.git`); otherwise ask git; else "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=BEACON_REVISION");
    // Ask git where HEAD and the refs live: in a worktree `.git` is a file, and HEAD and the
    // refs are in different directories; watching a path that does not exist would rerun
    // this script (and relink beacon) on every build.
    let watch = [
        git(&["rev-parse", "--absolute-git-dir"]).map(|d| format!("{d}/HEAD")),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .map(|d| format!("{d}/refs/heads")),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .map(|d| format!("{d}/packed-refs")),
    ];
    for path in watch.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let revision = std::env::var("BEACON_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    println!(
        "cargo:rustc-env=BEACON_REVISION={}",
        revision.unwrap_or_else(|| "unknown".into())
    );
}
