//! One module per question. Each builds its PromQL (recorded in the answer), runs it and turns
//! the result into rows; a failed or empty query becomes a note, never an error.

pub mod alerts;
pub mod kubelets;
pub mod network;
pub mod nodes;
pub mod pod_cpu;
pub mod slo;
pub mod workload;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    Result,
    catalogue::{Catalogue, Source},
    model::{Answer, CHART_LINES, NamedSeries, Remainder, Stats},
    prom_client::{PromClient, Sample, Series},
    step_budget::{self, Stepped},
    time_range::{TimeRange, promql_duration},
    workload::quote,
};

/// Everything a question needs, shared by all of them.
pub struct Ctx {
    pub prom: PromClient,
    pub range: TimeRange,
    pub namespace: String,
    pub catalogue: Catalogue,
    pub cadvisor: CadvisorShape,
    /// Series × points one range query may hold ([`Ctx::range`]).
    pub sample_budget: u64,
    /// Questions 2 and 5 rank the whole cluster, not `namespace`.
    pub all_namespaces: bool,
    /// Rows each table leads with, from each end (`--top`): their series are ranged in full.
    pub top: usize,
}

/// cAdvisor also exports a series per pod cgroup (`container=""`, `image=""`), the sandbox
/// (pause) container (`container=""` with the pause image on containerd and CRI-O,
/// `container="POD"` with dockershim) and cgroups that are not pods; these filters keep the
/// pod's own containers only, so no pod is counted twice and the sandbox not at all.
pub const CONTAINER_FILTER: &str = r#"container!="",container!="POD",image!="""#;

/// The pod-level cgroup series: `/kubepods/<qos>/pod<uid>` (cgroupfs driver) or
/// `…/kubepods-<qos>-pod<uid>.slice` (systemd driver), never a container below it (regexes are
/// anchored). Each holds its pod's totals, sandbox included, and keeps `pod`/`namespace` even
/// where the runtime leaves containers unnamed.
pub const POD_CGROUP_FILTER: &str = r#"container="",id=~".*/pod[^/]+|.*-pod[^/]+[.]slice""#;

/// Which cAdvisor series a per-pod CPU or memory figure sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PodSource {
    /// The pod's containers (`CONTAINER_FILTER`): the usual case.
    #[default]
    Containers,
    /// The pod-level cgroup (`POD_CGROUP_FILTER`): the runtime names no container (Docker via
    /// cri-dockerd, minikube's default), but the pod's own cgroup still has its totals.
    PodCgroup,
}

impl PodSource {
    pub fn matchers(self) -> &'static str {
        match self {
            PodSource::Containers => CONTAINER_FILTER,
            PodSource::PodCgroup => POD_CGROUP_FILTER,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            PodSource::Containers => "per-container series",
            PodSource::PodCgroup => {
                "pod-level cgroup series (the runtime leaves containers unnamed; includes the sandbox)"
            }
        }
    }
}

/// What the namespace's cAdvisor series carry, per metric: decided once, used by questions
/// 1 and 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct CadvisorShape {
    pub cpu: PodSource,
    pub memory: PodSource,
}

impl CadvisorShape {
    /// Per metric and within the namespace: per-container series when any carry container
    /// and image labels, else the pod-level cgroups when they exist. An empty namespace keeps
    /// the default, so its explanation stays "no series here", never a runtime diagnosis.
    pub async fn detect(
        prom: &PromClient,
        range: &TimeRange,
        namespace: &str,
        catalogue: &Catalogue,
    ) -> Self {
        let source = |metric: &'static str| async move {
            if !catalogue.has(metric) {
                return PodSource::Containers;
            }
            let window = promql_duration((range.end - range.start).ceil());
            let count = |matchers: &str| {
                format!(
                    "count(last_over_time({metric}{{namespace={},{matchers}}}[{window}]))",
                    quote(namespace)
                )
            };
            let (labelled, pod_level) = (count(CONTAINER_FILTER), count(POD_CGROUP_FILTER));
            let (labelled, pod_level) = tokio::join!(
                prom.query(&labelled, range.end),
                prom.query(&pod_level, range.end),
            );
            if first_value(&labelled) == 0.0 && first_value(&pod_level) > 0.0 {
                PodSource::PodCgroup
            } else {
                PodSource::Containers
            }
        };
        let (cpu, memory) = tokio::join!(source(CPU_RAW), source(MEMORY));
        Self { cpu, memory }
    }
}

pub const CPU_RAW: &str = "container_cpu_usage_seconds_total";
pub const MEMORY: &str = "container_memory_working_set_bytes";

/// The value of a one-sample answer (`count(…)`), 0 when empty or failed.
fn first_value(r: &Result<Vec<Sample>>) -> f64 {
    r.as_ref()
        .ok()
        .and_then(|v| v.first())
        .map_or(0.0, |s| s.value)
}

/// A series per label value (e.g. per pod) with its statistics over the range.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub key: String,
    pub stats: Stats,
    pub points: Vec<(f64, f64)>,
}

impl Keyed {
    /// The series as a chart line named by its key.
    pub fn line(&self) -> NamedSeries {
        NamedSeries {
            name: self.key.clone(),
            points: self.points.clone(),
        }
    }
}

/// Where a per-pod question looks: one namespace, or all of them (`--all-namespaces`).
#[derive(Debug, Clone)]
pub struct PodScope {
    /// Matchers inside a selector's braces: `namespace="x"`, or `namespace!=""`.
    pub matcher: String,
    /// Labels to sum by: `pod`, or `namespace, pod` (keys then read `namespace/pod`).
    pub by: &'static str,
    /// For notes: `namespace x`, `all namespaces`.
    pub describe: String,
}

impl Ctx {
    /// Where the per-pod questions look, in words: the namespace or "all namespaces".
    pub fn place(&self) -> &str {
        if self.all_namespaces {
            "all namespaces"
        } else {
            &self.namespace
        }
    }

    pub fn ns(&self) -> String {
        quote(&self.namespace)
    }

    /// The scope of the ranking (question 2) and network (question 5) questions.
    pub fn pod_scope(&self) -> PodScope {
        if self.all_namespaces {
            PodScope {
                matcher: r#"namespace!="""#.into(),
                by: "namespace, pod",
                describe: "any namespace".into(),
            }
        } else {
            PodScope {
                matcher: format!("namespace={}", self.ns()),
                by: "pod",
                describe: format!("namespace {}", self.namespace),
            }
        }
    }

    /// Runs a range query and keys its series by `label`, sorted by key.
    pub async fn range_by(&self, expr: &str, label: &str) -> Result<Vec<Keyed>> {
        let series = self.prom.query_range(expr, &self.range).await?;
        Ok(keyed(series, label, &self.range))
    }

    /// A range query whose step keeps (series touched × points) within the sample budget.
    /// `count_expr` is a cheap instant query, run first at the range's end, that counts the
    /// series `expr` reads before it aggregates, e.g. `count(node_cpu_seconds_total)` for
    /// `sum by (instance) (rate(node_cpu_seconds_total[5m]))`. When it fails or is empty the
    /// report's own step is kept. The rows' range says which step was used.
    pub async fn range(&self, expr: &str, count_expr: &str) -> Result<Stepped<Vec<Series>>> {
        let series = first_value(&self.instant(count_expr).await).max(0.0) as u64;
        let (range, coarsened) = step_budget::budgeted(&self.range, series, self.sample_budget);
        let rows = self.prom.query_range(expr, &range).await?;
        Ok(Stepped {
            rows,
            range: Some(range),
            coarsened,
        })
    }

    /// [`Ctx::range`], its series keyed by `label` and sorted by key, with their statistics
    /// over the points the query ran at.
    pub async fn range_keyed(
        &self,
        expr: &str,
        count_expr: &str,
        label: &str,
    ) -> Result<Stepped<Vec<Keyed>>> {
        let stepped = self.range(expr, count_expr).await?;
        let range = stepped.range.unwrap_or(self.range);
        Ok(Stepped {
            rows: keyed(stepped.rows, label, &range),
            range: stepped.range,
            coarsened: stepped.coarsened,
        })
    }

    /// `func` (e.g. `avg_over_time`) of `expr` over the range, at the range's step, as one
    /// instant value per series: a ranking needs every series' average, not every point.
    /// Pinned with `@ end()` so it is evaluated once even inside a range query. The window
    /// has half a step to spare, so that it holds the range's first point whether ranges are
    /// closed at the start (Prometheus 2) or open (Prometheus 3).
    pub fn over_range(&self, func: &str, expr: &str) -> String {
        format!(
            "{func}(({expr})[{}:{}] @ end())",
            self.over_range_window(),
            promql_duration(self.range.step)
        )
    }

    /// The range that [`Self::over_range`] reads, as a PromQL duration.
    pub fn over_range_window(&self) -> String {
        let step = self.range.step;
        let pad = if step >= 4.0 {
            (step / 2.0).ceil()
        } else {
            step / 2.0
        };
        promql_duration(self.range.end - self.range.start + pad)
    }

    /// Runs an instant query at the range's end.
    pub async fn instant(&self, expr: &str) -> Result<Vec<Sample>> {
        self.prom.query(expr, self.range.end).await
    }

    /// Why a cAdvisor CPU or memory query for this namespace came back empty: the metric is
    /// not scraped at all, the namespace's series name neither containers nor pod cgroups (a
    /// runtime cAdvisor cannot read), or the namespace/workload simply has no such pods.
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
        let ns = self.ns();
        let count = |matchers: &str| {
            format!("count(last_over_time({metric}{{namespace={ns}{matchers}}}[{window}]))")
        };
        let (all, labelled, pod_level) = (
            count(""),
            count(&format!(",{CONTAINER_FILTER}")),
            count(&format!(",{POD_CGROUP_FILTER}")),
        );
        let (all, labelled, pod_level) = tokio::join!(
            self.prom.query(&all, self.range.end),
            self.prom.query(&labelled, self.range.end),
            self.prom.query(&pod_level, self.range.end),
        );
        if first_value(&all) > 0.0
            && first_value(&labelled) == 0.0
            && first_value(&pod_level) == 0.0
        {
            answer.note(format!(
                "{metric} has series in namespace {} but none names a container (container/image labels empty) or a pod cgroup (id …/pod<uid>): the runtime's containers are unreadable to cAdvisor (the Docker runtime, cri-dockerd, is the usual cause; minikube start --container-runtime=containerd avoids it)",
                self.namespace
            ));
            return;
        }
        self.explain_no_match(answer, metric, scope).await;
    }

    /// "Scraped, but nothing in this scope", with the namespaces that do have the metric: for
    /// metrics that never carry a container (network), or once the labels are known fine.
    pub async fn explain_no_match<T>(&self, answer: &mut Answer<T>, metric: &str, scope: &str) {
        if !self.catalogue.has(metric) {
            answer.note(self.catalogue.explain_absent(metric, Source::Cadvisor));
            return;
        }
        let namespaces = format!(
            "count by (namespace) (last_over_time({metric}[{}]))",
            self.span_window()
        );
        let mut seen: Vec<String> = self
            .prom
            .query(&namespaces, self.range.end)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| s.labels.get("namespace").cloned())
            .filter(|n| !n.is_empty())
            .collect();
        seen.sort();
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

/// Series keyed by `label`, sorted by key.
fn keyed(series: Vec<Series>, label: &str, range: &TimeRange) -> Vec<Keyed> {
    let mut rows: Vec<Keyed> = series
        .into_iter()
        .map(|s| Keyed {
            key: key_of(&s.labels, label),
            stats: Stats::of(&s.points, range),
            points: s.points,
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// The series' `label`; a pod summed by namespace too (`--all-namespaces`) is `namespace/pod`.
fn key_of(labels: &crate::prom_client::Labels, label: &str) -> String {
    let value = labels.get(label).cloned().unwrap_or_default();
    match labels.get("namespace") {
        Some(ns) if label == "pod" && !ns.is_empty() => format!("{ns}/{value}"),
        _ => value,
    }
}

/// The `CHART_LINES` rows of highest average as chart lines (highest first), and the rest as
/// a count and their median average: a chart of a 1,500-pod workload stays readable.
pub fn highest(
    rows: &[Keyed],
    noun: &'static str,
    measure: &'static str,
) -> (Vec<NamedSeries>, Option<Remainder>) {
    let avg = |k: &Keyed| k.stats.avg.unwrap_or(0.0);
    let mut order: Vec<&Keyed> = rows.iter().collect();
    order.sort_by(|a, b| avg(b).total_cmp(&avg(a)).then(a.key.cmp(&b.key)));
    let shown: Vec<usize> = (0..order.len().min(CHART_LINES)).collect();
    let averages: Vec<f64> = order.iter().map(|k| avg(k)).collect();
    let series = order[..shown.len()].iter().map(|r| r.line()).collect();
    (series, Remainder::of(&averages, &shown, noun, measure))
}

/// A matcher (`,label=~"^(?:a|b)$"`) for exactly these values, to range only the series a
/// chart or table shows: a label matcher narrows the series Prometheus loads, where `and` or
/// `topk` would still evaluate every series at every step. Empty when `values` is everything.
pub fn only(label: &str, values: &[&str], all: usize) -> String {
    if values.len() >= all {
        return String::new();
    }
    let escaped: Vec<String> = values
        .iter()
        // Keys across namespaces read `namespace/pod`; the label holds the pod.
        .map(|v| v.rsplit('/').next().unwrap_or(v))
        .map(|v| {
            v.chars()
                .flat_map(|c| {
                    let special = "\\.+*?()|[]{}^$".contains(c);
                    special.then_some('\\').into_iter().chain([c])
                })
                .collect()
        })
        .collect();
    format!(
        ",{label}=~{}",
        quote(&format!("^(?:{})$", escaped.join("|")))
    )
}

/// Instant samples keyed as range rows are ([`key_of`]: `namespace/pod` across namespaces).
pub fn by_key(samples: &[Sample], label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|s| (key_of(&s.labels, label), s.value))
        .collect()
}

/// Instant samples keyed by a label.
pub fn by_label(samples: &[Sample], label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matches_exactly_the_values() {
        assert_eq!(
            only("instance", &["10.0.0.1:9100", "a+b"], 3),
            r#",instance=~"^(?:10\\.0\\.0\\.1:9100|a\\+b)$""#
        );
        assert_eq!(only("pod", &["a", "b"], 2), "");
    }

    #[test]
    fn charts_draw_the_highest_averages_and_state_the_rest() {
        let rows: Vec<Keyed> = (0..25)
            .map(|i| Keyed {
                key: format!("pod-{i:02}"),
                stats: Stats {
                    avg: Some(f64::from(i)),
                    ..Stats::default()
                },
                points: vec![(0.0, f64::from(i))],
            })
            .collect();
        let (series, rest) = highest(&rows, "pods", "average CPU");
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        let expected: Vec<String> = (15..25).rev().map(|i| format!("pod-{i:02}")).collect();
        assert_eq!(names, expected);
        // The rest: averages 0..=14, median 7.
        let rest = rest.unwrap();
        assert_eq!((rest.count, rest.median), (15, Some(7.0)));
    }
}
