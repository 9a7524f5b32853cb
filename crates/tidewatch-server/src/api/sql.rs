//! `POST /api/v1/sql`: read-only SQL over streams and rollups (see `docs/sql.md`).
//!
//! Body: `{"sql": "SELECT ...", "format": "csv"}` (`format` optional). The format is the
//! body's `format`, else the `?format=` parameter, else the first format the `Accept`
//! header names, else JSON.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tidewatch_sql::{Error as SqlError, Format};

use crate::api::body::read_limited;
use crate::error::ApiError;
use crate::state::AppState;

/// Rows in the result, for clients of formats that do not say (CSV, Arrow, Parquet).
const ROW_COUNT_HEADER: &str = "x-tidewatch-row-count";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

pub async fn query(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sql = state.sql()?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let request: SqlRequest = serde_json::from_slice(&bytes).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_body"
        } else {
            "invalid_request"
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("expected {{\"sql\": \"SELECT ...\", \"format\": \"json\"}}: {e}"),
        )
        .with_details(json!({"line": e.line(), "column": e.column()}))
    })?;
    let format = choose_format(request.format.as_deref(), &params, &headers)?;

    let result = sql.query(&request.sql).await?;
    let rows = result.row_count();
    // Writing a large result is CPU work: off the async workers.
    let encoded = tokio::task::spawn_blocking(move || tidewatch_sql::encode(&result, format))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("encoding task failed: {e}"),
            )
        })??;
    Ok((
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                axum::http::HeaderName::from_static(ROW_COUNT_HEADER),
                HeaderValue::from(rows),
            ),
        ],
        encoded,
    )
        .into_response())
}

fn choose_format(
    body: Option<&str>,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Format, ApiError> {
    if let Some((key, _)) = params.iter().find(|(key, _)| key != "format") {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {key:?}; the only parameter is \"format\""
        )));
    }
    let param = params.iter().map(|(_, value)| value.as_str()).next();
    if let Some(name) = body.or(param) {
        return name.parse().map_err(ApiError::bad_request);
    }
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    Ok(accept.and_then(Format::from_accept).unwrap_or_default())
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> Self {
        let message = e.to_string();
        // Limits answer 400 rather than 408: browsers and proxies retry a 408 on their
        // own, which would run the same expensive query again.
        let client = |code| ApiError::new(StatusCode::BAD_REQUEST, code, message.clone());
        match &e {
            SqlError::Rejected(_) => client("sql_rejected"),
            SqlError::Query(_) => client("sql_error"),
            SqlError::Timeout(timeout) => client("sql_timeout")
                .with_details(json!({"timeout_ms": timeout.as_millis() as u64})),
            SqlError::MemoryLimit { limit, .. } => client("sql_memory_limit")
                .with_details(json!({"memory_limit_bytes": limit.bytes()})),
            SqlError::TooManyRows { max } => {
                client("sql_too_many_rows").with_details(json!({"max_rows": max}))
            }
            SqlError::Encode { format, .. } => {
                client("sql_unsupported_format").with_details(json!({"format": format}))
            }
            SqlError::Internal(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn body_beats_parameter_beats_accept_beats_json() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/csv, */*"));
        let csv_param = params(&[("format", "csv")]);
        assert_eq!(
            choose_format(Some("parquet"), &csv_param, &headers).unwrap(),
            Format::Parquet
        );
        assert_eq!(
            choose_format(None, &params(&[("format", "ndjson")]), &headers).unwrap(),
            Format::Ndjson
        );
        assert_eq!(choose_format(None, &[], &headers).unwrap(), Format::Csv);
        assert_eq!(
            choose_format(None, &[], &HeaderMap::new()).unwrap(),
            Format::Json
        );
        let mut any = HeaderMap::new();
        any.insert(ACCEPT, HeaderValue::from_static("*/*"));
        assert_eq!(choose_format(None, &[], &any).unwrap(), Format::Json);
    }

    #[test]
    fn unknown_formats_and_parameters_are_refused() {
        let err = choose_format(Some("xml"), &[], &HeaderMap::new()).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("xml"), "{}", err.message);
        let err = choose_format(None, &params(&[("limit", "3")]), &HeaderMap::new()).unwrap_err();
        assert!(err.message.contains("limit"), "{}", err.message);
    }
}
