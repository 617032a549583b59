//! The threshold on the anomaly score (`-dot_product`, higher is more anomalous) and what it
//! achieves.
//!
//! A pair is flagged when its score is *strictly* above the threshold, as the scorer does. For
//! a target false positive rate `r` over `n` normal scores, the threshold is the smallest `t`
//! such that the fraction of normal scores strictly above `t` is at most `r`: with `k =
//! floor(r·n)` (plus 1e-9 against float rounding, so that 0.29·100 allows 29), it is the
//! `(k+1)`-th largest normal score. Scores tied with it are not flagged, so with ties the
//! achieved rate may be below `r`; any smaller `t` would flag more than `k`. The rule is the
//! engine's own ([`crate::ipinsights::evaluate::tpr_at_fpr`]), applied with random-IP pairs as
//! the positive class.
//!
//! The threshold is chosen on the calibration half's normal scores and its false positive rate
//! is measured again on the check half's: the first rate meets the target by construction, the
//! second is what the deployed scorer can expect.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::histogram::{DEFAULT_BINS, Histogram};
use crate::ipinsights::evaluate::{auc, tpr_at_fpr};

/// How the threshold is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// The smallest threshold that flags at most this fraction (in `[0, 1)`) of the
    /// calibration half's normal pairs.
    TargetFalsePositiveRate(f64),
    /// A threshold given by the manifest: only measured, not chosen.
    Fixed(f64),
}

/// Anomaly scores (`-dot_product`) of one half of the sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    pub normal: Vec<f64>,
    /// The random-IP pairs.
    pub anomalous: Vec<f64>,
}

/// Why no threshold could be chosen or measured.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ThresholdError {
    #[error("no {0} scores")]
    Empty(&'static str),
    #[error("{set} score {index} is {value}, not a finite number")]
    NotFinite { set: &'static str, index: usize, value: f64 },
    #[error("target false positive rate {0} is not in [0, 1)")]
    TargetOutOfRange(f64),
    #[error(
        "a target false positive rate of {target} lets all {normal} normal scores be flagged: no threshold bounds it"
    )]
    Unbounded { target: f64, normal: usize },
    #[error("fixed threshold {0} is not a finite number")]
    FixedNotFinite(f64),
}

/// The set sizes behind a [`Calibration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub calibration_normal: usize,
    pub calibration_anomalous: usize,
    pub check_normal: usize,
    pub check_anomalous: usize,
}

/// A calibrated (or measured fixed) threshold with its evidence, as the run ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    /// Scores strictly above it are flagged.
    pub threshold: f64,
    /// `None` for a fixed threshold.
    pub target_false_positive_rate: Option<f64>,
    /// Normal pairs of the calibration half above the threshold.
    pub calibration_false_positive_rate: f64,
    /// Normal pairs of the check half above the threshold: the held-out estimate.
    pub check_false_positive_rate: f64,
    /// Random-IP pairs of the check half above the threshold.
    pub check_true_positive_rate: f64,
    /// Normal against random-IP pairs over both halves; it does not depend on the threshold,
    /// so the half the threshold was chosen on biases it no more than the other.
    pub auc: f64,
    pub counts: Counts,
    pub seed: u64,
    /// Both halves' scores on [`DEFAULT_BINS`] shared bins.
    pub histogram: Histogram,
}

/// The smallest threshold that flags at most `target` of the `normal` scores (the rule in the
/// module's documentation).
pub fn threshold_for_fpr(normal: &[f64], target: f64) -> Result<f64, ThresholdError> {
    checked("normal", normal)?;
    if !(0.0..1.0).contains(&target) {
        return Err(ThresholdError::TargetOutOfRange(target));
    }
    let point = tpr_at_fpr(&[], normal, &[target]);
    match point.first().map(|p| p.threshold) {
        Some(t) if t.is_finite() => Ok(t),
        _ => Err(ThresholdError::Unbounded { target, normal: normal.len() }),
    }
}

/// The fraction of `scores` strictly above `threshold`; 0 for no scores.
pub fn rate_above(scores: &[f64], threshold: f64) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|&&s| s > threshold).count() as f64 / scores.len() as f64
}

/// Chooses (or takes) the threshold on `calibration`, measures it on both halves, and
/// summarises the distributions. Every set must be non-empty and finite.
pub fn calibrate(
    calibration: &Scores,
    check: &Scores,
    policy: Policy,
    seed: u64,
) -> Result<Calibration, ThresholdError> {
    checked("calibration-half normal", &calibration.normal)?;
    checked("calibration-half random-IP", &calibration.anomalous)?;
    checked("check-half normal", &check.normal)?;
    checked("check-half random-IP", &check.anomalous)?;
    let (threshold, target) = match policy {
        Policy::TargetFalsePositiveRate(target) => (threshold_for_fpr(&calibration.normal, target)?, Some(target)),
        Policy::Fixed(t) if t.is_finite() => (t, None),
        Policy::Fixed(t) => return Err(ThresholdError::FixedNotFinite(t)),
    };
    let normal: Vec<f64> = calibration.normal.iter().chain(&check.normal).copied().collect();
    let anomalous: Vec<f64> = calibration.anomalous.iter().chain(&check.anomalous).copied().collect();
    // Random-IP pairs are the positive class: they should score higher.
    let auc = auc(&anomalous, &normal).ok_or(ThresholdError::Empty("normal or random-IP"))?;
    let histogram = Histogram::new(&normal, &anomalous, DEFAULT_BINS).ok_or(ThresholdError::Empty("finite"))?;
    Ok(Calibration {
        threshold,
        target_false_positive_rate: target,
        calibration_false_positive_rate: rate_above(&calibration.normal, threshold),
        check_false_positive_rate: rate_above(&check.normal, threshold),
        check_true_positive_rate: rate_above(&check.anomalous, threshold),
        auc,
        counts: Counts {
            calibration_normal: calibration.normal.len(),
            calibration_anomalous: calibration.anomalous.len(),
            check_normal: check.normal.len(),
            check_anomalous: check.anomalous.len(),
        },
        seed,
        histogram,
    })
}

/// Refuses an empty set and a non-finite score: scores come from an endpoint, and a NaN or an
/// infinity would silently move a quantile.
fn checked(set: &'static str, scores: &[f64]) -> Result<(), ThresholdError> {
    if scores.is_empty() {
        return Err(ThresholdError::Empty(set));
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(ThresholdError::NotFinite { set, index, value: scores[index] }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_to_ten() -> Vec<f64> {
        (1..=10).map(f64::from).collect()
    }

    #[test]
    fn the_threshold_is_the_smallest_that_keeps_the_rate() {
        let normal = one_to_ten();
        // k = floor(r·10) scores may be above: the (k+1)-th largest.
        assert_eq!(threshold_for_fpr(&normal, 0.2), Ok(8.0));
        assert_eq!(threshold_for_fpr(&normal, 0.25), Ok(8.0));
        assert_eq!(threshold_for_fpr(&normal, 0.29), Ok(8.0));
        assert_eq!(threshold_for_fpr(&normal, 0.3), Ok(7.0));
        assert_eq!(rate_above(&normal, 8.0), 0.2);
        // Just below it, a third score is flagged.
        assert_eq!(rate_above(&normal, 7.999), 0.3);
        // The order of the input does not matter.
        let shuffled = [4.0, 10.0, 1.0, 8.0, 3.0, 9.0, 2.0, 7.0, 6.0, 5.0];
        assert_eq!(threshold_for_fpr(&shuffled, 0.2), Ok(8.0));
    }

    #[test]
    fn target_zero_takes_the_largest_score_and_a_target_near_one_the_smallest() {
        let normal = one_to_ten();
        assert_eq!(threshold_for_fpr(&normal, 0.0), Ok(10.0));
        assert_eq!(threshold_for_fpr(&normal, 0.99), Ok(1.0));
        assert_eq!(rate_above(&normal, 1.0), 0.9);
        assert_eq!(
            threshold_for_fpr(&normal, 0.999_999_999_99),
            Err(ThresholdError::Unbounded { target: 0.999_999_999_99, normal: 10 })
        );
        for bad in [1.0, 1.5, -0.1, f64::NAN] {
            assert!(matches!(threshold_for_fpr(&normal, bad), Err(ThresholdError::TargetOutOfRange(_))), "{bad}");
        }
    }

    #[test]
    fn equal_scores_are_all_below_or_at_the_threshold() {
        let normal = [2.0; 10];
        for target in [0.0, 0.1, 0.5, 0.95] {
            assert_eq!(threshold_for_fpr(&normal, target), Ok(2.0));
        }
        assert_eq!(rate_above(&normal, 2.0), 0.0);
        // Ties at the cut: 5, 5, 5 with 1 allowed above stops at 5 and flags only the 9.
        assert_eq!(threshold_for_fpr(&[1.0, 5.0, 5.0, 5.0, 9.0], 0.2), Ok(5.0));
        assert_eq!(threshold_for_fpr(&[1.0, 5.0, 5.0, 5.0, 9.0], 0.4), Ok(5.0));
    }

    #[test]
    fn empty_and_non_finite_scores_are_errors() {
        assert_eq!(threshold_for_fpr(&[], 0.1), Err(ThresholdError::Empty("normal")));
        assert_eq!(
            threshold_for_fpr(&[1.0, f64::NAN], 0.1).map_err(|e| e.to_string()),
            Err("normal score 1 is NaN, not a finite number".to_owned())
        );
        let full = Scores { normal: vec![1.0], anomalous: vec![2.0] };
        let no_anomalous = Scores { normal: vec![1.0], anomalous: vec![] };
        let policy = Policy::TargetFalsePositiveRate(0.1);
        assert_eq!(calibrate(&full, &no_anomalous, policy, 0), Err(ThresholdError::Empty("check-half random-IP")));
        assert_eq!(
            calibrate(&no_anomalous, &full, policy, 0),
            Err(ThresholdError::Empty("calibration-half random-IP"))
        );
        let infinite = Scores { normal: vec![1.0], anomalous: vec![f64::INFINITY] };
        assert!(matches!(calibrate(&full, &infinite, policy, 0), Err(ThresholdError::NotFinite { index: 0, .. })));
        assert_eq!(
            calibrate(&full, &full, Policy::Fixed(f64::INFINITY), 0),
            Err(ThresholdError::FixedNotFinite(f64::INFINITY))
        );
    }

    /// The halves of the hand-computed example below.
    fn halves() -> (Scores, Scores) {
        let calibration = Scores { normal: one_to_ten(), anomalous: vec![11.0, 3.0] };
        let check = Scores { normal: vec![0.5, 7.5, 8.0, 8.5, 12.0], anomalous: vec![7.0, 8.0, 9.0, 20.0] };
        (calibration, check)
    }

    #[test]
    fn a_calibration_measures_the_threshold_on_the_check_half() {
        let (calibration, check) = halves();
        let c = calibrate(&calibration, &check, Policy::TargetFalsePositiveRate(0.2), 42).expect("calibration");
        assert_eq!(c.threshold, 8.0);
        assert_eq!(c.target_false_positive_rate, Some(0.2));
        assert_eq!(c.calibration_false_positive_rate, 0.2);
        // Above 8: 8.5 and 12 of five normal, 9 and 20 of four random-IP scores.
        assert_eq!(c.check_false_positive_rate, 0.4);
        assert_eq!(c.check_true_positive_rate, 0.5);
        // Random-IP beats normal, ties half, over 6 × 15 pairs: 11 beats 14, 3 beats 3 and ties
        // 1, 7 beats 7 and ties 1, 8 beats 9 and ties 2, 9 beats 12 and ties 1, 20 beats 15.
        assert!((c.auc - 62.5 / 90.0).abs() < 1e-12, "{}", c.auc);
        assert_eq!(
            c.counts,
            Counts { calibration_normal: 10, calibration_anomalous: 2, check_normal: 5, check_anomalous: 4 }
        );
        assert_eq!(c.seed, 42);
        assert_eq!(c.histogram.normal.iter().sum::<u64>(), 15);
        assert_eq!(c.histogram.anomalous.iter().sum::<u64>(), 6);
        assert_eq!(c.histogram.lower, 0.5);
        assert!((c.histogram.upper() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_fixed_threshold_is_measured_not_chosen() {
        let (calibration, check) = halves();
        let c = calibrate(&calibration, &check, Policy::Fixed(8.5), 1).expect("calibration");
        assert_eq!((c.threshold, c.target_false_positive_rate), (8.5, None));
        assert_eq!(c.calibration_false_positive_rate, 0.2);
        assert_eq!(c.check_false_positive_rate, 0.2);
        assert_eq!(c.check_true_positive_rate, 0.5);
    }

    #[test]
    fn the_report_round_trips_through_camel_case_json() {
        let (calibration, check) = halves();
        let c = calibrate(&calibration, &check, Policy::TargetFalsePositiveRate(0.2), 42).expect("calibration");
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(json["targetFalsePositiveRate"], 0.2);
        assert_eq!(json["checkFalsePositiveRate"], 0.4);
        assert_eq!(json["checkTruePositiveRate"], 0.5);
        assert_eq!(json["counts"]["calibrationNormal"], 10);
        assert_eq!(json["histogram"]["normal"].as_array().map(Vec::len), Some(DEFAULT_BINS));
        assert!(json["histogram"]["binWidth"].is_f64());
        let back: Calibration = serde_json::from_value(json).expect("back");
        assert_eq!(back, c);
        let fixed = calibrate(&calibration, &check, Policy::Fixed(8.5), 1).expect("calibration");
        assert!(serde_json::to_value(&fixed).expect("json")["targetFalsePositiveRate"].is_null());
    }
}
