//! Findings: one self-contained JSON object per anomalous pair, written as one log line so that
//! CloudWatch Logs Insights and metric filters can select on its fields, and optionally sent on
//! to a queue.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::event::ObjectRef;
use super::extract::ObjectContext;
use super::pairs::Pair;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Scored above the threshold.
    Finding,
    /// Logged in observe-only mode, or while no threshold is calibrated.
    Score,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: Kind,
    pub entity: String,
    pub ip: String,
    /// `-dot_product`: higher is more anomalous.
    pub score: f64,
    pub threshold: Option<f64>,
    /// Occurrences of the pair in the batch.
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// The first object the pair was seen in.
    pub object: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub product: Option<String>,
    pub endpoint: String,
    pub model_generation: Option<String>,
}

/// Where a pair was seen, and on what it was scored.
pub struct Origin<'a> {
    pub object: &'a ObjectRef,
    pub context: &'a ObjectContext,
    pub endpoint: &'a str,
    pub model_generation: Option<&'a str>,
}

impl Finding {
    pub fn new(kind: Kind, pair: &Pair, score: f64, threshold: Option<f64>, origin: &Origin<'_>) -> Finding {
        Finding {
            kind,
            entity: pair.entity.clone(),
            ip: pair.ip.to_string(),
            score,
            threshold,
            count: pair.seen.count,
            first_seen: pair.seen.first_ms.and_then(rfc3339),
            last_seen: pair.seen.last_ms.and_then(rfc3339),
            object: origin.object.to_string(),
            account: origin.context.account.clone(),
            region: origin.context.region.clone(),
            product: origin.context.product.clone(),
            endpoint: origin.endpoint.to_owned(),
            model_generation: origin.model_generation.map(str::to_owned),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"kind\":\"error\",\"error\":\"{e}\"}}"))
    }
}

/// Writes each finding as one line on stdout, which Lambda sends to the function's log group.
pub fn log(findings: &[Finding]) {
    let mut out = std::io::stdout().lock();
    for f in findings {
        let _ = writeln!(out, "{}", f.to_json());
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    let t = SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(u64::try_from(ms).ok()?))?;
    Some(humantime::format_rfc3339_millis(t).to_string())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::scorer::pairs::Sightings;

    #[test]
    fn a_finding_is_one_json_line_with_every_field() {
        let pair = Pair {
            entity: "i-1".into(),
            ip: Ipv4Addr::new(203, 0, 113, 9),
            seen: Sightings {
                count: 4,
                first_ms: Some(1_795_000_000_000),
                last_ms: Some(1_795_000_060_000),
                sources: vec![0],
            },
        };
        let object = ObjectRef { bucket: "lake".into(), key: "k.parquet".into() };
        let context = ObjectContext { account: Some("1".into()), region: Some("us-east-1".into()), product: None };
        let origin = Origin {
            object: &object,
            context: &context,
            endpoint: "lakesight-demo-endpoint",
            model_generation: Some("g2"),
        };
        let line = Finding::new(Kind::Finding, &pair, 12.5, Some(3.0), &origin).to_json();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "finding");
        assert_eq!(v["ip"], "203.0.113.9");
        assert_eq!(v["score"], 12.5);
        assert_eq!(v["threshold"], 3.0);
        assert_eq!(v["count"], 4);
        assert_eq!(v["firstSeen"], "2026-11-18T11:06:40.000Z");
        assert_eq!(v["lastSeen"], "2026-11-18T11:07:40.000Z");
        assert_eq!(v["object"], "s3://lake/k.parquet");
        assert_eq!(v["modelGeneration"], "g2");
    }
}
