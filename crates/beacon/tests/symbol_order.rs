//! The shipped binary keeps the code a serving pod runs together: `scripts/build-static` hands the
//! linker `scripts/symbol-order.txt` (written by `scripts/profile-symbol-order` under callgrind),
//! so the kernel's 64 KiB fault-around maps a few windows of `.text` instead of most of it. The
//! names in that file carry hashes that change with the Rust version and the locked
//! dependencies, so these tests fail when the list has gone stale or the places that build the
//! shipped binary use another Rust than the one it was profiled with.

#[path = "support/chart_tools.rs"]
mod chart_tools;

use std::collections::HashMap;
use std::process::Command;

use chart_tools::{read_repo_file, repo_root};

const REGENERATE: &str = "run scripts/profile-symbol-order to regenerate scripts/symbol-order.txt";

/// The Rust functions listed in the order file (the C library's have no section of their own).
fn listed_rust_functions() -> Vec<String> {
    read_repo_file("scripts/symbol-order.txt")
        .lines()
        .filter(|l| l.starts_with("_ZN") || l.starts_with("_R"))
        .map(str::to_owned)
        .collect()
}

/// `rustc X.Y.Z` from the order file's header.
fn profiled_rust() -> String {
    let text = read_repo_file("scripts/symbol-order.txt");
    let header = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix("# rustc "))
        .expect("a `# rustc X.Y.Z ...` header line in scripts/symbol-order.txt");
    header.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn the_shipped_binary_is_built_with_the_rust_the_order_was_profiled_with() {
    let full = profiled_rust();
    let minor: String = full.split('.').take(2).collect::<Vec<_>>().join(".");
    let image = format!("docker.io/library/rust:{minor}-bookworm");
    assert!(
        read_repo_file("Containerfile").contains(&format!("FROM {image} AS build")),
        "the Containerfile's builder stage should be {image}, the Rust scripts/symbol-order.txt \
         was profiled with (or {REGENERATE} with the new one)"
    );
    assert!(
        read_repo_file(".github/workflows/ci.yaml").contains(&format!("image: {image}@sha256:")),
        "ci.yaml should run in {image}"
    );
    let release = read_repo_file(".github/workflows/release.yaml");
    assert!(
        release.contains(&format!("rustup toolchain install {full} "))
            && !release.contains("toolchain install stable"),
        "release.yaml should build the binaries with Rust {full}"
    );
}

/// Addresses and sizes of the `.text.<symbol>` input sections in lld's map file.
fn text_sections(map: &str) -> HashMap<String, (u64, u64)> {
    let mut out = HashMap::new();
    for line in map.lines() {
        let Some(at) = line.find(":(.text.") else {
            continue;
        };
        let name = line[at + ":(.text.".len()..].trim_end_matches(')');
        // ThinLTO's `.llvm.<hash>` suffix is not in the list (scripts/link-ordered).
        let name = name.rsplit_once(".llvm.").map_or(name, |(base, _)| base);
        let mut cols = line.split_whitespace();
        let (Some(vma), Some(_lma), Some(size)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        if let (Ok(vma), Ok(size)) = (u64::from_str_radix(vma, 16), u64::from_str_radix(size, 16)) {
            out.insert(name.to_owned(), (vma, size));
        }
    }
    out
}

#[test]
fn the_shipped_binary_places_the_profiled_functions_together() {
    let root = repo_root();
    let out = Command::new(root.join("scripts/build-static"))
        .current_dir(&root)
        .output()
        .expect("run scripts/build-static");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/build-static failed:\n{stderr}"
    );
    let map = read_repo_file("target/static/x86_64-unknown-linux-gnu/beacon.map");
    let sections = text_sections(&map);
    assert!(
        sections.len() > 1000,
        "the map should list the binary's functions"
    );

    let listed = listed_rust_functions();
    assert!(
        listed.len() > 300,
        "too few profiled functions: {}",
        listed.len()
    );
    let placed: Vec<(u64, u64)> = listed
        .iter()
        .filter_map(|name| sections.get(name).copied())
        .collect();
    assert!(
        placed.len() * 10 >= listed.len() * 8,
        "only {} of {} profiled functions are in the binary; {REGENERATE}",
        placed.len(),
        listed.len()
    );

    // Together: the profiled functions fill the span they occupy (the C library's objects, placed
    // whole among them, take the rest), and the span is a small part of .text.
    let start = placed.iter().map(|&(a, _)| a).min().unwrap();
    let end = placed.iter().map(|&(a, s)| a + s).max().unwrap();
    let bytes: u64 = placed.iter().map(|&(_, s)| s).sum();
    let text: u64 = sections.values().map(|&(_, s)| s).sum();
    assert!(
        (end - start) * 2 <= bytes * 3,
        "the profiled functions ({bytes} bytes) are spread over {} bytes",
        end - start
    );
    assert!(
        (end - start) * 3 <= text,
        "the profiled functions span {} of {text} bytes of .text",
        end - start
    );
    assert!(
        stderr.contains(&format!("{} of {}", placed.len(), listed.len())),
        "build-static should report how many profiled functions it placed:\n{stderr}"
    );
}
