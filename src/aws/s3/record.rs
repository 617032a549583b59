//! The record of what the stack manages that cannot carry an owner tag: the log sources and the
//! Lake Formation grants its manifest named, kept as `stack/untaggable.json` in the artifact
//! bucket. A later manifest that drops one of them is planned against this record, so that the
//! stack removes what it no longer declares, and never what it never made.
//!
//! The record is written once its sources and grants have converged, and removed first on
//! destroy, so it names every one of them that the stack may have made.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::{read_json, write_json};
use crate::aws::error::service_error;
use crate::engine::{Change, Ownership};
use crate::manifest::LogSource;
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::Stack;

pub const ADDRESS: &str = "s3.object/untaggable";
const KEY: &str = "stack/untaggable.json";

/// One Lake Formation grant: the region's database, for a principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub region: String,
    pub principal: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Untaggable {
    /// Each with the accounts and regions it covers spelled out.
    #[serde(default)]
    pub log_sources: Vec<LogSource>,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl Untaggable {
    /// What the manifest declares now.
    pub fn declared(stack: &Stack) -> Untaggable {
        let Some(lake) = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage || l.query_access.is_some())
        else {
            return Untaggable::default();
        };
        let log_sources = if lake.manage {
            lake.sources
                .iter()
                .map(|s| LogSource {
                    name: s.name,
                    version: s.version.clone(),
                    accounts: if s.accounts.is_empty() { stack.lake_accounts() } else { s.accounts.clone() },
                    regions: if s.regions.is_empty() { stack.lake_regions() } else { s.regions.clone() },
                })
                .collect()
        } else {
            Vec::new()
        };
        let grants = match &lake.query_access {
            Some(_) => stack
                .lake_regions()
                .into_iter()
                .map(|region| Grant { region, principal: stack.query_principal() })
                .collect(),
            None => Vec::new(),
        };
        Untaggable { log_sources, grants }
    }

    /// What `recorded` names that this declaration does not.
    pub fn dropped(&self, recorded: &Untaggable) -> Untaggable {
        Untaggable {
            log_sources: recorded
                .log_sources
                .iter()
                .filter(|r| !self.log_sources.iter().any(|d| d.name == r.name))
                .cloned()
                .collect(),
            grants: recorded
                .grants
                .iter()
                .filter(|r| !self.grants.iter().any(|d| d.region == r.region))
                .cloned()
                .collect(),
        }
    }
}

/// Reads the record; `None` before the stack has written one.
pub async fn read(client: &Client, bucket: &str) -> Result<Option<Untaggable>, ResourceError> {
    read_json(client, bucket, KEY).await
}

pub struct Record {
    identity: Identity,
    client: Client,
    bucket: String,
    declared: Untaggable,
}

impl Record {
    /// `after`: the artifact bucket, and every log source and grant node, declared or dropped.
    pub fn new(stack: &Stack, client: Client, after: Vec<String>) -> Self {
        let bucket = stack.artifact_bucket();
        let mut identity = Identity::new(stack, ADDRESS, format!("s3://{bucket}/{KEY}"));
        identity.depends_on = after;
        Record { identity, client, bucket, declared: Untaggable::declared(stack) }
    }

    async fn put(&self) -> Result<(), ResourceError> {
        write_json(&self.client, &self.bucket, KEY, &self.declared).await
    }
}

fn names(u: &Untaggable) -> String {
    let sources = u.log_sources.iter().map(|s| format!("{}@{}", s.name.as_str(), s.version));
    let grants = u.grants.iter().map(|g| format!("grant/{}", g.region));
    sources.chain(grants).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl Resource for Record {
    type Observed = Untaggable;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Untaggable>, ResourceError> {
        read(&self.client, &self.bucket).await
    }

    /// It lives in the stack's own bucket.
    fn owner(&self, _observed: &Untaggable) -> Ownership {
        Ownership::Untaggable
    }

    fn diff(&self, observed: &Untaggable) -> Vec<Change> {
        if *observed == self.declared {
            return Vec::new();
        }
        vec![Change::in_place("untaggable", names(observed), names(&self.declared))]
    }

    fn id(&self, _observed: &Untaggable) -> String {
        format!("s3://{}/{KEY}", self.bucket)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        self.put().await
    }

    async fn update(&self, _observed: &Untaggable, _changes: &[Change]) -> Result<(), ResourceError> {
        self.put().await
    }

    async fn delete(&self, _observed: &Untaggable) -> Result<(), ResourceError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(KEY)
            .send()
            .await
            .map_err(|e| service_error("DeleteObject", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SourceName;
    use crate::stack::tests::stack;

    #[test]
    fn a_source_or_grant_the_manifest_no_longer_names_is_dropped() {
        let s = stack("  securityLake:\n    sources:\n      - name: VPC_FLOW\n    queryAccess: {}\n");
        let declared = Untaggable::declared(&s);
        assert_eq!(declared.log_sources.len(), 1);
        assert_eq!(declared.log_sources[0].regions, ["eu-west-1"], "defaults are spelled out");
        let mut recorded = declared.clone();
        recorded.log_sources.push(LogSource {
            name: SourceName::Route53,
            version: "2.0".into(),
            accounts: vec!["111122223333".into()],
            regions: vec!["eu-west-1".into()],
        });
        recorded.grants.push(Grant { region: "us-east-1".into(), principal: "arn:aws:iam::1:role/x".into() });
        let dropped = declared.dropped(&recorded);
        assert_eq!(dropped.log_sources.iter().map(|s| s.name).collect::<Vec<_>>(), [SourceName::Route53]);
        assert_eq!(dropped.grants.iter().map(|g| g.region.as_str()).collect::<Vec<_>>(), ["us-east-1"]);
        assert_eq!(declared.dropped(&declared), Untaggable::default());
    }
}
