//! One module per question. Each builds its PromQL (recorded in the answer), runs it and turns
//! the result into rows; a failed or empty query becomes a note, never an error.

pub mod alerts;
pub mod kubelets;
pub mod network;
pub mod nodes;
pub mod pod_cpu;
pub mod workload;

use std::collections::BTreeMap;

use crate::{
    Result,
    catalogue::{Catalogue, Source},
    model::{Answer, NamedSeries, Stats},
    prom_client::{PromClient, Sample},
    target::quote,
    time_range::TimeRange,
};

/// Everything a question needs, shared by all of them.
pub struct Ctx {
    pub prom: PromClient,
    pub range: TimeRange,
    pub namespace: String,
    pub catalogue: Catalogue,
}

/// cAdvisor also exports a series per pod cgroup (`container=""`) and, with Docker, the pause
/// container (`container="POD"`); both would double-count a pod, so kube-prometheus filters them
/// the same way.
pub const CONTAINER_FILTER: &str = r#"container!="",container!="POD",image!="""#;

/// A series per label value (e.g. per pod) with its statistics over the range.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub key: String,
    pub stats: Stats,
    pub points: Vec<(f64, f64)>,
}

impl Ctx {
    pub fn ns(&self) -> String {
        quote(&self.namespace)
    }

    /// Runs a range query and keys its series by `label`, sorted by key.
    pub async fn range_by(&self, expr: &str, label: &str) -> Result<Vec<Keyed>> {
        let series = self.prom.query_range(expr, &self.range).await?;
        let mut rows: Vec<Keyed> = series
            .into_iter()
            .map(|s| Keyed {
                key: s.labels.get(label).cloned().unwrap_or_default(),
                stats: Stats::of(&s.points, &self.range),
                points: s.points,
            })
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(rows)
    }

    /// Runs an instant query at the range's end.
    pub async fn instant(&self, expr: &str) -> Result<Vec<Sample>> {
        self.prom.query(expr, self.range.end).await
    }

    /// Why a cAdvisor query for this namespace came back empty: the metric is not scraped at
    /// all, its `container`/`image` labels are empty (Docker runtime, e.g. minikube), or the
    /// namespace simply has no such pods.
    pub async fn explain_empty_cadvisor<T>(
        &self,
        answer: &mut Answer<T>,
        metric: &str,
        scope: &str,
    ) {
        if !self.catalogue.has(metric) {
            answer.note(self.catalogue.explain_absent(metric, Source::Cadvisor));
            return;
        }
        let window = self.span_window();
        let all = format!("count(last_over_time({metric}[{window}]))");
        let labelled = format!("count(last_over_time({metric}{{{CONTAINER_FILTER}}}[{window}]))");
        let namespaces = format!("count by (namespace) (last_over_time({metric}[{window}]))");
        let (all, labelled, namespaces) = tokio::join!(
            self.prom.query(&all, self.range.end),
            self.prom.query(&labelled, self.range.end),
            self.prom.query(&namespaces, self.range.end),
        );
        let count = |r: &Result<Vec<Sample>>| {
            r.as_ref()
                .ok()
                .and_then(|v| v.first())
                .map_or(0.0, |s| s.value)
        };
        if count(&all) > 0.0 && count(&labelled) == 0.0 {
            answer.note(format!(
                "{metric} exists but every series has an empty container/image label: the cluster runs the Docker runtime (cri-dockerd, minikube's default), whose cAdvisor cannot name containers; per-pod figures need containerd or CRI-O (minikube start --container-runtime=containerd)"
            ));
            return;
        }
        let seen: Vec<String> = namespaces
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.labels.get("namespace").cloned())
            .filter(|n| !n.is_empty())
            .collect();
        answer.note(format!(
            "{metric} is scraped, but no series match {scope} in the range (namespaces with data: {})",
            if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
        ));
    }

    /// The whole range as a PromQL duration, for "anything in the range" checks.
    pub fn span_window(&self) -> String {
        crate::time_range::promql_duration((self.range.end - self.range.start).ceil())
    }
}

/// Rows as chart lines, one per key.
pub fn to_series(rows: &[Keyed]) -> Vec<NamedSeries> {
    rows.iter()
        .map(|r| NamedSeries {
            name: r.key.clone(),
            points: r.points.clone(),
        })
        .collect()
}

/// Instant samples keyed by a label.
pub fn by_label(samples: &[Sample], label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
        .collect()
}
