//! `lakesight sql`: the exact feature SQL a run started now would send to Athena.

use std::sync::Arc;
use std::time::SystemTime;

use clap::Args;

use super::{CliError, Global, ManifestArg, exit, session};
use crate::aws::stats::CallStats;
use crate::pipeline::features::{FeatureSql, Split, prefix, run_id, tables};

#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
}

pub async fn run(global: &Global, args: &SqlArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let s = session::open(global, &args.manifest.file, stats).await?;
    let features = s.stack.manifest.spec.features.clone().ok_or_else(|| {
        CliError::Usage(format!("{} has no spec.features, so no feature SQL would run", args.manifest.file.display()))
    })?;
    let now = SystemTime::now();
    let run = run_id(now);
    let bucket = s.stack.artifact_bucket();
    let sql = FeatureSql::new(tables(&s.stack, &features), features, now);
    println!("-- run {run}: pairs and distinct entities in the train split (enough data? sizes num_entity_vectors)");
    println!("{};\n", sql.counts());
    for split in [Split::Train, Split::Validation] {
        println!("-- run {run}: the {} split", split.as_str());
        println!("{};\n", sql.unload(split, &prefix(&bucket, &run, split)));
    }
    Ok(exit::SUCCESS)
}
