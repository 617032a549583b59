//! `lakesight apply` and `lakesight destroy`: plan, confirm, walk the graph.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::plan::print_plan;
use super::progress::Progress;
use super::{CliError, Global, ManifestArg, OutputFormat, exit, session};
use crate::aws::stats::CallStats;
use crate::engine::{self, Direction, ExecOptions, Intent, Outcome, Plan, Report};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Act without asking; required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    /// Take over resources that exist under the stack's names but carry no owner tag.
    #[arg(long)]
    pub adopt: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Act without asking; required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub async fn run_apply(global: &Global, args: &ApplyArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let request = Request {
        manifest: &args.manifest,
        intent: Intent::Present,
        adopt: args.adopt,
        auto_approve: args.auto_approve,
        output: args.output,
    };
    converge(global, request, stats).await
}

pub async fn run_destroy(global: &Global, args: &DestroyArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let request = Request {
        manifest: &args.manifest,
        intent: Intent::Absent,
        adopt: false,
        auto_approve: args.auto_approve,
        output: args.output,
    };
    converge(global, request, stats).await
}

#[derive(Serialize)]
struct JsonResult<'a> {
    plan: &'a Plan,
    report: &'a Report,
}

/// What apply and destroy share: one direction of the same walk.
struct Request<'a> {
    manifest: &'a ManifestArg,
    intent: Intent,
    adopt: bool,
    auto_approve: bool,
    output: OutputFormat,
}

async fn converge(global: &Global, request: Request<'_>, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let Request { manifest, intent, adopt, auto_approve, output } = request;
    let s = session::open(global, &manifest.file, stats).await?;
    let parallelism = usize::from(global.parallelism);
    let plan = engine::plan(&s.graph, intent, adopt, parallelism).await?;
    if output == OutputFormat::Text {
        print_plan(&plan, output);
    }
    if plan.has_changes() && !auto_approve {
        let stack = s.stack.name().to_owned();
        tokio::task::spawn_blocking(move || confirm(intent, &stack))
            .await
            .map_err(|e| CliError::Failed(format!("the confirmation prompt failed: {e}")))??;
    }
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    let options = ExecOptions { parallelism, cancel: session::interrupt_token() };
    let progress = Arc::new(Progress::new(global.quiet));
    let report = engine::execute(&s.graph, &plan, direction, &options, progress.clone()).await;
    progress.clear();

    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&JsonResult { plan: &plan, report: &report }).unwrap_or_default()
        ),
        OutputFormat::Text => print_report(&report),
    }
    if report.succeeded() {
        return Ok(exit::SUCCESS);
    }
    if report.interrupted() {
        return Err(CliError::Interrupted);
    }
    let failed: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|(address, o)| match o {
            Outcome::Failed(reason) => Some(format!("{address}: {reason}")),
            _ => None,
        })
        .collect();
    Err(CliError::Failed(format!("{} resource(s) failed:\n  {}", failed.len(), failed.join("\n  "))))
}

fn print_report(report: &Report) {
    let count = |f: fn(&Outcome) -> bool| report.outcomes.iter().filter(|(_, o)| f(o)).count();
    let applied = count(|o| matches!(o, Outcome::Applied(_)));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
    for (address, outcome) in &report.outcomes {
        if let Outcome::Skipped { blocked_by } = outcome {
            println!("  skipped {address}: waits on {blocked_by}, which failed");
        }
    }
    for r in &report.replanned {
        println!("  {}: approved as {:?}, carried out as {:?}: {}", r.address, r.approved, r.applied, r.reason);
    }
    for (address, reason) in report.waiting() {
        let deferred = report.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Deferred { .. })).count();
        println!("  {address}: {reason}; {deferred} resource(s) downstream wait for it. Run apply again later.");
    }
    println!("Done: {applied} changed, {failed} failed, {skipped} skipped.");
}

/// Asks on a terminal; refuses elsewhere, so that pipelines never hang on a prompt.
fn confirm(intent: Intent, stack: &str) -> Result<(), CliError> {
    let verb = if intent == Intent::Present { "apply these changes to" } else { "destroy" };
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "refusing to {verb} stack {stack:?} without a terminal to confirm on; pass --auto-approve"
        )));
    }
    eprint!("Do you want to {verb} stack {stack:?}? Only 'yes' is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" { Ok(()) } else { Err(CliError::Failed("cancelled; nothing was changed".into())) }
}
