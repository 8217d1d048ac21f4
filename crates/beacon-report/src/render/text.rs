//! Terminal text: kubectl-style aligned columns, PromQL and notes indented under each answer.

use std::fmt::Write;

use super::sections::Section;
use crate::Report;

const INDENT: &str = "   ";

pub fn render(report: &Report, sections: &[Section]) -> String {
    let mut out = String::new();
    for line in super::sections::heading(report) {
        let _ = writeln!(out, "{line}");
    }
    for s in sections {
        let _ = writeln!(out, "\n{}", s.title);
        let _ = writeln!(out, "{}", "─".repeat(s.title.chars().count()));
        for f in &s.findings {
            let _ = writeln!(out, "{INDENT}{f}");
        }
        for t in &s.tables {
            if let Some(c) = &t.caption {
                let _ = writeln!(out, "{INDENT}{c}:");
            }
            let table = super::table(t, comfy_table::presets::NOTHING).to_string();
            for line in table.lines() {
                let _ = writeln!(out, "{INDENT}{}", line.trim_end());
            }
        }
        for n in &s.notes {
            let _ = writeln!(out, "{INDENT}note: {n}");
        }
        if !s.queries.is_empty() {
            let _ = writeln!(out, "{INDENT}PromQL:");
            for q in &s.queries {
                let _ = writeln!(out, "{INDENT}  {}: {}", q.what, q.promql);
            }
        }
    }
    out
}
