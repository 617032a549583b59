//! Records to Parquet with the columns, nesting and types of Security Lake's OCSF tables.
//!
//! VPC Flow Logs are OCSF Network Activity (class 4001) and Route 53 Resolver query logs are
//! DNS Activity (class 4003). Source version 1.0 writes OCSF 1.0.0-rc.2 and 2.0 writes OCSF 1.1.0;
//! the differences that matter to readers are `cloud.account_uid` against `cloud.account.uid`,
//! the datetime profile's `time_dt` (and `start_time_dt`, `end_time_dt`), `action`/`action_id`
//! and `observables`. Every column is nullable, as in the Glue tables. The sources are listed in
//! the module documentation of [`crate::synthetic`].

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{MapBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray, TimestampMillisecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::record::{Detail, Dns, Endpoint, Flow, OcsfVersion, Record, Source};

/// Rows per row group: Security Lake's objects hold one or a few row groups.
pub const ROW_GROUP_ROWS: usize = 131_072;

/// GZIP pages, as the lake's `.gz.parquet` objects have.
pub fn lake_properties() -> WriterProperties {
    properties(Compression::GZIP(GzipLevel::default()))
}

pub fn properties(compression: Compression) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("lakesight synthetic lake".to_owned())
        .build()
}

/// The Arrow schema of one source at one version.
pub fn schema(source: Source, version: OcsfVersion) -> Result<Arc<Schema>, ArrowError> {
    Ok(batch(source, version, &[])?.schema())
}

/// One Parquet file holding `records`, all of `source`.
pub fn write<W: Write + Send>(
    source: Source,
    version: OcsfVersion,
    records: &[Record],
    props: WriterProperties,
    out: W,
) -> Result<W, ParquetError> {
    let mut writer = ArrowWriter::try_new(out, schema(source, version)?, Some(props))?;
    for chunk in records.chunks(ROW_GROUP_ROWS / 2) {
        writer.write(&batch(source, version, chunk)?)?;
    }
    writer.into_inner()
}

/// The rows of `records` as one record batch. Records of the other source are written with
/// that source's fields empty, so callers split by [`Record::source`] first.
pub fn batch(source: Source, version: OcsfVersion, records: &[Record]) -> Result<RecordBatch, ArrowError> {
    let columns = match source {
        Source::VpcFlow => flow_columns(version, records)?,
        Source::Route53 => dns_columns(version, records)?,
    };
    let fields: Vec<Field> = columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect())
}

type Columns = Vec<(&'static str, ArrayRef)>;

fn flow_columns(version: OcsfVersion, records: &[Record]) -> Result<Columns, ArrowError> {
    let n = records.len();
    let flows: Vec<Option<&Flow>> = records
        .iter()
        .map(|r| match &r.detail {
            Detail::Flow(f) => Some(f),
            Detail::Dns(_) => None,
        })
        .collect();
    let accepted = |f: &Option<&Flow>| f.is_none_or(|f| f.accepted);
    let activity: Vec<i32> = flows.iter().map(|f| if accepted(f) { 6 } else { 5 }).collect();
    let endpoint = |pick: fn(&Record) -> &Endpoint| -> Result<ArrayRef, ArrowError> {
        let e: Vec<&Endpoint> = records.iter().map(pick).collect();
        Ok(object(vec![
            ("port", i32s(e.iter().map(|e| e.port))),
            ("svc_name", strs(e.iter().map(|e| e.svc_name.as_deref()))),
            ("ip", strs(e.iter().map(|e| e.ip.as_deref()))),
            ("intermediate_ips", string_lists(e.iter().map(|_| None::<Vec<String>>))?),
            ("interface_uid", strs(e.iter().map(|e| e.interface_uid.as_deref()))),
            ("vpc_uid", strs(e.iter().map(|e| e.vpc_uid.as_deref()))),
            ("instance_uid", strs(e.iter().map(|e| e.instance_uid.as_deref()))),
            ("subnet_uid", strs(e.iter().map(|e| e.subnet_uid.as_deref()))),
        ]))
    };
    let mut columns: Columns = vec![
        ("metadata", metadata(version, n, "Amazon VPC", "Flowlogs", "5")?),
        ("cloud", cloud(version, records, true)),
        ("src_endpoint", endpoint(|r| &r.src)?),
        ("dst_endpoint", endpoint(|r| &r.dst)?),
        (
            "connection_info",
            object(vec![
                ("protocol_num", i32s(flows.iter().map(|f| f.map(|f| f.protocol_num)))),
                ("tcp_flags", i32s(flows.iter().map(|f| f.and_then(|f| f.tcp_flags)))),
                ("protocol_ver", strs(records.iter().map(|r| Some(ip_version(&r.src))))),
                ("boundary_id", i32s(flows.iter().map(|_| Some(99)))),
                ("boundary", strs(flows.iter().map(|_| Some("-")))),
                ("direction_id", i32s(flows.iter().map(|f| f.map(|f| f.direction.id())))),
                ("direction", strs(flows.iter().map(|f| f.map(|f| f.direction.as_str())))),
            ]),
        ),
        (
            "traffic",
            object(vec![
                ("packets", i64s(flows.iter().map(|f| f.map(|f| f.packets)))),
                ("bytes", i64s(flows.iter().map(|f| f.map(|f| f.bytes)))),
            ]),
        ),
        ("time", i64s(records.iter().map(|r| Some(r.time_ms)))),
        ("start_time", i64s(records.iter().map(|r| Some(r.time_ms)))),
        ("end_time", i64s(records.iter().map(|r| Some(r.time_ms + r.duration_ms)))),
        ("status_code", strs(flows.iter().map(|f| f.map(|f| f.status)))),
    ];
    columns.extend(classification(version, n, "Network Activity", 4001, &activity, |a| match a {
        6 => "Traffic",
        _ => "Refuse",
    }));
    columns.extend([
        ("disposition", strs(flows.iter().map(|f| Some(if accepted(f) { "Allowed" } else { "Blocked" })))),
        ("disposition_id", i32s(flows.iter().map(|f| Some(if accepted(f) { 1 } else { 2 })))),
    ]);
    if version == OcsfVersion::V2 {
        columns.extend([
            ("action", strs(flows.iter().map(|f| Some(if accepted(f) { "Allowed" } else { "Denied" })))),
            ("action_id", i32s(flows.iter().map(|f| Some(if accepted(f) { 1 } else { 2 })))),
        ]);
    }
    columns.push(("unmapped", empty_maps(n)?));
    if version == OcsfVersion::V2 {
        columns.extend(datetimes(records, true));
        columns.push(("observables", observables(records)?));
    }
    Ok(columns)
}

fn dns_columns(version: OcsfVersion, records: &[Record]) -> Result<Columns, ArrowError> {
    let n = records.len();
    let queries: Vec<Option<&Dns>> = records
        .iter()
        .map(|r| match &r.detail {
            Detail::Dns(d) => Some(d),
            Detail::Flow(_) => None,
        })
        .collect();
    let answers_type = DataType::Struct(
        ["type", "rdata", "class"].into_iter().map(|n| Field::new(n, DataType::Utf8, true)).collect::<Fields>(),
    );
    let flat: Vec<&(&str, String)> =
        queries.iter().flat_map(|q| q.map(|q| q.answers.iter()).into_iter().flatten()).collect();
    let answer_values = object(vec![
        ("type", strs(flat.iter().map(|a| Some(a.0)))),
        ("rdata", strs(flat.iter().map(|a| Some(a.1.as_str())))),
        ("class", strs(flat.iter().map(|_| Some("IN")))),
    ]);
    let answers = ListArray::try_new(
        Arc::new(Field::new("item", answers_type, true)),
        offsets(queries.iter().map(|q| q.map_or(0, |q| q.answers.len()))).finish(),
        answer_values,
        None,
    )?;
    let activity: Vec<i32> = vec![6; n];
    let mut columns: Columns = vec![
        ("metadata", metadata(version, n, "Route 53", "Resolver Query Logs", "1.100000")?),
        ("cloud", cloud(version, records, false)),
        (
            "src_endpoint",
            object(vec![
                ("vpc_uid", strs(records.iter().map(|r| r.src.vpc_uid.as_deref()))),
                ("ip", strs(records.iter().map(|r| r.src.ip.as_deref()))),
                ("port", i32s(records.iter().map(|r| r.src.port))),
                ("instance_uid", strs(records.iter().map(|r| r.src.instance_uid.as_deref()))),
            ]),
        ),
        (
            "dst_endpoint",
            object(vec![
                ("instance_uid", strs(records.iter().map(|r| r.dst.instance_uid.as_deref()))),
                ("interface_uid", strs(records.iter().map(|r| r.dst.interface_uid.as_deref()))),
            ]),
        ),
        (
            "query",
            object(vec![
                ("hostname", strs(queries.iter().map(|q| q.map(|q| q.hostname.as_str())))),
                ("type", strs(queries.iter().map(|q| q.map(|q| q.query_type)))),
                ("class", strs(queries.iter().map(|q| q.map(|_| "IN")))),
                ("packet_uid", i32s(queries.iter().map(|_| None))),
            ]),
        ),
        ("answers", Arc::new(answers)),
        ("connection_info", object(vec![("protocol_name", strs(queries.iter().map(|q| q.map(|q| q.transport))))])),
        ("rcode", strs(queries.iter().map(|q| q.map(|q| q.rcode)))),
        ("rcode_id", i32s(queries.iter().map(|q| q.map(|q| rcode_id(q.rcode))))),
        ("time", i64s(records.iter().map(|r| Some(r.time_ms)))),
    ];
    columns.extend(classification(version, n, "DNS Activity", 4003, &activity, |_| "Traffic"));
    columns.extend([
        ("disposition", strs(records.iter().map(|_| Some("Allowed")))),
        ("disposition_id", i32s(records.iter().map(|_| Some(1)))),
    ]);
    if version == OcsfVersion::V2 {
        columns.extend([
            ("action", strs(records.iter().map(|_| Some("Allowed")))),
            ("action_id", i32s(records.iter().map(|_| Some(1)))),
        ]);
    }
    columns.push(("unmapped", empty_maps(n)?));
    if version == OcsfVersion::V2 {
        columns.extend(datetimes(records, false));
        columns.push(("observables", observables(records)?));
    }
    Ok(columns)
}

fn metadata(
    version: OcsfVersion,
    n: usize,
    product: &str,
    feature: &str,
    product_version: &str,
) -> Result<ArrayRef, ArrowError> {
    let mut profiles = vec!["cloud".to_owned(), "security_control".to_owned()];
    if version == OcsfVersion::V2 {
        profiles.push("datetime".to_owned());
    }
    Ok(object(vec![
        (
            "product",
            object(vec![
                ("version", constant(n, product_version)),
                ("name", constant(n, product)),
                ("feature", object(vec![("name", constant(n, feature))])),
                ("vendor_name", constant(n, "AWS")),
            ]),
        ),
        ("profiles", string_lists((0..n).map(|_| Some(profiles.clone())))?),
        ("version", constant(n, version.ocsf())),
    ]))
}

fn cloud(version: OcsfVersion, records: &[Record], zone: bool) -> ArrayRef {
    let accounts = strs(records.iter().map(|r| Some(r.account.as_str())));
    let mut children = match version {
        OcsfVersion::V1 => vec![("account_uid", accounts)],
        OcsfVersion::V2 => vec![("account", object(vec![("uid", accounts)]))],
    };
    children.push(("region", strs(records.iter().map(|r| Some(r.region.as_str())))));
    if zone {
        children.push(("zone", strs(records.iter().map(|r| Some(r.zone.as_str())))));
    }
    children.push(("provider", constant(records.len(), "AWS")));
    object(children)
}

/// Severity, class, category, activity and type: the same for every OCSF event class.
fn classification(
    version: OcsfVersion,
    n: usize,
    class: &'static str,
    class_uid: i32,
    activity: &[i32],
    activity_name: fn(i32) -> &'static str,
) -> Columns {
    let type_uid = activity.iter().map(|a| i64::from(class_uid) * 100 + i64::from(*a));
    let type_uid: ArrayRef = match version {
        // OCSF 1.0.0-rc.2 tables carry the type as an int; 1.1.0 as OCSF's long.
        OcsfVersion::V1 => i32s(type_uid.map(|t| Some(t as i32))),
        OcsfVersion::V2 => i64s(type_uid.map(Some)),
    };
    let type_names: Vec<String> = activity.iter().map(|a| format!("{class}: {}", activity_name(*a))).collect();
    vec![
        ("severity_id", i32s((0..n).map(|_| Some(1)))),
        ("severity", constant(n, "Informational")),
        ("class_name", constant(n, class)),
        ("class_uid", i32s((0..n).map(|_| Some(class_uid)))),
        ("category_name", constant(n, "Network Activity")),
        ("category_uid", i32s((0..n).map(|_| Some(4)))),
        ("activity_name", strs(activity.iter().map(|a| Some(activity_name(*a))))),
        ("activity_id", i32s(activity.iter().map(|a| Some(*a)))),
        ("type_uid", type_uid),
        ("type_name", strs(type_names.iter().map(|t| Some(t.as_str())))),
    ]
}

/// The datetime profile's timestamps (version 2 only).
fn datetimes(records: &[Record], span: bool) -> Columns {
    let ts = |f: &dyn Fn(&Record) -> i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from_iter_values(records.iter().map(f)).with_timezone("UTC"))
    };
    let mut columns = vec![("time_dt", ts(&|r| r.time_ms))];
    if span {
        columns.push(("start_time_dt", ts(&|r| r.time_ms)));
        columns.push(("end_time_dt", ts(&|r| r.time_ms + r.duration_ms)));
    }
    columns
}

/// Version 2's `observables`: every IP address and hostname of the event.
fn observables(records: &[Record]) -> Result<ArrayRef, ArrowError> {
    let mut rows: Vec<Vec<(&str, &str, i32, &str)>> = Vec::with_capacity(records.len());
    for r in records {
        let mut row = Vec::new();
        for (name, ip) in [("src_endpoint.ip", &r.src.ip), ("dst_endpoint.ip", &r.dst.ip)] {
            if let Some(ip) = ip.as_deref().filter(|ip| *ip != "-") {
                row.push((name, "IP Address", 2, ip));
            }
        }
        if let Detail::Dns(d) = &r.detail {
            row.push(("query.hostname", "Hostname", 1, d.hostname.as_str()));
        }
        rows.push(row);
    }
    let flat: Vec<&(&str, &str, i32, &str)> = rows.iter().flatten().collect();
    let values = object(vec![
        ("name", strs(flat.iter().map(|o| Some(o.0)))),
        ("type", strs(flat.iter().map(|o| Some(o.1)))),
        ("type_id", i32s(flat.iter().map(|o| Some(o.2)))),
        ("value", strs(flat.iter().map(|o| Some(o.3)))),
    ]);
    let item = Field::new("item", values.data_type().clone(), true);
    Ok(Arc::new(ListArray::try_new(Arc::new(item), offsets(rows.iter().map(Vec::len)).finish(), values, None)?))
}

fn ip_version(endpoint: &Endpoint) -> &'static str {
    match endpoint.ip.as_deref() {
        Some(ip) if ip.contains(':') => "6",
        _ => "4",
    }
}

fn rcode_id(rcode: &str) -> i32 {
    match rcode {
        "NOERROR" => 0,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        _ => 99,
    }
}

fn offsets(lengths: impl Iterator<Item = usize>) -> arrow_array::builder::OffsetBufferBuilder<i32> {
    let mut offsets = arrow_array::builder::OffsetBufferBuilder::new(0);
    for length in lengths {
        offsets.push_length(length);
    }
    offsets
}

fn strs<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn i32s(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    Arc::new(values.collect::<Int32Array>())
}

fn i64s(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(values.collect::<Int64Array>())
}

fn constant(n: usize, value: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![value; n]))
}

fn string_lists(rows: impl Iterator<Item = Option<Vec<String>>>) -> Result<ArrayRef, ArrowError> {
    let rows: Vec<Option<Vec<String>>> = rows.collect();
    let values: StringArray = rows.iter().flatten().flatten().map(|s| Some(s.as_str())).collect();
    let mut nulls = arrow_array::builder::BooleanBufferBuilder::new(rows.len());
    for row in &rows {
        nulls.append(row.is_some());
    }
    let lengths = rows.iter().map(|r| r.as_ref().map_or(0, Vec::len));
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new("item", DataType::Utf8, true)),
        offsets(lengths).finish(),
        Arc::new(values),
        Some(nulls.finish().into()),
    )?))
}

/// `unmapped`: a map that Security Lake leaves empty when every raw field found a place.
fn empty_maps(n: usize) -> Result<ArrayRef, ArrowError> {
    let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for _ in 0..n {
        builder.append(true)?;
    }
    Ok(Arc::new(builder.finish()))
}

/// A nullable struct column with nullable children, as Glue-defined OCSF tables have.
fn object(children: Vec<(&str, ArrayRef)>) -> ArrayRef {
    let fields: Fields = children.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    Arc::new(StructArray::new(fields, children.into_iter().map(|(_, a)| a).collect(), None))
}
