//! The least-privilege IAM policy a CI principal needs to run `apply`, `destroy` and `retrain` of
//! one stack (and the read-only commands: `plan`, `status`, `sql`, `history`, `score`), built from
//! [`table`]: each operation lakesight calls, its actions and the stack's resources it acts on.
//!
//! Statements name the stack's deterministic names and ARNs, for every section the manifest could
//! declare and not only those it does: `plan` and `destroy` also read, and remove, what a section
//! dropped from the manifest left behind under the stack's names. `"Resource": "*"` appears only for
//! the actions AWS does not let a policy scope (listed in [`table`]'s documentation) and for the
//! dependent actions of Security Lake's calls whose resources Security Lake names and creates
//! itself on the caller's behalf.

pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stack::{RoleKind, Stack};
use table::{DEPENDENT, OPERATIONS, PASSED, Scope};

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: String,
    pub effect: &'static str,
    pub action: Vec<String>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

/// The policy for `stack`: one statement per scope, its actions sorted and unique, and one
/// `iam:PassRole` statement per role the stack hands to a service.
pub fn build(stack: &Stack) -> Policy {
    let mut by_scope: BTreeMap<Scope, Vec<&str>> = BTreeMap::new();
    for entry in OPERATIONS {
        for scope in entry.scopes {
            by_scope.entry(*scope).or_default().extend(entry.actions);
        }
    }
    for dependent in DEPENDENT {
        by_scope.entry(dependent.scope).or_default().extend(dependent.actions);
    }
    let mut statement = Vec::new();
    for (scope, mut actions) in by_scope {
        let resource = resources(stack, scope);
        actions.sort_unstable();
        actions.dedup();
        statement.push(Statement {
            sid: format!("{scope:?}"),
            effect: "Allow",
            action: actions.into_iter().map(str::to_owned).collect(),
            resource,
            condition: None,
        });
    }
    statement.extend(kms_statement(stack));
    statement.extend(pass_role_statements(stack));
    Policy { version: "2012-10-17", statement }
}

/// Reading and writing the artifact bucket's objects under a customer-managed key.
fn kms_statement(stack: &Stack) -> Option<Statement> {
    let key = stack.manifest.spec.artifact_bucket.kms_key_arn.clone()?;
    Some(Statement {
        sid: "ArtifactBucketKey".into(),
        effect: "Allow",
        action: vec!["kms:Decrypt".into(), "kms:GenerateDataKey".into()],
        resource: vec![key],
        condition: None,
    })
}

fn pass_role_statements(stack: &Stack) -> Vec<Statement> {
    let mut statements = Vec::new();
    for passed in PASSED {
        statements.push(Statement {
            sid: format!("PassRole{:?}", passed.role),
            effect: "Allow",
            action: vec!["iam:PassRole".into()],
            resource: vec![stack.role_arn(passed.role)],
            condition: Some(serde_json::json!({"StringEquals": {"iam:PassedToService": passed.services}})),
        });
    }
    let lake = stack.manifest.spec.security_lake.as_ref();
    if let Some(role) = lake.and_then(|l| l.replication.as_ref()?.role_arn.clone()) {
        statements.push(Statement {
            sid: "PassRoleReplication".into(),
            effect: "Allow",
            action: vec!["iam:PassRole".into()],
            resource: vec![role],
            condition: Some(serde_json::json!({"StringEquals": {"iam:PassedToService": ["s3.amazonaws.com"]}})),
        });
    }
    statements
}

fn resources(stack: &Stack, scope: Scope) -> Vec<String> {
    let p = &stack.env.partition;
    let account = &stack.env.account;
    let prefix = stack.resource_name("");
    let sagemaker = |kind: &str| vec![stack.arn("sagemaker", &format!("{kind}/{prefix}*"))];
    let mut regions = stack.lake_regions();
    if !regions.contains(&stack.env.region) {
        regions.push(stack.env.region.clone());
    }
    let in_regions = |service: &str, resource: &str| -> Vec<String> {
        regions.iter().map(|r| format!("arn:{p}:{service}:{r}:{account}:{resource}")).collect()
    };
    match scope {
        Scope::ArtifactBucket => vec![stack.artifact_bucket_arn()],
        Scope::ArtifactObjects => vec![format!("{}/*", stack.artifact_bucket_arn())],
        Scope::StackRoles => RoleKind::ALL
            .iter()
            .map(|r| format!("arn:{p}:iam::{account}:role/{}", stack.resource_name(r.suffix())))
            .collect(),
        Scope::StackQueues => {
            vec![stack.arn("sqs", &stack.dead_letter_queue_name()), stack.arn("sqs", &stack.findings_queue_name())]
        }
        Scope::ScorerFunction => vec![stack.arn("lambda", &format!("function:{}", stack.scorer_function_name()))],
        Scope::EventSourceMappings => vec![stack.arn("lambda", "event-source-mapping:*")],
        Scope::TrainingJobs => sagemaker("training-job"),
        Scope::Models => sagemaker("model"),
        Scope::EndpointConfigs => sagemaker("endpoint-config"),
        Scope::Endpoint => vec![stack.arn("sagemaker", &format!("endpoint/{}", stack.endpoint_name()))],
        Scope::Workgroup => vec![stack.arn("athena", &format!("workgroup/{}", stack.resource_name("features")))],
        Scope::DataLake => in_regions("securitylake", "data-lake/default"),
        Scope::Subscribers => vec![stack.arn("securitylake", "subscriber/*")],
        Scope::LakeTables => {
            let mut arns = in_regions("glue", "catalog");
            for region in &regions {
                let database = crate::aws::securitylake::glue_database(region);
                arns.push(format!("arn:{p}:glue:{region}:{account}:database/{database}"));
                arns.push(format!("arn:{p}:glue:{region}:{account}:table/{database}/*"));
            }
            arns
        }
        Scope::SecurityLakeOwned => {
            let mut arns = vec![format!("arn:{p}:s3:::aws-security-data-lake-*")];
            arns.extend(in_regions("sqs", "AmazonSecurityLake-*"));
            arns.extend(in_regions("lambda", "function:SecurityLake_*"));
            arns.extend(in_regions("events", "rule/AmazonSecurityLake*"));
            arns.extend(in_regions("events", "api-destination/AmazonSecurityLake*"));
            arns.extend(in_regions("events", "connection/AmazonSecurityLake*"));
            arns.push(format!("arn:{p}:iam::{account}:role/AmazonSecurityLake*"));
            arns
        }
        Scope::Any => vec!["*".into()],
    }
}

#[cfg(test)]
mod tests;
