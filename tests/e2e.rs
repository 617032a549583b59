//! End-to-end: the real binary against the emulator (or any endpoint in `AWS_ENDPOINT_URL`).

mod support;

use lakesight::synthetic::{OcsfVersion, Part};
use support::{EMPTY_ZIP, Emulator, manifest, owned_by, repo};

const QUICKSTART_STACK: &str = "quickstart";

/// The quickstart as shipped, in `dir`, with a stand-in for the release package that `make
/// quickstart` builds: the manifest's path and text.
fn quickstart(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let text = std::fs::read_to_string(repo().join("manifests/quickstart.yaml")).expect("quickstart");
    let text = text.replace("../target/lambda/ipcheck-x86_64.zip", "ipcheck.zip");
    std::fs::write(dir.join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    let file = dir.join("quickstart.yaml");
    std::fs::write(&file, &text).expect("manifest");
    (file, text)
}

#[tokio::test]
async fn quickstart_applies_replans_clean_reports_status_and_destroys_everything() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = quickstart(dir.path());

    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(apply.stdout.contains("21 to create"), "{}", apply.stdout);
    assert!(apply.stdout.contains("waiting for data: 0 rows, 0 entities"), "a new lake is empty: {}", apply.stdout);
    emu.seed_lake(Part::History, &[OcsfVersion::V2]).await;
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    let created = apply.stdout.lines().any(|l| l.trim_start().starts_with("+ sagemaker.endpoint/scorer ("));
    assert!(created, "trains once the lake has data: {}", apply.stdout);
    let owned = owned_by(&emu, QUICKSTART_STACK).await;
    assert_eq!(owned.len(), 10, "bucket, function, trigger, two queues, three roles, data lake, subscriber: {owned:?}");

    let replan = emu.run(&["plan", "--detailed-exitcode", "--stats"], &file);
    replan.expect_code(0);
    assert!(replan.stdout.contains("No changes"), "{}", replan.stdout);
    assert!(replan.stderr.contains(", 0 mutating,"), "{}", replan.stderr);
    assert!(replan.stderr.contains("GetRole"), "stats list the calls made: {}", replan.stderr);
    // One reader per fact: the subscriber and the training jobs are listed once, by their own resources.
    let count = |operation: &str| -> u64 {
        let line = replan.stderr.lines().find(|l| l.split_whitespace().nth(1) == Some(operation));
        line.and_then(|l| l.split_whitespace().nth(2)?.parse().ok()).unwrap_or(0)
    };
    assert_eq!((count("ListSubscribers"), count("ListTrainingJobs")), (1, 1), "{}", replan.stderr);
    assert!(replan.stderr.contains("read-only calls for 22 resources"), "{}", replan.stderr);
    // One read per resource: no operation runs more often than once per resource that reads
    // with it (SageMaker's ListTags, for the endpoint, the training job and two generations' model
    // and configuration), and the reads stay within three calls per resource.
    let operations: Vec<(&str, u64)> = replan
        .stderr
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (service, operation, calls) = (words.next()?, words.next()?, words.next()?.parse().ok()?);
            (service.chars().all(|c| c.is_ascii_alphanumeric()) && service != "reads:").then_some((operation, calls))
        })
        .collect();
    assert!(operations.len() > 10, "every operation is listed: {}", replan.stderr);
    assert!(operations.iter().all(|&(_, calls)| calls <= 6), "{operations:?}");
    let reads: u64 = operations.iter().map(|&(_, calls)| calls).sum();
    assert!(reads <= 3 * 22, "{reads} reads: {operations:?}");

    let reapply = emu.run(&["apply", "--auto-approve", "--stats"], &file);
    reapply.expect_code(0);
    assert!(reapply.stderr.contains(", 0 mutating,"), "a no-op apply mutates nothing: {}", reapply.stderr);
    assert!(
        reapply.stderr.contains("writes of lakesight's records"),
        "its lock and record are counted apart: {}",
        reapply.stderr
    );

    let status = emu.run(&["status"], &file);
    status.expect_code(0);
    for address in [
        "s3.bucket/artifacts",
        "iam.role/sagemaker",
        "iam.role/scorer",
        "iam.role/metastore",
        "securitylake.data_lake/us-east-1",
        "securitylake.subscriber/scorer",
        "sagemaker.endpoint/scorer",
        "lambda.function/ipcheck",
        "lambda.event-source-mapping/ipcheck",
        "sqs.queue/dead-letter",
    ] {
        let line = status
            .stdout
            .lines()
            .find(|l| l.starts_with(address))
            .unwrap_or_else(|| panic!("{address} in {}", status.stdout));
        assert!(line.contains("in sync") && line.contains("arn:aws:"), "{line}");
    }

    // Ad-hoc pairs on the live endpoint, judged by the deployed scorer's threshold (the manifest's 4.0).
    let pairs = dir.path().join("pairs.csv");
    std::fs::write(&pairs, "i-0001,10.0.0.1\ni-0001,203.0.113.9\n").expect("pairs");
    let score = emu.run(&["score", "--input", pairs.to_str().expect("utf-8 path"), "--output", "json"], &file);
    score.expect_code(0);
    let scored: serde_json::Value = serde_json::from_str(&score.stdout).expect("score JSON");
    assert_eq!(scored["threshold"], 4.0, "{scored}");
    let scored = scored["pairs"].as_array().expect("pairs");
    assert_eq!(scored.len(), 2);
    for pair in scored {
        let (dot, score) = (pair["dotProduct"].as_f64().expect("dot"), pair["score"].as_f64().expect("score"));
        assert_eq!(score, -dot, "{pair}");
        assert_eq!(pair["verdict"], if score > 4.0 { "finding" } else { "normal" }, "{pair}");
    }

    let destroy = emu.run(&["destroy", "--auto-approve"], &file);
    destroy.expect_code(0);
    assert!(
        destroy.stdout.contains("iam.role/metastore (lakesight-quickstart-metastore): kept: the retained securitylake.data_lake/us-east-1 needs it"),
        "the retained lake keeps its metastore manager role: {}",
        destroy.stdout
    );
    assert!(status.stdout.contains("123456789012/us-east-1 COLLECTING"), "source health: {}", status.stdout);
    assert_eq!(
        owned_by(&emu, QUICKSTART_STACK).await,
        ["data lake us-east-1", "role lakesight-quickstart-metastore"],
        "only the retained lake and what it needs are left"
    );
    let again = emu.run(&["plan", "--destroy", "--detailed-exitcode"], &file);
    again.expect_code(0);
    assert!(again.stdout.contains("No changes"), "a completed destroy is a no-op: {}", again.stdout);
    let second = emu.run(&["destroy", "--auto-approve", "--stats"], &file);
    second.expect_code(0);
    assert!(second.stderr.contains(", 0 mutating,"), "a second destroy changes nothing: {}", second.stderr);

    let after = emu.run(&["plan", "--detailed-exitcode"], &file);
    after.expect_code(2);
}

#[tokio::test]
async fn a_section_dropped_from_the_manifest_takes_its_resources_with_it() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, text) = quickstart(dir.path());
    // Instance settings of its own: the dropped configuration is not named by the defaults.
    let endpoint = "  endpoint:\n    instanceType: ml.m5.large\n";
    let text = text.replace(endpoint, "  endpoint:\n    instanceType: ml.c5.large\n    instanceCount: 2\n");
    // And a subscriber of a name of its own, which a default-named lookup would not find.
    let subscriber = "  subscriber:\n    principal: \"123456789012\"\n    externalId: quickstart-external-id\n";
    assert!(text.contains(subscriber), "{text}");
    let text = text.replace(subscriber, &format!("{subscriber}    name: security-analytics\n"));
    std::fs::write(&file, &text).expect("manifest");
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);

    // No scorer any more: its function, trigger, queues and role go with the next apply.
    let without_scorer = &text[..text.find("  scorer:\n").expect("a scorer section")];
    std::fs::write(&file, without_scorer).expect("manifest");
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    for address in [
        "lambda.function/ipcheck",
        "lambda.event-source-mapping/ipcheck",
        "sqs.queue/dead-letter",
        "sqs.queue/findings",
        "iam.role/scorer",
    ] {
        let line = plan.stdout.lines().find(|l| l.contains(&format!("- {address} (")));
        assert!(line.is_some_and(|l| l.ends_with("no longer in the manifest")), "{address}: {}", plan.stdout);
    }
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let owned = owned_by(&emu, QUICKSTART_STACK).await;
    assert!(
        !owned.iter().any(|o| o.starts_with("function")
            || o.starts_with("event source mapping")
            || o.starts_with("queue")
            || o.ends_with("-scorer")),
        "{owned:?}"
    );
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    // Nor training and an endpoint: the endpoint and every generation's configuration and model
    // go too, though neither their digest nor their instance settings are declared any more.
    let endpoint = "  endpoint:\n    instanceType: ml.c5.large\n    instanceCount: 2\n";
    let (before, rest) = without_scorer.split_once("  training:\n").expect("a training section");
    let (_, rest) = rest.split_once(endpoint).expect("the endpoint section after training");
    std::fs::write(&file, format!("{before}{rest}")).expect("manifest");
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(apply.stdout.contains("sagemaker.endpoint/scorer"), "{}", apply.stdout);
    let sagemaker = emu.sagemaker().await;
    let endpoints = sagemaker.list_endpoints().send().await.expect("ListEndpoints");
    let configs = sagemaker.list_endpoint_configs().send().await.expect("ListEndpointConfigs");
    let models = sagemaker.list_models().send().await.expect("ListModels");
    assert_eq!(
        (endpoints.endpoints().len(), configs.endpoint_configs().len(), models.models().len()),
        (0, 0, 0),
        "{}",
        apply.stdout
    );
    let settled = emu.run(&["plan", "--detailed-exitcode"], &file);
    settled.expect_code(0);
    assert!(settled.stdout.contains("No changes"), "{}", settled.stdout);

    // Nor the subscriber: found by its owner tag under its own name, it goes with its notification.
    let text = std::fs::read_to_string(&file).expect("manifest");
    let subscriber = format!("{subscriber}    name: security-analytics\n");
    assert!(text.contains(&subscriber), "{text}");
    std::fs::write(&file, text.replace(&subscriber, "")).expect("manifest");
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(apply.stdout.contains("securitylake.subscriber/scorer"), "{}", apply.stdout);
    let lake = emu.securitylake().await;
    let subscribers = lake.list_subscribers().send().await.expect("ListSubscribers");
    assert!(subscribers.subscribers().is_empty(), "{:?}", subscribers.subscribers());
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}

#[tokio::test]
async fn an_apply_right_after_a_destroy_waits_out_the_services_delete_windows() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: the delete windows are the bundled emulator's settings");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = quickstart(dir.path());
    // SQS holds a deleted queue's name for a while; an endpoint reads as Deleting for some polls.
    emu.configure(r#"{"queueDeletedRecentlySeconds": 6, "pendingPolls": {"endpointDelete": 3}}"#);
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);

    let destroy = emu.run(&["destroy", "--auto-approve"], &file);
    destroy.expect_code(0);
    let endpoints = emu.sagemaker().await.list_endpoints().send().await.expect("ListEndpoints");
    assert!(endpoints.endpoints().is_empty(), "destroy is done once the endpoint is gone: {}", destroy.stdout);

    let again = emu.run(&["apply", "--auto-approve"], &file);
    assert_eq!(again.code, 0, "the queues' names come free while apply waits:\n{}\n{}", again.stdout, again.stderr);
    let queues = emu.sqs().await.list_queues().queue_name_prefix("lakesight-quickstart").send().await;
    let queues = queues.expect("ListQueues");
    assert_eq!(queues.queue_urls().len(), 2, "dead-letter and findings queues: {:?}", queues.queue_urls());
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}

#[tokio::test]
async fn plan_json_lists_every_action_with_its_reason() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "jsonplan", "  securityLake:\n    manage: true\n  retrain: {}\n");
    let run = emu.run(&["plan", "--output", "json", "--detailed-exitcode"], &file);
    run.expect_code(2);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    let nodes = plan["nodes"].as_array().expect("nodes");
    let addresses: Vec<&str> = nodes.iter().filter_map(|n| n["address"].as_str()).collect();
    assert!(addresses.contains(&"iam.role/metastore"), "a managed lake needs the metastore role: {addresses:?}");
    assert!(nodes.iter().all(|n| n["action"] == "create" && n["reason"] == "does not exist"), "{nodes:?}");
    assert!(addresses.contains(&"securitylake.log_source/VPC_FLOW"), "{addresses:?}");
    assert!(!run.stderr.contains("does not yet reconcile"), "every section is reconciled: {}", run.stderr);
}

#[tokio::test]
async fn unowned_resource_is_refused_before_any_change_and_adopted_on_request() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "adoptme", "  securityLake: {}\n");
    let iam = emu.iam().await;
    iam.create_role()
        .role_name("lakesight-adoptme-metastore")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("pre-create an untagged role");

    let refused = emu.run(&["apply", "--auto-approve"], &file);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("lakesight-adoptme-metastore exists but is not this stack's")
            && refused.stderr.contains("it carries no lakesight:stack tag")
            && refused.stderr.contains("pass --adopt"),
        "{}",
        refused.stderr
    );
    assert!(owned_by(&emu, "adoptme").await.is_empty(), "nothing may be created when the plan is refused");

    let adopted = emu.run(&["apply", "--auto-approve", "--adopt"], &file);
    adopted.expect_code(0);
    assert!(adopted.stdout.contains("adopted"), "{}", adopted.stdout);
    let role = iam.get_role().role_name("lakesight-adoptme-metastore").send().await.expect("role");
    let role = role.role().expect("role body");
    assert!(
        role.assume_role_policy_document().unwrap_or_default().contains("lambda.amazonaws.com"),
        "trust policy repaired"
    );
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
}

#[tokio::test]
async fn drift_is_planned_with_its_field_and_repaired() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "drifty", "  securityLake: {}\n");
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);

    let iam = emu.iam().await;
    iam.put_role_policy()
        .role_name("lakesight-drifty-metastore")
        .policy_name("lakesight")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .send()
        .await
        .expect("tamper with the inline policy");
    emu.s3()
        .await
        .delete_public_access_block()
        .bucket("lakesight-drifty-123456789012-us-east-1")
        .send()
        .await
        .expect("unblock");

    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("~ iam.role/metastore") && plan.stdout.contains("inlinePolicy"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ s3.bucket/artifacts") && plan.stdout.contains("publicAccessBlock"),
        "{}",
        plan.stdout
    );

    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);
    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
}

/// The smallest stack with a scorer: no training, so nothing is trained and no endpoint is made.
const SCORER_WITHOUT_TRAINING: &str = "  securityLake: {}\n  subscriber:\n    principal: \"123456789012\"\n    externalId: outside-external-id\n  endpoint:\n    instanceType: ml.m5.large\n  scorer:\n    package: ipcheck.zip\n    threshold:\n      policy: fixed\n      value: 9\n    findings:\n      queue: true\n";

/// The lines of `address`'s entry in a plan's text: its header, then its field lines.
fn plan_entry<'a>(plan: &'a str, address: &str) -> Vec<&'a str> {
    let mut lines = plan.lines().skip_while(|l| l.split_whitespace().nth(1) != Some(address));
    let header = lines.next().into_iter();
    header.chain(lines.take_while(|l| l.starts_with("      "))).map(str::trim).collect()
}

#[tokio::test]
async fn tags_environment_and_sources_changed_outside_lakesight_are_planned_as_drift_and_repaired() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    let file = manifest(dir.path(), "outside", SCORER_WITHOUT_TRAINING);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    // Someone removes the team tag from the function and the findings queue, lowers the
    // scorer's threshold, and disables the VPC flow log source.
    let (function, queue) = ("lakesight-outside-ipcheck", "lakesight-outside-ipcheck-findings");
    let lambda = emu.lambda().await;
    let config = lambda.get_function_configuration().function_name(function).send().await.expect("configuration");
    let arn = config.function_arn().expect("function ARN").to_owned();
    let mut variables = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(variables.get("LAKESIGHT_THRESHOLD").map(String::as_str), Some("9"), "{variables:?}");
    variables.insert("LAKESIGHT_THRESHOLD".into(), "4".into());
    lambda
        .update_function_configuration()
        .function_name(function)
        .environment(aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build())
        .send()
        .await
        .expect("edit the threshold");
    lambda.untag_resource().resource(&arn).tag_keys("team").send().await.expect("untag the function");
    let sqs = emu.sqs().await;
    let url = sqs.get_queue_url().queue_name(queue).send().await.expect("queue URL");
    let url = url.queue_url().expect("a URL").to_owned();
    sqs.untag_queue().queue_url(&url).tag_keys("team").send().await.expect("untag the queue");
    let lake = emu.securitylake().await;
    let vpc_flow = aws_sdk_securitylake::types::AwsLogSourceConfiguration::builder()
        .source_name(aws_sdk_securitylake::types::AwsLogSourceName::VpcFlow)
        .source_version("2.0")
        .accounts("123456789012")
        .regions("us-east-1")
        .build()
        .expect("source configuration");
    lake.delete_aws_log_source().sources(vpc_flow).send().await.expect("disable VPC_FLOW");

    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    let expected: [(&str, &[&str]); 3] = [
        (
            "lambda.function/ipcheck",
            &[
                "~ lambda.function/ipcheck (lakesight-outside-ipcheck): drifted: environment.LAKESIGHT_THRESHOLD, tags",
                "environment.LAKESIGHT_THRESHOLD: 4 -> 9",
                "tags: {team=(unset)} -> {team=secops}",
            ],
        ),
        (
            "sqs.queue/findings",
            &[
                "~ sqs.queue/findings (lakesight-outside-ipcheck-findings): drifted: tags",
                "tags: {team=(unset)} -> {team=secops}",
            ],
        ),
        (
            "securitylake.log_source/VPC_FLOW",
            &[
                "~ securitylake.log_source/VPC_FLOW (VPC_FLOW 2.0): drifted: coverage",
                "coverage: disabled -> 123456789012/us-east-1@2.0",
            ],
        ),
    ];
    for (address, lines) in expected {
        assert_eq!(plan_entry(&plan.stdout, address), lines, "{}", plan.stdout);
    }
    assert!(plan.stdout.contains("0 to create, 3 to update, 0 to replace, 0 to delete"), "{}", plan.stdout);

    let json = emu.run(&["plan", "--output", "json"], &file);
    json.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    let node = |address: &str| -> serde_json::Value {
        let nodes = json["nodes"].as_array().expect("nodes");
        nodes.iter().find(|n| n["address"] == address).cloned().unwrap_or_else(|| panic!("{address} in {json}"))
    };
    let change = |field: &str, from: &str, to: &str| serde_json::json!({"field": field, "from": from, "to": to, "requiresReplace": false});
    let function_node = node("lambda.function/ipcheck");
    assert_eq!(function_node["action"], "update", "{function_node}");
    assert_eq!(
        function_node["changes"],
        serde_json::json!([
            change("environment.LAKESIGHT_THRESHOLD", "4", "9"),
            change("tags", "{team=(unset)}", "{team=secops}")
        ]),
    );
    assert_eq!(
        node("sqs.queue/findings")["changes"],
        serde_json::json!([change("tags", "{team=(unset)}", "{team=secops}")])
    );
    let source = node("securitylake.log_source/VPC_FLOW");
    assert_eq!((&source["action"], &source["reason"]), (&"update".into(), &"drifted: coverage".into()), "{source}");
    assert_eq!(source["changes"], serde_json::json!([change("coverage", "disabled", "123456789012/us-east-1@2.0")]));

    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    // Repaired, as an independent read sees it.
    let function_now = lambda.get_function().function_name(function).send().await.expect("GetFunction");
    assert_eq!(function_now.tags().and_then(|t| t.get("team")).map(String::as_str), Some("secops"));
    let variables = function_now.configuration().and_then(|c| c.environment()?.variables()).cloned();
    assert_eq!(variables.unwrap_or_default().get("LAKESIGHT_THRESHOLD").map(String::as_str), Some("9"));
    let queue_tags = sqs.list_queue_tags().queue_url(&url).send().await.expect("ListQueueTags");
    assert_eq!(queue_tags.tags().and_then(|t| t.get("team")).map(String::as_str), Some("secops"));
    let sources = lake.list_log_sources().regions("us-east-1").send().await.expect("ListLogSources");
    let enabled: Vec<String> = sources
        .sources()
        .iter()
        .flat_map(|s| s.sources())
        .filter_map(|r| match r {
            aws_sdk_securitylake::types::LogSourceResource::AwsLogSource(a) => {
                Some(format!("{}@{}", a.source_name()?.as_str(), a.source_version()?))
            }
            _ => None,
        })
        .collect();
    assert!(enabled.contains(&"VPC_FLOW@2.0".to_owned()), "{enabled:?}");
    let settled = emu.run(&["plan", "--detailed-exitcode"], &file);
    settled.expect_code(0);
    assert!(settled.stdout.contains("No changes"), "{}", settled.stdout);
}

#[tokio::test]
async fn apply_without_a_terminal_requires_auto_approve_and_changes_nothing() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "noprompt", "");
    let run = emu.run(&["apply"], &file);
    run.expect_code(64);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    assert!(owned_by(&emu, "noprompt").await.is_empty());
}

#[tokio::test]
async fn the_manifest_region_overrides_the_environment_default() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "pinned", "");
    let run = support::Run::of(emu.lakesight().env("AWS_REGION", "eu-west-1").args(["plan", "-f"]).arg(&file));
    run.expect_code(0);
    assert!(run.stdout.contains("lakesight-pinned-123456789012-us-east-1"), "{}", run.stdout);
}

#[tokio::test]
async fn retained_bucket_survives_destroy() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(
        dir.path(),
        "keeper",
        "  artifactBucket:\n    deletionPolicy: Retain\n  securityLake:\n    deletionPolicy: Delete\n",
    );
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let destroy = emu.run(&["destroy", "--auto-approve"], &file);
    destroy.expect_code(0);
    assert!(destroy.stdout.contains("kept by its deletionPolicy (Retain)"), "{}", destroy.stdout);
    assert_eq!(owned_by(&emu, "keeper").await, ["bucket lakesight-keeper-123456789012-us-east-1"]);
}

#[tokio::test]
async fn injected_latency_is_ridden_out_and_calls_still_counted() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: behaviour settings need the bundled emulator");
        return;
    }
    emu.configure(r#"{"latencyMs": {"CreateRole": 300, "GetRole": 50}}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "slow", "  securityLake: {}\n");
    let run = emu.run(&["apply", "--auto-approve", "--stats"], &file);
    run.expect_code(0);
    let create_roles =
        run.stderr.lines().find(|l| l.contains("CreateRole")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(create_roles.split_whitespace().any(|w| w == "1"), "the metastore manager role: {create_roles}");
}
