//! The policy `lakesight iam-policy` prints is sufficient: every call a real run of the stack's
//! life makes (apply on a new account, apply once the lake has data, which trains and deploys,
//! retrain, calibrate and destroy), as `--stats-json` records it, is allowed by the policy on the
//! resource it named.
//!
//! The check is independent of the policy's own table: each call's IAM action comes from its
//! operation name (with the few renames S3 documents), and its resource ARN from the request's
//! fields (bucket and key, role name, queue URL, ...), built the way AWS documents each ARN.
//! A request that names no resource (the `List*` calls, a query execution by its id, Lake
//! Formation grants) is only checked for its action.

mod support;

use std::path::Path;

use lakesight::synthetic::{OcsfVersion, Part};
use serde_json::Value;
use support::{EMPTY_ZIP, Emulator, repo};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// The quickstart, with Lake Formation query access, so that every resource kind takes part.
fn stack(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("manifests/quickstart.yaml")).expect("quickstart");
    let text = text.replace("../target/lambda/ipcheck-x86_64.zip", "ipcheck.zip");
    let text = text.replacen("  securityLake:\n", "  securityLake:\n    queryAccess: {}\n", 1);
    std::fs::write(dir.join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    let file = dir.join("stack.yaml");
    std::fs::write(&file, text).expect("manifest");
    file
}

#[tokio::test]
async fn the_iam_policy_allows_every_call_that_apply_and_destroy_make() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = stack(dir.path());
    let mut calls = Vec::new();
    let mut step = |args: &[&str], n: usize| {
        let dump = dir.path().join(format!("calls-{n}.json"));
        let mut args = args.to_vec();
        let path = dump.to_str().expect("utf-8 path").to_owned();
        args.extend(["--stats-json", path.as_str()]);
        emu.run(&args, &file).expect_code(0);
        let dump: Value = serde_json::from_str(&std::fs::read_to_string(&dump).expect("stats JSON")).expect("JSON");
        calls.extend(dump["operations"].as_array().expect("operations").iter().cloned());
    };
    step(&["apply", "--auto-approve"], 0);
    emu.seed_lake(Part::History, &[OcsfVersion::V2]).await;
    step(&["apply", "--auto-approve"], 1);
    step(&["retrain"], 2);
    // The quickstart's threshold is fixed, so only `calibrate` scores on the endpoint.
    step(&["calibrate", "--auto-approve"], 3);
    step(&["destroy", "--auto-approve"], 4);

    let seen: std::collections::BTreeSet<String> = calls
        .iter()
        .map(|c| format!("{}.{}", c["service"].as_str().unwrap_or(""), c["operation"].as_str().unwrap_or("")))
        .collect();
    for kind in [
        "S3.CreateBucket",
        "IAM.CreateRole",
        "SecurityLake.CreateDataLake",
        "SecurityLake.CreateSubscriber",
        "SecurityLake.CreateSubscriberNotification",
        "LakeFormation.GrantPermissions",
        "Athena.CreateWorkGroup",
        "Athena.StartQueryExecution",
        "SageMaker.CreateTrainingJob",
        "SageMaker.CreateModel",
        "SageMaker.CreateEndpointConfig",
        "SageMaker.CreateEndpoint",
        "Lambda.CreateFunction",
        "Lambda.CreateEventSourceMapping",
        "SQS.CreateQueue",
        "SageMaker.DeleteEndpoint",
        "Lambda.DeleteFunction",
        "S3.DeleteBucket",
    ] {
        assert!(seen.contains(kind), "the run covers {kind}: {seen:?}");
    }

    let policy = emu.run(&["iam-policy"], &file);
    policy.expect_code(0);
    let policy: Value = serde_json::from_str(&policy.stdout).expect("policy JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().expect("statements");

    let denied = denials(statements, &calls);
    assert!(denied.is_empty(), "the policy denies calls the run made:\n{}", denied.join("\n"));

    // The check can fail: without the endpoint's statement, the endpoint's calls are denied.
    let without: Vec<Value> = statements.iter().filter(|s| s["Sid"] != "Endpoint").cloned().collect();
    assert!(denials(&without, &calls).iter().any(|d| d.starts_with("sagemaker:CreateEndpoint on")));
}

/// Each call of the run that `statements` do not allow, as `action on resource`.
fn denials(statements: &[Value], calls: &[Value]) -> Vec<String> {
    let mut denied = Vec::new();
    for call in calls {
        let (service, operation) = (call["service"].as_str().unwrap_or(""), call["operation"].as_str().unwrap_or(""));
        if (service, operation) == ("STS", "GetCallerIdentity") {
            continue; // AWS documents that it needs no permission.
        }
        let fields = &call["resource"];
        let resource = arn(service, fields);
        for action in actions(service, operation, fields) {
            if !allowed(statements, &action, resource.as_deref(), None) {
                denied.push(format!("{action} on {}", resource.as_deref().unwrap_or("(no resource named)")));
            }
        }
        if let Some((role, to)) = passed_role(service, fields)
            && !allowed(statements, "iam:PassRole", Some(&role), Some(to))
        {
            denied.push(format!("iam:PassRole of {role} to {to}"));
        }
    }
    denied.sort();
    denied.dedup();
    denied
}

/// The IAM actions of an operation: `<service prefix>:<Operation>`, except where S3 names them otherwise.
fn actions(service: &str, operation: &str, fields: &Value) -> Vec<String> {
    let s3 = |a: &str| vec![format!("s3:{a}")];
    match (service, operation) {
        ("S3", "HeadBucket" | "ListObjectsV2") => s3("ListBucket"),
        ("S3", "ListObjectVersions") => s3("ListBucketVersions"),
        ("S3", "GetBucketEncryption") => s3("GetEncryptionConfiguration"),
        ("S3", "PutBucketEncryption") => s3("PutEncryptionConfiguration"),
        ("S3", "GetPublicAccessBlock") => s3("GetBucketPublicAccessBlock"),
        ("S3", "PutPublicAccessBlock") => s3("PutBucketPublicAccessBlock"),
        ("S3", "DeleteObjects") if fields.get("VersionId").is_some() => s3("DeleteObjectVersion"),
        ("S3", "DeleteObjects") => s3("DeleteObject"),
        ("SageMaker Runtime" | "SageMakerRuntime", op) => vec![format!("sagemaker:{op}")],
        (service, op) => vec![format!("{}:{op}", service.to_lowercase())],
    }
}

/// The ARN of what a request names, as AWS documents each resource's ARN.
fn arn(service: &str, fields: &Value) -> Option<String> {
    let field = |name: &str| fields.get(name).and_then(Value::as_str);
    let regional = |svc: &str, resource: String| format!("arn:aws:{svc}:{REGION}:{ACCOUNT}:{resource}");
    if let Some(bucket) = field("Bucket") {
        return Some(match field("Key") {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        });
    }
    if let Some(arn) = field("ResourceArn").or(field("ResourceARN")).or(field("Resource")) {
        return Some(arn.to_owned());
    }
    if let Some(role) = field("RoleName") {
        return Some(format!("arn:aws:iam::{ACCOUNT}:role/{role}"));
    }
    if let Some(queue) = field("QueueName").or(field("QueueUrl").and_then(|u| u.rsplit('/').next())) {
        return Some(regional("sqs", queue.to_owned()));
    }
    if let Some(uuid) = field("UUID") {
        return Some(regional("lambda", format!("event-source-mapping:{uuid}")));
    }
    if let Some(function) = field("FunctionName") {
        return Some(if function.starts_with("arn:") {
            function.to_owned()
        } else {
            regional("lambda", format!("function:{function}"))
        });
    }
    for (name, kind) in [
        ("TrainingJobName", "training-job"),
        ("EndpointName", "endpoint"),
        ("EndpointConfigName", "endpoint-config"),
        ("ModelName", "model"),
    ] {
        if let Some(value) = field(name) {
            return Some(regional("sagemaker", format!("{kind}/{}", value.to_lowercase())));
        }
    }
    if let Some(workgroup) = field("WorkGroup").or(if service == "Athena" { field("Name") } else { None }) {
        return Some(regional("athena", format!("workgroup/{workgroup}")));
    }
    if let Some(id) = field("SubscriberId") {
        return Some(regional("securitylake", format!("subscriber/{id}")));
    }
    None
}

/// A role the request hands to a service, and the service it goes to.
fn passed_role(service: &str, fields: &Value) -> Option<(String, &'static str)> {
    let role = ["RoleArn", "ExecutionRoleArn", "Role", "MetaStoreManagerRoleArn"]
        .iter()
        .find_map(|name| fields.get(*name).and_then(Value::as_str))?;
    let to = match service {
        "SageMaker" => "sagemaker.amazonaws.com",
        "Lambda" | "SecurityLake" => "lambda.amazonaws.com",
        _ => return None,
    };
    Some((role.to_owned(), to))
}

/// Whether an Allow statement grants `action` on `resource` (on any resource when the request
/// named none). Conditions are ignored but for `iam:PassedToService`, checked against `passed_to`.
fn allowed(statements: &[Value], action: &str, resource: Option<&str>, passed_to: Option<&str>) -> bool {
    statements.iter().any(|s| {
        let listed = |key: &str| -> Vec<String> {
            match &s[key] {
                Value::String(one) => vec![one.clone()],
                Value::Array(many) => many.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                _ => Vec::new(),
            }
        };
        let action_ok = listed("Action").iter().any(|a| glob(&a.to_lowercase(), &action.to_lowercase()));
        let resource_ok = resource.is_none_or(|r| listed("Resource").iter().any(|p| glob(p, r)));
        let services = &s["Condition"]["StringEquals"]["iam:PassedToService"];
        let condition_ok = match (services, passed_to) {
            (Value::Null, _) => true,
            (_, None) => false,
            (Value::Array(list), Some(to)) => list.iter().any(|v| v == to),
            (Value::String(one), Some(to)) => one == to,
            _ => false,
        };
        s["Effect"] == "Allow" && action_ok && resource_ok && condition_ok
    })
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[test]
fn the_evaluators_wildcards_match_as_iams_do() {
    assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/stacks/q/lock.json"));
    assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
    assert!(glob("*", "anything"));
    assert!(glob("s3:get?bject", "s3:getobject"));
    assert!(!glob("arn:aws:sagemaker:r:a:model/lakesight-q-*", "arn:aws:sagemaker:r:a:model/other"));
    let statements = [serde_json::json!({
        "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": ["arn:aws:iam::1:role/r"],
        "Condition": {"StringEquals": {"iam:PassedToService": ["sagemaker.amazonaws.com"]}}
    })];
    assert!(allowed(&statements, "iam:PassRole", Some("arn:aws:iam::1:role/r"), Some("sagemaker.amazonaws.com")));
    assert!(!allowed(&statements, "iam:PassRole", Some("arn:aws:iam::1:role/r"), Some("lambda.amazonaws.com")));
}
