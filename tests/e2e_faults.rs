//! End-to-end under faults, through the bundled emulator's fault settings: answers lost after the
//! call was carried out, and runs killed at the k-th AWS call. Either way the next run converges
//! without `--adopt`, creates nothing twice, and destroy leaves nothing of the stack behind.

mod support;

use std::time::{Duration, Instant};

use lakesight::synthetic::{OcsfVersion, Part};
use support::{EMPTY_ZIP, Emulator, manifest, owned_by};

/// A stack with every kind that creates without a client token: subscriber, notification,
/// workgroup, function and trigger, and a model served on an endpoint.
fn stack(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    manifest(
        dir,
        name,
        "  timeouts:\n    pollInterval: 100ms\n  securityLake: {}\n  subscriber:\n    principal: \"123456789012\"\n    externalId: faults-external-id\n  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n  training: {}\n  endpoint:\n    instanceType: ml.m5.large\n  scorer:\n    package: ipcheck.zip\n    threshold:\n      policy: fixed\n      value: 0.0\n",
    )
}

async fn mappings(emu: &Emulator) -> usize {
    emu.lambda().await.list_event_source_mappings().send().await.expect("mappings").event_source_mappings().len()
}

#[tokio::test]
async fn answers_lost_after_the_call_went_through_neither_duplicate_nor_fail() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: lost answers are a fault setting of the bundled emulator");
        return;
    }
    let lost = |method: &str, path: &str| serde_json::json!({"method": method, "path": path, "times": 1});
    let target = |target: &str| serde_json::json!({"target": target, "times": 1});
    emu.configure(
        &serde_json::json!({"loseResponse": [
            lost("POST", "^/2015-03-31/event-source-mappings/?$"),
            lost("POST", "^/2015-03-31/functions/?$"),
            lost("POST", "^/v1/subscribers/?$"),
            lost("POST", "^/v1/subscribers/[^/]+/notification/?$"),
            target("AmazonAthena.CreateWorkGroup"),
        ]})
        .to_string(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = stack(dir.path(), "lossy");
    emu.apply_and_seed(&file).await;
    assert_eq!(mappings(&emu).await, 1, "the trigger was created once");
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let subscribers = emu.securitylake().await.list_subscribers().send().await.expect("subscribers");
    assert_eq!(subscribers.subscribers().len(), 1, "the subscriber was created once");
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    emu.configure(
        &serde_json::json!({"loseResponse": [
            target("SageMaker.DeleteEndpoint"),
            target("SageMaker.DeleteEndpointConfig"),
            target("SageMaker.DeleteModel"),
            lost("DELETE", "^/2015-03-31/event-source-mappings/"),
        ]})
        .to_string(),
    );
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
    assert_eq!(mappings(&emu).await, 0);
    emu.run(&["plan", "--destroy", "--detailed-exitcode"], &file).expect_code(0);
}

/// Waits until the emulator holds an answer, or the run has ended by itself.
fn held(emu: &Emulator, run: &mut std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if emu.faults()["held"] == true {
            return true;
        }
        if run.try_wait().expect("poll lakesight").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("neither held nor finished");
}

/// Kills an apply at its `k`-th AWS call, then checks that the next apply succeeds, creating
/// nothing twice.
async fn kill_at(emu: &Emulator, file: &std::path::Path, k: u32) {
    emu.configure(&format!(r#"{{"holdAtCall": {k}}}"#));
    let mut run = emu.spawn(&["apply", "--auto-approve"], file);
    let was_held = held(emu, &mut run);
    run.kill().expect("kill lakesight");
    run.wait().expect("reap lakesight");
    // Releases the held answer, and holds nothing more.
    emu.configure(r#"{"holdAtCall": null}"#);
    if !was_held {
        eprintln!("apply ended before call {k}");
    }
    // The killed run's lock would hold the next one back until its lease expires: the operator
    // who killed it removes it, as the README says.
    emu.run(&["force-unlock", "--auto-approve"], file).expect_code(0);
    let again = emu.run(&["apply", "--auto-approve"], file);
    assert_eq!(again.code, 0, "after a kill at call {k}:\n{}\n{}", again.stdout, again.stderr);
}

/// Once the lake has data, the stack converges: nothing planned, one trigger, and destroy
/// leaves only the retained lake and its role.
async fn converges(emu: &Emulator, file: &std::path::Path, k: u32) {
    let settled = emu.run(&["plan", "--detailed-exitcode"], file);
    assert_eq!(settled.code, 0, "not converged after a kill at call {k}:\n{}", settled.stdout);
    assert_eq!(mappings(emu).await, 1, "one trigger after a kill at call {k}");
    assert_eq!(feature_runs(emu).await.len(), 1, "one feature run's output after a kill at call {k}");
    let destroy = emu.run(&["destroy", "--auto-approve"], file);
    assert_eq!(destroy.code, 0, "destroy after a kill at call {k}:\n{}\n{}", destroy.stdout, destroy.stderr);
    let left = owned_by(emu, "killed").await;
    assert_eq!(left, ["data lake us-east-1", "role lakesight-killed-metastore"], "after a kill at call {k}");
}

/// The runs with output in the stack's artifact bucket: `features/<run id>/`.
async fn feature_runs(emu: &Emulator) -> Vec<String> {
    let listed = emu
        .s3()
        .await
        .list_objects_v2()
        .bucket("lakesight-killed-123456789012-us-east-1")
        .prefix("features/")
        .delimiter("/")
        .send()
        .await
        .expect("ListObjectsV2");
    let prefixes = listed.common_prefixes().iter().filter_map(|p| p.prefix());
    prefixes.filter(|p| *p != "features/runs/").map(str::to_owned).collect()
}

#[tokio::test]
async fn a_run_killed_at_any_call_converges_on_the_next_apply() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: killing at the k-th call needs the bundled emulator's call counter");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = stack(dir.path(), "killed");
    // A stack's first apply on a new account: it builds everything up to the feature run, which
    // waits for data. Kill points spread over it, sized for CI; the first call is STS's.
    for k in [2, 4, 7, 11, 16, 22, 29, 37, 46, 56] {
        emu.reset();
        kill_at(&emu, &file, k).await;
        emu.seed_lake(Part::History, &[OcsfVersion::V2]).await;
        emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
        converges(&emu, &file, k).await;
    }
    // The apply once the lake has data: features, training, model, endpoint.
    for k in [3, 8, 14, 21, 29, 38, 48, 59] {
        emu.reset();
        emu.apply_and_seed(&file).await;
        kill_at(&emu, &file, k).await;
        converges(&emu, &file, k).await;
    }
}
