//! End-to-end: the feature side of a stack (Athena workgroup, feature SQL) against the emulator,
//! whose Athena runs the SQL over the Parquet objects of a synthetic lake.

mod support;

use lakesight::synthetic::{Day, Filter, Lake, OcsfVersion, Part, Selection, Source, Window, pairs};
use support::{Emulator, manifest};

const FEATURES: &str = "  securityLake: {}\n  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n    bytesScannedCutoff: CUTOFF\n";

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

/// The lake is empty, so the feature run waits and plans to count again; the workgroup is settled.
fn workgroup_up_to_date(emu: &Emulator, file: &std::path::Path) {
    let plan = emu.run(&["plan"], file);
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("    athena.workgroup/features (lakesight-feats-features): up to date"),
        "{}",
        plan.stdout
    );
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
    workgroup_up_to_date(&emu, &file);

    let file = manifest(dir.path(), "feats", &FEATURES.replace("CUTOFF", "20000000000"));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("bytesScannedCutoff: 10000000000 -> 20000000000"), "{}", plan.stdout);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert_eq!(workgroup(&emu, "lakesight-feats-features").await, Some((expected_output, Some(20_000_000_000))));
    workgroup_up_to_date(&emu, &file);

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

/// The latest run's record (run ids are times) and the object keys under `features/`.
async fn feature_run(emu: &Emulator, bucket: &str) -> (serde_json::Value, Vec<String>) {
    let s3 = emu.s3().await;
    let listed = s3.list_objects_v2().bucket(bucket).prefix("features/").send().await.expect("list");
    let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    let mut records = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with("features/runs/")) {
        let body = s3.get_object().bucket(bucket).key(key).send().await.expect("get").body.collect().await;
        let record: serde_json::Value = serde_json::from_slice(&body.expect("body").into_bytes()).expect("record JSON");
        records.push(record);
    }
    let latest = records.into_iter().max_by_key(|r| r["runId"].as_str().map(str::to_owned)).expect("a run record");
    (latest, keys)
}

const DAY_MS: i64 = 86_400_000;

/// Every `entity,ip` line of the objects under `prefix`, sorted.
async fn unloaded(emu: &Emulator, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let s3 = emu.s3().await;
    let listed = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("list");
    let mut lines = Vec::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let body = s3.get_object().bucket(bucket).key(key).send().await.expect("get").body.collect().await;
        let text = String::from_utf8(body.expect("body").into_bytes().to_vec()).expect("text");
        for line in text.lines() {
            let (entity, ip) = line.split_once(',').unwrap_or_else(|| panic!("two columns: {line:?}"));
            lines.push((entity.to_owned(), ip.to_owned()));
        }
    }
    lines.sort();
    lines
}

/// Fails with the counts and a few of the pairs only one side has.
fn same_pairs(actual: &[(String, String)], expected: &[(String, String)], what: &str) {
    if actual == expected {
        return;
    }
    let count = |list: &[(String, String)]| {
        let mut counts = std::collections::BTreeMap::new();
        for pair in list {
            *counts.entry(pair.clone()).or_insert(0i64) += 1;
        }
        counts
    };
    let (have, want) = (count(actual), count(expected));
    let differing: Vec<String> = have
        .keys()
        .chain(want.keys())
        .filter(|k| have.get(*k) != want.get(*k))
        .take(5)
        .map(|k| format!("{k:?}: {} unloaded, {} expected", have.get(k).unwrap_or(&0), want.get(k).unwrap_or(&0)))
        .collect();
    panic!("{what}: {} pairs unloaded, {} expected; {differing:?}", actual.len(), expected.len());
}

/// The run's reference time, from its id (`20261202T043000Z`), in epoch milliseconds.
fn reference_ms(run_id: &str) -> i64 {
    let t = run_id.as_bytes();
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &run_id[0..4],
        &run_id[4..6],
        &run_id[6..8],
        &run_id[9..11],
        &run_id[11..13],
        &run_id[13..15]
    );
    assert_eq!((t.len(), t[8], t[15]), (16, b'T', b'Z'), "run id {run_id}");
    let at = humantime::parse_rfc3339(&iso).expect("run time");
    i64::try_from(at.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis()).expect("ms")
}

/// The pairs of one split, as `unloaded` reads them.
type Pairs = Vec<(String, String)>;

/// The training and validation pairs the feature SQL should select from the generator's
/// records of every day but today (what the lake was seeded with), computed without SQL: the
/// window ends at the run's reference time, 14 days long with the last 2 for validation, bounded
/// by `eventDay` (source version 1.0) or `time_dt` (2.0).
fn expected(lake: &Lake, version: OcsfVersion, selection: Selection, now_ms: i64) -> (Pairs, Pairs) {
    let (start, cut) = (now_ms - 14 * DAY_MS, now_ms - 2 * DAY_MS);
    let records: Vec<_> =
        Source::ALL.iter().flat_map(|s| lake.records_between(*s, Day::of_ms(start), lake.spec.last_day)).collect();
    let split = |from: i64, to: i64| {
        let window = match version {
            OcsfVersion::V1 => Window::Days { from: Day::of_ms(from), to: Day::of_ms(to) },
            OcsfVersion::V2 => Window::Millis { from, to },
        };
        let mut selected = pairs(&records, &Filter { window: Some(window), ..Filter::new(selection) });
        selected.sort();
        selected
    };
    (split(start, cut), split(cut, now_ms))
}

fn lake_of(version: &str) -> String {
    LAKE_AND_FEATURES.replace("WINDOW", "14").replace(
        "  securityLake: {}\n",
        &format!(
            "  securityLake:\n    sources:\n      - name: VPC_FLOW\n        version: \"{version}\"\n      - name: ROUTE53\n        version: \"{version}\"\n"
        ),
    )
}

/// Checks that the latest run unloaded exactly the pairs of `selection` that the generator's
/// records hold in each split, and that its entity count is the real one.
async fn unloaded_as_expected(emu: &Emulator, bucket: &str, lake: &Lake, version: OcsfVersion, selection: Selection) {
    let (record, _) = feature_run(emu, bucket).await;
    let run = record["runId"].as_str().expect("run id");
    let (train, validation) = expected(lake, version, selection, reference_ms(run));
    assert!(!train.is_empty() && !validation.is_empty(), "the generator fills both splits");
    let what = |split: &str| format!("{selection:?}, the {split} split");
    same_pairs(&unloaded(emu, bucket, &format!("features/{run}/train/")).await, &train, &what("training"));
    same_pairs(&unloaded(emu, bucket, &format!("features/{run}/validation/")).await, &validation, &what("validation"));
    let entities: std::collections::BTreeSet<&str> = train.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(record["rows"], train.len(), "{record}");
    assert_eq!(record["distinctEntities"], entities.len(), "the real entity count: {record}");
}

/// Seeds a lake of `version`, applies, and checks the unloaded pairs; then pairs with the
/// remote end instead, which the plan shows as a new feature run, and checks those.
async fn unloads_what_the_lake_holds(version: OcsfVersion, label: &str) {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: the synthetic lake is written into the bundled emulator's lake bucket");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = format!("runs{}", label.replace('.', ""));
    let file = manifest(dir.path(), &stack, &lake_of(label));
    let first = emu.run(&["apply", "--auto-approve"], &file);
    first.expect_code(0);
    assert!(first.stdout.contains("waiting for data: 0 rows, 0 entities"), "a new lake is empty: {}", first.stdout);
    let lake = emu.seed_lake(Part::History, &[version]).await;

    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(apply.stderr.contains("counting the window's pairs"), "progress is shown: {}", apply.stderr);
    let bucket = format!("lakesight-{stack}-123456789012-us-east-1");
    unloaded_as_expected(&emu, &bucket, &lake, version, Selection::SourceEndpoint).await;
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    let remote = lake_of(label).replace("    windowDays: 14\n", "    windowDays: 14\n    peer: remote\n");
    let file = manifest(dir.path(), &stack, &remote);
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+ features.run/current"), "another pairing, another run: {}", plan.stdout);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    unloaded_as_expected(&emu, &bucket, &lake, version, Selection::RemotePeer).await;
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    let file = manifest(dir.path(), &stack, &remote.replace("windowDays: 14", "windowDays: 21"));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+ features.run/current"), "new inputs, new run: {}", plan.stdout);
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
}

#[tokio::test]
async fn a_feature_run_unloads_the_pairs_of_a_version_2_lake() {
    unloads_what_the_lake_holds(OcsfVersion::V2, "2.0").await;
}

#[tokio::test]
async fn a_feature_run_unloads_the_pairs_of_a_version_1_lake() {
    unloads_what_the_lake_holds(OcsfVersion::V1, "1.0").await;
}

#[tokio::test]
async fn a_query_athena_refuses_fails_the_feature_run_with_athenas_reason() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: the synthetic lake is written into the bundled emulator's lake bucket");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "badrun", &LAKE_AND_FEATURES.replace("WINDOW", "14"));
    emu.apply_and_seed(&file).await;
    // The VPC flow table loses the column the feature SQL reads.
    let table = "amazon_security_lake_table_us_east_1_vpc_flow_2_0";
    emu.drop_glue_column("amazon_security_lake_glue_db_us_east_1", table, "src_endpoint");
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(1);
    assert!(apply.stderr.contains("features.run/current: Athena query failed: FAILED:"), "{}", apply.stderr);
    assert!(
        apply.stderr.contains("COLUMN_NOT_FOUND") && apply.stderr.contains("cannot be resolved"),
        "{}",
        apply.stderr
    );
}

const WAITING: &str = "  timeouts:\n    pollInterval: 100ms\n  securityLake: {}\n  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 30\n    minEntities: 6\n  training: {}\n";

#[tokio::test]
async fn a_young_lake_waits_for_data_without_failing_and_a_later_apply_goes_on() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: the synthetic lake is written into the bundled emulator's lake bucket");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "young", WAITING);
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(
        apply.stdout.contains("features.run/current: waiting for data: 0 rows, 0 entities in the training window"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("downstream wait for it"), "{}", apply.stdout);
    let status = emu.run(&["status"], &file);
    assert!(status.stdout.contains("waiting for data: 0 rows, 0 entities"), "{}", status.stdout);
    let bucket = "lakesight-young-123456789012-us-east-1";
    let (record, keys) = feature_run(&emu, bucket).await;
    assert_eq!(record["waiting"], true);
    assert!(!keys.iter().any(|k| k.contains("/train/")), "nothing unloaded: {keys:?}");

    // The lake fills up: the next apply counts again and goes on.
    let lake = emu.seed_lake(Part::History, &[OcsfVersion::V2]).await;
    let again = emu.run(&["apply", "--auto-approve"], &file);
    again.expect_code(0);
    assert!(!again.stdout.contains("waiting for data"), "{}", again.stdout);
    let (record, keys) = feature_run(&emu, bucket).await;
    let run = record["runId"].as_str().expect("run id");
    let (train, _) = expected(&lake, OcsfVersion::V2, Selection::SourceEndpoint, reference_ms(run));
    assert_eq!((record["waiting"].clone(), record["rows"].clone()), (serde_json::json!(false), train.len().into()));
    assert!(keys.iter().any(|k| k.contains("/train/")), "{keys:?}");
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
}
