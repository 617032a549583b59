//! `lakesight history`: the stack's run ledger, newest first.

use std::sync::Arc;

use clap::Args;

use super::{CliError, Global, ManifestArg, OutputFormat, exit, session};
use crate::aws::s3::runs;
use crate::aws::stats::CallStats;
use crate::ledger::{Command, RunRecord};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub limit: u16,
    /// `json`: the records themselves, as written.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub async fn run(global: &Global, args: &HistoryArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let (stack, aws) = session::connect(global, &args.manifest.file, stats).await?;
    let entries = runs::history(&aws.records, &stack.artifact_bucket(), stack.name(), usize::from(args.limit))
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut records = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Ok(record) => records.push(record),
            Err(bad) => eprintln!("warning: {} is not a run record, left out: {}", bad.key, bad.reason),
        }
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&records).unwrap_or_default()),
        OutputFormat::Text if records.is_empty() => println!("No runs recorded for stack {:?}.", stack.name()),
        OutputFormat::Text => print_table(&records),
    }
    Ok(exit::SUCCESS)
}

fn print_table(records: &[RunRecord]) {
    println!("{:<21} {:<9} {:>4} {:>9}  {:<27} CALLER", "STARTED (UTC)", "COMMAND", "EXIT", "DURATION", "PLAN");
    for r in records {
        let command = r.command.name();
        let plan = r.plan.as_ref().map_or_else(
            || "(not planned)".to_owned(),
            |p| format!("+{} ~{} -/+{} -{} ={}", p.create, p.update, p.replace, p.delete, p.unchanged),
        );
        println!(
            "{:<21} {:<9} {:>4} {:>8.1}s  {:<27} {}",
            humantime::format_rfc3339_seconds(r.started_at).to_string(),
            command,
            r.exit.code,
            r.duration_seconds,
            plan,
            r.caller
        );
        if let Some(error) = &r.exit.error {
            println!("    {}", error.lines().next().unwrap_or_default());
        }
        // What a retrain or a calibration decided, in the words the command printed.
        if matches!(r.command, Command::Retrain { .. } | Command::Calibrate) {
            for line in super::retrain::summary(r).iter().filter(|l| l.starts_with("  ")) {
                println!("  {line}");
            }
        }
    }
}
