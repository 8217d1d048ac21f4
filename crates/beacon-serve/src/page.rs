//! The HTML page on `/`.

use std::fmt::Write;

use jiff::Timestamp;

use crate::{config::Config, identity::Identity, settings::BuildInfo};

pub struct PageData<'a> {
    pub config: &'a Config,
    pub identity: &'a Identity,
    /// [`identity_rows`], rendered once at start: the pod's identity does not change.
    pub identity_rows: &'a str,
    pub visits: u64,
    pub now: Timestamp,
    /// What fault injection does to this pod, shown as a banner; none when no fault is active.
    pub faults: Option<&'a str>,
}

/// The identity table's rows (pod, ordinal, namespace, node, IP, version).
pub fn identity_rows(id: &Identity, build: BuildInfo) -> String {
    let mut rows = String::new();
    let mut row = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(
            rows,
            "<tr><th>{k}</th><td>{}</td></tr>",
            Escaped(&v.to_string())
        );
    };
    row("Pod", &id.pod);
    if let Some(n) = id.ordinal {
        row("Ordinal", &n);
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
        &format_args!("{} ({})", build.version, build.revision),
    );
    rows
}

/// Renders into one buffer: this runs on every visit, and the profile showed its
/// intermediate strings (escaped copies, the time, the rows) in malloc/free.
pub fn render(d: &PageData<'_>) -> String {
    let zoned = d.now.to_zoned_datetime(d.config.timezone.tz().clone());
    let title = Escaped(d.config.title.as_str());
    let mut html = String::with_capacity(2048);
    let _ = write!(
        html,
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
.faults {{ background: #fde8e8; border: 1px solid #e0a0a0; color: #7a1a1a; padding: .5rem .75rem; border-radius: 4px; }}
</style>
</head>
<body>
<h1>{title}</h1>
"#,
        pod = Escaped(&d.identity.pod),
    );
    if let Some(faults) = d.faults {
        let _ = writeln!(
            html,
            "<p class=\"faults\" id=\"faults\" role=\"alert\">Fault injection is on for this pod: {}</p>",
            Escaped(faults)
        );
    }
    if !d.config.message.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"message\">{}</p>",
            Escaped(&d.config.message)
        );
    }
    let _ = write!(
        html,
        r#"<p class="time" id="time" data-tz="{tz}">{time}</p>
<p class="visits">Visits to this pod: <strong id="visits">{visits}</strong></p>
<table id="identity">{rows}</table>
<nav><a href="/visits">visits</a><a href="/init-data/">init data</a><a href="/config">config</a><a href="/metrics">metrics</a><a href="/version">version</a></nav>
</body>
</html>
"#,
        tz = Escaped(d.config.timezone.name()),
        time = zoned.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%:z)"),
        visits = d.visits,
        rows = d.identity_rows,
    );
    html
}

/// Text escaped for HTML element content and quoted attribute values, written without a copy.
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&s[last..i])?;
            f.write_str(entity)?;
            last = i + 1;
        }
        f.write_str(&s[last..])
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    Escaped(s).to_string()
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
        let rows = identity_rows(
            &identity,
            BuildInfo {
                version: "1.2.3",
                revision: "abc",
            },
        );
        let page = |faults| {
            render(&PageData {
                config: &config,
                identity: &identity,
                identity_rows: &rows,
                visits: 42,
                now,
                faults,
            })
        };
        let html = page(None);
        assert!(
            html.contains("2026-11-25 13:00:00 MSK (UTC+03:00)"),
            "{html}"
        );
        assert!(html.contains("<strong id=\"visits\">42</strong>"));
        assert!(
            html.contains("<tr><th>Version</th><td>1.2.3 (abc)</td></tr>"),
            "{html}"
        );
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
        assert!(html.contains("<td>beacon-1</td>") && html.contains("<td>default</td>"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(!html.contains("id=\"faults\""));
        let html = page(Some("latency 1s & more"));
        assert!(
            html.contains("Fault injection is on for this pod: latency 1s &amp; more</p>"),
            "{html}"
        );
    }
}
