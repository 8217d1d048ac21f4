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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
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
