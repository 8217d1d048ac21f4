//! SVG time-series charts (plotters' SVG backend: labels are `<text>` elements, so no font
//! files are read and the binary stays static).

use plotters::prelude::*;

use crate::{
    Error, Result,
    model::Chart,
    render::format::{self, Axis},
};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 340;
/// Right-hand strip for the legend, so it never covers a line.
const LEGEND_WIDTH: u32 = 250;
/// Legend names fit the strip in this many columns of its 12 px font (about 6.5 px each).
const LEGEND_NAME_COLUMNS: usize = 30;
const LEGEND_ROW: u32 = 18;
const LEGEND_TOP: u32 = 40;
/// Tableau's ten plus two: distinct, and readable on white, for every line a chart may draw.
const PALETTE: [(u8, u8, u8); 12] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
    (0xbc, 0xbd, 0x22),
    (0x17, 0xbe, 0xcf),
    (0x39, 0x3b, 0x79),
    (0xe7, 0xba, 0x52),
];

fn err(e: impl std::fmt::Display) -> Error {
    Error::Render(format!("chart: {e}"))
}

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Renders one chart as a standalone SVG document.
pub fn svg(chart: &Chart) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, _legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        plot_lines(chart, &plot)?;
        root.present().map_err(err)?;
    }
    // The legend is written by hand: plotters cannot give a label a <title>, which is what
    // shows a shortened name in full (as a tooltip, and to screen readers).
    let legend = legend(chart);
    let at = out
        .rfind("</svg>")
        .ok_or_else(|| err("no </svg> in plotters' output"))?;
    out.insert_str(at, &legend);
    Ok(out)
}

type Plot<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn plot_lines(chart: &Chart, plot: &Plot) -> Result<()> {
    let points = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.1.is_finite());
    let (mut t0, mut t1, mut ymax) = (f64::MAX, f64::MIN, 0.0f64);
    for &(t, v) in points {
        t0 = t0.min(t);
        t1 = t1.max(t);
        ymax = ymax.max(v);
    }
    if t0 > t1 {
        // Nothing to draw: an empty frame still tells the reader the chart is empty.
        (t0, t1) = (0.0, 1.0);
    }
    if t1 <= t0 {
        t1 = t0 + 1.0;
    }
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    // Plot in display units (MiB, not bytes), so plotters' round tick values are round
    // in what the reader sees: 0, 20, 40 MiB rather than 47.7, 95.4 MiB.
    let axis = Axis::for_max(chart.unit, ymax);
    let ymax = axis.scale(ymax);

    let mut ctx = ChartBuilder::on(plot)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(78)
        .build_cartesian_2d(t0..t1, 0.0..ymax)
        .map_err(err)?;
    ctx.configure_mesh()
        .x_labels(7)
        .y_labels(6)
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|t| format::clock_for_span(*t, t1 - t0))
        .y_label_formatter(&|v| axis.tick(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for (i, series) in chart.series.iter().enumerate() {
        let line = series
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(t, v)| (t, axis.scale(v)));
        ctx.draw_series(LineSeries::new(line, colour(i).stroke_width(2)))
            .map_err(err)?;
    }
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One row per line: a swatch and the name, shortened in the middle to fit, the full name in
/// a `<title>`; then the remainder, in words, on as many rows as it needs.
fn legend(chart: &Chart) -> String {
    let x = WIDTH - LEGEND_WIDTH;
    let text = |y: u32, fill: &str, body: &str| {
        format!(
            r#"<text x="{}" y="{y}" dy="0.76em" font-family="sans-serif" font-size="12" fill="{fill}">{body}</text>"#,
            x + 34
        )
    };
    let mut out = String::from("<g class=\"legend\">");
    let mut y = LEGEND_TOP;
    for (i, series) in chart.series.iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let name = escape(&format::shorten_middle(&series.name, LEGEND_NAME_COLUMNS));
        out.push_str(&format!(
            r##"<g><title>{}</title><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#{r:02x}{g:02x}{b:02x}" stroke-width="3"/>{}</g>"##,
            escape(&series.name),
            x + 8,
            y + 7,
            x + 28,
            y + 7,
            text(y, "#000000", &name)
        ));
        y += LEGEND_ROW;
    }
    if let Some(r) = &chart.remainder {
        let words = format::remainder(r, chart.unit);
        let width = LEGEND_NAME_COLUMNS + 4;
        for line in textwrap::wrap(&words, width) {
            out.push_str(&text(y, "#555555", &escape(&line)));
            y += LEGEND_ROW;
        }
    }
    out.push_str("</g>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NamedSeries, Unit};

    #[test]
    fn draws_one_polyline_per_series_and_a_legend() {
        let chart = Chart {
            id: "t".into(),
            title: "CPU <test>".into(),
            unit: Unit::Cores,
            series: vec![
                NamedSeries {
                    name: "a".into(),
                    points: vec![(0.0, 0.1), (15.0, 0.2), (30.0, f64::NAN), (45.0, 0.3)],
                },
                NamedSeries {
                    name: "b".into(),
                    points: vec![(0.0, 1.0), (45.0, 1.0)],
                },
            ],
            remainder: None,
        };
        let svg = svg(&chart).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        // Data lines are the only 2-px-wide ones (axes and ticks are 1 px).
        assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 2, "{svg}");
        assert!(svg.contains("CPU &lt;test&gt;"), "title escaped: {svg}");
        // The legend names each series in a <text> element, with its name in a <title>.
        assert!(
            svg.contains("<title>a</title>") && svg.contains(">a</text>"),
            "{svg}"
        );
        assert!(svg.contains(">b</text>"), "{svg}");
    }

    fn chart_of(names: &[&str]) -> Chart {
        Chart {
            id: "t".into(),
            title: "nodes".into(),
            unit: Unit::Percent,
            series: names
                .iter()
                .map(|n| NamedSeries {
                    name: (*n).into(),
                    points: vec![(0.0, 1.0), (60.0, 2.0)],
                })
                .collect(),
            remainder: None,
        }
    }

    #[test]
    fn long_legend_names_are_shortened_in_the_middle_with_the_full_name_in_a_title() {
        let long = "gke-production-cluster-default-pool-1-a1b2c3d4-x9z8";
        let svg = svg(&chart_of(&[long, "b<&>"])).unwrap();
        assert!(svg.contains(&format!("<title>{long}</title>")), "{svg}");
        let shown = format::shorten_middle(long, LEGEND_NAME_COLUMNS);
        assert!(shown.contains('…') && shown.ends_with("x9z8"), "{shown}");
        assert!(svg.contains(&format!(">{shown}</text>")), "{svg}");
        assert!(
            !svg.contains(&format!(">{long}</text>")),
            "not drawn in full"
        );
        assert!(
            svg.contains("<title>b&lt;&amp;&gt;</title>"),
            "escaped: {svg}"
        );
    }

    #[test]
    fn every_line_has_its_own_colour_and_the_remainder_is_stated() {
        let names: Vec<String> = (0..12).map(|i| format!("pod-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut chart = chart_of(&refs);
        chart.remainder = Some(crate::model::Remainder {
            count: 1490,
            noun: "pods",
            measure: "average CPU",
            median: Some(12.5),
        });
        let svg = svg(&chart).unwrap();
        let swatches: Vec<&str> = svg
            .split(r#"stroke-width="3""#)
            .filter_map(|part| part.rsplit("stroke=\"").next())
            .take(12)
            .collect();
        let mut distinct = swatches.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 12, "{swatches:?}");
        let text: String = svg
            .split('>')
            .filter_map(|p| p.strip_suffix("</text"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("1,490 other pods: median average CPU") && text.contains("12.5%"),
            "{text}"
        );
    }

    #[test]
    fn byte_axes_have_round_evenly_spaced_ticks() {
        // 100 MiB is not a round number of bytes; ticks must still be round in MiB.
        let mib = 1024.0 * 1024.0;
        let chart = Chart {
            id: "m".into(),
            title: "memory".into(),
            unit: Unit::Bytes,
            series: vec![NamedSeries {
                name: "pod".into(),
                points: vec![(0.0, 10.0 * mib), (60.0, 100.0 * mib)],
            }],
            remainder: None,
        };
        let svg = svg(&chart).unwrap();
        let ticks: Vec<f64> = svg
            .split("</text>")
            .filter_map(|t| t.trim().rsplit('>').next()?.trim().strip_suffix(" MiB"))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(ticks.len() >= 4, "{ticks:?} in {svg}");
        let step = ticks[1] - ticks[0];
        assert!(step > 0.0 && step.fract() == 0.0, "round step: {ticks:?}");
        for pair in ticks.windows(2) {
            assert_eq!(pair[1] - pair[0], step, "evenly spaced: {ticks:?}");
        }
        assert_eq!(ticks[0], 0.0);
        assert!(
            *ticks.last().unwrap() >= 100.0,
            "covers the maximum: {ticks:?}"
        );
    }

    /// The x axis's labels: the `<text>` elements holding a time (`:`), in order.
    fn x_labels(svg: &str) -> Vec<String> {
        svg.split("</text>")
            .filter_map(|t| Some(t.trim().rsplit('>').next()?.trim().to_owned()))
            .filter(|t| t.contains(':'))
            .collect()
    }

    #[test]
    fn time_labels_never_repeat_whatever_the_span() {
        // 2 minutes at 1 s, 10 minutes, an hour at 15 s, three days at 20 minutes.
        for (span, step) in [
            (120.0, 1.0),
            (600.0, 5.0),
            (3600.0, 15.0),
            (259_200.0, 1200.0),
        ] {
            let t0 = 1_795_000_000.0;
            let points: Vec<(f64, f64)> = (0..=(span / step) as usize)
                .map(|i| (t0 + i as f64 * step, 0.5))
                .collect();
            let chart = Chart {
                id: "t".into(),
                title: "cpu".into(),
                unit: Unit::Cores,
                series: vec![NamedSeries {
                    name: "pod".into(),
                    points,
                }],
                remainder: None,
            };
            let labels = x_labels(&svg(&chart).unwrap());
            assert!(labels.len() >= 3, "span {span}: {labels:?}");
            let mut distinct = labels.clone();
            distinct.dedup();
            assert_eq!(distinct, labels, "span {span}: repeated labels");
        }
    }

    #[test]
    fn an_empty_chart_still_renders() {
        let chart = Chart {
            id: "t".into(),
            title: "empty".into(),
            unit: Unit::Percent,
            series: vec![],
            remainder: None,
        };
        assert!(svg(&chart).unwrap().contains("empty"));
    }
}
