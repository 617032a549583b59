//! The IP Insights engine's quality on the quickstart's synthetic lake, for `source` pairs (the
//! instance and `src_endpoint.ip`, as AWS's blog sample forms them) beside `remote` pairs (the
//! instance and the other end of each flow, `features.peer: remote`).
//!
//! It mirrors the quickstart: the lake of `lakesight-data --days 14 --seed 7` (with its last day
//! fixed at [`LAST_DAY`], so that the figures do not depend on the day they are run), the
//! feature split of `manifests/quickstart.yaml` (`windowDays` 14, `validationDays` 2; see
//! [`split`]), its hyperparameters (`epochs` 5, the rest at their defaults, and
//! `num_entity_vectors` twice the distinct entities of the training split, as the pipeline sizes
//! it) and its scorer threshold (a pair is flagged when `-dot_product > 0.0`, the scorer's
//! strict comparison). For each pairing it prints:
//! - the validation AUC: validation pairs against one random-IP negative each
//!   (`validation:discriminator_auc`);
//! - the TPR at 1 % FPR: the share of those held-out normal pairs scoring above the threshold
//!   that lets 1 % of the random-IP negatives through;
//! - the planted-anomaly recall at the threshold: anomalies with at least one of their pairs
//!   flagged, out of the ground truth's;
//! - the false-positive rate at the threshold on the last day's distinct normal pairs.
//!
//! `make eval` runs it:
//! `cargo bench --no-default-features --features ipinsights,synthetic --bench ipinsights_quality`.
//! Under `cargo test` it runs the same steps on a small lake and checks only that they give
//! figures.

#[path = "../support/machine.rs"]
mod machine;
mod split;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use lakesight::ipinsights::evaluate::{Negatives, evaluate};
use lakesight::ipinsights::train::{NoProgress, train};
use lakesight::ipinsights::{Hyperparameters, Model, Pair, TrainOptions, data};
use lakesight::synthetic::{Day, Lake, LakeSpec, Selection};
use split::Split;

/// `lakesight-data --seed 7`, and the seed of training and of the evaluation's negatives.
const SEED: u64 = 7;
const DAYS: u32 = 14;
const LAST_DAY: &str = "20261202";
/// `manifests/quickstart.yaml`: `features.windowDays`, `features.validationDays`,
/// `training.hyperparameters.epochs` and `scorer.threshold.value` (on `-dot_product`).
const WINDOW_DAYS: i64 = 14;
const VALIDATION_DAYS: i64 = 2;
const EPOCHS: usize = 5;
const THRESHOLD: f32 = 0.0;
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

fn measure(lake: &Lake, selection: Selection, hp: impl Fn(usize) -> Hyperparameters) -> Figures {
    let Split { train: train_pairs, validation, last_day_normal, anomalies } =
        split::split(lake, selection, WINDOW_DAYS, VALIDATION_DAYS);
    let entities = data::distinct_entities(&train_pairs);
    let options = TrainOptions { seed: SEED, ..TrainOptions::default() };
    let started = Instant::now();
    let trained = train(&hp(entities), &train_pairs, None, &options, &mut NoProgress).expect("train");
    let seconds = started.elapsed().as_secs_f64();
    // The same negatives `validation:discriminator_auc` draws for this seed.
    let evaluation = evaluate(&trained.model, &validation, Negatives::RandomIp, SEED).expect("evaluate");
    let tpr = evaluation.operating_points.iter().find(|p| p.target_fpr == TARGET_FPR).map_or(f64::NAN, |p| p.tpr);
    // An anomaly's score is its highest-scoring pair's: flagging that one finds it.
    let anomaly_max: Vec<f32> = anomalies
        .iter()
        .map(|pairs| anomaly_scores(&trained.model, pairs).into_iter().fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let normal_scores = anomaly_scores(&trained.model, &last_day_normal);
    let seen: HashSet<(&str, Ipv4Addr)> = train_pairs.iter().map(|p| (p.entity.as_str(), p.ip)).collect();
    let flagged: Vec<&Pair> =
        last_day_normal.iter().zip(&normal_scores).filter(|(_, s)| **s > THRESHOLD).map(|(p, _)| p).collect();
    let lowest_anomaly = anomaly_max.iter().copied().fold(f32::INFINITY, f32::min);
    Figures {
        train_rows: train_pairs.len(),
        validation_rows: validation.len(),
        entities,
        seconds,
        final_loss: trained.report.epochs.last().map_or(f64::NAN, |e| e.loss),
        auc: evaluation.auc,
        tpr,
        found: anomaly_max.iter().filter(|&&s| s > THRESHOLD).count(),
        anomalies: anomalies.len(),
        flagged_normal: flagged.len(),
        flagged_unseen: flagged.iter().filter(|p| !seen.contains(&(p.entity.as_str(), p.ip))).count(),
        normal: last_day_normal.len(),
        flagged_at_full_recall: normal_scores.iter().filter(|&&s| s >= lowest_anomaly).count(),
    }
}

/// The quickstart's hyperparameters for a training split of `entities` distinct entities.
fn quickstart(entities: usize) -> Hyperparameters {
    Hyperparameters { epochs: EPOCHS, ..Hyperparameters::new(2 * entities.max(1), 128) }
}

fn report() {
    println!("IP Insights quality on the quickstart's synthetic lake, {}", machine::describe());
    println!(
        "lake: seed {SEED}, {DAYS} days to {LAST_DAY}; train on [-{WINDOW_DAYS} d, -{VALIDATION_DAYS} d) and validate on [-{VALIDATION_DAYS} d, 0) from the last day's midnight, score the last day"
    );
    println!("epochs {EPOCHS}, vector_dim 128, other hyperparameters default; flagged: -dot_product > {THRESHOLD:.1}");
    let lake = Lake::new(LakeSpec { days: DAYS, ..LakeSpec::new(SEED, last_day()) });
    let pairings = [("source", Selection::SourceEndpoint), ("remote", Selection::RemotePeer)];
    let figures: Vec<Figures> = pairings.iter().map(|&(_, s)| measure(&lake, s, quickstart)).collect();
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

/// Under `cargo test`: the same steps on a small lake give figures in range.
fn smoke() {
    let spec =
        LakeSpec { days: 6, instances: 8, flows_per_day: 1_000, anomalies: 2, ..LakeSpec::new(SEED, last_day()) };
    let lake = Lake::new(spec);
    for selection in [Selection::SourceEndpoint, Selection::RemotePeer] {
        let f = measure(&lake, selection, |entities| Hyperparameters {
            epochs: 1,
            ..Hyperparameters::new(2 * entities.max(1), 16)
        });
        assert!(f.train_rows > 0 && f.validation_rows > 0 && f.normal > 0, "{selection:?}: empty split");
        assert!((0.0..=1.0).contains(&f.auc) && (0.0..=1.0).contains(&f.tpr), "{selection:?}");
        assert_eq!(f.anomalies, 2, "{selection:?}");
        println!(
            "ipinsights quality bench smoke, {selection:?}: AUC {:.3}, {} / {} anomalies found",
            f.auc, f.found, f.anomalies
        );
    }
}
