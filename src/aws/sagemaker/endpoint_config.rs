//! The endpoint configuration of the current generation: its model on the manifest's instances.
//! Configurations are immutable, so each generation (and each instance setting) has its own,
//! `<job name>-c<digest of the instance settings>`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ProductionVariant, ProductionVariantInstanceType, Tag};

use super::generations::{self, Kind};
use super::{Generational, Lineage};
use crate::aws::error::service_error;
use crate::engine::{AFTER_APPLY, Change, Input, Key, Known, Outputs, Ownership};
use crate::manifest::Endpoint;
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags};
use crate::stack::Stack;

pub const ADDRESS: &str = "sagemaker.endpoint_config/current";

/// The configuration's name, which the endpoint serves.
pub const CONFIG_NAME: Key<String> = Key::new("endpointConfigName");

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
    model: Input<String>,
}

impl EndpointConfig {
    /// `model` is the generation's model, named like its training job.
    pub fn new(stack: &Stack, lineage: Lineage, endpoint: Endpoint, client: Client, model: Input<String>) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, format!("{}?-{}-c?", lineage.prefix, lineage.digest));
        identity.depends_on = vec![model.source().to_owned()];
        EndpointConfig { identity, client, lineage, endpoint, tags: stack.tags(), model }
    }

    /// Every configuration of the stack's lineage, by name, with its ARN.
    pub async fn all(client: &Client, lineage: &Lineage) -> Result<Vec<(String, String)>, ResourceError> {
        Self::listed(client, &lineage.prefix, |name| lineage.generation_of(name).is_some()).await
    }

    async fn listed(
        client: &Client,
        contains: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>, ResourceError> {
        let mut configs = Vec::new();
        let mut pages = client.list_endpoint_configs().name_contains(contains).into_paginator().send();
        while let Some(page) = pages.next().await {
            for c in page.map_err(|e| service_error("ListEndpointConfigs", e))?.endpoint_configs() {
                if let (Some(name), Some(arn)) = (c.endpoint_config_name(), c.endpoint_config_arn())
                    && keep(name)
                {
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
        let Known::Now(model) = self.model.get() else { return Ok(None) };
        let wanted = self.lineage.config_name(&model, &self.endpoint);
        let listed = Self::listed(&self.client, &wanted, |name| name == wanted).await?;
        Generational::find(&self.client, listed, &wanted).await
    }

    fn absence_note(&self) -> Option<String> {
        let model = match self.model.get() {
            Known::Now(model) => model,
            Known::AfterApply => format!("the next generation's model {AFTER_APPLY}"),
        };
        Some(format!("{model} on {} x {}", self.endpoint.instance_count, self.endpoint.instance_type))
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
        Outputs::new().with(CONFIG_NAME, &observed.name)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let job = self.model.get().now().ok_or_else(|| ResourceError::Invalid("no model to configure".into()))?;
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

    /// Destroy removes every generation's configuration the stack owns; the endpoint is gone by then.
    async fn delete(&self, _observed: &Generational) -> Result<(), ResourceError> {
        let configs =
            generations::owned(&self.client, &self.lineage, &self.identity.stack, Kind::EndpointConfig).await?;
        generations::remove(&self.client, &self.lineage, &configs).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::create_endpoint_config::CreateEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::list_endpoint_configs::ListEndpointConfigsOutput;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mocked_client;
    use crate::resource::Managed;
    use crate::resource::test_support::{created_as_planned, input};
    use crate::stack::tests::stack;

    #[tokio::test]
    async fn each_generation_gets_its_own_config_on_the_manifests_instances() {
        let s = stack(
            "  features: {}\n  training: {}\n  endpoint:\n    instanceType: ml.c5.xlarge\n    instanceCount: 2\n",
        );
        let lineage = Lineage::of_stack(&s).expect("trains");
        let job = format!("{}3-{}", lineage.prefix, lineage.digest);
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
            mocked_client!(aws_sdk_sagemaker, &[&none, &create]),
            input(Key::new("model"), Some(job.clone())),
        ));
        let observed = created_as_planned(&n).await;
        assert_eq!(observed.note, Some(format!("{job} on 2 x ml.c5.xlarge")));
        assert_eq!(create.num_calls(), 1);
    }
}
