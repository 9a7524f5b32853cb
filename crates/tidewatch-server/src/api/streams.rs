//! `GET /api/v1/streams` and `POST /api/v1/streams`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tidewatch_types::schema::FieldDef;
use tidewatch_types::{FieldType, StreamSchema};

use crate::api::body::{declaration, read_limited};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = state.engine()?;
    Ok(Json(json!({"streams": engine.streams()})))
}

/// `{"name": "ticks", "tags": ["symbol"], "fields": {"price": "f64", "size": "f64"}}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamDeclaration {
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    /// Kept as a map so field order is the order the user wrote.
    #[serde(default)]
    fields: Map<String, Value>,
}

pub async fn declare(
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let engine = state.engine()?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let declaration: StreamDeclaration = declaration(&bytes)?;
    let mut fields = Vec::with_capacity(declaration.fields.len());
    for (name, type_name) in declaration.fields {
        let field_type: FieldType = serde_json::from_value(type_name.clone()).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_declaration",
                format!("field {name:?} has type {type_name}; types are \"f64\", \"i64\", \"bool\" and \"string\""),
            )
        })?;
        fields.push(FieldDef { name, field_type });
    }
    let schema = StreamSchema {
        name: declaration.name,
        tags: declaration.tags,
        fields,
    };
    let name = schema.name.clone();
    let created = engine.declare_stream(schema)?;
    let info = engine.stream_info(&name)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(info))))
}

/// `GET /api/v1/streams/{stream}/retention`: the retention in force.
pub async fn retention(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let engine = state.engine()?;
    engine.stream(&stream)?;
    Ok(Json(
        json!({"stream": stream, "retention": engine.retention(&stream)}),
    ))
}

/// `PUT /api/v1/streams/{stream}/retention` with `{"events": "30d", "rollups": "90d"}`
/// (either may be omitted: kept forever); `null` as the body returns to the configured
/// default. Takes effect at the next retention run.
pub async fn set_retention(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let engine = state.engine()?;
    let bytes = read_limited(body, state.config.max_body_bytes).await?;
    let retention: Option<tidewatch_engine::Retention> = declaration(&bytes)?;
    engine.set_retention(&stream, retention)?;
    Ok(Json(
        json!({"stream": stream, "retention": engine.retention(&stream)}),
    ))
}
