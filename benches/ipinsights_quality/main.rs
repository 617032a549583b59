//! The IP Insights engine's quality on the quickstart's synthetic lake, for `source` pairs (the
//! instance and `src_endpoint.ip`, as AWS's blog sample forms them) beside `remote` pairs (the
//! instance and the other end of each flow, `features.peer: remote`).
//!
//! It measures the quickstart as it is written, read from its own files (see [`quickstart`]):
//! the lake of the Makefile's `lakesight-data` writes (their `--days`, `--seed` and
//! `--flows-per-day`, with the last day fixed at [`LAST_DAY`] so that the figures do not depend
//! on the day they are run), and from `manifests/quickstart.yaml` the feature split
//! (`windowDays`, `validationDays`; see [`split`]), the training hyperparameters
//! (`num_entity_vectors` twice the distinct entities of the training split unless fixed, as the
//! feature run sizes it) and the scorer's fixed threshold (a pair is flagged when its
//! `-dot_product` is above it, the scorer's strict comparison). Training is seeded as the
//! emulator's `lakesight model train` runs it, with the engine's default seed. Both pairings
//! are measured whichever the manifest declares. For each it prints:
//! - the validation AUC: validation pairs against one random-IP negative each
//!   (`validation:discriminator_auc`, with the negatives training draws for its seed);
//! - the TPR at 1 % FPR: the share of those held-out normal pairs scoring above the threshold
//!   that lets 1 % of the random-IP negatives through;
//! - the planted-anomaly recall at the quickstart's threshold: anomalies with at least one of
//!   their pairs flagged, out of the ground truth's;
//! - the false-positive rate at that threshold on the last day's distinct normal pairs, how many
//!   of those flagged no training row holds, and the rate at the highest threshold that still
//!   finds every anomaly (chosen with the answers in hand: a bound, not a setting).
//!
//! `make eval` runs it:
//! `cargo bench --no-default-features --features ipinsights,synthetic --bench ipinsights_quality`.
//! Under `cargo test` it reads the quickstart the same way, checks the reading against the
//! crate's manifest loader (when built with `control-plane`, as the default features are), and
//! runs the same steps on a small lake, checking only that they give figures.

#[path = "../support/machine.rs"]
mod machine;
mod quickstart;
mod split;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use lakesight::ipinsights::evaluate::{Negatives, evaluate};
use lakesight::ipinsights::train::{NoProgress, train};
use lakesight::ipinsights::{Hyperparameters, Model, Pair, TrainOptions, data};
use lakesight::synthetic::{Day, Lake, LakeSpec, Selection};
use quickstart::Quickstart;
use split::Split;

/// The quickstart's last day is the day it runs; the bench fixes it.
const LAST_DAY: &str = "20261202";
/// The false-positive rate of the TPR figure, on random-IP negatives.
const TARGET_FPR: f64 = 0.01;

/// One pairing's figures.
struct Figures {
    train_rows: usize,
    validation_rows: usize,
    entities: usize,
    seconds: f64,
    final_loss: f64,
    auc: f64,
    tpr: f64,
    found: usize,
    anomalies: usize,
    flagged_normal: usize,
    /// Of the flagged normal pairs, those that no training row holds.
    flagged_unseen: usize,
    normal: usize,
    /// Normal pairs flagged at the highest threshold that still finds every anomaly.
    flagged_at_full_recall: usize,
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        report();
    } else {
        smoke();
    }
}

fn last_day() -> Day {
    Day::parse(LAST_DAY).expect("a YYYYMMDD day")
}

/// The scorer's anomaly scores, `-dot_product`: a pair is flagged when its score is above the threshold.
fn anomaly_scores(model: &Model, pairs: &[Pair]) -> Vec<f32> {
    let refs: Vec<(&str, Ipv4Addr)> = pairs.iter().map(|p| (p.entity.as_str(), p.ip)).collect();
    model.predict(&refs, false).scores.iter().map(|&s| -s).collect()
}

fn measure(
    lake: &Lake,
    selection: Selection,
    quickstart: &Quickstart,
    hp: impl Fn(usize) -> Hyperparameters,
) -> Figures {
    let Split { train: train_pairs, validation, last_day_normal, anomalies } =
        split::split(lake, selection, quickstart.window_days, quickstart.validation_days);
    let entities = data::distinct_entities(&train_pairs);
    let options = TrainOptions::default();
    let threshold = quickstart.threshold;
    let started = Instant::now();
    let trained = train(&hp(entities), &train_pairs, None, &options, &mut NoProgress).expect("train");
    let seconds = started.elapsed().as_secs_f64();
    // The same negatives `validation:discriminator_auc` draws for this seed.
    let evaluation = evaluate(&trained.model, &validation, Negatives::RandomIp, options.seed).expect("evaluate");
    let tpr = evaluation.operating_points.iter().find(|p| p.target_fpr == TARGET_FPR).map_or(f64::NAN, |p| p.tpr);
    // An anomaly's score is its highest-scoring pair's: flagging that one finds it.
    let anomaly_max: Vec<f32> = anomalies
        .iter()
        .map(|pairs| anomaly_scores(&trained.model, pairs).into_iter().fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let normal_scores = anomaly_scores(&trained.model, &last_day_normal);
    let seen: HashSet<(&str, Ipv4Addr)> = train_pairs.iter().map(|p| (p.entity.as_str(), p.ip)).collect();
    let flagged: Vec<&Pair> = last_day_normal
        .iter()
        .zip(&normal_scores)
        .filter(|(_, s)| f64::from(**s) > threshold)
        .map(|(p, _)| p)
        .collect();
    let lowest_anomaly = anomaly_max.iter().copied().fold(f32::INFINITY, f32::min);
    Figures {
        train_rows: train_pairs.len(),
        validation_rows: validation.len(),
        entities,
        seconds,
        final_loss: trained.report.epochs.last().map_or(f64::NAN, |e| e.loss),
        auc: evaluation.auc,
        tpr,
        found: anomaly_max.iter().filter(|&&s| f64::from(s) > threshold).count(),
        anomalies: anomalies.len(),
        flagged_normal: flagged.len(),
        flagged_unseen: flagged.iter().filter(|p| !seen.contains(&(p.entity.as_str(), p.ip))).count(),
        normal: last_day_normal.len(),
        flagged_at_full_recall: normal_scores.iter().filter(|&&s| s >= lowest_anomaly).count(),
    }
}

/// The quickstart's lake, with its last day at [`LAST_DAY`].
fn lake(quickstart: &Quickstart) -> Lake {
    Lake::new(LakeSpec {
        days: quickstart.days,
        flows_per_day: quickstart.flows_per_day,
        ..LakeSpec::new(quickstart.seed, last_day())
    })
}

fn report() {
    let q = quickstart::read();
    println!("IP Insights quality on the quickstart's synthetic lake, {}", machine::describe());
    println!(
        "lake (Makefile, quickstart): lakesight-data --days {} --seed {} --flows-per-day {}, last day {LAST_DAY}",
        q.days, q.seed, q.flows_per_day
    );
    println!(
        "split (manifests/quickstart.yaml): train on [-{w} d, -{v} d) and validate on [-{v} d, 0) from the last day's midnight; score the last day",
        w = q.window_days,
        v = q.validation_days
    );
    println!(
        "hyperparameters (manifests/quickstart.yaml): {}; the rest at the engine's defaults; num_entity_vectors as the feature run sizes it; training seed {}",
        q.declared(),
        TrainOptions::default().seed
    );
    println!(
        "threshold (manifests/quickstart.yaml, policy fixed): a pair is flagged when -dot_product > {}; the quickstart pairs by features.peer: {}",
        q.threshold, q.peer
    );
    let lake = lake(&q);
    let pairings = [("source", Selection::SourceEndpoint), ("remote", Selection::RemotePeer)];
    let figures: Vec<Figures> =
        pairings.iter().map(|&(_, s)| measure(&lake, s, &q, |entities| q.hyperparameters(entities))).collect();
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String| {
        println!("{name:<48} {:>16} {:>16}", cell(&figures[0]), cell(&figures[1]));
    };
    println!();
    println!("{:<48} {:>16} {:>16}", "pairs", pairings[0].0, pairings[1].0);
    row("training rows / distinct entities", &|f| format!("{} / {}", f.train_rows, f.entities));
    row("validation rows", &|f| f.validation_rows.to_string());
    row("training seconds / last epoch loss", &|f| format!("{:.0} / {:.3}", f.seconds, f.final_loss));
    row("validation AUC (vs one random IP each)", &|f| format!("{:.3}", f.auc));
    row("TPR at 1% FPR (validation vs random IPs)", &|f| format!("{:.3}", f.tpr));
    row("planted anomalies found at the threshold", &|f| format!("{} / {}", f.found, f.anomalies));
    let rate =
        |count: usize, f: &Figures| format!("{:.3} ({count}/{})", count as f64 / f.normal.max(1) as f64, f.normal);
    row("last day's normal pairs flagged (FPR)", &|f| rate(f.flagged_normal, f));
    row("  of them, pairs no training row holds", &|f| format!("{} / {}", f.flagged_unseen, f.flagged_normal));
    row("FPR at the highest threshold finding all", &|f| rate(f.flagged_at_full_recall, f));
}

/// The crate's manifest loader reads `manifests/quickstart.yaml` as [`quickstart::read`] does:
/// the same split, pairing, threshold, and hyperparameters for any entity count.
#[cfg(feature = "control-plane")]
fn agrees_with_the_manifest_loader(q: &Quickstart) {
    use lakesight::manifest::{Manifest, ThresholdPolicy};
    let path = quickstart::manifest_path();
    let text = std::fs::read_to_string(&path).expect("manifests/quickstart.yaml");
    let manifest = Manifest::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    let features = manifest.spec.features.as_ref().expect("spec.features");
    assert_eq!(i64::from(features.window_days), q.window_days);
    assert_eq!(i64::from(features.validation_days), q.validation_days);
    assert_eq!(features.peer.as_str(), q.peer);
    let training = manifest.spec.training.as_ref().expect("spec.training");
    for entities in [0, 1, 24, 10_000] {
        let job = lakesight::pipeline::ipinsights::hyperparameters(&training.hyperparameters, entities as u64);
        let loaded = Hyperparameters::from_strings(&job).expect("the loader's hyperparameters");
        assert_eq!(q.hyperparameters(entities), loaded, "{entities} entities");
    }
    let threshold = &manifest.spec.scorer.as_ref().expect("spec.scorer").threshold;
    assert_eq!((threshold.policy, threshold.value), (ThresholdPolicy::Fixed, Some(q.threshold)));
}

/// Under `cargo test`: the quickstart reads, and the same steps on a small lake give figures in range.
fn smoke() {
    let q = quickstart::read();
    #[cfg(feature = "control-plane")]
    agrees_with_the_manifest_loader(&q);
    let spec =
        LakeSpec { days: 6, instances: 8, flows_per_day: 1_000, anomalies: 2, ..LakeSpec::new(q.seed, last_day()) };
    let lake = Lake::new(spec);
    for selection in [Selection::SourceEndpoint, Selection::RemotePeer] {
        let f = measure(&lake, selection, &q, |entities| Hyperparameters { epochs: 1, ..q.hyperparameters(entities) });
        assert!(f.train_rows > 0 && f.validation_rows > 0 && f.normal > 0, "{selection:?}: empty split");
        assert!((0.0..=1.0).contains(&f.auc) && (0.0..=1.0).contains(&f.tpr), "{selection:?}");
        assert_eq!(f.anomalies, 2, "{selection:?}");
        println!(
            "ipinsights quality bench smoke, {selection:?}: AUC {:.3}, {} / {} anomalies found",
            f.auc, f.found, f.anomalies
        );
    }
}
