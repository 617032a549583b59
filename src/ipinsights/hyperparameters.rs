//! IP Insights hyperparameters: SageMaker's names, ranges and defaults.
//!
//! [`RULES`] and [`NEGATIVE_RATE_SUM`] are the one statement of the documented ranges: the
//! manifest validator checks `spec.training.hyperparameters` with them, and the engine checks the
//! string map a training job receives with them, so a value one accepts the other accepts too.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Whether a hyperparameter takes whole numbers or any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Float,
}

/// The documented range of one hyperparameter, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// SageMaker's name, as in the training job's `HyperParameters` map.
    pub name: &'static str,
    pub kind: Kind,
    pub min: f64,
    /// `f64::INFINITY` where the documentation gives no upper bound.
    pub max: f64,
}

impl Rule {
    const fn integer(name: &'static str, min: f64, max: f64) -> Self {
        Self { name, kind: Kind::Integer, min, max }
    }

    const fn float(name: &'static str, min: f64, max: f64) -> Self {
        Self { name, kind: Kind::Float, min, max }
    }

    /// Whether `value` is inside the range (NaN never is).
    pub fn allows(&self, value: f64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// `[4, 4096]`, or `[1, inf)` without an upper bound.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.max.is_finite() { write!(f, "[{}, {}]", self.min, self.max) } else { write!(f, "[{}, inf)", self.min) }
    }
}

pub const NUM_ENTITY_VECTORS: Rule = Rule::integer("num_entity_vectors", 1.0, 250_000_000.0);
pub const VECTOR_DIM: Rule = Rule::integer("vector_dim", 4.0, 4096.0);

/// `num_entity_vectors` for data of `distinct_entities`: twice as many, as the algorithm's
/// documentation recommends, within its range.
pub fn entity_vectors(distinct_entities: u64) -> u64 {
    distinct_entities.saturating_mul(2).clamp(1, NUM_ENTITY_VECTORS.max as u64)
}
pub const EPOCHS: Rule = Rule::integer("epochs", 1.0, f64::INFINITY);
pub const LEARNING_RATE: Rule = Rule::float("learning_rate", 1e-6, 10.0);
pub const MINI_BATCH_SIZE: Rule = Rule::integer("mini_batch_size", 1.0, 500_000.0);
pub const NUM_IP_ENCODER_LAYERS: Rule = Rule::integer("num_ip_encoder_layers", 0.0, 100.0);
pub const RANDOM_NEGATIVE_SAMPLING_RATE: Rule = Rule::integer("random_negative_sampling_rate", 0.0, 500.0);
pub const SHUFFLED_NEGATIVE_SAMPLING_RATE: Rule = Rule::integer("shuffled_negative_sampling_rate", 0.0, 500.0);
pub const WEIGHT_DECAY: Rule = Rule::float("weight_decay", 0.0, 10.0);
pub const BATCH_METRICS_PUBLISH_INTERVAL: Rule = Rule::integer("batch_metrics_publish_interval", 1.0, f64::INFINITY);

/// Every hyperparameter IP Insights takes.
pub const RULES: [Rule; 10] = [
    NUM_ENTITY_VECTORS,
    VECTOR_DIM,
    EPOCHS,
    LEARNING_RATE,
    MINI_BATCH_SIZE,
    NUM_IP_ENCODER_LAYERS,
    RANDOM_NEGATIVE_SAMPLING_RATE,
    SHUFFLED_NEGATIVE_SAMPLING_RATE,
    WEIGHT_DECAY,
    BATCH_METRICS_PUBLISH_INTERVAL,
];

/// The documented bounds of `random_negative_sampling_rate + shuffled_negative_sampling_rate`.
pub const NEGATIVE_RATE_SUM: std::ops::RangeInclusive<u64> = 1..=500;

/// The rates the algorithm uses when a job leaves them out (both documented as 1).
pub const DEFAULT_NEGATIVE_SAMPLING_RATE: u64 = 1;

/// Why a training job's hyperparameters were refused. The messages follow the form of the
/// `FailureReason` SageMaker's built-in algorithms give (`ClientError: ... (caused by
/// ValidationError)`); their exact wording for IP Insights is not published.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum HyperparameterError {
    #[error(
        "ClientError: No value(s) were specified for '{0}' which are required hyperparameter(s) (caused by ValidationError)"
    )]
    Missing(&'static str),
    #[error(
        "ClientError: Additional hyperparameters are not allowed ('{0}' was unexpected) (caused by ValidationError)"
    )]
    Unknown(String),
    #[error("ClientError: Hyperparameter '{name}' must be {expected}, got '{value}' (caused by ValidationError)")]
    NotANumber { name: &'static str, expected: &'static str, value: String },
    #[error("ClientError: Hyperparameter '{}' must be in {rule}, got {value} (caused by ValidationError)", rule.name)]
    OutOfRange { rule: Rule, value: String },
    #[error(
        "ClientError: Hyperparameters 'random_negative_sampling_rate' + 'shuffled_negative_sampling_rate' must be in [1, 500], got {0} (caused by ValidationError)"
    )]
    NegativeRateSum(u64),
}

impl HyperparameterError {
    /// The hyperparameter at fault, when there is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Missing(name) | Self::NotANumber { name, .. } => Some(name),
            Self::Unknown(name) => Some(name),
            Self::OutOfRange { rule, .. } => Some(rule.name),
            Self::NegativeRateSum(_) => None,
        }
    }
}

/// The hyperparameters of one training run, typed and checked.
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
    /// How often SageMaker logs batch metrics. Checked and recorded, but training here reports
    /// every batch to its [`super::Progress`] and leaves the pacing to the receiver.
    pub batch_metrics_publish_interval: usize,
}

/// Parses a whole number. A negative or too large one is reported against the range, not as junk.
fn integer(rule: Rule, raw: &str) -> Result<usize, HyperparameterError> {
    let out_of_range = |value: String| HyperparameterError::OutOfRange { rule, value };
    let value: i128 = raw.trim().parse().map_err(|_| HyperparameterError::NotANumber {
        name: rule.name,
        expected: "an integer",
        value: raw.to_owned(),
    })?;
    // i128 → f64 may round, but only far outside every range, where the answer is the same.
    if !rule.allows(value as f64) {
        return Err(out_of_range(value.to_string()));
    }
    usize::try_from(value).map_err(|_| out_of_range(value.to_string()))
}

fn float(rule: Rule, raw: &str) -> Result<f64, HyperparameterError> {
    let value: f64 = raw.trim().parse().map_err(|_| HyperparameterError::NotANumber {
        name: rule.name,
        expected: "a number",
        value: raw.to_owned(),
    })?;
    if rule.allows(value) { Ok(value) } else { Err(HyperparameterError::OutOfRange { rule, value: raw.to_owned() }) }
}

impl Hyperparameters {
    /// The two required values, and the defaults the algorithm's container applies for the rest.
    /// They are the documented ones, except `mini_batch_size`: the documentation says 10000,
    /// the container's own logs show 5000, and the container is what runs a job.
    pub fn new(num_entity_vectors: usize, vector_dim: usize) -> Self {
        let rate = DEFAULT_NEGATIVE_SAMPLING_RATE as usize;
        Self {
            num_entity_vectors,
            vector_dim,
            epochs: 10,
            learning_rate: 0.001,
            mini_batch_size: 5000,
            num_ip_encoder_layers: 1,
            random_negative_sampling_rate: rate,
            shuffled_negative_sampling_rate: rate,
            weight_decay: 0.00001,
            batch_metrics_publish_interval: 1000,
        }
    }

    /// Checks a typed set (one built in code or read from a model file) against [`RULES`].
    pub fn validate(&self) -> Result<(), HyperparameterError> {
        Self::from_strings(&self.to_strings()).map(|_| ())
    }

    /// Reads and checks the `HyperParameters` string map of a training job, as
    /// `pipeline::ipinsights::hyperparameters` builds it. Unknown names are refused; omitted
    /// optional ones take their defaults.
    pub fn from_strings(map: &BTreeMap<String, String>) -> Result<Self, HyperparameterError> {
        if let Some(unknown) = map.keys().find(|k| !RULES.iter().any(|r| r.name == *k)) {
            return Err(HyperparameterError::Unknown(unknown.clone()));
        }
        let required = |rule: Rule| match map.get(rule.name) {
            Some(raw) => integer(rule, raw),
            None => Err(HyperparameterError::Missing(rule.name)),
        };
        let mut hp = Self::new(required(NUM_ENTITY_VECTORS)?, required(VECTOR_DIM)?);
        let optional_integers: [(Rule, &mut usize); 6] = [
            (EPOCHS, &mut hp.epochs),
            (MINI_BATCH_SIZE, &mut hp.mini_batch_size),
            (NUM_IP_ENCODER_LAYERS, &mut hp.num_ip_encoder_layers),
            (RANDOM_NEGATIVE_SAMPLING_RATE, &mut hp.random_negative_sampling_rate),
            (SHUFFLED_NEGATIVE_SAMPLING_RATE, &mut hp.shuffled_negative_sampling_rate),
            (BATCH_METRICS_PUBLISH_INTERVAL, &mut hp.batch_metrics_publish_interval),
        ];
        for (rule, field) in optional_integers {
            if let Some(raw) = map.get(rule.name) {
                *field = integer(rule, raw)?;
            }
        }
        for (rule, field) in [(LEARNING_RATE, &mut hp.learning_rate), (WEIGHT_DECAY, &mut hp.weight_decay)] {
            if let Some(raw) = map.get(rule.name) {
                *field = float(rule, raw)?;
            }
        }
        let sum = hp.random_negative_sampling_rate as u64 + hp.shuffled_negative_sampling_rate as u64;
        if !NEGATIVE_RATE_SUM.contains(&sum) {
            return Err(HyperparameterError::NegativeRateSum(sum));
        }
        Ok(hp)
    }

    /// The string map a training job takes, with every value spelled out.
    pub fn to_strings(&self) -> BTreeMap<String, String> {
        let values = [
            self.num_entity_vectors.to_string(),
            self.vector_dim.to_string(),
            self.epochs.to_string(),
            self.learning_rate.to_string(),
            self.mini_batch_size.to_string(),
            self.num_ip_encoder_layers.to_string(),
            self.random_negative_sampling_rate.to_string(),
            self.shuffled_negative_sampling_rate.to_string(),
            self.weight_decay.to_string(),
            self.batch_metrics_publish_interval.to_string(),
        ];
        RULES.iter().map(|r| r.name.to_owned()).zip(values).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_vectors_are_twice_the_entities_within_bounds() {
        let max = NUM_ENTITY_VECTORS.max as u64;
        assert_eq!(entity_vectors(0), 1);
        assert_eq!(entity_vectors(1_234), 2_468);
        assert_eq!(entity_vectors(125_000_000), max);
        assert_eq!(entity_vectors(u64::MAX), max);
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn with(name: &str, value: &str) -> Result<Hyperparameters, HyperparameterError> {
        let mut m = map(&[("num_entity_vectors", "100"), ("vector_dim", "16")]);
        m.insert(name.to_owned(), value.to_owned());
        Hyperparameters::from_strings(&m)
    }

    #[test]
    fn the_table_lists_every_field_once_in_the_order_of_to_strings() {
        let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), RULES.len());
        let strings = Hyperparameters::new(1, 4).to_strings();
        assert_eq!(strings.len(), RULES.len());
        assert!(names.iter().all(|n| strings.contains_key(*n)));
    }

    #[test]
    fn defaults_are_valid_and_round_trip_through_strings() {
        let hp = Hyperparameters::new(100, 16);
        assert_eq!(hp.validate(), Ok(()));
        assert_eq!(Hyperparameters::from_strings(&hp.to_strings()), Ok(hp.clone()));
        let tuned = Hyperparameters { learning_rate: 0.01, weight_decay: 0.0, epochs: 5, ..hp };
        assert_eq!(Hyperparameters::from_strings(&tuned.to_strings()), Ok(tuned));
    }

    #[test]
    fn every_boundary_is_accepted_and_just_outside_refused_by_name() {
        for rule in RULES {
            let step = if rule.kind == Kind::Integer { 1.0 } else { rule.min.max(1e-6) * 1e-3 };
            let mut inside = vec![rule.min];
            let mut outside = vec![rule.min - step];
            if rule.max.is_finite() {
                inside.push(rule.max);
                outside.push(rule.max + step);
            }
            for v in inside {
                // The rates' upper bound is reachable only with the other rate at 0.
                let other = match rule.name {
                    "random_negative_sampling_rate" => Some(("shuffled_negative_sampling_rate", "0")),
                    "shuffled_negative_sampling_rate" => Some(("random_negative_sampling_rate", "0")),
                    _ => None,
                };
                let mut m = map(&[("num_entity_vectors", "100"), ("vector_dim", "16")]);
                m.insert(rule.name.to_owned(), v.to_string());
                if let (Some((name, value)), true) = (other, v > 0.0) {
                    m.insert(name.to_owned(), value.to_owned());
                }
                assert!(Hyperparameters::from_strings(&m).is_ok(), "{}={v}", rule.name);
            }
            for v in outside {
                let refused = with(rule.name, &v.to_string()).err();
                assert_eq!(refused.as_ref().and_then(|e| e.name()), Some(rule.name), "{}={v}", rule.name);
            }
        }
        assert!(with("learning_rate", "NaN").is_err());
        assert!(with("epochs", "99999999999999999999999999").is_err());
    }

    #[test]
    fn the_negative_rates_must_sum_to_between_1_and_500() {
        let rates = |r: &str, s: &str| {
            let mut m = map(&[("num_entity_vectors", "100"), ("vector_dim", "16")]);
            m.insert("random_negative_sampling_rate".into(), r.into());
            m.insert("shuffled_negative_sampling_rate".into(), s.into());
            Hyperparameters::from_strings(&m).map(|_| ())
        };
        assert_eq!(rates("0", "0"), Err(HyperparameterError::NegativeRateSum(0)));
        assert_eq!(rates("250", "251"), Err(HyperparameterError::NegativeRateSum(501)));
        assert_eq!(rates("250", "250"), Ok(()));
        assert_eq!(rates("0", "1"), Ok(()));
        assert_eq!(
            with("random_negative_sampling_rate", "500").map(|_| ()),
            Err(HyperparameterError::NegativeRateSum(501))
        );
    }

    #[test]
    fn messages_read_like_sagemakers_client_errors() {
        let message = |r: Result<Hyperparameters, HyperparameterError>| r.err().map(|e| e.to_string());
        assert_eq!(
            message(with("vector_dim", "2")).as_deref(),
            Some("ClientError: Hyperparameter 'vector_dim' must be in [4, 4096], got 2 (caused by ValidationError)")
        );
        assert_eq!(
            message(with("epochs", "0")).as_deref(),
            Some("ClientError: Hyperparameter 'epochs' must be in [1, inf), got 0 (caused by ValidationError)")
        );
        assert_eq!(
            message(Hyperparameters::from_strings(&map(&[("vector_dim", "4")]))).as_deref(),
            Some(
                "ClientError: No value(s) were specified for 'num_entity_vectors' which are required hyperparameter(s) (caused by ValidationError)"
            )
        );
        assert_eq!(
            message(with("vector_size", "4")).as_deref(),
            Some(
                "ClientError: Additional hyperparameters are not allowed ('vector_size' was unexpected) (caused by ValidationError)"
            )
        );
        assert!(matches!(with("epochs", "ten"), Err(HyperparameterError::NotANumber { name: "epochs", .. })));
        assert!(matches!(with("epochs", "2.5"), Err(HyperparameterError::NotANumber { name: "epochs", .. })));
        assert!(matches!(with("learning_rate", "fast"), Err(HyperparameterError::NotANumber { .. })));
        assert!(matches!(with("num_entity_vectors", "-1"), Err(HyperparameterError::OutOfRange { .. })));
    }
}
