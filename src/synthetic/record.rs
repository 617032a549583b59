//! One lake event before it becomes a Parquet row: a VPC flow record or a Route 53 Resolver
//! query, with the endpoints the way Security Lake's OCSF mapping places them. Tests compute
//! what a query should select from these, so they are the generator's ground truth for data.

use super::calendar::Day;

/// The two natively supported sources the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Source {
    #[serde(rename = "VPC_FLOW")]
    VpcFlow,
    #[serde(rename = "ROUTE53")]
    Route53,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::VpcFlow, Source::Route53];

    /// The name in the lake's prefixes and in the Security Lake API.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::VpcFlow => "VPC_FLOW",
            Source::Route53 => "ROUTE53",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// The source version, which fixes the OCSF version of every object under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OcsfVersion {
    /// Source version 1.0: OCSF 1.0.0-rc.2. `cloud.account_uid`; no `time_dt`.
    V1,
    /// Source version 2.0: OCSF 1.1.0. `cloud.account.uid`; `time_dt` and the other
    /// `*_dt` timestamps of the datetime profile; `observables`.
    V2,
}

impl OcsfVersion {
    pub const ALL: [OcsfVersion; 2] = [OcsfVersion::V1, OcsfVersion::V2];

    /// The source version in prefixes and table names: `1.0`, `2.0`.
    pub fn source_version(self) -> &'static str {
        match self {
            OcsfVersion::V1 => "1.0",
            OcsfVersion::V2 => "2.0",
        }
    }

    /// `metadata.version`.
    pub fn ocsf(self) -> &'static str {
        match self {
            OcsfVersion::V1 => "1.0.0-rc.2",
            OcsfVersion::V2 => "1.1.0",
        }
    }

    pub fn parse(text: &str) -> Option<OcsfVersion> {
        OcsfVersion::ALL.into_iter().find(|v| v.source_version() == text || v.source_version() == format!("{text}.0"))
    }
}

/// `connection_info.direction` relative to the interface that logged the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// VPC `flow-direction` ingress: the instance is `dst_endpoint`.
    Inbound,
    /// VPC `flow-direction` egress: the instance is `src_endpoint`.
    Outbound,
    /// No direction: `NODATA` and `SKIPDATA` records.
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
            Direction::Unknown => "Unknown",
        }
    }

    /// OCSF `direction_id`: 0 unknown, 1 inbound, 2 outbound.
    pub fn id(self) -> i32 {
        match self {
            Direction::Unknown => 0,
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        }
    }
}

/// An OCSF network endpoint; unset fields are nulls in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Option<String>,
    pub port: Option<i32>,
    pub instance_uid: Option<String>,
    pub interface_uid: Option<String>,
    pub subnet_uid: Option<String>,
    pub vpc_uid: Option<String>,
    pub svc_name: Option<String>,
}

impl Endpoint {
    pub fn remote(ip: &str, port: i32) -> Endpoint {
        Endpoint { ip: Some(ip.to_owned()), port: Some(port), ..Endpoint::default() }
    }
}

/// The VPC flow fields beyond the endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub direction: Direction,
    pub protocol_num: i32,
    pub tcp_flags: Option<i32>,
    pub bytes: i64,
    pub packets: i64,
    pub accepted: bool,
    /// `status_code`: the flow log's `log-status` (`OK`, `NODATA`, `SKIPDATA`).
    pub status: &'static str,
}

/// The Route 53 Resolver query fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    pub hostname: String,
    pub query_type: &'static str,
    pub rcode: &'static str,
    pub transport: &'static str,
    /// `(type, rdata)` of each answer.
    pub answers: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Flow(Flow),
    Dns(Dns),
}

/// One event of one account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `time`: epoch milliseconds; also `time_dt` in version 2.
    pub time_ms: i64,
    /// The flow's aggregation interval or the query's duration.
    pub duration_ms: i64,
    pub account: String,
    pub region: String,
    pub zone: String,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub detail: Detail,
}

impl Record {
    pub fn source(&self) -> Source {
        match self.detail {
            Detail::Flow(_) => Source::VpcFlow,
            Detail::Dns(_) => Source::Route53,
        }
    }

    pub fn day(&self) -> Day {
        Day::of_ms(self.time_ms)
    }

    pub fn direction(&self) -> Option<Direction> {
        match &self.detail {
            Detail::Flow(f) => Some(f.direction),
            Detail::Dns(_) => None,
        }
    }
}

/// Where Security Lake keeps one source's objects for an account, region and day:
/// `aws/<SOURCE>/<version>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/`.
pub fn partition_prefix(source: Source, version: OcsfVersion, region: &str, account: &str, day: Day) -> String {
    format!("aws/{}/{}/region={region}/accountId={account}/eventDay={day}/", source.as_str(), version.source_version())
}

/// The name Security Lake gives its objects: 32 hex digits and `.gz.parquet`.
pub fn object_name(id: u128) -> String {
    format!("{id:032x}.gz.parquet")
}
