//! Scheduled refreshes: demand forecasts every `forecast_every` (6 h by default) and
//! reorder suggestions every `reorder_every` (12 h), both once at start too. The API's
//! `POST /api/v1/inventory/reorder-suggestions/refresh` runs the same work on demand;
//! refreshes never overlap (they take the service's refresh lock).
//!
//! A failed refresh is logged and retried at the next tick: the stored forecasts and
//! suggestions stay as they were, so a failure costs freshness, never correctness.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::service::Commerce;

/// Runs the refresh schedule until `shutdown`.
pub fn spawn(commerce: Arc<Commerce>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(run(commerce, shutdown))
}

async fn run(commerce: Arc<Commerce>, shutdown: CancellationToken) {
    let config = commerce.config().clone();
    let mut forecasts = interval(config.forecast_every);
    let mut reorders = interval(config.reorder_every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = forecasts.tick() => {
                if let Err(e) = commerce.refresh_forecasts().await {
                    warn!(error = %e, "demand forecast refresh failed; retrying at the next tick");
                }
            }
            _ = reorders.tick() => {
                if let Err(e) = commerce.refresh_reorders().await {
                    warn!(error = %e, "reorder suggestion refresh failed; retrying at the next tick");
                }
            }
        }
    }
}

/// Ticks at once, then every `period` (at least a second), skipping missed ticks.
fn interval(period: Duration) -> tokio::time::Interval {
    let period = period.max(Duration::from_secs(1));
    let mut interval = tokio::time::interval_at(Instant::now(), period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    interval
}

#[cfg(test)]
mod tests {
    use tidewatch_alerts::AlertSink;
    use tidewatch_engine::{Engine, EngineConfig};

    use super::*;
    use crate::model::Product;
    use crate::service::CommerceConfig;
    use crate::store::CatalogWrite;

    #[tokio::test]
    async fn refreshes_run_at_start_then_every_period_and_stop_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineConfig::test_config(dir.path())).unwrap());
        let config = CommerceConfig {
            forecast_every: Duration::from_secs(1),
            ..CommerceConfig::test_config()
        };
        let (sink, _alerts) = AlertSink::channel();
        let commerce = Arc::new(
            Commerce::open(Arc::clone(&engine), dir.path(), config, sink)
                .await
                .unwrap(),
        );
        let product = Product {
            id: "P1".into(),
            name: "Lamp".into(),
            category: "home".into(),
            price: 20.0,
            cost: 12.0,
            stock: 1,
            reorder_point: 5,
            supplier_id: None,
            lead_time_days: 2.0,
        };
        commerce
            .store()
            .write_catalog(&CatalogWrite {
                products: vec![product],
                ..CatalogWrite::default()
            })
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let jobs = spawn(Arc::clone(&commerce), shutdown.clone());
        let computed = || async {
            commerce
                .store()
                .forecast("P1", 14)
                .await
                .unwrap()
                .map(|f| f.computed_ms)
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let first = computed().await.expect("a forecast at start");
        let pending = commerce.suggestions(Some("pending")).await.unwrap();
        assert_eq!(pending.len(), 1, "below its reorder point at start");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let second = computed().await.unwrap();
        assert!(second > first, "refreshed after one period");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), jobs)
            .await
            .expect("the jobs stop on shutdown")
            .unwrap();
    }
}
