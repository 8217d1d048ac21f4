//! Terminal text: kubectl-style aligned columns, PromQL and notes indented under each answer;
//! every line fits a 100-column terminal.

use std::fmt::Write;

use super::sections::Section;
use crate::Report;

const INDENT: &str = "   ";
/// The terminal width the report is laid out for.
pub const WIDTH: usize = 100;

pub fn render(report: &Report, sections: &[Section]) -> String {
    let mut out = String::new();
    for line in super::sections::heading(report) {
        wrapped(&mut out, "", &line);
    }
    for s in sections {
        let _ = writeln!(out, "\n{}", s.title);
        let _ = writeln!(out, "{}", "─".repeat(s.title.chars().count()));
        for f in &s.findings {
            wrapped(&mut out, INDENT, f);
        }
        for t in &s.tables {
            if let Some(c) = &t.caption {
                let _ = writeln!(out, "{INDENT}{c}:");
            }
            for line in fitted(t).lines() {
                let _ = writeln!(out, "{INDENT}{}", line.trim_end());
            }
            if let Some(o) = &t.omitted {
                wrapped(&mut out, INDENT, o);
            }
        }
        for n in &s.notes {
            wrapped(&mut out, INDENT, &format!("note: {n}"));
        }
        if !s.queries.is_empty() {
            let _ = writeln!(out, "{INDENT}PromQL:");
            for q in &s.queries {
                wrapped(&mut out, &format!("{INDENT}  "), &format!("{}:", q.what));
                for line in promql_lines(&q.promql, WIDTH - INDENT.len() - 4) {
                    let _ = writeln!(out, "{INDENT}    {line}");
                }
            }
        }
    }
    out
}

/// The table within the width: long names shortened in the middle, and where that is not
/// enough (long alert summaries), the widest cells wrapped.
fn fitted(t: &super::sections::Table) -> String {
    let width = WIDTH - INDENT.len();
    let out = super::fitted(t, comfy_table::presets::NOTHING, width);
    if out.lines().all(|l| l.trim_end().chars().count() <= width) {
        return out;
    }
    let mut table = super::table(t, comfy_table::presets::NOTHING);
    table
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(width as u16);
    table.to_string()
}

/// Words wrapped to the width, continuation lines indented two more.
fn wrapped(out: &mut String, indent: &str, text: &str) {
    let rest = format!("{indent}  ");
    let options = textwrap::Options::new(WIDTH)
        .initial_indent(indent)
        .subsequent_indent(&rest);
    for line in textwrap::wrap(text, options) {
        let _ = writeln!(out, "{line}");
    }
}

/// PromQL broken into lines of at most `width` columns where whitespace is insignificant:
/// at spaces and after commas outside string literals, so each line pastes back into one
/// query. Only a string literal longer than a line (a long regex) is cut inside, as a last
/// resort.
pub fn promql_lines(promql: &str, width: usize) -> Vec<String> {
    let mut pieces: Vec<String> = vec![String::new()];
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in promql.chars() {
        pieces.last_mut().unwrap().push(c);
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None if c == ' ' || c == ',' => pieces.push(String::new()),
            None => {}
        }
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in pieces {
        if line.chars().count() + piece.trim_end().chars().count() > width && !line.is_empty() {
            lines.push(line.trim_end().to_owned());
            line.clear();
        }
        line.push_str(&piece);
        while line.chars().count() > width {
            let cut: String = line.chars().take(width).collect();
            line = line.chars().skip(width).collect();
            lines.push(cut);
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_breaks_outside_strings_and_rejoins_to_the_query() {
        let q = r#"100 * (1 - sum by (instance) (rate(node_cpu_seconds_total{mode="idle",instance=~"a b|c,d"}[5m])) / sum by (instance) (rate(node_cpu_seconds_total[5m])))"#;
        let lines = promql_lines(q, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:#?}");
        assert!(lines.len() > 3, "{lines:#?}");
        // The literal's space and comma are not break points.
        assert!(
            lines.iter().any(|l| l.contains(r#""a b|c,d"}"#)),
            "{lines:#?}"
        );
        // Joined with single spaces it is the same query up to whitespace.
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(squash(&lines.join(" ")), squash(q));
    }

    #[test]
    fn a_literal_longer_than_a_line_is_cut_as_a_last_resort() {
        let long = format!(r#"x{{pod=~"{}"}}"#, "a".repeat(120));
        let lines = promql_lines(&long, 50);
        assert!(lines.iter().all(|l| l.chars().count() <= 50), "{lines:#?}");
        assert_eq!(lines.concat(), long);
    }
}
