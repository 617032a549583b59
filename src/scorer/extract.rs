//! OCSF Parquet to pairs. Only the leaf columns the scorer needs are decoded: the pair, the time,
//! and the context a finding names. OCSF 1.0 (source version 1) and 1.1 (version 2) differ in the
//! account column and in whether `time_dt` exists; both are read.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;

use super::pairs::PairTable;

/// The leaf columns read, by dotted path. The first two are required.
pub const ENTITY: &str = "src_endpoint.instance_uid";
pub const IP: &str = "src_endpoint.ip";
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

/// Where the rows of one object came from, from its first row that says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObjectContext {
    pub account: Option<String>,
    pub region: Option<String>,
    pub product: Option<String>,
}

/// A reader that decodes only the scorer's columns.
pub fn projected_reader(bytes: Bytes) -> Result<ParquetRecordBatchReader, ExtractError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let schema = builder.parquet_schema();
    let wanted: Vec<&str> = [ENTITY, IP, PRODUCT, REGION].into_iter().chain(TIME).chain(ACCOUNT).collect();
    let mut indices = Vec::new();
    let mut found = [false, false];
    for (i, column) in schema.columns().iter().enumerate() {
        let path = column.path().string();
        if let Some(at) = wanted.iter().position(|w| *w == path) {
            indices.push(i);
            if at < 2 {
                found[at] = true;
            }
        }
    }
    if !found[0] {
        return Err(ExtractError::MissingColumn(ENTITY));
    }
    if !found[1] {
        return Err(ExtractError::MissingColumn(IP));
    }
    let mask = ProjectionMask::leaves(schema, indices);
    Ok(builder.with_projection(mask).with_batch_size(BATCH_ROWS).build()?)
}

/// Every pair of one object, deduplicated, with the object's context.
pub fn read_pairs(bytes: Bytes, source: u32) -> Result<(PairTable, ObjectContext), ExtractError> {
    let mut table = PairTable::default();
    let mut context = ObjectContext::default();
    for batch in projected_reader(bytes)? {
        add_batch(&batch?, source, &mut table, &mut context)?;
    }
    Ok((table, context))
}

/// Adds the rows of one record batch, projected or not, to `table`.
pub fn add_batch(
    batch: &RecordBatch,
    source: u32,
    table: &mut PairTable,
    context: &mut ObjectContext,
) -> Result<(), ExtractError> {
    let entity = strings(leaf(batch, ENTITY).ok_or(ExtractError::MissingColumn(ENTITY))?)?;
    let ip = strings(leaf(batch, IP).ok_or(ExtractError::MissingColumn(IP))?)?;
    let (entity, ip) = (entity.as_string::<i32>(), ip.as_string::<i32>());
    let time = TIME.iter().find_map(|p| leaf(batch, p)).map(millis).transpose()?.flatten();
    let time = time.as_ref().map(|t| t.as_primitive::<arrow_array::types::Int64Type>());
    for row in 0..batch.num_rows() {
        let at = time.and_then(|t| t.is_valid(row).then(|| t.value(row)));
        table.observe(value(entity, row), value(ip, row), at, source);
    }
    fill_context(batch, context)?;
    Ok(())
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

    use arrow_array::Int64Array;

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
        let (table, context) = read_pairs(Bytes::from(bytes), 7).expect("read");
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
        let (table, context) = read_pairs(Bytes::from(bytes), 0).expect("read");
        assert_eq!((table.rows(), table.distinct()), (0, 0));
        assert_eq!(context, ObjectContext::default());
    }

    #[test]
    fn bytes_that_are_not_parquet_fail() {
        let err = read_pairs(Bytes::from_static(b"PAR1 but not really"), 0).unwrap_err();
        assert!(matches!(err, ExtractError::Parquet(_)), "{err}");
    }

    #[test]
    fn a_table_without_the_endpoint_columns_fails_by_name() {
        let batch =
            RecordBatch::try_from_iter([("time", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]).expect("batch");
        let mut buffer = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let err = read_pairs(Bytes::from(buffer), 0).unwrap_err();
        assert!(matches!(err, ExtractError::MissingColumn(ENTITY)), "{err}");
    }
}
