//! `lakesight model train`: SageMaker's IP Insights training job, run here.
//!
//! Hyperparameters are SageMaker's string map: from a manifest (`-f`, built exactly as apply
//! builds the job's) or from a JSON file of strings. On success the model directory is written
//! and the final metrics, under SageMaker's metric names, are printed as one JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgGroup, Args};
use serde_json::json;

use super::super::{CliError, Global, exit};
use super::input::{self, Source};
use super::progress::{ProgressMode, Reporter};
use crate::aws::stats::CallStats;
use crate::ipinsights::data::{self, Pair};
use crate::ipinsights::train::{TrainError, train};
use crate::ipinsights::{Hyperparameters, ModelHeader, TrainOptions, file};
use crate::manifest::Manifest;
use crate::pipeline::ipinsights::{AUC_METRIC, hyperparameters as job_hyperparameters};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("hyperparameter_source").required(true).args(["file", "hyperparameters"])))]
pub struct TrainArgs {
    /// Training pairs: a file, a directory, an s3://bucket/prefix/ or - for stdin.
    #[arg(long)]
    pub train: Source,
    /// Validation pairs, for validation:discriminator_auc.
    #[arg(long)]
    pub validation: Option<Source>,
    /// A stack manifest: its spec.training.hyperparameters, as apply would send them.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A JSON object of SageMaker's hyperparameters, every value a string.
    #[arg(long)]
    pub hyperparameters: Option<PathBuf>,
    /// The model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Seeds initialisation, shuffling and negatives: the same seed and data give the same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Progress on stderr (default: a bar on a terminal, else none).
    #[arg(long, value_enum)]
    pub progress: Option<ProgressMode>,
}

fn client_error(e: impl std::fmt::Display) -> CliError {
    CliError::Client(e.to_string())
}

/// The job's string map, from a JSON file of strings.
fn read_map(path: &PathBuf) -> Result<BTreeMap<String, String>, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!("{}: expected a JSON object whose values are all strings: {e}", path.display()))
    })
}

/// The job's string map from a manifest, with `num_entity_vectors` sized from the data unless
/// fixed. The manifest is parsed and validated, but its scorer package need not be built yet:
/// training does not use it.
fn manifest_map(file: &PathBuf, train: &[Pair]) -> Result<BTreeMap<String, String>, CliError> {
    let source =
        std::fs::read_to_string(file).map_err(|e| CliError::Failed(format!("cannot read {}: {e}", file.display())))?;
    let manifest = Manifest::parse(file, &source)?;
    let hp = manifest.spec.training.map(|t| t.hyperparameters).unwrap_or_default();
    Ok(job_hyperparameters(&hp, data::distinct_entities(train) as u64))
}

pub async fn run(global: &Global, args: &TrainArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    // A map given as is is checked before any data is read, as the algorithm fails first on it.
    let given = args.hyperparameters.as_ref().map(read_map).transpose()?;
    if let Some(map) = &given {
        Hyperparameters::from_strings(map).map_err(client_error)?;
    }
    let train_pairs = input::pairs(global, &args.train, Arc::clone(&stats)).await?;
    let map = match (given, &args.file) {
        (Some(map), _) => map,
        (None, Some(file)) => manifest_map(file, &train_pairs)?,
        (None, None) => return Err(CliError::Usage("give -f FILE or --hyperparameters FILE".into())),
    };
    let hp = Hyperparameters::from_strings(&map).map_err(client_error)?;
    let validation = match &args.validation {
        Some(source) => Some(input::pairs(global, source, stats).await?),
        None => None,
    };

    let mut reporter = Reporter::new(ProgressMode::or_default(args.progress), hp.epochs);
    let options = TrainOptions { seed: args.seed, ..TrainOptions::default() };
    let trained = train(&hp, &train_pairs, validation.as_deref(), &options, &mut reporter);
    reporter.finish();
    let trained = trained.map_err(|e| match e {
        TrainError::ZeroShard => CliError::Failed(e.to_string()),
        other => client_error(other),
    })?;

    let header = ModelHeader::new(hp, data::digest(&train_pairs), trained.report.clone());
    file::save(&args.out, &trained.model, &header).map_err(|e| CliError::Failed(e.to_string()))?;

    let last = trained.report.epochs.last();
    let mut metrics = json!({
        "train:binary_classification_cross_entropy": last.map(|e| e.loss),
        "train:binary_classification_accuracy": last.map(|e| e.accuracy),
    });
    if let (Some(auc), Some(object)) = (trained.report.validation_auc, metrics.as_object_mut()) {
        object.insert(AUC_METRIC.to_owned(), json!(auc));
    }
    println!("{metrics}");
    Ok(exit::SUCCESS)
}
