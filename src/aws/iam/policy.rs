//! Least-privilege policy documents for the stack's roles. Every statement names its resources;
//! the few actions AWS only grants on `*` (such as `cloudwatch:PutMetricData`) are narrowed by a condition.

use serde_json::{Value, json};

use crate::stack::{RoleKind, Stack};

/// The AWS-managed policy Security Lake requires on its metastore manager role, under
/// `service-role/` (the Security Lake user guide's page on AWS managed policies).
pub const META_STORE_MANAGER_POLICY: &str = "AmazonSecurityLakeMetastoreManager";

/// The service that assumes each role.
pub fn trust_policy(role: RoleKind) -> Value {
    let service = match role {
        RoleKind::SageMakerExecution => "sagemaker.amazonaws.com",
        RoleKind::Scorer | RoleKind::MetaStoreManager => "lambda.amazonaws.com",
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// AWS-managed policies attached to each role.
pub fn managed_policies(stack: &Stack, role: RoleKind) -> Vec<String> {
    match role {
        RoleKind::MetaStoreManager => {
            vec![format!("arn:{}:iam::aws:policy/service-role/{META_STORE_MANAGER_POLICY}", stack.env.partition)]
        }
        RoleKind::SageMakerExecution | RoleKind::Scorer => Vec::new(),
    }
}

/// The inline policy for each role, or `None` when the managed policies already cover it.
pub fn inline_policy(stack: &Stack, role: RoleKind) -> Option<Value> {
    let statements = match role {
        RoleKind::SageMakerExecution => sagemaker_statements(stack),
        RoleKind::Scorer => scorer_statements(stack),
        RoleKind::MetaStoreManager => {
            kms_statements(stack.manifest.spec.security_lake.as_ref().and_then(|l| l.kms_key_id.as_deref()))
        }
    };
    (!statements.is_empty()).then(|| json!({"Version": "2012-10-17", "Statement": statements}))
}

fn sagemaker_statements(stack: &Stack) -> Vec<Value> {
    let bucket = stack.artifact_bucket_arn();
    let mut statements = vec![
        json!({
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket
        }),
        json!({
            "Sid": "ArtifactObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": format!("{bucket}/*")
        }),
        json!({
            "Sid": "TrainingLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": stack.arn("logs", "log-group:/aws/sagemaker/*")
        }),
        json!({
            "Sid": "TrainingMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
        }),
    ];
    statements.extend(kms_statements(stack.manifest.spec.artifact_bucket.kms_key_arn.as_deref()));
    statements
}

fn scorer_statements(stack: &Stack) -> Vec<Value> {
    let function = stack.scorer_function_name();
    let log_group = stack.arn("logs", &format!("log-group:/aws/lambda/{function}"));
    let mut statements = vec![
        json!({
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup"],
            "Resource": log_group
        }),
        json!({
            "Sid": "OwnLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": format!("{log_group}:*")
        }),
        json!({
            "Sid": "ScoreOnStackEndpoint",
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": stack.arn("sagemaker", &format!("endpoint/{}", stack.endpoint_name()))
        }),
    ];
    let scorer = stack.manifest.spec.scorer.as_ref();
    let mut queues = Vec::new();
    if scorer.is_none_or(|s| s.dead_letter_queue) {
        queues.push(stack.arn("sqs", &stack.dead_letter_queue_name()));
    }
    if scorer.is_some_and(|s| s.findings.queue) {
        queues.push(stack.arn("sqs", &stack.findings_queue_name()));
    }
    if !queues.is_empty() {
        statements.push(json!({
            "Sid": "OwnQueues",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": queues
        }));
    }
    statements
}

/// Use of a customer-managed key, when the manifest names one by ARN.
fn kms_statements(key: Option<&str>) -> Vec<Value> {
    match key {
        Some(arn) if arn.starts_with("arn:") => vec![json!({
            "Sid": "DataKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": arn
        })],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::stack::tests::stack;

    /// Every statement must name a resource other than `*`, unless its actions are specific and conditioned.
    fn assert_least_privilege(doc: &Value) {
        for statement in doc["Statement"].as_array().into_iter().flatten() {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                other => panic!("unexpected Action {other}"),
            };
            assert!(actions.iter().all(|a| !a.contains('*')), "wildcard action in {statement}");
            if statement["Resource"] == json!("*") {
                assert!(statement["Condition"].is_object(), "unconditioned * resource in {statement}");
            }
        }
    }

    #[test]
    fn every_role_policy_is_least_privilege() {
        let s = stack(&format!(
            "  artifactBucket:\n    kmsKeyArn: arn:aws:kms:eu-west-1:111122223333:key/abc\n{}  endpoint: {{}}\n  scorer:\n    package: ipcheck.zip\n    findings:\n      queue: true\n",
            crate::aws::securitylake::test_rules::LAKE
        ));
        for role in RoleKind::ALL {
            if let Some(doc) = inline_policy(&s, role) {
                assert_least_privilege(&doc);
            }
        }
        assert_least_privilege(&super::super::lake_access::document(
            "arn:aws:s3:::aws-security-data-lake-eu-west-1-abc",
            "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-1234-Main-Queue",
        ));
    }

    #[test]
    fn scorer_may_invoke_only_the_stack_endpoint() {
        let doc = inline_policy(&stack(""), RoleKind::Scorer).expect("scorer policy");
        let invoke = doc["Statement"]
            .as_array()
            .and_then(|s| s.iter().find(|st| st["Action"] == json!("sagemaker:InvokeEndpoint")))
            .expect("invoke statement");
        assert_eq!(
            invoke["Resource"],
            json!("arn:aws:sagemaker:eu-west-1:111122223333:endpoint/lakesight-demo-endpoint")
        );
        let text = doc.to_string();
        assert!(text.contains("lakesight-demo-ipcheck-dlq"), "dead-letter queue is on by default");
        assert!(!text.contains("findings"), "no findings queue unless asked");
    }

    /// `(action, resource)` for every action a policy document allows.
    fn grants(doc: &Value) -> BTreeSet<(String, String)> {
        let strings = |v: &Value| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let mut grants = BTreeSet::new();
        for statement in doc["Statement"].as_array().into_iter().flatten() {
            for action in strings(&statement["Action"]) {
                grants.extend(strings(&statement["Resource"]).into_iter().map(|r| (action.clone(), r)));
            }
        }
        grants
    }

    #[test]
    fn the_scorer_role_allows_exactly_the_calls_the_scorer_sends() {
        let s = stack(&format!(
            "{}  endpoint: {{}}\n  scorer:\n    package: ipcheck.zip\n    findings:\n      queue: true\n",
            crate::aws::securitylake::test_rules::LAKE
        ));
        let bucket = "arn:aws:s3:::aws-security-data-lake-eu-west-1-abc";
        let trigger = "arn:aws:sqs:eu-west-1:111122223333:AmazonSecurityLake-1234-Main-Queue";
        let mut granted = grants(&inline_policy(&s, RoleKind::Scorer).expect("scorer policy"));
        granted.extend(grants(&super::super::lake_access::document(bucket, trigger)));
        let actions: BTreeSet<&str> = granted.iter().map(|(a, _)| a.as_str()).collect();

        // What Lambda itself does with the role: write the function's logs and poll its trigger.
        let lambda = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"].into_iter().chain([
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        ]);
        let scorer: BTreeSet<&str> = crate::scorer::AWS_CALLS.iter().map(|c| c.action).collect();
        let expected: BTreeSet<&str> = scorer.iter().copied().chain(lambda).collect();
        assert_eq!(actions, expected, "the role allows what the scorer and Lambda call, and no more");

        let on = |action: &str, resource: String| {
            assert!(granted.contains(&(action.to_owned(), resource.clone())), "{action} on {resource}: {granted:?}");
        };
        on("s3:GetObject", format!("{bucket}/*"));
        on("sagemaker:InvokeEndpoint", s.arn("sagemaker", &format!("endpoint/{}", s.endpoint_name())));
        for queue in [s.findings_queue_name(), s.dead_letter_queue_name()] {
            on("sqs:SendMessage", s.arn("sqs", &queue));
        }
        assert!(!actions.contains("sqs:GetQueueUrl"), "the scorer has the queue URLs in its environment");
    }

    #[test]
    fn sagemaker_role_is_scoped_to_the_artifact_bucket_and_key() {
        let s = stack("  artifactBucket:\n    kmsKeyArn: arn:aws:kms:eu-west-1:111122223333:key/abc\n");
        let text = inline_policy(&s, RoleKind::SageMakerExecution).expect("policy").to_string();
        assert!(text.contains("arn:aws:s3:::lakesight-demo-111122223333-eu-west-1/*"));
        assert!(text.contains("arn:aws:kms:eu-west-1:111122223333:key/abc"));
    }

    #[test]
    fn metastore_role_uses_the_managed_policy() {
        let s = stack("");
        assert_eq!(
            managed_policies(&s, RoleKind::MetaStoreManager),
            ["arn:aws:iam::aws:policy/service-role/AmazonSecurityLakeMetastoreManager"]
        );
        assert!(inline_policy(&s, RoleKind::MetaStoreManager).is_none());
        assert_eq!(
            trust_policy(RoleKind::SageMakerExecution)["Statement"][0]["Principal"]["Service"],
            "sagemaker.amazonaws.com"
        );
    }
}
