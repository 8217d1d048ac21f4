//! The HTML page on `/`.

use std::fmt::Write;

use jiff::Timestamp;

use crate::{config::Config, identity::Identity, settings::BuildInfo};

pub struct PageData<'a> {
    pub config: &'a Config,
    pub identity: &'a Identity,
    pub visits: u64,
    pub build: BuildInfo,
    pub now: Timestamp,
}

pub fn render(d: &PageData<'_>) -> String {
    let zoned = d.now.to_zoned_datetime(d.config.timezone.tz().clone());
    let time = zoned.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%:z)").to_string();
    let id = d.identity;
    let mut rows = String::new();
    let mut row = |k: &str, v: &str| {
        let _ = write!(
            rows,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(k),
            escape(v)
        );
    };
    row("Pod", &id.pod);
    if let Some(n) = id.ordinal {
        row("Ordinal", &n.to_string());
    }
    if let Some(ns) = &id.namespace {
        row("Namespace", ns);
    }
    if let Some(node) = &id.node {
        row("Node", node);
    }
    if let Some(ip) = &id.pod_ip {
        row("Pod IP", ip);
    }
    row(
        "Version",
        &format!("{} ({})", d.build.version, d.build.revision),
    );
    let message = if d.config.message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"message\">{}</p>", escape(&d.config.message))
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {pod}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #1d2330; }}
h1 {{ margin-bottom: .25rem; }}
.time {{ font-size: 1.6rem; font-variant-numeric: tabular-nums; margin: 1rem 0; }}
.visits {{ font-size: 1.2rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ text-align: left; padding: .25rem 1rem .25rem 0; }}
th {{ color: #5a6270; font-weight: 500; }}
nav a {{ margin-right: 1rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
{message}
<p class="time" id="time" data-tz="{tz}">{time}</p>
<p class="visits">Visits to this pod: <strong id="visits">{visits}</strong></p>
<table id="identity">{rows}</table>
<nav><a href="/visits">visits</a><a href="/init-data/">init data</a><a href="/config">config</a><a href="/metrics">metrics</a><a href="/version">version</a></nav>
</body>
</html>
"#,
        title = escape(d.config.title.as_str()),
        pod = escape(&id.pod),
        tz = escape(d.config.timezone.name()),
        visits = d.visits,
    )
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_shows_time_in_the_configured_zone_and_escapes_text() {
        let config = Config {
            message: "<script>alert(1)</script>".into(),
            ..Config::default()
        };
        let identity = Identity {
            pod: "beacon-1".into(),
            ordinal: Some(1),
            namespace: Some("default".into()),
            node: None,
            pod_ip: None,
        };
        let now: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let html = render(&PageData {
            config: &config,
            identity: &identity,
            visits: 42,
            build: BuildInfo {
                version: "1.2.3",
                revision: "abc",
            },
            now,
        });
        assert!(
            html.contains("2026-11-25 13:00:00 MSK (UTC+03:00)"),
            "{html}"
        );
        assert!(html.contains("<strong id=\"visits\">42</strong>"));
        assert!(html.contains("<td>beacon-1</td>") && html.contains("<td>default</td>"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
    }
}
