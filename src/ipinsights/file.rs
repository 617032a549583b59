//! The model file, `model.safetensors` in a model directory: the weights as safetensors
//! tensors (f32, little-endian) and, under the safetensors metadata key `ipinsights`, a JSON
//! header. One file holds both, so that weights and their description cannot drift apart.
//!
//! Tensors (`dim` = `vector_dim`):
//! - `entity`: `[num_entity_vectors, dim]`, the entity table; an entity's row is
//!   FNV-1a 64 of its UTF-8 bytes modulo `num_entity_vectors`.
//! - `ip.bits`: `[32, dim]`, multiplied by the address bits as ±1, most significant first.
//! - `ip.prefix`: `[65536, dim]`, the prefix table; the /8, /16 and /24 networks of an address
//!   each add the row FNV-1a 64 of (masked address, big-endian, then the prefix length byte)
//!   modulo 65536.
//! - `ip.layers.<l>.weight` `[dim, dim]` (output × input) and `ip.layers.<l>.bias` `[dim]`, for
//!   `l` in `0..num_ip_encoder_layers`: ReLU after each but the last.
//!
//! The header, as JSON:
//! - `format`: `"lakesight-ipinsights"`, and `format_version`: [`FORMAT_VERSION`], bumped
//!   whenever the encoder, the hashing or the tensor layout changes;
//! - `hyperparameters`: every hyperparameter under SageMaker's snake_case name, typed;
//! - `training_data_sha256`: [`super::data::digest`] of the training pairs;
//! - `metrics`: per epoch `loss`, `accuracy`, `samples`, `seconds` and `samples_per_second`,
//!   and `validation_auc` when a validation set was given.
//!
//! The Adam state is not kept: the file is for scoring, not for resuming training.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::hyperparameters::{HyperparameterError, Hyperparameters};
use super::model::{BITS, Dense, Model};
use super::train::TrainReport;

/// The name in the header, so that another safetensors file is not mistaken for a model.
pub const FORMAT: &str = "lakesight-ipinsights";
/// Bumped whenever the encoder, the hashing or the tensor layout changes.
pub const FORMAT_VERSION: u32 = 1;
/// The model file's name in a model directory.
pub const FILE_NAME: &str = "model.safetensors";
/// The safetensors metadata key that holds the JSON header.
const HEADER_KEY: &str = "ipinsights";

/// What is known about a model besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    pub format: String,
    pub format_version: u32,
    pub hyperparameters: Hyperparameters,
    /// [`super::data::digest`] of the training rows.
    pub training_data_sha256: String,
    pub metrics: TrainReport,
}

impl ModelHeader {
    pub fn new(hyperparameters: Hyperparameters, training_data_sha256: String, metrics: TrainReport) -> Self {
        Self {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            hyperparameters,
            training_data_sha256,
            metrics,
        }
    }
}

/// Why a model file could not be written or read.
#[derive(Debug, Error)]
pub enum ModelFileError {
    #[error("cannot access {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not a valid safetensors file: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("invalid model header: {0}")]
    Header(#[from] serde_json::Error),
    #[error("invalid hyperparameters in model header: {0}")]
    Hyperparameters(#[from] HyperparameterError),
    #[error("not an IP Insights model file: {0}")]
    Format(String),
}

fn format_error(message: impl Into<String>) -> ModelFileError {
    ModelFileError::Format(message.into())
}

/// Checks that the weights have the shapes the header's hyperparameters call for.
fn check_shapes(model: &Model, hp: &Hyperparameters) -> Result<(), ModelFileError> {
    let dim = hp.vector_dim;
    let ok = model.entity.dim() == (hp.num_entity_vectors, dim)
        && model.bits.dim() == (BITS, dim)
        && model.prefix.ncols() == dim
        && model.prefix.nrows() > 0
        && model.layers.len() == hp.num_ip_encoder_layers
        && model.layers.iter().all(|l| l.weight.dim() == (dim, dim) && l.bias.len() == dim);
    if ok { Ok(()) } else { Err(format_error("tensor shapes do not match the hyperparameters")) }
}

fn le_bytes<'a>(values: impl Iterator<Item = &'a f32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

/// Serialises a model and its header.
pub fn to_bytes(model: &Model, header: &ModelHeader) -> Result<Vec<u8>, ModelFileError> {
    check_shapes(model, &header.hyperparameters)?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
        ("entity".into(), model.entity.shape().to_vec(), le_bytes(model.entity.iter())),
        ("ip.bits".into(), model.bits.shape().to_vec(), le_bytes(model.bits.iter())),
        ("ip.prefix".into(), model.prefix.shape().to_vec(), le_bytes(model.prefix.iter())),
    ];
    for (l, layer) in model.layers.iter().enumerate() {
        tensors.push((format!("ip.layers.{l}.weight"), layer.weight.shape().to_vec(), le_bytes(layer.weight.iter())));
        tensors.push((format!("ip.layers.{l}.bias"), layer.bias.shape().to_vec(), le_bytes(layer.bias.iter())));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let metadata = HashMap::from([(HEADER_KEY.to_string(), serde_json::to_string(header)?)]);
    Ok(safetensors::serialize(views, Some(metadata))?)
}

fn tensor(file: &SafeTensors, name: &str, rank: usize) -> Result<(Vec<usize>, Vec<f32>), ModelFileError> {
    let view = file.tensor(name)?;
    if view.dtype() != Dtype::F32 || view.shape().len() != rank {
        return Err(format_error(format!("tensor {name} is not an f32 tensor of rank {rank}")));
    }
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((view.shape().to_vec(), values))
}

fn matrix(file: &SafeTensors, name: &str) -> Result<Array2<f32>, ModelFileError> {
    let (shape, values) = tensor(file, name, 2)?;
    Array2::from_shape_vec((shape[0], shape[1]), values).map_err(|e| format_error(format!("tensor {name}: {e}")))
}

/// Reads a model and its header, checking the format, version and shapes.
pub fn from_bytes(bytes: &[u8]) -> Result<(Model, ModelHeader), ModelFileError> {
    let (_, metadata) = SafeTensors::read_metadata(bytes)?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(HEADER_KEY))
        .ok_or_else(|| format_error("no IP Insights header in the metadata"))?;
    let header: ModelHeader = serde_json::from_str(json)?;
    if header.format != FORMAT || header.format_version != FORMAT_VERSION {
        return Err(format_error(format!(
            "format {} version {}, expected {FORMAT} version {FORMAT_VERSION}",
            header.format, header.format_version
        )));
    }
    header.hyperparameters.validate()?;
    let file = SafeTensors::deserialize(bytes)?;
    let layers = (0..header.hyperparameters.num_ip_encoder_layers)
        .map(|l| {
            let weight = matrix(&file, &format!("ip.layers.{l}.weight"))?;
            let (_, bias) = tensor(&file, &format!("ip.layers.{l}.bias"), 1)?;
            Ok(Dense { weight, bias: Array1::from_vec(bias) })
        })
        .collect::<Result<Vec<_>, ModelFileError>>()?;
    let model = Model {
        entity: matrix(&file, "entity")?,
        bits: matrix(&file, "ip.bits")?,
        prefix: matrix(&file, "ip.prefix")?,
        layers,
    };
    check_shapes(&model, &header.hyperparameters)?;
    Ok((model, header))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelFileError + '_ {
    move |source| ModelFileError::Io { path: path.to_path_buf(), source }
}

/// Writes `dir/model.safetensors`, creating `dir`. The file is written beside its final name
/// and renamed into place, so a reader never sees half a model.
pub fn save(dir: &Path, model: &Model, header: &ModelHeader) -> Result<PathBuf, ModelFileError> {
    let bytes = to_bytes(model, header)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (path, partial) = (dir.join(FILE_NAME), dir.join(format!(".{FILE_NAME}.partial")));
    std::fs::write(&partial, bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(path)
}

/// Reads a model from its directory, or from the file itself.
pub fn load(path: &Path) -> Result<(Model, ModelHeader), ModelFileError> {
    let file = if path.is_dir() { path.join(FILE_NAME) } else { path.to_path_buf() };
    let bytes = std::fs::read(&file).map_err(io(&file))?;
    from_bytes(&bytes)
}
