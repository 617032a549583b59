//! The rules AWS enforces, checked end to end: each bad value is reported at its field, line and
//! column with what is allowed, and each good value passes.

use std::path::Path;

use super::{Diagnostic, Manifest, ManifestError, Position};

const HEAD: &str = "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: us-east-1\n";

fn errors(source: &str) -> Vec<Diagnostic> {
    match Manifest::parse(Path::new("m.yaml"), source) {
        Err(ManifestError::Invalid(d)) => d,
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

fn valid(source: &str) {
    if let Err(e) = Manifest::parse(Path::new("m.yaml"), source) {
        panic!("expected valid, got {e}\n{source}");
    }
}

/// The one diagnostic of `source`, as (field, line, column, message).
fn only(source: &str) -> (String, usize, usize, String) {
    let d = errors(source);
    assert_eq!(d.len(), 1, "{d:?}");
    let Position { line, column } = d[0].position.expect("located");
    (d[0].field.clone(), line, column, d[0].message.clone())
}

#[test]
fn tags_outside_the_shared_character_set_are_refused_where_they_are() {
    let src = "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\n  tags:\n    owner: secops\n    cost#center: \"4711\"\nspec:\n  region: us-east-1\n";
    let (field, line, column, message) = only(src);
    assert_eq!((field.as_str(), line, column), ("metadata.tags.cost#center", 7, 18));
    assert!(message.contains("'#'"), "{message}");
    assert!(message.contains("allowed: Unicode letters, digits, spaces and _ . : / = + - @"), "{message}");

    let (field, line, _, message) = only(&src.replace("cost#center: \"4711\"", "cost: \"a,b\""));
    assert_eq!((field.as_str(), line), ("metadata.tags.cost", 7));
    assert!(message.starts_with("tag value \"a,b\" contains ','"), "{message}");

    let (_, _, _, message) = only(&src.replace("cost#center", "AWS:cost"));
    assert!(message.contains("prefix aws:"), "{message}");

    valid(&src.replace("cost#center: \"4711\"", "Kostenstelle Zürich: \"team@example.com/ops=+_-:.\""));
}

#[test]
fn instance_types_come_from_the_service_model_enums() {
    let src =
        format!("{HEAD}  training:\n    instanceType: ml.t2.medium\n  endpoint:\n    instanceType: ml.t2.medium\n");
    let (field, line, column, message) = only(&src);
    assert_eq!((field.as_str(), line, column), ("spec.training.instanceType", 8, 19));
    assert!(message.contains("is not a SageMaker training instance type (TrainingInstanceType)"), "{message}");
    assert!(message.contains("families: "), "{message}");

    let src = format!("{HEAD}  endpoint:\n    instanceType: ml.m5.huge\n");
    let (field, line, column, message) = only(&src);
    assert_eq!((field.as_str(), line, column), ("spec.endpoint.instanceType", 8, 19));
    assert!(message.contains("ml.m5 sizes: large, xlarge"), "{message}");

    valid(&format!(
        "{HEAD}  training:\n    instanceType: ml.p3.2xlarge\n  endpoint:\n    instanceType: ml.c5.xlarge\n"
    ));
}

#[test]
fn accelerators_ip_insights_cannot_use_are_refused() {
    let src = format!("{HEAD}  endpoint:\n    instanceType: ml.inf1.xlarge\n");
    let (field, line, _, message) = only(&src);
    assert_eq!((field.as_str(), line), ("spec.endpoint.instanceType", 8));
    assert!(message.contains("IP Insights runs on CPU and GPU instances only"), "{message}");
    let src = format!("{HEAD}  training:\n    instanceType: ml.trn1.2xlarge\n");
    assert_eq!(only(&src).0, "spec.training.instanceType");
}

#[test]
fn a_kms_key_arn_must_be_in_the_region_of_the_data() {
    let key = "arn:aws:kms:eu-west-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    let src = format!("{HEAD}  artifactBucket:\n    kmsKeyArn: {key}\n");
    let (field, line, column, message) = only(&src);
    assert_eq!((field.as_str(), line, column), ("spec.artifactBucket.kmsKeyArn", 8, 16));
    assert!(message.contains("the key is in eu-west-1 but the bucket is in us-east-1"), "{message}");
    assert!(message.contains("use a key in us-east-1"), "{message}");
    valid(&src.replace("region: us-east-1", "region: eu-west-1"));

    let src = format!("{HEAD}  securityLake:\n    regions: [eu-west-1, eu-central-1]\n    kmsKeyId: {key}\n");
    let (field, line, column, message) = only(&src);
    assert_eq!((field.as_str(), line, column), ("spec.securityLake.kmsKeyId", 9, 15));
    assert!(message.contains("but the lake is enabled in eu-central-1"), "{message}");
    valid(&src.replace(key, "alias/lake"));
    valid(&src.replace("[eu-west-1, eu-central-1]", "[eu-west-1]"));

    // Without regions, the lake is in the stack's region.
    let src = format!("{HEAD}  securityLake:\n    kmsKeyId: {key}\n");
    assert!(only(&src).3.contains("enabled in us-east-1"));
}

#[test]
fn the_artifact_bucket_key_must_be_a_kms_arn() {
    let src = format!("{HEAD}  artifactBucket:\n    kmsKeyArn: arn:aws:iam::111122223333:role/x\n");
    let (field, _, _, message) = only(&src);
    assert_eq!(field, "spec.artifactBucket.kmsKeyArn");
    assert!(message.contains("is not a KMS key ARN"), "{message}");
}

#[test]
fn bucket_names_follow_s3s_naming_rules() {
    for (name, reason) in [
        ("my..bucket", "two adjacent periods"),
        ("192.168.5.4", "formatted as an IP address"),
        ("amzn-s3-demo-bucket", "the prefix amzn-s3-demo- is reserved"),
        ("data--x-s3", "the suffix --x-s3 is reserved"),
        ("Data", "'D' is not allowed"),
    ] {
        let src = format!("{HEAD}  artifactBucket:\n    name: {name}\n");
        let (field, line, column, message) = only(&src);
        assert_eq!((field.as_str(), line, column), ("spec.artifactBucket.name", 8, 11), "{name}");
        assert!(message.contains(reason), "{name}: {message}");
        assert!(message.contains("allowed: 3 to 63 lowercase letters"), "{name}: {message}");
    }
    valid(&format!("{HEAD}  artifactBucket:\n    name: my.lakesight-artifacts-01\n"));
}

#[test]
fn deployment_waits_are_within_sagemakers_range() {
    let src = format!("{HEAD}  endpoint:\n    deployment:\n      stepWait: 2h\n      terminationWait: 61m\n");
    let d = errors(&src);
    let found: Vec<(&str, Option<Position>, &str)> =
        d.iter().map(|d| (d.field.as_str(), d.position, d.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                "spec.endpoint.deployment.stepWait",
                Some(Position { line: 9, column: 17 }),
                "7200 is out of range; allowed: 0 to 3600"
            ),
            (
                "spec.endpoint.deployment.terminationWait",
                Some(Position { line: 10, column: 24 }),
                "3660 is out of range; allowed: 0 to 3600"
            ),
        ]
    );
    valid(&format!("{HEAD}  endpoint:\n    deployment:\n      stepWait: 1h\n      terminationWait: 0s\n"));
}

#[test]
fn canary_and_linear_steps_and_rollback_alarms_are_bounded() {
    let deployment = |body: &str| format!("{HEAD}  endpoint:\n    instanceCount: 4\n    deployment:\n{body}");
    let (field, line, column, message) = only(&deployment("      trafficRouting: CANARY\n      stepPercent: 60\n"));
    assert_eq!((field.as_str(), line, column), ("spec.endpoint.deployment.stepPercent", 11, 20));
    assert!(message.contains("allowed: 1 to 50 for CANARY"), "{message}");
    let (_, _, _, message) = only(&deployment("      trafficRouting: LINEAR\n      stepPercent: 5\n"));
    assert!(message.contains("allowed: 10 to 50 for LINEAR"), "{message}");
    valid(&deployment("      trafficRouting: LINEAR\n      stepPercent: 25\n"));
    valid(&deployment("      stepPercent: 100\n"));

    let eleven: Vec<String> = (0..11).map(|i| format!("a{i}")).collect();
    let (field, _, _, message) = only(&deployment(&format!("      rollbackAlarms: [{}]\n", eleven.join(", "))));
    assert_eq!(field, "spec.endpoint.deployment.rollbackAlarms");
    assert!(message.contains("at most 10"), "{message}");
    let (field, line, _, _) = only(&deployment("      rollbackAlarms: [ok, \" \"]\n"));
    assert_eq!((field.as_str(), line), ("spec.endpoint.deployment.rollbackAlarms[1]", 10));
}

#[test]
fn lake_transitions_need_a_day_and_an_s3_storage_class() {
    let src = format!(
        "{HEAD}  securityLake:\n    retention:\n      expirationDays: 365\n      transitions:\n        - days: 0\n          storageClass: GLACIER_DEEP\n"
    );
    let d = errors(&src);
    let found: Vec<(&str, Option<usize>)> = d.iter().map(|d| (d.field.as_str(), d.position.map(|p| p.line))).collect();
    assert_eq!(
        found,
        [
            ("spec.securityLake.retention.transitions[0].days", Some(11)),
            ("spec.securityLake.retention.transitions[0].storageClass", Some(12)),
        ]
    );
    assert!(d[1].message.contains("allowed: GLACIER, STANDARD_IA, ONEZONE_IA"), "{}", d[1].message);
    valid(&src.replace("days: 0", "days: 30").replace("GLACIER_DEEP", "GLACIER_IR"));
}
