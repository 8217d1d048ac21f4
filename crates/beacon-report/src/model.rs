//! The report's data: what every renderer reads and what `--format json` prints as is.

use serde::Serialize;

use crate::{Error, step_budget::Stepped, time_range::TimeRange};

/// One question's answer: the question, the PromQL behind it, its data, and notes that explain
/// missing data (which metric, which job) instead of leaving a blank.
#[derive(Debug, Clone, Serialize)]
pub struct Answer<T> {
    pub question: &'static str,
    pub queries: Vec<QueryUsed>,
    pub notes: Vec<String>,
    /// Queries Prometheus did not answer: this answer is partial.
    pub failed: Vec<FailedQuery>,
    pub data: T,
    pub charts: Vec<Chart>,
}

/// A query that failed, in words: what it was asking for and why it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedQuery {
    pub what: String,
    pub error: String,
}

impl<T> Answer<T> {
    pub fn new(question: &'static str, data: T) -> Self {
        Self {
            question,
            queries: Vec::new(),
            notes: Vec::new(),
            failed: Vec::new(),
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

    /// A query's rows, or none with the failure recorded: one bad query never sinks the report.
    pub fn take<V: Default>(&mut self, result: crate::Result<V>) -> V {
        result.unwrap_or_else(|e| {
            self.fail(&e);
            V::default()
        })
    }

    /// A budgeted range query's rows ([`crate::questions::Ctx::range_keyed`]), saying when its
    /// step was coarsened; or none with the failure recorded.
    pub fn take_stepped<V: Default>(&mut self, result: crate::Result<Stepped<V>>) -> V {
        match result {
            Ok(stepped) => {
                if let Some(note) = stepped.coarsened {
                    self.note(note);
                }
                stepped.rows
            }
            Err(e) => {
                self.fail(&e);
                V::default()
            }
        }
    }

    /// Records a failed query under the name it was recorded with ([`Answer::uses`]).
    pub fn fail(&mut self, e: &Error) {
        let (promql, cause) = match e {
            Error::Query { promql, source } => (Some(promql.as_str()), source.as_ref()),
            other => (None, other),
        };
        let what = promql
            .and_then(|p| self.queries.iter().find(|q| q.promql == p))
            .map(|q| q.what.clone())
            .or_else(|| promql.map(|p| format!("the query {p}")))
            .unwrap_or_else(|| "its data".into());
        self.failed.push(FailedQuery {
            what,
            error: in_words(cause),
        });
    }

    /// Puts a note for each failed query first, naming the question (`label`), so a partial
    /// answer says so where the reader looks.
    pub fn announce_failures(&mut self, label: &str) {
        let notes: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("{label}: asking for {} failed: {}", f.what, f.error))
            .collect();
        self.notes.splice(0..0, notes);
    }
}

/// Why a query failed, without the URL every query shares.
fn in_words(e: &Error) -> String {
    match e {
        Error::Api {
            error_type,
            message,
            ..
        } => format!("Prometheus refused it ({error_type}): {message}"),
        Error::Query { source, .. } => in_words(source),
        other => other.to_string(),
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
    /// At most [`CHART_LINES`], chosen by the question's own measure.
    pub series: Vec<NamedSeries>,
    /// The series left out, summed up in words, so a legend never lists thousands.
    pub remainder: Option<Remainder>,
}

/// The most lines one chart draws: beyond about ten, colours repeat and no line can be told
/// from another.
pub const CHART_LINES: usize = 10;

/// What a chart leaves out: "1,490 other pods: median of their average CPU 0.120".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remainder {
    pub count: usize,
    /// What they are, plural: `pods`, `nodes`.
    pub noun: &'static str,
    /// The measure the chart was chosen by, e.g. `average CPU`.
    pub measure: &'static str,
    /// The median of that measure over the series left out.
    pub median: Option<f64>,
}

impl Remainder {
    /// The series of `measures` (all of them, ranked or not) that `shown` (indices) leaves out.
    pub fn of(
        measures: &[f64],
        shown: &[usize],
        noun: &'static str,
        measure: &'static str,
    ) -> Option<Self> {
        let rest: Vec<f64> = measures
            .iter()
            .enumerate()
            .filter(|(i, _)| !shown.contains(i))
            .map(|(_, v)| *v)
            .collect();
        (!rest.is_empty()).then(|| Self {
            count: rest.len(),
            noun,
            measure,
            median: median(&rest),
        })
    }
}

/// Indices into a ranked list (first = most) that a view shows: the first `top` and the last
/// `bottom`, in rank order; every index when the two would meet.
pub fn extremes(len: usize, top: usize, bottom: usize) -> Vec<usize> {
    if top + bottom >= len {
        return (0..len).collect();
    }
    (0..top).chain(len - bottom..len).collect()
}

/// The median of the finite values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_take_both_ends_or_everything() {
        assert_eq!(extremes(100, 7, 3), [0, 1, 2, 3, 4, 5, 6, 97, 98, 99]);
        assert_eq!(extremes(10, 7, 3), (0..10).collect::<Vec<_>>());
        assert_eq!(extremes(4, 7, 3), [0, 1, 2, 3]);
        assert_eq!(extremes(20, 10, 0), (0..10).collect::<Vec<_>>());
        assert!(extremes(0, 5, 5).is_empty());
    }

    #[test]
    fn median_of_odd_even_and_non_finite() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn remainder_counts_and_takes_the_median_of_what_is_left_out() {
        // 1..=100 shown at both ends (1..=7 and 98..=100): the rest is 8..=97, median 52.5.
        let measures: Vec<f64> = (1..=100).map(f64::from).collect();
        let shown = extremes(100, 7, 3);
        let r = Remainder::of(&measures, &shown, "pods", "average CPU").unwrap();
        assert_eq!(r.count, 90);
        assert_eq!(r.median, Some(52.5));
        assert_eq!(
            Remainder::of(&measures[..5], &[0, 1, 2, 3, 4], "pods", "x"),
            None
        );
    }

    #[test]
    fn a_failed_query_is_named_by_its_purpose_and_question() {
        let mut a = Answer::new("q", ());
        let promql = a.uses("CPU used %", "sum(rate(x[5m]))");
        let refused = Error::Api {
            url: "http://p/api/v1/query_range".into(),
            error_type: "execution".into(),
            message: "query processing would load too many samples into memory".into(),
        };
        let rows: Vec<u8> = a.take(Err(Error::Query {
            promql,
            source: Box::new(refused),
        }));
        assert!(rows.is_empty());
        a.note("an earlier explanation");
        a.announce_failures("question 3 (node memory and CPU)");
        assert_eq!(
            a.notes[0],
            "question 3 (node memory and CPU): asking for CPU used % failed: Prometheus refused it (execution): query processing would load too many samples into memory"
        );
        assert_eq!(a.notes.len(), 2);
        assert_eq!(a.failed[0].what, "CPU used %");
    }
}
