//! SQL errors. Each variant says what the server should tell the client; the status and
//! code each maps to are listed in `docs/sql.md`.

use std::time::Duration;

use datafusion::error::DataFusionError;

use crate::config::ByteSize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement is not a read-only query (400 `sql_rejected`).
    #[error("{0}")]
    Rejected(String),
    /// Parsing, planning or executing failed for a reason in the query itself, e.g. an
    /// unknown table or column, a type error, a division by zero (400 `sql_error`).
    #[error("{0}")]
    Query(String),
    /// The query ran longer than `[sql] timeout` and was cancelled (400 `sql_timeout`).
    #[error("query exceeded the {} timeout", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The query's operators needed more than `[sql] memory_limit` (400 `sql_memory_limit`).
    #[error("query exceeded the memory limit of {limit} (shared by all running queries): {detail}")]
    MemoryLimit { limit: ByteSize, detail: String },
    /// The result has more rows than `[sql] max_rows` (400 `sql_too_many_rows`).
    #[error(
        "query returned more than {max} rows, the limit of one result; aggregate, filter or add a LIMIT"
    )]
    TooManyRows { max: usize },
    /// The result has a column the chosen format cannot hold (400 `sql_unsupported_format`).
    #[error("cannot write the result as {format}: {message}")]
    Encode {
        format: &'static str,
        message: String,
    },
    /// A failure of Tidewatch or DataFusion, not of the query (500 `internal`).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Sorts a DataFusion error into the query's fault, the memory limit, or ours.
    pub(crate) fn from_datafusion(error: DataFusionError, memory_limit: ByteSize) -> Error {
        let message = error.strip_backtrace();
        if exhausted_resources(&error) {
            let detail = root_message(&error);
            return Error::MemoryLimit {
                limit: memory_limit,
                detail,
            };
        }
        match error.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            | DataFusionError::ArrowError(..)
            | DataFusionError::Execution(_)
            | DataFusionError::Diagnostic(..) => Error::Query(message),
            _ => Error::Internal(message),
        }
    }

    /// The HTTP status class: whether the client caused it.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Error::Internal(_))
    }
}

/// Whether the memory pool refused an allocation anywhere in `error`.
fn exhausted_resources(error: &DataFusionError) -> bool {
    match error.find_root() {
        DataFusionError::ResourcesExhausted(_) => true,
        DataFusionError::Collection(errors) => errors.iter().any(exhausted_resources),
        _ => false,
    }
}

fn root_message(error: &DataFusionError) -> String {
    match error.find_root() {
        DataFusionError::ResourcesExhausted(message) => message.clone(),
        DataFusionError::Collection(errors) => errors
            .iter()
            .find(|e| exhausted_resources(e))
            .map_or_else(|| error.strip_backtrace(), root_message),
        other => other.strip_backtrace(),
    }
}
