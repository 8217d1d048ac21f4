//! What the Prometheus holds: which metric names have samples in the range and which scrape
//! jobs exist. Questions consult it to pick a metric (recording rule or raw series, new or old
//! name) and to explain missing data ("no series X; job Y is not scraped").

use std::collections::{BTreeMap, BTreeSet};

use crate::{prom_client::PromClient, time_range::TimeRange};

/// Where a family of metrics comes from and how kube-prometheus-stack scrapes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cadvisor,
    Kubelet,
    KubeStateMetrics,
    NodeExporter,
}

impl Source {
    /// The job name kube-prometheus-stack gives these targets.
    pub fn job(self) -> &'static str {
        match self {
            Source::Cadvisor | Source::Kubelet => "kubelet",
            Source::KubeStateMetrics => "kube-state-metrics",
            Source::NodeExporter => "node-exporter",
        }
    }

    fn origin(self) -> &'static str {
        match self {
            Source::Cadvisor => "cAdvisor, i.e. the kubelet's /metrics/cadvisor endpoint",
            Source::Kubelet => "the kubelet's /metrics endpoint",
            Source::KubeStateMetrics => "kube-state-metrics",
            Source::NodeExporter => "node-exporter",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Source::Cadvisor => {
                "is the kubelet's /metrics/cadvisor endpoint scraped (kube-prometheus-stack: kubelet.serviceMonitor.cAdvisor=true)?"
            }
            Source::Kubelet => {
                "is the kubelet scraped (kube-prometheus-stack: kubelet.enabled=true)?"
            }
            Source::KubeStateMetrics => {
                "is kube-state-metrics installed and scraped (kube-prometheus-stack: kubeStateMetrics.enabled=true)?"
            }
            Source::NodeExporter => {
                "is node-exporter installed and scraped (kube-prometheus-stack: nodeExporter.enabled=true)?"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct JobTargets {
    pub up: u64,
    pub total: u64,
}

#[derive(Debug, Default)]
pub struct Catalogue {
    metrics: BTreeSet<String>,
    jobs: BTreeMap<String, JobTargets>,
    /// Set when the catalogue could not be read; explanations then say so instead of guessing.
    problem: Option<String>,
}

impl Catalogue {
    pub async fn load(prom: &PromClient, range: &TimeRange) -> Self {
        let names = prom.label_values("__name__", range);
        let totals = prom.query("count by (job) (up)", range.end);
        let ups = prom.query("sum by (job) (up)", range.end);
        let (names, totals, ups) = tokio::join!(names, totals, ups);
        let mut catalogue = Catalogue::default();
        match names {
            Ok(names) => catalogue.metrics = names.into_iter().collect(),
            Err(e) => catalogue.problem = Some(e.to_string()),
        }
        if let (Ok(totals), Ok(ups)) = (totals, ups) {
            for s in totals {
                let job = s.labels.get("job").cloned().unwrap_or_default();
                catalogue.jobs.entry(job).or_default().total = s.value as u64;
            }
            for s in ups {
                let job = s.labels.get("job").cloned().unwrap_or_default();
                catalogue.jobs.entry(job).or_default().up = s.value as u64;
            }
        }
        catalogue
    }

    pub fn has(&self, metric: &str) -> bool {
        self.metrics.contains(metric)
    }

    /// Metric names with data that start with `prefix`, e.g. a family of recording rules.
    pub fn names_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.metrics
            .range(prefix.to_owned()..)
            .take_while(move |m| m.starts_with(prefix))
            .map(String::as_str)
    }

    /// The first of `candidates` with data, e.g. a recording rule before its raw series.
    pub fn first_present<'a>(&self, candidates: &[&'a str]) -> Option<&'a str> {
        candidates.iter().copied().find(|m| self.has(m))
    }

    /// "no series X in the range: it comes from …; job=… is not scraped (jobs: …); hint".
    pub fn explain_absent(&self, metric: &str, source: Source) -> String {
        if let Some(problem) = &self.problem {
            return format!(
                "no data for {metric}; the metric names could not be listed ({problem})"
            );
        }
        let job = source.job();
        let scraped = match self.jobs.get(job) {
            Some(t) if t.up == 0 => format!(
                "job=\"{job}\" has {} target(s), all down (up == 0)",
                t.total
            ),
            Some(t) => format!(
                "job=\"{job}\" is scraped ({} of {} target(s) up) but has no such series",
                t.up, t.total
            ),
            None if self.jobs.is_empty() => {
                // Read at the range's end: a range before Prometheus's first scrape or beyond
                // its retention looks the same as a Prometheus that scrapes nothing.
                "Prometheus has no `up` series at the range's end (no targets scraped then: is the range within its retention?)".to_owned()
            }
            None => format!(
                "no job=\"{job}\" targets are scraped (jobs: {})",
                self.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        format!(
            "no series {metric} in the range: it comes from {}; {scraped}; {}",
            source.origin(),
            source.hint()
        )
    }

    pub fn jobs(&self) -> &BTreeMap<String, JobTargets> {
        &self.jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_a_missing_job() {
        let mut c = Catalogue::default();
        c.jobs
            .insert("prometheus".into(), JobTargets { up: 1, total: 1 });
        let text = c.explain_absent("container_cpu_usage_seconds_total", Source::Cadvisor);
        assert!(
            text.contains("no job=\"kubelet\" targets are scraped (jobs: prometheus)"),
            "{text}"
        );
        assert!(text.contains("/metrics/cadvisor"), "{text}");
    }

    #[test]
    fn no_up_series_is_not_called_an_empty_scrape_config() {
        // Read at the range's end: a range outside the data has no `up` either.
        let text = Catalogue::default().explain_absent("kube_pod_info", Source::KubeStateMetrics);
        assert!(
            text.contains("no `up` series at the range's end") && text.contains("retention"),
            "{text}"
        );
        assert!(!text.contains("scrapes no targets at all"), "{text}");
    }

    #[test]
    fn explains_a_down_job() {
        let mut c = Catalogue::default();
        c.jobs
            .insert("node-exporter".into(), JobTargets { up: 0, total: 2 });
        let text = c.explain_absent("node_memory_MemTotal_bytes", Source::NodeExporter);
        assert!(text.contains("2 target(s), all down"), "{text}");
    }
}
