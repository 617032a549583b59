//! `lakesight score`: ad-hoc (entity, IPv4) pairs scored on the stack's live endpoint, each with
//! its verdict against the threshold the deployed scorer uses. AWS's sample tests its endpoint by
//! hand with a few pairs; this does it with the scorer's own payload limits and rule.
//!
//! The threshold and the payload limit are read from the deployed function's environment, not
//! from the manifest: they are what the scorer applies now, whatever a later apply may change.

use std::collections::HashMap;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::model::input::{self, Source};
use super::{CliError, Global, ManifestArg, OutputFormat, exit, session};
use crate::aws::error::{code, service_error};
use crate::aws::stats::CallStats;
use crate::scorer::{Config, invoke, payload};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// `entity,ip` lines: a file, a directory, an s3://bucket/prefix/ or - for stdin.
    #[arg(long)]
    pub input: Source,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// One pair's score and verdict.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Scored<'a> {
    entity: &'a str,
    ip: String,
    dot_product: f64,
    /// `-dot_product`: the higher, the less expected the pair.
    score: f64,
    verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Finding,
    Normal,
    /// The scorer has no threshold yet (one to be calibrated).
    NoThreshold,
}

impl Verdict {
    /// The scorer's rule: a finding when the score is above the threshold.
    fn of(score: f64, threshold: Option<f64>) -> Verdict {
        match threshold {
            Some(t) if score > t => Verdict::Finding,
            Some(_) => Verdict::Normal,
            None => Verdict::NoThreshold,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Finding => "finding",
            Verdict::Normal => "normal",
            Verdict::NoThreshold => "no threshold",
        }
    }
}

pub async fn run(global: &Global, args: &ScoreArgs, stats: Arc<CallStats>) -> Result<u8, CliError> {
    let s = session::open(global, &args.manifest.file, Arc::clone(&stats)).await?;
    let pairs = input::pairs(global, &args.input, stats).await?;
    let deployed = deployed_config(&s).await?;
    let endpoint = s.stack.endpoint_name();
    let max_bytes = deployed.as_ref().map_or(Config::new(&endpoint).max_payload_bytes, |c| c.max_payload_bytes);
    let threshold = deployed.as_ref().and_then(|c| c.threshold);

    let chunks = payload::chunks_of(pairs.iter().map(|p| (p.entity.as_str(), p.ip)), max_bytes);
    let mut dots: HashMap<usize, f64> = HashMap::new();
    for answer in invoke::score_chunks(&s.aws.sagemaker_runtime, &endpoint, &chunks, 4).await {
        let scores = answer.scores.map_err(|e| CliError::Failed(format!("{endpoint}: {e}")))?;
        dots.extend(chunks[answer.chunk].pairs.clone().zip(scores.values));
    }
    let mut scored = Vec::with_capacity(pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        let dot_product = *dots.get(&i).ok_or_else(|| CliError::Failed(format!("no score for line {}", i + 1)))?;
        let score = -dot_product;
        let verdict = Verdict::of(score, threshold);
        scored.push(Scored { entity: &pair.entity, ip: pair.ip.to_string(), dot_product, score, verdict });
    }
    match args.output {
        OutputFormat::Json => {
            let out = serde_json::json!({ "endpoint": endpoint, "threshold": threshold, "pairs": scored });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Text => print!("{}", render(&scored, threshold)),
    }
    Ok(exit::SUCCESS)
}

/// The deployed scorer's settings, or `None` when the stack has no scorer function (yet).
async fn deployed_config(s: &session::Session) -> Result<Option<Config>, CliError> {
    let name = s.stack.scorer_function_name();
    let out = match s.aws.lambda.get_function_configuration().function_name(&name).send().await {
        Ok(out) => out,
        Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(CliError::Failed(service_error("GetFunctionConfiguration", e).to_string())),
    };
    let vars = out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    Config::from_lookup(|k| vars.get(k).cloned())
        .map(Some)
        .map_err(|e| CliError::Failed(format!("{name}'s environment: {e}")))
}

fn render(scored: &[Scored<'_>], threshold: Option<f64>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{:<24} {:<15} {:>12} {:>12}  verdict", "entity", "ip", "dot_product", "score");
    for s in scored {
        let _ = writeln!(
            out,
            "{:<24} {:<15} {:>12.4} {:>12.4}  {}",
            s.entity,
            s.ip,
            s.dot_product,
            s.score,
            s.verdict.as_str()
        );
    }
    let findings = scored.iter().filter(|s| s.verdict == Verdict::Finding).count();
    let _ = match threshold {
        Some(t) => writeln!(out, "\n{findings} of {} pairs score above the threshold {t}.", scored.len()),
        None => writeln!(out, "\nThe scorer has no threshold yet: scores only, no verdicts."),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_is_the_scorers_rule() {
        assert_eq!(Verdict::of(0.5, Some(0.0)), Verdict::Finding);
        assert_eq!(Verdict::of(0.0, Some(0.0)), Verdict::Normal, "above, not at");
        assert_eq!(Verdict::of(-3.0, Some(0.0)), Verdict::Normal);
        assert_eq!(Verdict::of(9.0, None), Verdict::NoThreshold);
    }

    #[test]
    fn the_report_counts_findings_against_the_threshold() {
        let pair = |verdict| Scored { entity: "i-1", ip: "10.0.0.1".into(), dot_product: -1.0, score: 1.0, verdict };
        let text = render(&[pair(Verdict::Finding), pair(Verdict::Normal)], Some(0.5));
        assert!(text.contains("1 of 2 pairs score above the threshold 0.5."), "{text}");
        assert!(text.lines().nth(1).is_some_and(|l| l.ends_with("finding")), "{text}");
    }
}
