//! The IP Insights network: an entity embedding table, an IPv4 encoder, and their dot product.
//! Forward and backward passes are written by hand over `ndarray` so that training needs no
//! autodiff framework and every gradient can be checked against finite differences.
//!
//! The IPv4 encoder is ours (AWS has not published theirs): a base embedding made of a learned
//! 32 x `vector_dim` matrix applied to the address bits as ±1 values, plus one hashed row of a
//! prefix table for each of the /8, /16 and /24 networks, followed by `num_ip_encoder_layers`
//! dense layers with ReLU between them and a linear last layer.

use std::net::Ipv4Addr;

use ndarray::{Array1, Array2, ArrayView1, Axis, Zip, concatenate};
use rand::{Rng, RngExt};
use rayon::prelude::*;

/// Rows of the prefix table that the /8, /16 and /24 networks are hashed into.
pub const PREFIX_ROWS: usize = 1 << 16;
/// The address bits the bit matrix reads, most significant first.
pub(crate) const BITS: usize = 32;
const PREFIX_LENGTHS: [u32; 3] = [8, 16, 24];
/// Samples scored together when predicting in parallel.
const PREDICT_CHUNK: usize = 4096;

/// 64-bit FNV-1a: how entity strings and address prefixes are hashed to table rows.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The prefix-table rows of an address's /8, /16 and /24 networks. The hashed bytes are the
/// masked address (big-endian) followed by the prefix length, so 10.0.0.0/8 and 10.0.0.0/16
/// land on different rows. Public because the model file's format is: a reader of the weights
/// (such as the speed benchmark's reference loop) hashes addresses the same way.
pub fn prefix_rows(ip: u32, rows: usize) -> [usize; 3] {
    PREFIX_LENGTHS.map(|len| {
        let mut bytes = [0u8; 5];
        bytes[..4].copy_from_slice(&(ip & (u32::MAX << (32 - len))).to_be_bytes());
        bytes[4] = len as u8;
        (fnv1a64(&bytes) % rows as u64) as usize
    })
}

/// Bit `k` of the address (0 = most significant) as +1 or -1.
fn sign(ip: u32, k: usize) -> f32 {
    if (ip >> (31 - k)) & 1 == 1 { 1.0 } else { -1.0 }
}

/// Numerically stable binary cross-entropy with logits, in f64.
pub(crate) fn bce_with_logits(score: f32, positive: bool) -> f64 {
    let s = f64::from(score);
    let y = if positive { 1.0 } else { 0.0 };
    s.max(0.0) - y * s + (-s.abs()).exp().ln_1p()
}

/// The logistic function without overflow for large |x|.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// One dense layer of the IP encoder: `y = weight · x + bias`, weight `[out, in]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub(crate) weight: Array2<f32>,
    pub(crate) bias: Array1<f32>,
}

/// The learned parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub(crate) entity: Array2<f32>,
    pub(crate) bits: Array2<f32>,
    pub(crate) prefix: Array2<f32>,
    pub(crate) layers: Vec<Dense>,
}

/// An entity row and an address, as the network sees a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) row: u32,
    pub(crate) ip: u32,
}

/// Scores for a list of pairs and, when asked for (`verbose`), the two embeddings of each.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The `dot_product` of each pair: the log-odds that it is normal.
    pub scores: Vec<f32>,
    /// `[pairs, vector_dim]` entity vectors, for `;verbose=True`.
    pub entity_embeddings: Option<Array2<f32>>,
    /// `[pairs, vector_dim]` IP vectors, for `;verbose=True`.
    pub ip_embeddings: Option<Array2<f32>>,
}

/// What the forward pass keeps for the backward pass.
pub(crate) struct Activations {
    pub(crate) entity: Array2<f32>,
    signs: Array2<f32>,
    pub(crate) prefix_rows: Vec<[usize; 3]>,
    /// `hidden[0]` is the base embedding, `hidden[l + 1]` the output of layer `l`; the last is
    /// the IP vector.
    pub(crate) hidden: Vec<Array2<f32>>,
    pub(crate) scores: Vec<f32>,
}

/// Gradients of one group of samples. Embedding-table gradients stay per sample (`entity`,
/// `base`) so that the caller can scatter them into table rows in a fixed order.
pub(crate) struct Gradients {
    pub(crate) entity: Array2<f32>,
    pub(crate) base: Array2<f32>,
    pub(crate) bits: Array2<f32>,
    pub(crate) layers: Vec<Dense>,
}

fn uniform(shape: (usize, usize), bound: f32, rng: &mut impl Rng) -> Array2<f32> {
    Array2::from_shape_simple_fn(shape, || (2.0 * rng.random::<f32>() - 1.0) * bound)
}

impl Model {
    /// Random initial parameters: embedding rows uniform in ±0.5/√dim, the bit matrix ±0.5/√(32·dim)
    /// (its 32 rows add up), dense weights Xavier-uniform and biases zero. Scores then start
    /// near 0 and the first loss near ln 2.
    pub(crate) fn init(num_entity_vectors: usize, dim: usize, layers: usize, rng: &mut impl Rng) -> Self {
        let bound = 0.5 / (dim as f32).sqrt();
        let entity = uniform((num_entity_vectors, dim), bound, rng);
        let bits = uniform((BITS, dim), bound / (BITS as f32).sqrt(), rng);
        let prefix = uniform((PREFIX_ROWS, dim), bound, rng);
        let xavier = (6.0 / (2 * dim) as f32).sqrt();
        let layers =
            (0..layers).map(|_| Dense { weight: uniform((dim, dim), xavier, rng), bias: Array1::zeros(dim) }).collect();
        Self { entity, bits, prefix, layers }
    }

    pub fn vector_dim(&self) -> usize {
        self.entity.ncols()
    }

    pub fn num_entity_vectors(&self) -> usize {
        self.entity.nrows()
    }

    pub fn num_ip_encoder_layers(&self) -> usize {
        self.layers.len()
    }

    /// The entity-table row an entity string is hashed to (colliding entities share a row).
    pub fn entity_row(&self, entity: &str) -> usize {
        (fnv1a64(entity.as_bytes()) % self.entity.nrows() as u64) as usize
    }

    pub(crate) fn sample(&self, entity: &str, ip: Ipv4Addr) -> Sample {
        Sample { row: self.entity_row(entity) as u32, ip: u32::from(ip) }
    }

    /// Scores (entity, address) pairs, in parallel chunks; `verbose` also returns the vectors.
    pub fn predict(&self, pairs: &[(&str, Ipv4Addr)], verbose: bool) -> Prediction {
        let samples: Vec<Sample> = pairs.iter().map(|&(e, ip)| self.sample(e, ip)).collect();
        if !verbose {
            return Prediction { scores: self.scores(&samples), entity_embeddings: None, ip_embeddings: None };
        }
        let parts: Vec<Activations> = samples.par_chunks(PREDICT_CHUNK).map(|c| self.forward(c)).collect();
        let scores = parts.iter().flat_map(|a| a.scores.iter().copied()).collect();
        let entities: Vec<_> = parts.iter().map(|a| a.entity.view()).collect();
        let ips: Vec<_> = parts.iter().filter_map(|a| a.hidden.last()).map(|h| h.view()).collect();
        let dim = self.vector_dim();
        let join = |views: &[ndarray::ArrayView2<f32>]| {
            concatenate(Axis(0), views).unwrap_or_else(|_| Array2::zeros((0, dim)))
        };
        Prediction { scores, entity_embeddings: Some(join(&entities)), ip_embeddings: Some(join(&ips)) }
    }

    /// Scores of internal samples, in parallel chunks.
    pub(crate) fn scores(&self, samples: &[Sample]) -> Vec<f32> {
        let parts: Vec<Vec<f32>> = samples.par_chunks(PREDICT_CHUNK).map(|c| self.forward(c).scores).collect();
        parts.concat()
    }

    /// The forward pass over a group of samples.
    pub(crate) fn forward(&self, samples: &[Sample]) -> Activations {
        let (n, dim) = (samples.len(), self.vector_dim());
        let mut entity = Array2::zeros((n, dim));
        let mut signs = Array2::zeros((n, BITS));
        let mut rows = Vec::with_capacity(n);
        for (i, s) in samples.iter().enumerate() {
            entity.row_mut(i).assign(&self.entity.row(s.row as usize));
            for k in 0..BITS {
                signs[[i, k]] = sign(s.ip, k);
            }
            rows.push(prefix_rows(s.ip, self.prefix.nrows()));
        }
        let mut base = signs.dot(&self.bits);
        for (mut out, prefixes) in base.rows_mut().into_iter().zip(&rows) {
            for &p in prefixes {
                out += &self.prefix.row(p);
            }
        }
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        hidden.push(base);
        for (l, layer) in self.layers.iter().enumerate() {
            let mut z = hidden[l].dot(&layer.weight.t());
            z += &layer.bias;
            if l + 1 < self.layers.len() {
                z.mapv_inplace(|x| x.max(0.0));
            }
            hidden.push(z);
        }
        let scores = match hidden.last() {
            Some(ip) => Zip::from(entity.rows()).and(ip.rows()).map_collect(|e, v| e.dot(&v)).to_vec(),
            None => Vec::new(),
        };
        Activations { entity, signs, prefix_rows: rows, hidden, scores }
    }

    /// The backward pass: gradients of `Σ dscores[i] · score[i]`, given the forward activations.
    pub(crate) fn backward(&self, acts: &Activations, dscores: &[f32]) -> Gradients {
        let g = ArrayView1::from(dscores).insert_axis(Axis(1));
        let ip = &acts.hidden[acts.hidden.len() - 1];
        let entity = ip * &g;
        let mut d = &acts.entity * &g;
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in (0..self.layers.len()).rev() {
            if l + 1 < self.layers.len() {
                // This layer's output went through ReLU: no gradient where it was clipped.
                Zip::from(&mut d).and(&acts.hidden[l + 1]).for_each(|d, &h| {
                    if h <= 0.0 {
                        *d = 0.0;
                    }
                });
            }
            let weight = d.t().dot(&acts.hidden[l]);
            let bias = d.sum_axis(Axis(0));
            d = d.dot(&self.layers[l].weight);
            layers.push(Dense { weight, bias });
        }
        layers.reverse();
        let bits = acts.signs.t().dot(&d);
        Gradients { entity, base: d, bits, layers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn tiny() -> (Model, Vec<Sample>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut model = Model::init(3, 4, 2, &mut rng);
        // Non-zero biases and a larger scale, so that every term matters.
        for layer in &mut model.layers {
            layer.bias = Array1::from_shape_simple_fn(4, || rng.random::<f32>() - 0.5);
        }
        model.entity *= 4.0;
        let ips = [0x0a00_0001, 0x0a00_0002, 0xc0a8_0101, 0x0a00_0101, 0x0801_0203, 0xffff_fffe];
        let samples = ips.iter().enumerate().map(|(i, &ip)| Sample { row: (i % 3) as u32, ip }).collect();
        let labels = (0..ips.len()).map(|i| i % 2 == 0).collect();
        (model, samples, labels)
    }

    fn loss(model: &Model, samples: &[Sample], labels: &[bool]) -> f64 {
        let scores = model.forward(samples).scores;
        scores.iter().zip(labels).map(|(&s, &y)| bce_with_logits(s, y)).sum()
    }

    /// Central difference of the loss in one parameter, chosen by `param`.
    fn numeric(model: &Model, samples: &[Sample], labels: &[bool], param: impl Fn(&mut Model) -> &mut f32) -> f64 {
        const H: f32 = 3e-3;
        let mut plus = model.clone();
        *param(&mut plus) += H;
        let mut minus = model.clone();
        *param(&mut minus) -= H;
        (loss(&plus, samples, labels) - loss(&minus, samples, labels)) / (2.0 * f64::from(H))
    }

    fn close(name: &str, analytic: f32, numeric: f64) {
        let (a, n) = (f64::from(analytic), numeric);
        assert!((a - n).abs() <= 1e-3 + 2e-2 * n.abs(), "{name}: analytic {a} vs numeric {n}");
    }

    #[test]
    fn gradients_match_central_differences_for_every_parameter_kind() {
        let (model, samples, labels) = tiny();
        let acts = model.forward(&samples);
        let dscores: Vec<f32> =
            acts.scores.iter().zip(&labels).map(|(&s, &y)| sigmoid(s) - if y { 1.0 } else { 0.0 }).collect();
        let grads = model.backward(&acts, &dscores);
        let mut largest = [0f32; 6];

        for row in 0..3 {
            for c in 0..4 {
                let a: f32 =
                    (0..samples.len()).filter(|&i| samples[i].row as usize == row).map(|i| grads.entity[[i, c]]).sum();
                close("entity", a, numeric(&model, &samples, &labels, |m| &mut m.entity[[row, c]]));
                largest[0] = largest[0].max(a.abs());
            }
        }
        for k in [0, 5, 23, 31] {
            for c in 0..4 {
                let a = grads.bits[[k, c]];
                close("bits", a, numeric(&model, &samples, &labels, |m| &mut m.bits[[k, c]]));
                largest[1] = largest[1].max(a.abs());
            }
        }
        let mut prefixes: Vec<usize> = acts.prefix_rows.iter().flatten().copied().collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        for &p in &prefixes {
            for c in 0..4 {
                let a: f32 = (0..samples.len())
                    .map(|i| acts.prefix_rows[i].iter().filter(|&&q| q == p).count() as f32 * grads.base[[i, c]])
                    .sum();
                close("prefix", a, numeric(&model, &samples, &labels, |m| &mut m.prefix[[p, c]]));
                largest[2] = largest[2].max(a.abs());
            }
        }
        for l in 0..2 {
            for r in 0..4 {
                for c in 0..4 {
                    let a = grads.layers[l].weight[[r, c]];
                    close("weight", a, numeric(&model, &samples, &labels, |m| &mut m.layers[l].weight[[r, c]]));
                    largest[3 + l] = largest[3 + l].max(a.abs());
                }
                let a = grads.layers[l].bias[r];
                close("bias", a, numeric(&model, &samples, &labels, |m| &mut m.layers[l].bias[r]));
                largest[5] = largest[5].max(a.abs());
            }
        }
        assert!(largest.iter().all(|&g| g > 1e-2), "some gradients are all ~0: {largest:?}");
    }

    #[test]
    fn loss_and_sigmoid_are_stable_at_extremes() {
        assert!((bce_with_logits(0.0, true) - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(bce_with_logits(1000.0, true), 0.0);
        assert!((bce_with_logits(1000.0, false) - 1000.0).abs() < 1e-9);
        assert!((bce_with_logits(-1000.0, true) - 1000.0).abs() < 1e-9);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn hashes_are_fnv1a_and_prefixes_differ_by_length() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let rows = prefix_rows(0x0a00_0000, PREFIX_ROWS);
        assert!(rows[0] != rows[1] && rows[1] != rows[2]);
        assert_eq!(prefix_rows(0x0a01_0203, PREFIX_ROWS)[0], prefix_rows(0x0aff_ffff, PREFIX_ROWS)[0]);
    }

    #[test]
    fn verbose_prediction_reproduces_the_dot_product() {
        let (model, _, _) = tiny();
        let pairs = [("alice", Ipv4Addr::new(10, 0, 0, 1)), ("bob", Ipv4Addr::new(1, 2, 3, 4))];
        let p = model.predict(&pairs, true);
        let plain = model.predict(&pairs, false);
        assert_eq!(p.scores, plain.scores);
        let (Some(e), Some(v)) = (&p.entity_embeddings, &p.ip_embeddings) else {
            panic!("verbose prediction without embeddings");
        };
        assert_eq!(e.dim(), (2, 4));
        for i in 0..2 {
            assert!((e.row(i).dot(&v.row(i)) - p.scores[i]).abs() < 1e-6);
        }
        let zero_layers = Model { layers: Vec::new(), ..model };
        let base = zero_layers.forward(&[zero_layers.sample("alice", pairs[0].1)]);
        assert_eq!(base.hidden.len(), 1);
    }
}
