//! The training loop: mini-batches of observed pairs with generated negatives, binary
//! cross-entropy, and lazy Adam as MXNet runs it. Every random draw comes from one seeded
//! ChaCha8 generator and gradients are summed in a fixed order, so a run is bit-for-bit
//! reproducible whatever the number of rayon threads.

use std::collections::HashMap;
use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView, ArrayViewMut, Dimension, Zip};
use rand::seq::SliceRandom;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::data::Pair;
use super::evaluate::{EvaluateError, discriminator_auc};
use super::hyperparameters::{HyperparameterError, Hyperparameters};
use super::model::{Dense, Gradients, Model, Sample, bce_with_logits, sigmoid};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f32 = 1e-8;

/// Settings of a run that are not SageMaker hyperparameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainOptions {
    /// Seeds initialisation, shuffling, negatives and the validation negatives.
    pub seed: u64,
    /// Samples per shard: each mini-batch is cut into contiguous shards of this size whose
    /// gradients are computed in parallel and summed in shard order. Results depend on this
    /// value (float addition order), not on the number of threads.
    pub shard_samples: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { seed: 0, shard_samples: 2048 }
    }
}

/// Where a run stands after one mini-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProgress {
    /// 1-based.
    pub epoch: usize,
    /// 1-based, within the epoch.
    pub batch: usize,
    /// Samples (observed pairs and their negatives) done in this epoch, and in all of it.
    pub samples_done: usize,
    pub samples_in_epoch: usize,
    pub samples_per_second: f64,
    /// Mean loss and accuracy over the epoch so far.
    pub running_loss: f64,
    pub running_accuracy: f64,
    /// True every `batch_metrics_publish_interval` batches: when SageMaker logs batch metrics.
    pub publish: bool,
}

/// Train metrics of one epoch (SageMaker's `binary_classification_cross_entropy` and
/// `binary_classification_accuracy`; a score > 0 is a prediction of "normal").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub samples: usize,
    pub seconds: f64,
    pub samples_per_second: f64,
}

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochMetrics>,
    /// `validation:discriminator_auc` of the final model, when validation pairs were given.
    pub validation_auc: Option<f64>,
}

/// A trained model and its report.
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: Model,
    pub report: TrainReport,
}

/// Receives progress, e.g. to draw a progress bar or log SageMaker-style metric lines.
pub trait Progress {
    fn on_batch(&mut self, progress: &BatchProgress);
    fn on_epoch(&mut self, _metrics: &EpochMetrics) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn on_batch(&mut self, _progress: &BatchProgress) {}
}

/// Why a run could not start or finish.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TrainError {
    #[error(transparent)]
    Hyperparameters(#[from] HyperparameterError),
    #[error("ClientError: No training data")]
    NoTrainingData,
    #[error("ClientError: No validation data")]
    NoValidationData,
    #[error("shard_samples must be at least 1")]
    ZeroShard,
}

impl From<EvaluateError> for TrainError {
    fn from(_: EvaluateError) -> Self {
        TrainError::NoValidationData
    }
}

/// Adam moments of one parameter.
struct Moments<D: Dimension> {
    m: ndarray::Array<f32, D>,
    v: ndarray::Array<f32, D>,
}

impl<D: Dimension> Moments<D> {
    fn like(w: &ndarray::Array<f32, D>) -> Self {
        Self { m: ndarray::Array::zeros(w.raw_dim()), v: ndarray::Array::zeros(w.raw_dim()) }
    }
}

/// The step's learning rate with MXNet's bias correction, and the weight decay.
#[derive(Clone, Copy)]
struct Step {
    lr: f32,
    wd: f32,
}

/// One Adam update (MXNet's form): `g += wd·w; m, v updated; w -= lr_t · m / (√v + ε)`.
fn adam<D: Dimension>(
    w: ArrayViewMut<f32, D>,
    g: ArrayView<f32, D>,
    m: ArrayViewMut<f32, D>,
    v: ArrayViewMut<f32, D>,
    step: Step,
) {
    let (b1, b2) = (BETA1 as f32, BETA2 as f32);
    Zip::from(w).and(g).and(m).and(v).for_each(|w, &g, m, v| {
        let g = g + step.wd * *w;
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *w -= step.lr * *m / (v.sqrt() + EPSILON);
    });
}

/// Adam state for every parameter. The embedding tables (entity and prefix) are updated lazily:
/// only the rows a batch touches, and only those rows get weight decay. The bit matrix and the
/// dense weights and biases get ordinary Adam with weight decay every step. Bias correction
/// uses one global step count per run (as MXNet's Adam counts updates per parameter tensor,
/// not per row), so a rarely seen row gets the late, nearly uncorrected learning rate.
struct Optimizer {
    lr: f64,
    wd: f32,
    step: i32,
    entity: Moments<ndarray::Ix2>,
    bits: Moments<ndarray::Ix2>,
    prefix: Moments<ndarray::Ix2>,
    layers: Vec<(Moments<ndarray::Ix2>, Moments<ndarray::Ix1>)>,
}

/// Gradients of one mini-batch: dense parameters summed, table rows gathered.
struct BatchGradients {
    bits: Array2<f32>,
    layers: Vec<Dense>,
    /// Distinct entity rows in first-touch order and their summed gradients.
    entity_rows: Vec<usize>,
    entity: Array2<f32>,
    prefix_rows: Vec<usize>,
    prefix: Array2<f32>,
}

/// Sums per-sample row gradients into distinct rows, in sample order.
struct RowAccumulator {
    dim: usize,
    slots: HashMap<usize, usize>,
    rows: Vec<usize>,
    sums: Vec<f32>,
}

impl RowAccumulator {
    fn new(dim: usize) -> Self {
        Self { dim, slots: HashMap::new(), rows: Vec::new(), sums: Vec::new() }
    }

    fn add(&mut self, row: usize, grad: ndarray::ArrayView1<f32>) {
        let slot = *self.slots.entry(row).or_insert_with(|| {
            self.rows.push(row);
            self.sums.resize(self.sums.len() + self.dim, 0.0);
            self.rows.len() - 1
        });
        let sum = &mut self.sums[slot * self.dim..(slot + 1) * self.dim];
        sum.iter_mut().zip(grad.iter()).for_each(|(s, g)| *s += g);
    }

    fn finish(self) -> (Vec<usize>, Array2<f32>) {
        let shape = (self.rows.len(), self.dim);
        let sums = Array2::from_shape_vec(shape, self.sums).unwrap_or_else(|_| Array2::zeros(shape));
        (self.rows, sums)
    }
}

impl Optimizer {
    fn new(model: &Model, hp: &Hyperparameters) -> Self {
        Self {
            lr: hp.learning_rate,
            wd: hp.weight_decay as f32,
            step: 0,
            entity: Moments::like(&model.entity),
            bits: Moments::like(&model.bits),
            prefix: Moments::like(&model.prefix),
            layers: model.layers.iter().map(|l| (Moments::like(&l.weight), Moments::like(&l.bias))).collect(),
        }
    }

    fn apply(&mut self, model: &mut Model, grads: &BatchGradients) {
        self.step = self.step.saturating_add(1);
        let correction = (1.0 - BETA2.powi(self.step)).sqrt() / (1.0 - BETA1.powi(self.step));
        let step = Step { lr: (self.lr * correction) as f32, wd: self.wd };
        for (slot, &row) in grads.entity_rows.iter().enumerate() {
            let Moments { m, v } = &mut self.entity;
            adam(model.entity.row_mut(row), grads.entity.row(slot), m.row_mut(row), v.row_mut(row), step);
        }
        for (slot, &row) in grads.prefix_rows.iter().enumerate() {
            let Moments { m, v } = &mut self.prefix;
            adam(model.prefix.row_mut(row), grads.prefix.row(slot), m.row_mut(row), v.row_mut(row), step);
        }
        let Moments { m, v } = &mut self.bits;
        adam(model.bits.view_mut(), grads.bits.view(), m.view_mut(), v.view_mut(), step);
        for ((layer, grad), (mw, mb)) in model.layers.iter_mut().zip(&grads.layers).zip(&mut self.layers) {
            adam(layer.weight.view_mut(), grad.weight.view(), mw.m.view_mut(), mw.v.view_mut(), step);
            adam(layer.bias.view_mut(), grad.bias.view(), mb.m.view_mut(), mb.v.view_mut(), step);
        }
    }
}

/// The result of one shard: its loss sum, correct count and gradients.
struct ShardResult {
    loss: f64,
    correct: usize,
    grads: Gradients,
    prefix_rows: Vec<[usize; 3]>,
}

/// Forward and backward over one shard. Samples before `positives` (batch-wide index) are
/// observed pairs; `scale` is 1 / samples in the batch, making the loss a batch mean.
fn shard(model: &Model, samples: &[Sample], offset: usize, positives: usize, scale: f32) -> ShardResult {
    let acts = model.forward(samples);
    let (mut loss, mut correct) = (0.0, 0);
    let dscores: Vec<f32> = acts
        .scores
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let positive = offset + i < positives;
            loss += bce_with_logits(s, positive);
            correct += usize::from((s > 0.0) == positive);
            (sigmoid(s) - if positive { 1.0 } else { 0.0 }) * scale
        })
        .collect();
    let grads = model.backward(&acts, &dscores);
    ShardResult { loss, correct, grads, prefix_rows: acts.prefix_rows }
}

/// Computes one mini-batch's gradients over parallel shards, combined in shard order.
fn batch_gradients(
    model: &Model,
    samples: &[Sample],
    positives: usize,
    shard_samples: usize,
) -> (BatchGradients, f64, usize) {
    let scale = 1.0 / samples.len() as f32;
    let results: Vec<ShardResult> = samples
        .par_chunks(shard_samples)
        .enumerate()
        .map(|(k, chunk)| shard(model, chunk, k * shard_samples, positives, scale))
        .collect();
    let dim = model.vector_dim();
    let mut bits = Array2::zeros(model.bits.raw_dim());
    let mut layers: Vec<Dense> = model
        .layers
        .iter()
        .map(|l| Dense { weight: Array2::zeros(l.weight.raw_dim()), bias: Array1::zeros(l.bias.raw_dim()) })
        .collect();
    let (mut entity, mut prefix) = (RowAccumulator::new(dim), RowAccumulator::new(dim));
    let (mut loss, mut correct) = (0.0, 0);
    for (k, result) in results.iter().enumerate() {
        loss += result.loss;
        correct += result.correct;
        bits += &result.grads.bits;
        for (sum, g) in layers.iter_mut().zip(&result.grads.layers) {
            sum.weight += &g.weight;
            sum.bias += &g.bias;
        }
        let chunk = &samples[k * shard_samples..];
        for (i, (sample, rows)) in chunk.iter().zip(&result.prefix_rows).enumerate() {
            entity.add(sample.row as usize, result.grads.entity.row(i));
            for &row in rows {
                prefix.add(row, result.grads.base.row(i));
            }
        }
    }
    let (entity_rows, entity) = entity.finish();
    let (prefix_rows, prefix) = prefix.finish();
    (BatchGradients { bits, layers, entity_rows, entity, prefix_rows, prefix }, loss, correct)
}

/// Fills `out` with a mini-batch: the observed pairs, then R random-address negatives of each,
/// then S re-paired negatives of each (another row's address from the same mini-batch; a
/// random address when the mini-batch has one row).
fn build_batch(data: &[Sample], batch: &[usize], hp: &Hyperparameters, rng: &mut impl Rng, out: &mut Vec<Sample>) {
    out.clear();
    out.extend(batch.iter().map(|&i| data[i]));
    for _ in 0..hp.random_negative_sampling_rate {
        out.extend(batch.iter().map(|&i| Sample { row: data[i].row, ip: rng.next_u32() }));
    }
    for _ in 0..hp.shuffled_negative_sampling_rate {
        for (j, &i) in batch.iter().enumerate() {
            let ip = if batch.len() > 1 {
                let mut k = rng.random_range(0..batch.len() - 1);
                if k >= j {
                    k += 1;
                }
                data[batch[k]].ip
            } else {
                rng.next_u32()
            };
            out.push(Sample { row: data[i].row, ip });
        }
    }
}

/// Trains a model on `train`, reporting to `progress`, and computes the validation AUC of the
/// final model when `validation` is given.
pub fn train(
    hp: &Hyperparameters,
    train: &[Pair],
    validation: Option<&[Pair]>,
    options: &TrainOptions,
    progress: &mut dyn Progress,
) -> Result<Trained, TrainError> {
    hp.validate()?;
    if train.is_empty() {
        return Err(TrainError::NoTrainingData);
    }
    if validation.is_some_and(|v| v.is_empty()) {
        return Err(TrainError::NoValidationData);
    }
    if options.shard_samples == 0 {
        return Err(TrainError::ZeroShard);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut model = Model::init(hp.num_entity_vectors, hp.vector_dim, hp.num_ip_encoder_layers, &mut rng);
    let mut optimizer = Optimizer::new(&model, hp);
    let data: Vec<Sample> = train.iter().map(|p| model.sample(&p.entity, p.ip)).collect();
    let per_pair = 1 + hp.random_negative_sampling_rate + hp.shuffled_negative_sampling_rate;
    let samples_in_epoch = data.len() * per_pair;
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut samples = Vec::with_capacity(hp.mini_batch_size.min(data.len()) * per_pair);
    let mut report = TrainReport::default();
    for epoch in 1..=hp.epochs {
        order.shuffle(&mut rng);
        let start = Instant::now();
        let (mut loss, mut correct, mut done) = (0.0, 0, 0);
        for (b, batch) in order.chunks(hp.mini_batch_size).enumerate() {
            build_batch(&data, batch, hp, &mut rng, &mut samples);
            let (grads, batch_loss, batch_correct) =
                batch_gradients(&model, &samples, batch.len(), options.shard_samples);
            optimizer.apply(&mut model, &grads);
            loss += batch_loss;
            correct += batch_correct;
            done += samples.len();
            progress.on_batch(&BatchProgress {
                epoch,
                batch: b + 1,
                samples_done: done,
                samples_in_epoch,
                samples_per_second: done as f64 / start.elapsed().as_secs_f64().max(1e-9),
                running_loss: loss / done as f64,
                running_accuracy: correct as f64 / done as f64,
                publish: (b + 1) % hp.batch_metrics_publish_interval == 0,
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let metrics = EpochMetrics {
            epoch,
            loss: loss / done as f64,
            accuracy: correct as f64 / done as f64,
            samples: done,
            seconds,
            samples_per_second: done as f64 / seconds.max(1e-9),
        };
        progress.on_epoch(&metrics);
        report.epochs.push(metrics);
    }
    if let Some(validation) = validation {
        report.validation_auc = Some(discriminator_auc(&model, validation, options.seed)?);
    }
    Ok(Trained { model, report })
}
