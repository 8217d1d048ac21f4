//! Which pods question 1 is about: a Deployment's, a DaemonSet's, a StatefulSet's, or those
//! matching a label selector.

use serde::Serialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Workload {
    /// Pods named `<name>-<ordinal>`: a StatefulSet's naming is fixed, so no kube-state-metrics
    /// join is needed to find them.
    StatefulSet(String),
    /// Pods owned by the Deployment's ReplicaSets: kube-state-metrics' `kube_pod_owner` →
    /// ReplicaSet → `kube_replicaset_owner`.
    Deployment(String),
    /// Pods owned by the DaemonSet (`kube_pod_owner`).
    DaemonSet(String),
    /// `key=value` / `key!=value` terms, matched against kube-state-metrics' `kube_pod_labels`.
    Selector(String),
}

/// A workload turned into PromQL pieces for cAdvisor-style series (`namespace`, `pod` labels).
#[derive(Debug, Clone)]
pub struct PodFilter {
    /// Extra matchers inside the selector braces, starting with a comma, or empty.
    pub matchers: String,
    /// A binary-operator suffix that keeps only matching pods, or empty.
    pub join: String,
}

impl Workload {
    /// `--workload`: `deployment/api`, `daemonset/x`, `statefulset/x` (also `deploy/`, `ds/`,
    /// `sts/`, as kubectl abbreviates them).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::BadWorkload {
            workload: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, name) = text
            .split_once('/')
            .ok_or_else(|| bad("write KIND/NAME, e.g. deployment/api"))?;
        let name = name.to_owned();
        let workload = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Workload::Deployment(name),
            "daemonset" | "daemonsets" | "ds" => Workload::DaemonSet(name),
            "statefulset" | "statefulsets" | "sts" => Workload::StatefulSet(name),
            _ => {
                return Err(bad(
                    "the kind is deployment, daemonset or statefulset (for other pods use --selector)",
                ));
            }
        };
        Ok(workload)
    }

    pub fn describe(&self) -> String {
        match self {
            Workload::StatefulSet(name) => format!("StatefulSet {name}"),
            Workload::Deployment(name) => format!("Deployment {name}"),
            Workload::DaemonSet(name) => format!("DaemonSet {name}"),
            Workload::Selector(sel) => format!("pods matching {sel}"),
        }
    }

    pub fn filter(&self, namespace: &str) -> Result<PodFilter> {
        match self {
            Workload::StatefulSet(name) => {
                check_name(name)?;
                Ok(PodFilter {
                    matchers: format!(r#",pod=~"{}-[0-9]+""#, name.replace('.', "\\\\.")),
                    join: String::new(),
                })
            }
            Workload::Deployment(name) => {
                check_name(name)?;
                let ns = quote(namespace);
                let replicasets = format!(
                    r#"group by (namespace, owner_name) (label_replace(kube_replicaset_owner{{namespace={ns},owner_kind="Deployment",owner_name={}}}, "owner_name", "$1", "replicaset", "(.+)"))"#,
                    quote(name)
                );
                Ok(owned_by(format!(
                    r#"kube_pod_owner{{namespace={ns},owner_kind="ReplicaSet"}} * on (namespace, owner_name) group_left () {replicasets}"#
                )))
            }
            Workload::DaemonSet(name) => {
                check_name(name)?;
                Ok(owned_by(format!(
                    r#"kube_pod_owner{{namespace={},owner_kind="DaemonSet",owner_name={}}}"#,
                    quote(namespace),
                    quote(name)
                )))
            }
            Workload::Selector(sel) => {
                let terms = parse_selector(sel)?;
                let mut matchers = format!("namespace={}", quote(namespace));
                for (key, op, value) in terms {
                    matchers.push_str(&format!(",{}{op}{}", ksm_label(&key), quote(&value)));
                }
                Ok(PodFilter {
                    matchers: String::new(),
                    // `group` makes every value 1, so multiplying keeps the left side's values.
                    join: format!(
                        " * on (namespace, pod) group_left () group by (namespace, pod) (kube_pod_labels{{{matchers}}})"
                    ),
                })
            }
        }
    }
}

/// Keeps the pods `owners` (kube-state-metrics series with `namespace` and `pod`) names, once
/// each although several kube-state-metrics replicas export them.
fn owned_by(owners: String) -> PodFilter {
    PodFilter {
        matchers: String::new(),
        join: format!(" * on (namespace, pod) group_left () group by (namespace, pod) ({owners})"),
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::BadSelector {
            selector: name.to_owned(),
            reason: "a workload's name is lower-case letters, digits, '-' and '.'".into(),
        })
    }
}

/// `app=beacon,tier!=cache` → `[(app, "=", beacon), (tier, "!=", cache)]`.
fn parse_selector(sel: &str) -> Result<Vec<(String, &'static str, String)>> {
    let bad = |reason: &str| Error::BadSelector {
        selector: sel.to_owned(),
        reason: reason.to_owned(),
    };
    let mut terms = Vec::new();
    for term in sel.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (key, op, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, "!=", v)
        } else if let Some((k, v)) = term.split_once("==") {
            (k, "=", v)
        } else if let Some((k, v)) = term.split_once('=') {
            (k, "=", v)
        } else {
            return Err(bad("only key=value and key!=value terms are supported"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(bad("a term has an empty key"));
        }
        terms.push((key.to_owned(), op, value.trim().to_owned()));
    }
    if terms.is_empty() {
        return Err(bad("empty selector"));
    }
    Ok(terms)
}

/// kube-state-metrics exposes pod label `app.kubernetes.io/name` as `label_app_kubernetes_io_name`.
fn ksm_label(key: &str) -> String {
    let sanitized: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("label_{sanitized}")
}

/// A PromQL string literal.
pub fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_pods_by_name() {
        let f = Workload::StatefulSet("beacon".into())
            .filter("default")
            .unwrap();
        assert_eq!(f.matchers, r#",pod=~"beacon-[0-9]+""#);
        assert!(f.join.is_empty());
        assert!(Workload::StatefulSet("Bad\"".into()).filter("x").is_err());
    }

    #[test]
    fn workload_kinds_parse() {
        let parse = |t: &str| Workload::parse(t).map(|w| w.describe());
        assert_eq!(parse("deployment/api").unwrap(), "Deployment api");
        assert_eq!(parse("deploy/api").unwrap(), "Deployment api");
        assert_eq!(
            parse("DaemonSet/node-exporter").unwrap(),
            "DaemonSet node-exporter"
        );
        assert_eq!(parse("sts/beacon").unwrap(), "StatefulSet beacon");
        let err = parse("job/x").unwrap_err().to_string();
        assert!(
            err.contains("\"job/x\"") && err.contains("deployment"),
            "{err}"
        );
        assert!(parse("api").unwrap_err().to_string().contains("KIND/NAME"));
    }

    #[test]
    fn a_deployment_goes_through_its_replicasets_within_the_namespace() {
        let f = Workload::Deployment("api".into()).filter("prod").unwrap();
        assert!(f.matchers.is_empty());
        assert_eq!(
            f.join,
            r#" * on (namespace, pod) group_left () group by (namespace, pod) (kube_pod_owner{namespace="prod",owner_kind="ReplicaSet"} * on (namespace, owner_name) group_left () group by (namespace, owner_name) (label_replace(kube_replicaset_owner{namespace="prod",owner_kind="Deployment",owner_name="api"}, "owner_name", "$1", "replicaset", "(.+)")))"#
        );
        let f = Workload::DaemonSet("agent".into())
            .filter("kube-system")
            .unwrap();
        assert_eq!(
            f.join,
            r#" * on (namespace, pod) group_left () group by (namespace, pod) (kube_pod_owner{namespace="kube-system",owner_kind="DaemonSet",owner_name="agent"})"#
        );
        assert!(Workload::Deployment("Bad\"".into()).filter("x").is_err());
    }

    #[test]
    fn selector_joins_kube_pod_labels() {
        let f = Workload::Selector("app.kubernetes.io/name=beacon, tier!=db".into())
            .filter("prod")
            .unwrap();
        assert_eq!(
            f.join,
            r#" * on (namespace, pod) group_left () group by (namespace, pod) (kube_pod_labels{namespace="prod",label_app_kubernetes_io_name="beacon",label_tier!="db"})"#
        );
        assert!(Workload::Selector("app".into()).filter("x").is_err());
    }
}
