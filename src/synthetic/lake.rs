//! A whole synthetic lake: which partitions exist, the records of each, its objects, and the
//! ground truth. Everything derives from the [`LakeSpec`], so the same spec gives the same bytes,
//! and any part of the lake (the history, or the last day alone) can be written on its own.

use std::collections::BTreeMap;
use std::path::Path;

use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;

use super::anomaly::{self, Anomaly};
use super::calendar::Day;
use super::ocsf;
use super::pairs::{Filter, Selection, pairs};
use super::record::{OcsfVersion, Record, Source, object_name, partition_prefix};
use super::traffic;
use super::world::{World, rng};

/// Records per batch while writing an object; an object is closed at the first batch boundary
/// past its target size.
const BATCH_ROWS: usize = 4_096;

/// The shape of a lake. [`LakeSpec::new`] gives the defaults of `lakesight-data`.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeSpec {
    pub seed: u64,
    pub days: u32,
    /// The day the anomalies happen on; the lake covers `days` days up to and including it.
    pub last_day: Day,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub versions: Vec<OcsfVersion>,
    pub sources: Vec<Source>,
    /// Instances per account and region.
    pub instances: usize,
    /// VPC flow records per account, region and weekday, before daily variation. Route 53
    /// queries are an eighth of that.
    pub flows_per_day: usize,
    /// An object is closed once its Parquet bytes reach this size.
    pub object_bytes: usize,
    pub anomalies: usize,
}

impl LakeSpec {
    pub fn new(seed: u64, last_day: Day) -> LakeSpec {
        LakeSpec {
            seed,
            days: 14,
            last_day,
            accounts: account_ids(1),
            regions: vec!["us-east-1".to_owned()],
            versions: vec![OcsfVersion::V2],
            sources: Source::ALL.to_vec(),
            instances: 24,
            flows_per_day: 40_000,
            object_bytes: 4 << 20,
            anomalies: 6,
        }
    }

    pub fn first_day(&self) -> Day {
        self.last_day.plus(1 - i64::from(self.days.max(1)))
    }
}

/// `count` account ids: the emulator's own account first, then made-up member accounts.
pub fn account_ids(count: usize) -> Vec<String> {
    (0..count.max(1))
        .map(
            |i| {
                if i == 0 { "123456789012".to_owned() } else { format!("{}", 210_000_000_000 + 111_111_111 * i as u64) }
            },
        )
        .collect()
}

/// Which days to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    All,
    /// Every day but the last: what a model trains on.
    History,
    /// The last day alone, with the anomalies: what arrives after the model is deployed.
    LastDay,
}

/// One source, version, account, region and day: one S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition {
    pub source: Source,
    pub version: OcsfVersion,
    pub account: String,
    pub region: String,
    pub day: Day,
}

impl Partition {
    pub fn prefix(&self) -> String {
        partition_prefix(self.source, self.version, &self.region, &self.account, self.day)
    }
}

/// One generated object.
#[derive(Debug, Clone)]
pub struct Object {
    /// The key under the lake bucket.
    pub key: String,
    pub bytes: Vec<u8>,
    pub records: usize,
    /// Indices into [`Lake::anomalies`] of the anomalies with records in this object.
    pub anomalies: Vec<usize>,
}

/// A lake ready to generate.
pub struct Lake {
    pub spec: LakeSpec,
    pub world: World,
    pub anomalies: Vec<Anomaly>,
}

impl Lake {
    pub fn new(spec: LakeSpec) -> Lake {
        let world = World::new(spec.seed, &spec.accounts, &spec.regions, spec.instances);
        let anomalies = if spec.sources.contains(&Source::VpcFlow) {
            anomaly::plan(&world, spec.seed, spec.last_day, spec.anomalies)
        } else {
            Vec::new()
        };
        Lake { spec, world, anomalies }
    }

    pub fn days(&self, part: Part) -> Vec<Day> {
        let all = (0..i64::from(self.spec.days.max(1))).map(|d| self.spec.first_day().plus(d));
        match part {
            Part::All => all.collect(),
            Part::History => all.filter(|d| *d != self.spec.last_day).collect(),
            Part::LastDay => vec![self.spec.last_day],
        }
    }

    /// Every partition of `part`, in a fixed order.
    pub fn partitions(&self, part: Part) -> Vec<Partition> {
        let mut out = Vec::new();
        for day in self.days(part) {
            for network in &self.world.networks {
                for &source in &self.spec.sources {
                    for &version in &self.spec.versions {
                        out.push(Partition {
                            source,
                            version,
                            account: network.account.clone(),
                            region: network.region.clone(),
                            day,
                        });
                    }
                }
            }
        }
        out
    }

    /// The records of one partition, sorted by time. The same for every version: a lake that
    /// collects a source at two versions writes the same events twice.
    pub fn records(&self, source: Source, account: &str, region: &str, day: Day) -> Vec<Record> {
        let Some(net) = self.world.network(account, region) else { return Vec::new() };
        let (seed, volume) = (self.spec.seed, self.spec.flows_per_day);
        let mut records = match source {
            Source::VpcFlow => traffic::flows(&self.world, net, seed, day, volume),
            Source::Route53 => traffic::queries(&self.world, net, seed, day, volume / 8),
        };
        if source == Source::VpcFlow && day == self.spec.last_day {
            for a in self.anomalies.iter().filter(|a| a.account == account && a.region == region) {
                records.extend(anomaly::records(&self.world, seed, a));
            }
            records.sort_by_key(|r| r.time_ms);
        }
        records
    }

    /// Every record of the lake that a window of days covers, for computing expected pairs.
    pub fn records_between(&self, source: Source, from: Day, to: Day) -> Vec<Record> {
        let mut out = Vec::new();
        for day in self.days(Part::All).into_iter().filter(|d| (from..to).contains(d)) {
            for net in &self.world.networks {
                out.extend(self.records(source, &net.account, &net.region, day));
            }
        }
        out
    }

    /// The objects of one partition: GZIP Parquet of about [`LakeSpec::object_bytes`] each.
    pub fn objects(&self, p: &Partition) -> Result<Vec<Object>, ParquetError> {
        let records = self.records(p.source, &p.account, &p.region, p.day);
        let schema = ocsf::schema(p.source, p.version)?;
        let mut objects = Vec::new();
        let mut start = 0;
        while start < records.len() {
            let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(ocsf::lake_properties()))?;
            let mut end = start;
            while end < records.len() && writer.bytes_written() + writer.in_progress_size() < self.spec.object_bytes {
                let next = (end + BATCH_ROWS).min(records.len());
                writer.write(&ocsf::batch(p.source, p.version, &records[end..next])?)?;
                end = next;
            }
            let bytes = writer.into_inner()?;
            let held = &records[start..end];
            let anomalies = (0..self.anomalies.len())
                .filter(|&k| {
                    let a = &self.anomalies[k];
                    held.iter().any(|r| {
                        r.src.ip.as_deref() == Some(&a.remote_ip) && r.dst.instance_uid.as_deref() == Some(&a.entity)
                    })
                })
                .collect();
            let mut ids = rng(self.spec.seed, &["object", &p.prefix(), &objects.len().to_string()]);
            let id = u128::from(ids.u64(..)) << 64 | u128::from(ids.u64(..));
            objects.push(Object {
                key: format!("{}{}", p.prefix(), object_name(id)),
                bytes,
                records: held.len(),
                anomalies,
            });
            start = end;
        }
        Ok(objects)
    }

    /// The ground truth: the spec and every planted anomaly, with the pairs it adds under each
    /// selection and, once written, the keys of the objects that hold it.
    pub fn ground_truth(&self, keys: &BTreeMap<usize, Vec<String>>) -> serde_json::Value {
        let anomalies: Vec<serde_json::Value> = self
            .anomalies
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let records = anomaly::records(&self.world, self.spec.seed, a);
                let distinct = |selection| {
                    let mut found = pairs(&records, &Filter::new(selection));
                    found.sort();
                    found.dedup();
                    found
                };
                let mut value = serde_json::to_value(a).unwrap_or_default();
                value["firstSeen"] = a.first_seen().into();
                value["eventDay"] = self.spec.last_day.to_string().into();
                value["source"] = Source::VpcFlow.as_str().into();
                value["pairs"] = serde_json::json!({
                    "remotePeer": distinct(Selection::RemotePeer),
                    "sourceEndpoint": distinct(Selection::SourceEndpoint),
                });
                value["objects"] = keys.get(&k).cloned().unwrap_or_default().into();
                value
            })
            .collect();
        let s = &self.spec;
        serde_json::json!({
            "seed": s.seed,
            "days": s.days,
            "firstDay": s.first_day().to_string(),
            "lastDay": s.last_day.to_string(),
            "accounts": s.accounts,
            "regions": s.regions,
            "versions": s.versions.iter().map(|v| v.source_version()).collect::<Vec<_>>(),
            "sources": s.sources.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
            "instances": self.world.networks.iter().map(|n| serde_json::json!({
                "account": n.account,
                "region": n.region,
                "vpc": n.vpc_uid,
                "instances": n.instances.iter().map(|x| serde_json::json!({"uid": x.uid, "ip": x.ip})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "anomalies": anomalies,
        })
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub objects: usize,
    pub bytes: usize,
    pub records: usize,
    /// Anomaly index to the keys of the objects holding it.
    pub anomaly_keys: BTreeMap<usize, Vec<String>>,
}

impl Written {
    pub fn add(&mut self, object: &Object) {
        self.objects += 1;
        self.bytes += object.bytes.len();
        self.records += object.records;
        for &k in &object.anomalies {
            self.anomaly_keys.entry(k).or_default().push(object.key.clone());
        }
    }
}

/// Writes `part` of the lake under `dir` with the lake's keys as paths, and the ground truth
/// beside it as `ground-truth.json`, outside the source prefixes.
pub fn write_dir(lake: &Lake, part: Part, dir: &Path) -> std::io::Result<Written> {
    let mut written = Written::default();
    for p in lake.partitions(part) {
        for object in lake.objects(&p).map_err(std::io::Error::other)? {
            let path = dir.join(&object.key);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &object.bytes)?;
            written.add(&object);
        }
    }
    let truth = serde_json::to_vec_pretty(&lake.ground_truth(&written.anomaly_keys)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(GROUND_TRUTH), truth)?;
    Ok(written)
}

/// The ground truth's file name, beside the lake and never under a source prefix.
pub const GROUND_TRUTH: &str = "ground-truth.json";
