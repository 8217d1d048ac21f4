//! `beacon init …` — flags to beacon-init calls.
//!
//! Exit codes: 0 done (or already done), 1 the step failed (one-line reason on stderr),
//! 2 bad arguments, 130/143 interrupted by SIGINT/SIGTERM (no partial file left behind).

use std::{path::PathBuf, process::ExitCode, sync::atomic::AtomicBool, time::Duration};

use beacon_init::{
    fetch::{self, FetchJob, FetchOptions, Fetcher},
    retry::RetryPolicy,
    signals::{self, Interrupted, Stopped, until_signal},
    wait::{self, Target, WaitOptions},
    write::{self, Outcome, Step},
};

#[derive(Debug, clap::Subcommand)]
pub enum InitCommand {
    /// Download URLs to files atomically, with retries (replaces `wget` in an init container).
    #[command(long_about = fetch::ABOUT, after_long_help = fetch::EXAMPLE)]
    Fetch(FetchArgs),
    /// Append lines to a file exactly once, however often the init container re-runs.
    #[command(long_about = write::ABOUT, after_long_help = write::EXAMPLE)]
    Write(WriteArgs),
    /// Wait until DNS names resolve, TCP ports accept, or URLs answer 2xx.
    #[command(long_about = wait::ABOUT, after_long_help = wait::EXAMPLE)]
    Wait(WaitArgs),
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// A URL (with --to), or one or more URL=PATH pairs. A pair splits at its last `=`.
    #[arg(required = true, value_name = "URL | URL=PATH")]
    sources: Vec<String>,
    /// The file to store the single URL in (its own path, not a directory; missing
    /// directories above it are created).
    #[arg(long, value_name = "PATH")]
    to: Option<PathBuf>,
    /// Expected SHA-256 (hex) of the single URL's body. A mismatch fails without retrying;
    /// a target that already matches is not downloaded again.
    #[arg(long, value_name = "HEX", requires = "to")]
    sha256: Option<String>,
    /// Per attempt: bound on connecting and on any silence from the server (a stalled body).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Attempts after the first, for connect errors, timeouts, resets, 5xx, 408 and 429.
    #[arg(long, value_name = "N", default_value_t = 5)]
    retries: u32,
    /// Delay before the first retry; doubles each time (with jitter), up to --retry-max-delay.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = humantime::parse_duration)]
    retry_delay: Duration,
    /// Longest delay between attempts (a longer Retry-After is still honoured, up to 5m).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = humantime::parse_duration)]
    retry_max_delay: Duration,
    /// Refuse bodies larger than this (by Content-Length and while streaming, after gzip
    /// decoding): bytes, or with a unit such as 500KiB, 100MiB, 2GiB, 10MB.
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size)]
    max_bytes: u64,
    /// Give up when the whole step (every URL, every attempt and the waits between) is not
    /// finished after this long, so a server trickling bytes cannot hold the pod; 0 for none.
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = humantime::parse_duration)]
    deadline: Duration,
    /// Most redirects to follow.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_redirects: usize,
    /// How often to log progress of a running download.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = humantime::parse_duration)]
    progress_interval: Duration,
}

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// The file to append to (created if missing).
    path: PathBuf,
    /// A line to append; repeat for several lines in one step.
    #[arg(long = "line", value_name = "TEXT", required = true)]
    lines: Vec<String>,
    /// The step's identity in the ledger. Default: derived from the lines, so the same
    /// command is the same step. Allowed: A-Z a-z 0-9 . _ : -
    #[arg(long, value_name = "ID")]
    id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// dns:NAME, tcp:HOST:PORT, or an http:// or https:// URL. All must become ready.
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// Give up after this long and exit 1 with the last failure.
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Pause between attempts.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Bound on one attempt (DNS answer, TCP connect, HTTP response).
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = humantime::parse_duration)]
    attempt_timeout: Duration,
    /// Log a failure that repeats the previous reason at most this often.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = humantime::parse_duration)]
    log_every: Duration,
}

pub async fn run(cmd: InitCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        InitCommand::Fetch(args) => fetch(args).await,
        InitCommand::Write(args) => write(args).await,
        InitCommand::Wait(args) => wait(args).await,
    }
}

async fn fetch(args: FetchArgs) -> anyhow::Result<ExitCode> {
    let jobs = match fetch_jobs(&args) {
        Ok(jobs) => jobs,
        Err(msg) => return Ok(usage_error(&msg)),
    };
    let opts = FetchOptions {
        timeout: args.timeout,
        retry: RetryPolicy {
            retries: args.retries,
            initial_delay: args.retry_delay,
            max_delay: args.retry_max_delay,
        },
        max_bytes: Some(args.max_bytes),
        deadline: (!args.deadline.is_zero()).then_some(args.deadline),
        max_redirects: args.max_redirects,
        progress_interval: args.progress_interval,
    };
    let fetcher = Fetcher::new(opts)?;
    // Dropping the downloads on a signal drops their temp files, which deletes them.
    match until_signal(fetcher.fetch_all(&jobs)).await {
        Ok(result) => result.map(|_| ExitCode::SUCCESS).map_err(Into::into),
        Err(signal) => Ok(interrupted(signal, "nothing partial was left behind")),
    }
}

/// `URL --to PATH`, or `URL=PATH…`; an error message for anything else.
fn fetch_jobs(args: &FetchArgs) -> Result<Vec<FetchJob>, String> {
    let job = |url: &str, path: PathBuf, sha: Option<&str>| {
        FetchJob::new(url, path, sha).map_err(|e| e.to_string())
    };
    match (&args.to, args.sources.as_slice()) {
        (Some(to), [url]) => Ok(vec![job(url, to.clone(), args.sha256.as_deref())?]),
        (Some(_), _) => Err("--to takes exactly one URL; use URL=PATH pairs for several".into()),
        (None, sources) => sources
            .iter()
            .map(|s| {
                let (url, path) = fetch::split_pair(s).ok_or_else(|| {
                    format!("{s:?}: expected URL=PATH (or one URL with --to PATH)")
                })?;
                job(url, path.to_path_buf(), None)
            })
            .collect(),
    }
}

async fn write(args: WriteArgs) -> anyhow::Result<ExitCode> {
    let step = match Step::new(args.lines, args.id) {
        Ok(step) => step,
        Err(e) => return Ok(usage_error(&e.to_string())),
    };
    // Exiting at once on a signal would leave the step's temp file behind: it stops at its
    // next safe point instead (briefly: a step blocked on another's ledger lock is abandoned,
    // which is as safe as a crash).
    let work = {
        let (path, step) = (args.path.clone(), step.clone());
        move |stop: &AtomicBool| write::append_lines_unless(&path, &step, stop)
    };
    let (outcome, signalled) = match signals::run_stoppable(work, write::STOP_GRACE).await {
        Stopped::Finished(outcome) => (outcome, None),
        Stopped::AtSafePoint(signal, outcome) => (outcome, Some(signal)),
        Stopped::Abandoned(signal) => {
            return Ok(interrupted(
                signal,
                "the step was abandoned mid-way; a re-run completes it",
            ));
        }
    };
    let (path, id, lines) = (args.path.display(), &step.id, step.lines.len());
    let applied = match outcome {
        Ok(Outcome::Appended) => {
            tracing::info!(path = %path, step = %id, lines, "appended {lines} line(s)");
            true
        }
        Ok(Outcome::AlreadyDone) => {
            tracing::info!(path = %path, step = %id, "step already applied; nothing to do");
            true
        }
        Ok(Outcome::Recovered) => {
            tracing::info!(path = %path, step = %id, "lines were written by an interrupted run; recorded the step as done");
            true
        }
        Err(beacon_init::Error::Interrupted) if signalled.is_some() => false,
        Err(e) => return Err(e.into()),
    };
    Ok(match signalled {
        None => ExitCode::SUCCESS,
        Some(signal) if applied => interrupted(signal, "the step had been applied first"),
        Some(signal) => interrupted(
            signal,
            "the step was not applied; nothing partial was left behind",
        ),
    })
}

async fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let targets: Result<Vec<Target>, _> = args.targets.iter().map(|t| t.parse()).collect();
    let targets = match targets {
        Ok(t) => t,
        Err(e) => return Ok(usage_error(&e.to_string())),
    };
    let opts = WaitOptions {
        timeout: args.timeout,
        interval: args.interval,
        attempt_timeout: args.attempt_timeout,
        log_every: args.log_every,
    };
    match until_signal(wait::wait_all(&targets, &opts)).await {
        Ok(result) => result.map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Err(signal) => Ok(interrupted(signal, "nothing partial was left behind")),
    }
}

/// `100MiB`, `10MB`, `512k`, `1048576`: binary units (KiB, MiB, GiB; K, M, G alone are
/// binary too, as in Kubernetes' `Ki`) or decimal ones (KB, MB, GB).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size: expected a number of bytes, e.g. 100MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("beacon: error: {msg}");
    ExitCode::from(2)
}

/// Says on the last stderr line which signal ended the step and what it left, and exits
/// with the conventional code, 128 + signal.
fn interrupted(signal: Interrupted, aftermath: &str) -> ExitCode {
    eprintln!("beacon: error: interrupted by {}; {aftermath}", signal.name);
    ExitCode::from(signal.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
