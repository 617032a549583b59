//! `lakesight model evaluate`: how well a model tells held-out pairs from random-IP pairs, and
//! what share of them an alert threshold at a fixed false positive rate would keep quiet.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::super::{CliError, Global, OutputFormat, exit};
use super::input::{self, Source};
use crate::aws::stats::CallStats;
use crate::ipinsights::evaluate::{Negatives, evaluate};
use crate::ipinsights::file;

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model directory (or its model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Held-out pairs: a file, a directory, an s3://bucket/prefix/ or - for stdin.
    #[arg(long)]
    pub input: Source,
    /// Seeds the random-IP negatives.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub async fn run(global: &Global, args: &EvaluateArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let (model, _) = file::load(&args.model).map_err(|e| CliError::Failed(e.to_string()))?;
    let pairs = input::pairs(global, &args.input, stats).await?;
    let evaluation = evaluate(&model, &pairs, Negatives::RandomIp, args.seed)
        .map_err(|e| CliError::Client(format!("ClientError: {e}")))?;
    match args.output {
        OutputFormat::Json => {
            let points: Vec<_> = evaluation
                .operating_points
                .iter()
                .map(|p| json!({"fpr": p.target_fpr, "tpr": p.tpr, "threshold": p.threshold}))
                .collect();
            println!("{}", json!({"pairs": pairs.len(), "auc": evaluation.auc, "tpr_at_fpr": points}));
        }
        OutputFormat::Text => {
            println!("pairs: {} (each against one random-IP pair of the same entity)", pairs.len());
            println!("AUC:   {:.4}", evaluation.auc);
            for p in &evaluation.operating_points {
                println!(
                    "TPR at {:>2} % FPR: {:.4} (dot_product > {})",
                    (p.target_fpr * 100.0).round(),
                    p.tpr,
                    p.threshold
                );
            }
        }
    }
    Ok(exit::SUCCESS)
}
