//! End-to-end: the scorer deployed by `lakesight apply`, then a Security Lake notification run
//! through the real `ipcheck` binary against the emulator, with the function's own environment.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use lakesight::synthetic::{self, Filter, OcsfVersion, Part, Row, Selection, Source, pairs};
use support::{EMPTY_ZIP, Emulator, manifest, repo};

fn stack(package: &str) -> String {
    format!(
        "  timeouts:\n    pollInterval: 100ms\n  securityLake: {{}}\n  subscriber:\n    principal: \"123456789012\"\n    externalId: scorer-e2e-external-id\n  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n  training:\n    minAuc: 0.8\n    hyperparameters:\n      epochs: 10\n      learningRate: 0.01\n      miniBatchSize: 100\n  endpoint:\n    instanceType: ml.m5.large\n  scorer:\n    package: {package}\n    batchSize: 20\n    batchWindow: 2s\n    maxConcurrency: 4\n    threshold:\n      policy: fixed\n      value: 2.0\n    findings:\n      queue: true\n"
    )
}

struct Deployed {
    environment: BTreeMap<String, String>,
    lake_bucket: String,
    queue_arn: String,
    subscriber_role: String,
}

async fn deployed(emu: &Emulator, name: &str) -> Deployed {
    let function = emu.lambda().await.get_function().function_name(format!("lakesight-{name}-ipcheck")).send().await;
    let config = function.expect("the function exists").configuration().cloned().expect("configuration");
    let environment = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    let lake = emu.securitylake().await;
    let subscribers = lake.list_subscribers().send().await.expect("subscribers");
    let subscriber = subscribers.subscribers().first().expect("one subscriber");
    Deployed {
        environment: environment.into_iter().collect(),
        lake_bucket: subscriber.s3_bucket_arn().expect("bucket").trim_start_matches("arn:aws:s3:::").to_owned(),
        queue_arn: subscriber.subscriber_endpoint().expect("queue").to_owned(),
        subscriber_role: subscriber.role_arn().expect("role").to_owned(),
    }
}

async fn queue_messages(emu: &Emulator, name: &str) -> Vec<String> {
    let sqs = emu.sqs().await;
    let url = sqs.get_queue_url().queue_name(name).send().await.expect("queue").queue_url().expect("url").to_owned();
    let mut bodies = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.expect("receive");
        if out.messages().is_empty() {
            return bodies;
        }
        bodies.extend(out.messages().iter().filter_map(|m| m.body().map(str::to_owned)));
        for m in out.messages() {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .ok();
        }
    }
}

#[tokio::test]
async fn a_security_lake_notification_gives_the_expected_findings_and_destroy_removes_the_scorer() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's synthetic lake, training and serving");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipcheck.zip"), EMPTY_ZIP).expect("package");
    let file = manifest(dir.path(), "scorer", &stack("ipcheck.zip"));
    let history = emu.apply_and_seed(&file).await;
    // Three instances of the lake: the first at an address it uses, the others at TEST-NET
    // addresses that no instance ever uses. The deployed model, trained on the lake, decides.
    let [(a, a_ip), (b, _), (c, _)] = three_instances(&history);

    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    for created in [
        "lambda.function/ipcheck",
        "lambda.event-source-mapping/ipcheck",
        "sqs.queue/dead-letter",
        "sqs.queue/findings",
        "iam.policy/scorer-lake-access",
    ] {
        assert!(apply.stdout.contains(created), "{created}: {}", apply.stdout);
    }
    let replan = emu.run(&["plan", "--detailed-exitcode", "--stats"], &file);
    replan.expect_code(0);
    assert!(replan.stderr.contains(", 0 mutating,"), "{}", replan.stderr);

    let d = deployed(&emu, "scorer").await;
    assert_eq!(d.environment.get("LAKESIGHT_ENDPOINT").map(String::as_str), Some("lakesight-scorer-endpoint"));
    assert_eq!(d.environment.get("LAKESIGHT_THRESHOLD").map(String::as_str), Some("2"));
    for (var, queue) in [
        ("LAKESIGHT_FINDINGS_QUEUE_URL", "lakesight-scorer-ipcheck-findings"),
        ("LAKESIGHT_DEAD_LETTER_QUEUE_URL", "lakesight-scorer-ipcheck-dlq"),
    ] {
        let url = emu.sqs().await.get_queue_url().queue_name(queue).send().await.expect("queue");
        assert_eq!(d.environment.get(var).map(String::as_str), url.queue_url(), "{var} is the queue's URL");
    }
    let lambda = emu.lambda().await;
    let mappings =
        lambda.list_event_source_mappings().function_name("lakesight-scorer-ipcheck").send().await.expect("mappings");
    let mapping = mappings.event_source_mappings().first().expect("a mapping");
    assert_eq!(mapping.event_source_arn(), Some(d.queue_arn.as_str()), "triggered by the subscriber's queue");
    assert_eq!(mapping.batch_size(), Some(20));
    assert_eq!(mapping.maximum_batching_window_in_seconds(), Some(2));
    assert!(mapping.function_response_types().iter().any(|t| t.as_str() == "ReportBatchItemFailures"));
    let policy = emu
        .iam()
        .await
        .get_role_policy()
        .role_name("lakesight-scorer-scorer")
        .policy_name("lakesight-lake-access")
        .send()
        .await
        .expect("lake access policy");
    let document = percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8_lossy().into_owned();
    assert!(document.contains(&d.lake_bucket) && document.contains(&d.queue_arn), "{document}");

    // Two new objects in the lake, one in each OCSF version, under the AWS source prefix, and
    // notifications in Security Lake's own shape and in S3's two others.
    let v2 = synthetic::write_parquet(
        OcsfVersion::V2,
        &[
            Row::new(1_795_000_000_000, Some(a.as_str()), Some(a_ip.as_str())),
            Row::new(1_795_000_001_000, Some(a.as_str()), Some(a_ip.as_str())),
            Row::new(1_795_000_002_000, Some(b.as_str()), Some("203.0.113.5")),
            Row::new(1_795_000_003_000, Some(b.as_str()), Some("2001:db8::5")),
            Row::new(1_795_000_004_000, Some("-"), Some("203.0.113.9")),
        ],
    )
    .expect("v2 object");
    let v1 = synthetic::write_parquet(
        OcsfVersion::V1,
        &[
            Row::new(1_795_000_005_000, Some(a.as_str()), Some(a_ip.as_str())),
            Row::new(1_795_000_006_000, Some(c.as_str()), Some("198.51.100.7")),
        ],
    )
    .expect("v1 object");
    let v2_key = "aws/VPC_FLOW/2.0/region=us-east-1/accountId=111122223333/eventDay=20261126/flow 1.zstd.parquet";
    let v1_key = "aws/VPC_FLOW/1.0/region=us-east-1/accountId=111122223333/eventHour=2026112610/flow.gz.parquet";
    let s3 = emu.s3().await;
    for (key, bytes) in [(v2_key, v2), (v1_key, v1)] {
        s3.put_object().bucket(&d.lake_bucket).key(key).body(bytes.into()).send().await.expect("put object");
    }
    let event = synthetic::sqs_event(&[
        ("m-1", synthetic::security_lake_notification(&d.lake_bucket, v2_key)),
        ("m-2", synthetic::eventbridge_notification(&d.lake_bucket, v1_key)),
        ("m-3", synthetic::s3_notification(&d.lake_bucket, "aws/VPC_FLOW/2.0/deleted.parquet")),
        ("m-4", r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"lake"}"#.to_owned()),
    ]);
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event.to_string()).expect("event");

    let run = emu.ipcheck(&event_file, &d.environment);
    run.expect_code(0);
    let lines: Vec<serde_json::Value> =
        run.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let (response, findings) = lines.split_last().expect("a response");
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "the missing object is dead-lettered");
    let calls = emu.invocations();
    assert_eq!(calls.len(), 1, "three distinct pairs fit one request: {calls:?}");
    let sent: BTreeSet<&str> = calls[0]["lines"].as_array().expect("lines").iter().filter_map(|l| l.as_str()).collect();
    let asked =
        [(a.clone(), a_ip.clone()), (b.clone(), "203.0.113.5".to_owned()), (c.clone(), "198.51.100.7".to_owned())];
    let lines: BTreeSet<String> = asked.iter().map(|(e, ip)| format!("{e},{ip}")).collect();
    assert_eq!(sent, lines.iter().map(String::as_str).collect(), "each pair once, IPv4 only");

    // The findings are the pairs whose anomaly score, -dot_product as the endpoint answers it,
    // is above the threshold; and a model trained on the lake flags the TEST-NET addresses.
    let scores = emu.endpoint_scores("lakesight-scorer-endpoint", &asked).await;
    assert!(scores[0] > scores[1].max(scores[2]), "an instance's own address scores above TEST-NET ones: {scores:?}");
    let expected: BTreeMap<(String, String), f64> =
        asked.iter().cloned().zip(scores.iter().map(|s| -s)).filter(|(_, score)| *score > 2.0).collect();
    assert!(!expected.is_empty(), "the deployed model flags an instance at a TEST-NET address: {scores:?}");
    let mut found = BTreeMap::new();
    for f in findings {
        assert_eq!(f["kind"], "finding");
        assert_eq!(f["threshold"], 2.0);
        assert_eq!(f["endpoint"], "lakesight-scorer-endpoint");
        assert_eq!(f["modelGeneration"], "g1", "the variant that answered names the generation");
        let pair =
            (f["entity"].as_str().unwrap_or_default().to_owned(), f["ip"].as_str().unwrap_or_default().to_owned());
        found.insert(pair, f["score"].as_f64().expect("a score"));
        for (entity, key) in [(&b, v2_key), (&c, v1_key)] {
            if f["entity"] == entity.as_str() {
                assert_eq!(f["object"], format!("s3://{}/{key}", d.lake_bucket), "{f}");
            }
        }
    }
    assert_eq!(found.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{scores:?}");
    for (pair, score) in &found {
        assert!((score - expected[pair]).abs() < 1e-4, "{pair:?} scored {score}, the endpoint says {}", expected[pair]);
    }
    if let Some(on_b) = findings.iter().find(|f| f["entity"] == b.as_str()) {
        assert_eq!(on_b["firstSeen"], "2026-11-18T11:06:42.000Z");
    }

    // Read as the subscriber instead: the same object through credentials from AssumeRole.
    let mut as_subscriber = d.environment.clone();
    as_subscriber.insert("LAKESIGHT_SOURCE_ROLE_ARN".into(), d.subscriber_role.clone());
    as_subscriber.insert("LAKESIGHT_SOURCE_EXTERNAL_ID".into(), "scorer-e2e-external-id".into());
    as_subscriber.insert("LAKESIGHT_FINDINGS_QUEUE_URL".into(), String::new());
    let one = synthetic::sqs_event(&[("m-5", synthetic::security_lake_notification(&d.lake_bucket, v2_key))]);
    std::fs::write(&event_file, one.to_string()).expect("event");
    let again = emu.ipcheck(&event_file, &as_subscriber);
    again.expect_code(0);
    let last = again.stdout.lines().last().expect("response");
    assert_eq!(last, r#"{"batchItemFailures":[]}"#, "{}", again.stderr);
    for (entity, ip) in expected.keys().filter(|(e, _)| *e == b) {
        assert!(again.stdout.contains(&format!(r#""entity":"{entity}","ip":"{ip}""#)), "{}", again.stdout);
    }

    let queued = queue_messages(&emu, "lakesight-scorer-ipcheck-findings").await;
    assert_eq!(queued.len(), expected.len(), "one message a finding: {queued:?}");
    let dead = queue_messages(&emu, "lakesight-scorer-ipcheck-dlq").await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains("deleted.parquet"), "{dead:?}");

    let destroy = emu.run(&["destroy", "--auto-approve"], &file);
    destroy.expect_code(0);
    let function = lambda.get_function().function_name("lakesight-scorer-ipcheck").send().await;
    assert!(function.is_err_and(|e| e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception())));
    let mappings = lambda.list_event_source_mappings().event_source_arn(&d.queue_arn).send().await.expect("mappings");
    assert!(mappings.event_source_mappings().is_empty(), "{mappings:?}");
    let queues = emu.sqs().await.list_queues().queue_name_prefix("lakesight-scorer").send().await.expect("queues");
    assert!(queues.queue_urls().is_empty(), "{:?}", queues.queue_urls());
}

#[tokio::test]
async fn a_changed_package_is_uploaded_and_a_missing_one_is_refused_before_any_call() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = manifest(dir.path(), "nopkg", &stack("nowhere/ipcheck.zip"));
    let refused = emu.run(&["plan", "--stats"], &missing);
    refused.expect_code(1);
    assert!(refused.stderr.contains("spec.scorer.package"), "{}", refused.stderr);
    assert!(refused.stderr.contains("nowhere/ipcheck.zip is not a file"), "{}", refused.stderr);
    assert!(refused.stderr.contains("total: 0 calls"), "no AWS call is made: {}", refused.stderr);

    std::fs::write(dir.path().join("ipcheck.zip"), EMPTY_ZIP).expect("package");
    let file = manifest(dir.path(), "newpkg", &stack("ipcheck.zip"));
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let mut changed = EMPTY_ZIP.to_vec();
    changed.extend_from_slice(b"\0");
    std::fs::write(dir.path().join("ipcheck.zip"), changed).expect("new package");
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("~ lambda.function/ipcheck"), "{}", plan.stdout);
    assert!(plan.stdout.contains("code"), "{}", plan.stdout);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}

#[tokio::test]
async fn a_replaced_subscriber_brings_a_new_notification_and_trigger_in_the_same_apply() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    let file = manifest(dir.path(), "moved", &stack("ipcheck.zip"));
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let before = deployed(&emu, "moved").await.queue_arn;

    // S3 and Lake Formation access: a change Security Lake cannot make in place.
    let text = stack("ipcheck.zip").replace(
        "    externalId: scorer-e2e-external-id\n",
        "    externalId: scorer-e2e-external-id\n    access: [S3, LAKEFORMATION]\n",
    );
    let file = manifest(dir.path(), "moved", &text);
    let plan = emu.run(&["plan"], &file);
    assert!(plan.stdout.contains("-/+ securitylake.subscriber/scorer"), "{}", plan.stdout);
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(
        apply.stdout.contains("securitylake.notification/scorer: approved as NoOp, carried out as Create"),
        "{}",
        apply.stdout
    );
    assert!(
        apply.stdout.contains("lambda.event-source-mapping/ipcheck: approved as NoOp, carried out as Replace"),
        "{}",
        apply.stdout
    );
    let after = deployed(&emu, "moved").await.queue_arn;
    assert_ne!(after, before, "the new subscriber has a queue of its own");
    let mappings = emu.lambda().await.list_event_source_mappings().send().await.expect("mappings");
    let sources: Vec<&str> = mappings.event_source_mappings().iter().filter_map(|m| m.event_source_arn()).collect();
    assert_eq!(sources, [after.as_str()], "the trigger reads the new queue, and only it");
    let access = emu
        .iam()
        .await
        .get_role_policy()
        .role_name("lakesight-moved-scorer")
        .policy_name("lakesight-lake-access")
        .send()
        .await
        .expect("the scorer role's lake access");
    let document = percent_encoding::percent_decode_str(access.policy_document()).decode_utf8_lossy().into_owned();
    assert!(
        document.contains(&after) && !document.contains(&before),
        "the lake access names the new queue: {document}"
    );
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}

/// Three instances of the lake's history, each with an address it used on the last day written.
fn three_instances(history: &synthetic::Lake) -> [(String, String); 3] {
    let day = *history.days(Part::History).last().expect("a day of history");
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for net in &history.world.networks {
        let records = history.records(Source::VpcFlow, &net.account, &net.region, day);
        for (entity, ip) in pairs(&records, &Filter::new(Selection::SourceEndpoint)) {
            if ip.parse::<std::net::Ipv4Addr>().is_ok() {
                seen.entry(entity).or_insert(ip);
            }
        }
    }
    let mut three = seen.into_iter();
    [(); 3].map(|()| three.next().expect("three instances in the lake"))
}

/// Findings from the findings queue until one is on `pair`, for up to 90 seconds.
async fn findings_until(emu: &Emulator, queue: &str, pair: &(String, String)) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut findings = Vec::new();
    while std::time::Instant::now() < deadline {
        findings.extend(findings_arriving(emu, queue, std::time::Duration::from_secs(5)).await);
        if findings.iter().any(|f| f["entity"] == pair.0.as_str() && f["ip"] == pair.1.as_str()) {
            break;
        }
    }
    findings
}

/// Findings from the findings queue, waiting up to `patience` for the first.
async fn findings_arriving(emu: &Emulator, queue: &str, patience: std::time::Duration) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let bodies = queue_messages(emu, queue).await;
        if !bodies.is_empty() || std::time::Instant::now() > deadline {
            let mut findings = Vec::new();
            for body in bodies {
                let value: serde_json::Value = serde_json::from_str(&body).expect("a finding is JSON");
                match value {
                    serde_json::Value::Array(batch) => findings.extend(batch),
                    one => findings.push(one),
                }
            }
            return findings;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_new_days_objects_run_the_deployed_package_from_the_subscribers_queue() {
    new_day_runs_the_package(OcsfVersion::V2, "2.0").await;
}

#[tokio::test]
async fn a_new_days_objects_of_source_version_1_run_the_deployed_package_too() {
    new_day_runs_the_package(OcsfVersion::V1, "1.0").await;
}

/// Deploys the release package on a lake of `version`, writes the lake's last day, and checks
/// that the function ran from the subscriber's queue and sent the findings the scores call for.
async fn new_day_runs_the_package(version: OcsfVersion, label: &str) {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!(
            "skipped: notifications from new objects and a Lambda that runs the package are the bundled emulator's"
        );
        return;
    }
    let package = repo().join("target/lambda/ipcheck-x86_64.zip");
    assert!(package.exists(), "build the package first: scorer/package x86_64 (make test does)");
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = format!(
        "  securityLake:\n    sources:\n      - name: VPC_FLOW\n        version: \"{label}\"\n      - name: ROUTE53\n        version: \"{label}\"\n"
    );
    let text = stack(&package.display().to_string()).replace("  securityLake: {}\n", &sources);
    let file = manifest(dir.path(), "live", &text);
    let first = emu.run(&["apply", "--auto-approve"], &file);
    first.expect_code(0);
    let history = emu.seed_lake(Part::History, &[version]).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);

    // The new day's pairs, and one more in an object of that day: an instance at a TEST-NET
    // address no instance uses. The deployed model, trained on the history, flags the stranger.
    let last = history.spec.last_day;
    let net = &history.world.networks[0];
    let mut asked = pairs(
        &history.records(Source::VpcFlow, &net.account, &net.region, last),
        &Filter::new(Selection::SourceEndpoint),
    );
    let entity = asked.first().map(|(e, _)| e.clone()).expect("the new day has pairs");
    let ip = "203.0.113.5".to_owned();
    asked.push((entity.clone(), ip.clone()));
    asked.retain(|(_, a)| a.parse::<std::net::Ipv4Addr>().is_ok());
    asked.sort();
    asked.dedup();
    let scores = emu.endpoint_scores("lakesight-live-endpoint", &asked).await;
    let flagged: BTreeMap<(String, String), f64> =
        asked.into_iter().zip(scores.iter().map(|s| -s)).filter(|(_, score)| *score > 2.0).collect();
    let stranger = (entity.clone(), ip.clone());
    assert!(flagged.contains_key(&stranger), "the deployed model flags {stranger:?}: {flagged:?}");

    // Security Lake writes the new day; the emulator notifies the subscriber's queue, and the
    // event source mapping runs the deployed bootstrap on it.
    emu.write_lake(&history, Part::LastDay).await;
    let s3 = emu.s3().await;
    let bucket = synthetic::s3::lake_bucket(&s3, "us-east-1").await.expect("the lake's bucket");
    let row = Row::new(last.start_ms() + 3_600_000, Some(entity.as_str()), Some(ip.as_str()));
    let object = synthetic::write_parquet(version, &[row]).expect("the stranger's object");
    let key = format!(
        "aws/VPC_FLOW/{label}/region={}/accountId={}/eventDay={last}/stranger.parquet",
        net.region, net.account
    );
    s3.put_object().bucket(&bucket).key(&key).body(object.into()).send().await.expect("put the stranger's object");
    let findings = findings_until(&emu, "lakesight-live-ipcheck-findings", &stranger).await;
    // The function finishes its invocation after it sends the findings: wait for its REPORT line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut log = emu.function_log("lakesight-live-ipcheck");
    while !log.iter().any(|l| l.starts_with("REPORT")) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        log = emu.function_log("lakesight-live-ipcheck");
    }
    assert!(!findings.is_empty(), "findings from the deployed function; its log:\n{}", log.join("\n"));
    for finding in &findings {
        let pair = (
            finding["entity"].as_str().unwrap_or_default().to_owned(),
            finding["ip"].as_str().unwrap_or_default().to_owned(),
        );
        let expected = flagged.get(&pair).unwrap_or_else(|| panic!("{finding} is not a pair the endpoint flags"));
        let score = finding["score"].as_f64().expect("a score");
        assert!((score - expected).abs() < 1e-4, "{finding}: the endpoint says {expected}");
        let object = finding["object"].as_str().unwrap_or_default();
        assert!(object.contains(&format!("eventDay={last}")), "from the new day: {object}");
    }
    assert!(log.iter().any(|l| l.starts_with("START")) && log.iter().any(|l| l.starts_with("REPORT")), "{log:?}");
    assert!(log.iter().any(|l| l.contains(&entity)), "the function logs its findings: {log:?}");
}
