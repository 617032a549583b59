//! The threshold of the generation the endpoint serves, chosen from data. IP Insights scores
//! shift from one training run to the next, so each generation is calibrated once it serves,
//! before the scorer uses it: normal pairs (validation pairs of entities seen in training) and
//! the same entities paired with random addresses from a seeded generator are scored on the
//! endpoint, and the threshold is the one that flags the manifest's target share of normal
//! pairs ([`crate::calibration`]). The result and its evidence are kept as
//! `calibrations/<endpoint configuration>.json` in the artifact bucket and published for the
//! scorer's function and the run ledger.
//!
//! The node's identity is the serving configuration: a new one is calibrated again, and so is
//! the same one when the target changes or `lakesight calibrate` asks.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Lineage;
use super::endpoint_config::variant_name;
use crate::aws::error::service_error;
use crate::aws::s3::{read_json, read_prefix, split_uri, write_json};
use crate::calibration::{self, Calibration, Policy, Scores};
use crate::engine::{AFTER_APPLY, Change, Input, Key, Known, Outputs, Ownership};
use crate::ipinsights::data::{self, Pair};
use crate::manifest::{Threshold, ThresholdPolicy};
use crate::resource::{Identity, Resource, ResourceError};
use crate::scorer::invoke::score_chunks;
use crate::scorer::payload::chunks_of;
use crate::stack::Stack;

pub const ADDRESS: &str = "model.calibration/current";

/// The threshold on `-dot_product` for the serving generation.
pub const THRESHOLD: Key<f64> = Key::new("threshold");
/// The production variant it was calibrated for: the scorer applies it only to that variant's
/// answers.
pub const VARIANT: Key<String> = Key::new("calibratedVariant");
/// The evidence: target and measured rates, AUC, counts, seed and both distributions.
pub const EVIDENCE: Key<Calibration> = Key::new("calibration");

/// Normal pairs drawn at most, so that a large lake is calibrated in a few requests.
const MAX_NORMAL_PAIRS: usize = 20_000;
/// InvokeEndpoint calls in flight.
const CONCURRENCY: usize = 4;

/// What a calibration reads from the nodes before it.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The configuration the endpoint serves.
    pub serving_config: Input<String>,
    /// The deployable generation's job, and the splits it trained and was validated on.
    pub job: Input<String>,
    pub trained_on: Input<String>,
    pub validated_on: Input<String>,
}

/// `calibrations/<config>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub config: String,
    pub job: String,
    pub variant: String,
    pub endpoint: String,
    pub calibration: Calibration,
    /// The calibration half's scores, for `lakesight calibrate --plot`.
    pub scores: RecordedScores,
    #[serde(with = "humantime_serde")]
    pub calibrated_at: std::time::SystemTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedScores {
    pub normal: Vec<f64>,
    pub anomalous: Vec<f64>,
}

pub struct CalibrationRun {
    identity: Identity,
    s3: aws_sdk_s3::Client,
    runtime: aws_sdk_sagemakerruntime::Client,
    bucket: String,
    endpoint: String,
    lineage: Lineage,
    threshold: Threshold,
    max_payload_bytes: usize,
    inputs: Inputs,
    /// `lakesight calibrate`: calibrate the serving generation again.
    again: bool,
}

/// Where a configuration's calibration is kept.
pub fn record_key(config: &str) -> String {
    format!("calibrations/{config}.json")
}

impl CalibrationRun {
    pub fn new(
        stack: &Stack,
        lineage: Lineage,
        threshold: Threshold,
        max_payload_bytes: usize,
        (s3, runtime): (aws_sdk_s3::Client, aws_sdk_sagemakerruntime::Client),
        inputs: Inputs,
    ) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, "calibrations/<serving configuration>.json");
        identity.depends_on = vec![inputs.serving_config.source().to_owned(), inputs.job.source().to_owned()];
        CalibrationRun {
            identity,
            s3,
            runtime,
            bucket: stack.artifact_bucket(),
            endpoint: stack.endpoint_name(),
            lineage,
            threshold,
            max_payload_bytes,
            inputs,
            again: false,
        }
    }

    /// Calibrates the serving generation again, whatever its record says.
    pub fn again(self) -> Self {
        CalibrationRun { again: true, ..self }
    }

    fn policy(&self) -> Policy {
        match (self.threshold.policy, self.threshold.value) {
            (ThresholdPolicy::Fixed, Some(value)) => Policy::Fixed(value),
            _ => Policy::TargetFalsePositiveRate(self.threshold.target_false_positive_rate),
        }
    }

    fn input<T: serde::de::DeserializeOwned>(input: &Input<T>) -> Result<T, ResourceError> {
        input.get().now().ok_or_else(|| ResourceError::Invalid(format!("calibration has no {input:?} yet")))
    }

    async fn pairs(&self, uri: &str) -> Result<Vec<Pair>, ResourceError> {
        let (bucket, prefix) =
            split_uri(uri).ok_or_else(|| ResourceError::Invalid(format!("{uri} is not an s3:// prefix")))?;
        let mut pairs = Vec::new();
        for (key, bytes) in read_prefix(&self.s3, bucket, prefix).await? {
            data::parse(&format!("s3://{bucket}/{key}"), &bytes, &mut pairs)
                .map_err(|e| ResourceError::Invalid(e.to_string()))?;
        }
        Ok(pairs)
    }

    /// Anomaly scores of `pairs` on the endpoint, in order.
    async fn score(&self, pairs: &[Pair]) -> Result<Vec<f64>, ResourceError> {
        let chunks = chunks_of(pairs.iter().map(|p| (p.entity.as_str(), p.ip)), self.max_payload_bytes);
        let mut scored = score_chunks(&self.runtime, &self.endpoint, &chunks, CONCURRENCY).await;
        scored.sort_by_key(|s| s.chunk);
        let mut values = Vec::with_capacity(pairs.len());
        for s in scored {
            let scores = s.scores.map_err(|e| ResourceError::Service {
                operation: "InvokeEndpoint",
                code: "Calibration".into(),
                message: e.to_string(),
            })?;
            values.extend(scores.values);
        }
        Ok(values)
    }

    async fn scores(&self, half: &calibration::Half) -> Result<Scores, ResourceError> {
        Ok(Scores { normal: self.score(&half.normal).await?, anomalous: self.score(&half.anomalous).await? })
    }
}

/// A seed of the configuration's own, so that calibrating the same generation again, with any
/// lakesight version, draws the same sample.
fn seed_of(config: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(config);
    digest.iter().take(8).fold(0, |seed, b| (seed << 8) | u64::from(*b))
}

#[async_trait]
impl Resource for CalibrationRun {
    type Observed = Record;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The serving configuration's calibration, if it has one. Before the endpoint serves, there
    /// is nothing to read.
    async fn read(&self) -> Result<Option<Record>, ResourceError> {
        match self.inputs.serving_config.get() {
            Known::Now(config) => read_json(&self.s3, &self.bucket, &record_key(&config)).await,
            Known::AfterApply => Ok(None),
        }
    }

    fn owner(&self, _observed: &Record) -> Ownership {
        Ownership::Untaggable
    }

    fn diff(&self, observed: &Record) -> Vec<Change> {
        let mut changes = Vec::new();
        let (target, was) = (self.policy(), observed.calibration.target_false_positive_rate);
        match target {
            Policy::TargetFalsePositiveRate(t) if was != Some(t) => {
                let from = was.map_or_else(|| format!("fixed {}", observed.calibration.threshold), |w| w.to_string());
                changes.push(Change::replacing("targetFalsePositiveRate", from, t.to_string()));
            }
            Policy::Fixed(v) if was.is_some() || observed.calibration.threshold != v => {
                changes.push(Change::replacing(
                    "threshold",
                    observed.calibration.threshold.to_string(),
                    format!("fixed {v}"),
                ));
            }
            _ => {}
        }
        if self.again && changes.is_empty() {
            let when = humantime::format_rfc3339_seconds(observed.calibrated_at);
            changes.push(Change::replacing("calibratedAt", when.to_string(), AFTER_APPLY));
        }
        changes
    }

    fn id(&self, observed: &Record) -> String {
        format!("{} for {}", observed.calibration.threshold, observed.config)
    }

    fn health(&self, observed: &Record) -> Option<String> {
        let c = &observed.calibration;
        Some(format!(
            "threshold {:.4}: false-positive rate {:.4} on held-out pairs, true-positive rate {:.4}, AUC {:.4}",
            c.threshold, c.check_false_positive_rate, c.check_true_positive_rate, c.auc
        ))
    }

    fn absence_note(&self) -> Option<String> {
        Some(match self.inputs.serving_config.get() {
            Known::Now(config) => format!("{config} serves uncalibrated"),
            Known::AfterApply => "calibrates the generation the endpoint will serve".into(),
        })
    }

    /// Published only once calibration is done with what the endpoint serves: until then the
    /// function keeps the threshold it has.
    fn outputs(&self, observed: &Record) -> Outputs {
        if !self.diff(observed).is_empty() {
            return Outputs::new();
        }
        Outputs::new()
            .with(THRESHOLD, &observed.calibration.threshold)
            .with(VARIANT, &observed.variant)
            .with(EVIDENCE, &observed.calibration)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let config = Self::input(&self.inputs.serving_config)?;
        let job = Self::input(&self.inputs.job)?;
        if !config.starts_with(&format!("{job}-c")) {
            return Err(ResourceError::Invalid(format!(
                "the endpoint serves {config}, not the deployable generation {job}; apply deploys it first"
            )));
        }
        let generation = self
            .lineage
            .generation_of(&config)
            .ok_or_else(|| ResourceError::Invalid(format!("{config} is not one of the stack's generations")))?;
        let training = self.pairs(&Self::input(&self.inputs.trained_on)?).await?;
        let validation = self.pairs(&Self::input(&self.inputs.validated_on)?).await?;
        let seed = seed_of(&config);
        let sample = calibration::draw(&training, &validation, seed, Some(MAX_NORMAL_PAIRS))
            .map_err(|e| ResourceError::Invalid(format!("calibrating {config}: {e}")))?;
        let (on, check) = (self.scores(&sample.calibration).await?, self.scores(&sample.check).await?);
        let result = calibration::calibrate(&on, &check, self.policy(), seed)
            .map_err(|e| ResourceError::Invalid(format!("calibrating {config}: {e}")))?;
        let record = Record {
            variant: variant_name(generation),
            endpoint: self.endpoint.clone(),
            calibration: result,
            scores: RecordedScores { normal: on.normal, anomalous: on.anomalous },
            calibrated_at: std::time::SystemTime::now(),
            job,
            config: config.clone(),
        };
        write_json(&self.s3, &self.bucket, &record_key(&config), &record).await
    }

    async fn update(&self, _observed: &Record, _changes: &[Change]) -> Result<(), ResourceError> {
        Ok(())
    }

    async fn delete(&self, observed: &Record) -> Result<(), ResourceError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(record_key(&observed.config))
            .send()
            .await
            .map_err(|e| service_error("DeleteObject", e))?;
        Ok(())
    }
}
