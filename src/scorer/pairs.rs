//! (entity, IPv4) pairs, deduplicated with their counts and first and last sighting, so that each
//! distinct pair is scored once however often it occurs in a batch.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Longest entity the scorer sends. Longer ones are not instance ids and would only inflate
/// payloads.
pub const MAX_ENTITY_BYTES: usize = 512;

/// How often and when a pair was seen, and in which objects of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sightings {
    pub count: u64,
    /// Epoch milliseconds, when the rows carry a time.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Indices of the objects the pair came from, first one first, without repeats.
    pub sources: Vec<u32>,
}

impl Sightings {
    fn new(time_ms: Option<i64>, source: u32) -> Self {
        Sightings { count: 1, first_ms: time_ms, last_ms: time_ms, sources: vec![source] }
    }

    fn see(&mut self, time_ms: Option<i64>, source: u32) {
        self.count += 1;
        if let Some(t) = time_ms {
            self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
            self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        }
        if !self.sources.contains(&source) {
            self.sources.push(source);
        }
    }

    fn absorb(&mut self, other: Sightings) {
        self.count += other.count;
        for t in [other.first_ms, other.last_ms].into_iter().flatten() {
            self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
            self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        }
        for s in other.sources {
            if !self.sources.contains(&s) {
                self.sources.push(s);
            }
        }
    }
}

/// Why rows were left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// Entity or IP null, empty or `-`.
    pub missing: u64,
    /// An IP that is not dotted-decimal IPv4: IPv6 above all.
    pub not_ipv4: u64,
    /// An entity the CSV payload cannot carry: a comma, quote or line break, or too long.
    pub unscorable_entity: u64,
    /// Remote pairing only: a flow neither inbound nor outbound, or a DNS query without an answer.
    pub no_remote: u64,
}

impl Rejected {
    fn add(&mut self, other: Rejected) {
        self.missing += other.missing;
        self.not_ipv4 += other.not_ipv4;
        self.unscorable_entity += other.unscorable_entity;
        self.no_remote += other.no_remote;
    }
}

/// One distinct pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub entity: String,
    pub ip: Ipv4Addr,
    pub seen: Sightings,
}

/// The distinct pairs of a batch. Keyed by entity first, so a row costs one string hash and no
/// allocation unless the pair is new.
#[derive(Debug, Default)]
pub struct PairTable {
    by_entity: HashMap<Box<str>, HashMap<Ipv4Addr, Sightings>>,
    rows: u64,
    rejected: Rejected,
}

impl PairTable {
    /// Counts one row. Returns whether it was a scorable pair.
    pub fn observe(&mut self, entity: Option<&str>, ip: Option<&str>, time_ms: Option<i64>, source: u32) -> bool {
        self.rows += 1;
        let (Some(entity), Some(ip)) = (present(entity), present(ip)) else {
            self.rejected.missing += 1;
            return false;
        };
        let Ok(ip) = ip.parse::<Ipv4Addr>() else {
            self.rejected.not_ipv4 += 1;
            return false;
        };
        let ips = match self.by_entity.get_mut(entity) {
            Some(ips) => ips,
            // Only a new entity is checked: one already in the table passed.
            None if entity.len() > MAX_ENTITY_BYTES || entity.contains([',', '"', '\n', '\r']) => {
                self.rejected.unscorable_entity += 1;
                return false;
            }
            None => self.by_entity.entry(entity.into()).or_default(),
        };
        match ips.get_mut(&ip) {
            Some(seen) => seen.see(time_ms, source),
            None => {
                ips.insert(ip, Sightings::new(time_ms, source));
            }
        }
        true
    }

    /// Counts a row that has no remote end to pair with.
    pub fn no_remote(&mut self) {
        self.rows += 1;
        self.rejected.no_remote += 1;
    }

    /// Folds another table, for example one object's, into this one.
    pub fn merge(&mut self, other: PairTable) {
        self.rows += other.rows;
        self.rejected.add(other.rejected);
        for (entity, ips) in other.by_entity {
            let mine = self.by_entity.entry(entity).or_default();
            for (ip, seen) in ips {
                match mine.get_mut(&ip) {
                    Some(existing) => existing.absorb(seen),
                    None => {
                        mine.insert(ip, seen);
                    }
                }
            }
        }
    }

    /// Rows observed, scorable or not. Under remote pairing a DNS query counts once per answer.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn rejected(&self) -> Rejected {
        self.rejected
    }

    pub fn distinct(&self) -> usize {
        self.by_entity.values().map(HashMap::len).sum()
    }

    /// The distinct pairs in a stable order (entity, then address).
    pub fn into_pairs(self) -> Vec<Pair> {
        let mut pairs: Vec<Pair> = self
            .by_entity
            .into_iter()
            .flat_map(|(entity, ips)| {
                let entity = String::from(entity);
                ips.into_iter().map(move |(ip, seen)| Pair { entity: entity.clone(), ip, seen })
            })
            .collect();
        pairs.sort_unstable_by(|a, b| a.entity.cmp(&b.entity).then(a.ip.cmp(&b.ip)));
        pairs
    }
}

/// OCSF writes `-` where a value is unknown.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty() && *v != "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_counted_once_with_their_time_span_and_sources() {
        let mut t = PairTable::default();
        assert!(t.observe(Some("i-1"), Some("10.0.0.1"), Some(300), 0));
        assert!(t.observe(Some("i-1"), Some("10.0.0.1"), Some(100), 0));
        assert!(t.observe(Some("i-1"), Some("10.0.0.1"), None, 2));
        assert!(t.observe(Some("i-1"), Some("10.0.0.2"), Some(200), 1));
        assert_eq!(t.distinct(), 2);
        let pairs = t.into_pairs();
        assert_eq!(pairs[0].ip, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(pairs[0].seen, Sightings { count: 3, first_ms: Some(100), last_ms: Some(300), sources: vec![0, 2] });
        assert_eq!(pairs[1].seen.count, 1);
    }

    #[test]
    fn nulls_dashes_ipv6_and_unsendable_entities_are_rejected_and_counted() {
        let mut t = PairTable::default();
        assert!(!t.observe(None, Some("10.0.0.1"), None, 0));
        assert!(!t.observe(Some("i-1"), None, None, 0));
        assert!(!t.observe(Some("-"), Some("10.0.0.1"), None, 0));
        assert!(!t.observe(Some("i-1"), Some("-"), None, 0));
        assert!(!t.observe(Some("i-1"), Some("2001:db8::1"), None, 0));
        assert!(!t.observe(Some("i-1"), Some("10.0.0.256"), None, 0));
        assert!(!t.observe(Some("a,b"), Some("10.0.0.1"), None, 0));
        assert!(!t.observe(Some(&"x".repeat(MAX_ENTITY_BYTES + 1)), Some("10.0.0.1"), None, 0));
        assert_eq!(t.rows(), 8);
        t.no_remote();
        assert_eq!(t.rows(), 9);
        assert_eq!(t.rejected(), Rejected { missing: 4, not_ipv4: 2, unscorable_entity: 2, no_remote: 1 });
        assert_eq!(t.distinct(), 0);
    }

    #[test]
    fn merging_tables_sums_counts_and_widens_the_span() {
        let mut a = PairTable::default();
        a.observe(Some("i-1"), Some("10.0.0.1"), Some(50), 0);
        a.observe(Some("i-2"), Some("-"), None, 0);
        let mut b = PairTable::default();
        b.observe(Some("i-1"), Some("10.0.0.1"), Some(900), 1);
        b.observe(Some("i-3"), Some("10.0.0.3"), None, 1);
        a.merge(b);
        assert_eq!(a.rows(), 4);
        assert_eq!(a.rejected().missing, 1);
        let pairs = a.into_pairs();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].seen, Sightings { count: 2, first_ms: Some(50), last_ms: Some(900), sources: vec![0, 1] });
        assert_eq!(pairs[1].entity, "i-3");
    }
}
