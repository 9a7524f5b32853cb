//! The domains attached to an engine once it has recovered: the shared alerts writer, the
//! market domain and (for `serve` and `import`) the commerce domain with its metadata
//! store and refresh jobs. Every command that writes events starts what it needs here, so
//! the same analytics and alerts follow whichever way events arrive.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tidewatch_alerts::AlertSink;
use tidewatch_commerce::{Commerce, CommerceConfig};
use tidewatch_engine::Engine;
use tidewatch_market::{Market, MarketConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) struct Domains {
    pub(crate) market: Arc<Market>,
    /// Opened by [`Domains::open_commerce`]; commands without a use for it skip it.
    pub(crate) commerce: Option<Arc<Commerce>>,
    sink: AlertSink,
    alerts_writer: JoinHandle<()>,
    commerce_jobs: Option<JoinHandle<()>>,
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
        let market = Market::attach(Arc::clone(engine), market, sink.clone())
            .context("attaching the market domain")?;
        Ok(Domains {
            market: Arc::new(market),
            commerce: None,
            sink,
            alerts_writer,
            commerce_jobs: None,
            stop,
        })
    }

    /// Opens the commerce domain (`<data_dir>/commerce.db`, recovery of interrupted
    /// transactions, the fraud scorer's warm-up); with `jobs`, also its scheduled refreshes.
    pub(crate) async fn open_commerce(
        &mut self,
        engine: &Arc<Engine>,
        data_dir: &Path,
        config: &CommerceConfig,
        jobs: bool,
    ) -> anyhow::Result<Arc<Commerce>> {
        let commerce = Commerce::open(
            Arc::clone(engine),
            data_dir,
            config.clone(),
            self.sink.clone(),
        )
        .await
        .context("opening the commerce domain")?;
        let commerce = Arc::new(commerce);
        if jobs {
            self.commerce_jobs = Some(tidewatch_commerce::jobs::spawn(
                Arc::clone(&commerce),
                self.stop.clone(),
            ));
        }
        self.commerce = Some(Arc::clone(&commerce));
        Ok(commerce)
    }

    /// Stops the jobs, closes the metadata store and writes the alerts still queued. Call
    /// it after the last event is ingested and before the engine closes.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        if let Some(jobs) = self.commerce_jobs {
            let _ = jobs.await;
        }
        if let Some(commerce) = &self.commerce {
            commerce.close().await;
        }
        let _ = self.alerts_writer.await;
    }
}
