//! What ships besides the binary, checked with the real tools: the Helm chart and its README,
//! the container image, the monitoring rules and dashboards (also against Prometheus 3's
//! semantics), the workflows, the commands the docs give, and one version everywhere.

mod chart;
mod chart_readme;
mod chart_tools;
mod container;
mod docs_commands;
mod exemplars;
mod monitoring_rules;
mod prometheus3;
mod version;
mod workflows;
