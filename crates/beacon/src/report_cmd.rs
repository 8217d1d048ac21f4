//! `beacon report` — wired to the beacon-report crate.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {}

pub async fn run(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("beacon report is not implemented yet")
}
