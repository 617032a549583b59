//! A local implementation of Amazon SageMaker's built-in IP Insights algorithm: it learns
//! vectors for entities (users, accounts, ...) and IPv4 addresses so that the dot product of a
//! pair is the log-odds that the pair is normal.
//!
//! It follows what AWS documents: hyperparameter names, defaults and ranges; entities hashed
//! into `num_entity_vectors` rows; an IP encoder of `num_ip_encoder_layers` dense layers; a
//! plain `dot_product` score; binary cross-entropy against random-address and re-paired
//! negatives; lazy Adam with weight decay; and `validation:discriminator_auc`.
//!
//! AWS has not published its IP encoder or its entity hash. The encoder here
//! ([`model`]) and the FNV-1a hashing are ours, so **models are not interchangeable with
//! SageMaker's**: scores have the same meaning and scale of use, not the same values, and a
//! SageMaker model artifact cannot be loaded here nor ours deployed there.
//!
//! Typical use: [`data::read_path`] → [`train::train`] → [`file::save`]; then
//! [`file::load`] → [`Model::predict`], and [`evaluate::evaluate`] for AUC and TPR at FPR.

pub mod data;
pub mod evaluate;
pub mod file;
pub mod hyperparameters;
pub mod model;
pub mod train;

pub use data::{Dataset, Pair};
pub use evaluate::{Evaluation, Negatives};
pub use file::ModelHeader;
pub use hyperparameters::{HyperparameterError, Hyperparameters};
pub use model::{Model, Prediction};
pub use train::{BatchProgress, EpochMetrics, Progress, TrainOptions, TrainReport, Trained};

#[cfg(test)]
mod tests;
