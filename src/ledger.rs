//! The run ledger: one JSON document per run of a mutating command, kept in the stack's artifact
//! bucket (`aws::s3::runs`), so that a reviewer can see what every apply did and why, long after
//! its CI log is gone. It is a record, not state: planning never reads it, and the cloud stays
//! the only source of truth.
//!
//! Each command adds what it knows through its [`Command`] variant (its options, a retrain's
//! data window), beside the fields every run shares. What the run decided travels in the nodes'
//! outputs: the feature run's query ids and bytes scanned, the training job, its AUC and the
//! quality gate's verdict, the calibration's threshold and evidence.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::{Action, Outcome, Plan, Report, Values};

/// One run, as written at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub stack: String,
    #[serde(flatten)]
    pub command: Command,
    /// The lakesight version that ran.
    pub version: String,
    /// The AWS identity it ran as.
    pub caller: String,
    /// The lock id it held, as the lock object and `force-unlock` name it.
    pub lock_id: Option<String>,
    #[serde(with = "humantime_serde")]
    pub started_at: SystemTime,
    #[serde(with = "humantime_serde")]
    pub finished_at: SystemTime,
    pub duration_seconds: f64,
    /// The approved plan, counted by action; absent when planning itself failed.
    pub plan: Option<PlanCounts>,
    /// Every node the walk reached, in walk order.
    pub nodes: Vec<NodeRun>,
    pub exit: Exit,
}

/// The command, and what only that command records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "camelCase")]
pub enum Command {
    Apply {
        adopt: bool,
    },
    Destroy,
    /// A new generation from the window that ends at `window_end`.
    #[serde(rename_all = "camelCase")]
    Retrain {
        #[serde(with = "humantime_serde")]
        window_end: SystemTime,
    },
    /// The serving generation's threshold chosen again.
    Calibrate,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Apply { .. } => "apply",
            Command::Destroy => "destroy",
            Command::Retrain { .. } => "retrain",
            Command::Calibrate => "calibrate",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCounts {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl PlanCounts {
    pub fn of(plan: &Plan) -> PlanCounts {
        let count = |a: Action| plan.nodes.iter().filter(|n| n.action == a).count();
        PlanCounts {
            create: count(Action::Create),
            update: count(Action::Update),
            replace: count(Action::Replace),
            delete: count(Action::Delete),
            unchanged: count(Action::NoOp),
        }
    }
}

/// How one node fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRun {
    pub address: String,
    pub name: String,
    /// The action the approved plan gave it.
    pub planned: Action,
    pub outcome: Outcome,
    /// From the start of its action to its end, readiness included; absent for a node that did
    /// not act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// What it published for its dependents at the end of the run: the training job's name and
    /// AUC, the feature run's prefixes and entity count, and so on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exit {
    /// The process's exit code.
    pub code: u8,
    /// The error the command ended with, as it was printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunRecord {
    /// A run that starts now.
    pub fn begin(stack: &str, command: Command, caller: &str, lock_id: Option<String>) -> RunRecord {
        let now = SystemTime::now();
        RunRecord {
            stack: stack.to_owned(),
            command,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            caller: caller.to_owned(),
            lock_id,
            started_at: now,
            finished_at: now,
            duration_seconds: 0.0,
            plan: None,
            nodes: Vec::new(),
            exit: Exit { code: 0, error: None },
        }
    }

    pub fn planned(&mut self, plan: &Plan) {
        self.plan = Some(PlanCounts::of(plan));
    }

    /// Records the walk: each node's outcome, the time its action took (`durations`, by
    /// address), and the outputs it published.
    pub fn walked(&mut self, plan: &Plan, report: &Report, durations: &HashMap<String, Duration>, values: &Values) {
        self.nodes = report
            .outcomes
            .iter()
            .map(|(address, outcome)| {
                let planned = plan.node(address);
                let outputs = values
                    .outputs_of(address)
                    .and_then(|o| serde_json::to_value(o).ok())
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default();
                NodeRun {
                    address: address.clone(),
                    name: planned.map(|p| p.name.clone()).unwrap_or_default(),
                    planned: planned.map_or(Action::NoOp, |p| p.action),
                    outcome: outcome.clone(),
                    duration_seconds: durations.get(address).map(Duration::as_secs_f64),
                    outputs,
                }
            })
            .collect();
    }

    /// What the node at `address` published under `key` by the end of the run.
    pub fn output(&self, address: &str, key: &str) -> Option<&serde_json::Value> {
        self.nodes.iter().find(|n| n.address == address)?.outputs.get(key)
    }

    pub fn finish(&mut self, code: u8, error: Option<String>) {
        self.finished_at = SystemTime::now();
        self.duration_seconds =
            self.finished_at.duration_since(self.started_at).map(|d| d.as_secs_f64()).unwrap_or_default();
        self.exit = Exit { code, error };
    }

    /// `stacks/<stack>/runs/<start, UTC, to the millisecond>-<command>.json`: keys sort as the
    /// runs started, so the newest is last in a listing.
    pub fn key(&self) -> String {
        let stamp: String = humantime::format_rfc3339_millis(self.started_at)
            .to_string()
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        format!("{}{stamp}-{}.json", prefix(&self.stack), self.command.name())
    }
}

/// Where a stack's run records live.
pub fn prefix(stack: &str) -> String {
    format!("stacks/{stack}/runs/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_runs_started_and_name_the_command() {
        let mut first = RunRecord::begin("demo", Command::Apply { adopt: false }, "arn:aws:iam::1:user/a", None);
        first.started_at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        let mut second = first.clone();
        second.started_at += Duration::from_secs(9);
        second.command = Command::Destroy;
        assert_eq!(first.key(), "stacks/demo/runs/20260101T000000.123Z-apply.json");
        assert!(first.key() < second.key());
    }

    #[test]
    fn a_record_reads_back_as_written_with_its_command_inline() {
        let mut record = RunRecord::begin("demo", Command::Apply { adopt: true }, "arn", Some("abc".into()));
        record.nodes.push(NodeRun {
            address: "s3.bucket/artifacts".into(),
            name: "b".into(),
            planned: Action::Create,
            outcome: Outcome::Applied(Action::Create),
            duration_seconds: Some(1.5),
            outputs: BTreeMap::from([("auc".to_owned(), serde_json::json!(0.9))]),
        });
        record.finish(1, Some("boom".into()));
        let json = serde_json::to_value(&record).expect("serialise");
        assert_eq!(json["command"], "apply");
        assert_eq!(json["adopt"], true);
        assert_eq!(json["nodes"][0]["outcome"]["result"], "applied");
        let back: RunRecord = serde_json::from_value(json).expect("read back");
        // humantime keeps whole nanoseconds; compare what a reader sees.
        assert_eq!(back.exit, record.exit);
        assert_eq!(back.nodes, record.nodes);
        assert_eq!(back.command, record.command);
    }

    #[test]
    fn a_retrain_records_its_window() {
        let window_end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_687_200);
        let record = RunRecord::begin("demo", Command::Retrain { window_end }, "arn", None);
        let json = serde_json::to_value(&record).expect("serialise");
        assert_eq!(
            (json["command"].as_str(), json["windowEnd"].as_str()),
            (Some("retrain"), Some("2026-11-26T10:00:00Z"))
        );
        assert!(record.key().ends_with("-retrain.json"), "{}", record.key());
    }
}
