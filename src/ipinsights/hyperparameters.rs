//! IP Insights hyperparameters: SageMaker's names, defaults and allowed ranges, so a job that
//! SageMaker would refuse is refused here too, with the same kind of failure reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a set of hyperparameters was refused; each message reads like SageMaker's failure reason.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum HyperparameterError {
    /// A value outside the range SageMaker allows.
    #[error("ClientError: Hyperparameter '{name}' must be in {range}, got {value}")]
    OutOfRange { name: &'static str, range: &'static str, value: String },
    /// `random_negative_sampling_rate + shuffled_negative_sampling_rate` outside [1, 500].
    #[error(
        "ClientError: Hyperparameters 'random_negative_sampling_rate' + 'shuffled_negative_sampling_rate' must be in [1, 500], got {0}"
    )]
    NegativeRateSum(usize),
    /// A required hyperparameter was not given.
    #[error("ClientError: Missing required hyperparameter '{0}'")]
    Missing(&'static str),
    /// A name the algorithm does not know.
    #[error("ClientError: Unknown hyperparameter '{0}'")]
    Unknown(String),
    /// A value that is not a number of the expected kind.
    #[error("ClientError: Hyperparameter '{name}' must be {expected}, got '{value}'")]
    NotANumber { name: &'static str, expected: &'static str, value: String },
}

/// The hyperparameters of one training job, typed. Build with [`Hyperparameters::new`] (the two
/// required values, defaults for the rest) or [`Hyperparameters::from_strings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    pub num_entity_vectors: usize,
    pub vector_dim: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub mini_batch_size: usize,
    pub num_ip_encoder_layers: usize,
    pub random_negative_sampling_rate: usize,
    pub shuffled_negative_sampling_rate: usize,
    pub weight_decay: f64,
    pub batch_metrics_publish_interval: usize,
}

const NUM_ENTITY_VECTORS: &str = "num_entity_vectors";
const VECTOR_DIM: &str = "vector_dim";
const EPOCHS: &str = "epochs";
const LEARNING_RATE: &str = "learning_rate";
const MINI_BATCH_SIZE: &str = "mini_batch_size";
const NUM_IP_ENCODER_LAYERS: &str = "num_ip_encoder_layers";
const RANDOM_RATE: &str = "random_negative_sampling_rate";
const SHUFFLED_RATE: &str = "shuffled_negative_sampling_rate";
const WEIGHT_DECAY: &str = "weight_decay";
const PUBLISH_INTERVAL: &str = "batch_metrics_publish_interval";

fn check_int(
    name: &'static str,
    value: usize,
    min: usize,
    max: usize,
    range: &'static str,
) -> Result<(), HyperparameterError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(HyperparameterError::OutOfRange { name, range, value: value.to_string() })
    }
}

fn check_float(
    name: &'static str,
    value: f64,
    min: f64,
    max: f64,
    range: &'static str,
) -> Result<(), HyperparameterError> {
    // NaN fails `contains`, so it is refused like any other out-of-range value.
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(HyperparameterError::OutOfRange { name, range, value: value.to_string() })
    }
}

/// Parses a non-negative integer; a negative integer is reported as out of range, not as junk.
fn parse_int(name: &'static str, raw: &str, range: &'static str) -> Result<usize, HyperparameterError> {
    let trimmed = raw.trim();
    match trimmed.parse::<i128>() {
        Ok(v) => usize::try_from(v).map_err(|_| HyperparameterError::OutOfRange { name, range, value: v.to_string() }),
        Err(_) => Err(HyperparameterError::NotANumber { name, expected: "an integer", value: raw.to_string() }),
    }
}

fn parse_float(name: &'static str, raw: &str) -> Result<f64, HyperparameterError> {
    raw.trim().parse::<f64>().map_err(|_| HyperparameterError::NotANumber {
        name,
        expected: "a number",
        value: raw.to_string(),
    })
}

impl Hyperparameters {
    /// The two required values, with SageMaker's documented defaults for everything else.
    pub fn new(num_entity_vectors: usize, vector_dim: usize) -> Self {
        Self {
            num_entity_vectors,
            vector_dim,
            epochs: 10,
            learning_rate: 0.001,
            mini_batch_size: 10_000,
            num_ip_encoder_layers: 1,
            random_negative_sampling_rate: 1,
            shuffled_negative_sampling_rate: 1,
            weight_decay: 0.00001,
            batch_metrics_publish_interval: 1000,
        }
    }

    /// Checks every value against SageMaker's range, then the rule R + S in [1, 500].
    pub fn validate(&self) -> Result<(), HyperparameterError> {
        check_int(NUM_ENTITY_VECTORS, self.num_entity_vectors, 1, 250_000_000, "[1, 250000000]")?;
        check_int(VECTOR_DIM, self.vector_dim, 4, 4096, "[4, 4096]")?;
        check_int(EPOCHS, self.epochs, 1, usize::MAX, "[1, inf)")?;
        check_float(LEARNING_RATE, self.learning_rate, 1e-6, 10.0, "[1e-06, 10.0]")?;
        check_int(MINI_BATCH_SIZE, self.mini_batch_size, 1, 500_000, "[1, 500000]")?;
        check_int(NUM_IP_ENCODER_LAYERS, self.num_ip_encoder_layers, 0, 100, "[0, 100]")?;
        check_int(RANDOM_RATE, self.random_negative_sampling_rate, 0, 500, "[0, 500]")?;
        check_int(SHUFFLED_RATE, self.shuffled_negative_sampling_rate, 0, 500, "[0, 500]")?;
        check_float(WEIGHT_DECAY, self.weight_decay, 0.0, 10.0, "[0.0, 10.0]")?;
        check_int(PUBLISH_INTERVAL, self.batch_metrics_publish_interval, 1, usize::MAX, "[1, inf)")?;
        let sum = self.random_negative_sampling_rate + self.shuffled_negative_sampling_rate;
        if !(1..=500).contains(&sum) {
            return Err(HyperparameterError::NegativeRateSum(sum));
        }
        Ok(())
    }

    /// Builds and validates hyperparameters from the string map a training job receives
    /// (`hyperparameters.json`). Unknown names are refused; omitted optional ones take defaults.
    pub fn from_strings(map: &BTreeMap<String, String>) -> Result<Self, HyperparameterError> {
        let mut hp = Self::new(0, 0);
        let (mut entities, mut dim) = (false, false);
        for (name, raw) in map {
            match name.as_str() {
                NUM_ENTITY_VECTORS => {
                    hp.num_entity_vectors = parse_int(NUM_ENTITY_VECTORS, raw, "[1, 250000000]")?;
                    entities = true;
                }
                VECTOR_DIM => {
                    hp.vector_dim = parse_int(VECTOR_DIM, raw, "[4, 4096]")?;
                    dim = true;
                }
                EPOCHS => hp.epochs = parse_int(EPOCHS, raw, "[1, inf)")?,
                LEARNING_RATE => hp.learning_rate = parse_float(LEARNING_RATE, raw)?,
                MINI_BATCH_SIZE => hp.mini_batch_size = parse_int(MINI_BATCH_SIZE, raw, "[1, 500000]")?,
                NUM_IP_ENCODER_LAYERS => hp.num_ip_encoder_layers = parse_int(NUM_IP_ENCODER_LAYERS, raw, "[0, 100]")?,
                RANDOM_RATE => hp.random_negative_sampling_rate = parse_int(RANDOM_RATE, raw, "[0, 500]")?,
                SHUFFLED_RATE => hp.shuffled_negative_sampling_rate = parse_int(SHUFFLED_RATE, raw, "[0, 500]")?,
                WEIGHT_DECAY => hp.weight_decay = parse_float(WEIGHT_DECAY, raw)?,
                PUBLISH_INTERVAL => hp.batch_metrics_publish_interval = parse_int(PUBLISH_INTERVAL, raw, "[1, inf)")?,
                _ => return Err(HyperparameterError::Unknown(name.clone())),
            }
        }
        if !entities {
            return Err(HyperparameterError::Missing(NUM_ENTITY_VECTORS));
        }
        if !dim {
            return Err(HyperparameterError::Missing(VECTOR_DIM));
        }
        hp.validate()?;
        Ok(hp)
    }

    /// The string map to send to SageMaker (or back to [`Hyperparameters::from_strings`]).
    pub fn to_strings(&self) -> BTreeMap<String, String> {
        [
            (NUM_ENTITY_VECTORS, self.num_entity_vectors.to_string()),
            (VECTOR_DIM, self.vector_dim.to_string()),
            (EPOCHS, self.epochs.to_string()),
            (LEARNING_RATE, self.learning_rate.to_string()),
            (MINI_BATCH_SIZE, self.mini_batch_size.to_string()),
            (NUM_IP_ENCODER_LAYERS, self.num_ip_encoder_layers.to_string()),
            (RANDOM_RATE, self.random_negative_sampling_rate.to_string()),
            (SHUFFLED_RATE, self.shuffled_negative_sampling_rate.to_string()),
            (WEIGHT_DECAY, self.weight_decay.to_string()),
            (PUBLISH_INTERVAL, self.batch_metrics_publish_interval.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Hyperparameters {
        Hyperparameters::new(100, 16)
    }

    fn refused_name(hp: &Hyperparameters) -> Option<&'static str> {
        match hp.validate() {
            Err(HyperparameterError::OutOfRange { name, .. }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn defaults_are_valid_and_match_the_docs() {
        let hp = base();
        assert_eq!(hp.validate(), Ok(()));
        assert_eq!((hp.epochs, hp.mini_batch_size, hp.num_ip_encoder_layers), (10, 10_000, 1));
        assert_eq!((hp.learning_rate, hp.weight_decay, hp.batch_metrics_publish_interval), (0.001, 0.00001, 1000));
    }

    #[test]
    fn integer_boundaries_are_accepted_and_just_outside_refused_by_name() {
        type Setter = fn(&mut Hyperparameters, usize);
        let cases: [(&str, usize, Option<usize>, Setter); 8] = [
            ("num_entity_vectors", 1, Some(250_000_000), |h, v| h.num_entity_vectors = v),
            ("vector_dim", 4, Some(4096), |h, v| h.vector_dim = v),
            ("epochs", 1, None, |h, v| h.epochs = v),
            ("mini_batch_size", 1, Some(500_000), |h, v| h.mini_batch_size = v),
            ("num_ip_encoder_layers", 0, Some(100), |h, v| h.num_ip_encoder_layers = v),
            ("random_negative_sampling_rate", 0, Some(499), |h, v| h.random_negative_sampling_rate = v),
            ("shuffled_negative_sampling_rate", 0, Some(499), |h, v| h.shuffled_negative_sampling_rate = v),
            ("batch_metrics_publish_interval", 1, None, |h, v| h.batch_metrics_publish_interval = v),
        ];
        for (name, min, max, set) in cases {
            for ok in [Some(min), max].into_iter().flatten() {
                let mut hp = base();
                set(&mut hp, ok);
                assert_eq!(hp.validate(), Ok(()), "{name}={ok}");
            }
            if min > 0 {
                let mut hp = base();
                set(&mut hp, min - 1);
                assert_eq!(refused_name(&hp), Some(name), "{name}={}", min - 1);
            }
            if let Some(max) = max.filter(|_| !name.ends_with("sampling_rate")) {
                let mut hp = base();
                set(&mut hp, max + 1);
                assert_eq!(refused_name(&hp), Some(name), "{name}={}", max + 1);
            }
        }
        let mut hp = base();
        hp.random_negative_sampling_rate = 501;
        hp.shuffled_negative_sampling_rate = 0;
        assert_eq!(refused_name(&hp), Some("random_negative_sampling_rate"));
    }

    #[test]
    fn float_boundaries_are_accepted_and_just_outside_refused_by_name() {
        let mut hp = base();
        for lr in [1e-6, 10.0] {
            hp.learning_rate = lr;
            assert_eq!(hp.validate(), Ok(()));
        }
        for lr in [9.9e-7, 10.000001, f64::NAN] {
            hp.learning_rate = lr;
            assert_eq!(refused_name(&hp), Some("learning_rate"));
        }
        hp = base();
        for wd in [0.0, 10.0] {
            hp.weight_decay = wd;
            assert_eq!(hp.validate(), Ok(()));
        }
        for wd in [-1e-9, 10.000001] {
            hp.weight_decay = wd;
            assert_eq!(refused_name(&hp), Some("weight_decay"));
        }
    }

    #[test]
    fn the_negative_rates_must_sum_to_between_1_and_500() {
        let mut hp = base();
        hp.random_negative_sampling_rate = 0;
        hp.shuffled_negative_sampling_rate = 0;
        assert_eq!(hp.validate(), Err(HyperparameterError::NegativeRateSum(0)));
        hp.random_negative_sampling_rate = 250;
        hp.shuffled_negative_sampling_rate = 251;
        assert_eq!(hp.validate(), Err(HyperparameterError::NegativeRateSum(501)));
        hp.shuffled_negative_sampling_rate = 250;
        assert_eq!(hp.validate(), Ok(()));
        hp.random_negative_sampling_rate = 0;
        hp.shuffled_negative_sampling_rate = 1;
        assert_eq!(hp.validate(), Ok(()));
        hp.shuffled_negative_sampling_rate = 500;
        assert_eq!(hp.validate(), Ok(()));
        hp.random_negative_sampling_rate = 1;
        assert_eq!(hp.validate(), Err(HyperparameterError::NegativeRateSum(501)));
    }

    #[test]
    fn the_message_reads_like_sagemakers() {
        let mut hp = base();
        hp.vector_dim = 2;
        assert_eq!(
            hp.validate().map_err(|e| e.to_string()),
            Err("ClientError: Hyperparameter 'vector_dim' must be in [4, 4096], got 2".to_string())
        );
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn from_strings_parses_defaults_and_refuses_bad_input() {
        let hp = Hyperparameters::from_strings(&map(&[("num_entity_vectors", "20000"), ("vector_dim", "128")]));
        assert_eq!(hp, Ok(Hyperparameters::new(20_000, 128)));
        let full = Hyperparameters::from_strings(&map(&[
            ("num_entity_vectors", "20000"),
            ("vector_dim", "128"),
            ("learning_rate", "0.01"),
            ("epochs", "5"),
        ]));
        assert_eq!(full.as_ref().map(|h| (h.learning_rate, h.epochs)), Ok((0.01, 5)));
        let round = full.as_ref().map(|h| Hyperparameters::from_strings(&h.to_strings()));
        assert_eq!(round, Ok(full.clone()));

        let unknown = map(&[("num_entity_vectors", "1"), ("vector_dim", "4"), ("vector_size", "4")]);
        assert_eq!(
            Hyperparameters::from_strings(&unknown),
            Err(HyperparameterError::Unknown("vector_size".to_string()))
        );
        let junk = map(&[("num_entity_vectors", "1"), ("vector_dim", "4"), ("epochs", "ten")]);
        assert!(matches!(
            Hyperparameters::from_strings(&junk),
            Err(HyperparameterError::NotANumber { name: "epochs", .. })
        ));
        let junk_float = map(&[("num_entity_vectors", "1"), ("vector_dim", "4"), ("learning_rate", "fast")]);
        assert!(matches!(
            Hyperparameters::from_strings(&junk_float),
            Err(HyperparameterError::NotANumber { name: "learning_rate", .. })
        ));
        let negative = map(&[("num_entity_vectors", "-1"), ("vector_dim", "4")]);
        assert!(matches!(
            Hyperparameters::from_strings(&negative),
            Err(HyperparameterError::OutOfRange { name: "num_entity_vectors", .. })
        ));
        let missing = map(&[("vector_dim", "4")]);
        assert_eq!(Hyperparameters::from_strings(&missing), Err(HyperparameterError::Missing("num_entity_vectors")));
        let outside = map(&[("num_entity_vectors", "1"), ("vector_dim", "2")]);
        assert!(matches!(
            Hyperparameters::from_strings(&outside),
            Err(HyperparameterError::OutOfRange { name: "vector_dim", .. })
        ));
    }
}
