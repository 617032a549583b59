//! Query access to one region's Security Lake database: DESCRIBE on the database and SELECT and
//! DESCRIBE on all its tables, for the principal that runs the feature queries. Grants carry no
//! tags; the stack manages the ones its manifest asks for (`securityLake.queryAccess`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_lakeformation::Client;
use aws_sdk_lakeformation::types::{
    DataLakePrincipal, DatabaseResource, Permission, Resource as LfResource, TableResource, TableWildcard,
};

use crate::aws::error::service_error;
use crate::aws::securitylake::glue_database;
use crate::engine::{Change, Ownership};
use crate::resource::{Identity, Resource, ResourceError};
use crate::stack::Stack;

/// Permissions on the database, then on its tables.
const DATABASE: &[Permission] = &[Permission::Describe];
const TABLES: &[Permission] = &[Permission::Describe, Permission::Select];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub database: BTreeSet<String>,
    pub tables: BTreeSet<String>,
}

pub struct Grant {
    identity: Identity,
    client: Client,
    principal: String,
    database: String,
    /// The manifest still asks for it.
    declared: bool,
}

/// The grant of the manifest's query principal in `region`.
pub fn address(region: &str) -> String {
    format!("lakeformation.grant/{region}")
}

fn names(permissions: &[Permission]) -> BTreeSet<String> {
    permissions.iter().map(|p| p.as_str().to_owned()).collect()
}

impl Grant {
    pub fn new(stack: &Stack, region: &str, client: Client) -> Self {
        let database = glue_database(region);
        Grant {
            identity: Identity::new(stack, address(region), format!("query access to {database}")),
            client,
            principal: stack.query_principal(),
            database,
            declared: true,
        }
    }

    /// A grant the stack made, as its record names it, that the manifest no longer asks for. Its
    /// address names the principal, which may be the one a declared grant of the region replaced.
    pub fn dropped(stack: &Stack, region: &str, principal: &str, client: Client) -> Self {
        let mut grant = Grant { principal: principal.to_owned(), declared: false, ..Grant::new(stack, region, client) };
        grant.identity.address = format!("{}/{principal}", address(region));
        grant
    }

    fn principal(&self) -> DataLakePrincipal {
        DataLakePrincipal::builder().data_lake_principal_identifier(&self.principal).build()
    }

    fn database_resource(&self) -> Result<LfResource, ResourceError> {
        let database = DatabaseResource::builder().name(&self.database).build().map_err(invalid)?;
        Ok(LfResource::builder().database(database).build())
    }

    fn tables_resource(&self) -> Result<LfResource, ResourceError> {
        let tables = TableResource::builder()
            .database_name(&self.database)
            .table_wildcard(TableWildcard::builder().build())
            .build()
            .map_err(invalid)?;
        Ok(LfResource::builder().table(tables).build())
    }

    async fn permissions_on(&self, resource: LfResource) -> Result<BTreeSet<String>, ResourceError> {
        let mut found = BTreeSet::new();
        let mut pages =
            self.client.list_permissions().principal(self.principal()).resource(resource).into_paginator().send();
        while let Some(page) = pages.next().await {
            for entry in page.map_err(|e| service_error("ListPermissions", e))?.principal_resource_permissions() {
                found.extend(names(entry.permissions()));
            }
        }
        Ok(found)
    }

    async fn grant(&self, resource: LfResource, permissions: &[Permission]) -> Result<(), ResourceError> {
        self.client
            .grant_permissions()
            .principal(self.principal())
            .resource(resource)
            .set_permissions(Some(permissions.to_vec()))
            .send()
            .await
            .map_err(|e| service_error("GrantPermissions", e))?;
        Ok(())
    }

    async fn revoke(&self, resource: LfResource, held: &BTreeSet<String>) -> Result<(), ResourceError> {
        if held.is_empty() {
            return Ok(());
        }
        self.client
            .revoke_permissions()
            .principal(self.principal())
            .resource(resource)
            .set_permissions(Some(held.iter().map(|p| Permission::from(p.as_str())).collect()))
            .send()
            .await
            .map_err(|e| service_error("RevokePermissions", e))?;
        Ok(())
    }
}

fn invalid(e: impl std::fmt::Display) -> ResourceError {
    ResourceError::Invalid(e.to_string())
}

fn render(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "none".into() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") }
}

#[async_trait]
impl Resource for Grant {
    fn declared(&self) -> bool {
        self.declared
    }

    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let observed = Observed {
            database: self.permissions_on(self.database_resource()?).await?,
            tables: self.permissions_on(self.tables_resource()?).await?,
        };
        Ok((!observed.database.is_empty() || !observed.tables.is_empty()).then_some(observed))
    }

    fn owner(&self, _observed: &Observed) -> Ownership {
        Ownership::Untaggable
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let mut changes = Vec::new();
        for (field, want, have) in [("database", DATABASE, &observed.database), ("tables", TABLES, &observed.tables)] {
            let want = names(want);
            if !want.is_subset(have) {
                changes.push(Change::in_place(field, render(have), render(&want)));
            }
        }
        changes
    }

    fn id(&self, _observed: &Observed) -> String {
        format!("{} on {}", self.principal, self.database)
    }

    async fn create(&self) -> Result<(), ResourceError> {
        self.grant(self.database_resource()?, DATABASE).await?;
        self.grant(self.tables_resource()?, TABLES).await
    }

    async fn update(&self, _observed: &Observed, _changes: &[Change]) -> Result<(), ResourceError> {
        // Granting what is already held is accepted, so an update grants everything again.
        self.create().await
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        self.revoke(self.tables_resource()?, &observed.tables).await?;
        self.revoke(self.database_resource()?, &observed.database).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lakeformation::operation::grant_permissions::GrantPermissionsOutput;
    use aws_sdk_lakeformation::operation::list_permissions::ListPermissionsOutput;
    use aws_sdk_lakeformation::operation::revoke_permissions::RevokePermissionsOutput;
    use aws_sdk_lakeformation::types::PrincipalResourcePermissions;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::Action;
    use crate::engine::Node;
    use crate::resource::Managed;
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const DB: &str = "amazon_security_lake_glue_db_eu_west_1";

    fn node(rules: &[&Rule]) -> Managed<Grant> {
        Managed::new(Grant::new(
            &stack("  securityLake:\n    queryAccess: {}\n"),
            "eu-west-1",
            mocked_client!(aws_sdk_lakeformation, rules),
        ))
    }

    /// ListPermissions answering `database` for the database and `tables` for the table wildcard.
    fn held(database: &'static [Permission], tables: &'static [Permission]) -> Rule {
        mock!(Client::list_permissions).then_compute_output(move |input| {
            let on_tables = input.resource().is_some_and(|r| r.table().is_some());
            let permissions = if on_tables { tables } else { database };
            let entry = PrincipalResourcePermissions::builder().set_permissions(Some(permissions.to_vec())).build();
            ListPermissionsOutput::builder().principal_resource_permissions(entry).build()
        })
    }

    #[tokio::test]
    async fn missing_access_is_granted_to_the_callers_role() {
        let list = held(&[], &[]);
        let grant = mock!(Client::grant_permissions)
            .match_requests(|r| {
                r.principal().and_then(|p| p.data_lake_principal_identifier())
                    == Some("arn:aws:iam::111122223333:role/Deployer")
            })
            .then_output(|| GrantPermissionsOutput::builder().build());
        let n = node(&[&list, &grant]);
        created_as_planned(&n).await;
        assert_eq!(grant.num_calls(), 2, "database, then tables");
    }

    #[tokio::test]
    async fn held_access_is_a_noop_and_missing_select_is_drift() {
        let list = held(DATABASE, TABLES);
        let observed = node(&[&list]).observe().await.expect("observe");
        assert_eq!((observed.ownership, observed.changes), (Some(Ownership::Untaggable), vec![]));

        let list = held(DATABASE, &[Permission::Describe]);
        let observed = node(&[&list]).observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("tables", "DESCRIBE", "DESCRIBE, SELECT")]);
        assert!(observed.id.is_some_and(|id| id.ends_with(DB)));
    }

    #[tokio::test]
    async fn destroy_revokes_what_is_held() {
        let list = held(DATABASE, TABLES);
        let revoke = mock!(Client::revoke_permissions).then_output(|| RevokePermissionsOutput::builder().build());
        let n = node(&[&list, &revoke]);
        n.observe().await.expect("observe");
        n.apply(Action::Delete).await.expect("revoke");
        assert_eq!(revoke.num_calls(), 2);
    }
}
