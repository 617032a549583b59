//! One generic resource for the immutable items of a model generation: the model and the
//! endpoint configuration. Each generation has its own of each, named from its training job, so
//! neither is ever updated; what differs between the two kinds is only how the current one is
//! named and created, which [`ItemKind`] says.
//!
//! A node of this family either stands for the current generation's item (read by its name,
//! which an input from upstream gives), or, when the manifest stops declaring it, sweeps up
//! every item of its kind that parses as one of the stack's generations and carries its owner
//! tag, whatever digest or instance settings named it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sagemaker::Client;

use super::Lineage;
use super::generations::{self, Item, Kind};
use crate::engine::{Change, Input, Key, Known, Outputs, Ownership};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags};
use crate::stack::Stack;

/// What distinguishes one kind of generation item from the other.
#[async_trait]
pub trait ItemKind: Send + Sync + 'static {
    const KIND: Kind;
    const ADDRESS: &'static str;
    /// The output that names the current item for its dependents.
    const NAME: Key<String>;

    /// The name the pattern shows in the plan before the generation is known.
    fn name_pattern(&self, lineage: &Lineage) -> String;
    /// The current item's name, from the upstream name it is made of.
    fn wanted(&self, lineage: &Lineage, upstream: &str) -> Result<String, ResourceError>;
    /// What the item will hold, for the plan.
    fn note(&self, upstream: Known<String>) -> String;
    /// Creates the item `name` from `upstream`, tagged with `tags`.
    async fn create(
        &self,
        client: &Client,
        lineage: &Lineage,
        upstream: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ResourceError>;
}

/// What a node of the family finds.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The current generation's item.
    Current { name: String, arn: String, tags: BTreeMap<String, String> },
    /// Every owned item of the kind, for a node the manifest no longer declares.
    Leftovers(Vec<Item>),
}

pub struct Generation<K> {
    identity: Identity,
    client: Client,
    lineage: Lineage,
    tags: BTreeMap<String, String>,
    upstream: Input<String>,
    kind: K,
    sweep: bool,
}

impl<K: ItemKind> Generation<K> {
    /// The current generation's item, made from `upstream` (the job's or the model's name).
    pub fn current(stack: &Stack, lineage: Lineage, client: Client, upstream: Input<String>, kind: K) -> Self {
        let mut identity = Identity::new(stack, K::ADDRESS, kind.name_pattern(&lineage));
        identity.depends_on = vec![upstream.source().to_owned()];
        Generation { identity, client, lineage, tags: stack.tags(), upstream, kind, sweep: false }
    }

    /// Every item of the kind the stack owns, for removal once the manifest stops declaring it.
    pub fn leftovers(self) -> Self {
        Generation { sweep: true, ..self }
    }

    async fn read_current(&self, upstream: &str) -> Result<Option<Found>, ResourceError> {
        let wanted = self.kind.wanted(&self.lineage, upstream)?;
        let listed = generations::listed(&self.client, K::KIND, &wanted).await?;
        let Some((name, arn)) = listed.into_iter().find(|(name, _)| *name == wanted) else { return Ok(None) };
        let tags = super::read_tags(&self.client, &arn).await?;
        Ok(Some(Found::Current { name, arn, tags }))
    }
}

#[async_trait]
impl<K: ItemKind> Resource for Generation<K> {
    type Observed = Found;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Found>, ResourceError> {
        if self.sweep {
            let owned = generations::owned(&self.client, &self.lineage, &self.identity.stack, K::KIND).await?;
            return Ok((!owned.is_empty()).then_some(Found::Leftovers(owned)));
        }
        match self.upstream.get() {
            Known::Now(upstream) => self.read_current(&upstream).await,
            Known::AfterApply => Ok(None),
        }
    }

    fn absence_note(&self) -> Option<String> {
        (!self.sweep).then(|| self.kind.note(self.upstream.get()))
    }

    fn owner(&self, observed: &Found) -> Ownership {
        match observed {
            Found::Current { tags, .. } => ownership_from_tags(tags, &self.identity.stack),
            // Only items that carry the owner tag are swept up.
            Found::Leftovers(_) => Ownership::Owned,
        }
    }

    fn diff(&self, _observed: &Found) -> Vec<Change> {
        Vec::new()
    }

    fn id(&self, observed: &Found) -> String {
        match observed {
            Found::Current { arn, .. } => arn.clone(),
            Found::Leftovers(items) => items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
        }
    }

    fn outputs(&self, observed: &Found) -> Outputs {
        match observed {
            Found::Current { name, .. } => Outputs::new().with(K::NAME, name),
            Found::Leftovers(_) => Outputs::new(),
        }
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let upstream = self
            .upstream
            .get()
            .now()
            .ok_or_else(|| ResourceError::Invalid(format!("{} has nothing to be made of yet", K::ADDRESS)))?;
        let name = self.kind.wanted(&self.lineage, &upstream)?;
        self.kind.create(&self.client, &self.lineage, &upstream, &name, &self.tags).await
    }

    async fn update(&self, _observed: &Found, _changes: &[Change]) -> Result<(), ResourceError> {
        Ok(())
    }

    /// Removes every generation's item of the kind that the stack owns: destroy reaches this
    /// once the endpoint is gone, and a swept node once nothing declared serves them.
    async fn delete(&self, _observed: &Found) -> Result<(), ResourceError> {
        let owned = generations::owned(&self.client, &self.lineage, &self.identity.stack, K::KIND).await?;
        generations::remove(&self.client, &owned).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sagemaker::operation::delete_endpoint_config::DeleteEndpointConfigOutput;
    use aws_sdk_sagemaker::operation::list_endpoint_configs::ListEndpointConfigsOutput;
    use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
    use aws_sdk_sagemaker::types::{EndpointConfigSummary, Tag};
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::sagemaker::endpoint_config;
    use crate::engine::{Action, Intent, Node, plan_action};
    use crate::resource::test_support::input;
    use crate::resource::{Managed, OWNER_TAG};
    use crate::stack::tests::stack;

    const SPEC: &str = "  features: {}\n  training: {}\n  endpoint: {}\n";

    #[tokio::test]
    async fn a_swept_node_removes_every_owned_item_of_its_kind_whatever_named_it() {
        let s = stack(SPEC);
        let lineage = Lineage::of_stack(&s).expect("trains");
        let listed = vec![
            // Another digest and other instance settings than today's manifest would give.
            "lakesight-demo-g1-0a0a0a0a-c1111".to_owned(),
            format!("lakesight-demo-g2-{}-c2222", lineage.digest),
            // Not ours: no owner tag, and stack `demo-g7`'s.
            "lakesight-demo-g3-0b0b0b0b-c3333".to_owned(),
            "lakesight-demo-g7-g1-0a0a0a0a-c1111".to_owned(),
        ];
        let names = listed.clone();
        let list = mock!(Client::list_endpoint_configs).then_output(move || {
            let mut out = ListEndpointConfigsOutput::builder();
            for name in &names {
                let summary = EndpointConfigSummary::builder()
                    .endpoint_config_name(name)
                    .endpoint_config_arn(format!("arn:endpoint-config/{name}"))
                    .build();
                out = out.endpoint_configs(summary);
            }
            out.build()
        });
        let tags = mock!(Client::list_tags).then_compute_output(|r| {
            let owner = if r.resource_arn().is_some_and(|a| a.contains("-g3-")) { "someone" } else { "demo" };
            ListTagsOutput::builder().tags(Tag::builder().key(OWNER_TAG).value(owner).build()).build()
        });
        let deleted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = deleted.clone();
        let delete = mock!(Client::delete_endpoint_config).then_compute_output(move |r| {
            record.lock().expect("lock").push(r.endpoint_config_name().unwrap_or_default().to_owned());
            DeleteEndpointConfigOutput::builder().build()
        });
        let client = mocked_client!(aws_sdk_sagemaker, &[&list, &tags, &delete]);
        let spec = s.manifest.spec.endpoint.clone().expect("endpoint");
        let config = endpoint_config::current(&s, lineage, spec, client, input(Key::new("model"), None));
        let n = Managed::new(config.leftovers());

        let observed = n.observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Absent, &observed, None).map(|a| a.0), Ok(Action::Delete));
        n.apply(Action::Delete).await.expect("delete");
        assert_eq!(*deleted.lock().expect("lock"), listed[..2]);
    }
}
