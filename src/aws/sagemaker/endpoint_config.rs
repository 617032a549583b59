//! The endpoint configuration of the current generation: its model on the manifest's instances.
//! Configurations are immutable, so each generation (and each instance setting) has its own,
//! `<job name>-c<digest of the instance settings>`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{ProductionVariant, ProductionVariantInstanceType, Tag};

use super::Lineage;
use super::generation::{Generation, ItemKind};
use super::generations::Kind;
use crate::aws::error::service_error;
use crate::engine::{AFTER_APPLY, Input, Key, Known};
use crate::manifest::Endpoint;
use crate::resource::ResourceError;
use crate::stack::Stack;

pub const ADDRESS: &str = "sagemaker.endpoint_config/current";

/// The configuration's name, which the endpoint serves.
pub const CONFIG_NAME: Key<String> = Key::new("endpointConfigName");

/// The one variant each configuration has is named after its generation (`g3`), so that every
/// InvokeEndpoint answer says which generation scored it, even while traffic shifts.
pub fn variant_name(generation: u32) -> String {
    format!("g{generation}")
}

/// The current generation's configuration; `model` is its model, named like its training job.
pub fn current(
    stack: &Stack,
    lineage: Lineage,
    endpoint: Endpoint,
    client: Client,
    model: Input<String>,
) -> Generation<ConfigItem> {
    Generation::current(stack, lineage, client, model, ConfigItem { endpoint })
}

pub struct ConfigItem {
    endpoint: Endpoint,
}

#[async_trait]
impl ItemKind for ConfigItem {
    const KIND: Kind = Kind::EndpointConfig;
    const ADDRESS: &'static str = ADDRESS;
    const NAME: Key<String> = CONFIG_NAME;

    fn name_pattern(&self, lineage: &Lineage) -> String {
        format!("{}?-{}-c?", lineage.prefix, lineage.digest)
    }

    fn wanted(&self, lineage: &Lineage, model: &str) -> Result<String, ResourceError> {
        Ok(lineage.config_name(model, &self.endpoint))
    }

    fn note(&self, model: Known<String>) -> String {
        let model = match model {
            Known::Now(model) => model,
            Known::AfterApply => format!("the next generation's model {AFTER_APPLY}"),
        };
        format!("{model} on {} x {}", self.endpoint.instance_count, self.endpoint.instance_type)
    }

    async fn create(
        &self,
        client: &Client,
        lineage: &Lineage,
        model: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ResourceError> {
        let generation = lineage
            .generation_of(model)
            .ok_or_else(|| ResourceError::Invalid(format!("{model} is not a generation of this stack")))?;
        let variant = ProductionVariant::builder()
            .variant_name(variant_name(generation))
            .model_name(model)
            .initial_instance_count(i32::try_from(self.endpoint.instance_count).unwrap_or(i32::MAX))
            .instance_type(ProductionVariantInstanceType::from(self.endpoint.instance_type.as_str()))
            .build();
        let mut request = client.create_endpoint_config().endpoint_config_name(name).production_variants(variant);
        for (k, v) in tags {
            request = request.tags(Tag::builder().key(k).value(v).build());
        }
        request.send().await.map_err(|e| service_error("CreateEndpointConfig", e))?;
        Ok(())
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
        let n = Managed::new(current(
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
