//! The command line: one module per subcommand, each a thin layer that builds its options,
//! calls the engine and renders the result. Diagnostics and exit codes live only here.

mod apply;
mod calibrate;
mod confirm;
mod diagnostics;
mod force_unlock;
mod history;
mod iam_policy;
mod lock;
mod model;
mod plan;
mod progress;
mod retrain;
mod score;
mod session;
mod sql;
mod status;
mod timings;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use diagnostics::render_error;

use crate::aws::stats::CallStats;

/// Exit codes, stable for scripts and pipelines.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode` found changes.
    pub const CHANGES: u8 = 2;
    /// `model` commands: the algorithm refused its input (hyperparameters, data), as a
    /// SageMaker job fails with a `ClientError`. The last stderr line starts with `ClientError: `.
    pub const CLIENT_ERROR: u8 = 2;
    /// The command line itself was wrong.
    pub const USAGE: u8 = 64;
    /// Another run holds the stack's lock and kept it past `--lock-timeout`, or this run lost
    /// its lease while it ran. A temporary failure: retry later (sysexits' `EX_TEMPFAIL`).
    pub const LOCKED: u8 = 75;
    /// Stopped by Ctrl-C or SIGTERM; the next apply resumes.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "lakesight",
    version,
    about = "Reconcile an ML anomaly-detection stack over Amazon Security Lake from one manifest"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// AWS region; must agree with spec.region when the manifest sets one. (AWS_REGION and the
    /// profile's region are only defaults: a manifest's spec.region overrides them.)
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named AWS profile.
    #[arg(long, global = true, env = "AWS_PROFILE", hide_env_values = true)]
    pub profile: Option<String>,
    /// Endpoint for every AWS service, such as a local emulator.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", hide_env_values = true)]
    pub endpoint_url: Option<String>,
    /// Resources worked on at the same time.
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No colours (also honoured: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Print AWS calls per service and operation, retries and wall time at the end.
    #[arg(long, global = true)]
    pub stats: bool,
    /// Also write every AWS call made, with the resource its request names, as JSON to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// How long apply and destroy wait for the stack's lock while another run holds it, such as
    /// 10m, 90s or 0 (fail at once).
    #[arg(long, global = true, default_value = "10m", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ManifestArg {
    /// The stack manifest.
    #[arg(short = 'f', long = "file", env = "LAKESIGHT_FILE", default_value = "lakesight.yaml")]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest without calling AWS.
    Validate(ManifestArg),
    /// Print the JSON Schema of the manifest.
    Schema,
    /// Show what apply would change.
    Plan(plan::PlanArgs),
    /// Create or update the stack.
    Apply(apply::ApplyArgs),
    /// Remove what the stack owns (retained resources stay).
    Destroy(apply::DestroyArgs),
    /// Show every resource's state, id and health.
    Status(status::StatusArgs),
    /// Print the feature SQL (entity count, train and validation UNLOADs) a run would send to Athena.
    Sql(sql::SqlArgs),
    /// Train, evaluate and score IP Insights models locally, with the embedded engine.
    Model(model::ModelArgs),
    /// Train a new generation on a fresh data window; deploy it only if it passes the quality gate.
    Retrain(retrain::RetrainArgs),
    /// Choose the serving generation's threshold again from scored held-out data, and report it.
    Calibrate(calibrate::CalibrateArgs),
    /// Score (entity, IPv4) pairs on the stack's live endpoint, with the deployed scorer's verdicts.
    Score(score::ScoreArgs),
    /// List the stack's recorded runs (apply, destroy, retrain, calibrate), newest first.
    History(history::HistoryArgs),
    /// Remove the stack's lock, left by a run that died; the run that held it must be gone.
    ForceUnlock(force_unlock::ForceUnlockArgs),
    /// Print the least-privilege IAM policy that apply, destroy and retrain of the stack need.
    IamPolicy(iam_policy::IamPolicyArgs),
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Connect(#[from] crate::aws::ConnectError),
    #[error(transparent)]
    Graph(#[from] crate::aws::wiring::WiringError),
    #[error(transparent)]
    Plan(#[from] crate::engine::PlanFailure),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    /// The algorithm's refusal, worded as SageMaker's `ClientError` failure reason.
    #[error("{0}")]
    Client(String),
    #[error("interrupted; run the same command again to continue where it stopped")]
    Interrupted,
    #[error(transparent)]
    Lock(crate::aws::s3::lock::LockError),
    #[error("lost the stack's lock while running, so it stopped starting work: {0}")]
    LockLost(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Interrupted => exit::INTERRUPTED,
            CliError::Client(_) => exit::CLIENT_ERROR,
            CliError::Lock(crate::aws::s3::lock::LockError::Timeout { .. }) | CliError::LockLost(_) => exit::LOCKED,
            _ => exit::ERROR,
        }
    }
}

/// Runs one command; `Ok` carries the exit code of a successful run (0, or 2 for detected changes).
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let started = std::time::Instant::now();
    let g = &cli.global;
    let stats = Arc::new(if g.stats_json.is_some() { CallStats::recording() } else { CallStats::default() });
    let result = match &cli.command {
        Command::Validate(args) => return validate::run(&args.file),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&crate::manifest::json_schema()).unwrap_or_default());
            return Ok(exit::SUCCESS);
        }
        Command::Plan(args) => plan::run(g, args, Arc::clone(&stats)).await,
        Command::Apply(args) => apply::run_apply(g, args, Arc::clone(&stats)).await,
        Command::Destroy(args) => apply::run_destroy(g, args, Arc::clone(&stats)).await,
        Command::Status(args) => status::run(g, args, Arc::clone(&stats)).await,
        Command::Sql(args) => sql::run(g, args, Arc::clone(&stats)).await,
        Command::Model(args) => model::run(g, args, Arc::clone(&stats)).await,
        Command::Retrain(args) => retrain::run(g, args, Arc::clone(&stats)).await,
        Command::Calibrate(args) => calibrate::run(g, args, Arc::clone(&stats)).await,
        Command::Score(args) => score::run(g, args, Arc::clone(&stats)).await,
        Command::History(args) => history::run(g, args, Arc::clone(&stats)).await,
        Command::ForceUnlock(args) => force_unlock::run(g, args, Arc::clone(&stats)).await,
        Command::IamPolicy(args) => iam_policy::run(g, args, Arc::clone(&stats)).await,
    };
    if g.stats {
        eprint!("{}", stats.summary().render(started.elapsed()));
    }
    // Written whatever the command's outcome, and a failure to write does not hide that outcome.
    if let (Some(path), Some(dump)) = (&g.stats_json, stats.dump()) {
        let written = serde_json::to_string_pretty(&dump)
            .map_err(std::io::Error::other)
            .and_then(|text| std::fs::write(path, text + "\n"));
        if let Err(e) = written {
            eprintln!("warning: could not write --stats-json {}: {e}", path.display());
        }
    }
    result
}
