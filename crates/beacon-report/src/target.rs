//! Which pods question 1 is about: a StatefulSet's, or those matching a label selector.

use serde::Serialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Workload {
    /// Pods named `<name>-<ordinal>`: a StatefulSet's naming is fixed, so no kube-state-metrics
    /// join is needed to find them.
    StatefulSet(String),
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
    pub fn describe(&self) -> String {
        match self {
            Workload::StatefulSet(name) => format!("StatefulSet {name}"),
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
            reason: "a StatefulSet name is lower-case letters, digits, '-' and '.'".into(),
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
