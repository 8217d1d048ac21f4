//! Question 2: which pods in the namespace use the most and the least CPU — the full list,
//! ranked by average cores over the range.

use serde::Serialize;

use super::{
    CPU_RAW, Ctx, PodSource,
    workload::{cpu_per_pod_in, note_pod_cgroup_source},
};
use crate::model::{Answer, Chart, NamedSeries, Stats, Unit};

pub const QUESTION: &str = "Pods using the most and the least CPU in the namespace";

/// Lines drawn in the chart: the busiest pods (and the idlest, when there are more pods).
const CHART_TOP: usize = 8;
const CHART_BOTTOM: usize = 3;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuRanking {
    /// Which cAdvisor series the figures sum: the containers, or the pod-level cgroups.
    pub source: PodSource,
    /// Busiest first: by average cores, then current, then name.
    pub ranking: Vec<RankedPod>,
    pub most: Option<String>,
    pub least: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RankedPod {
    pub rank: usize,
    pub pod: String,
    /// Cores.
    pub cpu: Stats,
}

pub async fn answer(ctx: &Ctx) -> Answer<CpuRanking> {
    let mut answer = Answer::new(
        QUESTION,
        CpuRanking {
            source: ctx.cadvisor.cpu,
            ..CpuRanking::default()
        },
    );
    let scope = ctx.pod_scope();
    let query = answer.uses("CPU cores per pod", cpu_per_pod_in(ctx, &scope));
    if ctx.cadvisor.cpu == PodSource::PodCgroup {
        note_pod_cgroup_source(&mut answer, ctx, CPU_RAW);
    }
    let rows = ctx.range_by(&query, "pod").await;
    let mut rows = answer.take(rows);
    if rows.is_empty() {
        // A failed query is already named; an empty answer is explained.
        if answer.failed.is_empty() {
            ctx.explain_empty_cadvisor(&mut answer, CPU_RAW, &scope.describe)
                .await;
        }
        return answer;
    }
    let key = |s: &Stats| (s.avg.unwrap_or(0.0), s.current.unwrap_or(0.0));
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(&a.stats), key(&b.stats));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(a.key.cmp(&b.key))
    });
    answer.data.ranking = rows
        .iter()
        .enumerate()
        .map(|(i, r)| RankedPod {
            rank: i + 1,
            pod: r.key.clone(),
            cpu: r.stats,
        })
        .collect();
    answer.data.most = rows.first().map(|r| r.key.clone());
    answer.data.least = rows.last().map(|r| r.key.clone());

    // A chart of 50 lines is unreadable: draw the extremes, which is what the question asks.
    let drawn: Vec<_> = if rows.len() > CHART_TOP + CHART_BOTTOM {
        rows[..CHART_TOP]
            .iter()
            .chain(&rows[rows.len() - CHART_BOTTOM..])
            .collect()
    } else {
        rows.iter().collect()
    };
    let place = if ctx.all_namespaces {
        "all namespaces"
    } else {
        &ctx.namespace
    };
    let title = if drawn.len() < rows.len() {
        format!(
            "CPU per pod in {place}: the {CHART_TOP} busiest and {CHART_BOTTOM} idlest of {} (cores)",
            rows.len()
        )
    } else {
        format!("CPU per pod in {place} (cores)")
    };
    answer.charts.push(Chart {
        id: "q2-pod-cpu".into(),
        title,
        unit: Unit::Cores,
        series: drawn
            .into_iter()
            .map(|r| NamedSeries {
                name: r.key.clone(),
                points: r.points.clone(),
            })
            .collect(),
    });
    answer
}
