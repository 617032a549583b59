//! The stack's older model generations: the models and endpoint configurations beyond
//! `retrain.keepGenerations` that the endpoint no longer serves. Collecting them is a planned
//! action, shown in the plan like any other change, never a side effect of waiting.
//!
//! A generation is the stack's only if its name parses exactly as one of this stack's
//! (`lakesight-<stack>-g<N>-<digest>[-c<config>]`) and it carries the stack's owner tag. Destroy
//! leaves them to the model and configuration nodes, which remove every generation the stack
//! owns once the endpoint is gone.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;

use super::{Lineage, read_tags};
use crate::aws::error::service_error;
use crate::engine::{Change, Input, Ownership};
use crate::resource::{Identity, OWNER_TAG, Resource, ResourceError};
use crate::stack::Stack;

pub const ADDRESS: &str = "sagemaker.generations/old";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    EndpointConfig,
    Model,
}

/// One owned model or configuration of a generation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub generation: u32,
    pub kind: Kind,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Every generation item the stack owns.
    pub owned: Vec<Item>,
    /// Those that apply collects: older than the newest `keep`, and not serving.
    pub old: Vec<Item>,
}

pub struct Generations {
    identity: Identity,
    client: Client,
    lineage: Lineage,
    keep: usize,
    serving: Input<String>,
}

impl Generations {
    /// `serving` is the endpoint's serving configuration, whose generation is never collected.
    pub fn new(stack: &Stack, lineage: Lineage, client: Client, serving: Input<String>) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, format!("{}*", lineage.prefix));
        identity.depends_on = vec![serving.source().to_owned()];
        let keep = stack.manifest.spec.retrain.as_ref().map_or(2, |r| r.keep_generations);
        Generations { identity, client, lineage, keep: usize::try_from(keep).unwrap_or(usize::MAX), serving }
    }
}

/// Every model or configuration that parses as one of the stack's generations and carries its
/// owner tag.
pub async fn owned(client: &Client, lineage: &Lineage, stack: &str, kind: Kind) -> Result<Vec<Item>, ResourceError> {
    let mut owned = Vec::new();
    for (name, arn) in listed(client, kind, &lineage.prefix).await? {
        let Some(generation) = lineage.generation_of(&name) else { continue };
        if read_tags(client, &arn).await?.get(OWNER_TAG).map(String::as_str) == Some(stack) {
            owned.push(Item { generation, kind, name });
        }
    }
    Ok(owned)
}

/// Every (name, ARN) of `kind` whose name contains `contains`.
pub async fn listed(client: &Client, kind: Kind, contains: &str) -> Result<Vec<(String, String)>, ResourceError> {
    let mut found = Vec::new();
    match kind {
        Kind::Model => {
            let mut pages = client.list_models().name_contains(contains).into_paginator().send();
            while let Some(page) = pages.next().await {
                for m in page.map_err(|e| service_error("ListModels", e))?.models() {
                    if let (Some(name), Some(arn)) = (m.model_name(), m.model_arn()) {
                        found.push((name.to_owned(), arn.to_owned()));
                    }
                }
            }
        }
        Kind::EndpointConfig => {
            let mut pages = client.list_endpoint_configs().name_contains(contains).into_paginator().send();
            while let Some(page) = pages.next().await {
                for c in page.map_err(|e| service_error("ListEndpointConfigs", e))?.endpoint_configs() {
                    if let (Some(name), Some(arn)) = (c.endpoint_config_name(), c.endpoint_config_arn()) {
                        found.push((name.to_owned(), arn.to_owned()));
                    }
                }
            }
        }
    }
    Ok(found)
}

async fn delete(client: &Client, item: &Item) -> Result<(), ResourceError> {
    match item.kind {
        Kind::Model => {
            client.delete_model().model_name(&item.name).send().await.map_err(|e| service_error("DeleteModel", e))?;
        }
        Kind::EndpointConfig => {
            client
                .delete_endpoint_config()
                .endpoint_config_name(&item.name)
                .send()
                .await
                .map_err(|e| service_error("DeleteEndpointConfig", e))?;
        }
    }
    Ok(())
}

/// Deletes each item. A delete that fails is looked at again: an item no longer listed was
/// deleted (its answer was lost, or a retry found it gone).
pub async fn remove(client: &Client, items: &[Item]) -> Result<(), ResourceError> {
    for item in items {
        if let Err(error) = delete(client, item).await
            && listed(client, item.kind, &item.name).await?.iter().any(|(name, _)| *name == item.name)
        {
            return Err(error);
        }
    }
    Ok(())
}

/// The items apply collects: all but the newest `keep` generations and the serving one.
pub fn old(owned: &[Item], keep: usize, serving: Option<u32>) -> Vec<Item> {
    let generations: BTreeSet<u32> = owned.iter().map(|i| i.generation).collect();
    let kept: BTreeSet<u32> = generations.iter().rev().take(keep).copied().chain(serving).collect();
    owned.iter().filter(|i| !kept.contains(&i.generation)).cloned().collect()
}

fn names(items: &[Item]) -> String {
    items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl Resource for Generations {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let stack = &self.identity.stack;
        let mut owned = owned(&self.client, &self.lineage, stack, Kind::EndpointConfig).await?;
        owned.extend(self::owned(&self.client, &self.lineage, stack, Kind::Model).await?);
        owned.sort();
        let serving = self.serving.get().now().and_then(|c| self.lineage.generation_of(&c));
        let old = old(&owned, self.keep, serving);
        Ok(Some(Observed { owned, old }))
    }

    /// Only items that carry the owner tag are ever listed here.
    fn owner(&self, _observed: &Observed) -> Ownership {
        Ownership::Owned
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        if observed.old.is_empty() {
            return Vec::new();
        }
        vec![Change::in_place("oldGenerations", names(&observed.old), format!("deleted (keeping {})", self.keep))]
    }

    fn id(&self, observed: &Observed) -> String {
        format!("{} owned generation item(s)", observed.owned.len())
    }

    /// Destroy removes the generations with the model and configuration, after the endpoint.
    fn kept(&self, observed: &Observed) -> Option<String> {
        Some(if observed.owned.is_empty() {
            "no generations left".to_owned()
        } else {
            format!("{} generation item(s), removed with the model and configuration", observed.owned.len())
        })
    }

    async fn create(&self) -> Result<(), ResourceError> {
        Ok(())
    }

    async fn update(&self, observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        remove(&self.client, &observed.old).await
    }

    /// Never planned (see `kept`): the old generations are all that is this node's own.
    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        remove(&self.client, &observed.old).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::delete_endpoint_config::DeleteEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::delete_model::DeleteModelOutput;
    use aws_sdk_sagemaker::operation::list_endpoint_configs::ListEndpointConfigsOutput;
    use aws_sdk_sagemaker::operation::list_models::ListModelsOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::types::{ModelSummary, Tag};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Intent, Key, Node, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::input;
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training: {}\n  endpoint: {}\n  retrain:\n    keepGenerations: 1\n";

    fn names(lineage: &Lineage, generations: &[u32]) -> Vec<String> {
        generations.iter().map(|g| format!("{}{g}-{}", lineage.prefix, lineage.digest)).collect()
    }

    /// Models g1..g3 of stack `demo`, one of stack `demo-g7` that starts with the same prefix,
    /// and g2 without our owner tag.
    fn cloud(lineage: &Lineage) -> Vec<Rule> {
        let mut listed = names(lineage, &[1, 2, 3]);
        listed.push(format!("lakesight-demo-g7-g1-{}", lineage.digest));
        let models = mock!(Client::list_models).then_output(move || {
            let mut out = ListModelsOutput::builder();
            for name in &listed {
                out =
                    out.models(ModelSummary::builder().model_name(name).model_arn(format!("arn:model/{name}")).build());
            }
            out.build()
        });
        let configs = mock!(Client::list_endpoint_configs).then_output(|| ListEndpointConfigsOutput::builder().build());
        let unowned = names(lineage, &[2]).remove(0);
        let tags = mock!(Client::list_tags).then_compute_output(move |r| {
            let owner = if r.resource_arn().is_some_and(|a| a.ends_with(&unowned)) { "someone" } else { "demo" };
            ListTagsOutput::builder().tags(Tag::builder().key(OWNER_TAG).value(owner).build()).build()
        });
        vec![models, configs, tags]
    }

    #[tokio::test]
    async fn only_owned_generations_of_this_stack_beyond_the_kept_ones_are_collected() {
        let s = stack(SPEC);
        let lineage = Lineage::of_stack(&s).expect("trains");
        let rules = cloud(&lineage);
        let deleted = mock!(Client::delete_model).then_output(|| DeleteModelOutput::builder().build());
        let configs =
            mock!(Client::delete_endpoint_config).then_output(|| DeleteEndpointConfigOutput::builder().build());
        let all: Vec<&Rule> = rules.iter().chain([&deleted, &configs]).collect();
        let serving = input(Key::new("serving"), Some(format!("{}-c0a0b", names(&lineage, &[3])[0])));
        let n = Managed::new(Generations::new(&s, lineage.clone(), mocked_client!(aws_sdk_sagemaker, &all), serving));
        let observed = n.observe().await.expect("observe");
        let planned = plan_action(Intent::Present, &observed, None).expect("plan");
        assert_eq!(planned.0, Action::Update, "collecting is a planned change");
        assert_eq!(
            observed.changes[0].from,
            names(&lineage, &[1])[0],
            "g2 is not ours, g3 is kept, demo-g7's is not ours"
        );
        n.apply(Action::Update).await.expect("collect");
        assert_eq!(deleted.num_calls(), 1);
    }

    #[test]
    fn the_serving_generation_is_kept_even_when_older_than_the_newest() {
        let item = |g| Item { generation: g, kind: Kind::Model, name: format!("g{g}") };
        let owned = vec![item(1), item(2), item(3), item(4)];
        let collected: Vec<u32> = old(&owned, 2, Some(1)).iter().map(|i| i.generation).collect();
        assert_eq!(collected, vec![2]);
        assert!(old(&owned, 4, None).is_empty());
    }
}
