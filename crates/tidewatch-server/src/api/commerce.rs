//! The commerce routes: transactions, catalog, inventory, dashboard and analytics. The
//! work is in `tidewatch_commerce`; here parameters and bodies are read and checked.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tidewatch_commerce::analytics::{Span, TopBy};
use tidewatch_commerce::{NewTransaction, TransactionQuery};

use crate::api::body::read_limited;
use crate::api::params::{Named, get, split_params, time_param};
use crate::error::ApiError;
use crate::state::AppState;

type Pairs = Query<Vec<(String, String)>>;

/// The named parameters of a route that takes no others.
fn only<'a>(pairs: &'a [(String, String)], named: &[&str]) -> Result<Named<'a>, ApiError> {
    let (known, unknown) = split_params(pairs, named)?;
    match unknown.first() {
        Some((name, _)) if named.is_empty() => Err(ApiError::bad_request(format!(
            "unknown parameter {name:?}; this route takes none"
        ))),
        Some((name, _)) => Err(ApiError::bad_request(format!(
            "unknown parameter {name:?}; this route takes {}",
            named.join(", ")
        ))),
        None => Ok(known),
    }
}

fn number(known: &Named<'_>, name: &str) -> Result<Option<usize>, ApiError> {
    get(known, name)
        .map(|text| {
            text.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!(
                    "parameter {name:?}: {text:?} is not a non-negative integer"
                ))
            })
        })
        .transpose()
}

/// `POST /api/v1/transactions`: 201 with the transaction; 200 with the stored one when
/// the same `id` and content were sent before.
pub async fn create(
    State(state): State<AppState>,
    Query(pairs): Pairs,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    only(&pairs, &[])?;
    let commerce = state.commerce()?.clone();
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let request: NewTransaction = serde_json::from_slice(&bytes).map_err(|e| {
        let details = json!({"line": e.line(), "column": e.column()});
        if e.is_syntax() || e.is_eof() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!("the body is not valid JSON: {e}"),
            )
            .with_details(details)
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_transaction",
                format!("the transaction is invalid: {e}"),
            )
            .with_details(details)
        }
    })?;
    let created = commerce.create_transaction(&request).await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created.transaction)))
}

/// `from`, `to`, `limit`, `cursor` and the filters of a transactions route.
fn transaction_query(pairs: &[(String, String)]) -> Result<TransactionQuery, ApiError> {
    let (known, filters) = split_params(pairs, &["from", "to", "limit", "cursor"])?;
    Ok(TransactionQuery {
        from: time_param(&known, "from")?,
        to: time_param(&known, "to")?,
        limit: number(&known, "limit")?,
        cursor: get(&known, "cursor").map(str::to_owned),
        filters,
    })
}

/// `GET /api/v1/transactions`.
pub async fn list(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let query = transaction_query(&pairs)?;
    Ok(Json(json!(state.commerce()?.transactions(&query)?)))
}

/// `GET /api/v1/transactions/suspicious`.
pub async fn suspicious(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let query = transaction_query(&pairs)?;
    Ok(Json(json!(state.commerce()?.suspicious(&query)?)))
}

/// `GET /api/v1/transactions/{id}`.
pub async fn transaction(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(state.commerce()?.transaction(&id).await?))
}

/// `GET /api/v1/products`.
pub async fn products(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(
        json!({"products": state.commerce()?.products().await?}),
    ))
}

/// `GET /api/v1/products/{id}`.
pub async fn product(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(json!(state.commerce()?.product(&id).await?)))
}

/// `GET /api/v1/customers`.
pub async fn customers(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(
        json!({"customers": state.commerce()?.customers().await?}),
    ))
}

/// `GET /api/v1/suppliers`.
pub async fn suppliers(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(
        json!({"suppliers": state.commerce()?.suppliers().await?}),
    ))
}

/// `GET /api/v1/purchase-orders`.
pub async fn purchase_orders(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(
        json!({"purchase_orders": state.commerce()?.purchase_orders().await?}),
    ))
}

/// `GET /api/v1/inventory/low-stock`.
pub async fn low_stock(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(json!(state.commerce()?.low_stock().await?)))
}

/// `GET /api/v1/inventory/predictions/{product_id}?horizon=`.
pub async fn prediction(
    State(state): State<AppState>,
    Path(product_id): Path<String>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["horizon"])?;
    let horizon = number(&known, "horizon")?;
    Ok(Json(
        state.commerce()?.prediction(&product_id, horizon).await?,
    ))
}

/// `GET /api/v1/inventory/reorder-suggestions?status=pending|approved|expired|all`
/// (default `pending`).
pub async fn suggestions(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["status"])?;
    let status = get(&known, "status").unwrap_or("pending");
    Ok(Json(
        json!({"suggestions": state.commerce()?.suggestions(Some(status)).await?}),
    ))
}

/// `POST /api/v1/inventory/reorder-suggestions/refresh`: forecasts and suggestions now.
pub async fn refresh(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    let commerce = state.commerce()?;
    let forecasts = commerce.refresh_forecasts().await?;
    let reorders = commerce.refresh_reorders().await?;
    Ok(Json(json!({
        "products": reorders.products,
        "forecasts": forecasts.forecasts,
        "suggestions": reorders.suggestions,
        "expired": reorders.expired,
        "computed_at": reorders.computed_at,
    })))
}

/// `POST /api/v1/inventory/reorder-suggestions/{id}/approve`: 201 with the purchase
/// order; 409 when the suggestion is not pending (approved before, or expired).
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(pairs): Pairs,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    only(&pairs, &[])?;
    let order = state.commerce()?.approve(&id).await?;
    Ok((StatusCode::CREATED, Json(json!({"purchase_order": order}))))
}

/// `GET /api/v1/dashboard/overview`.
pub async fn overview(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(state.commerce()?.overview().await?))
}

/// `GET /api/v1/analytics/hourly-sales?from=&to=`.
pub async fn hourly_sales(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["from", "to"])?;
    let (from, to) = (time_param(&known, "from")?, time_param(&known, "to")?);
    Ok(Json(state.commerce()?.hourly_sales(from, to)?))
}

fn span(known: &Named<'_>) -> Result<Span, ApiError> {
    Ok(Span::new(
        time_param(known, "from")?,
        time_param(known, "to")?,
    )?)
}

/// `GET /api/v1/analytics/top-products?from=&to=&limit=&by=revenue|units|orders`.
pub async fn top_products(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["from", "to", "limit", "by"])?;
    let by = match get(&known, "by") {
        None => TopBy::Revenue,
        Some(text) => TopBy::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter \"by\": {text:?} is not revenue, units or orders"
            ))
        })?,
    };
    let span = span(&known)?;
    let limit = number(&known, "limit")?;
    Ok(Json(state.commerce()?.top_products(span, limit, by).await?))
}

/// `GET /api/v1/analytics/customer-segments`.
pub async fn customer_segments(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    only(&pairs, &[])?;
    Ok(Json(state.commerce()?.customer_segments()?))
}

/// `GET /api/v1/analytics/category-performance?from=&to=`.
pub async fn category_performance(
    State(state): State<AppState>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let known = only(&pairs, &["from", "to"])?;
    let span = span(&known)?;
    Ok(Json(state.commerce()?.category_performance(span)?))
}
