use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{init_cmd, logging, report_cmd, serve_cmd};

#[derive(Debug, Parser)]
#[command(name = "beacon", version = crate::VERSION_LINE, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log format: json, text, or auto (json when stderr is not a terminal).
    #[arg(long, global = true, env = "BEACON_LOG_FORMAT", default_value = "auto")]
    log_format: logging::Format,
    /// Log filter: a default level and `target=level` pairs, e.g. `info` or `info,beacon::access=off`.
    #[arg(long, global = true, env = "BEACON_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (the StatefulSet's main container).
    Serve(serve_cmd::ServeArgs),
    /// Init-container steps that need no shell: fetch, write, wait.
    #[command(subcommand)]
    Init(init_cmd::InitCommand),
    /// Answer the operator's questions from the Prometheus HTTP API.
    // Boxed: its many flags would make every Command as large as it.
    Report(Box<report_cmd::ReportArgs>),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    logging::init(cli.log_format, &cli.log)?;
    let runtime = runtime()?;
    let is_init = matches!(cli.command, Command::Init(_));
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve_cmd::run(args).await,
            Command::Init(cmd) => init_cmd::run(cmd).await,
            Command::Report(args) => report_cmd::run(*args).await,
        }
    });
    if is_init {
        // Dropping the runtime would join every blocking task, and one stuck in the kernel
        // (a FIFO, a hung NFS mount) would hold an init step past its deadline or SIGTERM.
        // Whatever is still running was abandoned on purpose: a step that got this far has
        // already cleaned up, and its on-disk state is crash-safe by design.
        runtime.shutdown_timeout(INIT_EXIT_GRACE);
    }
    outcome
}

/// How long an init step's exit waits for abandoned blocking tasks.
const INIT_EXIT_GRACE: Duration = Duration::from_millis(200);

/// The runtime tokio would build by default — one worker per CPU the process may use, or
/// `TOKIO_WORKER_THREADS` — with the workers and the blocking-pool threads (file I/O,
/// started on demand) named apart, so that `top -H` and the bench can count the workers.
///
/// `available_parallelism` counts the CPUs of the affinity mask and honours a cgroup CPU
/// quota (v1 `cpu.cfs_quota_us`, v2 `cpu.max`), rounded down, at least one: a pod limited
/// to 1 CPU on a 64-core node runs one worker, not 64 that the quota would throttle.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    // tokio starts its workers through the blocking pool while `build` runs, before any task
    // can ask for a blocking thread, so the first `workers` threads named are the workers.
    let named = AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name_fn(move || {
            if named.fetch_add(1, Ordering::Relaxed) < workers {
                "tokio-rt-worker".to_owned()
            } else {
                "tokio-blocking".to_owned()
            }
        })
        .enable_all()
        .build()
}
