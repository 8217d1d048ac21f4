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
const LEGEND_WIDTH: u32 = 220;
const LEGEND_NAME_CHARS: usize = 30;

fn err(e: impl std::fmt::Display) -> Error {
    Error::Render(format!("chart: {e}"))
}

/// Renders one chart as a standalone SVG document.
pub fn svg(chart: &Chart) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);

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

        let mut ctx = ChartBuilder::on(&plot)
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
            let color = Palette99::pick(i).to_rgba();
            let line = series
                .points
                .iter()
                .filter(|p| p.1.is_finite())
                .map(|&(t, v)| (t, axis.scale(v)));
            ctx.draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(err)?;
        }

        let row = 18;
        for (i, series) in chart.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let y = 40 + i as i32 * row;
            if y + row > HEIGHT as i32 {
                legend
                    .draw_text(
                        &format!("… {} more", chart.series.len() - i),
                        &("sans-serif", 15).into_text_style(&legend),
                        (10, y),
                    )
                    .map_err(err)?;
                break;
            }
            legend
                .draw(&PathElement::new(
                    vec![(8, y + 7), (28, y + 7)],
                    color.stroke_width(3),
                ))
                .map_err(err)?;
            let mut name: String = series.name.chars().take(LEGEND_NAME_CHARS).collect();
            if series.name.chars().count() > LEGEND_NAME_CHARS {
                name.push('…');
            }
            legend
                .draw_text(&name, &("sans-serif", 15).into_text_style(&legend), (34, y))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
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
        };
        let svg = svg(&chart).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        // Data lines are the only 2-px-wide ones (axes and ticks are 1 px).
        assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 2, "{svg}");
        assert!(svg.contains("CPU &lt;test&gt;"), "title escaped: {svg}");
        // The legend names each series in a <text> element of its own line.
        assert!(
            svg.contains("\na\n</text>") && svg.contains("\nb\n</text>"),
            "{svg}"
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
        };
        assert!(svg(&chart).unwrap().contains("empty"));
    }
}
