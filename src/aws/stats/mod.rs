//! Counts every AWS call by service and operation, and every retry, through an SDK interceptor,
//! so `--stats` reports what really went over the wire. With `--stats-json FILE` it also records
//! what each call was made on (see [`resource`]), for audits and for the test that holds the
//! output of `lakesight iam-policy` against the calls a real run makes.

pub mod resource;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::Serialize;

/// Operation name prefixes that only read.
const READ_ONLY_PREFIXES: &[&str] = &["Get", "List", "Describe", "Head", "Search", "BatchGet"];

#[derive(Debug, Default)]
pub struct CallStats {
    /// By (service, operation, whether the call was on lakesight's own records).
    calls: Mutex<BTreeMap<(String, String, bool), u64>>,
    executions: AtomicU64,
    attempts: AtomicU64,
    /// Resources the command observed, to relate reads to them.
    resources: AtomicU64,
    /// Each distinct (call, resource) with its count, when the run records them.
    named: Option<Mutex<BTreeMap<CallRecord, u64>>>,
}

/// One kind of call on one resource, as `--stats-json` writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CallRecord {
    pub service: String,
    pub operation: String,
    /// A call on lakesight's own records (the lock, the run ledger).
    pub records: bool,
    /// The request's fields that name the resource, by their AWS API names; empty when the
    /// request names none (see [`resource`]).
    pub resource: BTreeMap<&'static str, String>,
}

/// The calls of one run with their resources: what `--stats-json` writes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsDump {
    #[serde(flatten)]
    pub summary: StatsSummary,
    pub operations: Vec<RecordedCall>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    #[serde(flatten)]
    pub call: CallRecord,
    pub count: u64,
}

/// The resources a request names, from before it is sent to after it ends, in the call's own bag.
#[derive(Debug, Clone)]
struct Named(Vec<resource::Fields>);

impl Storable for Named {
    type Storer = StoreReplace<Self>;
}

/// A snapshot of the counters, as `--stats --output json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatsSummary {
    pub calls: Vec<OperationCount>,
    pub total_calls: u64,
    /// Calls that change the stack's resources.
    pub mutating_calls: u64,
    /// Writes of lakesight's own records in the artifact bucket (the lock, the run ledger),
    /// which change no resource of the stack.
    pub record_writes: u64,
    pub retries: u64,
    /// Resources observed, when the command plans.
    pub resources: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OperationCount {
    pub service: String,
    pub operation: String,
    pub count: u64,
    pub mutating: bool,
    /// A call on lakesight's own records (the lock, the run ledger).
    pub records: bool,
}

pub fn is_mutating(operation: &str) -> bool {
    !READ_ONLY_PREFIXES.iter().any(|p| operation.starts_with(p))
}

impl CallStats {
    /// Statistics that also record each call's resource, for `--stats-json`.
    pub fn recording() -> Self {
        CallStats { named: Some(Mutex::new(BTreeMap::new())), ..CallStats::default() }
    }

    /// The summary and every recorded call with its resource; `None` unless [`Self::recording`].
    pub fn dump(&self) -> Option<StatsDump> {
        let named = self.named.as_ref()?.lock().ok()?;
        let operations = named.iter().map(|(call, count)| RecordedCall { call: call.clone(), count: *count }).collect();
        Some(StatsDump { summary: self.summary(), operations })
    }

    /// The command observed `count` resources (once each, when it planned).
    pub fn observed(&self, count: usize) {
        self.resources.store(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn summary(&self) -> StatsSummary {
        let calls: Vec<OperationCount> = self
            .calls
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((service, operation, records), count)| OperationCount {
                        service: service.clone(),
                        operation: operation.clone(),
                        count: *count,
                        mutating: is_mutating(operation),
                        records: *records,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let executions = self.executions.load(Ordering::Relaxed);
        StatsSummary {
            total_calls: calls.iter().map(|c| c.count).sum(),
            mutating_calls: calls.iter().filter(|c| c.mutating && !c.records).map(|c| c.count).sum(),
            record_writes: calls.iter().filter(|c| c.mutating && c.records).map(|c| c.count).sum(),
            retries: self.attempts.load(Ordering::Relaxed).saturating_sub(executions),
            resources: self.resources.load(Ordering::Relaxed),
            calls,
        }
    }
}

impl StatsSummary {
    pub fn render(&self, wall: std::time::Duration) -> String {
        let mut out = String::from("AWS calls:\n");
        for c in &self.calls {
            let _ = writeln!(
                out,
                "  {:<14} {:<36} {:>5}{}",
                c.service,
                c.operation,
                c.count,
                match (c.mutating, c.records) {
                    (_, true) => "  (lakesight's records)",
                    (true, false) => "  (mutating)",
                    (false, false) => "",
                }
            );
        }
        let _ = writeln!(
            out,
            "total: {} calls, {} mutating, {} writes of lakesight's records (lock, run ledger), {} retries, wall time {:.1}s",
            self.total_calls,
            self.mutating_calls,
            self.record_writes,
            self.retries,
            wall.as_secs_f64()
        );
        if self.resources > 0 {
            let reads = self.total_calls - self.mutating_calls - self.record_writes;
            let _ = writeln!(out, "reads: {reads} read-only calls for {} resources", self.resources);
        }
        out
    }
}

/// The interceptor registered on every client. `records` marks the client that only touches
/// lakesight's own records, so that their writes are not counted as changes to the stack.
#[derive(Debug, Clone)]
pub struct StatsInterceptor {
    pub stats: Arc<CallStats>,
    pub records: bool,
}

impl Intercept for StatsInterceptor {
    fn name(&self) -> &'static str {
        "lakesight-call-stats"
    }

    // The input is only readable before it is serialised; what it names waits in the call's bag.
    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.stats.named.is_some() {
            cfg.interceptor_state().store_put(Named(resource::of(context.input())));
        }
        Ok(())
    }

    // Counted once the call ends: the operation's metadata is not in the config bag before then.
    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(meta), Ok(mut calls)) = (cfg.load::<Metadata>(), self.stats.calls.lock()) {
            *calls.entry((meta.service().to_owned(), meta.name().to_owned(), self.records)).or_default() += 1;
        }
        if let (Some(meta), Some(Ok(mut named))) = (cfg.load::<Metadata>(), self.stats.named.as_ref().map(Mutex::lock))
        {
            let resources = cfg.load::<Named>().map(|n| n.0.clone()).unwrap_or_default();
            for resource in resources {
                let call = CallRecord {
                    service: meta.service().to_owned(),
                    operation: meta.name().to_owned(),
                    records: self.records,
                    resource,
                };
                *named.entry(call).or_default() += 1;
            }
        }
        self.stats.executions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.stats.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_of_lakesights_own_records_are_not_changes_to_the_stack() {
        let stats = CallStats::default();
        if let Ok(mut calls) = stats.calls.lock() {
            calls.insert(("S3".into(), "PutObject".into(), true), 2);
            calls.insert(("S3".into(), "PutObject".into(), false), 1);
            calls.insert(("S3".into(), "GetObject".into(), true), 4);
        }
        let summary = stats.summary();
        assert_eq!((summary.total_calls, summary.mutating_calls, summary.record_writes), (7, 1, 2));
        assert!(
            summary.render(std::time::Duration::ZERO).contains("7 calls, 1 mutating, 2 writes of lakesight's records")
        );
    }

    #[test]
    fn read_only_operations_are_not_mutating() {
        for op in ["GetRole", "ListBuckets", "HeadBucket", "DescribeEndpoint"] {
            assert!(!is_mutating(op), "{op}");
        }
        for op in ["CreateBucket", "PutBucketTagging", "TagRole", "DeleteRole", "UpdateEndpoint"] {
            assert!(is_mutating(op), "{op}");
        }
    }
}
