//! JSON shapes shared by the REST API and the bus: one event is a flat object with `id`,
//! `ts` (RFC 3339, milliseconds), its tags and its fields; cursors are opaque strings.

use serde_json::{Map, Value};
use tidewatch_ingest::ids::format_id;
use tidewatch_types::time::format_rfc3339_ms;
use tidewatch_types::{EventBatch, EventId, FieldColumn, StreamSchema, TimestampMs};

/// Row `row` of `batch` as a JSON object.
pub fn event_json(schema: &StreamSchema, batch: &EventBatch, row: usize) -> Value {
    let mut object = Map::with_capacity(2 + schema.tags.len() + schema.fields.len());
    object.insert("id".into(), Value::String(format_id(batch.ids[row])));
    object.insert("ts".into(), Value::String(format_rfc3339_ms(batch.ts[row])));
    for (name, column) in schema.tags.iter().zip(&batch.tags) {
        let value = column
            .value(row)
            .map_or(Value::Null, |v| Value::String(v.to_string()));
        object.insert(name.clone(), value);
    }
    for (def, column) in schema.fields.iter().zip(&batch.fields) {
        let value = match column {
            FieldColumn::F64(v) => v[row].map_or(Value::Null, Value::from),
            FieldColumn::I64(v) => v[row].map_or(Value::Null, Value::from),
            FieldColumn::Bool(v) => v[row].map_or(Value::Null, Value::from),
            FieldColumn::Str(v) => v[row].clone().map_or(Value::Null, Value::from),
        };
        object.insert(def.name.clone(), value);
    }
    Value::Object(object)
}

/// All rows of `batch`, in order.
pub fn events_json(schema: &StreamSchema, batch: &EventBatch) -> Vec<Value> {
    (0..batch.len())
        .map(|row| event_json(schema, batch, row))
        .collect()
}

/// A page cursor: the `(ts, id)` of the last event returned.
pub fn encode_cursor(ts: TimestampMs, id: EventId) -> String {
    format!("{ts}_{id:032x}")
}

pub fn decode_cursor(text: &str) -> Option<(TimestampMs, EventId)> {
    let (ts, id) = text.split_once('_')?;
    if id.len() != 32 {
        return None;
    }
    Some((ts.parse().ok()?, u128::from_str_radix(id, 16).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(-5, 42);
        assert_eq!(decode_cursor(&c), Some((-5, 42)));
        for bad in ["", "5", "x_00000000000000000000000000000001", "5_zz", "5_1"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
