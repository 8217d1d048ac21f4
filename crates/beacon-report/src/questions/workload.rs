//! Question 1: CPU and memory of the workload's pods — per pod and in total; current, average
//! and maximum over the range.

use serde::Serialize;

use std::collections::BTreeMap;

use super::{CPU_RAW, Ctx, Keyed, MEMORY, PodScope, PodSource, by_label, highest};
use crate::{
    model::{Answer, Chart, Stats, Unit},
    workload::{PodFilter, Workload},
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
    /// The pod's containers' requests and limits summed (kube-state-metrics, as of the range's
    /// end); absent when no container sets one.
    pub resources: Resources,
    /// `cpu above request`, `memory under a quarter of request`…: by the average over the range.
    pub flags: Vec<String>,
}

/// Cores and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Resources {
    pub cpu_request: Option<f64>,
    pub cpu_limit: Option<f64>,
    pub memory_request: Option<f64>,
    pub memory_limit: Option<f64>,
}

const REQUESTS: &str = "kube_pod_container_resource_requests";
const LIMITS: &str = "kube_pod_container_resource_limits";

/// A pod's average use against its request: above it (the scheduler placed it for less than it
/// uses) or under a quarter of it (it reserves four times what it uses).
pub fn flags(cpu: &Stats, memory: &Stats, r: &Resources) -> Vec<String> {
    let mut out = Vec::new();
    for (what, avg, request) in [
        ("cpu", cpu.avg, r.cpu_request),
        ("memory", memory.avg, r.memory_request),
    ] {
        match (avg, request) {
            (Some(avg), Some(req)) if req > 0.0 && avg > req => {
                out.push(format!("{what} above request"));
            }
            (Some(avg), Some(req)) if req > 0.0 && avg < req / 4.0 => {
                out.push(format!("{what} under a quarter of request"));
            }
            _ => {}
        }
    }
    out
}

/// Each pod's requests and limits. Several kube-state-metrics replicas export each container's
/// series: `max by (namespace, pod, container)` takes it once before the pod's sum.
async fn resources(
    ctx: &Ctx,
    answer: &mut Answer<WorkloadUsage>,
    filter: &PodFilter,
) -> BTreeMap<String, Resources> {
    if !ctx.catalogue.has(REQUESTS) && !ctx.catalogue.has(LIMITS) {
        answer.note(format!(
            "no requests or limits: {}",
            ctx.catalogue
                .explain_absent(REQUESTS, crate::catalogue::Source::KubeStateMetrics)
        ));
        return BTreeMap::new();
    }
    let expr = |metric: &str, resource: &str| {
        format!(
            "sum by (pod) (max by (namespace, pod, container) ({metric}{{namespace={},resource=\"{resource}\"{}}}){})",
            ctx.ns(),
            filter.matchers,
            filter.join
        )
    };
    let queries = [
        answer.uses("CPU requests per pod", expr(REQUESTS, "cpu")),
        answer.uses("CPU limits per pod", expr(LIMITS, "cpu")),
        answer.uses("memory requests per pod", expr(REQUESTS, "memory")),
        answer.uses("memory limits per pod", expr(LIMITS, "memory")),
    ];
    let results = futures_util::future::join_all(queries.iter().map(|q| ctx.instant(q))).await;
    let mut maps = results
        .into_iter()
        .map(|r| by_label(&answer.take(r), "pod"));
    let mut next = || maps.next().unwrap_or_default();
    let (cpu_req, cpu_lim, mem_req, mem_lim) = (next(), next(), next(), next());
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for (map, set) in [
        (
            &cpu_req,
            (|r: &mut Resources, v| r.cpu_request = Some(v)) as fn(&mut Resources, f64),
        ),
        (&cpu_lim, |r, v| r.cpu_limit = Some(v)),
        (&mem_req, |r, v| r.memory_request = Some(v)),
        (&mem_lim, |r, v| r.memory_limit = Some(v)),
    ] {
        for (pod, value) in map {
            set(out.entry(pod.clone()).or_default(), *value);
        }
    }
    out
}

/// The per-pod CPU expression: the recording rule when it exists, the window is its 5m and
/// containers are named, else the raw cAdvisor counter. `extra` narrows the pods (`,pod=~…`),
/// `join` filters them.
pub fn cpu_per_pod(ctx: &Ctx, extra: &str, join: &str) -> String {
    cpu_in(ctx, &format!("namespace={}", ctx.ns()), "pod", extra, join)
}

/// [`cpu_per_pod`] over a ranking's scope: the namespace, or all of them.
pub fn cpu_per_pod_in(ctx: &Ctx, scope: &PodScope) -> String {
    cpu_in(ctx, &scope.matcher, scope.by, "", "")
}

fn cpu_in(ctx: &Ctx, scope: &str, by: &str, extra: &str, join: &str) -> String {
    let selector = cpu_selector(ctx, scope, extra);
    if uses_cpu_rule(ctx) {
        format!("sum by ({by}) ({selector}{join})")
    } else {
        format!(
            "sum by ({by}) (rate({selector}[{}]){join})",
            ctx.range.window()
        )
    }
}

fn uses_cpu_rule(ctx: &Ctx) -> bool {
    ctx.cadvisor.cpu == PodSource::Containers
        && ctx.range.rate_window == 300.0
        && ctx.catalogue.has(CPU_RULE)
}

/// The series a per-pod CPU query reads: the rule's or cAdvisor's.
fn cpu_selector(ctx: &Ctx, scope: &str, extra: &str) -> String {
    if uses_cpu_rule(ctx) {
        format!("{CPU_RULE}{{{scope}{extra},{RULE_CONTAINERS}}}")
    } else {
        format!(
            "{CPU_RAW}{{{scope}{extra},{}}}",
            ctx.cadvisor.cpu.matchers()
        )
    }
}

/// Counts the series [`cpu_per_pod`] reads, for its step budget ([`Ctx::range`]).
pub fn cpu_series_count(ctx: &Ctx, extra: &str) -> String {
    format!(
        "count({})",
        cpu_selector(ctx, &format!("namespace={}", ctx.ns()), extra)
    )
}

fn memory_selector(ctx: &Ctx, filter: &PodFilter) -> String {
    format!(
        "{MEMORY}{{namespace={}{},{}}}",
        ctx.ns(),
        filter.matchers,
        ctx.cadvisor.memory.matchers()
    )
}

pub fn memory_per_pod(ctx: &Ctx, filter: &PodFilter) -> String {
    format!(
        "sum by (pod) ({}{})",
        memory_selector(ctx, filter),
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

/// One row per pod seen in either query, with its requests and what stands out.
fn pod_rows(
    cpu: &[Keyed],
    mem: &[Keyed],
    resources: &BTreeMap<String, Resources>,
) -> Vec<PodUsage> {
    let mut pods: Vec<String> = cpu.iter().chain(mem).map(|r| r.key.clone()).collect();
    pods.sort();
    pods.dedup();
    let stats_of = |rows: &[Keyed], pod: &str| {
        rows.iter()
            .find(|r| r.key == pod)
            .map(|r| r.stats)
            .unwrap_or_default()
    };
    pods.iter()
        .map(|pod| {
            let (cpu, memory) = (stats_of(cpu, pod), stats_of(mem, pod));
            let resources = resources.get(pod).copied().unwrap_or_default();
            PodUsage {
                pod: pod.clone(),
                flags: flags(&cpu, &memory, &resources),
                cpu,
                memory,
                resources,
            }
        })
        .collect()
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
    let cpu_count = cpu_series_count(ctx, &filter.matchers);
    let mem_count = format!("count({})", memory_selector(ctx, &filter));
    let mem_total_q = answer.uses("memory working set, total", total(&mem_q));

    let (cpu, cpu_total, mem, mem_total) = tokio::join!(
        ctx.range_keyed(&cpu_q, &cpu_count, "pod"),
        ctx.range_keyed(&cpu_total_q, &cpu_count, "pod"),
        ctx.range_keyed(&mem_q, &mem_count, "pod"),
        ctx.range_keyed(&mem_total_q, &mem_count, "pod"),
    );
    // The same series, so the same step: the note once per metric.
    let (cpu, cpu_total) = (
        answer.take_stepped(cpu),
        answer.take(cpu_total.map(|s| s.rows)),
    );
    let (mem, mem_total) = (
        answer.take_stepped(mem),
        answer.take(mem_total.map(|s| s.rows)),
    );
    let resources = if cpu.is_empty() && mem.is_empty() {
        BTreeMap::new()
    } else {
        resources(ctx, &mut answer, &filter).await
    };

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

    answer.data.pods = pod_rows(&cpu, &mem, &resources);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn avg(v: f64) -> Stats {
        Stats {
            avg: Some(v),
            ..Stats::default()
        }
    }

    #[test]
    fn flags_use_above_the_request_and_under_a_quarter_of_it() {
        let r = Resources {
            cpu_request: Some(0.4),
            memory_request: Some(100.0),
            ..Resources::default()
        };
        assert_eq!(
            flags(&avg(0.5), &avg(20.0), &r),
            ["cpu above request", "memory under a quarter of request"]
        );
        // Exactly a quarter, exactly the request: neither.
        assert!(flags(&avg(0.1), &avg(100.0), &r).is_empty());
        // No request, or no usage: nothing to compare.
        assert!(flags(&avg(9.0), &Stats::default(), &Resources::default()).is_empty());
    }
}
