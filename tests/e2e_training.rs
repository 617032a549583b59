//! End-to-end: features feeding an IP Insights training job, generations and the quality gate.

mod support;

use std::collections::HashMap;

use support::{Emulator, manifest};

const STACK: &str = "  timeouts:\n    pollInterval: 100ms\n  securityLake: {}\n  features:\n    windowDays: 14\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n  training:\n    minAuc: 0.8\n    hyperparameters:\n      epochs: EPOCHS\n";

fn stack(epochs: u32) -> String {
    STACK.replace("EPOCHS", &epochs.to_string())
}

/// Jobs of a stack, newest generation last.
async fn jobs(emu: &Emulator, stack: &str) -> Vec<String> {
    let out = emu
        .sagemaker()
        .await
        .list_training_jobs()
        .name_contains(format!("lakesight-{stack}-g"))
        .send()
        .await
        .expect("list");
    let mut names: Vec<String> =
        out.training_job_summaries().iter().filter_map(|s| s.training_job_name().map(str::to_owned)).collect();
    names.sort();
    names
}

/// The feature run's record of `stack`.
async fn run_record(emu: &Emulator, stack: &str) -> serde_json::Value {
    let s3 = emu.s3().await;
    let bucket = format!("lakesight-{stack}-123456789012-us-east-1");
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("features/runs/").send().await.expect("list");
    let key = listed.contents().iter().find_map(|o| o.key()).expect("a run record").to_owned();
    let body = s3.get_object().bucket(&bucket).key(&key).send().await.expect("get").body.collect().await;
    serde_json::from_slice(&body.expect("body").into_bytes()).expect("record JSON")
}

#[tokio::test]
async fn training_uses_both_channels_and_derived_hyperparameters_and_retrains_only_on_change() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's synthetic lake and training");
        return;
    }
    emu.configure(r#"{"pendingPolls": {"trainingJob": 3}}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "trainer", &stack(5));
    emu.apply_and_seed(&file).await;
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    assert!(apply.stderr.contains("sagemaker.training_job/current: InProgress / Starting"), "{}", apply.stderr);

    let first = jobs(&emu, "trainer").await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("lakesight-trainer-g1-"), "{first:?}");
    let job =
        emu.sagemaker().await.describe_training_job().training_job_name(&first[0]).send().await.expect("describe");
    let channels: HashMap<&str, &str> = job
        .input_data_config()
        .iter()
        .filter_map(|c| Some((c.channel_name()?, c.data_source()?.s3_data_source()?.s3_uri()?)))
        .collect();
    assert!(channels["train"].contains("/features/") && channels["train"].ends_with("/train/"), "{channels:?}");
    assert!(channels["validation"].ends_with("/validation/"), "{channels:?}");
    let hp = job.hyper_parameters().expect("hyperparameters");
    let entities = run_record(&emu, "trainer").await["distinctEntities"].as_u64().expect("entities");
    let twice = (2 * entities).to_string();
    assert_eq!(hp.get("num_entity_vectors"), Some(&twice), "twice the {entities} entities of the training split");
    assert_eq!(hp.get("epochs").map(String::as_str), Some("5"));
    assert_eq!(hp.get("vector_dim").map(String::as_str), Some("128"));
    assert!(
        job.algorithm_specification().and_then(|a| a.training_image()).is_some_and(|i| i.ends_with("/ipinsights:1"))
    );

    let replan = emu.run(&["plan", "--detailed-exitcode"], &file);
    replan.expect_code(0);

    let file = manifest(dir.path(), "trainer", &stack(6));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+ sagemaker.training_job/current (lakesight-trainer-g?-"), "{}", plan.stdout);
    assert!(plan.stdout.contains(&format!("inputs changed since {}", first[0])), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("    features.run/current (features-") && !plan.stdout.contains("+ features.run"),
        "features are unchanged: {}",
        plan.stdout
    );
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let second = jobs(&emu, "trainer").await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second[1].starts_with("lakesight-trainer-g2-"), "{second:?}");
}

#[tokio::test]
async fn a_model_below_the_gate_and_a_failed_job_stop_the_apply_with_the_reason() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the emulator's training and its failure fault");
        return;
    }
    // A deliberately weak configuration: one epoch at the smallest learning rate hardly moves the
    // model from its random start, so the real job's AUC stays far below the gate.
    let weak = stack(1) + "      learningRate: 0.000001\n  endpoint: {}\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "gated", &weak);
    emu.apply_and_seed(&file).await;
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(1);
    let gate = apply.stderr.lines().find(|l| l.contains("quality gate:")).unwrap_or_else(|| panic!("{}", apply.stderr));
    let auc: f64 = gate
        .split("validation:discriminator_auc ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the job's AUC in {gate}"));
    assert!(auc < 0.8 && gate.contains("below the minimum 0.8"), "{gate}");
    assert!(apply.stdout.contains("skipped sagemaker.endpoint/scorer"), "never deployed: {}", apply.stdout);

    emu.configure(r#"{"failTraining": "AlgorithmError: no validation data"}"#);
    let file = manifest(dir.path(), "gated", &stack(7));
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(1);
    assert!(apply.stderr.contains("AlgorithmError: no validation data"), "{}", apply.stderr);
}

const SERVED: &str = "  endpoint:\n    instanceType: ml.m5.large\n  retrain:\n    keepGenerations: 2\n";

async fn serving(emu: &Emulator, stack: &str) -> Option<String> {
    let sm = emu.sagemaker().await;
    let name = format!("lakesight-{stack}-endpoint");
    let listed = sm.list_endpoints().name_contains(&name).send().await.expect("ListEndpoints");
    if !listed.endpoints().iter().any(|e| e.endpoint_name() == Some(name.as_str())) {
        return None;
    }
    let out = sm.describe_endpoint().endpoint_name(&name).send().await.expect("describe");
    out.endpoint_config_name().map(str::to_owned)
}

/// The models of `stack`: `lakesight-<stack>-g<N>-...`, filtered here because emulators may ignore `NameContains`.
async fn models(emu: &Emulator, stack: &str) -> Vec<String> {
    let out =
        emu.sagemaker().await.list_models().name_contains(format!("lakesight-{stack}-g")).send().await.expect("models");
    let prefix = format!("lakesight-{stack}-g");
    // `<N>-<8 hex digits>`: `lakesight-demo-g7-g1-...` is stack demo-g7's, not demo's.
    let ours = |name: &str| {
        let rest = name.strip_prefix(&prefix).and_then(|r| r.split_once('-'));
        rest.is_some_and(|(generation, digest)| {
            generation.bytes().all(|b| b.is_ascii_digit())
                && digest.len() == 8
                && digest.bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    let mut names: Vec<String> =
        out.models().iter().filter_map(|m| m.model_name().filter(|n| ours(n)).map(str::to_owned)).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_endpoint_serves_each_new_generation_and_old_ones_are_collected() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's synthetic lake and training");
        return;
    }
    emu.configure(r#"{"pendingPolls": {"endpoint": 2}}"#);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "served", &(stack(5) + SERVED));
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let first = jobs(&emu, "served").await;
    let config = serving(&emu, "served").await.expect("an endpoint");
    assert!(config.starts_with(&format!("{}-c", first[0])), "{config} serves {first:?}");
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    let file = manifest(dir.path(), "served", &(stack(6) + SERVED));
    let plan = emu.run(&["plan", "--detailed-exitcode"], &file);
    plan.expect_code(2);
    assert!(plan.stdout.contains("~ sagemaker.endpoint/scorer"), "{}", plan.stdout);
    assert!(plan.stdout.contains("-> (known after apply)"), "{}", plan.stdout);
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let second = jobs(&emu, "served").await;
    assert!(serving(&emu, "served").await.expect("endpoint").starts_with(&format!("{}-c", second[1])));
    assert_eq!(models(&emu, "served").await.len(), 2, "the previous generation is kept for rollback");

    let file = manifest(dir.path(), "served", &(stack(7) + SERVED));
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let third = jobs(&emu, "served").await;
    assert_eq!(models(&emu, "served").await, third[1..].to_vec(), "generations beyond two are collected");

    emu.run(&["destroy", "--auto-approve"], &file).expect_code(0);
    assert_eq!(serving(&emu, "served").await, None);
    assert!(models(&emu, "served").await.is_empty());
}

#[tokio::test]
async fn a_failing_update_keeps_the_old_generation_serving_and_is_not_retried() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the emulator's update failures");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = manifest(dir.path(), "sticky", &(stack(5) + SERVED));
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let before = serving(&emu, "sticky").await.expect("endpoint");

    emu.configure(r#"{"failEndpointUpdate": "CapacityError: not enough ml.m5.large capacity"}"#);
    let file = manifest(dir.path(), "sticky", &(stack(6) + SERVED));
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(1);
    assert!(apply.stderr.contains("did not take: CapacityError: not enough ml.m5.large capacity"), "{}", apply.stderr);
    assert!(apply.stderr.contains(&format!("{before} keeps serving")), "{}", apply.stderr);
    assert_eq!(serving(&emu, "sticky").await.as_deref(), Some(before.as_str()));

    let again = emu.run(&["apply", "--auto-approve", "--stats"], &file);
    again.expect_code(1);
    assert!(again.stderr.contains("is not retried"), "{}", again.stderr);
    assert!(!again.stderr.contains("UpdateEndpoint"), "no second attempt: {}", again.stderr);
}

#[tokio::test]
async fn collecting_old_generations_never_touches_another_stack_that_shares_the_prefix() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's synthetic lake and training");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let keep_one = "  endpoint:\n    instanceType: ml.m5.large\n  retrain:\n    keepGenerations: 1\n";
    // Stack `demo-g7`'s models are named `lakesight-demo-g7-g<N>-...`, which starts like stack `demo`'s.
    let neighbour = manifest(dir.path(), "demo-g7", &(stack(5) + keep_one));
    emu.apply_and_seed(&neighbour).await;
    emu.run(&["apply", "--auto-approve"], &neighbour).expect_code(0);
    let theirs = models(&emu, "demo-g7").await;
    assert_eq!(theirs.len(), 1);

    // One account and region has one lake: stack demo reads the one stack demo-g7 manages.
    let reader =
        |epochs| (stack(epochs) + keep_one).replace("  securityLake: {}\n", "  securityLake:\n    manage: false\n");
    for epochs in [5, 6, 7] {
        let ours = manifest(dir.path(), "demo", &reader(epochs));
        emu.run(&["apply", "--auto-approve"], &ours).expect_code(0);
    }
    let ours = models(&emu, "demo").await;
    assert_eq!(ours.len(), 1, "stack demo kept one generation: {ours:?}");
    assert_eq!(models(&emu, "demo-g7").await, theirs, "stack demo-g7's generation is untouched");
    let destroy = emu.run(&["destroy", "--auto-approve"], &manifest(dir.path(), "demo", &reader(7)));
    destroy.expect_code(0);
    assert_eq!(models(&emu, "demo-g7").await, theirs, "nor does destroying stack demo touch it");
}
