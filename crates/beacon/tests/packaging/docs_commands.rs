//! The commands README.md and docs/ tell an operator to run must work together: `beacon report`
//! looks in the namespace the chart was installed into, and its `--selector` uses pod labels the
//! chart sets and kube-state-metrics (deploy/monitoring/values.yaml) exports in kube_pod_labels.
//! Each check reads the files as shipped, so editing one document without the others fails here.

use std::collections::{BTreeMap, BTreeSet};

use crate::chart_tools::*;
use beacon_testkit::repo_root;
use serde_json::Value;

/// A shell command found in a fenced code block: its file and its words.
#[derive(Debug)]
struct Cmd {
    file: String,
    words: Vec<String>,
}

impl Cmd {
    /// The value after any of `flags` (`--namespace x`, `--namespace=x`, `-n x`).
    fn flag(&self, flags: &[&str]) -> Option<&str> {
        let mut words = self.words.iter();
        while let Some(w) = words.next() {
            for flag in flags {
                if w == flag {
                    return words.next().map(String::as_str);
                }
                if let Some(v) = w.strip_prefix(&format!("{flag}=")) {
                    return Some(v);
                }
            }
        }
        None
    }

    fn starts_with(&self, prefix: &[&str]) -> bool {
        self.words.len() >= prefix.len() && self.words.iter().zip(prefix).all(|(w, p)| w == p)
    }
}

/// The documents an operator follows.
fn documents() -> Vec<String> {
    let root = repo_root();
    let mut files = vec!["README.md".to_owned(), "charts/beacon/README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Every command in the fenced code blocks of `file`: continuation lines joined, comments
/// dropped, split at `&&`, `;`, `|` and `&` (a `|` inside `[…]` is a synopsis' alternative).
fn commands_in(file: &str) -> Vec<Cmd> {
    commands_in_text(
        file,
        &std::fs::read_to_string(repo_root().join(file)).unwrap(),
    )
}

fn commands_in_text(file: &str, text: &str) -> Vec<Cmd> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut logical = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            logical.push_str(cont);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let mut words = Vec::new();
        let mut depth = 0i32;
        for raw in logical.split_whitespace() {
            depth += raw.matches('[').count() as i32;
            let word = raw
                .trim_matches(|c| c == '[' || c == ']')
                .trim_matches(|c| c == '"' || c == '\'');
            let separator = ["&&", ";", "&"].contains(&raw) || (raw == "|" && depth == 0);
            depth -= raw.matches(']').count() as i32;
            if separator {
                out.push(Cmd {
                    file: file.to_owned(),
                    words: std::mem::take(&mut words),
                });
            } else if !word.is_empty() {
                words.push(word.to_owned());
            }
        }
        out.push(Cmd {
            file: file.to_owned(),
            words,
        });
        logical.clear();
    }
    out.retain(|c| !c.words.is_empty());
    out
}

fn all_commands() -> Vec<Cmd> {
    documents().iter().flat_map(|f| commands_in(f)).collect()
}

fn report_commands(cmds: &[Cmd]) -> Vec<&Cmd> {
    cmds.iter()
        .filter(|c| c.starts_with(&["beacon", "report"]))
        .collect()
}

/// The namespace the docs install the chart into (they must agree on one).
fn install_namespace(cmds: &[Cmd]) -> String {
    let namespaces: BTreeSet<(&str, &str)> = cmds
        .iter()
        // From a checkout (charts/beacon) or the published chart (oci://…/charts/beacon).
        .filter(|c| {
            c.starts_with(&["helm", "install", "beacon"])
                && c.words
                    .get(3)
                    .is_some_and(|chart| chart.ends_with("charts/beacon"))
        })
        .map(|c| {
            (
                c.flag(&["--namespace", "-n"]).unwrap_or("default"),
                c.file.as_str(),
            )
        })
        .collect();
    let distinct: BTreeSet<&str> = namespaces.iter().map(|(ns, _)| *ns).collect();
    assert_eq!(
        distinct.len(),
        1,
        "the docs install beacon into different namespaces: {namespaces:?}"
    );
    distinct.into_iter().next().unwrap().to_owned()
}

/// `NAMESPACE = "…"` of scripts/local-stack: the namespace its targets are labelled with.
fn local_stack_namespace() -> String {
    let script = std::fs::read_to_string(repo_root().join("scripts/local-stack")).unwrap();
    script
        .lines()
        .find_map(|l| l.strip_prefix("NAMESPACE = "))
        .expect("scripts/local-stack sets NAMESPACE")
        .trim_matches('"')
        .to_owned()
}

#[test]
fn the_report_is_run_in_the_namespace_beacon_is_installed_in() {
    let cmds = all_commands();
    let installed = install_namespace(&cmds);
    let local = local_stack_namespace();
    let reports = report_commands(&cmds);
    assert!(
        reports.iter().any(|c| c.file == "README.md"),
        "the README shows no `beacon report` command: {reports:?}"
    );
    for cmd in reports {
        // The local stack (docs/local-stack.md) is its own "cluster", with its own namespace.
        let expected = if cmd.file == "docs/local-stack.md" {
            &local
        } else {
            &installed
        };
        let namespace = cmd.flag(&["--namespace", "-n"]).unwrap_or("default");
        assert_eq!(
            namespace,
            expected,
            "{}: `{}` reports on namespace {namespace}, but beacon runs in {expected}",
            cmd.file,
            cmd.words.join(" ")
        );
    }
}

/// kube-state-metrics' `--metric-labels-allowlist` as the kube-state-metrics chart builds it
/// (the list `metricLabelsAllowlist` joined with commas): resource → allowed label names.
fn ksm_allowlist(values: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let entries = arr_of(
        &values["kube-state-metrics"]["metricLabelsAllowlist"],
        "kube-state-metrics.metricLabelsAllowlist in deploy/monitoring/values.yaml",
    );
    let flag: Vec<&str> = entries.iter().map(|e| str_of(e, "an entry")).collect();
    let flag = flag.join(",");
    let mut out = BTreeMap::new();
    let mut rest = flag.as_str();
    while !rest.is_empty() {
        let (resource, after) = rest
            .split_once("=[")
            .unwrap_or_else(|| panic!("bad allowlist {flag:?}: expected resource=[labels]"));
        let (labels, after) = after
            .split_once(']')
            .unwrap_or_else(|| panic!("bad allowlist {flag:?}: unclosed ["));
        out.insert(
            resource.trim().to_owned(),
            labels.split(',').map(|l| l.trim().to_owned()).collect(),
        );
        rest = after.trim_start_matches(',');
    }
    out
}

#[test]
fn ksm_allowlist_parsing_follows_the_flag_format() {
    let values: Value = serde_json::json!({"kube-state-metrics": {"metricLabelsAllowlist": [
        "pods=[app.kubernetes.io/name,app]", "nodes=[*]"
    ]}});
    let parsed = ksm_allowlist(&values);
    assert_eq!(
        parsed["pods"],
        BTreeSet::from(["app.kubernetes.io/name".to_owned(), "app".to_owned()])
    );
    assert_eq!(parsed["nodes"], BTreeSet::from(["*".to_owned()]));
}

/// `key=value,key!=value` → (key, equal?, value).
fn selector_terms(selector: &str) -> Vec<(String, bool, String)> {
    selector
        .split(',')
        .map(|term| match term.split_once("!=") {
            Some((k, v)) => (k.to_owned(), false, v.to_owned()),
            None => {
                let (k, v) = term
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad selector term {term:?}"));
                (k.to_owned(), true, v.to_owned())
            }
        })
        .collect()
}

#[test]
fn the_docs_selector_uses_labels_the_chart_sets_and_kube_state_metrics_exports() {
    let values = yaml_file(&repo_root().join("deploy/monitoring/values.yaml"));
    let allowlist = ksm_allowlist(&values);
    let pod_labels_allowed = allowlist
        .get("pods")
        .expect("deploy/monitoring/values.yaml allow-lists no pod labels for kube_pod_labels");

    let cmds = all_commands();
    let installed = install_namespace(&cmds);
    let objects = yaml_docs(&run_ok(
        helm()
            .args(["template", "beacon"])
            .arg(chart_dir())
            .args(["--namespace", &installed]),
    ));
    let sts = objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet")
        .expect("the chart renders a StatefulSet");
    let labels = &sts["spec"]["template"]["metadata"]["labels"];

    let selectors: Vec<(&Cmd, &str)> = report_commands(&cmds)
        .into_iter()
        .filter_map(|c| c.flag(&["--selector", "-l"]).map(|s| (c, s)))
        .collect();
    assert!(
        selectors
            .iter()
            .any(|(c, _)| c.file == "docs/report.md" || c.file == "docs/kubernetes.md"),
        "the docs show no `beacon report --selector` example: {selectors:?}"
    );
    for (cmd, selector) in selectors {
        let shown = cmd.words.join(" ");
        for (key, equal, value) in selector_terms(selector) {
            assert!(
                pod_labels_allowed.contains(&key) || pod_labels_allowed.contains("*"),
                "{}: `{shown}` selects on pod label {key}, which kube-state-metrics does not \
                 export: deploy/monitoring/values.yaml allows only {pod_labels_allowed:?}",
                cmd.file
            );
            let actual = labels[&key].as_str();
            assert_eq!(
                actual == Some(value.as_str()),
                equal,
                "{}: `{shown}` does not select the chart's pods (their {key} is {actual:?})",
                cmd.file
            );
        }
    }
}

#[test]
fn command_extraction_handles_continuations_and_synopses() {
    let text = "text\n```sh\nhelm install beacon charts/beacon \\\n  --namespace web --wait\n\
                beacon report [-n web] [--statefulset beacon | -l app=x] && echo done # why\n```\n\
                `beacon report -n not-in-a-block`\n";
    let cmds = commands_in_text("x.md", text);
    assert_eq!(install_namespace(&cmds), "web");
    let reports = report_commands(&cmds);
    assert_eq!(reports.len(), 1, "{cmds:?}");
    assert_eq!(reports[0].flag(&["--namespace", "-n"]), Some("web"));
    assert_eq!(reports[0].flag(&["--selector", "-l"]), Some("app=x"));
    assert!(cmds.iter().any(|c| c.words == ["echo", "done"]));

    // The published chart counts as an install too, and must agree.
    let other =
        "```sh\nhelm install beacon oci://ghcr.io/x/charts/beacon --version 1 -n other\n```\n";
    let mut both = cmds;
    both.extend(commands_in_text("y.md", other));
    assert!(std::panic::catch_unwind(|| install_namespace(&both)).is_err());
}
