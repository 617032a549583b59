//! The (entity, IPv4) pairs a query would select from generated records, computed without SQL,
//! so that end-to-end tests can compare Athena's `UNLOAD` output with what the lake holds.

use std::net::Ipv4Addr;

use super::calendar::Day;
use super::record::{Detail, Direction, Record};

/// Which columns make the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// `src_endpoint.instance_uid` and `src_endpoint.ip`, as the feature SQL and the scorer read
    /// them with `features.peer: source`. On VPC flow records the instance fields sit on the logging interface's side, so
    /// this selects outbound records and pairs each instance with its own address; on Route 53
    /// records it pairs the querying instance with its own address too.
    SourceEndpoint,
    /// The instance and the address on the other side of the flow, whichever the direction
    /// (flows of no direction give nothing); for Route 53, the querying instance and each
    /// answer. What `features.peer: remote` selects. Planted anomalies show up here.
    RemotePeer,
}

/// The time bound of a query, in the form its table's partitions allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `eventDay >= from AND eventDay < to` (source version 1).
    Days { from: Day, to: Day },
    /// `time_dt >= from AND time_dt < to`, epoch milliseconds (source version 2).
    Millis { from: i64, to: i64 },
}

/// The conditions of one `SELECT`: the same as the feature SQL's `WHERE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub selection: Selection,
    pub window: Option<Window>,
    /// `accountid IN (...)`; empty for any.
    pub accounts: Vec<String>,
    /// `region IN (...)`; empty for any.
    pub regions: Vec<String>,
}

impl Filter {
    pub fn new(selection: Selection) -> Filter {
        Filter { selection, window: None, accounts: Vec::new(), regions: Vec::new() }
    }

    fn admits(&self, r: &Record) -> bool {
        let in_window = match self.window {
            None => true,
            Some(Window::Days { from, to }) => (from..to).contains(&r.day()),
            Some(Window::Millis { from, to }) => (from..to).contains(&r.time_ms),
        };
        in_window
            && (self.accounts.is_empty() || self.accounts.contains(&r.account))
            && (self.regions.is_empty() || self.regions.contains(&r.region))
    }
}

/// Every pair the filter selects, one per selected row and in record order, as `UNION ALL`
/// without `DISTINCT` gives them.
pub fn pairs<'a>(records: impl IntoIterator<Item = &'a Record>, filter: &Filter) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in records.into_iter().filter(|r| filter.admits(r)) {
        match filter.selection {
            Selection::SourceEndpoint => push(&mut out, r.src.instance_uid.as_deref(), r.src.ip.as_deref()),
            Selection::RemotePeer => match (&r.detail, r.direction()) {
                (Detail::Flow(_), Some(Direction::Outbound)) => {
                    push(&mut out, r.src.instance_uid.as_deref(), r.dst.ip.as_deref())
                }
                (Detail::Flow(_), Some(Direction::Inbound)) => {
                    push(&mut out, r.dst.instance_uid.as_deref(), r.src.ip.as_deref())
                }
                (Detail::Dns(q), _) => {
                    for (_, rdata) in &q.answers {
                        push(&mut out, r.src.instance_uid.as_deref(), Some(rdata));
                    }
                }
                _ => {}
            },
        }
    }
    out
}

/// The feature SQL's row conditions: an entity that is neither null nor `-`, and a
/// dotted-decimal IPv4 address (`Ipv4Addr` rejects leading zeros, as the SQL's pattern does).
fn push(out: &mut Vec<(String, String)>, entity: Option<&str>, ip: Option<&str>) {
    if let (Some(entity), Some(ip)) = (entity.filter(|e| *e != "-"), ip)
        && ip.parse::<Ipv4Addr>().is_ok()
    {
        out.push((entity.to_owned(), ip.to_owned()));
    }
}
