//! REST routes.
//!
//! | route | handler |
//! |---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | [`ops`] |
//! | `GET, POST /api/v1/streams` | [`streams`] |
//! | `GET, POST /api/v1/streams/{stream}/events` | [`events`] |
//! | `POST /api/v1/streams/{stream}/rollups`, `GET .../rollups/{rollup}` | [`rollups`] |
//! | `GET /api/v1/market/{symbols, quote/{symbol}, candles, sentiment, alerts}` | [`market`] |
//! | `GET, POST /api/v1/transactions`, `GET .../suspicious`, `GET .../{id}` | [`commerce`] |
//! | `GET /api/v1/{products, products/{id}, customers, suppliers, purchase-orders}` | [`commerce`] |
//! | `GET /api/v1/inventory/{low-stock, predictions/{product_id}, reorder-suggestions}`, `POST .../reorder-suggestions/{refresh, {id}/approve}` | [`commerce`] |
//! | `GET /api/v1/dashboard/overview`, `GET /api/v1/analytics/{hourly-sales, top-products, customer-segments, category-performance}` | [`commerce`] |
//! | `POST /api/v1/sql` | [`sql`] |
//! | `GET /api/v1/ws` | [`crate::ws`] |

pub mod body;
pub mod commerce;
pub mod events;
pub mod market;
pub mod ops;
pub mod params;
pub mod rollups;
pub mod sql;
pub mod streams;

use axum::Router;
use axum::routing::{get, post};
use tower_http::decompression::RequestDecompressionLayer;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/streams", get(streams::list).post(streams::declare))
        .route(
            "/streams/{stream}/events",
            post(events::ingest).get(events::query),
        )
        .route("/streams/{stream}/rollups", post(rollups::declare))
        .route(
            "/streams/{stream}/retention",
            get(streams::retention).put(streams::set_retention),
        )
        .route("/streams/{stream}/rollups/{rollup}", get(rollups::query))
        .route("/market/symbols", get(market::symbols))
        .route("/market/quote/{symbol}", get(market::quote))
        .route("/market/candles", get(market::candles))
        .route("/market/sentiment", get(market::sentiment))
        .route("/market/alerts", get(market::alerts))
        .route("/transactions", get(commerce::list).post(commerce::create))
        .route("/transactions/suspicious", get(commerce::suspicious))
        .route("/transactions/{id}", get(commerce::transaction))
        .route("/products", get(commerce::products))
        .route("/products/{id}", get(commerce::product))
        .route("/customers", get(commerce::customers))
        .route("/suppliers", get(commerce::suppliers))
        .route("/purchase-orders", get(commerce::purchase_orders))
        .route("/inventory/low-stock", get(commerce::low_stock))
        .route(
            "/inventory/predictions/{product_id}",
            get(commerce::prediction),
        )
        .route("/inventory/reorder-suggestions", get(commerce::suggestions))
        .route(
            "/inventory/reorder-suggestions/refresh",
            post(commerce::refresh),
        )
        .route(
            "/inventory/reorder-suggestions/{id}/approve",
            post(commerce::approve),
        )
        .route("/dashboard/overview", get(commerce::overview))
        .route("/analytics/hourly-sales", get(commerce::hourly_sales))
        .route("/analytics/top-products", get(commerce::top_products))
        .route(
            "/analytics/customer-segments",
            get(commerce::customer_segments),
        )
        .route(
            "/analytics/category-performance",
            get(commerce::category_performance),
        )
        .route("/sql", post(sql::query))
        .route("/ws", get(crate::ws::upgrade))
        .fallback(ops::not_found);
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1", api)
        .fallback_service(crate::ui::service())
        .layer(axum::middleware::from_fn(crate::telemetry::track_latency))
        .layer(RequestDecompressionLayer::new())
        .with_state(state)
}
