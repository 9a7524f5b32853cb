//! [`RollupRow`]: one window of one group rendered for queries and live subscribers.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Number, Value};
use tidewatch_types::time::format_rfc3339_ms;

/// Largest magnitude below which every integer is exactly representable as an `f64`.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// One window of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollupRow {
    /// Epoch milliseconds, inclusive.
    pub window_start: i64,
    /// Epoch milliseconds, exclusive.
    pub window_end: i64,
    /// Whether the watermark has passed `window_end`. A closed row can still change through
    /// late events (reported as corrections).
    pub closed: bool,
    /// `group_by` tags and their values (`None` = null tag), in `group_by` order.
    pub group: Vec<(String, Option<Arc<str>>)>,
    /// Aggregate outputs (`None` = null), in declaration order.
    pub values: Vec<(String, Option<f64>)>,
}

impl RollupRow {
    /// The flat JSON object served to clients:
    /// `{"window_start": "<RFC 3339 ms>", "window_end": "...", "closed": bool,
    ///   "<tag>": "value" | null, "<aggregate>": number | null}`.
    /// Non-finite values become null; integral values below 2^53 are written as integers
    /// (so counts read `3`, not `3.0`).
    pub fn to_json(&self) -> Value {
        let mut object = Map::with_capacity(3 + self.group.len() + self.values.len());
        object.insert(
            "window_start".into(),
            Value::String(format_rfc3339_ms(self.window_start)),
        );
        object.insert(
            "window_end".into(),
            Value::String(format_rfc3339_ms(self.window_end)),
        );
        object.insert("closed".into(), Value::Bool(self.closed));
        for (tag, value) in &self.group {
            let value = value
                .as_ref()
                .map_or(Value::Null, |v| Value::String(v.to_string()));
            object.insert(tag.clone(), value);
        }
        for (name, value) in &self.values {
            object.insert(name.clone(), number(*value));
        }
        Value::Object(object)
    }

    /// Whether every `(tag, value)` of `filter` is one of this row's group values. A tag the
    /// row is not grouped by never matches (queries reject such filters up front).
    pub fn matches(&self, filter: &[(String, String)]) -> bool {
        filter.iter().all(|(tag, wanted)| {
            self.group
                .iter()
                .any(|(name, value)| name == tag && value.as_deref() == Some(wanted.as_str()))
        })
    }
}

fn number(value: Option<f64>) -> Value {
    match value {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < EXACT_INTEGER_LIMIT => {
            // Exact: |v| < 2^53 and integral.
            Value::Number(Number::from(v as i64))
        }
        Some(v) => Number::from_f64(v).map_or(Value::Null, Value::Number),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row() -> RollupRow {
        RollupRow {
            window_start: 1_795_428_000_000,
            window_end: 1_795_428_060_000,
            closed: true,
            group: vec![
                ("symbol".into(), Some("BTC".into())),
                ("venue".into(), None),
            ],
            values: vec![
                ("n".into(), Some(3.0)),
                ("vwap".into(), Some(101.5)),
                ("var".into(), None),
                ("bad".into(), Some(f64::INFINITY)),
                ("nan".into(), Some(f64::NAN)),
                ("neg".into(), Some(-0.0)),
            ],
        }
    }

    #[test]
    fn json_is_flat_with_rfc3339_times_and_null_for_non_finite() {
        assert_eq!(
            row().to_json(),
            json!({
                "window_start": "2026-11-23T10:00:00.000Z",
                "window_end": "2026-11-23T10:01:00.000Z",
                "closed": true,
                "symbol": "BTC",
                "venue": null,
                "n": 3,
                "vwap": 101.5,
                "var": null,
                "bad": null,
                "nan": null,
                "neg": 0,
            })
        );
    }

    #[test]
    fn matches_on_group_values_only() {
        let row = row();
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(row.matches(&[]));
        assert!(row.matches(&f(&[("symbol", "BTC")])));
        assert!(!row.matches(&f(&[("symbol", "ETH")])));
        // A null tag matches no value; unknown tags never match.
        assert!(!row.matches(&f(&[("venue", "")])));
        assert!(!row.matches(&f(&[("n", "3")])));
        assert!(!row.matches(&f(&[("symbol", "BTC"), ("venue", "x")])));
    }
}
