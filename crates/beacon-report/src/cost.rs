//! What a report cost Prometheus. Every query asks for `stats=all`, which Prometheus (2.x and
//! later) answers with the samples the query loaded (`totalQueryableSamples`), the most it held
//! at once (`peakSamples`, what `--query.max-samples` limits) and its own evaluation time.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// `data.stats` of a query answer, as Prometheus 2.42 sends it with `stats=all`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct QueryStats {
    #[serde(default)]
    timings: Timings,
    #[serde(default)]
    samples: Samples,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Timings {
    #[serde(default)]
    eval_total_time: f64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Samples {
    #[serde(default)]
    total_queryable_samples: u64,
    #[serde(default)]
    peak_samples: u64,
}

/// One query as Prometheus reported it.
#[derive(Debug, Clone)]
pub struct QueryCost {
    pub promql: String,
    /// `instant` or `range`.
    pub kind: &'static str,
    /// Range queries: the step they ran at.
    pub step: Option<f64>,
    /// Samples loaded (`totalQueryableSamples`).
    pub samples: u64,
    /// Most samples held at once (`peakSamples`).
    pub peak_samples: u64,
    /// Prometheus' evaluation time (`evalTotalTime`), seconds.
    pub prometheus_seconds: f64,
    /// Wall time from beacon's side (waiting for a slot not included), seconds.
    pub wall_seconds: f64,
    pub failed: bool,
}

impl QueryCost {
    pub(crate) fn new(
        promql: &str,
        kind: &'static str,
        step: Option<f64>,
        stats: Option<QueryStats>,
        wall_seconds: f64,
        failed: bool,
    ) -> Self {
        let stats = stats.unwrap_or_default();
        Self {
            promql: promql.to_owned(),
            kind,
            step,
            samples: stats.samples.total_queryable_samples,
            peak_samples: stats.samples.peak_samples,
            prometheus_seconds: stats.timings.eval_total_time,
            wall_seconds,
            failed,
        }
    }
}

/// The report's `cost` object: totals over every query sent to Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Instant and range queries sent (label and alert listings not counted).
    pub queries: usize,
    pub failed_queries: usize,
    /// The most samples one query loaded, and that query.
    pub largest_samples: u64,
    pub largest_query: Option<String>,
    /// The highest `peakSamples` of any query: compare with `--query.max-samples`.
    pub largest_peak_samples: u64,
    pub total_samples: u64,
    /// Sum of Prometheus' evaluation times.
    pub prometheus_seconds: f64,
    /// Queries beacon lets run at once (`--max-concurrent-queries`).
    pub max_concurrent_queries: usize,
    /// The sample budget each range query's step is sized for (`--sample-budget`).
    pub sample_budget: u64,
}

/// Every query's cost, shared by the clones of one client.
#[derive(Debug, Default)]
pub struct CostLog(Mutex<Vec<QueryCost>>);

impl CostLog {
    pub(crate) fn record(&self, cost: QueryCost) {
        tracing::debug!(
            kind = cost.kind,
            samples = cost.samples,
            peak_samples = cost.peak_samples,
            prometheus_seconds = cost.prometheus_seconds,
            wall_seconds = cost.wall_seconds,
            step = cost.step,
            failed = cost.failed,
            promql = %cost.promql,
            "query"
        );
        if let Ok(mut log) = self.0.lock() {
            log.push(cost);
        }
    }

    pub fn queries(&self) -> Vec<QueryCost> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn summary(&self, max_concurrent_queries: usize, sample_budget: u64) -> Cost {
        summarize(&self.queries(), max_concurrent_queries, sample_budget)
    }
}

fn summarize(queries: &[QueryCost], max_concurrent_queries: usize, sample_budget: u64) -> Cost {
    let largest = queries.iter().max_by_key(|q| q.samples);
    Cost {
        queries: queries.len(),
        failed_queries: queries.iter().filter(|q| q.failed).count(),
        largest_samples: largest.map_or(0, |q| q.samples),
        largest_query: largest.map(|q| q.promql.clone()),
        largest_peak_samples: queries.iter().map(|q| q.peak_samples).max().unwrap_or(0),
        total_samples: queries.iter().map(|q| q.samples).sum(),
        prometheus_seconds: queries.iter().map(|q| q.prometheus_seconds).sum(),
        max_concurrent_queries,
        sample_budget,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_2_42_stats() {
        // As `curl '…/api/v1/query_range?…&stats=all'` answers on Debian's prometheus 2.42.
        let json = r#"{"timings":{"evalTotalTime":0.000124106,"resultSortTime":7.61e-07,"queryPreparationTime":7.6045e-05,"innerEvalTime":3.5664e-05,"execQueueTime":3.5773e-05,"execTotalTime":0.00018006},"samples":{"totalQueryableSamples":3,"peakSamples":2}}"#;
        let stats: QueryStats = serde_json::from_str(json).unwrap();
        let cost = QueryCost::new("up", "range", Some(15.0), Some(stats), 0.01, false);
        assert_eq!((cost.samples, cost.peak_samples), (3, 2));
        assert_eq!(cost.prometheus_seconds, 0.000124106);
    }

    #[test]
    fn sums_and_picks_the_largest() {
        let q = |promql: &str, samples, peak, secs, failed| QueryCost {
            promql: promql.into(),
            kind: "instant",
            step: None,
            samples,
            peak_samples: peak,
            prometheus_seconds: secs,
            wall_seconds: 0.0,
            failed,
        };
        let cost = summarize(
            &[
                q("a", 10, 7, 0.5, false),
                q("b", 300, 20, 0.25, false),
                q("c", 0, 0, 0.0, true),
            ],
            4,
            500_000,
        );
        assert_eq!(
            cost,
            Cost {
                queries: 3,
                failed_queries: 1,
                largest_samples: 300,
                largest_query: Some("b".into()),
                largest_peak_samples: 20,
                total_samples: 310,
                prometheus_seconds: 0.75,
                max_concurrent_queries: 4,
                sample_budget: 500_000,
            }
        );
    }
}
