//! The report's time range: where it starts and ends, how finely it is sampled, and the
//! `rate()` window its PromQL uses.

use std::time::Duration;

use serde::Serialize;

use crate::{Error, Result};

/// Prometheus rejects range queries above 11,000 points per series.
const MAX_POINTS: f64 = 11_000.0;
/// About this many points per chart line when no step is given: a 1 h range gets 15 s, the
/// usual scrape interval, and longer ranges get proportionally coarser steps.
const TARGET_POINTS: f64 = 240.0;
const MIN_AUTO_STEP: f64 = 15.0;
/// kube-prometheus' recording rules use 5m windows; matching them keeps our numbers and the
/// dashboards' in agreement.
const DEFAULT_RATE_WINDOW: f64 = 300.0;
/// How far past now an end may be: clocks of this host and Prometheus's disagree a little.
const CLOCK_SLACK: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeRange {
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds.
    pub end: f64,
    /// Seconds between evaluation points.
    pub step: f64,
    /// Seconds covered by each `rate()`.
    pub rate_window: f64,
}

impl TimeRange {
    /// Checks the range the way Prometheus would, so a bad one fails before any query with a
    /// message that names the flag.
    pub fn new(
        start: f64,
        end: f64,
        step: Option<Duration>,
        rate_window: Option<Duration>,
    ) -> Result<Self> {
        if !(start.is_finite() && end.is_finite()) || start < 0.0 {
            return Err(Error::BadRange(format!(
                "start {start} / end {end} are not valid times"
            )));
        }
        if end <= start {
            return Err(Error::BadRange(format!(
                "the end ({}) is not after the start ({})",
                format_time(end),
                format_time(start)
            )));
        }
        let span = end - start;
        let step = match step {
            Some(s) if s.is_zero() => {
                return Err(Error::BadRange("the step must be above zero".into()));
            }
            Some(s) => s.as_secs_f64(),
            None => (span / TARGET_POINTS).ceil().max(MIN_AUTO_STEP),
        };
        if span / step + 1.0 > MAX_POINTS {
            return Err(Error::BadRange(format!(
                "{} points per series at step {}s; Prometheus allows at most 11000 (raise the step)",
                (span / step) as u64 + 1,
                step
            )));
        }
        let rate_window = match rate_window {
            Some(w) if w.is_zero() => {
                return Err(Error::BadRange("the rate window must be above zero".into()));
            }
            Some(w) => w.as_secs_f64(),
            // Never narrower than a step, or samples between points would be skipped.
            None => DEFAULT_RATE_WINDOW.max(step),
        };
        Ok(Self {
            start,
            end,
            step,
            rate_window,
        })
    }

    /// A range that ends after `now` (beyond `CLOCK_SLACK`) has no samples yet where it
    /// matters: the "current" values and the catalogue are read at its end, so every answer
    /// would be empty and blame the scrape setup. Refuse it with what to change instead.
    pub fn check_not_future(&self, now: f64) -> Result<()> {
        if self.end <= now + CLOCK_SLACK {
            return Ok(());
        }
        let whole = if self.start >= now {
            "the whole range is"
        } else {
            "its end is"
        };
        Err(Error::BadRange(format!(
            "{} to {} is in the future ({whole} after now, {}): Prometheus has no samples there yet; end it at or before now",
            format_time(self.start),
            format_time(self.end),
            format_time(now)
        )))
    }

    /// The last time a range query evaluates at (`start + k*step <= end`): the "current" point.
    pub fn last_eval(&self) -> f64 {
        self.start + ((self.end - self.start) / self.step + 1e-9).floor() * self.step
    }

    /// The `rate()` window as PromQL writes durations, e.g. `5m`.
    pub fn window(&self) -> String {
        promql_duration(self.rate_window)
    }
}

/// `300.0` → `5m`, `90.0` → `90s`, `0.5` → `500ms`.
pub fn promql_duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses `--start`/`--end`: RFC 3339 (`2026-11-24T10:00:00Z`) or Unix seconds.
pub fn parse_time(text: &str) -> Result<f64> {
    if let Ok(secs) = text.parse::<f64>() {
        return Ok(secs);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond() as f64 / 1000.0)
        .map_err(|e| {
            Error::BadRange(format!(
                "{text:?} is neither RFC 3339 nor Unix seconds: {e}"
            ))
        })
}

/// Unix seconds as RFC 3339 UTC, second precision.
pub fn format_time(secs: f64) -> String {
    jiff::Timestamp::from_millisecond((secs * 1000.0).round() as i64)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| format!("{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hour_defaults_to_15s_steps_and_5m_rates() {
        let r = TimeRange::new(1000.0, 4600.0, None, None).unwrap();
        assert_eq!(r.step, 15.0);
        assert_eq!(r.window(), "5m");
        assert_eq!(r.last_eval(), 4600.0);
    }

    #[test]
    fn rejects_backwards_and_oversized_ranges() {
        assert!(TimeRange::new(10.0, 5.0, None, None).is_err());
        let too_fine = TimeRange::new(0.0, 86_400.0, Some(Duration::from_secs(1)), None);
        assert!(too_fine.unwrap_err().to_string().contains("11000"));
    }

    #[test]
    fn refuses_ranges_that_end_in_the_future() {
        let r = TimeRange::new(1000.0, 4600.0, None, None).unwrap();
        assert!(r.check_not_future(4600.0).is_ok());
        assert!(
            r.check_not_future(4590.0).is_ok(),
            "a little clock skew is fine"
        );
        let err = r.check_not_future(2000.0).unwrap_err().to_string();
        assert!(err.contains("in the future (its end is after now"), "{err}");
        let err = r.check_not_future(500.0).unwrap_err().to_string();
        assert!(err.contains("the whole range is after now"), "{err}");
    }

    #[test]
    fn parses_both_time_forms() {
        assert_eq!(parse_time("1700000000").unwrap(), 1.7e9);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1.7e9);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_time(1.7e9), "2023-11-14T22:13:20Z");
    }
}
