//! `lakesight-data`: writes a synthetic Security Lake, either into the lake bucket at
//! `AWS_ENDPOINT_URL` (the emulator's, by default) or into a local directory with `--out`.
//!
//! `--part history` writes every day but the last, and `--part last-day` the last day alone,
//! with its planted anomalies, so that a demo can train on the history and then watch the
//! anomalies arrive. The ground truth goes beside the lake, never under a source prefix.
//!
//! `lakesight-data report --manifest stack.yaml` waits until the stack's deployed scorer has
//! handled every notification and holds its findings against that ground truth
//! (`lakesight::synthetic::report`): the quickstart's last word.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lakesight::manifest::Manifest;
use lakesight::synthetic::lake::{self, GROUND_TRUTH, Written, account_ids};
use lakesight::synthetic::{Day, Lake, LakeSpec, OcsfVersion, Part, Source, s3};

#[derive(Debug, Parser)]
#[command(
    name = "lakesight-data",
    about = "Writes a synthetic Security Lake with planted anomalies",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    write: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Waits until the stack's scorer has handled every notification, then reports how many
    /// objects it scored, its findings, the planted anomalies it found and the normal pairs it
    /// flagged, at the manifest's fixed threshold. Reads the function's log from the bundled
    /// emulator; leaves the findings on their queue.
    Report {
        /// The stack manifest (its name, pairing and threshold).
        #[arg(long, short = 'f')]
        manifest: PathBuf,
        /// The ground truth. Default: s3://<lake bucket>/synthetic/ground-truth.json.
        #[arg(long)]
        truth: Option<String>,
        /// How long to wait for the scorer to drain its queue.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Days of data, ending with the last day.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// The last day (YYYYMMDD, UTC), which holds the anomalies. Default: today.
    #[arg(long, value_parser = parse_day)]
    last_day: Option<Day>,
    /// Accounts: the emulator's 123456789012 first, then made-up member accounts.
    #[arg(long, default_value_t = 1)]
    accounts: usize,
    /// Regions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1")]
    regions: Vec<String>,
    /// Source versions, comma-separated: 1.0 (OCSF 1.0.0-rc.2), 2.0 (OCSF 1.1.0).
    #[arg(long, value_delimiter = ',', default_value = "2.0", value_parser = parse_version)]
    versions: Vec<OcsfVersion>,
    /// Sources, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "VPC_FLOW,ROUTE53", value_parser = parse_source)]
    sources: Vec<Source>,
    /// Instances per account and region.
    #[arg(long, default_value_t = 24)]
    instances: usize,
    /// VPC flow records per account, region and weekday (Route 53 queries: an eighth).
    #[arg(long, default_value_t = 40_000)]
    flows_per_day: usize,
    /// Target object size in MiB; a partition's day is split into objects of about this size.
    #[arg(long, default_value_t = 4.0)]
    object_mb: f64,
    /// Planted anomalies on the last day.
    #[arg(long, default_value_t = 6)]
    anomalies: usize,
    /// Which days to write.
    #[arg(long, value_enum, default_value_t = PartArg::All)]
    part: PartArg,
    /// Write into this directory instead of S3.
    #[arg(long, conflicts_with = "bucket")]
    out: Option<PathBuf>,
    /// The lake bucket. Default: the one Security Lake created, `aws-security-data-lake-<region>-*`.
    #[arg(long)]
    bucket: Option<String>,
    /// Where the ground truth goes in S3. Default: s3://<lake bucket>/synthetic/ground-truth.json.
    #[arg(long)]
    truth: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PartArg {
    All,
    History,
    LastDay,
}

fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse(text).ok_or_else(|| format!("not a YYYYMMDD date: {text}"))
}

fn parse_version(text: &str) -> Result<OcsfVersion, String> {
    OcsfVersion::parse(text).ok_or_else(|| format!("unknown source version {text}: 1.0 or 2.0"))
}

fn parse_source(text: &str) -> Result<Source, String> {
    Source::parse(text).ok_or_else(|| format!("unknown source {text}: VPC_FLOW or ROUTE53"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Report { manifest, truth, wait }) => report(&manifest, truth.as_deref(), wait),
        None => write(&cli.write),
    }
}

fn report(manifest: &std::path::Path, truth: Option<&str>, wait: Duration) -> ExitCode {
    let result = Manifest::load(manifest).map_err(|e| e.to_string()).and_then(|manifest| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let sdk = s3::sdk_config().await;
            lakesight::synthetic::report::deployed::report(&sdk, &manifest, truth, wait).await
        })
    });
    match result {
        Ok(outcome) => {
            println!("{outcome}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(args: &Args) -> ExitCode {
    let spec = LakeSpec {
        seed: args.seed,
        days: args.days.max(1),
        last_day: args.last_day.unwrap_or_else(Day::today),
        accounts: account_ids(args.accounts),
        regions: args.regions.clone(),
        versions: args.versions.clone(),
        sources: args.sources.clone(),
        instances: args.instances.max(4),
        flows_per_day: args.flows_per_day,
        object_bytes: (args.object_mb.max(0.01) * 1_048_576.0) as usize,
        anomalies: args.anomalies,
    };
    let part = match args.part {
        PartArg::All => Part::All,
        PartArg::History => Part::History,
        PartArg::LastDay => Part::LastDay,
    };
    let lake = Lake::new(spec);
    let result = match &args.out {
        Some(dir) => lake::write_dir(&lake, part, dir)
            .map(|w| (w, dir.join(GROUND_TRUTH).display().to_string(), dir.display().to_string()))
            .map_err(|e| e.to_string()),
        None => to_s3(&lake, part, args),
    };
    match result {
        Ok((written, truth, place)) => {
            summary(&lake, &written, &truth, &place);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn to_s3(lake: &Lake, part: Part, args: &Args) -> Result<(Written, String, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let sdk = s3::sdk_config().await;
        let client = s3::client(&sdk);
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| lake.spec.regions[0].clone());
        let bucket = match &args.bucket {
            Some(b) => b.clone(),
            None => s3::lake_bucket(&client, &region).await.map_err(|e| e.to_string())?,
        };
        let truth = args.truth.clone().unwrap_or_else(|| format!("s3://{bucket}/synthetic/{GROUND_TRUTH}"));
        let (truth_bucket, truth_key) = truth
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| format!("--truth must be s3://bucket/key: {truth}"))?;
        if truth_key.starts_with("aws/") || truth_key.starts_with("ext/") {
            return Err(format!("--truth must not be under a source prefix (aws/, ext/): {truth}"));
        }
        let written =
            s3::write(&client, lake, part, &bucket, (truth_bucket, truth_key)).await.map_err(|e| e.to_string())?;
        Ok((written, truth.clone(), format!("s3://{bucket}")))
    })
}

fn summary(lake: &Lake, written: &Written, truth: &str, place: &str) {
    let s = &lake.spec;
    println!(
        "wrote {} objects ({:.1} MB, {} records) to {place}: {} to {}, seed {}",
        written.objects,
        written.bytes as f64 / 1e6,
        written.records,
        s.first_day(),
        s.last_day,
        s.seed
    );
    for a in &lake.anomalies {
        println!(
            "anomaly on {}: {} ({}) reached from {} on port {} at {} [{:?}]",
            s.last_day,
            a.entity,
            a.entity_ip,
            a.remote_ip,
            a.port,
            a.first_seen(),
            a.kind
        );
    }
    println!("ground truth: {truth}");
}
