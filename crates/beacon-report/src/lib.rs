//! `beacon report`: answers six operator questions about a workload from the Prometheus HTTP
//! API, each with the PromQL it used and an explanation wherever data is missing.

pub mod access;
pub mod catalogue;
mod error;
pub mod inventory;
pub mod model;
pub mod prom_client;
pub mod questions;
pub mod render;
pub mod target;
pub mod time_range;

use std::time::Duration;

use serde::Serialize;

pub use access::Access;
pub use error::{Error, Result};
pub use render::Format;
pub use target::Workload;
pub use time_range::TimeRange;

use crate::{
    catalogue::Catalogue,
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
    /// Bounds each HTTP request.
    pub timeout: Duration,
    /// Rows each ranked table leads with, from each end (`--top`).
    pub top: usize,
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
    pub workload: Answer<WorkloadUsage>,
    pub pod_cpu: Answer<CpuRanking>,
    pub nodes: Answer<Vec<NodeUsage>>,
    pub kubelets: Answer<Kubelets>,
    pub network: Answer<Vec<PodNetwork>>,
    pub alerts: Answer<Alerts>,
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
    let prom = PromClient::new(&opts.prometheus, &opts.prometheus_access, opts.timeout)?;
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
    };
    tracing::debug!(prometheus = %info.version, "asking the questions");
    // Every question's queries run concurrently: the report's time is its slowest query's.
    let (workload, pod_cpu, nodes, kubelets, network, alerts, inventory) = tokio::join!(
        questions::workload::answer(&ctx, &opts.workload),
        questions::pod_cpu::answer(&ctx),
        questions::nodes::answer(&ctx),
        questions::kubelets::answer(&ctx),
        questions::network::answer(&ctx),
        questions::alerts::answer(&prom, am.as_ref()),
        inventory::answer(&ctx),
    );
    Ok(Report {
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
        workload,
        pod_cpu,
        nodes,
        kubelets,
        network,
        alerts,
        inventory,
    })
}
