//! Exchange connectors: a public trade stream in, rows of `market.ticks` out, through the
//! same parse, dedupe and durable commit as an HTTP ingest. It sits beside the simulator,
//! above the engine: `exchange --WebSocket--> connect -> Engine::ingest -> WAL -> ...`.
//!
//! The Binance connector reads Binance's WebSocket trade messages: `<symbol>@trade` and
//! `<symbol>@aggTrade` events, bare (raw stream) or in the combined-stream envelope
//! `{"stream": ..., "data": ...}`. Each trade becomes one row:
//!
//! | `market.ticks` | from the trade |
//! |---|---|
//! | `ts` | trade time `T` (epoch ms) |
//! | `id` | a deterministic producer id from (symbol, kind, trade id `t` or aggregate id `a`) |
//! | `symbol` | `s`, upper case (`BTCUSDT`, as the simulator names it) |
//! | `venue`, `asset_class` | `"BINANCE"`, `"crypto"` |
//! | `price`, `size` | `p`, `q` (decimal strings) |
//! | `bid`, `ask` | null: trade messages carry no quote |
//!
//! Invariants:
//! - A trade the exchange sends again (after a reconnect) gets the same producer id, so
//!   the engine drops it: no trade is stored twice.
//! - A malformed frame (bad JSON, a missing field, a non-numeric or non-positive price or
//!   size) is logged at warn, counted, and skipped; it never stops the connector. Other
//!   messages (other event types, subscription replies) are ignored at debug.
//! - Trades are ingested in batches of up to 1000, at most 50 ms after the first of them
//!   arrived, and before the connector stops.
//!
//! Reconnection: after a failed or lost connection the connector waits 500 ms, doubling
//! with each further failure up to `max_backoff` (each wait drawn between half and all of
//! its step); a connection that stayed up 30 s starts the sequence over. It answers the
//! exchange's pings, pings itself after 60 s of silence and reconnects after 60 s more,
//! and stops promptly when its cancellation token is cancelled.
//!
//! Metrics, labelled `connector="binance"`: `tidewatch_connector_trades_total` (trades
//! stored), `tidewatch_connector_malformed_frames_total`,
//! `tidewatch_connector_reconnects_total`.
//!
//! Layout:
//! - [`config`]: [`BinanceConfig`], the URL, whether it runs, the backoff cap.
//! - [`frame`]: [`parse_frame`], one Binance text frame to a [`Trade`] or a [`FrameError`];
//!   the producer id.
//! - `batch`: trades waiting for ingest, as the NDJSON body the engine parses.
//! - `backoff`: exponential backoff with jitter.
//! - `connector`: [`run`], the connect-read-ingest-reconnect loop.

mod backoff;
mod batch;
pub mod config;
mod connector;
pub mod frame;

pub use config::BinanceConfig;
pub use connector::run;
pub use frame::{FrameError, Trade, TradeKind, parse_frame, producer_id};

/// The stream the connector writes; the market domain declares it.
pub const TICKS_STREAM: &str = "market.ticks";
/// The `venue` tag of every Binance trade.
pub const VENUE: &str = "BINANCE";
/// The `asset_class` tag of every Binance trade.
pub const ASSET_CLASS: &str = "crypto";
/// The `connector` label of the metrics.
const CONNECTOR: &str = "binance";
