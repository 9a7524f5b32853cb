//! The commerce domain's error type. Each variant says what the server should tell the
//! client; storage failures carry whether a retry may succeed.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request that can never succeed as sent (bad parameter, bad field value).
    #[error("{0}")]
    InvalidRequest(String),
    /// A body that names things which do not exist or values out of range; details list
    /// the offending fields.
    #[error("{message}")]
    Invalid { message: String, details: Value },
    /// An id in the path that is not stored.
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    /// Not enough units in stock for an order; nothing was written.
    #[error(
        "insufficient stock for product {product_id:?}: {requested} requested, {available} available"
    )]
    InsufficientStock {
        product_id: String,
        requested: i64,
        available: i64,
    },
    /// The request conflicts with the stored state (approved twice, an id reused for a
    /// different transaction, a transaction with this id still in flight).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Engine(#[from] tidewatch_engine::Error),
    /// The metadata store failed; `retryable` when the cause is transient (busy, pool
    /// timeout, I/O), so a client may retry.
    #[error("metadata store: {source}")]
    Store {
        #[source]
        source: sqlx::Error,
        retryable: bool,
    },
    #[error("metadata store migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        let retryable = matches!(
            source,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        ) || source
            .as_database_error()
            .and_then(|e| e.code())
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            .is_some_and(|code| code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)));
        Error::Store { source, retryable }
    }
}

impl Error {
    pub fn invalid(message: impl Into<String>, details: Value) -> Self {
        Error::Invalid {
            message: message.into(),
            details,
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            id: id.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
