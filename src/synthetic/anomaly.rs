//! Planted anomalies: on the last day only, an instance is reached from an address it has never
//! seen, either one that appears nowhere in the lake or one in another tenant's subnet. They are
//! planned from the seed alone, so the history and the last day can be written separately and
//! still agree, and they are reported in a ground-truth file that never goes into the lake.

use std::collections::BTreeSet;

use super::calendar::{Day, rfc3339_ms};
use super::record::Record;
use super::traffic::{Conn, Side};
use super::world::{World, public_ip, rng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A public address that no record of the lake has ever carried.
    UnseenAddress,
    /// An address in a subnet of another account (or, with one account, of a neighbouring
    /// tenant whose own logs are not in the lake).
    OtherTenantSubnet,
}

/// One planted anomaly: who was reached, from where, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    pub kind: Kind,
    pub account: String,
    pub region: String,
    /// The instance reached: the entity of the pair a detector should flag.
    pub entity: String,
    pub entity_ip: String,
    /// The stranger's address.
    pub remote_ip: String,
    /// The account whose subnet the stranger is in, for [`Kind::OtherTenantSubnet`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    pub port: i32,
    pub connections: usize,
    pub first_ms: i64,
}

impl Anomaly {
    pub fn first_seen(&self) -> String {
        rfc3339_ms(self.first_ms)
    }
}

/// `count` anomalies spread over the networks, alternating the two kinds.
pub fn plan(world: &World, seed: u64, last_day: Day, count: usize) -> Vec<Anomaly> {
    let mut rng = rng(seed, &["anomalies", &last_day.to_string()]);
    let mut taken: BTreeSet<String> = world.public.clone();
    let mut victims = BTreeSet::new();
    let mut planned = Vec::new();
    for k in 0..count {
        let net = &world.networks[k % world.networks.len()];
        let Some(x) =
            (0..32).map(|_| &net.instances[rng.usize(..net.instances.len())]).find(|x| victims.insert(&x.uid))
        else {
            continue;
        };
        let others: Vec<_> = world.networks.iter().filter(|n| n.account != net.account).collect();
        let (kind, remote_ip, remote_account) = if k % 2 == 0 {
            (Kind::UnseenAddress, public_ip(&mut rng, &mut taken), None)
        } else if let Some(other) = rng.choice(&others) {
            let neighbour = &other.instances[rng.usize(..other.instances.len())];
            (Kind::OtherTenantSubnet, neighbour.ip.clone(), Some(other.account.clone()))
        } else {
            let ip = format!("172.{}.{}.{}", 20 + rng.u8(..8), 16 * rng.u8(..4) + 1, rng.u8(10..250));
            (Kind::OtherTenantSubnet, ip, Some("neighbour".to_owned()))
        };
        planned.push(Anomaly {
            kind,
            account: net.account.clone(),
            region: net.region.clone(),
            entity: x.uid.clone(),
            entity_ip: x.ip.clone(),
            remote_ip,
            remote_account,
            port: *rng.choice(&[22, 3389, 5432, 445, 6379]).unwrap_or(&22),
            connections: rng.usize(3..=6),
            first_ms: last_day.start_ms() + rng.i64(2 * 3_600_000..20 * 3_600_000),
        });
    }
    planned
}

/// The flow records an anomaly leaves on the reached instance's interface: inbound requests
/// from the stranger and the instance's answers, accepted, within an hour.
pub fn records(world: &World, seed: u64, anomaly: &Anomaly) -> Vec<Record> {
    let mut out = Vec::new();
    let Some(net) = world.network(&anomaly.account, &anomaly.region) else { return out };
    let Some(x) = net.instances.iter().find(|x| x.uid == anomaly.entity) else { return out };
    let mut rng = rng(seed, &["anomaly", &anomaly.entity, &anomaly.remote_ip]);
    for c in 0..anomaly.connections {
        let at = anomaly.first_ms + c as i64 * rng.i64(60_000..600_000);
        let conn = Conn { world, net, at };
        conn.connect(&mut rng, &mut out, x, Side::Remote(&anomaly.remote_ip), anomaly.port, 6, false);
    }
    out
}
