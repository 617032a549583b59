//! The generator's promises: the real tables' columns per version, Security Lake's layout,
//! the same bytes for the same seed, both directions, noise, and anomalies on the last day only.

use std::collections::{BTreeMap, BTreeSet};

use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::lake::{GROUND_TRUTH, Lake, LakeSpec, Part, Partition, account_ids, write_dir};
use super::pairs::{Filter, Selection, Window, pairs};
use super::record::{Detail, Direction, OcsfVersion, Record, Source};
use super::{Day, anomaly::Kind};

fn spec() -> LakeSpec {
    let mut spec = LakeSpec::new(7, Day::parse("20261126").expect("day"));
    spec.days = 4;
    spec.instances = 10;
    spec.flows_per_day = 3_000;
    spec.anomalies = 4;
    spec
}

fn two_of_everything() -> LakeSpec {
    let mut spec = spec();
    spec.accounts = account_ids(2);
    spec.regions = vec!["us-east-1".into(), "eu-west-1".into()];
    spec.versions = OcsfVersion::ALL.to_vec();
    spec.days = 3;
    spec.flows_per_day = 1_500;
    spec
}

/// Leaf column paths and their Arrow types, from the file.
fn leaves(bytes: &[u8]) -> BTreeMap<String, DataType> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes)).expect("parquet");
    let mut out = BTreeMap::new();
    fn walk(prefix: &str, field: &arrow_schema::Field, out: &mut BTreeMap<String, DataType>) {
        let path = if prefix.is_empty() { field.name().clone() } else { format!("{prefix}.{}", field.name()) };
        match field.data_type() {
            DataType::Struct(children) => children.iter().for_each(|c| walk(&path, c, out)),
            DataType::List(item) => walk(&path, item, out),
            other => {
                out.insert(path, other.clone());
            }
        }
    }
    for field in builder.schema().fields() {
        walk("", field, &mut out);
    }
    out
}

fn object(lake: &Lake, source: Source, version: OcsfVersion) -> super::lake::Object {
    let p = Partition {
        source,
        version,
        account: lake.spec.accounts[0].clone(),
        region: lake.spec.regions[0].clone(),
        day: lake.spec.last_day,
    };
    lake.objects(&p).expect("objects").remove(0)
}

#[test]
fn vpc_flow_files_have_the_columns_of_each_source_version() {
    let lake = Lake::new(two_of_everything());
    let v1 = leaves(&object(&lake, Source::VpcFlow, OcsfVersion::V1).bytes);
    let v2 = leaves(&object(&lake, Source::VpcFlow, OcsfVersion::V2).bytes);
    for cols in [&v1, &v2] {
        for (path, ty) in [
            ("src_endpoint.ip", DataType::Utf8),
            ("src_endpoint.port", DataType::Int32),
            ("src_endpoint.instance_uid", DataType::Utf8),
            ("src_endpoint.interface_uid", DataType::Utf8),
            ("src_endpoint.subnet_uid", DataType::Utf8),
            ("src_endpoint.vpc_uid", DataType::Utf8),
            ("src_endpoint.intermediate_ips.item", DataType::Utf8),
            ("dst_endpoint.ip", DataType::Utf8),
            ("dst_endpoint.instance_uid", DataType::Utf8),
            ("connection_info.direction", DataType::Utf8),
            ("connection_info.direction_id", DataType::Int32),
            ("connection_info.protocol_num", DataType::Int32),
            ("traffic.bytes", DataType::Int64),
            ("traffic.packets", DataType::Int64),
            ("time", DataType::Int64),
            ("start_time", DataType::Int64),
            ("end_time", DataType::Int64),
            ("metadata.product.name", DataType::Utf8),
            ("metadata.product.feature.name", DataType::Utf8),
            ("metadata.version", DataType::Utf8),
            ("metadata.profiles.item", DataType::Utf8),
            ("cloud.region", DataType::Utf8),
            ("cloud.zone", DataType::Utf8),
            ("class_uid", DataType::Int32),
            ("category_uid", DataType::Int32),
            ("activity_id", DataType::Int32),
            ("severity_id", DataType::Int32),
            ("status_code", DataType::Utf8),
            ("disposition_id", DataType::Int32),
        ] {
            assert_eq!(cols.get(path), Some(&ty), "{path}");
        }
    }
    assert_eq!(v1.get("cloud.account_uid"), Some(&DataType::Utf8));
    assert!(!v1.contains_key("cloud.account.uid") && !v1.contains_key("time_dt") && !v1.contains_key("action_id"));
    assert_eq!(v1.get("type_uid"), Some(&DataType::Int32));
    assert_eq!(v2.get("cloud.account.uid"), Some(&DataType::Utf8));
    assert!(!v2.contains_key("cloud.account_uid"));
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    for path in ["time_dt", "start_time_dt", "end_time_dt"] {
        assert_eq!(v2.get(path), Some(&ts), "{path}");
    }
    assert_eq!(v2.get("type_uid"), Some(&DataType::Int64));
    assert_eq!(v2.get("action_id"), Some(&DataType::Int32));
    assert_eq!(v2.get("observables.item.value"), Some(&DataType::Utf8));
    assert!(v1.len() >= 40 && v2.len() > v1.len(), "{} and {} leaf columns", v1.len(), v2.len());
}

#[test]
fn route53_files_have_the_dns_activity_columns() {
    let lake = Lake::new(two_of_everything());
    let v1 = leaves(&object(&lake, Source::Route53, OcsfVersion::V1).bytes);
    let v2 = leaves(&object(&lake, Source::Route53, OcsfVersion::V2).bytes);
    for cols in [&v1, &v2] {
        for (path, ty) in [
            ("src_endpoint.ip", DataType::Utf8),
            ("src_endpoint.instance_uid", DataType::Utf8),
            ("src_endpoint.vpc_uid", DataType::Utf8),
            ("src_endpoint.port", DataType::Int32),
            ("query.hostname", DataType::Utf8),
            ("query.type", DataType::Utf8),
            ("answers.item.rdata", DataType::Utf8),
            ("answers.item.type", DataType::Utf8),
            ("rcode", DataType::Utf8),
            ("rcode_id", DataType::Int32),
            ("connection_info.protocol_name", DataType::Utf8),
            ("time", DataType::Int64),
            ("class_uid", DataType::Int32),
        ] {
            assert_eq!(cols.get(path), Some(&ty), "{path}");
        }
    }
    assert!(v1.contains_key("cloud.account_uid") && !v1.contains_key("time_dt"));
    assert!(v2.contains_key("cloud.account.uid") && v2.contains_key("time_dt"));
}

#[test]
fn the_file_holds_the_records_with_their_ocsf_identity() {
    let lake = Lake::new(spec());
    let o = object(&lake, Source::VpcFlow, OcsfVersion::V2);
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(o.bytes.clone())).expect("parquet");
    assert_eq!(reader.metadata().file_metadata().num_rows() as usize, o.records);
    let compression = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(compression, parquet::basic::Compression::GZIP(_)), "{compression:?}");
    let batch = reader.build().expect("reader").next().expect("a batch").expect("batch");
    let text = format!("{:?}", batch.column_by_name("metadata").expect("metadata"));
    for expected in ["Amazon VPC", "Flowlogs", "AWS", "1.1.0", "datetime"] {
        assert!(text.contains(expected), "{expected}");
    }
}

#[test]
fn objects_follow_the_security_lake_layout_and_the_truth_stays_outside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::new(two_of_everything());
    let written = write_dir(&lake, Part::All, dir.path()).expect("write");
    let mut keys = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                keys.push(path.strip_prefix(dir.path()).expect("under").to_string_lossy().into_owned());
            }
        }
    }
    keys.sort();
    assert_eq!(keys.len(), written.objects + 1);
    assert!(keys.contains(&GROUND_TRUTH.to_owned()));
    let pattern = regex_lite(&[
        "aws/",
        "(VPC_FLOW|ROUTE53)/",
        "(1.0|2.0)/",
        "region=(us-east-1|eu-west-1)/",
        "accountId=(123456789012|210111111111)/",
        "eventDay=2026112[456]/",
        "[0-9a-f]{32}.gz.parquet",
    ]);
    let objects: Vec<&String> = keys.iter().filter(|k| k.as_str() != GROUND_TRUTH).collect();
    for key in &objects {
        assert!(pattern(key), "{key}");
    }
    // Every source, version, account, region and day has its partition.
    let partitions: BTreeSet<&str> = objects.iter().map(|k| &k[..k.rfind('/').expect("a prefix")]).collect();
    assert_eq!(partitions.len(), 2 * 2 * 2 * 2 * 3);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(GROUND_TRUTH)).expect("truth")).expect("json");
    assert_eq!(truth["anomalies"].as_array().map(Vec::len), Some(4));
    for a in truth["anomalies"].as_array().expect("anomalies") {
        let objects = a["objects"].as_array().expect("objects");
        assert_eq!(objects.len(), 2, "one object per version: {a}");
        assert!(objects.iter().all(|k| k.as_str().is_some_and(|k| k.contains("/eventDay=20261126/"))), "{a}");
    }
}

/// A tiny matcher for the key pattern: each part is a regex-like alternative or class.
fn regex_lite(parts: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |key: &str| {
        let segments: Vec<&str> = key.split('/').collect();
        segments.len() == parts.len() && {
            segments.iter().zip(parts).all(|(seg, part)| {
                let part = part.trim_end_matches('/');
                if let Some(alts) = part.strip_prefix('(').and_then(|p| p.split_once(')')) {
                    let (alts, _) = alts;
                    let prefix = "";
                    alts.split('|').any(|a| *seg == format!("{prefix}{a}"))
                } else if let Some((name, alts)) = part.split_once("=(") {
                    let alts = alts.trim_end_matches(')');
                    alts.split('|').any(|a| *seg == format!("{name}={a}"))
                } else if let Some(days) = part.strip_prefix("eventDay=2026112[") {
                    let days = days.trim_end_matches(']');
                    seg.strip_prefix("eventDay=2026112").is_some_and(|d| d.len() == 1 && days.contains(d))
                } else if part.starts_with("[0-9a-f]{32}") {
                    seg.strip_suffix(".gz.parquet").is_some_and(|h| {
                        h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    })
                } else {
                    *seg == part
                }
            })
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let p = |lake: &Lake| Partition {
        source: Source::VpcFlow,
        version: OcsfVersion::V2,
        account: lake.spec.accounts[0].clone(),
        region: "us-east-1".into(),
        day: lake.spec.last_day,
    };
    let (a, b) = (Lake::new(spec()), Lake::new(spec()));
    let (once, again) = (a.objects(&p(&a)).expect("a"), b.objects(&p(&b)).expect("b"));
    assert_eq!(once.len(), again.len());
    for (x, y) in once.iter().zip(&again) {
        assert_eq!((&x.key, &x.bytes), (&y.key, &y.bytes));
    }
    let mut other = spec();
    other.seed = 8;
    let c = Lake::new(other);
    let different = c.objects(&p(&c)).expect("c");
    assert_ne!(once[0].bytes, different[0].bytes);
    assert_ne!(once[0].key, different[0].key);
}

#[test]
fn a_day_splits_into_objects_of_about_the_target_size() {
    let mut small = spec();
    small.flows_per_day = 20_000;
    small.object_bytes = 200_000;
    let lake = Lake::new(small);
    let p = Partition {
        source: Source::VpcFlow,
        version: OcsfVersion::V1,
        account: lake.spec.accounts[0].clone(),
        region: "us-east-1".into(),
        day: lake.spec.first_day(),
    };
    let objects = lake.objects(&p).expect("objects");
    assert!(objects.len() >= 2, "{} objects", objects.len());
    let total: usize = objects.iter().map(|o| o.records).sum();
    assert_eq!(total, lake.records(Source::VpcFlow, &p.account, &p.region, p.day).len());
    for o in &objects[..objects.len() - 1] {
        assert!(o.bytes.len() >= 150_000 && o.bytes.len() < 600_000, "{} bytes", o.bytes.len());
    }
}

fn all_records(lake: &Lake, source: Source) -> Vec<Record> {
    lake.records_between(source, lake.spec.first_day(), lake.spec.last_day.plus(1))
}

#[test]
fn flows_have_both_directions_with_the_instance_on_the_logging_side() {
    let lake = Lake::new(spec());
    let records = all_records(&lake, Source::VpcFlow);
    let mut by_direction = BTreeMap::new();
    for r in &records {
        *by_direction.entry(r.direction().map(Direction::as_str)).or_insert(0) += 1;
        match r.direction() {
            Some(Direction::Outbound) if r.src.instance_uid.as_deref().is_some_and(|i| i.starts_with("i-")) => {
                assert_eq!(r.dst.instance_uid, None)
            }
            Some(Direction::Inbound) if r.dst.instance_uid.as_deref().is_some_and(|i| i.starts_with("i-")) => {
                assert_eq!(r.src.instance_uid, None)
            }
            _ => {}
        }
    }
    let (inbound, outbound) = (by_direction[&Some("Inbound")], by_direction[&Some("Outbound")]);
    assert!(inbound > records.len() / 3 && outbound > records.len() / 3, "{by_direction:?}");
    // The instance is src_endpoint on outbound records and a remote peer is on inbound ones.
    let instance_ips: BTreeSet<&str> =
        lake.world.networks.iter().flat_map(|n| n.instances.iter().map(|x| x.ip.as_str())).collect();
    let remote_sources = records
        .iter()
        .filter(|r| r.direction() == Some(Direction::Inbound))
        .filter(|r| r.src.ip.as_deref().is_some_and(|ip| !instance_ips.contains(ip)))
        .count();
    assert!(remote_sources > 0);
}

#[test]
fn logs_carry_noise() {
    let lake = Lake::new(spec());
    let flows = all_records(&lake, Source::VpcFlow);
    let share = |f: &dyn Fn(&Record) -> bool| flows.iter().filter(|r| f(r)).count() as f64 / flows.len() as f64;
    let ipv6 = share(&|r| r.src.ip.as_deref().is_some_and(|ip| ip.contains(':')));
    let dash = share(&|r| r.src.ip.as_deref() == Some("-"));
    let dash_instance =
        share(&|r| r.src.instance_uid.as_deref() == Some("-") || r.dst.instance_uid.as_deref() == Some("-"));
    let no_data = share(&|r| matches!(&r.detail, Detail::Flow(f) if f.status == "NODATA"));
    assert!((0.003..0.03).contains(&ipv6), "IPv6 {ipv6}");
    assert!((0.0005..0.01).contains(&dash), "- {dash}");
    assert!(dash_instance > 0.001, "- instance {dash_instance}");
    assert!(no_data > 0.0005, "NODATA {no_data}");
    let queries = all_records(&lake, Source::Route53);
    assert!(
        queries.iter().any(|r| matches!(&r.detail, Detail::Dns(d) if d.rcode == "NXDOMAIN" && d.answers.is_empty()))
    );
    assert!(queries.iter().any(|r| matches!(&r.detail, Detail::Dns(d) if d.query_type == "AAAA")));
    assert!(queries.iter().any(|r| r.src.instance_uid.is_none()));
}

#[test]
fn anomalies_happen_on_the_last_day_only_from_addresses_never_seen_before() {
    let mut spec = two_of_everything();
    spec.days = 5;
    let lake = Lake::new(spec);
    assert_eq!(lake.anomalies.len(), 4);
    assert!(lake.anomalies.iter().any(|a| a.kind == Kind::UnseenAddress));
    assert!(lake.anomalies.iter().any(|a| a.kind == Kind::OtherTenantSubnet && a.remote_account.is_some()));
    let last = lake.spec.last_day;
    let history = lake.records_between(Source::VpcFlow, lake.spec.first_day(), last);
    let today = lake.records_between(Source::VpcFlow, last, last.plus(1));
    let peers = |records: &[Record]| -> BTreeSet<(String, String)> {
        pairs(records, &Filter::new(Selection::RemotePeer)).into_iter().collect()
    };
    let (before, after) = (peers(&history), peers(&today));
    let everything_before: BTreeSet<&str> =
        history.iter().flat_map(|r| [r.src.ip.as_deref(), r.dst.ip.as_deref()]).flatten().collect();
    for a in &lake.anomalies {
        let pair = (a.entity.clone(), a.remote_ip.clone());
        assert!(after.contains(&pair), "{a:?}");
        assert!(!before.contains(&pair), "{a:?}");
        assert!(!before.iter().any(|(e, ip)| *e == a.entity && *ip == a.remote_ip));
        assert!(!everything_before.contains(a.remote_ip.as_str()) || a.kind == Kind::OtherTenantSubnet, "{a:?}");
        if a.kind == Kind::UnseenAddress {
            let anywhere = history.iter().chain(&today).filter(|r| r.src.ip.as_deref() == Some(&a.remote_ip)).count();
            assert_eq!(anywhere, a.connections, "only the stranger's own requests carry it as source");
        }
    }
    // The ground truth names them, and nothing of the lake names the ground truth.
    let truth = lake.ground_truth(&BTreeMap::new());
    let listed: BTreeSet<(String, String)> = truth["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .map(|a| (a["entity"].as_str().unwrap_or("").to_owned(), a["remoteIp"].as_str().unwrap_or("").to_owned()))
        .collect();
    let planted: BTreeSet<(String, String)> =
        lake.anomalies.iter().map(|a| (a.entity.clone(), a.remote_ip.clone())).collect();
    assert_eq!(listed, planted);
    for a in truth["anomalies"].as_array().expect("anomalies") {
        assert_eq!(a["eventDay"], "20261126");
        let stranger = a["remoteIp"].as_str().expect("remote ip");
        let by_source = a["pairs"]["sourceEndpoint"].as_array().expect("pairs");
        assert!(by_source.iter().all(|p| p[1] != stranger), "src_endpoint never pairs an inbound stranger: {a}");
        assert!(a["pairs"]["remotePeer"].as_array().expect("pairs").iter().any(|p| p[1] == stranger), "{a}");
    }
}

#[test]
fn the_history_and_the_last_day_make_up_the_whole_lake() {
    let lake = Lake::new(spec());
    let days: BTreeSet<Day> = all_records(&lake, Source::VpcFlow).iter().map(Record::day).collect();
    assert_eq!(days, lake.days(Part::All).into_iter().collect(), "every record falls on a day of the lake");
    let all = lake.partitions(Part::All);
    let mut parts = lake.partitions(Part::History);
    parts.extend(lake.partitions(Part::LastDay));
    parts.sort();
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(parts, all_sorted);
    assert!(lake.partitions(Part::LastDay).iter().all(|p| p.day == lake.spec.last_day));
    assert!(lake.partitions(Part::History).iter().all(|p| p.day < lake.spec.last_day));
    assert_eq!(lake.days(Part::All).len(), 4);
}

#[test]
fn expected_pairs_follow_the_feature_filters() {
    let lake = Lake::new(two_of_everything());
    let records = all_records(&lake, Source::VpcFlow);
    let every = pairs(&records, &Filter::new(Selection::SourceEndpoint));
    assert!(every.iter().all(|(e, ip)| e.starts_with("i-") && ip.parse::<std::net::Ipv4Addr>().is_ok()));
    let first = lake.spec.first_day();
    let mut one_day = Filter::new(Selection::SourceEndpoint);
    one_day.window = Some(Window::Days { from: first, to: first.plus(1) });
    let by_day = pairs(&records, &one_day);
    one_day.window = Some(Window::Millis { from: first.start_ms(), to: first.plus(1).start_ms() });
    assert_eq!(by_day, pairs(&records, &one_day), "day partitions and time bounds agree on whole days");
    assert!(!by_day.is_empty() && by_day.len() < every.len(), "{} of {}", by_day.len(), every.len());
    let mut scoped = Filter::new(Selection::SourceEndpoint);
    scoped.accounts = vec!["210111111111".into()];
    scoped.regions = vec!["eu-west-1".into()];
    let in_scope = pairs(&records, &scoped);
    let entities: BTreeSet<&str> = lake
        .world
        .network("210111111111", "eu-west-1")
        .expect("network")
        .instances
        .iter()
        .map(|x| x.uid.as_str())
        .collect();
    assert!(!in_scope.is_empty() && in_scope.iter().all(|(e, _)| entities.contains(e.as_str())));
}

/// Each pair with how often it occurs.
#[cfg(feature = "scorer")]
fn counted(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for pair in pairs {
        *counts.entry(pair).or_insert(0) += 1;
    }
    counts
}

/// The scorer forms the pairs the feature SQL forms (the generator's [`pairs`], which the
/// end-to-end feature test holds the SQL to), as often, under either pairing, from flows and
/// DNS queries of both source versions.
#[cfg(feature = "scorer")]
#[test]
fn the_scorer_reads_the_pairs_the_generator_expects() {
    use crate::scorer::Peer;
    use crate::scorer::extract::read_pairs;

    let lake = Lake::new(spec());
    let mut source_pairs = BTreeMap::new();
    for (peer, selection) in [(Peer::Source, Selection::SourceEndpoint), (Peer::Remote, Selection::RemotePeer)] {
        for source in Source::ALL {
            let records = lake.records(source, &lake.spec.accounts[0], "us-east-1", lake.spec.last_day);
            let expected = counted(pairs(&records, &Filter::new(selection)));
            assert!(!expected.is_empty(), "{peer:?} {source:?}");
            for version in OcsfVersion::ALL {
                let o = object(&lake, source, version);
                let (table, context) = read_pairs(Bytes::from(o.bytes), 0, peer).expect("read");
                let found: BTreeMap<(String, String), u64> =
                    table.into_pairs().into_iter().map(|p| ((p.entity, p.ip.to_string()), p.seen.count)).collect();
                assert_eq!(found, expected, "{peer:?} {source:?} {version:?}");
                assert_eq!(context.account.as_deref(), Some("123456789012"));
            }
            if peer == Peer::Source {
                source_pairs.insert(source, expected);
            } else {
                assert_ne!(source_pairs.get(&source), Some(&expected), "remote pairs are other pairs: {source:?}");
            }
        }
    }
}
