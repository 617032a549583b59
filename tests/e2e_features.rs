//! End-to-end: the feature side of a stack (Athena workgroup, feature SQL) against the emulator.

mod support;

use support::{Emulator, manifest};

const FEATURES: &str = "  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n    bytesScannedCutoff: CUTOFF\n";

async fn workgroup(emu: &Emulator, name: &str) -> Option<(String, Option<i64>)> {
    let athena = emu.athena().await;
    let listed = athena.list_work_groups().send().await.expect("ListWorkGroups");
    if !listed.work_groups().iter().any(|w| w.name() == Some(name)) {
        return None;
    }
    let group = athena.get_work_group().work_group(name).send().await.expect("GetWorkGroup");
    let config = group.work_group().and_then(|w| w.configuration()).expect("configuration");
    let output = config.result_configuration().and_then(|r| r.output_location()).unwrap_or_default().to_owned();
    Some((output, config.bytes_scanned_cutoff_per_query()))
}

#[tokio::test]
async fn the_workgroup_is_created_updated_in_place_and_destroyed() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "feats", &FEATURES.replace("CUTOFF", "10000000000"));
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let expected_output = "s3://lakesight-feats-123456789012-us-east-1/athena-results/".to_owned();
    assert_eq!(
        workgroup(&emu, "lakesight-feats-features").await,
        Some((expected_output.clone(), Some(10_000_000_000)))
    );
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    let file = manifest(dir.path(), "feats", &FEATURES.replace("CUTOFF", "20000000000"));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("bytesScannedCutoff: 10000000000 -> 20000000000"), "{}", plan.stdout);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert_eq!(workgroup(&emu, "lakesight-feats-features").await, Some((expected_output, Some(20_000_000_000))));
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
    assert_eq!(workgroup(&emu, "lakesight-feats-features").await, None);
}

#[tokio::test]
async fn sql_prints_the_queries_of_a_run_without_changing_anything() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "sqlonly", &FEATURES.replace("CUTOFF", "10000000000"));
    let run = emu.run(&["sql", "--stats"], &file);
    run.expect_code(0);
    assert!(
        run.stdout.contains("SELECT COUNT(*) AS pairs, COUNT(DISTINCT entity) AS entities FROM ("),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(
        r#"FROM "amazon_security_lake_glue_db_us_east_1"."amazon_security_lake_table_us_east_1_vpc_flow_2_0""#
    ));
    assert!(run.stdout.contains(") TO 's3://lakesight-sqlonly-123456789012-us-east-1/features/"), "{}", run.stdout);
    assert!(run.stdout.contains("/train/'") && run.stdout.contains("/validation/'"), "{}", run.stdout);
    assert!(run.stderr.contains(", 0 mutating,"), "{}", run.stderr);

    let bare = manifest(dir.path(), "nofeatures", "");
    let refused = emu.run(&["sql"], &bare);
    refused.expect_code(64);
    assert!(refused.stderr.contains("has no spec.features"), "{}", refused.stderr);
}

const LAKE_AND_FEATURES: &str = "  timeouts:\n    pollInterval: 100ms\n  securityLake: {}\n  features:\n    windowDays: WINDOW\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n";

/// The run record and the object keys under each split.
async fn feature_run(emu: &Emulator, bucket: &str) -> (serde_json::Value, Vec<String>) {
    let s3 = emu.s3().await;
    let listed = s3.list_objects_v2().bucket(bucket).prefix("features/").send().await.expect("list");
    let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    let record_key = keys.iter().find(|k| k.starts_with("features/runs/")).expect("a run record").clone();
    let body =
        s3.get_object().bucket(bucket).key(&record_key).send().await.expect("get").body.collect().await.expect("body");
    (serde_json::from_slice(&body.into_bytes()).expect("record JSON"), keys)
}

#[tokio::test]
async fn a_feature_run_unloads_both_splits_once_per_inputs() {
    let emu = Emulator::start();
    if emu.is_bundled() {
        emu.configure(r#"{"pendingPolls": {"query": 2}}"#);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "runs", &LAKE_AND_FEATURES.replace("WINDOW", "14"));
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    let bucket = "lakesight-runs-123456789012-us-east-1";
    let (record, keys) = feature_run(&emu, bucket).await;
    let run = record["runId"].as_str().expect("run id");
    assert_eq!(record["trainPrefix"], format!("s3://{bucket}/features/{run}/train/"));
    assert!(keys.iter().any(|k| k.starts_with(&format!("features/{run}/train/"))), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&format!("features/{run}/validation/"))), "{keys:?}");
    if emu.is_bundled() {
        assert_eq!(record["distinctEntities"], 5, "the emulator's seeded rows hold five entities");
        assert!(apply.stderr.contains("counting the window's pairs"), "progress is shown: {}", apply.stderr);
    }
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    let file = manifest(dir.path(), "runs", &LAKE_AND_FEATURES.replace("WINDOW", "21"));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+ features.run/current"), "new inputs, new run: {}", plan.stdout);
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
}

#[tokio::test]
async fn a_failed_query_reports_athenas_reason() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: behaviour settings need the bundled emulator");
        return;
    }
    emu.configure(r#"{"failQueries": "TABLE_NOT_FOUND: line 3:8: Table does not exist"}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "badrun", &LAKE_AND_FEATURES.replace("WINDOW", "14"));
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(1);
    assert!(apply.stderr.contains("features.run/current: Athena query failed: FAILED:"), "{}", apply.stderr);
    assert!(apply.stderr.contains("TABLE_NOT_FOUND: line 3:8: Table does not exist"), "{}", apply.stderr);
}

const WAITING: &str = "  timeouts:\n    pollInterval: 100ms\n  securityLake: {}\n  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 30\n    minEntities: 6\n  training: {}\n";

#[tokio::test]
async fn a_young_lake_waits_for_data_without_failing_and_a_later_apply_goes_on() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: the lake's contents are set through the bundled emulator's settings");
        return;
    }
    // 20 pairs of 5 entities: below both minimums.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "young", WAITING);
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(
        apply.stdout.contains("features.run/current: waiting for data: 20 rows, 5 entities in the training window"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("downstream wait for it"), "{}", apply.stdout);
    let status = emu.run(&["status"], &file);
    assert!(status.stdout.contains("waiting for data: 20 rows, 5 entities"), "{}", status.stdout);
    let (record, keys) = feature_run(&emu, "lakesight-young-123456789012-us-east-1").await;
    assert_eq!(record["waiting"], true);
    assert!(!keys.iter().any(|k| k.contains("/train/")), "nothing unloaded: {keys:?}");

    // The lake fills up: the next apply counts again and trains.
    let rows: Vec<[String; 2]> =
        (0..8).flat_map(|e| (1..6).map(move |a| [format!("i-{e:017x}"), format!("10.0.{e}.{a}")])).collect();
    emu.configure(&serde_json::json!({ "unloadRows": rows }).to_string());
    let again = emu.run(&["apply", "--auto-approve"], &file);
    again.expect_code(0);
    assert!(!again.stdout.contains("waiting for data"), "{}", again.stdout);
    let (record, keys) = feature_run(&emu, "lakesight-young-123456789012-us-east-1").await;
    assert_eq!((record["waiting"].clone(), record["rows"].clone()), (serde_json::json!(false), serde_json::json!(40)));
    assert!(keys.iter().any(|k| k.contains("/train/")), "{keys:?}");
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
}
