//! Section 7: the SLOs of `/`, laid out as the other sections are.

use super::sections::{self, Section, Table};
use crate::{
    Report,
    render::format::{self, DASH},
    slo_model::{BudgetOver, BurnAlert, ObjectiveFrom, Origin, PAIRS, Slo, SloKind},
};

pub fn section(report: &Report) -> Section {
    let a = &report.slo;
    let mut s = sections::section(7, a, "Service-level objectives of /".into());
    if a.data.is_empty() {
        return s;
    }
    s.findings.push(source(&a.data));
    s.findings.extend(a.data.iter().map(finding));
    s.tables.push(objectives(&a.data));
    if a.data.iter().any(|o| !o.alerts.is_empty()) {
        s.tables.push(burn_rates(&a.data));
    } else {
        s.tables.push(burn_windows(&a.data));
    }
    s
}

/// One row per window read, for windows the standard alert pairs do not cover (the demo's).
fn burn_windows(slos: &[Slo]) -> Table {
    let mut header = vec![("WINDOW", false)];
    header.extend(slos.iter().map(|o| (burn_header(o), true)));
    let mut t = Table::new(Some("burn rates now: bad share ÷ (1 − objective)"), &header);
    let mut windows: Vec<&str> = Vec::new();
    for b in slos.iter().flat_map(|o| &o.burn_rates) {
        if !windows.contains(&b.window.as_str()) {
            windows.push(&b.window);
        }
    }
    for w in windows {
        let mut row = vec![w.to_owned()];
        for o in slos {
            let b = o.burn_rates.iter().find(|b| b.window == w);
            row.push(burn(b.and_then(|b| b.burn_rate)));
        }
        t.rows.push(row);
    }
    t
}

fn burn_header(o: &Slo) -> &'static str {
    match o.slo {
        SloKind::Availability => "AVAILABILITY BURN",
        SloKind::Latency => "LATENCY BURN",
    }
}

fn name(o: &Slo) -> String {
    match o.slo {
        SloKind::Availability => "availability (not 5xx)".to_owned(),
        SloKind::Latency => format!(
            "latency (within {})",
            crate::slo_model::duration_words(o.threshold_seconds.unwrap_or_default())
        ),
    }
}

/// `99.9%`, `99.95%`: an objective as it was written.
pub fn objective(ratio: f64) -> String {
    let text = format!("{:.4}", 100.0 * ratio);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn percent3(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| DASH.to_owned(), |v| format!("{:.3}%", 100.0 * v))
}

fn burn(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| DASH.to_owned(), |v| format!("{v:.2}×"))
}

/// Which alert pairs' conditions hold now, in words.
fn finding(o: &Slo) -> String {
    let held: Vec<String> = o
        .alerts
        .iter()
        .filter(|a| a.exceeded)
        .map(|a| {
            format!(
                "{} ({}× over {} and {})",
                a.pair.severity, a.pair.factor, a.pair.long, a.pair.short
            )
        })
        .collect();
    let name = name(o);
    if held.is_empty() {
        format!("{name}: no burn-rate alert condition holds at the range's end")
    } else {
        format!(
            "{name}: burning its budget too fast at the range's end: {}",
            held.join("; ")
        )
    }
}

fn objectives(slos: &[Slo]) -> Table {
    let mut t = Table::new(
        Some("objective, SLI over the range, error budget consumed"),
        &[
            ("SLO", false),
            ("OBJECTIVE", true),
            ("SLI", true),
            ("REQUESTS", true),
            ("BAD", true),
            ("BUDGET USED", true),
            ("OVER", false),
        ],
    );
    let count = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or_else(|| DASH.to_owned(), |v| format::count(v.round() as usize))
    };
    for o in slos {
        let bad = o.range.requests.zip(o.range.good).map(|(r, g)| r - g);
        t.rows.push(vec![
            kind(o).to_owned(),
            format!("{} / {}", objective(o.objective), o.period),
            percent3(o.range.sli),
            count(o.range.requests),
            count(bad),
            o.budget
                .consumed
                .map_or_else(|| DASH.to_owned(), |v| format!("{:.1}%", 100.0 * v)),
            match o.budget.over {
                BudgetOver::Period => format!("period {}", o.budget.window),
                BudgetOver::Range => format!("range {}", o.budget.window),
            },
        ]);
    }
    t
}

fn kind(o: &Slo) -> &'static str {
    match o.slo {
        SloKind::Availability => "availability",
        SloKind::Latency => "latency",
    }
}

/// Where the figures come from, once for the section when both SLOs agree.
fn source(slos: &[Slo]) -> String {
    let from = |o: &Slo| match (o.budget.from, o.objective_from) {
        (Origin::RecordingRules, _) => format!(
            "the recording rules beacon:slo_* of job {}",
            o.job.as_deref().unwrap_or(DASH)
        ),
        (Origin::RawCounters, ObjectiveFrom::Flag) => {
            "the raw counters, with the objective from its flag".to_owned()
        }
        (Origin::RawCounters, _) => {
            "the raw counters, with the chart's default objective".to_owned()
        }
    };
    let all: Vec<String> = slos.iter().map(from).collect();
    if all.windows(2).all(|w| w[0] == w[1]) {
        return format!("Source: {}", all[0]);
    }
    let each: Vec<String> = slos
        .iter()
        .zip(&all)
        .map(|(o, f)| format!("{} from {f}", kind(o)))
        .collect();
    format!("Source: {}", each.join("; "))
}

/// One row per alert pair: each SLO's burn rates over its two windows, ▲ when both are above
/// the factor.
fn burn_rates(slos: &[Slo]) -> Table {
    let mut header = vec![("ALERT", false), ("WINDOWS", false)];
    header.extend(slos.iter().map(|o| (burn_header(o), true)));
    let mut t = Table::new(
        Some(
            "burn rates now: bad share ÷ (1 − objective), long & short window (▲ both above the factor)",
        ),
        &header,
    );
    for p in PAIRS.iter() {
        let held = |o: &Slo| {
            o.alerts
                .iter()
                .any(|a| a.pair.long == p.long && a.pair.short == p.short)
        };
        if !slos.iter().any(held) {
            continue;
        }
        let mut row = vec![
            format!("{} {}×", p.severity, p.factor),
            format!("{} & {}", p.long, p.short),
        ];
        for o in slos {
            let same = |a: &&BurnAlert| a.pair.long == p.long && a.pair.short == p.short;
            let Some(a) = o.alerts.iter().find(same) else {
                row.push(DASH.to_owned());
                continue;
            };
            let mark = if a.exceeded { " ▲" } else { "" };
            row.push(format!(
                "{} & {}{mark}",
                burn(a.long_burn_rate),
                burn(a.short_burn_rate)
            ));
        }
        t.rows.push(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo_model::{Budget, BurnRate, RangeSli, alerts};

    fn slo(windows: &[(&str, f64)]) -> Slo {
        let burn_rates: Vec<BurnRate> = windows
            .iter()
            .map(|(w, b)| BurnRate {
                window: (*w).to_owned(),
                error_ratio: Some(b / 1000.0),
                burn_rate: Some(*b),
                from: Origin::RecordingRules,
            })
            .collect();
        Slo {
            slo: SloKind::Availability,
            description: String::new(),
            objective: 0.999,
            objective_from: ObjectiveFrom::RecordingRule,
            period: "1h".into(),
            threshold_seconds: None,
            job: Some("beacon".into()),
            range: RangeSli::default(),
            budget: Budget {
                consumed: Some(2.5),
                over: BudgetOver::Period,
                window: "1h".into(),
                from: Origin::RecordingRules,
            },
            alerts: alerts(&burn_rates),
            burn_rates,
        }
    }

    #[test]
    fn windows_outside_the_standard_pairs_are_listed_one_per_row() {
        // The demo's windows: no standard pair is complete.
        let demo = [slo(&[("10s", 300.0), ("1m", 120.0), ("15m", 9.0)])];
        assert!(demo[0].alerts.is_empty());
        let t = burn_windows(&demo);
        assert_eq!(t.header, ["WINDOW", "AVAILABILITY BURN"]);
        assert_eq!(t.rows[0], ["10s", "300.00×"]);
        assert_eq!(t.rows.len(), 3);
        // Standard windows: one row per pair whose windows were read, ▲ where it holds.
        let t = burn_rates(&[slo(&[("5m", 20.0), ("1h", 15.0), ("30m", 1.0)])]);
        assert_eq!(t.rows, [["page 14.4×", "1h & 5m", "15.00× & 20.00× ▲"]]);
    }

    #[test]
    fn objectives_read_as_written() {
        assert_eq!(objective(0.999), "99.9%");
        assert_eq!(objective(0.99), "99%");
        assert_eq!(objective(0.9995), "99.95%");
    }
}
