//! The behaviour model: who talks to whom. Every account and region is a tenant network with a
//! VPC, subnets and instances, and every instance has a home set of addresses that it talks to
//! day after day: its subnet neighbours, the other tiers of its application, its DNS resolvers
//! and the public services it uses. A detector that learns these home sets can tell a planted
//! stranger from the daily variation around them.

use std::collections::BTreeSet;

/// A deterministic generator for one purpose, derived from the seed and a few labels, so that
/// any day of any partition can be generated alone and still come out the same.
pub fn rng(seed: u64, labels: &[&str]) -> fastrand::Rng {
    let mut state = seed ^ 0x6c61_6b65_7369_6768;
    for label in labels {
        // FNV-1a over the label, then SplitMix64 to mix it into the state.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        state = splitmix(state ^ h);
    }
    fastrand::Rng::with_seed(state)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What an instance does, which decides its peers and how busy it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reached from the load balancer's nodes; calls the application tier.
    Web,
    /// Reached from the web tier; calls the database tier and public APIs.
    App,
    /// Reached from the application tier only.
    Db,
    /// Calls public services on a schedule.
    Batch,
}

/// One address an instance talks to, and who opens the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub ip: String,
    pub port: i32,
    pub protocol: i32,
    /// The instance opens the connection (outbound) or the peer does (inbound).
    pub outbound: bool,
    pub weight: u32,
    /// The peer is another instance of the same network, whose interface logs the flow too.
    pub instance: Option<usize>,
    /// The name the instance resolves to reach a public peer.
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub uid: String,
    pub interface_uid: String,
    pub subnet: usize,
    pub ip: String,
    pub ipv6: String,
    pub zone: String,
    pub role: Role,
    /// How busy it is relative to the others.
    pub weight: u32,
    pub peers: Vec<Peer>,
    /// The names it looks up besides its public peers'.
    pub lookups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub uid: String,
    /// `10.<b>.<c>.0/24`: the first three octets.
    pub prefix: String,
}

/// One account's VPC in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub account: String,
    pub region: String,
    pub vpc_uid: String,
    pub subnets: Vec<Subnet>,
    pub instances: Vec<Instance>,
    /// The load balancer nodes that reach the web tier.
    pub balancers: Vec<String>,
}

/// A public service: a name and the addresses it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub hostname: String,
    pub ips: Vec<String>,
}

/// Every network, and the public internet they share.
#[derive(Debug, Clone)]
pub struct World {
    pub networks: Vec<Network>,
    /// Popular public services: each instance uses a few.
    pub services: Vec<Service>,
    /// Rarely used public addresses: update mirrors, partner endpoints. Normal, but seldom seen.
    pub rare: Vec<String>,
    /// Every public address the normal model can produce, so that a planted stranger is new.
    pub public: BTreeSet<String>,
}

/// Well-known names that the popular services take before generated ones.
const KNOWN: [&str; 16] = [
    "sts.amazonaws.com.",
    "api.github.com.",
    "registry.npmjs.org.",
    "pypi.org.",
    "files.pythonhosted.org.",
    "index.docker.io.",
    "api.stripe.com.",
    "hooks.slack.com.",
    "login.microsoftonline.com.",
    "api.datadoghq.com.",
    "sentry.io.",
    "repo.maven.apache.org.",
    "crates.io.",
    "static.crates.io.",
    "time.cloudflare.com.",
    "api.segment.io.",
];

impl World {
    pub fn new(seed: u64, accounts: &[String], regions: &[String], instances: usize) -> World {
        let mut net = rng(seed, &["internet"]);
        let mut public = BTreeSet::new();
        let mut services = Vec::new();
        for k in 0..64 {
            let hostname = match KNOWN.get(k) {
                Some(name) => (*name).to_owned(),
                None => format!("api{}.{}.example.com.", k, ["svc", "cdn", "edge", "data"][k % 4]),
            };
            let ips: Vec<String> = (0..net.usize(1..=3)).map(|_| public_ip(&mut net, &mut public)).collect();
            services.push(Service { hostname, ips });
        }
        let rare = (0..600).map(|_| public_ip(&mut net, &mut public)).collect();
        let mut networks = Vec::new();
        for (a, account) in accounts.iter().enumerate() {
            for (r, region) in regions.iter().enumerate() {
                let mut rng = rng(seed, &["network", account, region]);
                networks.push(Network::new(&mut rng, account, region, (a * 8 + r) % 200 + 10, instances, &services));
            }
        }
        World { networks, services, rare, public }
    }

    pub fn network(&self, account: &str, region: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.account == account && n.region == region)
    }

    pub fn service(&self, hostname: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.hostname == hostname)
    }
}

impl Network {
    fn new(
        rng: &mut fastrand::Rng,
        account: &str,
        region: &str,
        octet: usize,
        count: usize,
        services: &[Service],
    ) -> Network {
        let zones: Vec<String> = (1..=3).map(|z| format!("{}-az{z}", zone_prefix(region))).collect();
        let subnets: Vec<Subnet> =
            (0..4).map(|s| Subnet { uid: uid(rng, "subnet"), prefix: format!("10.{octet}.{}", 16 * s + 1) }).collect();
        let balancers: Vec<String> = (0..4).map(|k| format!("10.{octet}.200.{}", 10 + k * 7)).collect();
        let mut instances: Vec<Instance> = (0..count.max(4))
            .map(|i| {
                let role = match i % 10 {
                    0..=2 => Role::Web,
                    3..=5 => Role::App,
                    6 => Role::Db,
                    _ => Role::Batch,
                };
                let subnet = match role {
                    Role::Web => 0,
                    Role::App => 1,
                    Role::Db => 2,
                    Role::Batch => 3,
                };
                Instance {
                    uid: uid(rng, "i"),
                    interface_uid: uid(rng, "eni"),
                    subnet,
                    ip: format!("{}.{}", subnets[subnet].prefix, 10 + i),
                    ipv6: format!("2600:1f18:{:x}:{:x}00::{:x}", 0x4000 + octet, subnet + 1, 0x100 + i),
                    zone: zones[subnet % zones.len()].clone(),
                    role,
                    weight: rng.u32(1..=10) * if role == Role::Web { 3 } else { 1 },
                    peers: Vec::new(),
                    lookups: Vec::new(),
                }
            })
            .collect();
        let of = |instances: &[Instance], role: Role| -> Vec<usize> {
            instances.iter().enumerate().filter(|(_, x)| x.role == role).map(|(i, _)| i).collect()
        };
        let (app, db) = (of(&instances, Role::App), of(&instances, Role::Db));
        // Some instances use the directory's DNS servers instead of the VPC resolver, whose
        // traffic VPC flow logs do not record.
        let resolvers = [format!("{}.5", subnets[1].prefix), format!("{}.6", subnets[1].prefix)];
        for i in 0..instances.len() {
            let mut peers = Vec::new();
            let tier = |rng: &mut fastrand::Rng, from: &[usize], k: usize| -> Vec<usize> {
                let mut picked: Vec<usize> = from.iter().copied().filter(|&j| j != i).collect();
                rng.shuffle(&mut picked);
                picked.truncate(k);
                picked
            };
            let role = instances[i].role;
            match role {
                Role::Web => {
                    for b in &balancers {
                        peers.push(Peer::inbound(b, 443, 6, 6));
                    }
                    for j in tier(rng, &app, 2) {
                        peers.push(Peer::to_instance(&instances[j], j, 8080, 4));
                    }
                }
                Role::App => {
                    for j in tier(rng, &db, 2) {
                        peers.push(Peer::to_instance(&instances[j], j, 5432, 3));
                    }
                }
                Role::Db | Role::Batch => {}
            }
            if matches!(role, Role::App | Role::Batch) {
                let mut picked: Vec<&Service> = services.iter().collect();
                rng.shuffle(&mut picked);
                for s in picked.into_iter().take(rng.usize(2..=5)) {
                    for ip in &s.ips {
                        let mut peer = Peer::outbound(ip, 443, 6, rng.u32(1..=4));
                        peer.hostname = Some(s.hostname.clone());
                        peers.push(peer);
                    }
                }
            }
            // Subnet neighbours: health checks and cluster gossip.
            let neighbours: Vec<usize> = (0..instances.len())
                .filter(|&j| j != i && instances[j].subnet == instances[i].subnet)
                .take(2)
                .collect();
            for j in neighbours {
                peers.push(Peer::to_instance(&instances[j], j, 7946, 1));
            }
            if rng.u32(..10) < 3 {
                for r in &resolvers {
                    peers.push(Peer::outbound(r, 53, 17, 2));
                }
            }
            let mut lookups = vec![
                format!("ec2.{region}.amazonaws.com."),
                format!("s3.{region}.amazonaws.com."),
                format!("ip-{}.{region}.compute.internal.", instances[i].ip.replace('.', "-")),
            ];
            lookups.extend(peers.iter().filter_map(|p| p.hostname.clone()));
            lookups.dedup();
            instances[i].peers = peers;
            instances[i].lookups = lookups;
        }
        // Inbound halves of the east-west peers: the callee sees its callers as inbound peers.
        let mut callers: Vec<(usize, Peer)> = Vec::new();
        for (i, x) in instances.iter().enumerate() {
            for p in x.peers.iter().filter(|p| p.outbound) {
                if let Some(j) = p.instance {
                    let mut back = Peer::inbound(&x.ip, p.port, p.protocol, p.weight);
                    back.instance = Some(i);
                    callers.push((j, back));
                }
            }
        }
        for (j, peer) in callers {
            if !instances[j].peers.iter().any(|p| p.ip == peer.ip && p.port == peer.port) {
                instances[j].peers.push(peer);
            }
        }
        Network {
            account: account.to_owned(),
            region: region.to_owned(),
            vpc_uid: uid(rng, "vpc"),
            subnets,
            instances,
            balancers,
        }
    }
}

impl Peer {
    fn inbound(ip: &str, port: i32, protocol: i32, weight: u32) -> Peer {
        Peer { ip: ip.to_owned(), port, protocol, outbound: false, weight, instance: None, hostname: None }
    }

    fn outbound(ip: &str, port: i32, protocol: i32, weight: u32) -> Peer {
        Peer { outbound: true, ..Peer::inbound(ip, port, protocol, weight) }
    }

    fn to_instance(to: &Instance, index: usize, port: i32, weight: u32) -> Peer {
        Peer { instance: Some(index), ..Peer::outbound(&to.ip, port, 6, weight) }
    }
}

/// `use1` for `us-east-1`, as availability zone ids begin.
fn zone_prefix(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [area, direction, n] => format!("{area}{}{n}", direction.chars().next().unwrap_or('x')),
        _ => region.replace('-', ""),
    }
}

/// An AWS resource id: `i-`, `eni-`, `subnet-` or `vpc-` and 17 hex digits.
fn uid(rng: &mut fastrand::Rng, kind: &str) -> String {
    format!("{kind}-0{:016x}", rng.u64(..))
}

/// A routable public IPv4 address the model has not handed out yet.
pub fn public_ip(rng: &mut fastrand::Rng, taken: &mut BTreeSet<String>) -> String {
    loop {
        let a = rng.u8(1..224);
        if matches!(a, 10 | 100 | 127 | 169 | 172 | 192 | 198 | 203) {
            continue;
        }
        let ip = format!("{a}.{}.{}.{}", rng.u8(..), rng.u8(..), rng.u8(1..255));
        if taken.insert(ip.clone()) {
            return ip;
        }
    }
}
