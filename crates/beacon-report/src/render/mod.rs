//! Output formats. Text, Markdown and HTML print the same [`sections`]; JSON is the report's
//! data as is, every number included.

mod chart;
pub mod format;
mod html;
mod json;
mod markdown;
pub mod sections;
mod slo;
mod text;

use crate::{Report, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Json,
}

/// A rendered report: the document and, for Markdown, the SVG files it links.
pub struct Output {
    pub document: String,
    /// `(file name, content)`, to be written beside the document.
    pub attachments: Vec<(String, String)>,
    /// Charts drawn: inline in HTML, as attachments in Markdown, none in text and JSON.
    pub charts: usize,
}

/// `chart_prefix` names Markdown's SVG files (`<prefix>-q1-cpu.svg`); without one (Markdown to
/// stdout) the charts are left out with a note.
pub fn render(report: &Report, format: Format, chart_prefix: Option<&str>) -> Result<Output> {
    let sections = layout(report);
    Ok(match format {
        Format::Text => Output {
            document: text::render(report, &sections),
            attachments: Vec::new(),
            charts: 0,
        },
        Format::Markdown => markdown::render(report, &sections, chart_prefix)?,
        Format::Html => {
            let (document, charts) = html::render(report, &sections)?;
            Output {
                document,
                attachments: Vec::new(),
                charts,
            }
        }
        Format::Json => Output {
            document: json::render(report)?,
            attachments: Vec::new(),
            charts: 0,
        },
    })
}

/// Every section in order: the six questions, the SLOs, the inventory.
fn layout(report: &Report) -> Vec<sections::Section> {
    let mut all = sections::questions(report);
    all.push(slo::section(report));
    all.push(sections::inventory(report));
    all
}

/// A comfy-table table from a section table, in the given preset (plain or Markdown).
fn table(t: &sections::Table, preset: &str) -> comfy_table::Table {
    let mut out = comfy_table::Table::new();
    out.load_preset(preset).set_header(t.header.iter().copied());
    for row in &t.rows {
        out.add_row(row.iter().map(String::as_str));
    }
    for (i, numeric) in t.numeric.iter().enumerate() {
        if let (true, Some(col)) = (*numeric, out.column_mut(i)) {
            col.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    out
}

/// The table in `preset`, no line wider than `width` where it can be helped: while a row is
/// wider, the widest text column's cells (long node names) are shortened in the middle
/// (`gke-prod-…-a1b2c3`), keeping both ends, where names differ; the full names stay in JSON
/// and HTML. Numbers are never shortened.
fn fitted(t: &sections::Table, preset: &str, width: usize) -> String {
    let mut t = t.clone();
    for _ in 0..t.header.len() {
        let out = table(&t, preset).to_string();
        let widest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        let len = |col: usize| {
            t.rows
                .iter()
                .filter_map(|r| r.get(col))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let column = (0..t.header.len())
            .filter(|&c| !t.numeric[c])
            .max_by_key(|&c| len(c));
        let (Some(column), true) = (column, widest > width) else {
            return out;
        };
        let budget = len(column).saturating_sub(widest - width).max(16);
        if budget >= len(column) {
            return out;
        }
        for row in &mut t.rows {
            if let Some(cell) = row.get_mut(column) {
                *cell = format::shorten_middle(cell, budget);
            }
        }
    }
    table(&t, preset).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_table_shortens_its_names_in_the_middle_and_never_its_numbers() {
        let mut t = sections::Table {
            caption: None,
            header: vec!["NODE", "CORES", "MEM TOTAL", "MEM USED", "MEM %", "CPU %"],
            rows: Vec::new(),
            numeric: vec![false, true, true, true, true, true],
            omitted: None,
        };
        for i in 0..3 {
            t.rows.push(vec![
                format!("gke-production-europe-west4-default-pool-{i:02}-a1b2c3d4"),
                "16".into(),
                "65536 MiB".into(),
                "12345 MiB".into(),
                "40.6%".into(),
                "65.0%".into(),
            ]);
        }
        let out = fitted(&t, comfy_table::presets::NOTHING, 80);
        assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
        for i in 0..3 {
            let row = out.lines().nth(i + 1).unwrap();
            assert!(row.trim_start().starts_with("gke-production"), "{row}");
            assert!(
                row.contains(&format!("{i:02}-a1b2c3d4")) && row.contains('…'),
                "{row}"
            );
            assert!(
                row.contains("65536 MiB") && row.trim_end().ends_with("65.0%"),
                "{row}"
            );
        }
        // Narrow enough already: left as is.
        let out = fitted(&t, comfy_table::presets::NOTHING, 120);
        assert!(out.contains("gke-production-europe-west4-default-pool-00-a1b2c3d4"));
    }
}
