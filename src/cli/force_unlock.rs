//! `lakesight force-unlock`: removes the stack's lock when the run that held it died without
//! releasing it, as Terraform's `force-unlock` does. A lease that is not renewed expires by
//! itself after a minute, and the next run takes it over; this is for when nobody should wait.

use std::sync::Arc;

use clap::Args;

use super::{CliError, Global, ManifestArg, exit, session};
use crate::aws::s3::lock::{LockError, LockObject, Removed, check_lock_id};
use crate::aws::stats::CallStats;

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Remove the lock only if this is its id (as a waiting run and the lock's holder show it).
    #[arg(long)]
    pub lock_id: Option<String>,
    /// Remove it without asking; required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,
}

pub async fn run(global: &Global, args: &ForceUnlockArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let (stack, aws) = session::connect(global, &args.manifest.file, stats).await?;
    let object = LockObject::new(aws.records.clone(), &stack.artifact_bucket(), stack.name());
    let Some(current) = object.read().await? else {
        println!("Stack {:?} is not locked.", stack.name());
        return Ok(exit::SUCCESS);
    };
    check_lock_id(&current, args.lock_id.as_deref())?;
    println!("Stack {:?} is locked by {}", stack.name(), current.holder);
    if !args.auto_approve {
        let name = stack.name().to_owned();
        tokio::task::spawn_blocking(move || confirm(&name))
            .await
            .map_err(|e| CliError::Failed(format!("the confirmation prompt failed: {e}")))??;
    }
    // Conditional on the ETag just read: a lock renewed or taken over meanwhile stays.
    match object.remove(&current.etag).await? {
        Removed::Removed | Removed::Gone => {
            println!("Removed the lock of stack {:?}.", stack.name());
            Ok(exit::SUCCESS)
        }
        Removed::Changed => Err(LockError::Changed.into()),
    }
}

fn confirm(stack: &str) -> Result<(), CliError> {
    super::confirm::yes(
        &format!("remove the lock of stack {stack:?}"),
        "A run that still holds it would race the next one. Remove it?",
        "cancelled; the lock stays",
    )
}
