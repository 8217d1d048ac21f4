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
            let _ = writeln!(out, "**{f}**\n");
        }
        for t in &s.tables {
            if let Some(c) = &t.caption {
                let _ = writeln!(out, "*{c}*\n");
            }
            let _ = writeln!(
                out,
                "{}\n",
                super::table(&escape_pipes(t), comfy_table::presets::ASCII_MARKDOWN)
            );
            if let Some(o) = &t.omitted {
                let _ = writeln!(out, "*{o}*\n");
            }
        }
        for n in &s.notes {
            let _ = writeln!(out, "> **Note:** {n}\n");
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
                let _ = writeln!(out, "- {}:\n  ```promql\n  {}\n  ```", q.what, q.promql);
            }
        }
    }
    Ok(Output {
        document: out,
        charts: attachments.len(),
        attachments,
    })
}

/// A `|` in a cell (an alert summary, say) would end the cell early.
fn escape_pipes(t: &Table) -> Table {
    let mut escaped = t.clone();
    for cell in escaped.rows.iter_mut().flatten() {
        *cell = cell.replace('|', "\\|");
    }
    escaped
}
