//! The feature SQL: (entity, IPv4) pairs from the Security Lake OCSF tables, for a time window
//! split into train (older) and validation (the most recent days). Every query of one run uses
//! the same reference time, so the two splits meet exactly.
//!
//! Table names follow Security Lake's convention and the pinned source version:
//! `amazon_security_lake_table_<region>_<source>_<major>_<minor>` in the database
//! `amazon_security_lake_glue_db_<region>`. Version 1 tables are partitioned by `eventDay`
//! (`YYYYMMDD`), version 2 tables by `time_dt`.
//!
//! Which address goes with each entity follows `features.peer` ([`Peer`]), exactly as the scorer
//! pairs them: both versions carry `connection_info.direction_id` and `answers` alike.

use std::time::{Duration, SystemTime};

use crate::manifest::{Features, Peer, SourceName};
use crate::scorer::peer::{INBOUND, OUTBOUND};
use crate::stack::Stack;

const DAY: Duration = Duration::from_secs(86_400);

/// Dotted-decimal IPv4 only: IP Insights accepts nothing else.
const IPV4: &str =
    r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$";

/// One OCSF table the features read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub source: SourceName,
    pub database: String,
    pub name: String,
    pub version: String,
}

/// Which part of the window a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }
}

/// The queries of one feature run.
#[derive(Debug, Clone)]
pub struct FeatureSql {
    tables: Vec<Table>,
    features: Features,
    /// The run's reference time: the window ends here.
    now: SystemTime,
}

/// The region whose Glue catalog holds the tables: the roll-up region when the lake replicates,
/// otherwise the stack's own region.
pub fn query_region(stack: &Stack) -> String {
    stack
        .manifest
        .spec
        .security_lake
        .as_ref()
        .and_then(|l| l.replication.as_ref()?.regions.first().cloned())
        .unwrap_or_else(|| stack.env.region.clone())
}

/// The OCSF tables for the feature sources, at the versions the lake pins (default "2.0").
pub fn tables(stack: &Stack, features: &Features) -> Vec<Table> {
    let region = query_region(stack);
    let underscored = region.replace('-', "_");
    let lake_sources = stack.manifest.spec.security_lake.as_ref().map(|l| l.sources.as_slice()).unwrap_or_default();
    features
        .sources
        .iter()
        .map(|name| {
            let version =
                lake_sources.iter().find(|s| s.name == *name).map_or("2.0", |s| s.version.as_str()).to_owned();
            Table {
                source: *name,
                database: crate::aws::securitylake::glue_database(&region),
                name: format!(
                    "amazon_security_lake_table_{underscored}_{}_{}",
                    source_suffix(*name),
                    version.replace('.', "_")
                ),
                version,
            }
        })
        .collect()
}

fn source_suffix(name: SourceName) -> String {
    name.as_str().to_ascii_lowercase()
}

impl FeatureSql {
    pub fn new(tables: Vec<Table>, features: Features, now: SystemTime) -> Self {
        FeatureSql { tables, features, now }
    }

    /// `SELECT entity, ip` over every table for one split, rows shuffled (IP Insights trains best on shuffled input).
    pub fn pairs(&self, split: Split) -> String {
        let parts: Vec<String> = self.tables.iter().map(|t| self.select(t, split)).collect();
        format!("SELECT entity, ip FROM (\n{}\n) ORDER BY rand()", parts.join("\n  UNION ALL\n"))
    }

    /// Writes one split as two-column, header-less, uncompressed CSV under `prefix` (which must be empty).
    pub fn unload(&self, split: Split, prefix: &str) -> String {
        format!(
            "UNLOAD (\n{}\n) TO '{prefix}'\nWITH (format = 'TEXTFILE', field_delimiter = ',', compression = 'NONE')",
            self.pairs(split)
        )
    }

    /// Pairs and distinct entities in the training split: whether there is enough data to
    /// train on yet, and how many entity vectors the model needs.
    pub fn counts(&self) -> String {
        let parts: Vec<String> = self.tables.iter().map(|t| self.select(t, Split::Train)).collect();
        format!(
            "SELECT COUNT(*) AS pairs, COUNT(DISTINCT entity) AS entities FROM (\n{}\n)",
            parts.join("\n  UNION ALL\n")
        )
    }

    fn select(&self, table: &Table, split: Split) -> String {
        let mut bounds = self.window(table, split);
        if !self.features.accounts.is_empty() {
            bounds.push(format!("accountid IN ({})", quoted(&self.features.accounts)));
        }
        if !self.features.regions.is_empty() {
            bounds.push(format!("region IN ({})", quoted(&self.features.regions)));
        }
        let from = format!("\"{}\".\"{}\"", table.database, table.name);
        match self.features.peer {
            Peer::Source => {
                let mut conditions = valid("src_endpoint.instance_uid", "src_endpoint.ip");
                conditions.extend(bounds);
                format!(
                    "  SELECT src_endpoint.instance_uid AS entity, src_endpoint.ip AS ip\n  FROM {from}\n  WHERE {}",
                    conditions.join("\n    AND ")
                )
            }
            Peer::Remote => remote(table.source, &from, bounds),
        }
    }

    /// The partition predicates that bound a split.
    fn window(&self, table: &Table, split: Split) -> Vec<String> {
        let start = self.now - DAY * self.features.window_days;
        let cut = self.now - DAY * self.features.validation_days;
        let (from, to) = match split {
            Split::Train => (start, cut),
            Split::Validation => (cut, self.now),
        };
        if table.version.starts_with("1.") {
            vec![format!("eventDay >= '{}'", event_day(from)), format!("eventDay < '{}'", event_day(to))]
        } else {
            vec![
                format!("time_dt >= TIMESTAMP '{}'", timestamp(from)),
                format!("time_dt < TIMESTAMP '{}'", timestamp(to)),
            ]
        }
    }
}

/// The pair conditions: an entity that is neither null nor `-`, and a dotted-decimal IPv4 address.
fn valid(entity: &str, ip: &str) -> Vec<String> {
    vec![
        format!("{entity} IS NOT NULL"),
        format!("{entity} <> '-'"),
        format!("{ip} IS NOT NULL"),
        format!("{ip} <> '-'"),
        format!("regexp_like({ip}, '{IPV4}')"),
    ]
}

/// One table's pairs under remote pairing. The inner query forms each row's pair (a flow's
/// instance and its other end, by direction; a DNS query's instance and each address it
/// resolved to); the outer one keeps the valid pairs, as the scorer's pair table does.
fn remote(source: SourceName, from: &str, mut rows: Vec<String>) -> String {
    let (pair, join) = match source {
        SourceName::Route53 => (
            "src_endpoint.instance_uid AS entity, resolved.address AS ip".to_owned(),
            // `transform` first: Athena expands an array of rows into one column per field.
            "\n    CROSS JOIN UNNEST(transform(answers, answer -> answer.rdata)) AS resolved (address)",
        ),
        // VPC_FLOW: validation admits no other source under remote pairing.
        _ => {
            rows.insert(0, format!("connection_info.direction_id IN ({INBOUND}, {OUTBOUND})"));
            (
                format!(
                    "CASE connection_info.direction_id WHEN {INBOUND} THEN dst_endpoint.instance_uid ELSE src_endpoint.instance_uid END AS entity,\n      CASE connection_info.direction_id WHEN {INBOUND} THEN src_endpoint.ip ELSE dst_endpoint.ip END AS ip"
                ),
                "",
            )
        }
    };
    format!(
        "  SELECT entity, ip FROM (\n    SELECT {pair}\n    FROM {from}{join}\n    WHERE {}\n  )\n  WHERE {}",
        rows.join("\n      AND "),
        valid("entity", "ip").join("\n    AND ")
    )
}

/// A stable digest of everything that decides which pairs a feature run reads (tables and the
/// features spec, pairing included, not the time): a new digest means new features, and so a new model.
pub fn inputs_hash(tables: &[Table], features: &Features) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for t in tables {
        hasher.update(format!("{}.{}\n", t.database, t.name));
    }
    let f = features;
    hasher.update(format!(
        "window={} validation={} accounts={:?} regions={:?}",
        f.window_days, f.validation_days, f.accounts, f.regions
    ));
    // Only a pairing other than the default is hashed, so that stacks written before the
    // setting existed keep their digest, and with it their feature run and model.
    if f.peer != Peer::Source {
        hasher.update(format!(" peer={}", f.peer.as_str()));
    }
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What a finished feature run leaves behind for training, as `features/runs/<digest>.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub inputs: String,
    pub train_prefix: String,
    pub validation_prefix: String,
    pub distinct_entities: u64,
    /// Pairs in the training split. Records written before it was counted read as 0.
    #[serde(default)]
    pub rows: u64,
    /// The window held too little data to train on: nothing was unloaded, and the next apply
    /// counts again.
    #[serde(default)]
    pub waiting: bool,
    /// Written before the UNLOADs start and cleared when both have succeeded: a record that still
    /// says so belongs to a run that was interrupted, whose partial output the next apply removes
    /// before it runs again.
    #[serde(default)]
    pub unloading: bool,
    /// The UNLOAD queries of the run, to stop if it was interrupted.
    #[serde(default)]
    pub queries: Vec<String>,
    /// The query that counted the window's pairs.
    #[serde(default)]
    pub count_query: Option<String>,
    /// What the run's queries scanned, as Athena bills it.
    #[serde(default)]
    pub bytes_scanned: u64,
}

/// The key of a run's record in the artifact bucket.
pub fn record_key(inputs: &str) -> String {
    format!("features/runs/{inputs}.json")
}

/// A run's id, from its reference time: `20261126T100000Z`. It names the run's fresh prefixes.
pub fn run_id(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string().replace(['-', ':'], "")
}

/// Where one split of a run is unloaded: a prefix no earlier run has written to.
pub fn prefix(bucket: &str, run_id: &str, split: Split) -> String {
    format!("s3://{bucket}/{}{}/", run_prefix(run_id), split.as_str())
}

/// The key prefix under which a run writes all its output.
pub fn run_prefix(run_id: &str) -> String {
    format!("features/{run_id}/")
}

fn quoted(values: &[String]) -> String {
    values.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect::<Vec<_>>().join(", ")
}

/// `2026-11-26 10:00:00` in UTC.
fn timestamp(t: SystemTime) -> String {
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    rfc.trim_end_matches('Z').replacen('T', " ", 1)
}

/// `20261126` in UTC.
fn event_day(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()[..10].replace('-', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tests::stack;

    /// 2026-11-26 10:00:00 UTC.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_687_200)
    }

    fn sql(spec: &str) -> FeatureSql {
        let s = stack(spec);
        let features = s.manifest.spec.features.clone().expect("features");
        FeatureSql::new(tables(&s, &features), features, now())
    }

    #[test]
    fn v2_tables_use_time_dt_and_split_at_the_validation_cut() {
        let q = sql("  features:\n    windowDays: 30\n    validationDays: 3\n");
        assert_eq!(
            q.pairs(Split::Train),
            r#"SELECT entity, ip FROM (
  SELECT src_endpoint.instance_uid AS entity, src_endpoint.ip AS ip
  FROM "amazon_security_lake_glue_db_eu_west_1"."amazon_security_lake_table_eu_west_1_vpc_flow_2_0"
  WHERE src_endpoint.instance_uid IS NOT NULL
    AND src_endpoint.instance_uid <> '-'
    AND src_endpoint.ip IS NOT NULL
    AND src_endpoint.ip <> '-'
    AND regexp_like(src_endpoint.ip, '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$')
    AND time_dt >= TIMESTAMP '2026-10-27 10:00:00'
    AND time_dt < TIMESTAMP '2026-11-23 10:00:00'
  UNION ALL
  SELECT src_endpoint.instance_uid AS entity, src_endpoint.ip AS ip
  FROM "amazon_security_lake_glue_db_eu_west_1"."amazon_security_lake_table_eu_west_1_route53_2_0"
  WHERE src_endpoint.instance_uid IS NOT NULL
    AND src_endpoint.instance_uid <> '-'
    AND src_endpoint.ip IS NOT NULL
    AND src_endpoint.ip <> '-'
    AND regexp_like(src_endpoint.ip, '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$')
    AND time_dt >= TIMESTAMP '2026-10-27 10:00:00'
    AND time_dt < TIMESTAMP '2026-11-23 10:00:00'
) ORDER BY rand()"#
        );
        let validation = q.pairs(Split::Validation);
        assert!(
            validation.contains(
                "time_dt >= TIMESTAMP '2026-11-23 10:00:00'\n    AND time_dt < TIMESTAMP '2026-11-26 10:00:00'"
            )
        );
    }

    #[test]
    fn v1_tables_use_event_day_and_the_pinned_version_names_the_table() {
        let q = sql(
            "  securityLake:\n    sources:\n      - name: VPC_FLOW\n        version: \"1.0\"\n  features:\n    sources: [VPC_FLOW]\n    windowDays: 10\n    validationDays: 2\n",
        );
        let train = q.pairs(Split::Train);
        assert!(
            train.contains(
                r#"FROM "amazon_security_lake_glue_db_eu_west_1"."amazon_security_lake_table_eu_west_1_vpc_flow_1_0""#
            ),
            "{train}"
        );
        assert!(train.contains("AND eventDay >= '20261116'\n    AND eventDay < '20261124'"), "{train}");
        assert!(!train.contains("UNION ALL") && !train.contains("time_dt"), "{train}");
        assert!(q.pairs(Split::Validation).contains("AND eventDay >= '20261124'\n    AND eventDay < '20261126'"));
    }

    /// The remote select of one table, as `pairs` embeds it.
    fn remote_select(version: &str, sources: &str) -> String {
        sql(&format!(
            "  securityLake:\n    sources:\n      - name: VPC_FLOW\n        version: \"{version}\"\n      - name: ROUTE53\n        version: \"{version}\"\n  features:\n    peer: remote\n    sources: [{sources}]\n    windowDays: 10\n    validationDays: 2\n"
        ))
        .pairs(Split::Train)
    }

    const VALID_PAIR: &str = r#"
  WHERE entity IS NOT NULL
    AND entity <> '-'
    AND ip IS NOT NULL
    AND ip <> '-'
    AND regexp_like(ip, '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$')
) ORDER BY rand()"#;

    #[test]
    fn remote_flows_pair_the_instance_with_the_other_end_by_direction_at_either_version() {
        let bounds = [
            ("1.0", "eventDay >= '20261116'\n      AND eventDay < '20261124'"),
            ("2.0", "time_dt >= TIMESTAMP '2026-11-16 10:00:00'\n      AND time_dt < TIMESTAMP '2026-11-24 10:00:00'"),
        ];
        for (version, bound) in bounds {
            let table = format!("amazon_security_lake_table_eu_west_1_vpc_flow_{}", version.replace('.', "_"));
            assert_eq!(
                remote_select(version, "VPC_FLOW"),
                format!(
                    r#"SELECT entity, ip FROM (
  SELECT entity, ip FROM (
    SELECT CASE connection_info.direction_id WHEN 1 THEN dst_endpoint.instance_uid ELSE src_endpoint.instance_uid END AS entity,
      CASE connection_info.direction_id WHEN 1 THEN src_endpoint.ip ELSE dst_endpoint.ip END AS ip
    FROM "amazon_security_lake_glue_db_eu_west_1"."{table}"
    WHERE connection_info.direction_id IN (1, 2)
      AND {bound}
  ){VALID_PAIR}"#
                )
            );
        }
    }

    #[test]
    fn remote_dns_pairs_the_querying_instance_with_each_answer_at_either_version() {
        for version in ["1.0", "2.0"] {
            let q = remote_select(version, "ROUTE53");
            let table = format!("amazon_security_lake_table_eu_west_1_route53_{}", version.replace('.', "_"));
            let expected = format!(
                r#"SELECT entity, ip FROM (
  SELECT entity, ip FROM (
    SELECT src_endpoint.instance_uid AS entity, resolved.address AS ip
    FROM "amazon_security_lake_glue_db_eu_west_1"."{table}"
    CROSS JOIN UNNEST(transform(answers, answer -> answer.rdata)) AS resolved (address)
    WHERE "#
            );
            assert!(q.starts_with(&expected), "{q}");
            assert!(q.ends_with(VALID_PAIR), "{q}");
            assert!(!q.contains("direction_id"), "{q}");
        }
    }

    #[test]
    fn remote_filters_apply_inside_and_the_count_reads_the_same_pairs() {
        let q = sql("  features:\n    peer: remote\n    sources: [VPC_FLOW]\n    accounts: [\"111122223333\"]\n");
        let train = q.pairs(Split::Train);
        assert!(train.contains("\n      AND accountid IN ('111122223333')\n  )"), "{train}");
        let count = q.counts();
        assert!(count.contains("WHEN 1 THEN dst_endpoint.instance_uid"), "{count}");
    }

    #[test]
    fn a_replicating_lake_is_queried_in_its_roll_up_region_filtered_by_region_and_account() {
        let q = sql(
            "  securityLake:\n    regions: [eu-west-1, eu-central-1]\n    replication:\n      regions: [us-east-1]\n  features:\n    regions: [eu-west-1, eu-central-1]\n    accounts: [\"111122223333\"]\n",
        );
        let train = q.pairs(Split::Train);
        assert!(
            train.contains(
                r#""amazon_security_lake_glue_db_us_east_1"."amazon_security_lake_table_us_east_1_vpc_flow_2_0""#
            ),
            "{train}"
        );
        assert!(
            train.contains("AND accountid IN ('111122223333')\n    AND region IN ('eu-west-1', 'eu-central-1')"),
            "{train}"
        );
    }

    #[test]
    fn unload_writes_plain_csv_to_the_given_prefix_and_the_count_reads_the_train_split() {
        let q = sql("  features: {}\n");
        let unload = q.unload(Split::Validation, "s3://bucket/features/run-1/validation/");
        assert!(unload.starts_with("UNLOAD (\nSELECT entity, ip FROM ("), "{unload}");
        assert!(unload.ends_with(") TO 's3://bucket/features/run-1/validation/'\nWITH (format = 'TEXTFILE', field_delimiter = ',', compression = 'NONE')"), "{unload}");
        let count = q.counts();
        assert!(count.starts_with("SELECT COUNT(*) AS pairs, COUNT(DISTINCT entity) AS entities FROM ("), "{count}");
        assert!(count.contains("time_dt < TIMESTAMP '2026-11-23 10:00:00'"), "{count}");
    }

    #[test]
    fn the_inputs_digest_changes_with_the_pairing_and_a_source_pairing_keeps_its_old_digest() {
        let digest = |q: &FeatureSql| inputs_hash(&q.tables, &q.features);
        let default = digest(&sql("  features: {}\n"));
        // The digest before `peer` existed: a stack that does not set it keeps its run and model.
        assert_eq!(default, "8094c75b58cd");
        assert_eq!(digest(&sql("  features:\n    peer: source\n")), default);
        assert_ne!(digest(&sql("  features:\n    peer: remote\n")), default);
    }

    #[test]
    fn the_inputs_digest_changes_with_the_window_but_not_the_time() {
        let a = sql("  features:\n    windowDays: 30\n");
        let b = sql("  features:\n    windowDays: 31\n");
        let digest = |q: &FeatureSql| inputs_hash(&q.tables, &q.features);
        assert_eq!(digest(&a), digest(&sql("  features:\n    windowDays: 30\n")));
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a).len(), 12);
    }

    #[test]
    fn each_run_writes_under_its_own_prefix() {
        assert_eq!(run_id(now()), "20261126T100000Z");
        assert_eq!(prefix("b", &run_id(now()), Split::Train), "s3://b/features/20261126T100000Z/train/");
    }

    #[test]
    fn quotes_in_filter_values_are_escaped() {
        assert_eq!(quoted(&["a'b".to_owned()]), "'a''b'");
    }
}
