//! Feeding an in-process engine in real time (`tidewatch serve --demo`).

use std::sync::Arc;
use std::time::Duration;

use tidewatch_engine::engine::EventsRequest;
use tidewatch_engine::{Engine, Error};
use tidewatch_types::TimestampMs;
use tidewatch_types::time::{now_ms, parse_rfc3339_ms};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::generator::Simulator;
use crate::market::{MarketGenerator, TICKS_STREAM};

/// Newest trades per symbol that [`last_prices`] takes the median of: one stray trade (an
/// injected price spike) must not become the level a restarted feed continues from.
const LAST_TRADES: usize = 5;

/// Declares the simulator's streams and rollups (idempotently).
pub fn declare(engine: &Engine, simulator: &Simulator) -> tidewatch_engine::Result<()> {
    for declaration in simulator.streams() {
        let name = declaration.schema.name.clone();
        engine.declare_stream(declaration.schema)?;
        for rollup in declaration.rollups {
            engine.declare_rollup(&name, rollup)?;
        }
    }
    Ok(())
}

/// The price each market symbol last traded at in `engine`, as `(symbol, price, ts of the
/// newest trade)`, for [`MarketGenerator::resume_from`]. The price is the median of the
/// symbol's newest few trades, so an injected spike is not taken for the level. Symbols
/// without trades, or a data directory without the ticks stream, give no entry.
pub fn last_prices(engine: &Engine) -> Vec<(String, f64, TimestampMs)> {
    let symbols = MarketGenerator::symbol_names();
    let mut last = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        let request = EventsRequest {
            tags: vec![("symbol".to_owned(), symbol.to_owned())],
            limit: Some(LAST_TRADES),
            ..EventsRequest::default()
        };
        let page = match engine.events(TICKS_STREAM, &request) {
            Ok(page) => page,
            Err(Error::UnknownStream(_)) => return Vec::new(),
            Err(e) => {
                warn!(symbol, error = %e, "cannot read the last trades; starting from the default price");
                continue;
            }
        };
        // Newest first: the first event has the newest time.
        let newest_ts = page
            .events
            .first()
            .and_then(|event| event["ts"].as_str())
            .and_then(parse_rfc3339_ms);
        let mut prices: Vec<f64> = page
            .events
            .iter()
            .filter_map(|event| event["price"].as_f64())
            .collect();
        prices.sort_by(f64::total_cmp);
        if let (Some(ts), Some(&median)) = (newest_ts, prices.get(prices.len() / 2)) {
            last.push((symbol.to_owned(), median, ts));
        }
    }
    last
}

/// Every `step`, generates the events of the time since the last step and ingests them,
/// until `shutdown`. Ingest errors are logged and the loop goes on.
pub async fn run(
    engine: Arc<Engine>,
    mut simulator: Simulator,
    step: Duration,
    shutdown: CancellationToken,
) {
    let mut last = now_ms();
    let mut interval = tokio::time::interval(step);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(step_ms = step.as_millis() as u64, "simulator running");
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let now = now_ms();
        for (stream, batch) in simulator.generate(last, now) {
            if let Err(e) = engine.ingest_batch(&stream, batch).await {
                warn!(stream, error = %e, "simulated batch not ingested");
            }
        }
        last = now;
    }
    info!("simulator stopped");
}

#[cfg(test)]
mod tests {
    use tidewatch_engine::EngineConfig;

    use super::*;
    use crate::market::{MarketConfig, MarketGenerator, TICKS_STREAM};

    #[tokio::test]
    async fn the_demo_feed_fills_the_market_stream_and_its_rollup() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineConfig::test_config(dir.path())).unwrap());
        let market = MarketGenerator::new(MarketConfig {
            events_per_second: 2000.0,
            ..MarketConfig::default()
        });
        let simulator = Simulator::new().with(market);
        declare(&engine, &simulator).unwrap();
        declare(&engine, &simulator).unwrap(); // idempotent, as at every start
        let shutdown = CancellationToken::new();
        let feed = tokio::spawn(run(
            Arc::clone(&engine),
            simulator,
            Duration::from_millis(50),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(600)).await;
        shutdown.cancel();
        feed.await.unwrap();
        let info = engine.stream_info(TICKS_STREAM).unwrap();
        assert!(info.rows > 200, "{} rows", info.rows);
        let (_, rows) = engine
            .rollup_rows(TICKS_STREAM, "ohlc", None, None, None, &[])
            .unwrap();
        let trades: f64 = rows.iter().map(|r| r["trades"].as_f64().unwrap()).sum();
        assert_eq!(
            trades as u64, info.rows,
            "the 1m rollup counts every stored trade"
        );
    }
}
