//! The two score distributions binned on shared edges, and drawn as plain text.
//!
//! Normal pairs and random-IP pairs share one set of equal-width bins over their combined
//! range, so that a row compares like with like; the binned counts are small enough to keep in
//! the run ledger as the evidence for the chosen threshold, and the text form shows an
//! operator where the threshold cuts the two distributions without a plotting tool.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Bins of a calibration's histogram: enough to show both modes and the overlap, few enough
/// to fit a terminal's height.
pub const DEFAULT_BINS: usize = 24;

/// The widest text [`Histogram::render`] writes.
pub const MAX_WIDTH: usize = 100;
/// The narrowest: below it the bars have no room.
const MIN_WIDTH: usize = 60;

/// Counts of normal and random-IP scores in equal-width bins `[lower + i·binWidth,
/// lower + (i+1)·binWidth)`; the last bin also holds its upper edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Histogram {
    pub lower: f64,
    pub bin_width: f64,
    pub normal: Vec<u64>,
    pub anomalous: Vec<u64>,
}

impl Histogram {
    /// Bins both sets over their combined range. Non-finite scores have no bin and are not
    /// counted. `None` when `bins` is 0 or no score is finite. When every score is the same,
    /// the range is one unit centred on it.
    pub fn new(normal: &[f64], anomalous: &[f64], bins: usize) -> Option<Histogram> {
        let finite = || normal.iter().chain(anomalous).copied().filter(|s| s.is_finite());
        let min = finite().min_by(f64::total_cmp)?;
        let max = finite().max_by(f64::total_cmp)?;
        if bins == 0 {
            return None;
        }
        let (lower, span) = if max > min { (min, max - min) } else { (min - 0.5, 1.0) };
        let mut histogram =
            Histogram { lower, bin_width: span / bins as f64, normal: Vec::new(), anomalous: Vec::new() };
        histogram.normal = histogram.counts(normal, bins);
        histogram.anomalous = histogram.counts(anomalous, bins);
        Some(histogram)
    }

    /// `scores` counted into `bins` bins of this histogram's edges.
    fn counts(&self, scores: &[f64], bins: usize) -> Vec<u64> {
        let mut counts = vec![0; bins];
        for &s in scores {
            if let Some(bin) = self.bin_at(s, bins) {
                counts[bin] += 1;
            }
        }
        counts
    }

    pub fn bins(&self) -> usize {
        self.normal.len()
    }

    /// The upper edge of the last bin.
    pub fn upper(&self) -> f64 {
        self.lower + self.bin_width * self.bins() as f64
    }

    /// The lower and upper edge of `bin`.
    pub fn edges(&self, bin: usize) -> (f64, f64) {
        (self.lower + self.bin_width * bin as f64, self.lower + self.bin_width * (bin + 1) as f64)
    }

    /// The bin holding `score`, `None` outside the range (or for NaN).
    pub fn bin_of(&self, score: f64) -> Option<usize> {
        self.bin_at(score, self.bins())
    }

    fn bin_at(&self, score: f64, bins: usize) -> Option<usize> {
        let upper = self.lower + self.bin_width * bins as f64;
        if !(score >= self.lower && score <= upper) || bins == 0 {
            return None;
        }
        let bin = ((score - self.lower) / self.bin_width).floor() as usize;
        Some(bin.min(bins - 1))
    }

    /// One row a bin, lowest scores first: the bin's edges, then the normal count and bar and
    /// the random-IP count and bar, both bars on one scale. With a threshold, a marker line
    /// follows the row of the bin that holds it (precedes the first row when it lies below
    /// the range, follows the last when above). `width` is clamped to 60..=100 columns.
    pub fn render(&self, threshold: Option<f64>, width: usize) -> String {
        let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
        let precision = (-self.bin_width.log10()).ceil().clamp(0.0, 5.0) as usize + 1;
        let edge = |x: f64| format!("{x:.precision$}");
        let edge_width = (0..self.bins())
            .flat_map(|b| {
                let (lo, hi) = self.edges(b);
                [edge(lo).len(), edge(hi).len()]
            })
            .max()
            .unwrap_or(1);
        let labels: Vec<String> = (0..self.bins())
            .map(|b| {
                let (lo, hi) = self.edges(b);
                let close = if b + 1 == self.bins() { ']' } else { ')' };
                format!("[{:>w$}, {:>w$}{close}", edge(lo), edge(hi), w = edge_width)
            })
            .collect();
        let label_width = labels.first().map_or(0, String::len).max("score".len());
        let max_count = self.normal.iter().chain(&self.anomalous).copied().max().unwrap_or(0);
        let count_width = max_count.to_string().len();
        // label, " ", count, " ", bar, " | ", count, " ", bar
        let fixed = label_width + 1 + count_width + 1 + 3 + count_width + 1;
        let bar_width = width.saturating_sub(fixed) / 2;
        let bar = |count: u64| -> String {
            if count == 0 || max_count == 0 {
                return String::new();
            }
            let len = ((count as f64 * bar_width as f64 / max_count as f64).round() as usize).max(1);
            "#".repeat(len.min(bar_width))
        };
        let column = count_width + 1 + bar_width;

        let marker = threshold.map(|t| {
            let text = format!("-- threshold {t} (in the bin above): scores above it are flagged ");
            let line = format!("{text:-<width$}");
            line.chars().take(width).collect::<String>()
        });
        let marker_after = threshold
            .map(|t| if t < self.lower { None } else { Some(self.bin_of(t).unwrap_or(self.bins().saturating_sub(1))) });

        let mut out = String::new();
        let _ = writeln!(out, "{:<label_width$} {:<column$} | random IP", "score", "normal");
        if let (Some(marker), Some(None)) = (&marker, marker_after) {
            let _ = writeln!(out, "{marker}");
        }
        for (b, label) in labels.iter().enumerate() {
            let (n, a) = (self.normal[b], self.anomalous[b]);
            let row = format!(
                "{label:<label_width$} {n:>count_width$} {:<bar_width$} | {a:>count_width$} {}",
                bar(n),
                bar(a)
            );
            let _ = writeln!(out, "{}", row.trim_end());
            if let (Some(marker), Some(Some(after))) = (&marker, marker_after)
                && after == b
            {
                let _ = writeln!(out, "{marker}");
            }
        }
        let total = |c: &[u64]| c.iter().sum::<u64>();
        let _ = writeln!(
            out,
            "{} normal, {} random-IP pairs; scores are -dot_product, higher is more anomalous",
            total(&self.normal),
            total(&self.anomalous)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with('[')).collect()
    }

    #[test]
    fn bins_share_edges_and_count_every_finite_score() {
        let normal = [0.0, 0.5, 1.0, 9.99, 10.0, f64::NAN];
        let anomalous = [5.0, 5.0, 7.5, f64::INFINITY];
        let h = Histogram::new(&normal, &anomalous, 10).expect("histogram");
        assert_eq!((h.lower, h.bin_width, h.upper()), (0.0, 1.0, 10.0));
        assert_eq!(h.normal, [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(h.anomalous, [0, 0, 0, 0, 0, 2, 0, 1, 0, 0]);
        assert_eq!(h.normal.iter().sum::<u64>() + h.anomalous.iter().sum::<u64>(), 8);
        assert_eq!((h.bin_of(-0.1), h.bin_of(10.0), h.bin_of(10.1), h.bin_of(f64::NAN)), (None, Some(9), None, None));
    }

    #[test]
    fn equal_scores_get_a_unit_range_and_nothing_finite_no_histogram() {
        let h = Histogram::new(&[3.0, 3.0], &[3.0], 4).expect("histogram");
        assert_eq!((h.lower, h.upper()), (2.5, 3.5));
        assert_eq!((h.normal.iter().sum::<u64>(), h.anomalous.iter().sum::<u64>()), (2, 1));
        assert_eq!(Histogram::new(&[], &[f64::NAN], 4), None);
        assert_eq!(Histogram::new(&[1.0], &[2.0], 0), None);
    }

    #[test]
    fn the_text_has_a_row_a_bin_with_both_counts_and_fits_the_width() {
        let normal: Vec<f64> = (0..1000).map(|i| -4.0 + (i % 37) as f64 * 0.1).collect();
        let anomalous: Vec<f64> = (0..1000).map(|i| 1.0 + (i % 53) as f64 * 0.2).collect();
        let h = Histogram::new(&normal, &anomalous, DEFAULT_BINS).expect("histogram");
        for width in [0, 80, 100, 500] {
            let text = h.render(Some(2.0), width);
            assert!(text.lines().all(|l| l.chars().count() <= MAX_WIDTH), "{text}");
            let rows = rows(&text);
            assert_eq!(rows.len(), DEFAULT_BINS);
            let (mut normal_total, mut anomalous_total) = (0, 0);
            for (b, row) in rows.iter().enumerate() {
                let (left, right) = row.split_once(" | ").expect("two columns");
                let n: u64 = left.split_whitespace().rev().find_map(|w| w.parse().ok()).expect("normal count");
                let a: u64 = right.split_whitespace().next().and_then(|w| w.parse().ok()).expect("random-IP count");
                assert_eq!((n, a), (h.normal[b], h.anomalous[b]), "{row}");
                normal_total += n;
                anomalous_total += a;
            }
            assert_eq!((normal_total, anomalous_total), (1000, 1000));
            assert!(text.starts_with("score"));
            assert!(text.lines().next().is_some_and(|l| l.contains("normal") && l.contains("random IP")));
        }
    }

    #[test]
    fn the_marker_follows_the_row_of_the_bin_holding_the_threshold() {
        let h = Histogram::new(&[0.0, 1.0, 2.0], &[8.0, 9.0, 10.0], 10).expect("histogram");
        let text = h.render(Some(4.5), 80);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.contains("threshold 4.5")).expect("marker");
        assert_eq!(lines[at - 1], rows(&text)[4], "{text}");
        assert!(lines[at - 1].starts_with("[ 4.0,  5.0)"), "{text}");
        assert_eq!(text.matches("threshold").count(), 1);

        let below = h.render(Some(-1.0), 80);
        let lines: Vec<&str> = below.lines().collect();
        assert!(lines[1].contains("threshold -1") && lines[2] == rows(&below)[0], "{below}");

        let above = h.render(Some(11.0), 80);
        let lines: Vec<&str> = above.lines().collect();
        assert!(lines[lines.len() - 2].contains("threshold 11") && lines[lines.len() - 3] == rows(&above)[9]);

        assert!(!h.render(None, 80).contains("threshold"));
    }
}
