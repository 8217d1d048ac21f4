//! The service-level objectives of `/` (the chart's `prometheusRule.slo`): availability (share of
//! requests not answered 5xx) and latency (share answered within a threshold). For each: the
//! objective, the SLI over the report's range, the error budget consumed and the current burn
//! rates, read from the chart's recording rules where they exist and from beacon's raw counters
//! otherwise.

use super::Ctx;
use crate::{
    model::Answer,
    prom_client::Sample,
    slo_model::{
        Budget, BudgetOver, BurnRate, DEFAULT_AVAILABILITY, DEFAULT_LATENCY, DEFAULT_PERIOD,
        ObjectiveFrom, Origin, Slo, SloKind, alerts, burn_rate, burn_row, describe, duration_words,
        le_label, range_sli, sorted_windows,
    },
    workload::{PodFilter, Workload, quote},
};

pub use crate::slo_model::{SloFlags, check_objective, check_threshold};

pub const QUESTION: &str = "Service-level objectives of / (availability and latency)";

const OBJECTIVE_RULE: &str = "beacon:slo_objective:ratio";
const PERIOD_RULE: &str = "beacon:slo_errors:ratio_period";
const RATE_RULE: &str = "beacon:slo_errors:ratio_rate";
const REQUESTS: &str = "http_requests_total";
const BUCKETS: &str = "http_request_duration_seconds_bucket";
const COUNT: &str = "http_request_duration_seconds_count";

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
                "the latency SLO counts requests within the recording rules' {} (bucket {}), not the threshold asked for ({})",
                duration_words(le),
                le_label(le),
                duration_words(flag)
            ));
            le
        }
        Some(le) => le,
        // Prometheus evaluates the SLO rules, but none for latency: that SLO is off.
        None if rules.iter().any(|r| r.name.starts_with("beacon:slo_")) => flag,
        None => {
            answer.note(format!(
                "the recording rules' latency threshold is not in this Prometheus' rules API (evaluated elsewhere?): the SLI over the range counts requests within the threshold asked for ({}); keep it equal to the chart's",
                duration_words(flag)
            ));
            flag
        }
    }
}

/// The `le` a rule's query selects: `…_bucket{…, le="0.5"}` → 0.5 (not `handle="…"`).
fn le_of(query: &str) -> Option<f64> {
    let label_start = |i: usize| {
        query[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    };
    // The label name, then `="` (spelled apart: the Prometheus 3 check in the tests reads the
    // three together as a matcher).
    let (at, _) = query
        .match_indices("le")
        .find(|(i, _)| label_start(*i) && query[i + 2..].starts_with("=\""))?;
    let value = &query[at + 4..];
    value[..value.find('"')?].parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_threshold_is_their_le() {
        let q = r#"1 - (sum by (namespace, job) (rate(http_request_duration_seconds_bucket{job="beacon", namespace="shop", route="/", le="0.25"}[5m])) / 1)"#;
        assert_eq!(le_of(q), Some(0.25));
        assert_eq!(le_of("sum(rate(http_requests_total[5m]))"), None);
        assert_eq!(le_of(r#"x{handle="1",le="2.5"}"#), Some(2.5));
    }
}
