//! `lakesight iam-policy`: prints the least-privilege IAM policy a CI principal needs to apply,
//! destroy and retrain the stack (see `crate::iam_policy`).
//!
//! The policy names the account, so it needs one: `--account` for a pipeline that writes the
//! policy before it has credentials (nothing is then called), or else the caller's own account
//! from `sts:GetCallerIdentity`, which needs no permission.

use std::sync::Arc;

use clap::Args;

use super::{CliError, Global, ManifestArg, exit, session};
use crate::aws::stats::CallStats;
use crate::manifest::Manifest;
use crate::stack::{Environment, Stack};

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// The 12-digit account the stack lives in; without it, the caller's account from STS.
    #[arg(long, value_parser = account_id)]
    pub account: Option<String>,
}

fn account_id(value: &str) -> Result<String, String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err("an AWS account id is 12 digits".into())
    }
}

pub async fn run(global: &Global, args: &IamPolicyArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let stack = match &args.account {
        Some(account) => offline(global, args, account).await?,
        None => session::connect(global, &args.manifest.file, stats).await?.0,
    };
    let policy = crate::iam_policy::build(&stack);
    let text = serde_json::to_string_pretty(&policy).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{text}");
    Ok(exit::SUCCESS)
}

/// The stack in `account`, with its region from the manifest, `--region` or the AWS
/// configuration (environment, profile), without calling AWS.
async fn offline(global: &Global, args: &IamPolicyArgs, account: &str) -> Result<Stack, CliError> {
    let manifest = Manifest::load(&args.manifest.file)?;
    let region = session::region(global, &args.manifest.file, &manifest)?;
    let region = match region {
        Some(region) => region,
        None => {
            crate::aws::default_region(global.profile.as_deref()).await.ok_or(crate::aws::ConnectError::NoRegion)?
        }
    };
    Ok(Stack {
        manifest,
        env: Environment {
            account: account.to_owned(),
            partition: crate::aws::partition_of(&region).to_owned(),
            region,
            caller_arn: String::new(),
        },
    })
}
