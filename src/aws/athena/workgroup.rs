//! The stack's Athena workgroup: query results in the artifact bucket, encrypted like it, an
//! optional bytes-scanned limit per query, and its settings enforced over the clients'.
//! Athena has no "not found" error code for workgroups, so existence is read from the listing.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    EncryptionConfiguration, EncryptionOption, ResultConfiguration, ResultConfigurationUpdates, Tag,
    WorkGroupConfiguration, WorkGroupConfigurationUpdates,
};

use crate::aws::error::service_error;
use crate::aws::retry::{create_once, single_attempt};
use crate::engine::{Change, Ownership};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::Stack;

pub const ADDRESS: &str = "athena.workgroup/features";

/// The settings lakesight manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub output_location: String,
    /// `None` for SSE-S3, the key ARN for SSE-KMS.
    pub kms_key: Option<String>,
    pub bytes_scanned_cutoff: Option<i64>,
    pub enforced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub settings: Settings,
    pub tags: BTreeMap<String, String>,
}

pub struct Workgroup {
    identity: Identity,
    client: Client,
    arn: String,
    settings: Settings,
    tags: BTreeMap<String, String>,
}

impl Workgroup {
    pub fn new(stack: &Stack, client: Client) -> Self {
        let name = stack.resource_name("features");
        let identity = Identity::new(stack, ADDRESS, name.clone());
        let features = stack.manifest.spec.features.as_ref();
        Workgroup {
            arn: stack.arn("athena", &format!("workgroup/{name}")),
            identity,
            client,
            settings: Settings {
                output_location: format!("s3://{}/athena-results/", stack.artifact_bucket()),
                kms_key: stack.manifest.spec.artifact_bucket.kms_key_arn.clone(),
                bytes_scanned_cutoff: features
                    .and_then(|f| f.bytes_scanned_cutoff)
                    .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                enforced: true,
            },
            tags: stack.tags(),
        }
    }

    fn encryption(&self) -> Result<EncryptionConfiguration, ResourceError> {
        let option = if self.settings.kms_key.is_some() { EncryptionOption::SseKms } else { EncryptionOption::SseS3 };
        EncryptionConfiguration::builder()
            .encryption_option(option)
            .set_kms_key(self.settings.kms_key.clone())
            .build()
            .map_err(|e| ResourceError::Invalid(e.to_string()))
    }

    async fn exists(&self) -> Result<bool, ResourceError> {
        let mut pages = self.client.list_work_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| service_error("ListWorkGroups", e))?;
            if page.work_groups().iter().any(|w| w.name() == Some(self.identity.name.as_str())) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn observed_settings(config: Option<&WorkGroupConfiguration>) -> Settings {
    let result = config.and_then(|c| c.result_configuration());
    let encryption = result.and_then(|r| r.encryption_configuration());
    Settings {
        output_location: result.and_then(|r| r.output_location()).unwrap_or_default().to_owned(),
        kms_key: encryption
            .filter(|e| *e.encryption_option() == EncryptionOption::SseKms)
            .map(|e| e.kms_key().unwrap_or_default().to_owned()),
        bytes_scanned_cutoff: config.and_then(|c| c.bytes_scanned_cutoff_per_query()),
        enforced: config.and_then(|c| c.enforce_work_group_configuration()).unwrap_or(false),
    }
}

fn show<T: std::fmt::Debug>(value: &Option<T>) -> String {
    value.as_ref().map_or("none".into(), |v| format!("{v:?}"))
}

#[async_trait]
impl Resource for Workgroup {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        if !self.exists().await? {
            return Ok(None);
        }
        let out = self
            .client
            .get_work_group()
            .work_group(&self.identity.name)
            .send()
            .await
            .map_err(|e| service_error("GetWorkGroup", e))?;
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_arn(&self.arn)
            .send()
            .await
            .map_err(|e| service_error("ListTagsForResource", e))?;
        Ok(Some(Observed {
            settings: observed_settings(out.work_group().and_then(|w| w.configuration())),
            tags: tags.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect(),
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let (have, want) = (&observed.settings, &self.settings);
        let mut changes = Vec::new();
        if have.output_location != want.output_location {
            changes.push(Change::in_place("outputLocation", &have.output_location, &want.output_location));
        }
        if have.kms_key != want.kms_key {
            changes.push(Change::in_place("encryption", show(&have.kms_key), show(&want.kms_key)));
        }
        if have.bytes_scanned_cutoff != want.bytes_scanned_cutoff {
            changes.push(Change::in_place(
                "bytesScannedCutoff",
                show(&have.bytes_scanned_cutoff),
                show(&want.bytes_scanned_cutoff),
            ));
        }
        if !have.enforced {
            changes.push(Change::in_place("enforceWorkGroupConfiguration", "false", "true"));
        }
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, _observed: &Observed) -> String {
        self.arn.clone()
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let configuration = WorkGroupConfiguration::builder()
            .result_configuration(
                ResultConfiguration::builder()
                    .output_location(&self.settings.output_location)
                    .encryption_configuration(self.encryption()?)
                    .build(),
            )
            .enforce_work_group_configuration(true)
            .set_bytes_scanned_cutoff_per_query(self.settings.bytes_scanned_cutoff)
            .build();
        let tags: Vec<Tag> = self.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        // No client token: one attempt at a time, looking before the next.
        let once = || async {
            self.client
                .create_work_group()
                .name(&self.identity.name)
                .description(format!("lakesight stack {}: feature queries", self.identity.stack))
                .configuration(configuration.clone())
                .set_tags(Some(tags.clone()))
                .customize()
                .config_override(single_attempt!(aws_sdk_athena))
                .send()
                .await
                .map(drop)
                .map_err(|e| service_error("CreateWorkGroup", e))
        };
        create_once(once, || async { Ok(self.read().await?.is_some()) }).await
    }

    async fn update(&self, _observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field != "tags") {
            let updates = WorkGroupConfigurationUpdates::builder()
                .result_configuration_updates(
                    ResultConfigurationUpdates::builder()
                        .output_location(&self.settings.output_location)
                        .encryption_configuration(self.encryption()?)
                        .build(),
                )
                .enforce_work_group_configuration(true)
                .set_bytes_scanned_cutoff_per_query(self.settings.bytes_scanned_cutoff)
                .remove_bytes_scanned_cutoff_per_query(self.settings.bytes_scanned_cutoff.is_none())
                .build();
            self.client
                .update_work_group()
                .work_group(&self.identity.name)
                .configuration_updates(updates)
                .send()
                .await
                .map_err(|e| service_error("UpdateWorkGroup", e))?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            let tags = self.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
            self.client
                .tag_resource()
                .resource_arn(&self.arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| service_error("TagResource", e))?;
        }
        Ok(())
    }

    async fn delete(&self, _observed: &Observed) -> Result<(), ResourceError> {
        self.client
            .delete_work_group()
            .work_group(&self.identity.name)
            .recursive_delete_option(true)
            .send()
            .await
            .map_err(|e| service_error("DeleteWorkGroup", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_athena::operation::create_work_group::CreateWorkGroupOutput;
    use aws_sdk_athena::operation::get_work_group::GetWorkGroupOutput;
    use aws_sdk_athena::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_athena::operation::list_work_groups::ListWorkGroupsOutput;
    use aws_sdk_athena::operation::update_work_group::UpdateWorkGroupOutput;
    use aws_sdk_athena::types::{WorkGroup, WorkGroupSummary};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::Node;
    use crate::engine::{Action, Intent, Refusal, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const NAME: &str = "lakesight-demo-features";
    const OUTPUT: &str = "s3://lakesight-demo-111122223333-eu-west-1/athena-results/";

    fn node(rules: &[&Rule]) -> Managed<Workgroup> {
        let s = stack("  features:\n    bytesScannedCutoff: 10000000000\n");
        Managed::new(Workgroup::new(&s, mocked_client!(aws_sdk_athena, rules)))
    }

    fn listed() -> Rule {
        mock!(Client::list_work_groups).then_output(|| {
            ListWorkGroupsOutput::builder().work_groups(WorkGroupSummary::builder().name(NAME).build()).build()
        })
    }

    fn group(cutoff: i64) -> Rule {
        mock!(Client::get_work_group).then_output(move || {
            let config = WorkGroupConfiguration::builder()
                .result_configuration(
                    ResultConfiguration::builder()
                        .output_location(OUTPUT)
                        .encryption_configuration(
                            EncryptionConfiguration::builder()
                                .encryption_option(EncryptionOption::SseS3)
                                .build()
                                .expect("enc"),
                        )
                        .build(),
                )
                .enforce_work_group_configuration(true)
                .bytes_scanned_cutoff_per_query(cutoff)
                .build();
            GetWorkGroupOutput::builder()
                .work_group(WorkGroup::builder().name(NAME).configuration(config).build().expect("wg"))
                .build()
        })
    }

    fn tagged(owner: &'static str) -> Rule {
        mock!(Client::list_tags_for_resource).then_output(move || {
            ListTagsForResourceOutput::builder()
                .tags(Tag::builder().key("lakesight:stack").value(owner).build())
                .tags(Tag::builder().key("team").value("secops").build())
                .build()
        })
    }

    #[tokio::test]
    async fn absent_workgroup_is_created_with_results_in_the_artifact_bucket() {
        let list = mock!(Client::list_work_groups).then_output(|| ListWorkGroupsOutput::builder().build());
        let create = mock!(Client::create_work_group)
            .match_requests(|r| {
                let config = r.configuration();
                r.name() == Some(NAME)
                    && config.and_then(|c| c.result_configuration()?.output_location()) == Some(OUTPUT)
                    && config.and_then(|c| c.bytes_scanned_cutoff_per_query()) == Some(10_000_000_000)
                    && r.tags().iter().any(|t| t.key() == Some("lakesight:stack"))
            })
            .then_output(|| CreateWorkGroupOutput::builder().build());
        let n = node(&[&list, &create]);
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn workgroup_in_sync_is_a_noop_and_a_changed_cutoff_updates_it() {
        let (list, get, tags) = (listed(), group(10_000_000_000), tagged("demo"));
        let observed = node(&[&list, &get, &tags]).observe().await.expect("observe");
        assert_eq!((observed.ownership, observed.changes), (Some(Ownership::Owned), vec![]));

        let (list, get, tags) = (listed(), group(5), tagged("demo"));
        let update = mock!(Client::update_work_group)
            .match_requests(|r| {
                r.configuration_updates().and_then(|u| u.bytes_scanned_cutoff_per_query()) == Some(10_000_000_000)
            })
            .then_output(|| UpdateWorkGroupOutput::builder().build());
        let n = node(&[&list, &get, &tags, &update]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("bytesScannedCutoff", "5", "10000000000")]);
        n.apply(Action::Update).await.expect("update");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn another_stacks_workgroup_is_refused() {
        let (list, get, tags) = (listed(), group(10_000_000_000), tagged("other"));
        let observed = node(&[&list, &get, &tags]).observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Present, &observed, None), Err(Refusal::OwnedBy("other".into())));
    }
}
