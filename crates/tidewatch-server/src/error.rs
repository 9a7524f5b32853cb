//! [`ApiError`]: every failed request answers `{"error": {"code", "message", "details"}}`
//! with the status its `code` implies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tidewatch_engine::Error as EngineError;
use tidewatch_ingest::IngestError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_ready() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the server is recovering its write-ahead log; retry shortly",
        )
    }

    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "details": self.details}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // 503 not_ready is an expected answer during recovery, not a failure.
        if self.status.is_server_error() && self.code != "not_ready" {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        match e {
            EngineError::UnknownStream(_) | EngineError::UnknownRollup { .. } => {
                ApiError::new(S::NOT_FOUND, "not_found", message)
            }
            EngineError::StreamConflict(_) | EngineError::RollupConflict { .. } => {
                ApiError::new(S::CONFLICT, "conflict", message)
            }
            EngineError::InvalidSchema(_) | EngineError::InvalidRollup(_) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_declaration", message)
            }
            EngineError::InvalidRequest(_) => ApiError::bad_request(message),
            EngineError::Body(IngestError::Malformed { line, column, .. }) => {
                ApiError::new(S::BAD_REQUEST, "malformed_body", message)
                    .with_details(json!({"line": line, "column": column}))
            }
            EngineError::Body(IngestError::TooManyRows { max }) => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, "batch_too_large", message)
                    .with_details(json!({"max_rows": max}))
            }
            EngineError::Body(IngestError::Empty) => {
                ApiError::new(S::BAD_REQUEST, "empty_batch", message)
            }
            EngineError::RejectedRows { rows, total } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_rows", message)
                    .with_details(json!({"total_rows": total, "rejected": rows}))
            }
            EngineError::Wal(_) | EngineError::Storage(_) | EngineError::Persist(_) => {
                ApiError::new(S::SERVICE_UNAVAILABLE, "storage_unavailable", message)
            }
            EngineError::Catalog(_) | EngineError::Recovery(_) | EngineError::Internal(_) => {
                ApiError::new(S::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

impl From<tidewatch_market::Error> for ApiError {
    fn from(e: tidewatch_market::Error) -> Self {
        match e {
            tidewatch_market::Error::Engine(e) => e.into(),
            tidewatch_market::Error::UnknownSymbol { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_symbol", e.to_string())
            }
            tidewatch_market::Error::InvalidRequest(message) => ApiError::bad_request(message),
        }
    }
}

impl From<tidewatch_commerce::Error> for ApiError {
    fn from(e: tidewatch_commerce::Error) -> Self {
        use tidewatch_commerce::Error as E;
        let message = e.to_string();
        match e {
            E::Engine(e) => e.into(),
            E::InvalidRequest(message) => ApiError::bad_request(message),
            E::Invalid { details, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_transaction",
                message,
            )
            .with_details(details),
            E::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            E::InsufficientStock {
                product_id,
                requested,
                available,
            } => ApiError::new(StatusCode::CONFLICT, "insufficient_stock", message).with_details(
                json!({"product_id": product_id, "requested": requested, "available": available}),
            ),
            E::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            E::Store {
                retryable: true, ..
            } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                message,
            ),
            E::Store { .. } | E::Migration(_) | E::Internal(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}
