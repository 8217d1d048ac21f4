//! Question 1: CPU and memory of the workload's pods — per pod and in total; current, average
//! and maximum over the range.

use serde::Serialize;

use super::{CONTAINER_FILTER, Ctx, Keyed, to_series};
use crate::{
    model::{Answer, Chart, Stats, Unit},
    target::{PodFilter, Workload},
};

pub const QUESTION: &str = "CPU and memory of the workload (per pod and total)";

/// kube-prometheus' recording rule: the same rate over 5m with the same container filters.
const CPU_RULE: &str = "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m";
const CPU_RAW: &str = "container_cpu_usage_seconds_total";
const MEMORY: &str = "container_memory_working_set_bytes";

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadUsage {
    pub workload: Workload,
    pub pods: Vec<PodUsage>,
    /// Cores.
    pub total_cpu: Stats,
    /// Bytes.
    pub total_memory: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodUsage {
    pub pod: String,
    /// Cores.
    pub cpu: Stats,
    /// Bytes.
    pub memory: Stats,
}

/// The per-pod CPU expression: the recording rule when it exists and the window is its 5m,
/// else the raw cAdvisor counter. `extra` narrows the pods (`,pod=~…`), `join` filters them.
pub fn cpu_per_pod(ctx: &Ctx, extra: &str, join: &str) -> String {
    let ns = ctx.ns();
    if ctx.range.rate_window == 300.0 && ctx.catalogue.has(CPU_RULE) {
        format!("sum by (pod) ({CPU_RULE}{{namespace={ns}{extra}}}{join})")
    } else {
        format!(
            "sum by (pod) (rate({CPU_RAW}{{namespace={ns}{extra},{CONTAINER_FILTER}}}[{}]){join})",
            ctx.range.window()
        )
    }
}

pub fn memory_per_pod(ctx: &Ctx, filter: &PodFilter) -> String {
    format!(
        "sum by (pod) ({MEMORY}{{namespace={}{},{CONTAINER_FILTER}}}{})",
        ctx.ns(),
        filter.matchers,
        filter.join
    )
}

/// The total is its own query (not a client-side sum) so the PromQL shown is what a Grafana
/// panel would plot.
fn total(per_pod: &str) -> String {
    let inner = per_pod.strip_prefix("sum by (pod) ").unwrap_or(per_pod);
    format!("sum {inner}")
}

pub async fn answer(ctx: &Ctx, workload: &Workload) -> Answer<WorkloadUsage> {
    let mut answer = Answer::new(
        QUESTION,
        WorkloadUsage {
            workload: workload.clone(),
            pods: Vec::new(),
            total_cpu: Stats::default(),
            total_memory: Stats::default(),
        },
    );
    let filter = match workload.filter(&ctx.namespace) {
        Ok(f) => f,
        Err(e) => {
            answer.note(e.to_string());
            return answer;
        }
    };
    let cpu_q = answer.uses(
        "CPU cores per pod",
        cpu_per_pod(ctx, &filter.matchers, &filter.join),
    );
    let cpu_total_q = answer.uses("CPU cores, total", total(&cpu_q));
    let mem_q = answer.uses("memory working set per pod", memory_per_pod(ctx, &filter));
    let mem_total_q = answer.uses("memory working set, total", total(&mem_q));

    let (cpu, cpu_total, mem, mem_total) = tokio::join!(
        ctx.range_by(&cpu_q, "pod"),
        ctx.range_by(&cpu_total_q, "pod"),
        ctx.range_by(&mem_q, "pod"),
        ctx.range_by(&mem_total_q, "pod"),
    );
    let (cpu, cpu_total) = (answer.take(cpu), answer.take(cpu_total));
    let (mem, mem_total) = (answer.take(mem), answer.take(mem_total));

    if cpu.is_empty() {
        ctx.explain_empty_cadvisor(&mut answer, CPU_RAW, &workload.describe())
            .await;
    }
    if mem.is_empty() && !cpu.is_empty() {
        ctx.explain_empty_cadvisor(&mut answer, MEMORY, &workload.describe())
            .await;
    }
    let first = |rows: &[Keyed]| rows.first().map(|r| r.stats).unwrap_or_default();
    answer.data.total_cpu = first(&cpu_total);
    answer.data.total_memory = first(&mem_total);

    let mut pods: Vec<String> = cpu.iter().chain(&mem).map(|r| r.key.clone()).collect();
    pods.sort();
    pods.dedup();
    let stats_of = |rows: &[Keyed], pod: &str| {
        rows.iter()
            .find(|r| r.key == pod)
            .map(|r| r.stats)
            .unwrap_or_default()
    };
    answer.data.pods = pods
        .iter()
        .map(|pod| PodUsage {
            pod: pod.clone(),
            cpu: stats_of(&cpu, pod),
            memory: stats_of(&mem, pod),
        })
        .collect();

    if !cpu.is_empty() {
        answer.charts.push(Chart {
            id: "q1-cpu".into(),
            title: format!("CPU of {} (cores)", workload.describe()),
            unit: Unit::Cores,
            series: to_series(&cpu),
        });
    }
    if !mem.is_empty() {
        answer.charts.push(Chart {
            id: "q1-memory".into(),
            title: format!("Memory working set of {}", workload.describe()),
            unit: Unit::Bytes,
            series: to_series(&mem),
        });
    }
    answer
}
