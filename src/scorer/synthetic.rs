//! Security Lake shaped OCSF Parquet for tests, the emulator walk-through and the benchmark: the
//! VPC Flow network-activity columns of source version 1 (OCSF 1.0) or 2 (OCSF 1.1), nested as
//! Security Lake nests them, so that the scorer reads the file a real lake would hand it.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, StructArray, TimestampMillisecondArray};
use arrow_schema::{ArrowError, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

/// The account, region and product every generated row carries.
pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
pub const PRODUCT: &str = "Amazon VPC";

/// Rows per record batch and row group when generating large files.
const CHUNK_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcsfVersion {
    /// OCSF 1.0: `cloud.account_uid`, no `time_dt`, gzip pages (`.gz.parquet`).
    V1,
    /// OCSF 1.1: `cloud.account.uid`, `time_dt`, zstd pages.
    V2,
}

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
}

/// A Parquet file holding `rows`.
pub fn write_parquet(version: OcsfVersion, rows: &[Row]) -> Result<Vec<u8>, ParquetError> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema(version)?, Some(properties(version)))?;
    writer.write(&batch(version, rows)?)?;
    writer.close()?;
    Ok(buffer)
}

/// Writes `count` generated flow records: a few thousand instances that mostly talk to their
/// usual addresses, with 1% IPv6, 1% missing entities and 0.5% `-` addresses. Deterministic for
/// a seed; generated in chunks, so the file may be far larger than memory would allow as rows.
pub fn write_flows<W: Write + Send>(version: OcsfVersion, count: usize, seed: u64, out: W) -> Result<W, ParquetError> {
    let mut writer = ArrowWriter::try_new(out, schema(version)?, Some(properties(version)))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let entities = (count / 250).clamp(10, 4_000);
    let mut written = 0;
    while written < count {
        let rows: Vec<Row> =
            (written..count.min(written + CHUNK_ROWS)).map(|i| flow(&mut rng, i as i64, entities)).collect();
        written += rows.len();
        writer.write(&batch(version, &rows)?)?;
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

fn properties(version: OcsfVersion) -> WriterProperties {
    let compression = match version {
        OcsfVersion::V1 => Compression::GZIP(GzipLevel::default()),
        OcsfVersion::V2 => Compression::ZSTD(ZstdLevel::default()),
    };
    WriterProperties::builder().set_compression(compression).set_max_row_group_row_count(Some(CHUNK_ROWS * 2)).build()
}

fn schema(version: OcsfVersion) -> Result<Arc<Schema>, ArrowError> {
    Ok(batch(version, &[])?.schema())
}

fn batch(version: OcsfVersion, rows: &[Row]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let endpoint = |ip: ArrayRef, instance: ArrayRef, port: ArrayRef| {
        object(vec![
            ("instance_uid", instance),
            ("interface_uid", constant(n, "eni-0123456789abcdef0")),
            ("ip", ip),
            ("port", port),
            ("subnet_uid", constant(n, "subnet-0123456789abcdef0")),
            ("vpc_uid", constant(n, "vpc-0123456789abcdef0")),
        ])
    };
    let account = match version {
        OcsfVersion::V1 => ("account_uid", constant(n, ACCOUNT)),
        OcsfVersion::V2 => ("account", object(vec![("uid", constant(n, ACCOUNT))])),
    };
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("activity_id", Arc::new(Int32Array::from(vec![6; n]))),
        ("activity_name", constant(n, "Traffic")),
        ("category_uid", Arc::new(Int32Array::from(vec![4; n]))),
        ("class_uid", Arc::new(Int32Array::from(vec![4001; n]))),
        ("severity_id", Arc::new(Int32Array::from(vec![1; n]))),
        ("time", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time_ms)))),
        ("start_time", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time_ms - 60_000)))),
        ("end_time", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.time_ms)))),
        (
            "metadata",
            object(vec![
                (
                    "product",
                    object(vec![
                        ("name", constant(n, PRODUCT)),
                        ("vendor_name", constant(n, "AWS")),
                        ("version", constant(n, "5")),
                    ]),
                ),
                ("version", constant(n, if version == OcsfVersion::V1 { "1.0.0-rc.2" } else { "1.1.0" })),
            ]),
        ),
        (
            "cloud",
            object(vec![
                account,
                ("provider", constant(n, "AWS")),
                ("region", constant(n, REGION)),
                ("zone", constant(n, "use1-az1")),
            ]),
        ),
        (
            "src_endpoint",
            endpoint(
                Arc::new(rows.iter().map(|r| r.ip.as_deref()).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.entity.as_deref()).collect::<StringArray>()),
                Arc::new(Int32Array::from(vec![49_152; n])),
            ),
        ),
        (
            "dst_endpoint",
            endpoint(
                Arc::new(rows.iter().map(|r| Some(r.dst_ip.as_str())).collect::<StringArray>()),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.dst_port))),
            ),
        ),
        (
            "connection_info",
            object(vec![
                ("protocol_num", Arc::new(Int32Array::from(vec![6; n]))),
                ("direction", constant(n, "Outbound")),
                ("tcp_flags", Arc::new(Int32Array::from(vec![19; n]))),
                ("boundary", constant(n, "-")),
            ]),
        ),
        (
            "traffic",
            object(vec![
                ("bytes", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.bytes)))),
                ("packets", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.bytes / 1_000 + 1)))),
            ]),
        ),
        ("action", constant(n, "Allowed")),
        ("disposition", constant(n, "Allowed")),
        ("status_code", constant(n, "OK")),
        ("type_name", constant(n, "Network Activity: Traffic")),
    ];
    if version == OcsfVersion::V2 {
        let times = TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.time_ms)).with_timezone("UTC");
        columns.push(("time_dt", Arc::new(times)));
    }
    let fields: Vec<Field> = columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect())
}

fn constant(n: usize, value: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![value; n]))
}

/// A nullable struct column with nullable children, as Glue-defined OCSF tables have.
fn object(children: Vec<(&str, ArrayRef)>) -> ArrayRef {
    let fields: Fields = children.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    Arc::new(StructArray::new(fields, children.into_iter().map(|(_, a)| a).collect(), None))
}

/// The S3 event notification Security Lake sends for a new object, as an SQS body: a string.
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::scorer::extract::read_pairs;

    #[test]
    fn generated_flows_have_the_advertised_mix_and_repeat_for_a_seed() {
        let once = write_flows(OcsfVersion::V2, 20_000, 7, Vec::new()).expect("write");
        let again = write_flows(OcsfVersion::V2, 20_000, 7, Vec::new()).expect("write");
        assert_eq!(once, again);
        let (table, _) = read_pairs(Bytes::from(once), 0).expect("read");
        let rejected = table.rejected();
        assert_eq!(table.rows(), 20_000);
        assert!((100..300).contains(&rejected.not_ipv4), "{rejected:?}");
        assert!((250..600).contains(&rejected.missing), "{rejected:?}");
        assert!(table.distinct() < 20_000 / 4, "the usual addresses repeat: {}", table.distinct());
    }
}
