//! OCSF Parquet to pairs. Only the leaf columns the scorer needs are decoded: the pair, the time,
//! and the context a finding names. OCSF 1.0 (source version 1) and 1.1 (version 2) differ in the
//! account column and in whether `time_dt` exists; both are read.
//!
//! Which columns make the pair follows [`Peer`], as the feature SQL does. Under remote pairing an
//! object with an `answers` column is DNS Activity (Route 53): the querying instance is paired
//! with each answer. Any other object is read as Network Activity (VPC flows), paired by
//! `connection_info.direction_id`. The object's columns decide, not its key, as for the version.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;

use super::pairs::PairTable;
use super::peer::{FlowEnds, Peer};

/// The leaf columns read, by dotted path.
pub const ENTITY: &str = "src_endpoint.instance_uid";
pub const IP: &str = "src_endpoint.ip";
const DST_ENTITY: &str = "dst_endpoint.instance_uid";
const DST_IP: &str = "dst_endpoint.ip";
const DIRECTION: &str = "connection_info.direction_id";
/// DNS answers: a list of structs. The leaf's path between the two names depends on the writer's
/// list encoding (`answers.list.item.rdata`, `answers.list.element.rdata`, ...).
const ANSWERS: &str = "answers";
const RDATA: &str = "rdata";
/// How a missing answer address is named in errors.
const ANSWER_RDATA: &str = "answers[].rdata";
const TIME: [&str; 2] = ["time", "time_dt"];
const PRODUCT: &str = "metadata.product.name";
const ACCOUNT: [&str; 2] = ["cloud.account.uid", "cloud.account_uid"];
const REGION: &str = "cloud.region";

const BATCH_ROWS: usize = 8192;

/// An object that can never be read, however often it is retried.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("not readable as Parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("unexpected column data: {0}")]
    Arrow(#[from] ArrowError),
    #[error("no column {0}: not an OCSF network activity table")]
    MissingColumn(&'static str),
}

/// The columns a pairing needs: without them an object has no pairs to give.
fn required(peer: Peer, dns: bool) -> &'static [&'static str] {
    match (peer, dns) {
        (Peer::Source, _) => &[ENTITY, IP],
        (Peer::Remote, true) => &[ENTITY],
        (Peer::Remote, false) => &[ENTITY, DIRECTION, IP, DST_ENTITY, DST_IP],
    }
}

/// `answers.<list encoding>.rdata`, whatever the encoding.
fn is_answer_address(path: &str) -> bool {
    let mut parts = path.split('.');
    parts.next() == Some(ANSWERS) && parts.next_back() == Some(RDATA)
}

/// Where the rows of one object came from, from its first row that says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObjectContext {
    pub account: Option<String>,
    pub region: Option<String>,
    pub product: Option<String>,
}

/// A reader that decodes only the columns of the pairing and the context.
pub fn projected_reader(bytes: Bytes, peer: Peer) -> Result<ParquetRecordBatchReader, ExtractError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let schema = builder.parquet_schema();
    let paths: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
    let dns = peer == Peer::Remote && paths.iter().any(|p| is_answer_address(p));
    let required = required(peer, dns);
    if let Some(missing) = required.iter().find(|r| !paths.iter().any(|p| p == *r)) {
        return Err(ExtractError::MissingColumn(missing));
    }
    let context: Vec<&str> = [PRODUCT, REGION].into_iter().chain(TIME).chain(ACCOUNT).collect();
    let wanted = |path: &str| required.contains(&path) || context.contains(&path) || (dns && is_answer_address(path));
    let indices: Vec<usize> = paths.iter().enumerate().filter(|(_, p)| wanted(p)).map(|(i, _)| i).collect();
    let mask = ProjectionMask::leaves(schema, indices);
    Ok(builder.with_projection(mask).with_batch_size(BATCH_ROWS).build()?)
}

/// Every pair of one object, deduplicated, with the object's context.
pub fn read_pairs(bytes: Bytes, source: u32, peer: Peer) -> Result<(PairTable, ObjectContext), ExtractError> {
    let mut table = PairTable::default();
    let mut context = ObjectContext::default();
    for batch in projected_reader(bytes, peer)? {
        add_batch(&batch?, source, peer, &mut table, &mut context)?;
    }
    Ok((table, context))
}

/// Adds the rows of one record batch, projected or not, to `table`.
pub fn add_batch(
    batch: &RecordBatch,
    source: u32,
    peer: Peer,
    table: &mut PairTable,
    context: &mut ObjectContext,
) -> Result<(), ExtractError> {
    let time = TIME.iter().find_map(|p| leaf(batch, p)).map(millis).transpose()?.flatten();
    let rows = Rows { batch, time: time.as_ref().map(|t| t.as_primitive()), source };
    match (peer, batch.column_by_name(ANSWERS)) {
        (Peer::Source, _) => rows.source_pairs(table)?,
        (Peer::Remote, Some(answers)) => rows.answer_pairs(answers, table)?,
        (Peer::Remote, None) => rows.flow_pairs(table)?,
    }
    fill_context(batch, context)?;
    Ok(())
}

/// One record batch and what every pair of its rows carries.
struct Rows<'a> {
    batch: &'a RecordBatch,
    /// Epoch milliseconds.
    time: Option<&'a Int64Array>,
    source: u32,
}

impl Rows<'_> {
    fn at(&self, row: usize) -> Option<i64> {
        self.time.and_then(|t| t.is_valid(row).then(|| t.value(row)))
    }

    /// `src_endpoint.instance_uid` with `src_endpoint.ip`.
    fn source_pairs(&self, table: &mut PairTable) -> Result<(), ExtractError> {
        let (entity, ip) = (text(self.batch, ENTITY)?, text(self.batch, IP)?);
        let (entity, ip) = (entity.as_string::<i32>(), ip.as_string::<i32>());
        for row in 0..self.batch.num_rows() {
            table.observe(value(entity, row), value(ip, row), self.at(row), self.source);
        }
        Ok(())
    }

    /// The querying instance with each address it resolved.
    fn answer_pairs(&self, answers: &ArrayRef, table: &mut PairTable) -> Result<(), ExtractError> {
        let entity = text(self.batch, ENTITY)?;
        let entity = entity.as_string::<i32>();
        let (offsets, rdata) = answer_addresses(answers)?;
        let rdata = rdata.as_string::<i32>();
        for (row, span) in offsets.windows(2).enumerate() {
            // A null list may still span items: Arrow leaves them undefined.
            if answers.is_null(row) || span[0] == span[1] {
                table.no_remote();
                continue;
            }
            for answer in span[0]..span[1] {
                table.observe(value(entity, row), value(rdata, answer), self.at(row), self.source);
            }
        }
        Ok(())
    }

    /// The instance with the other end of the flow, by its direction.
    fn flow_pairs(&self, table: &mut PairTable) -> Result<(), ExtractError> {
        let direction = leaf(self.batch, DIRECTION).ok_or(ExtractError::MissingColumn(DIRECTION))?;
        let direction = arrow_cast::cast(direction, &DataType::Int32)?;
        let direction = direction.as_primitive::<Int32Type>();
        let (src_entity, src_ip) = (text(self.batch, ENTITY)?, text(self.batch, IP)?);
        let (dst_entity, dst_ip) = (text(self.batch, DST_ENTITY)?, text(self.batch, DST_IP)?);
        let (src_entity, src_ip) = (src_entity.as_string::<i32>(), src_ip.as_string::<i32>());
        let (dst_entity, dst_ip) = (dst_entity.as_string::<i32>(), dst_ip.as_string::<i32>());
        for row in 0..self.batch.num_rows() {
            let ends = FlowEnds {
                direction_id: direction.is_valid(row).then(|| direction.value(row)),
                src_entity: value(src_entity, row),
                src_ip: value(src_ip, row),
                dst_entity: value(dst_entity, row),
                dst_ip: value(dst_ip, row),
            };
            match ends.remote() {
                Some((entity, ip)) => {
                    table.observe(entity, ip, self.at(row), self.source);
                }
                None => table.no_remote(),
            }
        }
        Ok(())
    }
}

/// Each row's span of answers, as offsets into the answers' addresses (UTF-8 strings). Arrow
/// validates list offsets as non-negative and increasing when it decodes them.
fn answer_addresses(answers: &ArrayRef) -> Result<(Vec<usize>, ArrayRef), ExtractError> {
    let (offsets, items): (Vec<usize>, &ArrayRef) = if let Some(list) = answers.as_list_opt::<i32>() {
        (list.value_offsets().iter().map(|o| *o as usize).collect(), list.values())
    } else if let Some(list) = answers.as_list_opt::<i64>() {
        (list.value_offsets().iter().map(|o| *o as usize).collect(), list.values())
    } else {
        return Err(ExtractError::MissingColumn(ANSWER_RDATA));
    };
    let rdata =
        items.as_struct_opt().and_then(|s| s.column_by_name(RDATA)).ok_or(ExtractError::MissingColumn(ANSWER_RDATA))?;
    Ok((offsets, strings(rdata)?))
}

/// A required column as UTF-8 strings.
fn text(batch: &RecordBatch, path: &'static str) -> Result<ArrayRef, ExtractError> {
    Ok(strings(leaf(batch, path).ok_or(ExtractError::MissingColumn(path))?)?)
}

fn fill_context(batch: &RecordBatch, context: &mut ObjectContext) -> Result<(), ExtractError> {
    let slots: [(&mut Option<String>, Option<&ArrayRef>); 3] = [
        (&mut context.account, ACCOUNT.iter().find_map(|p| leaf(batch, p))),
        (&mut context.region, leaf(batch, REGION)),
        (&mut context.product, leaf(batch, PRODUCT)),
    ];
    for (slot, column) in slots {
        if slot.is_some() {
            continue;
        }
        if let Some(column) = column {
            let column = strings(column)?;
            let column = column.as_string::<i32>();
            *slot = (0..column.len()).find_map(|row| value(column, row)).map(str::to_owned);
        }
    }
    Ok(())
}

/// A nested column by dotted path, through the struct columns above it.
fn leaf<'a>(batch: &'a RecordBatch, path: &str) -> Option<&'a ArrayRef> {
    let mut parts = path.split('.');
    let mut column = batch.column_by_name(parts.next()?)?;
    for part in parts {
        column = column.as_struct_opt()?.column_by_name(part)?;
    }
    Some(column)
}

/// The column as UTF-8 strings, whichever string encoding the writer chose.
fn strings(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match column.data_type() {
        DataType::Utf8 => Ok(Arc::clone(column)),
        _ => arrow_cast::cast(column, &DataType::Utf8),
    }
}

/// OCSF `time` is epoch milliseconds; `time_dt` is a timestamp. Anything else carries no time.
fn millis(column: &ArrayRef) -> Result<Option<ArrayRef>, ArrowError> {
    match column.data_type() {
        DataType::Int64 => Ok(Some(Arc::clone(column))),
        DataType::Timestamp(_, _) => {
            let ms = arrow_cast::cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            Ok(Some(arrow_cast::cast(&ms, &DataType::Int64)?))
        }
        _ => Ok(None),
    }
}

fn value(column: &StringArray, row: usize) -> Option<&str> {
    column.is_valid(row).then(|| column.value(row))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::synthetic::{OcsfVersion, Row, write_parquet};

    fn rows() -> Vec<Row> {
        vec![
            Row::new(1_000, Some("i-1"), Some("10.0.0.1")),
            Row::new(3_000, Some("i-1"), Some("10.0.0.1")),
            Row::new(2_000, Some("i-1"), Some("10.0.0.1")),
            Row::new(4_000, Some("i-2"), Some("192.168.1.9")),
            Row::new(5_000, Some("i-2"), Some("2001:db8::7")),
            Row::new(6_000, None, Some("10.0.0.3")),
            Row::new(7_000, Some("i-3"), None),
            Row::new(8_000, Some("-"), Some("10.0.0.4")),
            Row::new(9_000, Some("i-4"), Some("-")),
        ]
    }

    fn check(version: OcsfVersion) {
        let bytes = write_parquet(version, &rows()).expect("write");
        let (table, context) = read_pairs(Bytes::from(bytes), 7, Peer::Source).expect("read");
        assert_eq!(table.rows(), 9);
        assert_eq!(table.rejected().missing, 4);
        assert_eq!(table.rejected().not_ipv4, 1);
        let pairs = table.into_pairs();
        assert_eq!(pairs.len(), 2);
        assert_eq!((pairs[0].entity.as_str(), pairs[0].ip), ("i-1", Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((pairs[0].seen.count, pairs[0].seen.first_ms, pairs[0].seen.last_ms), (3, Some(1_000), Some(3_000)));
        assert_eq!(pairs[0].seen.sources, vec![7]);
        assert_eq!((pairs[1].entity.as_str(), pairs[1].seen.count), ("i-2", 1));
        assert_eq!(context.account.as_deref(), Some("111122223333"));
        assert_eq!(context.region.as_deref(), Some("us-east-1"));
        assert_eq!(context.product.as_deref(), Some("Amazon VPC"));
    }

    #[test]
    fn ocsf_v2_objects() {
        check(OcsfVersion::V2);
    }

    #[test]
    fn ocsf_v1_objects() {
        check(OcsfVersion::V1);
    }

    #[test]
    fn an_empty_object_has_no_pairs() {
        let bytes = write_parquet(OcsfVersion::V2, &[]).expect("write");
        let (table, context) = read_pairs(Bytes::from(bytes), 0, Peer::Source).expect("read");
        assert_eq!((table.rows(), table.distinct()), (0, 0));
        assert_eq!(context, ObjectContext::default());
    }

    #[test]
    fn bytes_that_are_not_parquet_fail() {
        let err = read_pairs(Bytes::from_static(b"PAR1 but not really"), 0, Peer::Source).unwrap_err();
        assert!(matches!(err, ExtractError::Parquet(_)), "{err}");
    }

    fn parquet(batch: &RecordBatch) -> Bytes {
        let mut buffer = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None).expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
        Bytes::from(buffer)
    }

    #[test]
    fn a_table_without_the_endpoint_columns_fails_by_name() {
        let batch =
            RecordBatch::try_from_iter([("time", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]).expect("batch");
        let err = read_pairs(parquet(&batch), 0, Peer::Source).unwrap_err();
        assert!(matches!(err, ExtractError::MissingColumn(ENTITY)), "{err}");
    }

    #[test]
    fn remote_pairing_needs_the_direction_of_a_flow() {
        let endpoint = arrow_array::StructArray::try_from(vec![
            ("instance_uid", Arc::new(StringArray::from(vec!["i-1"])) as ArrayRef),
            ("ip", Arc::new(StringArray::from(vec!["10.0.0.1"])) as ArrayRef),
        ])
        .expect("struct");
        let batch = RecordBatch::try_from_iter([("src_endpoint", Arc::new(endpoint) as ArrayRef)]).expect("batch");
        assert_eq!(read_pairs(parquet(&batch), 0, Peer::Source).expect("source pairs").0.distinct(), 1);
        let err = read_pairs(parquet(&batch), 0, Peer::Remote).unwrap_err();
        assert!(matches!(err, ExtractError::MissingColumn(DIRECTION)), "{err}");
    }

    mod remote {
        use super::*;
        use crate::scorer::pairs::Rejected;
        use crate::synthetic::ocsf;
        use crate::synthetic::record::{Detail, Direction, Dns, Endpoint, Flow, Record, Source};

        fn record(src: Endpoint, dst: Endpoint, detail: Detail) -> Record {
            let (account, region, zone) = ("111122223333".into(), "us-east-1".into(), "use1-az1".into());
            Record { time_ms: 1_000, duration_ms: 0, account, region, zone, src, dst, detail }
        }

        fn end(ip: &str, instance: Option<&str>) -> Endpoint {
            Endpoint { instance_uid: instance.map(str::to_owned), ..Endpoint::remote(ip, 443) }
        }

        fn flow(direction: Direction, src: Endpoint, dst: Endpoint) -> Record {
            let (protocol_num, tcp_flags, bytes, packets, accepted, status) = (6, None, 100, 1, true, "OK");
            let flow = Flow { direction, protocol_num, tcp_flags, bytes, packets, accepted, status };
            record(src, dst, Detail::Flow(flow))
        }

        fn query(instance: Option<&str>, answers: &[(&'static str, &str)]) -> Record {
            let answers = answers.iter().map(|(t, a)| (*t, (*a).to_owned())).collect();
            let (hostname, query_type, rcode, transport) = ("example.com.".into(), "A", "NOERROR", "UDP");
            let dns = Dns { hostname, query_type, rcode, transport, answers };
            record(end("10.0.0.5", instance), Endpoint::default(), Detail::Dns(dns))
        }

        /// The distinct pairs and the rejection counts, read projected and from every column.
        fn read(source: Source, version: OcsfVersion, records: &[Record]) -> [(Vec<(String, String)>, Rejected); 2] {
            let bytes =
                Bytes::from(ocsf::write(source, version, records, ocsf::lake_properties(), Vec::new()).expect("write"));
            let summary = |table: PairTable| {
                let rejected = table.rejected();
                (table.into_pairs().into_iter().map(|p| (p.entity, p.ip.to_string())).collect(), rejected)
            };
            let projected = read_pairs(bytes.clone(), 0, Peer::Remote).expect("projected").0;
            let mut full = PairTable::default();
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet").build().expect("reader");
            for batch in reader {
                add_batch(&batch.expect("batch"), 0, Peer::Remote, &mut full, &mut ObjectContext::default())
                    .expect("add");
            }
            [summary(projected), summary(full)]
        }

        fn pair(entity: &str, ip: &str) -> (String, String) {
            (entity.to_owned(), ip.to_owned())
        }

        #[test]
        fn flows_pair_the_instance_with_the_other_end_and_undirected_flows_are_counted() {
            let records = [
                flow(Direction::Outbound, end("10.0.0.5", Some("i-1")), end("52.94.0.1", None)),
                flow(Direction::Inbound, end("198.51.100.7", None), end("10.0.0.5", Some("i-1"))),
                flow(Direction::Inbound, end("2001:db8::7", None), end("10.0.0.5", Some("i-1"))),
                flow(Direction::Unknown, end("-", None), end("-", None)),
            ];
            for version in OcsfVersion::ALL {
                for (pairs, rejected) in read(Source::VpcFlow, version, &records) {
                    assert_eq!(pairs, [pair("i-1", "52.94.0.1"), pair("i-1", "198.51.100.7")], "{version:?}");
                    assert_eq!(rejected, Rejected { not_ipv4: 1, no_remote: 1, ..Rejected::default() });
                }
            }
        }

        #[test]
        fn queries_pair_the_instance_with_each_ipv4_answer_and_unanswered_ones_are_counted() {
            let records = [
                query(Some("i-1"), &[("A", "93.184.216.34"), ("A", "93.184.216.35"), ("AAAA", "2606:2800::1")]),
                query(Some("i-2"), &[]),
                query(None, &[("A", "1.2.3.4")]),
            ];
            for version in OcsfVersion::ALL {
                for (pairs, rejected) in read(Source::Route53, version, &records) {
                    assert_eq!(pairs, [pair("i-1", "93.184.216.34"), pair("i-1", "93.184.216.35")], "{version:?}");
                    assert_eq!(rejected, Rejected { missing: 1, not_ipv4: 1, no_remote: 1, ..Rejected::default() });
                }
            }
        }
    }
}
