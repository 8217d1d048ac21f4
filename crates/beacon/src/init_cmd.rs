//! `beacon init …` — wired to the beacon-init crate.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum InitCommand {}

pub async fn run(cmd: InitCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
