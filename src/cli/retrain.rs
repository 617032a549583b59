//! `lakesight retrain`: a new model generation from a fresh data window, for cron, CI schedules
//! and EventBridge Scheduler. It is an apply whose feature run covers the window ending at
//! `--window-end`: the feature UNLOADs run again, a new generation trains, the quality gate
//! judges it against the deployed one, and only a generation that passes is deployed (blue/green,
//! verified), calibrated, and handed to the scorer; old generations are collected last. The same
//! window retried is a no-op, so a scheduler's retries train nothing twice.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::apply::{Request, converge};
use super::plan::print_plan;
use super::{CliError, Global, ManifestArg, OutputFormat, exit, session};
use crate::aws::athena::feature_run;
use crate::aws::sagemaker::{calibration, endpoint, training_job};
use crate::aws::stats::CallStats;
use crate::aws::wiring::RunOptions;
use crate::calibration::Calibration;
use crate::engine::{self, Intent, Outcome};
use crate::ledger::{self, RunRecord};

#[derive(Debug, Args)]
pub struct RetrainArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// End of the data window, RFC 3339 (`2026-12-01T00:00:00Z`). Default: the start of the
    /// current hour, UTC, so that a retry within the hour asks for the same window.
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    pub window_end: Option<SystemTime>,
    /// Show the plan of the retrain and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub async fn run(global: &Global, args: &RetrainArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let window_end = args.window_end.unwrap_or_else(|| start_of_hour(SystemTime::now()));
    let options = RunOptions { window_end: Some(window_end), ..RunOptions::default() };
    trains(&crate::manifest::Manifest::load(&args.manifest.file)?.spec)?;
    if args.dry_run {
        let s = session::open_for(global, &args.manifest.file, Arc::clone(&stats), options).await?;
        let plan = engine::plan(&s.graph, Intent::Present, global.parallelism.into()).await?;
        stats.observed(s.graph.len());
        print_plan(&plan, args.output);
        return Ok(exit::SUCCESS);
    }
    let request = Request {
        manifest: &args.manifest,
        intent: Intent::Present,
        command: ledger::Command::Retrain { window_end },
        options,
        // Scheduled runs have no one to ask; the plan is printed and recorded all the same.
        auto_approve: true,
        output: args.output,
    };
    let (result, record) = converge(global, request, stats).await;
    if let Some(record) = record.as_ref().filter(|_| args.output == OutputFormat::Text) {
        for line in summary(record) {
            println!("{line}");
        }
    }
    // A retry of a window whose generation the gate rejected changes nothing, and fails as the
    // first attempt did, so that a scheduler reports the same outcome.
    match (result, record.as_ref().and_then(rejection)) {
        (Ok(exit::SUCCESS), Some(verdict)) => {
            Err(CliError::Failed(format!("quality gate (decided by an earlier run): {verdict}")))
        }
        (result, _) => result,
    }
}

/// The gate's verdict on the window's generation, when it was a rejection: the training job was
/// left as it was (its window trained already), and its newest job was refused. A job deferred
/// because the window waits for data has no verdict of this run.
fn rejection(record: &RunRecord) -> Option<String> {
    let node = record.nodes.iter().find(|n| n.address == training_job::ADDRESS)?;
    if node.outcome != Outcome::Unchanged {
        return None;
    }
    let verdict = node.outputs.get(training_job::GATE.name)?.as_str()?;
    verdict.contains(" rejected: ").then(|| verdict.to_owned())
}

/// Retraining needs something to train.
fn trains(spec: &crate::manifest::Spec) -> Result<(), CliError> {
    if spec.features.is_none() || spec.training.is_none() {
        return Err(CliError::Usage("retrain needs the manifest's features and training sections".into()));
    }
    Ok(())
}

fn start_of_hour(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs - secs % 3600)
}

/// What a retrain (or a calibration) decided, in plain words, from what the nodes published.
pub(super) fn summary(record: &RunRecord) -> Vec<String> {
    let output = |address: &str, key: &str| record.output(address, key).cloned();
    let text = |v: Option<serde_json::Value>| v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let mut lines = Vec::new();
    if let ledger::Command::Retrain { window_end } = &record.command {
        lines.push(format!("Retrain over the window ending {}:", humantime::format_rfc3339_seconds(*window_end)));
    }
    if let Some(bytes) = output(feature_run::ADDRESS, feature_run::BYTES_SCANNED.name).and_then(|v| v.as_u64()) {
        lines.push(format!("  features: {} scanned by the run's queries", indicatif::HumanBytes(bytes)));
    }
    if let Some(gate) = text(output(training_job::ADDRESS, training_job::GATE.name)) {
        lines.push(format!("  quality gate: {gate}"));
    }
    if let Some(job) = text(output(training_job::ADDRESS, training_job::JOB_NAME.name)) {
        lines.push(format!("  deployable generation: {job}"));
    }
    if let Some(config) = text(output(endpoint::ADDRESS, endpoint::SERVING_CONFIG.name)) {
        lines.push(format!("  serving: {config}"));
    }
    let evidence = output(calibration::ADDRESS, calibration::EVIDENCE.name);
    if let Some(c) = evidence.and_then(|v| serde_json::from_value::<Calibration>(v).ok()) {
        lines.push(format!(
            "  threshold: {:.4}, false-positive rate {:.2}% on held-out pairs, AUC {:.4}",
            c.threshold,
            c.check_false_positive_rate * 100.0,
            c.auc
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::Action;
    use crate::ledger::NodeRun;

    #[test]
    fn the_default_window_ends_at_the_start_of_the_hour() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_687_200 + 59 * 60 + 59);
        assert_eq!(start_of_hour(t), SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_687_200));
    }

    #[test]
    fn the_summary_names_the_window_the_verdict_and_what_serves() {
        let window_end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_687_200);
        let mut record = RunRecord::begin("demo", ledger::Command::Retrain { window_end }, "arn", None);
        let node = |address: &str, outputs: &[(&str, serde_json::Value)]| NodeRun {
            address: address.to_owned(),
            name: String::new(),
            planned: Action::NoOp,
            outcome: Outcome::Unchanged,
            duration_seconds: None,
            outputs: outputs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>(),
        };
        record.nodes = vec![
            node(feature_run::ADDRESS, &[("bytesScanned", serde_json::json!(3 * 1024 * 1024))]),
            node(
                training_job::ADDRESS,
                &[("qualityGate", serde_json::json!("g2 rejected: AUC 0.6 is below minAuc 0.8"))],
            ),
            node(endpoint::ADDRESS, &[("servingConfig", serde_json::json!("g1-c0a0b"))]),
        ];
        assert_eq!(rejection(&record).as_deref(), Some("g2 rejected: AUC 0.6 is below minAuc 0.8"));
        record.nodes[1].outcome = Outcome::Deferred { waits_on: feature_run::ADDRESS.into() };
        assert_eq!(rejection(&record), None, "a window waiting for data was not judged by this run");
        assert_eq!(
            summary(&record),
            [
                "Retrain over the window ending 2026-11-26T10:00:00Z:",
                "  features: 3.00 MiB scanned by the run's queries",
                "  quality gate: g2 rejected: AUC 0.6 is below minAuc 0.8",
                "  serving: g1-c0a0b",
            ]
        );
    }
}
