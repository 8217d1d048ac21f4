//! Question 1: CPU and memory of the workload's pods — per pod and in total; current, average
//! and maximum over the range.

use serde::Serialize;

use super::{CPU_RAW, Ctx, Keyed, MEMORY, PodSource, highest};
use crate::{
    model::{Answer, Chart, Stats, Unit},
    target::{PodFilter, Workload},
};

pub const QUESTION: &str = "CPU and memory of the workload (per pod and total)";

/// kube-prometheus' recording rule: a 5m rate per (namespace, pod, container, node) of every
/// series with `image!=""` — it filters nothing else, so the sandbox (pause) container, which
/// has an image but no container name, is a row of its own (`container=""`).
const CPU_RULE: &str = "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m";
/// The rule's rows that are the pod's own containers: the same set as the raw path's
/// `CONTAINER_FILTER` (the rule already requires an image), so both paths agree.
const RULE_CONTAINERS: &str = r#"container!="",container!="POD""#;

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadUsage {
    pub workload: Workload,
    /// Which cAdvisor series CPU and memory sum: the containers, or the pod-level cgroups.
    pub cpu_source: PodSource,
    pub memory_source: PodSource,
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

/// The per-pod CPU expression: the recording rule when it exists, the window is its 5m and
/// containers are named, else the raw cAdvisor counter. `extra` narrows the pods (`,pod=~…`),
/// `join` filters them.
pub fn cpu_per_pod(ctx: &Ctx, extra: &str, join: &str) -> String {
    let ns = ctx.ns();
    let source = ctx.cadvisor.cpu;
    if source == PodSource::Containers
        && ctx.range.rate_window == 300.0
        && ctx.catalogue.has(CPU_RULE)
    {
        format!("sum by (pod) ({CPU_RULE}{{namespace={ns}{extra},{RULE_CONTAINERS}}}{join})")
    } else {
        format!(
            "sum by (pod) (rate({CPU_RAW}{{namespace={ns}{extra},{}}}[{}]){join})",
            source.matchers(),
            ctx.range.window()
        )
    }
}

pub fn memory_per_pod(ctx: &Ctx, filter: &PodFilter) -> String {
    format!(
        "sum by (pod) ({MEMORY}{{namespace={}{},{}}}{})",
        ctx.ns(),
        filter.matchers,
        ctx.cadvisor.memory.matchers(),
        filter.join
    )
}

/// Says, on the answer, that figures come from the pod-level cgroups and why.
pub fn note_pod_cgroup_source<T>(answer: &mut Answer<T>, ctx: &Ctx, metric: &str) {
    answer.note(format!(
        "{metric}'s per-container series in namespace {} have empty container/image labels (the Docker runtime, cri-dockerd: minikube's default), so these figures are each pod's pod-level cgroup series (id …/pod<uid>), which also count the pod's sandbox (pause) container",
        ctx.namespace
    ));
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
            cpu_source: ctx.cadvisor.cpu,
            memory_source: ctx.cadvisor.memory,
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

    if ctx.cadvisor.cpu == PodSource::PodCgroup {
        note_pod_cgroup_source(&mut answer, ctx, CPU_RAW);
    }
    if ctx.cadvisor.memory == PodSource::PodCgroup {
        note_pod_cgroup_source(&mut answer, ctx, MEMORY);
    }
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
        let (series, remainder) = highest(&cpu, "pods", "average CPU");
        answer.charts.push(Chart {
            id: "q1-cpu".into(),
            title: format!("CPU of {} (cores)", workload.describe()),
            unit: Unit::Cores,
            series,
            remainder,
        });
    }
    if !mem.is_empty() {
        let (series, remainder) = highest(&mem, "pods", "average memory");
        answer.charts.push(Chart {
            id: "q1-memory".into(),
            title: format!("Memory working set of {}", workload.describe()),
            unit: Unit::Bytes,
            series,
            remainder,
        });
    }
    answer
}
