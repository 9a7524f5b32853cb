//! The market domain's streams and rollups, declared in code.

use serde_json::json;
use tidewatch_engine::RollupSpec;
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};

/// Trades: `{ts, symbol, venue, asset_class, price, size, bid, ask}`.
pub const TICKS_STREAM: &str = "market.ticks";
/// Candles per symbol at every chart window.
pub const OHLC_ROLLUP: &str = "ohlc";
/// The latest quote per symbol, per second: the live quotes topic.
pub const QUOTES_ROLLUP: &str = "quotes";
/// Candle windows, finest first.
pub const CANDLE_WINDOWS: [&str; 5] = ["1m", "5m", "15m", "1h", "1d"];

pub fn ticks_schema() -> StreamSchema {
    let field = |name: &str| FieldDef {
        name: name.into(),
        field_type: FieldType::F64,
    };
    StreamSchema {
        name: TICKS_STREAM.into(),
        tags: vec!["symbol".into(), "venue".into(), "asset_class".into()],
        fields: vec![field("price"), field("size"), field("bid"), field("ask")],
    }
}

/// `ohlc` (candles: the mean spread is `ask - bid` of its mean quotes) and `quotes`.
pub fn ticks_rollups() -> Vec<RollupSpec> {
    let ohlc = json!({
        "name": OHLC_ROLLUP,
        "group_by": ["symbol"],
        "windows": CANDLE_WINDOWS,
        "aggregates": {
            "open": "first(price)", "high": "max(price)", "low": "min(price)", "close": "last(price)",
            "volume": "sum(size)", "vwap": "vwap(price, size)", "trades": "count",
            "bid": "mean(bid)", "ask": "mean(ask)"
        }
    });
    let quotes = json!({
        "name": QUOTES_ROLLUP,
        "group_by": ["symbol"],
        "windows": ["1s"],
        "aggregates": {
            "price": "last(price)", "bid": "last(bid)", "ask": "last(ask)",
            "volume": "sum(size)", "trades": "count"
        }
    });
    // Fixed, valid declarations: a parse failure is a bug the tests catch.
    [ohlc, quotes]
        .into_iter()
        .filter_map(|spec| serde_json::from_value(spec).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declarations_are_valid() {
        let schema = ticks_schema();
        schema.validate().unwrap();
        let rollups = ticks_rollups();
        assert_eq!(rollups.len(), 2);
        for rollup in &rollups {
            rollup.validate(&schema).unwrap();
        }
    }
}
