use std::sync::Arc;

use datafusion::arrow::array::{
    DictionaryArray, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use super::*;

/// 2024-05-01T00:00:00.250Z and 2024-05-01T00:01:00Z.
const TIMES: [i64; 2] = [1_714_521_600_250, 1_714_521_660_000];

fn result() -> QueryResult {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "symbol",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("price", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
    ]));
    let symbols: DictionaryArray<Int32Type> = vec![Some("AAA"), None].into_iter().collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(TimestampMillisecondArray::from(TIMES.to_vec()).with_timezone("UTC")),
            Arc::new(symbols),
            Arc::new(Float64Array::from(vec![Some(101.5), Some(f64::NAN)])),
            Arc::new(Int64Array::from(vec![Some(3), None])),
        ],
    )
    .unwrap();
    QueryResult {
        schema,
        batches: vec![batch],
    }
}

#[test]
fn json_has_columns_rows_and_count_with_rfc3339_utc_times() {
    let bytes = encode(&result(), Format::Json).unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["row_count"], 2);
    assert_eq!(value["columns"][0]["name"], "ts");
    assert_eq!(value["columns"].as_array().unwrap().len(), 4);
    assert_eq!(
        value["rows"],
        json!([
            {"ts": "2024-05-01T00:00:00.250Z", "symbol": "AAA", "price": 101.5, "n": 3},
            {"ts": "2024-05-01T00:01:00Z", "symbol": null, "price": null, "n": null}
        ])
    );
}

#[test]
fn ndjson_is_one_object_per_line() {
    let bytes = encode(&result(), Format::Ndjson).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["ts"], "2024-05-01T00:00:00.250Z");
    assert_eq!(lines[1]["symbol"], Value::Null);
}

#[test]
fn csv_has_a_header_and_text_values() {
    let text = String::from_utf8(encode(&result(), Format::Csv).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ts,symbol,price,n");
    assert_eq!(lines[1], "2024-05-01T00:00:00.250Z,AAA,101.5,3");
    assert!(
        lines[2].starts_with("2024-05-01T00:01:00Z,,"),
        "{}",
        lines[2]
    );
    assert_eq!(lines.len(), 3);
}

#[test]
fn arrow_and_parquet_read_back_to_the_same_batches() {
    let result = result();
    let bytes = encode(&result, Format::Arrow).unwrap();
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].schema(), result.schema);
    assert_eq!(&batches[0].columns()[0], &result.batches[0].columns()[0]);
    assert_eq!(&batches[0].columns()[1], &result.batches[0].columns()[1]);
    assert_eq!(&batches[0].columns()[3], &result.batches[0].columns()[3]);

    let bytes = encode(&result, Format::Parquet).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches[0].num_rows(), 2);
    assert_eq!(batches[0].schema().field(0), result.schema.field(0));
    assert_eq!(&batches[0].columns()[0], &result.batches[0].columns()[0]);
    assert_eq!(&batches[0].columns()[3], &result.batches[0].columns()[3]);
}

#[test]
fn an_empty_result_still_has_its_columns() {
    let empty = QueryResult {
        schema: result().schema,
        batches: Vec::new(),
    };
    let value: Value = serde_json::from_slice(&encode(&empty, Format::Json).unwrap()).unwrap();
    assert_eq!(value["rows"], json!([]));
    assert_eq!(value["row_count"], 0);
    let csv = String::from_utf8(encode(&empty, Format::Csv).unwrap()).unwrap();
    assert_eq!(csv.trim_end(), "ts,symbol,price,n");
    let bytes = encode(&empty, Format::Arrow).unwrap();
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    assert_eq!(reader.schema(), empty.schema);
}

#[test]
fn formats_parse_by_name_and_accept_header() {
    assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
    assert_eq!("ipc".parse::<Format>(), Ok(Format::Arrow));
    assert!(
        "xml"
            .parse::<Format>()
            .unwrap_err()
            .contains("json, csv, ndjson, arrow, parquet")
    );
    assert_eq!(
        Format::from_accept("text/html, application/vnd.apache.arrow.stream;q=0.9"),
        Some(Format::Arrow)
    );
    assert_eq!(Format::from_accept("*/*"), None);
    for format in Format::ALL {
        assert_eq!(Format::from_accept(format.content_type()), Some(format));
    }
}
