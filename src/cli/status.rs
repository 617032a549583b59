//! `lakesight status`: every resource's state, id and health, read from the cloud.

use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::{CliError, Global, ManifestArg, OutputFormat, exit, session};
use crate::aws::stats::CallStats;
use crate::engine::{self, Ownership};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    address: String,
    name: String,
    state: String,
    id: String,
    health: String,
}

pub async fn run(global: &Global, args: &StatusArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let s = session::open(global, &args.manifest.file, stats).await?;
    let observations = engine::observe_all(&s.graph, global.parallelism.into()).await;
    let rows: Vec<Row> = observations
        .into_iter()
        .enumerate()
        // What the manifest no longer declares is shown while it is there for apply to remove, or
        // when reading it failed (plan fails on it too).
        .filter(|(i, observed)| {
            s.graph.node(*i).declared()
                || observed.as_ref().map_or(true, |o| {
                    matches!(o.ownership, Some(Ownership::Owned | Ownership::Untaggable)) && o.kept.is_none()
                })
        })
        .map(|(i, observed)| {
            let node = s.graph.node(i);
            let (state, id, health) = match observed {
                Err(e) => (format!("error: {e}"), String::new(), String::new()),
                Ok(o) => {
                    let state = match (&o.ownership, o.changes.is_empty()) {
                        (None, _) => "absent".to_owned(),
                        (Some(_), _) if !node.declared() => "no longer in the manifest".to_owned(),
                        (Some(Ownership::Foreign(Some(owner))), _) => format!("owned by stack {owner}"),
                        (Some(Ownership::Foreign(None)), _) => "exists, not owned".to_owned(),
                        (Some(_), true) => "in sync".to_owned(),
                        (Some(_), false) => format!(
                            "drifted: {}",
                            o.changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    (state, o.id.unwrap_or_default(), o.health.unwrap_or_else(|| "-".into()))
                }
            };
            Row { address: node.address().to_owned(), name: node.name().to_owned(), state, id, health }
        })
        .collect();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default()),
        OutputFormat::Text => print_table(&rows),
    }
    Ok(exit::SUCCESS)
}

fn print_table(rows: &[Row]) {
    let headers = ["RESOURCE", "NAME", "STATE", "HEALTH", "ID"];
    let cells: Vec<[&str; 5]> =
        rows.iter().map(|r| [r.address.as_str(), &r.name, &r.state, &r.health, &r.id]).collect();
    let widths: Vec<usize> =
        (0..5).map(|c| cells.iter().map(|row| row[c].len()).chain([headers[c].len()]).max().unwrap_or(0)).collect();
    let line = |row: [&str; 5]| {
        let padded: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers);
    for row in cells {
        line(row);
    }
}
