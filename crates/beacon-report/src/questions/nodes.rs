//! Question 3: each node's memory use (% and MiB) and CPU cores, from node-exporter.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Ctx, by_label, to_series};
use crate::{
    catalogue::Source,
    model::{Answer, Chart, Stats, Unit},
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
    let w = ctx.range.window();
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
    let cores_q = answer.uses(
        "CPU cores",
        format!(r#"count by (instance) (count by (instance, cpu) ({CPU_SECONDS}{{mode="idle"}}))"#),
    );
    // A ratio of sums over the same series: a restart's partial windows and a young series'
    // short ones shrink idle and total alike, where an average of per-CPU idle rates would
    // count the missing part of the window as busy.
    let cpu_q = answer.uses(
        "CPU used %",
        format!(
            r#"100 * (1 - sum by (instance) (rate({CPU_SECONDS}{{mode="idle"}}[{w}])) / sum by (instance) (rate({CPU_SECONDS}[{w}])))"#
        ),
    );
    let old_q = format!(
        "group by (instance) ({MEM_TOTAL}) unless on (instance) group by (instance) ({MEM_AVAILABLE})"
    );
    let names_q = "node_uname_info";
    let (pct, used, total, cores, cpu, names, old) = tokio::join!(
        ctx.range_by(&pct_q, "instance"),
        ctx.range_by(&used_q, "instance"),
        ctx.instant(&total_q),
        ctx.instant(&cores_q),
        ctx.range_by(&cpu_q, "instance"),
        ctx.instant(names_q),
        ctx.instant(&old_q),
    );
    let old_kernel: BTreeSet<String> = by_label(&answer.take(old), "instance")
        .into_keys()
        .collect();
    let (pct, used, cpu) = (answer.take(pct), answer.take(used), answer.take(cpu));
    let total = by_label(&answer.take(total), "instance");
    let cores = by_label(&answer.take(cores), "instance");
    // node_uname_info is optional (only a friendlier name), so its failure is not noted.
    let names: BTreeMap<String, String> = names
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            Some((
                s.labels.get("instance")?.clone(),
                s.labels.get("nodename")?.clone(),
            ))
        })
        .collect();

    let mut instances: Vec<&String> = total.keys().chain(cores.keys()).collect();
    instances.sort();
    instances.dedup();
    let stats = |rows: &[super::Keyed], i: &str| {
        rows.iter()
            .find(|r| r.key == i)
            .map(|r| r.stats)
            .unwrap_or_default()
    };
    answer.data = instances
        .into_iter()
        .map(|i| NodeUsage {
            instance: i.clone(),
            nodename: names.get(i).cloned(),
            cores: cores.get(i).copied(),
            memory_total_bytes: total.get(i).copied(),
            memory_used_bytes: stats(&used, i),
            memory_used_percent: stats(&pct, i),
            memory_source: if old_kernel.contains(i) {
                FALLBACK
            } else {
                "MemAvailable"
            },
            cpu_used_percent: stats(&cpu, i),
        })
        .collect();
    if !old_kernel.is_empty() {
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
    if answer.data.is_empty() && answer.notes.is_empty() {
        answer.note(format!(
            "{MEM_TOTAL} and {CPU_SECONDS} had samples in the range but none at its end: node-exporter stopped being scraped"
        ));
    }
    let rename = |rows: &[super::Keyed]| {
        let mut series = to_series(rows);
        for s in &mut series {
            if let Some(n) = names.get(&s.name) {
                s.name = n.clone();
            }
        }
        series
    };
    if !pct.is_empty() {
        answer.charts.push(Chart {
            id: "q3-node-memory".into(),
            title: "Node memory used (%)".into(),
            unit: Unit::Percent,
            series: rename(&pct),
        });
    }
    if !cpu.is_empty() {
        answer.charts.push(Chart {
            id: "q3-node-cpu".into(),
            title: "Node CPU used (% of all cores)".into(),
            unit: Unit::Percent,
            series: rename(&cpu),
        });
    }
    answer
}
