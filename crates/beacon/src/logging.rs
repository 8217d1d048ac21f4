use std::io::IsTerminal;

use anyhow::anyhow;
use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Auto,
    Json,
    Text,
}

/// Logs go to stderr so that stdout stays free for command output.
pub fn init(format: Format, filter: &str) -> anyhow::Result<()> {
    // The parser's error already prints its cause; chaining it would say everything twice.
    let filter: Targets = filter
        .parse()
        .map_err(|e| anyhow!("invalid log filter {filter:?}: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_one_clear_error() {
        let err = init(Format::Text, "info,beacon=loud").unwrap_err();
        let shown = format!("{err:#}");
        assert!(
            shown.starts_with("invalid log filter \"info,beacon=loud\": "),
            "{shown}"
        );
        assert_eq!(shown.matches("expected one of").count(), 1, "{shown}");
    }
}
