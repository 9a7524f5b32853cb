//! Trades collected between two ingests, as the NDJSON body the engine parses.

use serde::Serialize;
use tidewatch_engine::Engine;
use tidewatch_ingest::Format;
use tokio::time::Instant;
use tracing::{debug, error, warn};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::frame::Trade;
use crate::{ASSET_CLASS, CONNECTOR, TICKS_STREAM, VENUE};

/// Ingest once this many trades are waiting...
pub(crate) const BATCH_MAX_TRADES: usize = 1000;
/// ...or once the oldest waiting trade is this old.
pub(crate) const BATCH_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// One row of `market.ticks`. Going through the engine's parser (rather than building an
/// `EventBatch`) is what makes the producer id count: `Engine::ingest_batch` does not
/// deduplicate.
#[derive(Serialize)]
struct TickRow<'a> {
    id: Hyphenated,
    ts: i64,
    symbol: &'a str,
    venue: &'static str,
    asset_class: &'static str,
    price: f64,
    size: f64,
    /// Trade messages carry no quote.
    bid: Option<f64>,
    ask: Option<f64>,
}

/// The waiting trades. The body buffer is reused from one ingest to the next.
#[derive(Debug, Default)]
pub(crate) struct TradeBatch {
    body: Vec<u8>,
    trades: usize,
    /// When the oldest waiting trade arrived; `None` while empty.
    oldest: Option<Instant>,
}

impl TradeBatch {
    pub(crate) fn push(&mut self, trade: &Trade) {
        let row = TickRow {
            id: Uuid::from_u128(trade.producer_id()).hyphenated(),
            ts: trade.ts,
            symbol: &trade.symbol,
            venue: VENUE,
            asset_class: ASSET_CLASS,
            price: trade.price,
            size: trade.size,
            bid: None,
            ask: None,
        };
        let start = self.body.len();
        if let Err(e) = serde_json::to_writer(&mut self.body, &row) {
            // Not expected: every value is a string or a finite number.
            self.body.truncate(start);
            warn!(connector = CONNECTOR, error = %e, "a trade could not be encoded; skipped");
            return;
        }
        self.body.push(b'\n');
        self.trades += 1;
        self.oldest.get_or_insert_with(Instant::now);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.trades >= BATCH_MAX_TRADES
    }

    /// When the waiting trades are due for ingest; `None` while there are none.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|oldest| oldest + BATCH_MAX_WAIT)
    }

    /// Ingests the waiting trades, if any, and empties the batch. Trades the engine
    /// already stored (same producer id) are dropped there; rejected ones are logged. A
    /// failed ingest is logged and its trades are dropped: the engine's error (a failing
    /// WAL) is not one a retry from here would cure.
    pub(crate) async fn flush(&mut self, engine: &Engine) {
        if self.trades == 0 {
            return;
        }
        let trades = self.trades;
        let outcome = engine
            .ingest(TICKS_STREAM, &self.body, Format::Ndjson, true)
            .await;
        self.body.clear();
        self.trades = 0;
        self.oldest = None;
        match outcome {
            Ok(receipt) => {
                metrics::counter!("tidewatch_connector_trades_total", "connector" => CONNECTOR)
                    .increment(receipt.accepted as u64);
                if receipt.duplicates > 0 {
                    debug!(
                        connector = CONNECTOR,
                        duplicates = receipt.duplicates,
                        "trades already stored were dropped"
                    );
                }
                if let Some(first) = receipt.rejected.first() {
                    warn!(
                        connector = CONNECTOR,
                        rejected = receipt.rejected.len(),
                        trades,
                        reason = %first.message,
                        "the engine rejected trades"
                    );
                }
            }
            Err(tidewatch_engine::Error::RejectedRows { rows, total }) => {
                let reason = rows.first().map_or("", |row| row.message.as_str());
                warn!(
                    connector = CONNECTOR,
                    rejected = rows.len(),
                    trades = total,
                    reason,
                    "the engine rejected trades"
                );
            }
            Err(e) => {
                error!(connector = CONNECTOR, trades, error = %e, "trades not ingested; dropped");
            }
        }
    }
}
