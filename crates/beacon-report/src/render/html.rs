//! HTML: one self-contained file (inline CSS, inline SVG charts, no scripts or fetches).
//! maud escapes every interpolated string, so label values cannot inject markup.

use maud::{DOCTYPE, PreEscaped, html};

use super::chart;
use super::sections::Section;
use crate::{Report, Result};

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; }
h1 { margin-bottom: .2rem; } .meta { color: #555; margin: 0; }
section { border-top: 1px solid #ddd; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { padding: .2rem .7rem; border-bottom: 1px solid #eee; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
caption, .omitted, figcaption { text-align: left; font-style: italic; color: #555; }
.finding { font-weight: 600; }
.note { background: #fff6dd; border-left: 4px solid #e0a800; padding: .4rem .8rem; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
details pre { background: #f6f8fa; padding: .5rem; white-space: pre-wrap; word-break: break-all; }
"#;

/// The page and the number of charts inlined in it.
pub fn render(report: &Report, sections: &[Section]) -> Result<(String, usize)> {
    let mut chart_svgs = Vec::new();
    for s in sections {
        let mut svgs = Vec::new();
        for c in &s.charts {
            let remainder = c
                .remainder
                .as_ref()
                .map(|r| super::format::remainder(r, c.unit));
            svgs.push((c.id.clone(), c.title.clone(), chart::svg(c)?, remainder));
        }
        chart_svgs.push(svgs);
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "beacon report — " (report.namespace) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "beacon report" }
                @for line in super::sections::heading(report) { p.meta { (line) } }
                @for (s, svgs) in sections.iter().zip(&chart_svgs) {
                    section {
                        h2 { (s.title) }
                        @for f in &s.findings { p.finding { (f) } }
                        @for n in &s.notes { p.note { "Note: " (n) } }
                        @for t in &s.tables {
                            table {
                                @if let Some(c) = &t.caption { caption { (c) } }
                                thead { tr {
                                    @for (h, num) in t.header.iter().zip(&t.numeric) {
                                        th class=[num.then_some("num")] { (h) }
                                    }
                                } }
                                tbody {
                                    @for row in &t.rows { tr {
                                        @for (cell, num) in row.iter().zip(&t.numeric) {
                                            td class=[num.then_some("num")] { (cell) }
                                        }
                                    } }
                                }
                            }
                            @if let Some(o) = &t.omitted { p.omitted { (o) } }
                        }
                        @for (id, title, svg, remainder) in svgs {
                            figure.chart id=(id) aria-label=(title) {
                                (PreEscaped(svg))
                                @if let Some(r) = remainder { figcaption { (r) } }
                            }
                        }
                        @if !s.queries.is_empty() {
                            details open {
                                summary { "PromQL" }
                                @for q in &s.queries {
                                    p { (q.what) }
                                    pre { code { (q.promql) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let charts = chart_svgs.iter().map(Vec::len).sum();
    Ok((page.into_string(), charts))
}
