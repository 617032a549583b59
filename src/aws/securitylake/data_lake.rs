//! The Security Lake data lake in one region: encryption, lifecycle and replication, created
//! with the metastore manager role and owner-tagged. Create and update settle asynchronously;
//! readiness waits for COMPLETED and reports FAILED with the service's own code and reason.
//! Destroy keeps the lake unless `securityLake.deletionPolicy` is `Delete`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_securitylake::Client;
use aws_sdk_securitylake::types::{
    DataLakeConfiguration, DataLakeEncryptionConfiguration, DataLakeLifecycleConfiguration,
    DataLakeLifecycleExpiration, DataLakeLifecycleTransition, DataLakeReplicationConfiguration, DataLakeResource,
    DataLakeStatus,
};

use super::{read_tags, tag, tag_list};
use crate::aws::error::service_error;
use crate::aws::propagation::{self, Bound, Service};
use crate::engine::{Change, Ownership, Readiness};
use crate::manifest::{DeletionPolicy, SecurityLake};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::{RoleKind, Stack};

/// Security Lake's name for S3-managed encryption.
pub const S3_MANAGED_KEY: &str = "S3_MANAGED_KEY";

/// The code of a failure that came without an exception.
const UNKNOWN: &str = "unknown";

pub fn address(region: &str) -> String {
    format!("securitylake.data_lake/{region}")
}

/// What the lake should look like in one region, and what it does look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub kms_key: String,
    pub expiration_days: Option<i32>,
    pub transitions: Vec<(i32, String)>,
    pub replication_regions: Vec<String>,
    pub replication_role: Option<String>,
}

impl Settings {
    fn lifecycle(&self) -> String {
        let transitions: Vec<String> = self.transitions.iter().map(|(d, c)| format!("{d}d {c}")).collect();
        let expiry = self.expiration_days.map_or("never".to_owned(), |d| format!("{d}d"));
        format!("expire {expiry}, transitions [{}]", transitions.join(", "))
    }

    fn replication(&self) -> String {
        if self.replication_regions.is_empty() { "none".into() } else { self.replication_regions.join(", ") }
    }
}

/// The state of the last create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Completed,
    Settling(String),
    Failed { code: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub settings: Settings,
    pub progress: Progress,
    pub tags: BTreeMap<String, String>,
}

pub struct DataLake {
    identity: Identity,
    client: Client,
    region: String,
    settings: Settings,
    meta_store_role: String,
    tags: BTreeMap<String, String>,
    retain: bool,
}

impl DataLake {
    pub fn new(stack: &Stack, lake: &SecurityLake, region: String, client: Client) -> Self {
        let mut identity = Identity::new(stack, address(&region), format!("data lake in {region}"));
        identity.wait_timeout = stack.manifest.spec.timeouts.security_lake;
        identity.serial_key = Some(stack.security_lake_serial_key());
        let retention = lake.retention.as_ref();
        DataLake {
            identity,
            client,
            settings: Settings {
                kms_key: lake.kms_key_id.clone().unwrap_or_else(|| S3_MANAGED_KEY.to_owned()),
                expiration_days: retention.map(|r| clamp_days(r.expiration_days)),
                transitions: retention
                    .map(|r| r.transitions.iter().map(|t| (clamp_days(t.days), t.storage_class.clone())).collect())
                    .unwrap_or_default(),
                replication_regions: lake.replication.as_ref().map(|r| r.regions.clone()).unwrap_or_default(),
                replication_role: lake.replication.as_ref().and_then(|r| r.role_arn.clone()),
            },
            region,
            meta_store_role: stack.role_arn(RoleKind::MetaStoreManager),
            tags: stack.tags(),
            retain: lake.deletion_policy == DeletionPolicy::Retain,
        }
    }

    fn configuration(&self) -> Result<DataLakeConfiguration, ResourceError> {
        let s = &self.settings;
        let mut lifecycle = DataLakeLifecycleConfiguration::builder();
        if let Some(days) = s.expiration_days {
            lifecycle = lifecycle.expiration(DataLakeLifecycleExpiration::builder().days(days).build());
        }
        for (days, class) in &s.transitions {
            lifecycle =
                lifecycle.transitions(DataLakeLifecycleTransition::builder().days(*days).storage_class(class).build());
        }
        let mut config = DataLakeConfiguration::builder()
            .region(&self.region)
            .encryption_configuration(DataLakeEncryptionConfiguration::builder().kms_key_id(&s.kms_key).build())
            .lifecycle_configuration(lifecycle.build());
        if !s.replication_regions.is_empty() {
            config = config.replication_configuration(
                DataLakeReplicationConfiguration::builder()
                    .set_regions(Some(s.replication_regions.clone()))
                    .set_role_arn(s.replication_role.clone())
                    .build(),
            );
        }
        config.build().map_err(|e| ResourceError::Invalid(e.to_string()))
    }

    async fn find(&self) -> Result<Option<DataLakeResource>, ResourceError> {
        let out = self
            .client
            .list_data_lakes()
            .regions(&self.region)
            .send()
            .await
            .map_err(|e| service_error("ListDataLakes", e))?;
        Ok(out.data_lakes().iter().find(|l| l.region() == self.region).cloned())
    }
}

impl DataLake {
    /// The newest exception Security Lake recorded for this region, as an error for the user.
    async fn latest_exception(&self) -> Result<ResourceError, ResourceError> {
        let out = self
            .client
            .list_data_lake_exceptions()
            .regions(&self.region)
            .send()
            .await
            .map_err(|e| service_error("ListDataLakeExceptions", e))?;
        let latest = out.exceptions().iter().max_by_key(|e| e.timestamp().map(|t| (t.secs(), t.subsec_nanos())));
        let message = match latest {
            Some(e) => format!(
                "{}{}",
                e.exception().unwrap_or("no reason given"),
                e.remediation().map(|r| format!(" (remediation: {r})")).unwrap_or_default()
            ),
            None => "Security Lake reports FAILED and lists no exception".to_owned(),
        };
        Ok(ResourceError::Service { operation: "CreateDataLake", code: "FAILED".into(), message })
    }
}

/// Manifest day counts are unsigned; the API takes i32.
fn clamp_days(days: u32) -> i32 {
    i32::try_from(days).unwrap_or(i32::MAX)
}

fn observed_settings(lake: &DataLakeResource) -> Settings {
    let lifecycle = lake.lifecycle_configuration();
    let replication = lake.replication_configuration();
    Settings {
        kms_key: lake.encryption_configuration().and_then(|e| e.kms_key_id()).unwrap_or(S3_MANAGED_KEY).to_owned(),
        expiration_days: lifecycle.and_then(|l| l.expiration()).and_then(|e| e.days()),
        transitions: lifecycle
            .map(|l| l.transitions().iter().filter_map(|t| Some((t.days()?, t.storage_class()?.to_owned()))).collect())
            .unwrap_or_default(),
        replication_regions: replication.map(|r| r.regions().to_vec()).unwrap_or_default(),
        replication_role: replication.and_then(|r| r.role_arn()).map(str::to_owned),
    }
}

/// The last update's status when there is one, else the create status.
fn progress(lake: &DataLakeResource) -> Progress {
    let (status, exception) = match lake.update_status().and_then(|u| u.status().map(|s| (s, u.exception()))) {
        Some((status, exception)) => (Some(status), exception),
        None => (lake.create_status(), None),
    };
    match status {
        Some(DataLakeStatus::Completed) | None => Progress::Completed,
        Some(DataLakeStatus::Failed) => Progress::Failed {
            code: exception.and_then(|e| e.code()).unwrap_or(UNKNOWN).to_owned(),
            reason: exception.and_then(|e| e.reason()).unwrap_or("no reason given").to_owned(),
        },
        Some(other) => Progress::Settling(other.as_str().to_owned()),
    }
}

#[async_trait]
impl Resource for DataLake {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let Some(lake) = self.find().await? else { return Ok(None) };
        Ok(Some(Observed {
            arn: lake.data_lake_arn().to_owned(),
            settings: observed_settings(&lake),
            progress: progress(&lake),
            tags: read_tags(&self.client, lake.data_lake_arn()).await?,
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let (have, want) = (&observed.settings, &self.settings);
        let mut changes = Vec::new();
        if have.kms_key != want.kms_key {
            changes.push(Change::in_place("kmsKeyId", &have.kms_key, &want.kms_key));
        }
        if (have.expiration_days, &have.transitions) != (want.expiration_days, &want.transitions) {
            changes.push(Change::in_place("retention", have.lifecycle(), want.lifecycle()));
        }
        if (&have.replication_regions, &have.replication_role) != (&want.replication_regions, &want.replication_role) {
            changes.push(Change::in_place("replication", have.replication(), want.replication()));
        }
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        Some(match &observed.progress {
            Progress::Completed => "COMPLETED".into(),
            Progress::Settling(status) => status.clone(),
            Progress::Failed { code, reason } => format!("FAILED: {code}: {reason}"),
        })
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let request = self
            .client
            .create_data_lake()
            .configurations(self.configuration()?)
            .meta_store_manager_role_arn(&self.meta_store_role)
            .set_tags(Some(tag_list(&self.tags)?));
        // CreateDataLake on an enabled region updates it, so sending it again is safe; a conflict
        // that outlasts the SDK's attempts (the new metastore role, or an earlier write, still
        // propagating) is waited out for a bounded time.
        let bound = Bound::starting_at(self.identity.poll_interval);
        propagation::retry(Service::SecurityLake, bound, || {
            let request = request.clone();
            async move { request.send().await.map(drop).map_err(|e| service_error("CreateDataLake", e)) }
        })
        .await
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field != "tags") {
            self.client
                .update_data_lake()
                .configurations(self.configuration()?)
                .meta_store_manager_role_arn(&self.meta_store_role)
                .send()
                .await
                .map_err(|e| service_error("UpdateDataLake", e))?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            tag(&self.client, &observed.arn, &self.tags).await?;
        }
        Ok(())
    }

    async fn delete(&self, _observed: &Observed) -> Result<(), ResourceError> {
        self.client
            .delete_data_lake()
            .regions(&self.region)
            .send()
            .await
            .map_err(|e| service_error("DeleteDataLake", e))?;
        Ok(())
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let Some(lake) = self.find().await? else {
            return Ok(self.identity.pending("not listed yet"));
        };
        match progress(&lake) {
            Progress::Completed => Ok(Readiness::Ready),
            Progress::Settling(status) => Ok(self.identity.pending(status)),
            Progress::Failed { code, reason } if code != UNKNOWN => {
                Err(ResourceError::Service { operation: "DataLake status", code, message: reason })
            }
            // A failed create carries no exception; Security Lake lists it separately.
            Progress::Failed { .. } => Err(self.latest_exception().await?),
        }
    }

    fn retain_on_destroy(&self) -> bool {
        self.retain
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_securitylake::operation::create_data_lake::CreateDataLakeOutput;
    use aws_sdk_securitylake::operation::list_data_lakes::ListDataLakesOutput;
    use aws_sdk_securitylake::operation::update_data_lake::UpdateDataLakeOutput;
    use aws_sdk_securitylake::types::{DataLakeUpdateException, DataLakeUpdateStatus};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::securitylake::test_rules::{LAKE, OWNED, conflict, tags};
    use crate::engine::Node;
    use crate::engine::{Action, Intent, plan_action};
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const ARN: &str = "arn:aws:securitylake:eu-west-1:111122223333:data-lake/default";

    fn node(rules: &[&Rule]) -> Managed<DataLake> {
        let s = stack(LAKE);
        let lake = s.manifest.spec.security_lake.clone().expect("lake");
        Managed::new(DataLake::new(&s, &lake, "eu-west-1".into(), mocked_client!(aws_sdk_securitylake, rules)))
    }

    fn lake(days: i32, status: DataLakeStatus, update: Option<DataLakeUpdateStatus>) -> DataLakeResource {
        DataLakeResource::builder()
            .data_lake_arn(ARN)
            .region("eu-west-1")
            .encryption_configuration(DataLakeEncryptionConfiguration::builder().kms_key_id(S3_MANAGED_KEY).build())
            .lifecycle_configuration(
                DataLakeLifecycleConfiguration::builder()
                    .expiration(DataLakeLifecycleExpiration::builder().days(days).build())
                    .build(),
            )
            .create_status(status)
            .set_update_status(update)
            .build()
            .expect("lake")
    }

    fn listed(resource: DataLakeResource) -> Rule {
        mock!(Client::list_data_lakes)
            .match_requests(|r| r.regions() == ["eu-west-1"])
            .then_output(move || ListDataLakesOutput::builder().data_lakes(resource.clone()).build())
    }

    #[tokio::test]
    async fn absent_lake_is_created_with_role_tags_and_retention_and_rides_out_a_conflict() {
        let list = mock!(Client::list_data_lakes).then_output(|| ListDataLakesOutput::builder().build());
        let create = mock!(Client::create_data_lake)
            .match_requests(|r| {
                r.meta_store_manager_role_arn() == Some("arn:aws:iam::111122223333:role/lakesight-demo-metastore")
                    && r.tags().iter().any(|t| t.key() == "lakesight:stack" && t.value() == "demo")
                    && r.configurations().first().and_then(|c| c.lifecycle_configuration()?.expiration()?.days())
                        == Some(365)
            })
            .sequence()
            .http_response(conflict)
            .output(|| CreateDataLakeOutput::builder().build())
            .build();
        let n = node(&[&list, &create]);
        created_as_planned(&n).await;
        assert_eq!(create.num_calls(), 2);
    }

    #[tokio::test]
    async fn lake_in_sync_is_a_noop_and_retained_on_destroy() {
        let (list, tags) = (listed(lake(365, DataLakeStatus::Completed, None)), tags(OWNED));
        let n = node(&[&list, &tags]);
        let observed = n.observe().await.expect("observe");
        assert_eq!((observed.ownership.clone(), observed.changes.clone()), (Some(Ownership::Owned), vec![]));
        assert_eq!(
            plan_action(Intent::Absent, &observed, n.retain_on_destroy().then_some("kept")).map(|a| a.0),
            Ok(Action::NoOp)
        );
    }

    #[tokio::test]
    async fn drifted_retention_is_updated_in_place() {
        let (list, tags) = (listed(lake(30, DataLakeStatus::Completed, None)), tags(OWNED));
        let update = mock!(Client::update_data_lake)
            .match_requests(|r| {
                r.configurations().first().and_then(|c| c.lifecycle_configuration()?.expiration()?.days()) == Some(365)
            })
            .then_output(|| UpdateDataLakeOutput::builder().build());
        let n = node(&[&list, &tags, &update]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(
            observed.changes,
            vec![Change::in_place("retention", "expire 30d, transitions []", "expire 365d, transitions []")]
        );
        n.apply(Action::Update).await.expect("update");
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn settling_is_pending_and_failure_carries_the_service_reason() {
        let pending = listed(lake(365, DataLakeStatus::Pending, None));
        assert!(
            matches!(node(&[&pending]).readiness().await, Ok(Readiness::Pending { status, .. }) if status == "PENDING")
        );

        let failed_update = DataLakeUpdateStatus::builder()
            .status(DataLakeStatus::Failed)
            .exception(DataLakeUpdateException::builder().code("KMS").reason("key disabled").build())
            .build();
        let failed = listed(lake(365, DataLakeStatus::Completed, Some(failed_update)));
        let error = node(&[&failed]).readiness().await.expect_err("failed");
        assert!(error.to_string().contains("KMS: key disabled"), "{error}");
    }
}
