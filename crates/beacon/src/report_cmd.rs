//! `beacon report` — answers the operator's six questions from the Prometheus HTTP API.
//!
//! Exit codes: 0 report written (missing data is explained inside it), 1 Prometheus
//! unreachable or not Prometheus, bad range or selector, output not writable.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use beacon_report::{Format, Options, TimeRange, Workload, time_range::parse_time};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Prometheus base URL (with any path prefix).
    #[arg(
        long,
        env = "BEACON_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    prometheus: String,
    /// Alertmanager base URL; adds its alerts (with silences and inhibitions) to question 6.
    #[arg(long, env = "BEACON_ALERTMANAGER_URL")]
    alertmanager: Option<String>,
    /// Namespace the questions are about.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// StatefulSet whose pods question 1 covers.
    #[arg(long, conflicts_with = "selector", default_value = "beacon")]
    statefulset: String,
    /// Label selector (`app=beacon,tier!=db`) for question 1 instead of a StatefulSet; needs
    /// kube-state-metrics' kube_pod_labels.
    #[arg(long, short = 'l')]
    selector: Option<String>,
    /// Length of the range ending now (or at --end), e.g. 1h, 30m, 2d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    range: Duration,
    /// Range start: RFC 3339 or Unix seconds (overrides --range).
    #[arg(long)]
    start: Option<String>,
    /// Range end: RFC 3339 or Unix seconds (default: now).
    #[arg(long)]
    end: Option<String>,
    /// Resolution of the range queries (default: range/240, at least 15s).
    #[arg(long, value_parser = humantime::parse_duration)]
    step: Option<Duration>,
    /// Window of every rate() (default: 5m, or the step when larger).
    #[arg(long, value_parser = humantime::parse_duration)]
    rate_window: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Write the report here instead of stdout; Markdown writes its SVG charts beside it.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Timeout of each HTTP request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Text,
    Md,
    Html,
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Md => Format::Markdown,
            FormatArg::Html => Format::Html,
            FormatArg::Json => Format::Json,
        }
    }
}

fn time_range(args: &ReportArgs) -> anyhow::Result<TimeRange> {
    let end = match &args.end {
        Some(t) => parse_time(t).context("--end")?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64(),
    };
    let start = match &args.start {
        Some(t) => parse_time(t).context("--start")?,
        None => end - args.range.as_secs_f64(),
    };
    Ok(TimeRange::new(start, end, args.step, args.rate_window)?)
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let range = time_range(&args)?;
    let workload = match &args.selector {
        Some(sel) => Workload::Selector(sel.clone()),
        None => Workload::StatefulSet(args.statefulset.clone()),
    };
    // Reject a bad selector before contacting anything.
    workload.filter(&args.namespace)?;
    let opts = Options {
        prometheus: args.prometheus.clone(),
        alertmanager: args.alertmanager.clone(),
        namespace: args.namespace.clone(),
        workload,
        range,
        timeout: args.timeout,
    };
    let report = beacon_report::build(&opts).await?;
    let prefix = args
        .output
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned());
    let output = beacon_report::render::render(&report, args.format.into(), prefix.as_deref())?;
    match &args.output {
        None => print!("{}", output.document),
        Some(path) => {
            std::fs::write(path, &output.document)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let dir = path.parent().unwrap_or(std::path::Path::new(""));
            for (name, content) in &output.attachments {
                let file = dir.join(name);
                std::fs::write(&file, content)
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
            tracing::info!(path = %path.display(), charts = output.charts, "report written");
        }
    }
    Ok(ExitCode::SUCCESS)
}
