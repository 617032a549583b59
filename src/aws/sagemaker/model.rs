//! The SageMaker model of the current generation: the trained artifact, served with the IP
//! Insights image. Models are immutable, so each generation has its own, named like its job.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ContainerDefinition, Tag};

use super::Lineage;
use super::generation::{Generation, ItemKind};
use super::generations::Kind;
use crate::aws::error::service_error;
use crate::engine::{AFTER_APPLY, Input, Key, Known};
use crate::pipeline::ipinsights::image_uri;
use crate::resource::ResourceError;
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "sagemaker.model/current";

/// The model's name, which is its training job's.
pub const MODEL_NAME: Key<String> = Key::new("modelName");

/// The current generation's model; `job` and `artifact` are its training job's name and model
/// artifact.
pub fn current(
    stack: &Stack,
    lineage: &Lineage,
    client: Client,
    job: Input<String>,
    artifact: Input<String>,
) -> Generation<ModelItem> {
    let image = stack
        .manifest
        .spec
        .training
        .as_ref()
        .and_then(|t| t.image.clone())
        .or_else(|| image_uri(&stack.env.region).ok());
    let kind = ModelItem {
        image: image.unwrap_or_default(),
        role_arn: stack.role_arn(RoleKind::SageMakerExecution),
        artifact,
    };
    Generation::current(stack, lineage.clone(), client, job, kind)
}

pub struct ModelItem {
    image: String,
    role_arn: String,
    artifact: Input<String>,
}

#[async_trait]
impl ItemKind for ModelItem {
    const KIND: Kind = Kind::Model;
    const ADDRESS: &'static str = ADDRESS;
    const NAME: Key<String> = MODEL_NAME;

    fn name_pattern(&self, lineage: &Lineage) -> String {
        format!("{}?-{}", lineage.prefix, lineage.digest)
    }

    fn wanted(&self, _lineage: &Lineage, job: &str) -> Result<String, ResourceError> {
        Ok(job.to_owned())
    }

    fn note(&self, job: Known<String>) -> String {
        match job {
            Known::Now(job) => format!("serves the artifact of {job}"),
            Known::AfterApply => format!("serves the generation training produces {AFTER_APPLY}"),
        }
    }

    async fn create(
        &self,
        client: &Client,
        _lineage: &Lineage,
        job: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ResourceError> {
        let artifact =
            self.artifact.get().now().ok_or_else(|| ResourceError::Invalid(format!("{job} has no model artifact")))?;
        let container = ContainerDefinition::builder().image(&self.image).model_data_url(artifact).build();
        let mut request =
            client.create_model().model_name(name).primary_container(container).execution_role_arn(&self.role_arn);
        for (k, v) in tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateModel", e))?;
        Ok(())
    }
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

    fn model(job: Option<String>, rules: &[&Rule]) -> Managed<Generation<ModelItem>> {
        let s = stack(SPEC);
        let artifact = input(Key::new("artifact"), job.as_ref().map(|_| ARTIFACT.to_owned()));
        let job = input(Key::new("job"), job);
        let lineage = Lineage::of_stack(&s).expect("trains");
        Managed::new(current(&s, &lineage, mocked_client!(aws_sdk_sagemaker, rules), job, artifact))
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
            plan_action(Intent::Present, &observed, None),
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
