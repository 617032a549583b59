//! End-to-end: the feature side of a stack (Athena workgroup, feature SQL) against the emulator.

mod support;

use support::{Emulator, manifest};

const FEATURES: &str = "  features:\n    windowDays: 14\n    validationDays: 2\n    bytesScannedCutoff: CUTOFF\n";

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
    assert!(run.stdout.contains("SELECT COUNT(DISTINCT entity) AS entities FROM ("), "{}", run.stdout);
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
