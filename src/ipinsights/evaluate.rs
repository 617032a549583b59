//! How well a model tells observed pairs from generated ones: SageMaker's
//! `validation:discriminator_auc` (observed pairs against one random-IP pair each), and true
//! positive rates at fixed false positive rates for choosing an alert threshold.

use std::cmp::Ordering;

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::data::Pair;
use super::model::{Model, Sample};

/// The false positive rates an evaluation reports the true positive rate at.
pub const STANDARD_FPRS: [f64; 4] = [0.0, 0.01, 0.05, 0.10];

/// How the negative (label 0) pair of each observed pair is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negatives {
    /// The same entity with a uniformly random IPv4: SageMaker's discriminator metric.
    RandomIp,
    /// The same entity with the address of another, randomly chosen, pair of the set. It
    /// measures whether the model learned *which* entity uses which address, not only which
    /// addresses are used at all.
    Repaired,
}

/// Why an evaluation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvaluateError {
    #[error("no pairs to evaluate")]
    NoPairs,
}

/// A score the metrics below accept: the engine's own `f32`, or the `f64` that an endpoint's
/// JSON answer decodes to (the calibration of a deployed scorer's threshold), so that a
/// threshold is chosen among the very values it will be compared with.
pub trait Score: Copy + PartialOrd {
    const NEG_INFINITY: Self;
    fn total_cmp(&self, other: &Self) -> Ordering;
}

impl Score for f32 {
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn total_cmp(&self, other: &Self) -> Ordering {
        f32::total_cmp(self, other)
    }
}

impl Score for f64 {
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn total_cmp(&self, other: &Self) -> Ordering {
        f64::total_cmp(self, other)
    }
}

/// The true positive rate at one false positive rate: pairs scoring strictly above
/// `threshold` are called positive.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatingPoint<S = f32> {
    pub target_fpr: f64,
    /// `-inf` when every pair may be called positive.
    pub threshold: S,
    pub tpr: f64,
    /// The achieved rate, at most `target_fpr`.
    pub fpr: f64,
}

/// The scores of the observed pairs and of their generated negatives, with the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub auc: f64,
    /// Observed pairs (label 1) called positive, at [`STANDARD_FPRS`] of the negatives.
    pub operating_points: Vec<OperatingPoint>,
    pub positive_scores: Vec<f32>,
    pub negative_scores: Vec<f32>,
}

/// ROC AUC by the Mann-Whitney U statistic, ties counted as one half; `None` if a set is empty.
pub fn auc<S: Score>(positives: &[S], negatives: &[S]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut all: Vec<(S, bool)> =
        positives.iter().map(|&s| (s, true)).chain(negatives.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < all.len() {
        let end = start + all[start..].iter().take_while(|x| x.0.total_cmp(&all[start].0) == Ordering::Equal).count();
        // Ranks start..end (1-based start+1..=end) share their average.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        positive_rank_sum += mean_rank * all[start..end].iter().filter(|x| x.1).count() as f64;
        start = end;
    }
    let (p, n) = (positives.len() as f64, negatives.len() as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// For each target false positive rate, the threshold that calls at most that fraction of the
/// negatives positive, and the fraction of positives it calls positive. Higher scores mean
/// "more positive"; to rate anomaly detection (generated pairs as the positive class), pass
/// the negated scores the other way round.
pub fn tpr_at_fpr<S: Score>(positives: &[S], negatives: &[S], targets: &[f64]) -> Vec<OperatingPoint<S>> {
    let mut negs = negatives.to_vec();
    negs.sort_by(|a, b| b.total_cmp(a));
    targets
        .iter()
        .map(|&target| {
            // The number of negatives allowed above the threshold (tolerant of 0.29 * 100 < 29).
            let allowed = (target * negs.len() as f64 + 1e-9).floor().max(0.0) as usize;
            let threshold = negs.get(allowed).copied().unwrap_or(S::NEG_INFINITY);
            let above = |scores: &[S]| scores.iter().filter(|&&s| s > threshold).count();
            let rate = |count: usize, total: usize| if total == 0 { 0.0 } else { count as f64 / total as f64 };
            OperatingPoint {
                target_fpr: target,
                threshold,
                tpr: rate(above(positives), positives.len()),
                fpr: rate(above(&negs), negs.len()),
            }
        })
        .collect()
}

/// Scores `pairs` against one generated negative each, drawn with a ChaCha8 generator seeded
/// with `seed` (stream 1, so it differs from a training run with the same seed).
pub fn evaluate(model: &Model, pairs: &[Pair], negatives: Negatives, seed: u64) -> Result<Evaluation, EvaluateError> {
    if pairs.is_empty() {
        return Err(EvaluateError::NoPairs);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    let positives: Vec<Sample> = pairs.iter().map(|p| model.sample(&p.entity, p.ip)).collect();
    let generated: Vec<Sample> = positives
        .iter()
        .enumerate()
        .map(|(i, s)| Sample { row: s.row, ip: other_ip(&positives, i, &mut rng, negatives) })
        .collect();
    let positive_scores = model.scores(&positives);
    let negative_scores = model.scores(&generated);
    let auc = auc(&positive_scores, &negative_scores).ok_or(EvaluateError::NoPairs)?;
    let operating_points = tpr_at_fpr(&positive_scores, &negative_scores, &STANDARD_FPRS);
    Ok(Evaluation { auc, operating_points, positive_scores, negative_scores })
}

/// The address of the negative for pair `i`; re-pairing needs another pair, so with a single
/// pair it falls back to a random address (as training does).
fn other_ip(samples: &[Sample], i: usize, rng: &mut impl Rng, negatives: Negatives) -> u32 {
    match negatives {
        Negatives::Repaired if samples.len() > 1 => {
            let mut k = rng.random_range(0..samples.len() - 1);
            if k >= i {
                k += 1;
            }
            samples[k].ip
        }
        _ => rng.next_u32(),
    }
}

/// SageMaker's `validation:discriminator_auc`: observed pairs against one random-IP pair each.
pub fn discriminator_auc(model: &Model, pairs: &[Pair], seed: u64) -> Result<f64, EvaluateError> {
    evaluate(model, pairs, Negatives::RandomIp, seed).map(|e| e.auc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(auc(&[1.0], &[1.0]), Some(0.5));
        // Pairs (pos, neg): (2,1) win, (2,2) tie, (2,3) loss, (3,1) win, (3,2) win, (3,3) tie.
        assert_eq!(auc(&[2.0, 3.0], &[1.0, 2.0, 3.0]), Some(4.0 / 6.0));
        assert_eq!(auc(&[], &[1.0]), None);
    }

    #[test]
    fn tpr_at_fpr_uses_the_strict_threshold_allowed_by_each_rate() {
        let negatives: Vec<f32> = (0..100).map(|i| i as f32).collect(); // 0..=99
        let positives = [99.5, 98.5, 97.0, 94.5, 50.0];
        let points = tpr_at_fpr(&positives, &negatives, &STANDARD_FPRS);
        let summary: Vec<(f32, f64, f64)> = points.iter().map(|p| (p.threshold, p.tpr, p.fpr)).collect();
        assert_eq!(summary, [(99.0, 0.2, 0.0), (98.0, 0.4, 0.01), (94.0, 0.8, 0.05), (89.0, 0.8, 0.1)]);
        let all = tpr_at_fpr(&positives, &negatives, &[1.0]);
        assert_eq!((all[0].threshold, all[0].tpr, all[0].fpr), (f32::NEG_INFINITY, 1.0, 1.0));
    }
}
