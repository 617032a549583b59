//! The SageMaker model of the current generation: the trained artifact, served with the IP
//! Insights image. Models are immutable, so each generation has its own, named like its job.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ContainerDefinition, Tag};

use super::{Generational, Lineage, RememberedJob};
use crate::aws::error::service_error;
use crate::engine::{Change, Node, Ownership};
use crate::pipeline::ipinsights::image_uri;
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags};
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "sagemaker.model/current";

pub struct Model {
    identity: Identity,
    client: Client,
    lineage: Lineage,
    image: String,
    role_arn: String,
    tags: BTreeMap<String, String>,
    job: RememberedJob,
}

/// Registry entry: stacks that train and serve.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    match (Lineage::of_stack(stack), &stack.manifest.spec.endpoint) {
        (Some(lineage), Some(_)) => vec![Arc::new(Managed::new(Model::new(stack, lineage, aws.sagemaker.clone())))],
        _ => Vec::new(),
    }
}

impl Model {
    pub fn new(stack: &Stack, lineage: Lineage, client: Client) -> Self {
        let training = stack.manifest.spec.training.as_ref();
        let mut identity = Identity::new(stack, ADDRESS, format!("{}?-{}", lineage.prefix, lineage.digest));
        identity.depends_on.push(super::training_job::ADDRESS.to_owned());
        Model {
            identity,
            client,
            image: training
                .and_then(|t| t.image.clone())
                .or_else(|| image_uri(&stack.env.region).ok())
                .unwrap_or_default(),
            role_arn: stack.role_arn(RoleKind::SageMakerExecution),
            tags: stack.tags(),
            lineage,
            job: RememberedJob::default(),
        }
    }

    /// Every model of the stack, by name, with its ARN.
    pub async fn all(client: &Client, lineage: &Lineage) -> Result<Vec<(String, String)>, ResourceError> {
        let mut models = Vec::new();
        let mut pages = client.list_models().name_contains(&lineage.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            for m in page.map_err(|e| service_error("ListModels", e))?.models() {
                if let (Some(name), Some(arn)) = (m.model_name(), m.model_arn()) {
                    models.push((name.to_owned(), arn.to_owned()));
                }
            }
        }
        Ok(models)
    }
}

#[async_trait]
impl Resource for Model {
    type Observed = Generational;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Generational>, ResourceError> {
        let Some(job) = self.job.remember(self.lineage.current(&self.client).await?) else { return Ok(None) };
        Generational::find(&self.client, Self::all(&self.client, &self.lineage).await?, &job).await
    }

    fn absence_note(&self) -> Option<String> {
        Some(match self.job.get() {
            Some(job) => format!("serves the artifact of {job}"),
            None => "serves the generation training is about to produce".to_owned(),
        })
    }

    fn owner(&self, observed: &Generational) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, _observed: &Generational) -> Vec<Change> {
        Vec::new()
    }

    fn id(&self, observed: &Generational) -> String {
        observed.arn.clone()
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let job = self
            .lineage
            .current(&self.client)
            .await?
            .ok_or_else(|| ResourceError::Invalid("no trained job to build the model from".into()))?;
        let out = self
            .client
            .describe_training_job()
            .training_job_name(&job)
            .send()
            .await
            .map_err(|e| service_error("DescribeTrainingJob", e))?;
        let artifact = out
            .model_artifacts()
            .and_then(|a| a.s3_model_artifacts())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ResourceError::Invalid(format!("{job} has no model artifact")))?;
        let container = ContainerDefinition::builder().image(&self.image).model_data_url(artifact).build();
        let mut request =
            self.client.create_model().model_name(&job).primary_container(container).execution_role_arn(&self.role_arn);
        for (k, v) in &self.tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateModel", e))?;
        Ok(())
    }

    async fn update(&self, _observed: &Generational, _changes: &[Change]) -> Result<(), ResourceError> {
        Ok(())
    }

    /// Destroy removes every generation's model.
    async fn delete(&self, _observed: &Generational) -> Result<(), ResourceError> {
        for (name, _) in Self::all(&self.client, &self.lineage).await? {
            delete_model(&self.client, &name).await?;
        }
        Ok(())
    }
}

pub async fn delete_model(client: &Client, name: &str) -> Result<(), ResourceError> {
    client.delete_model().model_name(name).send().await.map_err(|e| service_error("DeleteModel", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::create_model::CreateModelOutput;
    use aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput;
    use aws_sdk_sagemaker::operation::list_models::ListModelsOutput;
    use aws_sdk_sagemaker::operation::list_training_jobs::ListTrainingJobsOutput;
    use aws_sdk_sagemaker::types::{ModelArtifacts, TrainingJobSummary};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Intent, plan_action};
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training: {}\n  endpoint: {}\n";

    fn model(rules: &[&Rule]) -> Managed<Model> {
        let s = stack(SPEC);
        Managed::new(Model::new(&s, Lineage::of_stack(&s).expect("trains"), mocked_client!(aws_sdk_sagemaker, rules)))
    }

    fn job_name() -> String {
        let lineage = Lineage::of_stack(&stack(SPEC)).expect("trains");
        format!("{}1-{}", lineage.prefix, lineage.digest)
    }

    fn jobs(present: bool) -> Rule {
        mock!(Client::list_training_jobs).then_output(move || {
            let mut out = ListTrainingJobsOutput::builder();
            if present {
                out = out.training_job_summaries(TrainingJobSummary::builder().training_job_name(job_name()).build());
            }
            out.build()
        })
    }

    #[tokio::test]
    async fn before_training_the_plan_says_what_the_model_will_serve() {
        let j = jobs(false);
        let observed = model(&[&j]).observe().await.expect("observe");
        assert_eq!(
            plan_action(Intent::Present, &observed, false, false),
            Ok((Action::Create, "serves the generation training is about to produce".into()))
        );
    }

    #[tokio::test]
    async fn the_model_serves_the_jobs_artifact_with_the_image_and_role() {
        let (j, none) = (jobs(true), mock!(Client::list_models).then_output(|| ListModelsOutput::builder().build()));
        let describe = mock!(Client::describe_training_job).then_output(|| {
            DescribeTrainingJobOutput::builder()
                .model_artifacts(
                    ModelArtifacts::builder().s3_model_artifacts("s3://b/models/job/output/model.tar.gz").build(),
                )
                .build()
        });
        let create = mock!(Client::create_model)
            .match_requests(|r| {
                let container = r.primary_container();
                r.model_name() == Some(job_name().as_str())
                    && container.and_then(|c| c.model_data_url()) == Some("s3://b/models/job/output/model.tar.gz")
                    && container.and_then(|c| c.image()).is_some_and(|i| i.ends_with("/ipinsights:1"))
                    && r.execution_role_arn() == Some("arn:aws:iam::111122223333:role/lakesight-demo-sagemaker")
            })
            .then_output(|| CreateModelOutput::builder().build());
        let n = model(&[&j, &none, &describe, &create]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.note.as_deref(), Some(format!("serves the artifact of {}", job_name()).as_str()));
        n.apply(Action::Create).await.expect("create");
        assert_eq!(create.num_calls(), 1);
    }
}
