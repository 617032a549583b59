//! Small, hand-made lake objects and the notifications that announce them, for the scorer's
//! tests, the scorer's end-to-end test and its benchmark: a [`Row`] is one outbound VPC flow
//! whose `src_endpoint` carries the entity and the address. The files have the full columns of
//! [`super::ocsf`]; version 1 fixtures are GZIP and version 2 fixtures zstd, so that tests
//! exercise both codecs a reader may meet.

use std::io::Write;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::ocsf;
use super::record::{Detail, Direction, Endpoint, Flow, OcsfVersion, Record, Source};

/// The account, region and product every fixture row carries.
pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
pub const PRODUCT: &str = "Amazon VPC";

/// Rows per record batch when generating large files.
const CHUNK_ROWS: usize = 65_536;

/// One flow record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub time_ms: i64,
    pub entity: Option<String>,
    pub ip: Option<String>,
    pub dst_ip: String,
    pub dst_port: i32,
    pub bytes: i64,
}

impl Row {
    pub fn new(time_ms: i64, entity: Option<&str>, ip: Option<&str>) -> Row {
        Row {
            time_ms,
            entity: entity.map(str::to_owned),
            ip: ip.map(str::to_owned),
            dst_ip: "172.31.0.10".into(),
            dst_port: 443,
            bytes: 1_500,
        }
    }

    /// The row as an outbound flow of one interface.
    pub fn record(&self) -> Record {
        let interface = |ip: Option<&str>, port: i32, instance: Option<&str>| Endpoint {
            ip: ip.map(str::to_owned),
            port: Some(port),
            instance_uid: instance.map(str::to_owned),
            interface_uid: Some("eni-0123456789abcdef0".into()),
            subnet_uid: Some("subnet-0123456789abcdef0".into()),
            vpc_uid: Some("vpc-0123456789abcdef0".into()),
            svc_name: None,
        };
        Record {
            time_ms: self.time_ms,
            duration_ms: 0,
            account: ACCOUNT.into(),
            region: REGION.into(),
            zone: "use1-az1".into(),
            src: interface(self.ip.as_deref(), 49_152, self.entity.as_deref()),
            dst: interface(Some(&self.dst_ip), self.dst_port, None),
            detail: Detail::Flow(Flow {
                direction: Direction::Outbound,
                protocol_num: 6,
                tcp_flags: Some(19),
                bytes: self.bytes,
                packets: self.bytes / 1_000 + 1,
                accepted: true,
                status: "OK",
            }),
        }
    }
}

fn properties(version: OcsfVersion) -> WriterProperties {
    ocsf::properties(match version {
        OcsfVersion::V1 => Compression::GZIP(GzipLevel::default()),
        OcsfVersion::V2 => Compression::ZSTD(ZstdLevel::default()),
    })
}

/// A VPC flow Parquet file holding `rows`.
pub fn write_parquet(version: OcsfVersion, rows: &[Row]) -> Result<Vec<u8>, ParquetError> {
    let records: Vec<Record> = rows.iter().map(Row::record).collect();
    ocsf::write(Source::VpcFlow, version, &records, properties(version), Vec::new())
}

/// Writes `count` generated flow records: a few thousand instances that mostly talk to their
/// usual addresses, with 1% IPv6, 1% missing entities and 0.5% `-` addresses. Deterministic for
/// a seed; generated in chunks, so the file may be far larger than memory would allow as rows.
pub fn write_flows<W: Write + Send>(version: OcsfVersion, count: usize, seed: u64, out: W) -> Result<W, ParquetError> {
    let schema = ocsf::schema(Source::VpcFlow, version)?;
    let mut writer = ArrowWriter::try_new(out, schema, Some(properties(version)))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let entities = (count / 250).clamp(10, 4_000);
    let mut written = 0;
    while written < count {
        let records: Vec<Record> =
            (written..count.min(written + CHUNK_ROWS)).map(|i| flow(&mut rng, i as i64, entities).record()).collect();
        written += records.len();
        writer.write(&ocsf::batch(Source::VpcFlow, version, &records)?)?;
    }
    writer.into_inner()
}

fn flow(rng: &mut fastrand::Rng, i: i64, entities: usize) -> Row {
    let e = rng.usize(..entities);
    let entity = format!("i-{:017x}", 0x0a1b_2c3d_0000_0000_u64 + e as u64);
    let ip = match rng.u32(..1000) {
        0..10 => format!("2001:db8::{:x}", rng.u16(..)),
        10..15 => "-".to_owned(),
        15..100 => format!("{}.{}.{}.{}", rng.u8(1..224), rng.u8(..), rng.u8(..), rng.u8(1..255)),
        _ => format!("10.{}.{}.{}", e % 250, e / 250 % 250, rng.u8(1..9)),
    };
    let mut row = Row::new(1_795_000_000_000 + i * 37, Some(&entity), Some(&ip));
    if rng.u32(..100) == 0 {
        row.entity = None;
    }
    row.dst_port = rng.i32(1..65_536);
    row.bytes = rng.i64(40..1_000_000);
    row
}

/// The notification Security Lake puts on a subscriber's queue for a new object, as an SQS body:
/// S3's EventBridge event trimmed to what the Security Lake user guide's sample notification
/// holds, with no `detail-type`, `id`, `version` or `reason`.
pub fn security_lake_notification(bucket: &str, key: &str) -> String {
    serde_json::json!({
        "source": "aws.s3",
        "time": "2026-11-26T10:00:00Z",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": encode_key(key), "size": 1024, "etag": "b57f9512698f4b09e608f4f2a65852e5"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "securitylake.amazonaws.com"
        }
    })
    .to_string()
}

/// S3's own event notification of a new object, as an SQS body: what a queue that the lake's
/// bucket notifies directly receives.
pub fn s3_notification(bucket: &str, key: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-26T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encode_key(key), "size": 1024, "sequencer": "0065A1B2C3D4E5F601"}
        }
    }]})
    .to_string()
}

/// The EventBridge "Object Created" event for a new object, as an SQS body.
pub fn eventbridge_notification(bucket: &str, key: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": "2d4eba74-fd51-3966-4bfa-b013c9da8ff1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-11-26T10:00:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": encode_key(key), "size": 1024, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "reason": "PutObject"
        }
    })
    .to_string()
}

/// An SQS event as Lambda delivers it: one record per `(message id, body)`.
pub fn sqs_event(messages: &[(&str, String)]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("AQEB{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795000000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795000000001"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:AmazonSecurityLake-abc-Main-Queue"),
                "awsRegion": REGION
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Keys in notifications are URL-encoded, with `+` for a space.
fn encode_key(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b' ');
    percent_encoding::utf8_percent_encode(key, KEEP).to_string().replace(' ', "+")
}

#[cfg(all(test, feature = "scorer"))]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::scorer::extract::read_pairs;

    #[test]
    fn every_notification_builder_names_the_object_it_was_given() {
        use crate::scorer::event::{Notice, ObjectRef, parse};
        let key = "aws/VPC_FLOW/2.0/region=us-east-1/accountId=111122223333/eventDay=20261126/a b+c.gz.parquet";
        let expected = Notice::Objects(vec![ObjectRef { bucket: "lake".into(), key: key.into() }]);
        for body in [
            security_lake_notification("lake", key),
            s3_notification("lake", key),
            eventbridge_notification("lake", key),
        ] {
            assert!(body.contains("region%3Dus-east-1") && body.contains("a+b%2Bc"), "keys are sent encoded: {body}");
            assert_eq!(parse(&body).expect("a notification"), expected, "{body}");
        }
        let trimmed: serde_json::Value = serde_json::from_str(&security_lake_notification("lake", key)).expect("JSON");
        for absent in ["detail-type", "id", "version"] {
            assert!(trimmed.get(absent).is_none(), "{absent}");
        }
        assert!(trimmed["detail"].get("reason").is_none());
        assert_eq!(trimmed["detail"]["requester"], "securitylake.amazonaws.com");
    }

    #[test]
    fn generated_flows_have_the_advertised_mix_and_repeat_for_a_seed() {
        let once = write_flows(OcsfVersion::V2, 20_000, 7, Vec::new()).expect("write");
        let again = write_flows(OcsfVersion::V2, 20_000, 7, Vec::new()).expect("write");
        assert_eq!(once, again);
        let (table, _) = read_pairs(Bytes::from(once), 0, crate::scorer::Peer::Source).expect("read");
        let rejected = table.rejected();
        assert_eq!(table.rows(), 20_000);
        assert!((100..300).contains(&rejected.not_ipv4), "{rejected:?}");
        assert!((250..600).contains(&rejected.missing), "{rejected:?}");
        assert!(table.distinct() < 20_000 / 4, "the usual addresses repeat: {}", table.distinct());
    }
}
