//! One AWS log source (VPC_FLOW, ROUTE53, ...) at a pinned version, for the manifest's accounts
//! and regions. Log sources carry no tags, so the stack manages exactly the ones its manifest
//! names, and, by its record, disables them where it enabled them before and the manifest no
//! longer names them. There is no update call: a version change is delete then create, and the create rides
//! out the 409s that follow the asynchronous delete through the shared retry classifier.
//!
//! A source the record says the stack enabled, found disabled everywhere the manifest names it,
//! was disabled outside lakesight: it reads as there with no coverage, so that the plan shows
//! the drift (`coverage: disabled -> ...`) and apply enables it again.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::{AwsLogSourceConfiguration, AwsLogSourceName, LogSourceResource};

use crate::aws::error::service_error;
use crate::engine::{Change, Ownership};
use crate::manifest::{LogSource as SourceSpec, SourceName};
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::Stack;

pub fn address(name: SourceName) -> String {
    format!("securitylake.log_source/{}", name.as_str())
}

/// Where a source is enabled: (account, region) → version.
pub type Coverage = BTreeMap<(String, String), String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub coverage: Coverage,
    /// Collection status per `account/region` from GetDataLakeSources.
    pub health: BTreeMap<String, String>,
}

pub struct LogSource {
    identity: Identity,
    client: Client,
    source: SourceName,
    version: String,
    accounts: Vec<String>,
    regions: Vec<String>,
    /// The lake's `deletionPolicy` is Retain.
    retain: bool,
    /// The manifest still names it.
    declared: bool,
    /// (account, region) pairs the stack enabled it for, by its record, that the manifest no
    /// longer names: disabled there.
    released: BTreeSet<(String, String)>,
    /// (account, region) pairs the manifest names that the stack enabled it for, by its record.
    recorded: BTreeSet<(String, String)>,
}

impl LogSource {
    pub fn new(stack: &Stack, spec: &SourceSpec, client: Client) -> Self {
        let regions = if spec.regions.is_empty() { stack.lake_regions() } else { spec.regions.clone() };
        let mut identity = Identity::new(stack, address(spec.name), format!("{} {}", spec.name.as_str(), spec.version));
        identity.wait_timeout = stack.manifest.spec.timeouts.security_lake;
        identity.serial_key = Some(stack.security_lake_serial_key());
        LogSource {
            identity,
            client,
            source: spec.name,
            version: spec.version.clone(),
            accounts: if spec.accounts.is_empty() { stack.lake_accounts() } else { spec.accounts.clone() },
            regions,
            retain: stack
                .manifest
                .spec
                .security_lake
                .as_ref()
                .is_some_and(|l| l.deletion_policy == crate::manifest::DeletionPolicy::Retain),
            declared: true,
            released: BTreeSet::new(),
            recorded: BTreeSet::new(),
        }
    }

    /// Where the stack enabled the source, by its record: beyond what the manifest names now,
    /// to disable there, and within it, to tell a source disabled since from one never enabled.
    pub fn releasing(mut self, recorded: &SourceSpec) -> Self {
        let wanted = self.wanted();
        let (kept, released) = recorded
            .accounts
            .iter()
            .flat_map(|a| recorded.regions.iter().map(move |r| (a.clone(), r.clone())))
            .partition(|key| wanted.contains_key(key));
        (self.recorded, self.released) = (kept, released);
        self
    }

    /// A source the stack enabled, as its record names it, that the manifest no longer names.
    pub fn dropped(stack: &Stack, spec: &SourceSpec, client: Client) -> Self {
        LogSource { declared: false, retain: false, ..LogSource::new(stack, spec, client) }
    }

    /// The regions it collects in.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    fn wanted(&self) -> Coverage {
        self.accounts
            .iter()
            .flat_map(|a| self.regions.iter().map(move |r| ((a.clone(), r.clone()), self.version.clone())))
            .collect()
    }

    fn configuration(
        &self,
        version: &str,
        accounts: Vec<String>,
        regions: Vec<String>,
    ) -> Result<AwsLogSourceConfiguration, ResourceError> {
        AwsLogSourceConfiguration::builder()
            .source_name(AwsLogSourceName::from(self.source.as_str()))
            .source_version(version)
            .set_accounts(Some(accounts))
            .set_regions(Some(regions))
            .build()
            .map_err(|e| ResourceError::Invalid(e.to_string()))
    }

    async fn coverage(&self) -> Result<Coverage, ResourceError> {
        let mut coverage = Coverage::new();
        let released = |pick: fn(&(String, String)) -> &String| self.released.iter().map(pick).cloned();
        let accounts: BTreeSet<String> = self.accounts.iter().cloned().chain(released(|k| &k.0)).collect();
        let regions: BTreeSet<String> = self.regions.iter().cloned().chain(released(|k| &k.1)).collect();
        let mut pages = self
            .client
            .list_log_sources()
            .set_accounts(Some(accounts.into_iter().collect()))
            .set_regions(Some(regions.into_iter().collect()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for entry in page.map_err(|e| service_error("ListLogSources", e))?.sources() {
                let (Some(account), Some(region)) = (entry.account(), entry.region()) else { continue };
                for resource in entry.sources() {
                    if let LogSourceResource::AwsLogSource(aws) = resource
                        && aws.source_name().map(AwsLogSourceName::as_str) == Some(self.source.as_str())
                    {
                        let key = (account.to_owned(), region.to_owned());
                        // Only where the manifest names it, or the stack enabled it before.
                        if self.wanted().contains_key(&key) || self.released.contains(&key) {
                            coverage.insert(key, aws.source_version().unwrap_or("unknown").to_owned());
                        }
                    }
                }
            }
        }
        Ok(coverage)
    }

    /// COLLECTING / MISCONFIGURED / NOT_COLLECTING per account and region.
    async fn health_by_location(&self) -> Result<BTreeMap<String, String>, ResourceError> {
        let mut health = BTreeMap::new();
        let mut pages =
            self.client.get_data_lake_sources().set_accounts(Some(self.accounts.clone())).into_paginator().send();
        while let Some(page) = pages.next().await {
            for source in page.map_err(|e| service_error("GetDataLakeSources", e))?.data_lake_sources() {
                if source.source_name() != Some(self.source.as_str()) {
                    continue;
                }
                let account = source.account().unwrap_or("?");
                for status in source.source_statuses() {
                    let region = status.resource().and_then(region_of).unwrap_or("?");
                    let value = status.status().map_or("UNKNOWN", |s| s.as_str());
                    health.insert(format!("{account}/{region}"), value.to_owned());
                }
            }
        }
        Ok(health)
    }

    /// Enables the source where it is missing (or at another version).
    async fn enable(&self, missing: &Coverage) -> Result<(), ResourceError> {
        if missing.is_empty() {
            return Ok(());
        }
        let accounts: BTreeSet<String> = missing.keys().map(|(a, _)| a.clone()).collect();
        let regions: BTreeSet<String> = missing.keys().map(|(_, r)| r.clone()).collect();
        let out = self
            .client
            .create_aws_log_source()
            .sources(self.configuration(
                &self.version,
                accounts.into_iter().collect(),
                regions.into_iter().collect(),
            )?)
            .send()
            .await
            .map_err(|e| service_error("CreateAwsLogSource", e))?;
        if !out.failed().is_empty() {
            return Err(ResourceError::Invalid(format!(
                "Security Lake could not enable {} for accounts {}",
                self.source.as_str(),
                out.failed().join(", ")
            )));
        }
        Ok(())
    }
}

/// The region in a source status resource path: `aws/VPC_FLOW/2.0/region=<r>/accountId=<a>`.
fn region_of(resource: &str) -> Option<&str> {
    resource.split('/').find_map(|part| part.strip_prefix("region="))
}

fn render(coverage: &Coverage) -> String {
    let parts: Vec<String> = coverage.iter().map(|((a, r), v)| format!("{a}/{r}@{v}")).collect();
    if parts.is_empty() { "disabled".into() } else { parts.join(", ") }
}

#[async_trait]
impl Resource for LogSource {
    /// A retained lake keeps collecting: its sources stay with it.
    fn retain_on_destroy(&self) -> bool {
        self.retain
    }

    fn declared(&self) -> bool {
        self.declared
    }

    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Absent when it runs nowhere the stack looks, unless the record says the stack enabled
    /// it where the manifest names it: then it was disabled outside lakesight, which is drift.
    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let coverage = self.coverage().await?;
        if coverage.is_empty() && self.recorded.is_empty() {
            return Ok(None);
        }
        Ok(Some(Observed { coverage, health: self.health_by_location().await? }))
    }

    fn owner(&self, _observed: &Observed) -> Ownership {
        Ownership::Untaggable
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let wanted = self.wanted();
        let other_version: Coverage = observed
            .coverage
            .iter()
            .filter(|(_, v)| **v != self.version)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut changes = Vec::new();
        if !other_version.is_empty() {
            let from: BTreeSet<&String> = other_version.values().collect();
            let from: Vec<&str> = from.into_iter().map(String::as_str).collect();
            changes.push(Change::replacing("sourceVersion", from.join(", "), &self.version));
        }
        let missing = wanted.keys().any(|k| !observed.coverage.contains_key(k));
        if missing || !self.released_in(&observed.coverage).is_empty() {
            changes.push(Change::in_place("coverage", render(&observed.coverage), render(&wanted)));
        }
        changes
    }

    fn id(&self, _observed: &Observed) -> String {
        format!("{}@{}", self.source.as_str(), self.version)
    }

    /// Disabled everywhere already: nothing for destroy to do.
    fn kept(&self, observed: &Observed) -> Option<String> {
        observed.coverage.is_empty().then(|| "already disabled".to_owned())
    }

    /// Disabled everywhere is gone, though the record still names it.
    fn deleted_enough(&self, observed: &Observed) -> bool {
        observed.coverage.is_empty()
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        if observed.health.is_empty() {
            return Some("no status reported".into());
        }
        let parts: Vec<String> =
            observed.health.iter().map(|(location, status)| format!("{location} {status}")).collect();
        Some(parts.join(", "))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        self.enable(&self.wanted()).await
    }

    async fn update(&self, observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        self.disable(&self.released_in(&observed.coverage)).await?;
        let missing: Coverage = self.wanted().into_iter().filter(|(k, _)| !observed.coverage.contains_key(k)).collect();
        self.enable(&missing).await
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        self.disable(&observed.coverage).await
    }
}

impl LogSource {
    /// Where the source runs that the stack released.
    fn released_in(&self, coverage: &Coverage) -> Coverage {
        coverage.iter().filter(|(k, _)| self.released.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Disables the source where `coverage` says it runs: one call per version and account, for
    /// exactly that account's regions, so that no other (account, region) pair is touched.
    async fn disable(&self, coverage: &Coverage) -> Result<(), ResourceError> {
        let mut calls: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for ((account, region), version) in coverage {
            calls.entry((version.as_str(), account.as_str())).or_default().push(region.clone());
        }
        for ((version, account), regions) in calls {
            self.client
                .delete_aws_log_source()
                .sources(self.configuration(version, vec![account.to_owned()], regions)?)
                .send()
                .await
                .map_err(|e| service_error("DeleteAwsLogSource", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_read_from_the_status_resource_path() {
        assert_eq!(region_of("aws/VPC_FLOW/2.0/region=eu-west-1/accountId=111122223333"), Some("eu-west-1"));
        assert_eq!(region_of("no-region-here"), None);
    }
}

#[cfg(test)]
mod tests_mocked {
    use aws_sdk_securitylake::operation::create_aws_log_source::CreateAwsLogSourceOutput;
    use aws_sdk_securitylake::operation::delete_aws_log_source::DeleteAwsLogSourceOutput;
    use aws_sdk_securitylake::operation::get_data_lake_sources::GetDataLakeSourcesOutput;
    use aws_sdk_securitylake::operation::list_log_sources::ListLogSourcesOutput;
    use aws_sdk_securitylake::types::{
        AwsLogSourceResource, DataLakeSource, DataLakeSourceStatus, LogSource as Entry, SourceCollectionStatus,
    };
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::{LAKE, conflict, throttled};
    use crate::engine::{Action, Intent, Node, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    fn node(rules: &[&Rule]) -> Managed<LogSource> {
        let s = stack(LAKE);
        let spec = s.manifest.spec.security_lake.as_ref().expect("lake").sources[0].clone();
        Managed::new(LogSource::new(&s, &spec, mocked_client!(aws_sdk_securitylake, rules)))
    }

    fn listing(version: &'static str) -> ListLogSourcesOutput {
        let resource = LogSourceResource::AwsLogSource(
            AwsLogSourceResource::builder().source_name(AwsLogSourceName::VpcFlow).source_version(version).build(),
        );
        let entry = Entry::builder().account("111122223333").region("eu-west-1").sources(resource).build();
        ListLogSourcesOutput::builder().sources(entry).build()
    }

    fn listed(version: &'static str) -> Rule {
        mock!(Client::list_log_sources).then_output(move || listing(version))
    }

    fn collecting() -> Rule {
        mock!(Client::get_data_lake_sources).then_output(|| {
            let status = DataLakeSourceStatus::builder()
                .resource("aws/VPC_FLOW/2.0/region=eu-west-1/accountId=111122223333")
                .status(SourceCollectionStatus::Collecting)
                .build();
            let source = DataLakeSource::builder()
                .account("111122223333")
                .source_name("VPC_FLOW")
                .source_statuses(status)
                .build();
            GetDataLakeSourcesOutput::builder().data_lake_sources(source).build()
        })
    }

    #[tokio::test]
    async fn absent_source_is_enabled_at_the_pinned_version() {
        let list = mock!(Client::list_log_sources).then_output(|| ListLogSourcesOutput::builder().build());
        let create = mock!(Client::create_aws_log_source)
            .match_requests(|r| {
                r.sources().first().is_some_and(|s| {
                    s.source_version() == "2.0" && s.accounts() == ["111122223333"] && s.regions() == ["eu-west-1"]
                })
            })
            .then_output(|| CreateAwsLogSourceOutput::builder().build());
        let n = node(&[&list, &create]);
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn enabled_source_is_a_noop_and_reports_its_health() {
        let (list, health) = (listed("2.0"), collecting());
        let observed = node(&[&list, &health]).observe().await.expect("observe");
        assert_eq!((observed.ownership.clone(), observed.changes.clone()), (Some(Ownership::Untaggable), vec![]));
        assert_eq!(observed.health.as_deref(), Some("111122223333/eu-west-1 COLLECTING"));
    }

    #[tokio::test]
    async fn another_version_is_replaced_by_delete_then_create_through_conflicts() {
        // Listed until the delete has gone through, then gone.
        let list = mock!(Client::list_log_sources)
            .sequence()
            .output(|| listing("1.0"))
            .output(|| ListLogSourcesOutput::builder().build())
            .repeatedly()
            .build();
        let health = collecting();
        let delete = mock!(Client::delete_aws_log_source)
            .match_requests(|r| r.sources().first().is_some_and(|s| s.source_version() == "1.0"))
            .then_output(|| DeleteAwsLogSourceOutput::builder().build());
        let create = mock!(Client::create_aws_log_source)
            .match_requests(|r| r.sources().first().is_some_and(|s| s.source_version() == "2.0"))
            .sequence()
            .http_response(conflict)
            .output(|| CreateAwsLogSourceOutput::builder().build())
            .build();
        let n = node(&[&list, &health, &delete, &create]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::replacing("sourceVersion", "1.0", "2.0")]);
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Replace));
        n.apply(Action::Replace).await.expect("replace");
        assert_eq!((delete.num_calls(), create.num_calls()), (1, 2));
        assert_eq!(list.num_calls(), 2, "the create came after a read found the old version gone");
    }

    #[tokio::test]
    async fn throttled_listing_is_retried() {
        let list = mock!(Client::list_log_sources)
            .sequence()
            .http_response(throttled)
            .output(|| ListLogSourcesOutput::builder().build())
            .build();
        let observed = node(&[&list]).observe().await.expect("retried");
        assert_eq!((list.num_calls(), observed.ownership), (2, None));
    }

    #[tokio::test]
    async fn a_region_the_manifest_no_longer_names_is_disabled_there_only() {
        // Recorded for eu-west-1 and us-east-1; the manifest names eu-west-1 only.
        let list = mock!(Client::list_log_sources)
            .match_requests(|r| r.regions().contains(&"us-east-1".to_owned()))
            .then_output(|| {
                let entry = |region: &str| {
                    let resource = LogSourceResource::AwsLogSource(
                        AwsLogSourceResource::builder()
                            .source_name(AwsLogSourceName::VpcFlow)
                            .source_version("2.0")
                            .build(),
                    );
                    Entry::builder().account("111122223333").region(region).sources(resource).build()
                };
                ListLogSourcesOutput::builder().sources(entry("eu-west-1")).sources(entry("us-east-1")).build()
            });
        let health = collecting();
        let disable = mock!(Client::delete_aws_log_source)
            .match_requests(|r| {
                r.sources().len() == 1
                    && r.sources()[0].regions() == ["us-east-1"]
                    && r.sources()[0].accounts() == ["111122223333"]
            })
            .then_output(|| DeleteAwsLogSourceOutput::builder().build());
        let s = stack(LAKE);
        let spec = s.manifest.spec.security_lake.as_ref().expect("lake").sources[0].clone();
        let recorded = SourceSpec { regions: vec!["eu-west-1".into(), "us-east-1".into()], ..spec.clone() };
        let client = mocked_client!(aws_sdk_securitylake, &[&list, &health, &disable]);
        let n = Managed::new(
            LogSource::new(&s, &spec, client)
                .releasing(&SourceSpec { accounts: vec!["111122223333".into()], ..recorded }),
        );
        let observed = n.observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Update));
        n.apply(Action::Update).await.expect("update");
        assert_eq!(disable.num_calls(), 1, "us-east-1 only");
    }

    #[tokio::test]
    async fn a_recorded_source_disabled_outside_lakesight_is_drift_and_enabled_again() {
        let list = mock!(Client::list_log_sources).then_output(|| ListLogSourcesOutput::builder().build());
        let health = mock!(Client::get_data_lake_sources).then_output(|| GetDataLakeSourcesOutput::builder().build());
        let create = mock!(Client::create_aws_log_source)
            .match_requests(|r| {
                r.sources().first().is_some_and(|s| s.source_version() == "2.0" && s.regions() == ["eu-west-1"])
            })
            .then_output(|| CreateAwsLogSourceOutput::builder().build());
        let s = stack(LAKE);
        let spec = s.manifest.spec.security_lake.as_ref().expect("lake").sources[0].clone();
        let recorded =
            SourceSpec { accounts: vec!["111122223333".into()], regions: vec!["eu-west-1".into()], ..spec.clone() };
        let client = mocked_client!(aws_sdk_securitylake, &[&list, &health, &create]);
        let n = Managed::new(LogSource::new(&s, &spec, client).releasing(&recorded));
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.ownership, Some(Ownership::Untaggable));
        assert_eq!(observed.changes, vec![Change::in_place("coverage", "disabled", "111122223333/eu-west-1@2.0")]);
        assert_eq!(plan_action(Intent::Present, &observed, None), Ok((Action::Update, "drifted: coverage".to_owned())));
        assert_eq!(
            plan_action(Intent::Absent, &observed, None),
            Ok((Action::NoOp, "already disabled".to_owned())),
            "destroy has nothing to disable"
        );
        n.apply(Action::Update).await.expect("update");
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_source_never_enabled_by_the_stack_is_absent() {
        let list = mock!(Client::list_log_sources).then_output(|| ListLogSourcesOutput::builder().build());
        let observed = node(&[&list]).observe().await.expect("observe");
        assert_eq!((observed.ownership, observed.changes), (None, vec![]));
    }
}
