//! The service's Prometheus metrics, encoded as OpenMetrics text.

use std::borrow::Cow;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        exemplar::HistogramWithExemplars,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
        info::Info,
    },
    registry::{Registry, Unit},
};

use crate::{process_metrics::ProcessCollector, settings::BuildInfo, trace_context::TraceExemplar};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: fine-grained below 10 ms, where a healthy beacon answers. A
/// latency SLO's threshold must be one of them (`beacon report --slo-latency-threshold`, the
/// chart's `prometheusRule.slo.latency.threshold`).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: Cow<'static, str>,
    /// The matched route pattern, never the raw path, so cardinality stays bounded.
    pub route: Cow<'static, str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: Cow<'static, str>,
    pub route: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    /// `error`, `latency` or `cpu`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
}

/// Buckets in seconds for the visits store's `fdatasync` and for a visit's wait for it:
/// 100 µs × 2^k, 100 µs to 6.6 s (17 buckets). One 4 KiB-block sync takes from ~20 µs on local
/// NVMe with power-loss protection to ~0.1–2 ms on an SSD flushing its cache, ~0.5–10 ms on
/// network block storage (EBS, Persistent Disk, Ceph RBD) and tens of ms to seconds on a
/// saturated or throttled volume. [`LATENCY_BUCKETS`] start at 0.5 ms, which would put every
/// sync of a fast disk into one bucket; doubling keeps the quantile error within a factor of 2
/// over those five orders of magnitude with few series (etcd's
/// `etcd_disk_wal_fsync_duration_seconds` doubles too, from 1 ms). Not 50 µs × 2^k: Prometheus 3
/// stores `le="0.00005"` as `le="5e-05"`, renaming that series on an upgrade
/// (`tests/packaging/prometheus3.rs`), and a disk that syncs in under 100 µs is never the problem. Above a
/// few seconds the pod is failing anyway (requests time out at 15 s by default); `+Inf` and
/// `_sum` still count such syncs.
pub(crate) fn disk_sync_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 17)
}

/// Visits per sync: 1, 2, 4, …, 1024. Above 1, visits shared a sync (group commit).
pub(crate) fn batch_size_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(1.0, 2.0, 11)
}

/// Request latency with, per bucket, the trace id of the latest request that fell into it
/// (an OpenMetrics exemplar: `… # {trace_id="…"} 0.0012 1765065600.123`).
type LatencyFamily = Family<
    RouteLabels,
    HistogramWithExemplars<TraceExemplar>,
    fn() -> HistogramWithExemplars<TraceExemplar>,
>;

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: LatencyFamily,
    pub config_reloads: Family<ReloadLabels, Counter>,
    pub config_last_reload_successful: Gauge,
    pub config_source: Family<SourceLabels, Gauge>,
    pub faults_injected: Family<FaultLabels, Counter>,
    pub store: StoreMetrics,
}

impl Metrics {
    pub fn new(build: BuildInfo) -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_duration: LatencyFamily = Family::new_with_constructor(|| {
            HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())
        });
        registry.register_with_unit(
            "http_request_duration",
            "Time from request headers read to response headers written",
            Unit::Seconds,
            http_duration.clone(),
        );
        let store = StoreMetrics::default();
        registry.register(
            "beacon_visits",
            "Visits to / made durable in this pod's store",
            store.visits.clone(),
        );
        registry.register(
            "beacon_visits_store_errors",
            "Failed writes or syncs of the visits store",
            store.errors.clone(),
        );
        registry.register_with_unit(
            "beacon_visits_sync_duration",
            "Time of each write + fdatasync of a batch of visits by the visits store's writer, failed ones included",
            Unit::Seconds,
            store.sync_duration.clone(),
        );
        registry.register_with_unit(
            "beacon_visits_commit_wait",
            "Time from a visit to / handed to the visits store to its being durable (its response can be sent), per acknowledged visit",
            Unit::Seconds,
            store.commit_wait.clone(),
        );
        registry.register(
            "beacon_visits_sync_batch_size",
            "Visits made durable by each successful fdatasync of the visits store (above 1: group commit)",
            store.sync_batch_size.clone(),
        );
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "beacon_config_reloads",
            "Configuration reloads, by result",
            config_reloads.clone(),
        );
        // Pre-create both results so `rate()` and alerts see a zero before the first failure.
        for result in ["success", "error"] {
            let _ = config_reloads.get_or_create(&ReloadLabels { result });
        }
        let config_last_reload_successful = Gauge::default();
        config_last_reload_successful.set(1);
        registry.register(
            "beacon_config_last_reload_successful",
            "1 if the last configuration load succeeded, 0 if the last good one is kept after a bad update",
            config_last_reload_successful.clone(),
        );
        let config_source = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "beacon_config_source",
            "1 for where the configuration in effect comes from: `file` or the embedded `defaults`",
            config_source.clone(),
        );
        let faults_injected = Family::<FaultLabels, Counter>::default();
        registry.register(
            "beacon_faults_injected",
            "Faults injected into requests to / by the config's `faults` section, by kind (error, latency, cpu)",
            faults_injected.clone(),
        );
        // Pre-created so the dashboard shows a flat zero, not "No data", while nothing is injected.
        for kind in ["error", "latency", "cpu"] {
            let _ = faults_injected.get_or_create(&FaultLabels { kind });
        }
        registry.register(
            "beacon_build",
            "Version and revision of the running binary",
            Info::new(BuildLabels {
                version: build.version,
                revision: build.revision,
            }),
        );
        registry.register_collector(Box::new(ProcessCollector::new()));
        Self {
            registry,
            http_requests,
            http_duration,
            config_reloads,
            config_last_reload_successful,
            config_source,
            faults_injected,
            store,
        }
    }

    pub fn config_reloaded(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
        self.config_last_reload_successful.set(i64::from(ok));
    }

    pub fn set_config_source(&self, from_file: bool) {
        for (source, active) in [("file", from_file), ("defaults", !from_file)] {
            self.config_source
                .get_or_create(&SourceLabels { source })
                .set(i64::from(active));
        }
    }

    pub fn fault_injected(&self, kind: &'static str) {
        self.faults_injected
            .get_or_create(&FaultLabels { kind })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Metrics the visits store updates.
#[derive(Clone)]
pub struct StoreMetrics {
    pub visits: Counter,
    pub errors: Counter,
    /// Seconds of each write + `fdatasync` by the writer thread, failed ones included.
    pub sync_duration: Histogram,
    /// Seconds from a visit handed to the store to its being durable, per acknowledged visit.
    pub commit_wait: Histogram,
    /// Visits made durable by each successful sync.
    pub sync_batch_size: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            visits: Counter::default(),
            errors: Counter::default(),
            sync_duration: Histogram::new(disk_sync_buckets()),
            commit_wait: Histogram::new(disk_sync_buckets()),
            sync_batch_size: Histogram::new(batch_size_buckets()),
        }
    }
}
