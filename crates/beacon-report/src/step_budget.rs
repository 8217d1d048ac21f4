//! Sizing a range query's step so it stays within a sample budget. A range query over raw
//! series holds about (series touched × evaluation points) samples at once, which is what
//! Prometheus' `--query.max-samples` (default 50 M) limits and what grows its memory: 25,600
//! node CPU series × 241 points is 6.2 M. A coarser chart beats a failed one.

use crate::time_range::TimeRange;

/// Default of `--sample-budget`: series × points of one range query.
pub const DEFAULT_SAMPLE_BUDGET: u64 = 500_000;

/// Evaluation points of a range query over `range` at `step`.
pub fn points(range: &TimeRange, step: f64) -> u64 {
    ((range.end - range.start) / step + 1e-9).floor() as u64 + 1
}

/// The step for a query touching `series` series: the range's own when series × points fits
/// `budget`, else the smallest multiple of it that fits (so points stay on the same grid, and
/// the last point stays as close to the end as the grid allows). A budget smaller than the
/// series count leaves one point.
pub fn step_for(range: &TimeRange, series: u64, budget: u64) -> f64 {
    let step = range.step;
    if series == 0 || series.saturating_mul(points(range, step)) <= budget {
        return step;
    }
    // floor(span / (k·step)) + 1 ≤ max_points  ⇔  k > span / (step · max_points).
    let span = range.end - range.start;
    let max_points = (budget / series).max(1) as f64;
    step * ((span / (step * max_points)).floor() + 1.0)
}

/// The range to run a query touching `series` series at, and the note to show when its step
/// was coarsened.
pub fn budgeted(range: &TimeRange, series: u64, budget: u64) -> (TimeRange, Option<String>) {
    let step = step_for(range, series, budget);
    if step == range.step {
        return (*range, None);
    }
    let coarse = TimeRange { step, ..*range };
    let note = format!(
        "the step was coarsened from {} to {} ({} points instead of {}): the query touches about {series} series, and {series} × {} points would exceed the sample budget of {budget} (--sample-budget)",
        crate::time_range::promql_duration(range.step),
        crate::time_range::promql_duration(step),
        points(&coarse, step),
        points(range, range.step),
        points(range, range.step),
    );
    (coarse, Some(note))
}

/// Rows of a range query run within the sample budget, and the note saying the step was
/// coarsened, if it was.
#[derive(Debug, Clone, Default)]
pub struct Stepped<V> {
    pub rows: V,
    /// The range the query ran at (its step may be coarser than the report's).
    pub range: Option<TimeRange>,
    pub coarsened: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour() -> TimeRange {
        TimeRange {
            start: 0.0,
            end: 3600.0,
            step: 15.0,
            rate_window: 300.0,
        }
    }

    #[test]
    fn a_query_within_budget_keeps_its_step() {
        assert_eq!(points(&hour(), 15.0), 241);
        assert_eq!(step_for(&hour(), 100, 500_000), 15.0);
        assert_eq!(step_for(&hour(), 2074, 500_000), 15.0); // 2074 × 241 = 499,834
        assert!(budgeted(&hour(), 100, 500_000).1.is_none());
    }

    #[test]
    fn a_wide_query_gets_a_multiple_of_the_step_that_fits() {
        // 200 nodes × 16 CPUs × 8 modes = 25,600 series: 500,000 / 25,600 = 19 points at most,
        // i.e. floor(3600 / step) ≤ 18, step > 189.5 s: the next multiple of 15 s is 195 s.
        let step = step_for(&hour(), 25_600, 500_000);
        assert_eq!(step, 195.0);
        assert!(25_600 * points(&hour(), step) <= 500_000);
        assert!(25_600 * points(&hour(), step - 15.0) > 500_000);
        let (coarse, note) = budgeted(&hour(), 25_600, 500_000);
        assert_eq!(coarse.step, 195.0);
        let note = note.unwrap();
        assert!(
            note.contains("from 15s to 195s") && note.contains("19 points instead of 241"),
            "{note}"
        );
    }

    #[test]
    fn more_series_than_budget_leaves_one_point() {
        let step = step_for(&hour(), 600_000, 500_000);
        assert_eq!(points(&hour(), step), 1);
    }
}
