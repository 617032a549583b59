//! One day of one network's events: the home sets of [`super::world`] played out with daily
//! variation (weekends are quieter, each instance is busier or quieter, some peers rest), a
//! small share of rarely used but normal addresses, and the noise real logs carry: IPv6 flows,
//! `NODATA` records with `-` addresses, interfaces that belong to no instance (`-` or null
//! instance ids), NXDOMAIN answers and AAAA lookups.

use super::calendar::Day;
use super::record::{Detail, Direction, Dns, Endpoint, Flow, Record};
use super::world::{Instance, Network, World, rng};

/// Traffic over a day: quiet at night, busiest in working hours (UTC).
const HOURLY: [u32; 24] = [2, 2, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 10, 9, 8, 6, 5, 4, 3, 3, 2];

/// How much of a day's volume a day carries: weekends are quieter, and no two days are equal.
fn day_factor(rng: &mut fastrand::Rng, day: Day) -> f64 {
    let weekend = if day.weekday() >= 5 { 0.6 } else { 1.0 };
    weekend * (0.85 + 0.3 * rng.f64())
}

fn time_in(rng: &mut fastrand::Rng, day: Day) -> i64 {
    let total: u32 = HOURLY.iter().sum();
    let mut pick = rng.u32(..total);
    let hour = HOURLY.iter().position(|w| {
        if pick < *w {
            true
        } else {
            pick -= w;
            false
        }
    });
    day.start_ms() + hour.unwrap_or(12) as i64 * 3_600_000 + rng.i64(0..3_600_000)
}

/// Picks an index with probability proportional to its weight.
fn weighted(rng: &mut fastrand::Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.u32(..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

/// Today's activity: each instance's weight, and the peers it uses today.
struct Today {
    weights: Vec<u32>,
    peers: Vec<Vec<usize>>,
}

impl Today {
    fn new(rng: &mut fastrand::Rng, net: &Network) -> Today {
        let weights = net.instances.iter().map(|x| (x.weight * rng.u32(5..=15)).max(1)).collect();
        let peers = net
            .instances
            .iter()
            .map(|x| {
                let mut on: Vec<usize> = (0..x.peers.len()).filter(|_| rng.u32(..10) < 9).collect();
                if on.is_empty() && !x.peers.is_empty() {
                    on.push(rng.usize(..x.peers.len()));
                }
                on
            })
            .collect();
        Today { weights, peers }
    }
}

/// About `volume` VPC flow records of one network for one day, sorted by time.
pub fn flows(world: &World, net: &Network, seed: u64, day: Day, volume: usize) -> Vec<Record> {
    let mut rng = rng(seed, &["flows", &net.account, &net.region, &day.to_string()]);
    let target = (volume as f64 * day_factor(&mut rng, day)) as usize;
    let today = Today::new(&mut rng, net);
    let mut out = Vec::with_capacity(target + 8);
    while out.len() < target {
        let i = weighted(&mut rng, &today.weights);
        let x = &net.instances[i];
        let at = time_in(&mut rng, day);
        let c = Conn { world, net, at };
        match rng.u32(..1000) {
            0..3 => out.push(c.no_data(x)),
            3..13 => {
                let remote = format!("2606:4700:{:x}::{:x}", rng.u16(..64), rng.u16(1..512));
                c.connect(&mut rng, &mut out, x, Side::V6(&remote), 443, 6, true);
            }
            13..33 => {
                // Rare but normal: a heavy tail over addresses every instance may use now and then.
                let k = (rng.f64().powi(3) * world.rare.len() as f64) as usize;
                c.connect(&mut rng, &mut out, x, Side::Remote(&world.rare[k]), 443, 6, true);
            }
            33..43 => out.extend(c.unowned(&mut rng, x)),
            _ => {
                let Some(&p) = rng.choice(&today.peers[i]) else { continue };
                let peer = &x.peers[p];
                let side = match peer.instance {
                    Some(j) => Side::Instance(&net.instances[j]),
                    None => Side::Remote(&peer.ip),
                };
                c.connect(&mut rng, &mut out, x, side, peer.port, peer.protocol, peer.outbound);
            }
        }
    }
    out.sort_by_key(|r| r.time_ms);
    out
}

/// The other end of a connection.
#[derive(Clone, Copy)]
pub enum Side<'a> {
    /// An address outside the network.
    Remote(&'a str),
    /// Another instance of the network, whose interface logs the flow as well.
    Instance(&'a Instance),
    /// An IPv6 address outside the network, reached over the instance's IPv6 address.
    V6(&'a str),
}

/// Builds the flow records of connections at one time in one network.
pub struct Conn<'a> {
    pub world: &'a World,
    pub net: &'a Network,
    pub at: i64,
}

impl Conn<'_> {
    /// The records one connection leaves: a request and a response on the instance's interface,
    /// and the same two on the peer's interface when the peer is an instance too.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &self,
        rng: &mut fastrand::Rng,
        out: &mut Vec<Record>,
        x: &Instance,
        other: Side<'_>,
        port: i32,
        protocol: i32,
        outbound: bool,
    ) {
        let ephemeral = rng.i32(32_768..61_000);
        let (mine, theirs) = if outbound { (ephemeral, port) } else { (port, ephemeral) };
        let (ip, remote_ip) = match other {
            Side::Remote(ip) => (x.ip.as_str(), ip),
            Side::Instance(peer) => (x.ip.as_str(), peer.ip.as_str()),
            Side::V6(ip) => (x.ipv6.as_str(), ip),
        };
        let packets = rng.i64(1..40);
        let request_bytes = packets * rng.i64(60..900);
        let response_bytes = packets * rng.i64(200..1_500);
        let (out_bytes, in_bytes) =
            if outbound { (request_bytes, response_bytes) } else { (response_bytes, request_bytes) };
        let duration = rng.i64(1_000..60_000);
        let flow = |direction, bytes: i64| Flow {
            direction,
            protocol_num: protocol,
            tcp_flags: (protocol == 6).then_some(if direction == Direction::Outbound { 19 } else { 18 }),
            bytes,
            packets: bytes / 700 + 1,
            accepted: true,
            status: "OK",
        };
        let here = self.endpoint(x, ip, mine);
        let there = Endpoint::remote(remote_ip, theirs);
        out.push(self.record(x, here.clone(), there.clone(), flow(Direction::Outbound, out_bytes), duration));
        out.push(self.record(x, there, here, flow(Direction::Inbound, in_bytes), duration));
        if let Side::Instance(peer) = other {
            let seen = self.endpoint(peer, remote_ip, theirs);
            let caller = Endpoint::remote(ip, mine);
            out.push(self.record(peer, caller.clone(), seen.clone(), flow(Direction::Inbound, out_bytes), duration));
            out.push(self.record(peer, seen, caller, flow(Direction::Outbound, in_bytes), duration));
        }
    }

    /// The logging interface's side: the instance fields go with it, as Security Lake maps
    /// `instance-id`, `interface-id`, `subnet-id` and `vpc-id` to the endpoint of the interface.
    fn endpoint(&self, x: &Instance, ip: &str, port: i32) -> Endpoint {
        Endpoint {
            ip: Some(ip.to_owned()),
            port: Some(port),
            instance_uid: Some(x.uid.clone()),
            interface_uid: Some(x.interface_uid.clone()),
            subnet_uid: Some(self.net.subnets[x.subnet].uid.clone()),
            vpc_uid: Some(self.net.vpc_uid.clone()),
            svc_name: None,
        }
    }

    fn record(&self, x: &Instance, src: Endpoint, dst: Endpoint, flow: Flow, duration: i64) -> Record {
        Record {
            time_ms: self.at,
            duration_ms: duration,
            account: self.net.account.clone(),
            region: self.net.region.clone(),
            zone: x.zone.clone(),
            src,
            dst,
            detail: Detail::Flow(flow),
        }
    }

    /// A `NODATA` record: the interface saw nothing in the interval, so no addresses or ports.
    fn no_data(&self, x: &Instance) -> Record {
        let blank = Endpoint { ip: Some("-".into()), ..Endpoint::default() };
        let mut own = blank.clone();
        own.interface_uid = Some(x.interface_uid.clone());
        let flow = Flow {
            direction: Direction::Unknown,
            protocol_num: 0,
            tcp_flags: None,
            bytes: 0,
            packets: 0,
            accepted: true,
            status: "NODATA",
        };
        self.record(x, own, blank, flow, 60_000)
    }

    /// Traffic of an interface that belongs to no instance (a NAT gateway's, a Lambda
    /// function's): `-` or no instance id at all.
    fn unowned(&self, rng: &mut fastrand::Rng, x: &Instance) -> Vec<Record> {
        let mut records = Vec::new();
        let service = &self.world.services[rng.usize(..self.world.services.len())];
        let remote = &service.ips[0];
        self.connect(rng, &mut records, x, Side::Remote(remote), 443, 6, true);
        let dash = rng.bool();
        let interface = format!("eni-0{:016x}", rng.u64(..));
        let ip = format!("{}.{}", self.net.subnets[3].prefix, 200 + rng.u8(..50));
        for r in &mut records {
            for e in [&mut r.src, &mut r.dst] {
                if e.instance_uid.is_some() {
                    e.instance_uid = dash.then(|| "-".to_owned());
                    e.interface_uid = Some(interface.clone());
                    e.ip = Some(ip.clone());
                }
            }
        }
        records
    }
}

/// About `volume` Route 53 Resolver queries of one network for one day, sorted by time.
pub fn queries(world: &World, net: &Network, seed: u64, day: Day, volume: usize) -> Vec<Record> {
    let mut rng = rng(seed, &["queries", &net.account, &net.region, &day.to_string()]);
    let target = (volume as f64 * day_factor(&mut rng, day)) as usize;
    let today = Today::new(&mut rng, net);
    let mut out = Vec::with_capacity(target);
    while out.len() < target {
        let x = &net.instances[weighted(&mut rng, &today.weights)];
        let Some(name) = rng.choice(&x.lookups) else { continue };
        let mut query = Dns {
            hostname: name.clone(),
            query_type: "A",
            rcode: "NOERROR",
            transport: "UDP",
            answers: answers(world, x, name).into_iter().map(|ip| ("A", ip)).collect(),
        };
        let mut src = Endpoint {
            ip: Some(x.ip.clone()),
            port: Some(rng.i32(1_024..65_535)),
            instance_uid: Some(x.uid.clone()),
            vpc_uid: Some(net.vpc_uid.clone()),
            ..Endpoint::default()
        };
        match rng.u32(..1000) {
            0..20 => {
                query.hostname = format!("wpad.{}.compute.internal.", net.region);
                query.rcode = "NXDOMAIN";
                query.answers.clear();
            }
            20..70 => {
                query.query_type = "AAAA";
                query.answers = vec![("AAAA", format!("2606:4700:{:x}::{:x}", rng.u16(..64), rng.u16(1..512)))];
            }
            70..75 => {
                // A Lambda function's interface in the VPC: no instance behind it.
                src.instance_uid = None;
                src.ip = Some(format!("{}.{}", net.subnets[3].prefix, 200 + rng.u8(..50)));
            }
            75..78 => query.transport = "TCP",
            _ => {}
        }
        out.push(Record {
            time_ms: time_in(&mut rng, day),
            duration_ms: 0,
            account: net.account.clone(),
            region: net.region.clone(),
            zone: x.zone.clone(),
            src,
            dst: Endpoint::default(),
            detail: Detail::Dns(query),
        });
    }
    out.sort_by_key(|r| r.time_ms);
    out
}

/// What a name resolves to: a service's addresses, the instance's own name, or for AWS
/// endpoints a fixed pick among the public addresses.
fn answers(world: &World, x: &Instance, name: &str) -> Vec<String> {
    if let Some(service) = world.service(name) {
        return service.ips.clone();
    }
    if name.ends_with(".compute.internal.") {
        return vec![x.ip.clone()];
    }
    let h = name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
    vec![world.rare[h % world.rare.len()].clone()]
}
