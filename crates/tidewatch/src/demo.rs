//! The commerce part of `serve --demo`: the simulated shop's catalog and four weeks of
//! order history (at the simulator's default rate, which its catalog's stock levels are
//! made for) on a data directory without products, then live orders every step,
//! placed through the same path as `POST /api/v1/transactions` (stock, fraud scoring,
//! alerts). Orders for products out of stock are refused like any other, and counted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tidewatch_commerce::store::CatalogWrite;
use tidewatch_commerce::{Commerce, Error, NewTransaction};
use tidewatch_sim::{CommerceConfig, CommerceGenerator};
use tidewatch_types::time::now_ms;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Days of order history seeded with the catalog.
const HISTORY_DAYS: i64 = 28;
const MS_PER_DAY: i64 = 86_400_000;

/// Seeds the shop when the store has no products, then feeds live orders every `step`
/// until `shutdown`.
pub(crate) fn spawn_commerce(
    commerce: Arc<Commerce>,
    seed: u64,
    step: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let now = now_ms();
        let mut generator = CommerceGenerator::new(CommerceConfig {
            seed,
            start: now - HISTORY_DAYS * MS_PER_DAY,
            ..CommerceConfig::default()
        });
        match seed_shop(&commerce, &mut generator, now).await {
            Ok(true) => {}
            Ok(false) => {
                // Seeded before: skip the history the generator would replay.
                let _ = generator.orders(now - HISTORY_DAYS * MS_PER_DAY, now);
            }
            Err(e) => warn!(error = %e, "demo shop not seeded"),
        }
        run(&commerce, generator, now, step, shutdown).await;
    })
}

/// Writes the catalog and the order history if no product is stored yet; then refreshes
/// forecasts and suggestions over that history. Returns whether it seeded.
async fn seed_shop(
    commerce: &Arc<Commerce>,
    generator: &mut CommerceGenerator,
    now: i64,
) -> anyhow::Result<bool> {
    if !commerce.products().await?.is_empty() {
        return Ok(false);
    }
    let (products, suppliers, offers, customers) = generator.catalog();
    let history: Vec<_> = generator
        .orders(now - HISTORY_DAYS * MS_PER_DAY, now)
        .into_iter()
        .map(|(order, _fraud)| order)
        .collect();
    let summary = commerce
        .seed(
            CatalogWrite {
                suppliers,
                products,
                offers,
                customers,
                ledger: Vec::new(),
            },
            &history,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("seeding the demo shop")?;
    info!(
        products = summary.products,
        customers = summary.customers,
        transactions = summary.transactions,
        suspicious = summary.suspicious,
        "demo shop seeded"
    );
    commerce.refresh_forecasts().await?;
    commerce.refresh_reorders().await?;
    Ok(true)
}

async fn run(
    commerce: &Arc<Commerce>,
    mut generator: CommerceGenerator,
    mut last: i64,
    step: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(step);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out_of_stock = 0u64;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let now = now_ms();
        for (order, _fraud) in generator.orders(last, now) {
            let request = NewTransaction {
                id: order.id,
                ts: order.ts.map(|ts| json!(ts)),
                customer_id: Some(order.customer_id),
                product_id: Some(order.product_id),
                quantity: Some(order.quantity),
                region: Some(order.region).filter(|r| !r.is_empty()),
                payment_method: Some(order.payment_method).filter(|p| !p.is_empty()),
            };
            match commerce.create_transaction(&request).await {
                Ok(_) => {}
                Err(Error::InsufficientStock { product_id, .. }) => {
                    out_of_stock += 1;
                    debug!(product_id, out_of_stock, "demo order refused: out of stock");
                }
                Err(e) => warn!(error = %e, "demo order not placed"),
            }
        }
        last = now;
    }
    info!(out_of_stock, "demo orders stopped");
}
