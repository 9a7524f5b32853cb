//! Engine errors. Each variant says what the server should tell the client.

use tidewatch_ingest::{IngestError, RowError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stream {0:?} does not exist")]
    UnknownStream(String),
    #[error("rollup {rollup:?} does not exist on stream {stream:?}")]
    UnknownRollup { stream: String, rollup: String },
    #[error("stream {0:?} already exists with a different schema")]
    StreamConflict(String),
    #[error("rollup {rollup:?} already exists on stream {stream:?}")]
    RollupConflict { stream: String, rollup: String },
    #[error("{0}")]
    InvalidSchema(#[from] tidewatch_types::SchemaError),
    #[error("{0}")]
    InvalidRollup(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Body(#[from] IngestError),
    #[error("{} of {total} rows are invalid; nothing was written", rows.len())]
    RejectedRows { rows: Vec<RowError>, total: usize },
    #[error("write-ahead log: {0}")]
    Wal(#[from] tidewatch_wal::Error),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("recovery: {0}")]
    Recovery(String),
    #[error("storage: {0}")]
    Storage(#[from] tidewatch_store::SegmentError),
    #[error("persisting: {0}")]
    Persist(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
