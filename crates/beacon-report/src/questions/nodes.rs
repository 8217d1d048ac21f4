//! Question 3: each node's memory use (% and MiB) and CPU cores, from node-exporter.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Ctx, Keyed, by_label, highest, only};
use crate::{
    catalogue::Source,
    model::{Answer, CHART_LINES, Chart, Stats, Unit, extremes},
};

pub const QUESTION: &str = "Node memory used (% and MiB) and CPU cores";

const MEM_TOTAL: &str = "node_memory_MemTotal_bytes";
const MEM_AVAILABLE: &str = "node_memory_MemAvailable_bytes";
const CPU_SECONDS: &str = "node_cpu_seconds_total";
/// Linux added MemAvailable in 3.14; before it, node-mixin's estimate of the same.
const FALLBACK: &str = "MemFree + Buffers + Cached + SReclaimable";
/// Per node: MemAvailable where the kernel has it, else the fallback (`or` matches per
/// series, so one old node does not change the others).
const AVAILABLE: &str = "(node_memory_MemAvailable_bytes or (node_memory_MemFree_bytes + node_memory_Buffers_bytes + node_memory_Cached_bytes + node_memory_SReclaimable_bytes))";

#[derive(Debug, Clone, Serialize)]
pub struct NodeUsage {
    /// node-exporter's target, e.g. `10.0.0.1:9100`.
    pub instance: String,
    /// The host name from `node_uname_info`, when exported.
    pub nodename: Option<String>,
    pub cores: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    /// Bytes in use: MemTotal − available.
    pub memory_used_bytes: Stats,
    pub memory_used_percent: Stats,
    /// What "available" is on this node: `MemAvailable`, or the fallback's formula.
    pub memory_source: &'static str,
    /// Busy share of all cores, 0–100.
    pub cpu_used_percent: Stats,
}

/// kube-prometheus-stack's node rules: busy share of each node's CPUs (0–1, over 5m, with
/// iowait and steal counted as idle) and its CPU count. One series per node instead of one per
/// CPU and mode.
const CPU_RULE: &str = "instance:node_cpu_utilisation:rate5m";
const CORES_RULE: &str = "instance:node_num_cpu:sum";

pub async fn answer(ctx: &Ctx) -> Answer<Vec<NodeUsage>> {
    let mut answer = Answer::new(QUESTION, Vec::new());
    // MemAvailable is the kernel's, not node-exporter's: its absence alone is no scrape problem.
    let missing: Vec<&str> = [MEM_TOTAL, CPU_SECONDS]
        .into_iter()
        .filter(|m| !ctx.catalogue.has(m))
        .collect();
    if !missing.is_empty() {
        answer.note(
            ctx.catalogue
                .explain_absent(&missing.join(", "), Source::NodeExporter),
        );
    }
    if missing.len() == 2 {
        return answer;
    }
    let memory = memory(ctx, &mut answer).await;
    let mut instances: Vec<&String> = memory.total.keys().chain(memory.cores.keys()).collect();
    instances.sort();
    instances.dedup();
    let stats = |rows: &[Keyed], i: &str| {
        rows.iter()
            .find(|r| r.key == i)
            .map(|r| r.stats)
            .unwrap_or_default()
    };
    let names = &memory.names;
    answer.data = instances
        .into_iter()
        .map(|i| NodeUsage {
            instance: i.clone(),
            nodename: names.get(i).cloned(),
            cores: memory.cores.get(i).copied(),
            memory_total_bytes: memory.total.get(i).copied(),
            memory_used_bytes: stats(&memory.used, i),
            memory_used_percent: stats(&memory.pct, i),
            memory_source: if memory.old_kernel.contains(i) {
                FALLBACK
            } else {
                "MemAvailable"
            },
            cpu_used_percent: Stats::default(),
        })
        .collect();
    // Fullest first: what the table leads with.
    let avg = |s: &Stats| s.avg.unwrap_or(0.0);
    answer
        .data
        .sort_by(|a, b| avg(&b.memory_used_percent).total_cmp(&avg(&a.memory_used_percent)));
    note_old_kernels(&mut answer, &memory.old_kernel, names);
    if answer.data.is_empty() && answer.notes.is_empty() {
        answer.note(format!(
            "{MEM_TOTAL} and {CPU_SECONDS} had samples in the range but none at its end: node-exporter stopped being scraped"
        ));
    }
    let cpu = cpu(ctx, &mut answer).await;
    for n in &mut answer.data {
        n.cpu_used_percent = stats(&cpu, &n.instance);
    }
    let name = |i: &str| names.get(i).cloned().unwrap_or_else(|| i.to_owned());
    if !memory.pct.is_empty() {
        let chart = fullest(
            "q3-node-memory",
            "Node memory used (%)",
            "average memory used",
            &memory.pct,
            &name,
        );
        answer.charts.push(chart);
    }
    if !cpu.is_empty() {
        let chart = fullest(
            "q3-node-cpu",
            "Node CPU used (% of all cores)",
            "average CPU used",
            &cpu,
            &name,
        );
        answer.charts.push(chart);
    }
    answer
}

/// What the memory queries found, per instance.
struct Memory {
    pct: Vec<Keyed>,
    used: Vec<Keyed>,
    total: BTreeMap<String, f64>,
    cores: BTreeMap<String, f64>,
    names: BTreeMap<String, String>,
    old_kernel: BTreeSet<String>,
}

/// Memory and cores of every node: a few series per node, cheap to range.
async fn memory(ctx: &Ctx, answer: &mut Answer<Vec<NodeUsage>>) -> Memory {
    // Everything is aggregated by `instance` alone: when node-exporter's pod is replaced, its
    // series change `pod` (and the old ones linger for the lookback), so per-series arithmetic
    // would pair or average the wrong things.
    let pct_q = answer.uses(
        "memory used %",
        format!("100 * (1 - sum by (instance) ({AVAILABLE}) / sum by (instance) ({MEM_TOTAL}))"),
    );
    let used_q = answer.uses(
        "memory used bytes",
        format!("avg by (instance) ({MEM_TOTAL} - {AVAILABLE})"),
    );
    let total_q = answer.uses(
        "memory total bytes",
        format!("max by (instance) ({MEM_TOTAL})"),
    );
    let cores_q = if ctx.catalogue.has(CORES_RULE) {
        format!("max by (instance) ({CORES_RULE})")
    } else {
        format!(r#"count by (instance) (count by (instance, cpu) ({CPU_SECONDS}{{mode="idle"}}))"#)
    };
    let cores_q = answer.uses("CPU cores", cores_q);
    let old_q = format!(
        "group by (instance) ({MEM_TOTAL}) unless on (instance) group by (instance) ({MEM_AVAILABLE})"
    );
    // The series both memory ranges read, for the step budget.
    let memory_series = r#"count({__name__=~"node_memory_(MemTotal|MemAvailable|MemFree|Buffers|Cached|SReclaimable)_bytes"})"#;
    let (pct, used, total, cores, names, old) = tokio::join!(
        ctx.range_keyed(&pct_q, memory_series, "instance"),
        ctx.range_keyed(&used_q, memory_series, "instance"),
        ctx.instant(&total_q),
        ctx.instant(&cores_q),
        ctx.instant("node_uname_info"),
        ctx.instant(&old_q),
    );
    let old_kernel = by_label(&answer.take(old), "instance")
        .into_keys()
        .collect();
    // node_uname_info is optional (only a friendlier name), so its failure is not noted.
    let names = names
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            Some((
                s.labels.get("instance")?.clone(),
                s.labels.get("nodename")?.clone(),
            ))
        })
        .collect();
    Memory {
        pct: answer.take_stepped(pct),
        used: answer.take_stepped(used),
        total: by_label(&answer.take(total), "instance"),
        cores: by_label(&answer.take(cores), "instance"),
        names,
        old_kernel,
    }
}

fn note_old_kernels(
    answer: &mut Answer<Vec<NodeUsage>>,
    old_kernel: &BTreeSet<String>,
    names: &BTreeMap<String, String>,
) {
    if old_kernel.is_empty() {
        return;
    }
    let nodes: Vec<String> = old_kernel
        .iter()
        .map(|i| match names.get(i) {
            Some(n) => format!("{n} ({i})"),
            None => i.clone(),
        })
        .collect();
    answer.note(format!(
        "node-exporter is up but its kernel has no MemAvailable (Linux before 3.14) on {}: available memory there is {FALLBACK}, node-mixin's fallback",
        nodes.join(", ")
    ));
}

/// Busy share of each node's CPUs over the range. With kube-prometheus-stack's rule, one
/// series per node, ranged for every node. Without it, node-exporter has a series per CPU and
/// mode (25,600 for 200 sixteen-core nodes): every node's average and current value come from
/// instant queries, and only the nodes shown (the busiest, and the table's rows) are ranged.
async fn cpu(ctx: &Ctx, answer: &mut Answer<Vec<NodeUsage>>) -> Vec<Keyed> {
    if ctx.catalogue.has(CPU_RULE) && ctx.range.rate_window == 300.0 {
        let q = answer.uses(
            "CPU used %",
            format!("100 * avg by (instance) ({CPU_RULE})"),
        );
        let rows = ctx
            .range_keyed(&q, &format!("count({CPU_RULE})"), "instance")
            .await;
        return answer.take_stepped(rows);
    }
    if !ctx.catalogue.has(CPU_SECONDS) {
        return Vec::new();
    }
    // A ratio of sums over the same series: a restart's partial windows and a young series'
    // short ones shrink idle and total alike, where an average of per-CPU idle rates would
    // count the missing part of the window as busy.
    let busy = |matchers: &str, window: &str| {
        format!(
            r#"100 * (1 - sum by (instance) (rate({CPU_SECONDS}{{mode="idle"{matchers}}}[{window}])) / sum by (instance) (rate({CPU_SECONDS}{}[{window}])))"#,
            match matchers.trim_start_matches(',') {
                "" => String::new(),
                m => format!("{{{m}}}"),
            }
        )
    };
    let w = ctx.range.window();
    let avg_q = answer.uses(
        "average CPU used % over the range",
        busy("", &ctx.span_window()),
    );
    let now_q = answer.uses("CPU used %, now", busy("", &w));
    let (avg, now) = tokio::join!(ctx.instant(&avg_q), ctx.instant(&now_q));
    let (avg, now) = (
        by_label(&answer.take(avg), "instance"),
        by_label(&answer.take(now), "instance"),
    );
    let mut busiest: Vec<(&String, f64)> = avg.iter().map(|(i, v)| (i, *v)).collect();
    busiest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let fullest_memory = extremes(answer.data.len(), ctx.top, ctx.top);
    let mut shown: BTreeSet<&str> = busiest
        .iter()
        .take(CHART_LINES)
        .map(|b| b.0.as_str())
        .collect();
    shown.extend(
        fullest_memory
            .iter()
            .map(|&i| answer.data[i].instance.as_str()),
    );
    let mut ranged = Vec::new();
    if !shown.is_empty() {
        let shown: Vec<&str> = shown.into_iter().collect();
        let matcher = only("instance", &shown, avg.len());
        let q = answer.uses("CPU used % of the nodes shown", busy(&matcher, &w));
        let count = format!(
            "count({CPU_SECONDS}{{{}}})",
            matcher.trim_start_matches(',')
        );
        let rows = ctx.range_keyed(&q, &count, "instance").await;
        ranged = answer.take_stepped(rows);
    }
    avg.iter()
        .map(|(i, a)| match ranged.iter().find(|r| &r.key == i) {
            Some(r) => r.clone(),
            None => Keyed {
                key: i.clone(),
                stats: Stats {
                    current: now.get(i).copied(),
                    avg: Some(*a),
                    ..Stats::default()
                },
                points: Vec::new(),
            },
        })
        .collect()
}

/// The fullest nodes' lines (by their average), named by host name; the rest in words.
fn fullest(
    id: &str,
    title: &str,
    measure: &'static str,
    rows: &[Keyed],
    name: &dyn Fn(&str) -> String,
) -> Chart {
    let (mut series, remainder) = highest(rows, "nodes", measure);
    let drawn = series.len();
    // Without the recording rule only the nodes shown were ranged: the others have no points.
    series.retain(|s| !s.points.is_empty());
    for s in &mut series {
        s.name = name(&s.name);
    }
    let title = if drawn < rows.len() {
        format!("{title}: the {drawn} fullest of {} nodes", rows.len())
    } else {
        title.to_owned()
    };
    Chart {
        id: id.into(),
        title,
        unit: Unit::Percent,
        series,
        remainder,
    }
}
