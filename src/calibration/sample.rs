//! The pairs a calibration scores, drawn reproducibly from a seed.
//!
//! *Normal* pairs are the validation pairs whose entity occurs in the training pairs: the
//! model has a learned vector only for entities it was trained on, and the deployed scorer
//! sees mostly such entities, so these are the pairs whose false alarms the threshold bounds.
//! *Anomalous* pairs are the same entities, one per normal pair and in the same order, with
//! uniformly random IPv4 addresses: the random-IP negatives of SageMaker's
//! `validation:discriminator_auc`, as [`crate::ipinsights::evaluate`] generates them.
//!
//! Both sets are split into a calibration half, on which the threshold is chosen, and a check
//! half, on which its false positive rate is measured again: a rate measured on the very
//! scores a threshold was picked from is optimistic, one measured on a fresh held-out sample
//! is not.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::ipinsights::Pair;

/// The ChaCha stream of the calibration's generator. Training draws its negatives from stream
/// 0 and evaluation from stream 1 of the same seed; a stream of its own keeps a calibration
/// run with the training's seed from reusing the addresses training learned against.
const STREAM: u64 = 2;

/// Why no calibration sample could be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SampleError {
    /// Each half needs at least one normal pair.
    #[error(
        "{normal} validation pair(s) with an entity seen in training (of {validation}), after a cap of {cap:?}: \
         calibration needs at least 2, one for each half"
    )]
    TooFewNormal { normal: usize, validation: usize, cap: Option<usize> },
}

/// One half of the sample: normal pairs and their anomalous counterparts, index for index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Half {
    pub normal: Vec<Pair>,
    /// `anomalous[i]` is `normal[i]`'s entity with a random address.
    pub anomalous: Vec<Pair>,
}

/// The drawn sample: the half the threshold is chosen on and the half it is checked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Holds the extra pair when the number of normal pairs is odd.
    pub calibration: Half,
    pub check: Half,
    /// Validation pairs left out because training never saw their entity.
    pub unseen: usize,
    /// Normal pairs left out by the cap.
    pub capped: usize,
    pub seed: u64,
}

/// Draws the calibration sample from `training` and `validation` pairs.
///
/// With the same inputs and `seed` the sample is the same, pair for pair: one ChaCha8
/// generator (stream 2 of `seed`) shuffles the normal pairs, which both picks the capped
/// subset (the first `max_normal` of the shuffle) and decides which half each pair falls in,
/// then draws the anomalous addresses in the shuffled order. The halves are the first and
/// second part of the shuffle, the calibration half rounded up.
pub fn draw(
    training: &[Pair],
    validation: &[Pair],
    seed: u64,
    max_normal: Option<usize>,
) -> Result<Sample, SampleError> {
    let seen: HashSet<&str> = training.iter().map(|p| p.entity.as_str()).collect();
    let mut normal: Vec<Pair> = validation.iter().filter(|p| seen.contains(p.entity.as_str())).cloned().collect();
    let unseen = validation.len() - normal.len();

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(STREAM);
    normal.shuffle(&mut rng);
    let kept = max_normal.map_or(normal.len(), |cap| cap.min(normal.len()));
    let capped = normal.len() - kept;
    normal.truncate(kept);
    if normal.len() < 2 {
        return Err(SampleError::TooFewNormal { normal: normal.len(), validation: validation.len(), cap: max_normal });
    }

    let mut anomalous: Vec<Pair> =
        normal.iter().map(|p| Pair::new(p.entity.clone(), Ipv4Addr::from(rng.next_u32()))).collect();
    let cut = normal.len().div_ceil(2);
    let check = Half { normal: normal.split_off(cut), anomalous: anomalous.split_off(cut) };
    let calibration = Half { normal, anomalous };
    Ok(Sample { calibration, check, unseen, capped, seed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(entity: &str, ip: [u8; 4]) -> Pair {
        Pair::new(entity, Ipv4Addr::from(ip))
    }

    /// Training knows alice and bob; validation has 40 pairs of theirs and 10 of carol's.
    fn data() -> (Vec<Pair>, Vec<Pair>) {
        let training = vec![pair("alice", [10, 0, 0, 1]), pair("bob", [10, 0, 0, 2]), pair("alice", [10, 0, 0, 3])];
        let mut validation = Vec::new();
        for i in 0..50u8 {
            let entity = match i % 5 {
                0 => "carol",
                1 | 2 => "alice",
                _ => "bob",
            };
            validation.push(pair(entity, [192, 168, 1, i]));
        }
        (training, validation)
    }

    fn all(half: &Half) -> impl Iterator<Item = &Pair> {
        half.normal.iter().chain(&half.anomalous)
    }

    #[test]
    fn normal_pairs_are_the_validation_pairs_of_seen_entities() {
        let (training, validation) = data();
        let sample = draw(&training, &validation, 7, None).expect("sample");
        assert_eq!(sample.unseen, 10);
        assert_eq!(sample.capped, 0);
        assert_eq!(sample.seed, 7);
        assert_eq!((sample.calibration.normal.len(), sample.check.normal.len()), (20, 20));
        for p in all(&sample.calibration).chain(all(&sample.check)) {
            assert!(p.entity == "alice" || p.entity == "bob", "{p:?}");
        }
        // Every seen validation pair lands in exactly one half.
        let mut normal: Vec<&Pair> = sample.calibration.normal.iter().chain(&sample.check.normal).collect();
        normal.sort_by_key(|p| p.ip);
        let expected: Vec<&Pair> = validation.iter().filter(|p| p.entity != "carol").collect();
        assert_eq!(normal, expected);
    }

    #[test]
    fn each_normal_pair_has_one_anomalous_pair_of_its_entity() {
        let (training, validation) = data();
        let sample = draw(&training, &validation, 7, None).expect("sample");
        for half in [&sample.calibration, &sample.check] {
            assert_eq!(half.normal.len(), half.anomalous.len());
            for (n, a) in half.normal.iter().zip(&half.anomalous) {
                assert_eq!(n.entity, a.entity);
            }
        }
        // Uniform addresses over the whole space: not the validation's 192.168.1.0/24.
        let random = all(&sample.calibration).chain(all(&sample.check)).filter(|p| p.ip.octets()[..3] != [192, 168, 1]);
        assert_eq!(random.count(), 40);
    }

    #[test]
    fn the_same_seed_draws_the_same_sample_and_another_seed_another() {
        let (training, validation) = data();
        let a = draw(&training, &validation, 7, None).expect("sample");
        assert_eq!(a, draw(&training, &validation, 7, None).expect("sample"));
        let b = draw(&training, &validation, 8, None).expect("sample");
        assert_ne!(a.calibration.normal, b.calibration.normal);
        assert_ne!(a.calibration.anomalous, b.calibration.anomalous);
    }

    #[test]
    fn the_cap_keeps_a_seeded_subset_and_odd_counts_favour_the_calibration_half() {
        let (training, validation) = data();
        let sample = draw(&training, &validation, 3, Some(7)).expect("sample");
        assert_eq!((sample.calibration.normal.len(), sample.check.normal.len()), (4, 3));
        assert_eq!((sample.calibration.anomalous.len(), sample.check.anomalous.len()), (4, 3));
        assert_eq!(sample.capped, 33);
        assert_eq!(sample, draw(&training, &validation, 3, Some(7)).expect("sample"));
        // A cap above the count keeps everything.
        assert_eq!(draw(&training, &validation, 3, Some(1000)).expect("sample").capped, 0);
    }

    #[test]
    fn fewer_than_two_normal_pairs_is_an_error() {
        let (training, validation) = data();
        let carol_only: Vec<Pair> = validation.iter().filter(|p| p.entity == "carol").cloned().collect();
        assert_eq!(
            draw(&training, &carol_only, 1, None),
            Err(SampleError::TooFewNormal { normal: 0, validation: 10, cap: None })
        );
        assert_eq!(
            draw(&training, &validation, 1, Some(1)),
            Err(SampleError::TooFewNormal { normal: 1, validation: 50, cap: Some(1) })
        );
        assert!(matches!(draw(&[], &validation, 1, None), Err(SampleError::TooFewNormal { normal: 0, .. })));
    }
}
