//! The binary's behaviour without AWS: validation diagnostics, schema, exit codes.

mod support;

use std::process::Command;

use support::{Run, repo};

/// The binary with an endpoint nothing listens on: any AWS call would fail loudly and differently.
fn lakesight() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakesight"));
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    cmd
}

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("stack.yaml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

const HEAD: &str = "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: us-east-1\n";

/// Shipped manifests name the zip `scorer/package` writes, which a fresh clone lacks: each is
/// validated from a copy whose package is a stand-in file.
#[test]
fn every_shipped_manifest_validates() {
    let dir = repo().join("manifests");
    let scratch = tempfile::tempdir().expect("tempdir");
    std::fs::write(scratch.path().join("ipcheck.zip"), b"zip").expect("stand-in package");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("manifests/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("manifest");
            let mut copy = String::new();
            for line in text.lines() {
                match line.trim_start().strip_prefix("package: ") {
                    Some(package) => {
                        let built = ["../target/lambda/ipcheck-x86_64.zip", "../target/lambda/ipcheck-arm64.zip"];
                        assert!(
                            built.contains(&package),
                            "{}: {package} is not what scorer/package writes",
                            path.display()
                        );
                        copy.push_str(&line.replace(package, "ipcheck.zip"));
                    }
                    None => copy.push_str(line),
                }
                copy.push('\n');
            }
            let file = scratch.path().join(path.file_name().expect("name"));
            std::fs::write(&file, copy).expect("copy");
            Run::of(lakesight().arg("validate").arg("-f").arg(&file)).expect_code(0);
            count += 1;
        }
    }
    assert!(count >= 2, "quickstart and production examples");
}

#[test]
fn unknown_field_is_reported_with_file_line_column_and_allowed_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(&dir, &format!("{HEAD}  training:\n    instanceTyp: ml.m5.large\n"));
    let run = Run::of(lakesight().arg("validate").arg("-f").arg(&file));
    run.expect_code(1);
    let expected = format!(
        "error: {}:8:5: spec.training: unknown field `instanceTyp`, expected one of `instanceType`",
        file.display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(run.stderr.contains("   8 |     instanceTyp: ml.m5.large"), "source line shown: {}", run.stderr);
    assert!(run.stderr.contains("nothing was sent to AWS"), "{}", run.stderr);
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{HEAD}  endpoint:\n    instanceType: m5.large\n  training:\n    hyperparameters:\n      vectorDim: 8192\n      randomNegativeSamplingRate: 400\n      shuffledNegativeSamplingRate: 200\n"
    );
    let file = write(&dir, &text);
    let run = Run::of(lakesight().arg("validate").arg("-f").arg(&file));
    run.expect_code(1);
    let f = file.display();
    for expected in [
        format!(
            "{f}:8:19: spec.endpoint.instanceType: \"m5.large\" is not a SageMaker endpoint instance type (ProductionVariantInstanceType); allowed families: "
        ),
        format!("{f}:11:18: spec.training.hyperparameters.vectorDim: 8192 is out of range; allowed: 4 to 4096"),
        format!(
            "{f}:12:35: spec.training.hyperparameters.randomNegativeSamplingRate: randomNegativeSamplingRate + shuffledNegativeSamplingRate = 600"
        ),
    ] {
        assert!(run.stderr.contains(&expected), "missing {expected}\n{}", run.stderr);
    }
    assert!(run.stderr.contains("3 problem(s) found"), "{}", run.stderr);
}

/// What AWS would refuse mid-apply is refused up front, each at its line and column.
#[test]
fn values_aws_would_refuse_are_located_and_stop_before_any_aws_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\n  tags:\n    cost#center: \"4711\"\nspec:\n  region: us-east-1\n  artifactBucket:\n    name: my..bucket\n    kmsKeyArn: arn:aws:kms:eu-west-1:111122223333:key/abc\n  endpoint:\n    instanceType: ml.inf1.xlarge\n    deployment:\n      stepWait: 2h\n";
    let file = write(&dir, text);
    let run = Run::of(lakesight().arg("validate").arg("-f").arg(&file));
    run.expect_code(1);
    let f = file.display();
    for expected in [
        format!("{f}:6:18: metadata.tags.cost#center: tag key \"cost#center\" contains '#'; allowed: Unicode letters"),
        format!(
            "{f}:10:11: spec.artifactBucket.name: \"my..bucket\" is not a valid S3 bucket name: it contains two adjacent periods"
        ),
        format!("{f}:11:16: spec.artifactBucket.kmsKeyArn: the key is in eu-west-1 but the bucket is in us-east-1"),
        format!("{f}:13:19: spec.endpoint.instanceType: \"ml.inf1.xlarge\" has neither CPU nor GPU compute"),
        format!("{f}:15:17: spec.endpoint.deployment.stepWait: 7200 is out of range; allowed: 0 to 3600"),
    ] {
        assert!(run.stderr.contains(&expected), "missing {expected}\n{}", run.stderr);
    }
    assert!(run.stderr.contains("5 problem(s) found; nothing was sent to AWS"), "{}", run.stderr);
    let plan = Run::of(lakesight().args(["plan", "--stats", "-f"]).arg(&file));
    plan.expect_code(1);
    assert!(plan.stderr.contains("total: 0 calls"), "plan made AWS calls: {}", plan.stderr);
}

#[test]
fn invalid_manifest_fails_plan_and_apply_before_any_aws_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(&dir, &HEAD.replace("name: demo", "name: Bad_Name"));
    for command in ["plan", "apply", "destroy", "status"] {
        let run = Run::of(lakesight().arg(command).arg("--stats").arg("-f").arg(&file));
        run.expect_code(1);
        assert!(run.stderr.contains(":4:9: metadata.name"), "{command}: {}", run.stderr);
        assert!(run.stderr.contains("total: 0 calls"), "{command} made AWS calls: {}", run.stderr);
    }
}

#[test]
fn region_conflict_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(&dir, HEAD);
    let run = Run::of(lakesight().args(["plan", "--region", "eu-west-1", "-f"]).arg(&file));
    run.expect_code(64);
    assert!(run.stderr.contains("pins spec.region \"us-east-1\""), "{}", run.stderr);
}

#[test]
fn missing_file_and_bad_flags_have_distinct_exit_codes() {
    let run = Run::of(lakesight().args(["validate", "-f", "/nonexistent/stack.yaml"]));
    run.expect_code(1);
    assert!(run.stderr.contains("cannot read /nonexistent/stack.yaml"), "{}", run.stderr);
    Run::of(lakesight().args(["plan", "--no-such-flag"])).expect_code(64);
    Run::of(lakesight().args(["--version"])).expect_code(0);
}

#[test]
fn schema_is_json_and_rejects_unknown_fields() {
    let run = Run::of(lakesight().arg("schema"));
    run.expect_code(0);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON Schema");
    assert_eq!(schema["properties"]["apiVersion"]["$ref"], "#/$defs/ApiVersion");
    assert_eq!(schema["$defs"]["Spec"]["additionalProperties"], false);
}
