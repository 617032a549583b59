//! The training job of the current model generation. SageMaker job names are unique forever, so
//! each job is named `lakesight-<stack>-g<generation>-<inputs digest>`: the digest covers the
//! hyperparameters, the feature inputs, the image and the resources, so a job is trained again
//! only when one of them changes, and the plan says which. A completed job must pass the quality
//! gate ([`gate`](super::gate)) before anything may deploy it.
//!
//! The node's outputs name the *deployable* generation: the newest job that passed the gate,
//! whatever inputs trained it. While a new job trains, and after the gate rejects it, the
//! generation before it stays the one the model, the endpoint and the threshold follow. While a
//! new generation is on its way, the node publishes none, so the plan shows what follows it as
//! known after apply.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, CompressionType, DataSource, OutputDataConfig, ResourceConfig, S3DataDistribution,
    S3DataSource, S3DataType, StoppingCondition, Tag, TrainingInputMode, TrainingInstanceType, TrainingJobStatus,
};

use super::gate::{Baseline, Gate, Verdict};
use super::{Lineage, add_tags, read_tags};
use crate::aws::error::service_error;
use crate::aws::propagation::{self, Bound, Service};
use crate::engine::{AFTER_APPLY, Change, Input, Key, Known, Outputs, Ownership, Readiness};
use crate::manifest::{Features, Training};
use crate::pipeline::ipinsights::{AUC_METRIC, hyperparameters, image_uri};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags};
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "sagemaker.training_job/current";

/// The deployable generation's job: the newest that passed the quality gate.
pub const JOB_NAME: Key<String> = Key::new("trainingJobName");
/// Where that job wrote `model.tar.gz`.
pub const MODEL_ARTIFACT: Key<String> = Key::new("modelArtifact");
/// Its `validation:discriminator_auc`, when it reported one.
pub const AUC: Key<f64> = Key::new("auc");
/// The feature run's train split it read (its `train` channel).
pub const TRAINED_ON: Key<String> = Key::new("trainedOn");
/// The validation split it was measured on (its `validation` channel).
pub const VALIDATED_ON: Key<String> = Key::new("validatedOn");
/// The newest job's verdict, `<job> passed|rejected: <reason>`, for the run ledger.
pub const GATE: Key<String> = Key::new("qualityGate");

/// What a job trains on: a feature run's outputs.
#[derive(Debug, Clone)]
pub struct FeatureInputs {
    pub train_prefix: Input<String>,
    pub validation_prefix: Input<String>,
    pub distinct_entities: Input<u64>,
}

/// One training job, as described.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub secondary: Option<String>,
    pub failure: Option<String>,
    pub auc: Option<f64>,
    pub artifact: Option<String>,
    /// The `train` channel it read: the feature run it was trained on.
    pub trained_on: Option<String>,
    /// The `validation` channel.
    pub validated_on: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Job {
    /// The quality gate's verdict, once the job has been judged.
    pub fn verdict(&self) -> Option<Verdict> {
        Verdict::from_tags(&self.tags)
    }

    fn completed(&self) -> bool {
        self.status == TrainingJobStatus::Completed.as_str()
    }
}

/// The newest job trained from the current inputs, and the generation that may serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub job: Job,
    /// The newest completed job of the stack, of any inputs, that passed the quality gate.
    pub deployable: Option<Job>,
}

pub struct TrainingJob {
    identity: Identity,
    client: Client,
    lineage: Lineage,
    image: Result<String, crate::pipeline::ipinsights::ImageError>,
    role_arn: String,
    bucket: String,
    features: FeatureInputs,
    training: Training,
    gate: Gate,
    tags: BTreeMap<String, String>,
    /// The newest job of the stack, as the last `read` found it.
    latest: std::sync::Mutex<Option<String>>,
    /// Whether this run acted on the job: only then may readiness judge it, and only then does
    /// a rejection fail the run.
    acted: AtomicBool,
}

impl TrainingJob {
    /// `after`: the execution role's node, when the stack creates the role.
    pub fn new(
        stack: &Stack,
        features_spec: &Features,
        training: &Training,
        client: Client,
        features: FeatureInputs,
        after: Vec<String>,
    ) -> Self {
        let image = match &training.image {
            Some(image) => Ok(image.clone()),
            None => image_uri(&stack.env.region),
        };
        let lineage = Lineage::of(stack, features_spec, training);
        let mut identity = Identity::new(stack, ADDRESS, format!("{}?-{}", lineage.prefix, lineage.digest));
        identity.wait_timeout = training.max_runtime + stack.manifest.spec.timeouts.default;
        identity.depends_on = after;
        identity.depends_on.push(features.train_prefix.source().to_owned());
        TrainingJob {
            identity,
            client,
            lineage,
            image,
            role_arn: stack.role_arn(RoleKind::SageMakerExecution),
            bucket: stack.artifact_bucket(),
            features,
            training: training.clone(),
            gate: Gate {
                min_auc: training.min_auc.or(stack.manifest.spec.retrain.as_ref().and_then(|r| r.min_auc)),
                max_auc_drop: stack.manifest.spec.retrain.as_ref().and_then(|r| r.max_auc_drop),
            },
            tags: stack.tags(),
            latest: std::sync::Mutex::new(None),
            acted: AtomicBool::new(false),
        }
    }

    /// The image, or why there is none (a region missing from the bundled table, without an override).
    fn image(&self) -> Result<&str, ResourceError> {
        self.image.as_deref().map_err(|e| ResourceError::Invalid(e.to_string()))
    }

    /// The feature run's value, which the engine settles before this job acts.
    fn feature<T: serde::de::DeserializeOwned>(input: &Input<T>) -> Result<T, ResourceError> {
        input.get().now().ok_or_else(|| ResourceError::Invalid(format!("the feature run has not produced {input:?}")))
    }

    async fn describe(&self, name: &str) -> Result<Job, ResourceError> {
        let out = self
            .client
            .describe_training_job()
            .training_job_name(name)
            .send()
            .await
            .map_err(|e| service_error("DescribeTrainingJob", e))?;
        let arn = out.training_job_arn().unwrap_or_default().to_owned();
        let tags = read_tags(&self.client, &arn).await?;
        let channel = |channel: &str| {
            out.input_data_config()
                .iter()
                .find(|c| c.channel_name() == Some(channel))
                .and_then(|c| c.data_source()?.s3_data_source()?.s3_uri())
                .map(str::to_owned)
        };
        Ok(Job {
            name: name.to_owned(),
            status: out.training_job_status().map_or("Unknown", |s| s.as_str()).to_owned(),
            secondary: out.secondary_status().map(|s| s.as_str().to_owned()),
            failure: out.failure_reason().map(str::to_owned),
            auc: out
                .final_metric_data_list()
                .iter()
                .find(|m| m.metric_name() == Some(AUC_METRIC))
                .and_then(|m| m.value())
                .map(f64::from),
            artifact: out
                .model_artifacts()
                .and_then(|a| a.s3_model_artifacts())
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            trained_on: channel("train"),
            validated_on: channel("validation"),
            tags,
            arn,
        })
    }

    fn channel(name: &str, uri: &str) -> Channel {
        let source = S3DataSource::builder()
            .s3_data_type(S3DataType::S3Prefix)
            .s3_uri(uri)
            .s3_data_distribution_type(S3DataDistribution::FullyReplicated)
            .build();
        Channel::builder()
            .channel_name(name)
            .data_source(DataSource::builder().s3_data_source(source).build())
            .content_type("text/csv")
            .compression_type(CompressionType::None)
            .build()
    }

    fn active(job: &Job) -> bool {
        [TrainingJobStatus::InProgress.as_str(), TrainingJobStatus::Stopping.as_str()].contains(&job.status.as_str())
    }

    /// The job of the current inputs when it passed the gate; else the newest older job of the
    /// stack, of any inputs, that passed and carries its owner tag. Never a newer job of other
    /// inputs: a manifest reverted to earlier settings serves what those settings trained.
    async fn deployable(&self, jobs: &BTreeMap<u32, String>, current: &Job) -> Result<Option<Job>, ResourceError> {
        let passed = |job: &Job| {
            let ours = ownership_from_tags(&job.tags, &self.identity.stack) == Ownership::Owned;
            ours && job.completed() && job.artifact.is_some() && job.verdict().is_some_and(|v| v.passed)
        };
        if passed(current) {
            return Ok(Some(current.clone()));
        }
        let generation = self.lineage.generation_of(&current.name).unwrap_or(u32::MAX);
        for (_, name) in jobs.range(..generation).rev() {
            let job = self.describe(name).await?;
            if passed(&job) {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// Judges a completed job against the generation that may serve now, and keeps the verdict
    /// on the job.
    async fn judge(&self, observed: &Observed) -> Result<Verdict, ResourceError> {
        let baseline = observed.deployable.as_ref().map(|d| Baseline { job: d.name.clone(), auc: d.auc });
        let verdict = self.gate.judge(observed.job.auc, baseline.as_ref());
        let tags = verdict.tags();
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        add_tags(&self.client, &observed.job.arn, &tags).await?;
        Ok(verdict)
    }

    fn acted(&self) -> bool {
        self.acted.load(Ordering::SeqCst)
    }

    /// What still serves while `job` does not.
    fn fallback(observed: &Observed) -> String {
        match &observed.deployable {
            Some(d) => format!("{} stays the deployed generation", d.name),
            None => "no generation has passed the gate yet".to_owned(),
        }
    }
}

#[async_trait]
impl Resource for TrainingJob {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The newest job trained from these inputs, and the deployable generation; `None` means
    /// these inputs have not been trained.
    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        self.image()?;
        let jobs = self.lineage.jobs(&self.client).await?;
        if let Ok(mut latest) = self.latest.lock() {
            *latest = jobs.values().next_back().cloned();
        }
        let Some(name) = jobs.values().rev().find(|name| self.lineage.is_current(name)) else { return Ok(None) };
        let job = self.describe(name).await?;
        let deployable = self.deployable(&jobs, &job).await?;
        Ok(Some(Observed { job, deployable }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.job.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let job = &observed.job;
        // A failed or stopped job is retrained as the next generation.
        let mut changes = match job.status.as_str() {
            "Failed" | "Stopped" => vec![Change::replacing("status", &job.status, "Completed")],
            _ => Vec::new(),
        };
        // So is a job trained on another feature run than the current one, or than the new run
        // on its way (a retrain's fresh window): the data is an input too.
        match (&job.trained_on, self.features.train_prefix.get()) {
            (Some(trained_on), Known::Now(current)) if *trained_on != current => {
                changes.push(Change::replacing("trainedOn", trained_on, current));
            }
            (Some(trained_on), Known::AfterApply) => {
                changes.push(Change::replacing("trainedOn", trained_on, AFTER_APPLY))
            }
            _ => {}
        }
        if !changes.is_empty() {
            return changes;
        }
        // A job a killed run left training, or left unjudged, is waited for and judged.
        if Self::active(job) {
            vec![Change::in_place("status", &job.status, "Completed, then judged by the quality gate")]
        } else if job.completed() && job.verdict().is_none() {
            vec![Change::in_place("qualityGate", "not judged", "judged")]
        } else {
            Vec::new()
        }
    }

    fn id(&self, observed: &Observed) -> String {
        observed.job.arn.clone()
    }

    fn absence_note(&self) -> Option<String> {
        let data = match self.features.train_prefix.get() {
            Known::Now(prefix) => format!("on {prefix}"),
            Known::AfterApply => format!("on the feature run's pairs {AFTER_APPLY}"),
        };
        Some(match self.latest.lock().ok().and_then(|l| l.clone()) {
            Some(job) => format!(
                "inputs changed since {job} (hyperparameters, features, image or resources); trains a new generation {data}"
            ),
            None => format!("first training, {data}"),
        })
    }

    /// The deployable generation, unless a newer one is on its way.
    fn outputs(&self, observed: &Observed) -> Outputs {
        let job = &observed.job;
        let mut outputs = Outputs::new();
        if let Some(verdict) = job.verdict() {
            let word = if verdict.passed { "passed" } else { "rejected" };
            outputs = outputs.with(GATE, &format!("{} {word}: {}", job.name, verdict.reason));
        }
        let Some(deployable) = observed.deployable.as_ref().filter(|_| self.diff(observed).is_empty()) else {
            return outputs;
        };
        outputs = outputs.with(JOB_NAME, &deployable.name);
        let values = [
            (MODEL_ARTIFACT, &deployable.artifact),
            (TRAINED_ON, &deployable.trained_on),
            (VALIDATED_ON, &deployable.validated_on),
        ];
        for (key, value) in values {
            if let Some(value) = value {
                outputs = outputs.with(key, value);
            }
        }
        if let Some(auc) = deployable.auc {
            outputs = outputs.with(AUC, &auc);
        }
        outputs
    }

    /// Only a running job can be stopped; SageMaker keeps every job on record.
    fn kept(&self, observed: &Observed) -> Option<String> {
        (!Self::active(&observed.job)).then(|| {
            format!("kept: SageMaker keeps {} training jobs on record; they cannot be deleted", observed.job.status)
        })
    }

    /// A finished job is as deleted as SageMaker allows: a new generation can be trained.
    fn deleted_enough(&self, observed: &Observed) -> bool {
        !Self::active(&observed.job)
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        let job = &observed.job;
        let auc = job.auc.map(|a| format!(", AUC {a:.4}")).unwrap_or_default();
        let verdict = match job.verdict() {
            Some(v) if v.passed => ", passed the quality gate".to_owned(),
            Some(v) => format!(", rejected by the quality gate ({}); {}", v.reason, Self::fallback(observed)),
            None => String::new(),
        };
        Some(format!("{}{auc}{verdict}", job.status))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let next = self.lineage.jobs(&self.client).await?.keys().next_back().map_or(1, |g| g + 1);
        let name = format!("{}{next}-{}", self.lineage.prefix, self.lineage.digest);
        let (train, validation) =
            (Self::feature(&self.features.train_prefix)?, Self::feature(&self.features.validation_prefix)?);
        let entities = Self::feature(&self.features.distinct_entities)?;
        let t = &self.training;
        let mut request = self
            .client
            .create_training_job()
            .training_job_name(&name)
            .algorithm_specification(
                AlgorithmSpecification::builder()
                    .training_image(self.image()?)
                    .training_input_mode(TrainingInputMode::File)
                    .build(),
            )
            .role_arn(&self.role_arn)
            .input_data_config(Self::channel("train", &train))
            .input_data_config(Self::channel("validation", &validation))
            .output_data_config(
                OutputDataConfig::builder().s3_output_path(format!("s3://{}/models/", self.bucket)).build(),
            )
            .resource_config(
                ResourceConfig::builder()
                    .instance_type(TrainingInstanceType::from(t.instance_type.as_str()))
                    .instance_count(i32::try_from(t.instance_count).unwrap_or(i32::MAX))
                    .volume_size_in_gb(i32::try_from(t.volume_size_gb).unwrap_or(i32::MAX))
                    .build(),
            )
            .stopping_condition(
                StoppingCondition::builder()
                    .max_runtime_in_seconds(i32::try_from(t.max_runtime.as_secs()).unwrap_or(i32::MAX))
                    .build(),
            )
            .set_hyper_parameters(Some(hyperparameters(&t.hyperparameters, entities).into_iter().collect()));
        for (k, v) in &self.tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        // Set before sending: a job created though its answer was lost is found by the adapter's
        // read and is this run's to judge all the same.
        self.acted.store(true, Ordering::SeqCst);
        // A role SageMaker cannot assume yet makes it reject the job: nothing was created, so the
        // same request may be sent again.
        let bound = Bound::starting_at(self.identity.poll_interval);
        propagation::retry(Service::SageMaker, bound, || {
            let request = request.clone();
            async move { request.send().await.map(drop).map_err(|e| service_error("CreateTrainingJob", e)) }
        })
        .await
    }

    /// Jobs are immutable: a change of inputs is a new generation (Replace). An update only
    /// takes over a job a killed run left: judged now when it has completed, else by readiness.
    async fn update(&self, observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        if observed.job.completed() && observed.job.verdict().is_none() {
            self.judge(observed).await?;
        }
        self.acted.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Jobs cannot be deleted: one still running is stopped, a finished one stays on record.
    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        if observed.job.status == TrainingJobStatus::InProgress.as_str() {
            self.client
                .stop_training_job()
                .training_job_name(&observed.job.name)
                .send()
                .await
                .map_err(|e| service_error("StopTrainingJob", e))?;
        }
        Ok(())
    }

    /// A job this run trained or took over is judged once it completes, and a rejection fails
    /// the run. A job judged by an earlier run is only read: its rejection fails nothing while
    /// an earlier generation can serve.
    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let Some(observed) = self.read().await? else {
            return Ok(self.identity.pending("not listed yet"));
        };
        let job = observed.job.clone();
        match job.status.as_str() {
            "Completed" => {
                let verdict = match job.verdict() {
                    Some(verdict) => verdict,
                    None if self.acted() => self.judge(&observed).await?,
                    None => {
                        return Err(ResourceError::Invalid(format!(
                            "{} has not been judged by the quality gate; apply judges it",
                            job.name
                        )));
                    }
                };
                if verdict.passed || (!self.acted() && observed.deployable.is_some()) {
                    return Ok(Readiness::Ready);
                }
                Err(ResourceError::Invalid(format!(
                    "quality gate: {} rejected: {}; {}",
                    job.name,
                    verdict.reason,
                    Self::fallback(&observed)
                )))
            }
            "Failed" => Err(ResourceError::Service {
                operation: "TrainingJob",
                code: "Failed".into(),
                message: format!("{}: {}", job.name, job.failure.unwrap_or_else(|| "no failure reason given".into())),
            }),
            "Stopped" => Err(ResourceError::Invalid(format!("{} was stopped", job.name))),
            status => {
                let secondary = job.secondary.map(|s| format!(" / {s}")).unwrap_or_default();
                Ok(self.identity.pending(format!("{status}{secondary}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::add_tags::AddTagsOutput;
    use aws_sdk_sagemaker::operation::create_training_job::{CreateTrainingJobError, CreateTrainingJobOutput};
    use aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::operation::list_training_jobs::{ListTrainingJobsError, ListTrainingJobsOutput};
    use aws_sdk_sagemaker::operation::stop_training_job::StopTrainingJobOutput;
    use aws_sdk_sagemaker::types::{MetricData, ModelArtifacts, SecondaryStatus, TrainingJobSummary};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::Node;
    use crate::resource::Managed;
    use crate::resource::test_support::{created_as_planned, input};
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training:\n    minAuc: 0.8\n    hyperparameters:\n      epochs: 3\n";

    fn job(sagemaker: &[&Rule]) -> TrainingJob {
        let s = stack(SPEC);
        let (features, training) =
            (s.manifest.spec.features.clone().expect("f"), s.manifest.spec.training.clone().expect("t"));
        let inputs = FeatureInputs {
            train_prefix: input(Key::new("t"), Some("s3://b/features/r1/train/".to_owned())),
            validation_prefix: input(Key::new("v"), Some("s3://b/features/r1/validation/".to_owned())),
            distinct_entities: input(Key::new("e"), Some(21)),
        };
        TrainingJob::new(&s, &features, &training, mocked_client!(aws_sdk_sagemaker, sagemaker), inputs, vec![])
    }

    fn listed(names: &[&str]) -> Rule {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        mock!(Client::list_training_jobs).then_output(move || {
            let mut out = ListTrainingJobsOutput::builder();
            for name in &names {
                out = out.training_job_summaries(TrainingJobSummary::builder().training_job_name(name).build());
            }
            out.build()
        })
    }

    /// A job as DescribeTrainingJob and ListTags answer for it: its status, its AUC and, once
    /// judged, its gate verdict.
    fn known(name: &str, status: TrainingJobStatus, auc: Option<f32>, gate: Option<&'static str>) -> [Rule; 2] {
        let (name, arn) = (name.to_owned(), format!("arn:aws:sagemaker:eu-west-1:111122223333:training-job/{name}"));
        let (wanted, tagged) = (name.clone(), arn.clone());
        let describe = mock!(Client::describe_training_job)
            .match_requests(move |r| r.training_job_name() == Some(wanted.as_str()))
            .then_output(move || {
                let mut out = DescribeTrainingJobOutput::builder()
                    .training_job_arn(&arn)
                    .training_job_status(status.clone())
                    .secondary_status(SecondaryStatus::Training)
                    .input_data_config(TrainingJob::channel("train", "s3://b/features/r1/train/"))
                    .input_data_config(TrainingJob::channel("validation", "s3://b/features/r1/validation/"));
                if status == TrainingJobStatus::Completed {
                    let artifact = format!("s3://b/models/{name}/output/model.tar.gz");
                    out = out.model_artifacts(ModelArtifacts::builder().s3_model_artifacts(artifact).build());
                }
                if let Some(v) = auc {
                    out = out.final_metric_data_list(MetricData::builder().metric_name(AUC_METRIC).value(v).build());
                }
                out.build()
            });
        let tags = mock!(Client::list_tags)
            .match_requests(move |r| r.resource_arn() == Some(tagged.as_str()))
            .then_output(move || {
                let mut out =
                    ListTagsOutput::builder().tags(Tag::builder().key("lakesight:stack").value("demo").build());
                if let Some(word) = gate {
                    out = out.tags(Tag::builder().key(crate::aws::sagemaker::gate::GATE_TAG).value(word).build());
                }
                out.build()
            });
        [describe, tags]
    }

    fn failed(name: &str, failure: &'static str) -> [Rule; 2] {
        let [_, tags] = known(name, TrainingJobStatus::Failed, None, None);
        let (wanted, arn) = (name.to_owned(), format!("arn:aws:sagemaker:eu-west-1:111122223333:training-job/{name}"));
        let describe = mock!(Client::describe_training_job)
            .match_requests(move |r| r.training_job_name() == Some(wanted.as_str()))
            .then_output(move || {
                DescribeTrainingJobOutput::builder()
                    .training_job_arn(&arn)
                    .training_job_status(TrainingJobStatus::Failed)
                    .failure_reason(failure)
                    .build()
            });
        [describe, tags]
    }

    fn tagged(word: &'static str) -> Rule {
        mock!(Client::add_tags)
            .match_requests(move |r| {
                r.tags()
                    .iter()
                    .any(|t| t.key() == Some(crate::aws::sagemaker::gate::GATE_TAG) && t.value() == Some(word))
            })
            .then_output(|| AddTagsOutput::builder().build())
    }

    #[tokio::test]
    async fn the_first_job_is_generation_one_with_both_channels_and_sized_entities() {
        let list = listed(&[]);
        let create = mock!(Client::create_training_job)
            .match_requests(|r| {
                let channels: Vec<&str> = r.input_data_config().iter().filter_map(|c| c.channel_name()).collect();
                let hp = r.hyper_parameters().cloned().unwrap_or_default();
                r.training_job_name().is_some_and(|n| n.starts_with("lakesight-demo-g1-"))
                    && channels == ["train", "validation"]
                    && hp.get("num_entity_vectors").map(String::as_str) == Some("42")
                    && hp.get("epochs").map(String::as_str) == Some("3")
                    && r.algorithm_specification().and_then(|a| a.training_image())
                        == Some("438346466558.dkr.ecr.eu-west-1.amazonaws.com/ipinsights:1")
            })
            .then_output(|| CreateTrainingJobOutput::builder().training_job_arn("arn").build());
        let n = Managed::new(job(&[&list, &create]));
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_role_sagemaker_cannot_assume_yet_is_waited_for() {
        let list = listed(&[]);
        let not_assumable = || {
            CreateTrainingJobError::generic(
                ErrorMetadata::builder()
                    .code("ValidationException")
                    .message("Could not assume role arn:aws:iam::111122223333:role/lakesight-demo-training. Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume the role.")
                    .build(),
            )
        };
        let create = mock!(Client::create_training_job)
            .sequence()
            .error(not_assumable)
            .output(|| CreateTrainingJobOutput::builder().training_job_arn("arn").build())
            .build();
        let mut j = job(&[&list, &create]);
        j.identity.poll_interval = std::time::Duration::from_millis(1);
        j.create().await.expect("created once the role is usable");
        assert_eq!(create.num_calls(), 2);

        let invalid = mock!(Client::create_training_job).then_error(|| {
            CreateTrainingJobError::generic(
                ErrorMetadata::builder().code("ValidationException").message("Invalid instance type").build(),
            )
        });
        let mut j = job(&[&list, &invalid]);
        j.identity.poll_interval = std::time::Duration::from_millis(1);
        j.create().await.expect_err("another validation error is reported");
        assert_eq!(invalid.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_next_generation_follows_the_highest_and_a_judged_job_from_these_inputs_is_found() {
        let ours = format!("lakesight-demo-g2-{}", job(&[]).lineage.digest);
        let list = listed(&["lakesight-demo-g1-00000000", &ours]);
        let [describe, tags] = known(&ours, TrainingJobStatus::Completed, Some(0.91), Some("passed"));
        let n = Managed::new(job(&[&list, &describe, &tags]));
        let observed = n.observe().await.expect("observe");
        assert_eq!((observed.ownership, observed.changes), (Some(Ownership::Owned), vec![]));
        assert_eq!(observed.health.as_deref(), Some("Completed, AUC 0.9100, passed the quality gate"));
        assert_eq!(observed.outputs.get(JOB_NAME), Some(ours));
        assert_eq!(observed.outputs.get(VALIDATED_ON).as_deref(), Some("s3://b/features/r1/validation/"));
    }

    #[tokio::test]
    async fn a_rejected_generation_leaves_the_one_before_it_deployable() {
        let digest = job(&[]).lineage.digest;
        let (before, rejected) = (format!("lakesight-demo-g1-{digest}"), format!("lakesight-demo-g2-{digest}"));
        let list = listed(&[&before, &rejected]);
        let [d1, t1] = known(&before, TrainingJobStatus::Completed, Some(0.9), Some("passed"));
        let [d2, t2] = known(&rejected, TrainingJobStatus::Completed, Some(0.6), Some("rejected"));
        let rules = [&list, &d1, &t1, &d2, &t2];
        let n = Managed::new(job(&rules));
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![], "the same window is not trained again");
        assert_eq!(observed.outputs.get(JOB_NAME), Some(before.clone()), "the model follows the one that passed");
        assert_eq!(observed.outputs.get(AUC), Some(0.8999999761581421));
        let health = observed.health.unwrap_or_default();
        assert!(health.contains(&format!("rejected by the quality gate (); {before} stays the deployed")), "{health}");
        // An earlier run judged it: a later run reads the verdict and goes on with g1.
        assert_eq!(job(&rules).readiness().await.expect("ready"), Readiness::Ready);
    }

    #[tokio::test]
    async fn the_run_that_trains_a_job_judges_it_against_the_deployed_generation() {
        let digest = job(&[]).lineage.digest;
        let (before, new) = (format!("lakesight-demo-g1-{digest}"), format!("lakesight-demo-g2-{digest}"));
        let list = listed(&[&before, &new]);
        let [d1, t1] = known(&before, TrainingJobStatus::Completed, Some(0.95), Some("passed"));
        let judge = |auc| {
            let [d2, t2] = known(&new, TrainingJobStatus::Completed, Some(auc), None);
            let (passed, rejected) = (tagged("passed"), tagged("rejected"));
            let j = job(&[&list, &d1, &t1, &d2, &t2, &passed, &rejected]);
            j.acted.store(true, Ordering::SeqCst);
            async move { (j.readiness().await, passed.num_calls(), rejected.num_calls()) }
        };
        let (ready, passed, rejected) = judge(0.96).await;
        assert_eq!((ready.ok(), passed, rejected), (Some(Readiness::Ready), 1, 0));
        // The manifest's gate is minAuc 0.8 and the default maxAucDrop: none. A stack that sets
        // one is judged against g1's AUC.
        let (ready, passed, rejected) = judge(0.5).await;
        let error = ready.expect_err("below the minimum");
        assert!(error.to_string().contains(&format!("{before} stays the deployed generation")), "{error}");
        assert!(error.to_string().contains("is below minAuc 0.8"), "{error}");
        assert_eq!((passed, rejected), (0, 1));

        // With retrain.maxAucDrop, g2 is judged against g1's 0.95.
        let [d2, t2] = known(&new, TrainingJobStatus::Completed, Some(0.9), None);
        let rejected = tagged("rejected");
        let mut j = job(&[&list, &d1, &t1, &d2, &t2, &rejected]);
        j.gate.max_auc_drop = Some(0.02);
        j.acted.store(true, Ordering::SeqCst);
        let error = j.readiness().await.expect_err("too far below g1");
        assert!(error.to_string().contains(&format!("below {before}'s 0.9500, more than maxAucDrop 0.02")), "{error}");
        assert_eq!(rejected.num_calls(), 1, "the verdict is kept on the job");
    }

    #[tokio::test]
    async fn readiness_reports_progress_and_failure_and_waits_for_judgement() {
        let ours = format!("lakesight-demo-g1-{}", job(&[]).lineage.digest);
        let list = listed(&[&ours]);
        let [d, t] = known(&ours, TrainingJobStatus::InProgress, None, None);
        let running = job(&[&list, &d, &t]).readiness().await;
        assert!(matches!(running, Ok(Readiness::Pending { status, .. }) if status == "InProgress / Training"));
        let observed = Managed::new(job(&[&list, &d, &t])).observe().await.expect("observe");
        assert!(observed.changes.iter().any(|c| c.field == "status" && !c.requires_replace), "{observed:?}");
        assert_eq!(observed.outputs.get(JOB_NAME), None, "no generation is deployable yet");

        let [d, t] = known(&ours, TrainingJobStatus::Completed, Some(0.9), None);
        let unjudged = job(&[&list, &d, &t]).readiness().await.expect_err("judged only by an action");
        assert!(unjudged.to_string().contains("has not been judged"), "{unjudged}");
        let [d, t] = known(&ours, TrainingJobStatus::Completed, None, None);
        let rejected = tagged("rejected");
        let j = job(&[&list, &d, &t, &rejected]);
        j.acted.store(true, Ordering::SeqCst);
        let missing = j.readiness().await.expect_err("gated");
        assert!(missing.to_string().contains("no validation AUC was reported"), "{missing}");
        assert!(missing.to_string().contains("no generation has passed the gate yet"), "{missing}");
        assert_eq!(rejected.num_calls(), 1, "the verdict is kept on the job");
        let [d, t] = failed(&ours, "ClientError: bad channel");
        let failed = job(&[&list, &d, &t]).readiness().await.expect_err("failed");
        assert!(failed.to_string().contains("ClientError: bad channel"), "{failed}");
    }

    #[tokio::test]
    async fn destroy_stops_a_running_job_and_throttled_reads_are_retried() {
        let stop = mock!(Client::stop_training_job).then_output(|| StopTrainingJobOutput::builder().build());
        let job_running = Job {
            name: "lakesight-demo-g1-x".into(),
            arn: String::new(),
            status: "InProgress".into(),
            secondary: None,
            failure: None,
            auc: None,
            artifact: None,
            trained_on: Some("s3://b/features/r1/train/".into()),
            validated_on: None,
            tags: BTreeMap::new(),
        };
        let running = Observed { job: job_running.clone(), deployable: None };
        let j = job(&[&stop]);
        assert_eq!(j.kept(&running), None, "a running job is stopped on destroy");
        j.delete(&running).await.expect("stop");
        let judged = [(crate::aws::sagemaker::gate::GATE_TAG.to_owned(), "passed".to_owned())].into();
        let completed = Job { status: "Completed".into(), tags: judged, ..job_running };
        let completed = Observed { job: completed, deployable: None };
        assert!(j.kept(&completed).is_some_and(|k| k.contains("cannot be deleted")), "reported as kept, not planned");
        assert!(j.diff(&completed).is_empty(), "trained on the current feature run");
        let stale = Job { trained_on: Some("s3://b/features/r0/train/".into()), ..completed.job };
        let stale = Observed { job: stale, deployable: None };
        assert_eq!(
            j.diff(&stale),
            [Change::replacing("trainedOn", "s3://b/features/r0/train/", "s3://b/features/r1/train/")],
            "a job trained on another feature run is trained again"
        );
        assert_eq!(stop.num_calls(), 1);

        let throttled = mock!(Client::list_training_jobs)
            .sequence()
            .error(|| ListTrainingJobsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()))
            .output(|| ListTrainingJobsOutput::builder().build())
            .build();
        assert!(job(&[&throttled]).read().await.expect("retried").is_none());
        assert_eq!(throttled.num_calls(), 2);
    }
}
