//! Market domain: equities and crypto ticks turned into the analytics of a trading
//! dashboard: candles with EMA 20/50 and volatility, 24 h quotes, a sentiment score, and
//! price-spike and volume-surge alerts.
//!
//! Data flow: trades arrive on the stream `market.ticks` (simulator, exchange connector or
//! any producer); the engine folds them into the `ohlc` and `quotes` rollups; the
//! [`Market`]'s observer feeds each applied trade to the [`detect`]ors, whose alerts go to
//! the shared alerts stream. Queries read the rollups and compute indicators on demand.
//!
//! Layout:
//! - [`schema`]: the `market.ticks` stream and its `ohlc` and `quotes` rollups.
//! - [`instruments`]: names, venues and asset classes of the known symbols.
//! - [`indicators`]: EMA and rolling volatility over candle closes.
//! - [`sentiment`]: the sentiment score and its formula.
//! - [`detect`]: the price-spike and volume-surge detectors.
//! - [`service`]: [`Market`], attaching all of it to an engine and answering queries.

pub mod detect;
pub mod error;
pub mod indicators;
pub mod instruments;
pub mod schema;
pub mod sentiment;
pub mod service;

pub use detect::{DetectorConfig, Detectors};
pub use error::{Error, Result};
pub use service::{Candles, CandlesRequest, Market, MarketConfig, Quote, SymbolSentiment};

/// The `domain` tag of this domain's alerts.
pub const DOMAIN: &str = "market";
