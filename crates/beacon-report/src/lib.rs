//! `beacon report`: answers six operator questions about a workload, and reports the SLOs of
//! its `/`, from the Prometheus HTTP API, each with the PromQL it used and an explanation
//! wherever data is missing.

pub mod access;
pub mod catalogue;
pub mod cost;
mod error;
pub mod inventory;
pub mod model;
pub mod prom_client;
pub mod questions;
pub mod render;
pub mod slo_model;
pub mod step_budget;
pub mod time_range;
pub mod workload;

use std::time::Duration;

use serde::Serialize;

pub use access::Access;
pub use error::{Error, Result};
pub use render::Format;
pub use time_range::TimeRange;
pub use workload::Workload;

use crate::{
    catalogue::Catalogue,
    cost::Cost,
    inventory::Inventory,
    model::Answer,
    prom_client::{AlertmanagerClient, PromClient},
    questions::{
        CadvisorShape, Ctx, alerts::Alerts, kubelets::Kubelets, network::PodNetwork,
        nodes::NodeUsage, pod_cpu::CpuRanking, workload::WorkloadUsage,
    },
};

#[derive(Debug, Clone)]
pub struct Options {
    pub prometheus: String,
    pub alertmanager: Option<String>,
    /// Credentials and CA for Prometheus.
    pub prometheus_access: Access,
    /// Alertmanager's own: Prometheus' credentials are never sent to another endpoint.
    pub alertmanager_access: Access,
    pub namespace: String,
    pub workload: Workload,
    pub range: TimeRange,
    /// Questions 2 and 5 cover every namespace.
    pub all_namespaces: bool,
    /// Bounds each HTTP request.
    pub timeout: Duration,
    /// Rows each ranked table leads with, from each end (`--top`).
    pub top: usize,
    /// Instant and range queries in flight at once
    /// ([`prom_client::DEFAULT_MAX_CONCURRENT_QUERIES`]).
    pub max_concurrent_queries: usize,
    /// Series × points one range query may hold ([`step_budget::DEFAULT_SAMPLE_BUDGET`]).
    pub sample_budget: u64,
    /// Objectives and latency threshold where no recording rule states them (`--slo-*`).
    pub slo: questions::slo::SloFlags,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub prometheus: String,
    pub prometheus_version: String,
    pub alertmanager: Option<String>,
    pub namespace: String,
    pub range: RangeInfo,
    /// Rows each ranked table shows from each end; every row is in this JSON.
    pub top: usize,
    /// Some query failed: the answers' `failed` lists say which (exit status 3).
    pub partial: bool,
    /// What the report cost Prometheus.
    pub cost: Cost,
    pub workload: Answer<WorkloadUsage>,
    pub pod_cpu: Answer<CpuRanking>,
    pub nodes: Answer<Vec<NodeUsage>>,
    pub kubelets: Answer<Kubelets>,
    pub network: Answer<Vec<PodNetwork>>,
    pub alerts: Answer<Alerts>,
    /// Availability and latency of `/`: objective, SLI, budget and burn rates.
    pub slo: Answer<Vec<slo_model::Slo>>,
    pub inventory: Answer<Inventory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RangeInfo {
    pub start: String,
    pub end: String,
    #[serde(flatten)]
    pub seconds: TimeRange,
}

/// Builds the report. Fails only when Prometheus (or Alertmanager's URL) is unusable as a
/// whole; anything confined to one question is explained in that answer.
pub async fn build(opts: &Options) -> Result<Report> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    opts.range.check_not_future(now)?;
    let prom = PromClient::new(&opts.prometheus, &opts.prometheus_access, opts.timeout)?
        .with_max_concurrent_queries(opts.max_concurrent_queries);
    let am = opts
        .alertmanager
        .as_deref()
        .map(|url| AlertmanagerClient::new(url, &opts.alertmanager_access, opts.timeout))
        .transpose()?;
    // Fail fast, on one line, when the URL is wrong, before a dozen queries fail the same way.
    let info = prom.build_info().await?;
    let catalogue = Catalogue::load(&prom, &opts.range).await;
    let cadvisor = CadvisorShape::detect(&prom, &opts.range, &opts.namespace, &catalogue).await;
    let ctx = Ctx {
        prom: prom.clone(),
        range: opts.range,
        namespace: opts.namespace.clone(),
        catalogue,
        cadvisor,
        top: opts.top,
        sample_budget: opts.sample_budget,
        all_namespaces: opts.all_namespaces,
    };
    tracing::debug!(prometheus = %info.version, "asking the questions");
    // Every question's queries run concurrently (bounded by the client's slots): the report's
    // time is about its slowest query's.
    let (workload, pod_cpu, nodes, kubelets, network, alerts, slo, inventory) = tokio::join!(
        questions::workload::answer(&ctx, &opts.workload),
        questions::pod_cpu::answer(&ctx),
        questions::nodes::answer(&ctx),
        questions::kubelets::answer(&ctx),
        questions::network::answer(&ctx),
        questions::alerts::answer(&prom, am.as_ref()),
        questions::slo::answer(&ctx, &opts.workload, &opts.slo),
        inventory::answer(&ctx),
    );
    let cost = prom
        .costs()
        .summary(prom.max_concurrent_queries(), opts.sample_budget);
    tracing::debug!(
        queries = cost.queries,
        largest_samples = cost.largest_samples,
        total_samples = cost.total_samples,
        prometheus_seconds = cost.prometheus_seconds,
        "report cost"
    );
    let mut report = Report {
        generated_at: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string(),
        prometheus: prom.url().to_owned(),
        prometheus_version: info.version,
        alertmanager: am.map(|a| a.url().to_owned()),
        namespace: opts.namespace.clone(),
        top: opts.top,
        range: RangeInfo {
            start: time_range::format_time(opts.range.start),
            end: time_range::format_time(opts.range.end),
            seconds: opts.range,
        },
        partial: false,
        cost,
        workload,
        pod_cpu,
        nodes,
        kubelets,
        network,
        alerts,
        slo,
        inventory,
    };
    report.announce_failures();
    Ok(report)
}

impl Report {
    /// Names each failed query's question in a note where the reader looks (and in a
    /// CronJob's log), and marks the report partial.
    fn announce_failures(&mut self) {
        self.workload
            .announce_failures("question 1 (CPU and memory of the workload)");
        self.pod_cpu.announce_failures("question 2 (pods by CPU)");
        self.nodes
            .announce_failures("question 3 (node memory and CPU)");
        self.kubelets
            .announce_failures("question 4 (pods and containers per kubelet)");
        self.network
            .announce_failures("question 5 (network per pod)");
        self.alerts.announce_failures("question 6 (alerts)");
        self.slo.announce_failures("SLOs");
        self.inventory.announce_failures("inventory");
        self.partial = [
            self.workload.failed.len(),
            self.pod_cpu.failed.len(),
            self.nodes.failed.len(),
            self.kubelets.failed.len(),
            self.network.failed.len(),
            self.alerts.failed.len(),
            self.slo.failed.len(),
            self.inventory.failed.len(),
        ]
        .iter()
        .any(|n| *n > 0);
    }
}
