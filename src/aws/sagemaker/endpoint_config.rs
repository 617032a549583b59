//! The endpoint configuration of the current generation: its model on the manifest's instances.
//! Configurations are immutable, so each generation (and each instance setting) has its own,
//! `<job name>-c<digest of the instance settings>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ProductionVariant, ProductionVariantInstanceType, Tag};

use super::{Generational, Lineage, RememberedJob};
use crate::aws::error::service_error;
use crate::engine::{Change, Node, Ownership};
use crate::manifest::Endpoint;
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags};
use crate::stack::Stack;

pub const ADDRESS: &str = "sagemaker.endpoint_config/current";

/// The one variant each configuration has is named after its generation (`g3`), so that every
/// InvokeEndpoint answer says which generation scored it, even while traffic shifts.
pub fn variant_name(generation: u32) -> String {
    format!("g{generation}")
}

pub struct EndpointConfig {
    identity: Identity,
    client: Client,
    lineage: Lineage,
    endpoint: Endpoint,
    tags: BTreeMap<String, String>,
    job: RememberedJob,
}

/// Registry entry.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    match (Lineage::of_stack(stack), &stack.manifest.spec.endpoint) {
        (Some(lineage), Some(endpoint)) => {
            vec![Arc::new(Managed::new(EndpointConfig::new(stack, lineage, endpoint.clone(), aws.sagemaker.clone())))]
        }
        _ => Vec::new(),
    }
}

impl EndpointConfig {
    pub fn new(stack: &Stack, lineage: Lineage, endpoint: Endpoint, client: Client) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, format!("{}?-{}-c?", lineage.prefix, lineage.digest));
        identity.depends_on.push(super::model::ADDRESS.to_owned());
        EndpointConfig { identity, client, lineage, endpoint, tags: stack.tags(), job: RememberedJob::default() }
    }

    /// Every configuration of the stack, by name, with its ARN.
    pub async fn all(client: &Client, lineage: &Lineage) -> Result<Vec<(String, String)>, ResourceError> {
        let mut configs = Vec::new();
        let mut pages = client.list_endpoint_configs().name_contains(&lineage.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            for c in page.map_err(|e| service_error("ListEndpointConfigs", e))?.endpoint_configs() {
                if let (Some(name), Some(arn)) = (c.endpoint_config_name(), c.endpoint_config_arn()) {
                    configs.push((name.to_owned(), arn.to_owned()));
                }
            }
        }
        Ok(configs)
    }
}

pub async fn delete_config(client: &Client, name: &str) -> Result<(), ResourceError> {
    client
        .delete_endpoint_config()
        .endpoint_config_name(name)
        .send()
        .await
        .map_err(|e| service_error("DeleteEndpointConfig", e))?;
    Ok(())
}

#[async_trait]
impl Resource for EndpointConfig {
    type Observed = Generational;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Generational>, ResourceError> {
        let Some(job) = self.job.remember(self.lineage.current(&self.client).await?) else { return Ok(None) };
        let wanted = self.lineage.config_name(&job, &self.endpoint);
        Generational::find(&self.client, Self::all(&self.client, &self.lineage).await?, &wanted).await
    }

    fn absence_note(&self) -> Option<String> {
        Some(match self.job.get() {
            Some(job) => format!("{} on {} x {}", job, self.endpoint.instance_count, self.endpoint.instance_type),
            None => "for the generation training is about to produce".to_owned(),
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
            .ok_or_else(|| ResourceError::Invalid("no trained job to configure".into()))?;
        let generation = self
            .lineage
            .generation_of(&job)
            .ok_or_else(|| ResourceError::Invalid(format!("{job} is not a generation of this stack")))?;
        let variant = ProductionVariant::builder()
            .variant_name(variant_name(generation))
            .model_name(&job)
            .initial_instance_count(i32::try_from(self.endpoint.instance_count).unwrap_or(i32::MAX))
            .instance_type(ProductionVariantInstanceType::from(self.endpoint.instance_type.as_str()))
            .build();
        let mut request = self
            .client
            .create_endpoint_config()
            .endpoint_config_name(self.lineage.config_name(&job, &self.endpoint))
            .production_variants(variant);
        for (k, v) in &self.tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateEndpointConfig", e))?;
        Ok(())
    }

    async fn update(&self, _observed: &Generational, _changes: &[Change]) -> Result<(), ResourceError> {
        Ok(())
    }

    /// Destroy removes every generation's configuration (the endpoint goes first).
    async fn delete(&self, _observed: &Generational) -> Result<(), ResourceError> {
        for (name, _) in Self::all(&self.client, &self.lineage).await? {
            delete_config(&self.client, &name).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::create_endpoint_config::CreateEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::list_endpoint_configs::ListEndpointConfigsOutput;
    use aws_sdk_sagemaker::operation::list_training_jobs::ListTrainingJobsOutput;
    use aws_sdk_sagemaker::types::TrainingJobSummary;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    #[tokio::test]
    async fn each_generation_gets_its_own_config_on_the_manifests_instances() {
        let s = stack(
            "  features: {}\n  training: {}\n  endpoint:\n    instanceType: ml.c5.xlarge\n    instanceCount: 2\n",
        );
        let lineage = Lineage::of_stack(&s).expect("trains");
        let job = format!("{}3-{}", lineage.prefix, lineage.digest);
        let listed_job = job.clone();
        let jobs: Rule = mock!(Client::list_training_jobs).then_output(move || {
            ListTrainingJobsOutput::builder()
                .training_job_summaries(TrainingJobSummary::builder().training_job_name(listed_job.clone()).build())
                .build()
        });
        let none = mock!(Client::list_endpoint_configs).then_output(|| ListEndpointConfigsOutput::builder().build());
        let model = job.clone();
        let create = mock!(Client::create_endpoint_config)
            .match_requests(move |r| {
                let variant = r.production_variants().first();
                r.endpoint_config_name().is_some_and(|n| n.starts_with(&format!("{model}-c")))
                    && variant.and_then(|v| v.model_name()) == Some(model.as_str())
                    && variant.and_then(|v| v.initial_instance_count()) == Some(2)
                    && variant.and_then(|v| v.instance_type()).map(|t| t.as_str()) == Some("ml.c5.xlarge")
            })
            .then_output(|| CreateEndpointConfigOutput::builder().endpoint_config_arn("arn").build());
        let spec = s.manifest.spec.endpoint.clone().expect("endpoint");
        let n = Managed::new(EndpointConfig::new(
            &s,
            lineage,
            spec,
            mocked_client!(aws_sdk_sagemaker, &[&jobs, &none, &create]),
        ));
        let observed = created_as_planned(&n).await;
        assert_eq!(observed.note, Some(format!("{job} on 2 x ml.c5.xlarge")));
        assert_eq!(create.num_calls(), 1);
    }
}
