//! One version everywhere: the workspace version (Cargo.toml) is the version, and every other place
//! that names it must agree — `beacon --version`, the chart's `version` and `appVersion`, the
//! image tag the chart deploys by default and the one its `artifacthub.io/images` annotation
//! lists, the Containerfiles' default `BEACON_VERSION`, and the CHANGELOG's latest versioned entry. docs/releasing.md describes the convention and how a
//! release is cut.
//!
//! With `BEACON_RELEASE_TAG` set (the release workflow sets it to the pushed tag), the tag must be
//! `v<version>` and the CHANGELOG entry must carry a release date rather than `Unreleased`.

use std::process::Command;

use crate::chart_tools::*;
use beacon_testkit::repo_root;
use serde_json::Value;

/// `version = "..."` of `[workspace.package]` in the root Cargo.toml.
fn workspace_version(cargo_toml: &str) -> String {
    let mut in_section = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section && let Some(rest) = line.strip_prefix("version") {
            let value = rest
                .trim_start()
                .strip_prefix('=')
                .expect("version = \"...\"");
            return value.trim().trim_matches('"').to_owned();
        }
    }
    panic!("no version in [workspace.package] of Cargo.toml");
}

/// A released or prepared CHANGELOG entry: `## [X.Y.Z] - YYYY-MM-DD` or `## [X.Y.Z] - Unreleased`.
#[derive(Debug, PartialEq)]
struct Entry {
    version: String,
    /// `Some("YYYY-MM-DD")`, or `None` for `Unreleased`.
    date: Option<String>,
}

/// The first `## [...]` heading that names a version; a `## [Unreleased]` section above it is
/// allowed (changes not yet assigned to a version). Any other `## ` heading is an error, so a typo
/// cannot hide an entry from this check.
fn latest_entry(changelog: &str) -> Entry {
    for line in changelog.lines() {
        let Some(heading) = line.strip_prefix("## ") else {
            continue;
        };
        if heading == "[Unreleased]" {
            continue;
        }
        let (bracketed, date) = heading.split_once(" - ").unwrap_or_else(|| {
            panic!(
                "CHANGELOG heading {line:?} is not `## [X.Y.Z] - YYYY-MM-DD` (or `- Unreleased`)"
            )
        });
        let version = bracketed
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .unwrap_or_else(|| {
                panic!("CHANGELOG heading {line:?}: the version is not in brackets")
            });
        assert!(
            is_semver(version),
            "CHANGELOG heading {line:?}: {version:?} is not X.Y.Z"
        );
        let date = match date {
            "Unreleased" => None,
            d if is_date(d) => Some(d.to_owned()),
            d => panic!("CHANGELOG heading {line:?}: {d:?} is neither YYYY-MM-DD nor Unreleased"),
        };
        return Entry {
            version: version.to_owned(),
            date,
        };
    }
    panic!("CHANGELOG.md has no `## [X.Y.Z] - ...` entry");
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The default of `ARG BEACON_VERSION=...` in a Containerfile.
fn containerfile_version(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("ARG BEACON_VERSION="))
        .map(|v| v.trim().to_owned())
        .expect("ARG BEACON_VERSION=... in the Containerfile")
}

/// Text that is followed by a release version in install, build and verify commands: the image
/// (published or built locally), the chart in the OCI registry, the release binaries and chart
/// package. Placeholders such as `X.Y.Z` are not versions.
const DOC_MARKERS: [&str; 6] = [
    "ghcr.io/beacon-k8s/beacon:",
    "localhost/beacon:",
    "image.tag=",
    "charts/beacon --version ",
    "beacon-",
    "releases/download/v",
];

/// (line number, version) for every `marker` directly followed by a `X.Y.Z` version.
fn versions_after(text: &str, markers: &[&str]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for marker in markers {
            for (at, _) in line.match_indices(marker) {
                let rest = &line[at + marker.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let candidate = rest[..end].trim_end_matches('.');
                if is_semver(candidate) {
                    out.push((i + 1, candidate.to_owned()));
                }
            }
        }
    }
    out
}

#[test]
fn doc_scan_finds_versions_in_commands() {
    let text = "helm install b oci://ghcr.io/beacon-k8s/charts/beacon --version 0.2.0 \\\n\
        cosign verify ghcr.io/beacon-k8s/beacon:0.1.9\n\
        sha256sum -c --ignore-missing SHA256SUMS  # beacon-1.0.0-linux-amd64\n\
        ghcr.io/beacon-k8s/beacon:X.Y.Z and beacon-serve and beacon-k8s\n";
    assert_eq!(
        versions_after(text, &DOC_MARKERS),
        vec![
            (1, "0.2.0".to_owned()),
            (2, "0.1.9".to_owned()),
            (3, "1.0.0".to_owned())
        ]
    );
}

#[test]
fn changelog_parser_finds_the_latest_versioned_entry() {
    let text = "# Changelog\n\n## [Unreleased]\n\n- x\n\n## [1.2.0] - 2026-01-02\n\n## [1.1.0] - 2025-12-01\n";
    assert_eq!(
        latest_entry(text),
        Entry {
            version: "1.2.0".into(),
            date: Some("2026-01-02".into())
        }
    );
    assert_eq!(latest_entry("## [0.3.0] - Unreleased\n").date, None);
    for bad in [
        "## 1.2.0 - 2026-01-02\n",
        "## [1.2] - 2026-01-02\n",
        "## [1.2.0] 2026-01-02\n",
        "## [1.2.0] - soon\n",
        "## Unreleased\n",
        "# Changelog\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| latest_entry(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

#[test]
fn every_place_names_the_workspace_version() {
    let version = workspace_version(&read_repo_file("Cargo.toml"));
    assert!(is_semver(&version), "workspace version {version:?}");

    // The binary: `beacon X.Y.Z (<revision>)`.
    let out = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .arg("--version")
        .output()
        .expect("run beacon --version");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let shown = line
        .trim()
        .strip_prefix("beacon ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected `beacon --version` output: {line:?}"));
    assert_eq!(shown, version, "beacon --version: {line:?}");

    // The chart: one version for the chart and the application.
    let chart = yaml_file(&chart_dir().join("Chart.yaml"));
    assert_eq!(
        chart["appVersion"],
        Value::String(version.clone()),
        "charts/beacon/Chart.yaml appVersion"
    );
    assert_eq!(
        chart["version"],
        Value::String(version.clone()),
        "charts/beacon/Chart.yaml version"
    );

    // Artifact Hub's list of the chart's images (a YAML document inside an annotation).
    let images: Value = serde_yaml_ng::from_str(
        chart["annotations"]["artifacthub.io/images"]
            .as_str()
            .expect("Chart.yaml annotation artifacthub.io/images"),
    )
    .expect("artifacthub.io/images is YAML");
    let images = arr_of(&images, "artifacthub.io/images");
    assert!(!images.is_empty());
    for image in images {
        assert_eq!(
            image["image"],
            Value::String(format!("ghcr.io/beacon-k8s/beacon:{version}")),
            "artifacthub.io/images in Chart.yaml"
        );
    }
    let changes: Value = serde_yaml_ng::from_str(
        chart["annotations"]["artifacthub.io/changes"]
            .as_str()
            .expect("Chart.yaml annotation artifacthub.io/changes"),
    )
    .expect("artifacthub.io/changes is YAML");
    for change in arr_of(&changes, "artifacthub.io/changes") {
        let kind = str_of(&change["kind"], "artifacthub.io/changes kind");
        assert!(
            [
                "added",
                "changed",
                "deprecated",
                "removed",
                "fixed",
                "security"
            ]
            .contains(&kind),
            "artifacthub.io/changes kind {kind:?}"
        );
        assert!(!str_of(&change["description"], "description").is_empty());
    }

    // The image the chart deploys when nothing is overridden.
    let rendered = yaml_docs(&run_ok(
        helm()
            .args(["template", "beacon"])
            .arg(chart_dir())
            .args(["--show-only", "templates/statefulset.yaml"]),
    ));
    let image = rendered[0]["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .expect("the server container's image");
    assert_eq!(
        image,
        format!("ghcr.io/beacon-k8s/beacon:{version}"),
        "default image of the chart"
    );

    // The image label's default (scripts/build-image and the release workflow pass it explicitly).
    for file in ["Containerfile", "Containerfile.prebuilt"] {
        assert_eq!(
            containerfile_version(&read_repo_file(file)),
            version,
            "{file}"
        );
    }

    // Install and verify commands in the documentation name this version.
    let mut docs = vec!["README.md".to_owned(), "charts/beacon/README.md".to_owned()];
    for entry in std::fs::read_dir(repo_root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            docs.push(format!("docs/{name}"));
        }
    }
    for doc in &docs {
        for (line, found) in versions_after(&read_repo_file(doc), &DOC_MARKERS) {
            assert_eq!(found, version, "{doc} line {line} names version {found}");
        }
    }

    // The CHANGELOG's latest versioned entry.
    let entry = latest_entry(&read_repo_file("CHANGELOG.md"));
    assert_eq!(
        entry.version, version,
        "CHANGELOG.md latest entry {entry:?}"
    );

    // Releasing: the tag names this version and the entry is dated.
    if let Ok(tag) = std::env::var("BEACON_RELEASE_TAG") {
        assert_eq!(tag, format!("v{version}"), "release tag");
        let date = entry
            .date
            .unwrap_or_else(|| panic!("CHANGELOG entry [{version}] still says Unreleased"));
        assert!(is_date(&date));
    }
}
