//! What every AWS-facing command starts with: a valid manifest, one connection, the stack graph.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{CliError, Global};
use crate::aws::stats::CallStats;
use crate::aws::wiring::RunOptions;
use crate::aws::{self, Aws, ConnectOptions};
use crate::engine::Graph;
use crate::manifest::Manifest;
use crate::stack::Stack;

pub struct Session {
    pub stack: Stack,
    pub graph: Graph,
    pub aws: Aws,
}

/// Validates first, so that a bad manifest never reaches AWS.
pub async fn open(global: &Global, file: &Path, stats: Arc<CallStats>) -> Result<Session, CliError> {
    open_for(global, file, stats, RunOptions::default()).await
}

/// A session for a run that asks more of the stack than its manifest: a retrain's window.
pub async fn open_for(
    global: &Global,
    file: &Path,
    stats: Arc<CallStats>,
    options: RunOptions,
) -> Result<Session, CliError> {
    let (stack, aws) = connect(global, file, stats).await?;
    let graph = aws::wiring::graph(&stack, &aws, options).await?;
    Ok(Session { stack, graph, aws })
}

/// The stack and the clients, without the graph: for commands that only touch the stack's
/// records in its artifact bucket (its lock, its run ledger).
pub async fn connect(global: &Global, file: &Path, stats: Arc<CallStats>) -> Result<(Stack, Aws), CliError> {
    let manifest = Manifest::load(file)?;
    let region = region(global, file, &manifest)?;
    let aws = aws::connect(
        &ConnectOptions { region, profile: global.profile.clone(), endpoint_url: global.endpoint_url.clone() },
        stats,
    )
    .await?;
    let stack = Stack { manifest, env: aws.env.clone() };
    Ok((stack, aws))
}

/// The region the manifest pins or `--region` names; a conflict between the two is a usage error.
/// `None` leaves it to the AWS configuration.
pub fn region(global: &Global, file: &Path, manifest: &Manifest) -> Result<Option<String>, CliError> {
    match (&manifest.spec.region, &global.region) {
        (Some(pinned), Some(flag)) if pinned != flag => Err(CliError::Usage(format!(
            "{} pins spec.region {pinned:?}, but --region says {flag:?}; remove one of them",
            file.display()
        ))),
        (pinned, flag) => Ok(pinned.clone().or_else(|| flag.clone())),
    }
}

/// A token cancelled by the first Ctrl-C or SIGTERM: nothing new starts, in-flight calls finish.
/// A second Ctrl-C exits at once.
pub fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if wait_for_signal().await.is_ok() {
            eprintln!("interrupt: finishing calls in flight, starting nothing new (Ctrl-C again to quit now)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(super::exit::INTERRUPTED));
            }
        }
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
