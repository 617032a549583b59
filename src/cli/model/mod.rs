//! `lakesight model`: train, evaluate and score with the embedded IP Insights engine
//! ([`crate::ipinsights`]), on CSV as the feature run's UNLOAD writes it.
//!
//! Input the algorithm refuses (hyperparameters out of range, a line without an IPv4 address,
//! no training data) ends the command with exit code 2 and a last stderr line starting with
//! `ClientError: `, as a SageMaker job's `FailureReason` does, so that a local SageMaker can
//! run these commands and report their failures as SageMaker would.

mod evaluate;
pub(super) mod input;
mod progress;
mod score;
mod train;

use std::io::Write;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{CliError, Global};
use crate::aws::stats::CallStats;

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Train a model; prints its final metrics as one JSON object.
    Train(train::TrainArgs),
    /// AUC against random-IP negatives, and TPR at 0, 1, 5 and 10 % FPR.
    Evaluate(evaluate::EvaluateArgs),
    /// Print the dot_product of each (entity, IPv4) pair.
    Score(score::ScoreArgs),
}

pub async fn run(global: &Global, args: &ModelArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    match &args.command {
        ModelCommand::Train(a) => train::run(global, a, stats).await,
        ModelCommand::Evaluate(a) => evaluate::run(global, a, stats).await,
        ModelCommand::Score(a) => score::run(global, a, stats).await,
    }
}

/// Writes a command's output to stdout. A reader that stops early (`| head`) is not an error:
/// `println!` would panic on the closed pipe.
fn emit(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
