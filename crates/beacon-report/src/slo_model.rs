//! The SLOs' figures and their arithmetic: what the report holds about each SLO, the chart's
//! default objectives, windows and alert pairs, and the checks of the `--slo-*` flags. Pure:
//! no queries (those are `questions::slo`'s).

use serde::Serialize;

/// The chart's defaults (`prometheusRule.slo`): percent of requests, and seconds.
pub const DEFAULT_AVAILABILITY: f64 = 99.9;
pub const DEFAULT_LATENCY: f64 = 99.0;
pub const DEFAULT_LATENCY_THRESHOLD: f64 = 0.5;
pub const DEFAULT_PERIOD: &str = "30d";

/// The burn-rate windows the chart records (`beacon:slo_errors:ratio_rate<window>`), seconds.
pub const WINDOWS: [(&str, f64); 7] = [
    ("5m", 300.0),
    ("30m", 1800.0),
    ("1h", 3600.0),
    ("2h", 7200.0),
    ("6h", 21_600.0),
    ("1d", 86_400.0),
    ("3d", 259_200.0),
];

/// The SRE workbook's multi-window, multi-burn-rate alerts, as the chart's defaults set them.
pub const PAIRS: [Pair; 4] = [
    Pair {
        severity: "page",
        factor: 14.4,
        long: "1h",
        short: "5m",
    },
    Pair {
        severity: "page",
        factor: 6.0,
        long: "6h",
        short: "30m",
    },
    Pair {
        severity: "ticket",
        factor: 3.0,
        long: "1d",
        short: "2h",
    },
    Pair {
        severity: "ticket",
        factor: 1.0,
        long: "3d",
        short: "6h",
    },
];

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pair {
    /// `page` (the chart's `Beacon<Slo>FastBurn`) or `ticket` (`…SlowBurn`).
    pub severity: &'static str,
    pub factor: f64,
    pub long: &'static str,
    pub short: &'static str,
}

/// The objectives to use where no recording rule states them (`--slo-*`): percent, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloFlags {
    /// `None`: the chart's default.
    pub availability: Option<f64>,
    pub latency: Option<f64>,
    pub latency_threshold: f64,
}

impl Default for SloFlags {
    fn default() -> Self {
        Self {
            availability: None,
            latency: None,
            latency_threshold: DEFAULT_LATENCY_THRESHOLD,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloKind {
    Availability,
    Latency,
}

/// Where a figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    RecordingRules,
    RawCounters,
}

/// Where the objective comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveFrom {
    /// `beacon:slo_objective:ratio`.
    RecordingRule,
    /// `--slo-availability` / `--slo-latency`.
    Flag,
    /// Neither: the chart's default.
    Default,
}

#[derive(Debug, Clone, Serialize)]
pub struct Slo {
    pub slo: SloKind,
    /// In words: "requests to / not answered 5xx".
    pub description: String,
    /// Share of requests that must be good, e.g. 0.999.
    pub objective: f64,
    pub objective_from: ObjectiveFrom,
    /// What the objective (and the budget from the rules) is measured over.
    pub period: String,
    /// Latency only: the bucket boundary a good request is answered within, seconds.
    pub threshold_seconds: Option<f64>,
    /// The scrape job of the workload's `/` series, which the recording rules are labelled with.
    pub job: Option<String>,
    pub range: RangeSli,
    pub budget: Budget,
    pub burn_rates: Vec<BurnRate>,
    pub alerts: Vec<BurnAlert>,
}

/// The SLI over the report's range: `increase()` of the raw counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RangeSli {
    pub requests: Option<f64>,
    pub good: Option<f64>,
    /// good / requests.
    pub sli: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    /// Share of the error budget spent: bad share / (1 − objective); above 1 is overspent.
    pub consumed: Option<f64>,
    /// `period` (the rules' whole period) or `range` (the report's range, from raw counters).
    pub over: BudgetOver,
    /// The period or the range as a duration, e.g. `30d`, `1h`.
    pub window: String,
    pub from: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetOver {
    Period,
    Range,
}

#[derive(Debug, Clone, Serialize)]
pub struct BurnRate {
    pub window: String,
    /// Share of bad requests over the window, at the range's end.
    pub error_ratio: Option<f64>,
    /// error_ratio / (1 − objective): 1 spends the budget exactly over the period.
    pub burn_rate: Option<f64>,
    pub from: Origin,
}

/// One alert pair: its condition holds when both windows burn above the factor.
#[derive(Debug, Clone, Serialize)]
pub struct BurnAlert {
    #[serde(flatten)]
    pub pair: Pair,
    pub long_burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    pub exceeded: bool,
}

/// error ratio / (1 − objective).
pub fn burn_rate(error_ratio: f64, objective: f64) -> f64 {
    error_ratio / (1.0 - objective)
}

/// Each pair whose two windows were read, with their burn rates and whether both are above its
/// factor (the alerts compare with `>`). A window can be in two pairs (6h: long of 6×, short
/// of 1×). Rules recorded over other windows (the demo's seconds and minutes) have no pair
/// here: the alerting rules, not the recorded series, say how the chart pairs them.
pub fn alerts(burns: &[BurnRate]) -> Vec<BurnAlert> {
    let of = |w: &str| {
        burns
            .iter()
            .find(|b| b.window == w)
            .and_then(|b| b.burn_rate)
    };
    let read = |w: &str| burns.iter().any(|b| b.window == w);
    PAIRS
        .iter()
        .filter(|p| read(p.long) && read(p.short))
        .map(|p| {
            let (long, short) = (of(p.long), of(p.short));
            let above = |b: Option<f64>| b.is_some_and(|b| b > p.factor);
            BurnAlert {
                pair: *p,
                long_burn_rate: long,
                short_burn_rate: short,
                exceeded: above(long) && above(short),
            }
        })
        .collect()
}

/// Checks an objective flag: a percentage strictly between 0 and 100.
pub fn check_objective(percent: f64) -> std::result::Result<f64, String> {
    if percent.is_finite() && percent > 0.0 && percent < 100.0 {
        Ok(percent)
    } else {
        Err(format!(
            "{percent} is not a percentage above 0 and below 100 (e.g. 99.9)"
        ))
    }
}

/// Checks a latency threshold against the histogram's bucket boundaries: the share within it
/// is then counted exactly (`le`), never interpolated.
pub fn check_threshold(seconds: f64, buckets: &[f64]) -> std::result::Result<f64, String> {
    if buckets.iter().any(|b| (b - seconds).abs() < 1e-9) {
        return Ok(seconds);
    }
    let list: Vec<String> = buckets.iter().map(|b| duration_words(*b)).collect();
    Err(format!(
        "{} is not a bucket boundary of http_request_duration_seconds; use one of {}",
        duration_words(seconds),
        list.join(", ")
    ))
}

/// `0.5` → `500ms`, `2.5` → `2500ms`, `1` → `1s`, `0.0005` → `500us`.
pub fn duration_words(seconds: f64) -> String {
    let us = (seconds * 1e6).round() as u64;
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

/// The `le` label of a bucket as beacon exposes it (OpenMetrics: `1.0`, `0.5`) and the chart's
/// rules select it.
pub fn le_label(seconds: f64) -> String {
    let s = format!("{seconds}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `windows` by duration, or the standard ones when none parses.
pub fn sorted_windows(windows: Vec<String>) -> Vec<String> {
    let mut timed: Vec<(f64, String)> = windows
        .into_iter()
        .filter_map(|w| Some((humantime::parse_duration(&w).ok()?.as_secs_f64(), w)))
        .collect();
    if timed.is_empty() {
        return WINDOWS.iter().map(|(w, _)| (*w).to_owned()).collect();
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    timed.into_iter().map(|(_, w)| w).collect()
}

pub fn range_sli(total: Option<f64>, counted: Option<f64>, counts_bad: bool) -> RangeSli {
    let good = match (total, counted) {
        (Some(t), Some(c)) if counts_bad => Some(t - c),
        (_, c) => c,
    };
    let sli = match (total, good) {
        (Some(t), Some(g)) if t > 0.0 => Some(g / t),
        _ => None,
    };
    RangeSli {
        requests: total,
        good,
        sli,
    }
}

pub fn burn_row(window: &str, ratio: Option<f64>, objective: f64, from: Origin) -> BurnRate {
    BurnRate {
        window: window.to_owned(),
        error_ratio: ratio,
        burn_rate: ratio.map(|r| burn_rate(r, objective)),
        from,
    }
}

pub fn describe(kind: SloKind, threshold: f64) -> String {
    match kind {
        SloKind::Availability => "requests to / not answered 5xx".to_owned(),
        SloKind::Latency => format!(
            "requests to / answered within {}",
            duration_words(threshold)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(window: &str, b: f64) -> BurnRate {
        burn_row(window, Some(b * 0.001), 0.999, Origin::RawCounters)
    }

    #[test]
    fn burn_rate_is_the_error_ratio_over_the_budget() {
        assert!((burn_rate(0.0144, 0.999) - 14.4).abs() < 1e-9);
        assert!((burn_rate(0.01, 0.99) - 1.0).abs() < 1e-9);
        assert_eq!(burn_rate(0.0, 0.999), 0.0);
    }

    #[test]
    fn a_pair_is_exceeded_only_when_both_windows_burn_above_its_factor() {
        let burns = vec![
            burn("5m", 20.0),
            burn("30m", 7.0),
            burn("1h", 15.0),
            burn("2h", 4.0),
            burn("6h", 5.0),
            burn("1d", 2.0),
            burn("3d", 1.5),
        ];
        let exceeded: Vec<bool> = alerts(&burns).iter().map(|a| a.exceeded).collect();
        // 1h&5m above 14.4; 6h (5) under 6; 1d (2) under 3; 3d (1.5) and 6h (5) above 1.
        assert_eq!(exceeded, [true, false, false, true]);
        let a = &alerts(&burns)[1];
        let near = |v: Option<f64>, e: f64| v.is_some_and(|v| (v - e).abs() < 1e-9);
        assert!(near(a.long_burn_rate, 5.0) && near(a.short_burn_rate, 7.0));
        // Exactly at the factor is not above it (the alerts use `>`).
        let mut at = [burn("1h", 14.4), burn("5m", 30.0)];
        at[0].burn_rate = Some(14.4);
        assert!(!alerts(&at)[0].exceeded);
        assert!(
            alerts(&[burn("1h", 30.0)]).is_empty(),
            "the 5m was not read"
        );
    }

    #[test]
    fn recorded_windows_are_read_shortest_first() {
        let recorded = ["3m", "10s", "1h", "1d", "30s", "15m"].map(String::from);
        assert_eq!(
            sorted_windows(recorded.to_vec()),
            ["10s", "30s", "3m", "15m", "1h", "1d"]
        );
        let standard: Vec<String> = WINDOWS.iter().map(|(w, _)| (*w).to_owned()).collect();
        assert_eq!(sorted_windows(Vec::new()), standard);
    }

    #[test]
    fn every_pair_uses_recorded_windows() {
        for p in PAIRS {
            for w in [p.long, p.short] {
                assert!(WINDOWS.iter().any(|(name, _)| *name == w), "{w}");
            }
        }
    }

    #[test]
    fn the_sli_counts_good_requests_either_way() {
        let r = range_sli(Some(1000.0), Some(5.0), true);
        assert_eq!((r.good, r.sli), (Some(995.0), Some(0.995)));
        let r = range_sli(Some(1000.0), Some(990.0), false);
        assert_eq!((r.good, r.sli), (Some(990.0), Some(0.99)));
        assert!(range_sli(None, None, true).sli.is_none());
        assert!(range_sli(Some(0.0), Some(0.0), true).sli.is_none());
    }

    #[test]
    fn thresholds_must_be_bucket_boundaries() {
        let buckets = [0.0005, 0.25, 0.5, 1.0];
        assert_eq!(check_threshold(0.5, &buckets), Ok(0.5));
        let err = check_threshold(0.3, &buckets).unwrap_err();
        assert_eq!(
            err,
            "300ms is not a bucket boundary of http_request_duration_seconds; use one of 500us, 250ms, 500ms, 1s"
        );
        assert!(check_objective(100.0).is_err() && check_objective(0.0).is_err());
        assert_eq!(check_objective(99.9), Ok(99.9));
    }

    #[test]
    fn le_labels_are_written_as_beacon_exposes_them() {
        assert_eq!(le_label(0.5), "0.5");
        assert_eq!(le_label(1.0), "1.0");
        assert_eq!(le_label(10.0), "10.0");
        assert_eq!(le_label(0.0005), "0.0005");
    }
}
