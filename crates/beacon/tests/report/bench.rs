//! Benchmark (run by bench/report.sh, ignored in the normal test run): the wall time of
//! `beacon report` over 1 h at 15 s resolution for 50 pods, against a real Prometheus holding
//! backfilled data. Prints its figures; fails if the median exceeds the 1 s aim.

use std::time::{Duration, Instant};

use crate::fixture::Cluster;
use crate::stack::{Prometheus, PrometheusConfig, Workdir, backfill, now, report};

const PODS: usize = 50;
const RUNS: usize = 10;
const AIM: Duration = Duration::from_secs(1);

#[test]
#[ignore = "benchmark: run bench/report.sh"]
fn report_wall_time_for_50_pods_over_1h() {
    let cluster = Cluster::many(now(), PODS);
    let work = Workdir::new();
    let tsdb = work.path().join("tsdb");
    let data = cluster.openmetrics();
    let t = Instant::now();
    backfill(work.path(), &tsdb, &data);
    println!(
        "backfill: {} series, {} samples in {:.2?}",
        data.series,
        data.samples,
        t.elapsed()
    );
    let prom = Prometheus::start(work.path(), &tsdb, PrometheusConfig::default());
    let (start, end) = (cluster.start.to_string(), cluster.end.to_string());

    for format in ["json", "text", "html"] {
        let args = [
            "--prometheus",
            &prom.url,
            "--start",
            &start,
            "--end",
            &end,
            "--statefulset",
            "load",
            "--format",
            format,
        ];
        // One warm-up run (Prometheus' caches, the page cache), then the measured ones.
        let warm = report(&args);
        assert!(warm.ok, "{}", warm.stderr);
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let run = report(&args);
                let elapsed = t.elapsed();
                assert!(run.ok, "{}", run.stderr);
                elapsed
            })
            .collect();
        times.sort();
        let median = times[RUNS / 2];
        println!(
            "beacon report --format {format:<4} {PODS} pods, 1 h at 15 s: min {:.0?}  median {:.0?}  max {:.0?}  ({} runs, output {} KiB)",
            times[0],
            median,
            times[RUNS - 1],
            RUNS,
            warm.stdout.len() / 1024
        );
        assert!(median < AIM, "median {median:?} is above the {AIM:?} aim");
    }
}
