use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};

use super::*;

const NOW: i64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z

fn ticks() -> StreamSchema {
    let field = |name: &str, field_type| FieldDef {
        name: name.into(),
        field_type,
    };
    StreamSchema::new(
        "ticks",
        vec!["symbol".into()],
        vec![
            field("price", FieldType::F64),
            field("size", FieldType::I64),
            field("buy", FieldType::Bool),
            field("note", FieldType::Str),
        ],
    )
    .unwrap()
}

fn parse(body: &str, format: Format) -> Result<ParsedBatch, IngestError> {
    parse_batch(
        &ticks(),
        body.as_bytes(),
        format,
        &IngestLimits::default(),
        NOW,
    )
}

fn only_error(body: &str) -> RowError {
    let parsed = parse(body, Format::JsonArray).unwrap();
    assert_eq!(parsed.batch.len(), 0, "no row should be accepted");
    assert_eq!(parsed.rejected.len(), 1);
    parsed.rejected[0].clone()
}

#[test]
fn parses_typed_columns_and_dictionary_encodes_tags() {
    let body = r#"[
        {"ts": "2026-11-23T09:59:00.500Z", "symbol": "BTC", "price": 97000.5, "size": 2, "buy": true, "note": "x"},
        {"ts": 1795427941000, "symbol": "ETH", "price": 3100},
        {"ts": 1795427942000, "symbol": "BTC", "price": null, "size": 1}
    ]"#;
    let parsed = parse(body, Format::JsonArray).unwrap();
    assert!(parsed.rejected.is_empty());
    let b = &parsed.batch;
    assert_eq!(
        b.ts,
        vec![1_795_427_940_500, 1_795_427_941_000, 1_795_427_942_000]
    );
    assert_eq!(b.tags[0].keys, vec![0, 1, 0]);
    assert_eq!(
        b.tags[0].dict.iter().map(|s| &**s).collect::<Vec<_>>(),
        ["BTC", "ETH"]
    );
    assert_eq!(
        b.fields[0],
        FieldColumn::F64(vec![Some(97000.5), Some(3100.0), None])
    );
    assert_eq!(b.fields[1], FieldColumn::I64(vec![Some(2), None, Some(1)]));
    assert_eq!(b.fields[2], FieldColumn::Bool(vec![Some(true), None, None]));
    assert_eq!(parsed.producer_ids, vec![false; 3]);
}

#[test]
fn ndjson_rows_are_judged_line_by_line() {
    let body = "{\"ts\": 1795427940000, \"price\": 1}\n\n{\"ts\": oops}\n{\"ts\": 1795427941000, \"price\": 2}\n";
    let parsed = parse(body, Format::Ndjson).unwrap();
    assert_eq!(parsed.batch.len(), 2);
    assert_eq!(parsed.total_rows, 3);
    assert_eq!(parsed.source_rows, vec![0, 2]);
    let err = &parsed.rejected[0];
    assert_eq!((err.row, err.line), (1, Some(3)));
    assert!(err.message.starts_with("malformed JSON"), "{}", err.message);
}

#[test]
fn each_bad_value_names_its_row_and_field() {
    let cases = [
        (r#"[{"price": 1}]"#, "ts", "missing"),
        (r#"[{"ts": "noon"}]"#, "ts", "RFC 3339"),
        (r#"[{"ts": 1.5}]"#, "ts", "integer epoch"),
        (r#"[{"ts": -5}]"#, "ts", "outside the accepted range"),
        (
            r#"[{"ts": 1795428600001}]"#,
            "ts",
            "outside the accepted range",
        ),
        (
            r#"[{"ts": 1795427940000, "price": "12"}]"#,
            "price",
            "expected f64, got a string",
        ),
        (
            r#"[{"ts": 1795427940000, "price": "NaN"}]"#,
            "price",
            "finite",
        ),
        (
            r#"[{"ts": 1795427940000, "size": 1.5}]"#,
            "size",
            "expected i64",
        ),
        (
            r#"[{"ts": 1795427940000, "size": 18446744073709551615}]"#,
            "size",
            "does not fit",
        ),
        (
            r#"[{"ts": 1795427940000, "symbol": 7}]"#,
            "symbol",
            "tags are strings",
        ),
        (
            r#"[{"ts": 1795427940000, "colour": "red"}]"#,
            "colour",
            "unknown field",
        ),
        (
            r#"[{"ts": 1795427940000, "price": {"v": 1}}]"#,
            "price",
            "nested",
        ),
        (r#"[{"ts": 1795427940000, "id": "123"}]"#, "id", "UUID"),
        (
            r#"[{"ts": 1795427940000, "price": 1, "price": 2}]"#,
            "price",
            "twice",
        ),
    ];
    for (body, field, needle) in cases {
        let err = only_error(body);
        assert_eq!(err.row, 0, "{body}");
        assert_eq!(err.field.as_deref(), Some(field), "{body}");
        assert!(err.message.contains(needle), "{body}: {}", err.message);
    }
}

#[test]
fn a_bad_row_leaves_no_trace_in_the_columns() {
    let body = r#"[{"ts": 1795427940000, "symbol": "A", "price": 1},
                   {"ts": 1795427940000, "symbol": "B", "price": "x"},
                   {"ts": 1795427940000, "symbol": "C", "price": 3}]"#;
    let parsed = parse(body, Format::JsonArray).unwrap();
    assert_eq!(parsed.rejected.len(), 1);
    assert_eq!(parsed.rejected[0].row, 1);
    assert_eq!(parsed.batch.len(), 2);
    assert_eq!(
        parsed.batch.fields[0],
        FieldColumn::F64(vec![Some(1.0), Some(3.0)])
    );
    let tags: Vec<_> = (0..2)
        .map(|r| parsed.batch.tags[0].value(r).map(|s| s.to_string()))
        .collect();
    assert_eq!(tags, [Some("A".to_owned()), Some("C".to_owned())]);
    assert!(parsed.batch.is_consistent_with(&ticks()));
}

#[test]
fn whole_body_errors() {
    assert!(matches!(
        parse("[{\"ts\": 1", Format::JsonArray),
        Err(IngestError::Malformed { line: 1, .. })
    ));
    assert!(matches!(
        parse("[] trailing", Format::JsonArray),
        Err(IngestError::Malformed { .. })
    ));
    assert_eq!(
        parse("[]", Format::JsonArray).unwrap_err(),
        IngestError::Empty
    );
    assert_eq!(
        parse("\n\n", Format::Ndjson).unwrap_err(),
        IngestError::Empty
    );
    let invalid_utf8 = b"[{\"ts\": 1795427940000, \"note\": \"\xff\"}]";
    assert!(matches!(
        parse_batch(
            &ticks(),
            invalid_utf8,
            Format::JsonArray,
            &IngestLimits::default(),
            NOW
        ),
        Err(IngestError::Malformed { .. })
    ));
    let nan = r#"[{"ts": 1795427940000, "price": NaN}]"#;
    assert!(matches!(
        parse(nan, Format::JsonArray),
        Err(IngestError::Malformed { .. })
    ));
    let overflow = r#"[{"ts": 1795427940000, "price": 1e999}]"#;
    assert!(matches!(
        parse(overflow, Format::JsonArray),
        Err(IngestError::Malformed { .. })
    ));
}

#[test]
fn batches_over_the_row_limit_are_refused() {
    let limits = IngestLimits {
        max_rows: 2,
        ..IngestLimits::default()
    };
    let row = r#"{"ts": 1795427940000}"#;
    let array = format!("[{row},{row},{row}]");
    let ndjson = format!("{row}\n{row}\n{row}\n");
    let exactly_two = format!("[{row},{row}]");
    for (body, format) in [(&array, Format::JsonArray), (&ndjson, Format::Ndjson)] {
        let result = parse_batch(&ticks(), body.as_bytes(), format, &limits, NOW);
        assert_eq!(result.unwrap_err(), IngestError::TooManyRows { max: 2 });
    }
    let ok = parse_batch(
        &ticks(),
        exactly_two.as_bytes(),
        Format::JsonArray,
        &limits,
        NOW,
    )
    .unwrap();
    assert_eq!(ok.batch.len(), 2);
}

#[test]
fn producer_ids_are_kept_and_flagged() {
    let body = r#"[{"ts": 1795427940000, "id": "0194f5c2-7a3e-7cc1-9d2b-1f0e8a7b6c5d"}, {"ts": 1795427940000}]"#;
    let parsed = parse(body, Format::JsonArray).unwrap();
    assert_eq!(parsed.producer_ids, vec![true, false]);
    assert_eq!(
        crate::ids::format_id(parsed.batch.ids[0]),
        "0194f5c2-7a3e-7cc1-9d2b-1f0e8a7b6c5d"
    );
}

#[test]
fn a_single_object_is_a_batch_of_one() {
    let parsed = parse(r#"{"ts": 1795427940000, "price": 1}"#, Format::JsonArray).unwrap();
    assert_eq!(parsed.batch.len(), 1);
}

#[test]
fn non_object_rows_are_rejected_by_position() {
    let parsed = parse(r#"[1, {"ts": 1795427940000}, "x", [2]]"#, Format::JsonArray).unwrap();
    let rows: Vec<usize> = parsed.rejected.iter().map(|e| e.row).collect();
    assert_eq!(rows, vec![0, 2, 3]);
    assert_eq!(parsed.batch.len(), 1);
}

#[test]
fn an_ndjson_line_with_trailing_content_is_rejected_and_not_stored() {
    let body = "{\"ts\": 1795427940000, \"price\": 1}\n{\"ts\": 1795427941000, \"price\": 2} x\n{\"ts\": 1795427942000, \"price\": 3}{\"ts\": 1795427943000}\n{\"ts\": 1795427944000, \"price\": 4}\n";
    let parsed = parse(body, Format::Ndjson).unwrap();
    assert_eq!(parsed.total_rows, 4);
    assert_eq!(
        parsed.batch.fields[0],
        FieldColumn::F64(vec![Some(1.0), Some(4.0)])
    );
    assert_eq!(parsed.source_rows, vec![0, 3]);
    let rejected: Vec<(usize, Option<usize>)> =
        parsed.rejected.iter().map(|e| (e.row, e.line)).collect();
    assert_eq!(rejected, vec![(1, Some(2)), (2, Some(3))]);
    // An invalid row with trailing content is reported once.
    let parsed = parse(
        "{\"price\": 1} x\n{\"ts\": 1795427944000}\n",
        Format::Ndjson,
    )
    .unwrap();
    assert_eq!(parsed.rejected.len(), 1);
    assert_eq!(parsed.source_rows, vec![1]);
}

#[test]
fn a_repeated_ts_or_id_is_an_error() {
    assert_eq!(
        only_error(r#"[{"ts": 1795427940000, "ts": 1795427941000}]"#)
            .field
            .as_deref(),
        Some("ts")
    );
    let id = "0194f5c2-7a3e-7cc1-9d2b-1f0e8a7b6c5d";
    let body = format!(r#"[{{"ts": 1795427940000, "id": "{id}", "id": "{id}"}}]"#);
    let err = only_error(&body);
    assert_eq!(
        (err.field.as_deref(), err.message.as_str()),
        (Some("id"), "given twice")
    );
}

#[test]
fn floats_are_stored_bit_for_bit_as_written() {
    // Shortest round-trip renderings of f64 values (as any JSON encoder writes
    // them); a fast-path parser lands one ulp off on some of them.
    let values = [
        99.98349207994768_f64,
        112.69994892267304,
        0.1 + 0.2,
        97_000.123_456_789,
        f64::MIN_POSITIVE,
        1.7976931348623157e308,
    ];
    let mut next = Noise(0x2545_F491_4F6C_DD1D);
    let values: Vec<f64> = values
        .into_iter()
        .chain((0..2000).map(|_| 100.0 * (0.01 * next.unit()).exp()))
        .collect();
    let body = serde_json::to_string(
        &values
            .iter()
            .enumerate()
            .map(|(i, price)| serde_json::json!({"ts": NOW - i as i64, "price": price}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let parsed = parse(&body, Format::JsonArray).unwrap();
    let FieldColumn::F64(stored) = &parsed.batch.fields[0] else {
        panic!("price is an f64 column");
    };
    for (written, stored) in values.iter().zip(stored) {
        assert_eq!(
            stored.map(f64::to_bits),
            Some(written.to_bits()),
            "{written}"
        );
    }
}

/// xorshift64*, for values spread over many mantissas.
struct Noise(u64);

impl Noise {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}
