//! Markdown: tables, PromQL in code blocks, charts as SVG files linked from beside the document.

use std::fmt::Write;

use super::chart;
use super::{
    Output,
    sections::{Section, Table},
};
use crate::{Report, Result};

pub fn render(report: &Report, sections: &[Section], chart_prefix: Option<&str>) -> Result<Output> {
    let mut out = String::from("# beacon report\n\n");
    let mut attachments = Vec::new();
    for line in super::sections::heading(report) {
        let _ = writeln!(out, "{line}  ");
    }
    for s in sections {
        let _ = writeln!(out, "\n## {}\n", s.title);
        for f in &s.findings {
            let _ = writeln!(out, "{}\n", wrap(&format!("**{f}**"), ""));
        }
        for t in &s.tables {
            if let Some(c) = &t.caption {
                let _ = writeln!(out, "*{c}*\n");
            }
            let _ = writeln!(
                out,
                "{}\n",
                super::fitted(
                    &escape_pipes(t),
                    comfy_table::presets::ASCII_MARKDOWN,
                    WIDTH
                )
            );
            if let Some(o) = &t.omitted {
                let _ = writeln!(out, "*{o}*\n");
            }
        }
        for n in &s.notes {
            let _ = writeln!(out, "{}\n", wrap(&format!("**Note:** {n}"), "> "));
        }
        for chart in &s.charts {
            match chart_prefix {
                Some(prefix) => {
                    let file = format!("{prefix}-{}.svg", chart.id);
                    let _ = writeln!(out, "![{}]({file})\n", chart.title);
                    attachments.push((file, chart::svg(chart)?));
                    if let Some(r) = &chart.remainder {
                        let _ = writeln!(out, "*{}*\n", super::format::remainder(r, chart.unit));
                    }
                }
                None => {
                    let _ = writeln!(
                        out,
                        "*(chart “{}” is written as SVG with --output FILE.md)*\n",
                        chart.title
                    );
                }
            }
        }
        if !s.queries.is_empty() {
            out.push_str("PromQL:\n\n");
            for q in &s.queries {
                let _ = writeln!(out, "- {}:\n  ```promql", q.what);
                for line in super::text::promql_lines(&q.promql, WIDTH - 2) {
                    let _ = writeln!(out, "  {line}");
                }
                let _ = writeln!(out, "  ```");
            }
        }
    }
    Ok(Output {
        document: out,
        charts: attachments.len(),
        attachments,
    })
}

/// Source lines fit a 100-column terminal, as the text report's do.
const WIDTH: usize = super::text::WIDTH;

/// A paragraph in lines of at most [`WIDTH`] (soft breaks: the rendered paragraph is one).
fn wrap(text: &str, prefix: &str) -> String {
    let options = textwrap::Options::new(WIDTH)
        .initial_indent(prefix)
        .subsequent_indent(prefix);
    textwrap::wrap(text, options).join("\n")
}

/// A `|` in a cell (an alert summary, say) would end the cell early.
fn escape_pipes(t: &Table) -> Table {
    let mut escaped = t.clone();
    for cell in escaped.rows.iter_mut().flatten() {
        *cell = cell.replace('|', "\\|");
    }
    escaped
}
