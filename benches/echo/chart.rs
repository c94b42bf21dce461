//! The SVG chart of the ratios: one horizontal bar per table row (first row
//! on top), from 1.0 to sockflow / the C baseline (median of the rounds),
//! green where sockflow is on the good side of 1.0 for that metric, red
//! where not; the ratios vs the threaded and libuv servers as dots. The
//! ratio axis is logarithmic, so 0.5 and 2 are as far from 1 and a 14x
//! outlier does not flatten the rest. Drawn with plotters' SVG backend (no
//! system fonts or libraries needed).

use crate::binaries::Impl;
use crate::report::{Better, Row};
use plotters::prelude::*;
use std::path::Path;

/// Empty row positions above the bars, where the legend goes.
const LEGEND_ROWS: usize = 3;
const GOOD: RGBColor = RGBColor(46, 160, 67);
const BAD: RGBColor = RGBColor(214, 69, 65);
const THREADS: RGBColor = RGBColor(31, 119, 180);
const LIBUV: RGBColor = RGBColor(148, 103, 189);

/// Writes the chart of `rows` to `path`; the error text if it could not.
pub fn write(rows: &[Row], title: &str, path: &Path) -> Result<(), String> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.ratio(Impl::Epoll).is_finite()).collect();
    if rows.is_empty() {
        return Err("no ratios to draw".into());
    }
    let n = rows.len();
    let labels: Vec<String> = rows.iter().map(|r| format!("{}: {}", r.scenario, r.metric)).collect();
    let all = |imp: Impl| rows.iter().map(move |r| r.ratio(imp)).filter(|x| x.is_finite());
    let top = all(Impl::Epoll).chain(all(Impl::Threads)).chain(all(Impl::Libuv)).fold(1.0f64, f64::max);
    let bottom = all(Impl::Epoll).chain(all(Impl::Threads)).chain(all(Impl::Libuv)).fold(1.0f64, f64::min);
    let (x_min, x_max) = ((bottom / 1.3).clamp(0.01, 0.5), (top * 1.3).clamp(2.0, 100.0));
    // Row i is drawn at position n - 1 - i: the table's order, top down;
    // the top `LEGEND_ROWS` positions stay empty for the legend.
    let at = |i: usize| n - 1 - i;
    let height = 120 + 28 * (n + LEGEND_ROWS) as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| format!("drawing {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(420)
        .build_cartesian_2d((x_min..x_max).log_scale().with_key_points(ticks(x_min, x_max)), (0..n + LEGEND_ROWS).into_segmented())
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_desc("sockflow / C baseline (median of rounds; bars: epoll C, dots: threads C and libuv)")
        .y_labels(n + LEGEND_ROWS)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => labels[at(*i)].clone(),
            _ => String::new(),
        })
        .x_label_formatter(&|x| format!("{x}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let ratio = r.ratio(Impl::Epoll).clamp(x_min, x_max);
            let good = match r.better {
                Better::Higher => ratio >= 1.0,
                Better::Lower => ratio <= 1.0,
            };
            let color = if good { GOOD } else { BAD };
            let mut bar =
                Rectangle::new([(1.0, SegmentValue::Exact(at(i))), (ratio, SegmentValue::Exact(at(i) + 1))], color.mix(0.8).filled());
            bar.set_margin(3, 3, 0, 0);
            bar
        }))
        .map_err(e)?
        .label("ratio vs epoll C (green: sockflow as good or better)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], GOOD.filled()));
    for (imp, color) in [(Impl::Threads, THREADS), (Impl::Libuv, LIBUV)] {
        let dots: Vec<(f64, usize)> =
            rows.iter().enumerate().filter_map(|(i, r)| Some((r.ratio(imp), i)).filter(|(x, _)| x.is_finite())).collect();
        if dots.is_empty() {
            continue;
        }
        chart
            .draw_series(
                dots.into_iter().map(|(x, i)| Circle::new((x.clamp(x_min, x_max), SegmentValue::CenterOf(at(i))), 4, color.filled())),
            )
            .map_err(e)?
            .label(format!("ratio vs {}", imp.name()))
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, color.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(2),
        )))
        .map_err(e)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Axis ticks within the range: powers of two around 1, and a few steps
/// below 0.25 for far outliers.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0].into_iter().filter(|t| (lo..=hi).contains(t)).collect()
}
