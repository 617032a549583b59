//! End-to-end: the quickstart as shipped finds the planted anomalies. Its manifest is applied to
//! an empty lake, the history is written, the second apply trains on it and deploys the release
//! package, and then the last day arrives: the emulator's Lambda runs the package from the
//! subscriber's queue, and the report (the same code as `lakesight-data report`) holds the
//! findings on the findings queue against the ground truth. Then the threshold is calibrated
//! instead of fixed, and the planted strangers score above it.

mod support;

use std::time::{Duration, Instant};

use lakesight::manifest::Manifest;
use lakesight::stack::scorer_function_name;
use lakesight::synthetic::report::deployed::{Deployed, report};
use lakesight::synthetic::{Day, Lake, LakeSpec, Part};
use support::{Emulator, repo};

/// Of the six planted anomalies, at least this many must be found. The measured quickstart
/// finds all six, but the weakest scores 4.3 against the threshold of 4.0: another machine's
/// float arithmetic may put it below.
const MIN_RECALL: f64 = 5.0 / 6.0;
/// Normal pairs of the last day's objects flagged at the manifest's threshold, at most: 26 to
/// 30 were measured in three runs, nearly all of them pairs the history never holds.
const MAX_NORMAL_FLAGGED: usize = 40;

#[tokio::test]
async fn the_planted_anomalies_become_findings_through_the_deployed_function() {
    let emu = Emulator::start();
    if !emu.is_bundled() {
        eprintln!("skipped: needs the bundled emulator's Lambda, which runs the package, and its function log");
        return;
    }
    let package = repo().join("target/lambda/ipcheck-x86_64.zip");
    assert!(package.exists(), "build the package first: scorer/package x86_64 (make test does)");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo().join("manifests/quickstart.yaml")).expect("quickstart");
    let text = text.replace("../target/lambda/ipcheck-x86_64.zip", &package.display().to_string());
    let file = dir.path().join("quickstart.yaml");
    std::fs::write(&file, text).expect("manifest");
    let started = Instant::now();

    // `make quickstart`'s lake: seed 7, 10,000 flows a day.
    let first = emu.run(&["apply", "--auto-approve"], &file);
    first.expect_code(0);
    let lake = Lake::new(LakeSpec { flows_per_day: 10_000, ..LakeSpec::new(7, Day::today()) });
    emu.write_lake(&lake, Part::History).await;
    emu.run(&["apply", "--auto-approve"], &file).expect_code(0);
    let last_day = emu.write_lake(&lake, Part::LastDay).await;

    let sdk = emu.sdk().await;
    let manifest = Manifest::load(&file).expect("the quickstart manifest");
    let outcome = report(&sdk, &manifest, None, Duration::from_secs(300)).await.expect("the report");
    eprintln!("{outcome}\n({}s)", started.elapsed().as_secs());

    assert!(
        outcome.scored.objects >= last_day.objects,
        "the last day's {} objects were scored: {outcome}",
        last_day.objects
    );
    // Batches that arrive while the model still trains fail on the missing endpoint and come
    // back (retried); none may be given up on.
    assert!(outcome.scored.dead_lettered.is_empty(), "{outcome}");
    assert!(outcome.recall() >= MIN_RECALL, "{outcome}");
    assert!(outcome.normal_flagged_last_day.len() <= MAX_NORMAL_FLAGGED, "{outcome}");
    assert_eq!(
        outcome.scored.finding_count, outcome.findings,
        "every finding the function logged is queued: {outcome}"
    );

    // The report leaves the findings on their queue for whatever reads them next.
    let deployed = Deployed::find(&sdk, &scorer_function_name("quickstart")).await.expect("the function");
    let again = deployed.findings(&sdk).await.expect("the findings again");
    assert_eq!(again.len(), outcome.findings, "reading the findings does not consume them");

    calibrated_threshold_flags_the_planted_strangers(&emu, &file, &lake).await;
}

/// The same lake and model with a calibrated threshold instead of the fixed one: calibration
/// chooses it for the target on one half of the held-out pairs, the rate it measures on the other
/// half is within three standard errors of the target, and the planted strangers score above it.
/// The error is that of the difference of two rates: the threshold is itself estimated on a
/// sample of the same size.
async fn calibrated_threshold_flags_the_planted_strangers(emu: &Emulator, file: &std::path::Path, lake: &Lake) {
    const TARGET: f64 = 0.1;
    let text = std::fs::read_to_string(file).expect("manifest");
    let fixed = "      policy: fixed\n      value: 4.0\n";
    assert!(text.contains(fixed), "{text}");
    let calibrated = format!("      policy: calibrated\n      targetFalsePositiveRate: {TARGET}\n");
    std::fs::write(file, text.replace(fixed, &calibrated)).expect("manifest");
    let apply = emu.run(&["apply", "--auto-approve"], file);
    apply.expect_code(0);
    assert!(apply.stdout.contains("+ model.calibration/current"), "{}", apply.stdout);

    let history = emu.run(&["history", "--output", "json", "--limit", "1"], file);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).expect("history JSON");
    let nodes = runs[0]["nodes"].as_array().expect("nodes");
    let node = nodes.iter().find(|n| n["address"] == "model.calibration/current").expect("calibrated");
    let evidence = &node["outputs"]["calibration"];
    let held_out = evidence["checkFalsePositiveRate"].as_f64().expect("held-out rate");
    let normal = evidence["counts"]["checkNormal"].as_f64().expect("count");
    let chosen_on = evidence["counts"]["calibrationNormal"].as_f64().expect("count");
    let tolerance = 3.0 * (TARGET * (1.0 - TARGET) * (1.0 / normal + 1.0 / chosen_on)).sqrt();
    assert!((held_out - TARGET).abs() <= tolerance, "held-out rate {held_out} against {TARGET} ± {tolerance:.4}");

    let threshold = evidence["threshold"].as_f64().expect("threshold");
    let strangers: Vec<(String, String)> =
        lake.anomalies.iter().map(|a| (a.entity.clone(), a.remote_ip.clone())).collect();
    let scores = emu.endpoint_scores("lakesight-quickstart-endpoint", &strangers).await;
    eprintln!("calibrated threshold {threshold:.4} (held-out rate {held_out:.4} of {normal}); strangers: {scores:?}");
    let missed: Vec<_> = strangers.iter().zip(&scores).filter(|(_, dot)| -**dot <= threshold).collect();
    assert!(missed.is_empty(), "planted strangers at or below the calibrated threshold {threshold}: {missed:?}");
}
