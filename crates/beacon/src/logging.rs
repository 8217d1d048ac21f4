use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Auto,
    Json,
    Text,
}

/// Logs go to stderr so that stdout stays free for command output.
pub fn init(format: Format, filter: &str) -> anyhow::Result<()> {
    let filter: Targets = filter
        .parse()
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    let json = match format {
        Format::Json => true,
        Format::Text => false,
        Format::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(fmt.json().flatten_event(true).with_current_span(false))
            .init();
    } else {
        registry.with(fmt).init();
    }
    Ok(())
}
