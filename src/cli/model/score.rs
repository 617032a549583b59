//! `lakesight model score`: an endpoint's InvokeEndpoint, run here. The request formats are IP
//! Insights' own (`--content-type`), and so are the JSON responses; CSV output adds the pair
//! itself to each score, for reading by people and spreadsheets.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::super::{CliError, Global, exit};
use super::input::{self, Source};
use crate::aws::stats::CallStats;
use crate::ipinsights::file;
use crate::ipinsights::inference::{ContentType, ResponseFormat, parse_request, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// entity,ip,dot_product lines.
    Csv,
    /// {"predictions":[{"dot_product":x},...]}
    Json,
    /// One {"dot_product":x} a line.
    Jsonlines,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The model directory (or its model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Pairs to score: a file, a directory, an s3://bucket/prefix/ or - for stdin.
    #[arg(long)]
    pub input: Source,
    /// The input's format: text/csv, application/json or application/jsonlines.
    #[arg(long, default_value = "text/csv")]
    pub content_type: ContentType,
    /// The output's format. With the global `--verbose` (`-v`), json and jsonlines also give each
    /// prediction's entity_embedding and ip_embedding, as `;verbose=True` does.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
}

pub async fn run(global: &Global, args: &ScoreArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    // The global flag: a subcommand cannot define its own `--verbose` beside it.
    let verbose = global.verbose > 0;
    let format = match args.format {
        Format::Csv if verbose => {
            return Err(CliError::Usage(
                "--verbose needs --format json or jsonlines: CSV has no place for vectors".into(),
            ));
        }
        Format::Csv => ResponseFormat::Csv,
        Format::Json => ResponseFormat::Json,
        Format::Jsonlines => ResponseFormat::JsonLines,
    };
    let (model, _) = file::load(&args.model).map_err(|e| CliError::Failed(e.to_string()))?;
    let mut pairs = Vec::new();
    for object in input::read(global, &args.input, stats).await? {
        let parsed = parse_request(args.content_type, &object.name, &object.bytes)
            .map_err(|e| CliError::Client(format!("ClientError: {e}")))?;
        pairs.extend(parsed);
    }
    let request: Vec<_> = pairs.iter().map(|p| (p.entity.as_str(), p.ip)).collect();
    let prediction = model.predict(&request, verbose);
    let out = render(format, &pairs, &prediction).map_err(|e| CliError::Failed(e.to_string()))?;
    print!("{out}");
    Ok(exit::SUCCESS)
}
