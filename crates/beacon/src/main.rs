//! `beacon`: one static binary for the service, its init containers and its report.
//!
//! Exit codes: 0 success, 1 runtime failure (the reason is printed on one line),
//! 2 bad command line (clap's own code).

mod cli;
mod error_line;
mod init_cmd;
mod logging;
mod report_cmd;
mod serve_cmd;

use std::process::ExitCode;

use clap::Parser;

/// `--version` output: the crate version and the git revision it was built from.
const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BEACON_REVISION"),
    ")"
);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line, which is what `kubectl logs` and a termination message show best.
            eprintln!("beacon: error: {}", error_line::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
