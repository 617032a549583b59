//! The training job of the current model generation. SageMaker job names are unique forever, so
//! each job is named `lakesight-<stack>-g<generation>-<inputs digest>`: the digest covers the
//! hyperparameters, the feature inputs, the image and the resources, so a job is trained again
//! only when one of them changes, and the plan says which. A completed job must pass the quality
//! gate (`training.minAuc` on `validation:discriminator_auc`) before anything may deploy it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, CompressionType, DataSource, OutputDataConfig, ResourceConfig, S3DataDistribution,
    S3DataSource, S3DataType, StoppingCondition, Tag, TrainingInputMode, TrainingInstanceType, TrainingJobStatus,
};

use super::{Lineage, RememberedJob, read_tags};
use crate::aws::error::service_error;
use crate::engine::{Change, Node, Ownership, Readiness};
use crate::manifest::{Features, Training};
use crate::pipeline::features::{RunRecord, inputs_hash, record_key, tables};
use crate::pipeline::ipinsights::{AUC_METRIC, hyperparameters, image_uri};
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags};
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "sagemaker.training_job/current";

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub secondary: Option<String>,
    pub failure: Option<String>,
    pub auc: Option<f64>,
    pub tags: BTreeMap<String, String>,
}

pub struct TrainingJob {
    identity: Identity,
    client: Client,
    s3: aws_sdk_s3::Client,
    lineage: Lineage,
    image: Result<String, crate::pipeline::ipinsights::ImageError>,
    role_arn: String,
    bucket: String,
    features_key: String,
    training: Training,
    min_auc: Option<f64>,
    tags: BTreeMap<String, String>,
    /// The newest job of the stack, as the last `read` found it.
    latest: RememberedJob,
}

/// Registry entry: stacks with both `features` and `training` train.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    let spec = &stack.manifest.spec;
    match (&spec.features, &spec.training) {
        (Some(features), Some(training)) => {
            let job = TrainingJob::new(stack, features, training, aws.sagemaker.clone(), aws.s3.clone());
            vec![Arc::new(Managed::new(job))]
        }
        _ => Vec::new(),
    }
}

impl TrainingJob {
    pub fn new(
        stack: &Stack,
        features: &Features,
        training: &Training,
        client: Client,
        s3: aws_sdk_s3::Client,
    ) -> Self {
        let image = match &training.image {
            Some(image) => Ok(image.clone()),
            None => image_uri(&stack.env.region),
        };
        let lineage = Lineage::of(stack, features, training);
        let features_digest = inputs_hash(&tables(stack, features), features);
        let mut identity = Identity::new(stack, ADDRESS, format!("{}?-{}", lineage.prefix, lineage.digest));
        identity.wait_timeout = training.max_runtime + stack.manifest.spec.timeouts.default;
        identity.depends_on.push(crate::aws::athena::feature_run::ADDRESS.to_owned());
        if stack.given_role_arn(RoleKind::SageMakerExecution).is_none() {
            identity.depends_on.push(crate::aws::iam::role::address(RoleKind::SageMakerExecution));
        }
        TrainingJob {
            identity,
            client,
            s3,
            lineage,
            image,
            role_arn: stack.role_arn(RoleKind::SageMakerExecution),
            bucket: stack.artifact_bucket(),
            features_key: record_key(&features_digest),
            training: training.clone(),
            min_auc: training.min_auc.or(stack.manifest.spec.retrain.as_ref().and_then(|r| r.min_auc)),
            tags: stack.tags(),
            latest: RememberedJob::default(),
        }
    }

    /// The image, or why there is none (a region missing from the bundled table, without an override).
    fn image(&self) -> Result<&str, ResourceError> {
        self.image.as_deref().map_err(|e| ResourceError::Invalid(e.to_string()))
    }

    async fn features(&self) -> Result<RunRecord, ResourceError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.features_key)
            .send()
            .await
            .map_err(|e| service_error("GetObject", e))?;
        let bytes = out.body.collect().await.map_err(|e| ResourceError::Invalid(e.to_string()))?;
        serde_json::from_slice(&bytes.into_bytes())
            .map_err(|e| ResourceError::Invalid(format!("the feature run record is not valid: {e}")))
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
        self.latest.remember(jobs.values().next_back().cloned());
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
        match observed.status.as_str() {
            "Failed" | "Stopped" => vec![Change::replacing("status", &observed.status, "Completed")],
            _ => Vec::new(),
        }
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn absence_note(&self) -> Option<String> {
        Some(match self.latest.get() {
            Some(job) => format!(
                "inputs changed since {job} (hyperparameters, features, image or resources); trains a new generation"
            ),
            None => "first training".to_owned(),
        })
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        let auc = observed.auc.map(|a| format!(", AUC {a:.4}")).unwrap_or_default();
        Some(format!("{}{auc}", observed.status))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let next = self.lineage.jobs(&self.client).await?.keys().next_back().map_or(1, |g| g + 1);
        let name = format!("{}{next}-{}", self.lineage.prefix, self.lineage.digest);
        let features = self.features().await?;
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
            .input_data_config(Self::channel("train", &features.train_prefix))
            .input_data_config(Self::channel("validation", &features.validation_prefix))
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
            .set_hyper_parameters(Some(
                hyperparameters(&t.hyperparameters, features.distinct_entities).into_iter().collect(),
            ));
        for (k, v) in &self.tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateTrainingJob", e))?;
        Ok(())
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
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_sagemaker::operation::create_training_job::CreateTrainingJobOutput;
    use aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::operation::list_training_jobs::{ListTrainingJobsError, ListTrainingJobsOutput};
    use aws_sdk_sagemaker::operation::stop_training_job::StopTrainingJobOutput;
    use aws_sdk_sagemaker::types::{MetricData, SecondaryStatus, TrainingJobSummary};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::aws::mocked_client;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training:\n    minAuc: 0.8\n    hyperparameters:\n      epochs: 3\n";

    fn job(sagemaker: &[&Rule], s3: &[&Rule]) -> TrainingJob {
        let s = stack(SPEC);
        let (features, training) =
            (s.manifest.spec.features.clone().expect("f"), s.manifest.spec.training.clone().expect("t"));
        let (client, s3) = (mocked_client!(aws_sdk_sagemaker, sagemaker), mocked_client!(aws_sdk_s3, s3));
        TrainingJob::new(&s, &features, &training, client, s3)
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

    fn record() -> Rule {
        mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            let record = r#"{"runId":"r1","inputs":"x","trainPrefix":"s3://b/features/r1/train/","validationPrefix":"s3://b/features/r1/validation/","distinctEntities":21}"#;
            GetObjectOutput::builder().body(ByteStream::from_static(record.as_bytes())).build()
        })
    }

    #[tokio::test]
    async fn the_first_job_is_generation_one_with_both_channels_and_sized_entities() {
        let (list, features) = (listed(&[]), record());
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
        let n = Managed::new(job(&[&list, &create], &[&features]));
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_next_generation_follows_the_highest_and_a_job_from_these_inputs_is_found() {
        let j = job(&[], &[]);
        let ours = format!("lakesight-demo-g2-{}", j.lineage.digest);
        let (list, describe, tags) = (
            listed(&["lakesight-demo-g1-00000000", &ours]),
            described(TrainingJobStatus::Completed, Some(0.91), None),
            owned(),
        );
        let n = Managed::new(job(&[&list, &describe, &tags], &[]));
        let observed = n.observe().await.expect("observe");
        assert_eq!((observed.ownership, observed.changes), (Some(Ownership::Owned), vec![]));
        assert_eq!(observed.health.as_deref(), Some("Completed, AUC 0.9100"));
    }

    #[tokio::test]
    async fn readiness_reports_progress_gate_and_failure() {
        let j = job(&[], &[]);
        let ours = format!("lakesight-demo-g1-{}", j.lineage.digest);
        let readiness = |status, auc, failure| {
            let (list, describe, tags) = (listed(&[&ours]), described(status, auc, failure), owned());
            async move { job(&[&list, &describe, &tags], &[]).readiness().await }
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
            tags: BTreeMap::new(),
        };
        job(&[&stop], &[]).delete(&running).await.expect("stop");
        job(&[&stop], &[]).delete(&Observed { status: "Completed".into(), ..running }).await.expect("nothing to stop");
        assert_eq!(stop.num_calls(), 1);

        let throttled = mock!(Client::list_training_jobs)
            .sequence()
            .error(|| ListTrainingJobsError::generic(ErrorMetadata::builder().code("ThrottlingException").build()))
            .output(|| ListTrainingJobsOutput::builder().build())
            .build();
        assert!(job(&[&throttled], &[]).read().await.expect("retried").is_none());
        assert_eq!(throttled.num_calls(), 2);
    }
}
