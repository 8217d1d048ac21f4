//! The service-level objectives of `/` (the chart's `prometheusRule.slo`): availability (share of
//! requests not answered 5xx) and latency (share answered within a threshold). For each: the
//! objective, the SLI over the report's range, the error budget consumed and the current burn
//! rates, read from the chart's recording rules where they exist and from beacon's raw counters
//! otherwise.

use serde::Serialize;

use super::Ctx;
use crate::{
    model::Answer,
    prom_client::Sample,
    target::{PodFilter, Workload, quote},
};

pub const QUESTION: &str = "Service-level objectives of / (availability and latency)";

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

const OBJECTIVE_RULE: &str = "beacon:slo_objective:ratio";
const PERIOD_RULE: &str = "beacon:slo_errors:ratio_period";
const RATE_RULE: &str = "beacon:slo_errors:ratio_rate";
const REQUESTS: &str = "http_requests_total";
const BUCKETS: &str = "http_request_duration_seconds_bucket";
const COUNT: &str = "http_request_duration_seconds_count";

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

/// The raw series one SLO reads, with the workload's pods kept.
struct RawSelectors {
    /// Every request to `/`.
    total: String,
    /// Bad ones (5xx), or good ones (within the threshold).
    counted: String,
    counts_bad: bool,
    join: String,
}

impl RawSelectors {
    fn new(ctx: &Ctx, kind: SloKind, filter: &PodFilter, threshold: f64) -> Self {
        let scope = format!(r#"namespace={},route="/"{}"#, ctx.ns(), filter.matchers);
        let (total, counted, counts_bad) = match kind {
            SloKind::Availability => (
                format!("{REQUESTS}{{{scope}}}"),
                format!(r#"{REQUESTS}{{{scope},status=~"5.."}}"#),
                true,
            ),
            SloKind::Latency => (
                format!("{COUNT}{{{scope}}}"),
                format!("{BUCKETS}{{{scope},le={}}}", quote(&le_label(threshold))),
                false,
            ),
        };
        Self {
            total,
            counted,
            counts_bad,
            join: filter.join.clone(),
        }
    }

    fn sum(&self, func: &str, selector: &str, window: &str) -> String {
        format!("sum({func}({selector}[{window}]){})", self.join)
    }

    /// Share of bad requests over `window`; empty when there were no requests. No 5xx series
    /// at all is no errors, hence `or vector(0)`.
    fn error_ratio(&self, window: &str) -> String {
        let total = self.sum("rate", &self.total, window);
        let counted = self.sum("rate", &self.counted, window);
        if self.counts_bad {
            format!("({counted} or vector(0)) / {total}")
        } else {
            format!("1 - {counted} / {total}")
        }
    }
}

/// The latency threshold the recording rules count (their `le`), read from Prometheus' rules
/// API, so that the SLI over the range counts the same requests; the flag's when Prometheus
/// does not evaluate them itself (a ruler elsewhere), which is noted.
async fn rules_threshold(
    ctx: &Ctx,
    answer: &mut Answer<Vec<Slo>>,
    job: &str,
    flags: &SloFlags,
) -> f64 {
    let flag = flags.latency_threshold;
    let rules = ctx.prom.recording_rules().await.unwrap_or_default();
    let scope = [
        format!("namespace={}", quote(&ctx.namespace)),
        format!("job={}", quote(job)),
    ];
    let le = rules
        .iter()
        .filter(|r| r.name.starts_with(RATE_RULE) || r.name == PERIOD_RULE)
        .filter(|r| r.labels.get("slo").is_some_and(|s| s == "latency"))
        .filter(|r| {
            scope
                .iter()
                .all(|m| r.query.replace(", ", ",").contains(m.as_str()))
        })
        .find_map(|r| le_of(&r.query));
    match le {
        Some(le) if (le - flag).abs() > 1e-9 => {
            answer.note(format!(
                "the latency SLO counts requests within the recording rules' {} (le=\"{}\"), not --slo-latency-threshold {}",
                duration_words(le),
                le_label(le),
                duration_words(flag)
            ));
            le
        }
        Some(le) => le,
        None => {
            answer.note(format!(
                "the recording rules' latency threshold is not in this Prometheus' rules API (evaluated elsewhere?): the SLI over the range counts requests within --slo-latency-threshold {}; keep it equal to the chart's",
                duration_words(flag)
            ));
            flag
        }
    }
}

/// The `le` a rule's query selects: `…_bucket{…, le="0.5"}` → 0.5.
fn le_of(query: &str) -> Option<f64> {
    let start = query.find("le=\"")? + 4;
    let end = query[start..].find('"')? + start;
    query[start..end].parse().ok()
}

/// The burn-rate windows to read, shortest first: with the rules, every window the chart
/// records (`prometheusRule.slo`'s windows are values: the demo's are seconds and minutes);
/// without, the standard ones.
fn windows(ctx: &Ctx, rules: bool) -> Vec<String> {
    let recorded: Vec<String> = if rules {
        ctx.catalogue
            .names_with_prefix(RATE_RULE)
            .map(|n| n[RATE_RULE.len()..].to_owned())
            .collect()
    } else {
        Vec::new()
    };
    sorted_windows(recorded)
}

/// `windows` by duration, or the standard ones when none parses.
fn sorted_windows(windows: Vec<String>) -> Vec<String> {
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

/// The value of a one-sample answer.
fn value(samples: &[Sample]) -> Option<f64> {
    samples.first().map(|s| s.value).filter(|v| v.is_finite())
}

/// The scrape job of the workload's `/` series: the recording rules are labelled with it.
async fn workload_job(
    ctx: &Ctx,
    answer: &mut Answer<Vec<Slo>>,
    filter: &PodFilter,
) -> Option<String> {
    let expr = answer.uses(
        "the scrape job of the workload's requests to /",
        format!(
            r#"count by (job) (last_over_time({REQUESTS}{{namespace={},route="/"{}}}[{}]){})"#,
            ctx.ns(),
            filter.matchers,
            ctx.span_window(),
            filter.join
        ),
    );
    let rows = ctx.instant(&expr).await;
    let mut jobs: Vec<String> = answer
        .take(rows)
        .into_iter()
        .filter_map(|s| s.labels.get("job").cloned())
        .collect();
    jobs.sort();
    if jobs.len() > 1 {
        answer.note(format!(
            "the workload's requests to / come from several scrape jobs ({}): the recording rules of {} are used",
            jobs.join(", "),
            jobs[0]
        ));
    }
    jobs.into_iter().next()
}

pub async fn answer(ctx: &Ctx, workload: &Workload, flags: &SloFlags) -> Answer<Vec<Slo>> {
    let mut answer = Answer::new(QUESTION, Vec::new());
    let filter = match workload.filter(&ctx.namespace) {
        Ok(f) => f,
        Err(e) => {
            answer.note(e.to_string());
            return answer;
        }
    };
    if !ctx.catalogue.has(REQUESTS) {
        answer.note(format!(
            "no series {REQUESTS} in the range: beacon's /metrics is not scraped (is the chart's serviceMonitor enabled, and does kube-prometheus-stack select it?)"
        ));
        return answer;
    }
    let job = workload_job(ctx, &mut answer, &filter).await;
    let rules = job.clone().filter(|_| ctx.catalogue.has(OBJECTIVE_RULE));
    let mut flags = *flags;
    if let Some(job) = &rules {
        flags.latency_threshold = rules_threshold(ctx, &mut answer, job, &flags).await;
    }
    let flags = &flags;
    let mut parts = [Answer::new(QUESTION, None), Answer::new(QUESTION, None)];
    let [a, l] = &mut parts;
    let settings = |kind| Settings {
        kind,
        workload,
        filter: &filter,
        flags,
        rules: rules.as_deref(),
        job: job.as_deref(),
    };
    tokio::join!(
        answer_one(ctx, settings(SloKind::Availability), a),
        answer_one(ctx, settings(SloKind::Latency), l),
    );
    for part in parts {
        answer.queries.extend(part.queries);
        answer.notes.extend(part.notes);
        answer.failed.extend(part.failed);
        answer.data.extend(part.data);
    }
    if answer
        .data
        .iter()
        .any(|s| s.budget.from == Origin::RawCounters)
    {
        answer.note(format!(
            "no recording rules {OBJECTIVE_RULE} for namespace {}{}: figures come from the raw counters, and the budget consumed is over the report's range ({}), not the {DEFAULT_PERIOD} period",
            ctx.namespace,
            job.map(|j| format!(" and job {j}")).unwrap_or_default(),
            ctx.span_window()
        ));
    }
    answer
}

/// What one SLO is computed from.
struct Settings<'a> {
    pub kind: SloKind,
    pub workload: &'a Workload,
    pub filter: &'a PodFilter,
    pub flags: &'a SloFlags,
    /// The job whose recording rules to read, when there are any.
    pub rules: Option<&'a str>,
    pub job: Option<&'a str>,
}

impl Settings<'_> {
    fn name(&self) -> &'static str {
        match self.kind {
            SloKind::Availability => "availability",
            SloKind::Latency => "latency",
        }
    }

    fn rule(&self, ctx: &Ctx, metric: &str) -> Option<String> {
        let job = self.rules?;
        ctx.catalogue.has(metric).then(|| {
            format!(
                "{metric}{{namespace={},job={},slo={}}}",
                ctx.ns(),
                quote(job),
                quote(self.name())
            )
        })
    }

    fn flag_objective(&self) -> (f64, ObjectiveFrom) {
        let (flag, default) = match self.kind {
            SloKind::Availability => (self.flags.availability, DEFAULT_AVAILABILITY),
            SloKind::Latency => (self.flags.latency, DEFAULT_LATENCY),
        };
        match flag {
            Some(p) => (p / 100.0, ObjectiveFrom::Flag),
            None => (default / 100.0, ObjectiveFrom::Default),
        }
    }
}

/// The objective and its period: the rule's when it has one for this SLO, else the flag's.
async fn objective(
    ctx: &Ctx,
    s: &Settings<'_>,
    answer: &mut Answer<Option<Slo>>,
) -> (f64, ObjectiveFrom, String) {
    let (flag, from) = s.flag_objective();
    let Some(expr) = s.rule(ctx, OBJECTIVE_RULE) else {
        return (flag, from, DEFAULT_PERIOD.to_owned());
    };
    let expr = answer.uses(format!("{} objective", s.name()), expr);
    let rows = ctx.instant(&expr).await;
    let rows = answer.take(rows);
    let Some(rule) = value(&rows) else {
        return (flag, from, DEFAULT_PERIOD.to_owned());
    };
    if from == ObjectiveFrom::Flag && (rule - flag).abs() > 1e-12 {
        answer.note(format!(
            "the {} objective is the recording rule's {}%, not the flag's {}%",
            s.name(),
            100.0 * rule,
            100.0 * flag
        ));
    }
    let period = rows[0].labels.get("period").cloned();
    let period = period.unwrap_or_else(|| DEFAULT_PERIOD.to_owned());
    (rule, ObjectiveFrom::RecordingRule, period)
}

/// The queries of one SLO, recorded on the answer.
struct Queries {
    total: String,
    counted: String,
    /// The rules' bad share over the whole period, when recorded.
    period: Option<String>,
    /// Window, where its figure comes from, and the query.
    burns: Vec<(String, Origin, String)>,
}

fn queries(
    ctx: &Ctx,
    s: &Settings<'_>,
    raw: &RawSelectors,
    rules: bool,
    answer: &mut Answer<Option<Slo>>,
) -> Queries {
    let (name, span) = (s.name(), ctx.span_window());
    let total = answer.uses(
        format!("{name}: requests to / over the range"),
        raw.sum("increase", &raw.total, &span),
    );
    let counted = answer.uses(
        if raw.counts_bad {
            format!("{name}: requests answered 5xx over the range")
        } else {
            format!(
                "{name}: requests answered within {} over the range",
                duration_words(s.flags.latency_threshold)
            )
        },
        raw.sum("increase", &raw.counted, &span),
    );
    let rule = |metric: &str| rules.then(|| s.rule(ctx, metric)).flatten();
    let period =
        rule(PERIOD_RULE).map(|e| answer.uses(format!("{name}: bad share over the period"), e));
    let burns = windows(ctx, rules)
        .into_iter()
        .map(|w| {
            let (from, expr) = match rule(&format!("{RATE_RULE}{w}")) {
                Some(e) => (Origin::RecordingRules, e),
                None => (Origin::RawCounters, raw.error_ratio(&w)),
            };
            let expr = answer.uses(format!("{name}: bad share over {w}"), expr);
            (w, from, expr)
        })
        .collect();
    Queries {
        total,
        counted,
        period,
        burns,
    }
}

async fn answer_one(ctx: &Ctx, s: Settings<'_>, answer: &mut Answer<Option<Slo>>) {
    let (objective, objective_from, period) = objective(ctx, &s, answer).await;
    let threshold = s.flags.latency_threshold;
    let raw = RawSelectors::new(ctx, s.kind, s.filter, threshold);
    // A rule recorded for this SLO decides the source; without one, every figure is raw.
    let rules = objective_from == ObjectiveFrom::RecordingRule;
    let q = queries(ctx, &s, &raw, rules, answer);
    let period_rows = async {
        match &q.period {
            Some(p) => Some(ctx.instant(p).await),
            None => None,
        }
    };
    let (total, counted, period_rows, burns) = tokio::join!(
        ctx.instant(&q.total),
        ctx.instant(&q.counted),
        period_rows,
        futures_util::future::join_all(q.burns.iter().map(|(_, _, e)| ctx.instant(e))),
    );
    let total = value(&answer.take(total));
    let counted = value(&answer.take(counted)).or(total.map(|_| 0.0));
    let range = range_sli(total, counted, raw.counts_bad);
    let burn_rates: Vec<BurnRate> = q
        .burns
        .iter()
        .zip(burns)
        .map(|((window, from, _), rows)| {
            burn_row(window, value(&answer.take(rows)), objective, *from)
        })
        .collect();
    let budget = match period_rows {
        Some(rows) => Budget {
            consumed: value(&answer.take(rows)).map(|r| burn_rate(r, objective)),
            over: BudgetOver::Period,
            window: period.clone(),
            from: Origin::RecordingRules,
        },
        None => Budget {
            consumed: range.sli.map(|sli| burn_rate(1.0 - sli, objective)),
            over: BudgetOver::Range,
            window: ctx.span_window(),
            from: Origin::RawCounters,
        },
    };
    if total.is_none() {
        answer.note(format!(
            "{}: no requests to / from {} in namespace {} in the range",
            s.name(),
            s.workload.describe(),
            ctx.namespace
        ));
    }
    answer.data = Some(Slo {
        slo: s.kind,
        description: describe(s.kind, threshold),
        objective,
        objective_from,
        period,
        threshold_seconds: (s.kind == SloKind::Latency).then_some(threshold),
        job: s.job.map(str::to_owned),
        range,
        budget,
        alerts: alerts(&burn_rates),
        burn_rates,
    });
}

fn range_sli(total: Option<f64>, counted: Option<f64>, counts_bad: bool) -> RangeSli {
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

fn burn_row(window: &str, ratio: Option<f64>, objective: f64, from: Origin) -> BurnRate {
    BurnRate {
        window: window.to_owned(),
        error_ratio: ratio,
        burn_rate: ratio.map(|r| burn_rate(r, objective)),
        from,
    }
}

fn describe(kind: SloKind, threshold: f64) -> String {
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
    fn the_rules_threshold_is_their_le() {
        let q = r#"1 - (sum by (namespace, job) (rate(http_request_duration_seconds_bucket{job="beacon", namespace="shop", route="/", le="0.25"}[5m])) / 1)"#;
        assert_eq!(le_of(q), Some(0.25));
        assert_eq!(le_of("sum(rate(http_requests_total[5m]))"), None);
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
