//! Market domain: equities and crypto ticks turned into the analytics of a trading
//! dashboard.
//!
//! Layout:
//! - [`schema`]: the `market.ticks` stream and its `ohlc` and `quotes` rollups.
pub mod schema;
