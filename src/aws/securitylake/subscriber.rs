//! The Security Lake subscriber the scorer reads through: principal and external id, access
//! types and sources, owner-tagged. Sources and identity update in place; access types cannot
//! change, so changing them replaces the subscriber. The external id never appears in a plan.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::{
    AccessType, AwsIdentity, AwsLogSourceName, AwsLogSourceResource, LogSourceResource, SubscriberResource,
    SubscriberStatus,
};

use super::{find_subscriber, list_subscribers, read_tags, tag, tag_list};
use crate::aws::error::service_error;
use crate::aws::retry::{create_once, single_attempt};
use crate::engine::{Change, Key, Outputs, Ownership, Readiness};
use crate::manifest::{AccessType as AccessSpec, Subscriber as SubscriberSpec};
use crate::resource::{Identity, OWNER_TAG, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::Stack;

pub const ADDRESS: &str = "securitylake.subscriber/scorer";

/// The subscriber's id, which its notification is created for.
pub const ID: Key<String> = Key::new("subscriberId");
/// The lake bucket the subscriber reads, as Security Lake reports it.
pub const BUCKET_ARN: Key<String> = Key::new("s3BucketArn");

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub principal: String,
    pub external_id: String,
    /// (source name, version)
    pub sources: BTreeSet<(String, String)>,
    pub access: BTreeSet<String>,
    pub status: Option<String>,
    pub bucket_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

pub struct Subscriber {
    identity: Identity,
    client: Client,
    principal: String,
    external_id: String,
    sources: BTreeSet<(String, String)>,
    access: BTreeSet<String>,
    tags: BTreeMap<String, String>,
}

impl From<&SubscriberResource> for Observed {
    fn from(s: &SubscriberResource) -> Self {
        Observed {
            id: s.subscriber_id().to_owned(),
            name: s.subscriber_name().to_owned(),
            arn: s.subscriber_arn().to_owned(),
            principal: s.subscriber_identity().map(|i| i.principal().to_owned()).unwrap_or_default(),
            external_id: s.subscriber_identity().map(|i| i.external_id().to_owned()).unwrap_or_default(),
            sources: s
                .sources()
                .iter()
                .filter_map(|r| match r {
                    LogSourceResource::AwsLogSource(aws) => Some((
                        aws.source_name()?.as_str().to_owned(),
                        aws.source_version().unwrap_or_default().to_owned(),
                    )),
                    _ => None,
                })
                .collect(),
            access: s.access_types().iter().map(|a| a.as_str().to_owned()).collect(),
            status: s.subscriber_status().map(|st| st.as_str().to_owned()),
            bucket_arn: s.s3_bucket_arn().filter(|b| !b.is_empty()).map(str::to_owned),
            tags: BTreeMap::new(),
        }
    }
}

impl Subscriber {
    pub fn new(stack: &Stack, spec: &SubscriberSpec, client: Client) -> Self {
        let lake = stack.manifest.spec.security_lake.as_ref();
        let lake_sources = lake.map(|l| l.sources.as_slice()).unwrap_or_default();
        // Default: every lake source; each at the version the lake pins.
        let sources = lake_sources
            .iter()
            .filter(|s| spec.sources.is_empty() || spec.sources.contains(&s.name))
            .map(|s| (s.name.as_str().to_owned(), s.version.clone()))
            .collect();
        let mut identity = Identity::new(stack, ADDRESS, stack.subscriber_name());
        identity.wait_timeout = stack.manifest.spec.timeouts.security_lake;
        identity.serial_key = Some(stack.security_lake_serial_key());
        Subscriber {
            identity,
            client,
            principal: spec.principal.clone(),
            external_id: spec.external_id.clone(),
            sources,
            access: spec
                .access
                .iter()
                .map(|a| match a {
                    AccessSpec::S3 => AccessType::S3.as_str().to_owned(),
                    AccessSpec::Lakeformation => AccessType::Lakeformation.as_str().to_owned(),
                })
                .collect(),
            tags: stack.tags(),
        }
    }

    fn aws_identity(&self) -> Result<AwsIdentity, ResourceError> {
        AwsIdentity::builder()
            .principal(&self.principal)
            .external_id(&self.external_id)
            .build()
            .map_err(|e| ResourceError::Invalid(e.to_string()))
    }

    fn source_list(&self) -> Vec<LogSourceResource> {
        self.sources
            .iter()
            .map(|(name, version)| {
                LogSourceResource::AwsLogSource(
                    AwsLogSourceResource::builder()
                        .source_name(AwsLogSourceName::from(name.as_str()))
                        .source_version(version)
                        .build(),
                )
            })
            .collect()
    }
}

fn render(sources: &BTreeSet<(String, String)>) -> String {
    sources.iter().map(|(n, v)| format!("{n}@{v}")).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl Resource for Subscriber {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The subscriber of the manifest's name; failing that, one of another name that carries the
    /// stack's owner tag: the stack made it under a name the manifest no longer gives (a renamed
    /// subscriber, or a custom name in a section that has since left the manifest).
    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let listed = list_subscribers(&self.client).await?;
        if let Some(found) = listed.iter().find(|s| s.subscriber_name() == self.identity.name) {
            let mut observed = Observed::from(found);
            observed.tags = read_tags(&self.client, &observed.arn).await?;
            return Ok(Some(observed));
        }
        for other in &listed {
            let tags = read_tags(&self.client, other.subscriber_arn()).await?;
            if tags.get(OWNER_TAG) == Some(&self.identity.stack) {
                return Ok(Some(Observed { tags, ..Observed::from(other) }));
            }
        }
        Ok(None)
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let mut changes = Vec::new();
        if observed.name != self.identity.name {
            // Security Lake cannot rename a subscriber.
            changes.push(Change::replacing("name", &observed.name, &self.identity.name));
        }
        if observed.access != self.access {
            let render = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
            changes.push(Change::replacing("access", render(&observed.access), render(&self.access)));
        }
        if observed.principal != self.principal {
            changes.push(Change::in_place("principal", &observed.principal, &self.principal));
        }
        if observed.external_id != self.external_id {
            changes.push(Change::in_place("externalId", "(secret)", "(secret, changed)"));
        }
        if observed.sources != self.sources {
            changes.push(Change::in_place("sources", render(&observed.sources), render(&self.sources)));
        }
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn outputs(&self, observed: &Observed) -> Outputs {
        let outputs = Outputs::new().with(ID, &observed.id);
        match &observed.bucket_arn {
            Some(bucket) => outputs.with(BUCKET_ARN, bucket),
            None => outputs,
        }
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        observed.status.clone()
    }

    /// CreateSubscriber takes no client token: one attempt at a time, looking before the next.
    async fn create(&self) -> Result<(), ResourceError> {
        let (identity, tags) = (self.aws_identity()?, tag_list(&self.tags)?);
        let once = || async {
            self.client
                .create_subscriber()
                .subscriber_name(&self.identity.name)
                .subscriber_identity(identity.clone())
                .set_sources(Some(self.source_list()))
                .set_access_types(Some(self.access.iter().map(|a| AccessType::from(a.as_str())).collect()))
                .set_tags(Some(tags.clone()))
                .customize()
                .config_override(single_attempt!(aws_sdk_securitylake))
                .send()
                .await
                .map(drop)
                .map_err(|e| service_error("CreateSubscriber", e))
        };
        create_once(once, || async { Ok(self.read().await?.is_some()) }).await
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field != "tags") {
            self.client
                .update_subscriber()
                .subscriber_id(&observed.id)
                .subscriber_identity(self.aws_identity()?)
                .set_sources(Some(self.source_list()))
                .send()
                .await
                .map_err(|e| service_error("UpdateSubscriber", e))?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            tag(&self.client, &observed.arn, &self.tags).await?;
        }
        Ok(())
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        match self.client.delete_subscriber().subscriber_id(&observed.id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(service_error("DeleteSubscriber", e)),
        }
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let Some(found) = find_subscriber(&self.client, &self.identity.name).await? else {
            return Ok(self.identity.pending("not listed yet"));
        };
        match found.subscriber_status() {
            Some(SubscriberStatus::Active | SubscriberStatus::Ready) => Ok(Readiness::Ready),
            Some(SubscriberStatus::Deactivated) => Err(ResourceError::Invalid(format!(
                "subscriber {} is DEACTIVATED; reactivate it in Security Lake or delete it",
                self.identity.name
            ))),
            Some(other) => Ok(self.identity.pending(other.as_str())),
            None => Ok(self.identity.pending("no status yet")),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_securitylake::operation::create_subscriber::CreateSubscriberOutput;
    use aws_sdk_securitylake::operation::delete_subscriber::DeleteSubscriberError;
    use aws_sdk_securitylake::operation::list_subscribers::ListSubscribersOutput;
    use aws_sdk_securitylake::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_securitylake::operation::update_subscriber::UpdateSubscriberOutput;
    use aws_sdk_securitylake::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::{LAKE, OWNED, tags};
    use crate::engine::{Action, Intent, Node, Refusal, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    fn node(rules: &[&Rule]) -> Managed<Subscriber> {
        let s = stack(LAKE);
        let spec = s.manifest.spec.subscriber.clone().expect("subscriber");
        Managed::new(Subscriber::new(&s, &spec, mocked_client!(aws_sdk_securitylake, rules)))
    }

    fn listed(external_id: &'static str, access: AccessType) -> Rule {
        listed_as(&["lakesight-demo"], external_id, access)
    }

    fn listed_as(names: &'static [&'static str], external_id: &'static str, access: AccessType) -> Rule {
        mock!(Client::list_subscribers).then_output(move || {
            let mut out = ListSubscribersOutput::builder();
            for name in names {
                out = out.subscribers(listed_subscriber(name, external_id, access.clone()));
            }
            out.build()
        })
    }

    fn listed_subscriber(name: &str, external_id: &str, access: AccessType) -> SubscriberResource {
        let source = LogSourceResource::AwsLogSource(
            AwsLogSourceResource::builder().source_name(AwsLogSourceName::VpcFlow).source_version("2.0").build(),
        );
        SubscriberResource::builder()
            .subscriber_id("0b5c2bd8-0000-4000-8000-000000000000")
            .subscriber_arn(format!("arn:aws:securitylake:eu-west-1:111122223333:subscriber/{name}"))
            .subscriber_name(name)
            .subscriber_identity(
                AwsIdentity::builder().principal("111122223333").external_id(external_id).build().expect("id"),
            )
            .sources(source)
            .access_types(access)
            .subscriber_status(SubscriberStatus::Active)
            .build()
            .expect("subscriber")
    }

    #[tokio::test]
    async fn a_subscriber_the_stack_made_under_another_name_is_found_by_its_tag_and_replaced() {
        let list = listed_as(&["someone-elses", "custom-name"], "very-secret-id", AccessType::S3);
        let tags = mock!(Client::list_tags_for_resource).then_compute_output(|r| {
            let owner =
                if r.resource_arn() == Some("arn:aws:securitylake:eu-west-1:111122223333:subscriber/custom-name") {
                    "demo"
                } else {
                    "other"
                };
            ListTagsForResourceOutput::builder()
                .tags(aws_sdk_securitylake::types::Tag::builder().key(OWNER_TAG).value(owner).build().expect("tag"))
                .build()
        });
        let observed = node(&[&list, &tags]).observe().await.expect("observe");
        assert_eq!(observed.changes[0], Change::replacing("name", "custom-name", "lakesight-demo"));
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Replace));
    }

    #[tokio::test]
    async fn absent_subscriber_is_created_with_identity_sources_and_owner_tag() {
        let list = mock!(Client::list_subscribers).then_output(|| ListSubscribersOutput::builder().build());
        let create = mock!(Client::create_subscriber)
            .match_requests(|r| {
                r.subscriber_name() == Some("lakesight-demo")
                    && r.subscriber_identity().is_some_and(|i| i.external_id() == "very-secret-id")
                    && r.sources().len() == 1
                    && r.tags().iter().any(|t| t.key() == "lakesight:stack")
            })
            .then_output(|| CreateSubscriberOutput::builder().build());
        let n = node(&[&list, &create]);
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn changed_external_id_updates_in_place_without_revealing_it() {
        let (list, tags) = (listed("old-secret-id", AccessType::S3), tags(OWNED));
        let update = mock!(Client::update_subscriber)
            .match_requests(|r| r.subscriber_identity().is_some_and(|i| i.external_id() == "very-secret-id"))
            .then_output(|| UpdateSubscriberOutput::builder().build());
        let n = node(&[&list, &tags, &update]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("externalId", "(secret)", "(secret, changed)")]);
        assert!(!format!("{observed:?}").contains("secret-id"), "no secret in the plan");
        n.apply(Action::Update).await.expect("update");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn changed_access_type_forces_replacement() {
        let (list, tags) = (listed("very-secret-id", AccessType::Lakeformation), tags(OWNED));
        let observed = node(&[&list, &tags]).observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Replace));
    }

    #[tokio::test]
    async fn untagged_subscriber_is_refused_and_a_vanished_one_deletes_cleanly() {
        let (list, tags) = (listed("very-secret-id", AccessType::S3), tags(&[]));
        let gone = mock!(Client::delete_subscriber).then_error(|| {
            DeleteSubscriberError::ResourceNotFoundException(
                ResourceNotFoundException::builder().message("gone").build(),
            )
        });
        let n = node(&[&list, &tags, &gone]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Present, &observed, None), Err(Refusal::Untagged));
        n.apply(Action::Delete).await.expect("not found on delete is success");
    }
}
