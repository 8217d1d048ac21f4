use std::process::ExitCode;

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
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve_cmd::run(args).await,
            Command::Init(cmd) => init_cmd::run(cmd).await,
            Command::Report(args) => report_cmd::run(*args).await,
        }
    })
}
