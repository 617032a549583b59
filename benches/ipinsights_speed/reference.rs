//! The reference loop: the engine's arithmetic written the plain way, one sample at a time, on
//! one thread, with `Vec<f32>` and nested loops (matrix-vector products, no matrix-matrix
//! kernels, no shards). The speed benchmark prints its rate beside the engine's, so that the
//! ratio shows what the engine's batching, `ndarray` kernels and threads buy.
//!
//! Same math as `lakesight::ipinsights`: the FNV-1a entity row; the base embedding of the
//! address bits as ±1 times the bit matrix plus the /8, /16 and /24 prefix rows; the dense
//! layers, ReLU between them and the last linear; the dot product; binary cross-entropy with
//! the batch mean; R random-address and S re-paired negatives per pair; lazy Adam (MXNet's form,
//! one global step count) with weight decay on touched table rows and on every dense parameter.
//! It starts from the weights of an engine model file, read through the file's documented
//! tensors, and the benchmark checks that it scores pairs as the engine does.
//!
//! It is hand-written on purpose: it is the baseline the engine is measured against, so it must
//! not use the engine's own kernels.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use lakesight::ipinsights::Hyperparameters;
use lakesight::ipinsights::model::{fnv1a64, prefix_rows};
use rand::seq::SliceRandom;
use rand::{Rng, RngExt};
use safetensors::SafeTensors;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// A row-major `[rows, cols]` matrix.
#[derive(Clone)]
struct Matrix {
    cols: usize,
    values: Vec<f32>,
}

impl Matrix {
    fn zeros_like(&self) -> Matrix {
        Matrix { cols: self.cols, values: vec![0.0; self.values.len()] }
    }

    fn rows(&self) -> usize {
        self.values.len() / self.cols
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }

    fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.values[r * self.cols..(r + 1) * self.cols]
    }
}

/// The parameters, in the model file's layout.
#[derive(Clone)]
struct Weights {
    entity: Matrix,
    bits: Matrix,
    prefix: Matrix,
    /// `(weight [out, in], bias)` per encoder layer.
    layers: Vec<(Matrix, Vec<f32>)>,
}

/// The reference model: what scoring needs.
pub struct Reference {
    w: Weights,
}

/// The reference model and its Adam state: what training needs.
pub struct Trainer {
    model: Reference,
    m: Weights,
    v: Weights,
    step: i32,
}

/// Gradients of one mini-batch: table rows in maps (only touched rows exist), the rest dense.
struct BatchGradients {
    entity: HashMap<usize, Vec<f32>>,
    prefix: HashMap<usize, Vec<f32>>,
    bits: Matrix,
    layers: Vec<(Matrix, Vec<f32>)>,
}

fn matrix(file: &SafeTensors, name: &str) -> Result<Matrix, String> {
    let view = file.tensor(name).map_err(|e| format!("{name}: {e}"))?;
    let cols = *view.shape().last().ok_or_else(|| format!("{name}: a scalar"))?;
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(Matrix { cols, values })
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn bce_with_logits(score: f32, positive: bool) -> f64 {
    let s = f64::from(score);
    s.max(0.0) - if positive { s } else { 0.0 } + (-s.abs()).exp().ln_1p()
}

/// One Adam update of one parameter slice, weight decay included.
fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr: f32, wd: f32) {
    for i in 0..w.len() {
        let g = g[i] + wd * w[i];
        m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
        v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
        w[i] -= lr * m[i] / (v[i].sqrt() + EPSILON);
    }
}

impl Reference {
    /// Reads the weights of an engine model file (`model.safetensors`).
    pub fn from_model_file(bytes: &[u8]) -> Result<Reference, String> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let layers = (0..)
            .map_while(|l| {
                let weight = matrix(&file, &format!("ip.layers.{l}.weight")).ok()?;
                let bias = matrix(&file, &format!("ip.layers.{l}.bias")).ok()?;
                Some((weight, bias.values))
            })
            .collect();
        let w = Weights {
            entity: matrix(&file, "entity")?,
            bits: matrix(&file, "ip.bits")?,
            prefix: matrix(&file, "ip.prefix")?,
            layers,
        };
        Ok(Reference { w })
    }

    /// The entity table row of an entity string.
    pub fn row(&self, entity: &str) -> usize {
        (fnv1a64(entity.as_bytes()) % self.w.entity.rows() as u64) as usize
    }

    /// The encoder's activations for one address: `[0]` the base embedding, `[l + 1]` the
    /// output of layer `l`, the last the IP vector; and the prefix rows it read.
    fn encode(&self, ip: u32) -> (Vec<Vec<f32>>, [usize; 3]) {
        let dim = self.w.bits.cols;
        let prefixes = prefix_rows(ip, self.w.prefix.rows());
        let mut base = vec![0.0; dim];
        for k in 0..32 {
            let sign = if (ip >> (31 - k)) & 1 == 1 { 1.0 } else { -1.0 };
            for (b, x) in base.iter_mut().zip(self.w.bits.row(k)) {
                *b += sign * x;
            }
        }
        for &p in &prefixes {
            for (b, x) in base.iter_mut().zip(self.w.prefix.row(p)) {
                *b += x;
            }
        }
        let mut hidden = vec![base];
        for (l, (weight, bias)) in self.w.layers.iter().enumerate() {
            let input = &hidden[l];
            let mut out: Vec<f32> = (0..dim).map(|o| dot(weight.row(o), input) + bias[o]).collect();
            if l + 1 < self.w.layers.len() {
                out.iter_mut().for_each(|x| *x = x.max(0.0));
            }
            hidden.push(out);
        }
        (hidden, prefixes)
    }

    /// The `dot_product` of one pair.
    pub fn score(&self, entity: &str, ip: Ipv4Addr) -> f32 {
        let (hidden, _) = self.encode(u32::from(ip));
        hidden.last().map_or(0.0, |v| dot(self.w.entity.row(self.row(entity)), v))
    }

    /// One sample's forward and backward pass, its gradients scaled by `scale` and added to
    /// `grads`; returns its loss.
    fn accumulate(&self, row: usize, ip: u32, positive: bool, scale: f32, grads: &mut BatchGradients) -> f64 {
        let dim = self.w.bits.cols;
        let (hidden, prefixes) = self.encode(ip);
        let entity = self.w.entity.row(row);
        let ip_vector = &hidden[hidden.len() - 1];
        let score = dot(entity, ip_vector);
        let dscore = (sigmoid(score) - if positive { 1.0 } else { 0.0 }) * scale;
        let e_grad = grads.entity.entry(row).or_insert_with(|| vec![0.0; dim]);
        for (g, v) in e_grad.iter_mut().zip(ip_vector) {
            *g += dscore * v;
        }
        let mut d: Vec<f32> = entity.iter().map(|e| dscore * e).collect();
        for l in (0..self.w.layers.len()).rev() {
            if l + 1 < self.w.layers.len() {
                for (d, h) in d.iter_mut().zip(&hidden[l + 1]) {
                    if *h <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
            let (weight, _) = &self.w.layers[l];
            let (gw, gb) = &mut grads.layers[l];
            for (o, &d_o) in d.iter().enumerate() {
                for (g, h) in gw.row_mut(o).iter_mut().zip(&hidden[l]) {
                    *g += d_o * h;
                }
                gb[o] += d_o;
            }
            let mut below = vec![0.0; dim];
            for (o, &d_o) in d.iter().enumerate() {
                for (b, w) in below.iter_mut().zip(weight.row(o)) {
                    *b += d_o * w;
                }
            }
            d = below;
        }
        for k in 0..32 {
            let sign = if (ip >> (31 - k)) & 1 == 1 { 1.0 } else { -1.0 };
            for (g, x) in grads.bits.row_mut(k).iter_mut().zip(&d) {
                *g += sign * x;
            }
        }
        for p in prefixes {
            let p_grad = grads.prefix.entry(p).or_insert_with(|| vec![0.0; dim]);
            for (g, x) in p_grad.iter_mut().zip(&d) {
                *g += x;
            }
        }
        bce_with_logits(score, positive)
    }
}

impl Trainer {
    /// Starts training from `model`'s weights, with zero Adam moments.
    pub fn new(model: Reference) -> Trainer {
        let w = &model.w;
        let zeros = Weights {
            entity: w.entity.zeros_like(),
            bits: w.bits.zeros_like(),
            prefix: w.prefix.zeros_like(),
            layers: w.layers.iter().map(|(m, b)| (m.zeros_like(), vec![0.0; b.len()])).collect(),
        };
        Trainer { model, m: zeros.clone(), v: zeros, step: 0 }
    }

    /// Lazy Adam over one batch's gradients.
    fn apply(&mut self, grads: &BatchGradients, hp: &Hyperparameters) {
        self.step += 1;
        let correction = (1.0 - f64::from(BETA2).powi(self.step)).sqrt() / (1.0 - f64::from(BETA1).powi(self.step));
        let (lr, wd) = ((hp.learning_rate * correction) as f32, hp.weight_decay as f32);
        let (w, m, v) = (&mut self.model.w, &mut self.m, &mut self.v);
        for (&r, g) in &grads.entity {
            adam(w.entity.row_mut(r), g, m.entity.row_mut(r), v.entity.row_mut(r), lr, wd);
        }
        for (&r, g) in &grads.prefix {
            adam(w.prefix.row_mut(r), g, m.prefix.row_mut(r), v.prefix.row_mut(r), lr, wd);
        }
        adam(&mut w.bits.values, &grads.bits.values, &mut m.bits.values, &mut v.bits.values, lr, wd);
        for l in 0..w.layers.len() {
            let (gw, gb) = &grads.layers[l];
            adam(&mut w.layers[l].0.values, &gw.values, &mut m.layers[l].0.values, &mut v.layers[l].0.values, lr, wd);
            adam(&mut w.layers[l].1, gb, &mut m.layers[l].1, &mut v.layers[l].1, lr, wd);
        }
    }

    /// Trains on the first `batches` mini-batches of one shuffled epoch over `data` (entity row,
    /// address), building each batch's negatives as the engine does. Returns the samples
    /// processed and their mean loss.
    pub fn train_batches(
        &mut self,
        data: &[(usize, u32)],
        hp: &Hyperparameters,
        batches: usize,
        rng: &mut impl Rng,
    ) -> (usize, f64) {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(rng);
        let (mut samples, mut loss) = (0, 0.0);
        for batch in order.chunks(hp.mini_batch_size).take(batches) {
            let mut batch_samples: Vec<(usize, u32, bool)> =
                batch.iter().map(|&i| (data[i].0, data[i].1, true)).collect();
            for _ in 0..hp.random_negative_sampling_rate {
                batch_samples.extend(batch.iter().map(|&i| (data[i].0, rng.next_u32(), false)));
            }
            for _ in 0..hp.shuffled_negative_sampling_rate {
                for (j, &i) in batch.iter().enumerate() {
                    let ip = if batch.len() > 1 {
                        let k = rng.random_range(0..batch.len() - 1);
                        data[batch[if k >= j { k + 1 } else { k }]].1
                    } else {
                        rng.next_u32()
                    };
                    batch_samples.push((data[i].0, ip, false));
                }
            }
            let mut grads = BatchGradients {
                entity: HashMap::new(),
                prefix: HashMap::new(),
                bits: self.model.w.bits.zeros_like(),
                layers: self.model.w.layers.iter().map(|(m, b)| (m.zeros_like(), vec![0.0; b.len()])).collect(),
            };
            let scale = 1.0 / batch_samples.len() as f32;
            for &(row, ip, positive) in &batch_samples {
                loss += self.model.accumulate(row, ip, positive, scale, &mut grads);
            }
            self.apply(&grads, hp);
            samples += batch_samples.len();
        }
        (samples, loss / samples.max(1) as f64)
    }
}
