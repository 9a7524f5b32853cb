//! `POST /api/v1/streams/{stream}/events` (ingest) and `GET` (newest-first pages).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use tidewatch_engine::engine::EventsRequest;
use tidewatch_engine::{Engine, EventsPage, IngestReceipt};
use tidewatch_ingest::Format;

use crate::api::body::read_limited;
use crate::api::params::{get, split_params, time_param};
use crate::error::ApiError;
use crate::state::AppState;

/// Bodies above this size are parsed on the blocking pool, off the async workers.
const PARSE_INLINE_MAX_BYTES: usize = 256 * 1024;

pub async fn ingest(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestReceipt>, ApiError> {
    let engine = Arc::clone(state.engine()?);
    let partial = partial_param(&pairs)?;
    let format = body_format(&headers)?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let (handle, parsed) = if bytes.len() <= PARSE_INLINE_MAX_BYTES {
        engine.parse(&stream, &bytes, format)?
    } else {
        let engine = Arc::clone(&engine);
        tokio::task::spawn_blocking(move || engine.parse(&stream, &bytes, format))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("parser task failed: {e}"),
                )
            })??
    };
    let receipt = engine.commit(&handle, parsed, partial).await?;
    Ok(Json(receipt))
}

/// `?partial=true` accepts the valid rows and lists the rejected ones instead of
/// rejecting the batch. No other parameter is accepted.
fn partial_param(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    let (known, unknown) = split_params(pairs, &["partial"])?;
    if let Some((name, _)) = unknown.first() {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {name:?}; ingest accepts only \"partial\""
        )));
    }
    match get(&known, "partial") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "parameter \"partial\": {other:?} is not true or false"
        ))),
    }
}

/// JSON array by default; NDJSON by `Content-Type: application/x-ndjson`.
fn body_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::JsonArray);
    };
    let media_type = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "" => Ok(Format::JsonArray),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Format::Ndjson),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type {other:?} is not accepted; send application/json or application/x-ndjson"
            ),
        )),
    }
}

pub async fn query(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<EventsPage>, ApiError> {
    let engine: &Engine = state.engine()?;
    let (known, tags) = split_params(&pairs, &["from", "to", "limit", "cursor"])?;
    let limit = get(&known, "limit")
        .map(|text| {
            text.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!(
                    "parameter \"limit\": {text:?} is not a positive integer"
                ))
            })
        })
        .transpose()?;
    let request = EventsRequest {
        from: time_param(&known, "from")?,
        to: time_param(&known, "to")?,
        limit,
        cursor: get(&known, "cursor").map(str::to_owned),
        tags,
    };
    Ok(Json(engine.events(&stream, &request)?))
}
