//! The two score distributions as an SVG file: overlaid histograms on the bins of
//! [`Histogram`], with the threshold as a vertical line, for a report or a review where the
//! terminal histogram is too coarse.
//!
//! plotters' SVG backend writes text as `<text>` elements and, built without its `ttf` and
//! `ab_glyph` features, sizes labels by an estimate instead of a font file: the plot needs no
//! system fonts, so it draws the same on a build host, in CI and in a container.

use std::path::Path;

use plotters::prelude::*;
use thiserror::Error;

use super::histogram::{DEFAULT_BINS, Histogram};

/// The image's size in pixels.
const SIZE: (u32, u32) = (900, 500);

const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALOUS: RGBColor = RGBColor(255, 127, 14);
const THRESHOLD: RGBColor = RGBColor(214, 39, 40);

/// Why the plot was not written.
#[derive(Debug, Error)]
pub enum PlotError {
    #[error("no finite score to plot")]
    NoScores,
    #[error("threshold {0} is not a finite number")]
    Threshold(f64),
    #[error("cannot draw {path}: {message}")]
    Draw { path: String, message: String },
}

/// Writes `normal` and `anomalous` (random-IP) anomaly scores as two overlaid step histograms
/// on shared bins, a vertical line at `threshold` and a legend, to the SVG file `path`.
/// The x axis spans the scores and the threshold, so a threshold outside the scores still shows.
pub fn write_svg(path: &Path, normal: &[f64], anomalous: &[f64], threshold: f64, title: &str) -> Result<(), PlotError> {
    if !threshold.is_finite() {
        return Err(PlotError::Threshold(threshold));
    }
    let histogram = Histogram::new(normal, anomalous, DEFAULT_BINS).ok_or(PlotError::NoScores)?;
    draw(path, &histogram, threshold, title)
        .map_err(|e| PlotError::Draw { path: path.display().to_string(), message: e.to_string() })
}

fn draw(
    path: &Path,
    histogram: &Histogram,
    threshold: f64,
    title: &str,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let (lo, hi) = (histogram.lower.min(threshold), histogram.upper().max(threshold));
    let pad = (hi - lo) * 0.03;
    let top = histogram.normal.iter().chain(&histogram.anomalous).copied().max().unwrap_or(0).max(1) as f64 * 1.1;

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo - pad..hi + pad, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("anomaly score (-dot_product)")
        .y_desc("pairs")
        .y_label_formatter(&|count| format!("{count:.0}"))
        .draw()?;

    for (label, counts, color) in
        [("normal", &histogram.normal, NORMAL), ("random IP", &histogram.anomalous, ANOMALOUS)]
    {
        chart.draw_series((0..histogram.bins()).filter(|&b| counts[b] > 0).map(|b| {
            let (left, right) = histogram.edges(b);
            Rectangle::new([(left, 0.0), (right, counts[b] as f64)], color.mix(0.25).filled())
        }))?;
        chart
            .draw_series(LineSeries::new(steps(histogram, counts), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new([(threshold, 0.0), (threshold, top)], THRESHOLD.stroke_width(2)))?
        .label(format!("threshold {threshold}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], THRESHOLD.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()
}

/// The outline of one histogram: up and down at each bin edge, from 0 at the lower edge of the
/// range to 0 at its upper edge.
fn steps(histogram: &Histogram, counts: &[u64]) -> Vec<(f64, f64)> {
    let mut points = vec![(histogram.lower, 0.0)];
    for (b, &count) in counts.iter().enumerate() {
        let (left, right) = histogram.edges(b);
        points.extend([(left, count as f64), (right, count as f64)]);
    }
    points.push((histogram.upper(), 0.0));
    points
}

#[cfg(test)]
mod tests {
    use aws_smithy_xml::decode::Document;

    use super::*;

    /// The `points` of every `<polyline>` drawn in `color`, as pixel pairs.
    fn polylines(svg: &str, color: RGBColor) -> Vec<Vec<(f64, f64)>> {
        let stroke = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
        let mut doc = Document::new(svg);
        let mut lines = Vec::new();
        while let Some(el) = doc.next_start_element() {
            if el.local() == "polyline" && el.attr("stroke") == Some(stroke.as_str()) {
                let points = el.attr("points").unwrap_or_default();
                let pairs = points
                    .split_whitespace()
                    .filter_map(|p| p.split_once(','))
                    .filter_map(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
                    .collect();
                lines.push(pairs);
            }
        }
        lines
    }

    /// The content of every `<text>` element, trimmed.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>')?.1.split_once("</text>"))
            .map(|(t, _)| t.trim())
            .collect()
    }

    #[test]
    fn the_svg_has_both_distributions_a_legend_and_the_threshold_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("calibration.svg");
        let normal: Vec<f64> = (0..500).map(|i| -6.0 + (i % 41) as f64 * 0.15).collect();
        let anomalous: Vec<f64> = (0..500).map(|i| -1.0 + (i % 59) as f64 * 0.2).collect();
        let threshold = 2.5;
        write_svg(&path, &normal, &anomalous, threshold, "model 7 <calibration>").expect("svg");
        let svg = std::fs::read_to_string(&path).expect("read");

        // Well-formed enough for an XML tokenizer, with an <svg> root.
        let mut doc = Document::new(&svg);
        assert_eq!(doc.next_start_element().map(|e| e.local().to_owned()), Some("svg".to_owned()));
        assert!(Document::new(&svg).all(|token| token.is_ok()));
        assert!(svg.trim_end().ends_with("</svg>"));

        let texts = texts(&svg);
        for text in
            ["normal", "random IP", "threshold 2.5", "model 7 &lt;calibration&gt;", "anomaly score (-dot_product)"]
        {
            assert!(texts.contains(&text), "no {text} in {texts:?}");
        }

        // The step outlines run from the histogram's lower edge to its upper edge; the
        // threshold's line (the one with two points; the legend's sample has a shorter one)
        // is vertical, at the threshold's place between them.
        let histogram = Histogram::new(&normal, &anomalous, DEFAULT_BINS).expect("histogram");
        let outline = polylines(&svg, NORMAL).into_iter().max_by_key(Vec::len).expect("normal outline");
        assert_eq!(outline.len(), 2 * DEFAULT_BINS + 2);
        let (left, right) = (outline[0].0, outline[outline.len() - 1].0);
        let expected = left + (threshold - histogram.lower) / (histogram.upper() - histogram.lower) * (right - left);
        let vertical: Vec<_> =
            polylines(&svg, THRESHOLD).into_iter().filter(|l| l.len() == 2 && l[0].0 == l[1].0).collect();
        assert_eq!(vertical.len(), 1, "{vertical:?}");
        assert!(
            (vertical[0][0].0 - expected).abs() <= 1.0,
            "line at x={}, threshold at x={expected}",
            vertical[0][0].0
        );
        assert!(!polylines(&svg, ANOMALOUS).is_empty());
    }

    #[test]
    fn no_scores_or_an_infinite_threshold_write_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.svg");
        assert!(matches!(write_svg(&path, &[], &[f64::NAN], 1.0, "t"), Err(PlotError::NoScores)));
        assert!(matches!(write_svg(&path, &[1.0], &[2.0], f64::NAN, "t"), Err(PlotError::Threshold(_))));
        assert!(!path.exists());
        let missing = dir.path().join("no-such-dir").join("x.svg");
        assert!(matches!(write_svg(&missing, &[1.0], &[2.0], 1.5, "t"), Err(PlotError::Draw { .. })));
    }
}
