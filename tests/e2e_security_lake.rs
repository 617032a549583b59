//! End-to-end: Security Lake reconciled by the real binary against the emulator.

mod support;

use std::collections::BTreeSet;

use support::{Emulator, manifest};

const LAKE: &str = "  timeouts:\n    pollInterval: 100ms\n  securityLake:\n    sources:\n      - name: VPC_FLOW\n        version: \"VERSION\"\n      - name: ROUTE53\n  subscriber:\n    principal: \"123456789012\"\n    externalId: e2e-external-id\n";

fn lake(version: &str) -> String {
    LAKE.replace("VERSION", version)
}

/// (source, version) pairs enabled in the emulator.
async fn sources(emu: &Emulator) -> BTreeSet<(String, String)> {
    let out = emu.securitylake().await.list_log_sources().send().await.expect("ListLogSources");
    out.sources()
        .iter()
        .flat_map(|s| s.sources())
        .filter_map(|r| r.as_aws_log_source().ok())
        .filter_map(|a| Some((a.source_name()?.as_str().to_owned(), a.source_version()?.to_owned())))
        .collect()
}

async fn queues(emu: &Emulator) -> Vec<String> {
    emu.sqs().await.list_queues().send().await.expect("ListQueues").queue_urls().to_vec()
}

/// Lake Formation permissions anyone holds, as (resource kind, permission).
async fn grants(emu: &Emulator) -> BTreeSet<(String, String)> {
    let out = emu.lakeformation().await.list_permissions().send().await.expect("ListPermissions");
    out.principal_resource_permissions()
        .iter()
        .flat_map(|p| {
            let kind = if p.resource().is_some_and(|r| r.table().is_some()) { "tables" } else { "database" };
            p.permissions().iter().map(move |perm| (kind.to_owned(), perm.as_str().to_owned()))
        })
        .collect()
}

async fn data_lakes(emu: &Emulator) -> usize {
    emu.securitylake().await.list_data_lakes().send().await.expect("ListDataLakes").data_lakes().len()
}

fn pair(name: &str, version: &str) -> (String, String) {
    (name.to_owned(), version.to_owned())
}

#[tokio::test]
async fn lake_sources_subscriber_and_queue_are_created_then_removed_keeping_the_lake() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = lake("2.0").replace("  securityLake:\n", "  securityLake:\n    queryAccess: {}\n");
    let file = manifest(dir.path(), "lakes", &text);

    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let granted = BTreeSet::from([
        ("database".to_owned(), "DESCRIBE".to_owned()),
        ("tables".to_owned(), "DESCRIBE".to_owned()),
        ("tables".to_owned(), "SELECT".to_owned()),
    ]);
    assert_eq!(grants(&emu).await, granted, "query access for the caller");
    assert_eq!(sources(&emu).await, BTreeSet::from([pair("VPC_FLOW", "2.0"), pair("ROUTE53", "2.0")]));
    let subscribers = emu.securitylake().await.list_subscribers().send().await.expect("ListSubscribers");
    let subscriber = subscribers.subscribers().first().expect("a subscriber");
    assert_eq!(subscriber.subscriber_name(), "lakesight-lakes");
    let queue = subscriber.subscriber_endpoint().expect("notification queue");
    assert!(queue.ends_with(&format!("AmazonSecurityLake-{}-Main-Queue", subscriber.subscriber_id())), "{queue}");
    assert_eq!(queues(&emu).await.len(), 1);

    let replan = emu.run(&["plan", "--detailed-exitcode", "--stats"], &file);
    replan.expect_code(0);
    assert!(replan.stderr.contains(", 0 mutating,"), "{}", replan.stderr);

    let status = emu.run(&["status"], &file);
    let notification = status.stdout.lines().find(|l| l.starts_with("securitylake.notification/scorer")).expect("row");
    assert!(notification.contains(queue), "the queue ARN is the notification's id: {notification}");

    let destroy = emu.run(&["destroy", "--auto-approve"], &file);
    destroy.expect_code(0);
    assert!(
        destroy
            .stdout
            .contains("securitylake.data_lake/us-east-1 (data lake in us-east-1): kept by its deletionPolicy (Retain)"),
        "{}",
        destroy.stdout
    );
    assert_eq!(
        sources(&emu).await,
        BTreeSet::from([pair("VPC_FLOW", "2.0"), pair("ROUTE53", "2.0")]),
        "a retained lake keeps collecting"
    );
    assert!(emu.securitylake().await.list_subscribers().send().await.expect("list").subscribers().is_empty());
    assert!(queues(&emu).await.is_empty(), "the notification queue is gone");
    assert_eq!(data_lakes(&emu).await, 1, "the lake is retained by default");
    assert_eq!(grants(&emu).await, BTreeSet::new(), "the grants are revoked");
}

#[tokio::test]
async fn deletion_policy_delete_removes_the_lake_too() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = lake("2.0").replace("  securityLake:\n", "  securityLake:\n    deletionPolicy: Delete\n");
    let file = manifest(dir.path(), "nolake", &text);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
    assert_eq!(data_lakes(&emu).await, 0);
}

#[tokio::test]
async fn a_new_source_version_is_planned_as_replacement_and_converges_through_conflicts() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "versions", &lake("1.0"));
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert!(sources(&emu).await.contains(&pair("VPC_FLOW", "1.0")));

    let file = manifest(dir.path(), "versions", &lake("2.0"));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("-/+ securitylake.log_source/VPC_FLOW"), "{}", plan.stdout);
    assert!(plan.stdout.contains("sourceVersion: 1.0 -> 2.0 (forces replacement)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("~ securitylake.subscriber/scorer"), "the subscriber follows: {}", plan.stdout);

    if emu.is_bundled() {
        // The delete is asynchronous: the re-create meets 409s until it settles.
        emu.configure(r#"{"recreateConflicts": 2}"#);
    }
    let apply = emu.run(&["apply", "--auto-approve", "--stats"], &file);
    apply.expect_code(0);
    if emu.is_bundled() {
        assert!(!apply.stderr.contains(" 0 retries"), "the 409s were retried: {}", apply.stderr);
    }
    assert_eq!(sources(&emu).await, BTreeSet::from([pair("VPC_FLOW", "2.0"), pair("ROUTE53", "2.0")]));
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}

#[tokio::test]
async fn injected_conflicts_and_slow_statuses_are_ridden_out() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: behaviour settings need the bundled emulator");
        return;
    }
    emu.configure(
        r#"{"conflictEvery": 2, "conflictWhilePending": true, "pendingPolls": {"dataLake": 3, "subscriber": 2}}"#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "bumpy", &lake("2.0"));
    let apply = emu.run(&["apply", "--auto-approve", "--stats"], &file);
    apply.expect_code(0);
    assert!(
        apply.stderr.contains("securitylake.data_lake/us-east-1: PENDING") || apply.stderr.contains("INITIALIZED"),
        "waits are reported: {}",
        apply.stderr
    );
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    emu.configure(r#"{"sourceStatus": {"ROUTE53": "MISCONFIGURED"}}"#);
    let status = emu.run(&["status"], &file);
    let route53 = status.stdout.lines().find(|l| l.starts_with("securitylake.log_source/ROUTE53")).expect("row");
    assert!(route53.contains("123456789012/us-east-1 MISCONFIGURED"), "{route53}");
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
}

#[tokio::test]
async fn a_failed_lake_reports_the_service_reason_and_skips_what_depends_on_it() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: behaviour settings need the bundled emulator");
        return;
    }
    emu.configure(r#"{"failDataLake": {"code": "KMS.DisabledException", "reason": "the key is disabled"}}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "broken", &lake("2.0"));
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(1);
    assert!(apply.stderr.contains("KMS.DisabledException: the key is disabled (remediation:"), "{}", apply.stderr);
    assert!(apply.stdout.contains("skipped securitylake.subscriber/scorer"), "{}", apply.stdout);
    assert!(sources(&emu).await.is_empty(), "no source is enabled on a failed lake");
}

#[tokio::test]
async fn a_source_or_query_access_dropped_from_the_manifest_is_removed() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let with_access = lake("2.0").replace("  subscriber:\n", "    queryAccess: {}\n  subscriber:\n");
    let file = manifest(dir.path(), "pruned", &with_access);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert_eq!(sources(&emu).await, BTreeSet::from([pair("VPC_FLOW", "2.0"), pair("ROUTE53", "2.0")]));
    assert!(!grants(&emu).await.is_empty());

    // Neither ROUTE53 nor query access any more.
    let file = manifest(dir.path(), "pruned", &lake("2.0").replace("      - name: ROUTE53\n", ""));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(
        plan.stdout.contains("- securitylake.log_source/ROUTE53 (ROUTE53 2.0): no longer in the manifest"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("- lakeformation.grant/us-east-1"), "{}", plan.stdout);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert_eq!(sources(&emu).await, BTreeSet::from([pair("VPC_FLOW", "2.0")]), "ROUTE53 is disabled");
    assert_eq!(grants(&emu).await, BTreeSet::new(), "the grants are revoked");
    let settled = emu.run(&["plan", "--detailed-exitcode"], &file);
    settled.expect_code(0);
}

/// The regions with a data lake.
async fn lake_regions(emu: &Emulator) -> BTreeSet<String> {
    let out = emu.securitylake().await.list_data_lakes().send().await.expect("ListDataLakes");
    out.data_lakes().iter().map(|l| l.region().to_owned()).collect()
}

/// The regions with a log source enabled.
async fn source_regions(emu: &Emulator) -> BTreeSet<String> {
    let out = emu.securitylake().await.list_log_sources().send().await.expect("ListLogSources");
    out.sources().iter().filter_map(|s| s.region().map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_region_dropped_from_the_lake_goes_by_its_deletion_policy() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let regions = |list: &str, policy: &str| {
        lake("2.0").replace(
            "  securityLake:\n",
            &format!("  securityLake:\n    regions: [{list}]\n    deletionPolicy: {policy}\n"),
        )
    };
    let both = BTreeSet::from(["eu-west-1".to_owned(), "us-east-1".to_owned()]);
    let home = BTreeSet::from(["us-east-1".to_owned()]);
    let file = manifest(dir.path(), "regions", &regions("us-east-1, eu-west-1", "Retain"));
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert_eq!((lake_regions(&emu).await, source_regions(&emu).await), (both.clone(), both.clone()));

    // Retained: the dropped region's lake stays, its sources go, and the stack lets it go.
    let file = manifest(dir.path(), "regions", &regions("us-east-1", "Retain"));
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(
        apply
            .stdout
            .contains("securitylake.data_lake/eu-west-1 (data lake in eu-west-1): kept by its deletionPolicy (Retain)"),
        "{}",
        apply.stdout
    );
    assert_eq!((lake_regions(&emu).await, source_regions(&emu).await), (both.clone(), home.clone()));
    let settled = emu.run(&["plan", "--detailed-exitcode"], &file);
    settled.expect_code(0);
    assert!(!settled.stdout.contains("eu-west-1"), "a released lake leaves the plan: {}", settled.stdout);

    // Under Delete, a dropped region's lake goes after its sources.
    let file = manifest(dir.path(), "regions", &regions("us-east-1, eu-west-1", "Delete"));
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let file = manifest(dir.path(), "regions", &regions("us-east-1", "Delete"));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(
        plan.stdout.contains("- securitylake.data_lake/eu-west-1 (data lake in eu-west-1): no longer in the manifest"),
        "{}",
        plan.stdout
    );
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    assert_eq!((lake_regions(&emu).await, source_regions(&emu).await), (home.clone(), home));
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}
