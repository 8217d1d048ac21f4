//! Question 2: which pods in the namespace use the most and the least CPU — every pod ranked
//! by its average cores over the range, and the busiest and idlest drawn.

use serde::Serialize;

use super::{
    CPU_RAW, Ctx, Keyed, PodScope, PodSource, by_key, only,
    workload::{cpu_per_pod_in, note_pod_cgroup_source},
};
use crate::model::{Answer, CHART_LINES, Chart, Remainder, Stats, Unit, extremes};

pub const QUESTION: &str = "Pods using the most and the least CPU in the namespace";

/// Lines drawn: the busiest pods, then the idlest (what the question asks about).
const CHART_BOTTOM: usize = 3;
const CHART_TOP: usize = CHART_LINES - CHART_BOTTOM;

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
    /// Cores. Every pod has its average and current value; the maximum and minimum only the
    /// pods at either end of the ranking (charted, or in the table), whose range was fetched.
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
    let per_pod = answer.uses("CPU cores per pod, now", cpu_per_pod_in(ctx, &scope));
    let avg_q = answer.uses(
        "average CPU cores per pod over the range",
        ctx.over_range("avg_over_time", &per_pod),
    );
    if ctx.cadvisor.cpu == PodSource::PodCgroup {
        note_pod_cgroup_source(&mut answer, ctx, CPU_RAW);
    }
    let (avg, now) = tokio::join!(ctx.instant(&avg_q), ctx.instant(&per_pod));
    let avg = by_key(&answer.take(avg), "pod");
    let now = by_key(&answer.take(now), "pod");
    if avg.is_empty() {
        // A failed query is already named; an empty answer is explained.
        if answer.failed.is_empty() {
            ctx.explain_empty_cadvisor(&mut answer, CPU_RAW, &scope.describe)
                .await;
        }
        return answer;
    }
    let mut rows: Vec<(String, Stats)> = avg
        .iter()
        .map(|(pod, a)| {
            let stats = Stats {
                current: now.get(pod).copied(),
                avg: Some(*a),
                ..Stats::default()
            };
            (pod.clone(), stats)
        })
        .collect();
    rank(&mut rows);

    let (top, bottom) = (CHART_TOP.max(ctx.top), CHART_BOTTOM.max(ctx.top));
    let shown: Vec<&str> = extremes(rows.len(), top, bottom)
        .into_iter()
        .map(|i| rows[i].0.as_str())
        .collect();
    let shown_scope = PodScope {
        matcher: format!("{}{}", scope.matcher, only("pod", &shown, rows.len())),
        ..scope
    };
    let range_q = answer.uses(
        "CPU cores of the busiest and idlest pods",
        cpu_per_pod_in(ctx, &shown_scope),
    );
    let count_q = format!(
        "count({CPU_RAW}{{{},{}}})",
        shown_scope.matcher,
        ctx.cadvisor.cpu.matchers()
    );
    let ranged = ctx.range_keyed(&range_q, &count_q, "pod").await;
    let ranged = answer.take_stepped(ranged);
    for (pod, stats) in &mut rows {
        if let Some(r) = ranged.iter().find(|r| &r.key == pod) {
            *stats = r.stats;
        }
    }
    rank(&mut rows);
    answer.charts.push(chart(ctx, &rows, &ranged));
    answer.data.most = rows.first().map(|r| r.0.clone());
    answer.data.least = rows.last().map(|r| r.0.clone());
    answer.data.ranking = rows
        .into_iter()
        .enumerate()
        .map(|(i, (pod, cpu))| RankedPod {
            rank: i + 1,
            pod,
            cpu,
        })
        .collect();
    answer
}

/// Busiest first: by average, then current, then name.
fn rank(rows: &mut [(String, Stats)]) {
    let key = |s: &Stats| (s.avg.unwrap_or(0.0), s.current.unwrap_or(0.0));
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(&a.1), key(&b.1));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(a.0.cmp(&b.0))
    });
}

/// The busiest and idlest pods' lines; the others as a count and their median average.
fn chart(ctx: &Ctx, rows: &[(String, Stats)], ranged: &[Keyed]) -> Chart {
    let shown = extremes(rows.len(), CHART_TOP, CHART_BOTTOM);
    let averages: Vec<f64> = rows.iter().map(|r| r.1.avg.unwrap_or(0.0)).collect();
    let series = shown
        .iter()
        .filter_map(|&i| ranged.iter().find(|r| r.key == rows[i].0))
        .map(Keyed::line)
        .collect();
    let place = ctx.place();
    let title = if shown.len() < rows.len() {
        format!(
            "CPU per pod in {place}: the {CHART_TOP} busiest and {CHART_BOTTOM} idlest of {} (cores)",
            rows.len()
        )
    } else {
        format!("CPU per pod in {place} (cores)")
    };
    Chart {
        id: "q2-pod-cpu".into(),
        title,
        unit: Unit::Cores,
        series,
        remainder: Remainder::of(&averages, &shown, "pods", "average CPU"),
    }
}
