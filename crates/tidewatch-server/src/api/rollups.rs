//! `POST /api/v1/streams/{stream}/rollups` and `GET /api/v1/streams/{stream}/rollups/{rollup}`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use tidewatch_engine::RollupSpec;
use tidewatch_types::WindowWidth;

use std::sync::Arc;

use crate::api::body::{declaration, read_limited};
use crate::api::params::{get, split_params, time_param};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn declare(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let engine = state.engine()?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    // Spec errors (unknown aggregate, bad window) come from serde with their reason.
    let spec: RollupSpec = declaration(&bytes)?;
    // Computing the rollup over the stored events is CPU work: off the async workers.
    let engine = Arc::clone(engine);
    let declared = spec.clone();
    let created = tokio::task::spawn_blocking(move || engine.declare_rollup(&stream, declared))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("declaration task failed: {e}"),
            )
        })??;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(spec))))
}

/// `GET .../rollups/{rollup}` answer.
#[derive(Serialize)]
pub struct RollupRows {
    stream: String,
    rollup: String,
    window: String,
    rows: Vec<Value>,
}

pub async fn query(
    State(state): State<AppState>,
    Path((stream, rollup)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<RollupRows>, ApiError> {
    let engine = state.engine()?;
    let (known, filter) = split_params(&pairs, &["window", "from", "to"])?;
    let window = get(&known, "window")
        .map(|text| {
            text.parse::<WindowWidth>()
                .map_err(|e| ApiError::bad_request(format!("parameter \"window\": {e}")))
        })
        .transpose()?;
    let from = time_param(&known, "from")?;
    let to = time_param(&known, "to")?;
    let (window, rows) = engine.rollup_rows(&stream, &rollup, window, from, to, &filter)?;
    Ok(Json(RollupRows {
        stream,
        rollup,
        window: window.to_string(),
        rows,
    }))
}
