//! How well a deployed scorer did on the synthetic lake: its findings held against the ground
//! truth that `lakesight-data` wrote beside the lake, with the scorer's own counts of what it
//! read. It is the quickstart's last word (`lakesight-data report`) and what the end-to-end test
//! asserts on, so that the figures the README quotes and the bounds the test holds come from one
//! piece of code.
//!
//! [`deployed`] finds the deployed function, its queues and its log, and waits until the function
//! has had every notification; this module only counts.

pub mod deployed;

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

use crate::scorer::Peer;

/// An (entity, IPv4) pair, as the scorer and the ground truth spell it.
pub type Pair = (String, String);

/// One planted anomaly of the ground truth, with the pairs it adds under the stack's pairing.
#[derive(Debug, Clone, PartialEq)]
pub struct Planted {
    pub kind: String,
    pub entity: String,
    pub remote_ip: String,
    pub pairs: BTreeSet<Pair>,
}

/// The ground truth's planted anomalies and the day they are on.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub last_day: String,
    pub anomalies: Vec<Planted>,
}

impl Truth {
    /// Reads `ground-truth.json`, taking each anomaly's pairs under `peer`: with `source`
    /// pairing an anomaly adds only the instance's own address, which the lake holds anyway, so
    /// no detector can find it there; the report says so rather than hide it.
    pub fn from_json(value: &serde_json::Value, peer: Peer) -> Result<Truth, String> {
        let selection = match peer {
            Peer::Source => "sourceEndpoint",
            Peer::Remote => "remotePeer",
        };
        let last_day = value["lastDay"].as_str().ok_or("the ground truth has no lastDay")?.to_owned();
        let anomalies = value["anomalies"]
            .as_array()
            .ok_or("the ground truth has no anomalies list")?
            .iter()
            .map(|a| {
                let text =
                    |field: &str| a[field].as_str().map(str::to_owned).ok_or(format!("an anomaly without {field}"));
                let pairs: Vec<Pair> = serde_json::from_value(a["pairs"][selection].clone())
                    .map_err(|e| format!("an anomaly's {selection} pairs: {e}"))?;
                Ok(Planted {
                    kind: text("kind")?,
                    entity: text("entity")?,
                    remote_ip: text("remoteIp")?,
                    pairs: pairs.into_iter().collect(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Truth { last_day, anomalies })
    }
}

/// What the scorer says it did, summed over the `invocation` lines it logs (its `Report`).
/// Pairs are deduplicated within an invocation, not across them, so `scored` counts a pair once
/// per invocation that saw it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scored {
    #[serde(skip)]
    pub invocations: usize,
    pub messages: usize,
    pub objects: usize,
    pub rows: u64,
    pub scored: usize,
    pub finding_count: usize,
    pub retried: Vec<String>,
    pub dead_lettered: Vec<String>,
}

impl Scored {
    /// Sums the `invocation` lines of a function log; other lines (findings, Lambda's own
    /// START and REPORT, warnings) are left alone.
    pub fn from_log<'a>(lines: impl IntoIterator<Item = &'a str>) -> Scored {
        let mut total = Scored::default();
        for report in lines.into_iter().filter_map(invocation_report) {
            total.invocations += 1;
            total.messages += report.messages;
            total.objects += report.objects;
            total.rows += report.rows;
            total.scored += report.scored;
            total.finding_count += report.finding_count;
            total.retried.extend(report.retried);
            total.dead_lettered.extend(report.dead_lettered);
        }
        total
    }
}

/// The scorer's summary of one invocation: a JSON log line whose `fields.message` is
/// `invocation` and whose `fields.report` is the report, itself JSON (`src/bin/ipcheck.rs`).
fn invocation_report(line: &str) -> Option<Scored> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    if fields["message"] != "invocation" {
        return None;
    }
    serde_json::from_str(fields["report"].as_str()?).ok()
}

/// A finding as the scorer queues it; only what the report needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Finding {
    pub entity: String,
    pub ip: String,
    pub score: f64,
    pub object: String,
}

/// The findings held against the ground truth at one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub threshold: f64,
    pub scored: Scored,
    pub findings: usize,
    /// Findings from objects of the last day, the day the anomalies are on.
    pub last_day_findings: usize,
    /// The planted anomalies with at least one of their pairs among the findings.
    pub found: Vec<Planted>,
    pub missed: Vec<Planted>,
    /// Distinct flagged pairs that no anomaly added.
    pub normal_flagged: BTreeSet<Pair>,
    /// Of those, the ones from objects of the last day.
    pub normal_flagged_last_day: BTreeSet<Pair>,
}

impl Outcome {
    pub fn new(truth: &Truth, findings: &[Finding], scored: Scored, threshold: f64) -> Outcome {
        let flagged: BTreeSet<Pair> = findings.iter().map(|f| (f.entity.clone(), f.ip.clone())).collect();
        let planted: BTreeSet<&Pair> = truth.anomalies.iter().flat_map(|a| &a.pairs).collect();
        let day = format!("/eventDay={}/", truth.last_day);
        let on_last_day = |f: &&Finding| f.object.contains(&day);
        let normal = |f: &&Finding| !planted.contains(&(f.entity.clone(), f.ip.clone()));
        let (found, missed) = truth.anomalies.iter().cloned().partition(|a| !a.pairs.is_disjoint(&flagged));
        Outcome {
            threshold,
            findings: findings.len(),
            last_day_findings: findings.iter().filter(on_last_day).count(),
            found,
            missed,
            normal_flagged: findings.iter().filter(normal).map(|f| (f.entity.clone(), f.ip.clone())).collect(),
            normal_flagged_last_day: findings
                .iter()
                .filter(normal)
                .filter(on_last_day)
                .map(|f| (f.entity.clone(), f.ip.clone()))
                .collect(),
            scored,
        }
    }

    /// Planted anomalies found, as a fraction (1 when nothing was planted).
    pub fn recall(&self) -> f64 {
        let planted = self.found.len() + self.missed.len();
        if planted == 0 { 1.0 } else { self.found.len() as f64 / planted as f64 }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scored;
        writeln!(
            f,
            "scored: {} objects in {} invocations: {} rows, {} pair scores; {} messages retried, {} dead-lettered",
            s.objects,
            s.invocations,
            s.rows,
            s.scored,
            s.retried.len(),
            s.dead_lettered.len()
        )?;
        writeln!(
            f,
            "findings: {} at threshold {} (-dot_product above it), {} of them in the last day's objects",
            self.findings, self.threshold, self.last_day_findings
        )?;
        writeln!(
            f,
            "planted anomalies found: {} of {} (recall {:.2})",
            self.found.len(),
            self.found.len() + self.missed.len(),
            self.recall()
        )?;
        for a in &self.missed {
            writeln!(f, "  missed: {} reached from {} [{}]", a.entity, a.remote_ip, a.kind)?;
        }
        write!(
            f,
            "normal pairs flagged: {} ({} in the last day's objects)",
            self.normal_flagged.len(),
            self.normal_flagged_last_day.len()
        )
    }
}

#[cfg(test)]
mod tests;
