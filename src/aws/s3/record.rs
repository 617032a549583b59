//! The record of what the stack manages that neither an owner tag nor a name of the stack's can
//! find: the log sources and the Lake Formation grants its manifest named, which cannot carry a
//! tag, and the regions of its data lakes, which carry one but are found only by region. It is
//! kept as `stacks/<stack>/untaggable.json` in the artifact bucket. A later manifest that drops
//! one of them is planned against this record, so that the stack removes what it no longer
//! declares, and never what it never made.
//!
//! The record is written once its sources and grants have converged, so that a dropped entry
//! leaves it only after its removal. An apply interrupted between enabling a new source and
//! writing the record leaves that source unrecorded until the next apply that declares it; a
//! manifest that drops it before then leaves it enabled. Destroy removes the record with the
//! stack: what destroy keeps (a retained lake's sources) is declared by the manifest it uses.
//! With `manage: false`, or without a `securityLake` section, the stack releases the sources it
//! enabled and its data lakes: they leave the record and stay as they are. A region dropped from
//! a lake the stack still manages is removed by the lake's deletion policy: kept (and released)
//! under `Retain`, deleted under `Delete`.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::{read_json, write_json};
use crate::engine::{Change, Ownership};
use crate::manifest::{DeletionPolicy, LogSource};
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::Stack;

pub const ADDRESS: &str = "s3.object/untaggable";
/// The record's key, per stack, in case several stacks share one artifact bucket.
fn key(stack: &str) -> String {
    format!("stacks/{stack}/untaggable.json")
}

/// One Lake Formation grant: the region's database, for a principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub region: String,
    pub principal: String,
}

/// One region's data lake, and whether its deletion policy keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lake {
    pub region: String,
    pub retain: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Untaggable {
    /// Each with the accounts and regions it covers spelled out.
    #[serde(default)]
    pub log_sources: Vec<LogSource>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Absent from records written before lakes were recorded: read as none, and written on
    /// the next apply.
    #[serde(default)]
    pub lakes: Vec<Lake>,
}

impl Untaggable {
    /// What the manifest declares now.
    pub fn declared(stack: &Stack) -> Untaggable {
        let Some(lake) = stack.manifest.spec.security_lake.as_ref().filter(|l| l.manage || l.query_access.is_some())
        else {
            return Untaggable::default();
        };
        let mut log_sources: Vec<LogSource> = if lake.manage {
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
        let mut grants = match &lake.query_access {
            Some(_) => stack
                .lake_regions()
                .into_iter()
                .map(|region| Grant { region, principal: stack.query_principal() })
                .collect(),
            None => Vec::new(),
        };
        let mut lakes: Vec<Lake> = if lake.manage {
            let retain = lake.deletion_policy == DeletionPolicy::Retain;
            stack.lake_regions().into_iter().map(|region| Lake { region, retain }).collect()
        } else {
            Vec::new()
        };
        // Compared with the record: the manifest's order is not a change.
        log_sources.sort_by_key(|s| s.name);
        grants.sort();
        lakes.sort();
        Untaggable { log_sources, grants, lakes }
    }

    /// What `recorded` names that this declaration does not. A grant is the same grant only for
    /// the same principal: a grant to a principal no longer named is dropped.
    pub fn dropped(&self, recorded: &Untaggable) -> Untaggable {
        Untaggable {
            log_sources: recorded
                .log_sources
                .iter()
                .filter(|r| !self.log_sources.iter().any(|d| d.name == r.name))
                .cloned()
                .collect(),
            grants: recorded.grants.iter().filter(|r| !self.grants.contains(r)).cloned().collect(),
            lakes: recorded
                .lakes
                .iter()
                .filter(|r| !self.lakes.iter().any(|d| d.region == r.region))
                .cloned()
                .collect(),
        }
    }
}

/// Reads the record; `None` before the stack has written one.
pub async fn read(client: &Client, bucket: &str, stack: &str) -> Result<Option<Untaggable>, ResourceError> {
    read_json(client, bucket, &key(stack)).await
}

pub struct Record {
    identity: Identity,
    client: Client,
    bucket: String,
    key: String,
    declared: Untaggable,
}

impl Record {
    /// `after`: the artifact bucket, and every log source and grant node, declared or dropped.
    pub fn new(stack: &Stack, client: Client, after: Vec<String>) -> Self {
        let (bucket, key) = (stack.artifact_bucket(), key(stack.name()));
        let mut identity = Identity::new(stack, ADDRESS, format!("s3://{bucket}/{key}"));
        identity.depends_on = after;
        Record { identity, client, bucket, key, declared: Untaggable::declared(stack) }
    }

    async fn put(&self) -> Result<(), ResourceError> {
        write_json(&self.client, &self.bucket, &self.key, &self.declared).await
    }
}

fn names(u: &Untaggable) -> String {
    let sources = u.log_sources.iter().map(|s| format!("{}@{}", s.name.as_str(), s.version));
    let grants = u.grants.iter().map(|g| format!("grant/{}", g.region));
    let lakes = u.lakes.iter().map(|l| format!("lake/{} ({})", l.region, if l.retain { "Retain" } else { "Delete" }));
    sources.chain(grants).chain(lakes).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl Resource for Record {
    type Observed = Untaggable;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Untaggable>, ResourceError> {
        read_json(&self.client, &self.bucket, &self.key).await
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
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        self.put().await
    }

    async fn update(&self, _observed: &Untaggable, _changes: &[Change]) -> Result<(), ResourceError> {
        self.put().await
    }

    async fn delete(&self, _observed: &Untaggable) -> Result<(), ResourceError> {
        super::delete_json(&self.client, &self.bucket, &self.key).await
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
        recorded.grants.push(Grant { region: "eu-west-1".into(), principal: "arn:aws:iam::1:role/before".into() });
        let dropped = declared.dropped(&recorded);
        assert_eq!(dropped.log_sources.iter().map(|s| s.name).collect::<Vec<_>>(), [SourceName::Route53]);
        let regions: Vec<&str> = dropped.grants.iter().map(|g| g.region.as_str()).collect();
        assert_eq!(regions, ["us-east-1", "eu-west-1"], "another region, and another principal in the same region");
        assert_eq!(declared.dropped(&declared), Untaggable::default());
    }

    #[test]
    fn a_lake_region_the_manifest_no_longer_names_is_dropped_with_its_policy() {
        let s = stack("  securityLake:\n    regions: [eu-west-1]\n    deletionPolicy: Delete\n");
        let declared = Untaggable::declared(&s);
        assert_eq!(declared.lakes, [Lake { region: "eu-west-1".into(), retain: false }]);
        let mut recorded = declared.clone();
        recorded.lakes.push(Lake { region: "us-east-1".into(), retain: true });
        let dropped = declared.dropped(&recorded);
        assert_eq!(dropped.lakes, [Lake { region: "us-east-1".into(), retain: true }]);
        let mut switched = declared.clone();
        switched.lakes[0].retain = true;
        assert!(declared.dropped(&switched).lakes.is_empty(), "a changed policy is not a dropped region");
        assert_ne!(names(&declared), names(&switched), "the record's change shows the policy");
        let released = stack("  securityLake:\n    manage: false\n");
        assert!(Untaggable::declared(&released).lakes.is_empty(), "a lake the stack does not manage is not recorded");
    }

    #[test]
    fn a_record_written_before_lakes_were_recorded_reads_as_no_lakes() {
        let old: Untaggable = serde_json::from_str(r#"{"logSources":[],"grants":[]}"#).expect("parses");
        assert!(old.lakes.is_empty());
    }
}
