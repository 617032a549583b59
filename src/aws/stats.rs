//! Counts every AWS call by service and operation, and every retry, through an SDK interceptor,
//! so `--stats` reports what really went over the wire.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

/// Operation name prefixes that only read.
const READ_ONLY_PREFIXES: &[&str] = &["Get", "List", "Describe", "Head", "Search", "BatchGet"];

#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<(String, String), u64>>,
    executions: AtomicU64,
    attempts: AtomicU64,
    /// Resources the command observed, to relate reads to them.
    resources: AtomicU64,
}

/// A snapshot of the counters, as `--stats --output json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatsSummary {
    pub calls: Vec<OperationCount>,
    pub total_calls: u64,
    pub mutating_calls: u64,
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
}

pub fn is_mutating(operation: &str) -> bool {
    !READ_ONLY_PREFIXES.iter().any(|p| operation.starts_with(p))
}

impl CallStats {
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
                    .map(|((service, operation), count)| OperationCount {
                        service: service.clone(),
                        operation: operation.clone(),
                        count: *count,
                        mutating: is_mutating(operation),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let executions = self.executions.load(Ordering::Relaxed);
        StatsSummary {
            total_calls: calls.iter().map(|c| c.count).sum(),
            mutating_calls: calls.iter().filter(|c| c.mutating).map(|c| c.count).sum(),
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
                if c.mutating { "  (mutating)" } else { "" }
            );
        }
        let _ = writeln!(
            out,
            "total: {} calls, {} mutating, {} retries, wall time {:.1}s",
            self.total_calls,
            self.mutating_calls,
            self.retries,
            wall.as_secs_f64()
        );
        if self.resources > 0 {
            let reads = self.total_calls - self.mutating_calls;
            let _ = writeln!(out, "reads: {reads} read-only calls for {} resources", self.resources);
        }
        out
    }
}

/// The interceptor registered on every client.
#[derive(Debug, Clone)]
pub struct StatsInterceptor(pub Arc<CallStats>);

impl Intercept for StatsInterceptor {
    fn name(&self) -> &'static str {
        "lakesight-call-stats"
    }

    // Counted once the call ends: the operation's metadata is not in the config bag before then.
    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(meta), Ok(mut calls)) = (cfg.load::<Metadata>(), self.0.calls.lock()) {
            *calls.entry((meta.service().to_owned(), meta.name().to_owned())).or_default() += 1;
        }
        self.0.executions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
