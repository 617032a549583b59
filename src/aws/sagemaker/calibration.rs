//! The threshold of the generation the endpoint serves, chosen from data. IP Insights scores
//! shift from one training run to the next, so each generation is calibrated once it serves,
//! before the scorer uses it: normal pairs (validation pairs of entities seen in training) and
//! the same entities paired with random addresses from a seeded generator are scored on the
//! endpoint, and the threshold is the one that flags the manifest's target share of normal
//! pairs ([`crate::calibration`]). The result and its evidence are kept as
//! `calibrations/<endpoint configuration>.json` in the artifact bucket and published for the
//! scorer's function and the run ledger.
//!
//! The node's identity is the serving configuration: a new one is calibrated anew, and the same
//! one again (in place: its record is overwritten only once the new one is ready) when the
//! target changes or `lakesight calibrate` asks. A configuration that serves although a newer
//! generation is deployable (its update failed) keeps the calibration it has: the splits at hand
//! are the newer generation's.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Lineage;
use super::endpoint_config::variant_name;
use crate::aws::s3::{delete_json, read_json, read_prefix, split_uri, write_json};
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
    /// `lakesight calibrate`: calibrate the serving generation again, once.
    again: bool,
    /// Whether this run has calibrated: a request to calibrate again is then fulfilled.
    acted: AtomicBool,
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
            acted: AtomicBool::new(false),
        }
    }

    /// Whether `config` is the deployable generation's: only then are the splits at hand its own.
    fn deployable_serves(&self, config: &str) -> bool {
        match self.inputs.job.get() {
            Known::Now(job) => config.starts_with(&format!("{job}-c")),
            Known::AfterApply => false,
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

/// Each pair once, in the order first seen. The scorer scores distinct pairs, so a rate over
/// distinct pairs is the rate of its findings; and a pair seen a thousand times would otherwise
/// weigh a thousand times, with ties that keep the threshold from meeting its target.
fn distinct(pairs: Vec<Pair>) -> Vec<Pair> {
    let mut seen = std::collections::HashSet::new();
    pairs.into_iter().filter(|p| seen.insert((p.entity.clone(), p.ip))).collect()
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
        if !self.deployable_serves(&observed.config) {
            return changes;
        }
        let (target, was) = (self.policy(), observed.calibration.target_false_positive_rate);
        match target {
            Policy::TargetFalsePositiveRate(t) if was != Some(t) => {
                let from = was.map_or_else(|| format!("fixed {}", observed.calibration.threshold), |w| w.to_string());
                changes.push(Change::in_place("targetFalsePositiveRate", from, t.to_string()));
            }
            Policy::Fixed(v) if was.is_some() || observed.calibration.threshold != v => {
                changes.push(Change::in_place(
                    "threshold",
                    observed.calibration.threshold.to_string(),
                    format!("fixed {v}"),
                ));
            }
            _ => {}
        }
        if self.again && !self.acted.load(Ordering::SeqCst) && changes.is_empty() {
            let when = humantime::format_rfc3339_seconds(observed.calibrated_at);
            changes.push(Change::in_place("calibratedAt", when.to_string(), AFTER_APPLY));
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
        let validation = distinct(self.pairs(&Self::input(&self.inputs.validated_on)?).await?);
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
        write_json(&self.s3, &self.bucket, &record_key(&config), &record).await?;
        self.acted.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Calibrates again, and overwrites the record once the new one is ready.
    async fn update(&self, _observed: &Record, _changes: &[Change]) -> Result<(), ResourceError> {
        self.create().await
    }

    async fn delete(&self, observed: &Record) -> Result<(), ResourceError> {
        delete_json(&self.s3, &self.bucket, &record_key(&observed.config)).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::Object;
    use aws_sdk_s3::types::error::NoSuchKey;
    use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointOutput;
    use aws_sdk_sagemakerruntime::primitives::Blob;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::resource::Managed;
    use crate::resource::test_support::{created_as_planned, input};
    use crate::stack::tests::stack;

    const SPEC: &str = "  securityLake: {}\n  subscriber:\n    principal: \"111122223333\"\n    externalId: xid\n  features: {}\n  training: {}\n  endpoint: {}\n  scorer:\n    package: p.zip\n    threshold:\n      targetFalsePositiveRate: 0.1\n";

    /// Ten entities, each seen in training with twenty 10.0.x.y addresses, and validated on them.
    fn csv() -> String {
        (0..20).flat_map(|j| (0..10).map(move |i| format!("e{i},10.0.{j}.{i}\n"))).collect()
    }

    fn s3_rules() -> Vec<Rule> {
        let listed = |prefix: &'static str| {
            mock!(aws_sdk_s3::Client::list_objects_v2).match_requests(move |r| r.prefix() == Some(prefix)).then_output(
                move || {
                    ListObjectsV2Output::builder()
                        .contents(Object::builder().key(format!("{prefix}part-0")).build())
                        .build()
                },
            )
        };
        let body = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.key().is_some_and(|k| k.starts_with("features/")))
            .then_output(|| GetObjectOutput::builder().body(ByteStream::from(csv().into_bytes())).build());
        let none = mock!(aws_sdk_s3::Client::get_object)
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        vec![listed("features/r1/train/"), listed("features/r1/validation/"), body, none]
    }

    /// An endpoint that knows the 10.0.0.0/16 addresses (dot product 4) and nothing else (-4).
    fn endpoint() -> Rule {
        mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint).then_compute_output(|r| {
            let body = std::str::from_utf8(r.body().map(Blob::as_ref).unwrap_or_default()).unwrap_or_default();
            let predictions: Vec<serde_json::Value> = body
                .lines()
                .map(|line| {
                    let known = line.split_once(',').is_some_and(|(_, ip)| ip.starts_with("10.0."));
                    serde_json::json!({"dot_product": if known { 4.0 } else { -4.0 }})
                })
                .collect();
            let answer = serde_json::json!({ "predictions": predictions }).to_string();
            InvokeEndpointOutput::builder().body(Blob::new(answer)).invoked_production_variant("g2").build()
        })
    }

    fn run(s3: &[&Rule], runtime: &[&Rule], serving: &str) -> (CalibrationRun, String) {
        let s = stack(SPEC);
        let lineage = Lineage::of_stack(&s).expect("trains");
        let job = format!("{}2-{}", lineage.prefix, lineage.digest);
        let config = if serving.is_empty() { format!("{job}-c0a0b") } else { serving.to_owned() };
        let inputs = Inputs {
            serving_config: input(Key::new("c"), Some(config.clone())),
            job: input(Key::new("j"), Some(job)),
            trained_on: input(Key::new("t"), Some("s3://b/features/r1/train/".to_owned())),
            validated_on: input(Key::new("v"), Some("s3://b/features/r1/validation/".to_owned())),
        };
        let threshold = s.manifest.spec.scorer.as_ref().expect("scorer").threshold.clone();
        let clients = (mocked_client!(aws_sdk_s3, s3), mocked_client!(aws_sdk_sagemakerruntime, runtime));
        (CalibrationRun::new(&s, lineage, threshold, 1_000, clients, inputs), config)
    }

    #[tokio::test]
    async fn the_serving_generation_is_scored_in_small_payloads_and_its_threshold_kept() {
        let rules = s3_rules();
        let written = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.key().is_some_and(|k| k.starts_with("calibrations/") && k.ends_with("-c0a0b.json")))
            .then_output(|| PutObjectOutput::builder().build());
        let mut s3: Vec<&Rule> = rules.iter().collect();
        s3.push(&written);
        let scored = endpoint();
        let (run, _) = run(&s3, &[&scored], "");
        created_as_planned(&Managed::new(run)).await;
        assert_eq!(written.num_calls(), 1);
        // 200 normal and 200 random-IP pairs of about 16 bytes, in bodies of at most 1,000.
        assert!(scored.num_calls() >= 8, "{} requests", scored.num_calls());
    }

    #[tokio::test]
    async fn a_configuration_the_job_did_not_make_is_not_calibrated() {
        let rules = s3_rules();
        let s3: Vec<&Rule> = rules.iter().collect();
        let (run, _) = run(&s3, &[], "lakesight-demo-g1-00000000-c0a0b");
        let error = run.create().await.expect_err("refused");
        assert!(error.to_string().contains("not the deployable generation"), "{error}");
    }

    fn record(config: &str, target: Option<f64>, threshold: f64) -> Record {
        let histogram = crate::calibration::Histogram::new(&[1.0], &[2.0], 2).expect("histogram");
        let calibration = Calibration {
            threshold,
            target_false_positive_rate: target,
            calibration_false_positive_rate: 0.1,
            check_false_positive_rate: 0.1,
            check_true_positive_rate: 1.0,
            auc: 1.0,
            counts: crate::calibration::Counts {
                calibration_normal: 100,
                calibration_anomalous: 100,
                check_normal: 100,
                check_anomalous: 100,
            },
            seed: 1,
            histogram,
        };
        Record {
            config: config.to_owned(),
            job: String::new(),
            variant: "g2".into(),
            endpoint: String::new(),
            calibration,
            scores: RecordedScores { normal: vec![], anomalous: vec![] },
            calibrated_at: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_new_target_or_a_request_calibrates_again_and_only_a_settled_one_is_published() {
        let (run, config) = run(&[], &[], "");
        let settled = record(&config, Some(0.1), -3.5);
        assert!(run.diff(&settled).is_empty());
        assert_eq!(run.outputs(&settled).get(THRESHOLD), Some(-3.5));
        assert_eq!(run.outputs(&settled).get(VARIANT).as_deref(), Some("g2"));
        let other_target = record(&config, Some(0.01), -1.0);
        assert_eq!(
            run.diff(&other_target),
            [Change::in_place("targetFalsePositiveRate", "0.01", "0.1")],
            "a new target is a new calibration, written over the old once ready"
        );
        assert!(run.outputs(&other_target).is_empty(), "the function keeps its threshold until then");
        let older = record("lakesight-demo-g1-00000000-c0a0b", Some(0.01), -1.0);
        assert!(run.diff(&older).is_empty(), "a generation still serving after a failed update keeps its own");
        let again = run.again();
        assert!(again.diff(&settled).iter().any(|c| c.field == "calibratedAt" && !c.requires_replace));
        again.acted.store(true, Ordering::SeqCst);
        assert!(again.diff(&settled).is_empty(), "once calibrated again, the request is fulfilled");
        let pair = |e: &str, ip: [u8; 4]| Pair::new(e, std::net::Ipv4Addr::from(ip));
        let pairs = vec![pair("a", [10, 0, 0, 1]), pair("b", [10, 0, 0, 1]), pair("a", [10, 0, 0, 1])];
        assert_eq!(distinct(pairs), [pair("a", [10, 0, 0, 1]), pair("b", [10, 0, 0, 1])]);
        assert_eq!(seed_of("x"), seed_of("x"));
        assert_ne!(seed_of("x"), seed_of("y"));
    }
}
