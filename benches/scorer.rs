//! The scorer's cost per object, endpoint stubbed: Parquet decoding, pair extraction, dedupe and
//! payload building, on generated OCSF v2 flow files of 10^5 and 10^6 rows.
//!
//! Each measurement runs in a child process of its own so that its peak memory is its own, and
//! the projected read and a plain full-column read of the same file alternate, so that both
//! see the same machine. `cargo bench --no-default-features --features scorer,synthetic --bench scorer`
//! prints the table; under `cargo test` the benchmark only checks, on a small file, that both
//! reads find the same pairs.

#[path = "support/peak_memory.rs"]
mod peak_memory;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lakesight::scorer::Peer;
use lakesight::scorer::config::DEFAULT_MAX_PAYLOAD_BYTES;
use lakesight::scorer::extract::{self, ObjectContext};
use lakesight::scorer::pairs::PairTable;
use lakesight::scorer::payload;
use lakesight::synthetic::{OcsfVersion, write_flows};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

const SIZES: [usize; 2] = [100_000, 1_000_000];
const ROUNDS: usize = 3;
const SEED: u64 = 42;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Read {
    /// What the scorer does: decode only its columns.
    Projected,
    /// The baseline: decode every column, then extract the same way.
    AllColumns,
}

/// One child's figures.
#[derive(Debug, Serialize, Deserialize)]
struct Figures {
    rows: u64,
    distinct: usize,
    requests: usize,
    file_bytes: usize,
    best: Duration,
    /// Peak resident memory of the whole process, and what it held before the first round:
    /// the runtime and the object's bytes.
    peak_kib: u64,
    baseline_kib: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, mode, file] = args.as_slice()
        && flag == "--child"
    {
        let read = if mode == "projected" { Read::Projected } else { Read::AllColumns };
        let figures = measure(read, Path::new(file), ROUNDS);
        println!("{}", serde_json::to_string(&figures).expect("figures serialise"));
        return;
    }
    if args.iter().any(|a| a == "--bench") {
        report();
    } else {
        smoke();
    }
}

/// Under `cargo test`: both reads agree on a small file, and payloads stay under the limit.
fn smoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = generate(dir.path(), 5_000);
    let projected = measure(Read::Projected, &file, 1);
    let all = measure(Read::AllColumns, &file, 1);
    assert_eq!((projected.rows, projected.distinct), (all.rows, all.distinct));
    assert_eq!(projected.rows, 5_000);
    assert!(projected.distinct > 0 && projected.requests == 1);
    println!("scorer bench smoke: {} rows, {} distinct pairs, both reads agree", projected.rows, projected.distinct);
}

fn report() {
    let dir = tempfile::tempdir().expect("tempdir");
    println!("ipcheck extraction, dedupe and payload building (endpoint stubbed), OCSF v2, best of {ROUNDS} rounds");
    println!(
        "{:>9} {:>12} {:>9} {:>11} {:>10} {:>10} {:>10} {:>9} {:>13}",
        "rows", "read", "file MB", "time ms", "records/s", "MB/s", "peak MiB", "pairs", "req/M records"
    );
    for rows in SIZES {
        let file = generate(dir.path(), rows);
        // Alternate the two reads so that both see the same machine.
        let mut projected = Vec::new();
        let mut all = Vec::new();
        for _ in 0..2 {
            projected.push(child(Read::Projected, &file));
            all.push(child(Read::AllColumns, &file));
        }
        let best = |runs: Vec<Figures>| runs.into_iter().min_by_key(|f| f.best).expect("runs");
        let (p, a) = (best(projected), best(all));
        for (name, f) in [("projected", &p), ("all columns", &a)] {
            let secs = f.best.as_secs_f64();
            println!(
                "{:>9} {:>12} {:>9.1} {:>11.1} {:>10.0} {:>10.1} {:>10.1} {:>9} {:>13.1}",
                f.rows,
                name,
                mb(f.file_bytes),
                secs * 1e3,
                f.rows as f64 / secs,
                mb(f.file_bytes) / secs,
                f.peak_kib as f64 / 1024.0,
                f.distinct,
                f.requests as f64 * 1e6 / f.rows as f64,
            );
        }
        println!(
            "{:>9} all columns / projected: time x{:.2}, peak memory x{:.2} (above the loaded object: x{:.2})",
            rows,
            a.best.as_secs_f64() / p.best.as_secs_f64(),
            a.peak_kib as f64 / p.peak_kib as f64,
            a.peak_kib.saturating_sub(a.baseline_kib) as f64 / p.peak_kib.saturating_sub(p.baseline_kib).max(1) as f64,
        );
    }
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn generate(dir: &Path, rows: usize) -> std::path::PathBuf {
    let path = dir.join(format!("flows-{rows}.zstd.parquet"));
    let file = std::fs::File::create(&path).expect("create");
    write_flows(OcsfVersion::V2, rows, SEED, std::io::BufWriter::new(file)).expect("generate");
    path
}

fn child(read: Read, file: &Path) -> Figures {
    let mode = if read == Read::Projected { "projected" } else { "all" };
    let out = Command::new(std::env::current_exe().expect("bench binary"))
        .args(["--child", mode])
        .arg(file)
        .output()
        .expect("run the measurement");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("child figures")
}

fn measure(read: Read, file: &Path, rounds: usize) -> Figures {
    let bytes = Bytes::from(std::fs::read(file).expect("read file"));
    let baseline_kib = peak_memory::peak_kib();
    let mut best = Duration::MAX;
    let mut last = (0, 0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        let table = match read {
            Read::Projected => extract::read_pairs(bytes.clone(), 0, Peer::Source).expect("projected read").0,
            Read::AllColumns => all_columns(bytes.clone()),
        };
        let rows = table.rows();
        let pairs = table.into_pairs();
        let chunks = payload::chunks(&pairs, DEFAULT_MAX_PAYLOAD_BYTES);
        best = best.min(started.elapsed());
        last = (rows, pairs.len(), chunks.len());
    }
    Figures {
        rows: last.0,
        distinct: last.1,
        requests: last.2,
        file_bytes: bytes.len(),
        best,
        peak_kib: peak_memory::peak_kib(),
        baseline_kib,
    }
}

/// The baseline: every column decoded, then the same extraction.
fn all_columns(bytes: Bytes) -> PairTable {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet").build().expect("reader");
    let mut table = PairTable::default();
    let mut context = ObjectContext::default();
    for batch in reader {
        extract::add_batch(&batch.expect("batch"), 0, Peer::Source, &mut table, &mut context).expect("extract");
    }
    table
}
