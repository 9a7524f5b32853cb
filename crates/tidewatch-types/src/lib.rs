//! Shared vocabulary of Tidewatch: every crate below the server speaks in these types.
//!
//! Layout:
//! - [`schema`]: stream names, tag and field declarations, validation of names.
//! - [`batch`]: [`EventBatch`], the columnar unit that flows through ingest, WAL, hot store
//!   and rollups.
//! - [`time`]: epoch-millisecond timestamps, RFC 3339 formatting and window durations.
//! - [`codec`]: the binary encoding of an [`EventBatch`] inside a WAL record.

pub mod batch;
pub mod codec;
pub mod schema;
pub mod time;

pub use batch::{EventBatch, EventId, FieldColumn, TagColumn};
pub use schema::{FieldType, SchemaError, StreamSchema};
pub use time::{TimestampMs, WindowWidth};
