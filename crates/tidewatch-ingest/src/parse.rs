//! The streaming row parser.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tidewatch_types::batch::TagInterner;
use tidewatch_types::schema::ColumnRef;
use tidewatch_types::time::parse_rfc3339_ms;
use tidewatch_types::{EventBatch, EventId, FieldColumn, StreamSchema, TimestampMs};

use crate::ids::{assign_id, parse_id};

/// The body encodings ingest accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of row objects.
    JsonArray,
    /// One row object per line (`application/x-ndjson`); blank lines are skipped.
    Ndjson,
}

/// Bounds on what one batch may contain.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_rows: usize,
    /// Earliest accepted event time (inclusive).
    pub min_ts: TimestampMs,
    /// How far past the server clock an event time may be. Guards the watermark: one event
    /// from the far future would otherwise close every open window.
    pub max_future_ms: i64,
    pub max_tag_bytes: usize,
    pub max_string_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_rows: 100_000,
            min_ts: 0,
            max_future_ms: 5 * 60 * 1000,
            max_tag_bytes: 256,
            max_string_bytes: 64 * 1024,
        }
    }
}

/// One rejected row: where, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Zero-based position of the row in the batch.
    pub row: usize,
    /// One-based line number, for NDJSON bodies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// Errors that reject the whole body before any row is judged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the batch has more than {max} rows")]
    TooManyRows { max: usize },
    #[error("the batch has no rows")]
    Empty,
}

/// The outcome of parsing: the valid rows as a batch, and every rejected row.
#[derive(Debug)]
pub struct ParsedBatch {
    pub batch: EventBatch,
    /// For each row of `batch`, whether the producer gave its id (so it must be deduplicated).
    pub producer_ids: Vec<bool>,
    /// For each row of `batch`, its position in the request.
    pub source_rows: Vec<usize>,
    pub rejected: Vec<RowError>,
    /// Rows in the request, valid or not.
    pub total_rows: usize,
}

/// Parses and validates `body` against `schema`. Rows that fail validation are listed in
/// [`ParsedBatch::rejected`]; whether that rejects the batch is the caller's policy.
pub fn parse_batch(
    schema: &StreamSchema,
    body: &[u8],
    format: Format,
    limits: &IngestLimits,
    now_ms: TimestampMs,
) -> Result<ParsedBatch, IngestError> {
    let mut builder = BatchBuilder::new(schema, limits, now_ms, format == Format::Ndjson);
    match format {
        Format::JsonArray => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let result = RowsSeed {
                builder: &mut builder,
            }
            .deserialize(&mut de)
            .and_then(|()| de.end());
            if let Err(e) = result {
                if builder.too_many {
                    return Err(IngestError::TooManyRows {
                        max: limits.max_rows,
                    });
                }
                return Err(malformed(&e));
            }
        }
        Format::Ndjson => {
            for (line_index, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if builder.rows_seen == limits.max_rows {
                    return Err(IngestError::TooManyRows {
                        max: limits.max_rows,
                    });
                }
                builder.line = Some(line_index + 1);
                let row = builder.rows_seen;
                let mut de = serde_json::Deserializer::from_slice(line);
                let result = RowSeed {
                    builder: &mut builder,
                }
                .deserialize(&mut de)
                .and_then(|()| de.end());
                match result {
                    // Committed only once the whole line is known to be one value.
                    Ok(()) => builder.commit_pending(),
                    // A syntax error inside a line rejects that line only.
                    Err(e) => builder.reject_line(row, format!("malformed JSON: {e}")),
                }
            }
        }
    }
    if builder.rows_seen == 0 {
        return Err(IngestError::Empty);
    }
    Ok(builder.finish())
}

fn malformed(e: &serde_json::Error) -> IngestError {
    // serde_json appends " at line L column C" to its messages; we report them separately.
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    IngestError::Malformed {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Accumulates valid rows column by column. A row is first parsed into `scratch`, then
/// committed only when every value is valid, so a bad row leaves no trace in the columns.
struct BatchBuilder<'s> {
    schema: &'s StreamSchema,
    limits: &'s IngestLimits,
    now_ms: TimestampMs,
    columns_by_name: HashMap<&'s str, ColumnRef>,
    batch: EventBatch,
    /// Per tag column: value -> dictionary key, so each distinct value is stored once.
    tag_interners: Vec<TagInterner>,
    producer_ids: Vec<bool>,
    source_rows: Vec<usize>,
    rejected: Vec<RowError>,
    rows_seen: usize,
    line: Option<usize>,
    too_many: bool,
    /// NDJSON: a valid row waits in `scratch` until its line is known to hold nothing
    /// else, then [`BatchBuilder::commit_pending`] stores it.
    defer_commit: bool,
    pending: Option<usize>,
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    ts: Option<TimestampMs>,
    id: Option<EventId>,
    tags: Vec<Option<Option<String>>>,
    fields: Vec<Option<Value>>,
    error: Option<(Option<String>, String)>,
    /// Whether `ts` and `id` keys were seen in this row (their values may be invalid).
    ts_seen: bool,
    id_seen: bool,
}

impl Scratch {
    /// Records that `key` (`ts` or `id`) was seen; true if it was seen before.
    fn seen_ts_or_id(&mut self, key: &str) -> bool {
        let seen = if key == "ts" {
            &mut self.ts_seen
        } else {
            &mut self.id_seen
        };
        std::mem::replace(seen, true)
    }
}

#[derive(Debug)]
enum Value {
    Null,
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(String),
}

impl<'s> BatchBuilder<'s> {
    fn new(
        schema: &'s StreamSchema,
        limits: &'s IngestLimits,
        now_ms: TimestampMs,
        defer_commit: bool,
    ) -> Self {
        let columns_by_name = schema
            .tags
            .iter()
            .map(String::as_str)
            .chain(schema.fields.iter().map(|f| f.name.as_str()))
            .filter_map(|name| schema.column(name).map(|c| (name, c)))
            .collect();
        BatchBuilder {
            schema,
            limits,
            now_ms,
            columns_by_name,
            batch: EventBatch::empty(schema),
            tag_interners: vec![TagInterner::default(); schema.tags.len()],
            producer_ids: Vec::new(),
            source_rows: Vec::new(),
            rejected: Vec::new(),
            rows_seen: 0,
            line: None,
            too_many: false,
            defer_commit,
            pending: None,
            scratch: Scratch::default(),
        }
    }

    fn begin_row(&mut self) {
        let s = &mut self.scratch;
        s.ts = None;
        s.id = None;
        s.ts_seen = false;
        s.id_seen = false;
        s.error = None;
        s.tags.clear();
        s.tags.resize(self.schema.tags.len(), None);
        s.fields.clear();
        s.fields.resize_with(self.schema.fields.len(), || None);
    }

    fn fail(&mut self, field: Option<&str>, message: impl Into<String>) {
        // Keep the first problem of a row: later ones are often consequences of it.
        if self.scratch.error.is_none() {
            self.scratch.error = Some((field.map(str::to_owned), message.into()));
        }
    }

    fn set(&mut self, key: &str, value: Scalar<'_>) {
        match key {
            "ts" | "id" if self.scratch.seen_ts_or_id(key) => self.fail(Some(key), "given twice"),
            "ts" => self.set_ts(value),
            "id" => match value {
                Scalar::Str(text) => match parse_id(&text) {
                    Some(id) => self.scratch.id = Some(id),
                    None => self.fail(
                        Some("id"),
                        "must be a UUID such as 0194f5c2-7a3e-7cc1-9d2b-1f0e8a7b6c5d",
                    ),
                },
                Scalar::Null => {}
                other => self.fail(
                    Some("id"),
                    format!("must be a UUID string, got {}", other.kind()),
                ),
            },
            _ => match self.columns_by_name.get(key).copied() {
                Some(ColumnRef::Tag(i)) => self.set_tag(i, key, value),
                Some(ColumnRef::Field(i, field_type)) => {
                    let value = convert_field(field_type, value, self.limits.max_string_bytes);
                    match value {
                        Ok(v) if self.scratch.fields[i].is_some() => {
                            drop(v);
                            self.fail(Some(key), "given twice")
                        }
                        Ok(v) => self.scratch.fields[i] = Some(v),
                        Err(message) => self.fail(Some(key), message),
                    }
                }
                _ => self.fail(
                    Some(key),
                    format!(
                        "unknown field: stream {:?} declares no tag or field of that name",
                        self.schema.name
                    ),
                ),
            },
        }
    }

    fn set_ts(&mut self, value: Scalar<'_>) {
        let ts = match value {
            Scalar::Str(text) => match parse_rfc3339_ms(&text) {
                Some(ts) => ts,
                None => {
                    return self.fail(
                        Some("ts"),
                        "must be an RFC 3339 timestamp or epoch milliseconds",
                    );
                }
            },
            Scalar::I64(ms) => ms,
            Scalar::U64(ms) => i64::try_from(ms).unwrap_or(i64::MAX),
            other => {
                return self.fail(
                    Some("ts"),
                    format!(
                        "must be an RFC 3339 string or integer epoch milliseconds, got {}",
                        other.kind()
                    ),
                );
            }
        };
        let max_ts = self.now_ms.saturating_add(self.limits.max_future_ms);
        if ts < self.limits.min_ts || ts > max_ts {
            return self.fail(
                Some("ts"),
                format!(
                    "{} is outside the accepted range [{}, {}] (at most {} s ahead of the server clock)",
                    tidewatch_types::time::format_rfc3339_ms(ts),
                    tidewatch_types::time::format_rfc3339_ms(self.limits.min_ts),
                    tidewatch_types::time::format_rfc3339_ms(max_ts),
                    self.limits.max_future_ms / 1000
                ),
            );
        }
        self.scratch.ts = Some(ts);
    }

    fn set_tag(&mut self, index: usize, key: &str, value: Scalar<'_>) {
        let tag = match value {
            Scalar::Str(text) if text.len() > self.limits.max_tag_bytes => {
                return self.fail(
                    Some(key),
                    format!(
                        "tag values are limited to {} bytes",
                        self.limits.max_tag_bytes
                    ),
                );
            }
            Scalar::Str(text) => Some(text.into_owned()),
            Scalar::Null => None,
            other => {
                return self.fail(Some(key), format!("tags are strings, got {}", other.kind()));
            }
        };
        if self.scratch.tags[index].is_some() {
            return self.fail(Some(key), "given twice");
        }
        self.scratch.tags[index] = Some(tag);
    }

    fn end_row(&mut self) {
        let position = self.rows_seen;
        self.rows_seen += 1;
        if self.scratch.error.is_none() && self.scratch.ts.is_none() {
            self.fail(Some("ts"), "missing: every event needs a timestamp");
        }
        if let Some((field, message)) = self.scratch.error.take() {
            self.rejected.push(RowError {
                row: position,
                line: self.line,
                field,
                message,
            });
            return;
        }
        if self.defer_commit {
            self.pending = Some(position);
        } else {
            self.commit_row(position);
        }
    }

    fn commit_pending(&mut self) {
        if let Some(position) = self.pending.take() {
            self.commit_row(position);
        }
    }

    /// Rejects the NDJSON line holding row `row`, whether or not its object was read.
    fn reject_line(&mut self, row: usize, message: String) {
        self.pending = None;
        if self.rows_seen == row {
            // The object itself did not parse: the row was not counted yet.
            self.reject_current(None, message);
        } else if self.rejected.last().is_none_or(|e| e.row != row) {
            // A valid object followed by more on the same line.
            self.rejected.push(RowError {
                row,
                line: self.line,
                field: None,
                message,
            });
        }
    }

    fn reject_current(&mut self, field: Option<String>, message: String) {
        self.rejected.push(RowError {
            row: self.rows_seen,
            line: self.line,
            field,
            message,
        });
        self.rows_seen += 1;
    }

    fn commit_row(&mut self, position: usize) {
        let scratch = &mut self.scratch;
        let (id, producer_given) = match scratch.id {
            Some(id) => (id, true),
            None => (assign_id(), false),
        };
        self.batch.ids.push(id);
        self.producer_ids.push(producer_given);
        self.source_rows.push(position);
        // end_row checked that ts is present.
        self.batch.ts.push(scratch.ts.unwrap_or_default());
        for ((column, interner), value) in self
            .batch
            .tags
            .iter_mut()
            .zip(&mut self.tag_interners)
            .zip(&mut scratch.tags)
        {
            interner.push(column, value.take().flatten().as_deref());
        }
        for (column, value) in self.batch.fields.iter_mut().zip(&mut scratch.fields) {
            let value = value.take().unwrap_or(Value::Null);
            match (column, value) {
                (FieldColumn::F64(v), Value::F64(x)) => v.push(Some(x)),
                (FieldColumn::I64(v), Value::I64(x)) => v.push(Some(x)),
                (FieldColumn::Bool(v), Value::Bool(x)) => v.push(Some(x)),
                (FieldColumn::Str(v), Value::Str(x)) => v.push(Some(x)),
                (FieldColumn::F64(v), _) => v.push(None),
                (FieldColumn::I64(v), _) => v.push(None),
                (FieldColumn::Bool(v), _) => v.push(None),
                (FieldColumn::Str(v), _) => v.push(None),
            }
        }
    }

    fn finish(self) -> ParsedBatch {
        debug_assert!(self.batch.is_consistent_with(self.schema));
        ParsedBatch {
            batch: self.batch,
            producer_ids: self.producer_ids,
            source_rows: self.source_rows,
            rejected: self.rejected,
            total_rows: self.rows_seen,
        }
    }
}

fn convert_field(
    field_type: tidewatch_types::FieldType,
    value: Scalar<'_>,
    max_string_bytes: usize,
) -> Result<Value, String> {
    use tidewatch_types::FieldType as T;
    match (field_type, value) {
        (_, Scalar::Null) => Ok(Value::Null),
        (T::F64, Scalar::F64(x)) if x.is_finite() => Ok(Value::F64(x)),
        (T::F64, Scalar::I64(x)) => Ok(Value::F64(x as f64)),
        (T::F64, Scalar::U64(x)) => Ok(Value::F64(x as f64)),
        (T::I64, Scalar::I64(x)) => Ok(Value::I64(x)),
        (T::I64, Scalar::U64(x)) => i64::try_from(x)
            .map(Value::I64)
            .map_err(|_| format!("{x} does not fit in a signed 64-bit integer")),
        (T::Bool, Scalar::Bool(x)) => Ok(Value::Bool(x)),
        (T::Str, Scalar::Str(s)) if s.len() > max_string_bytes => Err(format!(
            "string values are limited to {max_string_bytes} bytes"
        )),
        (T::Str, Scalar::Str(s)) => Ok(Value::Str(s.into_owned())),
        (T::F64, Scalar::Str(s))
            if matches!(
                s.as_ref(),
                "NaN" | "Infinity" | "-Infinity" | "inf" | "-inf"
            ) =>
        {
            Err("must be a finite number; NaN and infinities are not accepted".to_owned())
        }
        (expected, got) => Err(format!(
            "expected {}, got {}",
            expected.as_str(),
            got.kind()
        )),
    }
}

/// One JSON value as ingest sees it. Nested objects and arrays are consumed and reported.
enum Scalar<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'de, str>),
    Object,
    Array,
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::I64(_) | Scalar::U64(_) => "an integer",
            Scalar::F64(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Object => "an object",
            Scalar::Array => "an array",
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Array)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The top-level array of rows.
struct RowsSeed<'b, 's> {
    builder: &'b mut BatchBuilder<'s>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of event objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            if self.builder.rows_seen == self.builder.limits.max_rows {
                // Stop reading: the caller turns this into a 413.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    self.builder.too_many = true;
                    return Err(de::Error::custom("too many rows"));
                }
                return Ok(());
            }
            let seed = RowSeed {
                builder: &mut *self.builder,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        // A single object is accepted as a batch of one.
        RowSeed {
            builder: self.builder,
        }
        .visit_map(map)
    }
}

/// One row object.
struct RowSeed<'b, 's> {
    builder: &'b mut BatchBuilder<'s>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let builder = self.builder;
        builder.begin_row();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: Scalar<'de> = map.next_value()?;
            if matches!(value, Scalar::Object | Scalar::Array) {
                builder.fail(
                    Some(&key),
                    format!("nested values are not accepted, got {}", value.kind()),
                );
                continue;
            }
            builder.set(&key, value);
        }
        builder.end_row();
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.builder.reject_current(
            None,
            "each event must be a JSON object, got an array".to_owned(),
        );
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.reject_scalar("null")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.reject_scalar("a boolean")
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.reject_scalar("a number")
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.reject_scalar("a number")
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.reject_scalar("a number")
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.reject_scalar("a string")
    }
}

impl RowSeed<'_, '_> {
    fn reject_scalar<E>(self, kind: &str) -> Result<(), E> {
        self.builder.reject_current(
            None,
            format!("each event must be a JSON object, got {kind}"),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
