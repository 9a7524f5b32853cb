//! Result formats: JSON (the default), CSV, NDJSON, Arrow IPC stream and Parquet.
//!
//! Text formats write times as RFC 3339 in UTC (`2024-05-01T12:00:00.250Z`, the fraction
//! only when there is one), floats that are not finite as `null`, dictionary columns as
//! their values and binary columns (such as `id`) as hex. Arrow and Parquet keep the
//! result's types exactly.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::{csv, json};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use serde_json::json;

use crate::QueryResult;
use crate::error::{Error, Result};

/// Times in text formats: naive UTC values with a `Z`, fraction digits as needed.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `{"columns": [{"name", "type"}], "rows": [{...}], "row_count": n}`.
    #[default]
    Json,
    /// A header line, then one line per row.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// An Arrow IPC stream.
    Arrow,
    /// A Parquet file (zstd).
    Parquet,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Csv,
        Format::Ndjson,
        Format::Arrow,
        Format::Parquet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv",
            Format::Ndjson => "application/x-ndjson",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The first media type of an `Accept` header that names a format; `None` when none
    /// does (including `*/*`), so the caller falls back to the default.
    pub fn from_accept(accept: &str) -> Option<Format> {
        accept.split(',').find_map(|item| {
            let media = item.split(';').next().unwrap_or("").trim();
            Format::ALL
                .into_iter()
                .find(|format| media.eq_ignore_ascii_case(format.content_type()))
                .or_else(|| match media.to_ascii_lowercase().as_str() {
                    "application/ndjson" | "application/jsonl" => Some(Format::Ndjson),
                    "application/vnd.apache.arrow.file" => None,
                    "application/x-parquet" => Some(Format::Parquet),
                    _ => None,
                })
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        let text = text.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|format| format.name() == text)
            .or(match text.as_str() {
                "jsonl" => Some(Format::Ndjson),
                "ipc" => Some(Format::Arrow),
                _ => None,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {text:?}; formats are {}", names.join(", "))
            })
    }
}

/// Writes `result` in `format`.
pub fn encode(result: &QueryResult, format: Format) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::error::Error| Error::Encode {
        format: format.name(),
        message: e.to_string(),
    };
    match format {
        Format::Json => encode_json(result).map_err(|e| failed(&e)),
        Format::Ndjson => {
            let (_, batches) = utc_naive(result);
            let mut writer = json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .with_timestamp_format(TIMESTAMP_FORMAT.to_owned())
                .build::<_, json::writer::LineDelimited>(Vec::new());
            for batch in &batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.finish().map_err(|e| failed(&e))?;
            Ok(writer.into_inner())
        }
        Format::Csv => {
            let (_, batches) = utc_naive(result);
            let mut buffer = Vec::new();
            {
                let mut writer = csv::WriterBuilder::new()
                    .with_header(true)
                    .with_timestamp_format(TIMESTAMP_FORMAT.to_owned())
                    .build(&mut buffer);
                if batches.is_empty() {
                    // A header even for no rows.
                    let empty = RecordBatch::new_empty(utc_naive_schema(&result.schema));
                    writer.write(&empty).map_err(|e| failed(&e))?;
                }
                for batch in &batches {
                    writer.write(batch).map_err(|e| failed(&e))?;
                }
            }
            Ok(buffer)
        }
        Format::Arrow => {
            let mut writer =
                StreamWriter::try_new(Vec::new(), &result.schema).map_err(|e| failed(&e))?;
            for batch in &result.batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.finish().map_err(|e| failed(&e))?;
            writer.into_inner().map_err(|e| failed(&e))
        }
        Format::Parquet => {
            let properties = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let mut writer =
                ArrowWriter::try_new(Vec::new(), Arc::clone(&result.schema), Some(properties))
                    .map_err(|e| failed(&e))?;
            for batch in &result.batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.into_inner().map_err(|e| failed(&e))
        }
    }
}

/// `{"columns": [...], "rows": [...], "row_count": n}`; rows come from Arrow's JSON writer
/// and are spliced in, not parsed back.
fn encode_json(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let columns: Vec<serde_json::Value> = result
        .schema
        .fields()
        .iter()
        .map(|field| json!({"name": field.name(), "type": field.data_type().to_string()}))
        .collect();
    let (_, batches) = utc_naive(result);
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"columns\":");
    serde_json::to_writer(&mut out, &columns).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    out.extend_from_slice(b",\"rows\":");
    let mut writer = json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_format(TIMESTAMP_FORMAT.to_owned())
        .build::<_, json::writer::JsonArray>(out);
    for batch in &batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let mut out = writer.into_inner();
    out.extend_from_slice(format!(",\"row_count\":{}}}", result.row_count()).as_bytes());
    Ok(out)
}

/// The result with every zoned timestamp column relabelled as a zone-less one holding the
/// same UTC instant, so text formats print UTC with a `Z` whatever the column's zone.
fn utc_naive(result: &QueryResult) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = utc_naive_schema(&result.schema);
    if schema == result.schema {
        return (schema, result.batches.clone());
    }
    let batches = result
        .batches
        .iter()
        .filter_map(|batch| {
            let columns: Vec<ArrayRef> = batch.columns().iter().map(drop_zone).collect();
            // Same lengths and types as `schema` by construction.
            RecordBatch::try_new(Arc::clone(&schema), columns).ok()
        })
        .collect();
    (schema, batches)
}

fn utc_naive_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Timestamp(unit, Some(_)) => field
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(*unit, None)),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn drop_zone(array: &ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, Some(_)) => Arc::new(
            array
                .as_primitive::<TimestampSecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => Arc::new(
            array
                .as_primitive::<TimestampMillisecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Arc::new(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, Some(_)) => Arc::new(
            array
                .as_primitive::<TimestampNanosecondType>()
                .clone()
                .with_timezone_opt(None::<String>),
        ),
        _ => Arc::clone(array),
    }
}

#[cfg(test)]
mod tests;
