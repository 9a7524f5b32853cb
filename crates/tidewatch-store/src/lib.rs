//! Hot store: the in-memory columnar copy of every stream's events.
//!
//! Sits after the WAL in the write path: a batch is appended here only once it is durable.
//! Each stream is split into hour partitions; each partition holds immutable Arrow record
//! batches (sealed at a row threshold) plus open column builders for the newest rows.
//! Readers get sealed batches by `Arc` and a copy of the open builders' contents, so a
//! query sees a consistent snapshot while ingest goes on.
//!
//! Layout:
//! - [`partition`]: the open builders and sealed batches of one hour.
//! - [`stream`]: [`StreamStore`], the partitions of one stream, appends and queries.
//! - [`convert`]: reading Arrow batches back as [`tidewatch_types::EventBatch`]es.

pub mod convert;
pub mod partition;
pub mod segment;
pub mod stream;

pub use segment::{Segment, SegmentError, SegmentMeta};
pub use stream::{
    EventQuery, PersistJob, QueryPlan, StoreConfig, StoreSnapshot, StreamStats, StreamStore,
};

/// Partition width: one hour of event time.
pub const PARTITION_MS: i64 = 3_600_000;

/// Start of the partition holding `ts` (saturating at `i64::MIN`, which a query bound
/// can reach but an event time cannot).
pub fn partition_start(ts: i64) -> i64 {
    ts.saturating_sub(ts.rem_euclid(PARTITION_MS))
}
