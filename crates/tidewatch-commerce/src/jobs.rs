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
