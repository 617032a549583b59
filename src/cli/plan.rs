//! `lakesight plan`: the diff between the manifest and the cloud.

use std::sync::Arc;

use clap::Args;

use super::{CliError, Global, ManifestArg, OutputFormat, exit, session};
use crate::aws::stats::CallStats;
use crate::aws::wiring::RunOptions;
use crate::engine::{self, Intent, Plan};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan the removal of the stack instead.
    #[arg(long)]
    pub destroy: bool,
    /// Take over resources that exist under the stack's names but carry no owner tag.
    #[arg(long)]
    pub adopt: bool,
}

pub async fn run(global: &Global, args: &PlanArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let options = RunOptions { adopt: args.adopt, ..RunOptions::default() };
    let s = session::open_for(global, &args.manifest.file, Arc::clone(&stats), options).await?;
    let intent = if args.destroy { Intent::Absent } else { Intent::Present };
    let plan = engine::plan(&s.graph, intent, global.parallelism.into()).await?;
    stats.observed(s.graph.len());
    print_plan(&plan, args.output);
    let code = if args.detailed_exitcode && plan.has_changes() { exit::CHANGES } else { exit::SUCCESS };
    Ok(code)
}

pub fn print_plan(plan: &Plan, output: OutputFormat) {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(plan).unwrap_or_default()),
        OutputFormat::Text if plan.has_changes() => print!("{}", plan.render()),
        OutputFormat::Text => println!("No changes: the stack matches the manifest ({} resources).", plan.nodes.len()),
    }
}
