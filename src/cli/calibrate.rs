//! `lakesight calibrate`: chooses the threshold of the generation the endpoint serves again,
//! from data, and hands it to the scorer. Normal held-out pairs and the same entities with
//! random addresses are scored on the endpoint; the report gives the threshold for the target
//! false-positive rate (or measures a fixed one), the rates it achieves on a held-out half, the
//! AUC, and both score distributions, in the terminal and, with `--plot`, as an SVG chart. The
//! threshold and its evidence are kept in the run ledger. Apply and retrain calibrate every
//! newly served generation by themselves; this command is for looking again, or after the
//! target changed outside a retrain.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::apply::{Request, converge};
use super::{CliError, Global, ManifestArg, OutputFormat, session};
use crate::aws::s3::read_json;
use crate::aws::sagemaker::calibration::{self, Record, record_key};
use crate::aws::sagemaker::endpoint;
use crate::aws::stats::CallStats;
use crate::aws::wiring::RunOptions;
use crate::calibration::{Calibration, write_svg};
use crate::engine::Intent;
use crate::ledger::{self, RunRecord};

/// The terminal histogram's width.
const WIDTH: usize = 80;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Also draw both score distributions and the threshold as an SVG chart.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Act without asking; required when stdin is not a terminal. The run applies the whole
    /// plan, so a manifest edited since the last apply is applied too.
    #[arg(long)]
    pub auto_approve: bool,
}

pub async fn run(global: &Global, args: &CalibrateArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let spec = crate::manifest::Manifest::load(&args.manifest.file)?.spec;
    if spec.features.is_none() || spec.training.is_none() || spec.endpoint.is_none() || spec.scorer.is_none() {
        return Err(CliError::Usage(
            "calibrate needs the manifest's features, training, endpoint and scorer sections".into(),
        ));
    }
    let request = Request {
        manifest: &args.manifest,
        intent: Intent::Present,
        command: ledger::Command::Calibrate,
        options: RunOptions { recalibrate: true, ..RunOptions::default() },
        auto_approve: args.auto_approve,
        output: OutputFormat::Text,
    };
    let (result, record) = converge(global, request, Arc::clone(&stats)).await;
    let code = result?;
    let Some((config, evidence)) = record.as_ref().and_then(evidence) else {
        return Err(CliError::Failed("the run published no calibration; see the report above".into()));
    };
    print!("{}", report(&config, &evidence));
    if let Some(path) = &args.plot {
        let (stack, aws) = session::connect(global, &args.manifest.file, stats).await?;
        let kept: Option<Record> = read_json(&aws.s3, &stack.artifact_bucket(), &record_key(&config))
            .await
            .map_err(|e| CliError::Failed(format!("reading the calibration of {config}: {e}")))?;
        let kept = kept.ok_or_else(|| CliError::Failed(format!("no calibration of {config} is kept")))?;
        let title = format!("{config}: threshold {:.3}", evidence.threshold);
        write_svg(path, &kept.scores.normal, &kept.scores.anomalous, evidence.threshold, &title)
            .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(code)
}

/// The serving configuration and its calibration, as the run published them.
fn evidence(record: &RunRecord) -> Option<(String, Calibration)> {
    let config = record.output(endpoint::ADDRESS, endpoint::SERVING_CONFIG.name)?.as_str()?.to_owned();
    let evidence = record.output(calibration::ADDRESS, calibration::EVIDENCE.name)?;
    let evidence = serde_json::from_value(evidence.clone()).ok()?;
    Some((config, evidence))
}

fn report(config: &str, c: &Calibration) -> String {
    let percent = |rate: f64| format!("{:.2}%", rate * 100.0);
    let chosen = match c.target_false_positive_rate {
        Some(target) => format!("chosen for a false-positive rate of {}", percent(target)),
        None => "fixed by the manifest".to_owned(),
    };
    let n = &c.counts;
    format!(
        "Calibration of {config} (seed {}):\n  threshold {:.4} on -dot_product, {chosen}\n  \
         false-positive rate {} on the {} pairs it was chosen on, {} on {} held-out pairs\n  \
         random-IP pairs above it: {} of {} held out (true-positive rate)\n  AUC {:.4}\n{}",
        c.seed,
        c.threshold,
        percent(c.calibration_false_positive_rate),
        n.calibration_normal,
        percent(c.check_false_positive_rate),
        n.check_normal,
        percent(c.check_true_positive_rate),
        n.check_anomalous,
        c.auc,
        c.histogram.render(Some(c.threshold), WIDTH),
    )
}
