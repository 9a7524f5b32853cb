//! The domains attached to an engine once it has recovered: the shared alerts writer and
//! the market domain. Every command that writes events (serve, backfill) starts them, so
//! the same analytics and alerts follow whichever way events arrive.

use std::sync::Arc;

use anyhow::Context;
use tidewatch_alerts::AlertSink;
use tidewatch_engine::Engine;
use tidewatch_market::{Market, MarketConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) struct Domains {
    pub(crate) market: Arc<Market>,
    alerts_writer: JoinHandle<()>,
    stop: CancellationToken,
}

impl Domains {
    /// Declares the domains' streams and starts their analytics on `engine`.
    pub(crate) fn start(engine: &Arc<Engine>, market: &MarketConfig) -> anyhow::Result<Domains> {
        tidewatch_alerts::declare(engine).context("declaring the alerts stream")?;
        let (sink, alerts) = AlertSink::channel();
        let stop = CancellationToken::new();
        let alerts_writer = tokio::spawn(tidewatch_alerts::run_writer(
            Arc::clone(engine),
            alerts,
            stop.clone(),
        ));
        let market = Market::attach(Arc::clone(engine), market, sink)
            .context("attaching the market domain")?;
        Ok(Domains {
            market: Arc::new(market),
            alerts_writer,
            stop,
        })
    }

    /// Writes the alerts still queued. Call it after the last event is ingested and
    /// before the engine closes.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.alerts_writer.await;
    }
}
