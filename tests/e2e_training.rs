//! End-to-end: features feeding an IP Insights training job, generations and the quality gate.

mod support;

use std::collections::HashMap;

use support::{EMPTY_ZIP, Emulator, manifest};

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
    let auc = auc_in(gate);
    assert!(auc < 0.8 && gate.contains("is below minAuc 0.8"), "{gate}");
    assert!(gate.contains("no generation has passed the gate yet"), "{gate}");
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
    let apply = emu.run(&["apply", "--auto-approve"], &file);
    apply.expect_code(0);
    let collected = apply.stdout.lines().find(|l| l.contains("sagemaker.generations/old:"));
    assert!(
        collected.is_some_and(|l| l.contains("carried out as Update: drifted: oldGenerations")),
        "the collection is an action of its own: {}",
        apply.stdout
    );
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

/// The AUC a gate verdict names: `... AUC 0.6123 is below ...`.
fn auc_in(verdict: &str) -> f64 {
    verdict
        .split("AUC ")
        .nth(1)
        .and_then(|rest| rest.split([' ', ',', ':']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("an AUC in {verdict}"))
}

/// A stack that trains, serves, calibrates its threshold and scores, with remote pairing (the
/// planted strangers are other ends of flows), and a gate against the deployed generation.
fn scored(hyperparameters: &str, gate: &str) -> String {
    format!(
        "  timeouts:\n    pollInterval: 100ms\n  securityLake: {{}}\n  subscriber:\n    principal: \"123456789012\"\n    externalId: retrain-external-id\n  features:\n    peer: remote\n    windowDays: 14\n    validationDays: 2\n    minRows: 10\n    minEntities: 2\n  training:\n    hyperparameters:\n{hyperparameters}  endpoint:\n    instanceType: ml.m5.large\n  retrain:\n{gate}  scorer:\n    package: ipcheck.zip\n    threshold:\n      targetFalsePositiveRate: 0.05\n"
    )
}

const WEAK: &str = "      epochs: 1\n      learningRate: 0.002\n      vectorDim: 16\n";
const STRONG: &str = "      epochs: 5\n      learningRate: 0.01\n      miniBatchSize: 500\n      vectorDim: 32\n";
const UNTRAINED: &str = "      epochs: 1\n      learningRate: 0.000001\n      vectorDim: 16\n";
const GATE: &str = "    minAuc: 0.3\n    maxAucDrop: 0.02\n";

/// The deployed function's environment variable `name`.
async fn function_env(emu: &Emulator, stack: &str, name: &str) -> Option<String> {
    let config = emu
        .lambda()
        .await
        .get_function_configuration()
        .function_name(format!("lakesight-{stack}-ipcheck"))
        .send()
        .await
        .expect("GetFunctionConfiguration");
    config.environment().and_then(|e| e.variables()).and_then(|v| v.get(name)).cloned()
}

fn window(hours_ahead: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let end = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now - now % 3600 + hours_ahead * 3600);
    humantime::format_rfc3339_seconds(end).to_string()
}

#[tokio::test]
async fn retrain_promotes_a_better_generation_refuses_a_worse_one_and_keeps_serving_through_a_failed_update() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's synthetic lake, training and serving");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    let file = manifest(dir.path(), "cycle", &scored(WEAK, GATE));
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let first = serving(&emu, "cycle").await.expect("g1 serves");
    let threshold = function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD").await.expect("a calibrated threshold");
    assert_eq!(function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD_VARIANT").await.as_deref(), Some("g1"));

    // A fresh window with a stronger configuration: planned first, then promoted.
    let file = manifest(dir.path(), "cycle", &scored(STRONG, GATE));
    let dry = emu.run(&["retrain", "--dry-run", "--window-end", &window(1)], &file);
    dry.expect_code(0);
    assert!(dry.stdout.contains("-/+ features.run/current") && dry.stdout.contains("window: ends"), "{}", dry.stdout);
    assert_eq!(jobs(&emu, "cycle").await.len(), 1, "a dry run trains nothing");
    let better = emu.run(&["retrain", "--window-end", &window(1)], &file);
    better.expect_code(0);
    let verdict =
        better.stdout.lines().find(|l| l.contains("quality gate:")).unwrap_or_else(|| panic!("{}", better.stdout));
    assert!(verdict.contains("-g2-") && verdict.contains(" passed: "), "{verdict}");
    let second = serving(&emu, "cycle").await.expect("g2 serves");
    assert!(second.contains("-g2-") && second != first, "{second}");
    assert_eq!(function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD_VARIANT").await.as_deref(), Some("g2"));
    let promoted = function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD").await.expect("g2's threshold");
    assert_ne!(promoted, threshold, "g2 was calibrated, not given g1's threshold");
    let retried = emu.run(&["retrain", "--window-end", &window(1), "--stats"], &file);
    retried.expect_code(0);
    assert!(retried.stderr.contains(", 0 mutating,"), "the same window again changes nothing: {}", retried.stderr);

    // A model that learned nothing: the gate refuses it against g2, which keeps serving.
    let file = manifest(dir.path(), "cycle", &scored(UNTRAINED, GATE));
    let worse = emu.run(&["retrain", "--window-end", &window(2)], &file);
    worse.expect_code(1);
    let gate = worse.stderr.lines().find(|l| l.contains("quality gate:")).unwrap_or_else(|| panic!("{}", worse.stderr));
    assert!(gate.contains("-g3-") && gate.contains("rejected") && gate.contains("more than maxAucDrop 0.02"), "{gate}");
    assert!(
        gate.contains(&format!("{} stays the deployed generation", &second[..second.rfind("-c").expect("-c")])),
        "{gate}"
    );
    assert_eq!(serving(&emu, "cycle").await.as_deref(), Some(second.as_str()));
    assert_eq!(function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD").await.as_deref(), Some(promoted.as_str()));
    let again = emu.run(&["retrain", "--window-end", &window(2)], &file);
    again.expect_code(1);
    assert!(again.stderr.contains("decided by an earlier run"), "{}", again.stderr);
    assert_eq!(jobs(&emu, "cycle").await.len(), 3, "the rejected window is not trained twice");
    emu.run(&["plan", "--detailed-exitcode"], &file).expect_code(0);

    // A generation that passes but whose update fails: g2 and its threshold stay.
    emu.configure(r#"{"failEndpointUpdate": "CapacityError: not enough ml.m5.large capacity"}"#);
    let file = manifest(dir.path(), "cycle", &scored(STRONG, GATE));
    let failed = emu.run(&["retrain", "--window-end", &window(3)], &file);
    failed.expect_code(1);
    assert!(failed.stderr.contains("did not take: CapacityError"), "{}", failed.stderr);
    assert_eq!(serving(&emu, "cycle").await.as_deref(), Some(second.as_str()));
    assert_eq!(function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD").await.as_deref(), Some(promoted.as_str()));
    assert_eq!(function_env(&emu, "cycle", "LAKESIGHT_THRESHOLD_VARIANT").await.as_deref(), Some("g2"));

    let history = emu.run(&["history", "--output", "json"], &file);
    history.expect_code(0);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).expect("history JSON");
    let retrains = runs.as_array().expect("runs").iter().filter(|r| r["command"] == "retrain").count();
    assert_eq!(retrains, 5, "{}", history.stdout);
}

#[tokio::test]
async fn calibration_meets_its_target_on_held_out_pairs_and_reaches_the_scorer() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's synthetic lake, training and serving");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ipcheck.zip"), EMPTY_ZIP).expect("zip");
    // This small lake's validation days hold about a hundred distinct normal pairs of entities
    // seen in training: a 10% target leaves the held-out check a few pairs to count.
    let spec = scored(STRONG, GATE).replace("targetFalsePositiveRate: 0.05", "targetFalsePositiveRate: 0.1");
    let file = manifest(dir.path(), "calibrated", &spec);
    emu.apply_and_seed(&file).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);

    let plot = dir.path().join("calibration.svg");
    let run = emu.run(&["calibrate", "--auto-approve", "--plot", plot.to_str().expect("path")], &file);
    run.expect_code(0);
    assert!(run.stdout.contains("Calibration of lakesight-calibrated-g1-"), "{}", run.stdout);
    assert!(run.stdout.contains("threshold") && run.stdout.contains("random IP"), "{}", run.stdout);
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    assert!(svg.starts_with("<svg") && svg.contains("threshold"), "{}", &svg[..svg.len().min(300)]);

    // The threshold and its evidence, as the ledger keeps them.
    let history = emu.run(&["history", "--output", "json"], &file);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).expect("history JSON");
    let calibrate = runs.as_array().expect("runs").iter().find(|r| r["command"] == "calibrate").expect("recorded");
    let node =
        calibrate["nodes"].as_array().expect("nodes").iter().find(|n| n["address"] == "model.calibration/current");
    let evidence = &node.expect("the calibration's node")["outputs"]["calibration"];
    let (target, held_out) =
        (evidence["targetFalsePositiveRate"].as_f64(), evidence["checkFalsePositiveRate"].as_f64());
    let (target, held_out) = (target.expect("target"), held_out.expect("held-out rate"));
    let normal = evidence["counts"]["checkNormal"].as_f64().expect("count");
    let chosen_on = evidence["counts"]["calibrationNormal"].as_f64().expect("count");
    // Three standard errors of the difference between the rate the threshold was chosen for and
    // the rate measured on the held-out half, each on this many pairs.
    let tolerance = 3.0 * (target * (1.0 - target) * (1.0 / normal + 1.0 / chosen_on)).sqrt();
    assert!((held_out - target).abs() <= tolerance, "held-out rate {held_out} against {target} ± {tolerance:.4}");
    assert!(evidence["auc"].as_f64().expect("auc") > 0.8, "{evidence}");

    // The threshold the function got is the calibrated one.
    let threshold: f64 =
        function_env(&emu, "calibrated", "LAKESIGHT_THRESHOLD").await.expect("set").parse().expect("number");
    assert_eq!(evidence["threshold"].as_f64(), Some(threshold), "the function got the calibrated threshold");
    assert_eq!(function_env(&emu, "calibrated", "LAKESIGHT_THRESHOLD_VARIANT").await.as_deref(), Some("g1"));
}
