//! The SageMaker model of the current generation: the trained artifact, served with the IP
//! Insights image. Models are immutable, so each generation has its own, named like its job.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ContainerDefinition, Tag};

use super::generations::{self, Kind};
use super::{Generational, Lineage};
use crate::aws::error::service_error;
use crate::engine::{AFTER_APPLY, Change, Input, Key, Known, Outputs, Ownership};
use crate::pipeline::ipinsights::image_uri;
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags};
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "sagemaker.model/current";

/// The model's name, which is its training job's.
pub const MODEL_NAME: Key<String> = Key::new("modelName");

pub struct Model {
    identity: Identity,
    client: Client,
    lineage: Lineage,
    image: String,
    role_arn: String,
    tags: BTreeMap<String, String>,
    job: Input<String>,
    artifact: Input<String>,
}

impl Model {
    /// `job` and `artifact` are the training job's name and model artifact.
    pub fn new(stack: &Stack, lineage: &Lineage, client: Client, job: Input<String>, artifact: Input<String>) -> Self {
        let training = stack.manifest.spec.training.as_ref();
        let mut identity = Identity::new(stack, ADDRESS, format!("{}?-{}", lineage.prefix, lineage.digest));
        identity.depends_on = vec![job.source().to_owned()];
        Model {
            identity,
            client,
            image: training
                .and_then(|t| t.image.clone())
                .or_else(|| image_uri(&stack.env.region).ok())
                .unwrap_or_default(),
            role_arn: stack.role_arn(RoleKind::SageMakerExecution),
            tags: stack.tags(),
            lineage: lineage.clone(),
            job,
            artifact,
        }
    }

    /// Every model of the stack's lineage, by name, with its ARN.
    pub async fn all(client: &Client, lineage: &Lineage) -> Result<Vec<(String, String)>, ResourceError> {
        Self::listed(client, &lineage.prefix, |name| lineage.generation_of(name).is_some()).await
    }

    async fn listed(
        client: &Client,
        contains: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>, ResourceError> {
        let mut models = Vec::new();
        let mut pages = client.list_models().name_contains(contains).into_paginator().send();
        while let Some(page) = pages.next().await {
            for m in page.map_err(|e| service_error("ListModels", e))?.models() {
                if let (Some(name), Some(arn)) = (m.model_name(), m.model_arn())
                    && keep(name)
                {
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
        let Known::Now(job) = self.job.get() else { return Ok(None) };
        let listed = Self::listed(&self.client, &job, |name| name == job).await?;
        Generational::find(&self.client, listed, &job).await
    }

    fn absence_note(&self) -> Option<String> {
        Some(match self.job.get() {
            Known::Now(job) => format!("serves the artifact of {job}"),
            Known::AfterApply => format!("serves the generation training produces {AFTER_APPLY}"),
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

    fn outputs(&self, observed: &Generational) -> Outputs {
        Outputs::new().with(MODEL_NAME, &observed.name)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let job = self.job.get().now().ok_or_else(|| ResourceError::Invalid("no trained job to serve".into()))?;
        let artifact =
            self.artifact.get().now().ok_or_else(|| ResourceError::Invalid(format!("{job} has no model artifact")))?;
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

    /// Destroy removes every generation's model the stack owns; the endpoint is gone by then.
    async fn delete(&self, _observed: &Generational) -> Result<(), ResourceError> {
        let models = generations::owned(&self.client, &self.lineage, &self.identity.stack, Kind::Model).await?;
        generations::remove(&self.client, &self.lineage, &models).await
    }
}

pub async fn delete_model(client: &Client, name: &str) -> Result<(), ResourceError> {
    client.delete_model().model_name(name).send().await.map_err(|e| service_error("DeleteModel", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::create_model::CreateModelOutput;
    use aws_sdk_sagemaker::operation::list_models::ListModelsOutput;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Intent, Node, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::input;
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training: {}\n  endpoint: {}\n";
    const ARTIFACT: &str = "s3://b/models/job/output/model.tar.gz";

    fn model(job: Option<String>, rules: &[&Rule]) -> Managed<Model> {
        let s = stack(SPEC);
        let artifact = input(Key::new("artifact"), job.as_ref().map(|_| ARTIFACT.to_owned()));
        let job = input(Key::new("job"), job);
        let lineage = Lineage::of_stack(&s).expect("trains");
        Managed::new(Model::new(&s, &lineage, mocked_client!(aws_sdk_sagemaker, rules), job, artifact))
    }

    fn job_name() -> String {
        let lineage = Lineage::of_stack(&stack(SPEC)).expect("trains");
        format!("{}1-{}", lineage.prefix, lineage.digest)
    }

    #[tokio::test]
    async fn before_training_the_plan_says_what_the_model_will_serve_without_a_call() {
        let list = mock!(Client::list_models).then_output(|| ListModelsOutput::builder().build());
        let observed = model(None, &[&list]).observe().await.expect("observe");
        assert_eq!(
            plan_action(Intent::Present, &observed, false, None),
            Ok((Action::Create, format!("serves the generation training produces {AFTER_APPLY}")))
        );
        assert_eq!(list.num_calls(), 0);
    }

    #[tokio::test]
    async fn the_model_serves_the_jobs_artifact_with_the_image_and_role() {
        let none = mock!(Client::list_models).then_output(|| ListModelsOutput::builder().build());
        let create = mock!(Client::create_model)
            .match_requests(|r| {
                let container = r.primary_container();
                r.model_name() == Some(job_name().as_str())
                    && container.and_then(|c| c.model_data_url()) == Some(ARTIFACT)
                    && container.and_then(|c| c.image()).is_some_and(|i| i.ends_with("/ipinsights:1"))
                    && r.execution_role_arn() == Some("arn:aws:iam::111122223333:role/lakesight-demo-sagemaker")
            })
            .then_output(|| CreateModelOutput::builder().build());
        let n = model(Some(job_name()), &[&none, &create]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.note.as_deref(), Some(format!("serves the artifact of {}", job_name()).as_str()));
        n.apply(Action::Create).await.expect("create");
        assert_eq!((create.num_calls(), none.num_calls()), (1, 1));
    }
}
