//! Benchmark data (ignored in the normal test run; bench/report-scale drives it): generates a
//! wide cluster (`wide_cluster.rs`) of the size named by `BEACON_BENCH_SIZE`
//! (`suite`: 1,000 pods / 50 nodes / 30 min, `medium`: the same over 3 h, `large`: 5,000 pods /
//! 200 sixteen-core nodes / 1 h; all at 30 s), with the kube-prometheus-stack recorded series
//! if `BEACON_BENCH_RULES=1`, and backfills it into `$BEACON_BENCH_OUT/tsdb`. Writes what the
//! driver needs to `$BEACON_BENCH_OUT/cluster.json` and prints the generate and backfill times.

use std::{path::PathBuf, time::Instant};

use crate::fixture::{Cluster, Width};
use crate::stack::{backfill_file, now};
use crate::wide_cluster;

#[test]
#[ignore = "benchmark data: run bench/report-scale"]
fn generate_and_backfill_a_wide_cluster() {
    let out = PathBuf::from(std::env::var("BEACON_BENCH_OUT").expect("BEACON_BENCH_OUT unset"));
    let size = std::env::var("BEACON_BENCH_SIZE").unwrap_or_else(|_| "suite".into());
    let mut width = match size.as_str() {
        "suite" => Width::suite(),
        "medium" => Width {
            range: 3.0 * 3600.0,
            ..Width::suite()
        },
        "large" => Width::large(),
        other => panic!("BEACON_BENCH_SIZE={other}: expected suite, medium or large"),
    };
    width.recording_rules = std::env::var("BEACON_BENCH_RULES").is_ok_and(|v| v == "1");
    std::fs::create_dir_all(&out).unwrap();

    let t = Instant::now();
    let cluster = Cluster::wide(now(), width);
    let input = out.join("cluster.om");
    let (series, samples) = cluster.write_openmetrics(&input);
    let generated = t.elapsed();
    let bytes = std::fs::metadata(&input).unwrap().len();
    let t = Instant::now();
    backfill_file(&input, &out.join("tsdb"));
    let backfilled = t.elapsed();
    std::fs::remove_file(&input).unwrap();

    let (sts, _) = cluster.workload_pods(
        crate::fixture::WorkloadKind::StatefulSet,
        wide_cluster::BIG_NAMESPACE,
        wide_cluster::POSTGRES,
    );
    let meta = serde_json::json!({
        "size": size,
        "recording_rules": width.recording_rules,
        "pods": cluster.pods.len(),
        "nodes": cluster.nodes.len(),
        "cores_per_node": width.cores_per_node,
        "big_namespace_pods": width.big_namespace_pods,
        "range_seconds": width.range,
        "start": cluster.start,
        "end": cluster.end,
        "namespace": wide_cluster::BIG_NAMESPACE,
        "statefulset": sts.name,
        "series": series,
        "samples": samples,
        "openmetrics_bytes": bytes,
        "generate_seconds": generated.as_secs_f64(),
        "backfill_seconds": backfilled.as_secs_f64(),
    });
    std::fs::write(out.join("cluster.json"), meta.to_string()).unwrap();
    println!(
        "{size} (rules: {}): {} pods, {} nodes, {series} series, {samples} samples, {} MiB OpenMetrics; generated in {generated:.1?}, backfilled in {backfilled:.1?}",
        width.recording_rules,
        cluster.pods.len(),
        cluster.nodes.len(),
        bytes >> 20,
    );
}
