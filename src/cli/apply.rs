//! `lakesight apply` and `lakesight destroy`: lock, plan, confirm, walk the graph, record the run.

use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use tokio_util::sync::CancellationToken;

use super::lock::{self, StackLock};
use super::plan::print_plan;
use super::progress::Progress;
use super::session::{self, Session};
use super::timings::Timings;
use super::{CliError, Global, ManifestArg, OutputFormat, exit};
use crate::aws::s3::bucket;
use crate::aws::s3::lock::Lease;
use crate::aws::s3::runs::{self, Written};
use crate::aws::stats::CallStats;
use crate::aws::wiring::RunOptions;
use crate::engine::{self, Action, Direction, ExecOptions, Intent, Outcome, Plan, Report};
use crate::ledger::{self, RunRecord};

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
        command: ledger::Command::Apply { adopt: args.adopt },
        options: RunOptions { adopt: args.adopt, ..RunOptions::default() },
        auto_approve: args.auto_approve,
        output: args.output,
    };
    converge(global, request, stats).await.0
}

pub async fn run_destroy(global: &Global, args: &DestroyArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let request = Request {
        manifest: &args.manifest,
        intent: Intent::Absent,
        command: ledger::Command::Destroy,
        options: RunOptions::default(),
        auto_approve: args.auto_approve,
        output: args.output,
    };
    converge(global, request, stats).await.0
}

#[derive(Serialize)]
struct JsonResult<'a> {
    plan: &'a Plan,
    report: &'a Report,
}

/// What apply, destroy and retrain share: one direction of the same walk.
pub(super) struct Request<'a> {
    pub manifest: &'a ManifestArg,
    pub intent: Intent,
    /// What the ledger records the run as.
    pub command: ledger::Command,
    pub options: RunOptions,
    pub auto_approve: bool,
    pub output: OutputFormat,
}

/// Takes the stack's lock before planning, so that what is approved is planned against a stack
/// no other run changes meanwhile; records the run in the ledger and releases the lock however
/// the command ends. Returns the run's record too, once the walk began, for commands that tell
/// what it decided.
pub(super) async fn converge(
    global: &Global,
    request: Request<'_>,
    stats: Arc<CallStats>,
) -> (Result<u8, CliError>, Option<RunRecord>) {
    match locked_walk(global, request, stats).await {
        Ok((result, record)) => (result, record),
        Err(e) => (Err(e), None),
    }
}

async fn locked_walk(
    global: &Global,
    request: Request<'_>,
    stats: Arc<CallStats>,
) -> Result<(Result<u8, CliError>, Option<RunRecord>), CliError> {
    let s = session::open_for(global, &request.manifest.file, stats, request.options).await?;
    let cancel = session::interrupt_token();
    let command = format!("lakesight {}", request.command.name());
    let lock = StackLock::new(&s.stack, &s.aws.records, &command, global);
    let mut lease = lock.take(&cancel).await?;
    if lease.is_none() && request.intent == Intent::Absent {
        eprintln!("note: the stack has no artifact bucket, so no lock to take; destroying without it");
    }
    let lock_id = lease.as_ref().map(|l| l.holder().id.clone());
    let mut record = RunRecord::begin(s.stack.name(), request.command.clone(), &s.stack.env.caller_arn, lock_id);
    let result = walk(global, &request, &s, &lock, &mut lease, &cancel, &mut record).await;
    let walked = record.clone();
    let result = match lease {
        Some(lease) => finish(&s, lease, record, result).await,
        // No bucket, so nowhere to record the run either.
        None => result,
    };
    Ok((result, Some(walked)))
}

/// Stops renewing, records the run, then releases the lock: a lease lost meanwhile is the
/// run's result, whatever else happened.
async fn finish(
    s: &Session,
    lease: Lease,
    mut record: RunRecord,
    result: Result<u8, CliError>,
) -> Result<u8, CliError> {
    let stopped = lease.stop().await?;
    let result = match stopped.lost() {
        Some(reason) => Err(CliError::LockLost(reason.to_owned())),
        None => result,
    };
    let (code, error) = match &result {
        Ok(code) => (*code, None),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    };
    record.finish(code, error);
    let bucket = s.stack.artifact_bucket();
    match runs::write(&s.aws.records, &bucket, &record).await {
        Ok(Written::At(key)) => tracing::info!("recorded this run at s3://{bucket}/{key}"),
        Ok(Written::NoBucket) => tracing::debug!("the artifact bucket went with the stack; this run is not recorded"),
        Err(e) => eprintln!("warning: could not record this run in the stack's ledger: {e}"),
    }
    let released = lock::release(stopped).await;
    let code = result?;
    released.map(|()| code)
}

async fn walk(
    global: &Global,
    request: &Request<'_>,
    s: &Session,
    lock: &StackLock,
    lease: &mut Option<Lease>,
    cancel: &CancellationToken,
    record: &mut RunRecord,
) -> Result<u8, CliError> {
    let &Request { intent, auto_approve, output, .. } = request;
    let parallelism = usize::from(global.parallelism);
    let plan = engine::plan(&s.graph, intent, parallelism).await?;
    record.planned(&plan);
    if output == OutputFormat::Text {
        print_plan(&plan, output);
    }
    if plan.has_changes() && !auto_approve {
        let stack = s.stack.name().to_owned();
        let answer = tokio::task::spawn_blocking(move || confirm(intent, &stack));
        tokio::select! {
            answer = answer => answer.map_err(|e| CliError::Failed(format!("the confirmation prompt failed: {e}")))??,
            _ = cancel.cancelled() => return Err(CliError::Interrupted),
        }
    }
    if lease.is_none() && plan.action_of(bucket::ADDRESS) == Some(Action::Create) {
        *lease = Some(lock_new_bucket(s, lock, cancel).await?);
        record.lock_id = lease.as_ref().map(|l| l.holder().id.clone());
    }
    let direction = if intent == Intent::Present { Direction::Forward } else { Direction::Reverse };
    // The walk stops starting work on Ctrl-C, SIGTERM, or a lost lease.
    let stop = CancellationToken::new();
    let lost = lease.as_ref().map_or_else(CancellationToken::new, Lease::lost);
    let forward = {
        let (stop, cancel) = (stop.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = lost.cancelled() => eprintln!("lost the stack's lock: finishing calls in flight, starting nothing new"),
            }
            stop.cancel();
        })
    };
    let options = ExecOptions { parallelism, cancel: stop };
    let progress = Arc::new(Progress::new(global.quiet));
    let timings = Arc::new(Timings::new(progress.clone(), lease.as_ref().map(Lease::removal)));
    let report = engine::execute(&s.graph, &plan, direction, &options, timings.clone()).await;
    forward.abort();
    progress.clear();
    record.walked(&plan, &report, &timings.durations(), s.graph.values());

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

/// The first apply: the lock lives in the artifact bucket, which does not exist yet. The bucket
/// is created first, on its own (its create is idempotent, so two first applies may both send
/// it), and the lock taken at once, before anything else changes. The walk then finds the bucket
/// done. A run that had to wait here acts on what the other run left: every node is observed
/// and planned again just before it acts.
async fn lock_new_bucket(s: &Session, lock: &StackLock, cancel: &CancellationToken) -> Result<Lease, CliError> {
    let node = (0..s.graph.len())
        .map(|i| s.graph.node(i))
        .find(|n| n.address() == bucket::ADDRESS)
        .ok_or_else(|| CliError::Failed(format!("the stack has no {} to hold its lock", bucket::ADDRESS)))?;
    node.apply(Action::Create).await.map_err(|e| CliError::Failed(format!("{}: {e}", bucket::ADDRESS)))?;
    eprintln!("{}: created first, to hold the stack's lock", bucket::ADDRESS);
    lock.take(cancel).await?.ok_or_else(|| {
        CliError::Failed(format!("{} was created, but S3 does not find it to hold the stack's lock", bucket::ADDRESS))
    })
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
    super::confirm::yes(
        &format!("{verb} stack {stack:?}"),
        &format!("Do you want to {verb} stack {stack:?}?"),
        "cancelled; nothing was changed",
    )
}
