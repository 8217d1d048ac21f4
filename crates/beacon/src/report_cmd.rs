//! `beacon report` — answers the operator's six questions from the Prometheus HTTP API.
//!
//! Exit codes: 0 report written and complete (missing data is explained inside it); 1 no
//! report: Prometheus unreachable or not Prometheus, bad range, selector or workload, output
//! not writable; 3 report written but partial: some query failed (each failed query is a
//! note naming its question; the JSON's `partial` is true).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use beacon_report::{
    Access, Format, Options, TimeRange, Workload,
    access::{Endpoint, Header, Names, Password, Secret},
    questions::slo::{self, SloFlags},
    time_range::parse_time,
};

/// Exit status of a report that was written but is missing what some failed query would have
/// answered.
pub const PARTIAL: u8 = 3;

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
    /// Workload whose pods question 1 covers: `deployment/NAME`, `daemonset/NAME` or
    /// `statefulset/NAME`; Deployments and DaemonSets need kube-state-metrics' kube_pod_owner
    /// (and kube_replicaset_owner). Default: statefulset/beacon.
    #[arg(long, short = 'w', conflicts_with_all = ["selector", "statefulset"])]
    workload: Option<String>,
    /// StatefulSet whose pods question 1 covers (the same as --workload statefulset/NAME).
    #[arg(long, conflicts_with = "selector")]
    statefulset: Option<String>,
    /// Label selector (`app=beacon,tier!=db`) for question 1 instead of a workload; needs
    /// kube-state-metrics' kube_pod_labels.
    #[arg(long, short = 'l')]
    selector: Option<String>,
    /// Rank pods (question 2) and their network (question 5) over every namespace.
    #[arg(long, short = 'A')]
    all_namespaces: bool,
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
    /// Rows each ranked table shows from each end (busiest and idlest pods, fullest nodes,
    /// largest network users); the rest are counted, and every row is in --format json.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    top: u16,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Write the report here instead of stdout; Markdown writes its SVG charts beside it.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Timeout of each HTTP request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Queries sent to Prometheus at once, at most.
    #[arg(long, default_value_t = beacon_report::prom_client::DEFAULT_MAX_CONCURRENT_QUERIES,
          value_parser = clap::value_parser!(usize))]
    max_concurrent_queries: usize,
    /// Samples (series × points) one range query may load: a wider query's step is coarsened
    /// to fit, and its answer says so.
    #[arg(long, default_value_t = beacon_report::step_budget::DEFAULT_SAMPLE_BUDGET)]
    sample_budget: u64,
    /// Availability objective of `/`, percent of requests not answered 5xx, where no recording
    /// rule beacon:slo_objective:ratio states it [default: 99.9, the chart's].
    #[arg(long, value_name = "PERCENT", value_parser = objective)]
    slo_availability: Option<f64>,
    /// Latency objective of `/`, percent of requests answered within --slo-latency-threshold,
    /// where no recording rule states it [default: 99, the chart's].
    #[arg(long, value_name = "PERCENT", value_parser = objective)]
    slo_latency: Option<f64>,
    /// The latency SLO's threshold: a bucket boundary of http_request_duration_seconds (the
    /// chart's prometheusRule.slo.latency.threshold).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = threshold)]
    slo_latency_threshold: f64,
    // Last: their help headings apply to every flag after them.
    #[command(flatten)]
    prometheus_access: PrometheusAccessArgs,
    #[command(flatten)]
    alertmanager_access: AlertmanagerAccessArgs,
}

/// Credentials for Prometheus. They are sent to the --prometheus URL only.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Prometheus credentials")]
struct PrometheusAccessArgs {
    /// File holding a bearer token (e.g. a service account's), sent as `Authorization: Bearer`.
    #[arg(long, env = "BEACON_PROMETHEUS_BEARER_TOKEN_FILE", value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
    /// Basic-auth user; the password comes from --basic-auth-password-file or
    /// $BEACON_PROMETHEUS_BASIC_AUTH_PASSWORD.
    #[arg(long, env = "BEACON_PROMETHEUS_BASIC_AUTH_USER", value_name = "USER")]
    basic_auth_user: Option<String>,
    /// File holding the basic-auth password.
    #[arg(
        long,
        env = "BEACON_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",
        value_name = "FILE"
    )]
    basic_auth_password_file: Option<PathBuf>,
    /// Extra header on every request, `NAME:VALUE` (e.g. `X-Scope-OrgID:tenant-1`); repeatable.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<RawHeader>,
    /// PEM file of the CA(s) to trust for https, instead of the system's.
    #[arg(long, env = "BEACON_PROMETHEUS_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

/// Credentials for Alertmanager, separate from Prometheus' so that no credential reaches an
/// endpoint it was not given for.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Alertmanager credentials")]
struct AlertmanagerAccessArgs {
    /// As --bearer-token-file, for --alertmanager.
    #[arg(
        long,
        requires = "alertmanager",
        env = "BEACON_ALERTMANAGER_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    alertmanager_bearer_token_file: Option<PathBuf>,
    /// As --basic-auth-user, for --alertmanager (password: --alertmanager-basic-auth-password-file
    /// or $BEACON_ALERTMANAGER_BASIC_AUTH_PASSWORD).
    #[arg(
        long,
        requires = "alertmanager",
        env = "BEACON_ALERTMANAGER_BASIC_AUTH_USER",
        value_name = "USER"
    )]
    alertmanager_basic_auth_user: Option<String>,
    /// As --basic-auth-password-file, for --alertmanager.
    #[arg(
        long,
        requires = "alertmanager",
        env = "BEACON_ALERTMANAGER_BASIC_AUTH_PASSWORD_FILE",
        value_name = "FILE"
    )]
    alertmanager_basic_auth_password_file: Option<PathBuf>,
    /// As --header, for --alertmanager; repeatable.
    #[arg(
        long = "alertmanager-header",
        value_name = "NAME:VALUE",
        requires = "alertmanager"
    )]
    alertmanager_headers: Vec<RawHeader>,
    /// As --ca-file, for --alertmanager.
    #[arg(
        long,
        requires = "alertmanager",
        env = "BEACON_ALERTMANAGER_CA_FILE",
        value_name = "FILE"
    )]
    alertmanager_ca_file: Option<PathBuf>,
}

/// A `--header` as typed. Parsed after clap, so a malformed one is reported without its value
/// (clap's own errors repeat the argument); `Debug` hides it for the same reason.
#[derive(Clone)]
struct RawHeader(String);

impl std::str::FromStr for RawHeader {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for RawHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The command-line flag that sets `what` for this endpoint, e.g. `--alertmanager-ca-file`.
fn flag(endpoint: Endpoint, what: &str) -> String {
    match endpoint {
        Endpoint::Prometheus => format!("--{what}"),
        Endpoint::Alertmanager => format!("--alertmanager-{what}"),
    }
}

/// The environment variable that can hold the endpoint's basic-auth password.
fn password_env(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Prometheus => "BEACON_PROMETHEUS_BASIC_AUTH_PASSWORD",
        Endpoint::Alertmanager => "BEACON_ALERTMANAGER_BASIC_AUTH_PASSWORD",
    }
}

/// How messages about the endpoint's credentials name the settings: by their flags.
fn names(endpoint: Endpoint) -> Names {
    Names {
        bearer_token_file: flag(endpoint, "bearer-token-file"),
        basic_auth_user: flag(endpoint, "basic-auth-user"),
        basic_auth_password_file: flag(endpoint, "basic-auth-password-file"),
        basic_auth_password: format!("${}", password_env(endpoint)),
        header: flag(endpoint, "header"),
        ca_file: flag(endpoint, "ca-file"),
    }
}

/// One endpoint's flags, and the environment variable that may hold its password.
fn access(
    endpoint: Endpoint,
    bearer_token_file: &Option<PathBuf>,
    basic_auth_user: &Option<String>,
    basic_auth_password_file: &Option<PathBuf>,
    headers: &[RawHeader],
    ca_file: &Option<PathBuf>,
) -> anyhow::Result<Access> {
    let from_env = std::env::var(password_env(endpoint))
        .ok()
        .filter(|p| !p.is_empty());
    let basic_auth_password = match (basic_auth_password_file, from_env) {
        (Some(_), Some(_)) => anyhow::bail!(
            "{} and ${} are alternatives; give one",
            flag(endpoint, "basic-auth-password-file"),
            password_env(endpoint)
        ),
        (Some(file), None) => Some(Password::File(file.clone())),
        (None, Some(value)) => Some(Password::Env(Secret::new(value))),
        (None, None) => None,
    };
    Ok(Access {
        bearer_token_file: bearer_token_file.clone(),
        basic_auth_user: basic_auth_user.clone(),
        basic_auth_password,
        headers: headers
            .iter()
            .map(|h| Header::parse(&h.0))
            .collect::<Result<_, _>>()
            .with_context(|| flag(endpoint, "header"))?,
        ca_file: ca_file.clone(),
        names: names(endpoint),
    })
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

fn objective(text: &str) -> Result<f64, String> {
    let percent: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a number (write a percentage, e.g. 99.9)"))?;
    slo::check_objective(percent)
}

/// Seconds, when the duration is one of beacon's latency buckets.
fn threshold(text: &str) -> Result<f64, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    slo::check_threshold(d.as_secs_f64(), &beacon_serve::metrics::LATENCY_BUCKETS)
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
    TimeRange::new(start, end, args.step, args.rate_window)
        .context("check --range, --start, --end, --step and --rate-window")
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let range = time_range(&args)?;
    let workload = match (&args.selector, &args.workload, &args.statefulset) {
        (Some(sel), _, _) => Workload::Selector(sel.clone()),
        (None, Some(w), _) => Workload::parse(w)?,
        (None, None, Some(name)) => Workload::StatefulSet(name.clone()),
        (None, None, None) => Workload::StatefulSet("beacon".into()),
    };
    // Reject a bad selector before contacting anything.
    workload.filter(&args.namespace)?;
    let p = &args.prometheus_access;
    let prometheus_access = access(
        Endpoint::Prometheus,
        &p.bearer_token_file,
        &p.basic_auth_user,
        &p.basic_auth_password_file,
        &p.headers,
        &p.ca_file,
    )?;
    let a = &args.alertmanager_access;
    let alertmanager_access = access(
        Endpoint::Alertmanager,
        &a.alertmanager_bearer_token_file,
        &a.alertmanager_basic_auth_user,
        &a.alertmanager_basic_auth_password_file,
        &a.alertmanager_headers,
        &a.alertmanager_ca_file,
    )?;
    let opts = Options {
        prometheus: args.prometheus.clone(),
        alertmanager: args.alertmanager.clone(),
        prometheus_access,
        alertmanager_access,
        namespace: args.namespace.clone(),
        workload,
        range,
        all_namespaces: args.all_namespaces,
        timeout: args.timeout,
        top: usize::from(args.top),
        max_concurrent_queries: args.max_concurrent_queries,
        sample_budget: args.sample_budget,
        slo: SloFlags {
            availability: args.slo_availability,
            latency: args.slo_latency,
            latency_threshold: args.slo_latency_threshold,
        },
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
    if report.partial {
        let failed: usize = report.cost.failed_queries;
        tracing::warn!(
            failed_queries = failed,
            "the report is partial: some queries failed (see the notes); exit status 3"
        );
        return Ok(ExitCode::from(PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}
