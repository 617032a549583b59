use std::collections::BTreeSet;

use super::table::{NO_PERMISSION, OPERATIONS};
use super::*;
use crate::aws::stats::resource;
use crate::stack::tests::stack;

/// The actions IAM grants only on `*` (see `table`), and Security Lake's account-wide dependent
/// actions. Anything else on `*` is a mistake.
const UNSCOPED: &[&str] = &[
    "athena:ListWorkGroups",
    "iam:CreateServiceLinkedRole",
    "lakeformation:GetDataAccess",
    "lakeformation:GetDataLakeSettings",
    "lakeformation:GrantPermissions",
    "lakeformation:ListPermissions",
    "lakeformation:PutDataLakeSettings",
    "lakeformation:RegisterResource",
    "lakeformation:RevokePermissions",
    "lambda:CreateEventSourceMapping",
    "lambda:ListEventSourceMappings",
    "organizations:DescribeOrganization",
    "organizations:ListDelegatedServicesForAccount",
    "ram:GetResourceShareAssociations",
    "ram:GetResourceShares",
    "ram:UpdateResourceShare",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListEndpoints",
    "sagemaker:ListModels",
    "sagemaker:ListTrainingJobs",
    "securitylake:GetDataLakeSources",
    "securitylake:ListDataLakeExceptions",
    "securitylake:ListDataLakes",
    "securitylake:ListLogSources",
    "securitylake:ListSubscribers",
];

#[test]
fn every_operation_the_code_base_calls_has_its_permissions_in_the_table() {
    let called: BTreeSet<(&str, &str)> =
        resource::OPERATIONS.iter().chain(resource::SPECIAL_OPERATIONS).copied().collect();
    let granted: BTreeSet<(&str, &str)> =
        OPERATIONS.iter().map(|e| (e.service, e.operation)).chain(NO_PERMISSION.iter().copied()).collect();
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(missing.is_empty(), "called but not in the IAM table: {missing:?}");
    assert!(unused.is_empty(), "in the IAM table but never called: {unused:?}");
}

#[test]
fn no_action_wildcard_and_no_unscoped_resource_but_the_documented_ones() {
    let policy = build(&stack(""));
    for s in &policy.statement {
        assert_eq!(s.effect, "Allow");
        for action in &s.action {
            assert!(!action.contains('*'), "{action} in {}", s.sid);
        }
        if s.resource.iter().any(|r| r == "*") {
            assert_eq!(s.resource, ["*"], "{}", s.sid);
            for action in &s.action {
                assert!(UNSCOPED.contains(&action.as_str()), "{action} is granted on * in {}", s.sid);
            }
        }
    }
    let unscoped: BTreeSet<&str> = policy
        .statement
        .iter()
        .filter(|s| s.resource == ["*"])
        .flat_map(|s| s.action.iter().map(String::as_str))
        .collect();
    assert_eq!(unscoped, UNSCOPED.iter().copied().collect(), "the documented list matches the policy");
}

#[test]
fn statements_name_the_stacks_own_resources() {
    let text = serde_json::to_string(&build(&stack(""))).expect("json");
    for arn in [
        "arn:aws:s3:::lakesight-demo-111122223333-eu-west-1/*",
        "arn:aws:iam::111122223333:role/lakesight-demo-scorer",
        "arn:aws:sqs:eu-west-1:111122223333:lakesight-demo-ipcheck-dlq",
        "arn:aws:lambda:eu-west-1:111122223333:function:lakesight-demo-ipcheck",
        "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/lakesight-demo-endpoint",
        "arn:aws:sagemaker:eu-west-1:111122223333:training-job/lakesight-demo-*",
        "arn:aws:athena:eu-west-1:111122223333:workgroup/lakesight-demo-features",
        "arn:aws:securitylake:eu-west-1:111122223333:data-lake/default",
    ] {
        assert!(text.contains(arn), "{arn} in {text}");
    }
}

#[test]
fn roles_are_passed_only_to_their_service() {
    let policy = build(&stack("  iam:\n    scorerRoleArn: arn:aws:iam::111122223333:role/theirs\n"));
    let pass: Vec<&Statement> = policy.statement.iter().filter(|s| s.action == ["iam:PassRole"]).collect();
    assert!(!pass.is_empty());
    for s in &pass {
        assert!(s.condition.as_ref().is_some_and(|c| c["StringEquals"]["iam:PassedToService"].is_array()), "{s:?}");
        assert!(!s.resource.iter().any(|r| r.contains('*')), "{s:?}");
    }
    let scorer = pass.iter().find(|s| s.sid == "PassRoleScorer").expect("scorer");
    assert_eq!(scorer.resource, ["arn:aws:iam::111122223333:role/theirs"], "a given role is the one passed");
}
