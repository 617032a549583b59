//! A synthetic Amazon Security Lake: OCSF Parquet objects of VPC Flow Logs and Route 53
//! Resolver query logs, laid out as Security Lake lays them out, generated from a seed by a
//! behaviour model that a detector can learn, with anomalies planted on the last day. It feeds
//! the emulator (`lakesight-data`, `localstack/seed-lake`), the end-to-end tests, the scorer's
//! tests and its benchmark. It is test and demo code: the `ipcheck` Lambda never builds it.
//!
//! - [`world`]: tenant networks, instances and the home set of addresses each talks to.
//! - [`traffic`]: one day of flows or DNS queries for one network, with variation and noise.
//! - [`anomaly`]: the planted strangers and their records.
//! - [`record`]: one event, before it is a row; source, version and the object layout.
//! - [`ocsf`]: records to Parquet with the real tables' columns.
//! - [`lake`]: partitions, objects, ground truth; writing to a directory.
//! - [`s3`]: writing to the lake bucket through the AWS SDK.
//! - [`pairs`]: the (entity, IPv4) pairs a query would select, computed without SQL.
//! - [`fixture`]: small hand-made objects and notifications for the scorer's tests.
//! - [`report`]: a deployed scorer's findings held against the ground truth (with the
//!   `control-plane` feature, whose manifest and Lambda client it reads).
//!
//! # What the data follows
//!
//! - Layout: `aws/<SOURCE>/<version>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`
//!   and objects named by 32 hex digits with `.gz.parquet` (GZIP pages). Keys of this form are
//!   what a Security Lake subscriber read at general availability
//!   (<https://github.com/wazuh/wazuh/issues/17373>); the partition keys are those of the
//!   custom-source requirements
//!   (<https://docs.aws.amazon.com/security-lake/latest/userguide/custom-sources.html>). Source
//!   version 2.0 is assumed to use the same layout with `2.0`; its tables are queried by
//!   `time_dt` rather than `eventDay`, which the file's own column serves.
//! - Source versions and OCSF versions (1.0: OCSF 1.0.0-rc.2; 2.0: OCSF 1.1.0), `metadata.product`
//!   names (`Amazon VPC`/`Flowlogs`, `Route 53`/`Resolver Query Logs`) and classes (Network
//!   Activity, DNS Activity): "Open Cybersecurity Schema Framework (OCSF) in Security Lake",
//!   <https://docs.aws.amazon.com/security-lake/latest/userguide/open-cybersecurity-schema-framework.html>.
//! - Table names, the `eventDay`, `region` and `accountid` partitions of version 1 and the
//!   `time_dt` bound of version 2: "Security Lake queries for AWS source version 1 (OCSF
//!   1.0.0-rc.2)" and "... version 2 (OCSF 1.1.0)",
//!   <https://docs.aws.amazon.com/security-lake/latest/userguide/subscriber-query-examples1.html>,
//!   <https://docs.aws.amazon.com/security-lake/latest/userguide/subscriber-query-examples2.html>,
//!   and the VPC Flow Logs examples that read `src_endpoint.ip`, `src_endpoint.port` and
//!   `dst_endpoint.ip`:
//!   <https://docs.aws.amazon.com/security-lake/latest/userguide/vpc-query-examples.html>,
//!   <https://docs.aws.amazon.com/security-lake/latest/userguide/vpc-query-examples-sourceversion2.html>.
//! - Columns and nesting: the OCSF classes,
//!   <https://schema.ocsf.io/1.0.0-rc.2/classes/network_activity>,
//!   <https://schema.ocsf.io/1.1.0/classes/network_activity>,
//!   <https://schema.ocsf.io/1.1.0/classes/dns_activity>, narrowed to the attributes AWS's own
//!   mappings fill: "Event Dossier: Amazon VPC Flowlogs" and "... Amazon Route53 Resolver Query
//!   Log" for OCSF 1.1.0 in <https://github.com/ocsf/examples> (`mappings/markdown/AWS/v1.1.0/`).
//!   Those mappings put `instance_uid`, `interface_uid`, `subnet_uid` and `vpc_uid` on the
//!   endpoint of the interface that logged the flow: `src_endpoint` for egress (`Outbound`,
//!   `direction_id` 2), `dst_endpoint` for ingress (`Inbound`, 1). The generator does the same,
//!   so `src_endpoint.instance_uid` is null on inbound records.
//! - Raw fields behind them: VPC Flow Logs records
//!   (<https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html>: `-` for missing
//!   values, `NODATA`, `flow-direction`), which leave out traffic to the Amazon DNS server
//!   (<https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-limitations.html>), and Route 53
//!   Resolver query logs
//!   (<https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resolver-query-logs-format.html>).
//!
//! Not taken from a published Glue definition: the order of the columns and the width of
//! `type_uid` in version 2 tables (OCSF's `long`), and `unmapped`, written as an empty
//! `map<string,string>`.

pub mod anomaly;
pub mod calendar;
pub mod fixture;
pub mod lake;
pub mod ocsf;
pub mod pairs;
pub mod record;
#[cfg(feature = "control-plane")]
pub mod report;
pub mod s3;
pub mod traffic;
pub mod world;

pub use calendar::Day;
pub use fixture::{
    ACCOUNT, PRODUCT, REGION, Row, eventbridge_notification, s3_notification, security_lake_notification, sqs_event,
    write_flows, write_parquet,
};
pub use lake::{Lake, LakeSpec, Part};
pub use pairs::{Filter, Selection, Window, pairs};
pub use record::{Direction, OcsfVersion, Record, Source};

#[cfg(test)]
mod tests;
