//! The IP Insights engine's speed: training samples per second, scoring pairs per second and
//! peak memory, at 10^5 and 10^6 pairs, `vector_dim` 128 and one encoder layer (the other
//! hyperparameters at the container's defaults: mini-batches of 5000 pairs, one random and one
//! re-paired negative per pair, so three samples per pair), beside a plain reference loop that
//! does the same arithmetic one sample at a time ([`reference`]).
//!
//! What is measured, for each size:
//! - engine training: one epoch of `train::train` (the epoch's wall time from its own report,
//!   so model initialisation and hashing the entities are left out), with rayon's default
//!   threads and again with one thread, which separates what the threads buy from what the
//!   batched kernels buy;
//! - engine scoring: `Model::predict` of every pair, entity hashing included, best of 3;
//! - the reference: the first [`REFERENCE_BATCHES`] mini-batches of an epoch (all of them at
//!   10^5 pairs), and scoring the first [`REFERENCE_SCORED`] pairs; its per-sample rate is
//!   extrapolated to the whole epoch, which holds because every sample costs the same
//!   arithmetic.
//!
//! Each measurement runs in a child process of its own, so that its peak memory (`VmHWM`, see
//! the support module) is its own. `make bench` runs it:
//! `cargo bench --no-default-features --features ipinsights,synthetic --bench ipinsights_speed`.
//! Under `cargo test` it only checks, on a small model, that the reference scores pairs as the
//! engine does and that its training lowers the loss.

#[path = "../support/machine.rs"]
mod machine;
#[path = "../support/peak_memory.rs"]
mod peak_memory;
mod reference;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use lakesight::ipinsights::train::{NoProgress, train};
use lakesight::ipinsights::{Hyperparameters, ModelHeader, Pair, TrainOptions, TrainReport, data, file};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reference::{Reference, Trainer};
use serde::{Deserialize, Serialize};

const SIZES: [usize; 2] = [100_000, 1_000_000];
/// Users in the generated data, as in AWS's IP Insights tutorial; the model gets twice as many
/// entity vectors, as the documentation advises.
const ENTITIES: usize = 10_000;
const SEED: u64 = 42;
/// Mini-batches the reference trains on: 300,000 samples.
const REFERENCE_BATCHES: usize = 20;
/// Pairs the reference scores.
const REFERENCE_SCORED: usize = 200_000;
const SCORING_ROUNDS: usize = 3;
/// Pairs whose reference and engine scores are compared.
const COMPARED: usize = 1_000;

/// One child's measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Task {
    EngineTrain,
    EngineScore,
    ReferenceTrain,
    ReferenceScore,
}

/// One child's figures.
#[derive(Debug, Serialize, Deserialize)]
struct Figures {
    /// Training samples or scored pairs.
    work: usize,
    seconds: f64,
    /// Peak resident memory of the child, and what it held before the measured work (the
    /// runtime and the generated pairs).
    peak_kib: u64,
    baseline_kib: u64,
    /// For the reference's scoring: the largest difference from the engine's score.
    difference: Option<f32>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.work as f64 / self.seconds.max(1e-9)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, task, n, dir] = args.as_slice()
        && flag == "--child"
    {
        let task = serde_json::from_str(task).expect("task");
        let figures = measure(task, n.parse().expect("pairs"), Path::new(dir));
        println!("{}", serde_json::to_string(&figures).expect("figures serialise"));
        return;
    }
    if args.iter().any(|a| a == "--bench") {
        report();
    } else {
        smoke();
    }
}

fn hyperparameters(vector_dim: usize) -> Hyperparameters {
    Hyperparameters { epochs: 1, num_ip_encoder_layers: 1, ..Hyperparameters::new(2 * ENTITIES, vector_dim) }
}

/// `n` pairs of [`ENTITIES`] users, each user's address in its own home /24 nine times in ten
/// and anywhere otherwise. The content only decides which table rows a batch touches: every
/// sample costs the same arithmetic.
fn generate(n: usize) -> Vec<Pair> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let homes: Vec<u32> = (0..ENTITIES).map(|_| rng.random::<u32>() & 0xffff_ff00).collect();
    (0..n)
        .map(|_| {
            let user = rng.random_range(0..ENTITIES);
            let ip = if rng.random_bool(0.9) { homes[user] | rng.random_range(1..255u32) } else { rng.random() };
            Pair::new(format!("user-{user}"), Ipv4Addr::from(ip))
        })
        .collect()
}

fn model_dir(dir: &Path, n: usize) -> std::path::PathBuf {
    dir.join(format!("model-{n}"))
}

/// Trains one epoch and saves the model for the scoring and reference children.
fn engine_train(hp: &Hyperparameters, pairs: &[Pair], dir: &Path) -> TrainReport {
    let trained = train(hp, pairs, None, &TrainOptions { seed: SEED, ..TrainOptions::default() }, &mut NoProgress)
        .expect("train");
    let header = ModelHeader::new(hp.clone(), data::digest(pairs), trained.report.clone());
    file::save(dir, &trained.model, &header).expect("save the model");
    trained.report
}

fn reference_model(dir: &Path) -> Reference {
    let bytes = std::fs::read(dir.join(file::FILE_NAME)).expect("read the model");
    Reference::from_model_file(&bytes).expect("the model's tensors")
}

/// The largest difference between the engine's and the reference's scores of `pairs`.
fn difference(dir: &Path, reference: &Reference, pairs: &[Pair]) -> f32 {
    let (model, _) = file::load(dir).expect("load the model");
    let refs: Vec<(&str, Ipv4Addr)> = pairs.iter().map(|p| (p.entity.as_str(), p.ip)).collect();
    let engine = model.predict(&refs, false).scores;
    pairs.iter().zip(engine).map(|(p, e)| (reference.score(&p.entity, p.ip) - e).abs()).fold(0.0, f32::max)
}

fn measure(task: Task, n: usize, dir: &Path) -> Figures {
    let hp = hyperparameters(128);
    let pairs = generate(n);
    let dir = model_dir(dir, n);
    let baseline_kib = peak_memory::peak_kib();
    // The peak is read before any check that loads a second model.
    let (work, seconds, peak_kib, difference) = match task {
        Task::EngineTrain => {
            let epoch = engine_train(&hp, &pairs, &dir).epochs.remove(0);
            (epoch.samples, epoch.seconds, peak_memory::peak_kib(), None)
        }
        Task::EngineScore => {
            let (model, _) = file::load(&dir).expect("load the model");
            let refs: Vec<(&str, Ipv4Addr)> = pairs.iter().map(|p| (p.entity.as_str(), p.ip)).collect();
            let best = (0..SCORING_ROUNDS)
                .map(|_| {
                    let round = Instant::now();
                    std::hint::black_box(model.predict(&refs, false));
                    round.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min);
            (n, best, peak_memory::peak_kib(), None)
        }
        Task::ReferenceTrain => {
            let reference = reference_model(&dir);
            let data: Vec<(usize, u32)> = pairs.iter().map(|p| (reference.row(&p.entity), u32::from(p.ip))).collect();
            let mut trainer = Trainer::new(reference);
            let started = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(SEED);
            let (samples, _) = trainer.train_batches(&data, &hp, REFERENCE_BATCHES, &mut rng);
            (samples, started.elapsed().as_secs_f64(), peak_memory::peak_kib(), None)
        }
        Task::ReferenceScore => {
            let reference = reference_model(&dir);
            let scored = &pairs[..n.min(REFERENCE_SCORED)];
            let started = Instant::now();
            for p in scored {
                std::hint::black_box(reference.score(&p.entity, p.ip));
            }
            let (seconds, peak_kib) = (started.elapsed().as_secs_f64(), peak_memory::peak_kib());
            (scored.len(), seconds, peak_kib, Some(difference(&dir, &reference, &pairs[..n.min(COMPARED)])))
        }
    };
    Figures { work, seconds, peak_kib, baseline_kib, difference }
}

/// Runs one measurement in a child process, on `threads` rayon threads when given.
fn child(task: Task, n: usize, dir: &Path, threads: Option<usize>) -> Figures {
    let mut command = Command::new(std::env::current_exe().expect("bench binary"));
    command.arg("--child").arg(serde_json::to_string(&task).expect("task")).arg(n.to_string()).arg(dir);
    if let Some(threads) = threads {
        command.env("RAYON_NUM_THREADS", threads.to_string());
    }
    let started = Instant::now();
    let out = command.output().expect("run the measurement");
    assert!(out.status.success(), "{task:?} {n}: {}", String::from_utf8_lossy(&out.stderr));
    let threads = threads.map_or("default".to_owned(), |t| t.to_string());
    eprintln!("  {task:?}, {n} pairs, {threads} threads: {:.0} s in all", started.elapsed().as_secs_f64());
    serde_json::from_slice(&out.stdout).expect("child figures")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("IP Insights engine speed, {}", machine::describe());
    println!(
        "vector_dim 128, 1 encoder layer, {} entity vectors, mini-batch 5000, 1 random + 1 re-paired negative per pair",
        2 * ENTITIES
    );
    println!(
        "engine: one epoch; reference: first {REFERENCE_BATCHES} mini-batches, 1 thread; scoring: engine all pairs (best of {SCORING_ROUNDS}), reference first {REFERENCE_SCORED}"
    );
    println!(
        "{:>9} {:>10} {:>22} {:>8} {:>14} {:>9} {:>12}",
        "pairs", "task", "code", "threads", "per second", "peak MiB", "above data"
    );
    for n in SIZES {
        let train = child(Task::EngineTrain, n, dir.path(), None);
        let train_one = child(Task::EngineTrain, n, dir.path(), Some(1));
        let reference_train = child(Task::ReferenceTrain, n, dir.path(), None);
        let score = child(Task::EngineScore, n, dir.path(), None);
        let score_one = child(Task::EngineScore, n, dir.path(), Some(1));
        let reference_score = child(Task::ReferenceScore, n, dir.path(), None);
        let rows = [
            ("train", "engine", threads, &train),
            ("train", "engine", 1, &train_one),
            ("train", "reference", 1, &reference_train),
            ("score", "engine", threads, &score),
            ("score", "engine", 1, &score_one),
            ("score", "reference", 1, &reference_score),
        ];
        for (task, code, threads, f) in rows {
            println!(
                "{:>9} {:>10} {:>22} {:>8} {:>14.0} {:>9.0} {:>12.0}",
                n,
                task,
                code,
                threads,
                f.rate(),
                mib(f.peak_kib),
                mib(f.peak_kib.saturating_sub(f.baseline_kib))
            );
        }
        println!(
            "{:>9} engine / reference: training x{:.1} ({threads} threads), x{:.1} (1 thread); scoring x{:.1}, x{:.1}; reference scores within {:.1e} of the engine's",
            n,
            train.rate() / reference_train.rate(),
            train_one.rate() / reference_train.rate(),
            score.rate() / reference_score.rate(),
            score_one.rate() / reference_score.rate(),
            reference_score.difference.unwrap_or(f32::NAN),
        );
    }
    println!("load average {} at the end", machine::load_average());
}

/// Under `cargo test`: on a small model, the reference scores as the engine does, and its
/// training lowers the loss.
fn smoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs: Vec<Pair> = generate(3_000);
    let hp = Hyperparameters { mini_batch_size: 500, learning_rate: 0.01, ..hyperparameters(16) };
    engine_train(&hp, &pairs, dir.path());
    let reference = reference_model(dir.path());
    let difference = difference(dir.path(), &reference, &pairs);
    assert!(difference < 1e-4, "reference and engine scores differ by {difference}");
    let data: Vec<(usize, u32)> = pairs.iter().map(|p| (reference.row(&p.entity), u32::from(p.ip))).collect();
    let mut trainer = Trainer::new(reference);
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let losses: Vec<f64> = (0..4).map(|_| trainer.train_batches(&data, &hp, usize::MAX, &mut rng).1).collect();
    assert!(losses[3] < losses[0], "the reference's loss did not fall: {losses:?}");
    println!("ipinsights speed bench smoke: scores agree to {difference:.1e}, reference losses {losses:.3?}");
}
