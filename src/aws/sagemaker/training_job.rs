//! The training job of the current model generation. SageMaker job names are unique forever, so
//! each job is named `lakesight-<stack>-g<generation>-<inputs digest>`: the digest covers the
//! hyperparameters, the feature inputs, the image and the resources, so a job is trained again
//! only when one of them changes, and the plan says which. A completed job must pass the quality
//! gate (`training.minAuc` on `validation:discriminator_auc`) before anything may deploy it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, CompressionType, DataSource, OutputDataConfig, ResourceConfig, S3DataDistribution,
    S3DataSource, S3DataType, StoppingCondition, Tag, TrainingInputMode, TrainingInstanceType, TrainingJobStatus,
};

use super::{Lineage, read_tags};
use crate::aws::error::service_error;
use crate::aws::propagation::{self, Bound, Service};
use crate::engine::{AFTER_APPLY, Change, Input, Key, Known, Outputs, Ownership, Readiness};
use crate::manifest::{Features, Training};
use crate::pipeline::ipinsights::{AUC_METRIC, hyperparameters, image_uri};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags};
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "sagemaker.training_job/current";

/// The job trained from the current inputs.
pub const JOB_NAME: Key<String> = Key::new("trainingJobName");
/// Where the job wrote `model.tar.gz`, once it has completed.
pub const MODEL_ARTIFACT: Key<String> = Key::new("modelArtifact");
/// `validation:discriminator_auc`, once the job has reported it.
pub const AUC: Key<f64> = Key::new("auc");

/// What a job trains on: a feature run's outputs.
#[derive(Debug, Clone)]
pub struct FeatureInputs {
    pub train_prefix: Input<String>,
    pub validation_prefix: Input<String>,
    pub distinct_entities: Input<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub secondary: Option<String>,
    pub failure: Option<String>,
    pub auc: Option<f64>,
    pub artifact: Option<String>,
    /// The `train` channel it read: the feature run it was trained on.
    pub trained_on: Option<String>,
    pub tags: BTreeMap<String, String>,
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
    min_auc: Option<f64>,
    tags: BTreeMap<String, String>,
    /// The newest job of the stack, as the last `read` found it.
    latest: std::sync::Mutex<Option<String>>,
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
            min_auc: training.min_auc.or(stack.manifest.spec.retrain.as_ref().and_then(|r| r.min_auc)),
            tags: stack.tags(),
            latest: std::sync::Mutex::new(None),
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

    async fn describe(&self, name: &str) -> Result<Observed, ResourceError> {
        let out = self
            .client
            .describe_training_job()
            .training_job_name(name)
            .send()
            .await
            .map_err(|e| service_error("DescribeTrainingJob", e))?;
        let arn = out.training_job_arn().unwrap_or_default().to_owned();
        let tags = read_tags(&self.client, &arn).await?;
        Ok(Observed {
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
            trained_on: out
                .input_data_config()
                .iter()
                .find(|c| c.channel_name() == Some("train"))
                .and_then(|c| c.data_source()?.s3_data_source()?.s3_uri())
                .map(str::to_owned),
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

    fn active(observed: &Observed) -> bool {
        [TrainingJobStatus::InProgress.as_str(), TrainingJobStatus::Stopping.as_str()]
            .contains(&observed.status.as_str())
    }

    /// The quality gate: a model below `minAuc`, or without the metric when a minimum is set, is not deployable.
    fn gate(&self, observed: &Observed) -> Result<(), ResourceError> {
        let Some(min) = self.min_auc else { return Ok(()) };
        match observed.auc {
            Some(auc) if auc >= min => Ok(()),
            Some(auc) => Err(ResourceError::Invalid(format!(
                "quality gate: {} reached {AUC_METRIC} {auc:.4}, below the minimum {min}; it will not be deployed",
                observed.name
            ))),
            None => Err(ResourceError::Invalid(format!(
                "quality gate: {} reported no {AUC_METRIC}; the gate needs it to deploy",
                observed.name
            ))),
        }
    }
}

#[async_trait]
impl Resource for TrainingJob {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The newest job trained from these inputs; `None` means these inputs have not been trained.
    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        self.image()?;
        let jobs = self.lineage.jobs(&self.client).await?;
        if let Ok(mut latest) = self.latest.lock() {
            *latest = jobs.values().next_back().cloned();
        }
        let ours = jobs.values().rev().find(|name| self.lineage.is_current(name));
        match ours {
            Some(name) => Ok(Some(self.describe(name).await?)),
            None => Ok(None),
        }
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        // A failed or stopped job is retrained as the next generation.
        let mut changes = match observed.status.as_str() {
            "Failed" | "Stopped" => vec![Change::replacing("status", &observed.status, "Completed")],
            _ => Vec::new(),
        };
        // So is a job trained on another feature run than the current one: the data is an input
        // too (after a destroy and a new apply, say, the old run's pairs and the job's artifact
        // went with the artifact bucket).
        if let (Some(trained_on), Known::Now(current)) = (&observed.trained_on, self.features.train_prefix.get())
            && *trained_on != current
        {
            changes.push(Change::replacing("trainedOn", trained_on, current));
        }
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
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

    fn outputs(&self, observed: &Observed) -> Outputs {
        let mut outputs = Outputs::new().with(JOB_NAME, &observed.name);
        if let Some(artifact) = &observed.artifact {
            outputs = outputs.with(MODEL_ARTIFACT, artifact);
        }
        if let Some(auc) = observed.auc {
            outputs = outputs.with(AUC, &auc);
        }
        outputs
    }

    /// Only a running job can be stopped; SageMaker keeps every job on record.
    fn kept(&self, observed: &Observed) -> Option<String> {
        (!Self::active(observed)).then(|| {
            format!("kept: SageMaker keeps {} training jobs on record; they cannot be deleted", observed.status)
        })
    }

    /// A finished job is as deleted as SageMaker allows: a new generation can be trained.
    fn deleted_enough(&self, observed: &Observed) -> bool {
        !Self::active(observed)
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        let auc = observed.auc.map(|a| format!(", AUC {a:.4}")).unwrap_or_default();
        Some(format!("{}{auc}", observed.status))
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
        // A role SageMaker cannot assume yet makes it reject the job: nothing was created, so the
        // same request may be sent again.
        let bound = Bound::starting_at(self.identity.poll_interval);
        propagation::retry(Service::SageMaker, bound, || {
            let request = request.clone();
            async move { request.send().await.map(drop).map_err(|e| service_error("CreateTrainingJob", e)) }
        })
        .await
    }

    async fn update(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        // Jobs are immutable: a change is a new generation (Replace), never an update.
        Ok(())
    }

    /// Jobs cannot be deleted: one still running is stopped, a finished one stays on record.
    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        if observed.status == TrainingJobStatus::InProgress.as_str() {
            self.client
                .stop_training_job()
                .training_job_name(&observed.name)
                .send()
                .await
                .map_err(|e| service_error("StopTrainingJob", e))?;
        }
        Ok(())
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let Some(job) = self.read().await? else {
            return Ok(self.identity.pending("not listed yet"));
        };
        match job.status.as_str() {
            "Completed" => {
                self.gate(&job)?;
                Ok(Readiness::Ready)
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
    use aws_sdk_sagemaker::operation::create_training_job::{CreateTrainingJobError, CreateTrainingJobOutput};
    use aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::operation::list_training_jobs::{ListTrainingJobsError, ListTrainingJobsOutput};
    use aws_sdk_sagemaker::operation::stop_training_job::StopTrainingJobOutput;
    use aws_sdk_sagemaker::types::{MetricData, SecondaryStatus, TrainingJobSummary};
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

    fn described(status: TrainingJobStatus, auc: Option<f32>, failure: Option<&'static str>) -> Rule {
        mock!(Client::describe_training_job).then_output(move || {
            let mut out = DescribeTrainingJobOutput::builder()
                .training_job_arn("arn:aws:sagemaker:eu-west-1:111122223333:training-job/x")
                .training_job_status(status.clone())
                .secondary_status(SecondaryStatus::Training)
                .set_failure_reason(failure.map(str::to_owned));
            if let Some(v) = auc {
                out = out.final_metric_data_list(MetricData::builder().metric_name(AUC_METRIC).value(v).build());
            }
            out.build()
        })
    }

    fn owned() -> Rule {
        mock!(Client::list_tags).then_output(|| {
            ListTagsOutput::builder().tags(Tag::builder().key("lakesight:stack").value("demo").build()).build()
        })
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
    async fn the_next_generation_follows_the_highest_and_a_job_from_these_inputs_is_found() {
        let j = job(&[]);
        let ours = format!("lakesight-demo-g2-{}", j.lineage.digest);
        let (list, describe, tags) = (
            listed(&["lakesight-demo-g1-00000000", &ours]),
            described(TrainingJobStatus::Completed, Some(0.91), None),
            owned(),
        );
        let n = Managed::new(job(&[&list, &describe, &tags]));
        let observed = n.observe().await.expect("observe");
        assert_eq!((observed.ownership, observed.changes), (Some(Ownership::Owned), vec![]));
        assert_eq!(observed.health.as_deref(), Some("Completed, AUC 0.9100"));
    }

    #[tokio::test]
    async fn readiness_reports_progress_gate_and_failure() {
        let j = job(&[]);
        let ours = format!("lakesight-demo-g1-{}", j.lineage.digest);
        let readiness = |status, auc, failure| {
            let (list, describe, tags) = (listed(&[&ours]), described(status, auc, failure), owned());
            async move { job(&[&list, &describe, &tags]).readiness().await }
        };
        assert!(
            matches!(readiness(TrainingJobStatus::InProgress, None, None).await, Ok(Readiness::Pending { status, .. }) if status == "InProgress / Training")
        );
        assert_eq!(readiness(TrainingJobStatus::Completed, Some(0.85), None).await.ok(), Some(Readiness::Ready));
        let below = readiness(TrainingJobStatus::Completed, Some(0.5), None).await.expect_err("gated");
        assert!(below.to_string().contains("0.5000, below the minimum 0.8"), "{below}");
        let missing = readiness(TrainingJobStatus::Completed, None, None).await.expect_err("gated");
        assert!(missing.to_string().contains("reported no validation:discriminator_auc"), "{missing}");
        let failed =
            readiness(TrainingJobStatus::Failed, None, Some("ClientError: bad channel")).await.expect_err("failed");
        assert!(failed.to_string().contains("ClientError: bad channel"), "{failed}");
    }

    #[tokio::test]
    async fn destroy_stops_a_running_job_and_throttled_reads_are_retried() {
        let stop = mock!(Client::stop_training_job).then_output(|| StopTrainingJobOutput::builder().build());
        let running = Observed {
            name: "lakesight-demo-g1-x".into(),
            arn: String::new(),
            status: "InProgress".into(),
            secondary: None,
            failure: None,
            auc: None,
            artifact: None,
            trained_on: Some("s3://b/features/r1/train/".into()),
            tags: BTreeMap::new(),
        };
        let j = job(&[&stop]);
        assert_eq!(j.kept(&running), None, "a running job is stopped on destroy");
        j.delete(&running).await.expect("stop");
        let completed = Observed { status: "Completed".into(), ..running };
        assert!(j.kept(&completed).is_some_and(|k| k.contains("cannot be deleted")), "reported as kept, not planned");
        assert!(j.diff(&completed).is_empty(), "trained on the current feature run");
        let stale = Observed { trained_on: Some("s3://b/features/r0/train/".into()), ..completed };
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
