//! A local implementation of Amazon SageMaker's built-in IP Insights algorithm: it learns
//! vectors for entities (users, instances, accounts) and IPv4 addresses so that the dot product
//! of a pair is the log-odds that the pair is normal.
//!
//! It follows what AWS documents: the hyperparameters' names, defaults and ranges
//! ([`hyperparameters`]); entities hashed into `num_entity_vectors` rows; an IP encoder of
//! `num_ip_encoder_layers` dense layers; a plain `dot_product` score; binary cross-entropy
//! against random-address and re-paired negatives, all weighted equally; lazy Adam with weight
//! decay; `validation:discriminator_auc`; and the inference request and response formats
//! ([`inference`]).
//!
//! AWS has not published its IP encoder or its entity hash. The encoder here ([`model`]) and
//! the FNV-1a hashing are ours, so **models are not interchangeable with SageMaker's**: scores
//! mean the same (log-odds, higher is more normal) but do not have the same values, and neither
//! side can load the other's artifacts.
//!
//! Typical use: [`data::parse`] → [`Hyperparameters::from_strings`] → [`train::train`] →
//! [`file::save`]; then [`file::load`] → [`Model::predict`], and [`evaluate::evaluate`] for AUC
//! and TPR at fixed FPRs. The model file's format is described in [`file`].

pub mod data;
pub mod evaluate;
pub mod file;
pub mod hyperparameters;
pub mod inference;
pub mod model;
pub mod train;

pub use data::Pair;
pub use evaluate::{Evaluation, Negatives};
pub use file::ModelHeader;
pub use hyperparameters::{HyperparameterError, Hyperparameters};
pub use model::{Model, Prediction};
pub use train::{BatchProgress, EpochMetrics, Progress, TrainOptions, TrainReport, Trained};

#[cfg(test)]
mod tests;
