//! Reading request bodies with a size limit that applies after gzip decoding, so a small
//! compressed body cannot expand without bound.

use axum::body::Body;
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::ApiError;

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                format!("could not read the request body: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body exceeds {limit} bytes (after decompression)"),
            )
            .with_details(serde_json::json!({"max_body_bytes": limit})));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses a declaration body into `T`: 400 `malformed_body` when it is not JSON, 422
/// `invalid_declaration` when it is JSON of the wrong shape, with serde's position.
pub fn declaration<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let (status, code) = if e.is_syntax() || e.is_eof() {
            (StatusCode::BAD_REQUEST, "malformed_body")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_declaration")
        };
        ApiError::new(status, code, format!("invalid declaration: {e}"))
            .with_details(serde_json::json!({"line": e.line(), "column": e.column()}))
    })
}
