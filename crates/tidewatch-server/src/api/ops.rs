//! Health, readiness, metrics and the JSON 404.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Alive: the process answers.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready: the WAL has been replayed and the engine serves requests.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let engine = state.engine()?;
    Ok(Json(
        json!({"status": "ready", "recovery": engine.recovery()}),
    ))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(engine) = state.engine() {
        metrics::gauge!("tidewatch_ws_subscribed_clients")
            .set(engine.hub().subscribed_clients() as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
}
