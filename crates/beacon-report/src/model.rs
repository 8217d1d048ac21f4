//! The report's data: what every renderer reads and what `--format json` prints as is.

use serde::Serialize;

use crate::time_range::TimeRange;

/// One question's answer: the question, the PromQL behind it, its data, and notes that explain
/// missing data (which metric, which job) instead of leaving a blank.
#[derive(Debug, Clone, Serialize)]
pub struct Answer<T> {
    pub question: &'static str,
    pub queries: Vec<QueryUsed>,
    pub notes: Vec<String>,
    pub data: T,
    pub charts: Vec<Chart>,
}

impl<T> Answer<T> {
    pub fn new(question: &'static str, data: T) -> Self {
        Self {
            question,
            queries: Vec::new(),
            notes: Vec::new(),
            data,
            charts: Vec::new(),
        }
    }

    /// Records a query so the reader can paste it into Grafana; returns it for running.
    pub fn uses(&mut self, what: impl Into<String>, promql: impl Into<String>) -> String {
        let promql = promql.into();
        self.queries.push(QueryUsed {
            what: what.into(),
            promql: promql.clone(),
        });
        promql
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// A query's rows, or none with the failure noted: one bad query never sinks the report.
    pub fn take<V: Default>(&mut self, result: crate::Result<V>) -> V {
        result.unwrap_or_else(|e| {
            self.note(format!("query failed: {e}"));
            V::default()
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryUsed {
    pub what: String,
    pub promql: String,
}

/// Current, average and maximum of one series over the range. `current` is the value at the
/// range's last evaluation point; it is absent when the series stopped earlier (a deleted pod).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stats {
    pub current: Option<f64>,
    pub avg: Option<f64>,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

impl Stats {
    pub fn of(points: &[(f64, f64)], range: &TimeRange) -> Self {
        let values: Vec<f64> = points
            .iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .collect();
        if values.is_empty() {
            return Self::default();
        }
        let last = range.last_eval();
        let current = points
            .iter()
            .rev()
            .find(|p| (p.0 - last).abs() < 0.001)
            .map(|p| p.1)
            .filter(|v| v.is_finite());
        Self {
            current,
            avg: Some(values.iter().sum::<f64>() / values.len() as f64),
            max: values.iter().copied().reduce(f64::max),
            min: values.iter().copied().reduce(f64::min),
        }
    }
}

/// What a number measures; renderers format by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Cores,
    Bytes,
    BytesPerSecond,
    Percent,
    Count,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedSeries {
    pub name: String,
    /// `(unix seconds, value)`.
    pub points: Vec<(f64, f64)>,
}

/// A time-series chart: rendered as SVG for HTML and Markdown.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// File-name-safe id, e.g. `q1-cpu`.
    pub id: String,
    pub title: String,
    pub unit: Unit,
    pub series: Vec<NamedSeries>,
}
