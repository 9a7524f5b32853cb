//! `POST /api/v1/streams/{stream}/rollups` and `GET /api/v1/streams/{stream}/rollups/{rollup}`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tidewatch_engine::RollupSpec;
use tidewatch_types::WindowWidth;

use crate::api::body::read_limited;
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
    let spec: RollupSpec = serde_json::from_slice(&bytes).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_body"
        } else {
            "invalid_declaration"
        };
        let status = if e.is_syntax() || e.is_eof() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, code, format!("invalid rollup declaration: {e}"))
            .with_details(json!({"line": e.line(), "column": e.column()}))
    })?;
    let created = engine.declare_rollup(&stream, spec.clone())?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(spec))))
}

pub async fn query(
    State(state): State<AppState>,
    Path((stream, rollup)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "stream": stream,
        "rollup": rollup,
        "window": window.to_string(),
        "rows": rows,
    })))
}
