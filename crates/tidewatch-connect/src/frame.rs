//! Binance's trade messages: one WebSocket text frame in, at most one [`Trade`] out.
//!
//! Accepted: `<symbol>@trade` events (`"e": "trade"`, trade id `t`) and `<symbol>@aggTrade`
//! events (`"e": "aggTrade"`, aggregate trade id `a`), bare as a raw stream sends them or
//! wrapped as a combined stream sends them: `{"stream": "<name>", "data": <event>}`. Both
//! carry the symbol `s`, price `p` and quantity `q` as decimal strings and the trade time
//! `T` in epoch milliseconds. Anything else that is a JSON object (other event types,
//! subscription replies) is not a trade and is ignored.

use serde_json::{Map, Value};
use tidewatch_types::{EventId, TimestampMs};
use tracing::debug;

/// Which Binance stream a trade came from. Part of the producer id: a trade id and an
/// aggregate trade id with the same number are different events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TradeKind {
    /// One fill between a buyer and a seller (`<symbol>@trade`).
    Trade,
    /// The fills of one taker order at one price (`<symbol>@aggTrade`).
    AggTrade,
}

impl TradeKind {
    /// The event type `e` as Binance spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeKind::Trade => "trade",
            TradeKind::AggTrade => "aggTrade",
        }
    }

    /// The field holding the id that is unique per symbol for this kind.
    fn id_field(self) -> &'static str {
        match self {
            TradeKind::Trade => "t",
            TradeKind::AggTrade => "a",
        }
    }
}

/// One trade, validated: positive finite price and size, a non-empty symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub kind: TradeKind,
    /// Upper case (`BTCUSDT`), the way the simulator names its crypto symbols.
    pub symbol: String,
    /// The trade id `t` or aggregate trade id `a`: unique per symbol and kind, so it
    /// recognises a trade the exchange sends again after a reconnect.
    pub id: u64,
    pub price: f64,
    pub size: f64,
    /// Trade time `T`, epoch milliseconds.
    pub ts: TimestampMs,
}

impl Trade {
    /// The event id this trade is stored under; see [`producer_id`].
    pub fn producer_id(&self) -> EventId {
        producer_id(self.kind, &self.symbol, self.id)
    }
}

/// Why a frame was not a usable trade. The connector logs it and skips the frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("the frame is not a JSON object")]
    NotAnObject,
    #[error("the combined-stream envelope's `data` is not an object")]
    EnvelopeData,
    #[error("{kind} event without `{field}`", kind = .kind.as_str())]
    MissingField {
        kind: TradeKind,
        field: &'static str,
    },
    #[error("`{field}` of a {kind} event is not {expected}: {value}", kind = .kind.as_str())]
    WrongType {
        kind: TradeKind,
        field: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("`{field}` of a {kind} event is not a positive number: {value:?}", kind = .kind.as_str())]
    NotPositive {
        kind: TradeKind,
        field: &'static str,
        value: String,
    },
}

/// Parses one text frame. `Ok(None)`: a well-formed message that is not a trade.
pub fn parse_frame(text: &str) -> Result<Option<Trade>, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(FrameError::NotAnObject);
    };
    let event = match unwrap_envelope(&object)? {
        Some(data) => data,
        None => &object,
    };
    let kind = match event.get("e").and_then(Value::as_str) {
        Some("trade") => TradeKind::Trade,
        Some("aggTrade") => TradeKind::AggTrade,
        other => {
            debug!(
                event_type = other.unwrap_or("none"),
                "ignored a message that is not a trade"
            );
            return Ok(None);
        }
    };
    parse_trade(kind, event).map(Some)
}

/// The event inside a combined-stream envelope, or `None` for a bare event.
fn unwrap_envelope(object: &Map<String, Value>) -> Result<Option<&Map<String, Value>>, FrameError> {
    if !object.contains_key("stream") {
        return Ok(None);
    }
    match object.get("data") {
        Some(Value::Object(data)) => Ok(Some(data)),
        _ => Err(FrameError::EnvelopeData),
    }
}

fn parse_trade(kind: TradeKind, event: &Map<String, Value>) -> Result<Trade, FrameError> {
    let fields = EventFields { kind, event };
    let symbol = fields.string("s")?;
    if symbol.is_empty() {
        return Err(fields.wrong_type("s", "a non-empty string"));
    }
    let id_field = kind.id_field();
    let id = fields
        .get(id_field)?
        .as_u64()
        .ok_or_else(|| fields.wrong_type(id_field, "a non-negative integer"))?;
    let ts = fields
        .get("T")?
        .as_i64()
        .ok_or_else(|| fields.wrong_type("T", "an integer (epoch milliseconds)"))?;
    Ok(Trade {
        kind,
        symbol: symbol.to_ascii_uppercase(),
        id,
        price: fields.positive_decimal("p")?,
        size: fields.positive_decimal("q")?,
        ts,
    })
}

/// Field access with errors that name the event kind and the field.
struct EventFields<'a> {
    kind: TradeKind,
    event: &'a Map<String, Value>,
}

impl<'a> EventFields<'a> {
    fn get(&self, field: &'static str) -> Result<&'a Value, FrameError> {
        self.event.get(field).ok_or(FrameError::MissingField {
            kind: self.kind,
            field,
        })
    }

    fn string(&self, field: &'static str) -> Result<&'a str, FrameError> {
        self.get(field)?
            .as_str()
            .ok_or_else(|| self.wrong_type(field, "a string"))
    }

    /// A decimal string such as `"97012.35000000"` holding a finite number above zero.
    fn positive_decimal(&self, field: &'static str) -> Result<f64, FrameError> {
        let text = self
            .get(field)?
            .as_str()
            .ok_or_else(|| self.wrong_type(field, "a decimal string"))?;
        let number: f64 = text
            .trim()
            .parse()
            .map_err(|_| self.wrong_type(field, "a decimal string"))?;
        if !number.is_finite() || number <= 0.0 {
            return Err(FrameError::NotPositive {
                kind: self.kind,
                field,
                value: text.to_owned(),
            });
        }
        Ok(number)
    }

    fn wrong_type(&self, field: &'static str, expected: &'static str) -> FrameError {
        let value = self
            .event
            .get(field)
            .map_or_else(|| "null".to_owned(), Value::to_string);
        FrameError::WrongType {
            kind: self.kind,
            field,
            expected,
            value,
        }
    }
}

/// Hashed into every producer id so these ids never meet another producer's.
const PRODUCER_ID_DOMAIN: &[u8] = b"tidewatch-connect/binance";

/// The deterministic event id of a trade: the same trade sent again (after a reconnect)
/// gets the same id, which the engine's producer-id dedupe then drops.
///
/// A UUIDv8 (RFC 9562, custom layout): 58 bits of a stable hash (FNV-1a 64) of the domain,
/// the kind and the symbol, then the 64-bit trade id, with the version and variant bits in
/// their places. Within one symbol and kind, ids therefore sort like trade ids, so trades
/// in the same millisecond keep the exchange's order where `first`/`last` break ties on
/// `(ts, id)`. The layout is persisted in every WAL: changing it breaks dedupe of trades
/// already stored.
pub fn producer_id(kind: TradeKind, symbol: &str, trade_id: u64) -> EventId {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    // NUL separators keep ("ab", "c") and ("a", "bc") apart.
    let parts = [
        PRODUCER_ID_DOMAIN,
        kind.as_str().as_bytes(),
        symbol.as_bytes(),
    ];
    for part in parts {
        for &byte in part.iter().chain(std::iter::once(&0u8)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
    let key = hash >> 6; // 58 bits
    let high = ((key >> 10) << 16) // 48 bits
        | (0x8 << 12) // version 8
        | ((key & 0x3ff) << 2) // 10 bits
        | (trade_id >> 62); // the trade id's top 2 bits
    let low = (0b10 << 62) // RFC 9562 variant
        | (trade_id & ((1 << 62) - 1));
    (u128::from(high) << 64) | u128::from(low)
}

#[cfg(test)]
mod tests;
